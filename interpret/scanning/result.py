"""scan(recording, features) -> Scan: every unit against every feature, judged, as one object.

A Scan holds the rows (one dict per (feature, unit), see COLUMNS), the untrained control's rows
(or None) and prints as the command line's table; in Jupyter it shows as an HTML table.
"""
from __future__ import annotations

import html
import json

from interpret._util import atomic
from interpret.features.choose import SNIFF, choose_features
from interpret.features.registry import Feature
from interpret.scanning.common import COLUMNS
from interpret.scanning.rows import format_table, jsonable, load_scan, rows_to_csv, top_rows
from interpret.scanning.run import judged

CONTROLS = ("untrained", "none")


def scan(recording, features=None, *, control="untrained", layer=None, arrays=None, n_shifts=200, seed=0,
         regexes=(), feature_files=(), progress=None) -> Scan:
    """Scan a Recording: features are names ('all' for every built-in), Feature objects, or None
    (the built-ins whose domain fits the text); arrays e.g. "h,c" or ["h", "c"] (default: all).
    control "untrained" also scans a fresh model of the same shape, which a cell must beat."""
    if control not in CONTROLS:
        raise ValueError(f"control {control!r} is not one of {', '.join(CONTROLS)}")
    if isinstance(features, (str, Feature)):
        features = [features]
    names = [f for f in features or () if isinstance(f, str)]
    given = [f for f in features or () if isinstance(f, Feature)]
    chosen = choose_features(recording.head(SNIFF), names, regexes, feature_files) if names or not given else []
    feats = chosen + [f for f in given if f not in chosen]
    if isinstance(arrays, (list, tuple)):
        arrays = ",".join(arrays)
    rows, control_rows = judged(recording, feats, control=control == "untrained", layer=layer, array=arrays,
                                n_shifts=n_shifts, seed=seed, progress=progress)
    return Scan(rows, control_rows)


class Scan:
    """A scan's rows (and the untrained control's, or None), best first per feature."""

    def __init__(self, rows, control=None):
        self.rows, self.control = list(rows), None if control is None else list(control)

    @classmethod
    def load(cls, path, recording=None) -> Scan:
        """A scan saved by to_json or `interpret scan --json`, checked against the recording if given."""
        return cls(*load_scan(path, recording))

    @property
    def features(self) -> list[str]:
        return list(dict.fromkeys(r["feature"] for r in self.rows))

    def top(self, feature=None, n=5, q_max=None) -> list[dict]:
        """The n best rows of one feature (or of each feature)."""
        return top_rows(self.rows, feature=feature, top=n, q_max=q_max)

    def cells(self) -> list[dict]:
        """The rows judged cell, best first."""
        return [r for r in self.top(n=len(self.rows)) if r.get("verdict") == "cell"]

    def table(self, top=5) -> str:
        return format_table(self.rows, top=top, control_rows=self.control)

    def __str__(self):
        return self.table()

    def __repr__(self):
        return f"<Scan: {len(self.rows)} rows, {len(self.features)} features, {len(self.cells())} cells>"

    def to_dict(self, top=None) -> dict:
        """{"rows": [...], "control": [...] or None}, JSON-ready (NaN as None)."""
        pick = (lambda rs: top_rows(rs, top=top)) if top else list
        ctrl = None if self.control is None else [jsonable(r) for r in pick(self.control)]
        return {"rows": [jsonable(r) for r in pick(self.rows)], "control": ctrl}

    def to_json(self, path=None, top=None):
        """The JSON text, one row a line; written atomically to path when given. Each row goes
        through json's C encoder (indent=None): an indented dump runs its Python one, twice as
        slow (0.55 against 0.27 s for the demo's 14,336 rows)."""
        d = self.to_dict(top)
        text = ('{"rows": ' + _rows_json(d["rows"]) + ',\n"control": ' +
                ("null" if d["control"] is None else _rows_json(d["control"])) + "}")
        if path is not None:
            atomic.write_text(path, text + "\n")
        return text

    def to_csv(self, file, top=None):
        rows_to_csv(top_rows(self.rows, top=top) if top else self.rows, file)

    def _repr_html_(self):
        cols = [c for c in ("feature", "layer", "array", "unit", "metric", "score", "beyond_char", "q",
                            "saturated", "verdict") if c in COLUMNS]
        head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(r.get(c)))}</td>" for c in cols) + "</tr>"
                       for r in self.top(n=3))
        return (f"<p>{html.escape(repr(self))}</p><table><thead><tr>{head}</tr></thead>"
                f"<tbody>{body}</tbody></table>")


def _rows_json(rows):
    """A JSON list of the row dicts, one a line."""
    return "[\n" + ",\n".join(json.dumps(r) for r in rows) + "\n]"


def _cell(v):
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1e-3 and v else f"{v:.3f}"
    return "" if v is None else str(v)

