"""The circular-shift null, fast: dot(x, np.roll(f, k)) for every unit x, feature f and shift k.

rolled_dots is the plain form (the reference); grid_dots gets every shift of an evenly spaced
grid from one FFT per unit and one matrix product per frequency (feature_spectra: the features'
transforms, made once per scan). The derivation is in docs/statistics.md, "The fast shift null".
"""
from dataclasses import dataclass

import numpy as np
from scipy import fft as sfft

MIN_SHIFTS = 10


@dataclass(frozen=True)
class ShiftGrid:
    """The null's shifts k0 + step * m, m = 0..m_shifts-1, on a circle of n characters."""
    n: int
    k0: int
    step: int
    m_shifts: int

    @property
    def shifts(self) -> np.ndarray:
        return self.k0 + self.step * np.arange(self.m_shifts)

    @property
    def rows(self) -> int:
        """Q: rows of `step` characters that hold the n characters."""
        return -(-self.n // self.step)

    @property
    def fft_len(self) -> int:
        """P: a fast DFT length with room for every lag without wrap-around."""
        return sfft.next_fast_len(self.rows + self.m_shifts - 1, real=True)


def make_grid(n: int, n_shifts: int = 200, seed: int = 0, min_shift: int | None = None) -> ShiftGrid:
    """n_shifts shifts in [min_shift, n - min_shift], a prime number of characters apart, from a
    seeded random start; every shift in that range if it holds fewer than 3 * n_shifts.

    The step is an odd prime so that no periodic pattern shorter than it aliases with the grid:
    with an even step, a unit that flips sign at every character (recurrent units do) meets the
    feature at the same phase at every shift, and its null collapses to one value. With a prime
    step, the shifts visit every residue modulo any period up to n_shifts equally often.
    """
    if min_shift is None:
        min_shift = max(1, min(n // 20, 2000))
    if n_shifts < MIN_SHIFTS:
        raise ValueError(f"n_shifts={n_shifts} is too few to estimate the null; use at least "
                         f"{MIN_SHIFTS} (default 200)")
    span = n - 2 * min_shift + 1                       # allowed shifts min_shift .. n - min_shift
    if min_shift < 1 or span < MIN_SHIFTS:
        raise ValueError(f"min_shift={min_shift} leaves no shifts for {n} characters (the null "
                         f"needs {MIN_SHIFTS}); use a value from 1 to {(n - MIN_SHIFTS + 1) // 2}")
    if span < 3 * n_shifts:
        return ShiftGrid(n, min_shift, 1, span)        # every allowed shift
    step = _odd_prime_at_most(span // n_shifts)
    slack = span - (n_shifts - 1) * step               # room for the start: k0 .. k0 + (m-1) step
    k0 = min_shift + int(np.random.default_rng(seed).integers(slack))
    return ShiftGrid(n, k0, step, n_shifts)


def _odd_prime_at_most(x: int) -> int:
    """The largest odd prime <= x (x >= 3)."""
    for p in range(x if x % 2 else x - 1, 2, -2):
        if all(p % d for d in range(3, int(p ** 0.5) + 1, 2)):
            return p
    raise ValueError(f"no odd prime up to {x}")


def feature_spectra(grid: ShiftGrid, fs: np.ndarray, dtype=np.complex64, map=map) -> np.ndarray:
    """(W, F, L) conj(DFT along q) of each feature's H (see the module doc); fs: F rows of N
    values (an (F, N) array, or a list of rows of any real dtype). A feature's transform is
    written in runs of L (laid out (W, L, F), each value went to its own cache line: 54 against
    9 ms for the transform itself, at 1M characters).

    complex64 (the default) makes grid_dots work in float32: twice as fast, and its dot products
    are within about 1e-6 x |x| |f| of the exact ones; complex128 gives float64 rounding.
    `map` may be a thread pool's, to transform several features at once.
    """
    n, step, m, p = grid.n, grid.step, grid.m_shifts, grid.fft_len
    idx = (np.arange(p * step) - (m - 1) * step - grid.k0) % n     # (P L,) h[u] = f[idx[u]]
    real = np.float32 if dtype == np.complex64 else np.float64
    out = np.empty((p // 2 + 1, len(fs), step), dtype=dtype)

    def one(i):
        out[:, i] = np.conj(sfft.rfft(fs[i].astype(real)[idx].reshape(p, step), axis=0))  # (W, L)

    list(map(one, range(len(fs))))
    return out


CHUNK = 256        # columns of the rows transformed at a time: their transforms stay in cache


def grid_dots(x: np.ndarray, spectra: np.ndarray, grid: ShiftGrid, chunk: int = CHUNK) -> np.ndarray:
    """(B, F, M): dot of each row of x (B, N) with np.roll(f, k) for each feature and grid shift.

    x is laid out as Q rows of `step` characters, zero-padded to P rows, and transformed along
    the rows `chunk` columns at a time; each chunk's product with the spectra is summed over
    its columns (float32 for complex64 spectra) and added to the whole's in complex128. A
    whole-width pass instead kept (B, P, L) padded rows and their (B, W, L) transform: 16 MB
    a unit at 1M characters, against two chunks of 1.6 MB for eight units, and it was slower
    (10.3-10.8 against 8.6-9.0 ms a unit)."""
    b, n = x.shape
    step, p, m, q = grid.step, grid.fft_len, grid.m_shifts, grid.rows
    real = np.float32 if spectra.dtype == np.complex64 else np.float64
    full = (q - 1) * step                                          # the whole rows; then the last
    whole = x[:, :full].reshape(b, q - 1, step)
    scratch = np.zeros((b, p, min(chunk, step)), real)             # rows q.. stay 0: the padding
    prod = np.zeros((p // 2 + 1, b, spectra.shape[1]), np.complex128)
    for c0 in range(0, step, chunk):
        c1 = min(step, c0 + chunk)
        rows = scratch[:, :, :c1 - c0]
        rows[:, :q - 1] = whole[:, :, c0:c1]
        last = x[:, full + c0:min(n, full + c1)]                    # the last row, where it reaches
        rows[:, q - 1, :last.shape[1]] = last
        rows[:, q - 1, last.shape[1]:] = 0.0
        xw = sfft.rfft(rows, axis=1)                                # (B, W, c)
        prod += np.matmul(xw.transpose(1, 0, 2), spectra[:, :, c0:c1].transpose(0, 2, 1))  # (W, B, F)
    lags = sfft.irfft(prod, n=p, axis=0)                            # (P, B, F): lag i = -j mod P
    j = m - 1 - np.arange(m)
    return lags[(-j) % p].transpose(1, 2, 0)                        # (B, F, M)


def rolled_dots(cols: np.ndarray, f: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """(B, S): dot of each column of cols (N, B) with np.roll(f, k) for each shift k, one by one."""
    return np.stack([cols.T @ np.roll(f, k) for k in shifts], axis=1)
