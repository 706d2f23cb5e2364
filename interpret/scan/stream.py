"""The streaming scan engine: the rows of the in-memory engine from passes over row chunks.

For float16 recordings too big for memory: a unit's values are 16-bit keys, so ranks, means and
sds come from per-unit histograms (pass 1), the raw statistics and the shift null from matrix
products of row chunks with rolled feature chunks (pass 2), beyond_char from counting (character,
key) pairs (stream_beyond.py). Memory does not grow with the text's length; temporary files go to
TMPDIR. How and why: docs/statistics.md, "The streaming engine".
"""
from __future__ import annotations

import tempfile
from functools import cache

import numpy as np

from interpret._util import atomic
from interpret.scan.ranks import Groups, ranks_from_counts
from interpret.scan.chunks import KEYS, count_dtype, float16_keys, key_values, read_rows, row_chunks
from interpret.scan.common import (METRICS, MIN_CHARS, PreparedFeature, beyond_denom, check_finite, feature_rows, prepare,
                                   saturated, shown_values)
from interpret.scan.shift_null import make_grid

BUDGET = 128 << 20
PREP = 1 << 20  # characters at a time when preparing codes and features






def shown_table(kind: str) -> np.ndarray:
    """(65536,) float64: the value each key is scored as, scan.shown_values of its float16 value
    read as float32 (as the in-memory engine reads a float16 recording): tanh in float32 for kind c. Distinct
    keys may share a value (tanh saturates); the order stays that of the keys."""
    return shown_values(key_values().astype(np.float32), kind).astype(np.float64)


def char_codes(char_ix, n: int, folder: str) -> tuple[np.ndarray, np.ndarray]:
    """char_ix (N,) as compact codes 0..V-1 (uint8, or uint16 past 256 characters) in a
    memory-mapped file in folder, and the count of each code (V,); read PREP rows at a time."""
    ix = char_ix
    if getattr(ix, "shape", None) != (n,):
        raise ValueError(f"char_ix has shape {getattr(ix, 'shape', None)} but the recording has {n} "
                         "characters; pass one character index per row")
    if ix.dtype.kind not in "iu":
        raise ValueError("char_ix must hold non-negative integer character indices")
    counts = np.zeros(0, dtype=np.int64)
    for c0, c1 in row_chunks(n, PREP):
        part = np.asarray(ix[c0:c1])
        if part.min() < 0:
            raise ValueError("char_ix must hold non-negative integer character indices")
        more = np.bincount(part)
        counts = np.pad(counts, (0, max(0, len(more) - len(counts))))
        counts[:len(more)] += more
    present = counts > 0
    v = int(present.sum())
    if v > 65535:
        raise ValueError(f"{v} distinct characters; the streaming scan takes up to 65535")
    small = np.uint8 if v <= 256 else np.uint16
    remap = (np.cumsum(present) - 1).astype(small)
    path = f"{folder}/codes.npy"
    out = atomic.new_memmap(path, small, (n,), atomic.TMP_WAY_OUT, f"the character codes in {folder}")
    for c0, c1 in row_chunks(n, PREP):
        out[c0:c1] = remap[np.asarray(ix[c0:c1])]
    out.flush()
    del out
    return np.load(path, mmap_mode="r", allow_pickle=False), counts[present].astype(np.float64)






