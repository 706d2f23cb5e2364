"""Static, self-contained HTML: text coloured per character by one unit, like the lecture figures.

Colours follow the paper: -1 red, 0 white, +1 blue, values clipped to [-1, 1] and quantised to
N_BINS (odd) bins, one CSS class each, so that 0 is exactly white; NaN is `bn`. Runs of one bin
are one <i> element whose title gives the run's absolute positions and min ... max, which keeps a
page under 40 bytes per character. Pure HTML + CSS, no JavaScript, no external resources; the
excerpt's text, concatenated, gives back the excerpt exactly (a pre-wrap div, not <pre>).
"""
import html

import numpy as np

from interpret._util import atomic

N_BINS = 21  # odd, so value 0 falls in the middle bin, which is pure white
NAN_BIN = -1  # what colour_bins returns for NaN
RED = (214, 39, 40)  # colour of -1
BLUE = (31, 94, 204)  # colour of +1
NAN_COLOUR = "#d9d9d9"
TRACK_COLOUR = "#222"
MONO = 'ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", "Liberation Mono", monospace'


def escape(s):
    """Escape any value for text or a quoted attribute."""
    return html.escape(str(s), quote=True)


def colour_bins(values, n_bins=N_BINS):
    """Map values to bin indices 0..n_bins-1 (-1 -> 0, 0 -> n_bins//2, +1 -> n_bins-1); NaN -> -1."""
    if n_bins < 3 or n_bins % 2 == 0:
        raise ValueError(f"n_bins must be an odd number >= 3 so that 0 maps to white, got {n_bins}")
    v = np.asarray(values, dtype=np.float64)
    nan = np.isnan(v)
    x = (np.clip(np.where(nan, 0.0, v), -1.0, 1.0) + 1.0) * 0.5 * (n_bins - 1)
    bins = np.floor(x + 0.5).astype(np.int64)  # round half up, the same rule at every bin edge
    bins[nan] = NAN_BIN
    return bins


def bin_colour(k, n_bins=N_BINS):
    """The (r, g, b) background of bin k: red -> white -> blue."""
    v = 2.0 * k / (n_bins - 1) - 1.0  # the bin's centre value
    end = RED if v < 0 else BLUE
    a = abs(v)
    return tuple(round(255 + (c - 255) * a) for c in end)


def _text_colour(rgb):
    """Black or white, whichever reads better on rgb (WCAG relative luminance)."""
    lin = [(c / 255) / 12.92 if c <= 10 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in rgb]
    lum = 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
    return "#000" if (lum + 0.05) / 0.05 >= 1.05 / (lum + 0.05) else "#fff"


def _css(n_bins=N_BINS):
    """The page's one style sheet: layout, one class per colour bin, NaN, feature track."""
    rules = [
        "body{margin:0;background:#f7f7f5;color:#222;font:15px/1.45 system-ui,-apple-system,"
        '"Segoe UI",Roboto,Helvetica,Arial,sans-serif}',
        "main{max-width:96ch;margin:0 auto;padding:1.2em 1.5em 3em}",
        "h1{font-size:1.35em;margin:.2em 0 .1em}h2{font-size:1.15em;margin:1.6em 0 .4em;"
        "padding-bottom:.2em;border-bottom:2px solid #bbb}h3{font-size:1em;margin:0 0 .2em}",
        ".sub,.stats,.note{color:#555;margin:.2em 0 .6em}.stats{font-size:.9em}",
        f".stats,.legend .ticks,.excerpt{{font-family:{MONO}}}",
        ".legend{display:flex;align-items:center;gap:1em;flex-wrap:wrap;margin:.8em 0;font-size:.85em}",
        ".legend .bar{display:flex;border:1px solid #999}.legend .bar span{width:12px;height:14px}",
        ".legend .ticks{display:flex;justify-content:space-between;font-size:.85em}",
        ".legend .nan{display:inline-block;width:12px;height:14px;border:1px solid #999;"
        "vertical-align:middle}",
        ".excerpt i{font-style:normal}",
        f".excerpt{{white-space:pre-wrap;overflow-wrap:anywhere;tab-size:8;font-size:13.5px;"
        f"line-height:1.6;background:#fff;border:1px solid #ddd;border-radius:4px;padding:.8em 1em;"
        f"margin:.4em 0}}",
        "section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.9em 1.1em;"
        "margin:1em 0}section .excerpt{border:0;padding:.2em 0;margin:0}",
        "nav ul{margin:.3em 0;padding-left:1.3em}a{color:#1f5ecc}",
        ".trace{display:block;width:100%;height:90px;background:#fafafa;border:1px solid #eee}",
        ".trace .zero{stroke:#ccc;stroke-width:1}.trace .eol{stroke:#e4e4e4;stroke-width:1}",
        ".trace polyline{fill:none;vector-effect:non-scaling-stroke}",
        ".trace .unit{stroke:#1f5ecc;stroke-width:1.5}.trace .feat{stroke:#999;stroke-width:1}",
        f".bn{{background-color:{NAN_COLOUR}}}",
        f".f{{background-image:linear-gradient({TRACK_COLOUR},{TRACK_COLOUR});"
        "background-size:100% 2px;background-position:0 100%;background-repeat:no-repeat}",
    ]
    for k in range(n_bins):
        rgb = bin_colour(k, n_bins)
        fg = _text_colour(rgb)
        rules.append(".b%d{background-color:#%02x%02x%02x%s}" % (k, *rgb, "" if fg == "#000" else ";color:#fff"))
    return "\n".join(rules)


