"""The viewer's data, loaded once per server: arguments, recording, scan rows, windows, worker jobs.

Bokeh runs main.py once per browser session; this module is imported once per server (main.py
imports it relatively, so it lives in the app's package), so `open_view` caches by path here.
Everything returns plain numpy arrays / lists ready for a ColumnDataSource.
"""
import functools
import html
import logging
import os
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np

from interpret import features as F
from interpret._util.progress import NoBar
from interpret.export.unit import display_values
from interpret.features.choose import choose_features
from interpret.scan.rows import load_scan_json
from interpret.scan.run import judged
from interpret.recording.recording import Recording
from interpret.scan.rows import top_rows
from interpret.scan.verdict import strength

from .layout import WRAP, layout_window, shown, to_grid
from .summaries import histogram, top_contexts

USAGE = ("bokeh serve viewer --address 127.0.0.1 --args REC [--scan SCAN.json]   "
         "(or: interpret view REC [--scan SCAN.json])")
SETTLE_S = 0.1  # whole-text summaries wait this long, so the browser paints the new colours first

log = logging.getLogger(__name__)
_executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="viewer")
_pending = set()  # futures not yet done (tests wait on them)
_pending_lock = threading.Lock()  # workers remove their futures while a test may be listing them


def submit(compute, deliver, settle=False):
    """compute() on a worker thread, then deliver(result) on it too (deliver queues the change)."""
    def run():
        if settle:
            time.sleep(SETTLE_S)
        deliver(compute())
    future = _executor.submit(run)
    with _pending_lock:
        _pending.add(future)
    future.add_done_callback(_finished)
    return future


def _finished(future):
    with _pending_lock:
        _pending.discard(future)
    if future.exception() is not None:  # a bug: say so in the server log
        log.error("viewer background job failed", exc_info=future.exception())


