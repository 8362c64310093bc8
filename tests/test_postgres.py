"""The prediction log and alert handling on a real PostgreSQL server (a throw-away cluster started by the test).

`make test` installs Debian's postgresql (`make postgres`); the cluster (`conftest.Postgres`) listens on 127.0.0.1 with
password authentication, its data in a temporary folder, as the `postgres` user when the tests run as root.
"""
import os
import threading
import time

import numpy as np
import pandas as pd
import pytest

from sixstack.data.tables import make_frame, FEATURES
from sixstack.monitoring.monitor import Thresholds, dispatch, evaluate, shift_sample
from sixstack.serving.predlog import ERRORS, LogError, PredictionLog, prediction_rows


@pytest.fixture(scope="module")
def pg_url(pg):
    "A fresh database of the session's PostgreSQL cluster."
    return pg.create_db("predlog_tests")


def test_log_on_postgres(pg_url):
    "Group commits, feedback, windows, refused duplicates, errors and retention behave as on SQLite."
    log = PredictionLog(pg_url)
    assert log.engine.dialect.name == "postgresql"
    X = make_frame(40, seed=4)[FEATURES].reset_index(drop=True)
    out = pd.DataFrame({"label": ["Introvert"] * 40, "probability": [0.9] * 40})
    # hold the first leader inside its commit until the other writers queue: they must share one transaction
    entered, release, commit_ = threading.Event(), threading.Event(), log._commit
    def held(items):
        if not entered.is_set(): entered.set(); release.wait(30)
        commit_(items)
    log._commit = held
    def one(i): log.write(log.pred_table, prediction_rows(f"r{i}", X.iloc[[i]], out.iloc[[i]], "7", "predict", 3.0))
    ts = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    ts[0].start(); assert entered.wait(30)
    for t in ts[1:]: t.start()
    deadline = time.monotonic() + 30
    while len(log._pending) < 19 and time.monotonic() < deadline: time.sleep(0.01)
    release.set()
    for t in ts: t.join()
    assert log.commits == 2
    log.write(log.pred_table, prediction_rows("batch", X.iloc[20:], out.iloc[20:], "7", "predict_batch", 5.0))
    df = log.predictions()
    assert len(df) == 40 and df["request_id"].is_unique and set(df["model_version"]) == {"7"}
    got = df.set_index("request_id").loc["r3", FEATURES]  # inputs round-trip, missing values as NULL
    assert all((pd.isna(a) and pd.isna(b)) or a == b for a, b in zip(got, X.iloc[3]))
    assert log.add_feedback([{"request_id": "r3", "label": "Extrovert"}, {"request_id": "nope", "label": "Introvert"}]) == {"updated": 1, "unknown": ["nope"]}
    assert log.predictions().set_index("request_id").loc["r3", "true_label"] == "Extrovert"
    assert list(log.predictions(last=2)["request_id"]) == ["batch-18", "batch-19"]
    with pytest.raises(LogError, match="prediction log write failed"):  # a duplicate request id is refused, nothing else lost
        log.write(log.pred_table, prediction_rows("r1", X.iloc[[1]], out.iloc[[1]], "7", "predict", 1.0))
    assert len(log.predictions()) == 40
    log.write(ERRORS, [{"ts": time.time() - 3 * 86400, "endpoint": "predict", "status": 422, "message": "old"},
                       {"ts": time.time(), "endpoint": "predict", "status": 400, "message": "new"}])
    assert log.prune(days=1)["errors"] == 1 and list(log.errors()["message"]) == ["new"]
    log.engine.dispose()


def test_alerts_on_postgres(pg_url):
    "A drifted window read back from PostgreSQL raises data drift; the alert is stored once per repeat window."
    from sixstack.monitoring.monitor import reference_profile
    log = PredictionLog(pg_url)
    train = make_frame(2000, seed=1)
    ref = reference_profile(train, np.full(len(train), 0.7), 0.5)
    rows = shift_sample(make_frame(500, seed=2)).reset_index(drop=True)
    out = pd.DataFrame({"label": ["Introvert"] * 500, "probability": [0.7] * 500})
    log.write(log.pred_table, prediction_rows("drift", rows[FEATURES], out, "9", "predict_batch", 4.0))
    res = evaluate(log.predictions(model_version="9"), log.errors().iloc[:0], ref, None, Thresholds(), window="last 500", version="9")
    assert any(a["kind"] == "data_drift" for a in res.alerts), res.summary
    first, again = dispatch(res.alerts, log, repeat_hours=6), dispatch(res.alerts, log, repeat_hours=6)
    assert first["stored"] == len(res.alerts) and again == {"stored": 0, "posted": False, "repeated": len(res.alerts)}
    assert set(log.alerts()["kind"]) == {a["kind"] for a in res.alerts}
    log.engine.dispose()


def test_no_secret_in_notebooks_artifacts_or_output(pg, tmp_path):
    "Item 9 of the hardening: with a password in every URL setting, it appears in no executed notebook, artifact, log or output."
    from conftest import NBS, cli
    secret = pg.PASSWORD
    env = {"MLFLOW_TRACKING_URI": pg.create_db("mlflow_secret"), "SIXSTACK_OPTUNA_STORAGE": pg.create_db("optuna_secret"),
           "SIXSTACK_MONITOR_DB": pg.create_db("monitor_secret"), "SIXSTACK_ALERT_WEBHOOK": f"https://hook:{secret}@hooks.invalid/x",
           "SIXSTACK_REPORTS_DIR": str(tmp_path / "reports"), "SIXSTACK_DATA_DIR": str(tmp_path / "data"),
           "SIXSTACK_SPOOL": str(tmp_path / "spool" / "spool.jsonl"), "SIXSTACK_ARTIFACT_ROOT": str(tmp_path / "artifacts"),
           "SIXSTACK_ADMIN_TOKEN": f"admin-{secret}", "MLFLOW_EXPERIMENT_NAME": "secrets"}
    r = cli("run", "--n-train", "600", "--notebooks", NBS / "00_data_validation.ipynb", NBS / "01_experiment_tracking.ipynb", env=env, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "pipeline FINISHED" in r.stdout and "postgresql+psycopg://postgres:***@" in r.stdout  # the store is named, its password not
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "run_context.json" for p in files) and any(p.suffix == ".ipynb" for p in files)
    leaks = [str(p) for p in files if secret.encode() in p.read_bytes()]
    assert not leaks and secret not in r.stdout + r.stderr, leaks


def test_the_clusters_secrets_are_private_from_the_start(pg):
    "Issue 27 item 7: the cluster's folder is closed to listing and its password file is 0600."
    import stat
    mode = lambda p: stat.S_IMODE(os.stat(p).st_mode)
    assert mode(pg.root) in (0o700, 0o711) and mode(pg.passfile) == 0o600
    assert not (pg.root / ".initdb-pw").exists()
