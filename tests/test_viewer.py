"""The Bokeh viewer: built headless (DirectoryHandler + argv, widgets driven by .value) and in a real
headless Chromium against `bokeh serve` on 127.0.0.1."""
import io
import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from bokeh.application.handlers import DirectoryHandler
from bokeh.document import Document
from bokeh.server.callbacks import NextTickCallback
from bokeh.document.events import ColumnDataChangedEvent
from bokeh.events import ButtonClick, DocumentReady
from click.testing import CliRunner

from chromium import Browser, Server, find_chromium
from cli_helpers import fake_server
from interpret.features.choose import choose_features
from interpret.scan.rows import jsonable
from interpret.scan.run import judged, scan_recording
from interpret.cli.main import main as cli
from interpret.features import in_quote
from interpret.model.model import Model
from interpret.recording.recorder import Recording, record

from conftest import ROOT

VIEWER = ROOT / "viewer"
EVIL = '<script>alert("x")</script> & \'q\' "><b>'
PARAGRAPH = ('"Come here," said the old man. "Look at this (if you can)."\n'
             'She did not move; the rain went on, and on.\n\n')
TEXT = (PARAGRAPH * 40)[:2500] + EVIL + "\n" + PARAGRAPH * 60  # ~8000 characters


@pytest.fixture(scope="module")
def rec(tmp_path_factory):
    """A real recording whose units saturate to +-1 by character (red and blue everywhere)."""
    d = tmp_path_factory.mktemp("viewer")
    model = Model.init(sorted(set(TEXT)), hidden_size=8, seed=3)
    model.params["Wxh"] *= 300.0  # tanh of large inputs: each unit is about +-1, its sign set per char
    record(model, [("story.txt", TEXT)], d / "run.rec")
    return d / "run.rec"


@pytest.fixture(scope="module")
def scan_json(rec):
    recording = Recording(rec)
    feats = choose_features(recording.text, ["in_quote", "position_in_line"])
    rows = scan_recording(recording, feats, n_shifts=20)
    path = rec.parent / "scan.json"
    path.write_text(json.dumps([jsonable(r) for r in rows]), encoding="utf-8")
    return path


def build(*argv):
    """Run viewer/main.py for one session, as `bokeh serve viewer --args ...` would.

    The handler parses main.py (ast.parse). CPython 3.11's parser is not safe against a compile
    running at the same time in another thread (SystemError: AST constructor recursion depth
    mismatch), and the viewer's workers of an earlier session may be importing a module: so
    no worker runs while the handler is made."""
    _wait_for_workers()
    handler = DirectoryHandler(filename=str(VIEWER), argv=[str(a) for a in argv])
    doc = Document()
    handler.modify_document(doc)
    assert not handler.failed, handler.error_detail
    doc.callbacks.trigger_event(DocumentReady())  # what the browser sends once it has drawn the page
    settle(doc)
    return doc


def settle(doc):
    """Finish the background jobs and run what they queued, as the server's event loop would."""
    for _ in range(20):
        _wait_for_workers()
        queued = [cb for cb in doc.session_callbacks if isinstance(cb, NextTickCallback)]
        if not queued:
            return
        for cb in queued:
            doc.remove_next_tick_callback(cb)
            cb.callback()
    raise AssertionError("the viewer kept queueing callbacks")


def _wait_for_workers():
    """Block until the viewer's background jobs (of every session so far) are done."""
    for module in list(sys.modules.values()):
        if getattr(module, "__file__", None) == str(VIEWER / "data.py"):
            module.wait_idle()


def get(doc, name):
    model = doc.select_one({"name": name})
    assert model is not None, name
    return model


def click(doc, name):
    button = get(doc, name)
    button._trigger_event(ButtonClick(button))
    settle(doc)


def shown_values(doc):
    """The activation drawn under each character of the window, read back from the colour image."""
    cells = get(doc, "cells_source").data
    (grid,) = get(doc, "grid_source").data["image"]
    return grid[grid.shape[0] - 1 + np.asarray(cells["y"], int), np.asarray(cells["x"], int)]


def window(doc):
    """(start, stop) of the text now in the browser's sources."""
    pos = np.asarray(get(doc, "cells_source").data["pos"])
    return int(pos[0]), int(pos[-1]) + 1


