"""Security: nothing is ever unpickled, every string that reaches HTML is escaped, the viewer serves
127.0.0.1 with local websocket origins only, and --feature-file says plainly that it runs code."""
import json
import os
import pickle
import re
import shutil
from html.parser import HTMLParser

import numpy as np
import pytest
from bokeh.events import ButtonClick

from cli_helpers import PROSE, fails, fake_server, ok, run
from interpret.export.gallery_html import gallery_page
from interpret.export.html import unit_page
from interpret.model.model import Model
from interpret.recording.recorder import Recording, record

from conftest import ROOT  # noqa: E402
from test_viewer import build, get, settle  # noqa: E402  (the headless viewer driver)

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
AMP = "&amp;"
EVILS = (SCRIPT, IMG, AMP, "'><svg onload=alert(1)>")
EVIL = " ".join(EVILS)  # all of them in one string
EVIL_NAME = IMG + AMP  # no '/': fits in a file name
DANGEROUS_TAGS = {"script", "img", "svg", "iframe", "object", "embed", "link", "base", "form", "meta"}


# ---- an HTML checker ----------------------------------------------------------------------------
class Parsed(HTMLParser):
    """Every element, attribute and piece of text (character references decoded) of a page."""

    def __init__(self, page):
        super().__init__(convert_charrefs=True)
        self.tags, self.attrs, self.texts = [], [], []
        self.feed(page)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += attrs

    handle_startendtag = handle_starttag

    def handle_data(self, data):
        self.texts.append(data)

    @property
    def text(self):
        return "".join(self.texts)


TRACE_PARTS = {"line", "path", "polyline"}  # export.trace_svg's elements: the only svg a page may hold


def assert_escaped(page, *strings, allowed_meta=False, traces=0):
    """No injected element or event attribute; each string comes back whole as text or an attribute.

    traces: how many export.trace_svg drawings the page holds (None: any number); each is an svg
    of only line, path and polyline elements, so an injected svg (EVIL has one) still fails."""
    p = Parsed(page)
    bad = DANGEROUS_TAGS - ({"meta"} if allowed_meta else set())
    if traces != 0:
        at = [i for i, t in enumerate(p.tags) if t == "svg"]
        assert traces is None or len(at) == traces, p.tags
        for i in at:
            assert p.tags[i + 1] == "line" and "polyline" in p.tags[i + 1:i + 5], p.tags[i:i + 5]
        parts = [i for i, t in enumerate(p.tags) if t in TRACE_PARTS]
        assert all(p.tags[j - 1] in TRACE_PARTS | {"svg"} for j in parts), p.tags
        bad = bad - {"svg"}
    assert not bad & set(p.tags), sorted(bad & set(p.tags))
    assert not [k for k, _ in p.attrs if k.startswith("on") or k in ("src", "style")], p.attrs
    assert all(v.startswith("#") for k, v in p.attrs if k == "href"), p.attrs  # in-page links only
    values = [v or "" for _, v in p.attrs]
    for s in strings:
        assert s in p.text or any(s in v for v in values), (s, page[:2000])
    return p


# ---- never unpickle -----------------------------------------------------------------------------
class Bomb:
    """Unpickling this creates the directory `marker`: proof that a loader ran a pickle."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def save_pickled_npy(path, marker):
    np.save(path, np.array([Bomb(marker)], dtype=object), allow_pickle=True)


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A small model and a recording of it."""
    d = tmp_path_factory.mktemp("security")
    text = PROSE + EVIL + "\n"
    model = Model.init(sorted(set(text)), hidden_size=6, seed=1)
    model.save(d / "m.npz")
    (d / "story.txt").write_text(text, encoding="utf-8")
    record(model, [("story.txt", text)], d / "run.rec")
    return d


