"""Glue between a recording and the analyses: choose features, scan, pick excerpts, build pages."""
import json
import math
import os
import tempfile

import numpy as np

from interpret._util import atomic
from interpret.scan import budget
from interpret.export import html as export
from interpret.features import registry as F
from interpret.scan.memory import FeatureValues, add_qvalues, scan, top_rows
from interpret.scan.stream import scan_streaming
from interpret.scan.verdict import add_verdicts, feature_support

SNIFF = 200_000  # characters looks_like_code reads


def looks_like_code(text):
    """Heuristic: many lines of source code end in ; { } or ), lines of prose and verse hardly ever."""
    lines = [ln.rstrip() for ln in text[:SNIFF].splitlines() if ln.strip()]
    ends = sum(ln[-1] in ";{})" for ln in lines)
    return bool(lines) and ends > 0.15 * len(lines)


def choose_features(text, names=(), regexes=(), files=()):
    """Features to scan: named ones (or 'all'), plus user regex/file features; by default
    the built-ins whose domain fits the text (prose or code) plus any user features."""
    custom = [F.regex_feature(spec) for spec in regexes]
    for path in files:
        custom.extend(F.load_feature_file(path))
    names = [n for n in names if n]
    everything = F.get_features(None, extra=custom)  # raises if a user feature takes a taken name
    if "all" in names:
        return everything
    if names:  # the named ones, then every user feature (given, so wanted) not already named
        chosen = F.get_features(names, extra=custom)
        return chosen + [f for f in custom if f not in chosen]
    domain = "code" if looks_like_code(text) else "prose"
    return [f for f in everything if f.domain in (domain, "any") or f in custom]


def feature_values(recording, feats, compact=False, folder=None):
    """Evaluate features on the recording's text (state reset at each document start); compact
    keeps binary ones as uint8 (1 byte a character instead of 8: big texts). With a folder, the
    values go to memory-mapped files there and the text is read a document at a time: nothing
    in memory grows with the text's length but its longest document."""
    if folder is None:
        text, starts = recording.text, recording.doc_starts
        return [FeatureValues(f.name, f.kind, F.evaluate(f, text, starts, compact=compact))
                for f in feats]
    outs = [atomic.new_memmap(os.path.join(folder, f"feature{i}.npy"),
                              np.uint8 if f.kind == "binary" else np.float64, (recording.n_chars,),
                              atomic.TMP_WAY_OUT, f"feature {f.name!r} in {folder}")
            for i, f in enumerate(feats)]
    F.evaluate_documents(feats, recording.iter_documents(), outs)
    for out in outs:
        out.flush()
    return [FeatureValues(f.name, f.kind, out) for f, out in zip(feats, outs)]


def scan_arrays(kinds, fvals, char_ix, *, n_shifts=200, seed=0, progress_factory=None):
    """Scan every (layer, kind, activations) against every feature; q-values across all rows."""
    rows = []
    for layer, kind, acts in kinds:
        n_units = acts.shape[1]
        label = f"scanning layer {layer} {kind}"
        path, block, workers = budget.scan_plan(len(char_ix), n_units, len(fvals), acts.dtype)
        with _bar(progress_factory, n_units * len(fvals), label) as pbar:
            if path == "stream":  # too big for whole columns: passes over row chunks
                rows += scan_streaming(acts, fvals, char_ix, n_shifts=n_shifts, seed=seed,
                                       layer=layer, kind=kind, progress=pbar.update)
            else:
                rows += scan(acts, fvals, char_ix, n_shifts=n_shifts, seed=seed, layer=layer,
                             kind=kind, progress=pbar.update, block_units=block, workers=workers)
    add_qvalues(rows)
    add_support(rows, fvals)
    return rows


def add_support(rows, fvals):
    """Each row gets its feature's support: n_runs (binary) or n_distinct (the others)."""
    support = {fv.name: feature_support(fv.kind, fv.values) for fv in fvals}
    for r in rows:
        r.update(support.get(r["feature"], {}))


