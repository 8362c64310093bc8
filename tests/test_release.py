"""`sixstack release` end to end against a temporary store: a release that lands, one whose gate refuses, one whose
candidate cannot be served — and in neither failure does production move."""
import json
import sys

from conftest import cli, train_model


def _artifact_dir(settings, version):
    "The folder of a registered version's model files in the temporary store."
    from pathlib import Path
    from urllib.parse import urlparse
    from sixstack.tracking.mlops import MLOpsIntegration
    from sixstack.training.registry import describe
    c = MLOpsIntegration(settings=settings).client
    return Path(urlparse(c.get_run(describe(version, settings)["run_id"]).info.artifact_uri).path) / "model"


def test_release_lands_and_a_refused_gate_or_a_broken_candidate_never_reaches_production(settings, tmp_path):
    from sixstack.data.tables import load_table
    from sixstack.tracking.mlops import MLOpsIntegration
    from sixstack.training.registry import aliases, describe, register
    summary = tmp_path / "release.json"
    r = cli("release", "--tests", f"{sys.executable} -c pass", "--n-train", "1500", "--no-latency-gate", "--summary", summary, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = json.loads(summary.read_text())
    assert [s["step"] for s in out["steps"]] == ["tests", "train", "gate", "smoke", "promote"] and all(s["ok"] for s in out["steps"])
    v1 = out["version"]
    assert aliases(settings)["production"] == aliases(settings)["candidate"] == v1
    assert "held-out rows as the registry's model" in out["steps"][3]["message"]
    assert "production: (none) -> version " + v1 in r.stdout
    envs = tmp_path / "environments.toml"  # the same version into another environment's registry, through its own gate
    envs.write_text(f'[prod]\ntracking_uri = "sqlite:///{tmp_path}/prod.db"\nregistry_name = "prod_model"\n')
    r = cli("release", "--steps", "promote", "--version", v1, "--to-env", "prod", "--no-latency-gate", env={"SIXSTACK_ENVIRONMENTS": str(envs)})
    assert r.returncode == 0 and "copied to prod as version 1, now its production" in r.stdout, r.stdout + r.stderr

    # a second version with files of its own (a small real ensemble), on the first one's held-out rows
    hold_path = MLOpsIntegration(settings=settings).read_handoff(describe(v1, settings)["run_id"])["holdout_path"]
    hold = load_table(hold_path)
    uri, _ = train_model(settings, hold.iloc[:400], handoff={"holdout_path": hold_path})
    v2 = register(uri, settings)

    r = cli("release", "--steps", "gate,smoke,promote", "--version", v2, "--margin", "-0.5", "--no-latency-gate")
    assert r.returncode == 3, r.stdout + r.stderr  # it would have to beat production by 50 points
    assert "FAILED gate" in r.stdout and "worse than the allowed margin -0.5" in r.stdout and "smoke" not in r.stdout.split("FAILED gate")[1]
    assert aliases(settings)["production"] == v1 and aliases(settings)["candidate"] == v1

    r = cli("release", "--steps", "gate", "--version", v2, "--margin", "0.5", "--no-latency-gate")
    assert r.returncode == 0 and aliases(settings)["candidate"] == v2, r.stdout + r.stderr
    mlmodel = _artifact_dir(settings, v2) / "MLmodel"
    mlmodel.write_text(mlmodel.read_text() + "\n# changed after the gate\n")  # what a writer of the artifact store could do
    r = cli("release", "--steps", "smoke,promote", "--version", v2, "--smoke-timeout", "30")
    assert r.returncode == 4, r.stdout + r.stderr
    assert "FAILED smoke" in r.stdout and "do not match the digest" in r.stdout and "promote" not in r.stdout.split("FAILED smoke")[1]
    assert aliases(settings)["production"] == v1  # the candidate never reached production


def test_ci_files_are_checked_and_a_broken_one_fails(tmp_path):
    "`ci/check_ci.py` (run by `make ci-check`): the shipped files pass; a mistake in either is found and named."
    import subprocess
    from conftest import ROOT
    check = lambda *a: subprocess.run([sys.executable, str(ROOT / "ci" / "check_ci.py"), *map(str, a)], capture_output=True, text=True)
    r = check()
    assert r.returncode == 0, r.stdout + r.stderr
    assert "actionlint: 0 problem(s) in 1 file(s)" in r.stdout and "2 jobs" in r.stdout
    assert "promote      stage production   when manual     needs candidate" in r.stdout  # the approval is a manual job
    gh = (ROOT / ".github" / "workflows" / "release.yml").read_text()
    assert "environment: production" in gh and "sixstack release --steps promote" in gh
    bad_gh, bad_gl = tmp_path / "release.yml", tmp_path / "gitlab-ci.yml"
    bad_gh.write_text(gh.replace("needs: candidate", "needs: candidat").replace("secrets.MLFLOW_TRACKING_URI", "secret.MLFLOW_TRACKING_URI"))
    gl = (ROOT / ".gitlab-ci.yml").read_text()
    bad_gl.write_text(gl.replace("needs: [candidate]", "needs: [candidat]").replace("when: manual", "when: by_hand"))
    r = check("--github", bad_gh, "--gitlab", bad_gl)
    assert r.returncode == 1
    for said in ('needs job "candidat" which does not exist', 'undefined variable "secret"', "needs 'candidat', which is not a job",
                 "when 'by_hand' is not one of"):
        assert said in r.stdout, (said, r.stdout)