# ---- headless -----------------------------------------------------------------------------------
def test_the_window_shows_the_recordings_numbers(rec):
    doc = build(rec)
    r = Recording(rec)
    cells = get(doc, "cells_source").data
    start, stop = window(doc)
    assert (start, stop) == (0, 3000)
    np.testing.assert_array_equal(shown_values(doc), r.activations()[0:3000, 0])
    (grid,) = get(doc, "grid_source").data["image"]
    assert np.isnan(grid).sum() == grid.size - 3000  # cells without a character stay blank
    assert list(get(doc, "chars_source").data["ch"])[:8] == list(r.text[:8])
    # layout: wrapped at newlines, so each line's first character sits in column 0 of a new row
    first = r.text.index("\n") + 1
    assert cells["x"][first] == 0 and cells["y"][first] == cells["y"][0] - 1
    assert "\u21b5" == get(doc, "chars_source").data["ch"][first - 1]  # the newline is drawn visibly


def test_switching_units_sends_only_the_new_activation_column(rec):
    doc = build(rec)
    events = []
    doc.on_change(events.append)
    get(doc, "unit_input").value = 5
    grid = [e for e in events if isinstance(e, ColumnDataChangedEvent) and e.model.name == "grid_source"]
    assert len(grid) == 1 and grid[0].cols == ["image"]
    touched = {e.model.name for e in events}
    assert touched <= {"unit_input", "unit_select", "grid_source", "trace_source", "status"}, touched  # no figure rebuilt
    np.testing.assert_array_equal(shown_values(doc), Recording(rec).activations()[0:3000, 5])


def test_summaries_follow_the_unit_over_the_whole_text(rec):
    doc = build(rec)
    get(doc, "unit_input").value = 2
    settle(doc)
    col = Recording(rec).activations()[:, 2].astype(np.float64)
    options = get(doc, "contexts").options
    highest = [int(v) for v, label in options if label.startswith("\u25b2")]
    lowest = [int(v) for v, label in options if label.startswith("\u25bc")]
    assert len(highest) == len(lowest) == 8
    assert col[highest[0]] == col.max() and np.all(np.diff(col[highest]) <= 0)
    assert col[lowest[0]] == col.min() and np.all(np.diff(col[lowest]) >= 0)
    get(doc, "contexts").value = [str(lowest[0])]  # clicking a context jumps there
    start, stop = window(doc)
    assert start <= lowest[0] < stop and list(get(doc, "mark_source").data["pos"]) == [lowest[0]]
    hist = get(doc, "hist_source").data
    widths = np.asarray(hist["right"]) - np.asarray(hist["left"])
    for side in ("on", "off"):  # densities: each side integrates to 1
        assert abs(float(np.sum(np.asarray(hist[side]) * widths)) - 1.0) < 1e-9
    q = in_quote(Recording(rec).text) == 1
    on = np.histogram(np.clip(col[q], -1, 1), np.linspace(-1, 1, 41))[0]
    np.testing.assert_allclose(np.asarray(hist["on"]) * widths * q.sum(), on)


def test_feature_track_is_the_features_values(rec):
    doc = build(rec)
    start, stop = window(doc)
    track = get(doc, "track_source").data["feat"]
    np.testing.assert_array_equal(track, in_quote(Recording(rec).text)[start:stop])
    get(doc, "feature_select").value = "position_in_line"
    settle(doc)
    fval = np.asarray(get(doc, "cells_source").data["fval"])
    text = Recording(rec).text
    assert fval[text.index("\n") + 1] == 0 and fval[1] == 1  # columns restart after each newline


def test_units_are_ranked_by_the_scan(rec, scan_json):
    doc = build(rec, "--scan", scan_json)
    rows = json.loads(scan_json.read_text())
    strength = {r["feature"]: max((2 * x["score"] - 1 if x["metric"] == "auroc" else x["score"])
                                  for x in rows if x["feature"] == r["feature"]) for r in rows}
    feature = get(doc, "feature_select").value
    assert strength[feature] == max(strength.values())  # opens on the strongest cell of the scan
    ranked = sorted((r for r in rows if r["feature"] == feature), key=lambda r: -r["score"])
    options = get(doc, "unit_select").options
    assert [int(k) for k, _ in options[:3]] == [int(r["unit"]) for r in ranked[:3]]
    assert f"{ranked[0]['score']:.3f}" in options[0][1] and "q " in options[0][1]
    assert get(doc, "unit_input").value == int(ranked[0]["unit"])  # opens on the best cell
    click(doc, "next_unit")
    assert get(doc, "unit_input").value == int(ranked[1]["unit"])
    click(doc, "prev_unit")
    click(doc, "prev_unit")
    assert get(doc, "unit_input").value == int(options[-1][0])  # wraps round


