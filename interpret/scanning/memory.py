"""The in-memory scan engine: every unit against every feature, in blocks of units.

Units are ranked once (as shown: cell states through tanh); the raw statistic (AUROC or
Spearman rho from the ranks), the circular-shift null (one FFT per unit, shift_null.py),
beyond_char (ranks within each current character), pearson_r and the saturated share come from
the same ranks. With numba, the ranks are float32 and the feature products and norms are one
compiled pass (block_dots.py); _products is the numpy form. The statistics and their reasons
are in docs/statistics.md.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from interpret._util.alloc import reuse_freed_memory
from interpret._util.blas import one_thread
from interpret._util.cores import workers as default_workers
from interpret.model import jit
from interpret.scanning.budget import default_block, direct_reads
from interpret.scanning.ranks import Groups, centred_ranks, ranks_in_groups
from interpret.scanning.shift_null import ShiftGrid, feature_spectra, grid_dots, make_grid, rolled_dots
from interpret.scanning.unit_blocks import block_dtype, read_block
from interpret.scanning.common import (MIN_CHARS, FeatureValues, PreparedFeature, check_finite, feature_rows, prepare,
                                   saturated_share, shown_values)


@dataclass
class _Group:
    """The non-constant features, scored together from a unit's ranks; the binary ones first."""
    ix: list[int]             # positions in the scan's feature list
    n_binary: int             # ix[:n_binary] are binary
    fb: np.ndarray            # (Fb, N) uint8 the binary ones' 0/1 values (PreparedFeature.f)
    fs: np.ndarray            # (F - Fb, N) the others' rank-form values (PreparedFeature.f)
    binary: np.ndarray        # (F,) bool
    centre: np.ndarray        # (F,) 0.5 (AUROC) or 0 (rho)
    denom: np.ndarray         # (F,) n1 n0 (AUROC); 1 for rho
    spectra: np.ndarray       # (W, F, L) shift_null.feature_spectra of [fb; fs]
    z_ix: list[int]           # positions of the non-binary ones in the scan's feature list
    zs: np.ndarray | None     # (F - Fb, N) their standardised values (pearson_r)
    g_denom: np.ndarray       # (F,) PreparedFeature.g_denom (0: beyond_char undefined)
    weight: np.ndarray        # (N,) 1 / n_c(t): what beyond_char weighs a binary row f_t with
    bg: np.ndarray            # (F - Fb, N) what beyond_char dots the others' within-character
                              # ranks with: PreparedFeature.g (0 where None)

    @cached_property
    def rows(self) -> tuple[np.ndarray, np.ndarray]:
        """(F, N) float64 each: every feature's row, and what beyond_char dots the
        within-character ranks with (f_t / n_c(t) for a binary one); made on first use (the
        numpy products)."""
        fb = self.fb.astype(np.float64)
        return np.concatenate([fb, self.fs]), np.concatenate([fb * self.weight, self.bg])


class _Rows:
    """Where the prepared features' rows go, made before they are prepared: the binary ones'
    0/1 values (uint8, exact), the others' rank-form, standardised and within-character rows
    (float64, 0 where a feature has none), each kind in the order of the feature list. The
    thread that prepared a feature copies its arrays in (its own are then freed, and reused by
    the next), so that no serial pass stacks them afterwards."""

    def __init__(self, specs: list[FeatureValues], n: int):
        binary = [spec.type == "binary" for spec in specs]
        self.slot = [binary[:i].count(b) for i, b in enumerate(binary)]   # index among its kind
        nb, no = sum(binary), len(specs) - sum(binary)
        self.fb = np.empty((nb, n), np.uint8)
        self.fs, self.zs, self.bg = np.empty((no, n)), np.empty((no, n)), np.empty((no, n))

    def keep(self, i: int, feat: PreparedFeature) -> PreparedFeature:
        """feat (feature i), its arrays now rows of the stacks (unchanged if it is constant)."""
        if feat.f is None:
            return feat
        k = self.slot[i]
        if feat.binary:
            self.fb[k] = feat.f
            feat.f = self.fb[k]
            return feat
        self.fs[k], self.zs[k], self.bg[k] = feat.f, feat.z, 0.0 if feat.g is None else feat.g
        feat.f, feat.z, feat.g = self.fs[k], self.zs[k], None if feat.g is None else self.bg[k]
        return feat


