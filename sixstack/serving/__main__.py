"""`python -m sixstack.serving …` is `sixstack serve …`.

Hand-written, like the parts' `__init__.py`: nbdev exports modules, not entry points."""
import sys

from sixstack.cli.main import main

sys.exit(main(["serve", *sys.argv[1:]]))
