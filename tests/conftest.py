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
