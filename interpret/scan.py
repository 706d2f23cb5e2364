"""Score every unit against every feature: effect sizes, a circular-shift null, BH q-values.

Effect sizes (one row per (feature, unit)):

- binary features: metric "auroc". raw = AUROC of the unit's activation for feature == 1 against
  feature == 0 (ties count half), from ranks: AUROC = 0.5 + sum_t rc[t] f[t] / (n1 n0), where rc
  are the unit's average ranks minus (N + 1) / 2 (this is Mann-Whitney U / (n1 n0)).
  score = max(raw, 1 - raw) in 0.5..1, sign = +1 if raw >= 0.5 else -1.
- ordinal / continuous features: metric "pearson_r". raw = Pearson r, score = |r|, sign = sign(r)
  (+1 at r = 0); `spearman` is Spearman's rho (Pearson on average ranks), reported only.

Null hypothesis, p and q. Character-level signals are strongly autocorrelated (a quote lasts a
hundred characters, a unit's state drifts slowly), so shuffling characters gives a null far too
narrow and flags noise. Instead the feature is rotated against the activations, np.roll(f, k),
for `n_shifts` shifts k drawn uniformly (seeded, with replacement) from [min_shift, N - min_shift]
(default min_shift = max(1, min(N // 20, 2000))); a rotation keeps the autocorrelation of both
series and only breaks their alignment. The same raw statistic is computed for every shift:
each unit column is ranked (or standardised) once; then all shifts of a feature are one matrix
product of the unit block with rolled copies of the feature (float32, built in row chunks), or,
for a feature whose first or second difference is sparse (a quote indicator, a depth, position
in line), a sparse combination of the columns' prefix sums (float64; see shift_null.py).
Two p-values per row:

- p_empirical = (1 + #{|null - c| >= |raw - c|}) / (1 + n_shifts), c = 0.5 for AUROC, 0 for r.
  Exact under the null but never below 1 / (n_shifts + 1), which makes Benjamini-Hochberg over
  thousands of rows powerless.
- p (the one used for q) = 2 * norm.sf(|raw - null_mean| / null_sd), a normal approximation to
  the shift null (null_mean, null_sd are stored in the row). If null_sd is 0, p = p_empirical.
  On AR(1) noise (phi 0.95) against quote-like runs and line positions, 6% of rows get p < 0.05
  and 1.2% p < 0.01: close to nominal, slightly liberal, far from a character shuffle's verdict.

The shift null assumes the alignment is the only thing that matters: a feature with an exact
period (every line exactly 60 characters) re-aligns itself under shifts by whole periods, so its
p-values come out large; real text is not periodic.

q = Benjamini-Hochberg over every row passed to add_qvalues (all units x features x kinds).

beyond_char is the same effect size on residual activations (activation minus the unit's mean
over all positions holding the same character), in the orientation of `score`: a unit that only
reacts to the `"` character drops to 0.5 (AUROC) / 0 (r). A residual that is constant (the unit
is a function of the character) gives exactly 0.5 / 0. For AUROC the residuals are ranked at
float32 precision (residuals closer than ~1e-7 relative tie), which lets a radix sort rank them.

Row values are plain Python int / float / str; anything undefined (a constant feature or unit,
q before add_qvalues, spearman for binary features, n_pos for non-binary ones) is None, so a row
is JSON-ready. Constant rows are excluded from BH and sorted last.
"""

from __future__ import annotations

import csv
import mmap
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.stats import false_discovery_control, norm

from interpret.blas import one_thread
from interpret.shift_null import Columns as _Columns, diff_matrices, sort_order

MIN_CHARS = 20
MAX_PIECES_FRACTION = 1 / 16   # features whose 1st or 2nd difference has fewer non-zeros than
                               # this x N take the prefix-sum way (shift_null.diff_matrices)
METRICS = {"binary": "auroc", "ordinal": "pearson_r", "continuous": "pearson_r"}
COLUMNS = ("feature", "unit", "layer", "kind", "feature_kind", "metric", "score", "raw", "sign",
           "p", "p_empirical", "q", "beyond_char", "spearman", "n_pos", "null_mean", "null_sd")


@dataclass
class FeatureValues:
    """One feature over the recording: kind is binary | ordinal | continuous; values is (N,)."""
    name: str
    kind: str
    values: np.ndarray


