"""`interpret record`."""

import click

from interpret.cli.common import (CONTEXT, progress, IN_FILE, encoding_option, friendly, quiet_option)


@click.command(context_settings=CONTEXT)
@click.argument("model", type=IN_FILE)
@click.argument("texts", type=IN_FILE, nargs=-1, required=True)
@click.option("-o", "--out", required=True, type=click.Path(), help="Recording directory to write.")
@click.option("--dtype", type=click.Choice(["float32", "float16"]), default="float32", show_default=True,
              help="Storage type of the activations (float16 halves the size).")
@click.option("--unknown", type=click.Choice(["error", "skip", "space"]), default="error",
              show_default=True, help="What to do with characters outside the model's vocabulary.")
@click.option("--arrays", default=None, metavar="LIST",
              help="Only these arrays, e.g. h,c (default: every one the model has; an LSTM: h c i f g o).")
@click.option("--threads", type=click.IntRange(1, 256), default=1, show_default=True,
              help="Split an LSTM's units over this many threads when it reads one long document: "
                   "faster on idle cores, 2-4x slower (measured) when another job holds a core.")
@encoding_option
@quiet_option
@friendly
def record(model, texts, out, dtype, unknown, arrays, encoding, quiet, threads):
    """Run a model over texts and record every unit at every character.

    Each TEXT file is one document: the hidden state starts at zero at its first character
    and is carried through the rest of it. Row t of each activation array is the state after
    reading character t.

    \b
    Example:
      interpret record wp.npz chapter1.txt chapter2.txt -o run.rec
      interpret record wp.npz notes.txt -o notes.rec --unknown skip --dtype float16
      interpret record lstm.npz book.txt -o book.rec --arrays h,c
      interpret record lstm.npz book.txt -o book.rec --threads 2
    """
    from interpret.recording.recorder import record as run_record

    rec = run_record(model, files=texts, out=out, arrays=arrays, dtype=dtype, unknown=unknown, encoding=encoding,
                     progress=progress(quiet), threads=threads)
    click.echo(f"recorded {rec.n_chars} characters in {len(rec.documents)} document(s), "
               f"{', '.join(f'layer {a} {k} ({n} units)' for a, k, n in rec.array_list())}; "
               f"mean loss {rec.mean_loss():.4f} nats/char; wrote {out}")
