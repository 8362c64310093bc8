"The parts import one way, as shared/DESIGN.md lays out: checked statically on the exported package."
import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "sixstack"
# part -> the parts it may import (config sits below every part; cli may import everything and nothing imports it)
ALLOWED = {
    "config": set(),
    "data": {"config"},
    "deploy": {"config"},
    "tracking": {"config", "data"},
    "training": {"config", "data", "tracking"},
    "serving": {"config", "data", "tracking", "training", "deploy"},
    "monitoring": {"config", "data", "tracking", "serving"},
    "cli": {"config", "data", "tracking", "training", "serving", "monitoring", "deploy"},
}
ENTRY_POINTS = {"serving/__main__.py"}  # `python -m sixstack.serving` hands over to the command line


def _part(path: Path) -> str:
    rel = path.relative_to(PKG)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def part_imports() -> dict[tuple[str, str], list[str]]:
    "(importing part, imported part) -> the places, for every import of one sixstack part by another."
    from sixstack.tracking.packaging import _imports, _own_import  # how the model's import check resolves them
    out = {}
    for f in sorted(PKG.rglob("*.py")):
        rel = str(f.relative_to(PKG))
        if rel in ENTRY_POINTS or rel.startswith("_"): continue
        for mod, level, line, names in _imports(f):
            if not (level or mod.split(".")[0] == "sixstack"): continue
            for m in _own_import(PKG, f, mod, level, names):
                src, dst = _part(f), m.split(".")[0]
                if m and src != dst: out.setdefault((src, dst), []).append(f"{rel}:{line}")
    return out


def test_parts_import_one_way():
    imports = part_imports()
    assert ("cli", "training") in imports and ("training", "data") in imports  # the walk sees real imports
    wrong = {k: v for k, v in imports.items() if k[1] not in ALLOWED.get(k[0], set())}
    assert not wrong, f"imports against the parts' direction: {wrong}"


def test_nothing_imports_the_command_line():
    assert not [k for k in part_imports() if k[1] == "cli"]


def test_data_and_training_do_not_import_mlflow():
    found = []
    for part in ("data", "training"):
        for f in sorted((PKG / part).rglob("*.py")):
            for node in ast.walk(ast.parse(f.read_text())):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                found += [f"{f.relative_to(PKG)}:{node.lineno}" for n in names if n.split(".")[0] == "mlflow"]
    assert not found, f"mlflow imported outside tracking: {found}"


def test_no_module_binds_the_contracts_names_at_import():
    "`use_contract` rebinds `LABEL` and `ID` (strings): a module that imports them at its top keeps the old table's names."
    found = []
    for f in sorted(PKG.rglob("*.py")):
        for node in ast.parse(f.read_text()).body:  # top-level statements only; imports inside functions read the current ones
            if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("data.tables"):
                found += [f"{f.relative_to(PKG)}:{node.lineno} {a.name}" for a in node.names if a.name in ("LABEL", "ID", "CONTRACT")]
    assert not found, found
