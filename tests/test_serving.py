"The registry and the REST service, for real: a temporary SQLite store, real ensembles, a real server on 127.0.0.1."
import json
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from conftest import start_server, train_model as _train
from sixstack.data.tables import FEATURES, NUMERIC, make_frame

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "test-admin-token"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    "A store with one good production version, and a held-out table."
    tmp = tmp_path_factory.mktemp("serve")
    from sixstack.config import get_settings
    from sixstack.training.registry import promote, register
    settings = get_settings(tracking_uri=f"sqlite:///{tmp}/mlflow.db", spool_path=f"{tmp}/spool.jsonl", registry_name="served_model")
    data = make_frame(1400, seed=21)
    train, hold = data.iloc[:1000], data.iloc[1000:]
    hold.to_csv(tmp / "holdout.csv", index=False)
    uri, ens = _train(settings, train)
    v = register(uri, settings, {"profile": "test"})
    assert promote(v, settings, tmp / "holdout.csv")["promoted"]
    return settings, tmp, train, hold, ens


@pytest.fixture(scope="module")
def server(world):
    "The service as a real process on a free local port."
    settings, tmp, *_ = world
    proc, url = start_server(settings, "served_model", tmp / "monitoring.db", {"SIXSTACK_ADMIN_TOKEN": TOKEN}, "--max-batch", "500")
    yield url
    proc.terminate(); proc.wait(10)


def _recs(df): return json.loads(df[FEATURES].to_json(orient="records"))


def test_health_ready_model(server):
    assert httpx.get(f"{server}/health").json() == {"status": "ok"}
    assert httpx.get(f"{server}/ready").json()["ready"] is True
    info = httpx.get(f"{server}/model").json()
    assert info["name"] == "served_model" and info["alias"] == "production" and info["version"] == "1" and info["source_run_id"]


def test_served_equals_in_process_pyfunc(server, world):
    settings, tmp, train, hold, ens = world
    from sixstack.tracking.models import load_model
    pyf = load_model("models:/served_model@production", settings)
    want = pyf.predict(hold[FEATURES].assign(**{c: hold[c].astype(float) for c in ["Time_spent_Alone"]}))
    got = httpx.post(f"{server}/predict/batch", json={"records": _recs(hold)}, timeout=60).json()
    g = pd.DataFrame(got["predictions"])
    assert (g["label"].to_numpy() == want["label"].to_numpy()).all()
    np.testing.assert_allclose(g["probability"].to_numpy(), want["probability"].to_numpy(), rtol=0, atol=1e-12)
    one = httpx.post(f"{server}/predict", json=_recs(hold.head(1))[0]).json()
    assert one["label"] == want["label"].iloc[0] and abs(one["probability"] - want["probability"].iloc[0]) < 1e-12 and one["model_version"] == "1"


def test_invocations_speaks_mlflow_protocol(server, world):
    hold = world[3].head(4)
    recs = _recs(hold)
    bodies = [{"dataframe_records": recs}, {"dataframe_split": {"columns": FEATURES, "data": [[r[c] for c in FEATURES] for r in recs]}},
              {"instances": recs}, {"inputs": {c: [r[c] for r in recs] for c in FEATURES}}]
    answers = [httpx.post(f"{server}/invocations", json=b).json()["predictions"] for b in bodies]
    ids = [p.pop("request_id") for a in answers for p in a]  # every answered record has its own id (for feedback)
    assert len(set(ids)) == len(ids) == 16
    assert all(a == answers[0] for a in answers) and len(answers[0]) == 4


BAD = [
    ("/predict", b"{oops", 400, "not valid JSON"),
    ("/predict", b"[1, 2]", 422, "JSON object"),
    ("/predict", json.dumps({"Time_spent_Alone": 1}).encode(), 422, "record 0: missing fields 'Stage_fear'"),
    ("/predict", None, 422, "record 0: unknown field 'extra'"),
    ("/predict", None, 422, "field 'Post_frequency': Input should be a valid number"),
    ("/predict", None, 422, "field 'Going_outside': Input should be less than or equal to 7"),
    ("/predict", None, 422, "field 'Stage_fear': Input should be 'No' or 'Yes'"),
    ("/predict/batch", json.dumps({"records": []}).encode(), 422, "at least one record"),
    ("/predict/batch", None, 413, "exceed the limit of 500"),
    ("/invocations", json.dumps({"rows": []}).encode(), 400, "exactly one of"),
    ("/predict/batch", b"x" * 9_000_000, 413, "exceeds the limit"),
]


