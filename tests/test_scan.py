"""scan: effect sizes against brute force, the circular-shift null, planted and noise units."""

import csv
import io
import json

import numpy as np
import pytest
from scipy import stats
from scipy.signal import lfilter

from interpret.scanning import run as scan_run
from interpret import features as F
from interpret.scanning import shift_null
from interpret.scanning.unit_blocks import read_block
from interpret.scanning.common import COLUMNS, FeatureValues
from interpret.scanning.memory import draw_shifts, scan_in_memory, shifted_statistics
from interpret.scanning.rows import add_qvalues, format_table, rows_to_csv, top_rows


# ---- synthetic data -------------------------------------------------------------------------

def ar1(rng, n, units, phi=0.95):
    """(n, units) AR(1) noise with unit variance: slow drifts like a recurrent unit's state."""
    e = rng.standard_normal((n, units)) * np.sqrt(1 - phi ** 2)
    return lfilter([1.0], [1.0, -phi], e, axis=0)


def runs(rng, n, lo=20, hi=200):
    """(n,) 0/1 in alternating runs of lo..hi characters, like inside / outside a quote."""
    out, state = [], int(rng.integers(2))
    while len(out) < n:
        out += [state] * int(rng.integers(lo, hi + 1))
        state = 1 - state
    return np.array(out[:n], dtype=float)


def line_position(rng, n, mean_width=60):
    """(n,) position in the line, for lines of mean_width +- 20 characters."""
    out = []
    while len(out) < n:
        out += range(int(rng.integers(mean_width - 20, mean_width + 21)))
    return np.array(out[:n], dtype=float)


def auroc_pairwise(x, f):
    """AUROC the slow way: every (positive, negative) pair, ties count half."""
    pos, neg = x[f == 1], x[f == 0]
    wins = sum((p > q) + 0.5 * (p == q) for p in pos for q in neg)
    return wins / (len(pos) * len(neg))


def statistic(x, f, ftype):
    """The raw statistic of one unit x against one feature f, computed directly: AUROC (binary)
    or Spearman's rho."""
    if ftype == "binary":
        u = stats.mannwhitneyu(x[f == 1], x[f == 0]).statistic
        return u / ((f == 1).sum() * (f == 0).sum())
    return stats.spearmanr(x, f).statistic


def by_unit(rows, feature):
    return {r["unit"]: r for r in rows if r["feature"] == feature}


# ---- effect sizes against brute force -------------------------------------------------------

def test_auroc_matches_pairwise_oracle_with_ties():
    rng = np.random.default_rng(0)
    n = 60
    acts = rng.standard_normal((n, 4))
    acts[:, 1] = np.round(acts[:, 1])                 # many ties
    acts[:, 2] = (acts[:, 2] > 0.8).astype(float)     # a 0/1 unit: mostly ties
    f = (rng.random(n) < 0.3).astype(float)
    acts[:, 3] -= 2 * f                               # a clearly negative unit
    rows = scan_in_memory(acts, [FeatureValues("f", "binary", f)], np.zeros(n, int), n_shifts=20)
    for u, r in by_unit(rows, "f").items():
        want = auroc_pairwise(acts[:, u], f)
        assert r["raw"] == pytest.approx(want, abs=1e-12)
        assert r["score"] == pytest.approx(max(want, 1 - want), abs=1e-12)
        assert r["sign"] == (1 if want >= 0.5 else -1)
        assert r["metric"] == "auroc" and r["pearson_r"] is None and r["n_pos"] == f.sum()
    assert by_unit(rows, "f")[3]["sign"] == -1


@pytest.mark.parametrize("array", ["h", "c"])
def test_rho_and_pearson_r_match_scipy(array):
    """score = |Spearman rho| of the unit (tanh changes no order), pearson_r = Pearson r of the
    values as shown: tanh(c) for cell states, the values themselves for h."""
    rng = np.random.default_rng(1)
    n = 300
    acts = 1.5 * rng.standard_normal((n, 3))
    acts[:, 1] = np.round(acts[:, 1] * 2)             # ties in the unit
    depth = np.floor(np.cumsum(rng.standard_normal(n)) / 3)   # ties in the feature
    acts[:, 2] -= 0.1 * depth
    feats = [FeatureValues("depth", "ordinal", depth),
             FeatureValues("wave", "continuous", np.sin(np.arange(n) / 7))]
    rows = scan_in_memory(acts, feats, rng.integers(0, 5, n), n_shifts=20, array=array)
    shown = np.tanh(acts) if array == "c" else acts
    for feat in feats:
        for u, r in by_unit(rows, feat.name).items():
            rho = stats.spearmanr(acts[:, u], feat.values).statistic
            assert r["raw"] == pytest.approx(rho, abs=1e-12)
            assert r["score"] == pytest.approx(abs(rho), abs=1e-12)
            assert r["sign"] == (1 if rho >= 0 else -1)
            want = stats.pearsonr(shown[:, u], feat.values).statistic
            assert r["pearson_r"] == pytest.approx(want, abs=1e-12)
            assert r["metric"] == "spearman_rho" and r["n_pos"] is None
    if array == "c":                                   # tanh moves Pearson r, not rho
        raw_r = stats.pearsonr(acts[:, 2], depth).statistic
        assert abs(by_unit(rows, "depth")[2]["pearson_r"] - raw_r) > 1e-3