def _pass_counts(acts, codes, v, rows, layer, kind, tick=lambda done: None):
    """Pass 1: key histogram (U, 65536), per-character minima and maxima of the float16 values
    (V, U)."""
    n, u = acts.shape
    hist = np.zeros((u, KEYS), dtype=count_dtype(n))
    one = hist.dtype.type(1)  # a Python 1 sends ufunc.at down a path ten times slower
    cmin = np.full((v, u), np.inf)
    cmax = np.full((v, u), -np.inf)
    offs = np.arange(u, dtype=np.int64) * KEYS
    for c0, c1 in row_chunks(n, rows):
        x = read_rows(acts, c0, c1)                                     # (U, L) float16
        check_finite(x, 0, layer, kind)
        keys = float16_keys(x)                                      # (U, L) uint16
        flat = (keys.astype(np.int64) + offs[:, None]).ravel()
        np.add.at(hist.ravel(), flat, one)            # not bincount: no (U, 65536) temporary
        del flat
        order = np.argsort(codes[c0:c1], kind="stable")
        cs = codes[c0:c1][order]
        starts = np.flatnonzero(np.r_[True, cs[1:] != cs[:-1]])
        at = cs[starts]
        del keys
        xs = x[:, order].astype(np.float64)                        # (U, L) grouped by character
        cmin[at] = np.minimum(cmin[at], np.minimum.reduceat(xs, starts, axis=1).T)
        cmax[at] = np.maximum(cmax[at], np.maximum.reduceat(xs, starts, axis=1).T)
        tick(c1 / n)
    return hist, cmin, cmax




def _unit_tables(hist, n, shown, kind):
    """From the histograms (U, 65536) and the shown value of each key (65536,): a table of
    centred average ranks by key (keys of equal shown value tie), and per unit the mean, sd (inf
    for a constant unit: its z-scores are 0), norm of the centred ranks, a constant flag (one
    shown value) and the share of characters saturated as shown."""
    run = np.cumsum(np.r_[True, shown[1:] != shown[:-1]]) - 1       # (K,) each key's tie run
    sat = saturated(shown, kind).astype(np.float64)                 # (K,) 1 where saturated
    u = len(hist)
    ranks = np.empty(hist.shape)
    out = dict(ranks=ranks, rc_norm=np.empty(u), mean=np.empty(u),
               sd=np.empty(u), const=np.empty(u, dtype=bool), saturated=np.empty(u))
    for j in range(u):                                              # one unit at a time: small
        counts = hist[j].astype(np.float64)
        per_run = np.bincount(run, weights=counts)
        below = np.cumsum(per_run) - per_run                        # rank = below + (c + 1) / 2
        np.take(below + (per_run + 1) / 2 - (n + 1) / 2, run, out=ranks[j])   # minus (N + 1) / 2
        r = ranks[j]
        out["const"][j] = np.count_nonzero(per_run) <= 1
        out["rc_norm"][j] = np.sqrt(counts @ (r * r)) or 1.0
        out["mean"][j] = mean = counts @ shown / n
        dev = shown - mean
        out["sd"][j] = np.inf if out["const"][j] else np.sqrt(counts @ (dev * dev) / n)
        out["saturated"][j] = counts @ sat / n
    return out


def _rolled(f, c0, c1, shifts):
    """(M, L) float32: rows np.roll(f, k)[c0:c1] for each shift k; f (N,)."""
    n, length = len(f), c1 - c0
    out = np.empty((len(shifts), length), dtype=np.float32)
    for m, k in enumerate(shifts):
        s = (c0 - int(k)) % n
        first = min(length, n - s)
        out[m, :first] = f[s:s + first]
        out[m, first:] = f[:length - first]
    return out


def _to_disk(arr, folder, name):
    """arr as a read-only memmap in folder (the pages are the file's, not the process's)."""
    path = f"{folder}/{name}.npy"
    out = atomic.new_memmap(path, np.float64, arr.shape, atomic.TMP_WAY_OUT, f"a feature in {folder}")
    out[:] = arr
    out.flush()
    del out
    return np.load(path, mmap_mode="r", allow_pickle=False)


class _Derived:
    """f(values[a:b]) for slices [a:b] of a long (N,) array of feature values (with codes:
    f(values[a:b], codes[a:b])): a prepared feature's standardised values or ranks, computed
    chunk by chunk as the passes read them instead of stored (no per-character memory, and no
    more temporary disk than the values)."""

    def __init__(self, values, f, codes=None):
        self.values, self.f, self.codes = values, f, codes

    def __len__(self):
        return len(self.values)

    def __getitem__(self, rows):
        if not isinstance(rows, slice) or rows.step not in (None, 1):
            raise TypeError("a prepared feature is read in contiguous slices")
        v = np.asarray(self.values[rows], dtype=np.float64)
        return self.f(v) if self.codes is None else self.f(v, np.asarray(self.codes[rows]))


