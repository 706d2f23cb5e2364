"""Compiled passes over a block of units (numba): its columns gathered from the recording, and
whether each unit is constant and how often it is saturated.

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


def gather_columns(acts: np.ndarray, j0: int, out: np.ndarray) -> np.ndarray:
    """out (B, N) = acts[:, j0:j0 + B].T, converted to out's dtype, from a float32 or float64
    (N, U) array (a memmap too, whose pages stay mapped: the scan's direct reads, memory.py)."""
    if (acts.dtype not in (np.float32, np.float64) or acts.ndim != 2 or out.ndim != 2
            or not 0 <= j0 <= acts.shape[1] - len(out) or out.shape[1] != acts.shape[0]):
        raise ValueError(f"cannot gather units {j0}..{j0 + len(out) - 1} of a {acts.dtype} array "
                         f"of shape {acts.shape} into one of shape {out.shape}")
    _gather(acts, j0, out)
    return out


GATHER_ROWS = 64    # rows a tile: their cache lines stay in L1 while each unit's run is written


@numba.njit(cache=True, nogil=True)
def _gather(acts, j0, out):
    """Tile by tile of rows, unit by unit: one unit's values go out as a run, and the tile's
    lines, loaded for the first unit, serve the rest (unit by unit over every row instead,
    B output rows 4 MB apart share their cache sets: 3.5 against 2.6 ms a unit for 8 units,
    6.6-8.4 against 2.4 for 16)."""
    b, n = out.shape[0], acts.shape[0]
    for t0 in range(0, n, GATHER_ROWS):
        t1 = min(n, t0 + GATHER_ROWS)
        for k in range(b):
            for t in range(t0, t1):
                out[k, t] = acts[t, j0 + k]
