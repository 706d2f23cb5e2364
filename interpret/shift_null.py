"""The circular-shift null, fast: dot(x, np.roll(f, k)) for every unit column x and shift k.

Two ways, chosen per feature:

- **Differences** (most features): a feature that changes value at few positions (a quote
  indicator, a bracket depth, a line length) or changes slope at few positions (position in line)
  has a sparse first or second difference. Summation by parts turns the rolled dot product into a
  sparse combination of the column's prefix sums P (first order) and prefix sums of prefix sums
  Q (second order), so it costs nnz(difference) per shift instead of N. Plain form, for one
  shift k and y = np.roll(x, -k) (so dot(x, np.roll(f, k)) == dot(y, f)), D[m] = f[m] - f[m-1],
  E[l] = D[l] - D[l-1], T1[m] = sum(y[m:]), T2[l] = sum(T1[l:]):

      dot(y, f) = f[0] T1[0] + sum_{m>=1} D[m] T1[m]                    (first order)
                = f[0] T1[0] + D[1] T2[1] + sum_{l>=2} E[l] T2[l]       (second order)

  and T1, T2 are differences of P and Q taken on x written twice (the shift wraps around).
- **Rolled matrix product** (dense features): the unit block (N, B) float32 times rolled copies
  of the feature, built in row chunks.
"""
import numpy as np
from scipy import sparse

MAX_DIFF_FRACTION = 1 / 16   # a difference with fewer non-zeros than this x N takes the sparse way
MAX_DIFF_NNZ = 1 << 25       # ... if its sparse shift matrices stay small (~400 MB)


def diff_matrices(v: np.ndarray, shifts: np.ndarray, max_fraction=None, centre=0.0, scale=1.0):
    """Sparse AP (S, N+1), AQ (S, N+2) or None, with dots (S, B) = AP @ P + AQ @ Q; else None.

    The dots are with f = (v - centre) / scale; the differences are taken on v, whose exact
    zeros (integer-valued features) standardising would blur. P[t] = sum(x[:t]) (N+1 rows),
    Q[t] = sum(P[:t]) (N+2 rows); AQ is None for first order.
    """
    m = _diff_matrices(v, shifts, max_fraction)
    if m is None:
        return None
    ap, aq = m
    # dot(y, (v - c) / s) = (dot(y, v) - c sum(x)) / s, and sum(x) = P[N] for every shift
    ap = (ap - sparse.csr_array((np.full(len(shifts), centre), (np.arange(len(shifts)),
                                 np.full(len(shifts), len(v)))), shape=ap.shape)) / scale
    return ap.tocsr(), (None if aq is None else aq / scale)


def _diff_matrices(f, shifts, max_fraction):
    """diff_matrices for f itself."""
    n = len(f)
    frac = MAX_DIFF_FRACTION if max_fraction is None else max_fraction
    d = np.diff(f)                                     # d[m-1] = D[m], m = 1..N-1
    e = np.diff(d)                                     # e[l-2] = E[l], l = 2..N-1
    nz1, nz2 = np.flatnonzero(d) + 1, np.flatnonzero(e) + 2
    order = 1 if len(nz1) <= len(nz2) + 1 else 2
    nnz = len(nz1) if order == 1 else len(nz2) + 1
    if nnz > frac * n or (nnz + 2) * len(shifts) > MAX_DIFF_NNZ:
        return None
    if order == 1:
        # T1[m] = P2[N+k] - P2[m+k]; sum of all coefficients on P2[N+k] is f[0] + sum D = f[N-1]
        p_at = np.concatenate(([n, 0], nz1))
        p_coef = np.concatenate(([f[-1], -f[0]], -d[nz1 - 1]))
        return _assemble(n, shifts, p_at, p_coef, None, None)
    ls = np.concatenate(([1], nz2))                    # E'[1] = D[1], E'[l] = E[l]
    el = np.concatenate(([d[0]], e[nz2 - 2]))
    # T2[l] = (N - l) P2[N+k] - Q2[N+k] + Q2[l+k]
    p_at = np.array([n, 0])
    p_coef = np.array([f[0] + np.sum(el * (n - ls)), -f[0]])
    q_at = np.concatenate(([n], ls))
    q_coef = np.concatenate(([-np.sum(el)], el))
    return _assemble(n, shifts, p_at, p_coef, q_at, q_coef)


