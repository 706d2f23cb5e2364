"""Scanning a recording: its features evaluated, each array scanned by the engine that fits its size
(in memory, or streaming over row chunks), q-values, support, and the untrained control."""
import os
import tempfile

import numpy as np

from interpret._util import atomic
from interpret._util.alloc import reuse_freed_memory
from interpret._util.progress import open_bar
from interpret.features.registry import evaluate_all, evaluate_documents
from interpret.scanning import budget
from interpret.scanning.common import FeatureValues
from interpret.scanning.memory import scan_in_memory
from interpret.scanning.rows import add_qvalues
from interpret.scanning.stream import scan_streaming
from interpret.scanning.verdict import add_verdicts, feature_support


def feature_values(recording, feats, compact=False, folder=None):
    """Evaluate features on the recording's text (state reset at each document start); compact
    keeps binary ones as uint8 (1 byte a character instead of 8: big texts). With a folder, the
    values go to memory-mapped files there and the text is read a document at a time: nothing
    in memory grows with the text's length but its longest document."""
    if folder is None:
        text, starts = recording.text, recording.doc_starts
        return [FeatureValues(f.name, f.type, values)
                for f, values in zip(feats, evaluate_all(feats, text, starts, compact))]
    outs = [atomic.new_memmap(os.path.join(folder, f"feature{i}.npy"),
                              np.uint8 if f.type == "binary" else np.float64, (recording.n_chars,),
                              atomic.TMP_WAY_OUT, f"feature {f.name!r} in {folder}")
            for i, f in enumerate(feats)]
    evaluate_documents(feats, recording.iter_documents(), outs)
    for out in outs:
        out.flush()
    return [FeatureValues(f.name, f.type, out) for f, out in zip(feats, outs)]


def scan_arrays(arrays, fvals, char_ix, *, n_shifts=200, seed=0, progress=None):
    """Scan every (layer, array, activations) against every feature; q-values across all rows."""
    rows = []
    for layer, array, acts in arrays:
        n_units = acts.shape[1]
        label = f"scanning layer {layer} {array}"
        path, block, workers = budget.scan_plan(len(char_ix), n_units, len(fvals), acts.dtype)
        with open_bar(progress, n_units * len(fvals), label) as pbar:
            if path == "stream":  # too big for whole columns: passes over row chunks
                rows += scan_streaming(acts, fvals, char_ix, n_shifts=n_shifts, seed=seed,
                                       layer=layer, array=array, progress=pbar.update)
            else:
                rows += scan_in_memory(acts, fvals, char_ix, n_shifts=n_shifts, seed=seed, layer=layer,
                             array=array, progress=pbar.update, block_units=block, workers=workers)
    add_qvalues(rows)
    add_support(rows, fvals)
    return rows


def add_support(rows, fvals):
    """Each row gets its feature's support: n_runs (binary) or n_distinct (the others)."""
    support = {fv.name: feature_support(fv.type, fv.values) for fv in fvals}
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


def scan_recording(recording, feats, *, layer=None, array=None, n_shifts=200, seed=0,
                   progress=None):
    """All rows for the recording's arrays (optionally one layer / array)."""
    for k in (array.split(",") if array else [None]):
        recording.find(layer, k)  # raises, with the list of what there is, for a layer/array it lacks
    chosen = [(l, k, recording.activations(l, k)) for l, k, _ in recording.array_list() if _wanted(l, k, layer, array)]
    paths = {budget.scan_plan(recording.n_chars, acts.shape[1], len(feats), acts.dtype)[0]
             for _, _, acts in chosen}  # too big for either path: say so before computing features
    if "stream" not in paths:
        with reuse_freed_memory():  # the features' freed temporaries become the scan's arrays
            fvals = feature_values(recording, feats, compact=True)
            return scan_arrays(chosen, fvals, recording.char_ix, n_shifts=n_shifts, seed=seed,
                               progress=progress)
    with tempfile.TemporaryDirectory(prefix="interpret-features-") as folder:
        fvals = feature_values(recording, feats, folder=folder)
        rows = scan_arrays(chosen, fvals, recording.char_ix, n_shifts=n_shifts, seed=seed,
                           progress=progress)
        del fvals  # the memory maps, before their folder goes
        return rows


def _wanted(l, k, layer, array):
    """Layer/array filter; array may list several arrays, e.g. 'h,c'."""
    return (layer is None or l == layer) and (array is None or k in array.split(","))


def scan_control(recording, feats, *, n_shifts=200, seed=0, init_seed=12345, progress=None,
                 layer=None, array=None):
    """The same scan on a freshly initialised model of the same shape: what chance looks like."""
    from interpret.model.model import Model
    from interpret.recording.recorder import record, run_in_memory

    info = recording.manifest.get("model")
    if not isinstance(info, dict) or not all(isinstance(info.get(k), int) and info[k] > 0
                                             for k in ("hidden_size", "n_layers")):
        raise ValueError(f"{recording.path}/manifest.json lacks the model's hidden_size and n_layers, which "
                         "--control untrained needs; record again")
    sizes = {n for _, _, n in recording.array_list()}
    if sizes != {info["hidden_size"]}:
        raise ValueError(f"{recording.path}/manifest.json says the model has {info['hidden_size']} units, but its "
                         f"arrays have {', '.join(map(str, sorted(sizes)))}; the recording is damaged, record again")
    model = Model.init(recording.chars, info.get("hidden_size"), arch=info.get("arch", "rnn"),
                       seed=init_seed, n_layers=info.get("n_layers", 1))
    recorded = {(l, k) for l, k, _ in recording.array_list()}  # the control scans what the text's scan scans
    keep = lambda l, k: (l, k) in recorded and _wanted(l, k, layer, array)  # noqa: E731
    in_memory = recording.n_chars * info["hidden_size"] * 4 * sum(keep(l, k) for l, k, _ in recording.array_list())
    streams = budget.scan_plan(recording.n_chars, info["hidden_size"], len(feats), "float16")[0] == "stream"
    if streams or in_memory > (budget.available() or float("inf")) / 4:  # run_in_memory's float32 arrays
        # a big text: record the untrained model too (float16, memory-mapped, beside the scan's
        # temporary files) and scan that recording the way the text's own is scanned
        with tempfile.TemporaryDirectory(prefix="interpret-control-") as folder:
            docs = ((d["name"], text) for d, (_, text) in zip(recording.documents, recording.iter_documents()))
            control = record(model, docs, os.path.join(folder, "control.rec"), dtype="float16", keep=keep)
            return scan_recording(control, feats, layer=layer, array=array, n_shifts=n_shifts, seed=seed,
                                  progress=progress)
    acts = run_in_memory(model, recording.text, recording.doc_starts, keep=keep)
    arrays = [(l, k, a) for (l, k), a in acts.items()]
    with reuse_freed_memory():
        return scan_arrays(arrays, feature_values(recording, feats), recording.char_ix,
                           n_shifts=n_shifts, seed=seed, progress=progress)


















