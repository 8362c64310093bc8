"""Training time of the real pipeline (papermill + MLflow, as `sixstack run` runs it) per stage, at 1x and 10x rows.

1x is 2,320 training rows — the size of the real training set on which the original six-stack pipeline took
32 minutes on 2 cores at its defaults (15 Optuna trials per stack, 200 blending trials) and matched a default
CatBoost's held-out accuracy. Both sizes come from the embedded generator, with a labelled held-out set of
2,000 rows that the pipeline never sees: its submission is scored against it, next to a default CatBoost
fitted on the same training rows.

    .venv/bin/python benchmarks/train_time.py [--profile default] [--sizes 2320 23200]

`--loop` times the data scientist's loop instead, each as `sixstack run` in a process of its own on the embedded
sample, medians of `--repeats`: a cold fast-profile run on 18,524 rows (a fresh store each: nothing to reuse); then,
on 2,320 rows (the real table's size), a cold default-profile run, unchanged re-runs of it (everything reused), and
edits to one code cell of 05_ensemble each followed by a re-run (00-04 reused, 05-08 run).

    .venv/bin/python benchmarks/train_time.py --loop [--n-train 18524] [--default-n-train 2320] [--repeats 3]
"""
import json
import shutil
import statistics
import subprocess
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
ORIGINAL_SECONDS = 32 * 60


def catboost_holdout(train, test, truth):
    "Held-out accuracy and fit time of a default CatBoost on the same rows."
    from catboost import CatBoostClassifier
    from sixstack.data.tables import FEATURES, LABEL
    cat = ["Stage_fear", "Drained_after_socializing"]
    prep = lambda d: d[FEATURES].assign(**{c: d[c].fillna("missing").astype(str) for c in cat})
    t = time.perf_counter()
    m = CatBoostClassifier(cat_features=cat, thread_count=os.cpu_count(), verbose=0, allow_writing_files=False).fit(prep(train), train[LABEL])
    return float((m.predict(prep(test)).ravel() == truth).mean()), time.perf_counter() - t


