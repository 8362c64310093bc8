"""A writer of the tracking server plants a model: nothing that loads models ever unpickles it (issue 27, items 1-2).

A real `mlflow server` on 127.0.0.1; the attacker speaks to it only through MLflow's REST API, as anyone with
write access to an unauthenticated server can: creates a run, uploads a model folder whose pickle runs code when
loaded, sets the digest tag (or not), registers the version with a forged "passed" gate verdict and points
`production` at it. The pickle's payload touches a marker file; the marker must never appear.
"""
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from conftest import cli

NAME = "planted"
KEY = "the-signing-key-of-this-test"


class _Payload:
    "Unpickling this runs `touch <marker>`."
    def __init__(self, marker): self.marker = str(marker)
    def __reduce__(self): return (subprocess.call, (["touch", self.marker],))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from sixstack.deploy.stack import MlflowServer
    tmp = tmp_path_factory.mktemp("planted")
    srv = MlflowServer(f"sqlite:///{tmp}/backend.db", str(tmp / "artifacts"), tmp).start()
    yield srv, tmp
    srv.stop()


def _settings(url, key, tmp, name):
    from sixstack.config import get_settings
    return get_settings(tracking_uri=url, registry_name=name, experiment_name="planted", spool_path=f"{tmp}/spool.jsonl",
                        signing_key=key)


def _legit(settings, hold_path, tmp):
    "A model logged, registered and promoted the way the pipeline does (a stand-in model: the machinery is the point)."
    from sixstack.data.tables import make_frame
    from sixstack.tracking.packaging import EchoModel, input_example
    from sixstack.training.registry import promote, register
    from sixstack.tracking.mlops import MLOpsIntegration
    m = MLOpsIntegration(settings=settings); m.start_experiment()
    m.write_handoff({"holdout_path": str(hold_path)})
    uri = m.log_pyfunc_model(EchoModel(), input_example(make_frame(50, seed=1)), ["pandas"], ship_code=False)
    m.end_experiment()
    return uri, register(uri, settings), promote


def _plant(url, settings, model_dir, marker, with_digest):
    "The attack, through MLflow's REST API only: the planted version, and how to point an alias at it."
    from sixstack.tracking.packaging import model_digest
    api = lambda path, body: httpx.post(f"{url}/api/2.0/mlflow/{path}", json=body, timeout=30).raise_for_status().json()
    exp = httpx.get(f"{url}/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": settings.experiment_name}).json()
    run = api("runs/create", {"experiment_id": exp["experiment"]["experiment_id"], "start_time": 0})["run"]["info"]
    evil = Path(str(model_dir) + "-evil"); shutil.copytree(model_dir, evil)
    (evil / "python_model.pkl").write_bytes(pickle.dumps(_Payload(marker)))
    base = run["artifact_uri"].split("mlflow-artifacts:/", 1)[1]
    for f in sorted(p for p in evil.rglob("*") if p.is_file()):
        rel = f.relative_to(evil).as_posix()
        httpx.put(f"{url}/api/2.0/mlflow-artifacts/artifacts/{base}/model/{rel}", content=f.read_bytes(), timeout=30).raise_for_status()
    digest = model_digest(evil)
    tags = {"gate": "passed: held-out accuracy 1.0000 vs production 0.5000", "gate_signature": "0" * 64}
    if with_digest:
        api("runs/set-tag", {"run_id": run["run_id"], "key": "sixstack.model_sha256", "value": digest})
        tags |= {"model_sha256": digest, "model_signature": "0" * 64}
    mv = api("model-versions/create", {"name": settings.registry_name, "source": f"runs:/{run['run_id']}/model", "run_id": run["run_id"],
                                       "tags": [{"key": k, "value": v} for k, v in tags.items()]})["model_version"]
    return mv["version"], lambda alias: api("registered-models/alias", {"name": settings.registry_name, "alias": alias, "version": mv["version"]})


