"""`interpret demo`: the whole pipeline on the shipped model and text, no network, no arguments."""
import json
import os
from pathlib import Path

from interpret import report
from interpret.export import write_html
from interpret.model import Model
from interpret.record import record
from interpret.train import sample

MODELS = Path(__file__).resolve().parent.parent / "trained_models"
DEMO_MODELS = ("warpeace-lstm.npz", "warpeace-rnn.npz")  # the first one shipped is used
DEMO_PASSAGE = "demo_passage.txt"
SAMPLE_CHARS = 30000


def find_shipped(name):
    path = MODELS / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; run the demo from a source checkout "
                                "(pip install -e .) that has trained_models/")
    return path


def run_demo(out, *, progress_factory=None, log=print):
    """Record the shipped passage plus a sample of the model's own text, scan, write a gallery."""
    os.makedirs(out, exist_ok=True)
    name = next((n for n in DEMO_MODELS if (MODELS / n).is_file()), DEMO_MODELS[-1])
    model_path = find_shipped(name)
    model = Model.load(model_path)
    kind = "h,c" if model.gated else None  # gates are for `interpret gates`; cells live in h and c
    passage = find_shipped(DEMO_PASSAGE).read_text(encoding="utf-8")
    log(f"model: {model_path} ({model.meta.get('arch', 'rnn')}, {model.hidden_size} units)")
    log(f"sampling {SAMPLE_CHARS} characters from the model for a second document ...")
    generated = sample(model, SAMPLE_CHARS, prime="\n", temperature=1.0, seed=0)
    docs = [(DEMO_PASSAGE, passage), ("model_sample.txt", generated)]
    rec_path = os.path.join(out, "demo.rec")
    total = sum(len(t) for _, t in docs)
    with report._bar(progress_factory, total, "recording") as pbar:
        rec = record(model, docs, rec_path, model_path=str(model_path), progress=pbar.update)
    feats = report.choose_features(rec.text)
    rows = report.scan_recording(rec, feats, kind=kind, progress_factory=progress_factory)
    control = report.scan_control(rec, feats, kind=kind, progress_factory=progress_factory)
    scan_path = os.path.join(out, "scan.json")
    _write_json(scan_path, {"rows": [report.jsonable(r) for r in rows],
                            "control": [report.jsonable(r) for r in control]})
    html_path = os.path.join(out, "cells.html")
    write_html(html_path, report.gallery(rec, rows, top=2, length=500))
    return _summary(rec, rows, control, rec_path, scan_path, html_path)


def _write_json(path, data):
    write_html(path, json.dumps(data, indent=1))  # any text, atomically: temp file beside it, then os.replace


def _summary(rec, rows, control, rec_path, scan_path, html_path):
    lines = [f"recorded {rec.n_chars} characters; best unit per feature "
             f"(q: Benjamini-Hochberg vs a circular-shift null; untrained: same scan on a fresh model):",
             f"  {'feature':20s} {'unit':>9s} {'metric':>12s} {'score':>6s} {'q':>9s} {'beyond':>7s} {'untrained':>9s}"]
    best_control = {}
    for r in control:
        s = r.get("score")
        if s is not None and s == s:
            best_control[r["feature"]] = max(best_control.get(r["feature"], 0), s)
    for name in dict.fromkeys(r["feature"] for r in rows):
        top = report.top_rows(rows, feature=name, top=1)
        if not top or top[0].get("score") is None:
            lines.append(f"  {name:20s}  (constant on this text: not scored)")
            continue
        r = top[0]
        q = r.get("q")
        unit = f"{r['unit']}" if r.get("kind", "h") == "h" and not r.get("layer") else f"L{r['layer']}{r['kind']} {r['unit']}"
        lines.append(f"  {name:20s} {unit:>9s} {r['metric']:>12s} {r['score']:6.3f} "
                     f"{q if q is None else format(q, '9.2g'):>9} {_fmt(r.get('beyond_char'))} "
                     f"{_fmt(best_control.get(name))}")
    lines += ["", f"recording: {rec_path}", f"scan:      {scan_path}", f"gallery:   {html_path}",
              "next: open the gallery in a browser, or try "
              f"`interpret export {rec_path} --unit N -o unit.html`"]
    return "\n".join(lines)


def _fmt(v):
    return f"{v:7.3f}" if isinstance(v, float) and v == v else f"{'-':>7s}"
