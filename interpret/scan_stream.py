"""Out-of-core scan: the rows of scan.scan from passes over row chunks of a float16 recording.

Memory does not grow with N: per unit two tables of 65536 entries (value counts, ranks:
0.8 MB; z-scores are computed from the values), the residual tables of stream_residuals.py up to `budget` bytes, and chunks
of `rows` rows (default: a quarter of the budget). The character codes go to a memory-mapped
temporary file (1 byte a character up to 256 characters); the features are read as given (the
memory-mapped files report.feature_values writes for big recordings), a feature's mean, sd and
value ranks come from its distinct values, and each chunk is standardised and ranked as it is
read. Every statistic of scan.py is a sum over characters, accumulated chunk by chunk:

- ranks: a float16 unit takes at most 65536 values. Pass 1 counts them per unit (a histogram of
  order-preserving 16-bit keys); the exact average rank of a value is (count below) +
  (count of it + 1) / 2, a lookup table per unit. The same histogram gives means and sds.
- raw statistics and the shift null: dot products of the ranked (or standardised) unit with the
  feature rolled by every shift of scan's grid, np.roll(f, k)[t] = f[(t - k) mod N]; per chunk,
  one matrix product of the unit chunk (U, L) with the rolled feature chunks (L, M) (pass 2).
  The null is summed in float32 per chunk (like scan's FFT null), everything else in float64.
- beyond_char: per-character means from sums by character (pass 1). Pearson r on the residuals
  follows from sums (x . f, per-character sums of f, sum x^2). For AUROC, the residual of a
  character c and a float16 value v is v - mean_c, ranked exactly by counting (character, value)
  pairs: two more passes per group of units (stream_residuals.py).

Float32 recordings take up to 2^32 values per unit, so no table holds them: they are refused
(record with --dtype float16). Temporary files go to the system's temporary directory (TMPDIR).
"""
from __future__ import annotations

import tempfile

import numpy as np

from interpret import atomic
from interpret.scan import METRICS, MIN_CHARS, _check_finite, _Feature, _feature_rows, _prepare
from interpret.shift_null import make_grid
from interpret.unit_blocks import _drop_pages

KEYS = 1 << 16
BUDGET = 128 << 20
PREP = 1 << 20  # characters at a time when preparing codes and features


def float16_keys(x: np.ndarray) -> np.ndarray:
    """float16 array -> uint16 keys with the same order (-0.0 and +0.0 share one key)."""
    bits = x.view(np.uint16)
    flip = (bits.view(np.int16) >> 15).view(np.uint16) | np.uint16(0x8000)   # all bits or sign
    key = bits ^ flip
    np.add(key, key == 0x7FFF, out=key, casting="unsafe")            # -0.0 (0x7FFF) to +0.0
    return key


def key_values() -> np.ndarray:
    """(65536,) float64: the float16 value of each key (0 for the keys of NaN and infinity,
    which a checked recording never holds)."""
    k = np.arange(KEYS, dtype=np.uint32)
    bits = np.where(k & 0x8000, k ^ 0x8000, ~k & 0xFFFF).astype(np.uint16)
    vals = bits.view(np.float16).astype(np.float64)
    vals[~np.isfinite(vals)] = 0.0
    return vals


def _codes(char_ix, n: int, folder: str) -> tuple[np.ndarray, np.ndarray]:
    """char_ix (N,) as compact codes 0..V-1 (uint8, or uint16 past 256 characters) in a
    memory-mapped file in folder, and the count of each code (V,); read PREP rows at a time."""
    ix = char_ix
    if getattr(ix, "shape", None) != (n,):
        raise ValueError(f"char_ix has shape {getattr(ix, 'shape', None)} but the recording has {n} "
                         "characters; pass one character index per row")
    if ix.dtype.kind not in "iu":
        raise ValueError("char_ix must hold non-negative integer character indices")
    counts = np.zeros(0, dtype=np.int64)
    for c0, c1 in _chunks(n, PREP):
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
    for c0, c1 in _chunks(n, PREP):
        out[c0:c1] = remap[np.asarray(ix[c0:c1])]
    out.flush()
    del out
    return np.load(path, mmap_mode="r", allow_pickle=False), counts[present].astype(np.float64)


