"""The gallery: one page with the cells a scan found, each shown at work, and one line for every
feature without a cell (its best unit and the untrained control's), so noise is never dressed up.

Which rows get an excerpt: rows whose verdict is `cell` (verdict.py), the best `top` per feature.
Where the excerpt sits: the window in which the feature and the unit change together most
(sum over the window of |unit step| at the characters where the feature does something other
than its usual step: a quote opening or closing, a line end, a brace), the changes centred,
started at a line start when one is near.
"""
import numpy as np

from interpret.export.gallery_html import gallery_page
from interpret import features as F
from interpret.export.unit import display_values
from interpret.scanning.rows import top_rows
from interpret.scanning.verdict import control_best


def pick_window(text, feature, unit, length):
    """Start of the length-character window where feature and unit (both (N,) or None) change together."""
    n = len(text)
    if n <= length:
        return 0
    if feature is None or unit is None:
        start = n // 10
    else:
        df = np.diff(np.asarray(feature, dtype=np.float64))
        events = df != np.median(df)  # a toggle, a reset at a line end, a brace: not the usual step
        w = np.concatenate([[0.0], events * np.abs(np.diff(np.asarray(unit, dtype=np.float64)))])
        sums = np.concatenate([[0.0], np.cumsum(w)])
        totals = sums[length:] - sums[:n - length + 1]
        best = np.flatnonzero(totals >= totals.max() - 1e-12 * max(1.0, totals.max()))
        start = int(best[len(best) // 2])  # the middle of equally good windows: the changes centred
    line_start = text.rfind("\n", 0, start) + 1
    return line_start if start - line_start < length // 10 else start


def cell_rows(rows, top):
    """The best `top` rows per feature whose verdict is cell, features in order of appearance."""
    out = []
    for name in dict.fromkeys(r["feature"] for r in rows):
        out += top_rows([r for r in rows if r["feature"] == name and r.get("verdict") == "cell"],
                        feature=name, top=top)
    return out


def no_cell_lines(rows, control_rows):
    """{feature: one line} for every feature without a cell, e.g. 'no cell: best spearman_rho 0.074
    (layer 0 c unit 40, verdict none); untrained control 0.080'."""
    ctrl = control_best(control_rows) if control_rows is not None else {}
    out = {}
    for name in dict.fromkeys(r["feature"] for r in rows):
        mine = [r for r in rows if r["feature"] == name]
        if any(r.get("verdict") == "cell" for r in mine):
            continue
        best = top_rows([r for r in mine if r.get("score") is not None], feature=name, top=1)
        if not best:
            out[name] = "constant on this text: not scored"
            continue
        b = best[0]
        line = (f"no cell: best {b['metric']} {b['score']:.3f} (layer {b['layer']} {b['array']} unit {b['unit']}, "
                f"verdict {b.get('verdict') or 'not judged'})")
        if name in ctrl:
            line += f"; untrained control {ctrl[name]:.3f}"
        out[name] = line
    return out


def entries(recording, rows, feats, *, top=1, length=500, group_prefix=""):
    """Gallery entries (gallery_html.gallery_page) for the cell rows of one recording, grouped by
    group_prefix + feature."""
    text, by_name = recording.text, {f.name: f for f in feats}
    out = []
    for row in cell_rows(rows, top):
        f = by_name.get(row["feature"])
        fv = F.evaluate(f, text, recording.doc_starts) if f else None
        shown = display_values(row["array"], recording.activations(row["layer"], row["array"])[:, int(row["unit"])])
        start = pick_window(text, fv, shown, length)
        end = min(len(text), start + length)
        out.append(dict(row, text=text[start:end], start=start, values=shown[start:end],
                        feature_values=None if fv is None or f.type != "binary" else fv[start:end],
                        feature_trace=None if fv is None else fv[start:end],
                        group=group_prefix + row["feature"]))
    return out


def known_features(names, feature_extra=((), ())):
    """The Feature objects for these names: built-ins, plus regex and file features."""
    regexes, files = feature_extra
    custom = [F.regex_feature(s) for s in regexes]
    for p in files:
        custom += F.load_feature_file(p)
    known = {f.name: f for f in F.get_features(None) + custom}
    return [known[n] for n in names if n in known]


INTRO = ("Only units whose verdict is cell get an excerpt: q < 0.01, a large effect (AUROC >= 0.8 or "
         "|Spearman rho| >= 0.6) that survives taking out the current character, a clear margin over an "
         "untrained network of the same shape, enough support, not stuck. Cell states are shown (and "
         "scored) through tanh. Each excerpt is placed where the feature and the unit change together.")


def gallery(recording, rows, control_rows=None, *, top=1, length=500, feature_extra=((), ())):
    """The whole gallery page for one recording's scan."""
    feats = known_features(sorted({r["feature"] for r in rows}), feature_extra)
    intro = (f"{recording.n_chars} characters from {len(recording.documents)} document(s). " + INTRO)
    return gallery_page(entries(recording, rows, feats, top=top, length=length), intro=intro,
                               no_cells=no_cell_lines(rows, control_rows))
