"""read_blocks (a file read block by block, which train.read_text joins) against the rules
for a whole file decoded at once."""
import os

import pytest

from interpret._util.textfile import read_blocks
from interpret.train.gist import read_text


def whole_file(path, encoding):
    """The reference: the file decoded at once, and its errors in their order."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"{path} is a directory; give a text file")
    with open(path, "rb") as f:
        raw = f.read()
    if not raw:
        raise ValueError(f"{path} is empty; give a file with some text")
    binary = f"{path} looks binary (it contains NUL bytes); give a text file (UTF-16: --encoding utf-16)"
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as e:
        if b"\x00" in raw[:65536]:
            raise ValueError(binary) from None
        raise ValueError(f"{path} is not valid {encoding} (byte {e.start}: {raw[e.start:e.start + 1]!r}); "
                         "convert it or pass --encoding (e.g. --encoding latin-1)") from None
    except LookupError:
        raise ValueError(f"unknown encoding {encoding!r}; use e.g. utf-8 or latin-1") from None
    if "\x00" in text[:65536]:
        raise ValueError(binary)
    return text

TEXT = "Héllo, wörld: \u201cquotes\u201d \U0001F600 and \u4e2d\u6587.\r\nline two\rthree\n" * 300


def files(d):
    """{name: (bytes or None for a directory, encoding)}: good and bad inputs, errors near block seams."""
    utf8 = TEXT.encode("utf-8")
    cases = {
        "utf8": (utf8, "utf-8"), "utf16": (TEXT.encode("utf-16"), "utf-16"),
        "utf32": (TEXT.encode("utf-32"), "utf-32"), "latin1": (TEXT.encode("utf-8"), "latin-1"),
        "sig": (b"\xef\xbb\xbf" + utf8, "utf-8-sig"), "empty": (b"", "utf-8"),
        "bad_start": (b"\xff" + utf8, "utf-8"), "bad_end": (utf8 + b"\xe2\x82", "utf-8"),
        "bad_seam": (utf8[:1000] + b"\xc3" + utf8[1000:], "utf-8"),
        "bad_late": (utf8 + b"\x80" + utf8, "utf-8"),
        "utf16_odd": (TEXT.encode("utf-16") + b"\x00", "utf-16"),
        "nul_bytes_bad": (b"ab\x00cd\xff" + utf8, "utf-8"),
        "nul_late_bytes_bad": (utf8[:5000] + b"\x00" + utf8[:20000] + b"\xff", "utf-8"),
        "nul_chars": (b"ab\x00cd" + utf8, "utf-8"), "nul_after_head": (utf8 * 5 + b"\x00", "utf-8"),
        "utf16_as_utf8": (TEXT.encode("utf-16"), "utf-8"), "cp1252_hole": (utf8[:3000] + b"\x81", "cp1252"),
        "sjis_bad": ("\u65e5\u672c\u8a9e".encode("shift_jis") * 500 + b"\x82", "shift_jis"),
        "unknown_encoding": (utf8, "klingon"), "not_text_codec": (utf8, "rot13"),
        "empty_unknown_encoding": (b"", "klingon"), "a_dir": (None, "utf-8"),
    }
    out = {}
    for name, (raw, enc) in cases.items():
        path = d / name
        if raw is None:
            path.mkdir()
        else:
            path.write_bytes(raw)
        out[name] = (path, enc)
    return out


def outcome(f):
    try:
        return "ok", f()
    except (ValueError, OSError) as e:
        return type(e).__name__, str(e)


@pytest.mark.parametrize("block", [1, 7, 1000, 4096, 1 << 20])
def test_blocks_give_read_texts_text_and_errors(tmp_path, block):
    for name, (path, enc) in files(tmp_path).items():
        whole = outcome(lambda: whole_file(path, enc))
        pieces = outcome(lambda: "".join(read_blocks(path, enc, block)))
        assert pieces == whole, name
        assert outcome(lambda: read_text(path, enc)) == whole, name


def test_blocks_are_bounded(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes(TEXT.encode("utf-8"))
    sizes = [len(p) for p in read_blocks(path, "utf-8", 1000)]
    assert len(sizes) > 10 and max(sizes) <= 1000


def test_a_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        list(read_blocks(tmp_path / "nope.txt"))
