"""MLflow's own tools against our service and our model: its scoring client, `mlflow models serve`, `mlflow models predict`.

The slow half of the self-containment check (a clean virtualenv built from the model's requirements.txt) is
`make check-model`; the static half — every import of the shipped code is the standard library, a shipped module or a
pinned requirement — runs here.
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from conftest import cli, start_server, train_model
from sixstack.data.tables import FEATURES, make_frame

NAME = "interop_model"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    "A gated production version of a small real ensemble, and rows with every feature missing somewhere."
    tmp = tmp_path_factory.mktemp("interop")
    from sixstack.config import get_settings
    from sixstack.training.registry import promote, register
    settings = get_settings(tracking_uri=f"sqlite:///{tmp}/mlflow.db", spool_path=f"{tmp}/spool.jsonl", registry_name=NAME, experiment_name="interop")
    data = make_frame(1400, seed=51)
    train, hold = data.iloc[:1000], data.iloc[1000:]
    hold.to_csv(tmp / "holdout.csv", index=False)
    uri, _ = train_model(settings, train)
    assert promote(register(uri, settings), settings, tmp / "holdout.csv")["promoted"]
    rows = make_frame(400, seed=52)[FEATURES]
    picks = sorted({int(rows[c].isna().idxmax()) for c in FEATURES} | set(range(20)))  # at least one row missing each feature
    rows = rows.loc[picks].reset_index(drop=True)
    assert all(rows[c].isna().any() for c in FEATURES)
    return settings, tmp, rows


@pytest.fixture(scope="module")
def mlflow_serve(world):
    "`mlflow models serve` of the same registered version (the reference implementation of the protocol)."
    settings, tmp, _ = world
    from sixstack.deploy.stack import free_port
    port = free_port()
    env = os.environ | {"MLFLOW_TRACKING_URI": settings.tracking_uri, "PATH": f"{BIN}:{os.environ['PATH']}", "MLFLOW_DISABLE_TELEMETRY": "true"}
    proc = subprocess.Popen([str(BIN / "mlflow"), "models", "serve", "-m", f"models:/{NAME}@production", "--env-manager", "local",
                             "-h", "127.0.0.1", "-p", str(port)], env=env, stdout=open(tmp / "mlflow-serve.log", "w"), stderr=subprocess.STDOUT)
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=1).status_code == 200: break
        except httpx.HTTPError: pass
        assert proc.poll() is None, open(tmp / "mlflow-serve.log").read()[-3000:]
        time.sleep(0.2)
    yield port
    proc.terminate(); proc.wait(30)


def test_mlflow_scoring_client_gets_what_mlflow_serve_gives(world, mlflow_serve):
    "MLflow's ScoringServerClient sends missing values as NaN; our /invocations reads them as missing, like `mlflow models serve`."
    settings, tmp, rows = world
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient
    proc, url = start_server(settings, NAME, tmp / "monitoring.db", log_file=tmp / "server.log")
    try:
        ours = ScoringServerClient("127.0.0.1", int(url.rsplit(":", 1)[1]))
        ours.wait_server_ready(timeout=30)  # our /ping answers as MLflow's does
        got = ours.invoke(rows).get_predictions()
        want = ScoringServerClient("127.0.0.1", mlflow_serve).invoke(rows).get_predictions()
    finally: proc.terminate(); proc.wait(10)
    assert len(got) == len(want) == len(rows)
    assert (got["label"].to_numpy() == want["label"].to_numpy()).all()
    np.testing.assert_allclose(got["probability"].to_numpy(float), want["probability"].to_numpy(float), rtol=0, atol=1e-9)
    from sixstack.serving.predlog import PredictionLog
    logged = PredictionLog(f"sqlite:///{tmp}/monitoring.db").predictions()
    assert logged[FEATURES].isna().sum().sum() == rows.isna().sum().sum()  # missing stays missing in the log


def test_csv_invocations_answer_what_mlflow_serve_answers(world, mlflow_serve):
    "`Content-Type: text/csv` on /invocations: the same rows (empty fields missing) get `mlflow models serve`'s answers."
    settings, tmp, rows = world
    body = rows.to_csv(index=False).encode()  # NaN is written as an empty field
    assert b",," in body or b",\n" in body
    want = httpx.post(f"http://127.0.0.1:{mlflow_serve}/invocations", content=body, headers={"content-type": "text/csv"}, timeout=60)
    assert want.status_code == 200, want.text
    proc, url = start_server(settings, NAME, tmp / "monitoring-csv.db", log_file=tmp / "server-csv.log")
    try:
        got = httpx.post(f"{url}/invocations", content=body, headers={"content-type": "text/csv; charset=utf-8"}, timeout=60)
        assert got.status_code == 200, got.text
        g, w = pd.DataFrame(got.json()["predictions"]), pd.DataFrame(want.json()["predictions"])
        assert len(g) == len(w) == len(rows) and (g["label"] == w["label"]).all()
        np.testing.assert_allclose(g["probability"].to_numpy(float), w["probability"].to_numpy(float), rtol=0, atol=1e-9)
        for bad, status, why in ((body.replace(b",", b";", 3), 400, "fields, the header has"),  # a line cut short
                                 (body[:body.index(b"\n") + 1] + b'"3,No\n', 400, "malformed CSV"),
                                 (body.replace(b"Yes", b"Maybe", 1), 422, "Input should be")):
            r = httpx.post(f"{url}/invocations", content=bad, headers={"content-type": "text/csv"})
            assert r.status_code == status and why in r.json()["error"], (status, r.text)
    finally: proc.terminate(); proc.wait(10)

def test_open_inference_protocol_through_tritonclient(world):
    "NVIDIA's own client (`tritonclient.http`) on our /v2 routes: ready, metadata, infer on 1 and 1,000 rows in binary and JSON; answers equal /predict/batch's."
    import tritonclient.http as triton
    from tritonclient.utils import InferenceServerException
    settings, tmp, rows = world
    big = make_frame(1000, seed=53)[FEATURES]
    proc, url = start_server(settings, NAME, tmp / "monitoring-v2.db", log_file=tmp / "server-v2.log")

    def tensors(df, binary):
        out = []
        for c in FEATURES:
            num = df[c].dtype.kind == "f"
            a = df[c].to_numpy(np.float64) if num else np.array([b"" if pd.isna(v) else v.encode() for v in df[c]], dtype=np.object_)
            t = triton.InferInput(c, [len(df)], "FP64" if num else "BYTES"); t.set_data_from_numpy(a, binary_data=binary); out.append(t)
        return out
    try:
        client = triton.InferenceServerClient(url.removeprefix("http://"))
        assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(NAME)
        meta = client.get_model_metadata(NAME)
        assert [i["name"] for i in meta["inputs"]] == FEATURES and [o["name"] for o in meta["outputs"]] == ["label", "probability"]
        version = meta["versions"][0]
        assert client.is_model_ready(NAME, version) and not client.is_model_ready(NAME, "999")
        for df, binary in ((rows.iloc[:1], True), (big, True), (rows, False), (big, False)):
            recs = df.astype(object).where(df.notna(), None).to_dict(orient="records")
            want = httpx.post(f"{url}/predict/batch", json={"records": recs}, timeout=60).json()["predictions"]
            outs = None if binary else [triton.InferRequestedOutput(o, binary_data=False) for o in ("label", "probability")]
            res = client.infer(NAME, tensors(df, binary), outputs=outs, model_version=version if binary else "")
            got = [v.decode() if isinstance(v, bytes) else v for v in res.as_numpy("label").tolist()]
            assert got == [p["label"] for p in want], (binary, len(df))
            np.testing.assert_allclose(res.as_numpy("probability"), [p["probability"] for p in want], rtol=0, atol=1e-12)
        bad = tensors(rows.iloc[:2], True)
        bad[1] = triton.InferInput(FEATURES[1], [2], "FP32"); bad[1].set_data_from_numpy(np.zeros(2, np.float32))
        with pytest.raises(InferenceServerException) as e: client.infer(NAME, bad)
        assert e.value.status() == "400" and f"input '{FEATURES[1]}': datatype 'FP32', expected BYTES" in e.value.message()
        with pytest.raises(InferenceServerException) as e: client.infer("nobody", tensors(rows.iloc[:1], True))
        assert e.value.status() == "404"
        assert 'sixstack_requests_total{endpoint="v2_infer",status="200"} 4.0' in httpx.get(f"{url}/metrics").text
        # the README's tritonclient snippet, as written but for the address and the model's name
        from test_readme import _block
        code = _block("REST service")
        assert '"localhost:8080"' in code and '"six_stack_ensemble"' in code
        code = code.replace('"localhost:8080"', repr(url.removeprefix("http://"))).replace('"six_stack_ensemble"', repr(NAME))
        rows.to_csv(tmp / "rows.csv", index=False); cwd = os.getcwd(); os.chdir(tmp)
        try: ns = {}; exec(compile(code, "README.md: REST service", "exec"), ns)
        finally: os.chdir(cwd)
        recs = rows.astype(object).where(rows.notna(), None).to_dict(orient="records")
        want = httpx.post(f"{url}/predict/batch", json={"records": recs}, timeout=60).json()["predictions"]
        assert [v.decode() for v in ns["labels"].tolist()] == [p["label"] for p in want]
        np.testing.assert_allclose(ns["p"], [p["probability"] for p in want], rtol=0, atol=1e-12)
    finally: proc.terminate(); proc.wait(10)


def test_invocations_nan_and_infinity_and_params(world):
    "NaN is missing on MLflow's protocol only; Infinity and out-of-range stay 422; `params` and `index` are accepted."
    settings, tmp, rows = world
    proc, url = start_server(settings, NAME, tmp / "monitoring2.db", log_file=tmp / "server2.log")
    cols, holey = FEATURES, rows[rows.isna().any(axis=1)].iloc[0]
    row = [float("nan") if pd.isna(v) else v for v in holey]
    try:
        body = lambda data, **kw: json.dumps({"dataframe_split": {"index": [0], "columns": cols, "data": [data]}} | kw)
        r = httpx.post(f"{url}/invocations", content=body(row, params={}), headers={"content-type": "application/json"})
        assert r.status_code == 200, r.text
        bad = list(row); bad[cols.index("Going_outside")] = float("inf")
        r = httpx.post(f"{url}/invocations", content=body(bad), headers={"content-type": "application/json"})
        assert r.status_code == 422 and "Going_outside" in r.text and "finite" in r.json()["error"]
        rec = dict(zip(cols, [None if pd.isna(v) else v for v in holey]))
        r = httpx.post(f"{url}/predict", content=json.dumps(rec).replace("null", "NaN"), headers={"content-type": "application/json"})
        assert r.status_code == 400 and "send null for a missing value" in r.json()["error"] and "less than or equal" not in r.text
        assert httpx.post(f"{url}/predict", json=rec).status_code == 200
    finally: proc.terminate(); proc.wait(10)


def test_shipped_code_imports_only_what_the_model_pins(world, tmp_path):
    "The static half of self-containment: the logged model's code imports the standard library, itself, or pinned requirements."
    settings, *_ = world
    from sixstack.tracking.packaging import import_problems
    from sixstack.tracking.models import download_model
    path, _ = download_model(f"models:/{NAME}@production", settings)
    reqs = (path / "requirements.txt").read_text().split()
    shipped = sorted(p.stem for p in (path / "code" / "sixstack").glob("*.py"))
    assert "tracking" not in shipped and "serving" not in shipped and "filelock" not in " ".join(reqs), (shipped, reqs)
    assert import_problems(path / "code" / "sixstack", reqs) == []


def test_mlflow_models_predict_agrees_with_sixstack_predict(world, tmp_path):
    "`mlflow models predict` of the registered model gives what `sixstack predict` gives; MLflow accepts the saved serving example."
    settings, tmp, rows = world
    data = tmp_path / "rows.csv"; rows.to_csv(data, index=False)
    env = {"MLFLOW_TRACKING_URI": settings.tracking_uri, "MODEL_REGISTRY_NAME": NAME, "PATH": f"{BIN}:{os.environ['PATH']}",
           "MLFLOW_EXPERIMENT_NAME": settings.experiment_name}  # sixstack predict loads only models of its experiment
    r = subprocess.run([str(BIN / "mlflow"), "models", "predict", "-m", f"models:/{NAME}@production", "-i", str(data), "-t", "csv",
                        "--env-manager", "local", "-o", str(tmp_path / "mlflow.json")], env=os.environ | env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    theirs = pd.DataFrame(json.loads((tmp_path / "mlflow.json").read_text())["predictions"])
    s = cli("predict", "--model-uri", f"models:/{NAME}@production", "--input", data, "--output", tmp_path / "ours.csv", env=env)
    assert s.returncode == 0, s.stderr
    ours = pd.read_csv(tmp_path / "ours.csv")
    assert (ours["Personality"].to_numpy() == theirs["label"].to_numpy()).all()
    np.testing.assert_allclose(ours["probability"].to_numpy(), theirs["probability"].to_numpy(), rtol=0, atol=1e-12)
    from mlflow.models import validate_serving_input
    from sixstack.tracking.models import download_model
    path, _ = download_model(f"models:/{NAME}@production", settings)
    example = (path / "serving_input_example.json").read_text()
    assert len(validate_serving_input(str(path), example)) == 5