def test_navigation_paging_jump_and_search(rec):
    doc = build(rec)
    text = Recording(rec).text
    get(doc, "window_select").value = "1000"
    assert window(doc) == (0, 1000)
    click(doc, "next_page")
    start, stop = window(doc)
    assert 900 <= start <= 1000 and stop == start + 1000 and text[start - 1] == "\n"
    get(doc, "jump_input").value = 6000
    start, stop = window(doc)
    assert start <= 6000 < stop and list(get(doc, "mark_source").data["pos"]) == [6000]
    np.testing.assert_array_equal(shown_values(doc), Recording(rec).activations()[start:stop, 0])
    get(doc, "search_input").value = "<script>"
    hit = text.index("<script>")
    assert list(get(doc, "mark_source").data["pos"]) == list(range(hit, hit + 8))
    get(doc, "search_input").value = "no such words"
    assert "not found" in get(doc, "status").text


def test_export_writes_what_interpret_export_writes(rec, tmp_path):
    doc = build(rec)
    get(doc, "unit_input").value = 3
    get(doc, "jump_input").value = 4000
    start, _ = window(doc)
    get(doc, "export_path").value = str(tmp_path / "view.html")
    click(doc, "export_button")
    assert "wrote" in get(doc, "export_status").text
    r = CliRunner().invoke(cli, ["export", str(rec), "--unit", "3", "--start", str(start), "--length", "3000",
                                 "-o", str(tmp_path / "cli.html")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "view.html").read_text() == (tmp_path / "cli.html").read_text()


@pytest.mark.parametrize("args, words", [
    ((), "no recording given"),
    (("/no/such.rec",), "does not exist"),
    (("{tmp}",), "not a recording"),
    (("{rec}", "--scan", "{bad}"), "not valid scan JSON"),
    (("{rec}", "--bogus"), "unknown option"),
    (("{rec}", "--scan"), "--scan needs a file"),
    (("{rec}", "--scan", "{other}"), "scan this recording"),
])
def test_bad_arguments_show_an_error_panel(rec, tmp_path, args, words):
    (tmp_path / "bad.json").write_text("[{not json", encoding="utf-8")
    other = [{"feature": "in_quote", "unit": 80, "layer": 0, "kind": "h", "metric": "auroc", "score": 0.9,
              "sign": 1, "q": 0.01}]  # unit 80 of a bigger model
    (tmp_path / "other.json").write_text(json.dumps(other), encoding="utf-8")
    argv = [a.format(tmp=tmp_path, rec=rec, bad=tmp_path / "bad.json", other=tmp_path / "other.json")
            for a in args]
    doc = build(*argv)  # asserts the handler did not fail: no SystemExit, no traceback
    panel = get(doc, "error")
    assert [r.name for r in doc.roots] == ["error"]
    assert words in panel.text and "usage" in panel.text


def test_text_and_paths_are_escaped(rec, tmp_path):
    evil_dir = tmp_path / EVIL.replace("/", "_")
    doc = build(evil_dir)
    panel = get(doc, "error").text
    assert "<script>" not in panel and "&lt;script&gt;" in panel and "&amp;" in panel and "&quot;" in panel
    doc = build(rec)
    assert "<script>" not in get(doc, "header").text
    get(doc, "search_input").value = EVIL
    assert "<script>" not in get(doc, "status").text
    # characters go to the canvas as plain strings (never parsed as HTML), exactly as recorded
    hit = Recording(rec).text.index(EVIL)
    get(doc, "jump_input").value = hit
    ch = get(doc, "chars_source").data["ch"]
    start, _ = window(doc)
    assert "".join(ch[hit - start:hit - start + len(EVIL)]) == EVIL


# ---- a real browser -----------------------------------------------------------------------------
def _colour_counts(png):
    from PIL import Image
    px = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)  # (H, W, 3)
    r, g, b = px[..., 0], px[..., 1], px[..., 2]
    red = (r > 170) & (g < 120) & (b < 120)
    blue = (b > 160) & (r < 110) & (g < 150)
    return int(red.sum()), int(blue.sum()), px


