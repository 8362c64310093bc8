"""sixstack on a table that is not the personality data: scikit-learn's bundled breast-cancer table (569 rows, 30 numeric
features) under its own data contract, end to end with `sixstack run --contract`, against two baselines on the same rows.

    .venv/bin/python benchmarks/other_table.py [--profile fast] [--repeats 1]

Prints the pipeline's wall time and, on the rows 00 held out (never trained on) and on the 114 labelled test rows, the
accuracy and log-loss of the served model next to a default LightGBM and a scaled logistic regression fitted on the
same training split. Every store is temporary.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def run(folder:Path, profile:str) -> tuple[float, dict, Path]:
    "One `sixstack run --contract` in its own stores; returns (wall seconds, environment, reports folder)."
    from test_contract import cancer_files
    p = cancer_files(folder / "data")
    env = os.environ | {"MLFLOW_TRACKING_URI": f"sqlite:///{folder}/m.db", "SIXSTACK_REPORTS_DIR": str(folder / "reports"),
                        "SIXSTACK_DATA_DIR": str(folder / "d"), "SIXSTACK_SPOOL": str(folder / "spool.jsonl"),
                        "SIXSTACK_OPTUNA_STORAGE": f"sqlite:///{folder}/o.db", "SIXSTACK_HOME": str(ROOT),
                        "MODEL_REGISTRY_NAME": "other_table"}
    t = time.perf_counter()
    r = subprocess.run([str(Path(sys.executable).with_name("sixstack")), "run", "--contract", str(p["contract"]),
                        "--train", str(p["train"]), "--test", str(p["test"]), "--profile", profile],
                       env=env, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t
    if r.returncode: sys.exit(f"sixstack run failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return wall, env, folder / "reports"


def scores(y:np.ndarray, p:np.ndarray, threshold:float=0.5) -> tuple[float, float]:
    from sklearn.metrics import log_loss
    return float(((p > threshold) == y).mean()), float(log_loss(y, np.clip(p, 1e-6, 1 - 1e-6), labels=[0, 1]))


def compare(env:dict, folder:Path) -> pd.DataFrame:
    "Accuracy and log-loss of the production model and two baselines on the held-out rows and the labelled test rows."
    from lightgbm import LGBMClassifier
    from sklearn.datasets import load_breast_cancer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sixstack.config import get_settings
    from sixstack.tracking.models import load_model
    handoff = json.loads(next((folder / "reports").rglob("00_data_validation/handoff.json")).read_text())
    fit, hold = pd.read_csv(handoff["train_path"]), pd.read_csv(handoff["holdout_path"])
    bc = load_breast_cancer(as_frame=True).frame
    bc = bc.assign(diagnosis=np.where(bc.pop("target") == 0, "malignant", "benign"))
    bc.insert(0, "id", range(len(bc)))
    test = bc.sample(frac=1, random_state=0).reset_index(drop=True).iloc[455:]
    feats = [c for c in fit.columns if c not in ("id", "diagnosis")]
    y = lambda d: (d["diagnosis"] == "malignant").to_numpy().astype(int)
    model = load_model("models:/other_table@production", get_settings(env))
    rows = []
    for name, proba in [
        ("sixstack (served model)", lambda d: model.predict(d[feats])["probability"].to_numpy()),
        ("LightGBM, defaults", lambda d, m=LGBMClassifier(verbose=-1, random_state=0).fit(fit[feats], y(fit)):
            m.predict_proba(d[feats])[:, 1]),
        ("logistic regression (scaled)", lambda d, m=make_pipeline(SimpleImputer(), StandardScaler(),
                                                                 LogisticRegression(max_iter=2000)).fit(fit[feats], y(fit)):
            m.predict_proba(d[feats])[:, 1]),
    ]:
        (ha, hl), (ta, tl) = scores(y(hold), proba(hold)), scores(y(test), proba(test))
        rows.append({"model": name, f"held-out accuracy ({len(hold)})": ha, "held-out log-loss": hl,
                     f"test accuracy ({len(test)})": ta, "test log-loss": tl})
    return pd.DataFrame(rows).set_index("model")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="fast", choices=["fast", "default", "full"])
    ap.add_argument("--repeats", type=int, default=1, help="pipeline runs (the wall time's median)")
    a = ap.parse_args()
    walls = []
    for i in range(a.repeats):
        folder = Path(tempfile.mkdtemp(prefix="sixstack-other-table-"))
        wall, env, _ = run(folder, a.profile); walls.append(wall)
        print(f"run {i + 1}: sixstack run --contract cancer.toml --profile {a.profile}: {wall:.1f} s", flush=True)
    table = compare(env, folder)
    print(f"\nwall time (median of {len(walls)}): {statistics.median(walls):.1f} s\n")
    print(table.round(4).to_string())


if __name__ == "__main__":
    main()