def _group(feats: list[PreparedFeature], rows: _Rows, grid: ShiftGrid, chars: Groups,
           map=map) -> _Group | None:
    """The non-constant features of rows (where feats were kept), binary ones first; None if
    every one is constant. The rows of a constant feature are dropped (a copy); the rest is
    used as it is."""
    ix = sorted((i for i, f in enumerate(feats) if f.f is not None),
                key=lambda i: not feats[i].binary)
    if not ix:
        return None
    z_ix = [i for i in ix if not feats[i].binary]
    nb = len(ix) - len(z_ix)

    def kept(stack, ixs):
        slots = [rows.slot[i] for i in ixs]
        return stack if slots == list(range(len(stack))) else stack[slots]

    fb = kept(rows.fb, ix[:nb])
    fs, zs, bg = (kept(stack, z_ix) for stack in (rows.fs, rows.zs, rows.bg))
    binary = np.array([feats[i].binary for i in ix])
    return _Group(ix, nb, fb, fs, binary, np.where(binary, 0.5, 0.0),
                  np.array([feats[i].denom for i in ix]), feature_spectra(grid, [*fb, *fs], map=map),
                  z_ix, zs if z_ix else None, np.array([feats[i].g_denom for i in ix]),
                  chars.inv_count, bg)


def draw_shifts(n: int, n_shifts: int = 200, seed: int = 0, min_shift: int | None = None):
    """The circular shifts of the null (shift_null.make_grid): an odd prime apart, random start."""
    return make_grid(n, n_shifts, seed, min_shift).shifts


def _block_stats(a: np.ndarray, group: _Group | None, chars: Groups, grid: ShiftGrid,
                 n_feats: int, array: str) -> dict:
    """const, saturated (B,); raw, pearson, beyond (B, F); null (B, F, M) for the block a (B, N),
    a slice of scan's own copy of the recording (made shown values in place); NaN for constant
    features. Every statistic but pearson_r comes from ranks: the unit's over all positions,
    and within each character (beyond)."""
    b, n = a.shape
    shown_values(a, array)
    if jit.enabled():
        from interpret.scanning.row_stats import const_and_saturated   # numba, on first use
        const, saturated = const_and_saturated(a, array)
    else:
        const, saturated = np.ptp(a, axis=1) == 0, saturated_share(a, array)
    out = dict(const=const, saturated=saturated,
               raw=np.full((b, n_feats), np.nan), null=np.full((b, n_feats, grid.m_shifts), np.nan),
               pearson=np.full((b, n_feats), np.nan), beyond=np.full((b, n_feats), np.nan))
    if group is None:
        return out
    rc, rg = ranks_in_groups(a, chars, np.float32 if jit.enabled() else np.float64)  # (B, N) each
    if rc.dtype == np.float32:                        # the compiled ranks ran: products too
        from interpret.scanning.block_dots import block_dots       # numba, on first use
        raw, beyond, pearson, norms = block_dots(a, rc, rg, a.mean(axis=1, dtype=np.float64),
                                                 group.fb, group.weight, group.fs, group.bg, group.zs)
    else:
        raw, beyond, pearson, norms = _products(a, rc, rg, group)
    del rg
    out["beyond"][:, group.ix] = _beyond(group, beyond, norms[:, 1])
    scale = _scale(group, norms[:, 0])                              # (B, F)
    out["raw"][:, group.ix] = group.centre + raw / scale
    out["null"][:, group.ix] = group.centre[:, None] + (grid_dots(rc, group.spectra, grid) /
                                                        scale[:, :, None])
    del rc
    if group.z_ix:
        out["pearson"][:, group.z_ix] = _pearson(pearson, norms[:, 2], n, out["const"])
    return out


