"""record(): run a model over text and keep every unit's activation per character.

One text is one document: the state is reset to zeros at its start and carried exactly across
the rest (in chunks). Two passes, one document at a time: the text and its character indices are
written (documents.py), then the model runs over the memory-mapped indices into the output files
(written by position: outfile.py), so memory stays the same however long the input is. Documents
step together in lanes: the vanilla RNN's (model/lanes.py; one document alone in float64) and the
gated stacks' (model/gated_lanes.py). Written to a temporary directory beside the target, then
moved into place. The directory's layout is in recording.py and the README (File formats).
"""
import io
import json
import os
import shutil

import numpy as np

from interpret._util import atomic
from interpret._util.blas import one_thread
from interpret.model import jit
from interpret.recording.manifest import array_file, make_manifest
from interpret.recording.recording import Recording
from interpret.model.gated_lanes import LANES as GATED_LANES, fill_gated_lanes
from interpret.model.lanes import LANES, fill_rnn_lanes, log_softmax_pick
from interpret.recording.documents import CHAR_IX_FILE, encode_documents, write_documents
from interpret.recording.outfile import NpyWriter

CHUNK = 1 << 14  # characters per Model.run call in the plain form (_fill_by_document)
LANE_CHUNK = 1 << 16  # lane steps x lanes per chunk for the vanilla RNN's lanes (H is small)
DTYPES = ("float32", "float16")



def record(model, documents=None, out=None, *, text=None, files=None, arrays=None, dtype="float32",
           unknown="error", encoding="utf-8", model_path=None, progress=None, on_total=None, keep=None,
           threads=1):
    """Run a model (a Model or a model file) over text and keep every unit at every character.

    The text: `text` (one document, a str), `files` (paths, one document each), or `documents`
    [(name, text or TextFile), ...]; a str as `documents` is taken as `text`. With `out`, the
    recording is written to that directory (see write_recording); without, it is held in memory.
    arrays: e.g. "h,c" or ["h", "c"] records only those (default: all the model has).
    progress: a factory progress(total, label) -> bar (see interpret._util.progress).
    threads: an LSTM's steps split over this many threads when it runs few documents (fill_arrays).
    """
    from interpret._util.progress import open_bar
    from interpret._util.textfile import TextFile
    from interpret.model.model import Model

    if not isinstance(model, Model):
        model_path = model_path or os.fspath(model)
        model = Model.load(model)
    if isinstance(documents, str):
        documents, text = None, documents
    given = [x is not None for x in (documents, text, files)]
    if sum(given) != 1:
        raise ValueError("give the text one way: text=\"...\", files=[paths] or documents=[(name, text)]")
    if text is not None:
        documents = [("text", text)]
    elif files is not None:
        documents = [(os.path.basename(os.fspath(f)), TextFile(os.fspath(f), encoding)) for f in files]
    if arrays is not None:
        keep = _keep_arrays(model, arrays, keep)
    with open_bar(progress, None, "recording") as bar:
        if out is not None:
            return write_recording(model, documents, out, dtype=dtype, unknown=unknown, model_path=model_path,
                                   progress=bar.update, keep=keep, threads=threads,
                                   on_total=on_total or (lambda n: setattr(bar, "length", n)))
        return _record_in_memory(model, documents, dtype, unknown, model_path, keep, bar, threads)


