"""ranks: average ranks by radix sort against scipy's rankdata."""

import numpy as np
import pytest
from scipy.stats import rankdata

from interpret.ranks import centred_ranks, sort_order


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
        perms, keys = sort_order(col)
        order = perms[0] if len(perms) == 1 else perms[0][perms[1]]
        assert np.all(np.diff(col[order].astype(np.float64)) >= 0)
        np.testing.assert_array_equal(keys[1:] == keys[:-1], col[order][1:] == col[order][:-1])
