"Real papermill runs of the real notebooks into a real (temporary SQLite) MLflow store."
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd

from conftest import NBS, ROOT, cli
from sixstack.tracking.runner import run_notebook, sweep, tiny_notebook
from sixstack.tracking.pipeline import run_pipeline
from sixstack.tracking.replay import replay
from sixstack.tracking.store import Spool
from sixstack.tracking.mlops import MLOpsIntegration


def _info(settings, run_id): return MLOpsIntegration(settings=settings).get_run(run_id)


def _artifacts(settings, run_id, path=""):
    c = MLOpsIntegration(settings=settings).client
    out = []
    for f in c.list_artifacts(run_id, path):
        out += _artifacts(settings, run_id, f.path) if f.is_dir else [f.path]
    return out


def test_notebook_00_as_a_run(settings, sample):
    r = run_notebook(NBS / "00_data_validation.ipynb", {"train_path": str(sample["train"]), "test_path": str(sample["test"])},
                     settings=settings, progress=False)
    assert r.ok, r.error
    info = _info(settings, r.run_id)
    assert info["status"] == "FINISHED"
    assert info["params"]["train_path"] == str(sample["train"]) and info["params"]["alpha"] == "0.01"
    assert info["metrics"]["rows_train"] == 600 and info["metrics"]["rows_test"] == 200
    assert 0 < info["metrics"]["quality_score"] <= 100 and info["metrics"]["wall_time_s"] > 0
    arts = _artifacts(settings, r.run_id)
    assert {"notebook/00_data_validation.ipynb", "reports/data_report.html", "data/profile.json", "handoff.json"} <= set(arts)
    executed = nbformat.read(r.output, as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)
    assert (r.output.parent / "data_report.html").exists()


def test_pipeline_parent_with_children(settings, sample):
    # 00 and 01 here; the training notebooks' children are checked in test_ml_pipeline.py
    res = run_pipeline({"train_path": str(sample["train"]), "test_path": str(sample["test"]), "external_path": str(sample["external"])},
                       [NBS / "00_data_validation.ipynb", NBS / "01_experiment_tracking.ipynb"], settings=settings)
    assert res.status == "FINISHED", [s.error for s in res.steps]
    names = [s.name for s in res.steps]
    assert names[:2] == ["00_data_validation", "01_experiment_tracking"]
    for s in res.steps:
        info = _info(settings, s.run_id)
        assert info["tags"]["mlflow.parentRunId"] == res.run_id and info["status"] == "FINISHED"
    tracking = _info(settings, res.steps[1].run_id)
    assert tracking["params"]["upstream_run_id"] == res.steps[0].run_id  # explicit hand-over
    ctx = json.loads(MLOpsIntegration(settings=settings).download_artifact("context/run_context.json", res.steps[1].run_id).read_text())
    handoff = MLOpsIntegration(settings=settings).read_handoff(res.steps[0].run_id)
    assert handoff["full_train_path"] == str(sample["train"]) and "/splits/" in handoff["train_path"] and handoff["holdout_path"]
    assert len(pd.read_csv(handoff["train_path"])) == 540 and len(pd.read_csv(handoff["holdout_path"])) == 60
    assert ctx["data_path"] == handoff["train_path"] and len(ctx["data_fingerprint"]) == 16 and ctx["packages"]["mlflow"]
    parent = _info(settings, res.run_id)
    assert parent["status"] == "FINISHED" and parent["metrics"]["n_failed"] == 0
    board = (res.reports / "01_experiment_tracking" / "leaderboard.md").read_text()
    assert "00_data_validation" in board and "recent pipeline run" in board


def test_sweep_2x2(settings, sample):
    summary = sweep(NBS / "00_data_validation.ipynb", {"alpha": [0.01, 0.05], "psi_threshold": [0.05, 0.2]}, jobs=2,
                    fixed={"train_path": str(sample["train"]), "test_path": str(sample["test"])}, settings=settings)
    assert len(summary) == 4 and (summary["status"] == "FINISHED").all()
    assert set(map(tuple, summary[["alpha", "psi_threshold"]].values)) == {(0.01, 0.05), (0.01, 0.2), (0.05, 0.05), (0.05, 0.2)}
    assert (summary["key_metric"] == "quality_score").all() and summary["value"].between(0, 100).all()
    m = MLOpsIntegration(settings=settings)
    sweeps = m.search_runs("tags.`sixstack.kind` = 'sweep'")
    assert len(sweeps) == 1
    children = m.search_runs(f"tags.mlflow.parentRunId = '{sweeps['run_id'][0]}'")
    assert len(children) == 4 and set(children["params.alpha"]) == {"0.01", "0.05"}
    assert "sweep_summary.csv" in _artifacts(settings, sweeps["run_id"][0])


