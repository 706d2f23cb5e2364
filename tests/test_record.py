import json
import os

import numpy as np
import pytest

from interpret.recording import recorder as R
from interpret.model.lanes import log_softmax_pick
from interpret.model.model import Model
from interpret.recording.recorder import Recording, record, run_in_memory

VOCAB = sorted(set("abc \n\"().,xyz"))


@pytest.fixture
def model(tmp_path):
    rng = np.random.RandomState(0)
    H, V = 12, len(VOCAB)
    m = Model({"Wxh": rng.randn(H, V), "Whh": rng.randn(H, H) * 0.5, "Why": rng.randn(V, H),
               "bh": rng.randn(H) * 0.1, "by": rng.randn(V) * 0.1}, VOCAB)
    m.save(tmp_path / "m.npz")
    return Model.load(tmp_path / "m.npz")


def plain_loop(model, text):
    """Per character: one-hot input, the gist's step; returns states and next-char losses."""
    P, c2i = model.params, model.char_to_ix
    h = np.zeros((model.hidden_size, 1))
    hs, losses = [], []
    for t, ch in enumerate(text):
        x = np.zeros((model.vocab_size, 1))
        x[c2i[ch]] = 1
        h = np.tanh(np.dot(P["Wxh"], x) + np.dot(P["Whh"], h) + P["bh"][:, None])
        hs.append(h[:, 0].copy())
        y = np.dot(P["Why"], h)[:, 0] + P["by"]
        p = np.exp(y - y.max()) / np.exp(y - y.max()).sum()
        losses.append(-np.log(p[c2i[text[t + 1]]]) if t + 1 < len(text) else np.nan)
    return np.array(hs), np.array(losses)


DOC1 = "abc (xyz).\n\"a b\" c\n" * 5
DOC2 = "zyx \"cba\"\n" * 4


def test_rows_are_states_after_reading_each_character(model, tmp_path, monkeypatch):
    monkeypatch.setattr(R, "CHUNK", 7)  # many chunk seams inside each document
    rec = record(model, [("one.txt", DOC1), ("two.txt", DOC2)], tmp_path / "r.rec", model_path="m.npz")
    acts = rec.activations(0, "h")
    assert isinstance(acts, np.memmap) and acts.shape == (len(DOC1) + len(DOC2), 12)
    for text, start in ((DOC1, 0), (DOC2, len(DOC1))):  # state reset at each document start
        hs, losses = plain_loop(model, text)
        np.testing.assert_allclose(acts[start:start + len(text)], hs, atol=5e-6)  # float32 lanes
        np.testing.assert_allclose(rec.loss[start:start + len(text)], losses, atol=1e-4, equal_nan=True)
    assert rec.text == DOC1 + DOC2
    assert list(rec.doc_starts) == [0, len(DOC1)]
    assert np.isnan(rec.loss[len(DOC1) - 1]) and np.isnan(rec.loss[-1])
    assert "".join(rec.chars[i] for i in rec.char_ix[:10]) == DOC1[:10]


def test_manifest_and_files(model, tmp_path):
    out = tmp_path / "r.rec"
    record(model, [("one.txt", DOC1)], out, dtype="float16", model_path=str(tmp_path / "m.npz"))
    man = json.loads((out / "manifest.json").read_text())
    assert man["format"] == "interpret-recording" and man["dtype"] == "float16"
    assert man["model"]["sha256"] == model.sha256 and man["chars"] == VOCAB
    assert man["arrays"] == [{"layer": 0, "array": "h", "n_units": 12, "file": "L0_h.npy"}]
    assert man["documents"] == [{"name": "one.txt", "start": 0, "length": len(DOC1), "dropped": 0}]
    arr = np.load(out / "L0_h.npy", mmap_mode="r")
    assert arr.dtype == np.float16
    hs, _ = plain_loop(model, DOC1)
    np.testing.assert_allclose(arr, hs, atol=2e-3)
    assert sorted(os.listdir(tmp_path)) == ["m.npz", "r.rec"]  # no temporary left behind


def test_unknown_characters(model, tmp_path):
    out = tmp_path / "r.rec"
    with pytest.raises(ValueError, match=r"doc.txt: 2 character\(s\).*'Q' x3"):
        record(model, [("doc.txt", "abQQQ!c")], out)
    assert not out.exists() and os.listdir(tmp_path) == ["m.npz"]
    rec = record(model, [("doc.txt", "abQQQ!c")], out, unknown="skip")
    assert rec.text == "abc" and rec.documents[0]["dropped"] == 4
    rec = record(model, [("doc.txt", "abQ")], out, unknown="space")  # replaces the old recording
    assert rec.text == "ab "


