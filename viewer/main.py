"""The interpret viewer: the text coloured per character by one unit, live, like the lecture figures.

Run: bokeh serve viewer --address 127.0.0.1 --args REC [--scan SCAN.json]
 (or: interpret view REC [--scan SCAN.json])

Flat, in order: data -> sources -> figures -> widgets -> callbacks -> layout. Colours are mapped in
the browser (a LinearColorMapper on an image of the window's activations, one pixel per character
cell), so switching units sends that one field and nothing else about the text. Only a window of
the text is ever sent; whole-text summaries (histogram, top contexts) are computed on worker
threads and sent after the new colours.
"""
import os
import sys

import numpy as np
from bokeh.io import curdoc
from bokeh.layouts import column, row
from bokeh.core.properties import value
from bokeh.events import DocumentReady
from bokeh.models import (Button, ColorBar, ColumnDataSource, CustomJSHover, Div, HoverTool, LinearColorMapper,
                          MultiSelect, NumericInput, Range1d, Select, Slider, TextInput)
from bokeh.plotting import figure

from interpret.export.unit import unit_export
from interpret.export.html import write_html

from . import data, layout, summaries

CHAR_PX, ROW_PX = 9, 20  # one character cell on screen
WINDOWS = ["1000", "3000", "5000", "10000"]  # characters sent to the browser at a time

doc = curdoc()
doc.title = "interpret viewer"

# ---- data ---------------------------------------------------------------------------------------
try:
    view = data.open_view(*data.parse_args(sys.argv[1:]))
except ValueError as e:  # bad arguments: a readable panel in the page, the server keeps running
    view = None
    doc.add_root(Div(text=data.error_html(e), name="error", width=900))