def count_dtype(n: int):
    """Counters of up to n characters: 4 bytes each below 2^32."""
    return np.uint32 if n < 2 ** 32 else np.int64


def _chunks(n: int, rows: int):
    return [(c0, min(c0 + rows, n)) for c0 in range(0, n, rows)]


def _pass_counts(acts, codes, v, rows, layer, kind, tick=lambda done: None):
    """Pass 1: key histogram (U, 65536), per-character sums, minima, maxima (V, U)."""
    n, u = acts.shape
    hist = np.zeros((u, KEYS), dtype=count_dtype(n))
    one = hist.dtype.type(1)  # a Python 1 sends ufunc.at down a path ten times slower
    csum = np.zeros((v, u))
    cmin = np.full((v, u), np.inf)
    cmax = np.full((v, u), -np.inf)
    offs = np.arange(u, dtype=np.int64) * KEYS
    for c0, c1 in _chunks(n, rows):
        x = _read(acts, c0, c1)                                     # (U, L) float16
        _check_finite(x, 0, layer, kind)
        keys = float16_keys(x).astype(np.int64) + offs[:, None]
        np.add.at(hist.ravel(), keys.ravel(), one)    # not bincount: no (U, 65536) temporary
        del keys
        order = np.argsort(codes[c0:c1], kind="stable")
        cs = codes[c0:c1][order]
        starts = np.flatnonzero(np.r_[True, cs[1:] != cs[:-1]])
        xs = x[:, order].astype(np.float64)                        # (U, L) grouped by character
        at = cs[starts]
        csum[at] += np.add.reduceat(xs, starts, axis=1).T
        cmin[at] = np.minimum(cmin[at], np.minimum.reduceat(xs, starts, axis=1).T)
        cmax[at] = np.maximum(cmax[at], np.maximum.reduceat(xs, starts, axis=1).T)
        tick(c1 / n)
    return hist, csum, cmin, cmax


def _read(acts, c0, c1, g0=0, g1=None):
    """acts[c0:c1, g0:g1] as a unit-major (G, L) float16 array (each unit's table lookups then
    stay in one place of the cache)."""
    x = np.ascontiguousarray(np.asarray(acts[c0:c1, g0:g1]).T)
    _drop_pages(acts)
    return x


def _unit_tables(hist, n):
    """From the histograms (U, 65536): a table of centred average ranks by key, and per unit
    the mean, sd (inf for a constant unit: its z-scores are 0), sum, sum of squares, max |x|,
    norm of the centred ranks and a constant flag."""
    vals = key_values()
    u = len(hist)
    ranks = np.empty(hist.shape)
    out = dict(ranks=ranks, total=np.empty(u), sumsq=np.empty(u), absmax=np.empty(u),
               rc_norm=np.empty(u), mean=np.empty(u), sd=np.empty(u),
               const=(hist > 0).sum(axis=1) <= 1)
    for j in range(u):                                              # one unit at a time: small
        counts = hist[j].astype(np.float64)
        r = ranks[j]
        np.cumsum(counts, out=r)                                    # rank = below + (c + 1) / 2
        r -= counts / 2 + n / 2                                     # minus (N + 1) / 2
        out["total"][j] = total = counts @ vals
        out["sumsq"][j] = counts @ (vals * vals)
        out["absmax"][j] = np.abs(vals[counts > 0]).max()
        out["rc_norm"][j] = np.sqrt(counts @ (r * r)) or 1.0
        out["mean"][j] = total / n
        dev = vals - total / n
        out["sd"][j] = np.inf if out["const"][j] else np.sqrt(counts @ (dev * dev) / n)
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
    """f(values[a:b]) for slices [a:b] of a long (N,) array of feature values: a prepared
    feature's standardised values or ranks, computed chunk by chunk as the passes read them
    instead of stored (no per-character memory, and no more temporary disk than the values)."""

    def __init__(self, values, f):
        self.values, self.f = values, f

    def __len__(self):
        return len(self.values)

    def __getitem__(self, rows):
        if not isinstance(rows, slice) or rows.step not in (None, 1):
            raise TypeError("a prepared feature is read in contiguous slices")
        return self.f(np.asarray(self.values[rows], dtype=np.float64))