@pytest.mark.parametrize("array", ["h", "c"])
@pytest.mark.parametrize("ftype", ["binary", "ordinal", "continuous", "ramp"])
def test_shifted_statistic_equals_statistic_on_rolled_feature(ftype, array):
    """The null, one shift at a time: AUROC or Spearman rho of the unit as shown (tanh(c) has
    c's order; float32 values of 4 and more round to one tanh, and tie) against np.roll(f, k)."""
    rng = np.random.default_rng(2)
    n = 400
    acts = 3 * ar1(rng, n, 3).astype(np.float32)
    acts[:, 0] = np.round(acts[:, 0] * 2)             # ties
    f = {"binary": runs(rng, n), "ordinal": np.floor(np.cumsum(rng.standard_normal(n))),
         "continuous": ar1(rng, n, 1)[:, 0], "ramp": line_position(rng, n, 30)}[ftype]
    ftype = "ordinal" if ftype == "ramp" else ftype
    shifts = np.array([1, 17, 200, 399, 0])
    got = shifted_statistics(acts, FeatureValues("f", ftype, f), shifts, array=array)
    shown = np.tanh(acts) if array == "c" else acts   # float32, as the scan computes it
    for j, k in enumerate(shifts):
        for u in range(3):
            want = statistic(shown[:, u], np.roll(f, k), ftype)
            assert got[u, j] == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("n, n_shifts, min_shift", [
    (1000, 50, None),    # 1000 characters cut into rows of the shift step, the last one short
    (997, 200, None),    # a prime length
    (20, 200, 1),        # fewer allowed shifts than asked: every one of them
    (5003, 37, 100), (64, 10, 27)])
@pytest.mark.parametrize("dtype, tol", [(np.complex128, 1e-13), (np.complex64, 1e-6)])
def test_fft_grid_null_equals_rolled_dot_products(n, n_shifts, min_shift, dtype, tol):
    """The FFT path (every grid shift at once) against np.roll one shift at a time: to float64
    rounding, or float32 rounding (the scan's default), relative to |x| |f|."""
    rng = np.random.default_rng(n)
    grid = shift_null.make_grid(n, n_shifts, seed=3, min_shift=min_shift)
    x = ar1(rng, n, 4).T                               # (B, N)
    fs = np.stack([runs(rng, n, 2, 40), line_position(rng, n, 30), rng.standard_normal(n)])
    spectra = shift_null.feature_spectra(grid, fs, dtype)
    got = shift_null.grid_dots(x, spectra, grid)                                # (B, F, M)
    chunked = shift_null.grid_dots(x, spectra, grid, chunk=3)  # chunks of columns, the last partial
    for i, f in enumerate(fs):
        want = shift_null.rolled_dots(x.T, f, grid.shifts)                      # (B, M)
        scale = np.linalg.norm(x, axis=1)[:, None] * np.linalg.norm(f)
        np.testing.assert_allclose(got[:, i] / scale, want / scale, rtol=0, atol=tol)
        np.testing.assert_allclose(chunked[:, i] / scale, want / scale, rtol=0, atol=tol)


@pytest.mark.parametrize("n, chunk", [(1000, 7), (1013, 256), (997, 1), (5000, 24)])
def test_grid_dots_in_chunks_of_columns_equal_one_chunk(n, chunk):
    """Whatever the chunks of columns (the last one partial, the last row partial), the same
    dot products as one chunk of every column, to float32 rounding."""
    rng = np.random.default_rng(n + chunk)
    grid = shift_null.make_grid(n, 20, seed=1, min_shift=7)
    x = rng.standard_normal((3, n)).astype(np.float32)
    fs = np.stack([runs(rng, n, 2, 40), rng.standard_normal(n)])
    spectra = shift_null.feature_spectra(grid, fs)
    whole = shift_null.grid_dots(x, spectra, grid, chunk=grid.step)
    got = shift_null.grid_dots(x, spectra, grid, chunk=chunk)
    scale = np.linalg.norm(x, axis=1)[:, None, None] * np.linalg.norm(fs, axis=1)[None, :, None]
    np.testing.assert_allclose(got / scale, whole / scale, rtol=0, atol=1e-6)
    assert grid.rows * grid.step > n                  # the last row is partial here


def test_shifts_are_a_prime_apart_from_a_seeded_random_start():
    n = 10_000
    a, b = draw_shifts(n, 200, seed=1), draw_shifts(n, 200, seed=2)
    step = np.diff(a)[0]
    assert len(a) == 200 and np.all(np.diff(a) == step)
    assert step % 2 == 1 and all(step % d for d in range(3, int(step ** 0.5) + 1))   # odd prime
    assert a.min() >= n // 20 and a.max() <= n - n // 20
    assert a.max() - a.min() > 0.85 * n               # spread over the circle
    assert np.array_equal(a, draw_shifts(n, 200, seed=1)) and not np.array_equal(a, b)
    starts = {int(draw_shifts(n, 200, seed=s)[0]) for s in range(20)}
    assert len(starts) > 10                            # the start is drawn, not fixed
    for period in range(2, 41):                        # every phase of a short period, equally
        counts = np.bincount(a % period, minlength=period)
        assert counts.max() - counts.min() <= 1, period
    every = draw_shifts(30, 200, min_shift=5)         # only 21 allowed shifts: all of them
    assert every.tolist() == list(range(5, 26))


def test_a_unit_that_flips_sign_every_character_gets_the_random_shift_null():
    """An even grid step would meet such a unit at one phase only, and its null would collapse."""
    rng = np.random.default_rng(12)
    n = 20_000
    flip = np.where(np.arange(n) % 2, 1.0, -1.0)
    acts = np.column_stack([flip * (1 + 0.1 * ar1(rng, n, 1)[:, 0]), ar1(rng, n, 1)[:, 0],
                            flip + 0.5 * (np.arange(n) % 3)])      # period 2, none, period 6
    feats = [FeatureValues("pos", "ordinal", line_position(rng, n, 40)),
             FeatureValues("q", "binary", runs(rng, n, 3, 30))]
    rows = scan_in_memory(acts, feats, np.zeros(n, int), n_shifts=200)
    random_shifts = np.random.default_rng(0).integers(n // 20, n - n // 20 + 1, 2000)
    for feat in feats:
        plain = shifted_statistics(acts, feat, random_shifts)   # (U, 2000) random shifts
        for u, r in by_unit(rows, feat.name).items():
            assert r["null_sd"] == pytest.approx(plain[u].std(ddof=1), rel=0.25), (feat.name, u)
            assert r["null_mean"] == pytest.approx(plain[u].mean(), abs=0.5 * plain[u].std())


@pytest.mark.parametrize("ftype", ["binary", "ordinal"])
def test_scan_summarises_the_plain_shift_null(ftype):
    """scan's rows against the null computed the plain way: np.roll per shift, the statistic
    recomputed. The FFT sums in float32, so null values agree to ~1e-6 of their scale."""
    rng = np.random.default_rng(3)
    n = 2000
    acts = ar1(rng, n, 5)
    values = runs(rng, n) if ftype == "binary" else line_position(rng, n)
    feat = FeatureValues("q", ftype, values)
    acts[:, 1] += 3 * values / values.max()           # something to be extreme about
    rows = by_unit(scan_in_memory(acts, [feat], np.zeros(n, int), n_shifts=50, seed=7), "q")
    shifts = draw_shifts(n, 50, seed=7)
    assert shifts.min() >= n // 20 and shifts.max() <= n - n // 20
    null = shifted_statistics(acts, feat, shifts)     # (U, S)
    c = 0.5 if ftype == "binary" else 0.0
    for u, r in rows.items():
        assert r["raw"] == pytest.approx(statistic(acts[:, u], values, ftype), abs=1e-12)
        assert r["null_mean"] == pytest.approx(null[u].mean(), abs=1e-6)
        assert r["null_sd"] == pytest.approx(null[u].std(ddof=1), rel=1e-4)
        extreme = np.sum(np.abs(null[u] - c) >= abs(r["raw"] - c))
        assert r["p_empirical"] == pytest.approx((1 + extreme) / 51)
        z = (r["raw"] - null[u].mean()) / null[u].std(ddof=1)
        assert r["p"] == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-3)
    assert rows[1]["p"] < 1e-4 and rows[1]["p_empirical"] == pytest.approx(1 / 51)


