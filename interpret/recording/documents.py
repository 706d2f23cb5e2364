"""Pass 1 of `record`: each document's kept text and character indices, written block by block.

text.txt receives the text as recorded (after --unknown), char_ix.npy its indices into the
model's vocabulary, (n_chars,) of index_dtype(V). A document is (name, text) with text a str or
anything with .blocks() (_util.textfile.TextFile: a file read on demand); only one block of one
document is in memory at a time. The errors are those of reading the whole file and then
Model.encode on it, in that order, with the whole document's counts of unknown characters.
"""
import io
import os

import numpy as np

STR_BLOCK = 1 << 20  # characters of an in-memory text encoded at a time
TEXT_FILE, CHAR_IX_FILE = "text.txt", "char_ix.npy"


def index_dtype(vocab_size):
    """The smallest integer type for character indices: 1 byte a character for most texts."""
    return np.uint8 if vocab_size <= 256 else np.uint16 if vocab_size <= 65536 else np.int64


def write_documents(model, documents, directory, unknown="error"):
    """Write text.txt and char_ix.npy for `documents` into `directory`; (manifest docs, n_chars)."""
    with open(os.path.join(directory, TEXT_FILE), "w", encoding="utf-8", newline="") as ftext, \
            open(os.path.join(directory, CHAR_IX_FILE), "wb") as fix:
        return encode_documents(model, documents, ftext, fix, unknown)


def encode_documents(model, documents, ftext, fix, unknown="error"):
    """Each document's kept text to the text stream ftext, its indices as a .npy to the binary
    stream fix (files, or io.StringIO / io.BytesIO for a recording in memory); (docs, n_chars)."""
    dtype = np.dtype(index_dtype(model.vocab_size))
    docs, start = [], 0
    fix.write(_npy_header(dtype, 0))  # its shape is written when the length is known
    for name, source in documents:
        length, dropped = _write_document(model, name, source, ftext, fix, dtype, unknown)
        docs.append({"name": name, "start": start, "length": length, "dropped": dropped})
        start += length
    fix.seek(0)
    fix.write(_npy_header(dtype, start))
    return docs, start


def _npy_header(dtype, n):
    """The .npy header of a (n,) array; numpy pads it to a length that does not depend on n."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": np.lib.format.dtype_to_descr(dtype),
                                               "fortran_order": False, "shape": (n,)})
    if len(buf.getvalue()) != 128:
        raise RuntimeError(f"unexpected .npy header length {len(buf.getvalue())}")
    return buf.getvalue()


def _pieces(source):
    if isinstance(source, str):
        return (source[a:a + STR_BLOCK] for a in range(0, len(source), STR_BLOCK))
    return source.blocks()


def _write_document(model, name, source, ftext, fix, dtype, unknown):
    """Encode and write one document piece by piece; (characters kept, characters dropped)."""
    kept_n = dropped = 0
    counts, refused = {}, False  # unknown characters of the whole document; refused: an error is due
    for piece in _pieces(source):  # read errors come from here, before any encoding error
        missing = model.unknown_chars(piece)
        for ch, n in missing.items():
            counts[ch] = counts.get(ch, 0) + n
        if refused:
            continue
        try:
            model.check_unknown(missing, unknown)
        except ValueError:
            refused = True  # raised when the whole document is read: read errors first, all counts
            continue
        kept = model.keep_known(piece, missing, unknown)
        ftext.write(kept)
        fix.write(model.indices(kept, dtype).tobytes())
        kept_n, dropped = kept_n + len(kept), dropped + len(piece) - len(kept)
    try:
        model.check_unknown(counts, unknown)
    except ValueError as e:
        raise ValueError(f"{name}: {e}") from None
    if kept_n == 0:
        raise ValueError(f"{name}: no characters left to record; give a non-empty text")
    return kept_n, dropped