@pytest.mark.skipif(find_chromium() is None, reason="no chromium on this machine (apt-get install chromium)")
def test_chromium_draws_coloured_text_and_repaints_on_a_unit_switch(rec):
    with Server(rec) as server, Browser(1300, 900) as browser:
        browser.open_viewer(server.url)
        clip = browser.js("__viewer.rect()")
        x, y, w, h = clip
        clip = (x, y, w, min(h, 400))
        red, blue, before = _colour_counts(browser.screenshot(clip=clip))
        assert red > 500 and blue > 500, (red, blue)
        ms = browser.js("__viewer.set_and_wait('unit_input', 1, 10000)")
        assert ms > 0, "the text's pixels did not change after switching units"
        red2, blue2, after = _colour_counts(browser.screenshot(clip=clip))
        assert red2 > 500 and blue2 > 500
        assert np.mean(np.any(before != after, axis=2)) > 0.05  # a real repaint, not a cursor blink
        # the whole-text extras follow once the page is drawn: histogram and top contexts
        for _ in range(100):
            if browser.js("__viewer.model('contexts').options.length") == 16:
                break
            time.sleep(0.1)
        assert browser.js("__viewer.model('hist_source').data.on.length") == 40
        assert browser.js("__viewer.model('contexts').options.length") == 16
        assert browser.errors == []


# ---- interpret view -----------------------------------------------------------------------------
def test_interpret_view_checks_the_recording_before_serving(tmp_path, monkeypatch):
    (tmp_path / "empty").mkdir()
    r = CliRunner().invoke(cli, ["view", str(tmp_path / "empty"), "--no-show"])
    assert r.exit_code == 1 and "not a recording" in r.stderr and "Traceback" not in r.stderr


def test_interpret_view_serves_the_viewer_on_localhost(rec, scan_json, monkeypatch):
    calls = fake_server(monkeypatch)
    r = CliRunner().invoke(cli, ["view", str(rec), "--scan", str(scan_json), "--port", "5099", "--no-show"])
    assert r.exit_code == 0, r.output
    (cmd,) = calls
    assert cmd[1:4] == ["-m", "bokeh", "serve"] and Path(cmd[4]) == VIEWER
    assert cmd[cmd.index("--address") + 1] == "127.0.0.1" and cmd[cmd.index("--port") + 1] == "5099"
    assert "--show" not in cmd
    assert cmd[cmd.index("--args") + 1:] == [str(Path(rec).resolve()), "--scan", str(Path(scan_json).resolve())]


# ---- the pure pieces ----------------------------------------------------------------------------
def test_layout_keeps_newlines_and_wraps_long_lines():
    from viewer.layout import WRAP, layout_window
    x, y, rows = layout_window("ab\ncd")
    assert x.tolist() == [0, 1, 2, 0, 1] and y.tolist() == [0, 0, 0, 1, 1] and rows == 2
    long = "a" * (2 * WRAP + 50) + "\nz"
    x, y, rows = layout_window(long)
    assert (x[WRAP], y[WRAP]) == (0, 1) and (x[2 * WRAP + 49], y[2 * WRAP + 49]) == (49, 2)
    assert (x[-1], y[-1], rows) == (0, 3, 4)
    full = "b" * WRAP + "\n\nc"  # a newline right after a full row stays on that row, in the margin
    x, y, rows = layout_window(full)
    assert (x[WRAP], y[WRAP]) == (WRAP, 0) and (x[WRAP + 1], y[WRAP + 1]) == (0, 1) and y[-1] == 2
    assert layout_window("")[2] == 1


def test_envelope_is_min_max_mean_per_piece():
    from viewer.summaries import envelope
    v = np.random.default_rng(0).normal(size=1003)
    env = envelope(v, 500, n_buckets=100)  # 11 characters per piece, the last one 2
    pieces = [v[a:a + 11] for a in range(0, 1003, 11)]
    np.testing.assert_allclose(env["lo"], [p.min() for p in pieces], rtol=1e-6)
    np.testing.assert_allclose(env["hi"], [p.max() for p in pieces], rtol=1e-6)
    np.testing.assert_allclose(env["mid"], [p.mean() for p in pieces], rtol=1e-5)
    assert env["x"][0] == 500 + 5 and env["x"][-1] == 500 + (1001 + 1002) / 2  # piece centres


def test_layer_kind_picker_shows_cell_states_through_tanh(rec, tmp_path):
    import shutil
    two = tmp_path / "two.rec"
    shutil.copytree(rec, two)
    h = np.load(two / "L0_h.npy")
    np.save(two / "L0_c.npy", (3.0 * h).astype(np.float32))  # a second array, like an LSTM's cell state
    manifest = json.loads((two / "manifest.json").read_text())
    manifest["arrays"].append({"layer": 0, "kind": "c", "n_units": h.shape[1], "file": "L0_c.npy"})
    (two / "manifest.json").write_text(json.dumps(manifest))
    rows = [{"feature": "vowel", "unit": 6, "layer": 0, "kind": "c", "metric": "auroc", "score": 0.9,
             "sign": 1, "q": 0.001}]  # a user feature the viewer cannot recompute
    (tmp_path / "scan.json").write_text(json.dumps(rows))
    doc = build(two, "--scan", tmp_path / "scan.json")
    assert get(doc, "kind_select").value == "0:c" and get(doc, "unit_input").value == 6
    np.testing.assert_allclose(shown_values(doc), np.tanh(3.0 * h[0:3000, 6]), rtol=1e-6)
    assert "no feature values" in get(doc, "status").text
    assert not np.any(get(doc, "track_source").data["feat"])
    get(doc, "kind_select").value = "0:h"
    np.testing.assert_array_equal(shown_values(doc), h[0:3000, 6])
    assert [k for k, _ in get(doc, "kind_select").options] == ["0:h", "0:c"]


