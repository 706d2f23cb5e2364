"""`interpret demo`: the whole pipeline on the shipped models and texts, no network, no arguments.

Two parts, each a shipped LSTM on a text written for this project that it never saw: the War and
Peace model on a prose passage (quote and line-length cells) and the Linux C model on a C file
(comment and brace-depth cells). Each text is recorded (h and c), scanned against the features
of its array beside an untrained model of the same shape, and judged; the cells go into one page.
"""
import os
from pathlib import Path

from interpret._util.paths import shipped_models
from interpret.export import gallery
from interpret.features.choose import choose_features
from interpret.scanning.rows import top_rows
from interpret.export.gallery_html import gallery_page
from interpret.export.html import write_html
from interpret.model.model import Model
from interpret.recording.recorder import record
from interpret.scanning.result import scan
from interpret.scanning.verdict import control_best

# (part, model, text): the parts whose model is shipped are run
PARTS = (("prose", "warpeace-lstm.npz", "demo_passage.txt"), ("C code", "c-lstm.npz", "demo_code.c"))
EXCERPT = 600


def find_shipped(name):
    path = shipped_models() / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; reinstall interpret (pip install .) or run from a "
                                "source checkout that has trained_models/")
    return path


def run_demo(out, *, progress=None, log=print):
    """Record, scan and judge each part; write the recordings, the scans and one gallery page."""
    os.makedirs(out, exist_ok=True)
    parts = [p for p in PARTS if (shipped_models() / p[1]).is_file()] or [PARTS[0]]
    entries, no_cells, summaries, views = [], {}, [], []
    for part, model_name, text_name in parts:
        model_path, text_path = find_shipped(model_name), find_shipped(text_name)
        model = Model.load(model_path)
        log(f"{part}: {model_path.name} ({model.arch}, {model.n_layers} x {model.hidden_size}) on {text_name}")
        text = text_path.read_text(encoding="utf-8")
        rec_path = os.path.join(out, f"{Path(text_name).stem}.rec")
        keep = (lambda l, k: k in ("h", "c")) if model.gated else None  # gates are for `interpret gates`
        rec = record(model, [(text_name, text)], rec_path, model_path=str(model_path), keep=keep,
                     progress=progress)
        feats = choose_features(text)
        result = scan(rec, feats, progress=progress)
        rows, control = result.rows, result.control
        scan_path = os.path.join(out, f"{Path(text_name).stem}.scan.json")
        result.to_json(scan_path)
        entries += gallery.entries(rec, rows, feats, top=1, length=EXCERPT, group_prefix=f"{part}: ")
        views.append(f"interpret view {rec_path} --scan {scan_path}")
        no_cells.update({f"{part}: {k}": v for k, v in gallery.no_cell_lines(rows, control).items()})
        summaries.append(_summary(part, rec, rows, control, rec_path, scan_path))
    html_path = os.path.join(out, "cells.html")
    write_html(html_path, gallery_page(entries, title="interpret demo: interpretable cells",
                                       intro=INTRO, no_cells=no_cells))
    return ("\n\n".join(summaries) + f"\n\ngallery: {html_path}\nnext: open the gallery in a browser, or "
            "look at any unit live:\n  " + "\n  ".join(views))


INTRO = ("Two shipped LSTMs, each on a text written for this project that it never saw: the War and "
         "Peace model on a prose passage, the Linux C model on a C file. " + gallery.INTRO)


def _summary(part, rec, rows, control, rec_path, scan_path):
    """The best unit per feature with its verdict and the untrained control's best score."""
    best_control = control_best(control)
    lines = [f"{part}: {rec.n_chars} characters; best unit per feature (q: Benjamini-Hochberg vs a "
             f"circular-shift null; untrained: the same scan of a fresh model)",
             f"  {'feature':20s} {'unit':>9s} {'metric':>12s} {'score':>6s} {'q':>9s} {'beyond':>7s} "
             f"{'untrained':>9s}  verdict"]
    for name in dict.fromkeys(r["feature"] for r in rows):
        top = top_rows(rows, feature=name, top=1)
        if not top or top[0].get("score") is None:
            lines.append(f"  {name:20s}  (constant on this text: not scored)")
            continue
        r = top[0]
        q = r.get("q")
        lines.append(f"  {name:20s} {'L%d %s %d' % (r['layer'], r['array'], r['unit']):>9s} {r['metric']:>12s} "
                     f"{r['score']:6.3f} {q if q is None else format(q, '9.2g'):>9} {_fmt(r.get('beyond_char'))} "
                     f"{_fmt(best_control.get(name))}  {r.get('verdict', '-')}")
    lines += [f"  recording: {rec_path}", f"  scan:      {scan_path}"]
    return "\n".join(lines)


def _fmt(v):
    return f"{v:7.3f}" if isinstance(v, float) and v == v else f"{'-':>7s}"