def test_char_ix_file_holds_the_indices_of_the_recorded_text(model, tmp_path):
    rec = record(model, [("a", DOC1), ("b", "abQQ c")], tmp_path / "r.rec", unknown="skip")
    text = (tmp_path / "r.rec" / "text.txt").read_text(encoding="utf-8")
    want = [VOCAB.index(c) for c in text]  # the vocabulary is sorted(set(...)): index = rank
    on_disk = np.load(tmp_path / "r.rec" / "char_ix.npy")
    assert on_disk.dtype == np.uint8 and on_disk.tolist() == want
    assert rec.manifest["char_ix_file"] == "char_ix.npy"
    ix = rec.char_ix
    assert isinstance(ix, np.memmap) and not ix.flags.writeable and ix.tolist() == want


def test_recordings_without_char_ix_file_still_open(model, tmp_path):
    out = tmp_path / "r.rec"
    record(model, [("a", DOC1), ("b", DOC2)], out)
    man = json.loads((out / "manifest.json").read_text())
    del man["char_ix_file"]  # as recorded before char_ix.npy existed
    (out / "manifest.json").write_text(json.dumps(man))
    (out / "char_ix.npy").unlink()
    assert Recording(out).char_ix.tolist() == [VOCAB.index(c) for c in DOC1 + DOC2]


def test_files_read_block_by_block_record_like_texts_in_memory(model, tmp_path, monkeypatch):
    from interpret.recording import documents as record_text
    from interpret._util import textfile as text_blocks
    from interpret._util.textfile import TextFile
    monkeypatch.setattr(record_text, "STR_BLOCK", 5)  # many blocks per document, both ways
    monkeypatch.setattr(text_blocks, "BLOCK", 7)
    docs = [("one.txt", DOC1 + "\u00e9Q"), ("two.txt", "Q" + DOC2), ("three.txt", "x")]
    for name, text in docs:
        (tmp_path / name).write_text(text, encoding="utf-8", newline="")
    for policy in ("skip", "space"):
        a = record(model, docs, tmp_path / f"a_{policy}.rec", unknown=policy)
        b = record(model, [(n, TextFile(tmp_path / n)) for n, _ in docs], tmp_path / f"b_{policy}.rec",
                   unknown=policy)
        plain = record(model, [(n, model.encode(t, unknown=policy)[1]) for n, t in docs],
                       tmp_path / f"p_{policy}.rec")  # whole texts, nothing to drop
        assert a.documents == b.documents and b.text == plain.text
        assert [d["dropped"] for d in b.documents] == ([2, 1, 0] if policy == "skip" else [0, 0, 0])
        for r in (a, b):
            np.testing.assert_array_equal(r.activations(0, "h"), plain.activations(0, "h"))
            np.testing.assert_array_equal(r.loss, plain.loss)
            np.testing.assert_array_equal(r.char_ix, plain.char_ix)


def test_a_bad_later_document_leaves_nothing_and_counts_the_whole_document(model, tmp_path, monkeypatch):
    from interpret.recording import documents as record_text
    from interpret._util import textfile as text_blocks
    from interpret._util.textfile import TextFile
    monkeypatch.setattr(record_text, "STR_BLOCK", 2)
    monkeypatch.setattr(text_blocks, "BLOCK", 3)
    (tmp_path / "good.txt").write_text(DOC1, encoding="utf-8")
    (tmp_path / "bad.txt").write_text("abQ" + "c" * 20 + "QQ!", encoding="utf-8")
    (tmp_path / "bin.txt").write_bytes(b"abQ\x00c")  # unknown characters, but the read error comes first
    out = tmp_path / "r.rec"
    files = [(n, TextFile(tmp_path / n)) for n in ("good.txt", "bad.txt")]
    for docs in (files, [("good.txt", DOC1), ("bad.txt", "abQ" + "c" * 20 + "QQ!")]):
        with pytest.raises(ValueError, match=r"^bad.txt: 2 character\(s\).*'Q' x3, '!' x1; use --unknown"):
            record(model, docs, out)
        assert sorted(os.listdir(tmp_path)) == ["bad.txt", "bin.txt", "good.txt", "m.npz"]
    with pytest.raises(ValueError, match="bin.txt looks binary"):
        record(model, [files[0], ("bin.txt", TextFile(tmp_path / "bin.txt"))], out)
    assert sorted(os.listdir(tmp_path)) == ["bad.txt", "bin.txt", "good.txt", "m.npz"]


