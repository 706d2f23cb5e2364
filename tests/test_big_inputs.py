"""Big recordings: the text read a document at a time, features evaluated into memory-mapped
files, and the streaming scan fed from them, all equal to the whole-text path."""
import errno
import os

import numpy as np
import pytest

from interpret.scan import budget
from interpret import features as F
from interpret.features.choose import choose_features
from interpret.scan.run import feature_values, scan_control, scan_recording
from interpret.model.model import Model
from interpret.recording.recorder import Recording, record

from test_scan_stream import assert_same_rows

DOCS = [("a.txt", 'She said "hé, là" twice.\r\nThen (a (b)) "x"\n' * 9),
        ("b.txt", "é" * 5 + '\n"open quote never closed'),
        ("c.txt", 'plain line\n"one"\n' * 13)]


@pytest.fixture(scope="module")
def rec(tmp_path_factory):
    text = "".join(t for _, t in DOCS)
    path = tmp_path_factory.mktemp("big") / "r.rec"
    record(Model.init(sorted(set(text)), hidden_size=5, seed=3), DOCS, path, dtype="float16")
    return path


@pytest.mark.parametrize("block", [1, 2, 3, 17, 1 << 22])
def test_documents_read_a_block_at_a_time_are_the_text_cut_at_the_document_starts(rec, block):
    whole = Recording(rec).text
    got = list(Recording(rec).iter_documents(block=block))
    starts = [int(s) for s in Recording(rec).doc_starts]
    assert [a for a, _ in got] == starts
    assert [d for _, d in got] == [t for _, t in DOCS]
    assert "".join(d for _, d in got) == whole
    assert Recording(rec).head(7) == whole[:7] and Recording(rec).head(10 ** 6) == whole


def test_a_damaged_text_is_named_when_read_a_block_at_a_time(rec, tmp_path):
    import shutil
    raw = (rec / "text.txt").read_bytes()
    for content, match in [(raw + b"zz", f"has {len(Recording(rec).text) + 2} characters but"),
                           (raw[:-5], "characters but the manifest says"),
                           (raw[:40] + b"\xff" + raw[41:], "is not UTF-8 \\(byte 40\\)")]:
        bad = tmp_path / "bad.rec"
        shutil.rmtree(bad, ignore_errors=True)
        shutil.copytree(rec, bad)
        (bad / "text.txt").write_bytes(content)
        for block in (3, 1 << 22):
            with pytest.raises(ValueError, match=match):
                list(Recording(bad).iter_documents(block=block))
    shutil.rmtree(bad)
    shutil.copytree(rec, bad)
    (bad / "text.txt").unlink()
    with pytest.raises(ValueError, match="text.txt is missing"):
        list(Recording(bad).iter_documents())


def test_features_evaluated_into_files_equal_the_whole_text_ones(rec, tmp_path):
    r = Recording(rec)
    feats = F.get_features(["in_quote", "position_in_line", "paren_depth", "line_length"])
    want = feature_values(Recording(rec), feats, compact=True)
    got = feature_values(r, feats, folder=str(tmp_path))
    assert not r.text_loaded                                          # never read whole
    for w, g in zip(want, got):
        assert isinstance(g.values, np.memmap) and g.values.dtype == w.values.dtype
        assert np.array_equal(w.values, g.values), w.name
    assert want[0].values.dtype == np.uint8 and want[1].values.dtype == np.float64


def test_a_bad_user_feature_fails_the_same_way_evaluated_into_files(rec, tmp_path):
    odd = F.Feature("odd", lambda t: np.full(len(t), 2.0), "binary", True, "any", "")
    with pytest.raises(ValueError, match="binary feature 'odd' returned 2.0"):
        feature_values(Recording(rec), [odd], folder=str(tmp_path))
    nan = F.Feature("nan", lambda t: np.where(np.arange(len(t)) == 3, np.nan, 1.0), "ordinal", True,
                    "any", "")
    with pytest.raises(ValueError, match="'nan' returned nan at position 3 \\(3 non-finite"):
        feature_values(Recording(rec), [nan], folder=str(tmp_path))


def test_the_streaming_scan_of_a_recording_never_loads_its_text(rec, monkeypatch):
    feats = choose_features(Recording(rec).head(200_000), ["in_quote", "position_in_line",
                                                                  "paren_depth"])
    want = scan_recording(Recording(rec), feats, n_shifts=20)
    monkeypatch.setenv(budget.STREAM_ENV, "stream")
    r = Recording(rec)
    got = scan_recording(r, feats, n_shifts=20)
    assert not r.text_loaded                                          # char_ix.npy, documents
    assert_same_rows(want, got)


STREAM_DAMAGES = ("text_short", "text_not_utf8", "text_missing", "char_ix_short", "char_ix_other_char",
                  "manifest_chars", "nan_in_h")


