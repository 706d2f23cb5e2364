"""Summaries of one unit for the viewer's side panels: trace envelope, histogram, top contexts."""
import numpy as np

from .layout import shown

TRACE_BUCKETS = 600  # pieces of the trace plot: min/max/mean per piece, whatever the window's size


def snippet(text, pos, before=28, after=12):
    """One line of context around text[pos], the character in brackets."""
    a, b = max(0, pos - before), min(len(text), pos + after + 1)
    s = "".join(shown(text[a:pos])) + "\u27e6" + "".join(shown(text[pos])) + "\u27e7" + \
        "".join(shown(text[pos + 1:b]))
    return ("\u2026" if a > 0 else "") + s + ("\u2026" if b < len(text) else "")


def histogram(values, feat, array, name="feature", bins=40):
    """Density histograms of values split by the feature: on = feature 1 (binary) or above its median."""
    edges = np.linspace(-1.0, 1.0, bins + 1)
    v = np.clip(values, -1.0, 1.0)
    if feat is None:
        on, label_on, label_off = np.zeros(len(v), bool), f"{name} = 1", "all characters"
    elif array == "binary":
        on, label_on, label_off = feat == 1, f"{name} = 1", f"{name} = 0"
    else:
        m = float(np.median(feat))
        on, label_on, label_off = feat > m, f"{name} > {m:g}", f"{name} \u2264 {m:g}"
    h_on = np.histogram(v[on], edges)[0].astype(float)
    h_off = np.histogram(v[~on], edges)[0].astype(float)
    width = edges[1] - edges[0]
    return dict(left=edges[:-1], right=edges[1:],
                on=h_on / max(1.0, h_on.sum() * width), off=h_off / max(1.0, h_off.sum() * width)), \
        (f"{label_on} ({int(on.sum())})", f"{label_off} ({int((~on).sum())})")


def envelope(values, start, n_buckets=TRACE_BUCKETS):
    """The trace of a window in at most n_buckets pieces: x (piece centre), lo, hi, mid (mean)."""
    n = len(values)
    size = max(1, -(-n // n_buckets))  # characters per piece
    edges = np.arange(0, n, size)  # (B,)
    v = np.asarray(values, dtype=np.float64)
    lo = np.minimum.reduceat(v, edges) if n else v
    hi = np.maximum.reduceat(v, edges) if n else v
    mid = np.add.reduceat(v, edges) / np.diff(np.append(edges, n)) if n else v
    x = start + (edges + np.minimum(edges + size, n) - 1) / 2.0
    return dict(x=x, lo=lo.astype(np.float32), hi=hi.astype(np.float32), mid=mid.astype(np.float32))


def context_options(ctx):
    """(value, label) options for the contexts list: value is the position, label one aligned line."""
    arrow = {"highest": "\u25b2", "lowest": "\u25bc"}
    nbsp = "\u00a0"  # a list box collapses runs of plain spaces
    return [(str(p), f"{arrow[w]} {p:>9,} {a:+.2f}  {s}".replace(" ", nbsp))
            for p, a, w, s in zip(ctx["pos"].tolist(), ctx["act"].tolist(), ctx["which"], ctx["snippet"])]


def top_contexts(text, values, k=8):
    """The k highest and k lowest positions of values, each with a snippet: dict of columns."""
    k = min(k, len(values))
    hi = np.argpartition(-values, k - 1)[:k]
    lo = np.argpartition(values, k - 1)[:k]
    hi = hi[np.argsort(-values[hi], kind="stable")]
    lo = lo[np.argsort(values[lo], kind="stable")]
    pos = np.concatenate([hi, lo])
    return dict(pos=pos.astype(np.int64), act=values[pos].astype(float),
                which=["highest"] * k + ["lowest"] * k,
                snippet=[snippet(text, int(p)) for p in pos])
