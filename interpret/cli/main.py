"""The `interpret` command line: a thin click layer over the library (the only package using click).

Each command group lives in its own file; this one builds the group and adds them.
"""
import click

from interpret._util.version import __version__
from interpret.cli import analysis, export, importing, record, scan, train
from interpret.cli.common import CONTEXT


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
      interpret import weights.safetensors --vocab vocab.json -o mine.npz
    """


for command in (train.train, train.sample, record.record, scan.scan, scan.list_features, export.export,
                export.demo, export.view, analysis.ablate, analysis.gates, analysis.probe,
                importing.import_command):
    main.add_command(command)
