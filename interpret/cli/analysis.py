"""`interpret ablate`, `interpret gates` and `interpret probe`: the causal and gate analyses."""
import json
import os

import click

from interpret.cli.common import (CONTEXT, IN_FILE, IN_PATH, bar, check_out, encoding_option, friendly, progress,
                                  quiet_option)



@click.command(context_settings=CONTEXT)
@click.argument("model", type=IN_FILE)
@click.argument("text", type=IN_FILE)
@click.option("--unit", required=True, type=int, help="The unit to ablate.")
@click.option("--layer", default=0, show_default=True, type=int, help="Its layer.")
@click.option("--array", "--kind", "array", default="h", show_default=True, help="h, or c (LSTM cell state).")
@click.option("--mode", type=click.Choice(["zero", "mean"]), default="zero", show_default=True,
              help="Set the unit to 0, or hold it at its mean over the text.")
@click.option("--random", "n_random", default=20, show_default=True, type=click.IntRange(min=1),
              help="Random units ablated the same way, as the baseline.")
@click.option("--start", default=0, show_default=True, type=click.IntRange(min=0), help="First character used.")
@click.option("--length", default=20000, show_default=True, type=click.IntRange(min=2), help="Characters used.")
@click.option("-f", "--feature", default=None, help="Also report where this binary feature is on.")
@click.option("--seed", default=0, show_default=True, help="Seed for choosing the random units.")
@click.option("--threads", type=click.IntRange(1, 256), default=None,
              help="Threads that step the ablated copies of the model, each some of them (default: 2, "
                   "or 1 on a one-core machine). The copies are independent, so threads meet only "
                   "every 256 characters.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--unknown", type=click.Choice(["error", "skip", "space"]), default="error", show_default=True,
              help="What to do with characters outside the model's vocabulary.")
@encoding_option
@quiet_option
@friendly
def ablate(model, text, unit, layer, array, mode, n_random, start, length, feature, seed, threads, as_json,
           unknown, encoding, quiet):
    """Measure what a unit does: the loss change when it is zeroed (or held at its mean).

    The change in next-character loss (nats) over the text, and where the next character is a
    quote, a newline or a closing bracket, next to random units ablated the same way;
    p_random = share of random units that hurt at least as much.

    \b
    Example:
      interpret ablate lstm.npz held_out.txt --unit 42 --layer 1 --array c
      interpret ablate c.npz lua.txt --unit 7 --mode mean -f in_comment --json
    """
    from interpret.analysis import causal
    from interpret import features as F
    from interpret.model.model import Model
    from interpret.train.gist import read_text
    from interpret._util.cores import workers

    m = Model.load(model)
    full = read_text(text, encoding)
    if start >= len(full):
        raise click.BadParameter(f"--start {start} is past the end of {text} ({len(full)} characters)",
                                 param_hint="--start")
    try:
        data = m.encode(full[start:start + length], unknown=unknown)[1]
    except ValueError as e:
        raise ValueError(f"{text}: {e}") from None
    causal.check_target(m, layer, array, [unit])
    fv = None
    if feature:
        f = F.get_features([feature])[0]
        fv = (feature, F.evaluate(f, data))
    res = causal.ablate(m, data, unit, layer=layer, array=array, mode=mode, n_random=n_random, seed=seed,
                        feature=fv, progress=progress(quiet), threads=threads or workers())
    if as_json:
        click.echo(json.dumps(res, indent=1))
        return
    click.echo(f"layer {layer} {array} unit {unit}, {mode}-ablated, against {len(res['random_units'])} random units")
    click.echo(f"{'where':22s} {'chars':>7s} {'loss':>7s} {'unit':>8s} {'random':>16s} {'p_random':>8s}")
    for r in res["rows"]:
        click.echo(f"{r['group']:22s} {r['n_chars']:7d} {r['base_loss']:7.3f} {r['unit_delta']:+8.4f} "
                   f"{r['random_mean']:+8.4f}+-{r['random_std']:.4f} {r['p_random']:8.3f}")


@click.command(context_settings=CONTEXT)
@click.argument("rec", type=IN_PATH)
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False), help="HTML page to write.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None,
              help="Also write the per-unit fractions as JSON.")