# ---- scored as shown: tanh of cell states, saturation ------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_cell_state_is_scored_as_the_tanh_of_its_values(dtype, tmp_path):
    """Kind "c" with large values (float32 tanh rounds many of them to +-1: ties, as shown):
    every column equals that of np.tanh(values) scanned as array "h"; the memory-mapped recording
    it reads is not written to."""
    rng = np.random.default_rng(14)
    n = 1500
    acts = (6 * ar1(rng, n, 5)).astype(dtype)
    pos, quote = line_position(rng, n, 40), runs(rng, n)
    acts[:, 1] -= 12 * quote
    acts[:, 2] = pos / 4 - 5 + acts[:, 2] / 6
    shown = np.tanh(acts)
    assert shown.dtype == dtype
    if dtype == np.float32:
        assert len(np.unique(shown[:, 0])) < 0.8 * len(np.unique(acts[:, 0]))   # tanh ties
    feats = [FeatureValues("pos", "ordinal", pos), FeatureValues("quote", "binary", quote)]
    char_ix = rng.integers(0, 9, n)
    path = tmp_path / "L0_c.npy"
    np.save(path, acts)
    mm = np.load(path, mmap_mode="r+")                 # writable: a write would land in the file
    as_c = scan_in_memory(mm, feats, char_ix, n_shifts=40, array="c", block_units=2)
    as_h = scan_in_memory(shown, feats, char_ix, n_shifts=40, array="h", block_units=2)
    assert np.array_equal(np.load(path), acts)
    for rc, rh in zip(as_c, as_h):
        assert rc["array"] == "c"
        assert dict(rc, array="h") == rh
    assert by_unit(as_c, "pos")[2]["score"] > 0.5 and by_unit(as_c, "quote")[1]["score"] > 0.9
    null = shifted_statistics(acts, feats[0], [100, 700], array="c")
    np.testing.assert_array_equal(null, shifted_statistics(shown, feats[0], [100, 700]))


@pytest.mark.parametrize("array", ["h", "c", "g", "i", "f", "o", "r", "z", "n"])
def test_saturated_share_equals_a_brute_force_count(array):
    """|v| > 0.99 of the shown value (tanh for c) for h, c and the tanh candidates g, n;
    min(v, 1 - v) < 0.01 for the sigmoid gates; in every row of the unit, even constant ones."""
    rng = np.random.default_rng(15)
    n = 800
    edges = rng.choice([0.0, 0.005, 0.995, 1.0, 0.5, -0.995], n)
    acts = np.column_stack([3 * ar1(rng, n, 2), rng.random(n), edges, np.full(n, 0.999)])
    feats = [FeatureValues("pos", "ordinal", line_position(rng, n, 30)),
             FeatureValues("never", "binary", np.zeros(n))]
    rows = scan_in_memory(acts, feats, rng.integers(0, 4, n), n_shifts=20, array=array)
    v = np.tanh(acts) if array == "c" else acts
    for u in range(acts.shape[1]):
        col = v[:, u]
        hits = sum((min(x, 1 - x) < 0.01) if array in ("i", "f", "o", "r", "z") else (abs(x) > 0.99)
                   for x in col)
        for r in (by_unit(rows, "pos")[u], by_unit(rows, "never")[u]):
            assert r["saturated"] == hits / n, (u, r)
    dead = by_unit(rows, "pos")[4]                    # constant: no score, still a share
    assert dead["score"] is None and dead["saturated"] == (0.0 if array == "c" else 1.0)


def test_a_monotone_but_curved_unit_ranks_first_by_rho():
    """Like the line-length cell: tanh(c) falls slowly, then fast towards the line end. Its rho
    is near 1 while Pearson r is capped by the curve; a straight but noisy unit that Pearson
    r would have put first comes second."""
    rng = np.random.default_rng(13)
    n = 6000
    pos = line_position(rng, n, 60)                   # 0..79
    acts = ar1(rng, n, 8)
    acts[:, 5] = 1 - pos / 150 - 5 * (pos / 80) ** 5 + 0.01 * ar1(rng, n, 1)[:, 0]
    acts[:, 2] = 1 - pos / 40 + 0.25 * ar1(rng, n, 1)[:, 0]
    shown = np.tanh(acts[:, 5])
    assert shown[pos < 10].mean() > 0.7 and shown[pos >= 70].mean() < -0.9   # not all saturated
    rows = scan_in_memory(acts, [FeatureValues("pos", "ordinal", pos)], rng.integers(0, 30, n), array="c",
                n_shifts=100)
    add_qvalues(rows)
    first, second = top_rows(rows, "pos", top=2)
    assert (first["unit"], first["sign"], second["unit"]) == (5, -1, 2)
    assert first["score"] > 0.99 and first["q"] < 1e-10
    assert -first["pearson_r"] < 0.9 < -second["pearson_r"]      # r would rank them the other way
    assert first["pearson_r"] == pytest.approx(stats.pearsonr(shown, pos).statistic, abs=1e-12)