def _products(a: np.ndarray, rc: np.ndarray, rg: np.ndarray, group: _Group):
    """(raw (B, F), beyond (B, F), pearson (B, Fz), norms (B, 3)): rc and rg dotted with the
    group's rows (_Group.rows), the centred values (float64) @ zs.T, and the squared norms of
    rc, rg and the centred values; the plain form of block_dots.py (numpy's products and
    passes)."""
    norms = np.zeros((len(a), 3))
    norms[:, 0], norms[:, 1] = _squares(rc), _squares(rg)
    pearson = np.zeros((len(a), 0))
    if group.z_ix:
        x = np.subtract(a, a.mean(axis=1, dtype=np.float64, keepdims=True), dtype=np.float64)
        norms[:, 2] = _squares(x)
        pearson = x @ group.zs.T
    fs, bg = group.rows
    return rc @ fs.T, rg @ bg.T, pearson, norms


def _pearson(dots: np.ndarray, squares: np.ndarray, n: int, const: np.ndarray) -> np.ndarray:
    """(B, Fz) Pearson r of B units with the standardised features zs (Fz, N), from the dots
    of their centred values with zs (B, Fz) and the values' squared norms (B,): the dots over N
    sd; 0 for constant rows."""
    sd = np.sqrt(squares / n)                                       # (B,)
    sd[const] = 1.0
    r = dots / (n * sd[:, None])
    r[const] = 0.0
    return r


def _beyond(group: _Group, dots: np.ndarray, squares: np.ndarray) -> np.ndarray:
    """(B, F) beyond_char (before orienting by the sign) from the dots (B, F) of the units'
    within-character centred ranks rg (B, N) with group.bg, and rg's squared norms (B,): the
    stratified AUROC 0.5 + sum_t rg_t f_t / n_c(t) / sum_c n1_c n0_c / n_c (binary), the pooled
    within-character rho rg . g / |rg| (the rest; 0 for a unit constant within every
    character); NaN where g_denom is 0."""
    nb = group.n_binary
    out = dots.copy()
    if nb < len(group.ix):
        norm = np.sqrt(squares)
        norm[norm == 0] = 1.0
        out[:, nb:] /= norm[:, None]
    if nb:
        denom = group.g_denom[:nb]
        out[:, :nb] = 0.5 + out[:, :nb] / np.where(denom == 0, 1.0, denom)
    out[:, group.g_denom == 0] = np.nan
    return out


def _scale(group: _Group, squares: np.ndarray) -> np.ndarray:
    """(B, F) what turns the dot of centred ranks x (B, N) with a feature into its statistic's
    distance from the centre: n1 n0 (AUROC), the rank norm |x| (rho; 1 if x is all 0), from
    the squared norms (B,) of x."""
    norm = np.sqrt(squares)
    norm[norm == 0] = 1.0
    return np.where(group.binary, group.denom, norm[:, None])


def _squares(x: np.ndarray) -> np.ndarray:
    """(B,) the sum of squares of each row of x (B, N), in one pass (no x * x array)."""
    return np.einsum("ij,ij->i", x, x)


def shifted_statistics(acts, feature: FeatureValues, shifts, array="h"):
    """(U, S): each unit's raw statistic (AUROC or rho, of the values shown for `array`) against
    np.roll(feature.values, k) for every k in shifts, the plain way (one shift at a time). This
    is the null that scan() summarises, for looking at one unit's null in a notebook (scan uses
    draw_shifts's shifts)."""
    acts = np.asarray(acts)
    x = centred_ranks(shown_values(read_block(acts, 0, acts.shape[1]), array))   # (U, N)
    n = x.shape[1]
    feat = prepare(feature, n)
    if feat.f is None:
        raise ValueError(f"feature {feature.name!r} is constant; it has no null distribution")
    dots = rolled_dots(x.T, feat.f, np.asarray(shifts) % n)                     # (U, S)
    if feat.binary:
        return 0.5 + dots / feat.denom
    norm = np.linalg.norm(x, axis=1)
    return dots / np.where(norm == 0, 1.0, norm)[:, None]


