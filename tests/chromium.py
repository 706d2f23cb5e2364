"""Headless Chromium over the DevTools protocol, and `bokeh serve` on a free 127.0.0.1 port.

Used by tests/test_viewer.py and benchmarks/bench_viewer.py. The websocket client is tornado's,
which bokeh already depends on: no extra package.
"""
import asyncio
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from tornado.websocket import websocket_connect

from conftest import ROOT
NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

# Injected before any page script: notes when the viewer's text is first drawn (performance.now()).
FIRST_RENDER_JS = """
window.__first_render = null;
(function poll() {
  try {
    const doc = window.Bokeh && Bokeh.documents[0];
    const src = doc && doc.get_model_by_name("cells_source");
    if (doc && doc.is_idle && src && src.data.x.length > 0) { window.__first_render = performance.now(); return; }
  } catch (e) {}
  requestAnimationFrame(poll);
})();
"""

# Page helpers: the text figure's canvas, a pixel signature, a timed widget change.
HELPERS_JS = """
window.__viewer = {
  model(name) { return Bokeh.documents[0].get_model_by_name(name); },
  canvas() { return Bokeh.index.find_one(this.model("text_figure")).canvas_view.primary.canvas; },
  rect() { const r = Bokeh.index.find_one(this.model("text_figure")).el.getBoundingClientRect();
           return [r.left, r.top, r.width, r.height]; },
  signature() {
    const c = this.canvas(), h = Math.min(c.height, 600);
    const d = c.getContext("2d").getImageData(0, 0, c.width, h).data;
    let s = 0;
    for (let i = 0; i < d.length; i += 4 * 5) s = (Math.imul(s, 31) + d[i] + 3 * d[i + 1] + 7 * d[i + 2]) | 0;
    return s;
  },
  async set_and_wait(name, value, timeout_ms) {
    const before = this.signature(), t0 = performance.now();
    this.model(name).value = value;
    while (performance.now() - t0 < timeout_ms) {
      await new Promise(r => requestAnimationFrame(r));
      if (this.signature() !== before) return performance.now() - t0;
    }
    return -1;
  },
};
"""


def find_chromium():
    """Path of a Chromium/Chrome binary, or None."""
    for name in NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url, timeout):
    end = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.read()
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.05)


