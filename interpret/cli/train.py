"""`interpret train` and `interpret sample`."""
import os
import sys
import time

import click

from interpret.cli.common import (CONTEXT, IN_FILE, bar, check_out, encoding_option, friendly, info, quiet_option)


def is_batched(path):
    from interpret.model.model import Model
    return Model.load(path).meta.get("trainer") == "batched"


def train_batched(data, text, out, resume, iters, checkpoint_every, quiet, settings, val_every,
                  lr_given=False):
    from interpret.train import batched as tb

    if resume:
        st = tb.BatchedState.load(resume, data)
        info(f"resuming {resume} at iteration {st.n}", quiet)
        if lr_given:  # e.g. a lower rate for the last stretch of a long run
            st.meta["learning_rate"] = settings["lr"]
            info(f"learning rate set to {settings['lr']}", quiet)
    else:
        st = tb.BatchedState.fresh(data, corpus_name=os.path.basename(text), **settings)
        if st.meta["seq_length"] < settings["seq_length"]:
            info(f"note: the text has {len(data)} characters; training on windows of {st.meta['seq_length']}", quiet)
    if st.n >= iters:
        raise click.ClickException(f"the checkpoint is already at iteration {st.n}; ask for more with --iters")
    t0, n0, last_val = time.perf_counter(), st.n, [None]
    with bar(iters - st.n, "training", quiet) as pbar:
        def on_progress(n, loss, val):
            if val is not None:
                last_val[0] = val
                health = st.meta.get("cell_health") if st.meta["arch"] == "lstm" else None
                h = f"; {tb.health_text(health)}" if health else ""
                info(f"\niteration {n}: train loss {loss:.4f}, validation loss {val:.4f} nats/char{h}", quiet)
            v = "" if last_val[0] is None else f", val {last_val[0]:.3f}"
            pbar.label = f"training  loss {loss:.3f}{v} nats/char"
            pbar.update(n - on_progress.done)
            on_progress.done = n
        on_progress.done = n0
        try:
            tb.train(st, data, iters, checkpoint_path=out, checkpoint_every=checkpoint_every,
                     val_every=val_every, on_progress=on_progress)
        except KeyboardInterrupt:
            click.echo(f"\ninterrupted at iteration {st.n}; checkpoint saved to {out}; continue with "
                       f"--resume {out}", err=True)
            sys.exit(130)
    m, secs = st.meta, time.perf_counter() - t0
    n_chars = (st.n - n0) * m["batch_size"] * m["seq_length"]
    val = f"; best validation loss {m['best_val_loss']:.4f}" if "best_val_loss" in m else ""
    click.echo(f"trained {st.n} iterations ({n_chars} characters in {secs:.1f} s, "
               f"{n_chars / max(secs, 1e-9):.0f} chars/s); smoothed loss {m['smooth_loss']:.4f} "
               f"nats/char{val}; saved {out}")


def parse_clamp(spec):
    try:
        j, v = spec.split("=")
        return int(j), float(v)
    except ValueError:
        raise click.BadParameter(f"{spec!r} is not J=VALUE (e.g. 42=1.0)", param_hint="--clamp") from None



@click.command(context_settings=CONTEXT)
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
    from interpret.train.gist import TrainState, effective_seq_length, read_text
    from interpret.train.gist import train as run_train

    check_out(out, inputs=[text])
    data = read_text(text, encoding)
    if arch != "rnn" or batch_size > 1 or (resume and is_batched(resume)):
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


@click.command(context_settings=CONTEXT)
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
    from interpret.analysis import causal
    from interpret.model.model import Model
    from interpret.train.gist import sample as run_sample

    m = Model.load(model)
    if clamp or m.gated:
        if argmax:
            raise click.UsageError("--argmax works with the vanilla rnn without --clamp; use a low --temperature")
        click.echo(causal.sample(m, length, clamp=[parse_clamp(c) for c in clamp], layer=layer, kind=kind,
                                 prime=prime, temperature=temperature, seed=seed))
        return
    click.echo(run_sample(m, length, prime=prime, temperature=temperature, argmax=argmax, seed=seed))
