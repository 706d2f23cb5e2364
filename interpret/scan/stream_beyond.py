"""beyond_char for the streaming scan: each unit ranked within each character, by counting.

A float16 unit takes at most 65536 keys, so its within-character ranks follow from counting
(character, key) pairs in tables that fit the budget (pass 3); pass 4 sums those ranks against
every feature. Details: docs/statistics.md, "The streaming engine".
"""
import numpy as np

from interpret.scan.ranks import ranks_from_counts
from interpret.scan.chunks import KEYS, count_dtype, float16_keys, read_rows, row_chunks

CELL_BYTES = 12


def _cell_ranks(cnt, width, lo, shown_used):
    """(W,) centred average ranks within their character of one unit's W table cells, holding
    cnt (W,) characters each: character c has width[c] cells, for the unit's used values lo[c],
    lo[c] + 1, ... (index into shown_used, their shown values in key order). Cells of one
    character and one shown value tie; empty cells (never looked up) get 0."""
    nz = np.flatnonzero(cnt)
    ends = np.cumsum(width)
    c_of = np.searchsorted(ends, nz, side="right")                 # (W',) character of each cell
    shown_of = shown_used[nz - (ends - width - lo)[c_of]]           # (W',) its shown value
    new = np.r_[True, (c_of[1:] != c_of[:-1]) | (shown_of[1:] != shown_of[:-1])]
    tie = np.cumsum(new) - 1                                        # (W',) tie run of each cell
    per_tie = np.bincount(tie, weights=cnt[nz].astype(np.float64))
    counts = np.bincount(c_of, cnt[nz].astype(np.float64), len(width))   # (V,) n_c
    out = np.zeros(len(cnt))
    out[nz] = ranks_from_counts(c_of[new], per_tie, counts)[tie]
    return out


def _ranges(hist, cmin, cmax):
    """Per unit and character, the range of value indices (among the unit's used values) its
    characters take: lo (U, V) and width (U, V), from the per-character minima and maxima."""
    kidx = np.cumsum(hist > 0, axis=1, dtype=np.int32) - 1          # (U, K) key -> value index
    rows = np.arange(len(hist))[:, None]
    seen = np.isfinite(cmin.T)                                      # (U, V) false: never occurs
    lo = kidx[rows, float16_keys(np.where(seen, cmin.T, 0).astype(np.float16))]
    hi = kidx[rows, float16_keys(np.where(seen, cmax.T, 0).astype(np.float16))]
    return kidx, lo, np.where(seen, hi - lo + 1, 0)


def unit_groups(cells, budget):
    """Contiguous unit ranges whose rank tables (cells (U,)) fit in budget (a 4-byte count and
    an 8-byte rank a cell)."""
    groups, start, size = [], 0, 0
    for j, c in enumerate(cells):
        if j > start and (size + c) * CELL_BYTES > budget:
            groups.append((start, j))
            start, size = j, 0
        size += c
    groups.append((start, len(cells)))
    return groups


def beyond_rank_dots(acts, feats, hist, cmin, cmax, counts, shown, codes, rows, budget,
                     tick=lambda done: None):
    """Passes 3 and 4 per unit group: (U, F) sums over characters of each unit's within-character
    centred ranks rg against each feature whose beyond_char is defined: rg_t f_t / n_c(t)
    (binary), rg_t g_t (the rest); and (U,) the norms |rg| (1 where rg is all 0: the unit is
    constant within every character); tick(fraction done) after each chunk."""
    n, u = acts.shape
    out, sq = np.zeros((u, len(feats))), np.zeros(u)
    binary = [i for i, f in enumerate(feats) if f.f is not None and f.binary and f.g_denom > 0]
    ranked = [i for i, f in enumerate(feats) if f.f is not None and f.g is not None]
    if not binary and not ranked:
        return out, np.ones(u)
    inv_count = 1.0 / counts                                        # (V,)
    kidx, lo, width = _ranges(hist, cmin, cmax)
    groups = unit_groups(width.sum(axis=1), budget)
    for k, (g0, g1) in enumerate(groups):
        ends = np.cumsum(width[g0:g1].ravel()).reshape(g1 - g0, -1)   # (G, V) cells per group
        base = ends - width[g0:g1] - lo[g0:g1]                         # cell = base[j, c] + index
        table = np.zeros(ends[-1, -1], dtype=count_dtype(n))
        one = table.dtype.type(1)  # of the table's type: ufunc.at's fast path
        for c0, c1 in row_chunks(n, rows):
            np.add.at(table, _cell_ids(acts, c0, c1, g0, g1, kidx, base, codes).ravel(), one)
            tick((2 * k + c1 / n) / (2 * len(groups)))
        lut = np.empty(len(table))
        for j in range(g1 - g0):
            cells = slice(ends[j, -1] - width[g0 + j].sum(), ends[j, -1])
            lut[cells] = _cell_ranks(table[cells], width[g0 + j], lo[g0 + j],
                                     shown[hist[g0 + j] > 0])
            sq[g0 + j] = table[cells].astype(np.float64) @ (lut[cells] * lut[cells])
        del table
        for c0, c1 in row_chunks(n, rows):
            r = lut[_cell_ids(acts, c0, c1, g0, g1, kidx, base, codes)]   # (G, L)
            if ranked:
                gs = np.stack([np.asarray(feats[i].g[c0:c1]) for i in ranked], axis=1)   # (L, F)
                out[g0:g1, ranked] += r @ gs
            if binary:
                r *= inv_count[codes[c0:c1]]                              # rg_t / n_c(t)
                fs = np.stack([np.asarray(feats[i].f[c0:c1]) for i in binary], axis=1)
                out[g0:g1, binary] += r @ fs
            tick((2 * k + 1 + c1 / n) / (2 * len(groups)))
    norm = np.sqrt(sq)
    return out, np.where(norm == 0, 1.0, norm)


def _cell_ids(acts, c0, c1, g0, g1, kidx, base, codes):
    """(G, L) rank table cell of each character and unit of the group."""
    g = np.arange(g1 - g0)[:, None]
    keys = float16_keys(read_rows(acts, c0, c1, g0, g1)).astype(np.int64)   # (G, L)
    ki = kidx[g0:g1].ravel()[keys + g * KEYS]                            # (G, L) value index
    return base.ravel()[codes[c0:c1][None, :] + g * base.shape[1]] + ki
