"""What both scan engines share: the features as scanned, shown values, the rows they return.

The statistics themselves are explained in docs/statistics.md.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr  # the normal cdf; scipy.stats would cost 0.6-1 s to import

from interpret.scanning.ranks import Groups, centred_ranks, ranks_in_groups


MIN_CHARS = 20


# what the shift null's float32 sums cannot tell apart, in units of the statistic (AUROC, r):
# a null value this close to the raw one counts as reaching it (a tie: the conservative side),
# and a null sd below it is rounding noise (a real one is about 1 / sqrt(N) or more, 1e-5
# even at 10^10 characters)
NULL_ROUNDING = 1e-6


SIGN_ROUNDING = 1e-9  # |raw - centre| below this is "no effect", and gets sign +1 in every engine


METRICS = {"binary": "auroc", "ordinal": "spearman_rho", "continuous": "spearman_rho"}


COLUMNS = ("feature", "unit", "layer", "array", "feature_type", "metric", "score", "raw", "sign",
           "p", "p_empirical", "q", "beyond_char", "pearson_r", "saturated", "n_pos",
           "n_runs", "n_distinct", "null_mean", "null_sd", "verdict")


SIGMOID_ARRAYS = ("i", "f", "o", "r", "z")  # gate arrays in 0..1; h, c (as tanh), g, n in -1..1


SATURATED = 0.99                            # |v| beyond it, or min(v, 1 - v) below 1 - it


@dataclass
class FeatureValues:
    """One feature over the recording: type is binary | ordinal | continuous; values is (N,)."""
    name: str
    type: str
    values: np.ndarray


@dataclass
class PreparedFeature:
    """A feature prepared once for scanning; f is None if it is constant."""
    spec: FeatureValues
    binary: bool
    f: np.ndarray | None      # (N,) float64 dotted with a unit's centred ranks: the 0/1 values
                              # (binary), or the feature's centred average ranks scaled to norm 1
    denom: float              # dot -> statistic: n1 * n0 (AUROC - 0.5); 1 for rho (the unit's
                              # rank norm divides per unit)
    z: np.ndarray | None      # (N,) standardised values, for pearson_r; None for binary features
    n_pos: int | None
    g: np.ndarray | None = None   # (N,) non-binary: the feature's centred ranks within each
                                  # character, scaled to norm 1; None if they are all 0
    g_denom: float = 0.0      # beyond_char's dot -> statistic: sum_c n1_c n0_c / n_c (binary),


def beyond_denom(n1: np.ndarray, counts: np.ndarray) -> float:
    """sum_c n1_c n0_c / n_c over the characters c, from the feature's positives n1 (V,) and
    the characters' counts (V,): the weight of the stratified AUROC; 0 if no character holds
    both classes."""
    return float(np.sum(n1 * (counts - n1) / counts))


def prepare(spec: FeatureValues, n: int, chars: Groups | None = None) -> PreparedFeature:
    """Check one feature and precompute what every unit block reuses; chars: the positions
    grouped by character, for beyond_char (None: no beyond_char, it is left undefined)."""
    if spec.type not in METRICS:
        raise ValueError(f"feature {spec.name!r} has type {spec.type!r}; "
                         f"use one of {', '.join(METRICS)}")
    v = np.asarray(spec.values, dtype=np.float64)
    if v.shape != (n,):
        raise ValueError(f"feature {spec.name!r} has shape {v.shape} but the recording has "
                         f"{n} characters; compute it on the recording's text")
    if not np.isfinite(v).all():
        raise ValueError(f"feature {spec.name!r} has {int((~np.isfinite(v)).sum())} non-finite "
                         "values; give every character a finite value")
    binary = spec.type == "binary"
    if binary and not np.isin(v, (0.0, 1.0)).all():
        raise ValueError(f"binary feature {spec.name!r} has values other than 0 and 1; "
                         "declare it ordinal or continuous")
    n_pos = int(v.sum()) if binary else None
    if (binary and not 0 < n_pos < n) or np.ptp(v) == 0:
        return PreparedFeature(spec, binary, None, 1.0, None, n_pos)
    if binary:
        feat = PreparedFeature(spec, True, v, float(n_pos) * (n - n_pos), None, n_pos)
        if chars is not None:
            n1 = np.bincount(chars.codes, weights=v, minlength=len(chars.counts))
            feat.g_denom = beyond_denom(n1, chars.counts)
        return feat
    if chars is None:
        ranks, within = centred_ranks(v[None, :])[0], None
    else:
        ranks, within = (r[0] for r in ranks_in_groups(v[None, :], chars))
    g_norm = 0.0 if within is None else np.linalg.norm(within)
    return PreparedFeature(spec, False, ranks / np.linalg.norm(ranks), 1.0, (v - v.mean()) / v.std(),
                    None, within / g_norm if g_norm else None, 1.0 if g_norm else 0.0)


def shown_values(a: np.ndarray, array: str) -> np.ndarray:
    """a (..., N) as the viewer shows it, in place: tanh for cell states (array "c"), in a's own
    precision (float32 for recordings); anything else as it is. a must be the caller's copy."""
    if array == "c":
        np.tanh(a, out=a)
    return a