# ---- planted units and pure noise -----------------------------------------------------------

def test_planted_units_rank_first_and_are_significant():
    rng = np.random.default_rng(4)
    n, units = 5000, 50
    acts = ar1(rng, n, units)
    quote, pos = runs(rng, n), line_position(rng, n)
    acts[:, 7] = quote + 0.8 * ar1(rng, n, 1)[:, 0]
    acts[:, 21] = -pos / 60 + 0.5 * ar1(rng, n, 1)[:, 0]
    feats = [FeatureValues("in_quote", "binary", quote),
             FeatureValues("line_pos", "ordinal", pos)]
    rows = scan_in_memory(acts, feats, rng.integers(0, 30, n))
    add_qvalues(rows)
    best_q, best_pos = top_rows(rows, "in_quote", top=1)[0], top_rows(rows, "line_pos", top=1)[0]
    assert best_q["unit"] == 7 and best_q["q"] < 0.05 and best_q["sign"] == 1
    assert best_pos["unit"] == 21 and best_pos["q"] < 0.05 and best_pos["sign"] == -1
    assert best_q["beyond_char"] > 0.8 and best_pos["beyond_char"] > 0.5


def noise_scan(seed, n=3000, units=20, n_shifts=100):
    """Pure AR(1) noise units against two autocorrelated features; rows with q."""
    rng = np.random.default_rng(seed)
    feats = [FeatureValues("in_quote", "binary", runs(rng, n)),
             FeatureValues("line_pos", "ordinal", line_position(rng, n))]
    acts = ar1(rng, n, units)
    rows = scan_in_memory(acts, feats, rng.integers(0, 30, n), n_shifts=n_shifts, seed=seed)
    add_qvalues(rows)
    return acts, feats, rows


def test_noise_units_are_not_flagged_across_seeds():
    flagged, runs_with_any, total, p = 0, 0, 0, []
    seeds = range(30)
    for seed in seeds:
        _, _, rows = noise_scan(seed)
        hits = sum(r["q"] < 0.05 for r in rows)
        flagged += hits
        runs_with_any += hits > 0
        total += len(rows)
        p += [r["p"] for r in rows]
    assert flagged / total <= 0.05
    assert runs_with_any / len(seeds) <= 0.10          # family-wise: BH at 0.05 under the null
    assert 0.02 <= np.mean(np.array(p) < 0.05) <= 0.08  # p is close to calibrated (1200 rows)


def test_character_shuffle_null_would_flag_the_same_noise():
    """Why the shift null: shuffling characters ignores autocorrelation and calls noise real."""
    acts, feats, rows = noise_scan(seed=100, n_shifts=200)
    rng = np.random.default_rng(0)
    n = len(acts)
    ranks = stats.rankdata(acts, axis=0) - (n + 1) / 2
    z = ranks / ranks.std(0)
    naive_p = []
    for feat in feats:
        perms = np.stack([rng.permutation(feat.values) for _ in range(200)], axis=1)  # (N, 200)
        if feat.type == "binary":
            n1 = feat.values.sum()
            obs = 0.5 + ranks.T @ feat.values / (n1 * (n - n1))
            null = 0.5 + ranks.T @ perms / (n1 * (n - n1))
        else:  # Spearman rho: the standardised ranks of unit and feature
            fr = stats.rankdata(feat.values)
            fz = (fr - fr.mean()) / fr.std()
            pz = np.stack([rng.permutation(fz) for _ in range(200)], axis=1)
            obs, null = z.T @ fz / n, z.T @ pz / n
        zs = (obs - null.mean(1)) / null.std(1, ddof=1)
        naive_p += list(2 * stats.norm.sf(np.abs(zs)))
    naive_q = stats.false_discovery_control(naive_p, method="bh")
    shift_q = np.array([r["q"] for r in rows])
    assert np.mean(naive_q < 0.05) > 0.3               # the shuffle null calls much noise real
    assert np.mean(shift_q < 0.05) <= 0.05


# ---- beyond the character -------------------------------------------------------------------

def test_beyond_char_separates_delimiter_units_from_quote_cells():
    rng = np.random.default_rng(5)
    n = 6000
    text = rng.choice(list("abcde fgh."), size=n)
    inside = runs(rng, n, 30, 150)
    starts = np.flatnonzero(np.diff(np.append(0, inside)) == 1)
    ends = np.flatnonzero(np.diff(np.append(inside, 0)) == -1)
    text[starts], text[ends] = '"', '"'               # quotes open and close each run
    char_ix = np.unique(text, return_inverse=True)[1]
    acts = ar1(rng, n, 4)
    acts[:, 0] = (text == '"')                        # fires on the quote character only
    acts[:, 1] = inside + 0.5 * rng.standard_normal(n)   # a real quote cell
    acts[:, 2] = -acts[:, 1]
    rows = by_unit(scan_in_memory(acts, [FeatureValues("in_quote", "binary", inside)], char_ix), "in_quote")
    assert 0.5 < rows[0]["score"] < 0.6               # delimiters are a small part of a quote
    assert rows[0]["beyond_char"] == pytest.approx(0.5, abs=1e-12)
    assert rows[1]["score"] > 0.9 and rows[1]["beyond_char"] > 0.9
    assert rows[2]["sign"] == -1 and rows[2]["beyond_char"] == pytest.approx(rows[1]["beyond_char"])