def pickled_model(d, marker, key):
    """A model .npz whose array `key` is a pickled object array."""
    with np.load(d / "m.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays[key] = np.array([Bomb(marker)], dtype=object)
    path = d / f"pickled_{key}.npz"
    np.savez(path, **arrays)  # np.savez pickles object arrays
    return path


@pytest.mark.parametrize("key", ["Wxh", "chars", "meta"])
def test_a_pickled_model_is_refused_by_every_loader(made, tmp_path, key):
    marker = tmp_path / "pwned"
    path = pickled_model(made, marker, key)
    with pytest.raises(ValueError, match="pickled"):
        Model.load(path)
    fails(run("sample", path, "-n", "5"), "pickled")
    fails(run("record", path, made / "story.txt", "-o", tmp_path / "r.rec"), "pickled")
    fails(run("train", made / "story.txt", "-o", tmp_path / "t.npz", "--resume", path, "--iters", "5"),
          "pickled")
    fails(run("ablate", path, made / "story.txt", "--unit", "0"), "pickled")
    assert not marker.exists() and not (tmp_path / "r.rec").exists() and not (tmp_path / "t.npz").exists()


@pytest.mark.parametrize("victim", ["L0_h.npy", "loss.npy"])
def test_a_pickled_recording_array_is_refused(made, tmp_path, victim):
    rec = tmp_path / "run.rec"
    shutil.copytree(made / "run.rec", rec)
    marker = tmp_path / "pwned"
    save_pickled_npy(rec / victim, marker)
    r = Recording(rec)
    with pytest.raises(ValueError, match="cannot be read"):
        r.activations() if victim == "L0_h.npy" else r.loss
    if victim == "L0_h.npy":
        fails(run("scan", rec, "-f", "in_quote", "--shifts", "10"), victim)
        fails(run("export", rec, "--unit", "0", "-o", tmp_path / "e.html"), victim)
        fails(run("view", rec, "--no-show"), victim)
        doc = build(rec)
        assert [m.name for m in doc.roots] == ["error"] and victim in get(doc, "error").text
    assert not marker.exists() and not (tmp_path / "e.html").exists()


def test_a_pickle_given_as_scan_json_is_refused(made, tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "scan.json"
    path.write_bytes(pickle.dumps([Bomb(marker)]))
    fails(run("export", made / "run.rec", "--gallery", "--scan", path, "-o", tmp_path / "g.html"),
          "not valid scan JSON")
    fails(run("view", made / "run.rec", "--scan", path, "--no-show"), "not valid scan JSON")
    assert not marker.exists() and not (tmp_path / "g.html").exists()


def calls(source, name):
    """The text of every call `name(...)` in source, parentheses matched."""
    out = []
    for m in re.finditer(re.escape(name) + r"\(", source):
        depth, i = 1, m.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(source[i], 0)
            i += 1
        out.append(source[m.start():i])
    return out


def test_no_source_file_can_unpickle():
    """Every np.load in the product says allow_pickle=False; nothing imports a pickle module."""
    files = sorted((ROOT / "interpret").rglob("*.py")) + sorted((ROOT / "viewer").rglob("*.py"))
    loads = 0
    for path in files:
        source = path.read_text(encoding="utf-8")
        assert not re.search(r"^\s*(import|from)\s+(pickle|cPickle|dill|joblib|shelve)\b", source, re.M), path.name
        assert "allow_pickle=True" not in source, path.name
        for call in calls(source, "np.load") + calls(source, "numpy.load"):
            loads += 1
            assert re.search(r"allow_pickle\s*=\s*False", call), f"{path.name}: {call}"
    assert loads >= 2  # the model and the recording loaders were seen


# ---- escaping: the library's pages ----------------------------------------------------------------
def test_unit_page_escapes_text_title_subtitle_and_legend():
    page = unit_page(EVIL, np.linspace(-1, 1, len(EVIL)), title=EVIL, subtitle=EVIL, legend=EVIL)
    p = assert_escaped(page, EVIL, allowed_meta=True)
    assert p.text.count(EVIL) >= 4  # title, heading, subtitle, legend ... and the excerpt
    assert "&amp;amp;" in page  # '&amp;' in the text is shown as those five characters


def test_gallery_escapes_every_field():
    e = dict(feature=EVIL, unit=EVIL, layer=EVIL, array=EVIL, metric=EVIL, score=EVIL, sign=EVIL, q=EVIL,
             beyond_char=EVIL, text=EVIL, values=np.zeros(len(EVIL)), feature_values=np.ones(len(EVIL)))
    page = gallery_page([e], title=EVIL, intro=EVIL)
    p = assert_escaped(page, EVIL, allowed_meta=True, traces=1)
    assert p.text.count(EVIL) >= 8


def test_export_of_a_recording_with_hostile_names_and_text(made, tmp_path):
    folder = tmp_path / EVIL_NAME
    folder.mkdir()
    doc = folder / (EVIL_NAME + ".txt")
    shutil.copy(made / "story.txt", doc)
    rec = folder / (EVIL_NAME + ".rec")
    ok(run("record", made / "m.npz", doc, "-o", rec, "-q"))
    ok(run("export", rec, "--unit", "1", "--start", "0", "--length", "100000", "-o", folder / "unit.html"))
    page = (folder / "unit.html").read_text(encoding="utf-8")
    assert_escaped(page, EVIL, str(rec), allowed_meta=True)
    ok(run("export", rec, "--gallery", "-f", "in_quote", "--feature-regex", "<b>x</b>&amp;=[a-z]+",
           "--shifts", "10", "-q", "-o", folder / "gallery.html"))
    page = (folder / "gallery.html").read_text(encoding="utf-8")
    assert_escaped(page, "<b>x</b>&amp;", allowed_meta=True, traces=None)


# ---- escaping: the viewer -------------------------------------------------------------------------
def divs(doc):
    """{name: html} of every Div (the only models whose text bokeh renders as HTML)."""
    from bokeh.models import Div
    return {m.name: m.text for m in doc.select({"type": Div})}


@pytest.fixture(scope="module")
def evil_rec(made, tmp_path_factory):
    folder = tmp_path_factory.mktemp("v") / EVIL_NAME
    folder.mkdir()
    shutil.copytree(made / "run.rec", folder / "run.rec")
    rows = [{"feature": EVIL, "unit": 2, "layer": 0, "array": "h", "metric": EVIL, "score": 0.9, "sign": 1,
             "q": 0.01}]
    (folder / "scan.json").write_text(json.dumps(rows), encoding="utf-8")
    return folder


def test_viewer_panels_escape_paths_feature_names_and_notes(evil_rec):
    doc = build(evil_rec / "run.rec", "--scan", evil_rec / "scan.json")
    html = divs(doc)
    assert_escaped(html["header"], str(evil_rec / "run.rec"))
    assert_escaped(html["status"], EVIL)  # the scan's feature name
    assert get(doc, "feature_select").value == EVIL  # options are text, never parsed as HTML
    get(doc, "search_input").value = EVIL_NAME + SCRIPT + " is not in the text"
    assert_escaped(divs(doc)["status"], EVIL_NAME + SCRIPT + " is not in the text")
    get(doc, "export_path").value = str(evil_rec / "missing dir" / "x.html")
    button = get(doc, "export_button")
    button._trigger_event(ButtonClick(button))
    settle(doc)
    assert_escaped(divs(doc)["export_status"], str(evil_rec / "missing dir"))
    get(doc, "export_path").value = str(evil_rec / (EVIL_NAME + ".html"))
    button._trigger_event(ButtonClick(button))
    assert "wrote" in divs(doc)["export_status"]
    assert_escaped(divs(doc)["export_status"], str(evil_rec / (EVIL_NAME + ".html")))
    assert_escaped((evil_rec / (EVIL_NAME + ".html")).read_text(encoding="utf-8"), EVIL, allowed_meta=True)


@pytest.mark.parametrize("argv", [["{d}/" + EVIL_NAME], ["{d}/run.rec", "--scan", "{d}/" + EVIL_NAME],
                                  ["{d}/run.rec", EVIL_NAME], [SCRIPT.replace("/", "_") + EVIL_NAME]])
def test_viewer_error_panels_escape_the_arguments(evil_rec, argv):
    doc = build(*[a.format(d=evil_rec) for a in argv])
    assert [m.name for m in doc.roots] == ["error"]
    assert_escaped(get(doc, "error").text, argv[-1].format(d=evil_rec))


# ---- the viewer's server: local only ------------------------------------------------------------
def served(monkeypatch, *args):
    """The `bokeh serve` command line that `interpret view` would run."""
    calls = fake_server(monkeypatch)
    ok(run("view", *args))
    (cmd,) = calls
    return cmd


def options(cmd, name):
    return [cmd[i + 1] for i, a in enumerate(cmd[:cmd.index("--args")]) if a == name]


def test_view_binds_localhost_and_allows_only_local_origins(made, monkeypatch):
    cmd = served(monkeypatch, made / "run.rec", "--port", "5123", "--no-show")
    assert options(cmd, "--address") == ["127.0.0.1"]
    assert sorted(options(cmd, "--allow-websocket-origin")) == ["127.0.0.1:5123", "localhost:5123"]
    assert not any(a.startswith("--address=") or a.startswith("--allow-websocket-origin=") for a in cmd)


def test_view_allows_another_origin_only_when_asked(made, monkeypatch):
    cmd = served(monkeypatch, made / "run.rec", "--port", "5124", "--no-show",
                 "--allow-origin", "localhost:8080", "--allow-origin", "lab.example.org:443")
    assert options(cmd, "--address") == ["127.0.0.1"]
    assert sorted(options(cmd, "--allow-websocket-origin")) == [
        "127.0.0.1:5124", "lab.example.org:443", "localhost:5124", "localhost:8080"]
    fails(run("view", made / "run.rec", "--no-show", "--allow-origin", "http://x.org/"), "HOST[:PORT]")


# ---- --feature-file runs code -------------------------------------------------------------------
@pytest.mark.parametrize("command", ["scan", "export"])
def test_feature_file_help_says_it_runs_code(command):
    help_text = " ".join(ok(run(command, "--help")).output.split())
    i = help_text.index("--feature-file")
    said = help_text[i:i + 250].lower()
    assert "runs" in said and "python" in said and "code" in said and "trust" in said, said
