"""Measure a shipped model for its card: cell-state health and the best unit per feature on held-out text.

    python trained_models/card.py trained_models/warpeace-lstm.npz \
        --text wp_tail=../shared/corpora/warandpeace.txt:2876592: \
        --text sherlock=../shared/corpora/sherlock_adventures.txt::320000 \
        -f in_quote -f position_in_line -f line_length

Each --text is NAME=PATH[:START:LENGTH] (characters; empty START or LENGTH: from the start, to
the end). The text is recorded (h and c, float32; characters outside the vocabulary read as
spaces), scanned against the features with a 200-shift circular-shift null, and scanned again
on an untrained model of the same shape (the control). Markdown goes to stdout.
"""
import argparse
import os
import sys
import tempfile

import numpy as np

from interpret import features as F
from interpret.scan.rows import top_rows
from interpret.scan.run import judged
from interpret.model.model import Model
from interpret.recording.recorder import record
from interpret.train.batched import cell_health
from interpret.scan.verdict import control_best


def parse_text(spec):
    """NAME=PATH[:START:LENGTH] -> (name, text)."""
    name, _, rest = spec.partition("=")
    path, start, length = (rest.split(":") + ["", ""])[:3]
    text = open(path, encoding="utf-8").read()
    a = int(start or 0)
    return name, text[a:a + int(length)] if length else text[a:]


def health(recording):
    """Per layer: median |c|, share of units whose median |c| is above 5, max |c| (LSTMs only)."""
    out = []
    for layer, kind, _ in recording.kinds():
        if kind == "c":
            h = cell_health(np.abs(np.asarray(recording.activations(layer, kind))))
            out.append(f"L{layer} median |c| {h['median_abs_c']:.2f}, units with median |c| > 5: "
                       f"{h['share_units_median_gt5']:.1%}, max |c| {h['max_abs_c']:.1f}")
    return "; ".join(out) or "no cell state (not an LSTM)"


def best_rows(rows, feature, top):
    return [r for r in top_rows(rows, feature=feature, top=top) if r.get("score") is not None]


def table(rows, control, names, top):
    """Markdown: the top units per feature, with the control's best score."""
    cols = ["feature", "rank", "unit", "metric", "score", "pearson r", "q", "beyond_char", "saturated",
            "untrained best", "verdict"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for name in names:
        ctrl = control_best(control).get(name)
        for k, r in enumerate(best_rows(rows, name, top)):
            cells = [name, str(k + 1), f"L{r['layer']} {r['kind']} {r['unit']}", r["metric"],
                     f"{r['score']:.3f}", _num(r.get("pearson_r"), ".3f"), _num(r.get("q"), ".1e"),
                     _num(r.get("beyond_char"), ".3f"), _num(r.get("saturated"), ".2f"),
                     f"{ctrl:.3f}" if ctrl is not None and k == 0 else "", r.get("verdict", "")]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _num(x, spec):
    return "" if x is None else format(x, spec)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model")
    p.add_argument("--text", action="append", required=True, help="NAME=PATH[:START:LENGTH]")
    p.add_argument("-f", "--feature", action="append", required=True)
    p.add_argument("--top", type=int, default=3)
    p.add_argument("--kind", default="h,c")
    p.add_argument("--untrained", action="store_true", help="score a fresh model of the same shape instead")
    a = p.parse_args(argv)
    model = Model.load(a.model)
    if a.untrained:  # the control itself, judged like a trained model (it should have no cells)
        model = Model.init(model.chars, model.hidden_size, arch=model.arch, seed=54321, n_layers=model.n_layers,
                           meta=dict(model.meta, wall_time_s=0, chars_trained=0))
    feats = F.get_features(a.feature)
    print(f"Model `{os.path.basename(a.model)}`: {model.arch}, {model.n_layers} x {model.hidden_size}; "
          f"trained {model.meta.get('chars_trained', '?')} characters in {model.meta.get('wall_time_s', 0) / 60:.0f} "
          f"min; validation loss {model.meta.get('best_val_loss', float('nan')):.3f} nats/char\n")
    for spec in a.text:
        name, text = parse_text(spec)
        with tempfile.TemporaryDirectory(prefix="card-") as d:
            print(f"recording {name} ({len(text)} characters) ...", file=sys.stderr)
            rec = record(model, [(name, text)], os.path.join(d, "r.rec"), unknown="space",
                         keep=lambda l, k: k in a.kind.split(","))
            rows, control = judged(rec, feats, kind=a.kind)
            loss = float(np.nanmean(rec.loss))
            print(f"**{name}** ({rec.n_chars} characters, mean loss {loss:.3f} nats/char; {health(rec)})\n")
            print(table(rows, control, a.feature, a.top) + "\n")


if __name__ == "__main__":
    main()
