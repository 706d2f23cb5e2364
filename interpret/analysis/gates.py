"""Gate saturation (the paper's Figure 3): how often each gate unit is nearly shut or fully open.

A gate unit is left-saturated at a character when its activation is below 0.1 and
right-saturated when it is above 0.9. Per unit, the fractions of characters spent in each
regime place it in a scatter: units along the left edge are rarely shut, the top-left corner
holds gates that are almost always open (e.g. forget gates that remember), the diagonal
holds units that switch between the two.
"""
import numpy as np

GATE_ARRAYS = {"lstm": ("i", "f", "o"), "gru": ("r", "z")}
GATE_NAMES = {"i": "input gate", "f": "forget gate", "o": "output gate", "r": "reset gate",
              "z": "update gate"}
LOW, HIGH = 0.1, 0.9
CHUNK = 1 << 16


def saturation(recording, progress=None):
    """[{layer, array, left (n_units,), right (n_units,)}] for every gate array in the recording.

    progress(n) is called per chunk of rows read (n_chars x the number of gate arrays in all).
    """
    gates = [(l, k, n) for l, k, n in recording.array_list() if k in GATE_NAMES]
    if not gates:
        have = ", ".join(sorted({k for _, k, _ in recording.array_list()}))
        raise ValueError(f"the recording has no gate arrays (it has arrays: {have}); "
                         "record an LSTM or GRU model")
    arrays = [(layer, array, n_units, recording.activations(layer, array)) for layer, array, n_units in gates]
    out = []  # every array opened (and checked) above, before any is read
    for layer, array, n_units, acts in arrays:
        left = np.zeros(n_units, dtype=np.int64)
        right = np.zeros(n_units, dtype=np.int64)
        for a in range(0, recording.n_chars, CHUNK):  # memory-mapped: a chunk at a time
            block = np.asarray(acts[a:a + CHUNK])
            if not np.isfinite(block).all():
                row = a + int(np.argmax(~np.isfinite(block).all(axis=1)))
                raise ValueError(f"{recording.path}: layer {layer} gate {array} has NaN or Inf at character "
                                 f"{row}; the recording is damaged, record again")
            left += (block < LOW).sum(axis=0)
            right += (block > HIGH).sum(axis=0)
            if progress:
                progress(len(block))
        out.append({"layer": layer, "array": array, "left": left / recording.n_chars,
                    "right": right / recording.n_chars})
    return out


def as_json(sat, n_chars):
    """Plain numbers for `--json`: thresholds, and per (layer, gate) the per-unit fractions."""
    return {"low": LOW, "high": HIGH, "n_chars": int(n_chars),
            "gates": [{"layer": int(s["layer"]), "array": s["array"], "name": GATE_NAMES[s["array"]],
                       "left": [round(float(x), 6) for x in s["left"]],
                       "right": [round(float(x), 6) for x in s["right"]]} for s in sat]}


def page(sat, title):
    """A standalone HTML page (Bokeh, resources inline): one scatter per gate type."""
    from bokeh.embed import file_html
    from bokeh.layouts import column, row
    from bokeh.models import ColumnDataSource, Div, HoverTool, Legend, LegendItem
    from bokeh.palettes import Category10
    from bokeh.plotting import figure
    from bokeh.resources import INLINE

    arrays = [k for k in ("i", "f", "o", "r", "z") if any(s["array"] == k for s in sat)]
    layers = sorted({s["layer"] for s in sat})
    colours = Category10[10]
    figs = []
    for array in arrays:
        fig = figure(width=340, height=340, title=GATE_NAMES[array], x_range=(-0.02, 1.02),
                     y_range=(-0.02, 1.02), x_axis_label=f"fraction left-saturated (< {LOW})",
                     y_axis_label=f"fraction right-saturated (> {HIGH})", tools="pan,wheel_zoom,reset,save")
        fig.line([0, 1], [1, 0], line_color="#bbbbbb", line_dash="dashed")
        items = []
        for s in (s for s in sat if s["array"] == array):
            src = ColumnDataSource({"x": s["left"], "y": s["right"], "unit": np.arange(len(s["left"]))})
            colour = colours[layers.index(s["layer"]) % 10]
            r = fig.scatter("x", "y", source=src, size=5, alpha=0.6, color=colour)
            items.append(LegendItem(label=f"layer {s['layer']}", renderers=[r]))
        fig.add_layout(Legend(items=items, location="top_right"))
        fig.add_tools(HoverTool(tooltips=[("unit", "@unit"), ("left", "@x{0.000}"), ("right", "@y{0.000}")]))
        figs.append(fig)
    note = Div(text=HOW_TO_READ, width=340 * max(1, len(figs)))
    return file_html(column(note, row(*figs)), INLINE, title)  # bokeh escapes the title


HOW_TO_READ = (
    "<p><b>How to read this.</b> One dot per gate unit. Across: the fraction of characters at which "
    f"the unit is nearly shut (below {LOW}); up: the fraction at which it is wide open (above {HIGH}). "
    "A dot near the origin is seldom saturated: it changes with the text. A dot high on the left "
    "edge is almost always open: a forget gate there keeps its cell's memory for a long time, an "
    "input gate there writes at nearly every step. Dots near the dashed diagonal are switches, "
    "open or shut and rarely in between.</p>"
    "<p><b>What the paper saw</b> (Karpathy, Johnson, Fei-Fei 2015, Figure 3, LSTMs on War and Peace "
    "and on Linux C): some forget gates are right-saturated most of the time (cells that remember "
    "over long stretches), hardly any unit is shut all the time, and the first layer's gates are "
    "much less often saturated than those of the layers above it.</p>")
