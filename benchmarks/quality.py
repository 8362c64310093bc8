"""CV quality of each stack, the full ensemble and the served candidates against simple baselines, on the same folds.

Baselines: logistic regression (imputed, scaled), LightGBM with its defaults, CatBoost with its defaults.
Stacks are tuned as the pipeline does (the profile's trials on its tuning folds), then scored out-of-fold on the
benchmark's folds; the ensemble's score is the second-level (nested) CV of its combiner, as notebook 05 reports it.
The budgeted selection (within the profile's latency budget) and the distilled student are scored by the same
second-level CV as 05 scores them; their one-record latency is measured in process.

    .venv/bin/python benchmarks/quality.py [--data train.csv] [--external ext.csv] [--profile default] [--folds 5]
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def baselines(n_jobs):
    "fit_predict functions of the three baselines."
    from catboost import CatBoostClassifier
    from lightgbm import LGBMClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sixstack.training.features import FeaturePipeline
    plain = dict(engineered=(), indicators=False, match_p=False)
    models = {
        "baseline: logistic regression": lambda: make_pipeline(FeaturePipeline(**plain), StandardScaler(), LogisticRegression(max_iter=2000)),
        "baseline: LightGBM (defaults)": lambda: make_pipeline(FeaturePipeline(**plain, encoding="category"), LGBMClassifier(n_jobs=n_jobs, verbose=-1)),
        "baseline: CatBoost (defaults)": lambda: make_pipeline(FeaturePipeline(**plain, encoding="catboost"), CatBoostClassifier(
            cat_features=["Stage_fear", "Drained_after_socializing"], thread_count=n_jobs, verbose=0, allow_writing_files=False)),
    }
    return {k: (lambda make: lambda Xtr, ytr, Xva: make().fit(Xtr, ytr).predict_proba(Xva)[:, 1])(v) for k, v in models.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, help="Kaggle-layout training CSV (default: the embedded 18,524-row sample)")
    ap.add_argument("--external", type=Path, help="external reference table for match_p (default: the sample's, with the sample)")
    ap.add_argument("--profile", default="default")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--n-jobs", type=int, default=os.cpu_count())
    a = ap.parse_args()
    from threadpoolctl import threadpool_limits
    from sixstack.config import get_profile
    from sixstack.data.tables import LABEL, add_match_p, load_table, write_sample
    from sixstack.training.ensemble import nested_predictions
    from sixstack.training.features import Recipe, encode_labels, make_folds, oof_predict, scores
    from sixstack.training.stacks import STACKS, make_stack, stack_fit_predict
    from sixstack.training.tuning import best_params, tune_stack
    prof = get_profile(a.profile)
    if a.data is None:
        paths = write_sample(Path(tempfile.mkdtemp()) / "sample")
        a.data, a.external = paths["train"], a.external or paths["external"]
    ext = load_table(a.external) if a.external else None
    train = add_match_p(load_table(a.data), ext)
    y = encode_labels(train[LABEL])
    folds, tune_folds = make_folds(y, a.folds, a.seed), make_folds(y, prof["tune_folds"], a.seed)
    rows, oof, params = [], {}, {}
    recipe = Recipe(external=ext, n_jobs=a.n_jobs, seed=a.seed, prof=prof)  # no augmentation, default features, noise 0.05
    with threadpool_limits(a.n_jobs):
        for name, fp in baselines(a.n_jobs).items():
            t = time.perf_counter(); p = oof_predict(fp, train, y, folds)
            rows.append({"model": name} | scores(y, p) | {"seconds": time.perf_counter() - t}); print(rows[-1], file=sys.stderr)
        for s in STACKS:
            t = time.perf_counter()
            study = tune_stack(s, train, y, tune_folds, prof["n_trials"], recipe, timeout=prof["timeout"], progress=False)
            params[s] = best_params(study, s, prof["n_estimators"])
            oof[s] = oof_predict(stack_fit_predict(make_stack(s, params[s], recipe), recipe), train, y, folds)
            rows.append({"model": f"stack {s} (tuned)"} | scores(y, oof[s]) | {"seconds": time.perf_counter() - t}); print(rows[-1], file=sys.stderr)
    P = np.column_stack([oof[s] for s in STACKS])
    for method in ("blend", "meta"):
        rows.append({"model": f"ensemble ({method}, nested CV)"} | scores(y, nested_predictions(P, y, method, a.folds, a.seed + 1)) | {"seconds": float("nan")})
    from sixstack.training.budget import measure, train_served
    t0 = time.perf_counter()
    budget = prof["latency_budget_ms"] or 2.0
    with threadpool_limits(a.n_jobs):  # the served candidates, as 05 builds them (the same function, the same folds)
        cands = train_served(train, y, params, recipe, budget_ms=budget, n_folds=a.folds, progress=False).candidates
    names = {"budgeted selection": f"budgeted selection ({budget:g} ms, nested CV)", "distilled": "distilled (nested CV)",
             "full ensemble": "full ensemble (refit)"}
    for name, model, p in [(names[k], *cands[k]) for k in names]:
        m = measure(model, train, 200, 10_000)
        rows.append({"model": name} | scores(y, p, model.threshold) | {"seconds": float("nan"), "one_record_p50_ms": m["latency_p50_ms"]})
    print(f"served candidates built in {time.perf_counter() - t0:.0f}s", file=sys.stderr)
    t = pd.DataFrame(rows).drop(columns="roc_auc")
    best_base = t[t["model"].str.startswith("baseline")].sort_values("accuracy").iloc[-1]
    print(f"\nCV quality on {len(train)} rows ({a.data.name}), {a.folds} stratified folds (the same for every row), profile {a.profile}\n")
    print(t.to_markdown(index=False, floatfmt=".4f"))
    ens = t[t["model"].str.startswith("ensemble")].sort_values(["accuracy", "log_loss"], ascending=[False, True]).iloc[0]
    print(f"\nbest baseline: {best_base['model']} accuracy {best_base['accuracy']:.4f}, log-loss {best_base['log_loss']:.4f}")
    print(f"chosen ensemble: {ens['model']} accuracy {ens['accuracy']:.4f} ({ens['accuracy'] - best_base['accuracy']:+.4f}), "
          f"log-loss {ens['log_loss']:.4f} ({ens['log_loss'] - best_base['log_loss']:+.4f})")


if __name__ == "__main__":
    main()
