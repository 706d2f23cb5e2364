"""block_dots: the compiled products of a block equal memory.py's numpy form (reassociated
float64 sums: within 1e-12 of the scale of the terms; exact where every partial sum is), and a
scan with them equals the plain scan (INTERPRET_JIT=0)."""

from types import SimpleNamespace

import numpy as np
import pytest

from interpret.model import jit
from interpret.scanning.common import FeatureValues
from interpret.scanning.memory import _products, scan_in_memory
from interpret.scanning.ranks import Groups, ranks_in_groups

pytest.importorskip("numba")
from interpret.scanning.block_dots import TILE, block_dots  # noqa: E402  (needs numba)

pytestmark = pytest.mark.skipif(not jit.enabled(), reason="INTERPRET_JIT=0")


def block(rng, b, n):
    """Float32 values (B, N), their float32 centred ranks over all and within 7 codes, and a
    group of features: 2 binary, 3 others (SimpleNamespace with fs, bg, zs, z_ix)."""
    a = np.tanh(np.cumsum(rng.standard_normal((b, n)), axis=1) / 10).astype(np.float32)
    a[-1] = 0.5                                               # a constant unit
    rc, rg = ranks_in_groups(a, Groups(np.arange(n) % 7), np.float32)
    fs = np.concatenate([rng.integers(0, 2, (2, n)), rng.standard_normal((3, n))]).astype(float)
    group = SimpleNamespace(fs=fs, bg=fs * rng.random(n), zs=rng.standard_normal((3, n)),
                            z_ix=[2, 3, 4])
    return a, rc, rg, group


@pytest.mark.parametrize("b", [1, 4, 6, 9])
@pytest.mark.parametrize("n", [1, 3, TILE, 2 * TILE + 37])
def test_same_as_the_numpy_products(b, n):
    rng = np.random.default_rng(b * 1000 + n)
    a, rc, rg, group = block(rng, b, n)
    assert rc.dtype == rg.dtype == np.float32
    fast = block_dots(a, rc, rg, a.mean(axis=1, dtype=np.float64), group.fs, group.bg, group.zs)
    plain = _products(a, rc.astype(float), rg.astype(float), group)
    x = a - a.mean(axis=1, dtype=np.float64, keepdims=True)
    scales = [np.abs(rc) @ np.abs(group.fs.T), np.abs(rg) @ np.abs(group.bg.T),
              np.abs(x) @ np.abs(group.zs.T), plain[3]]
    for got, want, scale in zip(fast, plain, scales):
        assert got.shape == want.shape
        np.testing.assert_array_less(np.abs(got - want), 1e-12 * scale + 1e-300)
    np.testing.assert_array_equal(fast[0][:, :2], plain[0][:, :2])   # half-integers: exact
    np.testing.assert_array_equal(fast[3][:, :2], plain[3][:, :2])   # below 2^53: exact


def test_without_non_binary_features():
    rng = np.random.default_rng(1)
    a, rc, rg, group = block(rng, 5, 1000)
    raw, beyond, pearson, norms = block_dots(a, rc, rg, a.mean(axis=1, dtype=np.float64),
                                             group.fs[:2], group.bg[:2], None)
    assert raw.shape == beyond.shape == (5, 2) and pearson.shape == (5, 0)
    np.testing.assert_array_equal(raw, rc.astype(float) @ group.fs[:2].T)


@pytest.mark.parametrize("array", ["h", "c"])
def test_a_scan_equals_the_plain_scan(array, monkeypatch):
    """Every row of a scan with the compiled ranks and products against INTERPRET_JIT=0's: the
    same verdicts and order, the scores within 1e-9."""
    rng = np.random.default_rng(2)
    n, units = 6000, 11
    acts = np.tanh(np.cumsum(rng.standard_normal((n, units)), axis=0) / 8).astype(np.float32)
    codes = rng.integers(0, 30, n)
    inside = (np.cumsum(rng.random(n) < 0.01) % 2).astype(float)
    acts[:, 3] += 0.5 * inside.astype(np.float32)              # a unit that tracks a feature
    feats = [FeatureValues("inside", "binary", inside),
             FeatureValues("depth", "ordinal", np.cumsum(rng.integers(-1, 2, n)).astype(float)),
             FeatureValues("code", "ordinal", codes.astype(float)),
             FeatureValues("level", "continuous", np.sin(np.arange(n) / 300.0))]
    fast = scan_in_memory(acts, feats, codes, n_shifts=50, array=array, block_units=3)
    monkeypatch.setenv("INTERPRET_JIT", "0")
    plain = scan_in_memory(acts, feats, codes, n_shifts=50, array=array, block_units=3)
    assert len(fast) == len(plain)
    for f, p in zip(fast, plain):
        assert f.keys() == p.keys()
        for key, v in p.items():
            if isinstance(v, float):
                np.testing.assert_allclose(f[key], v, rtol=1e-9, atol=1e-12, err_msg=key)
            else:
                assert f[key] == v, key