@quiet_option
@friendly
def gates(rec, out, json_out, quiet):
    """Gate saturation (the paper's Figure 3): per gate unit, the share of characters where it
    is below 0.1 (left-saturated) or above 0.9 (right-saturated); one scatter per gate type.

    \b
    Example:
      interpret gates lstm.rec -o gates.html --json gates.json
    """
    from interpret.analysis import gates as G
    from interpret.export.html import write_html
    from interpret.recording.recording import Recording

    check_out(out)
    if json_out:
        check_out(json_out)
        if os.path.abspath(json_out) == os.path.abspath(out):
            raise click.BadParameter(f"{json_out} is also the HTML page (-o); give another path", param_hint="--json")
    recording = Recording(rec)
    n_gates = sum(k in G.GATE_NAMES for _, k, _ in recording.array_list())
    with bar(recording.n_chars * n_gates, "reading gates", quiet) as pbar:
        sat = G.saturation(recording, progress=pbar.update)
    page = G.page(sat, f"gate saturation: {recording.path}")  # both made before either is written
    data = json.dumps(G.as_json(sat, recording.n_chars), indent=1) if json_out else None
    write_html(out, page)
    if json_out:
        write_html(json_out, data)
    click.echo(f"wrote {out}" + (f" and {json_out}" if json_out else ""))


@click.command(context_settings=CONTEXT)
@click.argument("rec", type=IN_PATH)
@click.option("-f", "--feature", "features", multiple=True, required=True, help="Feature to probe (repeatable).")
@click.option("--layer", type=int, default=None, help="Only this layer's units (default: all).")
@click.option("--array", "--kind", "array", default=None, help="Only this array, e.g. h or c (default: all).")
@click.option("--max-rows", default=20000, show_default=True, type=click.IntRange(min=100),
              help="Characters used (evenly spaced) to fit and score.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (with the whole L1 path).")
@quiet_option
@friendly
def probe(rec, features, layer, array, max_rows, as_json, quiet):
    """Sparse (L1) probe on all units: the all-units score next to the best single unit's.

    Fit on the first 70% of the recording, scored on the held-out rest. units_for_95: how few
    units the sparse probe needs for 95% of the full probe's score above chance.

    \b
    Example:
      interpret probe run.rec -f in_quote -f position_in_line --array c
    """
    import numpy as np

    from interpret import features as F
    from interpret.analysis.probe import sparse_probe
    from interpret.recording.recording import Recording

    recording = Recording(rec)
    arrays = [(l, k, n) for l, k, n in recording.array_list()
              if (layer is None or l == layer) and (array is None or k == array)]
    if not arrays:
        recording.find(layer, array)
    feats = F.get_features(list(features))
    rows = np.arange(0, recording.n_chars, max(1, recording.n_chars // max_rows))
    X = np.concatenate([np.asarray(recording.activations(l, k)[rows], dtype=np.float64) for l, k, _ in arrays], 1)
    labels = [f"L{l} {k} {j}" for l, k, n in arrays for j in range(n)]
    if not np.isfinite(X).all():
        col = int(np.argmax(~np.isfinite(X).all(axis=0)))
        raise ValueError(f"{recording.path}: unit {labels[col]} has NaN or Inf activations; the recording "
                         "is damaged, record again (float16 may overflow)")
    out = []
    with bar(len(feats), "probing", quiet) as pbar:
        for f in feats:
            y = F.evaluate(f, recording.text, recording.doc_starts)[rows]
            r = sparse_probe(X, y, f.type == "binary", max_rows=len(rows))
            r.update(feature=f.name, best_unit=labels[r["best_unit"]])
            out.append(r)
            pbar.update(1)
    if as_json:
        click.echo(json.dumps(out, indent=1))
        return
    click.echo(f"{'feature':20s} {'metric':14s} {'all units':>9s} {'best unit':>16s} {'score':>6s} "
               f"{'gap':>6s} {'units for 95%':>13s}")
    for r in out:
        click.echo(f"{r['feature']:20s} {r['metric']:14s} {r['full_score']:9.3f} {r['best_unit']:>16s} "
                   f"{r['best_unit_score']:6.3f} {r['gap']:+6.3f} {str(r['units_for_95']):>13s}")