def test_no_documents_is_an_error_and_leaves_nothing(model, tmp_path):
    for docs in ([], iter([])):
        with pytest.raises(ValueError, match="no text to record"):
            record(model, docs, tmp_path / "r.rec")
    assert os.listdir(tmp_path) == ["m.npz"]


def test_refuses_to_overwrite_other_things(model, tmp_path):
    (tmp_path / "file.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not a recording"):
        record(model, [("d", "abc")], tmp_path / "file.txt")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "x").write_text("keep")
    with pytest.raises(ValueError, match="not a recording"):
        record(model, [("d", "abc")], tmp_path / "dir")
    assert (tmp_path / "file.txt").read_text() == "keep me"


def test_damaged_recordings_are_named(model, tmp_path):
    out = tmp_path / "r.rec"
    record(model, [("d", DOC1)], out)
    np.save(out / "L0_h.npy", np.zeros((3, 12), dtype=np.float32))
    with pytest.raises(ValueError, match="damaged"):
        Recording(out).activations(0, "h")
    with pytest.raises(ValueError, match="no layer 1"):
        Recording(out).activations(1, "h")
    (out / "L0_h.npy").unlink()
    with pytest.raises(ValueError, match="missing"):
        Recording(out).activations(0, "h")
    (out / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        Recording(out)
    (out / "manifest.json").unlink()
    with pytest.raises(ValueError, match="no manifest"):
        Recording(out)
    with pytest.raises(ValueError, match="not a recording"):
        Recording(tmp_path / "m.npz")


def test_recording_knows_its_model(model, tmp_path):
    rec = record(model, [("d", DOC1)], tmp_path / "r.rec")
    rec.check_model(model)
    other = Model.init(VOCAB, hidden_size=12, seed=1)
    other.save(tmp_path / "other.npz")
    with pytest.raises(ValueError, match="another model"):
        rec.check_model(Model.load(tmp_path / "other.npz"))


def test_in_memory_run_equals_recording(model, tmp_path):
    rec = record(model, [("a", DOC1), ("b", DOC2)], tmp_path / "r.rec")
    mem = run_in_memory(model, DOC1 + DOC2, [0, len(DOC1)])
    np.testing.assert_allclose(mem[(0, "h")], rec.activations(0, "h"), atol=1e-7)


def docs_of(rng, n_docs):
    """Random documents over VOCAB, lengths 1..300 (some tiny, so lanes hold many documents)."""
    return ["".join(rng.choice(VOCAB, size=int(rng.integers(1, 300)))) for _ in range(n_docs)]


@pytest.mark.parametrize("lanes", [1, 3, 16, 1000])
def test_documents_in_lanes_equal_each_document_alone(model, monkeypatch, lanes):
    """Lane-batched recording (float64 outputs: float64 steps) == Model.run per document from zeros."""
    monkeypatch.setattr(R, "CHUNK", 50)  # chunk seams inside lanes
    rng = np.random.default_rng(lanes)
    docs = docs_of(rng, 40)
    starts = np.cumsum([0] + [len(d) for d in docs])
    ix = [model.encode(d)[0] for d in docs]
    h = np.empty((starts[-1], model.hidden_size))
    loss = np.empty(starts[-1])
    seen = []
    R.fill_arrays(model, np.concatenate(ix), starts[:-1], {(0, "h"): h}, loss, progress=seen.append,
            lanes=lanes)
    assert sum(seen) == starts[-1]  # progress counts every character once
    for d, a, b in zip(ix, starts[:-1], starts[1:]):
        acts, ys, _ = model.run(d)
        np.testing.assert_allclose(h[a:b], acts[(0, "h")], rtol=0, atol=1e-12)
        want = np.append(log_softmax_pick(ys[:-1], d[1:]), np.nan)
        np.testing.assert_allclose(loss[a:b], want, rtol=1e-12, equal_nan=True)


@pytest.mark.parametrize("lanes", [1, 16])
def test_float32_lanes_stay_within_float32_error_of_each_document_alone(model, monkeypatch, lanes):
    """float32 outputs: many lanes step in float32 (one lane in float64), close to Model.run.

    This random model is chaotic (Whh's spectral radius 2): float32 rounding grows to ~1e-4
    over its 300-character documents; on the shipped War and Peace model it stays under 3e-5
    over 2,000 characters. One lane steps in float64: only the stored float32 rounding is left.
    """
    monkeypatch.setattr(R, "CHUNK", 64)
    docs = docs_of(np.random.default_rng(7), 40)
    starts = np.cumsum([0] + [len(d) for d in docs])
    ix = [model.encode(d)[0] for d in docs]
    h = np.empty((starts[-1], model.hidden_size), np.float32)
    loss = np.empty(starts[-1], np.float32)
    R.fill_arrays(model, np.concatenate(ix), starts[:-1], {(0, "h"): h}, loss, lanes=lanes)
    errs = []
    for d, a, b in zip(ix, starts[:-1], starts[1:]):
        acts, ys, _ = model.run(d)
        np.testing.assert_allclose(h[a:b], acts[(0, "h")], rtol=0, atol=3e-4 if lanes > 1 else 1e-7)
        want = np.append(log_softmax_pick(ys[:-1], d[1:]), np.nan)
        np.testing.assert_allclose(loss[a:b], want, rtol=0, atol=3e-3 if lanes > 1 else 2e-5,
                                   equal_nan=True)  # the loss scales the error by |Why| ~ 10
        errs.append(np.abs(h[a:b] - acts[(0, "h")]).ravel())
    assert np.median(np.concatenate(errs)) < 1e-6  # the typical unit is off by float32 rounding


def test_next_char_loss_equals_the_plain_log_softmax_even_when_every_exp_underflows():
    from interpret.model.lanes import next_char_loss
    rng = np.random.default_rng(0)
    states, nxt = np.tanh(rng.standard_normal((50, 6))), rng.integers(0, 9, 50)
    WhyT, by = rng.standard_normal((6, 9)), rng.standard_normal(9)
    plain = log_softmax_pick(states @ WhyT + by, nxt)
    np.testing.assert_allclose(next_char_loss(states, WhyT, by, nxt), plain, rtol=1e-12)
    WhyT[0, 0] = 5000.0  # the bound rises to ~5000: rows whose logits stay near 0 underflow
    states[:25, 0] = 0.0
    plain = log_softmax_pick(states @ WhyT + by, nxt)
    got = next_char_loss(states, WhyT, by, nxt)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, plain, rtol=1e-9)