def _record_in_memory(model, documents, dtype, unknown, model_path, keep, bar, threads=1):
    """The two passes of write_recording into memory: the same encoding, errors and arrays."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype {dtype!r} is not supported; use one of {', '.join(DTYPES)}")
    model.check_unknown({}, unknown)
    ftext, fix = io.StringIO(newline=""), io.BytesIO()
    docs, n_chars = encode_documents(model, documents, ftext, fix, unknown)
    if not docs:
        raise ValueError("no text to record; give at least one text file")
    bar.length = n_chars
    ix = np.load(io.BytesIO(fix.getvalue()), allow_pickle=False)  # (n_chars,)
    arrays = [(l, k, n) for l, k, n in model.array_list() if keep is None or keep(l, k)]
    outs = {(l, k): np.empty((n_chars, n), dtype) for l, k, n in arrays}
    loss = np.empty(n_chars, np.float32)
    fill_arrays(model, ix, [d["start"] for d in docs], outs, loss, bar.update, threads=threads)
    manifest = make_manifest(model, docs, n_chars, dtype, unknown, model_path, arrays)
    return Recording.in_memory(manifest, ftext.getvalue(), ix, outs, loss)


def _keep_arrays(model, arrays, keep=None):
    """keep(layer, array) for the arrays named like "h,c" (or a list), checked against the model."""
    wanted = [a.strip() for a in (arrays.split(",") if isinstance(arrays, str) else arrays) if a.strip()]
    have = list(dict.fromkeys(k for _, k, _ in model.array_list()))
    bad = [a for a in wanted if a not in have]
    if bad or not wanted:
        raise ValueError(f"arrays {','.join(bad) or repr(arrays)}: this {model.arch} model records "
                         f"{','.join(have)}; choose among them")
    return lambda l, k: k in wanted and (keep is None or keep(l, k))


def write_recording(model, documents, out, *, dtype="float32", unknown="error", model_path=None,
                    progress=None, on_total=None, keep=None, threads=1):
    """Record `documents` [(name, text), ...] into the directory `out`; returns the Recording.

    text: a str, or a _util.textfile.TextFile (read on demand, block by block). Two passes, one
    document at a time: the text and its character indices are written (char_ix.npy), then
    the model runs over the memory-mapped indices; memory does not grow with the length.
    progress(n): n more characters recorded; on_total(n_chars): called between the passes.
    keep(layer, array) -> bool: only those arrays (default: all).
    Written to a temporary directory beside `out`, then moved into place: no half-written
    recording is ever left at `out`.
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype {dtype!r} is not supported; use one of {', '.join(DTYPES)}")
    model.check_unknown({}, unknown)  # a bad policy fails before any reading
    if not documents:
        raise ValueError("no text to record; give at least one text file")
    out = os.fspath(out)
    _check_target(out)
    tmp = atomic.temp_dir(out)
    try:
        docs, n_chars = write_documents(model, documents, tmp, unknown)
        if not docs:  # `documents` was an empty iterator
            raise ValueError("no text to record; give at least one text file")
        if on_total:
            on_total(n_chars)
        arrays = [(l, k, n) for l, k, n in model.array_list() if keep is None or keep(l, k)]
        _write(model, docs, n_chars, tmp, dtype, progress, out, arrays, threads)
        manifest = make_manifest(model, docs, n_chars, dtype, unknown, model_path, arrays)
        with open(os.path.join(tmp, "manifest.json"), "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=1)
        os.chmod(tmp, 0o777 & ~atomic.umask())  # mkdtemp makes 0700; give the usual permissions
        _move_into_place(tmp, out)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        atomic.name_full_disk(e, out)
        raise
    return Recording(out)


def _check_target(out):
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"directory {folder!r} does not exist; create it before writing {out!r}")
    if os.path.exists(out) and not os.path.isfile(os.path.join(out, "manifest.json")):
        if os.path.isfile(out) or os.listdir(out):
            raise ValueError(f"{out} exists and is not a recording; choose another -o path")


def _move_into_place(tmp, out):
    """Replace `out` (absent, empty, or an older recording) with `tmp`."""
    old = None
    if os.path.exists(out):
        old = out.rstrip("/\\") + ".old-" + os.path.basename(tmp)
        os.replace(out, old)
    os.replace(tmp, out)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def _write(model, docs, n_chars, directory, dtype, progress, out="the recording", arrays=None, threads=1):
    """Pass 2: run the model over char_ix.npy (memory-mapped) into the output files (outfile.py)."""
    way_out = "free some space, or record with --dtype float16 or to another disk (-o)"
    outs, loss = {}, None
    try:
        for layer, array, n in (model.array_list() if arrays is None else arrays):
            name = array_file(layer, array)
            outs[(layer, array)] = NpyWriter(os.path.join(directory, name), dtype, (n_chars, n), way_out,
                                             f"{out} ({name})")
        loss = NpyWriter(os.path.join(directory, "loss.npy"), "float32", (n_chars,), way_out, f"{out} (loss.npy)")
        ix = np.load(os.path.join(directory, CHAR_IX_FILE), mmap_mode="r", allow_pickle=False)  # (n_chars,)
        fill_arrays(model, ix, [d["start"] for d in docs], outs, loss, progress, threads=threads)
    finally:
        for arr in list(outs.values()) + [loss]:
            if arr is not None:
                arr.close()


