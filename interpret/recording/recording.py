"""Recording: every unit of a model per character of a text, opened from disk or held in memory.

On disk a recording is a directory: manifest.json (model hash, vocabulary, arrays, documents,
dtype, version), text.txt (UTF-8, as recorded), L{layer}_{array}.npy (n_chars, n_units)
memory-mappable, loss.npy (n_chars,) next-character loss in nats (NaN at each document end) and
char_ix.npy (n_chars,) the vocabulary index of each character. Row t is the state *after reading*
text[t]: position first, unit last. Access an array by name: rec["L0.c"].
"""
import json
import os

import numpy as np

from interpret.recording.char_ix import char_ix_from_text, load_char_ix, text_pieces
from interpret.recording.manifest import FORMAT, check_manifest


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
            self.arrays = [_renamed(a) for a in m["arrays"]]
            self.documents = list(m["documents"])
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{mpath} is missing or has a bad entry {e}; record again") from None
        check_manifest(mpath, self.n_chars, self.chars, self.arrays, self.documents,
                       m.get("char_ix_file"))
        self._text = None
        self._char_ix = None
        self._memory = None  # {(layer, array): array, "loss": array} once held in memory

    @classmethod
    def open(cls, path):
        """Open a recording directory (written by `record(..., out=...)` or `interpret record`)."""
        return cls(path)

    @classmethod
    def in_memory(cls, manifest, text, char_ix, arrays, loss):
        """A recording held in memory (record() without out=): the manifest a directory would
        have, the text, its indices (N,), {(layer, array): (N, n_units)} and the loss (N,)."""
        rec = cls.__new__(cls)
        rec.path, rec.manifest, rec.n_chars = "(in memory)", manifest, manifest["n_chars"]
        rec.chars, rec.documents = list(manifest["chars"]), list(manifest["documents"])
        rec.arrays = [_renamed(a) for a in manifest["arrays"]]
        rec._text, rec._char_ix = text, char_ix
        rec._memory = dict(arrays, loss=loss)
        return rec

    # ---- by name, and in a notebook ----------------------------------------------------------
    @property
    def names(self):
        """The arrays' names, "L{layer}.{array}": ["L0.h", "L0.c", ...]."""
        return [f"L{l}.{k}" for l, k, _ in self.array_list()]

    def __getitem__(self, name):
        """rec["L0.c"]: the (n_chars, n_units) array; row t is the state after reading text[t]."""
        layer, array = parse_name(name, self.names)
        return self.activations(layer, array)

    def show(self, unit, array=None, start=0, length=2000):
        """The text[start:start+length] coloured by one unit (-1 red, 0 white, +1 blue), as an
        object Jupyter displays inline (and .save(path) writes as a page)."""
        from interpret.export.unit import unit_export  # export builds on recording, not the reverse
        layer, array = parse_name(array, self.names) if array else (None, None)
        return unit_export(self, unit, start=start, length=length, layer=layer, array=array)

    def __repr__(self):
        where = "in memory" if self._memory is not None else self.path
        return (f"<Recording {where}: {self.n_chars} characters, {len(self.documents)} document(s), "
                f"arrays {', '.join(f'{n} ({u} units)' for n, (_, _, u) in zip(self.names, self.array_list()))}>")

    def _repr_html_(self):
        import html
        return f"<p>{html.escape(repr(self))}</p><pre>{html.escape(self.head(300))}</pre>"

    # ---- what is inside ----------------------------------------------------------------------
    def array_list(self):
        """[(layer, array, n_units), ...] in recording order."""
        return [(a["layer"], a["array"], a["n_units"]) for a in self.arrays]

    def find(self, layer=None, array=None):
        """The array entry for (layer, array); None means 'the only/first one'."""
        for a in self.arrays:
            if (layer is None or a["layer"] == layer) and (array is None or a["array"] == array):
                return a
        have = ", ".join(f"layer {a['layer']} array {a['array']}" for a in self.arrays)
        raise ValueError(f"the recording has no layer {layer} array {array!r}; it has: {have}")

    def activations(self, layer=None, array=None):
        """(n_chars, n_units) memory-mapped array for one layer and array."""
        a = self.find(layer, array)
        if self._memory is not None:
            return self._memory[a["layer"], a["array"]]
        path = os.path.join(self.path, a["file"])
        arr = self._load_npy(path)
        if arr.shape != (self.n_chars, a["n_units"]):
            raise ValueError(f"{path} has shape {arr.shape} but the manifest says "
                             f"({self.n_chars}, {a['n_units']}); the recording is damaged, record again")
        return arr

    @property
    def loss(self):
        if self._memory is not None:
            return self._memory["loss"]
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
    def text_loaded(self):
        """Whether the whole text is in memory (big recordings are read a document at a time)."""
        return self._text is not None

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


def parse_name(name, names=()):
    """"L0.c" -> (0, "c"); a clear error naming the arrays there are."""
    layer, _, array = str(name).partition(".")
    if not (layer.startswith("L") and layer[1:].isdigit() and array):
        raise ValueError(f"array name {name!r} is not of the form L{{layer}}.{{array}}, e.g. L0.h"
                         + (f"; this recording has {', '.join(names)}" if names else ""))
    if names and name not in names:
        raise ValueError(f"this recording has no array {name!r}; it has {', '.join(names)}")
    return int(layer[1:]), array


def _renamed(entry):
    """A manifest's array entry; recordings made before "kind" became "array" say kind."""
    if isinstance(entry, dict) and "kind" in entry and "array" not in entry:
        entry = {("array" if k == "kind" else k): v for k, v in entry.items()}
    return entry
