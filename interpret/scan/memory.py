"""Score every unit against every feature: effect sizes, a circular-shift null, BH q-values.

Units are scored as they are shown: an LSTM cell state (kind "c") through tanh, as the paper and
the viewer show it, everywhere (scores, ranks, nulls, beyond_char, pearson_r, saturated). tanh
is taken in the precision the scan reads the recording in (unit_blocks.read_block, a copy):
float32 for float16 / float32 recordings, float64 for float64 arrays. numpy's float32 tanh is
within 1 ulp of float32(tanh in float64), the value the viewer shows (checked on every float16
value), and 5x cheaper; a float64 result would also push the ranking off the float32 radix sort
(ranks.py) onto np.argsort. Ties are those of float32: tanh takes the 63487 distinct float16
values to 36219 distinct float32 ones (saturated cells tie at +-1, as they look; float64 would
keep 39103). The streaming engine maps each float16 value through the same float32 tanh
(scan_stream.shown_table), so both engines rank the same values.

Effect sizes (one row per (feature, unit)), all from the unit's average ranks rc (minus (N+1)/2):

- binary features: metric "auroc". raw = AUROC of the unit for feature == 1 against feature == 0
  (ties count half): AUROC = 0.5 + sum_t rc[t] f[t] / (n1 n0) (Mann-Whitney U / (n1 n0)).
  score = max(raw, 1 - raw) in 0.5..1, sign = +1 if raw >= 0.5 else -1. pearson_r is None.
- ordinal / continuous features: metric "spearman_rho". raw = Spearman's rho (Pearson r of the
  unit's and the feature's average ranks) = sum_t rc[t] rf[t] / (|rc| |rf|), score = |rho|,
  sign = sign(rho) (+1 at 0). pearson_r = Pearson r of the shown values, signed, reported only.
  Why ranks: a unit that counts monotonically but with a curve is judged by the count, not by
  how straight it is; the line-length cell, whose tanh(c) accelerates towards the line end, has
  rho 0.987 but r 0.87 (DESIGN.md).

Null hypothesis, p and q. Character-level signals are strongly autocorrelated (a quote lasts a
hundred characters, a unit's state drifts slowly), so shuffling characters gives a null far too
narrow and flags noise. Instead the feature is rotated against the activations, np.roll(f, k),
for `n_shifts` shifts k spread over [min_shift, N - min_shift], an odd prime number of characters
apart (no periodic pattern shorter than that, such as a unit that flips sign at every character,
aliases with them), from a seeded random start (default min_shift = max(1, min(N // 20, 2000));
if that range holds fewer than 3 * n_shifts shifts, every one of them is used); a rotation keeps
the autocorrelation of both series and only breaks their alignment. The same raw statistic is
computed for every shift, on ranks for both metrics (the ranks of a rotated feature are its
rotated ranks): each unit is ranked once, and all shifts of all features come from one FFT of
its ranks (shift_null.grid_dots; summed in float32, it agrees with the plain rolled dot products
to about 1e-6 of |x| |f|, and to float64 rounding with complex128 spectra).
Two p-values per row:

- p_empirical = (1 + #{|null - c| >= |raw - c| - NULL_ROUNDING}) / (1 + S), S the shifts used,
  c = 0.5 for AUROC, 0 for rho (a null within float32 rounding of the raw value is a tie). Never
  below 1 / (S + 1), which makes Benjamini-Hochberg over thousands of rows powerless.
- p (the one used for q) = 2 * norm.sf(|raw - null_mean| / null_sd), a normal approximation to
  the shift null (null_mean, null_sd are stored in the row). If null_sd is 0 -- every shift
  gives the same value, as on a periodic text; below NULL_ROUNDING, the float32 null's rounding
  noise -- p = p_empirical.
  On AR(1) noise (phi 0.95) against quote-like runs and line positions, 6% of rows get
  p < 0.05 and 1% p < 0.01: close to nominal, far from a character shuffle's verdict.

The shift null assumes the alignment is the only thing that matters: a feature with an exact
period (every line exactly 60 characters) re-aligns itself under shifts by whole periods, so its
p-values come out large; real text is not periodic.

q = Benjamini-Hochberg over every row passed to add_qvalues (all units x features x kinds).

beyond_char is the effect size with the current character taken out, by ranking the unit within
each character (among the n_c positions holding character c; average ranks, ties half, minus
(n_c + 1) / 2: rg), in the orientation of `score` (raw's sign applied):

- binary: the stratified (Van Elteren) AUROC. Each character's AUROC_c = 0.5 + sum_{t in c}
  rg_t f_t / (n1_c n0_c), averaged with weights n1_c n0_c / n_c: beyond = 0.5 + [sum_t rg_t f_t /
  n_c(t)] / [sum_c n1_c n0_c / n_c]. A character holding one class only adds nothing; if none
  holds both, the feature is a function of the character and beyond_char is None (undefined).
- ordinal / continuous: the pooled within-character rho, sum_t rg_t rf_t / (|rg| |rf|), rf the
  feature's centred average ranks within each character. None if rf is all 0 (the feature is
  constant within every character: a function of it); 0 if rg is all 0 (the unit is).

Why not residuals from each character's mean (what beyond_char was): with rank metrics they do
not take a function of the character to chance, since per-character distributions are skewed
and saturated (tanh(c) stuck near +1 for most characters leaves most residuals just above the
mean and a few far below); on a 1x512 LSTM 9.5% of current-character-only pairs still scored
AUROC >= 0.6 after the mean, up to 0.999. Ranked within its character, a unit that is any
function of the character ties everywhere and scores exactly 0.5 / 0, whatever its shape. The
ranks are of the shown values (tanh for c), in the precision they are scored in, and come from
the same sort as the unit's ranks (ranks.ranks_in_groups).

saturated = the share of characters where the unit's shown value is saturated: |v| > 0.99 for
h, tanh(c) and the tanh candidates g, n; min(v, 1 - v) < 0.01 for the sigmoid gates i f o r z.
A property of the unit: the same in every row of it, constant units and features included.

Row values are plain Python int / float / str; anything undefined (a constant feature or unit,
q before add_qvalues, pearson_r for binary features, n_pos for non-binary ones, beyond_char of
a feature that is a function of the character) is None, so a row is JSON-ready. Constant rows
(constant as shown) are excluded from BH and sorted last. The column `spearman` of earlier
versions is gone: for ordinal rows it is now raw.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from interpret._util.alloc import reuse_freed_memory
from interpret._util.blas import one_thread
from interpret.scan.ranks import Groups, centred_ranks, ranks_in_groups
from interpret.scan.shift_null import ShiftGrid, feature_spectra, grid_dots, make_grid, rolled_dots
from interpret.scan.unit_blocks import read_block
from interpret.scan.common import (MIN_CHARS, FeatureValues, PreparedFeature, check_finite, feature_rows, prepare,
                                   saturated_share, shown_values, standardise)





                              # 1 (rho); 0 where beyond_char is undefined (the feature is a
                              # function of the character)






@dataclass
class _Group:
    """The non-constant features, scored together from a unit's ranks; the binary ones first."""
    ix: list[int]             # positions in the scan's feature list
    n_binary: int             # ix[:n_binary] are binary
    fs: np.ndarray            # (F, N) the prepared rank-form values (PreparedFeature.f)
    binary: np.ndarray        # (F,) bool
    centre: np.ndarray        # (F,) 0.5 (AUROC) or 0 (rho)
    denom: np.ndarray         # (F,) n1 n0 (AUROC); 1 for rho
    spectra: np.ndarray       # (W, L, F) shift_null.feature_spectra of fs
    z_ix: list[int]           # positions of the non-binary ones in the scan's feature list
    zs: np.ndarray | None     # (Fz, N) their standardised values (pearson_r)
    g_denom: np.ndarray       # (F,) PreparedFeature.g_denom (0: beyond_char undefined)
    gs: np.ndarray | None     # (Fz, N) the non-binary ones' within-character ranks (PreparedFeature.g,
                              # 0 where None)


