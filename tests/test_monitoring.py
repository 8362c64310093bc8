"Monitoring for real: a served ensemble logging to a SQLite file, SIGKILL, feedback, alerts to a webhook, Chromium, retraining."
import json
import os
import re
import signal
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, cli, start_server, train_model
from sixstack.data.tables import FEATURES, LABEL, make_frame
from sixstack.monitoring.monitor import Thresholds, evaluate, load_reference, shift_sample
from sixstack.monitoring.pages import CHARTS
from sixstack.serving.predlog import PredictionLog
from sixstack.tracking.mlops import MLOpsIntegration

NAME = "monitored_model"
FEEDBACK = {"Authorization": "Bearer test-feedback-token"}
DASHBOARD = "test-dashboard-token"


POOL_ROWS = 1400 + 50 * 500  # the world's table: 1,000 training rows, 400 held out, 50 windows of 500


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    "A store whose production version has a reference profile and a recorded training table."
    tmp = tmp_path_factory.mktemp("monitor")
    from sixstack.config import get_settings
    from sixstack.training.registry import promote, register
    settings = get_settings(tracking_uri=f"sqlite:///{tmp}/mlflow.db", spool_path=f"{tmp}/spool.jsonl", registry_name=NAME,
                            reports_dir=str(tmp / "reports"), data_dir=str(tmp / "data"), optuna_storage=f"sqlite:///{tmp}/optuna.db",
                            experiment_name="monitoring-tests")  # the experiment the CLI's retraining runs in (the gate vets production there)
    data = make_frame(POOL_ROWS, seed=31)  # one table: training rows, held-out rows, then same-population windows
    train, hold = data.iloc[:1000], data.iloc[1000:1400]
    train.to_csv(tmp / "train.csv", index=False); hold.to_csv(tmp / "holdout.csv", index=False)
    uri, ens = train_model(settings, train, holdout=hold, handoff={"train_path": str(tmp / "train.csv"), "holdout_path": str(tmp / "holdout.csv")})
    v = register(uri, settings, {"profile": "test", "cv_accuracy": ens.metrics["accuracy"]})
    assert promote(v, settings, tmp / "holdout.csv")["promoted"]
    env = {"MLFLOW_TRACKING_URI": settings.tracking_uri, "MODEL_REGISTRY_NAME": NAME, "SIXSTACK_REPORTS_DIR": str(settings.reports_dir),
           "SIXSTACK_DATA_DIR": str(settings.data_dir), "SIXSTACK_SPOOL": str(settings.spool_path), "SIXSTACK_OPTUNA_STORAGE": settings.optuna_storage,
           "MLFLOW_EXPERIMENT_NAME": "monitoring-tests"}
    return settings, tmp, hold, ens, env


def _send(url, rows, batch=25, feedback=None):
    "POST rows in batches; optional feedback labels; returns the request ids."
    ids = []
    for i in range(0, len(rows), batch):
        chunk = rows.iloc[i:i + batch]
        r = httpx.post(f"{url}/predict/batch", json={"records": json.loads(chunk[FEATURES].to_json(orient="records"))}, timeout=60)
        assert r.status_code == 200, r.text
        got = [p["request_id"] for p in r.json()["predictions"]]; ids += got
        if feedback is not None:
            fb = [{"request_id": rid, "label": lab} for rid, lab in zip(got, feedback.iloc[i:i + batch])]
            assert httpx.post(f"{url}/feedback", json={"feedback": fb}, headers=FEEDBACK, timeout=60).json()["updated"] == len(fb)
    return ids


