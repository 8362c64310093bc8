"""Overhead of running a notebook through the runner (papermill + MLflow run + artifact) vs executing it plainly.

Plain: nbclient executes the notebook in a fresh kernel (its job still logs its own run, as in JupyterLab).
Runner: `sixstack.tracking.runner.run_notebook` — papermill, a run created up front, parameters logged, the executed
notebook written and logged, wall time and status logged. Both use a throw-away SQLite store.
Prints the median of --repeats runs each (interleaved, so machine noise hits both alike) and the ratio.

    .venv/bin/python benchmarks/overhead.py [--repeats 3] [--notebooks nbs/00_data_validation.ipynb ...]
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def plain(path: Path) -> float:
    "Execute the notebook with nbclient, no papermill, no runner."
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(path, as_version=4)
    t0 = time.perf_counter()
    NotebookClient(nb, kernel_name="python3", timeout=600).execute()
    return time.perf_counter() - t0


def runner(path: Path, settings) -> float:
    "Execute the notebook through the runner as one MLflow run."
    from sixstack.tracking.runner import run_notebook
    r = run_notebook(path, settings=settings, progress=False)
    if not r.ok: sys.exit(f"{path.name} failed: {r.error}")
    return r.wall_time


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--notebooks", nargs="+", type=Path)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sixstack-bench-"))
    os.environ.update(MLFLOW_TRACKING_URI=f"sqlite:///{tmp}/mlflow.db", SIXSTACK_REPORTS_DIR=str(tmp / "reports"),
                      SIXSTACK_DATA_DIR=str(tmp / "data"), SIXSTACK_SPOOL=str(tmp / "spool.jsonl"),
                      SIXSTACK_JOB="1", SIXSTACK_HOME=str(ROOT), MLFLOW_DISABLE_TELEMETRY="true")
    from sixstack.config import get_settings
    from sixstack.tracking.pipeline import pipeline_notebooks
    settings = get_settings()
    nbs = a.notebooks or pipeline_notebooks(ROOT / "nbs")
    plain(nbs[0])  # warm the sample data and OS caches once, outside the measurement
    rows = []
    for nb in nbs:
        p, r = [], []
        for _ in range(a.repeats):
            p.append(plain(nb)); r.append(runner(nb, settings))
        mp, mr = statistics.median(p), statistics.median(r)
        rows.append((nb.stem, mp, mr, mr / mp, mr - mp))
        print(f"  measured {nb.stem}: plain {p}, runner {r}", file=sys.stderr)
    print(f"\nnotebook overhead, median of {a.repeats} (2-core machine; seconds)\n")
    print(f"| {'notebook':<26} | {'plain':>7} | {'runner':>7} | {'ratio':>5} | {'overhead':>8} |")
    print(f"|{'-'*28}|{'-'*9}|{'-'*9}|{'-'*7}|{'-'*10}|")
    for name, mp, mr, ratio, over in rows:
        print(f"| {name:<26} | {mp:7.2f} | {mr:7.2f} | {ratio:5.2f} | {over:+8.2f} |")


if __name__ == "__main__":
    main()