def _group(feats: list[PreparedFeature], grid: ShiftGrid, map=map) -> _Group | None:
    """The non-constant features stacked, binary ones first (one copy of each kept); None if
    every one is constant."""
    ix = sorted((i for i, f in enumerate(feats) if f.f is not None),
                key=lambda i: not feats[i].binary)
    if not ix:
        return None
    fs = np.stack([feats[i].f for i in ix])
    z_ix = [i for i in ix if not feats[i].binary]
    zs = np.stack([feats[i].z for i in z_ix]) if z_ix else None
    gs = np.stack([np.zeros(fs.shape[1]) if feats[i].g is None else feats[i].g for i in z_ix]
                  ) if z_ix else None
    for k, i in enumerate(ix):                        # keep one copy of each feature's values
        feats[i].f = fs[k]
    for k, i in enumerate(z_ix):
        feats[i].z, feats[i].g = zs[k], None if feats[i].g is None else gs[k]
    binary = np.array([feats[i].binary for i in ix])
    return _Group(ix, len(ix) - len(z_ix), fs, binary, np.where(binary, 0.5, 0.0),
                  np.array([feats[i].denom for i in ix]), feature_spectra(grid, fs, map=map),
                  z_ix, zs, np.array([feats[i].g_denom for i in ix]), gs)