def _prepare_binary(spec, n, codes, counts):
    """scan.prepare of a uint8 binary feature, chunk by chunk (no float64 copy anywhere);
    codes (N,) and counts (V,): the characters, for beyond_char's weights."""
    values = spec.values
    if values.shape != (n,):
        return prepare(spec, n)                                    # its error message
    n_pos, n1 = 0, np.zeros(len(counts))                            # n1: positives per character
    for c0, c1 in row_chunks(n, PREP):
        chunk = np.asarray(values[c0:c1])
        if chunk.max() > 1:
            raise ValueError(f"binary feature {spec.name!r} has values other than 0 and 1; "
                             "declare it ordinal or continuous")
        n_pos += int(chunk.sum(dtype=np.int64))
        n1 += np.bincount(codes[c0:c1], weights=chunk, minlength=len(counts))
    if not 0 < n_pos < n:
        return PreparedFeature(spec, True, None, 1.0, None, n_pos)
    return PreparedFeature(spec, True, _Derived(values, lambda v: v),   # values: in memory or mapped
                    float(n_pos) * (n - n_pos), None, n_pos, g_denom=beyond_denom(n1, counts))


MAX_DISTINCT = 1 << 22  # an ordinal feature with more distinct values (or (character, value)
                        # pairs) is prepared in memory


def _merge_counts(keys, counts, more):
    """The distinct values of keys (sorted) and more, with counts: keys' plus more's."""
    new, new_counts = np.unique(more, return_counts=True)
    keys, inverse = np.unique(np.concatenate([keys, new]), return_inverse=True)
    return keys, np.bincount(inverse, weights=np.concatenate([counts, new_counts]),
                             minlength=len(keys))


def _distinct(values, n, codes=None, uniq=None):
    """(sorted distinct values, counts) of a feature, or with codes and its distinct values uniq,
    of its (character, value) pairs as keys code * len(uniq) + value index; None past
    MAX_DISTINCT or at a non-finite value."""
    keys, counts = np.zeros(0, dtype=np.float64 if codes is None else np.int64), np.zeros(0)
    for c0, c1 in row_chunks(n, PREP):
        v = np.asarray(values[c0:c1], dtype=np.float64)
        if not np.isfinite(v).all() or len(keys) > MAX_DISTINCT:
            return None
        if codes is not None:
            v = np.asarray(codes[c0:c1]).astype(np.int64) * len(uniq) + np.searchsorted(uniq, v)
        keys, counts = _merge_counts(keys, counts, v)
    return None if len(keys) > MAX_DISTINCT else (keys, counts)