def fill_arrays(model, ix, doc_starts, outs, loss, progress=None, lanes=None, threads=1):
    """Run each document (state reset at its start, carried across chunks) into outs/loss.

    ix (N,): every document's character indices, back to back (an array or a memmap);
    doc_starts: each document's first row. All documents step together in lanes: the vanilla
    RNN's (model/lanes.py) or a gated stack's (model/gated_lanes.py); lanes: at most that many.
    threads > 1: an LSTM in few lanes (one long document) splits its units over that many threads
    (model/jit.py); it pays on idle cores only. BLAS stays on one thread either way.
    """
    if model.arch == "rnn":
        import scipy.linalg.blas  # noqa: F401  lanes.steps_one's dgemv, loaded before one_thread looks
    else:
        jit.load_blas()
    with one_thread():  # (lanes, H) x (H, G*H) products are too small to split across cores
        if model.arch == "rnn" and list(outs) == [(0, "h")]:
            return fill_rnn_lanes(model.params, ix, doc_starts, outs[(0, "h")], loss, progress,
                                  lanes=lanes or LANES, chunk_chars=LANE_CHUNK)
        if model.arch == "rnn":  # nothing to record but the loss
            return _fill_by_document(model, ix, doc_starts, outs, loss, progress)
        check = _check_storable if any(a.dtype == np.float16 for a in outs.values()) else None
        fill_gated_lanes(model, ix, doc_starts, outs, loss, progress, lanes=lanes or GATED_LANES,
                         check=check, threads=threads)


def _fill_by_document(model, ix, doc_starts, outs, loss, progress=None):
    """fill_arrays through Model.run, one document at a time, in chunks: the plain form."""
    ends = list(doc_starts[1:]) + [len(ix)]
    for base, end in zip(doc_starts, ends):
        state, n = None, end - base
        for a in range(0, n, CHUNK):
            b = min(a + CHUNK, n)
            acts, ys, state = model.run(np.asarray(ix[base + a:base + b]), state, logits=loss is not None)
            for key, arr in acts.items():
                if key in outs:
                    _check_storable(arr, outs[key].dtype, key, base + a)
                    outs[key][base + a:base + b] = arr
            if loss is not None:
                nxt = np.asarray(ix[base + a + 1:base + min(b + 1, n)])  # the next chunk's first at the seam
                chunk_loss = np.full(b - a, np.nan)
                chunk_loss[:len(nxt)] = log_softmax_pick(ys[:len(nxt)], nxt)
                loss[base + a:base + b] = chunk_loss
            if progress:
                progress(b - a)


def _check_storable(arr, dtype, key, row0):
    """Raise (naming the array, unit and character) if arr (T, H) has a value dtype cannot hold."""
    limit = float(np.finfo(dtype).max)
    bad = ~(np.abs(arr) <= limit)  # NaN compares False: caught too
    if not bad.any():
        return
    arr = np.asarray(arr)
    t, unit = (int(i) for i in np.argwhere(bad)[0])
    layer, array = key
    value = float(arr[t, unit])
    if not np.isfinite(value):
        raise ValueError(f"array L{layer}.{array} unit {unit} is {value} at character {row0 + t}: the model "
                         "itself gives non-finite values there; check the model file")
    raise ValueError(f"array L{layer}.{array} unit {unit} reaches {value:.6g} at character {row0 + t}, "
                     f"outside {np.dtype(dtype).name}'s range (+-{limit:g}); record with --dtype float32")


def run_in_memory(model, text, doc_starts=(0,), dtype=np.float32, keep=None):
    """{(layer, array): (n_chars, n_units)} for a text already in the model's vocabulary;
    keep(layer, array) -> bool limits which arrays are kept."""
    ix, _ = model.encode(text)
    outs = {(layer, array): np.empty((len(text), n), dtype=dtype) for layer, array, n in model.array_list()
            if keep is None or keep(layer, array)}
    fill_arrays(model, ix, list(doc_starts), outs, None)
    return outs




