"""What an explanation costs, per record, in process: exact Shapley values (`sixstack.training.explain`) of a
two-stack ensemble and of a distilled LightGBM student, against the student's own TreeSHAP (`pred_contrib`).

TreeSHAP is exact for one tree model only — in log-odds, path-dependent, and over the model's engineered columns —
so it is the baseline for speed, not an explanation of the served ensemble.

    .venv/bin/python benchmarks/explain.py [--rows 3000] [--n 50]
"""
import argparse
import os
import statistics
import time

import numpy as np

from sixstack.data.tables import FEATURES, make_frame
from sixstack.training.budget import distill
from sixstack.training.ensemble import nested_predictions, quick_ensemble
from sixstack.training.explain import background_rows, explain


def timed(f, n):
    "Median and p99 milliseconds of `n` calls (after 3 warm-up calls)."
    for _ in range(3): f()
    ts = []
    for _ in range(n): t = time.perf_counter(); f(); ts.append(1000 * (time.perf_counter() - t))
    return statistics.median(ts), float(np.percentile(ts, 99))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=3000); ap.add_argument("--n", type=int, default=50)
    a = ap.parse_args()
    rows = make_frame(a.rows, seed=5); X = rows[FEATURES]
    ens, oof = quick_ensemble(rows, ("C", "E"))
    from sixstack.training.features import encode_labels
    student = distill(X, nested_predictions(oof.to_numpy(), encode_labels(rows["Personality"]), ens.method, 3))
    student.background = background_rows(rows)
    recs = [X.iloc[i:i + 1] for i in range(a.n)]
    it = iter(range(10**9)); one = lambda: recs[next(it) % len(recs)]
    contrib = lambda r: student.booster.predict(student.features.matrix(student._columns(r)), pred_contrib=True)
    out = [("ensemble (stacks C, E): exact Shapley, 16 background rows", timed(lambda: explain(ens, one()), a.n)),
           ("ensemble: one prediction", timed(lambda: ens.predict_proba(one()), a.n)),
           ("student (LightGBM): exact Shapley, 16 background rows", timed(lambda: explain(student, one()), a.n)),
           ("student: TreeSHAP (booster pred_contrib)", timed(lambda: contrib(one()), a.n)),
           ("student: one prediction", timed(lambda: student.predict_proba(one()), a.n))]
    print(f"\nexplanation cost per record, {os.cpu_count()} cores, {a.n} records, {len(FEATURES)} features\n")
    print("| method | p50 ms | p99 ms |\n|---|---|---|")
    for name, (p50, p99) in out: print(f"| {name} | {p50:.2f} | {p99:.2f} |")
    print(f"\nTreeSHAP attributes the student's {contrib(recs[0]).shape[1] - 1} engineered columns (log-odds), not the "
          f"{len(FEATURES)} answers a person gave (P); the Shapley values attribute the answers, for any model.")


if __name__ == "__main__":
    main()