def draw_shifts(n: int, n_shifts: int = 200, seed: int = 0, min_shift: int | None = None):
    """The circular shifts of the null (shift_null.make_grid): an odd prime apart, random start."""
    return make_grid(n, n_shifts, seed, min_shift).shifts


def _block_stats(a: np.ndarray, group: _Group | None, chars: Groups, grid: ShiftGrid,
                 n_feats: int, kind: str) -> dict:
    """const, saturated (B,); raw, pearson, beyond (B, F); null (B, F, M) for the block a (B, N),
    a slice of scan's own copy of the recording (made shown values in place); NaN for constant
    features. Every statistic but pearson_r comes from ranks: the unit's over all positions,
    and within each character (beyond)."""
    b, n = a.shape
    shown_values(a, kind)
    out = dict(const=np.ptp(a, axis=1) == 0, saturated=saturated_share(a, kind),
               raw=np.full((b, n_feats), np.nan), null=np.full((b, n_feats, grid.m_shifts), np.nan),
               pearson=np.full((b, n_feats), np.nan), beyond=np.full((b, n_feats), np.nan))
    if group is None:
        return out
    rc, rg = ranks_in_groups(a, chars)                              # (B, N) each
    out["beyond"][:, group.ix] = _beyond(group, rg, chars)
    del rg
    scale = _scale(group, rc)                                       # (B, F)
    out["raw"][:, group.ix] = group.centre + (rc @ group.fs.T) / scale
    out["null"][:, group.ix] = group.centre[:, None] + (grid_dots(rc, group.spectra, grid) /
                                                        scale[:, :, None])
    del rc
    if group.z_ix:  # Pearson r of the shown values: z-scores . standardised feature / N
        out["pearson"][:, group.z_ix] = (standardise(a.astype(np.float64)) @ group.zs.T) / n
    return out


def _beyond(group: _Group, rg: np.ndarray, chars: Groups) -> np.ndarray:
    """(B, F) beyond_char (before orienting by the sign) from the units' within-character centred
    ranks rg (B, N), which it scales in place: the stratified AUROC 0.5 + sum_t rg_t f_t / n_c(t)
    / sum_c n1_c n0_c / n_c (binary), the pooled within-character rho rg . g / |rg| (the rest;
    0 for a unit constant within every character); NaN where g_denom is 0."""
    nb = group.n_binary
    out = np.empty((len(rg), len(group.ix)))
    if nb < len(group.ix):
        norm = np.linalg.norm(rg, axis=1)
        norm[norm == 0] = 1.0
        out[:, nb:] = (rg @ group.gs.T) / norm[:, None]
    if nb:
        rg *= chars.inv_count                                       # rg_t / n_c(t)
        denom = group.g_denom[:nb]
        out[:, :nb] = 0.5 + (rg @ group.fs[:nb].T) / np.where(denom == 0, 1.0, denom)
    out[:, group.g_denom == 0] = np.nan
    return out


