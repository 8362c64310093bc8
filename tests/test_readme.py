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


# --- docs that cannot drift: the README's commands, targets, variables and endpoints against the real ones ---

def _readme() -> str: return (ROOT / "README.md").read_text()


def _blocks(langs:tuple) -> list[str]:
    "The README's fenced blocks whose language is one of `langs` ('' for none), fences paired line by line."
    out, lang, lines = [], None, []
    for line in _readme().splitlines():
        if line.startswith("```"):
            if lang is None: lang, lines = line[3:].strip(), []
            else:
                if lang in langs: out.append("\n".join(lines) + "\n")
                lang = None
        elif lang is not None: lines.append(line)
    return out


def _prose() -> str:
    "The README without its fenced blocks."
    out, inside = [], False
    for line in _readme().splitlines():
        if line.startswith("```"): inside = not inside
        elif not inside: out.append(line)
    return "\n".join(out)


def _shell_lines() -> list[str]:
    "Every command line of the README's shell blocks (continuations joined, comments dropped)."
    out = []
    for block in _blocks(("sh", "bash", "")):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.split(r"\s#\s|^#", line, maxsplit=1)[0].strip()
            if line: out.append(line)
    return out


def _subparsers(p):
    import argparse
    return next((a.choices for a in p._actions if isinstance(a, argparse._SubParsersAction)), {})


def _options(p) -> set:
    return {o for a in p._actions for o in a.option_strings}


def _invocations() -> list[list[str]]:
    "The words after `sixstack` of every command in the shell blocks and of inline `sixstack …` spans."
    texts = [part for line in _shell_lines() for part in re.split(r"&&|;", line)]
    texts += re.findall(r"`((?:\.venv/bin/)?sixstack [^`]+)`", _readme())
    found = []
    for t in texts:
        m = re.match(r'\s*(?:[A-Z_]+=\S+\s+)*(?:eval "\$\()?(?:\.venv/bin/)?sixstack(\s.*)?$', t)
        if m: found.append(re.sub(r"<[^>]*>", "X", m.group(1) or "").replace("[", " ").replace("]", " ").split())
    return found


def test_every_sixstack_command_and_flag_in_the_readme_exists():
    from sixstack.cli.main import parser
    top, checked, bad = parser(), 0, []
    for words in _invocations():
        p, path, skip = top, ["sixstack"], 0
        for w in words:
            if skip or w in ("…", "..."): skip = max(skip - 1, 0); continue
            sub = _subparsers(p)
            if w.startswith("-") and w != "-":
                flag = w.split("=")[0]
                act = next((a for q in (p, top) for a in q._actions if flag in a.option_strings), None)
                if act is None: bad.append(f"{' '.join(path)}: no option {flag}")
                elif "=" not in w and act.nargs != 0: skip = act.nargs if isinstance(act.nargs, int) else 1
                checked += 1
            elif sub and w in sub: p, path = sub[w], path + [w]
            elif sub: bad.append(f"{' '.join(path)}: no subcommand {w}")
    assert not bad, bad
    assert checked > 30, checked  # the README's commands were found and their options looked up


def test_every_make_target_in_the_readme_exists():
    targets = set(re.findall(r"^([A-Za-z0-9_-]+):", (ROOT / "Makefile").read_text(), re.M))
    used = {m for line in _shell_lines() for m in re.findall(r"(?:^|[;&]\s*)make ((?:[a-z][a-z0-9-]*\s*)+)", line)}
    used = {t for group in used for t in group.split()} | set(re.findall(r"`make ([a-z][a-z0-9-]*)`", _readme()))
    assert used and used <= targets, sorted(used - targets)
    assert {"run", "test", "serve", "ui", "release", "stack"} <= used


def test_every_environment_variable_in_the_readme_is_read_somewhere():
    source = "\n".join(p.read_text() for p in (ROOT / "sixstack").rglob("*.py"))
    source += (ROOT / "Makefile").read_text() + (ROOT / "environments.toml").read_text()  # (prod's ${SIXSTACK_PROD_*})
    named = set(re.findall(r"\b((?:SIXSTACK|MODEL_REGISTRY)_[A-Z0-9_]*[A-Z0-9])\b", _readme()))
    unknown = sorted(v for v in named if v not in source)
    assert len(named) > 15 and not unknown, unknown