def judged(recording, feats, *, control=True, **kw):
    """(rows, control rows or None), every row with its verdict: the scan, the same scan of an
    untrained model of the same shape (unless control is False), and verdict.add_verdicts."""
    rows = scan_recording(recording, feats, **kw)
    control_rows = scan_control(recording, feats, **kw) if control else None
    add_verdicts(rows, control_rows)
    if control_rows is not None:
        add_verdicts(control_rows, None)  # the control's own rows: at most weak, by the rule
    return rows, control_rows


def scan_recording(recording, feats, *, layer=None, kind=None, n_shifts=200, seed=0,
                   progress_factory=None):
    """All rows for the recording's arrays (optionally one layer / kind)."""
    for k in (kind.split(",") if kind else [None]):
        recording.find(layer, k)  # raises, with the list of what there is, for a layer/kind it lacks
    chosen = [(l, k, recording.activations(l, k)) for l, k, _ in recording.kinds() if _wanted(l, k, layer, kind)]
    paths = {budget.scan_plan(recording.n_chars, acts.shape[1], len(feats), acts.dtype)[0]
             for _, _, acts in chosen}  # too big for either path: say so before computing features
    if "stream" not in paths:
        fvals = feature_values(recording, feats, compact=True)
        return scan_arrays(chosen, fvals, recording.char_ix, n_shifts=n_shifts, seed=seed,
                           progress_factory=progress_factory)
    with tempfile.TemporaryDirectory(prefix="interpret-features-") as folder:
        fvals = feature_values(recording, feats, folder=folder)
        rows = scan_arrays(chosen, fvals, recording.char_ix, n_shifts=n_shifts, seed=seed,
                           progress_factory=progress_factory)
        del fvals  # the memory maps, before their folder goes
        return rows


def _wanted(l, k, layer, kind):
    """Layer/kind filter; kind may list several kinds, e.g. 'h,c'."""
    return (layer is None or l == layer) and (kind is None or k in kind.split(","))


def scan_control(recording, feats, *, n_shifts=200, seed=0, init_seed=12345, progress_factory=None,
                 layer=None, kind=None):
    """The same scan on a freshly initialised model of the same shape: what chance looks like."""
    from interpret.model.model import Model
    from interpret.recording.record import record, run_in_memory

    info = recording.manifest.get("model")
    if not isinstance(info, dict) or not all(isinstance(info.get(k), int) and info[k] > 0
                                             for k in ("hidden_size", "n_layers")):
        raise ValueError(f"{recording.path}/manifest.json lacks the model's hidden_size and n_layers, which "
                         "--control untrained needs; record again")
    sizes = {n for _, _, n in recording.kinds()}
    if sizes != {info["hidden_size"]}:
        raise ValueError(f"{recording.path}/manifest.json says the model has {info['hidden_size']} units, but its "
                         f"arrays have {', '.join(map(str, sorted(sizes)))}; the recording is damaged, record again")
    model = Model.init(recording.chars, info.get("hidden_size"), arch=info.get("arch", "rnn"),
                       seed=init_seed, n_layers=info.get("n_layers", 1))
    recorded = {(l, k) for l, k, _ in recording.kinds()}  # the control scans what the text's scan scans
    keep = lambda l, k: (l, k) in recorded and _wanted(l, k, layer, kind)  # noqa: E731
    in_memory = recording.n_chars * info["hidden_size"] * 4 * sum(keep(l, k) for l, k, _ in recording.kinds())
    streams = budget.scan_plan(recording.n_chars, info["hidden_size"], len(feats), "float16")[0] == "stream"
    if streams or in_memory > (budget.available() or float("inf")) / 4:  # run_in_memory's float32 arrays
        # a big text: record the untrained model too (float16, memory-mapped, beside the scan's
        # temporary files) and scan that recording the way the text's own is scanned
        with tempfile.TemporaryDirectory(prefix="interpret-control-") as folder:
            docs = ((d["name"], text) for d, (_, text) in zip(recording.documents, recording.iter_documents()))
            control = record(model, docs, os.path.join(folder, "control.rec"), dtype="float16", keep=keep)
            return scan_recording(control, feats, layer=layer, kind=kind, n_shifts=n_shifts, seed=seed,
                                  progress_factory=progress_factory)
    acts = run_in_memory(model, recording.text, recording.doc_starts, keep=keep)
    kinds = [(l, k, a) for (l, k), a in acts.items()]
    return scan_arrays(kinds, feature_values(recording, feats), recording.char_ix,
                       n_shifts=n_shifts, seed=seed, progress_factory=progress_factory)