def _check(acts, features, char_ix) -> tuple[int, int, np.ndarray]:
    """Validate shapes; return N, U and char_ix as codes 0..V-1."""
    if getattr(acts, "ndim", None) != 2:
        raise ValueError(f"activations must be a 2-D (n_chars, n_units) array, got shape "
                         f"{getattr(acts, 'shape', None)}")
    n, n_units = acts.shape
    if n < MIN_CHARS:
        raise ValueError(f"the recording has {n} characters; scanning needs at least {MIN_CHARS}")
    if n_units == 0:
        raise ValueError("the activations have no units (shape (N, 0)); record a layer with units")
    if not features:
        raise ValueError("no features to scan; pass at least one FeatureValues")
    char_ix = np.asarray(char_ix)
    if char_ix.shape != (n,):
        raise ValueError(f"char_ix has shape {char_ix.shape} but the recording has {n} "
                         "characters; pass one character index per row")
    return n, n_units, np.unique(char_ix, return_inverse=True)[1].ravel()


def _blocks(n_units: int, read_units: int, block_units: int) -> list[tuple[int, int]]:
    """(j0, j1) of each block: block_units units at a time, starting again at every multiple of
    read_units. The blocks fix the float32 sums of the null, so every way of reading them gives
    the same rows."""
    return [(j, min(j + block_units, r0 + read_units, n_units))
            for r0 in range(0, n_units, read_units)
            for j in range(r0, min(r0 + read_units, n_units), block_units)]


def _reads(blocks: list, most: int, first: int) -> list[list]:
    """The blocks in consecutive reads: the first read `first` blocks (scoring starts sooner),
    each at most `most` units (fresh memory costs a page fault per page), at least one block."""
    reads = [[]]
    for j0, j1 in blocks:
        cur = reads[-1]
        if cur and (j1 - cur[0][0] > most or (len(reads) == 1 and len(cur) == first)):
            reads.append(cur := [])
        cur.append((j0, j1))
    return reads


