"""Scan rows as data: q-values, the top rows per feature, the table, CSV and JSON, loading a saved scan."""
from __future__ import annotations

import csv
import json
import math
import textwrap

import numpy as np

from interpret._util import atomic
from interpret.scanning.common import COLUMNS
from interpret.scanning.verdict import add_verdicts, control_best


def bh_qvalues(p) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values of p (m,): with p sorted ascending, q_(i) = min(1, min
    over j >= i of p_(j) m / j), returned in p's order (as scipy.stats.false_discovery_control,
    whose import would cost 0.6-1 s)."""
    p = np.asarray(p, dtype=np.float64)
    m = len(p)
    order = np.argsort(p, kind="stable")
    scaled = p[order] * (m / np.arange(1, m + 1))
    q = np.empty(m)
    q[order] = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    return q


def add_qvalues(rows: list[dict]) -> None:
    """Benjamini-Hochberg q over every row with a p (all units x features x arrays), in place."""
    valid = [r for r in rows if r.get("p") is not None]
    qs = bh_qvalues([r["p"] for r in valid]) if valid else []
    for r in rows:
        r["q"] = None
    for r, q in zip(valid, qs):
        r["q"] = float(q)


def rank_key(r: dict):
    """Best first: score desc, then p asc; rows without a score last."""
    missing = r.get("score") is None
    return (missing, 0.0 if missing else -r["score"],
            1.0 if r.get("p") is None else r["p"], r["layer"], str(r["array"]), r["unit"])


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
        out.extend(sorted(sel, key=rank_key)[:top])
    return out


def _fmt(x, spec: str, width: int) -> str:
    return ("-" if x is None else format(x, spec)).rjust(width)


def format_table(rows, top=5, control_rows=None) -> str:
    """Per feature, a header line (with the untrained control's best score) and its top units,
    each with its verdict (verdict.py: cell / weak / none); sat is `saturated`."""
    lines = []
    for name in dict.fromkeys(r["feature"] for r in rows):
        mine = [r for r in rows if r["feature"] == name]
        head = f"{name} ({mine[0]['feature_type']}, {mine[0]['metric']})"
        if mine[0].get("n_pos") is not None:
            head += f"  n_pos={mine[0]['n_pos']}"
        if control_rows is not None:
            ctrl = control_best(r for r in control_rows if r["feature"] == name).get(name)
            head += "  untrained control: -" if ctrl is None else f"  untrained control's best unit: {ctrl:.3f}"
        lines.append(head)
        best = [r for r in top_rows(mine, top=top) if r.get("score") is not None]
        if not best:
            lines.append("  (no valid scores: the feature or every unit is constant)")
            continue
        lines.append(f"  {'layer':>5} {'array':<4} {'unit':>5} {'score':>6} {'sign':>4} "
                     f"{'q':>9} {'beyond_char':>11} {'r':>6} {'sat':>5}  verdict")
        for r in best:
            lines.append(f"  {r['layer']:>5} {str(r['array']):<4} {r['unit']:>5} "
                         f"{r['score']:6.3f} {'+' if r['sign'] > 0 else '-':>4} "
                         f"{_fmt(r.get('q'), '.2g', 9)} {_fmt(r['beyond_char'], '.3f', 11)} "
                         f"{_fmt(r.get('pearson_r'), '.3f', 6)} {_fmt(r.get('saturated'), '.2f', 5)}  "
                         f"{r.get('verdict') or '-'}")
    lines += textwrap.wrap(
        "verdict: cell = q < 0.01, a large effect (AUROC >= 0.8 or |rho| >= 0.6) that survives taking out the "
        "current character and beats the untrained control by 0.2 (on 2 AUROC - 1 or |rho|), with enough "
        "support, not saturated; weak = q < 0.05 and a smaller effect, or no control (--control none); "
        "none = the rest. q: Benjamini-Hochberg over every unit x feature against a circular-shift null; "
        "r: Pearson r; sat: share of characters saturated as shown (|v| > 0.99; sigmoid gates within 0.01 "
        "of 0 or 1).", 100)
    return "\n".join(lines) + "\n"


def rows_to_csv(rows, file) -> None:
    """Write rows as CSV with the COLUMNS order (None -> empty); file is a text file or a path."""
    if hasattr(file, "write"):
        writer = csv.DictWriter(file, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        return
    with atomic.replacing(file) as fh:
        rows_to_csv(rows, fh)


# ---- rows as data -------------------------------------------------------------------------------
def jsonable(row):
    """A row with plain Python numbers; NaN becomes None (JSON has no NaN)."""
    out = {}
    for k, v in row.items():
        if isinstance(v, (np.floating, float)):
            v = None if math.isnan(v) else float(v)
        elif isinstance(v, np.integer):
            v = int(v)
        out[k] = v
    return out


REQUIRED_KEYS = ("feature", "unit", "layer", "array", "metric", "score", "sign", "q")


def load_scan(path, recording=None):
    """(rows, control rows or None) from `interpret scan --json` output (a list of rows, or
    {"rows": [...], "control": [...]}), the rows checked against `recording` when given (a scan of
    another recording names units it does not have). Rows of an older scan without verdicts are
    judged here (without support columns they can be weak at most)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not valid scan JSON ({e}); write it with `interpret scan --json`") from None
    rows = data.get("rows") if isinstance(data, dict) else data
    control = data.get("control") if isinstance(data, dict) else None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ValueError(f"{path} is not a list of scan rows; write it with `interpret scan --json`")
    if control is not None and not (isinstance(control, list) and all(isinstance(r, dict) for r in control)):
        raise ValueError(f"{path}: 'control' is not a list of scan rows; write it with `interpret scan --json`")
    for r in rows + (control or []):
        if "feature_kind" in r:  # scans written before the columns were renamed
            r.setdefault("feature_type", r.pop("feature_kind"))
        if "kind" in r:
            r.setdefault("array", r.pop("kind"))
    for r in rows:
        missing = [k for k in REQUIRED_KEYS if k not in r]
        if missing:
            raise ValueError(f"{path}: a row lacks {', '.join(missing)}; write it with `interpret scan --json`")
    if recording is not None:
        _check_rows_fit(path, rows, recording)
    if any("verdict" not in r for r in rows):
        add_verdicts(rows, control)
    return rows, control


def load_scan_json(path, recording=None):
    """The rows of load_scan."""
    return load_scan(path, recording)[0]


def _check_rows_fit(path, rows, recording):
    sizes = {(layer, array): n for layer, array, n in recording.array_list()}
    for r in rows:
        n = sizes.get((r.get("layer"), r.get("array")))
        unit = r.get("unit")
        if n is None or not isinstance(unit, int) or not 0 <= unit < n:
            raise ValueError(f"{path} names layer {r.get('layer')} array {r.get('array')!r} unit {unit}, "
                             f"which {recording.path} does not have; the scan is of another "
                             "recording: scan this one with `interpret scan REC --json`")
