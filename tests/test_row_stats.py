"""row_stats: the compiled const and saturated share equal np.ptp and common.saturated_share."""

import numpy as np
import pytest

from interpret.model import jit
from interpret.scanning.common import saturated_share

pytest.importorskip("numba")
from interpret.scanning.row_stats import const_and_saturated  # noqa: E402  (needs numba)

pytestmark = pytest.mark.skipif(not jit.enabled(), reason="INTERPRET_JIT=0")


@pytest.mark.parametrize("array", ["h", "c", "g", "f", "i"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_same_as_ptp_and_saturated_share(array, dtype):
    rng = np.random.default_rng(0)
    a = np.tanh(rng.standard_normal((6, 3000)) * 3)
    if array in ("f", "i"):
        a = (a + 1) / 2
    a[1] = 0.25                                               # constant
    a[2, ::2], a[2, 1::2] = 0.99, np.nextafter(0.99, 1.0)     # at the thresholds
    a[3, ::2], a[3, 1::2] = 0.01, np.nextafter(0.01, 0.0)
    a[4] = -0.995
    a = a.astype(dtype)
    const, sat = const_and_saturated(a, array)
    np.testing.assert_array_equal(const, np.ptp(a, axis=1) == 0)
    np.testing.assert_array_equal(sat, saturated_share(a, array))
    one, one_sat = const_and_saturated(a[:, :1], array)       # N = 1: constant
    assert one.all() and np.array_equal(one_sat, saturated_share(a[:, :1], array))