def _prepare_ordinal(spec, n, folder, name, codes, counts, chars):
    """scan.prepare of an ordinal or continuous feature, chunk by chunk: its distinct values
    and their counts give the mean, sd and exact average ranks, its distinct (character, value)
    pairs (codes (N,), counts (V,) of the characters) its ranks within each character, and the
    passes standardise and rank each chunk as they read it. A feature with more than
    MAX_DISTINCT distinct values or pairs (or a bad one: scan.prepare's error) is prepared in
    memory, as scan.prepare does (chars(): the Groups it needs)."""
    values = spec.values
    if spec.type not in METRICS or getattr(values, "shape", None) != (n,):
        return prepare(spec, n)                                    # its error message
    found = _distinct(values, n)
    if found is None:
        return _in_memory(prepare(spec, n, chars()), folder, name)
    uniq, ucounts = found
    if len(uniq) < 2:
        return PreparedFeature(spec, False, None, 1.0, None, None)
    pairs = _distinct(values, n, codes, uniq)
    if pairs is None:
        return _in_memory(prepare(spec, n, chars()), folder, name)
    mean = ucounts @ uniq / n
    sd = np.sqrt(ucounts @ (uniq - mean) ** 2 / n)
    below = np.cumsum(ucounts) - ucounts
    ranks = below + (ucounts + 1) / 2 - (n + 1) / 2               # centred average rank per value
    ranks /= np.sqrt(ucounts @ ranks ** 2)
    keys, pcounts = pairs
    within = ranks_from_counts(keys // len(uniq), pcounts, counts)   # (P,) within the character
    g_norm = np.sqrt(pcounts @ within ** 2)
    g = None if g_norm == 0 else _Derived(values, _pair_lookup(within / g_norm, keys, uniq), codes)
    return PreparedFeature(spec, False, _Derived(values, lambda v: ranks[np.searchsorted(uniq, v)]), 1.0,
                    _Derived(values, lambda v: (v - mean) / sd), None, g, 1.0 if g_norm else 0.0)


def _pair_lookup(table, keys, uniq):
    """f(values, codes) -> table's entry of each (character, value) pair; keys (P,) as
    _distinct gives them, code * len(uniq) + index of the value in uniq."""
    def lookup(v, c):
        return table[np.searchsorted(keys, c.astype(np.int64) * len(uniq) + np.searchsorted(uniq, v))]
    return lookup


def _in_memory(feat, folder, name):
    """A feature prepared by scan.prepare, its arrays moved to memory-mapped files."""
    if feat.f is not None:
        feat.f = _to_disk(feat.f, folder, name)
        if feat.z is not None:
            feat.z = _to_disk(feat.z, folder, f"{name}.z")
        if feat.g is not None:
            feat.g = _to_disk(feat.g, folder, f"{name}.g")
    return feat


def _pass_dots(acts, feats, tab, shown, shifts, rows, tick=lambda done: None):
    """Pass 2: sums over characters of every unit's ranks against every feature (and its rolls),
    and of its z-scores against the standardised non-binary features (pearson_r)."""
    n, u = acts.shape
    nf, m = len(feats), len(shifts)
    acc = dict(raw=np.zeros((u, nf)), null=np.zeros((u, nf, m)), pearson=np.zeros((u, nf)))
    offs = np.arange(u, dtype=np.int64) * KEYS
    pearson = any(f.f is not None and not f.binary for f in feats)
    for c0, c1 in row_chunks(n, rows):
        keys = float16_keys(read_rows(acts, c0, c1)).astype(np.int64)   # (U, L)
        ranks = tab["ranks"].ravel()[keys + offs[:, None]]           # (U, L) centred ranks
        ranks32 = ranks.astype(np.float32)
        z = (shown[keys] - tab["mean"][:, None]) / tab["sd"][:, None] if pearson else None
        del keys
        for i, feat in enumerate(feats):
            if feat.f is None:
                continue
            acc["raw"][:, i] += ranks @ np.asarray(feat.f[c0:c1])
            acc["null"][:, i] += ranks32 @ _rolled(feat.f, c0, c1, shifts).T
            if not feat.binary:
                acc["pearson"][:, i] += z @ np.asarray(feat.z[c0:c1])
        tick(c1 / n)
    return acc


def chunk_rows(n_units: int, n_shifts: int, budget: int = BUDGET) -> int:
    """Rows per chunk: about 64 bytes per unit and 8 per shift of each row, within budget / 4."""
    return int(max(256, (budget // 4) // (64 * n_units + 8 * n_shifts)))


def scan_streaming(acts, features, char_ix, *, n_shifts=200, seed=0, layer=0, kind="h",
                   min_shift=None, progress=None, rows=None, budget=BUDGET) -> list[dict]:
    """scan.scan's rows for a float16 acts (N, U), in passes over `rows` rows at a time."""
    if getattr(acts, "ndim", None) != 2:
        raise ValueError(f"activations must be a 2-D (n_chars, n_units) array, got shape "
                         f"{getattr(acts, 'shape', None)}")
    n, u = acts.shape
    if acts.dtype != np.float16:
        raise ValueError(f"the streaming scan ranks float16 activations exactly, these are "
                         f"{acts.dtype}; record with --dtype float16 for texts this big")
    if n < MIN_CHARS or u == 0 or not features:
        raise ValueError(f"nothing to scan: {n} characters (at least {MIN_CHARS}), {u} units, "
                         f"{len(features)} features")
    grid = make_grid(n, n_shifts, seed, min_shift)
    rows = rows or chunk_rows(u, grid.m_shifts, budget)
    with tempfile.TemporaryDirectory(prefix="interpret-scan-") as folder:
        codes, counts = char_codes(char_ix, n, folder)
        feats = _prepare_all(features, n, folder, codes, counts)
        ticks = _Ticks(progress, u * len(feats))  # the passes: a quarter, a quarter, a half
        shown = shown_table(kind)
        hist, cmin, cmax = _pass_counts(acts, codes, len(counts), rows, layer, kind,
                                        lambda done: ticks.to(done / 4))
        tab = _unit_tables(hist, n, shown, kind)
        acc = _pass_dots(acts, feats, tab, shown, grid.shifts, rows,
                         lambda done: ticks.to(0.25 + done / 4))
        del tab["ranks"]
        from interpret.scan.stream_beyond import beyond_rank_dots   # it imports this module
        beyond, rg_norm = beyond_rank_dots(acts, feats, hist, cmin, cmax, counts, shown, codes,
                                           rows, budget, lambda done: ticks.to(0.5 + done / 2))
        rows_out = []
        for i, feat in enumerate(feats):
            st = None if feat.f is None else _statistics(feat, i, acc, tab, beyond, rg_norm, n)
            rows_out.extend(feature_rows(feat, st, u, layer, kind, tab["saturated"]))
            del feat.f, feat.z, feat.g
        ticks.to(1.0)
    return rows_out


def _prepare_all(features, n, folder, codes, counts):
    """Every feature prepared for the passes (PreparedFeature), reading it chunk by chunk where it can;
    codes (N,) and counts (V,) of the characters (beyond_char)."""
    chars = cache(lambda: Groups(np.asarray(codes)))   # only for features prepared in memory
    feats = []
    for i, spec in enumerate(features):
        if spec.type == "binary" and getattr(spec.values, "dtype", None) == np.uint8:
            feats.append(_prepare_binary(spec, n, codes, counts))
        elif spec.type == "binary":
            feats.append(_in_memory(prepare(spec, n, chars()), folder, f"f{i}"))
        else:
            feats.append(_prepare_ordinal(spec, n, folder, f"f{i}", codes, counts, chars))
    return feats


class _Ticks:
    """Fractions of the scan done, as progress(n) increments of a bar of `total` steps."""

    def __init__(self, progress, total):
        self.progress, self.total, self.done = progress, total, 0

    def to(self, fraction):
        target = int(self.total * min(fraction, 1.0))
        if self.progress is not None and target > self.done:
            self.progress(target - self.done)
            self.done = target


def _statistics(feat, i, acc, tab, beyond, rg_norm, n) -> dict:
    """scan.feature_rows's input for feature i from the accumulated sums: AUROC (binary) or
    rho (the rest) of the ranks, and beyond_char from the within-character rank sums (rg_norm
    (U,): their norms), NaN where it is undefined (feat.g_denom 0), as scan._beyond."""
    if feat.binary:
        scale, centre, g_scale = feat.denom, 0.5, feat.g_denom
        pearson = np.full(len(tab["const"]), np.nan)
    else:
        scale, centre, g_scale = tab["rc_norm"], 0.0, rg_norm
        pearson = acc["pearson"][:, i] / n
    beyond = (centre + beyond[:, i] / g_scale if feat.g_denom else
              np.full(len(tab["const"]), np.nan))
    return dict(const=tab["const"], raw=centre + acc["raw"][:, i] / scale,
                null=centre + acc["null"][:, i] / np.reshape(scale, (-1, 1)),
                beyond=beyond, pearson=pearson)