@dataclass
class _Feature:
    """A feature prepared once for scanning: f is 0/1 (binary) or standardised; None if constant."""
    spec: FeatureValues
    binary: bool
    f: np.ndarray | None      # (N,) float64
    f2: np.ndarray | None     # (2N,) float32, f twice: np.roll(f, k)[a:b] == f2[a-k+N : b-k+N]
    pieces: tuple | None      # shift_null.diff_matrices: (AP, AQ) when f's differences are sparse
    denom: float              # dot -> statistic: n1 * n0 (AUROC - 0.5) or N (Pearson r)
    ranks: np.ndarray | None  # (N,) centred ranks of the values (Spearman), non-binary only
    n_pos: int | None


def _prepare(spec: FeatureValues, n: int, shifts: np.ndarray) -> _Feature:
    """Check one feature and precompute what every unit block reuses."""
    if spec.kind not in METRICS:
        raise ValueError(f"feature {spec.name!r} has kind {spec.kind!r}; "
                         f"use one of {', '.join(METRICS)}")
    v = np.asarray(spec.values, dtype=np.float64)
    if v.shape != (n,):
        raise ValueError(f"feature {spec.name!r} has shape {v.shape} but the recording has "
                         f"{n} characters; compute it on the recording's text")
    if not np.isfinite(v).all():
        raise ValueError(f"feature {spec.name!r} has {int((~np.isfinite(v)).sum())} non-finite "
                         "values; give every character a finite value")
    binary = spec.kind == "binary"
    if binary and not np.isin(v, (0.0, 1.0)).all():
        raise ValueError(f"binary feature {spec.name!r} has values other than 0 and 1; "
                         "declare it ordinal or continuous")
    n_pos = int(v.sum()) if binary else None
    if (binary and not 0 < n_pos < n) or np.ptp(v) == 0:
        return _Feature(spec, binary, None, None, None, 1.0, None, n_pos)
    centre, scale = (0.0, 1.0) if binary else (v.mean(), v.std())
    f = v if binary else (v - centre) / scale
    denom = float(n_pos) * (n - n_pos) if binary else float(n)
    ranks = None if binary else _centred_ranks(v[:, None])[:, 0]
    pieces = diff_matrices(v, shifts, MAX_PIECES_FRACTION, centre, scale)
    f2 = None if pieces else np.concatenate([f, f]).astype(np.float32)
    return _Feature(spec, binary, f, f2, pieces, denom, ranks, n_pos)


def _centred_ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks (1..N, ties share their mean) of each column of x (N, B), minus (N+1)/2."""
    n = x.shape[0]
    xt = np.ascontiguousarray(x.T)                    # (B, N): sort along contiguous rows
    out = np.empty_like(xt, dtype=np.float64)
    new = np.empty(n, dtype=bool)                     # True where a run of equal values starts
    new[0] = True
    for col, dst in zip(xt, out):
        order = sort_order(col)
        s = col[order]
        np.not_equal(s[1:], s[:-1], out=new[1:])
        starts = np.flatnonzero(new)
        mean_rank = (starts + np.append(starts[1:], n) + 1) / 2.0   # mean of starts+1 .. ends
        dst[order] = mean_rank[np.cumsum(new) - 1] - (n + 1) / 2.0
    return out.T                                      # (N, B), a Fortran-ordered view


def _standardise(x: np.ndarray) -> np.ndarray:
    """Columns of x (N, B) to mean 0, sd 1, in place; constant columns become all 0."""
    const = np.ptp(x, axis=0) == 0
    x -= x.mean(axis=0)
    sd = np.sqrt(np.mean(x * x, axis=0))
    sd[const] = 1.0
    x /= sd
    x[:, const] = 0.0
    return x


def _char_residual(a: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """a (N, B) minus each unit's mean over the positions holding the same character."""
    n = len(codes)
    counts = np.bincount(codes).astype(np.float64)   # (V,)
    onehot = sparse.csr_array((np.ones(n), (codes, np.arange(n))), shape=(len(counts), n))  # (V, N)
    means = (onehot @ a) / counts[:, None]            # (V, B): sum over each character's rows
    res = means[codes]                                # (N, B)
    np.subtract(a, res, out=res)
    # a mean of equal values can miss them by rounding; that must not rank characters apart
    res[np.abs(res) <= 1e-12 * np.abs(a).max(axis=0)] = 0.0
    return res