def test_opens_on_the_cell_marks_the_rest_and_follows_the_feature(rec, scan_json, tmp_path):
    rows = json.loads(scan_json.read_text())
    line = sorted((r for r in rows if r["feature"] == "position_in_line"), key=lambda r: -r["score"])
    cell = line[2]  # a cell that is neither the strongest row nor the feature's top score
    for r in rows:
        r["verdict"] = "cell" if r is cell else "none"
    path = tmp_path / "judged.json"
    path.write_text(json.dumps({"rows": rows, "control": None}))
    doc = build(rec, "--scan", path)
    assert get(doc, "feature_select").value == "position_in_line"
    assert get(doc, "unit_input").value == cell["unit"]             # the cell, not the top score
    options = get(doc, "unit_select").options
    assert int(options[0][0]) == cell["unit"] and options[0][1].endswith("\u00b7 cell")
    assert options[1][1].endswith("not a cell")
    status = get(doc, "status").text
    assert f"unit {cell['unit']} \u00b7 feature position_in_line" in status and "a cell" in status
    get(doc, "feature_select").value = "in_quote"                   # another feature: its best unit
    settle(doc)
    quote = max((r for r in rows if r["feature"] == "in_quote"), key=lambda r: r["score"])
    assert get(doc, "unit_input").value == quote["unit"]
    status = get(doc, "status").text
    assert f"unit {quote['unit']} \u00b7 feature in_quote" in status and "not a cell (none)" in status
    for r in rows:
        r["verdict"] = "weak"
    path.write_text(json.dumps({"rows": rows, "control": None}))
    data_module = [m for m in sys.modules.values() if getattr(m, "__file__", None) == str(VIEWER / "data.py")][0]
    data_module.open_view.cache_clear()  # the server caches a view per path
    assert "no cell found in this scan" in get(build(rec, "--scan", path), "status").text


def test_without_a_scan_the_viewer_ranks_the_units_itself(rec, tmp_path):
    from bokeh.server.callbacks import PeriodicCallback
    import shutil
    own = tmp_path / "own.rec"  # its own path: the server-wide view of `rec` may hold rows already
    shutil.copytree(rec, own)
    doc = build(own)   # build waits for the worker that ranks
    polls = [cb for cb in doc.session_callbacks if isinstance(cb, PeriodicCallback)]
    assert len(polls) == 1
    polls[0].callback()  # the poll after the ranking is done
    settle(doc)
    assert not [cb for cb in doc.session_callbacks if isinstance(cb, PeriodicCallback)]  # polling stopped
    feature, unit = get(doc, "feature_select").value, get(doc, "unit_input").value
    recording = Recording(own)
    feats = choose_features(recording.text)
    rows, _ = judged(recording, feats)  # what `interpret scan` would say
    scored = [r for r in rows if r.get("score") is not None]
    best = max([r for r in scored if r["verdict"] == "cell"] or scored,
               key=lambda r: 2 * r["score"] - 1 if r["metric"] == "auroc" else r["score"])
    assert (feature, unit) == (best["feature"], best["unit"])
    options = get(doc, "unit_select").options
    assert options[0][1].startswith(f"unit {unit} \u00b7 ") and " q " in options[0][1]
    assert "ranking the units" not in get(doc, "status").text


def test_the_ranking_note_shows_progress_and_failure(rec):
    data = [m for m in sys.modules.values() if getattr(m, "__file__", None) == str(VIEWER / "data.py")][0]
    assert data.View(rec).ranking_note() == ""  # nothing started yet
    state = {"state": "running", "done": 30, "total": 120, "label": "scanning layer 0 h"}
    assert data.ranking_note(state).startswith("ranking the units in the background (scanning layer 0 h 25%)")
    state.update(state="failed", label="out of memory")
    assert data.ranking_note(state) == "could not rank the units: out of memory"
    assert data.ranking_note(dict(state, state="done")) == ""