def test_beyond_char_matches_per_character_scores_computed_by_hand():
    """beyond_char (once the score of residuals from per-character means) is now each
    character's own AUROC, from every (positive, negative) pair, averaged with weights
    n1 n0 / n (Van Elteren), and the rho of ranks taken within each character, pooled."""
    rng = np.random.default_rng(11)
    n = 400
    char_ix = rng.integers(0, 6, n)
    acts = ar1(rng, n, 3) + np.sin(char_ix)[:, None]
    acts[:, 2] = np.round(acts[:, 2])                 # ties within characters too
    quote, pos = runs(rng, n, 5, 40), line_position(rng, n, 30)
    acts[:, 1] -= quote + pos / 30
    feats = [FeatureValues("q", "binary", quote), FeatureValues("pos", "ordinal", pos)]
    rows = scan_in_memory(acts, feats, char_ix, n_shifts=20)
    for u in range(3):
        rq, rp = by_unit(rows, "q")[u], by_unit(rows, "pos")[u]
        aucs, weights, ru, rf = [], [], [], []
        for c in range(6):
            x, f, m = acts[char_ix == c, u], quote[char_ix == c], (char_ix == c).sum()
            aucs.append(auroc_pairwise(x, f))
            weights.append(f.sum() * (m - f.sum()) / m)
            ru.append(stats.rankdata(x) - (m + 1) / 2)
            rf.append(stats.rankdata(pos[char_ix == c]) - (m + 1) / 2)
        auc = np.average(aucs, weights=weights)
        assert rq["beyond_char"] == pytest.approx(auc if rq["sign"] > 0 else 1 - auc, abs=1e-12)
        ru, rf = np.concatenate(ru), np.concatenate(rf)
        rho = ru @ rf / np.sqrt((ru @ ru) * (rf @ rf))
        assert rp["beyond_char"] == pytest.approx(rho * rp["sign"], abs=1e-12)


def test_beyond_char_of_rho_is_zero_for_a_function_of_the_character():
    rng = np.random.default_rng(6)
    n = 500
    char_ix = rng.integers(0, 7, n)
    pos = line_position(rng, n, 30)
    acts = np.column_stack([np.sin(char_ix * 1.3), pos + rng.standard_normal(n)])
    rows = by_unit(scan_in_memory(acts, [FeatureValues("pos", "ordinal", pos)], char_ix, n_shifts=20), "pos")
    assert rows[0]["beyond_char"] == 0.0
    assert rows[1]["beyond_char"] > 0.9


# ---- q-values, storage, blocks --------------------------------------------------------------

def test_qvalues_are_benjamini_hochberg_over_valid_rows():
    rng = np.random.default_rng(7)
    p = rng.random(40) ** 3
    rows = [{"p": float(x)} for x in p] + [{"p": None}, {"p": None}]
    add_qvalues(rows)
    want = stats.false_discovery_control(p, method="bh")
    assert [r["q"] for r in rows[:40]] == pytest.approx(list(want))
    assert rows[40]["q"] is None and rows[41]["q"] is None


def some_data(seed=8, n=1500, units=23):
    rng = np.random.default_rng(seed)
    acts = ar1(rng, n, units)
    feats = [FeatureValues("in_quote", "binary", runs(rng, n)),
             FeatureValues("line_pos", "ordinal", line_position(rng, n)),
             FeatureValues("spaces", "binary", (rng.random(n) < 0.2).astype(float))]
    acts[:, 3] += feats[0].values
    return acts, feats, rng.integers(0, 40, n)


def assert_same_rows(a, b):
    """Equal rows; the null is summed in float32 (matrix products of other shapes may sum in
    other orders), so its summaries and p agree to float32 precision, the rest exactly."""
    assert len(a) == len(b)
    for ra, rb in zip(a, b):
        for key in COLUMNS:
            if ra[key] is None or rb[key] is None:  # e.g. no p for a constant unit: both or neither
                assert ra[key] is None and rb[key] is None, key
            elif key in ("null_mean", "null_sd"):
                assert rb[key] == pytest.approx(ra[key], rel=1e-5, abs=1e-7), key
            elif key in ("p", "q"):
                assert rb[key] == pytest.approx(ra[key], rel=1e-3, abs=1e-9), key
            elif isinstance(ra[key], float):
                assert rb[key] == pytest.approx(ra[key], rel=1e-9, abs=1e-12), key
            else:
                assert ra[key] == rb[key], key


def saved_memmap(acts, path, dtype):
    """acts saved as an .npy file of dtype, opened again read-only as a memmap (a recording)."""
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=acts.shape)
    mm[:] = acts
    mm.flush()
    return np.load(path, mmap_mode="r")


def test_float16_memmap_gives_the_rows_of_float64_in_memory(tmp_path):
    acts, feats, char_ix = some_data()
    mm = saved_memmap(acts, tmp_path / "activations.npy", np.float16)
    block = read_block(mm, 2, 9, rows=100)            # row chunks, pages let go after each
    assert block.dtype == np.float32 and block.shape == (7, len(acts))
    np.testing.assert_array_equal(block, np.asarray(acts, dtype=np.float16)[:, 2:9].T)
    from_mm = scan_in_memory(mm, feats, char_ix, n_shifts=60, block_units=4, read_units=8)
    in_mem = scan_in_memory(np.asarray(mm, dtype=np.float64), feats, char_ix, n_shifts=60)
    assert_same_rows(in_mem, from_mm)


def test_block_sizes_and_threads_do_not_change_results():
    acts, feats, char_ix = some_data()
    base = scan_in_memory(acts, feats, char_ix, n_shifts=60)
    assert_same_rows(base, scan_in_memory(acts, feats, char_ix, n_shifts=60, block_units=5))
    assert_same_rows(base, scan_in_memory(acts, feats, char_ix, n_shifts=60, block_units=1))
    assert_same_rows(base, scan_in_memory(acts, feats, char_ix, n_shifts=60, block_units=4, workers=1))
    assert_same_rows(base, scan_in_memory(acts, feats, char_ix, n_shifts=60, block_units=4, workers=3))
    # units read 7 at a time (the next 7 while these are scored), scored 3 at a time
    assert_same_rows(base, scan_in_memory(acts, feats, char_ix, n_shifts=60, block_units=3, read_units=7))