def _prepare_binary(spec, n):
    """scan._prepare of a uint8 binary feature, chunk by chunk (no float64 copy anywhere)."""
    values = spec.values
    if values.shape != (n,):
        return _prepare(spec, n)                                    # its error message
    n_pos = 0
    for c0, c1 in _chunks(n, PREP):
        chunk = np.asarray(values[c0:c1])
        if chunk.max() > 1:
            raise ValueError(f"binary feature {spec.name!r} has values other than 0 and 1; "
                             "declare it ordinal or continuous")
        n_pos += int(chunk.sum(dtype=np.int64))
    if not 0 < n_pos < n:
        return _Feature(spec, True, None, 1.0, None, n_pos)
    return _Feature(spec, True, _Derived(values, lambda v: v),   # values: in memory or mapped
                    float(n_pos) * (n - n_pos), None, n_pos)


MAX_DISTINCT = 1 << 22  # an ordinal feature with more distinct values is prepared in memory


def _prepare_ordinal(spec, n, folder, name):
    """scan._prepare of an ordinal or continuous feature, chunk by chunk: its distinct values
    and their counts give the mean, sd and exact average ranks, and the passes standardise and
    rank each chunk as they read it. A feature with more than MAX_DISTINCT distinct values (or a
    bad one: scan._prepare's error) is prepared in memory, as scan._prepare does."""
    values = spec.values
    if spec.kind not in METRICS or getattr(values, "shape", None) != (n,):
        return _prepare(spec, n)                                    # its error message
    uniq, counts = np.zeros(0), np.zeros(0)
    for c0, c1 in _chunks(n, PREP):
        v = np.asarray(values[c0:c1], dtype=np.float64)
        if not np.isfinite(v).all() or len(uniq) > MAX_DISTINCT:
            return _in_memory(_prepare(spec, n), folder, name)
        u, c = np.unique(v, return_counts=True)
        uniq, inverse = np.unique(np.concatenate([uniq, u]), return_inverse=True)
        counts = np.bincount(inverse, weights=np.concatenate([counts, c]), minlength=len(uniq))
    if len(uniq) < 2:
        return _Feature(spec, False, None, 1.0, None, None)
    mean = counts @ uniq / n
    sd = np.sqrt(counts @ (uniq - mean) ** 2 / n)
    below = np.cumsum(counts) - counts
    ranks = below + (counts + 1) / 2 - (n + 1) / 2                # centred average rank per value
    ranks /= np.sqrt(counts @ ranks ** 2)
    return _Feature(spec, False, _Derived(values, lambda v: (v - mean) / sd), float(n),
                    _Derived(values, lambda v: ranks[np.searchsorted(uniq, v)]), None)


def _in_memory(feat, folder, name):
    """A feature prepared by scan._prepare, its arrays moved to memory-mapped files."""
    if feat.f is not None:
        feat.f = _to_disk(feat.f, folder, name)
        if feat.ranks is not None:
            feat.ranks = _to_disk(feat.ranks, folder, f"{name}.ranks")
    return feat


