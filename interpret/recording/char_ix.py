"""A recording's character indices: char_ix.npy, checked against the text; or computed from the text.

char_ix.npy (written by `record` since it was added) is opened as a read-only memmap after
checks that cost no (n_chars,) temporary: integer dtype, shape (n_chars,), every index inside
the vocabulary, and every index naming the character text.txt has at its row (the text is
read block by block). Anything else means the recording is damaged.
"""
import codecs

import numpy as np

BLOCK = 1 << 20  # bytes of text.txt read at a time


def _damaged(path, what):
    return ValueError(f"{path} {what}; the recording is damaged, record again")


class _Lookup:
    """Characters -> their index in the vocabulary `chars` (-1 outside it), by a dense table."""

    def __init__(self, chars):
        codes = np.array([ord(c) for c in chars], dtype=np.int64)
        self.table = np.full(int(codes.max(initial=0)) + 2, -1, dtype=np.int32)  # last: outside
        self.table[codes] = np.arange(len(codes))

    def __call__(self, text):
        cp = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")  # (T,)
        return self.table[np.minimum(cp, len(self.table) - 1)]


def text_pieces(text_path, block=BLOCK):
    """text.txt decoded as UTF-8, `block` bytes at a time, with the recording's damage errors."""
    decoder, fed = codecs.getincrementaldecoder("utf-8")(), 0
    try:
        f = open(text_path, "rb")
    except FileNotFoundError:
        raise _damaged(text_path, "is missing") from None
    with f:
        while True:
            raw = f.read(block)
            pending = len(decoder.getstate()[0])
            try:
                text = decoder.decode(raw, final=not raw)
            except UnicodeDecodeError as e:
                raise _damaged(text_path, f"is not UTF-8 (byte {fed - pending + e.start})") from None
            fed += len(raw)
            yield text
            if not raw:
                return


def load_char_ix(path, text_path, chars, n_chars, root):
    """char_ix.npy at `path` as a read-only memmap, checked against text.txt and the vocabulary."""
    try:
        ix = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise _damaged(path, "is missing") from None
    except ValueError as e:
        raise ValueError(f"{path} cannot be read ({e}); record again") from None
    if ix.dtype.kind not in "iu":
        raise _damaged(path, f"has dtype {ix.dtype}, not integer character indices")
    if ix.shape != (n_chars,):
        raise _damaged(path, f"has shape {ix.shape} but the manifest says ({n_chars},)")
    lookup, at = _Lookup(chars), 0
    for piece in text_pieces(text_path):
        want = lookup(piece)                                # (T,) -1 outside the vocabulary
        if (want < 0).any():
            t = int(np.argmax(want < 0))
            raise ValueError(f"{root}: character {piece[t]!r} at position {at + t} is not in the "
                             "manifest's vocabulary; the recording is damaged, record again")
        if at + len(want) > n_chars:
            raise _damaged(text_path, f"has more characters than the manifest's {n_chars}")
        got = ix[at:at + len(want)]
        lo, hi = (int(got.min()), int(got.max())) if len(got) else (0, 0)
        if lo < 0 or hi >= len(chars):
            bad = lo if lo < 0 else hi
            raise _damaged(path, f"has character index {bad} at row {at + int(np.argmax(got == bad))}, "
                                 f"outside the vocabulary of {len(chars)} characters")
        if (got != want).any():
            t = int(np.argmax(got != want))
            raise _damaged(path, f"says character {int(got[t])} at row {at + t} where text.txt has "
                                 f"{piece[t]!r}")
        at += len(want)
    if at != n_chars:
        raise _damaged(text_path, f"has {at} characters but the manifest says {n_chars}")
    return ix


def char_ix_from_text(text, chars, root):
    """(n_chars,) indices computed from the whole text (recordings made without char_ix.npy)."""
    c2i = {c: i for i, c in enumerate(chars)}
    small = np.int16 if len(chars) < 2 ** 15 else np.int64   # 2 bytes a character
    ix = np.fromiter((c2i.get(c, -1) for c in text), dtype=small, count=len(text))
    if (ix < 0).any():
        t = int(np.argmax(ix < 0))
        raise ValueError(f"{root}: character {text[t]!r} at position {t} is not in the "
                         "manifest's vocabulary; the recording is damaged, record again")
    return ix
