"""The gallery page: one section per cell (its excerpt, its trace, its statistics), one line per feature without one."""
import numpy as np

from interpret.export.html import check_values, escape, excerpt_html, is_binary, legend_html, page_html

TRACE_W, TRACE_H = 900, 90  # the trace's drawing box (SVG user units; it scales to the page width)


def _fmt_stat(x):
    """A score, q-value or control for the stats line."""
    if x is None:
        return "n/a"
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        x = float(x)
        if x != x:
            return "n/a"
        return f"{x:.2e}" if 0 < abs(x) < 1e-3 else f"{x:.3f}"
    return str(x)


def _fmt_sign(s):
    """+1 / -1 / '+' / '-' as '+' or '−'."""
    if isinstance(s, str):
        return {"-": "−", "+": "+"}.get(s.strip(), s)
    if isinstance(s, (int, float, np.integer, np.floating)) and s == s and s != 0:
        return "+" if s > 0 else "−"
    return _fmt_stat(s)


_REQUIRED = ("feature", "unit", "layer", "array", "text", "values")


def trace_svg(values, text="", feature=None, feature_label="feature"):
    """An inline SVG trace of one unit over an excerpt: the unit (-1..1, blue), the feature scaled
    0..1 over the excerpt (grey steps) and a faint tick at every line end, so a cell that falls
    at each newline or steps with the braces is seen at a glance. Static: no script."""
    v = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float64)), -1, 1)  # (T,)
    n = len(v)
    if n < 2:
        return ""
    x = np.arange(n) * (TRACE_W / (n - 1))
    y = (1 - v) * (TRACE_H / 2)  # +1 at the top, -1 at the bottom
    parts = [f'<svg class="trace" viewBox="0 0 {TRACE_W} {TRACE_H}" preserveAspectRatio="none" '
             f'role="img" aria-label="{escape("trace of the unit and " + feature_label)}">',
             f'<line x1="0" y1="{TRACE_H / 2}" x2="{TRACE_W}" y2="{TRACE_H / 2}" class="zero"/>']
    ends = [k for k, ch in enumerate(text[:n]) if ch == "\n"]
    if ends:
        parts.append('<path class="eol" d="' + "".join(f"M{x[k]:.1f} 0V{TRACE_H}" for k in ends) + '"/>')
    if feature is not None:
        f = np.nan_to_num(np.asarray(feature, dtype=np.float64))
        span = np.ptp(f)
        fy = TRACE_H - 4 - (f - f.min()) / (span if span else 1) * (TRACE_H - 8)
        parts.append(f'<polyline class="feat" points="{_points(x, fy)}"/>')
    parts.append(f'<polyline class="unit" points="{_points(x, y)}"/></svg>')
    return "".join(parts)


def _points(x, y):
    return " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(x, y))


def _section(i, e):
    """One gallery section: heading, stats line, coloured excerpt (with the feature track)."""
    missing = [k for k in _REQUIRED if k not in e]
    if missing:
        raise ValueError(f"gallery entry {i} ({e.get('feature', '?')}) is missing keys {missing}; "
                         f"each entry needs {list(_REQUIRED)}")
    text, start = e["text"], int(e.get("start", 0))
    v = check_values(text, e["values"])
    array = str(e["array"])
    if e.get("tanh"):
        v, array = np.tanh(v), f"tanh({array})"
    heading = f"{e['feature']} — layer {e['layer']} {array} unit {e['unit']}"
    stats = []
    if "metric" in e or "score" in e:
        stats.append(f"{e.get('metric', 'score')} {_fmt_stat(e.get('score'))}")
    if "sign" in e:
        stats.append(f"sign {_fmt_sign(e['sign'])}")
    if "q" in e:
        stats.append(f"q {_fmt_stat(e['q'])}")
    if "beyond_char" in e:
        stats.append(f"beyond char {_fmt_stat(e['beyond_char'])}")
    if e.get("pearson_r") is not None:  # scan rows of ordinal features: r beside rho
        stats.append(f"Pearson r {_fmt_stat(e['pearson_r'])}")
    if e.get("saturated") is not None:
        stats.append(f"saturated {_fmt_stat(e['saturated'])}")
    stats.append(f"chars {start}–{start + len(text) - 1}" if text else "empty excerpt")
    track, note = None, ""
    trace = ""
    if e.get("trace", True) and len(text) > 1:
        ft = e.get("feature_trace", e.get("feature_values"))
        ft = None if ft is None else check_values(text, ft, "feature_trace")
        trace = (trace_svg(v, text, ft, str(e["feature"])) +
                 f'<p class="note">trace: the unit (blue, −1 to +1), {escape(e["feature"])} '
                 f'(grey, scaled to this excerpt), line ends (faint ticks)</p>\n')
    fv = e.get("feature_values")
    if fv is not None:
        fv = check_values(text, fv, "feature_values")
        if is_binary(fv):
            track = fv
            note = (f'<p class="note"><span class="f">&nbsp;&nbsp;&nbsp;&nbsp;</span> '
                    f"underline: {escape(e['feature'])} = 1</p>\n")
    return (f'<section id="e{i}"><h3>{escape(heading)}</h3>\n'
            f'<p class="stats">{escape(" · ".join(stats))}</p>\n{trace}{note}'
            + excerpt_html(text, v, start=start, track=track, track_label=str(e["feature"]))
            + "</section>")


def gallery_page(entries, *, title="interpret: interpretable cells", intro="", no_cells=None):
    """One page with a section per entry, grouped by entry["group"] (default: its feature; groups in
    order of first appearance); no_cells: {feature: one line} for features shown without an excerpt."""
    groups = {}  # group -> [(input index, entry)]; dicts keep insertion order
    for i, e in enumerate(entries):
        if not isinstance(e, dict):
            raise TypeError(f"gallery entry {i} must be a dict, got {type(e).__name__}")
        groups.setdefault(str(e.get("group", e.get("feature", "?"))), []).append((i, e))
    body = [f"<h1>{escape(title)}</h1>"]
    if intro:
        body.append(f'<p class="sub">{escape(intro)}</p>')
    body.append(legend_html("activation (−1 red, 0 white, +1 blue; values clipped to ±1)"))
    if groups:
        items = "".join(f'<li><a href="#g{g}">{escape(f)}</a> ({len(es)})</li>'
                        for g, (f, es) in enumerate(groups.items()))
        body.append(f"<nav><ul>{items}</ul></nav>")
    elif not no_cells:
        body.append('<p class="note">no entries</p>')
    for g, (name, es) in enumerate(groups.items()):
        body.append(f'<h2 id="g{g}">{escape(name)}</h2>')
        body.extend(_section(i, e) for i, e in es)
    if no_cells:
        items = "".join(f"<li><b>{escape(f)}</b>: {escape(line)}</li>" for f, line in no_cells.items())
        body.append(f'<h2 id="none">Features without a cell</h2><ul class="nocell">{items}</ul>')
    return page_html(title, "\n".join(body))