def _pass_dots(acts, feats, tab, codes, v, shifts, rows, tick=lambda done: None):
    """Pass 2: sums over characters of every unit against every feature (and its rolls)."""
    n, u = acts.shape
    nf, m = len(feats), len(shifts)
    acc = dict(raw=np.zeros((u, nf)), null=np.zeros((u, nf, m)), spearman=np.zeros((u, nf)),
               xf=np.zeros((u, nf)), cf=np.zeros((v, nf)))
    offs = np.arange(u, dtype=np.int64) * KEYS
    for c0, c1 in _chunks(n, rows):
        x = _read(acts, c0, c1)                                     # (U, L) float16
        idx = float16_keys(x).astype(np.int64) + offs[:, None]
        ranks = tab["ranks"].ravel()[idx]                           # (U, L) centred ranks
        del idx
        x64 = x.astype(np.float64)
        z = (x64 - tab["mean"][:, None]) / tab["sd"][:, None]       # (U, L) z-scores
        for i, feat in enumerate(feats):
            if feat.f is None:
                continue
            fc = np.asarray(feat.f[c0:c1])                          # (L,)
            xt = ranks if feat.binary else z
            acc["raw"][:, i] += xt @ fc
            acc["null"][:, i] += xt.astype(np.float32) @ _rolled(feat.f, c0, c1, shifts).T
            if not feat.binary:
                acc["spearman"][:, i] += ranks @ np.asarray(feat.ranks[c0:c1])
                acc["xf"][:, i] += x64 @ fc
                acc["cf"][:, i] += np.bincount(codes[c0:c1], weights=fc, minlength=v)
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
        codes, counts = _codes(char_ix, n, folder)
        v = len(counts)
        feats = []
        for i, spec in enumerate(features):
            if spec.kind == "binary" and getattr(spec.values, "dtype", None) == np.uint8:
                feats.append(_prepare_binary(spec, n))
            elif spec.kind == "binary":
                feats.append(_in_memory(_prepare(spec, n), folder, f"f{i}"))
            else:
                feats.append(_prepare_ordinal(spec, n, folder, f"f{i}"))
        ticks = _Ticks(progress, u * len(feats))  # the passes: a quarter, a quarter, a half
        hist, csum, cmin, cmax = _pass_counts(acts, codes, v, rows, layer, kind,
                                              lambda done: ticks.to(done / 4))
        tab = _unit_tables(hist, n)
        acc = _pass_dots(acts, feats, tab, codes, v, grid.shifts, rows,
                         lambda done: ticks.to(0.25 + done / 4))
        del tab["ranks"]
        from interpret.stream_residuals import beyond_binary_dots   # it imports this module
        beyond_bin = beyond_binary_dots(acts, feats, hist, csum, cmin, cmax, counts,
                                         tab["absmax"], codes, rows, budget,
                                         lambda done: ticks.to(0.5 + done / 2))
        rows_out = []
        for i, feat in enumerate(feats):
            st = None if feat.f is None else _statistics(feat, i, acc, tab, csum, cmin, cmax,
                                                          counts, beyond_bin, n)
            rows_out.extend(_feature_rows(feat, st, u, layer, kind))
            del feat.f, feat.ranks
        ticks.to(1.0)
    return rows_out


class _Ticks:
    """Fractions of the scan done, as progress(n) increments of a bar of `total` steps."""

    def __init__(self, progress, total):
        self.progress, self.total, self.done = progress, total, 0

    def to(self, fraction):
        target = int(self.total * min(fraction, 1.0))
        if self.progress is not None and target > self.done:
            self.progress(target - self.done)
            self.done = target


def _statistics(feat, i, acc, tab, csum, cmin, cmax, counts, beyond_bin, n) -> dict:
    """scan._feature_rows's input for feature i from the accumulated sums."""
    st = dict(const=tab["const"])
    if feat.binary:
        st["raw"] = 0.5 + acc["raw"][:, i] / feat.denom
        st["null"] = 0.5 + acc["null"][:, i] / feat.denom
        st["spearman"] = np.full(len(st["const"]), np.nan)
        st["beyond"] = 0.5 + beyond_bin[:, i] / feat.denom
        return st
    st["raw"] = acc["raw"][:, i] / feat.denom
    st["null"] = acc["null"][:, i] / feat.denom
    st["spearman"] = acc["spearman"][:, i] / tab["rc_norm"]
    # residual r = sum((x - mean_c) fz) / (N sd_res); sum(x fz) - sum_c mean_c sum_{c} fz
    mean_c = csum / counts[:, None]                                 # (V, U)
    mean = (tab["total"] - csum.sum(axis=0)) / n
    ss = (tab["sumsq"] - (csum * mean_c).sum(axis=0)) / n
    sd = np.sqrt(np.maximum(ss - mean ** 2, 0.0))
    sd[(cmax == cmin).all(axis=0)] = np.inf                         # a constant residual: r = 0
    fsum = acc["cf"][:, i].sum()
    dots = acc["xf"][:, i] - mean_c.T @ acc["cf"][:, i] - mean * fsum
    st["beyond"] = dots / (feat.denom * sd)
    return st
