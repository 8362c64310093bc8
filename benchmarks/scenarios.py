"""Monitoring on scenarios with known truth: estimated vs realized accuracy, detection and false alarms.

A quick ensemble (stacks C and E, fast settings) is trained on one table of the sample generator; its held-out
rows become the reference profile, as 05 makes it (true labels kept). Windows of `--window` rows are then drawn
from the rest of the same table, `--seeds` times per scenario, and judged label-free, as production sees them:

- no change: rows as they come;
- covariate shift, harmless: rows the model is sure about (P < 0.1 or > 0.9) drawn four times as often;
- covariate shift, harmful: rows the model is unsure about (0.2 < P < 0.8) drawn ten times as often;
- concept drift: rows as they come, but the true class flipped where Time_spent_Alone >= 8 (features unchanged);
- marginals kept: each feature column shuffled on its own (no true class exists for such rows).

Printed per scenario: the realized and the estimated accuracy (means over windows) and their mean absolute error,
the share of windows raising any alert, the share per alert kind, and the time per window (one monitoring pass).

    .venv/bin/python benchmarks/scenarios.py [--seeds 40] [--window 500]
"""
import argparse
import time

import numpy as np
import pandas as pd


def _windows(name, pool, p, truth, n, rng):
    "One window of scenario `name`: its rows and their true classes (None where no true class exists)."
    from sixstack.data.tables import CLASSES
    from sixstack.monitoring.multivariate import shuffle_columns
    w = np.ones(len(pool))
    if name == "covariate shift, harmless": w = np.where((p < 0.1) | (p > 0.9), 4.0, 1.0)
    if name == "covariate shift, harmful": w = np.where((p > 0.2) & (p < 0.8), 10.0, 1.0)
    i = rng.choice(len(pool), n, replace=False, p=w / w.sum())
    rows, t = pool.iloc[i].reset_index(drop=True), truth[i]
    if name == "concept drift":
        flip = rows["Time_spent_Alone"].fillna(0).to_numpy() >= 8
        t = np.where(flip, np.where(t == CLASSES[1], CLASSES[0], CLASSES[1]), t)
    if name == "marginals kept": rows, t = shuffle_columns(rows, seed=int(rng.integers(1 << 30))), None
    return rows, t


def run(seeds, window):
    from sixstack.data.tables import FEATURES, LABEL, make_frame
    from sixstack.monitoring.monitor import Thresholds, evaluate, reference_profile
    from sixstack.training.ensemble import quick_ensemble
    table = make_frame(16_000, seed=0)
    train, hold, pool = table.iloc[:4000], table.iloc[4000:6000], table.iloc[6000:].reset_index(drop=True)
    ens, oof = quick_ensemble(train, ("C", "E"))
    ref = reference_profile(train, np.full(len(train), np.nan), ens.threshold, hold, ens.predict_proba(hold[FEATURES]))
    out = ens.predict_frame(pool[FEATURES]); p_pool = out["probability"].to_numpy()
    truth_pool = pool[LABEL].to_numpy()
    no_errors = pd.DataFrame({"ts": [], "status": []})
    rows = []
    for name in ["no change", "covariate shift, harmless", "covariate shift, harmful", "concept drift", "marginals kept"]:
        rng = np.random.default_rng(1)
        for s in range(seeds):
            X, truth = _windows(name, pool, p_pool, truth_pool, window, rng)
            o = ens.predict_frame(X[FEATURES])
            df = X[FEATURES].assign(label=o["label"].to_numpy(), probability=o["probability"].to_numpy(),
                                    request=np.arange(len(X)).astype(str), latency_ms=1.0)
            t0 = time.perf_counter(); res = evaluate(df, no_errors, ref, None, Thresholds()); dt = time.perf_counter() - t0
            realized = float((df["label"].to_numpy() == truth).mean()) if truth is not None else np.nan
            rows.append({"scenario": name, "realized": realized, "estimated": res.summary.get("window_estimated_accuracy"),
                         "kinds": {a["kind"] for a in res.alerts}, "s": dt})
    return pd.DataFrame(rows)


def table(r):
    "The per-scenario summary."
    kinds = sorted(set().union(*r["kinds"]))
    g = r.groupby("scenario", sort=False)
    t = pd.DataFrame({
        "realized acc": g["realized"].mean(), "estimated acc": g["estimated"].mean(),
        "MAE": g.apply(lambda d: (d["estimated"] - d["realized"]).abs().mean(), include_groups=False),
        "windows alerted": g["kinds"].apply(lambda k: np.mean([bool(x) for x in k])),
        **{k: g["kinds"].apply(lambda x, k=k: np.mean([k in y for y in x])) for k in kinds},
        "s per window": g["s"].median(),
    })
    return t


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=40, help="windows per scenario")
    ap.add_argument("--window", type=int, default=500, help="rows per window")
    a = ap.parse_args()
    t0 = time.perf_counter(); r = run(a.seeds, a.window)
    print(f"{a.seeds} windows of {a.window} rows per scenario, judged without labels ({time.perf_counter() - t0:.0f} s):")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table(r).round(3).to_string())