def wait_idle(timeout=600):
    """Block until every submitted job is done, jobs submitted meanwhile included (for tests);
    TimeoutError if they take longer than timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        with _pending_lock:
            pending = list(_pending)
        if not pending:
            return
        _, not_done = wait(pending, timeout=max(0.0, deadline - time.monotonic()))
        if not_done:
            raise TimeoutError(f"{len(not_done)} viewer job(s) still running after {timeout} s")


def parse_args(argv):
    """(rec, scan) from `REC [--scan SCAN.json]`; ValueError (never SystemExit) on anything else."""
    rec, scan, args = None, None, list(argv)
    while args:
        a = args.pop(0)
        if a == "--scan" or a.startswith("--scan="):
            value = a[len("--scan="):] if "=" in a else (args.pop(0) if args else None)
            if not value:
                raise ValueError("--scan needs a file: --scan SCAN.json (from `interpret scan REC --json`)")
            scan = value
        elif a.startswith("-"):
            raise ValueError(f"unknown option {a!r}; usage: {USAGE}")
        elif rec is None:
            rec = a
        else:
            raise ValueError(f"unexpected argument {a!r}: give one recording; usage: {USAGE}")
    if rec is None:
        raise ValueError(f"no recording given; usage: {USAGE}")
    return rec, scan


def error_html(message):
    """The page shown instead of the viewer when the arguments are bad (message escaped)."""
    return ('<div class="error-panel"><h2>interpret viewer: cannot open</h2>'
            f"<p>{html.escape(str(message), quote=True)}</p>"
            f"<p class=\"usage\">usage: <code>{html.escape(USAGE)}</code></p></div>")


class View:
    """One recording (and optional scan rows), with per-server caches of columns and features."""

    def __init__(self, rec_path, scan_path=None):
        self.recording = Recording(rec_path)
        self.text = self.recording.text  # also checks the text matches the manifest
        self.n = self.recording.n_chars
        for layer, kind, _ in self.recording.kinds():  # fail now, not at the first click
            self.recording.activations(layer, kind)
        self.rows = load_scan_json(scan_path) if scan_path else []
        self.scan_path = scan_path
        self._check_rows()
        names = list(dict.fromkeys(r["feature"] for r in self.rows))
        known = {f.name: f for f in F.get_features(None)}
        default = choose_features(self.text[:200000])
        self.features = OrderedDict((n, known.get(n)) for n in names)
        for f in default:
            self.features.setdefault(f.name, f)
        self._columns = OrderedDict()  # (layer, kind, unit) -> (N,) float32, a few kept
        self._lock = threading.Lock()  # the worker threads share the column cache
        self._ranking = None  # without a scan: the background ranking's progress (start_ranking)

    # ---- ranking the units in the background (no --scan) ----------------------------------------
    def start_ranking(self):
        """Scan every unit against the text's default features, with the untrained control, on a
        worker thread, once per server; the rows replace the empty ranking when done."""
        with self._lock:
            if self.rows or self._ranking is not None:
                return
            self._ranking = {"state": "running", "done": 0, "total": 0, "label": "starting"}
        feats = list(f for f in self.features.values() if f is not None)

        def compute():
            try:
                rows, _ = judged(self.recording, feats, progress=self._progress)
            except (ValueError, OSError, MemoryError) as e:
                self._ranking.update(state="failed", label=str(e))
                return
            self.rows = rows
            self._rows_by_key.cache_clear()
            self._ranking["state"] = "done"
        submit(compute, lambda result: None)

    def ranking_state(self):
        """None (a scan was given), or {state: running | done | failed, done, total, label}."""
        return None if self._ranking is None else dict(self._ranking)

    def _progress(self, total, label):
        """report's progress: a bar that counts into self._ranking."""
        ranking = self._ranking
        ranking.update(done=0, total=total, label=label)

        class Bar(NoBar):
            def update(self, n, current_item=None):
                ranking["done"] += n
        return Bar()

    def ranking_note(self):
        """A line for the status: what the background ranking is doing ('' when there is none)."""
        return ranking_note(self._ranking)

    def _check_rows(self):
        """Every scan row must name a unit of this recording (else the scan is of another one)."""
        sizes = {(layer, kind): n for layer, kind, n in self.recording.kinds()}
        for r in self.rows:
            n = sizes.get((r["layer"], r["kind"]))
            if n is None or not isinstance(r["unit"], int) or not 0 <= r["unit"] < n:
                raise ValueError(f"{self.scan_path} has a row for layer {r['layer']} {r['kind']} unit {r['unit']}, "
                                 f"which {self.recording.path} does not have; scan this recording: "
                                 "interpret scan REC --json > SCAN.json")

    def header_html(self):
        """Title line: what is open (escaped)."""
        m = self.recording.manifest.get("model", {})
        docs = len(self.recording.documents)
        scan = (f"scan: {self.scan_path} ({len(self.rows)} rows)" if self.scan_path else
                "no scan given: the viewer ranks the units itself (saved scans open faster: "
                "interpret scan REC --json > scan.json, then --scan scan.json)")
        return ("<h1>interpret viewer</h1><p>" + html.escape(
            f"{self.recording.path} \u00b7 {self.n:,} characters in {docs} document(s) \u00b7 "
            f"model {m.get('arch', '?')} with {m.get('hidden_size', '?')} units \u00b7 {scan}") + "</p>")

    def status_html(self, feature, start, stop, note="", unit=None):
        """The line above the text: what is shown (escaped); unit: (layer, kind, unit)."""
        s = f"characters {start:,}\u2013{max(start, stop - 1):,} of {self.n:,} \u00b7 "
        s += f"feature {feature}" if unit is None else self.unit_status(feature, *unit)
        if any(k == "c" for _, k, _ in self.recording.kinds()):
            s += " \u00b7 cell states (c) are shown through tanh"
        if self.features.get(feature) is None:
            s += " \u00b7 no feature values (a custom feature: the track is empty)"
        return note_html(s + (f" \u00b7 {note}" if note else ""), error=bool(note))

    @functools.lru_cache(maxsize=8)
    def window(self, start, stop):
        """Columns to draw text[start:stop]: x, y (= -row), ch, pos; and the number of rows."""
        x, row, n_rows = layout_window(self.text[start:stop])
        y = -row.astype(np.float32)
        cols = dict(x=x, y=y, ch=shown(self.text[start:stop]),
                    pos=np.arange(start, stop, dtype=np.int64))
        return {"cols": cols, "rows": n_rows}

    def grid(self, values, start, stop):
        """to_grid for the window text[start:stop] (values: (stop-start,))."""
        w = self.window(start, stop)
        return to_grid(values, w["cols"]["x"], w["cols"]["y"], w["rows"])

    def window_start(self, start, length):
        """start clamped to the text, moved back to the start of its line if that is within a row."""
        start = int(max(0, min(int(start), self.n - length)))
        nl = self.text.rfind("\n", max(0, start - WRAP), start)
        return start if nl < 0 else nl + 1

    def mark(self, start, length, positions):
        """Outline boxes for the characters at `positions` that fall in the window."""
        stop = min(self.n, start + length)
        cols = self.window(start, stop)["cols"]
        idx = [p - start for p in positions if start <= p < stop]
        return dict(x=cols["x"][idx], y=cols["y"][idx], pos=np.asarray(idx, np.int64) + start)

    def find(self, query, after):
        """Position of the next occurrence of query at or after `after` (wrapping round), or None."""
        hit = self.text.find(query, int(after))
        if hit < 0:
            hit = self.text.find(query)
        return None if hit < 0 else hit

    def feature_window(self, name, start, stop):
        """(track in 0..1, raw values) of a feature over text[start:stop]; zeros / NaN if unknown."""
        f = self.feature(name)
        if f is None:
            return np.zeros(stop - start, np.float32), np.full(stop - start, np.nan, np.float32)
        raw = f[start:stop]
        if self.feature_type(name) == "binary":
            return raw.astype(np.float32), raw.astype(np.float32)
        lo, hi = self._range(name)
        return ((raw - lo) / (hi - lo if hi > lo else 1.0)).astype(np.float32), raw.astype(np.float32)

    @functools.lru_cache(maxsize=32)
    def _range(self, name):
        f = self.feature(name)
        return float(f.min()), float(f.max())

    def first(self):
        """(layer, kind, unit, feature) to open on: the scan's strongest cell (verdict cell), else its
        strongest row (the status line then says no cell was found), else unit 0 of the first array.

        Strength puts both metrics on one 0..1 scale: 2 * AUROC - 1 (binary features), |rho| (the
        rest: metric spearman_rho; |r| in scans made before it, metric pearson_r).
        """
        scored = [r for r in self.rows if r.get("score") is not None]
        cells = [r for r in scored if r.get("verdict") == "cell"]
        if cells or scored:
            b = max(cells or scored, key=lambda r: strength(r["metric"], r["score"]))
            return b["layer"], b["kind"], int(b["unit"]), b["feature"]
        layer, kind, _ = self.recording.kinds()[0]
        return layer, kind, 0, next(iter(self.features))

    def best_unit(self, feature, layer, kind):
        """The feature's best unit in this array (a cell first), or None without scan rows for it."""
        ranked = [u for u, _ in self.ranked_units(feature, layer, kind)[:1] if self._row(feature, layer, kind, u)]
        return ranked[0] if ranked else None

    def has_cells(self):
        return any(r.get("verdict") == "cell" for r in self.rows)

    def _row(self, feature, layer, kind, unit):
        return self._rows_by_key().get((feature, layer, kind, unit))

    @functools.lru_cache(maxsize=1)
    def _rows_by_key(self):
        return {(r["feature"], r["layer"], r["kind"], int(r["unit"])): r for r in self.rows}

    def kind_labels(self):
        return [(f"{layer}:{kind}", f"layer {layer} \u00b7 {kind} ({n} units)")
                for layer, kind, n in self.recording.kinds()]

    def n_units(self, layer, kind):
        return self.recording.find(layer, kind)["n_units"]

    def window_values(self, layer, kind, unit, start, stop):
        """(stop-start,) float32 display values (cell states through tanh) of one unit."""
        acts = self.recording.activations(layer, kind)
        return display_values(kind, acts[start:stop, unit]).astype(np.float32)

    def column(self, layer, kind, unit):
        """(N,) float32 display values of one unit over the whole text (a few kept in memory)."""
        key = (layer, kind, unit)
        with self._lock:
            if key in self._columns:
                self._columns.move_to_end(key)
                return self._columns[key]
        col = self.window_values(layer, kind, unit, 0, self.n)
        with self._lock:
            self._columns[key] = col
            while len(self._columns) > 8:
                self._columns.popitem(last=False)
        return col

    def summaries(self, layer, kind, unit, feature):
        """(histogram columns, its two labels, top contexts) of one unit over the whole text."""
        col = self.column(layer, kind, unit)
        hist, labels = histogram(col, self.feature(feature), self.feature_type(feature), feature)
        return hist, labels, top_contexts(self.text, col)

    @functools.lru_cache(maxsize=32)
    def feature(self, name):
        """(N,) float64 values of a feature over the whole text, or None if it cannot be computed."""
        f = self.features.get(name)
        return None if f is None else F.evaluate(f, self.text, self.recording.doc_starts)

    def feature_type(self, name):
        f = self.features.get(name)
        if f is not None:
            return f.type
        return next((r.get("feature_type") for r in self.rows if r["feature"] == name), None)

    def ranked_units(self, feature, layer, kind):
        """[(unit, label)]: scanned units best first (cells first, then by score; score, q and the
        verdict beside each), then the rest by number."""
        rows = [r for r in top_rows(self.rows, feature=feature, top=None)
                if r["layer"] == layer and r["kind"] == kind]
        rows.sort(key=lambda r: r.get("verdict") != "cell")  # stable: by score within each group
        out, seen = [], set()
        for r in rows:
            u = int(r["unit"])
            if u not in seen:
                seen.add(u)
                sign = "+" if (r.get("sign") or 1) > 0 else "\u2212"
                verdict = r.get("verdict")
                tag = "" if verdict is None else f" \u00b7 {verdict if verdict == 'cell' else 'not a cell'}"
                out.append((u, f"unit {u} \u00b7 {r['metric']} {_num(r['score'])} {sign} \u00b7 q {_num(r['q'])}{tag}"))
        out += [(u, f"unit {u}") for u in range(self.n_units(layer, kind)) if u not in seen]
        return out

    def unit_status(self, feature, layer, kind, unit):
        """What is shown, for the status line: array, unit, feature, and the scan's word on it."""
        s = f"layer {layer} {kind} unit {unit} \u00b7 feature {feature}"
        r = self._row(feature, layer, kind, unit)
        if r is not None and r.get("score") is not None:
            s += f" \u00b7 {r['metric']} {_num(r['score'])}, q {_num(r.get('q'))}"
            if r.get("verdict"):
                s += f", {'a cell' if r['verdict'] == 'cell' else 'not a cell (' + r['verdict'] + ')'}"
        if self.rows and not self.has_cells():
            s += " \u00b7 no cell found in this scan"
        return s