def test_gather_columns_turns_a_block_of_units_from_any_float_layout(tmp_path):
    from interpret.scanning.row_stats import gather_columns
    rng = np.random.default_rng(3)
    acts = rng.standard_normal((301, 11))
    mm = saved_memmap(acts, tmp_path / "a.npy", np.float32)
    for source, dtype in [(mm, np.float32), (acts, np.float64), (acts, np.float32),
                          (np.asfortranarray(acts), np.float64), (acts[::2, 1:], np.float64)]:
        out = np.full((4, len(source)), np.nan, dtype)
        gather_columns(source, 3, out)
        np.testing.assert_array_equal(out, np.asarray(source[:, 3:7], dtype=dtype).T)
    with pytest.raises(ValueError, match="cannot gather units 8..11 of a float64 array of shape"):
        gather_columns(acts, 8, np.empty((4, 301)))
    with pytest.raises(ValueError, match=r"into one of shape \(4, 300\)"):
        gather_columns(acts, 0, np.empty((4, 300)))               # a row short: nothing written
    with pytest.raises(ValueError, match="cannot gather units -1..2"):
        gather_columns(acts, -1, np.empty((4, 301)))
    with pytest.raises(ValueError, match="float16"):
        gather_columns(acts.astype(np.float16), 0, np.empty((4, 301), np.float32))


def test_direct_reads_give_the_rows_of_buffered_reads(tmp_path):
    acts, feats, char_ix = some_data()
    mm = saved_memmap(acts, tmp_path / "activations.npy", np.float32)
    buffered = scan_in_memory(mm, feats, char_ix, n_shifts=60, block_units=3, read_units=7, direct=False)
    assert_same_rows(buffered, scan_in_memory(mm, feats, char_ix, n_shifts=60, block_units=3,
                                              read_units=7, direct=True))
    assert_same_rows(buffered, scan_in_memory(mm, feats, char_ix, n_shifts=60, block_units=3,
                                              read_units=7, workers=1))   # direct by default
    in_memory = scan_in_memory(acts, feats, char_ix, n_shifts=60, direct=False)
    assert_same_rows(in_memory, scan_in_memory(acts, feats, char_ix, n_shifts=60, direct=True))
    half = np.lib.format.open_memmap(tmp_path / "half.npy", mode="w+", dtype=np.float16, shape=acts.shape)
    with pytest.raises(ValueError, match="direct reads need float32 or float64 activations"):
        scan_in_memory(half, feats, char_ix, n_shifts=60, direct=True)


def test_direct_reads_only_for_a_file_the_page_cache_holds_twice(monkeypatch):
    from interpret.scanning import budget
    assert budget.direct_reads(10 * 2**30, mapped=False, free=2**30)      # already in memory
    assert budget.direct_reads(2**30, mapped=True, free=2 * 2**30)
    assert not budget.direct_reads(2**30 + 1, mapped=True, free=2 * 2**30)
    monkeypatch.setattr(budget, "available", lambda: None)                # not Linux: buffered
    assert not budget.direct_reads(1, mapped=True)
    assert budget.direct_reads(1, mapped=False)


def test_progress_reports_every_unit_and_rows_are_plain_json():
    acts, feats, char_ix = some_data(units=10)
    seen = []
    rows = scan_in_memory(acts, feats, char_ix, n_shifts=30, block_units=4, layer=1, array="c",
                progress=seen.append)
    assert seen == [4, 4, 2]
    assert len(rows) == 3 * 10 and set(COLUMNS) <= set(rows[0])
    assert rows[0]["layer"] == 1 and rows[0]["array"] == "c"
    json.dumps(rows, allow_nan=False)


# ---- degenerate input -----------------------------------------------------------------------

def test_constant_features_and_units_give_empty_rows_that_sort_last():
    acts, feats, char_ix = some_data(units=6)
    acts[:, 2] = 0.25                                 # a dead unit
    n = len(acts)
    feats += [FeatureValues("never", "binary", np.zeros(n)),
              FeatureValues("flat", "continuous", np.full(n, 3.0))]
    rows = scan_in_memory(acts, feats, char_ix, n_shifts=30)
    add_qvalues(rows)
    dead = [r for r in rows if r["unit"] == 2 or r["feature"] in ("never", "flat")]
    assert len(dead) == 5 + 2 * 5                     # unit 2 x 5 features, 2 features x 5 units
    for r in dead:
        assert r["score"] is None and r["p"] is None and r["q"] is None
    assert by_unit(rows, "never")[0]["n_pos"] == 0
    assert top_rows(rows, "in_quote", top=None)[-1]["unit"] == 2
    table = format_table(rows)
    assert "never (binary, auroc)  n_pos=0" in table and "no valid scores" in table
    rows_to_csv(rows, io.StringIO())
    json.dumps(rows, allow_nan=False)


def test_constant_features_among_others_leave_the_others_rows_as_without_them():
    """A constant feature's rows are dropped from the stacks the others are scored from: the
    other features' rows equal a scan without the constant ones."""
    acts, feats, char_ix = some_data(units=7)
    n = len(acts)
    feats.insert(0, FeatureValues("never", "binary", np.zeros(n)))
    feats.insert(2, FeatureValues("flat", "ordinal", np.full(n, 2.0)))
    feats.append(FeatureValues("depth", "ordinal", np.cumsum(np.random.default_rng(4).random(n) < 0.5)
                               .astype(float)))
    with_constants = scan_in_memory(acts, feats, char_ix, n_shifts=40)
    kept = [f for f in feats if f.name not in ("never", "flat")]
    without = scan_in_memory(acts, kept, char_ix, n_shifts=40)
    assert_same_rows(without, [r for r in with_constants if r["feature"] not in ("never", "flat")])
    assert all(r["score"] is None for r in with_constants if r["feature"] in ("never", "flat"))