@pytest.mark.parametrize("i", range(len(BAD)))
def test_bad_requests_get_4xx_with_a_reason(server, world, i):
    path, body, status, text = BAD[i]
    rec = _recs(world[3].head(1))[0]
    if body is None:
        body = json.dumps({3: rec | {"extra": 1}, 4: rec | {"Post_frequency": "often"}, 5: rec | {"Going_outside": 8},
                           6: rec | {"Stage_fear": "Sometimes"}, 8: {"records": [rec] * 501}}[i]).encode()
    r = httpx.post(f"{server}{path}", content=body, headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == status, r.text
    assert text in r.json()["error"] and "Traceback" not in r.text


def test_reload_needs_the_token(server):
    assert httpx.post(f"{server}/reload").status_code == 401
    assert httpx.post(f"{server}/reload", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_metrics_prometheus(server):
    httpx.post(f"{server}/predict", json={"Stage_fear": 1})
    text = httpx.get(f"{server}/metrics").text
    assert 'sixstack_requests_total{endpoint="predict",status="422"}' in text
    assert "sixstack_request_seconds_bucket" in text and "sixstack_model_version 1.0" in text and "sixstack_predictions_total" in text


def test_docs(server):
    "The OpenAPI schema is served; its pages (CDN scripts) only with --docs."
    assert httpx.get(f"{server}/docs").status_code == 404 and "/predict/batch" in httpx.get(f"{server}/openapi.json").text


def test_predict_explains_each_answer(server, world):
    "`?explain=true`: each feature's Shapley contribution, adding up to the answer; the same as explaining in process."
    settings, tmp, train, hold, ens = world
    from sixstack.training.explain import explain
    rec = _recs(hold.head(3))
    for r in rec:
        got = httpx.post(f"{server}/predict", params={"explain": "true"}, json=r, timeout=60).json()
        assert list(got["contributions"]) == FEATURES, got
        assert abs(got["base"] + sum(got["contributions"].values()) - got["probability"]) < 1e-9, got
        want = explain(ens, pd.DataFrame([r]).astype({c: float for c in NUMERIC}))
        assert np.allclose([got["contributions"][f] for f in FEATURES], want.values.iloc[0].to_numpy(), atol=1e-9), (got, want.values)
        assert "contributions" not in httpx.post(f"{server}/predict", json=r, timeout=60).json()  # only when asked
    bad = httpx.post(f"{server}/predict", params={"explain": "perhaps"}, json=rec[0], timeout=60)
    assert bad.status_code == 400 and "true or false" in bad.json()["error"], bad.text
    spec = httpx.get(f"{server}/openapi.json").json()["paths"]["/predict"]["post"]
    assert [p["name"] for p in spec["parameters"]] == ["explain"], spec


def test_reload_under_traffic_and_gate_and_rollback(server, world):
    settings, tmp, train, hold, ens = world
    from sixstack.training.registry import aliases, promote, register, rollback
    worse_uri, _ = _train(settings, train, permute=True)
    v2 = register(worse_uri, settings)
    r = promote(v2, settings, tmp / "holdout.csv")
    assert not r["promoted"] and "worse than" in r["reason"] and aliases(settings) == {"production": "1", "staging": "2"}
    better_uri, _ = _train(settings, train, seed=1)
    v3 = register(better_uri, settings)
    assert promote(v3, settings, tmp / "holdout.csv", margin=0.01)["promoted"]
    rec, failures, versions, stop = _recs(hold.head(1))[0], [], set(), threading.Event()

    def client():
        with httpx.Client(timeout=30) as c:
            while not stop.is_set():
                r = c.post(f"{server}/predict", json=rec)
                if r.status_code != 200: failures.append(r.status_code)
                else: versions.add(r.json()["model_version"])

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads: t.start()
    time.sleep(0.5)
    rr = httpx.post(f"{server}/reload", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120)
    time.sleep(0.5); stop.set()
    for t in threads: t.join()
    assert rr.status_code == 200 and rr.json() == {"reloaded": True, "previous_version": "1", "version": "3"}
    assert failures == [] and versions == {"1", "3"}
    assert httpx.get(f"{server}/model").json()["version"] == "3"
    assert rollback(settings) == {"production": "1", "previous": "3"}


def test_registry_cli(world):
    settings = world[0]
    from conftest import cli
    env = {"MLFLOW_TRACKING_URI": settings.tracking_uri, "MODEL_REGISTRY_NAME": "served_model"}
    r = cli("registry", "list", env=env)
    assert r.returncode == 0 and "production" in r.stdout and "staging" in r.stdout, r.stderr
    r = cli("registry", "show", "1", env=env)
    assert r.returncode == 0 and '"version": "1"' in r.stdout and '"gate": "passed: no production version yet"' in r.stdout
    from sixstack.training.registry import register
    worse = register(_train(settings, world[2], permute=True, seed=5)[0], settings)
    r = cli("registry", "promote", worse, env=env)
    assert r.returncode == 2 and "records no held-out data" in r.stderr
    r = cli("registry", "promote", worse, "--holdout", world[1] / "holdout.csv", env=env)  # a model that learned nothing: refused
    assert r.returncode == 3 and "not promoted" in r.stdout and "worse than" in r.stdout
    r = cli("registry", "show", "99", env=env)
    assert r.returncode == 2 and "has no version 99" in r.stderr and "Traceback" not in r.stderr
    r = cli("registry", "list", env={"MLFLOW_TRACKING_URI": "http://127.0.0.1:9"})
    assert r.returncode == 2 and "unavailable" in r.stderr
