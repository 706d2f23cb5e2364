"""`interpret import`: a character model trained in PyTorch, as an interpret model file."""
import os

import click

from interpret.cli.common import CONTEXT, IN_FILE, check_out, friendly


@click.command("import", context_settings=CONTEXT)
@click.argument("weights", type=IN_FILE)
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False), help="Model file (.npz) to write.")
@click.option("--vocab", required=True, type=IN_FILE,
              help="The model's characters in index order: a .json list or {char: index} object, or any "
                   "other file read verbatim as UTF-8 (newlines count; no trailing newline).")
@click.option("--map", "mapping", multiple=True, metavar="ROLE=MODULE",
              help="Name a module when its name is not guessed: rnn=MODULE (or rnn=A,B to stack "
                   "modules in order), embedding=MODULE (or none), head=MODULE, ignore=MODULE. Repeatable.")
@friendly
def import_command(weights, out, vocab, mapping):
    """Import a char model trained in PyTorch: nn.RNN (tanh), nn.LSTM or nn.GRU (any num_layers),
    an optional nn.Embedding (folded exactly into the input weights) and an nn.Linear head.

    WEIGHTS is a .safetensors file (torch not needed) or a torch.save'd state_dict (needs torch;
    loaded with weights_only=True, nothing else is unpickled). Module names are guessed
    (lstm/gru/rnn.weight_ih_l0, embedding/embed/encoder.weight, fc/decoder/linear/head/out.weight);
    --map names them otherwise. Dropout is ignored (it is off at inference). nn.RNN must use its
    default tanh (relu cannot be told from the weights). The written model
    is an ordinary interpret model: sample, record, scan, export, view, gates, ablate, probe.

    \b
    Example:
      interpret import model.safetensors --vocab vocab.json -o model.npz
      interpret import ckpt.pt --vocab chars.txt -o model.npz --map rnn=mylstm --map head=proj
    """
    from interpret.model.torch_import import import_model

    check_out(out, [weights, vocab])
    model = import_model(weights, vocab, list(mapping))
    model.save(out)
    emb = model.meta["imported"]["embedding"]
    click.echo(f"imported {model.arch} {model.n_layers} x {model.hidden_size}"
               f"{f' (embedding {emb} folded in)' if emb else ''}, {model.vocab_size} characters, "
               f"from {os.path.basename(weights)}; saved {out}")
