"Another table end to end: scikit-learn's bundled breast-cancer data (569 rows, 30 numeric features) under its own contract."
import json

import httpx
import numpy as np
import pandas as pd
from conftest import cli, start_server


def cancer_files(folder):
    "The breast-cancer table as train.csv (455 rows) and an unlabelled test.csv (114), and its inferred contract."
    from sklearn.datasets import load_breast_cancer
    from sixstack.data.tables import contract_toml, infer_contract
    bc = load_breast_cancer(as_frame=True).frame
    bc = bc.assign(diagnosis=np.where(bc.pop("target") == 0, "malignant", "benign"))
    bc.insert(0, "id", range(len(bc)))
    bc = bc.sample(frac=1, random_state=0).reset_index(drop=True)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {k: folder / f"{k}.csv" for k in ("train", "test")} | {"contract": folder / "cancer.toml"}
    paths["contract"].write_text(contract_toml(infer_contract(bc, "diagnosis", "malignant", name="breast_cancer")))
    bc.iloc[:455].to_csv(paths["train"], index=False)
    bc.iloc[455:].drop(columns="diagnosis").to_csv(paths["test"], index=False)
    return paths


def test_breast_cancer_end_to_end_then_served(settings, tmp_path):
    "`sixstack run --contract` runs 00-08 on the other table; `sixstack serve` answers its columns and refuses ours."
    p = cancer_files(tmp_path / "cancer")
    r = cli("run", "--contract", p["contract"], "--train", p["train"], "--test", p["test"], "--profile", "fast",
            "-r", "stacks", "A,D,E",  # every model family (B and F are A's five again, wider or with noise)
            "-p", "ab_seeds", "0", "-p", "n_normal", "200", "-p", "n_drifted", "100", "-p", "min_rows", "100",
            "-p", "max_latency_ms", "None",  # the table is under test, not the gate's latency check (a busy machine's p99 varies)
            timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for step in ("00_data_validation", "04_model_stacks", "06_model_registry", "07_serving", "08_monitoring"):
        assert f"{step:<24} FINISHED" in r.stdout, r.stdout
    import re
    runs = dict(re.findall(r"^    (\d\d_\w+) +([0-9a-f]{32})$", r.stdout, re.M))  # the closing lines' step runs
    assert len(runs) == 9 and "03_augmentation" in runs, r.stdout[-2000:]  # (what `sixstack tune --upstream-run-id` takes)
    sub = pd.read_csv(next((tmp_path / "reports").rglob("submission.csv")))
    assert list(sub.columns) == ["id", "diagnosis"] and len(sub) == 114 and set(sub["diagnosis"]) <= {"benign", "malignant"}
    proc, url = start_server(settings, settings.registry_name, tmp_path / "log.db")
    try:
        rec = json.loads(pd.read_csv(p["test"]).drop(columns="id").head(1).to_json(orient="records"))[0]
        ok = httpx.post(f"{url}/predict", json=rec, timeout=30)
        assert ok.status_code == 200 and ok.json()["label"] in ("benign", "malignant"), ok.text
        assert 0 <= ok.json()["probability"] <= 1
        why = httpx.post(f"{url}/predict", params={"explain": "true"}, json=rec, timeout=120).json()  # 30 features: sampled
        assert list(why["contributions"]) == list(rec), why
        assert abs(why["base"] + sum(why["contributions"].values()) - why["probability"]) < 1e-9, why
        from sixstack.data.tables import FEATURES, make_frame
        ours = json.loads(make_frame(5, seed=0)[FEATURES].dropna().head(1).to_json(orient="records"))[0]
        bad = httpx.post(f"{url}/predict", json=ours, timeout=30)
        err = bad.json()["error"]
        assert bad.status_code == 422 and "missing fields 'mean radius', 'mean texture'" in err and "worst fractal dimension" in err, err
        assert "unknown fields 'Time_spent_Alone'" in err, err
        page = httpx.get(url + "/", timeout=30).text
        assert "Malignant or benign?" in page and 'id="mean radius"' in page and "30 answers" in page
        spec = httpx.get(f"{url}/openapi.json", timeout=30).json()
        assert "worst area" in json.dumps(spec) and "Stage_fear" not in json.dumps(spec)
    finally: proc.terminate(); proc.wait(10)
    mon = cli("monitor", "--contract", p["contract"], "--db", f"sqlite:///{tmp_path}/log.db", "--last", "2")
    assert mon.returncode == 0 and "window" in mon.stdout, mon.stdout + mon.stderr
