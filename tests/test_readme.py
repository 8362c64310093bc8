"The README's Python examples that say they are executed are executed here, as written."
import re

from conftest import ROOT


def _block(title: str) -> str:
    "The first ```python block after the heading `title`."
    text = (ROOT / "README.md").read_text()
    return re.search(rf"^#+ {re.escape(title)}\n.*?```python\n(.*?)```", text, re.S | re.M).group(1)


def test_training_from_python(capsys):
    ns = {}
    exec(compile(_block("Training from Python"), "README.md: Training from Python", "exec"), ns)
    out = capsys.readouterr().out
    assert "served within 2 ms:" in out and set(ns["table"].index) >= {"full ensemble", "budgeted selection", "distilled"}
    assert ns["table"]["oof_accuracy"].min() > 0.8


def test_a_monitoring_rule(capsys):
    from sixstack.monitoring.monitor import RULES
    ns = {}
    try:
        exec(compile(_block("A monitoring rule"), "README.md: A monitoring rule", "exec"), ns)
        assert capsys.readouterr().out.strip() == "1.0 ['one_class']"
        assert RULES["one_class"].severity == "warning" and not RULES["one_class"].retrain
    finally: RULES.pop("one_class", None)


def test_a_data_check(capsys):
    from sixstack.data.checks import CHECKS
    try:
        exec(compile(_block("A data check"), "README.md: A data check", "exec"), {})
        assert capsys.readouterr().out.strip() == "[\"train: check 'outings_within_reason' fails in 2 rows (row 4, row 9)\"]"
    finally: CHECKS.pop("outings_within_reason", None)


def test_a_model_family_and_a_stack(capsys):
    from sixstack.training.stacks import FAMILIES, STACKS
    try:
        exec(compile(_block("A model family and a stack"), "README.md: A model family and a stack", "exec"), {})
        assert float(capsys.readouterr().out) > 0.85 and STACKS["G"]["models"] == ["knn", "lr"]
    finally: FAMILIES.pop("knn", None); STACKS.pop("G", None)


def test_a_data_contract(capsys):
    exec(compile(_block("A data contract"), "README.md: A data contract", "exec"), {})
    assert capsys.readouterr().out.startswith("30 {'benign': 0.627")
