"""`interpret export`, `interpret demo` and `interpret view`."""
import os
import sys

import click

from interpret.cli.common import (CONTEXT, progress, IN_FILE, IN_PATH, check_out, friendly, info, quiet_option, with_options)
import re

from interpret.cli.scan import FEATURE_OPTIONS


@click.command(context_settings=CONTEXT)
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
@with_options(FEATURE_OPTIONS)
@quiet_option
@friendly
def export(rec, out, unit, start, length, gallery, top, scan_json, features, feature_regex,
           feature_file, layer, array, shifts, seed, quiet):
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
    from interpret.export.html import write_html
    from interpret.export.unit import unit_export
    from interpret.recording.recording import Recording
    from interpret.scanning.result import Scan, scan

    check_out(out, inputs=[scan_json] if scan_json else [])
    recording = Recording(rec)
    if gallery:
        from interpret.export.gallery import gallery as gallery_page
        if scan_json:
            result = Scan.load(scan_json, recording)
        else:
            result = scan(recording, list(features), layer=layer, arrays=array, n_shifts=shifts, seed=seed,
                          regexes=feature_regex, feature_files=feature_file, progress=progress(quiet))
        length = length if length != 3000 else 500
        page = gallery_page(recording, result.rows, result.control, top=top, length=length,
                            feature_extra=(feature_regex, feature_file))
    else:
        if unit is None:
            raise click.UsageError("give --unit N (or --gallery for the top cells)")
        page = unit_export(recording, unit, start=start, length=length, layer=layer, array=array)
    write_html(out, page)
    click.echo(f"wrote {out}")


@click.command(context_settings=CONTEXT)
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

    summary = run_demo(out, progress=progress(quiet), log=lambda s: info(s, quiet))
    click.echo(summary)


@click.command(context_settings=CONTEXT)
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

    from interpret._util.paths import checkout_root, viewer_dir
    from interpret.recording.recording import Recording
    from interpret.scanning.rows import load_scan_json

    for o in origins:
        if not re.fullmatch(r"[A-Za-z0-9.\-\[\]:]+", o) or o.startswith(":"):
            raise click.BadParameter(f"{o!r} is not an origin; give HOST[:PORT], e.g. localhost:8080",
                                     param_hint="--allow-origin")
    recording = Recording(rec)
    recording.text  # noqa: B018  (reads and checks the text)
    for layer, array, _ in recording.array_list():
        recording.activations(layer, array)
    if scan_json:
        load_scan_json(scan_json, recording)
    app = viewer_dir()  # FileNotFoundError (one line, via @friendly) when neither installed nor checked out
    args = [os.path.abspath(rec)] + (["--scan", os.path.abspath(scan_json)] if scan_json else [])
    cmd = [sys.executable, "-m", "bokeh", "serve", str(app), "--address", "127.0.0.1",
           "--port", str(port), "--allow-websocket-origin", f"127.0.0.1:{port}",
           "--allow-websocket-origin", f"localhost:{port}",
           *[a for o in origins for a in ("--allow-websocket-origin", o)],
           *(["--show"] if show else []), "--args", *args]
    root = checkout_root()  # None when installed: the subprocess finds interpret in site-packages
    paths = (root and str(root), os.environ.get("PYTHONPATH"))  # the subprocess imports this same interpret
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
