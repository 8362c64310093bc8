"""Our REST service vs `mlflow models serve` on the same registered model, same machine, same client.

Measures single-record requests (sequential keep-alive client: throughput, p50, p99; also with `?explain=true`), one 10,000-row batch request,
the same two as MLflow's CSV (`text/csv` on /invocations, both servers) and as the Open Inference Protocol v2
(ours only: JSON single records, a binary-tensor batch), and 32 concurrent clients for 30 s against our service (errors, p99, throughput). Our service runs with the prediction
log on (as deployed) and, for comparison, with --no-log. Without --tracking-uri it first
builds a registered model with the pipeline's fast profile (all six stacks) in a temporary store.

    .venv/bin/python benchmarks/serving.py [--tracking-uri sqlite:////abs/mlflow.db] [--model-name six_stack_ensemble] [--n 300]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def wait(url, proc, path="/ping", timeout=300):
    t = time.time()
    while time.time() - t < timeout:
        if proc.poll() is not None: sys.exit(f"server exited early ({proc.args[:3]})")
        try:
            if httpx.get(url + path, timeout=2).status_code == 200: return
        except httpx.HTTPError: pass
        time.sleep(0.2)
    sys.exit(f"server at {url} not ready after {timeout}s")


def _post(c, url, b):
    "POST a JSON body, CSV bytes as `text/csv`, or (bytes, headers)."
    if isinstance(b, tuple): return c.post(url, content=b[0], headers=b[1])
    if isinstance(b, bytes): return c.post(url, content=b, headers={"content-type": "text/csv"})
    return c.post(url, json=b)


def singles(url, path, bodies):
    "Sequential single-record requests: (throughput, p50 ms, p99 ms)."
    lat = []
    with httpx.Client(timeout=30) as c:
        for b in bodies[:5]: _post(c, url + path, b)  # warm-up
        t0 = time.perf_counter()
        for b in bodies:
            t = time.perf_counter(); r = _post(c, url + path, b); lat.append(time.perf_counter() - t)
            if r.status_code != 200: sys.exit(f"{url}{path}: {r.status_code} {r.text[:200]}")
        total = time.perf_counter() - t0
    return len(bodies) / total, 1000 * np.percentile(lat, 50), 1000 * np.percentile(lat, 99)


def batch(url, path, body, repeats=5):
    "Median seconds of one big request."
    ts = []
    with httpx.Client(timeout=300) as c:
        for _ in range(repeats):
            t = time.perf_counter(); r = _post(c, url + path, body); ts.append(time.perf_counter() - t)
            if r.status_code != 200: sys.exit(f"{url}{path} batch: {r.status_code} {r.text[:200]}")
    return statistics.median(ts)


def load(url, body, clients=32, seconds=30):
    "Concurrent clients for a while: (requests, errors, p99 ms, throughput)."
    lat, errors, stop = [], [], time.time() + seconds
    def run():
        with httpx.Client(timeout=30) as c:
            while time.time() < stop:
                t = time.perf_counter()
                try: ok = c.post(url + "/predict", json=body).status_code == 200
                except httpx.HTTPError: ok = False
                lat.append(time.perf_counter() - t)
                if not ok: errors.append(1)
    ts = [threading.Thread(target=run) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in ts: t.start()
    for t in ts: t.join()
    return len(lat), len(errors), 1000 * np.percentile(lat, 99), len(lat) / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tracking-uri"); ap.add_argument("--model-name", default="six_stack_ensemble")
    ap.add_argument("--n", type=int, default=300, help="single-record requests per server")
    ap.add_argument("--load-seconds", type=int, default=30)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sixstack-serving-bench-"))
    env = os.environ | {"MLFLOW_DISABLE_TELEMETRY": "true", "SIXSTACK_HOME": str(ROOT), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    if not a.tracking_uri:
        a.tracking_uri = f"sqlite:///{tmp}/mlflow.db"
        env |= {"MLFLOW_TRACKING_URI": a.tracking_uri, "SIXSTACK_REPORTS_DIR": str(tmp / "reports"), "SIXSTACK_DATA_DIR": str(tmp / "data"),
                "SIXSTACK_SPOOL": str(tmp / "spool.jsonl"), "SIXSTACK_OPTUNA_STORAGE": f"sqlite:///{tmp}/optuna.db", "MODEL_REGISTRY_NAME": a.model_name}
        print("building a registered model (fast profile, all six stacks) ...", file=sys.stderr)
        nbs = [str(ROOT / "nbs" / n) for n in ("00_data_validation.ipynb", "02_preprocessing.ipynb", "03_augmentation.ipynb",
                                               "04_model_stacks.ipynb", "05_ensemble.ipynb", "06_model_registry.ipynb")]
        r = subprocess.run([str(Path(sys.executable).with_name("sixstack")), "run", "--profile", "fast", "--n-train", "3000", "--notebooks", *nbs],
                           env=env, capture_output=True, text=True)
        if r.returncode: sys.exit(r.stdout[-2000:] + r.stderr[-2000:])
    env["MLFLOW_TRACKING_URI"] = a.tracking_uri
    from sixstack.data.tables import FEATURES, make_frame
    rows = make_frame(max(a.n, 10_000), seed=99)[FEATURES]
    recs = json.loads(rows.to_json(orient="records"))
    from sixstack.serving.service import start_service
    from sixstack.deploy.stack import free_port
    theirs = free_port()
    p1, u1 = start_service(a.tracking_uri, a.model_name, monitor_db=f"sqlite:///{tmp}/bench-log.db", env=env)  # the prediction log on, as deployed
    p3, u3 = start_service(a.tracking_uri, a.model_name, args=["--no-log"], env=env)  # what the log costs, side by side
    p2 = subprocess.Popen([str(Path(sys.executable).with_name("mlflow")), "models", "serve", "-m", f"models:/{a.model_name}@production",
                           "--env-manager", "local", "-p", str(theirs), "-h", "127.0.0.1", "-w", "1"], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        u2 = f"http://127.0.0.1:{theirs}"
        wait(u2, p2, "/ping")
        s1 = singles(u1, "/predict", recs[:a.n])
        s2 = singles(u2, "/invocations", [{"dataframe_records": [r]} for r in recs[:a.n]])
        s3 = singles(u3, "/predict", recs[:a.n])
        e1, e3 = singles(u1, "/predict?explain=true", recs[:a.n]), singles(u3, "/predict?explain=true", recs[:a.n])
        b1 = batch(u1, "/predict/batch", {"records": recs[:10_000]})
        b2 = batch(u2, "/invocations", {"dataframe_records": recs[:10_000]})
        b3 = batch(u3, "/predict/batch", {"records": recs[:10_000]})
        one_csv = [rows.iloc[i:i + 1].to_csv(index=False).encode() for i in range(a.n)]
        c1, c2 = singles(u1, "/invocations", one_csv), singles(u2, "/invocations", one_csv)
        big_csv = rows.iloc[:10_000].to_csv(index=False).encode()
        cb1, cb2 = batch(u1, "/invocations", big_csv), batch(u2, "/invocations", big_csv)
        from sixstack.serving.oip import infer_request
        v2 = f"/v2/models/{a.model_name}/infer"
        o1 = singles(u1, v2, [infer_request(rows.iloc[i:i + 1], False) for i in range(a.n)])
        ob1, ob3 = batch(u1, v2, infer_request(rows.iloc[:10_000], True)), batch(u3, v2, infer_request(rows.iloc[:10_000], True))
        n, errs, p99, thr = load(u1, recs[0], 32, a.load_seconds)
    finally:
        for p in (p1, p2, p3): p.terminate(); p.wait(20)
    print(f"\nserving benchmark, one run, {os.cpu_count()} cores, model {a.model_name}@production\n")
    print("| measure | sixstack serve | mlflow models serve | ratio | sixstack serve --no-log |\n|---|---|---|---|---|")
    print(f"| single-record throughput (req/s, sequential) | {s1[0]:.1f} | {s2[0]:.1f} | {s1[0] / s2[0]:.2f}x | {s3[0]:.1f} |")
    print(f"| single-record p50 (ms) | {s1[1]:.1f} | {s2[1]:.1f} | | {s3[1]:.1f} |")
    print(f"| single-record p99 (ms) | {s1[2]:.1f} | {s2[2]:.1f} | | {s3[2]:.1f} |")
    print(f"| single-record with ?explain=true: p50 / p99 (ms) | {e1[1]:.1f} / {e1[2]:.1f} | (no explain) | | {e3[1]:.1f} / {e3[2]:.1f} |")
    print(f"| 10,000-row batch (ms, median of 5) | {1000 * b1:.0f} | {1000 * b2:.0f} | {b2 / b1:.2f}x | {1000 * b3:.0f} |")
    print(f"| CSV on /invocations: single-record p50 (ms) | {c1[1]:.1f} | {c2[1]:.1f} | {c2[1] / c1[1]:.2f}x | |")
    print(f"| CSV on /invocations: 10,000-row batch (ms, median of 5) | {1000 * cb1:.0f} | {1000 * cb2:.0f} | {cb2 / cb1:.2f}x | |")
    print(f"| Open Inference Protocol v2 (JSON): single-record p50 (ms) | {o1[1]:.1f} | (no v2) | | |")
    print(f"| v2 binary tensors: 10,000-row batch (ms, median of 5; vs their JSON batch) | {1000 * ob1:.0f} | {1000 * b2:.0f} | {b2 / ob1:.2f}x | {1000 * ob3:.0f} |")
    print(f"| 32 clients x {a.load_seconds}s: requests / errors / p99 ms / req/s | {n} / {errs} / {p99:.0f} / {thr:.1f} | | | |")


if __name__ == "__main__":
    main()