def draw_shifts(n: int, n_shifts: int = 200, seed: int = 0, min_shift: int | None = None):
    """The circular shifts of the null: n_shifts ints uniform in [min_shift, n - min_shift]."""
    if min_shift is None:
        min_shift = max(1, min(n // 20, 2000))
    if n_shifts < 10:
        raise ValueError(f"n_shifts={n_shifts} is too few to estimate the null; use at least 10 "
                         "(default 200)")
    if not 1 <= min_shift <= n - min_shift:
        raise ValueError(f"min_shift={min_shift} leaves no shifts for {n} characters; use a "
                         f"value from 1 to {n // 2}")
    rng = np.random.default_rng(seed)
    return rng.integers(min_shift, n - min_shift + 1, size=n_shifts)


def _block_stats(a: np.ndarray, feats: list[_Feature], codes: np.ndarray, shifts: np.ndarray,
                 chunk_rows: int) -> list[dict | None]:
    """Per feature: raw (B,), null (B, S), spearman (B,), beyond (B,) for the block a (N, B).

    Binary features read the ranks, the others the z-scores; each group's prefix sums are
    freed before the next group is built, which keeps a block to a few (N, B) arrays.
    """
    beyond = _beyond_char(a, codes, feats)
    rc = _centred_ranks(a)                            # (N, B): AUROC and Spearman read ranks
    rc_norm = np.sqrt(np.sum(rc * rc, axis=0))
    rc_norm[rc_norm == 0] = 1.0
    out: list[dict | None] = [None] * len(feats)
    for i, feat in enumerate(feats):
        if feat.f is not None:
            rho = (np.full(a.shape[1], np.nan) if feat.binary else
                   rc.T @ feat.ranks / (rc_norm * np.sqrt(feat.ranks @ feat.ranks)))
            out[i] = dict(spearman=rho, beyond=beyond[i])
    _fill_nulls(out, feats, True, rc, shifts, chunk_rows)
    del rc
    _fill_nulls(out, feats, False, _standardise(a), shifts, chunk_rows)   # a is z from here
    return out


def _fill_nulls(out, feats, binary, x, shifts, chunk_rows):
    """raw and null for the features of one group (binary: x = ranks; else x = z-scores)."""
    cols = _Columns(x)
    c = 0.5 if binary else 0.0
    for i, feat in enumerate(feats):
        if feat.f is not None and feat.binary == binary:
            null = c + cols.shifted_dots(feat.pieces, feat.f2, shifts, chunk_rows) / feat.denom
            out[i].update(raw=c + x.T @ feat.f / feat.denom, null=null)


def shifted_statistics(acts, feature: FeatureValues, shifts, chunk_rows: int = 1 << 16):
    """(U, S): each unit's raw statistic against np.roll(feature.values, k) for every k in shifts.

    This is the null that scan() summarises; for looking at one unit's null in a notebook.
    """
    a = np.asarray(acts, dtype=np.float64)            # (N, U)
    shifts = np.asarray(shifts, dtype=np.int64) % a.shape[0]
    feat = _prepare(feature, a.shape[0], shifts)
    if feat.f is None:
        raise ValueError(f"feature {feature.name!r} is constant; it has no null distribution")
    x = _Columns(_centred_ranks(a) if feat.binary else _standardise(a))
    c = 0.5 if feat.binary else 0.0
    return c + x.shifted_dots(feat.pieces, feat.f2, shifts, chunk_rows) / feat.denom


def _beyond_char(a: np.ndarray, codes: np.ndarray, feats: list[_Feature]) -> list:
    """Per feature: raw statistic (B,) of the character residuals of a (N, B); None if constant."""
    res = _char_residual(a, codes)
    out = [None] * len(feats)
    if any(f.binary and f.f is not None for f in feats):
        rr = _centred_ranks(res.astype(np.float32))  # ranked at float32 precision: radix sort
        for i, f in enumerate(feats):
            if f.binary and f.f is not None:
                out[i] = 0.5 + rr.T @ f.f / f.denom
        del rr
    if all(f.binary or f.f is None for f in feats):
        return out
    zr = _standardise(res)
    for i, f in enumerate(feats):
        if not f.binary and f.f is not None:
            out[i] = zr.T @ f.f / f.denom
    return out


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


def scan(acts, features, char_ix, *, n_shifts=200, seed=0, layer=0, kind="h", min_shift=None,
         progress=None, block_units=24, chunk_rows=None, workers=None) -> list[dict]:
    """Score every unit of acts (N, U) against every feature; one row per (feature, unit).

    acts may be a float16/float32 np.memmap; it is read block_units columns at a time (each
    block costs a few float64 (N, block_units) arrays), by `workers` threads (default: up to 2
    blocks at once; numpy releases the GIL in the heavy parts). progress, if given, is called with
    the number of units just finished (an increment, like click's bar.update).
    """
    n, n_units, codes = _check(acts, features, char_ix)
    if block_units < 1:
        raise ValueError(f"block_units={block_units}; use a positive number of units per block")
    shifts = draw_shifts(n, n_shifts, seed, min_shift)
    feats = [_prepare(f, n, shifts) for f in features]
    chunk_rows = chunk_rows or max(1024, (1 << 23) // n_shifts)   # rolled chunk ~32 MB

    def one_block(j0):
        a = _read_block(acts, j0, min(j0 + block_units, n_units))          # (N, B) float64
        bad = ~np.isfinite(a).all(axis=0)
        if bad.any():
            raise ValueError(f"unit {j0 + int(np.argmax(bad))} (layer {layer}, kind {kind}) has "
                             "non-finite activations (NaN or Inf); re-record it (float16 may overflow)")
        const = np.ptp(a, axis=0) == 0
        stats = _block_stats(a, feats, codes, shifts, chunk_rows)
        return [s and dict(s, const=const) for s in stats], a.shape[1]

    workers = workers or min(2, os.cpu_count() or 1)
    blocks: list[list[dict | None]] = []
    with one_thread(), ThreadPoolExecutor(max_workers=workers) as pool:  # threads of our own
        for stats, width in pool.map(one_block, range(0, n_units, block_units)):
            blocks.append(stats)
            if progress is not None:
                progress(width)
    rows = []
    for i, feat in enumerate(feats):
        per_block = [b[i] for b in blocks]
        st = None if per_block[0] is None else {
            key: np.concatenate([b[key] for b in per_block]) for key in per_block[0]}
        rows.extend(_feature_rows(feat, st, n_units, layer, kind))
    return rows


def _read_block(acts, j0, j1, rows=1 << 16):
    """acts[:, j0:j1] as float64, read in row chunks; a memmap's pages are let go chunk by chunk
    (a column block touches every page of a row-major file)."""
    a = np.empty((acts.shape[0], j1 - j0))
    for r0 in range(0, acts.shape[0], rows):
        a[r0:r0 + rows] = acts[r0:r0 + rows, j0:j1]
        _drop_pages(acts)
    return a


def _drop_pages(acts):
    """Let go of a read-only memmap's pages once a block is copied out (they stay in the page
    cache, but no longer count as this process's memory)."""
    mm = getattr(acts, "_mmap", None)
    if getattr(acts, "mode", None) == "r" and hasattr(mm, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
        mm.madvise(mmap.MADV_DONTNEED)


def _feature_rows(feat: _Feature, st: dict | None, n_units: int, layer, kind) -> list[dict]:
    """Turn one feature's statistics over all units into row dicts."""
    spec = feat.spec
    base = dict.fromkeys(COLUMNS)
    base.update(feature=spec.name, layer=layer, kind=kind, feature_kind=spec.kind,
                metric=METRICS[spec.kind], n_pos=feat.n_pos)
    if st is None:
        return [dict(base, unit=u) for u in range(n_units)]
    c = 0.5 if feat.binary else 0.0
    raw, null = st["raw"], st["null"]                 # (U,), (U, S)
    sign = np.where(raw >= c, 1, -1)
    null_mean, null_sd = null.mean(axis=1), null.std(axis=1, ddof=1)
    p_emp = (1 + np.sum(np.abs(null - c) >= np.abs(raw - c)[:, None], axis=1)) / (1 + null.shape[1])
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(null_sd > 0, 2 * norm.sf(np.abs(raw - null_mean) / null_sd), p_emp)
    values = dict(score=c + np.abs(raw - c), raw=raw, sign=sign, p=p, p_empirical=p_emp,
                  beyond_char=c + sign * (st["beyond"] - c), spearman=st["spearman"],
                  null_mean=null_mean, null_sd=null_sd)
    rows = []
    for u in range(n_units):
        row = dict(base, unit=u)
        if not st["const"][u]:
            row.update({k: _plain(v[u]) for k, v in values.items()})
        rows.append(row)
    return rows


def _plain(x):
    """numpy scalar -> Python int/float; NaN -> None."""
    if isinstance(x, np.integer):
        return int(x)
    x = float(x)
    return None if np.isnan(x) else x


def add_qvalues(rows: list[dict]) -> None:
    """Benjamini-Hochberg q over every row with a p (all units x features x kinds), in place."""
    valid = [r for r in rows if r.get("p") is not None]
    qs = false_discovery_control([r["p"] for r in valid], method="bh") if valid else []
    for r in rows:
        r["q"] = None
    for r, q in zip(valid, qs):
        r["q"] = float(q)


def _rank_key(r: dict):
    """Best first: score desc, then p asc; rows without a score last."""
    missing = r.get("score") is None
    return (missing, 0.0 if missing else -r["score"],
            1.0 if r.get("p") is None else r["p"], r["layer"], str(r["kind"]), r["unit"])


def top_rows(rows, feature=None, top=5, q_max=None) -> list[dict]:
    """The best `top` units per feature (or for one feature), by score descending.

    q_max keeps only rows with q <= q_max (call add_qvalues first); top=None keeps all.
    """
    names = list(dict.fromkeys(r["feature"] for r in rows))
    if feature is not None:
        names = [n for n in names if n == feature]
    out = []
    for name in names:
        sel = [r for r in rows if r["feature"] == name and
               (q_max is None or (r.get("q") is not None and r["q"] <= q_max))]
        out.extend(sorted(sel, key=_rank_key)[:top])
    return out


def _fmt(x, spec: str, width: int) -> str:
    return ("-" if x is None else format(x, spec)).rjust(width)


def format_table(rows, top=5, control_rows=None) -> str:
    """Per feature, a header line and its top units; `*` marks q < 0.05."""
    lines = []
    for name in dict.fromkeys(r["feature"] for r in rows):
        mine = [r for r in rows if r["feature"] == name]
        head = f"{name} ({mine[0]['feature_kind']}, {mine[0]['metric']})"
        if mine[0].get("n_pos") is not None:
            head += f"  n_pos={mine[0]['n_pos']}"
        if control_rows is not None:
            ctrl = [r["score"] for r in control_rows
                    if r["feature"] == name and r.get("score") is not None]
            head += f"  untrained best: {max(ctrl):.2f}" if ctrl else "  untrained best: -"
        lines.append(head)
        best = [r for r in top_rows(mine, top=top) if r.get("score") is not None]
        if not best:
            lines.append("  (no valid scores: the feature or every unit is constant)")
            continue
        lines.append(f"  {'layer':>5} {'kind':<4} {'unit':>5} {'score':>6} {'sign':>4} "
                     f"{'q':>9}   {'beyond_char':>11} {'p':>9}")
        for r in best:
            mark = "*" if r.get("q") is not None and r["q"] < 0.05 else " "
            lines.append(f"  {r['layer']:>5} {str(r['kind']):<4} {r['unit']:>5} "
                         f"{r['score']:6.3f} {'+' if r['sign'] > 0 else '-':>4} "
                         f"{_fmt(r.get('q'), '.2g', 9)} {mark} {_fmt(r['beyond_char'], '.3f', 11)} "
                         f"{_fmt(r['p'], '.2g', 9)}")
    lines.append("* q < 0.05 (Benjamini-Hochberg over every unit x feature; circular-shift null)")
    return "\n".join(lines) + "\n"


def rows_to_csv(rows, file) -> None:
    """Write rows as CSV with the COLUMNS order (None -> empty); file is a text file or a path."""
    if hasattr(file, "write"):
        writer = csv.DictWriter(file, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        return
    path = os.fspath(file)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
            rows_to_csv(rows, fh)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
