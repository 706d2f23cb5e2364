"""ranks: average ranks by packed-key sorts (or argsort and a radix pass) against scipy's rankdata."""

import numpy as np
import pytest
from scipy.stats import rankdata

from interpret.scanning.ranks import Groups, centred_ranks, ranks_from_counts, ranks_in_groups, sort_order


def want(x):
    return rankdata(np.asarray(x, dtype=np.float64), axis=1) - (x.shape[1] + 1) / 2


@pytest.mark.parametrize("case", ["float64", "float64-ties", "float32", "float16", "constant",
                                  "signed-zeros", "huge-and-tiny"])
def test_centred_ranks_match_rankdata(case):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2000))
    x = {"float64": x,                                        # not float32-exact: argsort
         "float64-ties": np.round(x * 3),                     # float32-exact with many ties
         "float32": x.astype(np.float32),
         "float16": np.round(x).astype(np.float16),
         "constant": np.zeros((2, 50)),
         "signed-zeros": np.array([[0.0, -0.0, 1.0, -0.0, 2.0, 2.0, 2.0, -1.0, 5.0, 5.0]]),
         "huge-and-tiny": np.array([[3e38, -3e38, 1e-40, -1e-40, 0.0, 1.0, -1.0, 1e-40]],
                                   dtype=np.float32)}[case]
    got = centred_ranks(x)
    assert got.dtype == np.float64 and got.shape == x.shape
    np.testing.assert_array_equal(got, want(x))


def test_sort_order_sorts_and_its_keys_tie_exactly_where_values_do():
    rng = np.random.default_rng(1)
    for col in (np.round(rng.standard_normal(5000), 2), rng.standard_normal(5000).astype(np.float32)):
        order, keys = sort_order(col)
        assert np.all(np.diff(col[order].astype(np.float64)) >= 0)
        np.testing.assert_array_equal(keys[1:] == keys[:-1], col[order][1:] == col[order][:-1])


@pytest.mark.parametrize("case", ["float64", "float32-ties", "float16", "constant-per-group",
                                  "float32-constant-per-group"])
def test_ranks_in_groups_match_rankdata_within_each_group(case):
    rng = np.random.default_rng(2)
    codes = rng.integers(0, 7, 3000)
    codes[5] = 7                                              # a group of one position
    x = rng.standard_normal((2, 3000))
    x = {"float64": x, "float32-ties": np.round(x * 2).astype(np.float32),
         "float16": x.astype(np.float16),
         "constant-per-group": np.sin(codes)[None, :] + 0 * x,     # float64: argsort path
         "float32-constant-per-group": np.sin(codes).astype(np.float32)[None, :] + 0 * x.astype(np.float32)}[case]
    rc, rg = ranks_in_groups(x, Groups(codes))
    np.testing.assert_array_equal(rc, want(x))
    for c in range(8):
        at = codes == c
        np.testing.assert_array_equal(rg[:, at], want(x[:, at]))
    assert case.endswith("constant-per-group") == (not rg.any())


def test_ranks_in_groups_with_too_many_codes_to_pack():
    """32 value bits + 17 position bits + 17 code bits > 64: the argsort and radix path."""
    rng = np.random.default_rng(4)
    v, n = 70000, 100000
    codes = np.concatenate([np.arange(v), rng.integers(0, v, n - v)])
    x = np.round(rng.standard_normal((1, n)) * 2).astype(np.float32)      # many ties
    rc, rg = ranks_in_groups(x, Groups(codes))
    np.testing.assert_array_equal(rc, want(x))
    dense = rankdata(x[0], method="dense")                              # (code, value) pairs:
    pair_rank = rankdata(codes * (n + 1.0) + dense)                     # average rank among all
    counts = np.bincount(codes)
    below = (np.cumsum(counts) - counts)[codes]
    np.testing.assert_array_equal(rg[0], pair_rank - below - (counts[codes] + 1) / 2)


def test_ranks_from_counts_are_ranks_in_groups_by_counting():
    rng = np.random.default_rng(3)
    codes, x = rng.integers(0, 5, 2000), np.round(rng.standard_normal(2000) * 2)
    pairs, index, count = np.unique(np.column_stack([codes, x]), axis=0, return_inverse=True,
                                    return_counts=True)      # sorted by code, then value
    got = ranks_from_counts(pairs[:, 0].astype(int), count.astype(float),
                            np.bincount(codes).astype(float))
    _, within = ranks_in_groups(x[None, :], Groups(codes))
    np.testing.assert_array_equal(got[index.ravel()], within[0])
