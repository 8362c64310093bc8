"""What the prediction log costs: in-process write latency, and end-to-end p50 of a server with and without the log.

1. `PredictionLog.write` of one record into a fresh SQLite file (WAL): sequential p50/p99, and 8 threads at once
   (group commits: writes per commit, throughput).
2. Two real servers of the same registered model, one logging (`--monitor-db`), one not (`--no-log`); single-record
   requests alternate between them so machine noise hits both alike; reported: p50 of each and the median paired
   difference.

    .venv/bin/python benchmarks/predlog.py --tracking-uri sqlite:////abs/mlflow.db [--model-name six_stack_ensemble] [--n 400]
"""
import argparse
import json
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]

from sixstack.data.tables import FEATURES, make_frame  # noqa: E402
from sixstack.serving.predlog import PredictionLog, prediction_rows  # noqa: E402
from sixstack.serving.service import start_service  # noqa: E402


def in_process(n):
    "Sequential and concurrent write latency of the log (µs)."
    X = make_frame(1, seed=0)[FEATURES]
    out = pd.DataFrame({"label": ["Introvert"], "probability": [0.9]})
    with tempfile.TemporaryDirectory() as d:
        log = PredictionLog(f"sqlite:///{d}/bench.db")
        lat = []
        for i in range(n):
            rows = prediction_rows(f"s{i}", X, out, "1", "predict", 1.0)
            t = time.perf_counter(); log.write(log.pred_table, rows); lat.append(time.perf_counter() - t)
        c0, t0, per = log.commits, time.perf_counter(), []
        def worker(k):
            for i in range(n // 8):
                rows = prediction_rows(f"c{k}-{i}", X, out, "1", "predict", 1.0)
                t = time.perf_counter(); log.write(log.pred_table, rows); per.append(time.perf_counter() - t)
        ts = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
        for t in ts: t.start()
        for t in ts: t.join()
        wall, commits = time.perf_counter() - t0, log.commits - c0
    return {"sequential p50 µs": 1e6 * np.median(lat), "sequential p99 µs": 1e6 * np.percentile(lat, 99),
            "8 threads p50 µs": 1e6 * np.median(per), "8 threads writes/s": len(per) / wall, "8 threads writes per commit": len(per) / commits}


def end_to_end(tracking_uri, name, n):
    "Alternating single-record requests to a logging and a non-logging server."
    env = os.environ | {"MLFLOW_TRACKING_URI": tracking_uri, "MLFLOW_DISABLE_TELEMETRY": "true"}
    tmp = tempfile.mkdtemp()
    procs, urls = [], {}
    for kind, extra in [("log", ["--monitor-db", f"sqlite:///{tmp}/bench.db"]), ("no log", ["--no-log"])]:
        proc, urls[kind] = start_service(tracking_uri, name, args=extra, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(proc)
    bodies = json.loads(make_frame(n, seed=5)[FEATURES].to_json(orient="records"))
    lat = {k: [] for k in urls}
    try:
        with httpx.Client(timeout=30) as c:
            for b in bodies[:10]:
                for u in urls.values(): c.post(u + "/predict", json=b)
            for i, b in enumerate(bodies):
                order = list(urls) if i % 2 else list(urls)[::-1]
                for k in order:
                    t = time.perf_counter(); r = c.post(urls[k] + "/predict", json=b); lat[k].append(time.perf_counter() - t)
                    assert r.status_code == 200, r.text
    finally:
        for p in procs: p.terminate(); p.wait(10)
    a, b = np.array(lat["log"]) * 1000, np.array(lat["no log"]) * 1000
    return {"p50 ms with log": np.median(a), "p50 ms without log": np.median(b), "median paired difference ms": np.median(a - b),
            "p99 ms with log": np.percentile(a, 99), "p99 ms without log": np.percentile(b, 99)}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tracking-uri", help="store with a production version (default: skip the end-to-end part)")
    p.add_argument("--model-name", default="six_stack_ensemble"); p.add_argument("--n", type=int, default=400)
    a = p.parse_args()
    rows = in_process(2000)
    if a.tracking_uri: rows |= end_to_end(a.tracking_uri, a.model_name, a.n)
    print("| measure | value |\n|---|---|")
    for k, v in rows.items(): print(f"| {k} | {v:,.2f} |")


if __name__ == "__main__":
    main()
