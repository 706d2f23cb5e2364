"""The recording's manifest.json: what `record` writes into it, and the checks a reader makes."""
import os
from datetime import datetime, timezone

from interpret._util.version import __version__

FORMAT = "interpret-recording"
FORMAT_VERSION = 1


def array_file(layer, kind):
    return f"L{layer}_{kind}.npy"


def make_manifest(model, docs, n_chars, dtype, unknown, model_path, kinds=None):
    """The manifest `record` writes: format, tool version, model, vocabulary, arrays (kinds:
    [(layer, kind, n_units), ...], default all the model's), documents."""
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "tool_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": {"path": os.path.abspath(model_path) if model_path else None,
                  "sha256": model.sha256, "arch": model.arch,
                  "hidden_size": model.hidden_size, "n_layers": model.n_layers,
                  "meta": model.meta},
        "chars": model.chars, "n_chars": n_chars, "dtype": dtype, "unknown": unknown,
        "arrays": [{"layer": layer, "kind": kind, "n_units": n, "file": array_file(layer, kind)}
                   for layer, kind, n in (model.kinds() if kinds is None else kinds)],
        "documents": docs, "text_file": "text.txt", "loss_file": "loss.npy",
        "char_ix_file": "char_ix.npy",  # optional: recordings made before it was written open too
    }


def _is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def _plain_npy(name):
    return isinstance(name, str) and name == os.path.basename(name) and name.endswith(".npy")


def check_manifest(mpath, n_chars, chars, arrays, documents, char_ix_file=None):
    """Raise ValueError unless the manifest's entries have the types and ranges a recording writes."""
    def bad(what):
        return ValueError(f"{mpath} has a bad {what}; the recording is damaged, record again")
    if char_ix_file is not None and not _plain_npy(char_ix_file):  # a name inside the recording
        raise bad(f"'char_ix_file' entry {char_ix_file!r}")
    if n_chars < 0:
        raise bad(f"n_chars {n_chars}")
    if not all(isinstance(c, str) and len(c) == 1 for c in chars):
        raise bad("'chars' entry (the vocabulary must be single characters)")
    for a in arrays:  # an array file is a plain name inside the recording, never a path out of it
        ok = (isinstance(a, dict) and _is_int(a.get("layer")) and a["layer"] >= 0 and isinstance(a.get("kind"), str)
              and _is_int(a.get("n_units")) and a["n_units"] >= 0 and _plain_npy(a.get("file")))
        if not ok:
            raise bad(f"'arrays' entry {a!r}")
    ends = 0
    for d in documents:
        if not (isinstance(d, dict) and _is_int(d.get("start")) and _is_int(d.get("length"))
                and d["start"] == ends and d["length"] >= 0):
            raise bad(f"'documents' entry {d!r} (documents must follow each other from 0)")
        ends += d["length"]
    if documents and ends != n_chars:
        raise bad(f"'documents' list: they cover {ends} characters, n_chars says {n_chars}")