def test_bad_input_raises_with_a_way_out():
    rng = np.random.default_rng(9)
    with pytest.raises(ValueError, match="has 19 characters; scanning needs at least 20"):
        scan_in_memory(rng.random((19, 3)), [FeatureValues("f", "binary", np.ones(19))], np.zeros(19, int))
    acts = rng.random((100, 3))
    ok = [FeatureValues("f", "ordinal", np.arange(100.0))]
    with pytest.raises(ValueError, match="n_shifts=5 is too few"):
        scan_in_memory(acts, ok, np.zeros(100, int), n_shifts=5)
    with pytest.raises(ValueError, match="min_shift=60 leaves no shifts"):
        scan_in_memory(acts, ok, np.zeros(100, int), min_shift=60)
    with pytest.raises(ValueError, match="type 'nominal'"):
        scan_in_memory(acts, [FeatureValues("f", "nominal", np.ones(100))], np.zeros(100, int))
    with pytest.raises(ValueError, match="values other than 0 and 1"):
        scan_in_memory(acts, [FeatureValues("f", "binary", np.arange(100.0))], np.zeros(100, int))
    with pytest.raises(ValueError, match="shape"):
        scan_in_memory(acts, [FeatureValues("f", "ordinal", np.arange(99.0))], np.zeros(100, int))
    with pytest.raises(ValueError, match="block_units=0"):
        scan_in_memory(acts, ok, np.zeros(100, int), block_units=0)
    with pytest.raises(ValueError, match="min_shift=48 leaves no shifts .* from 1 to 45"):
        scan_in_memory(acts, ok, np.zeros(100, int), min_shift=48)   # 5 shifts: fewer than the null needs
    acts[5, 1] = np.inf
    with pytest.raises(ValueError, match="unit 1 .*non-finite"):
        scan_in_memory(acts, [FeatureValues("f", "ordinal", np.arange(100.0))], np.zeros(100, int))
    acts = rng.random((100, 12))
    acts[7, 9] = np.nan                                # in the third block read
    with pytest.raises(ValueError, match="unit 9 .*non-finite"):
        scan_in_memory(acts, ok, np.zeros(100, int), block_units=2, read_units=4)


# ---- ranking and output ---------------------------------------------------------------------

def test_top_rows_orders_by_score_and_filters_by_q():
    acts, feats, char_ix = some_data()
    rows = scan_in_memory(acts, feats, char_ix, n_shifts=60)
    add_qvalues(rows)
    best = top_rows(rows, top=3)
    assert [r["feature"] for r in best] == ["in_quote"] * 3 + ["line_pos"] * 3 + ["spaces"] * 3
    scores = [r["score"] for r in best[:3]]
    assert scores == sorted(scores, reverse=True) and best[0]["unit"] == 3
    sig = top_rows(rows, "in_quote", top=None, q_max=0.05)
    assert sig and all(r["q"] <= 0.05 for r in sig)


def test_format_table_is_readable_and_shows_each_rows_verdict():
    from interpret.scanning.verdict import add_verdicts
    acts, feats, char_ix = some_data()
    rows = scan_in_memory(acts, feats, char_ix, n_shifts=60)
    add_qvalues(rows)
    control = scan_in_memory(ar1(np.random.default_rng(1), len(acts), 23), feats, char_ix, n_shifts=60)
    for r in rows:
        r.update(n_runs=50, n_distinct=50)  # what add_support puts there
    add_verdicts(rows, control)
    table = format_table(rows, top=4, control_rows=control)
    lines = table.splitlines()
    assert lines[0].startswith("in_quote (binary, auroc)  n_pos=")
    assert "untrained control's best unit: 0." in lines[0]
    assert lines[1].split() == ["layer", "array", "unit", "score", "sign", "q", "beyond_char", "r", "sat",
                                "verdict"]
    best = top_rows(rows, "in_quote", top=1)[0]
    assert lines[2].split()[:3] == ["0", "h", "3"] and lines[2].split()[-1] == best["verdict"]
    assert lines[2].split()[-2] == f"{best['saturated']:.2f}"
    assert {ln.split()[-1] for ln in lines[2:6]} <= {"cell", "weak", "none"}
    assert "line_pos (ordinal, spearman_rho)" in table
    assert max(len(line) for line in lines) <= 100 and "verdict: cell = q < 0.01" in table


def test_rows_to_csv_writes_the_fixed_columns(tmp_path):
    acts, feats, char_ix = some_data(units=4)
    rows = scan_in_memory(acts, feats, char_ix, n_shifts=30)
    buf = io.StringIO()
    rows_to_csv(rows, buf)
    back = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert tuple(back[0]) == COLUMNS and len(back) == len(rows)
    assert back[0]["q"] == "" and float(back[0]["score"]) == pytest.approx(rows[0]["score"])
    path = tmp_path / "scan.csv"
    rows_to_csv(rows, path)
    assert path.read_bytes().decode() == buf.getvalue()
    assert [p.name for p in tmp_path.iterdir()] == ["scan.csv"]


def test_named_features_keep_the_users_regex_features():
    from interpret.features import choose_features
    names = [f.name for f in choose_features('say "hi"\n', ["in_quote"], ["vowel=[aeiou]"])]
    assert names == ["in_quote", "vowel"]
    names = [f.name for f in choose_features('say "hi"\n', ["vowel", "in_quote"], ["vowel=[aeiou]"])]
    assert names == ["vowel", "in_quote"]  # named once, in the order asked


