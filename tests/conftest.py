"Shared fixtures: every test gets its own real MLflow store (a temporary SQLite file) and folders."
import os
import sys
from pathlib import Path

import pytest

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
    from sixstack.data import write_sample
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
    from sixstack.data import LABEL
    from sixstack.ensemble import nested_predictions, quick_ensemble
    from sixstack.features import encode_labels
    from sixstack.monitoring import REFERENCE_ARTIFACT, reference_profile
    from sixstack.packaging import input_example
    from sixstack.tracking import MLOpsIntegration
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
    from sixstack.serving import start_service
    db = monitor_db if "://" in str(monitor_db) else f"sqlite:///{monitor_db}"
    out = open(log_file or tempfile.mktemp(prefix="sixstack-server-", suffix=".log"), "w")  # a file, not a pipe nobody reads
    return start_service(settings.tracking_uri, name, monitor_db=db, args=list(args), timeout=60,
                         env={"MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_EXPERIMENT_NAME": settings.experiment_name} | (env or {}),
                         cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


class Postgres:
    "A throw-away PostgreSQL cluster (Debian's postgresql) on 127.0.0.1 with password authentication."
    PASSWORD = "pg-secret-pw"

    def __init__(self, root):
        import glob, shutil, subprocess, time
        from sixstack.serving import free_port
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        path = found[-1] if found else shutil.which("initdb")
        if not path: pytest.fail("PostgreSQL is not installed: run `make postgres` (Debian's postgresql package)")
        self.bin, self.dir, self.port = os.path.dirname(path), str(root), free_port()
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user: shutil.chown(self.dir, "postgres")
        pw = os.path.join(self.dir, "pw"); open(pw, "w").write(self.PASSWORD)
        if self.as_user: shutil.chown(pw, "postgres")
        subprocess.run(self.as_user + [f"{self.bin}/initdb", "-D", f"{self.dir}/data", "-A", "scram-sha-256", "-U", "postgres", f"--pwfile={pw}", "--no-sync"],
                       check=True, capture_output=True)
        self.proc = subprocess.Popen(self.as_user + [f"{self.bin}/postgres", "-D", f"{self.dir}/data", "-p", str(self.port), "-k", self.dir,
                                                     "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for _ in range(300):
            if self.proc.poll() is not None: pytest.fail(f"postgres exited: {self.proc.stderr.read()[-2000:]}")
            if os.path.exists(os.path.join(self.dir, f".s.PGSQL.{self.port}")): break
            time.sleep(0.1)

    def url(self, db="postgres", driver="postgresql+psycopg"):
        return f"{driver}://postgres:{self.PASSWORD}@127.0.0.1:{self.port}/{db}"

    def create_db(self, name):
        "A new empty database; returns its URL."
        import psycopg
        with psycopg.connect(self.url(driver="postgresql"), autocommit=True) as c: c.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self):
        self.proc.terminate(); self.proc.wait(30)


@pytest.fixture(scope="session")
def pg(tmp_path_factory):
    "One PostgreSQL cluster for the whole test session."
    import shutil, tempfile
    d = tempfile.mkdtemp(prefix="sixstack-pg-")
    server = Postgres(d)
    yield server
    server.stop(); shutil.rmtree(d, ignore_errors=True)
