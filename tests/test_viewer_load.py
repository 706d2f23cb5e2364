"""The viewer under load: five browser pages on one `bokeh serve` (127.0.0.1) all render and switch
units at the same time; no error in the server log; hostile text and names run no script."""
import json
import time

import pytest

from chromium import FIRST_RENDER_JS, HELPERS_JS, Browser, Server, find_chromium
from interpret.features.choose import choose_features
from interpret.scan.rows import jsonable
from interpret.scan.run import scan_recording
from interpret.model.model import Model
from interpret.recording.recorder import Recording, record

SESSIONS = 5
EVIL = '<script>alert(1)</script> "><img src=x onerror=alert(1)> &amp;'
PARAGRAPH = ('"Come here," said the old man. "Look at this (if you can)."\n'
             'She did not move; the rain went on, and on.\n\n')
TEXT = PARAGRAPH * 30 + EVIL + "\n" + PARAGRAPH * 30  # about 6000 characters
ALERT_HOOK = "window.__alerts = []; window.alert = (m) => window.__alerts.push(String(m));"
# every page switches units three times at once with the others; each switch waits for its repaint
SWITCH_JS = """window.__switches = null; window.__units = [];
(async () => { const ms = [];
  for (let k = 0; k < 3; k++) {
    const u = (__viewer.model('unit_input').value + STEP + k) % 8;  // never the unit shown now
    window.__units.push(u);
    ms.push(await __viewer.set_and_wait('unit_input', u, 20000));
  }
  window.__switches = ms; })();
true"""


@pytest.fixture(scope="module")
def rec(tmp_path_factory):
    d = tmp_path_factory.mktemp("load") / '"><img src=x onerror=alert(1)>'
    d.mkdir()
    model = Model.init(sorted(set(TEXT)), hidden_size=8, seed=5)
    model.params["Wxh"] *= 300.0  # saturated units: every switch changes the colours
    record(model, [("story.txt", TEXT)], d / "run.rec")
    feats = choose_features(TEXT, ["in_quote", "position_in_line"])
    rows = [dict(jsonable(r), feature=EVIL if r["feature"] == "in_quote" else r["feature"])
            for r in scan_recording(Recording(d / "run.rec"), feats, n_shifts=20)]
    (d / "scan.json").write_text(json.dumps(rows), encoding="utf-8")
    return d


def poll(pages, expression, timeout):
    """Until expression is non-null on every page; the values."""
    end, values = time.monotonic() + timeout, [None] * len(pages)
    while time.monotonic() < end:
        values = [v if v is not None else p.js(expression) for p, v in zip(pages, values)]
        if all(v is not None for v in values):
            return values
        time.sleep(0.1)
    raise TimeoutError(f"{expression} on {sum(v is None for v in values)} of {len(pages)} pages: still null")


@pytest.mark.skipif(find_chromium() is None, reason="no chromium on this machine (apt-get install chromium)")
def test_five_sessions_render_and_switch_units_at_once(rec):
    with Server(rec / "run.rec", "--scan", rec / "scan.json") as server, Browser(1300, 900) as browser:
        pages = [browser.new_tab(1300, 900) for _ in range(SESSIONS)]  # visible tabs (the first page is not)
        assert [p.js("document.visibilityState") for p in pages] == ["visible"] * SESSIONS
        for p in pages:  # all five load together
            p.call("Page.addScriptToEvaluateOnNewDocument", source=ALERT_HOOK + FIRST_RENDER_JS + HELPERS_JS)
            p.call("Page.navigate", url=server.url)
        firsts = poll(pages, "window.__first_render", 90)
        assert all(t > 0 for t in firsts)
        for i, p in enumerate(pages):  # each session its own units, all at the same time
            assert p.js(SWITCH_JS.replace("STEP", str(1 + i % 3)))
        switches = poll(pages, "window.__switches", 120)
        for i, (p, ms) in enumerate(zip(pages, switches)):
            assert len(ms) == 3 and all(m > 0 for m in ms), (i, ms)  # every switch repainted the text
            assert p.js("__viewer.model('unit_input').value") == p.js("window.__units")[-1]
            assert p.js("__viewer.model('feature_select').value") == EVIL  # shown as text
        # the whole-text extras arrive in every session, too
        assert all(n == 16 for n in poll(pages, "__viewer.model('contexts').options.length || null", 60))
        assert [p.js("window.__alerts") for p in pages] == [[]] * SESSIONS  # no injected script ran
        assert [p.errors for p in pages] == [[]] * SESSIONS
        log = server.output()
    assert log.count("WebSocket connection opened") >= SESSIONS, log
    bad = [line for line in log.splitlines() if any(w in line for w in ("Traceback", "ERROR", "Error", "Exception"))]
    assert not bad, log
