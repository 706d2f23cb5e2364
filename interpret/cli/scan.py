"""`interpret scan` and `interpret features`."""
import sys

import click

from interpret.cli.common import (CONTEXT, progress, IN_FILE, IN_PATH, friendly, quiet_option, with_options)

FEATURE_OPTIONS = [
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



@click.command(context_settings=CONTEXT)
@click.argument("rec", type=IN_PATH)
@with_options(FEATURE_OPTIONS)
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
    from interpret.recording.recording import Recording
    from interpret.scan.result import scan as run_scan

    if as_json and as_csv:
        raise click.UsageError("give --json or --csv, not both")
    result = run_scan(Recording.open(rec), list(features), control=control, layer=layer, arrays=kind,
                      n_shifts=shifts, seed=seed, regexes=feature_regex, feature_files=feature_file,
                      progress=progress(quiet))
    if as_json:
        click.echo(result.to_json(top=top))
    elif as_csv:
        result.to_csv(sys.stdout, top=top)
    else:
        click.echo(result.table(top=top or 5))


@click.command("features", context_settings=CONTEXT)
def list_features():
    """List the built-in features with their kind, causality and domain.

    \b
    Example:
      interpret features
    """
    from interpret.features import FEATURES

    for f in FEATURES.values():
        click.echo(f"{f.name:20s} {f.type:10s} {'causal' if f.causal else 'acausal':8s} "
                   f"{f.domain:6s} {f.description}")