def scan_in_memory(acts, features, char_ix, *, n_shifts=200, seed=0, layer=0, array="h", min_shift=None,
         progress=None, block_units=None, read_units=None, workers=None, direct=None) -> list[dict]:
    """Score every unit of acts (N, U) against every feature; one row per (feature, unit).

    layer and array label the rows; array also says how the units are shown (tanh for "c") and
    which saturation rule applies (SIGMOID_ARRAYS or |v| > 0.99).
    acts may be a float16/float32 np.memmap. It is scored block_units units at a time (a few
    dozen bytes per character and unit; the default keeps a block's arrays near 64 MiB, which
    the allocator reuses without page faults, see alloc.py) by `workers` threads (default: up to
    2 blocks at once; numpy releases the GIL in the heavy parts), blocks starting again at every
    multiple of read_units (by default 128 units or 512 MiB of float32).
    direct (default: budget.direct_reads, for float32 and float64 with numba): each worker
    gathers its block's units straight from acts into its own buffer (row_stats.gather_columns).
    Otherwise they are read in whole blocks, at most read_units / 2 units a read into one of two
    buffers used in turns (fresh memory costs a page fault per page, more than another pass over
    the file), two blocks per worker in the first read (scoring starts sooner); the next read
    runs while these are scored, and a read touches every page of a row-major file. Both give
    the same rows. progress, if given, is called with the number of units just finished (an
    increment, like bar.update).
    """
    n, n_units, codes = _check(acts, features, char_ix)
    chars = Groups(codes)
    if block_units is None:
        block_units = default_block(n)
    if read_units is None:
        read_units = int(np.clip((512 << 20) // (4 * n), 1, 128))
    if block_units < 1 or read_units < 1:
        raise ValueError(f"block_units={block_units}, read_units={read_units}; use positive "
                         "numbers of units")
    grid = make_grid(n, n_shifts, seed, min_shift)
    gatherable = jit.enabled() and acts.dtype in (np.float32, np.float64)
    if direct is None:
        direct = gatherable and direct_reads(acts.nbytes, isinstance(acts, np.memmap))
    elif direct and not gatherable:
        raise ValueError(f"direct reads need float32 or float64 activations and numba, not "
                         f"{acts.dtype}{'' if jit.enabled() else ' without numba'}; leave direct unset")
    read_units = max(read_units, block_units)
    most = max(1, read_units // 2)                    # units a read holds: 256 MiB by default
    blocks: list[dict] = []

    def collect(futures):
        for future in futures:
            blocks.append(future.result())
            if progress is not None:
                progress(len(blocks[-1]["const"]))

    workers = workers or default_workers()

    buffers: list = []                                # two, in turns: one read, one scored

    def read(spans):
        """The units of the blocks spans [(j0, j1), ...] read, as one (j1 - j0, N) view each."""
        if len(buffers) < 2:
            buffers.append(np.empty((max(most, block_units), n), block_dtype(acts)))
        buffers.reverse()
        r0 = spans[0][0]
        a = read_block(acts, r0, spans[-1][1], out=buffers[0])    # (R, N)
        check_finite(a, r0, layer, array)
        return [a[j0 - r0:j1 - r0] for j0, j1 in spans]

    local = threading.local()                        # each worker's block buffer (direct reads)

    def gathered(j0, j1):
        """The statistics of units j0..j1-1, gathered from acts by this worker."""
        from interpret.scanning.row_stats import gather_columns     # numba, on first use
        if getattr(local, "buffer", None) is None:
            local.buffer = np.empty((block_units, n), block_dtype(acts))
        a = gather_columns(acts, j0, local.buffer[:j1 - j0])
        check_finite(a, j0, layer, array)
        return _block_stats(a, group, chars, grid, len(feats), array)

    def features_as_scanned(prepared):
        feats = [p.result() for p in prepared]
        return feats, _group(feats, stacks, grid, chars, pool.map)

    def prepared_into_rows(i, spec):
        return stacks.keep(i, prepare(spec, n, chars))

    with (one_thread(), reuse_freed_memory(), ThreadPoolExecutor(max_workers=workers) as pool,
          ThreadPoolExecutor(max_workers=1) as side):
        stacks = _Rows(features, n)
        prepared = [pool.submit(prepared_into_rows, i, f) for i, f in enumerate(features)]
        grouping = side.submit(features_as_scanned, prepared)   # stacked, with their spectra
        scoring: list = []                            # the blocks of the previous read
        queued: list = []
        try:
            block_spans = _blocks(n_units, read_units, block_units)
            if direct:                                # every block at once, each worker reading its own
                feats, group = grouping.result()
                queued = [pool.submit(gathered, j0, j1) for j0, j1 in block_spans]
                collect(queued)
            else:
                reads = _reads(block_spans, most, 2 * workers)
                a = read(reads[0])                    # the first units, while features are prepared
                feats, group = grouping.result()
                for following in reads[1:] + [None]:
                    queued = [pool.submit(_block_stats, block, group, chars, grid, len(feats), array)
                              for block in a]
                    collect(scoring)
                    scoring = queued
                    del a
                    if following is not None:         # the next read, while the workers score
                        a = read(following)
                collect(scoring)
        except BaseException:                         # a bad unit, Ctrl-C: drop the queued work
            for future in prepared + scoring + queued:
                future.cancel()
            raise
    st = {key: np.concatenate([b[key] for b in blocks]) for key in blocks[0]}
    rows = []
    for i, feat in enumerate(feats):
        per = None if feat.f is None else {key: st[key][:, i] for key in
                                           ("raw", "null", "pearson", "beyond")}
        if per is not None:
            per["const"] = st["const"]
        rows.extend(feature_rows(feat, per, n_units, layer, array, st["saturated"]))
    return rows
