"""`interpret train` and `interpret sample`."""
import sys

import click

from interpret.cli.common import CONTEXT, IN_FILE, check_out, encoding_option, friendly, info, progress, quiet_option


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
@click.option("--threads", default=None, type=click.IntRange(min=1),
              help="Batched: split the streams across this many threads (each with one BLAS thread, "
                   "at least 16 streams a part); LSTMs of 512+ units given more threads than parts "
                   "share each matrix product's BLAS threads instead. Default: every core for LSTMs "
                   "of 512+ units, else up to one per 16 streams for gated models of 128+ units; 1 "
                   "for smaller ones.")
@encoding_option
@quiet_option
@friendly
def train(text, out, hidden, seq_length, lr, iters, seed, sample_every, checkpoint_every, resume,
          arch, layers, batch_size, optimizer, val_fraction, val_every, clip, reset_state, forget_bias, threads,
          encoding, quiet):
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
      interpret train book.txt -o lstm.npz --arch lstm --hidden 512 --batch-size 64 --threads 4
      interpret train book.txt -o book.npz --hidden 128 --seq-length 50 --sample-every 2000
      interpret train book.txt -o book.npz --resume book.npz --iters 40000
    """
    from interpret.train.run import Interrupted, train_model

    check_out(out, inputs=[text])
    if arch == "rnn" and batch_size == 1 and layers != 1 and not resume:
        raise click.BadParameter(f"the vanilla rnn has one layer (got --layers {layers}); use --arch lstm "
                                 "or gru for stacked layers", param_hint="--layers")
    try:
        summary = train_model(text, out, arch=arch, hidden=hidden, layers=layers, seq_length=seq_length, lr=lr,
                              iters=iters, seed=seed, batch_size=batch_size, optimizer=optimizer, clip=clip,
                              val_fraction=val_fraction, val_every=val_every, reset_state=reset_state,
                              forget_bias=forget_bias, sample_every=sample_every,
                              checkpoint_every=checkpoint_every, resume=resume, encoding=encoding,
                              progress=progress(quiet), log=lambda msg: info(msg, quiet), threads=threads)
    except Interrupted as e:
        click.echo(str(e), err=True)
        sys.exit(130)
    click.echo(str(summary))


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
@click.option("--array", "--kind", "array", default="h", show_default=True, help="--clamp: h, or c (LSTM cell state).")
@friendly
def sample(model, length, temperature, prime, argmax, seed, clamp, layer, array):
    """Generate text from a model (optionally with units clamped, to see what they do).

    \b
    Example:
      interpret sample wp.npz -n 300 --temperature 0.8 --prime "Prince "
      interpret sample wp.npz --argmax --prime "The "
      interpret sample lstm.npz --clamp 42=1.0 --array c --layer 1 --seed 0
    """
    from interpret.model.model import Model
    from interpret.model.sample import sample as run_sample

    m = Model.load(model)
    if argmax and (clamp or m.gated):
        raise click.UsageError("--argmax works with the vanilla rnn without --clamp; use a low --temperature")
    click.echo(run_sample(m, length, prime=prime, temperature=temperature, argmax=argmax, seed=seed,
                          clamp=[parse_clamp(c) for c in clamp], layer=layer, array=array))