@pytest.mark.parametrize("how", STREAM_DAMAGES)
def test_a_damaged_recording_fails_cleanly_on_the_streaming_path(tmp_path, monkeypatch, how):
    """What test_bad_input checks of every command, for `scan` taking the streaming path."""
    from cli_helpers import PROSE, run
    from test_bad_input import DAMAGE_NEEDLE, damage, fails_cleanly
    monkeypatch.setenv(budget.STREAM_ENV, "stream")
    good = tmp_path / "good.rec"
    record(Model.init(sorted(set(PROSE)), hidden_size=6, seed=1),
           [("a.txt", PROSE[:1500]), ("b.txt", PROSE[1500:])], good, dtype="float16")
    bad = tmp_path / "bad.rec"
    if how == "nan_in_h":  # found by the streaming scan's first pass
        import shutil
        shutil.copytree(good, bad)
        h = np.load(bad / "L0_h.npy", mmap_mode="r+")
        h[2000, 3] = np.nan
        h.flush()
        del h
    else:
        damage(good, bad, how)
    needle = "NaN or Inf" if how == "nan_in_h" else DAMAGE_NEEDLE[how]
    listing = sorted(p.name for p in tmp_path.iterdir())
    fails_cleanly(run("scan", bad, "--shifts", 10), [needle])
    assert sorted(p.name for p in tmp_path.iterdir()) == listing


def test_a_failing_feature_file_fails_cleanly_on_the_streaming_path(tmp_path, monkeypatch, rec):
    from cli_helpers import run
    from test_bad_input import fails_cleanly
    monkeypatch.setenv(budget.STREAM_ENV, "stream")
    ff = tmp_path / "ff.py"
    ff.write_text("def feature_boom(t):\n    raise RuntimeError('no luck')\n", encoding="utf-8")
    fails_cleanly(run("scan", rec, "--feature-file", ff, "--shifts", 10),
                   ["feature 'boom' failed: no luck"])


# ---- a full disk ------------------------------------------------------------------------------
def _no_room(fd, offset, length):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_recording_that_does_not_fit_on_the_disk_fails_before_writing(tmp_path, monkeypatch):
    """The arrays' blocks are allocated up front: a full disk is one line, not a SIGBUS later."""
    from cli_helpers import PROSE, run
    from test_bad_input import fails_cleanly
    model = Model.init(sorted(set(PROSE)), hidden_size=6, seed=1)
    model.save(tmp_path / "m.npz")
    (tmp_path / "t.txt").write_text(PROSE, encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    ok_run = run("record", tmp_path / "m.npz", tmp_path / "t.txt", "-o", out / "r.rec", "-q")
    assert ok_run.exit_code == 0
    before = sorted((p.name, p.stat().st_size) for p in (out / "r.rec").iterdir())
    monkeypatch.setattr(os, "posix_fallocate", _no_room)
    fails_cleanly(run("record", tmp_path / "m.npz", tmp_path / "t.txt", "-o", out / "r.rec"),
                   ["not enough disk space for", "r.rec (L0_h.npy)", "--dtype float16"])
    assert sorted(p.name for p in out.iterdir()) == ["r.rec"]        # no temporary left
    assert sorted((p.name, p.stat().st_size) for p in (out / "r.rec").iterdir()) == before


def test_a_file_system_that_cannot_allocate_ahead_still_records(tmp_path, monkeypatch):
    def unsupported(fd, offset, length):
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")
    monkeypatch.setattr(os, "posix_fallocate", unsupported)
    text = "".join(t for _, t in DOCS)
    r = record(Model.init(sorted(set(text)), hidden_size=5, seed=3), DOCS, tmp_path / "r.rec")
    assert r.activations().shape == (len(text), 5)


def test_the_streaming_scan_names_tmpdir_when_its_disk_is_full(rec, tmp_path, monkeypatch):
    import tempfile
    from cli_helpers import run
    from test_bad_input import fails_cleanly
    monkeypatch.setenv(budget.STREAM_ENV, "stream")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(os, "posix_fallocate", _no_room)
    fails_cleanly(run("scan", rec, "--shifts", 10), ["not enough disk space for feature", "TMPDIR"])
    assert list(tmp_path.iterdir()) == []                           # its temporaries removed


def test_a_full_disk_while_writing_is_one_line_naming_the_output(rec, tmp_path, monkeypatch):
    from cli_helpers import run
    from test_bad_input import fails_cleanly

    class Full:
        def __init__(self, fd, *args, **kwargs):
            os.close(fd)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "fdopen", Full)
    page = tmp_path / "u.html"
    fails_cleanly(run("export", rec, "--unit", 1, "-o", page),
                   [f"the disk is full writing {page}", "free some space"])
    assert list(tmp_path.iterdir()) == []


def test_the_untrained_control_of_a_big_recording_is_recorded_and_streamed(rec, tmp_path, monkeypatch):
    """Not run in memory (N x units x 4 bytes): the fresh model is recorded beside the scan's
    temporaries and that recording scanned the same way; == recording it by hand."""
    import tempfile
    monkeypatch.setenv(budget.STREAM_ENV, "stream")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    r = Recording(rec)
    feats = F.get_features(["in_quote", "position_in_line"])
    got = scan_control(r, feats, n_shifts=20)
    assert not r.text_loaded and list((tmp_path / "tmp").iterdir()) == []
    fresh = Model.init(r.chars, 5, seed=12345)
    by_hand = record(fresh, DOCS, tmp_path / "by_hand.rec", dtype="float16")
    assert_same_rows(scan_recording(by_hand, feats, n_shifts=20), got)