class NoBar:
    """The progress protocol's do-nothing bar: a context manager with update(n)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n, current_item=None):
        pass


def _bar(factory, n, label):
    return factory(n, label) if factory else NoBar()


# ---- rows as data -------------------------------------------------------------------------------
def jsonable(row):
    """A row with plain Python numbers; NaN becomes None (JSON has no NaN)."""
    out = {}
    for k, v in row.items():
        if isinstance(v, (np.floating, float)):
            v = None if math.isnan(v) else float(v)
        elif isinstance(v, np.integer):
            v = int(v)
        out[k] = v
    return out


REQUIRED_KEYS = ("feature", "unit", "layer", "kind", "metric", "score", "sign", "q")


def load_scan(path, recording=None):
    """(rows, control rows or None) from `interpret scan --json` output (a list of rows, or
    {"rows": [...], "control": [...]}), the rows checked against `recording` when given (a scan of
    another recording names units it does not have). Rows of an older scan without verdicts are
    judged here (without support columns they can be weak at most)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not valid scan JSON ({e}); write it with `interpret scan --json`") from None
    rows = data.get("rows") if isinstance(data, dict) else data
    control = data.get("control") if isinstance(data, dict) else None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ValueError(f"{path} is not a list of scan rows; write it with `interpret scan --json`")
    if control is not None and not (isinstance(control, list) and all(isinstance(r, dict) for r in control)):
        raise ValueError(f"{path}: 'control' is not a list of scan rows; write it with `interpret scan --json`")
    for r in rows:
        missing = [k for k in REQUIRED_KEYS if k not in r]
        if missing:
            raise ValueError(f"{path}: a row lacks {', '.join(missing)}; write it with `interpret scan --json`")
    if recording is not None:
        _check_rows_fit(path, rows, recording)
    if any("verdict" not in r for r in rows):
        add_verdicts(rows, control)
    return rows, control


def load_scan_json(path, recording=None):
    """The rows of load_scan."""
    return load_scan(path, recording)[0]


def _check_rows_fit(path, rows, recording):
    sizes = {(layer, kind): n for layer, kind, n in recording.kinds()}
    for r in rows:
        n = sizes.get((r.get("layer"), r.get("kind")))
        unit = r.get("unit")
        if n is None or not isinstance(unit, int) or not 0 <= unit < n:
            raise ValueError(f"{path} names layer {r.get('layer')} kind {r.get('kind')!r} unit {unit}, "
                             f"which {recording.path} does not have; the scan is of another "
                             "recording: scan this one with `interpret scan REC --json`")


# ---- excerpts and pages -------------------------------------------------------------------------
def display_values(kind, values):
    """What colours show: cell states through tanh (as the paper did), everything else as is."""
    values = np.asarray(values, dtype=np.float64)
    return np.tanh(values) if kind == "c" else values


def unit_export(recording, unit, *, start=0, length=3000, layer=None, kind=None):
    """A page with the excerpt text[start:start+length] coloured by one unit."""
    entry = recording.find(layer, kind)
    n_units = entry["n_units"]
    if not 0 <= unit < n_units:
        raise ValueError(f"unit {unit} is out of range: layer {entry['layer']} {entry['kind']} has "
                         f"{n_units} units (0-{n_units - 1})")
    if start >= recording.n_chars:
        raise ValueError(f"--start {start} is past the end of the recording ({recording.n_chars} characters)")
    end = min(recording.n_chars, start + length)
    acts = recording.activations(entry["layer"], entry["kind"])
    values = display_values(entry["kind"], acts[start:end, unit])
    title = f"layer {entry['layer']} {entry['kind']} unit {unit}"
    subtitle = f"characters {start}-{end - 1} of {recording.n_chars} in {recording.path}"
    legend = "activation (tanh of cell state)" if entry["kind"] == "c" else f"activation ({entry['kind']})"
    return export.unit_page(recording.text[start:end], values, start=start, title=title,
                            subtitle=subtitle, legend=legend)
