"""The viewer on a 3M-character recording, measured in real headless Chromium.

Builds (once) a recording of War and Peace (3.2M characters) with the shipped 100-unit model, then:

- server ready: `bokeh serve viewer --args REC` started -> its HTTP port answers (recording opened);
- first render: page navigation start -> the viewer's text drawn (bokeh document idle with the
  text source filled), for a fresh server and browser each time (cold) and on reloads (warm);
- unit switch: the unit number set in the page -> the text canvas's pixels changed (the value
  travels to the server, the new activation column comes back, the browser maps colours and
  repaints), with 10,000 and 3,000 characters in the window.

Medians over repeats; the machine's load average is printed with the table, since other work on
the same cores slows a browser down. Also writes viewer/screenshot.png (for the README).

Run: python benchmarks/bench_viewer.py [--work DIR] [--repeats N]
"""
import argparse
import io
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from chromium import Browser, Server  # noqa: E402
from interpret.recording.recorder import Recording  # noqa: E402

MODEL = ROOT / "trained_models" / "warpeace-rnn.npz"
CORPUS = ROOT.parent / "shared" / "corpora" / "warandpeace.txt"
TARGETS = {"first render (cold)": 3000, "unit switch, 10k chars": 150}


def ensure_recording(work, corpus):
    """work/warandpeace.rec, recorded with `interpret record` if it is not there yet."""
    rec = work / "warandpeace.rec"
    if not (rec / "manifest.json").is_file():
        print(f"recording {corpus} with {MODEL.name} into {rec} ...", file=sys.stderr)
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        subprocess.run([sys.executable, "-m", "interpret", "record", str(MODEL), str(corpus), "-o", str(rec),
                        "-q"],
                       check=True, env=env)
    return rec


def first_renders(rec, extra, repeats):
    """(server-ready seconds, cold first-render ms, warm first-render ms) lists."""
    ready, cold, warm = [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        server = Server(rec, *extra)
        server.wait(60)
        ready.append(time.perf_counter() - t0)
        with server, Browser(1400, 1000) as browser:
            cold.append(browser.open_viewer(server.url))
            time.sleep(1.0)
            warm.append(browser.open_viewer(server.url))
    return ready, cold, warm


def unit_switches(browser, window, n):
    """Milliseconds from setting the unit to the text's pixels changing, n switches."""
    browser.js(f"__viewer.model('window_select').value = '{window}'")
    time.sleep(4.0)
    assert browser.js("__viewer.model('cells_source').data.x.length") == window
    times = []
    for k in range(n):
        times.append(browser.js(f"__viewer.set_and_wait('unit_input', {(k * 7 + 1) % 100}, 10000)"))
        time.sleep(0.8)  # let the histogram and contexts arrive, as a reading user would
    if min(times) < 0:
        raise RuntimeError("a unit switch did not change the text's pixels within 10 s")
    return times


def screenshot(browser, path, unit=None):
    """A small PNG of the top of the page (palette-quantised to stay small)."""
    from PIL import Image
    browser.js("__viewer.model('window_select').value = '3000'")
    if unit is not None:
        browser.js(f"__viewer.model('unit_input').value = {unit}")
    time.sleep(3.0)
    png = browser.screenshot(clip=(0, 0, 1400, 880))
    img = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT)
    tmp = path.with_suffix(".tmp.png")
    img.save(tmp, optimize=True)
    os.replace(tmp, path)
    return path.stat().st_size


def row(name, values, unit):
    target = TARGETS.get(name)
    verdict = "" if target is None else ("ok" if statistics.median(values) <= target else "OVER")
    return (f"{name:28s} {statistics.median(values):9.0f} {min(values):9.0f} {max(values):9.0f}  {unit:3s} "
            f"{len(values):3d}  {'' if target is None else f'<= {target}':8s} {verdict}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, default=ROOT.parent / "scratch-viewer",
                    help="where the War and Peace recording lives (made if missing)")
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    ap.add_argument("--scan", type=Path, default=None, help="scan JSON to pass to the viewer (optional)")
    ap.add_argument("--repeats", type=int, default=5, help="cold page loads (a fresh server each)")
    ap.add_argument("--switches", type=int, default=15, help="unit switches per window size")
    ap.add_argument("--screenshot", type=Path, default=ROOT / "viewer" / "screenshot.png")
    ap.add_argument("--screenshot-unit", type=int, default=None, help="default: the unit it opens on")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    rec = ensure_recording(args.work, args.corpus)
    extra = ["--scan", str(args.scan)] if args.scan else []
    load_before = os.getloadavg()[0]
    ready, cold, warm = first_renders(rec, extra, args.repeats)
    with Server(rec, *extra) as server, Browser(1400, 1000) as browser:
        browser.open_viewer(server.url)
        time.sleep(2.0)
        unit0 = browser.js("__viewer.model('unit_input').value")  # the one it opened on
        s10k = unit_switches(browser, 10000, args.switches)
        s3k = unit_switches(browser, 3000, args.switches)
        shot_unit = unit0 if args.screenshot_unit is None else args.screenshot_unit
        size = screenshot(browser, args.screenshot, shot_unit)
    load_after = os.getloadavg()[0]
    n_chars = Recording(rec).n_chars
    print(f"\nviewer on {rec} ({n_chars:,} characters, 100 units); load average {load_before:.1f} before, "
          f"{load_after:.1f} after, on {os.cpu_count()} cores\n")
    print(f"{'measure':28s} {'median':>9s} {'min':>9s} {'max':>9s}  unit   n  target")
    print(row("server ready", [1000 * t for t in ready], "ms"))
    print(row("first render (cold)", cold, "ms"))
    print(row("first render (warm)", warm, "ms"))
    print(row("unit switch, 10k chars", s10k, "ms"))
    print(row("unit switch, 3k chars", s3k, "ms"))
    print(f"\nscreenshot: {args.screenshot} ({size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