def test_sigkill_keeps_every_answered_prediction(world, tmp_path):
    settings, _, hold, _, _ = world
    db = tmp_path / "killed.db"
    proc, url = start_server(settings, NAME, db)
    recs = json.loads(hold[FEATURES].head(50).to_json(orient="records"))
    received, stop = [], threading.Event()

    def client(k):
        with httpx.Client(timeout=10) as c:
            i = k
            while not stop.is_set():
                try: r = c.post(f"{url}/predict", json=recs[i % len(recs)])
                except httpx.HTTPError: return  # the server is gone
                if r.status_code == 200: received.append(r.json()["request_id"])
                i += 4
    threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    for t in threads: t.start()
    while len(received) < 150: time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL); proc.wait(10); stop.set()
    for t in threads: t.join(15)
    logged = set(PredictionLog(f"sqlite:///{db}").predictions()["request_id"])
    print(f"responses received {len(received)}, rows in the log {len(logged)}")
    assert set(received) <= logged, f"{len(set(received) - logged)} answered predictions missing from the log"
    assert len(logged) - len(received) <= 4  # at most the requests in flight when the server died (committed, not yet answered)


@pytest.fixture(scope="module")
def traffic(world, tmp_path_factory):
    "A live server that answered 400 normal records and then 300 drifted ones, all with feedback (the drifted ones wrong)."
    settings, _, hold, _, _ = world
    db = tmp_path_factory.mktemp("traffic") / "monitoring.db"
    proc, url = start_server(settings, NAME, db, {"SIXSTACK_FEEDBACK_TOKEN": "test-feedback-token", "SIXSTACK_DASHBOARD_TOKEN": DASHBOARD})
    normal = hold.sample(400, random_state=0).reset_index(drop=True)
    drifted = shift_sample(hold.sample(300, random_state=1).reset_index(drop=True))
    _send(url, normal, feedback=normal[LABEL])
    wrong = drifted[LABEL].map({"Introvert": "Extrovert", "Extrovert": "Introvert"})  # feedback says the model is wrong on the drifted batch
    _send(url, drifted, feedback=wrong)
    r = httpx.post(f"{url}/predict", content=b"{oops", headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert httpx.post(f"{url}/feedback", json={"feedback": [{"request_id": "x", "label": "Introvert"}]}).status_code == 401  # no token
    yield url, db
    proc.terminate(); proc.wait(10)


class _Receiver(BaseHTTPRequestHandler):
    got: list = []
    def do_POST(self):
        self.got.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
        self.send_response(204); self.end_headers()
    def log_message(self, *a): pass


def test_report_alerts_reach_the_webhook(world, traffic):
    settings, tmp, *_, env = world
    _, db = traffic
    hook = HTTPServer(("127.0.0.1", 0), _Receiver); threading.Thread(target=hook.serve_forever, daemon=True).start()
    try:
        r = cli("monitor", "report", "--last", "300", "--db", f"sqlite:///{db}",
                env=env | {"SIXSTACK_ALERT_WEBHOOK": f"http://127.0.0.1:{hook.server_port}/alerts"})
    finally: hook.shutdown()
    assert r.returncode == 0, r.stderr
    assert "ALERT data_drift" in r.stdout and "ALERT performance_drop" in r.stdout, r.stdout
    failing = cli("monitor", "check", "--last", "300", "--db", f"sqlite:///{db}", "--fail-on", "warning", env=env)
    assert failing.returncode == 5 and "ALERT data_drift" in failing.stdout, failing.stdout + failing.stderr  # cron and CI can act
    kinds = {a["kind"] for body in _Receiver.got for a in body["alerts"]}
    assert {"data_drift", "performance_drop"} <= kinds, _Receiver.got
    drifted = [a for body in _Receiver.got for a in body["alerts"] if a["kind"] == "data_drift"][0]
    assert "Time_spent_Alone" in drifted["details"]["features"]  # Stage_fear's detection rate is measured over 50 seeds in 08's notebook
    stored = PredictionLog(f"sqlite:///{db}").alerts()
    assert {"data_drift", "performance_drop"} <= set(stored["kind"])
    report = re.search(r"report: (\S+\.html)", r.stdout).group(1)
    html = open(report).read()
    assert html.count('<figure class="chart"') == len(CHARTS) and "data_drift" in html and 'data-chart="calibration"' in html
    c = MLOpsIntegration(settings=settings).client
    runs = c.search_runs([c.get_experiment_by_name("monitoring-tests").experiment_id])
    assert any(r_.data.metrics.get("n_alerts", 0) >= 2 for r_ in runs)


def test_quiet_window_raises_no_drift(world, traffic):
    "The 400 normal records (with correct feedback) are judged fine."
    settings, *_ = world
    _, db = traffic
    df = PredictionLog(f"sqlite:///{db}").predictions().head(400)
    mv = MLOpsIntegration(settings=settings).client.get_model_version(NAME, "1")
    res = evaluate(df, df.iloc[:0].assign(status=[]), load_reference(settings, mv.run_id), float(mv.tags["cv_accuracy"]), Thresholds())
    assert not res.alerts, res.alerts
    assert res.summary["window_accuracy"] > 0.85


def test_false_alarm_rate_with_the_served_ensemble(world):
    "50 same-population windows of 500 rows (the reference's table), predicted by the real ensemble: at most 5 % raise a drift alert."
    settings, _, _, ens, _ = world
    ref = load_reference(settings, MLOpsIntegration(settings=settings).client.get_model_version(NAME, "1").run_id)
    pool = make_frame(POOL_ROWS, seed=31).iloc[1400:]  # other seeds of the generator vary missing rates by ±30 %: not the same population
    alarms = 0
    for seed in range(50):
        cur = pool.iloc[500 * seed:500 * (seed + 1)]
        out = ens.predict_frame(cur[FEATURES])
        df = cur[FEATURES].assign(label=out["label"].to_numpy(), probability=out["probability"].to_numpy(), request=np.arange(500).astype(str), latency_ms=1.0)
        kinds = {a["kind"] for a in evaluate(df, pd.DataFrame(columns=["status"]), ref, None, Thresholds()).alerts}
        alarms += bool(kinds & {"data_drift", "prediction_drift"})
    print(f"false-alarm rate: {alarms}/50")
    assert alarms / 50 <= 0.05


def test_dashboard_renders_in_chromium(traffic):
    url, _ = traffic
    shot = ROOT / "reports" / "dashboard.png"; shot.parent.mkdir(exist_ok=True)
    base = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"]
    assert httpx.get(f"{url}/dashboard?last=300").status_code == 401  # costly page: token required
    # the browser-friendly way: ?token= once, answered with a redirect that sets an HttpOnly cookie and drops the token from the address
    dom = subprocess.run(base + ["--dump-dom", f"{url}/dashboard?last=300&token={DASHBOARD}"], capture_output=True, text=True, timeout=120).stdout
    m = re.search(r'<body[^>]*data-charts="(\d+)"[^>]*data-charts-rendered="(\d+)"', dom)
    assert m and m.group(1) == m.group(2) == str(len(CHARTS)), dom[:500]
    assert "Time_spent_Alone" in dom and "Alerts (" in dom
    subprocess.run(base + ["--window-size=1200,2400", f"--screenshot={shot}", f"{url}/dashboard?last=300&token={DASHBOARD}"], capture_output=True, timeout=120)
    assert shot.stat().st_size > 20_000


def test_retrain_on_drift_yields_a_staging_version(world, traffic):
    settings, tmp, *_, env = world
    _, db = traffic
    from sixstack.training.registry import aliases
    before = aliases(settings)
    r = cli("monitor", "--last", "300", "--db", f"sqlite:///{db}", "--retrain-on-drift", "--profile", "fast",
            "-r", "stacks", "C,E", "-r", "methods", "none", env=env, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    after = aliases(settings)
    assert int(after["staging"]) > int(before.get("staging", before["production"])), (before, after)
    assert "retraining FINISHED" in r.stdout and "+ 700 labelled logged rows" in r.stdout, r.stdout
