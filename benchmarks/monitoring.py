"""Monitoring on scenarios with known truth, ours next to NannyML's (the anchor): estimation error, detection,
false alarms, time per window.

A quick ensemble (stacks C and E, fast settings) is trained on 4,000 rows of one table of the sample generator;
its next 2,000 held-out rows become the reference profile, as 05 makes it (true classes kept). Windows of
`--window` rows are drawn from the other rows of the same table, `--seeds` per scenario
(`sixstack.monitoring.scenarios.SCENARIOS`), and judged without their labels: by `sixstack.monitoring` (every
registered rule), and — the same windows, the same reference — by NannyML's CBPE (estimated accuracy and its
alert) and its domain-classifier multivariate drift, in their own virtualenv (`make .venv-nannyml`; skipped with
a note when it is missing, or with `--no-anchor`).

    .venv/bin/python benchmarks/monitoring.py [--seeds 20] [--window 500] [--no-anchor]
"""
import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
ANCHOR_PY = ROOT / ".venv-nannyml" / "bin" / "python"


def windows(seeds, size):
    "The model, its reference, and every scenario's windows (rows, true classes, the model's outputs)."
    from sixstack.data.tables import FEATURES, make_frame
    from sixstack.monitoring.monitor import reference_profile
    from sixstack.monitoring.scenarios import SCENARIOS, scenario_window
    from sixstack.training.ensemble import quick_ensemble
    table = make_frame(16_000, seed=0)
    train, hold, pool = table.iloc[:4000], table.iloc[4000:6000], table.iloc[6000:].reset_index(drop=True)
    ens, _ = quick_ensemble(train, ("C", "E"))
    ref = reference_profile(train, np.full(len(train), np.nan), ens.threshold, hold, ens.predict_proba(hold[FEATURES]))
    p = ens.predict_frame(pool[FEATURES])["probability"].to_numpy()
    out = []
    for name in SCENARIOS:
        rng = np.random.default_rng(1)
        out += [(name, i, *scenario_window(name, pool, p, size, rng)) for i in range(seeds)]
    return ens, ref, hold, out


def ours(ens, ref, wins):
    "Each window judged by sixstack's rules."
    from sixstack.monitoring.scenarios import judge_window
    return pd.DataFrame([{"scenario": s, "window": i} | judge_window(ens, x, t, ref) for s, i, x, t in wins])


def anchor(ens, hold, wins):
    "Each window judged by NannyML (CBPE, domain classifier) in its own virtualenv; None when it is not installed."
    from sixstack.data.tables import CLASSES, FEATURES, LABEL
    if not ANCHOR_PY.exists(): return None
    pos = lambda labels: (np.asarray(labels) == CLASSES[1]).astype(int)
    def frame(x, truth):
        o = ens.predict_frame(x[FEATURES])
        return x[FEATURES].assign(probability=o["probability"].to_numpy(), pred=pos(o["label"]),
                                  truth=pos(truth) if truth is not None else 0)
    with tempfile.TemporaryDirectory() as d:
        frame(hold, hold[LABEL]).to_parquet(f"{d}/ref.parquet")
        pd.concat([frame(x, t).assign(scenario=s, window=i) for s, i, x, t in wins]).to_parquet(f"{d}/win.parquet")
        done = subprocess.run([str(ANCHOR_PY), str(ROOT / "benchmarks" / "anchor_nannyml.py"), f"{d}/ref.parquet",
                               f"{d}/win.parquet", f"{d}/out.json"], env=os.environ | {"NML_DISABLE_USAGE_LOGGING": "1"},
                              capture_output=True, text=True)  # NannyML and LightGBM are chatty: shown only on failure
        if done.returncode: raise RuntimeError(f"NannyML's side failed:\n{done.stderr[-3000:]}")
        return pd.DataFrame(json.loads(Path(f"{d}/out.json").read_text()))


def side_by_side(mine, theirs):
    "Per scenario: estimation error, share of windows alerted, time per window — ours, then NannyML's."
    from sixstack.monitoring.scenarios import scenario_table
    t = scenario_table(mine)[["realized acc", "estimated acc", "MAE", "any alert", "s per window"]]
    t.columns = ["realized acc", "ours: est. acc", "ours: MAE", "ours: alerted", "ours: s/window"]
    if theirs is None: return t
    m = theirs.merge(mine[["scenario", "window", "realized"]].assign(window=mine.groupby("scenario").cumcount()),
                     on=["scenario", "window"])
    g = m.groupby("scenario", sort=False)
    return t.join(pd.DataFrame({
        "NannyML: est. acc": g["estimated"].mean(),
        "NannyML: MAE": g.apply(lambda d: (d["estimated"] - d["realized"]).abs().mean(), include_groups=False),
        "NannyML: CBPE alerted": g["cbpe_alert"].mean(), "NannyML: domain alerted": g["domain_alert"].mean(),
        "NannyML: s/window": g["s_cbpe"].median() + g["s_domain"].median(),
    }))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=20, help="windows per scenario")
    ap.add_argument("--window", type=int, default=500, help="rows per window")
    ap.add_argument("--no-anchor", action="store_true", help="only ours (no NannyML)")
    a = ap.parse_args()
    t0 = time.perf_counter(); ens, ref, hold, wins = windows(a.seeds, a.window); mine = ours(ens, ref, wins)
    theirs = None if a.no_anchor else anchor(ens, hold, wins)  # the same windows, the same reference rows
    print(f"{a.seeds} windows of {a.window} rows per scenario, judged without labels ({time.perf_counter() - t0:.0f} s"
          " in all; s/window: ours = every registered rule, NannyML's = CBPE + domain classifier)"
          + ("" if theirs is not None or a.no_anchor else "; NannyML not installed: `make .venv-nannyml` adds it"))
    with pd.option_context("display.width", 250, "display.max_columns", 20):
        print(side_by_side(mine, theirs).round(3).to_string())
        from sixstack.monitoring.scenarios import scenario_table
        print("\nours, share of windows per alert kind:")
        print(scenario_table(mine).drop(columns=["windows", "realized acc", "estimated acc", "MAE", "s per window"]).round(3).to_string())
