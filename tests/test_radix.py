"""radix: the compiled ranks against scipy's rankdata and ranks.py's numpy form, bit for bit."""

import numpy as np
import pytest
from scipy.stats import rankdata

from interpret.model import jit
from interpret.scanning.ranks import Groups, ranks_in_groups

pytest.importorskip("numba")
from interpret.scanning import radix  # noqa: E402  (needs numba)

pytestmark = pytest.mark.skipif(not jit.enabled(), reason="INTERPRET_JIT=0")


def centred(x):
    """scipy's average ranks of each row of x (B, N), minus (N + 1) / 2."""
    return rankdata(np.asarray(x, np.float64), axis=1) - (x.shape[1] + 1) / 2


def rows(case, n, rng):
    """(B, N) float32 rows of one kind: ties, signed zeros, extremes, constant."""
    x = rng.standard_normal((3, n))
    return {"distinct": x,
            "many-ties": np.round(x * 2),
            "constant": np.full((2, n), 0.25),
            "signed-zeros": np.where(x > 0, 0.0, -0.0) * np.round(x),
            "extremes": np.choose(rng.integers(0, 6, (2, n)),
                                  [np.float32(3e38), -np.float32(3e38), 1e-45, -1e-45, 1.0, -2.0]),
            "smooth": np.tanh(np.cumsum(x, axis=1) / 10)}[case].astype(np.float32)


CASES = ["distinct", "many-ties", "constant", "signed-zeros", "extremes", "smooth"]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("n", [1, 2, 3, 25, 5000])
def test_ranks_match_rankdata(case, n):
    x = rows(case, n, np.random.default_rng(n))
    rc, rg = radix.ranks_rows(x)
    assert rg is None and rc.dtype == np.float64 and rc.shape == x.shape
    np.testing.assert_array_equal(rc, centred(x))


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("n", [1, 2, 7, 3000])
def test_ranks_within_groups_match_rankdata_in_each_group(case, n):
    rng = np.random.default_rng(n + 1)
    x = rows(case, n, rng)
    codes = rng.integers(0, 5, n)
    codes[:min(n, 5)] = np.arange(min(n, 5))                  # every code present, one maybe alone
    codes = np.unique(codes, return_inverse=True)[1].ravel()
    counts = np.bincount(codes)
    rc, rg = radix.ranks_rows(x, codes.astype(np.uint8), counts)
    np.testing.assert_array_equal(rc, centred(x))
    for c in range(len(counts)):
        np.testing.assert_array_equal(rg[:, codes == c], centred(x[:, codes == c]))


def test_a_row_constant_within_every_group_ranks_zero_within_them():
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 40, 10000)
    x = np.sin(codes).astype(np.float32)[None, :]             # a function of the code
    _, rg = radix.ranks_rows(x, codes.astype(np.uint8), np.bincount(codes))
    assert not rg.any()


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int64])
def test_same_as_the_numpy_form_bit_for_bit(dtype, monkeypatch):
    """ranks_in_groups through radix and through the packed-key np.sort (INTERPRET_JIT=0):
    large rows (every top-16-bit bucket size, runs of ties across a bucket's sorted keys)."""
    rng = np.random.default_rng(4)
    n = 200_000
    codes = np.minimum(rng.geometric(0.05, n) - 1, 299)       # skewed, like characters
    codes = np.unique(codes, return_inverse=True)[1].ravel().astype(dtype)
    x = np.stack([np.tanh(np.cumsum(rng.standard_normal(n)) / 30),
                  np.round(rng.standard_normal(n) * 50) / 8,
                  rng.standard_normal(n) * 1e-3]).astype(np.float32)
    groups = Groups(codes)
    fast = ranks_in_groups(x, groups)
    monkeypatch.setenv("INTERPRET_JIT", "0")
    assert not radix.available(x)
    plain = ranks_in_groups(x, groups)
    for a, b in zip(fast, plain):
        assert a.dtype == b.dtype == np.float64
        np.testing.assert_array_equal(a, b)


def test_available_only_where_float32_holds_every_rank():
    assert radix.available(np.zeros((2, 2**24), np.float32)[:, :5])
    assert not radix.available(np.zeros((1, 5)))               # float64: the numpy form
    assert not radix.available(np.zeros((1, 5), np.float16))


def test_the_longest_row_available_ranks_exactly():
    """N = 2^24, the most radix takes: every position, code and doubled rank at its widest
    (staged words hold 2 rc + N and 2 rg + N in 25 bits each). Distinct values x[t], a
    permutation of 0..N-1 (t times an odd number, mod N), have centred rank x - (N - 1) / 2;
    with code x mod 3, x // 3 is the rank within the code."""
    n = 2**24
    t = np.arange(n, dtype=np.uint32)
    t *= np.uint32(2654435761)                                 # mod 2^32, so mod N too
    t &= np.uint32(n - 1)
    codes = (t % 3).astype(np.uint8)
    x = t.astype(np.float32)[None, :]
    del t
    counts = np.bincount(codes)
    assert radix.available(x)
    rc, rg = radix.ranks_rows(x, codes, counts, dtype=np.float32)
    np.testing.assert_array_equal(rc[0], x[0] - np.float32((n - 1) / 2))
    within = (x[0] // 3) - ((counts[codes] - 1) / 2).astype(np.float32)
    np.testing.assert_array_equal(rg[0], within)
