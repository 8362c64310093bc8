"""Debian's headless Chromium over the DevTools protocol, for the page tests and `docs/screenshots.py`."""
import base64
import json
import subprocess
import time

import httpx


class Chromium:
    "Debian's headless Chromium driven over the DevTools protocol (websocket-client): a real browser, no driver."
    def __init__(self, profile):
        import websocket
        self.proc = subprocess.Popen(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                      "--disable-background-networking", "--disable-component-update", "--disable-sync",
                                      "--remote-debugging-port=0", f"--user-data-dir={profile}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file, deadline = profile / "DevToolsActivePort", time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            assert time.monotonic() < deadline and self.proc.poll() is None, "chromium did not start"
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        page = next(t for t in httpx.get(f"http://127.0.0.1:{port}/json/list").json() if t["type"] == "page")
        self.ws, self.n = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60, suppress_origin=True), 0

    def call(self, method, **params):
        self.n += 1; self.ws.send(json.dumps({"id": self.n, "method": method, "params": params}))
        while True:  # events arrive in between; the answer carries our id
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.n:
                assert "error" not in msg, msg
                return msg["result"]

    def js(self, expression):
        r = self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        assert "exceptionDetails" not in r, r
        return r["result"].get("value")

    def wait(self, expression, timeout=30):
        deadline = time.monotonic() + timeout
        while not self.js(expression):
            assert time.monotonic() < deadline, f"never true: {expression}"
            time.sleep(0.05)

    def screenshot(self, path, whole:bool=True):
        "The page as a PNG at `path` (whole: beyond the viewport too)."
        shot = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=whole)["data"]
        path.parent.mkdir(parents=True, exist_ok=True); path.write_bytes(base64.b64decode(shot))

    def close(self): self.ws.close(); self.proc.terminate(); self.proc.wait(10)


def fill(browser, rec):
    "Type `rec` into the form fields named by its keys (None: empty)."
    browser.js(f"""for (const [f, v] of Object.entries({json.dumps(rec)})) {{
        const el = document.getElementById(f); el.value = v === null ? '' : String(v);
        el.dispatchEvent(new Event('input', {{bubbles: true}})); el.dispatchEvent(new Event('change', {{bubbles: true}}));
    }}""")
