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
    group of features: 2 binary, 3 others (SimpleNamespace as memory._Group: fb, weight, fs,
    bg, zs, z_ix, and rows, every row in float64)."""
    a = np.tanh(np.cumsum(rng.standard_normal((b, n)), axis=1) / 10).astype(np.float32)
    a[-1] = 0.5                                               # a constant unit
    rc, rg = ranks_in_groups(a, Groups(np.arange(n) % 7), np.float32)
    fb, weight = rng.integers(0, 2, (2, n)).astype(np.uint8), rng.random(n)
    fs = rng.standard_normal((3, n))
    group = SimpleNamespace(fb=fb, weight=weight, fs=fs, bg=fs * rng.random(n),
                            zs=rng.standard_normal((3, n)), z_ix=[2, 3, 4])
    group.rows = (np.concatenate([fb.astype(float), fs]),                 # every row, as _Group.rows
                  np.concatenate([fb * weight, group.bg]))
    return a, rc, rg, group


@pytest.mark.parametrize("b", [1, 4, 6, 9])
@pytest.mark.parametrize("n", [1, 3, TILE, 2 * TILE + 37])
def test_same_as_the_numpy_products(b, n):
    rng = np.random.default_rng(b * 1000 + n)
    a, rc, rg, group = block(rng, b, n)
    assert rc.dtype == rg.dtype == np.float32
    fast = block_dots(a, rc, rg, a.mean(axis=1, dtype=np.float64), group.fb, group.weight,
                      group.fs, group.bg, group.zs)
    plain = _products(a, rc.astype(float), rg.astype(float), group)
    x = a - a.mean(axis=1, dtype=np.float64, keepdims=True)
    fs, bg = group.rows
    scales = [np.abs(rc) @ np.abs(fs.T), np.abs(rg) @ np.abs(bg.T),
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
                                             group.fb, group.weight, group.fs[:0], group.bg[:0], None)
    assert raw.shape == beyond.shape == (5, 2) and pearson.shape == (5, 0)
    np.testing.assert_array_equal(raw, rc.astype(float) @ group.fb.T.astype(float))
    np.testing.assert_allclose(beyond, rg.astype(float) @ (group.fb * group.weight).T, rtol=1e-12)


def test_without_binary_features():
    rng = np.random.default_rng(4)
    a, rc, rg, group = block(rng, 6, 2 * TILE + 5)
    raw, beyond, pearson, norms = block_dots(a, rc, rg, a.mean(axis=1, dtype=np.float64),
                                             group.fb[:0], group.weight, group.fs, group.bg, group.zs)
    assert raw.shape == beyond.shape == pearson.shape == (6, 3)
    fs, bg = group.rows
    np.testing.assert_allclose(raw, rc.astype(float) @ fs[2:].T, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(beyond, rg.astype(float) @ bg[2:].T, rtol=1e-12, atol=1e-9)


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
