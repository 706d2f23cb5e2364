"""One unit over an excerpt of a recording, as a page; the values a page shows (cell states through tanh)."""
import html

import numpy as np

from interpret._util import atomic

from interpret.export.html import unit_page


# ---- excerpts and pages -------------------------------------------------------------------------
class Page(str):
    """A self-contained HTML page (a str) that Jupyter shows inline, in an iframe so its style
    stays its own; save(path) writes it atomically."""

    def _repr_html_(self):
        return (f'<iframe srcdoc="{html.escape(self, quote=True)}" style="width:100%;height:420px;'
                'border:1px solid #ddd" sandbox></iframe>')

    def save(self, path):
        atomic.write_text(path, str(self))
        return path


def display_values(kind, values):
    """What colours show: cell states through tanh (as the paper did), everything else as is."""
    values = np.asarray(values, dtype=np.float64)
    return np.tanh(values) if kind == "c" else values


def unit_export(recording, unit, *, start=0, length=3000, layer=None, kind=None):
    """A page with the excerpt text[start:start+length] coloured by one unit."""
    entry = recording.find(layer, kind)
    n_units = entry["n_units"]
    if not 0 <= unit < n_units:
        raise ValueError(f"unit {unit} is out of range: layer {entry['layer']} {entry['kind']} has "
                         f"{n_units} units (0-{n_units - 1})")
    if start >= recording.n_chars:
        raise ValueError(f"--start {start} is past the end of the recording ({recording.n_chars} characters)")
    end = min(recording.n_chars, start + length)
    acts = recording.activations(entry["layer"], entry["kind"])
    values = display_values(entry["kind"], acts[start:end, unit])
    title = f"layer {entry['layer']} {entry['kind']} unit {unit}"
    subtitle = f"characters {start}-{end - 1} of {recording.n_chars} in {recording.path}"
    legend = "activation (tanh of cell state)" if entry["kind"] == "c" else f"activation ({entry['kind']})"
    return Page(unit_page(recording.text[start:end], values, start=start, title=title,
                            subtitle=subtitle, legend=legend))