@pytest.mark.parametrize("m", [1, 2, 7, 300])
def test_bh_qvalues_are_scipys_and_the_definition(m):
    """q_(i) = min(1, min over j >= i of p_(j) m / j): against scipy's false_discovery_control (bit
    for bit) and the definition written out, with ties and p near 1."""
    from interpret.scanning.rows import bh_qvalues
    rng = np.random.default_rng(m)
    p = rng.uniform(size=m) ** 2
    p[:m // 3] = p[m // 3:2 * (m // 3)]                          # ties
    p[-1] = 1.0
    q = bh_qvalues(p)
    np.testing.assert_array_equal(q, stats.false_discovery_control(p, method="bh"))
    ranks = stats.rankdata(p, method="ordinal")                  # j of each p among the sorted
    sorted_p = np.sort(p)
    for i in range(m):
        j = ranks[i]
        want = min(1.0, min(sorted_p[k - 1] * m / k for k in range(j, m + 1)))
        assert q[i] == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("control", [None, "rows", "empty"])
def test_scan_json_is_one_row_a_line_and_reads_back_as_to_dict(control, tmp_path):
    from interpret.scanning.result import Scan
    rows = [{"feature": "in_quote", "unit": u, "score": 0.5 + u / 10, "q": float("nan") if u == 1 else 0.01,
             "verdict": "none", "note": 'say "hi"\n'} for u in range(3)]
    ctrl = {None: None, "rows": [dict(rows[0], unit=7)], "empty": []}[control]
    scan = Scan(rows, ctrl)
    text = scan.to_json(tmp_path / "s.json")
    assert json.loads(text) == scan.to_dict() and json.loads((tmp_path / "s.json").read_text()) == scan.to_dict()
    assert json.loads(text)["rows"][1]["q"] is None                  # NaN as null: strict JSON
    lines = text.splitlines()
    assert [json.loads(line.rstrip(",")) for line in lines[1:4]] == scan.to_dict()["rows"]   # a row a line
    assert json.loads(Scan(rows[:0], ctrl).to_json())["rows"] == []


def test_scanning_does_not_import_scipy_stats():
    """scipy.stats costs 0.6-1 s to import; the scan needs only the normal cdf (scipy.special)."""
    import subprocess
    import sys
    code = ("import sys, interpret.scanning.result, interpret.scanning.run, interpret.cli.scan; "
            "print('scipy.stats' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stdout + r.stderr


def test_scan_layout_shrinks_to_fit_the_memory_or_says_what_it_needs():
    from interpret.scanning.budget import scan_bytes, scan_layout
    assert scan_layout(10**6, 100, 1, workers=2, free=10 * 2**30) == (8, 2)   # 64 MiB float64 blocks
    assert scan_layout(10**5, 100, 1, workers=2, free=10 * 2**30) == (16, 2)  # at most 16 units
    assert scan_layout(10**7, 100, 1, workers=2, free=10 * 2**30) == (1, 2)
    assert scan_layout(10**6, 100, 1, block_units=24, workers=2, free=10 * 2**30) == (24, 2)
    assert scan_layout(10**6, 5, 1, workers=2, free=10 * 2**30) == (5, 2)  # never more than the units
    tight = scan_bytes(10**6, 8, 1, 1) + 1  # room for one block of 8 units, not two
    assert scan_layout(10**6, 100, 1, workers=2, free=tight) == (8, 1)
    assert scan_layout(10**6, 100, 1, workers=2, free=scan_bytes(10**6, 1, 1, 1)) == (1, 1)
    with pytest.raises(ValueError, match=r"50,000,000 characters .* needs about \d+\.\d GB .* 1\.0 GB is available"):
        scan_layout(50 * 10**6, 100, 3, free=2**30)



def test_a_float16_recording_streams_rather_than_shrink_the_in_memory_layout(monkeypatch):
    from interpret._util.cores import workers as default_workers
    from interpret.scanning.budget import STREAM_ENV, scan_bytes, scan_plan
    monkeypatch.delenv(STREAM_ENV, raising=False)
    workers = default_workers()
    full = scan_bytes(10**6, 8, workers, 3)                       # whole columns, full layout
    assert scan_plan(10**6, 100, 3, "float16", free=2 * full) == ("memory", 8, workers)
    assert scan_plan(10**6, 100, 3, "float16", free=2 * full - 1) == ("stream", None, None)
    assert scan_plan(10**6, 100, 3, "float32", free=2 * full - 1) == ("memory", 8, workers)
    shrunk = scan_plan(10**6, 100, 3, "float32", free=scan_bytes(10**6, 1, 1, 3))
    assert shrunk == ("memory", 1, 1)                               # float32 cannot stream
    monkeypatch.setenv(STREAM_ENV, "memory")
    assert scan_plan(10**6, 100, 3, "float16", free=scan_bytes(10**6, 1, 1, 3)) == ("memory", 1, 1)

def test_a_recording_too_big_for_the_memory_is_refused_before_any_work(tmp_path, monkeypatch):
    from interpret.scanning import budget
    from interpret.features.choose import choose_features
    from interpret.scanning.run import scan_recording
    from interpret.model.model import Model
    from interpret.recording.recorder import Recording, record
    text = 'say "hi" (twice)\n' * 20
    record(Model.init(sorted(set(text)), hidden_size=3, seed=0), [("t.txt", text)], tmp_path / "r.rec")
    rec = Recording(tmp_path / "r.rec")
    feats = choose_features(text, ["in_quote"])
    monkeypatch.setattr(budget, "available", lambda: 10 * 2**20)  # 10 MB free: not even the base
    with pytest.raises(ValueError, match="needs about"):
        scan_recording(rec, feats, n_shifts=10)
    monkeypatch.setattr(budget, "available", lambda: budget.scan_bytes(len(text), 1, 1, 1))
    seen = []
    monkeypatch.setattr(scan_run, "scan_in_memory", lambda *a, **kw: seen.append((kw["block_units"], kw["workers"])) or [])
    scan_recording(rec, feats, n_shifts=10)
    assert seen == [(1, 1)]  # one unit at a time, one worker


def test_a_null_flat_but_for_rounding_gives_the_empirical_p_not_zero():
    """A periodic unit (period 3, the grid's step here): every shift of the grid gives the same
    rho, up to float32 rounding (found by hypothesis with Pearson r on a periodic text: the
    normal approximation then said p = 0.0)."""
    text = ":::000:::000:::000:::000:::000:000::"
    pos = F.position_in_line(text)
    rng = np.random.default_rng(0)
    assert draw_shifts(len(text), 10)[1] - draw_shifts(len(text), 10)[0] == 3
    acts = np.column_stack([rng.standard_normal(len(text)), pos / (1 + pos.max()) - 0.5,
                            np.tile([0.1, 0.5, 0.9], 12)])
    word = FeatureValues("word_position", "ordinal", F.word_position(text))
    chars = sorted(set(text))
    rows = scan_in_memory(acts.astype(np.float32), [word], np.array([chars.index(c) for c in text]),
                n_shifts=10, seed=0)
    flat = [r for r in rows if r["null_sd"] < 1e-6]
    assert flat, [r["null_sd"] for r in rows]                       # the case is still made
    for r in flat:
        assert r["p"] == r["p_empirical"] and 0 < r["p"] <= 1