def _stop(proc):
    """End a process group we started (terminate, then kill)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


class Server:
    """`bokeh serve viewer --args ...` on 127.0.0.1 and a free port; use as a context manager."""

    def __init__(self, *args, env=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/viewer"
        self.log = tempfile.TemporaryFile()
        cmd = [sys.executable, "-m", "bokeh", "serve", str(ROOT / "viewer"), "--address", "127.0.0.1",
               "--port", str(self.port), "--allow-websocket-origin", f"127.0.0.1:{self.port}",
               "--args", *map(str, args)]
        env = dict(os.environ if env is None else env, PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)

    def __enter__(self):
        try:
            self.wait()
        except OSError:
            self.__exit__()
            raise RuntimeError(f"bokeh serve did not start:\n{self.output()}") from None
        return self

    def wait(self, timeout=30):
        """Until the server answers (asks for a static file: no session is made)."""
        _wait_http(f"http://127.0.0.1:{self.port}/static/js/bokeh.min.js", timeout)

    def output(self):
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")

    def __exit__(self, *exc):
        _stop(self.proc)


class Browser:
    """One headless Chromium page driven over CDP; use as a context manager."""

    def __init__(self, width=1400, height=1000):
        exe = find_chromium()
        if exe is None:
            raise FileNotFoundError("no chromium found; install it (apt-get install chromium)")
        self.port = free_port()
        self.profile = tempfile.mkdtemp(prefix="viewer-chromium-")
        self.proc = subprocess.Popen(
            [exe, "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--hide-scrollbars",
             "--no-first-run", "--disable-extensions", "--remote-allow-origins=*",
             *os.environ.get("VIEWER_CHROMIUM_FLAGS", "").split(),
             f"--remote-debugging-port={self.port}", "--remote-debugging-address=127.0.0.1",
             f"--user-data-dir={self.profile}", f"--window-size={width},{height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.loop = asyncio.new_event_loop()
        self.errors = []  # uncaught page exceptions
        self._id = 0
        try:
            pages = json.loads(_wait_http(f"http://127.0.0.1:{self.port}/json/list", 30))
            ws_url = next(p["webSocketDebuggerUrl"] for p in pages if p.get("type") == "page")
            self.ws = self.loop.run_until_complete(self._connect(ws_url))
            self.call("Page.enable")
            self.call("Runtime.enable")
            self.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                      deviceScaleFactor=1, mobile=False)
        except BaseException:
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if getattr(self, "ws", None) is not None:
            self.ws.close()
        _stop(self.proc)
        self.loop.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def call(self, method, timeout=60, **params):
        """Send one CDP command and return its result (page events seen meanwhile are kept)."""
        self._id += 1
        return self.loop.run_until_complete(asyncio.wait_for(self._call(self._id, method, params), timeout))

    @staticmethod
    async def _connect(url):
        return await websocket_connect(url, max_message_size=1 << 28)

    async def _call(self, want, method, params):
        await self.ws.write_message(json.dumps({"id": want, "method": method, "params": params}))
        while True:
            msg = await self.ws.read_message()
            if msg is None:
                raise RuntimeError("chromium closed the DevTools connection")
            m = json.loads(msg)
            if m.get("method") == "Runtime.exceptionThrown":
                self.errors.append(m["params"]["exceptionDetails"].get("text", "?"))
            if m.get("id") == want:
                if "error" in m:
                    raise RuntimeError(f"CDP {m['error']}")
                return m["result"]

    def js(self, expression, timeout=60):
        """Evaluate JavaScript in the page (promises awaited); its value."""
        r = self.call("Runtime.evaluate", timeout=timeout, expression=expression, awaitPromise=True,
                      returnByValue=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"page script failed: {r['exceptionDetails']}")
        return r["result"].get("value")

    def open_viewer(self, url, timeout=30):
        """Load url; milliseconds from navigation start to the viewer's text first drawn."""
        self.call("Page.addScriptToEvaluateOnNewDocument", source=FIRST_RENDER_JS + HELPERS_JS)
        self.call("Page.navigate", url=url)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            t = self.js("window.__first_render")
            if t is not None:
                return t
            time.sleep(0.05)
        raise TimeoutError(f"the viewer at {url} did not render its text within {timeout} s")

    def new_tab(self, width=1400, height=1000):
        """Another page of this Chromium, driven over its own DevTools connection."""
        return Tab(self, width, height)

    def screenshot(self, path=None, clip=None):
        """PNG bytes of the page (clip = (x, y, w, h) in CSS pixels); also written to path if given."""
        params = {"format": "png"}
        if clip:
            params["clip"] = dict(zip(("x", "y", "width", "height"), clip), scale=1)
            params["captureBeyondViewport"] = True
        png = base64.b64decode(self.call("Page.captureScreenshot", **params)["data"])
        if path:
            Path(path).write_bytes(png)
        return png


class Tab:
    """One more page of a Browser (its own CDP connection, the browser's event loop); closed with it."""

    call, _call, js, open_viewer, screenshot = (Browser.call, Browser._call, Browser.js, Browser.open_viewer,
                                                Browser.screenshot)

    def __init__(self, browser, width, height):
        req = urllib.request.Request(f"http://127.0.0.1:{browser.port}/json/new?about:blank", method="PUT")
        with urllib.request.urlopen(req, timeout=10) as r:
            target = json.loads(r.read())
        self.loop, self.errors, self._id = browser.loop, [], 0
        self.ws = self.loop.run_until_complete(Browser._connect(target["webSocketDebuggerUrl"]))
        self.call("Page.enable")
        self.call("Runtime.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=False)
        self.call("Emulation.setFocusEmulationEnabled", enabled=True)  # drawn like a page in front
