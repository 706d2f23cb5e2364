"""The streaming scan gives the in-memory scan's rows, in bounded passes over row chunks."""
import numpy as np
import pytest

from interpret.scan import run as scan_run
from interpret.scan.common import FeatureValues
from interpret.scan.memory import scan_in_memory
from interpret.scan.chunks import float16_keys, key_values
from interpret.scan.stream import scan_streaming
from interpret.scan.stream_beyond import unit_groups

STATS = ("score", "raw", "sign", "p", "p_empirical", "beyond_char", "pearson_r", "saturated",
         "null_mean", "null_sd", "n_pos", "metric", "kind")

EXACT = dict(rel=1e-9, abs=1e-12)  # float64 sums in another order
# both nulls sum in float32 (scan: by FFT), within about 1e-6 of |x| |f|; p follows from them
# (a null flat but for that rounding has an sd of about 1e-8 in each, not the same: abs 1e-6 on sd too)
TOL = dict(null_mean=dict(abs=1e-6), null_sd=dict(rel=1e-4, abs=1e-6), p=dict(rel=1e-2, abs=1e-12))


def planted(n=5003, seed=0):
    """float16 activations (N, 8) with planted units, character codes, and seven features."""
    rng = np.random.default_rng(seed)
    char_ix = rng.integers(0, 6, n) * 3                             # indices with gaps
    g = np.array([1.2, 0.9, -0.8, 1.5, 0.7, 1.1])[char_ix // 3]      # most characters near +1
    quote = (np.cumsum(rng.random(n) < 0.02) % 2).astype(float)
    pos = np.arange(n) % 37.0
    acts = rng.standard_normal((n, 8)) * 0.3
    acts[:, 1] += quote                                             # the quote unit
    acts[:, 2] = pos / 40 + 0.1 * acts[:, 2]                        # the position unit
    acts[:, 3] = np.tanh(5 * g)                                     # a skewed, saturated function
    acts[:, 4] = 0.5                                                # constant  of the character
    acts[:, 5] = -quote * (char_ix == 3)                            # ties, -0.0 and +0.0
    acts[:, 6] *= 30                                                # wide: tanh ties it at +-1
    acts[:, 7] += 4 * g                                             # the same with noise
    mixed = np.where(char_ix == 6, 0.0, np.where(char_ix == 9, 1.0, quote))  # one class there
    feats = [FeatureValues("quote", "binary", quote), FeatureValues("pos", "ordinal", pos),
             FeatureValues("noise", "continuous", rng.standard_normal(n)),
             FeatureValues("never", "binary", np.zeros(n)),
             FeatureValues("mixed", "binary", mixed),
             FeatureValues("is_9", "binary", (char_ix == 9).astype(float)),   # functions of the
             FeatureValues("g", "ordinal", g)]                                # character
    return acts.astype(np.float16), char_ix, feats


def assert_same_rows(a, b):
    assert len(a) == len(b)
    for ra, rb in zip(a, b):
        assert (ra["feature"], ra["unit"]) == (rb["feature"], rb["unit"])
        for k in STATS:
            if ra[k] is None or rb[k] is None:
                assert ra[k] is None and rb[k] is None, (k, ra, rb)
            else:
                assert rb[k] == pytest.approx(ra[k], **TOL.get(k, EXACT)), (k, ra, rb)


@pytest.mark.parametrize("kind", ["h", "c", "f"])
@pytest.mark.parametrize("rows", [None, 1000, 777, 5003])
def test_streaming_scan_equals_the_in_memory_scan_for_any_chunk_size(rows, kind):
    """Every column, for h, for cell states (both through the same float32 tanh, which ties
    distinct float16 values) and for a sigmoid gate (its own saturation rule)."""
    acts, char_ix, feats = planted()
    want = scan_in_memory(acts, feats, char_ix, n_shifts=50, seed=3, kind=kind)
    got = scan_streaming(acts, feats, char_ix, n_shifts=50, seed=3, rows=rows, kind=kind)
    assert_same_rows(want, got)
    wide = acts[:, 6].astype(np.float64)
    if kind == "c":
        assert len(np.unique(np.tanh(acts[:, 6].astype(np.float32)))) < 0.7 * len(np.unique(wide))
        sat = np.abs(np.tanh(wide)) > 0.99                          # tanh ties, saturates
    else:
        sat = np.minimum(wide, 1 - wide) < 0.01 if kind == "f" else np.abs(wide) > 0.99
    sat6 = [r["saturated"] for r in got if r["unit"] == 6]
    assert sat6 == [pytest.approx(sat.mean())] * len(feats)
    best = max((r for r in got if r["feature"] == "quote" and r["score"] is not None),
               key=lambda r: r["score"])
    assert best["unit"] == 1 and best["p"] < 1e-6
    unit3 = [r["beyond_char"] for r in got if r["unit"] == 3 and r["feature"] != "never"]
    assert unit3 == [0.5, 0.0, 0.0, 0.5, None, None]                # a function of the character
    assert [r["beyond_char"] for r in got if r["feature"] in ("is_9", "g")] == [None] * 16
    mixed = [r["beyond_char"] for r in got if r["feature"] == "mixed" and r["unit"] != 4]
    assert None not in mixed                                        # one class at two characters


def test_a_tight_budget_splits_the_units_into_groups_and_changes_nothing(monkeypatch):
    from interpret.scan import stream_beyond as stream_residuals
    acts, char_ix, feats = planted(n=3001, seed=1)
    want = scan_in_memory(acts, feats, char_ix, n_shifts=30)
    groups = []
    monkeypatch.setattr(stream_residuals, "unit_groups",
                        lambda *a: groups.append(unit_groups(*a)) or groups[-1])
    assert_same_rows(want, scan_streaming(acts, feats, char_ix, n_shifts=30, rows=500,
                                          budget=1 << 17))
    assert len(groups[0]) > 2 and groups[0][-1][1] == 8


def test_float16_keys_sort_like_the_values_and_map_back_to_them():
    every = np.arange(1 << 16, dtype=np.uint16).view(np.float16)
    finite = every[np.isfinite(every)]                              # 63488 values, both zeros
    keys = float16_keys(finite[:, None]).ravel()
    assert np.array_equal(key_values()[keys], finite.astype(np.float64))   # -0.0 == 0.0
    by_key = finite[np.argsort(keys, kind="stable")].astype(np.float64)
    assert np.all(np.diff(by_key) >= 0) and len(np.unique(keys)) == len(finite) - 1
    x = np.array([3.0, -0.0, 0.0, -2.5, 1e-7, -65504.0, 65504.0], dtype=np.float16)
    keys = float16_keys(x[:, None]).ravel()
    assert keys[1] == keys[2]                                       # -0.0 ties with +0.0


def test_a_uint8_binary_feature_streams_chunk_by_chunk_to_the_same_rows():
    acts, char_ix, feats = planted(n=2001)
    binary = [f for f in feats if f.type == "binary"]
    small = [FeatureValues(f.name, f.type, f.values.astype(np.uint8)) for f in binary]
    want = scan_in_memory(acts, binary, char_ix, n_shifts=20)
    assert_same_rows(want, scan_streaming(acts, small, char_ix, n_shifts=20, rows=300))
    as_lists = [FeatureValues(f.name, f.type, list(f.values)) for f in small]
    assert_same_rows(want, scan_streaming(acts, as_lists, char_ix, n_shifts=20, rows=300))
    small[0].values[5] = 2
    with pytest.raises(ValueError, match="'quote' has values other than 0 and 1"):
        scan_streaming(acts, small, char_ix, n_shifts=20, rows=300)


def test_float32_activations_are_refused_with_the_way_out():
    acts, char_ix, feats = planted(n=200)
    with pytest.raises(ValueError, match="record with --dtype float16"):
        scan_streaming(acts.astype(np.float32), feats, char_ix)


def test_the_scan_streams_when_memory_is_short_or_when_asked(tmp_path, monkeypatch):
    from interpret.scan import budget
    from interpret.features.choose import choose_features
    from interpret.scan.run import scan_recording
    from interpret.model.model import Model
    from interpret.recording.recorder import Recording, record
    rng = np.random.default_rng(5)  # not periodic: a periodic text ties nulls with the raw value
    text = "".join(rng.choice(['say "hi"', " and", " (twice)", "\n", ' "again"', " here"], 150))
    for dtype in ("float16", "float32"):
        record(Model.init(sorted(set(text)), hidden_size=4, seed=0), [("t.txt", text)],
               tmp_path / f"{dtype}.rec", dtype=dtype)
    rec16, rec32 = Recording(tmp_path / "float16.rec"), Recording(tmp_path / "float32.rec")
    feats = choose_features(text, ["in_quote", "position_in_line"])
    want = scan_recording(rec16, feats, n_shifts=20)
    monkeypatch.setattr(budget, "available", lambda: 10 * 2**20)  # too little for whole columns
    assert_same_rows(want, scan_recording(rec16, feats, n_shifts=20))
    with pytest.raises(ValueError, match="needs about .* record with --dtype float16"):
        scan_recording(rec32, feats, n_shifts=20)
    monkeypatch.setattr(budget, "available", lambda: 2**40)
    monkeypatch.setenv(budget.STREAM_ENV, "stream")
    calls = []
    monkeypatch.setattr(scan_run, "scan_streaming",
                        lambda *a, **kw: calls.append(a[0].shape) or scan_streaming(*a, **kw))
    assert_same_rows(want, scan_recording(rec16, feats, n_shifts=20))
    assert calls == [(len(text), 4)]
    with pytest.raises(ValueError, match="needs float16"):
        scan_recording(rec32, feats, n_shifts=20)


def test_codes_and_features_prepared_in_small_pieces_change_nothing(monkeypatch):
    from interpret.scan import stream as scan_stream
    acts, char_ix, feats = planted(n=3001, seed=2)
    want = scan_in_memory(acts, feats, char_ix, n_shifts=30)
    monkeypatch.setattr(scan_stream, "PREP", 333)                   # codes, features: 10 pieces
    assert_same_rows(want, scan_streaming(acts, feats, char_ix, n_shifts=30, rows=700))
    monkeypatch.setattr(scan_stream, "MAX_DISTINCT", 50)            # 'noise' is then prepared whole
    assert_same_rows(want, scan_streaming(acts, feats, char_ix, n_shifts=30, rows=700))


def test_character_codes_are_compact_and_one_byte_up_to_256_characters(tmp_path):
    from interpret.scan.stream import char_codes
    ix = np.array([7, 3, 3, 500, 7, 0], dtype=np.int16)
    codes, counts = char_codes(ix, 6, str(tmp_path))
    assert codes.dtype == np.uint8 and list(codes) == [2, 1, 1, 3, 2, 0]
    assert list(counts) == [1, 2, 2, 1]
    wide = np.arange(300, dtype=np.int64)[::-1] * 2
    codes, counts = char_codes(wide, 300, str(tmp_path))
    assert codes.dtype == np.uint16 and list(codes) == list(range(300))[::-1]
    with pytest.raises(ValueError, match="non-negative integer"):
        char_codes(np.array([1, -1, 2]), 3, str(tmp_path))


def test_an_ordinal_feature_with_bad_values_gets_the_in_memory_error():
    acts, char_ix, feats = planted(n=500)
    pos = feats[1].values.copy()
    pos[7] = np.nan
    with pytest.raises(ValueError, match="'pos' has 1 non-finite"):
        scan_streaming(acts, [FeatureValues("pos", "ordinal", pos)], char_ix, n_shifts=20)
    with pytest.raises(ValueError, match="has shape"):
        scan_streaming(acts, [FeatureValues("pos", "ordinal", pos[:9])], char_ix, n_shifts=20)


def test_progress_moves_through_every_pass_and_ends_at_the_total():
    acts, char_ix, feats = planted(n=3001, seed=4)
    steps = []
    scan_streaming(acts, feats, char_ix, n_shifts=20, rows=300, budget=1 << 17,
                   progress=steps.append)
    assert sum(steps) == 8 * len(feats) and all(s > 0 for s in steps)
    assert len(steps) >= 10                                         # not two jumps at the end


def test_nulls_tied_with_the_raw_value_up_to_rounding_count_on_both_paths():
    """A period-2 feature: every shift's r is +-raw exactly, so only float32 rounding told the
    paths apart (found by hypothesis); ties now count as reaching the raw value."""
    rng = np.random.default_rng(0)
    acts = np.column_stack([rng.standard_normal(30), np.arange(30) / 30 - 0.5]).astype(np.float16)
    word = [FeatureValues("word_position", "ordinal", np.tile([1.0, 0.0], 15))]
    char_ix = np.tile([0, 1], 15)
    want = scan_in_memory(acts, word, char_ix, n_shifts=10, seed=0)
    got = scan_streaming(acts, word, char_ix, n_shifts=10, seed=0, rows=10)
    assert_same_rows(want, got)
    assert [r["p_empirical"] for r in got] == [1.0, 1.0]
