"""Recording: run a model over text and keep every unit's activation per character.

A recording is a directory:

    manifest.json      what is inside (model hash, vocabulary, arrays, documents, dtype, version)
    text.txt           the recorded text, UTF-8, exactly as read (after --unknown handling)
    L{layer}_{kind}.npy  activations (n_chars, n_units), memory-mappable; row t is the state
                       *after reading* text[t], position first, unit last
    loss.npy           (n_chars,) float32: -log p(text[t+1] | state after text[t]) in nats;
                       NaN at the last character of each document (nothing follows it there)
    char_ix.npy        (n_chars,) index of text[t] in the vocabulary (uint8 for up to 256
                       characters); optional: recordings made before it compute it from the text

One text file is one document: the hidden state is reset to zeros at each document start and
carried exactly across everything inside a document (the text is processed in chunks).
A vanilla RNN steps many documents together in float32 lanes (record_fast: within float32
rounding of the plain per-document float64 run, about 3e-5 for the shipped model over 2,000
characters); one document alone steps in float64.
Recording takes two passes, one document at a time (record_text: read, encode, write the text
and char_ix.npy; then the model over the memory-mapped indices), so its memory stays the same
however long the input is.
"""
import json
import os
import shutil

import numpy as np

from interpret._util import atomic
from interpret._util.blas import one_thread
from interpret.recording.char_ix import char_ix_from_text, load_char_ix, text_pieces
from interpret.recording.manifest import FORMAT, FORMAT_VERSION, array_file, check_manifest, make_manifest  # noqa: F401
from interpret.model.model import _umask
from interpret.model.lanes import LANES, fill_rnn_lanes, log_softmax_pick
from interpret.recording.documents import CHAR_IX_FILE, index_dtype, write_documents  # noqa: F401 (index_dtype: API)

CHUNK = 1 << 14  # characters per forward chunk (LSTM/GRU): bounds the float64 working set to CHUNK x units
LANE_CHUNK = 1 << 16  # lane steps x lanes per chunk for the vanilla RNN's lanes (H is small)
DTYPES = ("float32", "float16")

_log_softmax_pick = log_softmax_pick  # the plain form of the next-character loss