def test_every_endpoint_in_the_readme_is_served():
    from sixstack.serving.service import Service, create_app
    from sixstack.tracking.packaging import EchoModel
    from sixstack.serving.served import Served
    app = create_app(Service(lambda: Served(EchoModel(), "m", "1", "production", None)), load_now=False)
    routes = [re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", r.path) + "$") for r in app.routes]
    used = set(re.findall(r"localhost:\d+(/[A-Za-z0-9_/{}.-]*)", _readme())) - {"/"}
    missing = sorted(u for u in used if not any(r.match(u.split("?")[0]) for r in routes))
    assert len(used) > 8 and not missing, missing


def test_no_absolute_machine_paths_in_the_readme():
    found = re.findall(r"(?<![\w./:$-])/(?:work|home|root|tmp/[a-z]+-[0-9a-f]{6,}|Users)/[^\s`)\"']*", _readme())
    assert not found, found


def test_from_python(tmp_path, monkeypatch):
    "The README's 'From Python' block as written, but its `main(['run', ...])` only parsed (test_ml_pipeline runs it)."
    import shutil
    from sixstack.cli import main as cli_main
    for k, v in {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db", "SIXSTACK_SPOOL": f"{tmp_path}/spool.jsonl",
                 "SIXSTACK_REPORTS_DIR": f"{tmp_path}/reports", "SIXSTACK_DATA_DIR": f"{tmp_path}/data"}.items():
        monkeypatch.setenv(k, v)
    shutil.copy(ROOT / "README.md", tmp_path); monkeypatch.chdir(tmp_path)  # the block logs README.md
    parsed = []
    monkeypatch.setattr(cli_main, "main", lambda argv: parsed.append(cli_main.parser().parse_args(argv)) or 0)
    exec(compile(_block("From Python"), "README.md: From Python", "exec"), {})
    assert parsed[0].cmd == "run" and parsed[0].profile == "fast"
    from sixstack.tracking.mlops import MLOpsIntegration
    c = MLOpsIntegration().client
    run = c.search_runs([c.get_experiment_by_name("my_experiment").experiment_id])[0]
    assert run.data.metrics["accuracy"] == 0.97 and run.data.params["model"] == "lr"  # logged to the store, not spooled


def test_every_link_inside_the_readme_lands():
    text = _prose()  # headings and links only outside code blocks
    anchor = lambda t: re.sub(r"[^a-z0-9 _-]", "", t.lower()).replace(" ", "-")  # as GitHub makes them
    heads = {anchor(h) for h in re.findall(r"^#+ (.+)$", text, re.M)}
    links = re.findall(r"\]\(#([^)]+)\)", text)
    assert len(links) > 30 and not [x for x in links if x not in heads], [x for x in links if x not in heads]
    assert all((ROOT / f).exists() for f in re.findall(r"\]\(((?:docs|benchmarks|nbs)/[^)#]+)\)", text))


def test_the_make_table_is_the_makefiles():
    "The README's table of `make` targets says what `make help` says, target for target."
    rows = re.findall(r"^([a-z][a-z0-9-]*):[^#\n]*## (.+)$", (ROOT / "Makefile").read_text(), re.M)
    table = dict(re.findall(r"^\| `make ([a-z0-9-]+)` \| (.+) \|$", _readme(), re.M))
    assert table == {t: h.replace("|", "/") for t, h in rows if t != "help"}


def test_the_shipped_modules_are_the_ones_named():
    "Every module a logged model ships is named in the README's account of it (by its last part)."
    from sixstack.tracking.packaging import MODEL_MODULES
    part = _readme()[_readme().index("## The model outside this project"):][:1500]
    named = {"config": "settings", "data.tables": "data contract", "data.report": "report", "tracking.packaging": "pyfunc",
             "training.features": "features", "training.augmentation": "augmentation", "training.stacks": "stacks"}
    assert all(named.get(m, f"`{m.split('.')[-1]}`") in part or m.split(".")[-1] in part for m in MODEL_MODULES), part
