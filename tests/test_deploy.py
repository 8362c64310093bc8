"""The production stack for real: PostgreSQL (Debian's, a cluster of its own) and `mlflow server` (two workers) on it.

One fast pipeline runs against the stack; everything is then checked through the server's REST API (MlflowClient over
HTTP), not its database: runs, metrics, executed notebooks, the model, the registry alias. The same stack then carries
distributed tuning (two worker processes on one Optuna study in PostgreSQL, one killed mid-trial), two service replicas
that follow the registry through a promotion and a rollback under steady traffic, and a copy of a version from this
"staging" store to a "prod" store through prod's gate. The S3 variant (moto's S3-API server standing in for S3) is its
own test.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest

from conftest import ROOT, cli
from sixstack.data.tables import FEATURES, write_sample
from sixstack.deploy.stack import Stack

BIN = Path(sys.executable).parent
NB04 = str(ROOT / "nbs" / "04_model_stacks.ipynb")


@pytest.fixture(scope="module")
def stack():
    "The stack, up for this module, with the environment that points everything at it."
    root = Path(tempfile.mkdtemp(prefix="sixstack-deploy-")); os.chmod(root, 0o755)  # the postgres user must reach it
    st = Stack(root / "stack")
    try: secs = st.up(fsync=False, workers=2)
    except RuntimeError as e: pytest.fail(str(e))
    print(f"stack up in {secs:.1f}s: {st.status()}")
    env = st.env() | {"SIXSTACK_REPORTS_DIR": str(root / "reports"), "SIXSTACK_DATA_DIR": str(root / "data"),
                      "SIXSTACK_SPOOL": str(root / "spool" / "spool.jsonl"), "MLFLOW_EXPERIMENT_NAME": "deploy",
                      "MODEL_REGISTRY_NAME": "deploy_model", "SIXSTACK_HOME": str(ROOT), "SIXSTACK_ENV": ""}
    yield st, env, root
    st.down(); shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def pipeline(stack):
    "The fast pipeline (stacks C and E) on the stack; returns the parent run id and the run's output."
    st, env, root = stack
    sample = write_sample(root / "sample", n_train=600, n_test=200, n_external=200)
    t0 = time.monotonic()
    r = cli("run", "--train", sample["train"], "--test", sample["test"], "--external", sample["external"], "--profile", "fast",
            "-r", "stacks", "C,E", "-r", "methods", "none", "-p", "n_normal", "100", "-p", "n_drifted", "250", "-p", "n_check", "50",
            "-p", "ab_seeds", "0",
            "-p", "max_latency_ms", "None",  # the landing is under test, not the gate's latency check (a busy machine's p99 varies)
            env=env, timeout=900)
    print(f"pipeline on the stack: {time.monotonic() - t0:.1f}s\n{r.stdout[-1500:]}")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return re.search(r"parent run (\S+)", r.stdout).group(1), r.stdout


def _client(env):
    from mlflow.tracking import MlflowClient
    return MlflowClient(env["MLFLOW_TRACKING_URI"])  # the server's REST API


def test_pipeline_lands_on_the_server(stack, pipeline):
    st, env, root = stack
    parent, out = pipeline
    assert f"MLflow UI: {env['MLFLOW_TRACKING_URI']}" in out and "mlflow ui --backend-store-uri" not in out
    c = _client(env)
    exp = c.get_experiment_by_name("deploy")
    kids = c.search_runs([exp.experiment_id], f"tags.`mlflow.parentRunId` = '{parent}'")
    steps = {k.data.tags["mlflow.runName"]: k for k in kids}
    assert len(steps) == 9 and all(k.info.status == "FINISHED" for k in kids), {n: k.info.status for n, k in steps.items()}
    for name, k in steps.items():  # every step's executed notebook is an artifact on the server
        assert any(a.path.endswith(".ipynb") for a in c.list_artifacts(k.info.run_id, "notebook")), name
    ens = next(k for n, k in steps.items() if n.startswith("05_ensemble"))
    assert 0.85 < ens.data.metrics["ensemble_accuracy"] <= 1 and "served_latency_p50_ms" in ens.data.metrics
    assert {"MLmodel", "python_model.pkl"} <= {Path(a.path).name for a in c.list_artifacts(ens.info.run_id, "model")}
    prod = c.get_model_version_by_alias("deploy_model", "production")
    assert prod.run_id == ens.info.run_id and prod.tags["gate"].startswith("passed")
    # proxied artifacts: the files are in the stack's artifact folder, written by the server
    assert list((st.root / "artifacts").rglob("MLmodel"))


def test_service_and_monitoring_on_the_stacks_postgres(stack, pipeline):
    "The service loads production from the server and logs to the stack's PostgreSQL; `sixstack monitor` reads it there."
    st, env, root = stack
    from sixstack.serving.service import start_service
    import sqlalchemy as sa
    proc, url = start_service(env["MLFLOW_TRACKING_URI"], "deploy_model", monitor_db=env["SIXSTACK_MONITOR_DB"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        rec = {f: None for f in FEATURES} | {"Time_spent_Alone": 9.0, "Stage_fear": "Yes"}
        got = httpx.post(f"{url}/predict/batch", json={"records": [rec] * 30}, timeout=30)
        assert got.status_code == 200 and got.json()["model_version"] == "1"
    finally: proc.terminate(); proc.wait(10)
    os.environ["PGPASSFILE"] = env["PGPASSFILE"]
    with sa.create_engine(env["SIXSTACK_MONITOR_DB"]).connect() as c:
        assert c.execute(sa.text("SELECT count(*) FROM predictions WHERE model_version = '1'")).scalar() == 30
    r = cli("monitor", "check", "--last", "30", "--min-rows", "10", env=env)
    assert r.returncode in (0, 1) and "window last 30" in r.stdout, r.stdout + r.stderr


def _study(env, pattern):
    "The study whose name matches `pattern` (StopIteration while there is none)."
    import optuna
    os.environ["PGPASSFILE"] = env["PGPASSFILE"]
    storage = optuna.storages.RDBStorage(env["SIXSTACK_OPTUNA_STORAGE"])
    name = next(s.study_name for s in optuna.get_all_study_summaries(storage) if re.match(pattern, s.study_name))
    return optuna.load_study(study_name=name, storage=storage)


def _trials(env, pattern):
    study = _study(env, pattern)
    return study.study_name, study.trials


def test_two_tuning_workers_share_a_study_and_survive_a_kill(stack, pipeline):
    "Two `sixstack tune` workers on stack C's study in PostgreSQL; one is SIGKILLed mid-trial; 04 then takes the study as it is."
    st, env, root = stack
    parent, _ = pipeline
    c = _client(env)
    exp = c.get_experiment_by_name("deploy")
    up = c.search_runs([exp.experiment_id], f"tags.`mlflow.parentRunId` = '{parent}' and tags.`mlflow.runName` LIKE '03_augmentation%'")[0]
    budget = 12
    t0 = time.monotonic()
    proc = subprocess.Popen([str(BIN / "sixstack"), "tune", "--upstream-run-id", up.info.run_id, "--stacks", "C", "--profile", "fast",
                             "--n-trials", str(budget), "--workers", "2", "--heartbeat", "1", "--grace", "4"],
                            env=os.environ | env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    pids = []
    for line in proc.stdout:
        if line.startswith("2 workers: pids"): pids = [int(p) for p in line.split()[3:]]; break
    assert len(pids) == 2, "the workers did not start"
    victim, killed, study = pids[0], None, None
    deadline = time.monotonic() + 240
    while killed is None and time.monotonic() < deadline:  # kill the first worker while it runs a trial
        if study is None:  # once the workers have created it; then poll it with one storage (fast, so no trial is missed)
            try: study = _study(env, r"sixstack-C-")
            except StopIteration: time.sleep(0.05); continue
        trials = study.get_trials(deepcopy=False)
        mine = [t for t in trials if t.state.name == "RUNNING" and t.params  # mid-trial: its parameters drawn
                and t.user_attrs.get("worker", "").endswith(f":{victim}")]
        if mine: os.kill(victim, signal.SIGKILL); killed = mine[0].number
        elif sum(t.state.name in ("COMPLETE", "PRUNED") for t in trials) >= budget: break  # too late: all done
        else: time.sleep(0.02)
    out = proc.stdout.read(); proc.wait(600)
    wall = time.monotonic() - t0
    print(f"2 workers, {budget} trials, one killed mid-trial {killed}: {wall:.1f}s\n{out}")
    assert killed is not None and proc.returncode == 0, out
    assert f"worker {victim} ended with signal 9" in out
    name, trials = _trials(env, r"sixstack-C-")
    states = [t.state.name for t in trials]
    assert states.count("COMPLETE") + states.count("PRUNED") == budget, states  # exactly the budget, across workers
    assert trials[killed].state.name == "FAIL"  # the killed worker's trial: failed by its missing heartbeat ...
    retry = [t for t in trials if t.system_attrs.get("failed_trial") == killed]
    # ... and run again with the parameters it had drawn when it died (the rest drawn anew)
    assert retry and retry[0].params.items() >= trials[killed].params.items(), (retry and retry[0].params, trials[killed].params)
    assert retry[0].state.name in ("COMPLETE", "PRUNED")
    done = [json.dumps(t.params, sort_keys=True) for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(done) == len(set(done)), "a trial's parameters ran twice"
    assert len({t.user_attrs.get("worker") for t in trials}) >= 2
    # the 04 job finds the study tuned: no new trial
    r = cli("run-notebook", NB04, "-p", "upstream_run_id", up.info.run_id, "-r", "stacks", "C", "-p", "profile", "fast",
            "-p", "n_trials", str(budget), env=env, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert len(_trials(env, re.escape(name))[1]) == len(trials)


def test_replicas_follow_a_promotion_and_a_rollback(stack, pipeline):
    "Two replicas with --watch under a steady request loop: promote v2, roll back to v1; no request fails."
    st, env, root = stack
    from sixstack.training import registry as reg
    from sixstack.config import get_settings
    from sixstack.serving.service import start_service
    settings = get_settings(env=os.environ | env)
    v1 = reg.aliases(settings)["production"]
    src = reg.describe(v1, settings)["source"]
    lineage = {k: v for k, v in reg.describe(v1, settings)["tags"].items() if k not in reg._NOT_COPIED}
    v2 = reg.register(src, settings, lineage | {"replica_test": "1"})  # the same files, a new version
    reps = [start_service(env["MLFLOW_TRACKING_URI"], "deploy_model", monitor_db=env["SIXSTACK_MONITOR_DB"], args=["--watch", "1s"],
                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(2)]
    seen, failures, stop = {0: [], 1: []}, [], threading.Event()
    rec = {f: None for f in FEATURES} | {"Time_spent_Alone": 2.0, "Stage_fear": "No"}
    def loop(i, url):
        with httpx.Client(timeout=10) as h:
            while not stop.is_set():
                try:
                    r = h.post(f"{url}/predict", json=rec)
                    if r.status_code != 200: failures.append((i, r.status_code, r.text[:200]))
                    else: seen[i].append((time.monotonic(), r.json()["model_version"]))
                except httpx.HTTPError as e: failures.append((i, type(e).__name__))
                time.sleep(0.02)
    threads = [threading.Thread(target=loop, args=(i, url)) for i, (_, url) in enumerate(reps)]
    try:
        for t in threads: t.start()
        time.sleep(2)
        def rolled_to(v, since, timeout=60):
            "Seconds until every replica answered with version `v` (and kept doing so)."
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                firsts = [next((t for t, ver in seen[i] if t > since and ver == v), None) for i in (0, 1)]
                if all(firsts) and all(seen[i][-1][1] == v for i in (0, 1)): return max(firsts) - since
                time.sleep(0.1)
            raise AssertionError(f"not every replica serves version {v}: {[seen[i][-3:] for i in (0, 1)]}")
        # the replicas' rollout is under test, not the gate's latency check (a busy machine's p99 must not decide it)
        r = cli("registry", "promote", v2, "--no-latency-gate", env=env); assert r.returncode == 0, r.stdout + r.stderr
        up_s = rolled_to(v2, time.monotonic())
        r = cli("registry", "rollback", env=env); assert r.returncode == 0, r.stdout + r.stderr
        down_s = rolled_to(v1, time.monotonic())
    finally:
        stop.set()
        for t in threads: t.join(10)
        for p, _ in reps: p.terminate(); p.wait(10)
    n = sum(len(v) for v in seen.values())
    print(f"rollout to v{v2} on both replicas in {up_s:.1f}s, rollback to v{v1} in {down_s:.1f}s; {n} requests, {len(failures)} failed")
    assert not failures, failures[:5]
    assert up_s < 30 and down_s < 30


def test_promote_across_environments(stack, pipeline, tmp_path):
    "A version copied from staging (the stack's server) to prod (another store) reaches prod's production through prod's gate."
    st, env, root = stack
    envs = tmp_path / "environments.toml"
    envs.write_text('[staging]\ntracking_uri = "${STAGING_TRACKING_URI}"\nregistry_name = "deploy_model"\n'
                    f'[prod]\ntracking_uri = "sqlite:///{tmp_path}/prod.db"\nregistry_name = "prod_model"\n')
    e = env | {"SIXSTACK_ENVIRONMENTS": str(envs), "STAGING_TRACKING_URI": env["MLFLOW_TRACKING_URI"]}
    r = cli("registry", "promote", "1", "--from-env", "staging", "--to-env", "prod", "--no-latency-gate", env=e, timeout=600)  # not a latency test (a busy machine's p99 is not the model's)
    assert r.returncode == 0 and "copied staging:deploy_model to prod:prod_model version 1" in r.stdout, r.stdout + r.stderr
    assert "promoted to production" in r.stdout
    r = cli("--env", "prod", "registry", "show", "1", env=e)
    assert r.returncode == 0 and "copied_from" in r.stdout and "staging:deploy_model/1" in r.stdout, r.stdout + r.stderr
    from sixstack.config import get_settings
    from sixstack.serving.served import load_served
    served = load_served(get_settings(env=os.environ | e, environment="prod"), "prod_model", "production")
    assert served.version == "1"  # prod's own gate passed it, digest intact: the service would load it


def test_s3_variant(tmp_path):
    "The stack with artifacts in an S3 bucket (moto's S3-API server standing in for S3): an artifact lands in the bucket."
    import boto3
    root = Path(tempfile.mkdtemp(prefix="sixstack-s3-")); os.chmod(root, 0o755)
    st = Stack(root / "stack", s3=True)
    try:
        secs = st.up(fsync=False)
        env = st.env()
        os.environ["PGPASSFILE"] = env["PGPASSFILE"]
        from mlflow.tracking import MlflowClient
        c = MlflowClient(env["MLFLOW_TRACKING_URI"])
        run = c.create_run(c.create_experiment("s3-check"))
        (tmp_path / "hello.txt").write_text("hello s3")
        c.log_artifact(run.info.run_id, str(tmp_path / "hello.txt"))
        back = Path(c.download_artifacts(run.info.run_id, "hello.txt", str(tmp_path)))
        assert back.read_text() == "hello s3"
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{st.pids['s3_port']}", aws_access_key_id="stand-in",
                          aws_secret_access_key="stand-in", region_name="us-east-1")
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="sixstack-artifacts").get("Contents", [])]
        assert any(k.endswith("hello.txt") for k in keys), keys
        print(f"S3 variant up in {secs:.1f}s; objects: {keys}")
    finally: st.down(); shutil.rmtree(root, ignore_errors=True)