def saturated(v: np.ndarray, array: str) -> np.ndarray:
    """Where shown values v (float64) are saturated: a sigmoid gate (SIGMOID_ARRAYS) within 0.01
    of 0 or 1, anything else (h, tanh(c), the tanh candidates g and n) beyond +-0.99."""
    if array in SIGMOID_ARRAYS:
        return np.minimum(v, 1.0 - v) < 1.0 - SATURATED
    return np.abs(v) > SATURATED


def saturated_share(a: np.ndarray, array: str) -> np.ndarray:
    """(B,) share of characters where each row of shown values a (B, N) is saturated (compared
    in float64, as the streaming scan compares its float64 table of values)."""
    return np.array([np.count_nonzero(saturated(row.astype(np.float64), array))
                     for row in a]) / a.shape[1]


def check_finite(a, j0, layer, array):
    """Raise if a unit of the block a (B, N) (units j0...) has a NaN or infinity."""
    bad = ~np.isfinite(a).all(axis=1)
    if bad.any():
        raise ValueError(f"unit {j0 + int(np.argmax(bad))} (layer {layer}, array {array}) has "
                         "non-finite activations (NaN or Inf); re-record it (float16 may overflow)")


def feature_rows(feat: PreparedFeature, st: dict | None, n_units: int, layer, array,
                  saturated_share: np.ndarray) -> list[dict]:
    """Turn one feature's statistics over all units (and the units' saturated shares (U,),
    in every row) into row dicts."""
    spec = feat.spec
    base = dict.fromkeys(COLUMNS)
    base.update(feature=spec.name, layer=layer, array=array, feature_type=spec.type,
                metric=METRICS[spec.type], n_pos=feat.n_pos)
    rows = [dict(base, unit=u, saturated=plain(saturated_share[u])) for u in range(n_units)]
    if st is None:
        return rows
    c = 0.5 if feat.binary else 0.0
    raw, null = st["raw"], st["null"]                 # (U,), (U, S)
    # +1 at no effect; a raw value within rounding of it (the two engines sum in other orders) too
    sign = np.where(raw >= c - SIGN_ROUNDING, 1, -1)
    null_mean, null_sd = null.mean(axis=1), null.std(axis=1, ddof=1)
    reach = np.abs(null - c) >= np.abs(raw - c)[:, None] - NULL_ROUNDING   # ties within rounding count
    p_emp = (1 + np.sum(reach, axis=1)) / (1 + null.shape[1])
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(null_sd > NULL_ROUNDING, 2 * ndtr(-np.abs(raw - null_mean) / null_sd), p_emp)  # 2 sf(|z|)
    values = dict(score=c + np.abs(raw - c), raw=raw, sign=sign, p=p, p_empirical=p_emp,
                  beyond_char=c + sign * (st["beyond"] - c), pearson_r=st["pearson"],
                  null_mean=null_mean, null_sd=null_sd)
    for u, row in enumerate(rows):
        if not st["const"][u]:
            row.update({k: plain(v[u]) for k, v in values.items()})
    return rows


def plain(x):
    """numpy scalar -> Python int/float; NaN -> None."""
    if isinstance(x, np.integer):
        return int(x)
    x = float(x)
    return None if np.isnan(x) else x