if view is not None:
    layer, kind, unit0, feature0 = view.first()  # with a scan, its best cell

    # ---- sources --------------------------------------------------------------------------------
    # A unit switch changes one field of one source: the activations laid out as an image (one
    # pixel per character cell, coloured in the browser). The rest is static per window: cells (for
    # hover), chars (the glyphs), track (the feature under each character).
    grid_src = ColumnDataSource(dict(image=[], x=[], y=[], dw=[], dh=[]), name="grid_source")
    cells_src = ColumnDataSource(dict(x=[], y=[], pos=[], ch=[], fval=[]), name="cells_source")
    chars_src = ColumnDataSource(dict(x=[], y=[], ch=[]), name="chars_source")
    track_src = ColumnDataSource(dict(x=[], y=[], pos=[], feat=[]), name="track_source")
    trace_src = ColumnDataSource(dict(x=[], lo=[], hi=[], mid=[], feat=[]), name="trace_source")
    mark_src = ColumnDataSource(dict(x=[], y=[], pos=[]), name="mark_source")
    hist_src = ColumnDataSource(dict(left=[], right=[], on=[], off=[]), name="hist_source")

    # ---- figures --------------------------------------------------------------------------------
    mapper = LinearColorMapper(palette=layout.palette(), low=-1, high=1, nan_color="#ffffff")
    width = (layout.WRAP + 1) * CHAR_PX
    text_fig = figure(name="text_figure", width=width, height=400, tools="", toolbar_location=None,
                      x_range=Range1d(-0.5, layout.WRAP + 0.5), y_range=Range1d(-10, 0.5), min_border=0,
                      outline_line_color=None)
    text_fig.axis.visible = False
    text_fig.grid.visible = False
    # The colours are the only thing on the canvas's primary layer; glyphs, track, marks and the
    # (invisible) hover cells sit on its overlay layer, which bokeh leaves alone when only colours change.
    text_fig.image(image="image", x="x", y="y", dw="dw", dh="dh", source=grid_src, color_mapper=mapper,
                   name="colours")
    cells = text_fig.rect("x", "y", 1, 1, source=cells_src, fill_alpha=0, line_color=None, level="overlay",
                          name="cells")
    text_fig.rect("x", "y", 0.92, 0.13, source=track_src, fill_color="#222", fill_alpha="feat",
                  line_color=None, name="track", level="overlay")
    text_fig.text("x", "y", text="ch", source=chars_src, text_align="center", text_baseline="middle",
                  text_font=value("DejaVu Sans Mono, Menlo, Consolas, monospace"), text_font_size="14px",
                  text_color="#111", name="chars", level="overlay")
    text_fig.rect("x", "y", 1, 1, source=mark_src, fill_color=None, line_color="#000", line_width=2,
                  level="overlay")
    act_at = CustomJSHover(args=dict(grid=grid_src, cells=cells_src), code="""
        const img = grid.data.image[0], [rows, cols] = img.shape, i = special_vars.index;
        const v = img[(rows - 1 + cells.data.y[i]) * cols + cells.data.x[i]];
        return Number.isNaN(v) ? "n/a" : v.toFixed(3);""")
    text_fig.add_tools(HoverTool(renderers=[cells], formatters={"@x": act_at}, tooltips=[  # @x: just a hook
        ("char", "@ch"), ("position", "@pos"), ("activation", "@x{custom}"), ("feature", "@fval{0.[000]}")]))
    # The bar gets its own mapper: one that maps data re-lays out its colour bar, repainting everything.
    text_fig.add_layout(ColorBar(color_mapper=LinearColorMapper(palette=layout.palette(), low=-1, high=1),
                                 orientation="horizontal", width=320, height=12,
                                 title="activation: \u22121 red \u00b7 0 white \u00b7 +1 blue",
                                 location=(0, 0)), "above")

    trace_fig = figure(name="trace_figure", width=width, height=170, tools="xpan,xwheel_zoom,reset",
                       toolbar_location="right", x_range=Range1d(0, 1), y_range=Range1d(-1.08, 1.08),
                       title="the unit over the window: mean, and min\u2013max band (grey: the feature, 0\u20131)")
    trace_fig.line("x", "feat", source=trace_src, color="#aaaaaa", line_width=1.5)
    trace_fig.varea("x", "lo", "hi", source=trace_src, fill_color="#1f5ecc", fill_alpha=0.25)
    trace_fig.line("x", "mid", source=trace_src, color="#1f5ecc", line_width=1.2)

    hist_fig = figure(name="hist_figure", width=460, height=250, tools="", toolbar_location=None,
                      title="the unit over the whole text, split by the feature")
    hist_fig.quad(left="left", right="right", bottom=0, top="off", source=hist_src, fill_color="#9e9e9e",
                  fill_alpha=0.55, line_color=None, legend_label="off")
    hist_fig.quad(left="left", right="right", bottom=0, top="on", source=hist_src, fill_color="#e6550d",
                  fill_alpha=0.55, line_color=None, legend_label="on")
    hist_fig.legend.location = "top_center"
    hist_fig.legend.background_fill_alpha = 0.7
    hist_fig.yaxis.axis_label = "density"
    hist_fig.xaxis.axis_label = "activation"

    # ---- widgets --------------------------------------------------------------------------------
    header = Div(name="header", css_classes=["header"], text=view.header_html())
    kind_select = Select(name="kind_select", title="layer \u00b7 kind", value=f"{layer}:{kind}",
                         options=view.kind_labels(), width=170)
    feature_select = Select(name="feature_select", title="feature", value=feature0,
                            options=list(view.features), width=170)
    unit_select = Select(name="unit_select", title="unit (ranked by the scan)", width=330)
    unit_input = NumericInput(name="unit_input", title="unit #", value=unit0, low=0, mode="int", width=80,
                              high=view.n_units(layer, kind) - 1)
    prev_unit = Button(name="prev_unit", label="\u25c0 unit", width=70, align="end")
    next_unit = Button(name="next_unit", label="unit \u25b6", width=70, align="end")
    window_select = Select(name="window_select", title="characters shown", value="3000", options=WINDOWS,
                           width=120)
    prev_page = Button(name="prev_page", label="\u25c0 page", width=70, align="end")
    next_page = Button(name="next_page", label="page \u25b6", width=70, align="end")
    start_slider = Slider(name="start_slider", title="window start", start=0, end=max(1, view.n - 1),
                          value=0, step=1, width=330)
    jump_input = NumericInput(name="jump_input", title="jump to position", mode="int", low=0,
                              high=view.n - 1, width=120)
    search_input = TextInput(name="search_input", title="search", placeholder="text to find", width=160)
    find_next = Button(name="find_next", label="find next", width=80, align="end")
    status = Div(name="status", css_classes=["status"], width=1300, height=22)
    contexts = MultiSelect(name="contexts", title="top-activating contexts (click one to jump there)",
                           options=[], size=17, width=460, css_classes=["contexts"])
    export_path = TextInput(name="export_path", title="export this view as static HTML to",
                            value=os.path.abspath("interpret-view.html"), width=330)
    export_button = Button(name="export_button", label="export", width=80, align="end")
    export_status = Div(name="export_status", css_classes=["status"], width=460)

    # ---- callbacks ------------------------------------------------------------------------------
    def current():
        """(layer, kind, unit, feature, start, length) as the widgets say."""
        lay, knd = kind_select.value.split(":", 1)
        return int(lay), knd, int(unit_input.value), feature_select.value, int(start_slider.value), \
            int(window_select.value)

    def unit_values():
        lay, knd, unit, _, start, length = current()
        return view.window_values(lay, knd, unit, start, min(view.n, start + length))

    def draw_window():
        """New window: every column of every text source, the figure's height, the status line."""
        _, _, _, _, start, length = current()
        w = view.window(start, min(view.n, start + length))
        cols = w["cols"]
        act = unit_values()
        grid_src.data = dict(image=[view.grid(act, start, start + len(act))], x=[-0.5], y=[-w["rows"] + 0.5],
                             dw=[layout.WRAP + 1], dh=[w["rows"]])
        cells_src.data = dict(cols, fval=np.full(len(cols["x"]), np.nan, np.float32))
        env = summaries.envelope(act, start)
        trace_src.data = dict(env, feat=np.zeros(len(env["x"]), np.float32))
        chars_src.data = dict(x=cols["x"], y=cols["y"], ch=cols["ch"])
        track_src.data = dict(x=cols["x"], y=cols["y"] - 0.43, pos=cols["pos"],
                              feat=np.zeros(len(cols["x"]), np.float32))
        text_fig.y_range.start = -w["rows"] + 0.5
        text_fig.height = w["rows"] * ROW_PX + 60
        trace_fig.x_range.start, trace_fig.x_range.end = start - 0.5, start + len(cols["x"]) - 0.5
        draw_status()
        draw_feature()

    def draw_unit():
        """Same window, another unit: send only the new activations (colours map in the browser)."""
        start = current()[4]
        act = unit_values()
        grid_src.data["image"] = [view.grid(act, start, start + len(act))]
        trace_src.data.update({k: v for k, v in summaries.envelope(act, start).items() if k != "x"})
        draw_summaries()

    def draw_feature():
        """The feature's track and values over the window (computed off the event loop)."""
        _, _, _, name, start, length = current()
        unit_select.options = [(str(u), label) for u, label in view.ranked_units(*ranking_key())]

        def apply(result):
            track_src.data["feat"], cells_src.data["fval"] = result
            trace_src.data["feat"] = summaries.envelope(result[0], start)["mid"]
            draw_summaries()
        in_background("feature", lambda: view.feature_window(name, start, min(view.n, start + length)), apply)

    def ranking_key():
        lay, knd, _, name, _, _ = current()
        return name, lay, knd

    def draw_summaries():
        """Whole-text summaries of the unit: histogram split by the feature, top contexts."""
        lay, knd, unit, name, _, _ = current()

        def apply(result):
            hist, (on, off), ctx = result
            hist_src.data = hist
            hist_fig.legend.items[0].label = {"value": off}
            hist_fig.legend.items[1].label = {"value": on}
            contexts.options = summaries.context_options(ctx)
        in_background("summaries", lambda: view.summaries(lay, knd, unit, name), apply, settle=True)

    latest = {}  # what -> the token of the newest request; older results are dropped
    held = {}  # what -> request made before the browser had drawn the page
    page_drawn = []  # non-empty once the browser has sent DocumentReady

    def in_background(what, compute, apply, settle=False):
        """compute() on a worker thread, then apply(result) in this document (if still the newest)."""
        if not page_drawn:  # the first page: let the browser draw it first, then send the extras
            held[what] = (compute, apply, settle)
            return
        token = latest[what] = object()

        def deliver(result):  # on the worker thread: add_next_tick_callback is the thread-safe way in
            doc.add_next_tick_callback(lambda: apply(result) if latest.get(what) is token else None)
        data.submit(compute, deliver, settle)

    def on_ready(event):
        """The browser has drawn the page: now run what was held back."""
        page_drawn.append(True)
        for what, job in list(held.items()):
            in_background(what, *job)
        held.clear()

    def draw_status(note=""):
        lay, knd, unit, name, start, length = current()
        note = note or view.ranking_note()
        status.text = view.status_html(name, start, min(view.n, start + length), note, unit=(lay, knd, unit))

    touched = []  # non-empty once the user picked a unit or a feature: the ranking must not move them

    def poll_ranking():
        """Without --scan: show the ranking's progress; when it is done, rank the list and open its best."""
        state = view.ranking_state()
        if state is None or state["state"] == "running":
            draw_status()
            return
        doc.remove_periodic_callback(ranking_poll[0])  # the last look: `touched` is not read again
        if state["state"] == "done" and not touched:
            lay, knd, unit, name = view.first()
            kind_select.value, feature_select.value = f"{lay}:{knd}", name
            unit_input.value = unit
        unit_select.options = [(str(u), label) for u, label in view.ranked_units(*ranking_key())]
        draw_status()

    def go(start, mark=()):
        """Show the window starting at `start` (clamped, moved back to a line start if one is near)."""
        start = view.window_start(start, int(window_select.value))
        if start != start_slider.value:
            start_slider.value = start
        draw_window()
        mark_src.data = view.mark(start, int(window_select.value), list(mark))

    def on_unit_input(attr, old, new):
        n_units = view.n_units(*current()[:2])
        if new is None or not 0 <= int(new) < n_units:
            unit_input.value = old if old is not None else 0
            return
        if str(new) in dict(unit_select.options):
            unit_select.value = str(new)
        draw_unit()
        draw_status()

    def step_unit(delta):
        keys = [k for k, _ in unit_select.options]
        i = keys.index(str(unit_input.value)) if str(unit_input.value) in keys else 0
        unit_input.value = int(keys[(i + delta) % len(keys)])

    def on_kind(attr, old, new):
        n_units = view.n_units(*current()[:2])
        unit_input.high = n_units - 1
        unit_select.options = [(str(u), label) for u, label in view.ranked_units(*ranking_key())]
        if unit_input.value >= n_units:
            unit_input.value = 0  # calls draw_unit
        else:
            draw_unit()

    def on_search():
        query = search_input.value
        if not query:
            return
        after = (mark_src.data["pos"][0] + 1) if len(mark_src.data.get("pos", [])) else start_slider.value
        hit = view.find(query, after)
        if hit is None:
            draw_status(note=f"{query!r} not found")
            return
        go(hit - 200, mark=range(hit, hit + len(query)))

    def on_context(attr, old, new):
        if new:
            p = int(new[0])
            go(p - 300, mark=[p])

    def on_export():
        lay, knd, unit, _, start, length = current()
        try:
            page = unit_export(view.recording, unit, start=start, length=length, layer=lay, kind=knd)
            write_html(export_path.value, page)
            export_status.text = data.note_html(f"wrote {os.path.abspath(export_path.value)}")
        except (ValueError, OSError) as e:
            export_status.text = data.note_html(f"could not export: {e}", error=True)

    unit_input.on_change("value", on_unit_input)
    unit_input.on_change("value", lambda a, o, n: touched.append(True))
    unit_select.on_change("value", lambda a, o, n: setattr(unit_input, "value", int(n)))
    prev_unit.on_click(lambda: step_unit(-1))
    next_unit.on_click(lambda: step_unit(+1))
    kind_select.on_change("value", on_kind)
    def on_feature(attr, old, new):
        """Another feature: its ranking, and its best unit in this array (when the scan has one)."""
        touched.append(True)
        draw_feature()
        best = view.best_unit(*ranking_key())
        if best is not None and best != unit_input.value:
            unit_input.value = best  # draws the unit and the status line
        else:
            draw_status()

    feature_select.on_change("value", on_feature)
    window_select.on_change("value", lambda a, o, n: go(start_slider.value))
    start_slider.on_change("value_throttled", lambda a, o, n: go(int(n)))
    prev_page.on_click(lambda: go(start_slider.value - int(window_select.value)))
    next_page.on_click(lambda: go(start_slider.value + int(window_select.value)))
    jump_input.on_change("value", lambda a, o, n: go(int(n) - 300, mark=[int(n)]) if n is not None else None)
    search_input.on_change("value", lambda a, o, n: on_search())
    find_next.on_click(on_search)
    contexts.on_change("value", on_context)
    export_button.on_click(on_export)
    doc.on_event(DocumentReady, on_ready)
    ranking_poll = []
    if not view.rows:
        view.start_ranking()
        ranking_poll.append(doc.add_periodic_callback(poll_ranking, 500))

    # ---- layout ---------------------------------------------------------------------------------
    unit_select.options = [(str(u), label) for u, label in view.ranked_units(*ranking_key())]
    unit_select.value = str(unit0)
    draw_window()
    doc.add_root(column(
        header,
        row(kind_select, feature_select, unit_select, unit_input, prev_unit, next_unit),
        row(window_select, prev_page, start_slider, next_page, jump_input, search_input, find_next),
        status,
        row(column(trace_fig, text_fig),
            column(hist_fig, contexts,
                   row(export_path, export_button), export_status)),
        name="viewer"))
