"""Verdicts: is a scan row a cell, a weak tracker, or nothing?

cell: q < 0.01, strength (2 AUROC - 1, or |rho|) >= 0.6, beyond_char keeps at least half of it,
at least 0.2 above the untrained control's best unit, enough support, saturated on at most 95%
of the characters. weak: q < 0.05 and strength >= 0.2, not below the control by more than noise
(without a control, at most weak). none: the rest. Why: docs/statistics.md, "Verdicts".
"""
import numpy as np

CELL_Q, WEAK_Q = 0.01, 0.05
CELL_STRENGTH, WEAK_STRENGTH = 0.6, 0.2
CELL_MARGIN = 0.2        # strength above the untrained control's best, same feature
BEYOND_SHARE = 0.5       # beyond_char strength / strength
MIN_POS, MIN_RUNS, MIN_DISTINCT = 50, 10, 5
MAX_SATURATED = 0.95
VERDICTS = ("cell", "weak", "none")


def strength(metric, score):
    """Both metrics on one 0..1 scale: 2 AUROC - 1 (AUROC in 0.5..1), |rho| or |r| as they are."""
    if score is None:
        return None
    return 2 * score - 1 if metric == "auroc" else score


def control_best(control_rows):
    """{feature: the best score of any unit of the untrained control} (AUROC or |rho|, as scored)."""
    best = {}
    for r in control_rows or ():
        if r.get("score") is not None:
            best[r["feature"]] = max(best.get(r["feature"], r["score"]), r["score"])
    return best


def verdict(row, control=None):
    """'cell', 'weak' or 'none' for one row; control: the untrained control's best score for the
    row's feature, in the row's metric (None: no control was run; 0.5 / 0: nothing scored). Support comes from the row's n_pos and n_runs
    (binary features) or n_distinct (the others)."""
    s = strength(row["metric"], row.get("score"))
    q = row.get("q")
    if s is None or q is None or q >= WEAK_Q or s < WEAK_STRENGTH:
        return "none"
    control = None if control is None else strength(row["metric"], control)
    if control is not None and s < control:
        return "none"
    beyond = strength(row["metric"], row.get("beyond_char"))
    cell = (q < CELL_Q and s >= CELL_STRENGTH and control is not None and s >= control + CELL_MARGIN
            and beyond is not None and beyond >= BEYOND_SHARE * s and supported(row)
            and (row.get("saturated") or 0.0) <= MAX_SATURATED)
    return "cell" if cell else "weak"


def supported(row):
    """Enough evidence in the feature itself: positives in separate runs, or distinct values."""
    if row.get("feature_type", "binary" if row["metric"] == "auroc" else "ordinal") == "binary":
        return (row.get("n_pos") or 0) >= MIN_POS and (row.get("n_runs") or 0) >= MIN_RUNS
    return (row.get("n_distinct") or 0) >= MIN_DISTINCT


def add_verdicts(rows, control_rows=None):
    """Set row['verdict'] on every row, in place; control_rows None means no control was run."""
    best = None if control_rows is None else control_best(control_rows)
    for r in rows:
        chance = 0.5 if r["metric"] == "auroc" else 0.0
        r["verdict"] = verdict(r, None if best is None else best.get(r["feature"], chance))
    return rows


CHUNK = 1 << 20


def feature_support(feature_type, values):
    """{'n_runs'} of a binary feature's values (N,) (separate runs of 1s), or {'n_distinct'} of
    another's; read a chunk at a time, so a memory-mapped feature of any length is fine."""
    if feature_type == "binary":
        runs, prev = 0, False
        for a in range(0, len(values), CHUNK):
            on = np.asarray(values[a:a + CHUNK]) != 0
            if len(on):
                runs += int(on[0] and not prev) + int(np.count_nonzero(on[1:] & ~on[:-1]))
                prev = bool(on[-1])
        return {"n_runs": runs}
    seen = np.empty(0)
    for a in range(0, len(values), CHUNK):
        seen = np.union1d(seen, np.unique(np.asarray(values[a:a + CHUNK], dtype=np.float64)))
    return {"n_distinct": int(len(seen))}