def note_html(message, error=False):
    """A one-line note (escaped)."""
    return f'<span class="{"err" if error else "ok"}">{html.escape(str(message), quote=True)}</span>'


def _num(x):
    if x is None:
        return "n/a"
    return f"{x:.1e}" if 0 < abs(x) < 1e-3 else f"{x:.3f}"


def warm(view):
    """Compute the first feature in the background, so the first page's track comes quickly."""
    submit(lambda: view.feature(view.first()[3]), lambda result: None)


@functools.lru_cache(maxsize=4)
def open_view(rec_path, scan_path=None):
    """The View for these paths, opened once per server (ValueError with a readable message)."""
    if not os.path.exists(rec_path):
        raise ValueError(f"recording {rec_path!r} does not exist; "
                         "make one with `interpret record MODEL TEXT -o REC`")
    if scan_path is not None and not os.path.isfile(scan_path):
        raise ValueError(f"scan file {scan_path!r} does not exist; "
                         "write one with `interpret scan REC --json > SCAN.json`")
    return View(rec_path, scan_path)


def ranking_note(r):
    """The status line for a ranking state {state, done, total, label} (or None): '' when done or none."""
    if r is None or r["state"] == "done":
        return ""
    if r["state"] == "failed":
        return f"could not rank the units: {r['label']}"
    pct = 100 * r["done"] / r["total"] if r["total"] else 0
    return f"ranking the units in the background ({r['label']} {pct:.0f}%); they are in numeric order until then"
