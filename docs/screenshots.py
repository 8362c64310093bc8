"""The README's screenshots, from the model `make run` trains: the prediction page answering (and explaining) a
clearly introverted profile, and MLflow's runs page of the pipeline, both in Debian's headless Chromium.

    make run && .venv/bin/python docs/screenshots.py    # the store of `make run` (./mlflow.db), or MLFLOW_TRACKING_URI's
"""
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from browser import Chromium, fill  # noqa: E402

PERSON = {"Time_spent_Alone": 8, "Stage_fear": "Yes", "Social_event_attendance": 1.5, "Going_outside": None,
          "Drained_after_socializing": "Yes", "Friends_circle_size": 3, "Post_frequency": 1}


def page_shot(settings, out:Path, tmp:Path) -> str:
    "The prediction page at phone width after predicting `PERSON`; returns the answer's text."
    from sixstack.serving.service import start_service
    proc, url = start_service(settings.tracking_uri, settings.registry_name, args=["--no-log"])
    b = Chromium(tmp / "chromium-page")
    try:
        b.call("Emulation.setDeviceMetricsOverride", width=390, height=900, deviceScaleFactor=2, mobile=True)
        b.call("Page.enable"); b.call("Page.navigate", url=url + "/")
        b.wait("document.readyState === 'complete' && !!document.getElementById('predict')")
        fill(b, PERSON); b.js("document.getElementById('predict').click()"); b.wait("document.body.dataset.answered === '1'")
        if not b.js("!!document.getElementById('why')"): sys.exit("the served model did not explain its answer (retrain it)")
        b.screenshot(out)
        return b.js("document.getElementById('result').innerText")
    finally: b.close(); proc.terminate(); proc.wait(10)


def runs_shot(settings, out:Path, tmp:Path):
    "MLflow's page for the experiment, as `make ui` opens it: the runs table with the pipeline's runs and datasets."
    from sixstack.cli.main import runs_page
    from sixstack.deploy.stack import MlflowServer
    server = MlflowServer(settings.tracking_uri, tmp / "artifacts", tmp).start()
    b = Chromium(tmp / "chromium-ui")
    try:
        b.call("Emulation.setDeviceMetricsOverride", width=1600, height=760, deviceScaleFactor=1, mobile=False)
        b.call("Page.enable"); b.call("Page.navigate", url=runs_page(server.url, settings))
        b.wait("!!document.body && document.body.innerText.includes('matching runs')", 180); time.sleep(3)  # the table's rows render
        b.js("document.querySelector('button[aria-label=\"Close\"]')?.click()")  # MLflow's assistant panel
        b.js("document.querySelector('button[data-component-id*=\"runnamecellrenderer\"]')?.click()")  # the steps, nested
        b.wait("document.body.innerText.includes('05_ensemble')", 60); time.sleep(2)
        b.screenshot(out, whole=False)
    finally: b.close(); server.stop()


def main():
    from sixstack.config import get_settings
    settings = get_settings()
    tmp = Path(tempfile.mkdtemp(prefix="sixstack-shots-"))
    print(page_shot(settings, ROOT / "docs" / "prediction-page.png", tmp))
    runs_shot(settings, ROOT / "docs" / "mlflow-runs.png", tmp)
    print("wrote docs/prediction-page.png and docs/mlflow-runs.png")


if __name__ == "__main__":
    main()