def record(model, documents, out, *, dtype="float32", unknown="error", model_path=None,
           progress=None, on_total=None, keep=None):
    """Record `documents` [(name, text), ...] into the directory `out`; returns the Recording.

    text: a str, or a text_blocks.TextFile (read on demand, block by block). Two passes, one
    document at a time: the text and its character indices are written (char_ix.npy), then
    the model runs over the memory-mapped indices; memory does not grow with the length.
    progress(n): n more characters recorded; on_total(n_chars): called between the passes.
    keep(layer, kind) -> bool: only those arrays (default: all).
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
        kinds = [(l, k, n) for l, k, n in model.kinds() if keep is None or keep(l, k)]
        _write(model, docs, n_chars, tmp, dtype, progress, out, kinds)
        manifest = make_manifest(model, docs, n_chars, dtype, unknown, model_path, kinds)
        with open(os.path.join(tmp, "manifest.json"), "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=1)
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; give the usual permissions
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


def _write(model, docs, n_chars, directory, dtype, progress, out="the recording", kinds=None):
    """Pass 2: run the model over char_ix.npy (memory-mapped) into memory-mapped outputs."""
    way_out = "free some space, or record with --dtype float16 or to another disk (-o)"
    outs = {(layer, kind): atomic.new_memmap(os.path.join(directory, array_file(layer, kind)), dtype,
                                             (n_chars, n), way_out, f"{out} ({array_file(layer, kind)})")
            for layer, kind, n in (model.kinds() if kinds is None else kinds)}
    loss = atomic.new_memmap(os.path.join(directory, "loss.npy"), "float32", (n_chars,), way_out,
                             f"{out} (loss.npy)")
    ix = np.load(os.path.join(directory, CHAR_IX_FILE), mmap_mode="r", allow_pickle=False)  # (n_chars,)
    _fill(model, ix, [d["start"] for d in docs], outs, loss, progress)
    for arr in list(outs.values()) + [loss]:
        arr.flush()


def _fill(model, ix, doc_starts, outs, loss, progress=None, lanes=LANES):
    """Run each document (state reset at its start, carried across chunks) into outs/loss.

    ix (N,): every document's character indices, back to back (an array or a memmap);
    doc_starts: each document's first row. A vanilla RNN runs all documents together in
    lanes (record_fast); other architectures run document by document through Model.run.
    """
    if model.arch != "rnn" or list(outs) != [(0, "h")]:
        return _fill_by_document(model, ix, doc_starts, outs, loss, progress)
    with one_thread():  # (lanes, H) x (H, H) products are too small to split across cores
        fill_rnn_lanes(model.params, ix, doc_starts, outs[(0, "h")], loss, progress,
                       lanes=lanes, chunk_chars=LANE_CHUNK)


def _fill_by_document(model, ix, doc_starts, outs, loss, progress=None):
    """_fill through Model.run, one document at a time, in chunks."""
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
                chunk_loss[:len(nxt)] = _log_softmax_pick(ys[:len(nxt)], nxt)
                loss[base + a:base + b] = chunk_loss
            if progress:
                progress(b - a)


def _check_storable(arr, dtype, key, row0):
    """Raise (naming the array, unit and character) if arr (T, H) has a value dtype cannot hold."""
    limit = float(np.finfo(dtype).max)
    bad = ~(np.abs(arr) <= limit)  # NaN compares False: caught too
    if not bad.any():
        return
    t, unit = (int(i) for i in np.argwhere(bad)[0])
    layer, kind = key
    value = float(arr[t, unit])
    if not np.isfinite(value):
        raise ValueError(f"array L{layer}.{kind} unit {unit} is {value} at character {row0 + t}: the model "
                         "itself gives non-finite values there; check the model file")
    raise ValueError(f"array L{layer}.{kind} unit {unit} reaches {value:.6g} at character {row0 + t}, "
                     f"outside {np.dtype(dtype).name}'s range (+-{limit:g}); record with --dtype float32")


def run_in_memory(model, text, doc_starts=(0,), dtype=np.float32, keep=None):
    """{(layer, kind): (n_chars, n_units)} for a text already in the model's vocabulary;
    keep(layer, kind) -> bool limits which arrays are kept."""
    ix, _ = model.encode(text)
    outs = {(layer, kind): np.empty((len(text), n), dtype=dtype) for layer, kind, n in model.kinds()
            if keep is None or keep(layer, kind)}
    _fill(model, ix, list(doc_starts), outs, None)
    return outs


def _left_over(path):
    """A hint when `record` was killed between its two renames: the previous recording is beside path."""
    folder = os.path.dirname(os.path.abspath(path)) or "."
    name = os.path.basename(os.path.abspath(path)) + ".old-"
    old = sorted(f for f in os.listdir(folder) if f.startswith(name)) if os.path.isdir(folder) else []
    if old and not os.path.exists(path):
        return f"; an interrupted `interpret record` left the previous one at {os.path.join(folder, old[-1])}"
    return ""


class Recording:
    """An opened recording directory. Activations are (n_chars, n_units) memmaps, unit last."""

    def __init__(self, path):
        self.path = os.fspath(path)
        mpath = os.path.join(self.path, "manifest.json")
        if not os.path.isdir(self.path):
            raise ValueError(f"{self.path} is not a recording directory (make one with `interpret record`)"
                             + _left_over(self.path))
        if not os.path.isfile(mpath):
            raise ValueError(f"{self.path} has no manifest.json; it is not a recording "
                             "(make one with `interpret record`)")
        try:
            with open(mpath, encoding="utf-8") as f:
                self.manifest = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"{mpath} is not valid JSON ({e}); record again") from None
        m = self.manifest
        if not isinstance(m, dict) or m.get("format") != FORMAT:
            raise ValueError(f"{mpath} is not an interpret recording manifest; record again")
        try:
            self.n_chars = int(m["n_chars"])
            self.chars = list(m["chars"])
            self.arrays = list(m["arrays"])
            self.documents = list(m["documents"])
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{mpath} is missing or has a bad entry {e}; record again") from None
        check_manifest(mpath, self.n_chars, self.chars, self.arrays, self.documents,
                       m.get("char_ix_file"))
        self._text = None
        self._char_ix = None

    # ---- what is inside ----------------------------------------------------------------------
    def kinds(self):
        """[(layer, kind, n_units), ...] in recording order."""
        return [(a["layer"], a["kind"], a["n_units"]) for a in self.arrays]

    def find(self, layer=None, kind=None):
        """The array entry for (layer, kind); None means 'the only/first one'."""
        for a in self.arrays:
            if (layer is None or a["layer"] == layer) and (kind is None or a["kind"] == kind):
                return a
        have = ", ".join(f"layer {a['layer']} kind {a['kind']}" for a in self.arrays)
        raise ValueError(f"the recording has no layer {layer} kind {kind!r}; it has: {have}")

    def activations(self, layer=None, kind=None):
        """(n_chars, n_units) memory-mapped array for one layer and kind."""
        a = self.find(layer, kind)
        path = os.path.join(self.path, a["file"])
        arr = self._load_npy(path)
        if arr.shape != (self.n_chars, a["n_units"]):
            raise ValueError(f"{path} has shape {arr.shape} but the manifest says "
                             f"({self.n_chars}, {a['n_units']}); the recording is damaged, record again")
        return arr

    @property
    def loss(self):
        arr = self._load_npy(os.path.join(self.path, self.manifest.get("loss_file", "loss.npy")))
        if arr.shape != (self.n_chars,):
            raise ValueError(f"loss.npy in {self.path} has shape {arr.shape}, expected ({self.n_chars},)")
        return arr

    def mean_loss(self, chunk=1 << 20):
        """Mean next-character loss in nats (NaN rows left out), read chunk by chunk."""
        loss, total, count = self.loss, 0.0, 0
        for a in range(0, self.n_chars, chunk):
            part = np.asarray(loss[a:a + chunk], dtype=np.float64)
            ok = ~np.isnan(part)
            total, count = total + float(part[ok].sum()), count + int(ok.sum())
        return total / count if count else float("nan")

    @property
    def text(self):
        if self._text is None:
            path = self._text_path()
            try:
                with open(path, "rb") as f:
                    self._text = f.read().decode("utf-8")
            except FileNotFoundError:
                raise ValueError(f"{path} is missing; the recording is damaged, record again") from None
            except UnicodeDecodeError as e:
                raise ValueError(f"{path} is not UTF-8 (byte {e.start}); the recording is damaged, "
                                 "record again") from None
            if len(self._text) != self.n_chars:
                raise ValueError(f"{path} has {len(self._text)} characters but the manifest says "
                                 f"{self.n_chars}; the recording is damaged, record again")
        return self._text

    def _text_path(self):
        return os.path.join(self.path, self.manifest.get("text_file", "text.txt"))

    @property
    def doc_starts(self):
        return np.array([d["start"] for d in self.documents], dtype=np.int64)

    @property
    def char_ix(self):
        """(n_chars,) index of each character in the recording's vocabulary: char_ix.npy as a
        read-only memmap, checked against the text; recordings made before it: from the text."""
        if self._char_ix is None:
            name = self.manifest.get("char_ix_file")
            if name:
                self._char_ix = load_char_ix(os.path.join(self.path, name), self._text_path(), self.chars,
                                             self.n_chars, self.path)
            else:
                self._char_ix = char_ix_from_text(self.text, self.chars, self.path)
        return self._char_ix

    def check_model(self, model):
        """Raise if `model` is not the one this recording was made with."""
        want = self.manifest.get("model", {}).get("sha256")
        if want and model.sha256 and want != model.sha256:
            raise ValueError(f"the recording {self.path} was made with another model "
                             f"(sha256 {want[:12]}..., this one {model.sha256[:12]}...); record again")
        if list(model.chars) != self.chars:
            raise ValueError(f"the recording {self.path} has another vocabulary than the model")

    @staticmethod
    def _load_npy(path):
        try:
            return np.load(path, mmap_mode="r", allow_pickle=False)
        except FileNotFoundError:
            raise ValueError(f"{path} is missing; the recording is damaged, record again") from None
        except ValueError as e:
            raise ValueError(f"{path} cannot be read ({e}); record again") from None

    # ---- the text a piece at a time (big recordings) -------------------------------------------
    def iter_documents(self, block=1 << 22):
        """(start, text) of each document in order, the text.txt read `block` bytes at a time:
        one document is in memory at once, never the whole text (unless it is loaded already)."""
        if self._text is not None:
            bounds = [*map(int, self.doc_starts), self.n_chars]
            yield from ((a, self._text[a:b]) for a, b in zip(bounds, bounds[1:]))
            return
        pieces = self._decoded_blocks(block)
        buf = ""
        starts = [int(s) for s in self.doc_starts]
        for a, b in zip(starts, starts[1:] + [self.n_chars]):
            parts, have = [buf], len(buf)
            while have < b - a:
                piece = next(pieces, None)
                if piece is None:
                    self._wrong_length(a + have)
                parts.append(piece)
                have += len(piece)
            doc = "".join(parts)
            buf = doc[b - a:]
            yield a, doc[:b - a]
        extra = len(buf) + sum(len(p) for p in pieces)
        if extra:
            self._wrong_length(self.n_chars + extra)

    def head(self, n_chars):
        """The first n_chars characters of the text (all of it if shorter), read from the start
        of text.txt only."""
        if self._text is not None:
            return self._text[:n_chars]
        parts, have = [], 0
        for piece in self._decoded_blocks(1 << 20):
            parts.append(piece)
            have += len(piece)
            if have >= n_chars:
                break
        return "".join(parts)[:n_chars]

    def _decoded_blocks(self, block):
        """text.txt decoded from UTF-8 `block` bytes at a time, with .text's errors."""
        return text_pieces(self._text_path(), block)

    def _wrong_length(self, n):
        raise ValueError(f"{self._text_path()} has {n} characters "
                         f"but the manifest says {self.n_chars}; the recording is damaged, record again")