def _assemble(n, shifts, p_at, p_coef, q_at, q_coef):
    """Place the terms at t = at + k on x written twice, then fold t > N back onto P, Q.

    P2[t] = P[t - N] + P[N] for t > N;  Q2[t] = Q[t - N] + Q[N+1] + (t - N - 1) P[N] for t > N+1.
    """
    S = len(shifts)
    row = np.repeat(np.arange(S), len(p_at))
    t = (p_at[None, :] + shifts[:, None]).ravel()
    c = np.broadcast_to(p_coef, (S, len(p_at))).ravel()
    wrap = t > n
    rows_p = [row, row[wrap]]
    cols_p = [np.where(wrap, t - n, t), np.full(wrap.sum(), n)]
    vals_p = [c, c[wrap]]
    aq = None
    if q_at is not None:
        row = np.repeat(np.arange(S), len(q_at))
        t = (q_at[None, :] + shifts[:, None]).ravel()
        c = np.broadcast_to(q_coef, (S, len(q_at))).ravel()
        wrap = t > n + 1
        tw = t[wrap]
        aq = sparse.csr_array(
            (np.concatenate([c, c[wrap]]),
             (np.concatenate([row, row[wrap]]), np.concatenate([np.where(wrap, t - n, t),
                                                                np.full(wrap.sum(), n + 1)]))),
            shape=(S, n + 2))
        rows_p.append(row[wrap])
        cols_p.append(np.full(wrap.sum(), n))
        vals_p.append(c[wrap] * (tw - n - 1))
    ap = sparse.csr_array((np.concatenate(vals_p), (np.concatenate(rows_p), np.concatenate(cols_p))),
                          shape=(S, n + 1))
    return ap, aq


class Columns:
    """A transformed unit block x (N, B) float64, with its float32 copy / prefix sums on demand."""

    def __init__(self, x: np.ndarray):
        self.x = x
        self._x32 = self._p = self._q = None

    def shifted_dots(self, diff, f2, shifts: np.ndarray, chunk_rows: int) -> np.ndarray:
        """(B, S): dot of each column with np.roll(f, k) for each shift k."""
        n = self.x.shape[0]
        if diff is not None:
            ap, aq = diff
            if self._p is None:
                self._p = np.zeros((n + 1, self.x.shape[1]))          # (N+1, B)
                np.cumsum(self.x, axis=0, out=self._p[1:])
            out = ap @ self._p
            if aq is not None:
                if self._q is None:
                    self._q = np.zeros((n + 2, self.x.shape[1]))      # (N+2, B)
                    np.cumsum(self._p, axis=0, out=self._q[1:])
                out += aq @ self._q
            return out.T
        if self._x32 is None:
            self._x32 = self.x.astype(np.float32)
        return rolled_dots(self._x32, f2, shifts, chunk_rows)


def rolled_dots(cols: np.ndarray, f2: np.ndarray, shifts: np.ndarray,
                chunk_rows: int) -> np.ndarray:
    """(B, S): dot of each column of cols (N, B) float32 with np.roll(f, k) for each shift k."""
    n = cols.shape[0]
    out = np.zeros((cols.shape[1], len(shifts)), dtype=np.float64)
    rolled = np.empty((len(shifts), min(chunk_rows, n)), dtype=np.float32)   # (S, chunk)
    for a in range(0, n, chunk_rows):
        b = min(a + chunk_rows, n)
        r = rolled[:, : b - a]
        for j, k in enumerate(shifts):
            r[j] = f2[a - k + n: b - k + n]           # np.roll(f, k)[a:b]
        out += cols[a:b].T @ r.T                      # (B, chunk) @ (chunk, S)
    return out


def sort_order(col: np.ndarray) -> np.ndarray:
    """np.argsort(col) for a float64 column (ties in any order), faster when col is float32-exact.

    Float32 values map to unsigned ints with the same order (flip all bits of negatives, the sign
    bit of the rest); two stable 16-bit radix passes (numpy sorts 16-bit keys by radix) sort them.
    """
    c32 = col.astype(np.float32)
    if not np.array_equal(c32, col):
        return np.argsort(col)
    u = c32.view(np.uint32)
    key = np.where(u >> 31, ~u, u | np.uint32(0x80000000))
    low = np.argsort((key & 0xFFFF).astype(np.uint16), kind="stable")
    high = np.argsort((key[low] >> 16).astype(np.uint16), kind="stable")
    return low[high]