def _fmt_value(v):
    """An activation with 3 decimals ('n/a' for NaN, no '-0.000')."""
    return "n/a" if v != v else f"{round(float(v), 3) + 0.0:.3f}"


def check_values(text, values, name="values"):
    """values as a float (len(text),) array, or a ValueError naming the mismatch."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    v = np.asarray(values, dtype=np.float64)
    if v.shape != (len(text),):
        raise ValueError(f"{name} has shape {v.shape} but the text has {len(text)} characters; "
                         f"pass one value per character, shape ({len(text)},)")
    return v


def is_binary(feature_values):
    """True when every value is 0 or 1."""
    f = np.asarray(feature_values, dtype=np.float64)
    return bool(np.all((f == 0) | (f == 1)))


def excerpt_html(text, values, *, start=0, track=None, track_label="feature"):
    """The coloured excerpt: one <div class="excerpt"> of merged same-bin runs.

    track: optional (len(text),) 0/1 array; characters where it is 1 get a thin underline (class f)
    and their run titles end with " · {track_label}".
    """
    v = check_values(text, values)  # (T,)
    n = len(text)
    if n == 0:
        return '<div class="excerpt"></div>'
    bins = colour_bins(v)
    key = bins * 2  # a run breaks where the bin or the track changes
    if track is not None:
        on = check_values(text, track, "feature_values") == 1
        key = key + on
    else:
        on = np.zeros(n, dtype=bool)
    starts = np.concatenate(([0], np.flatnonzero(np.diff(key)) + 1))  # (R,)
    ends = np.append(starts[1:], n)
    nan = np.isnan(v)  # NaN is its own bin, so a run is all NaN or has none
    lo = np.minimum.reduceat(np.where(nan, np.inf, v), starts)  # (R,) run minimum
    hi = np.maximum.reduceat(np.where(nan, -np.inf, v), starts)  # (R,) run maximum
    # one string per run, built from whole-array pieces (no per-run function calls)
    pos = _run_positions(starts + start, ends - starts)
    val = _run_values(lo, hi, bins[starts] == NAN_BIN)
    nan_run = bins[starts] == NAN_BIN
    cls = np.where(nan_run, "bn", np.char.add("b", bins[starts].astype("U2"))).tolist()
    tracked = on[starts]
    if tracked.any():  # class names are [a-z0-9]: quotes only needed around "bK f"
        suffix = html.escape(f" · {track_label}", quote=True)
        cls = [f'"{c} f"' if f else c for c, f in zip(cls, tracked.tolist())]
        val = [v + suffix if f else v for v, f in zip(val, tracked.tolist())]
    esc, offsets = _escape_with_offsets(text, np.append(starts, n))
    parts = [f'<i class={c} title="{p}: {v}">{esc[a:b]}</i>'
             for c, p, v, a, b in zip(cls, pos, val, offsets[:-1], offsets[1:])]
    return '<div class="excerpt">' + "".join(parts) + "</div>"


# the escaped form of each character that needs one; a raw CR would become LF in the browser's
# parser, a reference stays CR
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;", "\r": "&#13;"}
_EXTRA = np.zeros(128, dtype=np.int64)  # extra length of each ASCII character once escaped
for _ch, _rep in _ESCAPES.items():
    _EXTRA[ord(_ch)] = len(_rep) - 1


def _escape_with_offsets(text, cuts):
    """(escaped text, where each cut position of text lands in it), for slicing runs."""
    esc = text.translate(str.maketrans(_ESCAPES))
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")
    extra = np.where(codes < 128, _EXTRA[np.minimum(codes, 127)], 0)   # (n,)
    moved = np.concatenate(([0], np.cumsum(extra)))                     # (n+1,)
    return esc, (cuts + moved[cuts]).tolist()


def _run_positions(first, length):
    """'1042' for a one-character run, '1042–1049' for longer ones (inclusive)."""
    a = first.tolist()
    return [str(x) if k == 1 else f"{x}–{x + k - 1}" for x, k in zip(a, length.tolist())]


def _run_values(lo, hi, nan):
    """'0.123' or '0.120 … 0.150' per run (3 decimals, no '-0.000'); 'n/a' for NaN runs."""
    lo_s = _fmt_values(np.where(nan, 0.0, lo))
    hi_s = _fmt_values(np.where(nan, 0.0, hi))
    return ["n/a" if z else (a if a == b else f"{a} … {b}")
            for a, b, z in zip(lo_s, hi_s, nan.tolist())]


def _fmt_values(v):
    """_fmt_value of many finite values ('%.3f' rounds exactly as round(x, 3) does)."""
    out = ["%.3f" % x for x in v.tolist()]
    return ["0.000" if s == "-0.000" else s for s in out]


def legend_html(legend, n_bins=N_BINS):
    """A colour bar with -1, 0, +1 ticks, the legend text and the NaN swatch."""
    step = 2.0 / (n_bins - 1)
    cells = "".join(
        f'<span class="b{k}" title="{_fmt_value(max(-1.0, -1 + (k - .5) * step))} … '
        f'{_fmt_value(min(1.0, -1 + (k + .5) * step))}"></span>' for k in range(n_bins))
    return ('<div class="legend"><div><div class="bar">' + cells + "</div>"
            '<div class="ticks"><span>−1</span><span>0</span><span>+1</span></div></div>'
            f"<div>{escape(legend)}<br>"
            '<span class="nan bn"></span> n/a (no value) · hover a character for its position and value'
            "</div></div>")


def page_html(title, body):
    """Wrap body in a complete, self-contained HTML document."""
    return ("<!DOCTYPE html>\n"
            '<html lang="en"><head><meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{escape(title)}</title>\n"
            f"<style>\n{_css()}\n</style></head>\n"
            f"<body><main>\n{body}\n</main></body></html>\n")


def unit_page(text, values, *, start=0, title="", subtitle="", legend="activation (h, tanh)",
              tanh=False):
    """One full HTML page: `text` coloured per character by `values` (one float per character)."""
    v = check_values(text, values)
    if tanh:
        v = np.tanh(v)
        legend = f"tanh of {legend}"
    head = f"<h1>{escape(title or 'interpret')}</h1>\n"
    if subtitle:
        head += f'<p class="sub">{escape(subtitle)}</p>\n'
    where = (f"characters {start}–{start + len(text) - 1} ({len(text)} characters)"
             if text else "empty excerpt")
    body = (head + legend_html(legend) + f'\n<p class="note">{escape(where)}</p>\n'
            + excerpt_html(text, v, start=start))
    return page_html(title or "interpret", body)


















def write_html(path, html):
    """Write html to path atomically; nothing left on error."""
    if not isinstance(html, str):
        raise TypeError(f"html must be a str, got {type(html).__name__}")
    atomic.write_text(path, html)