def _scale(group: _Group, x: np.ndarray) -> np.ndarray:
    """(B, F) what turns the dot of centred ranks x (B, N) with a feature into its statistic's
    distance from the centre: n1 n0 (AUROC), the rank norm |x| (rho; 1 if x is all 0)."""
    norm = np.linalg.norm(x, axis=1)
    norm[norm == 0] = 1.0
    return np.where(group.binary, group.denom, norm[:, None])


def shifted_statistics(acts, feature: FeatureValues, shifts, kind="h"):
    """(U, S): each unit's raw statistic (AUROC or rho, of the values shown for `kind`) against
    np.roll(feature.values, k) for every k in shifts, the plain way (one shift at a time). This
    is the null that scan() summarises, for looking at one unit's null in a notebook (scan uses
    draw_shifts's shifts)."""
    acts = np.asarray(acts)
    x = centred_ranks(shown_values(read_block(acts, 0, acts.shape[1]), kind))   # (U, N)
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


def scan_in_memory(acts, features, char_ix, *, n_shifts=200, seed=0, layer=0, kind="h", min_shift=None,
         progress=None, block_units=None, read_units=None, workers=None) -> list[dict]:
    """Score every unit of acts (N, U) against every feature; one row per (feature, unit).

    layer and kind label the rows; kind also says how the units are shown (tanh for "c") and
    which saturation rule applies (SIGMOID_KINDS or |v| > 0.99).
    acts may be a float16/float32 np.memmap; it is read read_units columns at a time (4 bytes per
    character and unit, by default up to 128 units and 512 MiB; the next read runs while these
    are scored, and a read touches every page of a row-major file), and scored block_units units
    at a time (a few dozen bytes per character and unit; the default keeps a block's arrays near
    64 MiB, which the allocator reuses without page faults, see alloc.py) by `workers` threads
    (default: up to 2 blocks at once; numpy releases the GIL in the heavy parts). progress, if
    given, is called with the number of units just finished (an increment, like bar.update).
    """
    n, n_units, codes = _check(acts, features, char_ix)
    chars = Groups(codes)
    if block_units is None:
        block_units = int(np.clip((64 << 20) // (8 * n), 1, 16))
    if read_units is None:
        read_units = int(np.clip((512 << 20) // (4 * n), 1, 128))
    if block_units < 1 or read_units < 1:
        raise ValueError(f"block_units={block_units}, read_units={read_units}; use positive "
                         "numbers of units")
    grid = make_grid(n, n_shifts, seed, min_shift)
    read_units = max(read_units, block_units)
    blocks: list[dict] = []

    def collect(futures):
        for future in futures:
            blocks.append(future.result())
            if progress is not None:
                progress(len(blocks[-1]["const"]))

    workers = workers or min(2, os.cpu_count() or 1)
    with one_thread(), reuse_freed_memory(), ThreadPoolExecutor(max_workers=workers) as pool:
        feats = list(pool.map(lambda f: prepare(f, n, chars), features))
        group = _group(feats, grid, pool.map)
        scoring: list = []                            # the blocks of the previous read
        queued: list = []
        try:
            for r0 in range(0, n_units, read_units):
                a = read_block(acts, r0, min(r0 + read_units, n_units))   # (R, N), while the
                check_finite(a, r0, layer, kind)                        # workers score the last
                queued = [pool.submit(_block_stats, a[j:j + block_units], group, chars, grid,
                                      len(feats), kind) for j in range(0, len(a), block_units)]
                collect(scoring)
                scoring = queued
                del a
            collect(scoring)
        except BaseException:                         # a bad unit, Ctrl-C: drop the queued work
            for future in scoring + queued:
                future.cancel()
            raise
    st = {key: np.concatenate([b[key] for b in blocks]) for key in blocks[0]}
    rows = []
    for i, feat in enumerate(feats):
        per = None if feat.f is None else {key: st[key][:, i] for key in
                                           ("raw", "null", "pearson", "beyond")}
        if per is not None:
            per["const"] = st["const"]
        rows.extend(feature_rows(feat, per, n_units, layer, kind, st["saturated"]))
    return rows


















