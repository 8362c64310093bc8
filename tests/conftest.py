"Shared fixtures: every test gets its own real MLflow store (a temporary SQLite file) and folders."
import os
import sys
from pathlib import Path

import pytest

from sixstack.deploy.stack import Postgres

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / "nbs"


@pytest.fixture
def settings(tmp_path, monkeypatch):
    "Settings pointing at a temporary SQLite store, reports, data and spool; the environment agrees."
    from sixstack.config import get_settings
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db", "SIXSTACK_REPORTS_DIR": str(tmp_path / "reports"),
           "SIXSTACK_DATA_DIR": str(tmp_path / "data"), "SIXSTACK_SPOOL": str(tmp_path / "spool" / "spool.jsonl"),
           "MLFLOW_EXPERIMENT_NAME": "tests", "SIXSTACK_HOME": str(ROOT),
           "SIXSTACK_OPTUNA_STORAGE": f"sqlite:///{tmp_path}/optuna.db"}
    for k, v in env.items(): monkeypatch.setenv(k, v)
    return get_settings()


@pytest.fixture
def sample(tmp_path):
    "A small embedded sample on disk."
    from sixstack.data.tables import write_sample
    return write_sample(tmp_path / "sample", n_train=600, n_test=200, n_external=100)


def cli(*args, env=None, timeout=300):
    "Run the installed `sixstack` command in a subprocess."
    import subprocess
    exe = Path(sys.executable).with_name("sixstack")
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, cwd=ROOT)


def train_model(settings, rows, permute=False, seed=0, handoff=None, holdout=None):
    "A real small ensemble (stacks C and E, fast settings) logged as a pyfunc with its reference profile; returns (runs:/ URI, ensemble)."
    import numpy as np
    from sixstack.data.tables import LABEL
    from sixstack.training.ensemble import nested_predictions, quick_ensemble
    from sixstack.training.features import encode_labels
    from sixstack.monitoring.monitor import REFERENCE_ARTIFACT, reference_profile
    from sixstack.tracking.packaging import input_example
    from sixstack.tracking.mlops import MLOpsIntegration
    y = encode_labels(rows[LABEL])
    if permute: y = np.random.default_rng(seed).permutation(y)  # a model that learned nothing
    ens, oof = quick_ensemble(rows, ("C", "E"), y=y)
    m = MLOpsIntegration(settings=settings); m.start_experiment(run_name="test-model")
    uri = m.log_pyfunc_model(ens, input_example(rows))
    ref = Path(settings.spool_path).parent / m.run_id / Path(REFERENCE_ARTIFACT).name
    ref.parent.mkdir(parents=True, exist_ok=True)
    hp = None if holdout is None else ens.predict_proba(holdout)
    reference_profile(rows, nested_predictions(oof.to_numpy(), y, ens.method, 3), ens.threshold, holdout, hp).to_parquet(ref)
    m.log_artifact(ref, str(Path(REFERENCE_ARTIFACT).parent))
    if handoff: m.write_handoff(handoff)
    m.end_experiment()
    return uri, ens


def start_server(settings, name, monitor_db, env=None, *args, log_file=None):
    "`python -m sixstack.serving` as a real process on a free local port, logging to `monitor_db`; returns (process, url) once ready."
    import subprocess
    import tempfile
    from sixstack.serving.service import start_service
    db = monitor_db if "://" in str(monitor_db) else f"sqlite:///{monitor_db}"
    out = open(log_file or tempfile.mktemp(prefix="sixstack-server-", suffix=".log"), "w")  # a file, not a pipe nobody reads
    return start_service(settings.tracking_uri, name, monitor_db=db, args=list(args), timeout=60,
                         env={"MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_EXPERIMENT_NAME": settings.experiment_name} | (env or {}),
                         cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


class PgCluster(Postgres):
    "The stack's PostgreSQL cluster, its URLs with the password in them (the tests check it never leaks)."
    def url(self, db="postgres", driver="postgresql+psycopg", with_password=True):
        return super().url(db, driver, with_password)

    @property
    def PASSWORD(self): return self.password


@pytest.fixture(scope="session")
def pg(tmp_path_factory):
    "One PostgreSQL cluster for the whole test session."
    import shutil, tempfile
    d = tempfile.mkdtemp(prefix="sixstack-pg-"); os.chmod(d, 0o755)  # as root the cluster runs as the postgres user
    try: server = PgCluster(Path(d) / "pg").init().start(fsync=False)
    except RuntimeError as e: pytest.fail(str(e))
    yield server
    server.stop(); shutil.rmtree(d, ignore_errors=True)


# `make test` runs the tests in two phases. First two workers (pytest-xdist, `--dist loadscope`, `-m "not solo"`): a
# module's tests stay on one worker (they share its fixtures) and the longest modules are handed out first. (Not
# `--dist loadgroup`: pytest-xdist 3.8 marks groups in a node id attribute pytest 9 no longer reads, so its groups
# are silently split and shared fixtures built twice.) Then the `solo` modules, which measure latency against their
# own baseline, alone on the machine (`-m solo`, no workers): a neighbour's training must not be what their
# percentiles measure.
LONGEST_FIRST = ["test_outage", "test_ml_pipeline", "test_deploy", "test_monitoring", "test_runner", "test_planted_model",
                 "test_interop", "test_release", "test_serving", "test_postgres"]
SOLO = {"test_hostile", "test_ab"}


def pytest_configure(config):
    config.addinivalue_line("markers", "solo: measures latency; run alone, after the parallel phase")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    rank = {m: i for i, m in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda it: (rank.get(it.path.stem, len(rank)), it.path.stem))  # stable: a module's own order is kept
    for it in items:
        if it.path.stem in SOLO: it.add_marker(pytest.mark.solo)
