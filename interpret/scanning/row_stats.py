"""Whether each unit is constant, and how often it is saturated: one compiled pass over a block.

np.ptp and common.saturated_share make a float64 copy of each row and several passes; this is
one pass over the float32 rows with the same float64 comparisons (numba, no fastmath), so the
counts are the same. memory.py imports it (and numba) when model.jit.enabled().
"""
import numba
import numpy as np

from interpret.scanning.common import SATURATED, SIGMOID_ARRAYS


def const_and_saturated(a: np.ndarray, array: str) -> tuple[np.ndarray, np.ndarray]:
    """(const (B,) bool, saturated (B,) float64) of the shown values a (B, N): np.ptp(a) == 0,
    and common.saturated_share(a, array)."""
    const = np.empty(len(a), np.bool_)
    count = np.empty(len(a), np.int64)
    _stats(np.ascontiguousarray(a), array in SIGMOID_ARRAYS, 1.0 - SATURATED, SATURATED,
           const, count)
    return const, count / a.shape[1]


@numba.njit(cache=True, nogil=True)
def _stats(a, sigmoid, low, high, const, count):
    """const[b]: row b has one value; count[b]: its saturated values, compared in float64
    as common.saturated: min(v, 1 - v) < low (sigmoid gates), else |v| > high."""
    for b in range(a.shape[0]):
        lo, hi, k = a[b, 0], a[b, 0], 0
        for t in range(a.shape[1]):
            x = a[b, t]
            lo, hi = min(lo, x), max(hi, x)
            v = np.float64(x)
            if sigmoid:
                k += min(v, 1.0 - v) < low
            else:
                k += abs(v) > high
        const[b], count[b] = lo == hi, k