def _run(store:Path, *args) -> tuple[float, str]:
    "`sixstack run ARGS` against its own store; its wall time and output (exits if it fails)."
    env = os.environ | {"MLFLOW_TRACKING_URI": f"sqlite:///{store}/mlflow.db", "SIXSTACK_REPORTS_DIR": str(store / "reports"),
                        "SIXSTACK_DATA_DIR": str(store.parent / "data"), "SIXSTACK_SPOOL": str(store / "spool.jsonl"),
                        "SIXSTACK_OPTUNA_STORAGE": f"sqlite:///{store}/optuna.db", "SIXSTACK_HOME": str(ROOT)}
    t = time.perf_counter()
    r = subprocess.run([str(Path(sys.executable).with_name("sixstack")), "run", *map(str, args)], env=env, cwd=ROOT,
                       capture_output=True, text=True)
    if r.returncode: sys.exit(f"sixstack run {' '.join(map(str, args))} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return time.perf_counter() - t, r.stdout + r.stderr


def _steps(out:str) -> str:
    "Which steps ran (R) and which were reused (.), from the step table."
    return "".join("." if " REUSED " in line else "R" for line in out.splitlines() if line.startswith("["))


def _edit_05(nbs:Path, i:int):
    "Append a comment to 05_ensemble's job cell in the copy of the notebooks: its code changes, nothing it computes."
    p = nbs / "05_ensemble.ipynb"; doc = json.loads(p.read_text())
    job = next(c for c in doc["cells"] if c["cell_type"] == "code" and "write_handoff(" in "".join(c["source"]))
    job["source"] = "".join(job["source"]) + f"\n# edit {i}"
    p.write_text(json.dumps(doc))


def loop(a, tmp:Path):
    "Time the three loops; print the table."
    rows, n = [], ["--n-train", a.default_n_train]
    cold = [_run(tmp / f"cold{i}", "--profile", "fast", "--n-train", a.n_train) for i in range(a.repeats)]  # fresh stores
    rows.append((f"cold fast-profile run, {a.n_train} rows (nothing to reuse)", [t for t, _ in cold], _steps(cold[-1][1])))
    store, nbs = tmp / "default", tmp / "nbs"
    first = _run(store, *n)
    rows.append((f"cold default-profile run, {a.default_n_train} rows", [first[0]], _steps(first[1])))
    again = [_run(store, *n) for _ in range(a.repeats)]
    rows.append(("the same default run again, unchanged", [t for t, _ in again], _steps(again[-1][1])))
    shutil.copytree(ROOT / "nbs", nbs)
    edits = []
    for i in range(a.repeats):
        _edit_05(nbs, i)
        edits.append(_run(store, *n, "--notebooks", *sorted(nbs.glob("[0-9][0-9]_*.ipynb"))))
    rows.append(("edit one cell of 05, re-run", [t for t, _ in edits], _steps(edits[-1][1])))
    print(f"\nthe loop on the embedded sample ({os.cpu_count()} cores), each `sixstack run` a process of its own, "
          f"medians of {a.repeats} (steps 00-08: R ran, . reused)\n")
    print(pd.DataFrame([{"loop": k, "median_s": round(statistics.median(v), 1), "runs_s": " ".join(f"{x:.1f}" for x in v),
                         "steps": s} for k, v, s in rows]).to_markdown(index=False))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="default")
    ap.add_argument("--sizes", type=int, nargs="+", default=[2320, 23200])
    ap.add_argument("--loop", action="store_true", help="time the iteration loop (cold fast run, unchanged re-run, edit 05)")
    ap.add_argument("--n-train", type=int, default=18524, help="--loop: rows of the cold fast-profile runs")
    ap.add_argument("--default-n-train", type=int, default=2320, help="--loop: rows of the default-profile loop")
    ap.add_argument("--repeats", type=int, default=3, help="--loop: runs of each loop (their median is reported)")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sixstack-train-time-"))
    if a.loop: return loop(a, tmp)
    os.environ.update(MLFLOW_TRACKING_URI=f"sqlite:///{tmp}/mlflow.db", SIXSTACK_REPORTS_DIR=str(tmp / "reports"), SIXSTACK_DATA_DIR=str(tmp / "data"),
                      SIXSTACK_SPOOL=str(tmp / "spool.jsonl"), SIXSTACK_OPTUNA_STORAGE=f"sqlite:///{tmp}/optuna.db", SIXSTACK_HOME=str(ROOT))
    from sixstack.config import get_settings
    from sixstack.data.tables import ID, LABEL, make_frame
    from sixstack.tracking.pipeline import run_pipeline
    settings, rows, totals = get_settings(), [], {}
    for n in a.sizes:
        d = tmp / f"n{n}"; d.mkdir()
        full = make_frame(n + 2000, seed=7)
        train, test = full.iloc[:n], full.iloc[n:]
        train.to_csv(d / "train.csv", index=False); test.drop(columns=LABEL).to_csv(d / "test.csv", index=False)
        make_frame(2900, seed=8, introvert_share=0.49, missing_rate=0.02, label_noise=0.01).drop(columns=ID).to_csv(d / "external.csv", index=False)
        t = time.perf_counter()
        res = run_pipeline({"train_path": str(d / "train.csv"), "test_path": str(d / "test.csv"), "external_path": str(d / "external.csv"),
                            "profile": a.profile, "submission_path": str(d / "submission.csv")}, settings=settings)
        total = time.perf_counter() - t
        if res.status != "FINISHED": sys.exit(f"pipeline failed at {n} rows: {[s.error for s in res.steps if s.error]}")
        sub = pd.read_csv(d / "submission.csv")
        acc = float((sub[LABEL].to_numpy() == test[LABEL].to_numpy()).mean())
        cb_acc, cb_s = catboost_holdout(train, test, test[LABEL].to_numpy())
        totals[n] = total
        rows.append({"rows": n} | {s.name: round(s.wall_time, 1) for s in res.steps} | {"total_s": round(total, 1), "held_out_acc": round(acc, 4),
                    "catboost_acc": round(cb_acc, 4), "catboost_fit_s": round(cb_s, 1)})
        print(rows[-1], file=sys.stderr)
    t = pd.DataFrame(rows).set_index("rows").T
    print(f"\nwall time per stage, seconds (profile {a.profile}, {os.cpu_count()} cores; each stage includes its kernel start and inline examples)\n")
    print(t.to_markdown())
    n0 = a.sizes[0]
    print(f"\nvs the original six-stack pipeline on 2,320 rows (32 min = {ORIGINAL_SECONDS} s, not re-run here): "
          f"{ORIGINAL_SECONDS / totals[n0]:.1f}x faster at {n0} rows")
    for n in a.sizes[1:]: print(f"{n / n0:.0f}x the rows cost {totals[n] / totals[n0]:.1f}x the time")


if __name__ == "__main__":
    main()
