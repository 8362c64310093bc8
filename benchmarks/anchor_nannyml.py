"""NannyML's side of `benchmarks/monitoring.py`: CBPE and its domain-classifier drift on the same windows.

Runs in its own virtualenv (`make .venv-nannyml`: NannyML's pins clash with ours). Reads the reference and the
windows `monitoring.py` wrote (Parquet: features, `probability`, `pred`, `truth`, and `scenario`/`window` for the
windows), writes per window: NannyML's estimated accuracy, whether CBPE or the domain classifier alerted, and the
seconds each took per window.

    .venv-nannyml/bin/python benchmarks/anchor_nannyml.py REFERENCE.parquet WINDOWS.parquet OUT.json
"""
import json
import os
import sys
import time

os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")  # NannyML reports usage to a web service unless told not to

import nannyml as nml  # noqa: E402
import pandas as pd  # noqa: E402


def main(ref_path, win_path, out_path):
    ref, win = pd.read_parquet(ref_path).reset_index(drop=True), pd.read_parquet(win_path).reset_index(drop=True)
    feats = [c for c in ref.columns if c not in ("probability", "pred", "truth")]
    size = int(win.groupby(["scenario", "window"]).size().iloc[0])
    cbpe = nml.CBPE(y_pred_proba="probability", y_pred="pred", y_true="truth", problem_type="classification_binary",
                    metrics=["accuracy"], chunk_size=size)
    dc = nml.DomainClassifierCalculator(feature_column_names=feats, chunk_size=size)
    cbpe.fit(ref); dc.fit(ref)
    out = []
    for name, w in win.groupby("scenario", sort=False):
        w = w.sort_values(["window"], kind="stable").reset_index(drop=True)
        t0 = time.perf_counter(); est = cbpe.estimate(w.drop(columns=["truth"])).filter(period="analysis").to_df()
        t1 = time.perf_counter(); drift = dc.calculate(w[feats]).filter(period="analysis").to_df()
        t2 = time.perf_counter(); n = len(est)
        for i in range(n):
            out.append({"scenario": name, "window": i, "estimated": float(est[("accuracy", "value")].iloc[i]),
                        "cbpe_alert": bool(est[("accuracy", "alert")].iloc[i]),
                        "domain_alert": bool(drift[("domain_classifier_auroc", "alert")].iloc[i]),
                        "s_cbpe": (t1 - t0) / n, "s_domain": (t2 - t1) / n})
    with open(out_path, "w") as f: json.dump(out, f)


if __name__ == "__main__":
    main(*sys.argv[1:4])
