"""beyond_char for the streaming scan: exact ranks of residuals by counting.

A unit's residual at a character is v - mean_c, v the shown value of its float16 value (tanh for
kind c: scan_stream.shown_table) and c the character, so the residuals take one value per
(character, float16 value) pair. A table counts the characters of each pair (one cell per value
from the character's minimum to its maximum), the cells' residuals are ranked at float32
precision, as scan.py ranks them, into average ranks, and a second pass sums those ranks against
every feature (0/1 values for AUROC, the feature's ranks for rho). Units are taken in groups
whose tables fit the budget.
"""
import numpy as np

from interpret.scan_stream import KEYS, _chunks, _read, count_dtype, float16_keys

CELL_BYTES = 12


def _residual_ranks(cnt, value, mean, absmax):
    """(W,) centred average ranks of the residuals value - mean of W table cells (one character
    and value each) holding cnt characters, ranked at float32 precision like scan.py."""
    res = value - mean                                              # (W,) float64
    res[np.abs(res) <= 1e-12 * absmax] = 0.0
    res = res.astype(np.float32) + np.float32(0.0)
    lut = np.zeros(len(res))
    nz = np.flatnonzero(cnt)
    order = nz[np.argsort(res[nz], kind="stable")]
    vals = res[order]
    run = np.cumsum(np.r_[True, vals[1:] != vals[:-1]]) - 1         # tie run of each cell
    run_count = np.bincount(run, weights=cnt[order].astype(np.float64))
    below = np.cumsum(run_count) - run_count
    lut[order] = (below + (run_count + 1) / 2 - (run_count.sum() + 1) / 2)[run]
    return lut


def _ranges(hist, cmin, cmax):
    """Per unit and character, the range of value indices (among the unit's used values) its
    characters take: lo (U, V) and width (U, V), from the per-character minima and maxima."""
    kidx = np.cumsum(hist > 0, axis=1, dtype=np.int32) - 1          # (U, K) key -> value index
    rows = np.arange(len(hist))[:, None]
    seen = np.isfinite(cmin.T)                                      # (U, V) false: never occurs
    lo = kidx[rows, float16_keys(np.where(seen, cmin.T, 0).astype(np.float16))]
    hi = kidx[rows, float16_keys(np.where(seen, cmax.T, 0).astype(np.float16))]
    return kidx, lo, np.where(seen, hi - lo + 1, 0)


def _unit_groups(cells, budget):
    """Contiguous unit ranges whose residual tables (cells (U,)) fit in budget (a 4-byte count
    and an 8-byte rank a cell)."""
    groups, start, size = [], 0, 0
    for j, c in enumerate(cells):
        if j > start and (size + c) * CELL_BYTES > budget:
            groups.append((start, j))
            start, size = j, 0
        size += c
    groups.append((start, len(cells)))
    return groups


def beyond_rank_dots(acts, feats, hist, csum, cmin, cmax, counts, absmax, shown, codes, rows,
                     budget, tick=lambda done: None):
    """Passes 3 and 4 per unit group: (U, F) sums of residual centred ranks x each non-constant
    feature's prepared values (_Feature.f), and (U,) the norms of the residual ranks (1 where
    they are all 0); tick(fraction done) after each chunk."""
    n, u = acts.shape
    out, sq = np.zeros((u, len(feats))), np.zeros(u)
    scored = [i for i, f in enumerate(feats) if f.f is not None]
    if not scored:
        return out, np.ones(u)
    kidx, lo, width = _ranges(hist, cmin, cmax)
    groups = _unit_groups(width.sum(axis=1), budget)
    for k, (g0, g1) in enumerate(groups):
        ends = np.cumsum(width[g0:g1].ravel()).reshape(g1 - g0, -1)   # (G, V) cells per group
        base = ends - width[g0:g1] - lo[g0:g1]                         # cell = base[j, c] + index
        table = np.zeros(ends[-1, -1], dtype=count_dtype(n))
        one = table.dtype.type(1)  # of the table's type: ufunc.at's fast path
        for c0, c1 in _chunks(n, rows):
            np.add.at(table, _cell_ids(acts, c0, c1, g0, g1, kidx, base, codes).ravel(), one)
            tick((2 * k + c1 / n) / (2 * len(groups)))
        lut = np.empty(len(table))
        for j in range(g1 - g0):
            w = width[g0 + j]
            c_of = np.repeat(np.arange(len(w)), w)                        # (W,) character
            k_of = np.arange(w.sum()) - np.repeat(np.cumsum(w) - w - lo[g0 + j], w)
            cells = slice(ends[j, -1] - w.sum(), ends[j, -1])
            lut[cells] = _residual_ranks(table[cells], shown[hist[g0 + j] > 0][k_of],
                                         (csum[:, g0 + j] / counts)[c_of], absmax[g0 + j])
            sq[g0 + j] = table[cells].astype(np.float64) @ (lut[cells] * lut[cells])
        del table
        for c0, c1 in _chunks(n, rows):
            r = lut[_cell_ids(acts, c0, c1, g0, g1, kidx, base, codes)]   # (G, L)
            fs = np.stack([np.asarray(feats[i].f[c0:c1]) for i in scored], axis=1)   # (L, F)
            out[g0:g1, scored] += r @ fs
            tick((2 * k + 1 + c1 / n) / (2 * len(groups)))
    norm = np.sqrt(sq)
    return out, np.where(norm == 0, 1.0, norm)


def _cell_ids(acts, c0, c1, g0, g1, kidx, base, codes):
    """(G, L) residual table cell of each character and unit of the group."""
    g = np.arange(g1 - g0)[:, None]
    keys = float16_keys(_read(acts, c0, c1, g0, g1)).astype(np.int64)   # (G, L)
    ki = kidx[g0:g1].ravel()[keys + g * KEYS]                            # (G, L) value index
    return base.ravel()[codes[c0:c1][None, :] + g * base.shape[1]] + ki
