"""The `interpret` command line: a thin click layer over the library (the only module using click)."""
import errno
import functools
import json
import os
import re
import sys
import time

import click

from interpret import __version__

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
IN_FILE = click.Path(exists=True, dir_okay=False)
IN_PATH = click.Path(exists=True)


def friendly(fn):
    """The library's ValueError / FileNotFoundError become one-line errors (exit 1, no traceback)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (ValueError, FileNotFoundError, FloatingPointError) as e:
            raise click.ClickException(str(e)) from None
        except (PermissionError, NotADirectoryError, IsADirectoryError) as e:  # the file system said no
            raise click.ClickException(f"cannot use {e.filename}: {e.strerror}") from None
        except MemoryError:
            raise click.ClickException("out of memory; try a shorter text or --dtype float16") from None
        except OSError as e:
            if e.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            where = f" writing {e.filename}" if e.filename else ""
            raise click.ClickException(f"the disk is full{where}; free some space or write "
                                       "elsewhere") from None
    return wrapper


class _NoBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n, current_item=None):
        pass


class _LazyBar:
    """click.progressbar on stderr, drawn from the first update on: a command that fails before
    doing any work prints its error line alone. Setting .label relabels the bar. When stderr is
    not a terminal (a log file), a plain line at most every 10% of the work or 30 seconds."""

    def __init__(self, length, label):
        self.length, self.label, self._bar = length, label, None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._bar.__exit__(*exc) if self._bar is not None else False

    def update(self, n, current_item=None):
        if self._bar is None:
            self._bar = (click.progressbar(length=self.length, label=self.label, file=sys.stderr,
                                           show_pos=True, width=30).__enter__() if _is_tty(sys.stderr)
                         else _LogLines(self.length))
        self._bar.label = self.label
        self._bar.update(n, current_item)


def _is_tty(f):
    try:
        return f.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False


class _LogLines:
    """Progress for a log file: 'label: done/total (pct%)' every 10% of the work or 30 s, and at the end."""

    EVERY_S, EVERY_FRACTION = 30.0, 0.1

    def __init__(self, length):
        self.length, self.done, self.label = max(int(length), 1), 0, ""
        self._last_t, self._last_done = time.monotonic(), 0

    def update(self, n, current_item=None):
        self.done += n
        now = time.monotonic()
        if (self.done - self._last_done >= self.EVERY_FRACTION * self.length or now - self._last_t >= self.EVERY_S
                or self.done >= self.length > self._last_done):
            click.echo(f"{self.label}: {self.done}/{self.length} ({100 * self.done / self.length:.0f}%)", err=True)
            self._last_t, self._last_done = now, self.done

    def __exit__(self, *exc):
        return False


def bar(length, label, quiet):
    """A progress bar on stderr; nothing with -q."""
    return _NoBar() if quiet else _LazyBar(length, label)


def check_out(out, inputs=()):
    """Fail before any work if `out` cannot be written: its folder is missing, or it is an input."""
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise click.BadParameter(f"directory {folder!r} does not exist; create it first", param_hint="-o")
    for path in inputs:
        if os.path.exists(out) and os.path.samefile(out, path):
            raise click.BadParameter(f"{out} is also an input; writing it would destroy that input, "
                                     "choose another -o path", param_hint="-o")


def info(msg, quiet=False):
    if not quiet:
        click.echo(msg, err=True)


quiet_option = click.option("-q", "--quiet", is_flag=True, help="No progress output on stderr.")
encoding_option = click.option("--encoding", default="utf-8", show_default=True,
                               help="Text encoding of the input files (e.g. latin-1).")


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="interpret")
def main():
    """Find and show the interpretable cells of character-level RNNs.

    The pipeline: train (or load a min-char-rnn model) -> record every unit on a text ->
    scan the units against per-character features -> export highlighted HTML.

    \b
    Example:
      interpret demo
      interpret train ../shared/corpora/warandpeace.txt -o wp.npz --iters 20000
      interpret record wp.npz book.txt -o run.rec
      interpret scan run.rec --feature in_quote --top 5
      interpret export run.rec --gallery -o cells.html
    """


# ---- train ------------------------------------------------------------------------------------
@main.command(context_settings=CONTEXT)
@click.argument("text", type=IN_FILE)
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False),
              help="Model file to write (.npz); also the checkpoint.")
@click.option("--hidden", default=100, show_default=True, type=click.IntRange(min=1), help="Hidden units H.")
@click.option("--seq-length", default=25, show_default=True, type=click.IntRange(min=1),
              help="Characters per truncated-BPTT window.")
@click.option("--lr", default=None, type=click.FloatRange(min=0, min_open=True),
              help="Learning rate [default: 0.1 Adagrad for rnn, 2e-3 for adam/rmsprop].")
@click.option("--iters", default=10000, show_default=True, type=click.IntRange(min=1),
              help="Total iterations (with --resume: the total to reach).")
@click.option("--seed", default=0, show_default=True, help="np.random.seed before drawing parameters.")
@click.option("--sample-every", default=0, show_default=True, type=click.IntRange(min=0),
              help="Print a 200-character sample every N iterations (0: never).")
@click.option("--checkpoint-every", default=1000, show_default=True, type=click.IntRange(min=0),
              help="Save the model + optimizer state to --out every N iterations.")
@click.option("--resume", type=IN_FILE, default=None, help="Continue from this checkpoint.")
@click.option("--arch", type=click.Choice(["rnn", "lstm", "gru"]), default="rnn", show_default=True,
              help="rnn with --batch-size 1: the gist's trainer; otherwise the batched trainer.")
@click.option("--layers", default=1, show_default=True, type=click.IntRange(min=1), help="Stacked layers.")
@click.option("--batch-size", default=1, show_default=True, type=click.IntRange(min=1),
              help="Parallel streams per iteration (batched trainer; 32 is a good start).")
@click.option("--optimizer", type=click.Choice(["adam", "rmsprop"]), default="adam", show_default=True,
              help="Batched trainer's optimizer (the gist's trainer uses Adagrad).")
@click.option("--val-fraction", default=0.05, show_default=True, type=click.FloatRange(0, 1, max_open=True),
              help="Batched: the text's tail held out; its loss is reported.")
@click.option("--val-every", default=500, show_default=True, type=click.IntRange(min=0),
              help="Batched: validate every N iterations (and keep OUT.best.npz).")
@click.option("--clip", default=5.0, show_default=True, type=click.FloatRange(min=0),
              help="Batched: clip the gradients' global norm (0: off).")
@click.option("--reset-state", is_flag=True, help="Batched: start every window from a zero state.")
@click.option("--forget-bias", type=float, default=None,
              help="LSTM/GRU: start every bias at 0 and the forget gate's at this value (e.g. 1). "
                   "Default: every bias uniform like the weights (PyTorch's init), which keeps "
                   "cell states bounded.")
@encoding_option
@quiet_option
@friendly
def train(text, out, hidden, seq_length, lr, iters, seed, sample_every, checkpoint_every, resume,
          arch, layers, batch_size, optimizer, val_fraction, val_every, clip, reset_state, forget_bias, encoding,
          quiet):
    """Train a char-RNN: the gist's vanilla trainer (default), or a batched LSTM/GRU.

    Defaults are the gist's: 100 hidden units, 25-character windows, Adagrad lr 0.1, gradient
    clip +-5, randn*0.01 init after np.random.seed(SEED). Same seed and text -> the same
    parameters as the gist. A text shorter than seq-length+1 trains on a shortened window.
    Ctrl-C saves a checkpoint; continue with --resume (--lr with --resume changes the rate).
    --arch lstm/gru trains a gated model on --batch-size streams with Adam or RMSProp
    (float32), reporting the validation loss and the cell states' size (median |c|, the share
    of units above 5, max |c|); every bias starts uniform like the weights, which keeps cell
    states bounded (--forget-bias 1 for the classic init).

    \b
    Example:
      interpret train ../shared/corpora/warandpeace.txt -o wp.npz --iters 20000
      interpret train book.txt -o lstm.npz --arch lstm --hidden 256 --seq-length 100 --batch-size 32
      interpret train book.txt -o book.npz --hidden 128 --seq-length 50 --sample-every 2000
      interpret train book.txt -o book.npz --resume book.npz --iters 40000
    """
    from interpret.train import TrainState, effective_seq_length, read_text
    from interpret.train import train as run_train

    check_out(out, inputs=[text])
    data = read_text(text, encoding)
    from interpret.cli_gated import is_batched

    if arch != "rnn" or batch_size > 1 or (resume and is_batched(resume)):
        from interpret.cli_gated import train_batched
        return train_batched(data, text, out, resume, iters, checkpoint_every, quiet,
                              dict(arch=arch, hidden=hidden, layers=layers, batch_size=batch_size,
                                   seq_length=seq_length, lr=lr or 2e-3, optimizer=optimizer, clip=clip,
                                   val_fraction=val_fraction, seed=seed, reset_state=reset_state,
                                   forget_bias=forget_bias),
                              val_every, lr_given=lr is not None)
    if layers != 1:
        raise click.BadParameter(f"the vanilla rnn has one layer (got --layers {layers}); use --arch lstm "
                                 "or gru for stacked layers", param_hint="--layers")
    if resume:
        state = TrainState.load(resume, data)
        info(f"resuming {resume} at iteration {state.n}", quiet)
        if lr is not None:  # e.g. a lower rate for the last stretch of a long run
            state.model.meta["learning_rate"] = lr
            info(f"learning rate set to {lr}", quiet)
    else:
        state = TrainState.fresh(data, hidden, seq_length, lr or 0.1, seed, os.path.basename(text))
    L = effective_seq_length(len(data), state.model.meta["seq_length"])
    if L < state.model.meta["seq_length"]:
        info(f"note: the text has {len(data)} characters; training on windows of {L}", quiet)
    if state.n >= iters:
        raise click.ClickException(f"the checkpoint is already at iteration {state.n}; "
                                   f"ask for more with --iters (> {state.n})")
    t0, n0 = time.perf_counter(), state.n
    with bar(iters - state.n, "training", quiet) as pbar:
        done = [n0]

        def on_progress(n, loss):
            pbar.label = f"training  loss {loss:.3f} nats/char"
            pbar.update(n - done[0])
            done[0] = n

        def on_sample(s):
            if not quiet:
                click.echo(f"\n---- sample at iteration {state.n}\n{s}\n----", err=True)
        try:
            run_train(state, data, iters, checkpoint_path=out, checkpoint_every=checkpoint_every,
                      sample_every=sample_every, on_progress=on_progress, on_sample=on_sample)
        except KeyboardInterrupt:
            click.echo(f"\ninterrupted at iteration {state.n}; checkpoint saved to {out}\n"
                       f"continue with: interpret train {text} -o {out} --resume {out} --iters {iters}",
                       err=True)
            sys.exit(130)
    secs = time.perf_counter() - t0
    n_chars = (state.n - n0) * L
    click.echo(f"trained {state.n} iterations ({n_chars} characters in {secs:.1f} s, "
               f"{n_chars / max(secs, 1e-9):.0f} chars/s); smoothed loss "
               f"{state.smooth_loss / L:.4f} nats/char; saved {out}")



# ---- sample -----------------------------------------------------------------------------------
@main.command(context_settings=CONTEXT)
@click.argument("model", type=IN_FILE)
@click.option("-n", "--length", default=300, show_default=True, type=click.IntRange(min=1),
              help="Characters to generate.")
@click.option("--temperature", default=1.0, show_default=True,
              type=click.FloatRange(min=0, min_open=True), help="Below 1: safer; above 1: wilder.")
@click.option("--prime", default="", help="Text run through the model first; the sample continues it.")
@click.option("--argmax", is_flag=True, help="Always take the most likely character (greedy).")
@click.option("--seed", default=None, type=int, help="Random seed for a repeatable sample.")
@click.option("--clamp", multiple=True, metavar="J=VALUE", help="Hold unit J at VALUE while generating (repeatable).")
@click.option("--layer", default=0, show_default=True, type=int, help="--clamp: the units' layer.")
@click.option("--kind", default="h", show_default=True, help="--clamp: h, or c (LSTM cell state).")
@friendly
def sample(model, length, temperature, prime, argmax, seed, clamp, layer, kind):
    """Generate text from a model (optionally with units clamped, to see what they do).

    \b
    Example:
      interpret sample wp.npz -n 300 --temperature 0.8 --prime "Prince "
      interpret sample wp.npz --argmax --prime "The "
      interpret sample lstm.npz --clamp 42=1.0 --kind c --layer 1 --seed 0
    """
    from interpret import causal
    from interpret.model import Model
    from interpret.train import sample as run_sample

    m = Model.load(model)
    if clamp or m.gated:
        if argmax:
            raise click.UsageError("--argmax works with the vanilla rnn without --clamp; use a low --temperature")
        from interpret.cli_gated import parse_clamp
        click.echo(causal.sample(m, length, clamp=[parse_clamp(c) for c in clamp], layer=layer, kind=kind,
                                 prime=prime, temperature=temperature, seed=seed))
        return
    click.echo(run_sample(m, length, prime=prime, temperature=temperature, argmax=argmax, seed=seed))



# ---- record -----------------------------------------------------------------------------------
@main.command(context_settings=CONTEXT)
@click.argument("model", type=IN_FILE)
@click.argument("texts", type=IN_FILE, nargs=-1, required=True)
@click.option("-o", "--out", required=True, type=click.Path(), help="Recording directory to write.")
@click.option("--dtype", type=click.Choice(["float32", "float16"]), default="float32", show_default=True,
              help="Storage type of the activations (float16 halves the size).")
@click.option("--unknown", type=click.Choice(["error", "skip", "space"]), default="error",
              show_default=True, help="What to do with characters outside the model's vocabulary.")
@encoding_option
@quiet_option
@friendly
def record(model, texts, out, dtype, unknown, encoding, quiet):
    """Run a model over texts and record every unit at every character.

    Each TEXT file is one document: the hidden state starts at zero at its first character
    and is carried through the rest of it. Row t of each activation array is the state after
    reading character t.

    \b
    Example:
      interpret record wp.npz chapter1.txt chapter2.txt -o run.rec
      interpret record wp.npz notes.txt -o notes.rec --unknown skip --dtype float16
    """
    from interpret.model import Model
    from interpret.record import record as run_record
    from interpret.text_blocks import TextFile

    m = Model.load(model)
    docs = [(os.path.basename(t), TextFile(t, encoding)) for t in texts]  # read while recording
    with bar(None, "recording", quiet) as pbar:
        rec = run_record(m, docs, out, dtype=dtype, unknown=unknown, model_path=model,
                         progress=pbar.update, on_total=lambda n: setattr(pbar, "length", n))
    click.echo(f"recorded {rec.n_chars} characters in {len(docs)} document(s), "
               f"{', '.join(f'layer {a} {k} ({n} units)' for a, k, n in rec.kinds())}; "
               f"mean loss {rec.mean_loss():.4f} nats/char; wrote {out}")


# ---- scan -------------------------------------------------------------------------------------
feature_options = [
    click.option("-f", "--feature", "features", multiple=True,
                 help="Feature to scan (repeatable; default: those that fit the text; 'all' for all)."),
    click.option("--feature-regex", multiple=True, metavar="NAME=PATTERN",
                 help="Add a binary feature: characters inside matches of PATTERN."),
    click.option("--feature-file", multiple=True, type=IN_FILE,
                 help="Add features from a Python file. This runs the file's Python code with your "
                      "permissions: use only files you trust."),
    click.option("--layer", type=int, default=None, help="Only this layer (default: all)."),
    click.option("--kind", default=None, help="Only this kind, e.g. h or c; scan takes a list, h,c (default: all)."),
    click.option("--shifts", default=200, show_default=True, type=click.IntRange(min=10),
                 help="Circular shifts in the null distribution."),
    click.option("--seed", default=0, show_default=True, help="Seed for the null's shifts."),
]


def with_options(options):
    def deco(fn):
        for opt in reversed(options):
            fn = opt(fn)
        return fn
    return deco


@main.command(context_settings=CONTEXT)
@click.argument("rec", type=IN_PATH)
@with_options(feature_options)
@click.option("--top", type=click.IntRange(min=1), default=None,
              help="Units per feature (table default 5; JSON/CSV default all).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per row, as a list.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV rows.")
@click.option("--control", type=click.Choice(["untrained", "none"]), default="untrained", show_default=True,
              help="Scan a freshly initialised model of the same shape on the same text too (about "
                   "doubles the time): a cell must beat it. With none, no row can be a cell.")
@quiet_option
@friendly
def scan(rec, features, feature_regex, feature_file, layer, kind, shifts, seed, top, as_json,
         as_csv, control, quiet):
    """Rank units by how well they track per-character features.

    Effect sizes: AUROC for binary features, |Spearman rho| for ordinal ones (Pearson r
    beside it, as pearson_r). Units are scored as the viewer shows them: cell states (c)
    through tanh. p-values come from a circular-shift null (the feature shifted against the
    activations, which keeps both series' autocorrelation); q-values are Benjamini-Hochberg
    across all units x features. beyond_char is the same effect size with the unit ranked
    within each current character: a unit that only reacts to the '"' character scores chance
    (0.5, or 0 for rho) there; '-' where the feature is a function of the character.
    saturated (sat) is the unit's share of characters at |value| > 0.99 (gates: within
    0.01 of 0 or 1). By default a freshly initialised model of the same shape is scanned too
    (the untrained control, about twice the time); each row's verdict (cell / weak / none)
    needs q < 0.01, a large effect beyond the current character, a clear margin over that
    control, enough support and a unit that is not stuck (see README, How units are scored).

    \b
    Example:
      interpret scan run.rec
      interpret scan run.rec --feature in_quote --top 5 --json
      interpret scan run.rec --feature-regex vowel='[aeiou]' --control none   (faster; no cells)
      interpret features          (lists the built-in features)
    """
    from interpret import report
    from interpret.record import Recording
    from interpret.scan import format_table, rows_to_csv, top_rows

    if as_json and as_csv:
        raise click.UsageError("give --json or --csv, not both")
    recording = Recording(rec)
    feats = report.choose_features(recording.head(report.SNIFF), features, feature_regex, feature_file)
    rows, control_rows = report.judged(recording, feats, control=control == "untrained", layer=layer, kind=kind,
                                       n_shifts=shifts, seed=seed,
                                       progress_factory=lambda n, lab: bar(n, lab, quiet))
    if as_json or as_csv:
        chosen = top_rows(rows, top=top) if top else rows
        if as_json:
            ctrl = None if control_rows is None else [report.jsonable(r) for r in
                                                      (top_rows(control_rows, top=top) if top else control_rows)]
            click.echo(json.dumps({"rows": [report.jsonable(r) for r in chosen], "control": ctrl}, indent=1))
        else:
            rows_to_csv(chosen, sys.stdout)
        return
    click.echo(format_table(rows, top=top or 5, control_rows=control_rows))


@main.command("features", context_settings=CONTEXT)
def list_features():
    """List the built-in features with their kind, causality and domain.

    \b
    Example:
      interpret features
    """
    from interpret.features import FEATURES

    for f in FEATURES.values():
        click.echo(f"{f.name:20s} {f.kind:10s} {'causal' if f.causal else 'acausal':8s} "
                   f"{f.domain:6s} {f.description}")


# ---- export -----------------------------------------------------------------------------------
@main.command(context_settings=CONTEXT)
@click.argument("rec", type=IN_PATH)
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False), help="HTML file to write.")
@click.option("--unit", type=int, default=None, help="Unit to colour the text by.")
@click.option("--start", default=0, show_default=True, type=click.IntRange(min=0),
              help="First character of the excerpt.")
@click.option("--length", default=3000, show_default=True, type=click.IntRange(min=1),
              help="Characters in the excerpt (gallery: per cell, default 400).")
@click.option("--gallery", is_flag=True, help="One page with the top cells per feature (runs a scan).")
@click.option("--top", default=2, show_default=True, type=click.IntRange(min=1),
              help="Gallery: cells per feature.")
@click.option("--scan", "scan_json", type=IN_FILE, default=None,
              help="Gallery: use rows from `interpret scan --json` instead of scanning again.")
@with_options(feature_options)
@quiet_option
@friendly
def export(rec, out, unit, start, length, gallery, top, scan_json, features, feature_regex,
           feature_file, layer, kind, shifts, seed, quiet):
    """Write static highlighted HTML: text coloured by a unit (-1 red, 0 white, +1 blue).

    The page is self-contained (no scripts, no network); hover a character for its position
    and value.

    \b
    Example:
      interpret export run.rec --unit 42 --start 0 --length 3000 -o cell42.html
      interpret export run.rec --gallery -o cells.html

    The gallery scans the recording (with the untrained control) unless --scan gives a scan's
    JSON, and shows an excerpt only for units whose verdict is cell; every other feature gets
    one line with its best unit and the control.
    """
    from interpret import report
    from interpret.export import write_html
    from interpret.record import Recording

    check_out(out, inputs=[scan_json] if scan_json else [])
    recording = Recording(rec)
    if gallery:
        from interpret.gallery import gallery as gallery_page
        if scan_json:
            rows, control_rows = report.load_scan(scan_json, recording)
        else:
            feats = report.choose_features(recording.head(report.SNIFF), features, feature_regex, feature_file)
            rows, control_rows = report.judged(recording, feats, layer=layer, kind=kind, n_shifts=shifts,
                                               seed=seed, progress_factory=lambda n, lab: bar(n, lab, quiet))
        length = length if length != 3000 else 500
        page = gallery_page(recording, rows, control_rows, top=top, length=length,
                            feature_extra=(feature_regex, feature_file))
    else:
        if unit is None:
            raise click.UsageError("give --unit N (or --gallery for the top cells)")
        page = report.unit_export(recording, unit, start=start, length=length, layer=layer, kind=kind)
    write_html(out, page)
    click.echo(f"wrote {out}")


# ---- demo -------------------------------------------------------------------------------------
@main.command(context_settings=CONTEXT)
@click.option("-o", "--out", default="interpret-demo", show_default=True, type=click.Path(file_okay=False),
              help="Directory for the demo's recording, scan and HTML.")
@quiet_option
@friendly
def demo(out, quiet):
    """Run the whole pipeline on the shipped model and text: record, scan, gallery.

    Needs no arguments and no network: it uses the model in trained_models/ and a passage
    shipped with the project plus text sampled from the model itself.

    \b
    Example:
      interpret demo
      interpret demo -o /tmp/demo
    """
    from interpret.demo import run_demo

    summary = run_demo(out, progress_factory=lambda n, lab: bar(n, lab, quiet), log=lambda s: info(s, quiet))
    click.echo(summary)


# ---- view -------------------------------------------------------------------------------------
@main.command(context_settings=CONTEXT)
@click.argument("rec", type=IN_PATH)
@click.option("--scan", "scan_json", type=IN_FILE, default=None,
              help="Rank the units by rows from `interpret scan REC --json`.")
@click.option("--port", default=5006, show_default=True, type=click.IntRange(1, 65535),
              help="Port on 127.0.0.1.")
@click.option("--show/--no-show", default=True, show_default=True, help="Open the page in a web browser.")
@click.option("--allow-origin", "origins", multiple=True, metavar="HOST[:PORT]",
              help="Also accept browser connections from this origin (repeatable), e.g. localhost:8080 "
                   "behind an ssh tunnel. Default: only 127.0.0.1:PORT and localhost:PORT.")
@friendly
def view(rec, scan_json, port, show, origins):
    """Explore every unit live: the Bokeh viewer on http://127.0.0.1:PORT/viewer (Ctrl-C stops it).

    Checks that the recording (and the scan) load, then runs `bokeh serve` on the viewer app,
    bound to 127.0.0.1 only; pages from other origins cannot connect unless --allow-origin names them.

    \b
    Example:
      interpret view run.rec
      interpret scan run.rec --json > scan.json && interpret view run.rec --scan scan.json
      interpret view run.rec --port 5007 --no-show
    """
    import signal
    import subprocess
    from pathlib import Path

    from interpret.record import Recording
    from interpret.report import load_scan_json

    for o in origins:
        if not re.fullmatch(r"[A-Za-z0-9.\-\[\]:]+", o) or o.startswith(":"):
            raise click.BadParameter(f"{o!r} is not an origin; give HOST[:PORT], e.g. localhost:8080",
                                     param_hint="--allow-origin")
    recording = Recording(rec)
    recording.text  # noqa: B018  (reads and checks the text)
    for layer, kind, _ in recording.kinds():
        recording.activations(layer, kind)
    if scan_json:
        load_scan_json(scan_json, recording)
    root = Path(__file__).resolve().parent.parent
    if not (root / "viewer" / "main.py").is_file():
        raise click.ClickException(f"{root / 'viewer'} is missing; run the viewer from a source checkout "
                                   "(pip install -e .) that has viewer/")
    args = [os.path.abspath(rec)] + (["--scan", os.path.abspath(scan_json)] if scan_json else [])
    cmd = [sys.executable, "-m", "bokeh", "serve", str(root / "viewer"), "--address", "127.0.0.1",
           "--port", str(port), "--allow-websocket-origin", f"127.0.0.1:{port}",
           "--allow-websocket-origin", f"localhost:{port}",
           *[a for o in origins for a in ("--allow-websocket-origin", o)],
           *(["--show"] if show else []), "--args", *args]
    paths = (str(root), os.environ.get("PYTHONPATH"))  # the subprocess imports this same interpret
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in paths if p))
    info(f"serving http://127.0.0.1:{port}/viewer  (Ctrl-C to stop)")
    server = subprocess.Popen(cmd, env=env)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` stops the server too
    try:
        code = server.wait()
    except KeyboardInterrupt:
        code = 0
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait()
    if code:
        raise click.ClickException(f"bokeh serve stopped with exit code {code} (is port {port} in use? "
                                   "try --port)")


from interpret import cli_gated  # noqa: E402,F401  (registers ablate, gates, probe)
from interpret.cli_import import import_command  # noqa: E402
main.add_command(import_command)