def test_split_lanes_covers_documents_in_order_and_balances():
    from interpret.model.lanes import split_lanes
    lengths = [5, 100, 3, 3, 3, 90, 1, 1, 50, 50]
    for lanes in (1, 2, 3, 4, 10, 50):
        groups = split_lanes(lengths, lanes)
        assert groups[0][0] == 0 and groups[-1][1] == len(lengths)
        assert all(a < b for a, b in groups) and all(g[1] == h[0] for g, h in zip(groups, groups[1:]))
        assert len(groups) <= min(lanes, len(lengths))
    even = [10] * 100
    sizes = [sum(even[a:b]) for a, b in split_lanes(even, 4)]
    assert sizes == [250, 250, 250, 250]


@pytest.mark.parametrize("name", ["warpeace-lstm", "warpeace-rnn"])
def test_a_recording_in_memory_equals_the_one_on_disk(name, shipped, tmp_path):
    """record() without out= encodes and runs exactly as on disk: text, documents, every array."""
    m = Model.load(shipped / f"{name}.npz")
    text = (shipped / "demo_passage.txt").read_text(encoding="utf-8")[:3000] + "\u2603"  # one unknown character
    docs = [("a", text), ("b", text[:700])]
    mem, disk = record(m, docs, unknown="skip"), record(m, docs, tmp_path / "r.rec", unknown="skip")
    assert mem.path == "(in memory)" and not list(tmp_path.glob("*interpret-record*"))
    assert (mem.text, mem.documents, mem.names) == (disk.text, disk.documents, disk.names)
    for n in disk.names:
        np.testing.assert_array_equal(mem[n], disk[n])
    np.testing.assert_array_equal(mem.loss, disk.loss)
    np.testing.assert_array_equal(mem.char_ix, disk.char_ix)
    with pytest.raises(ValueError, match="not in the model's vocabulary|unknown"):
        record(m, text)  # the same refusal as on disk