@pytest.mark.parametrize("with_digest", [False, True], ids=["no-digest-tag", "digest-tag"])
def test_a_planted_model_never_executes(server, tmp_path, with_digest):
    "Item 1 and 2: promote (candidate and baseline), copy_version, load_served, predict and check-model all refuse it."
    srv, _ = server
    from dataclasses import replace
    from sixstack.config import get_settings
    from sixstack.data.tables import make_frame
    from sixstack.tracking.models import ModelRefused, download_model
    from sixstack.training.registry import RegistryError, copy_version, register
    from sixstack.serving.served import load_served
    name = f"{NAME}_{with_digest}"
    settings = _settings(srv.url, KEY, tmp_path, name)
    hold = make_frame(200, seed=2).drop(columns="id"); hold.to_csv(tmp_path / "hold.csv", index=False)
    hold.drop(columns="Personality").to_csv(tmp_path / "rows.csv", index=False)
    legit_uri, legit_v, promote = _legit(settings, tmp_path / "hold.csv", tmp_path)
    promote(legit_v, settings)
    legit_dir, _ = download_model(legit_uri, settings)
    marker = tmp_path / "payload-ran"
    planted, point = _plant(srv.url, settings, legit_dir, marker, with_digest)

    # the payload is live: unpickled directly (in another process), it runs
    evil_pkl = Path(str(legit_dir) + "-evil") / "python_model.pkl"
    subprocess.run([sys.executable, "-c", "import pickle,sys; pickle.loads(open(sys.argv[1],'rb').read())", str(evil_pkl)],
                   check=True, cwd=Path(__file__).parent)
    assert marker.exists(); marker.unlink()

    # the gate with the planted version as the candidate, then as production (the baseline it compares with)
    with pytest.raises(RegistryError, match="the candidate cannot be loaded"):
        promote(planted, settings)
    point("production")
    candidate = register(_legit(settings, tmp_path / "hold.csv", tmp_path)[0], settings)
    with pytest.raises(RegistryError, match="production, the baseline the gate compares with, cannot be loaded"):
        promote(candidate, settings)
    prod = replace(get_settings(tracking_uri=f"sqlite:///{tmp_path}/prod.db", spool_path=f"{tmp_path}/s2.jsonl",
                                registry_name="prod_model", signing_key=KEY), environment="prod")
    with pytest.raises(RegistryError, match="is not copied"):
        copy_version(planted, settings, prod)
    with pytest.raises(ModelRefused, match="refused"):
        load_served(settings, name, "production")
    env = {"MLFLOW_TRACKING_URI": srv.url, "MODEL_REGISTRY_NAME": name, "MLFLOW_EXPERIMENT_NAME": "planted",
           "SIXSTACK_MODEL_SIGNING_KEY": KEY, "SIXSTACK_SPOOL": str(tmp_path / "spool.jsonl")}
    r = cli("predict", "--model-uri", f"models:/{name}@production", "--input", tmp_path / "rows.csv", "--output",
            tmp_path / "out.csv", env=env)
    assert r.returncode != 0 and "refused" in r.stderr, r.stderr
    r = cli("predict", "--model-uri", f"models:/{name}/{planted}", "--allow-ungated", "--input", tmp_path / "rows.csv",
            "--output", tmp_path / "out.csv", env=env)
    assert r.returncode != 0 and "refused" in r.stderr, r.stderr  # the flag drops the gate, not provenance
    r = cli("check-model", "--allow-ungated", env=env)
    assert r.returncode != 0 and "refused" in r.stderr and "virtualenv" not in r.stderr, r.stderr  # refused before pip
    nokey = {k: v for k, v in env.items() if k != "SIXSTACK_MODEL_SIGNING_KEY"}
    if not with_digest:  # without a key, a missing digest is still enough to refuse
        r = cli("predict", "--model-uri", f"models:/{name}@production", "--input", tmp_path / "rows.csv", "--output",
                tmp_path / "out.csv", env=nokey)
        assert r.returncode != 0 and "no content digest" in r.stderr, r.stderr
    assert not marker.exists(), "the planted model's pickle was executed"
    assert not (tmp_path / "out.csv").exists()


def test_check_model_installs_only_pinned_names(tmp_path, settings):
    "Item 2: a requirements line that makes pip fetch or build something is refused before a virtualenv is built."
    from sixstack.data.tables import make_frame
    from sixstack.tracking.packaging import EchoModel, input_example
    from sixstack.tracking.mlops import MLOpsIntegration
    m = MLOpsIntegration(settings=settings); m.start_experiment()
    uri = m.log_pyfunc_model(EchoModel(), input_example(make_frame(50, seed=1)),
                             ["pandas==2.2.3", "--extra-index-url http://127.0.0.1:9/simple"], ship_code=False)
    m.end_experiment()
    req = (m.download_artifact("model/requirements.txt")).read_text()
    assert "--extra-index-url" in req  # MLflow wrote the line as given: the check is what stops it
    r = cli("check-model", "--model-uri", uri)
    assert r.returncode != 0 and "only name==version lines" in r.stderr, r.stderr
    assert "building a clean virtualenv" not in r.stderr and not r.stdout.strip()  # stopped before pip, printed no result
