"""Reading a text file block by block, with train.read_text's checks and error messages.

`record` reads its documents this way so that no document has to be in memory whole. The
errors are read_text's, in its order: a directory, an empty file, undecodable bytes (named by
their offset in the file; a file with NUL bytes among its first 64 KiB is called binary), an
unknown encoding, NUL characters among the first 65,536 characters. Undecodable bytes are found
when their block is read and NUL characters when the file ends, so a consumer may have taken
some blocks before the error: write them somewhere temporary.
"""
import codecs
import os

BLOCK = 1 << 20  # bytes read at a time
HEAD = 65536     # bytes (and characters) searched for NUL, as read_text does


def read_blocks(path, encoding="utf-8", block=BLOCK):
    """Yield the text of the file `path` in pieces, exactly (no newline translation)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"{path} is a directory; give a text file")
    binary = f"{path} looks binary (it contains NUL bytes); give a text file (UTF-16: --encoding utf-16)"
    with open(path, "rb") as f:
        raw = f.read(block)
        if not raw:
            raise ValueError(f"{path} is empty; give a file with some text")
        try:
            codec = codecs.lookup(encoding)
        except LookupError:
            codec = None
        if codec is None or not getattr(codec, "_is_text_encoding", True):  # as bytes.decode: no rot13
            raise ValueError(f"unknown encoding {encoding!r}; use e.g. utf-8 or latin-1")
        decoder = codec.incrementaldecoder()
        head, head_chars, nul_chars, fed = b"", 0, False, 0
        while True:
            head += raw[:HEAD - len(head)]
            pending = len(decoder.getstate()[0])  # bytes held back from the previous block
            try:
                text = decoder.decode(raw, final=not raw)
            except UnicodeDecodeError as e:
                head += f.read(HEAD - len(head))  # read_text looks at the first 64 KiB in any case
                if b"\x00" in head:  # UTF-16/32 text has NUL bytes too, but decodes with its --encoding
                    raise ValueError(binary) from None
                at = fed - pending + e.start
                raise ValueError(f"{path} is not valid {encoding} (byte {at}: {e.object[e.start:e.start + 1]!r}); "
                                 "convert it or pass --encoding (e.g. --encoding latin-1)") from None
            if head_chars < HEAD:
                nul_chars = nul_chars or "\x00" in text[:HEAD - head_chars]
                head_chars += len(text)
            fed += len(raw)
            if text:
                yield text
            if not raw:
                break
            raw = f.read(block)
    if nul_chars:
        raise ValueError(binary)


class TextFile:
    """A document read on demand: `record` takes (name, TextFile(path)) as well as (name, text)."""

    def __init__(self, path, encoding="utf-8"):
        self.path, self.encoding = os.fspath(path), encoding

    def blocks(self):
        return read_blocks(self.path, self.encoding, BLOCK)

    def __repr__(self):
        return f"TextFile({self.path!r}, encoding={self.encoding!r})"