def test_failing_notebook_gives_failed_run_with_notebook(settings, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,Personality\n1,Ambivert\n")
    r = run_notebook(NBS / "00_data_validation.ipynb", {"train_path": str(bad)}, settings=settings, progress=False)
    assert r.status == "FAILED" and "DataValidationError" in r.error and "missing column" in r.error
    info = _info(settings, r.run_id)
    assert info["status"] == "FAILED" and "DataValidationError" in info["tags"]["sixstack.error"]
    assert "notebook/00_data_validation.ipynb" in _artifacts(settings, r.run_id)
    executed = nbformat.read(r.output, as_version=4)
    assert any(o.get("ename") == "DataValidationError" for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", []))


def test_pipeline_with_tracking_down_then_replay(settings, sample, monkeypatch, tmp_path):
    from sixstack.config import get_settings
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    down = get_settings()
    res = run_pipeline({"train_path": str(sample["train"]), "test_path": str(sample["test"]), "stacks": "C", "methods": "none"},
                       settings=down)
    assert res.status == "DEFERRED", [s.error for s in res.steps]  # trained; registration and what follows wait for the store
    assert [s.status for s in res.steps] == ["FINISHED"] * 6 + ["DEFERRED"] * 3, [(s.name, s.status, s.error) for s in res.steps]
    assert res.run_id.startswith("local-") and all(s.run_id.startswith("local-") for s in res.steps)
    recs = Spool(down.spool_path).records()
    spooled = {}
    for r in recs:
        d = spooled.setdefault(r["run"], {"params": {}, "metrics": {}})
        if r["op"] == "params": d["params"].update(r["params"])
        if r["op"] == "metrics": d["metrics"].update(r["metrics"])
    assert spooled[res.steps[0].run_id]["metrics"]["rows_train"] == 600  # the job's own metrics were spooled too
    ids = replay(settings)  # into the temporary SQLite store
    assert set(ids) == set(spooled)
    status = {s.run_id: "SCHEDULED" if s.deferred else "FINISHED" for s in res.steps} | {res.run_id: "SCHEDULED"}
    for key, d in spooled.items():
        info = _info(settings, ids[key])
        assert info["params"] == d["params"] and info["metrics"] == d["metrics"], key
        assert info["status"] == status[key], (key, info["status"])
    assert _info(settings, ids[res.steps[0].run_id])["tags"]["mlflow.parentRunId"] == ids[res.run_id]
    assert "notebook/00_data_validation.ipynb" in _artifacts(settings, ids[res.steps[0].run_id])


def test_cli_run_notebook_and_unknown_parameter(settings, sample):
    r = cli("run-notebook", NBS / "00_data_validation.ipynb", "-r", "train_path", sample["train"], "-p", "alpha", "0.05")
    assert r.returncode == 0, r.stderr
    assert "00_data_validation FINISHED" in r.stdout
    r = cli("run-notebook", NBS / "00_data_validation.ipynb", "-p", "nope", "1")
    assert r.returncode == 2 and "has no parameter(s) nope" in r.stderr and "Traceback" not in r.stderr

def _run(nbs, settings_env, *extra):
    cmd = [str(Path(sys.executable).with_name("sixstack")), "run", "--n-train", "300", "-p", "x", "4", *extra, "--notebooks", *map(str, nbs)]
    return subprocess.Popen(cmd, cwd=ROOT, env=settings_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_two_runs_at_once_then_a_third_reuses(settings, tmp_path):
    nbs = [tiny_notebook(tmp_path / f"{i}_tiny.ipynb") for i in range(3)]
    env = dict(os.environ)  # the `settings` fixture put this test's store in the environment
    first = [_run(nbs, env) for _ in range(2)]
    outs = [p.communicate(timeout=600)[0] for p in first]
    for p, out in zip(first, outs): print(f"exit {p.returncode}:\n{out}")  # shown in full if the test fails
    assert all(p.returncode == 0 for p in first), [p.returncode for p in first]
    third = _run(nbs, env); out = third.communicate(timeout=600)[0]
    assert third.returncode == 0 and out.count("REUSED") == 3 and "3 steps reused" in out, out
    m = MLOpsIntegration(settings=settings)
    parents = m.search_runs("tags.`sixstack.kind` = 'pipeline'")
    assert len(parents) == 3 and set(parents["status"]) == {"FINISHED"}
    reused = m.search_runs("tags.`sixstack.status` = 'REUSED'")
    assert 3 <= len(reused) <= 6  # the third reuses all three; of the first two, one may reuse a step the other finished
    for pid in parents["run_id"]:  # every pipeline shows its three steps, each FINISHED (run or reused)
        kids = m.search_runs(f"tags.mlflow.parentRunId = '{pid}'")
        assert len(kids) == 3 and set(kids["status"]) == {"FINISHED"}, kids
    executed = m.search_runs("tags.`sixstack.kind` = 'notebook' and tags.`sixstack.status` = 'FINISHED'")
    assert set(reused["tags.sixstack.reused_from"]) <= set(executed["run_id"])  # each names a run that did the work
    for rid in reused["run_id"]: assert m.read_handoff(rid) == {"x": 4}
    plan = subprocess.run([str(Path(sys.executable).with_name("sixstack")), "run", "--n-train", "300", "-p", "x", "5", "--plan",
                           "--notebooks", *map(str, nbs)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert plan.returncode == 0 and "parameter x: '4' → '5'" in plan.stdout and "3 to run, 0 to reuse" in plan.stdout, plan.stdout


def test_a_job_sent_to_a_kernel_still_warming_up_runs(settings, tmp_path):
    "A step reused in a moment leaves the next step's kernel no time to warm up: the job waits for it, then runs."
    from sixstack.tracking.runner import WarmKernel
    nb = tiny_notebook(tmp_path / "tiny.ipynb")
    for i in range(4):  # before `WarmKernel.ready`, one try in two to five hung here for good
        r = run_notebook(nb, {"x": i}, settings=settings, kernel=WarmKernel(nb, settings))
        assert r.ok and _info(settings, r.run_id)["metrics"]["double"] == 2 * i, r.error
