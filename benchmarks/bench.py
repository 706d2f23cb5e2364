"""Speed targets of issue 4, each measured against its peer side by side in one run.

    python benchmarks/bench.py                 # everything (several minutes on 2 cores)
    python benchmarks/bench.py --only train,export --repeats 5
    python benchmarks/bench.py --scan-units 64  # a smaller scan (the target is 512 units)

Prints one table: peer, peer figure, ours, ratio, target, pass/fail. Every figure is the median
over --repeats runs; peer and ours alternate inside each repeat, so machine load hits both.
Reads ../shared/corpora and ../shared/reference (beside the repository) when they exist.
"""
import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
sys.path.insert(0, str(REPO))  # this checkout's interpret, not an installed one

from interpret.model.model import Model  # noqa: E402

CORPUS = SHARED / "corpora" / "warandpeace.txt"
REFERENCE = SHARED / "reference" / "min_char_rnn.py"
MODEL = REPO / "trained_models" / "warpeace-rnn.npz"


def median_of(repeats, *funcs):
    """Run each func once per repeat (interleaved); the median of each one's results."""
    results = [[] for _ in funcs]
    for _ in range(repeats):
        for out, f in zip(results, funcs):
            out.append(f())
    return [float(np.median(r)) for r in results]


def read(path, n=None):
    with open(path, encoding="utf-8", newline="") as f:
        return f.read() if n is None else f.read(n)


# ---- 1. faithful training: the reference script against interpret's trainer --------------

def bench_train(repeats, iters):
    """chars/s of the reference gist and of ours, same text, seed and settings (H=100, T=25)."""
    from interpret.train.gist import TrainState, read_text, train
    if not REFERENCE.exists():
        return [("faithful training", "min_char_rnn.py", None, None, "≥10×", "skipped: no ../shared/reference")]
    corpus = SHARED / "corpora" / "tinyshakespeare.txt"
    text = read_text(corpus)
    tmp = Path(tempfile.mkdtemp())

    def peer():
        out = subprocess.run([sys.executable, str(REFERENCE), str(corpus), "--iters", str(iters),
                              "--print-every", "0", "--out", str(tmp / "ref.npz")],
                             capture_output=True, text=True, check=True).stdout
        return float(re.search(r"chars_per_s=([0-9.]+)", out).group(1))

    def ours():  # timed like the reference times itself: the loop, not reading the text
        state, first = TrainState.fresh(text, 100, 25, 0.1, 0), []

        def tick(n, _loss):
            if not first:
                first.append((n, time.perf_counter()))

        train(state, text, iters, on_progress=tick)
        n0, t0 = first[0]
        ours.params = state.model.params
        return (iters - n0) * 25 / (time.perf_counter() - t0)

    ref_cps, our_cps = median_of(repeats, peer, ours)
    ref = Model.load(tmp / "ref.npz").params
    diff = max(float(np.abs(ref[k] - ours.params[k]).max()) for k in ref)
    shutil.rmtree(tmp)
    note = f"parity after {iters} iterations: max |Δ| = {diff:.1g}"
    return [("faithful training (chars/s)", "min_char_rnn.py", ref_cps, our_cps, 10.0, note)]


# ---- 2. batched training against PyTorch: bench_batched.py -----------------------------------

def bench_batched(repeats):
    from bench_batched import bench_batched as run  # PyTorch is imported there, if installed
    return run(read(CORPUS)[:2_000_000], repeats)


# ---- 2b. the gist's model 10x sooner: bench_tenx.py -------------------------------------------

def bench_tenx(repeats):
    from bench_tenx import bench_tenx as run  # one run: it trains to a loss, which takes tens of seconds
    return run()


# ---- 3. recording ----------------------------------------------------------------------------

def onehot_loop(model, ix):
    """The reference-style recorder: per character the gist's step with a one-hot input, then
    its output layer for the next-character loss (what a recording holds: states and loss)."""
    P = model.params
    Wxh, Whh, Why, bh, by = P["Wxh"], P["Whh"], P["Why"], P["bh"][:, None], P["by"][:, None]
    h = np.zeros((model.hidden_size, 1))
    out = np.empty((len(ix), model.hidden_size), dtype=np.float32)
    loss = np.full(len(ix), np.nan, dtype=np.float32)
    for t, i in enumerate(ix):
        x = np.zeros((model.vocab_size, 1))
        x[i] = 1
        h = np.tanh(np.dot(Wxh, x) + np.dot(Whh, h) + bh)
        out[t] = h[:, 0]
        if t + 1 < len(ix):
            y = np.dot(Why, h) + by
            p = np.exp(y) / np.sum(np.exp(y))
            loss[t] = -np.log(p[ix[t + 1], 0])
    return out, loss


def bench_record(repeats, n_single, n_many, doc_len):
    from interpret.recording import recorder as R
    model = Model.load(MODEL)
    text = read(CORPUS)
    ix, _ = model.encode(text[:n_single])
    cpu = {}  # chars per CPU second (all threads of the process), per side

    def timed(f, n, key):
        t, c = time.perf_counter(), time.process_time()
        f()
        cpu.setdefault(key, []).append(n / (time.process_time() - c))
        return n / (time.perf_counter() - t)

    def cpu_note(peer_key, ours_key):
        p, o = (float(np.median(cpu[k])) for k in (peer_key, ours_key))
        return f"CPU time (all threads): peer {p:,.0f}, ours {o:,.0f} chars/s ({o / p:.2f}×)"

    def ours_single():
        h, loss = np.empty((len(ix), model.hidden_size), np.float32), np.empty(len(ix), np.float32)
        return timed(lambda: R.fill_arrays(model, ix, [0], {(0, "h"): h}, loss), len(ix), "one")

    from interpret.model import jit
    ours_single()  # numba's compiled loops loaded (from its cache) before the clock runs
    peer, ours = median_of(repeats, lambda: timed(lambda: onehot_loop(model, ix), len(ix), "gist"),
                           ours_single)
    how = "kernels.rnn_one (numba)" if jit.enabled() else "lanes.steps_one (numpy)"
    rows = [("record, one stream (chars/s)", "one-hot gist step", peer, ours, 5.0,
             f"H=100, {len(ix):,} chars, states and next-char loss in both, float64 steps through {how}; "
             f"the output layer on the main thread (lanes.THREADED_ONE); {cpu_note('gist', 'one')}")]
    docs = [model.encode(text[a:a + doc_len])[0] for a in range(0, n_many, doc_len)]
    starts = np.cumsum([0] + [len(d) for d in docs])
    all_ix = np.concatenate(docs)  # (N,) the documents back to back, as fill_arrays takes them
    h, loss = np.empty((starts[-1], model.hidden_size), np.float32), np.empty(starts[-1], np.float32)

    def by_document():  # the plain form: Model.run per document, one after the other
        return timed(lambda: [model.run(d) for d in docs[:50]], int(starts[50]), "run")

    def lanes():
        return timed(lambda: R.fill_arrays(model, all_ix, starts[:-1], {(0, "h"): h}, loss), int(starts[-1]),
                     "lanes")

    peer, ours = median_of(repeats, by_document, lanes)
    rows.append(("record, many documents (chars/s)", "Model.run per document", peer, ours,
                 "≥1M chars/s", f"{len(docs)} documents of {doc_len} chars, H=100, float32 lanes of "
                 f"{R.LANES}, next-char loss included (the peer: logits only); {cpu_note('run', 'lanes')}"))
    return rows


def gated_rows(name, repeats):
    """Rows of bench_record_gated.py: gated recording against nn.LSTM (when PyTorch is installed),
    ablate before/after, the whole record process against the gist-style loop."""
    import bench_record_gated
    return getattr(bench_record_gated, name)(repeats)


# ---- 4. scanning -----------------------------------------------------------------------------

def make_scan_fixture(folder, n, units, seed=0):
    """A text of n chars (C source then prose, two documents) and (n, units) float32 activations:
    smoothed noise (moving sums of 50 steps, squashed by tanh), autocorrelated like real units."""
    lua, prose = SHARED / "corpora" / "lua_src.txt", CORPUS
    text = read(lua, n // 2) + read(prose, n - n // 2) if lua.exists() else read(prose, n)
    (folder / "text.txt").write_text(text, encoding="utf-8")
    acts = np.lib.format.open_memmap(folder / "acts.npy", mode="w+", dtype=np.float32, shape=(n, units))
    rng = np.random.default_rng(seed)
    for j in range(0, units, 32):
        e = rng.standard_normal((n + 50, min(32, units - j)), dtype=np.float32)
        c = np.cumsum(e, axis=0, dtype=np.float64)
        acts[:, j:j + 32] = np.tanh((c[50:] - c[:-50]) / np.sqrt(50.0))
    acts.flush()
    return text


def scan_child(folder):
    """In a fresh process: features + scan (scanning.run.scan_arrays, as `interpret scan` runs it:
    its memory plan's block and workers, q-values, support) over the memmap; print time and peak RSS."""
    from interpret import features as F
    from interpret._util.alloc import reuse_freed_memory
    from interpret.scanning.common import FeatureValues
    from interpret.scanning.run import scan_arrays
    folder = Path(folder)
    text = read(folder / "text.txt")
    acts = np.load(folder / "acts.npy", mmap_mode="r")
    load = os.getloadavg()[0]
    t = time.perf_counter()
    starts = [0, len(text) // 2]
    with reuse_freed_memory():  # as scanning.run.scan_recording: features and scan in one block
        feats = F.get_features(None)
        fvals = [FeatureValues(f.name, f.type, v) for f, v in zip(feats, F.evaluate_all(feats, text, starts))]
        chars = sorted(set(text))
        codes = np.searchsorted(np.array([ord(c) for c in chars]),
                                np.frombuffer(text.encode("utf-32-le"), dtype="<u4"))
        rows = scan_arrays([(0, "h", acts)], fvals, codes)   # scan_plan's layout, q-values, support
    secs = time.perf_counter() - t
    print(json.dumps({"secs": secs, "cpu": time.process_time(), "rows": len(rows),
                      "load": [load, os.getloadavg()[0]],
                      "features": len(fvals),
                      "maxrss": peak_rss(), "mapped": status_bytes("RssFile"),
                      "sys": resource.getrusage(resource.RUSAGE_SELF).ru_stime}))


def status_bytes(field):
    """A size from /proc/self/status in bytes now (e.g. RssFile: mapped file pages), or 0."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))
    except (OSError, StopIteration):
        return 0


def peak_rss():
    """This process's peak resident memory in bytes: VmHWM where Linux gives it (ru_maxrss keeps
    the RSS of the process that forked this one, here the parent that wrote the 2 GB fixture)."""
    return status_bytes("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def warm_scan():
    """One untimed scan child on a small fixture: numba compiles the scan's loops (radix ranks,
    row stats) on their first use and caches them on disk, which a timed child must not count
    (5-10 CPU-s the first time on a machine, or after the compiled files change)."""
    folder = Path(tempfile.mkdtemp(prefix="interpret-bench-warm-"))
    try:
        make_scan_fixture(folder, 20_000, 8)
        subprocess.run([sys.executable, __file__, "--scan-child", str(folder)],
                       capture_output=True, text=True, check=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def bench_scan(repeats, n, units):
    warm_scan()
    folder = Path(tempfile.mkdtemp(prefix="interpret-bench-"))
    try:
        make_scan_fixture(folder, n, units)
        os.sync()   # the 2 GB just written goes to disk now, not by the kernel's threads during the runs
        size = (folder / "acts.npy").stat().st_size
        runs = []
        for _ in range(repeats):
            out = subprocess.run([sys.executable, __file__, "--scan-child", str(folder)],
                                 capture_output=True, text=True, check=True).stdout
            runs.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    secs = float(np.median([r["secs"] for r in runs]))
    cpu = float(np.median([r["cpu"] for r in runs]))
    kernel = float(np.median([r["sys"] for r in runs]))
    rss = max(r["maxrss"] for r in runs)
    mapped = max(r["mapped"] for r in runs)
    each = [f"{r['secs']:.2f}" for r in runs]
    what = f"{n:,} chars × {units} units × {runs[0]['features']} features, 200 shifts"
    load = f"{min(r['load'][0] for r in runs):.1f}-{max(r['load'][1] for r in runs):.1f}"
    return [("scan (seconds)", "", None, secs, "≤15 s",
             f"{what}; runs {', '.join(each)} s; CPU {cpu:.0f} s ({kernel:.1f} s of it in the kernel); "
             f"load average {load}"),
            ("scan peak memory (× recording on disk)", "", None, rss / size, "≤2×",
             f"peak RSS {rss / 2**30:.2f} GiB, of which the recording's cached pages, mapped, "
             f"{mapped / 2**30:.2f} GiB; recording {size / 2**30:.2f} GiB")]


# ---- 5. export -------------------------------------------------------------------------------

def bench_export(repeats, n):
    from interpret.export.html import unit_page
    from interpret.recording.recorder import run_in_memory
    model = Model.load(MODEL)
    text = read(CORPUS)[:n]
    h = run_in_memory(model, text)[(0, "h")]
    unit = int(np.argmax(np.abs(np.diff(h, axis=0)).mean(axis=0)))   # the most changeable unit
    values = h[:, unit].astype(np.float64)
    sizes = []

    def ours():
        t = time.perf_counter()
        sizes.append(len(unit_page(text, values, title="bench").encode("utf-8")))
        return time.perf_counter() - t

    secs, = median_of(repeats, ours)
    note = f"{n:,} chars, unit {unit} (most changeable) of the shipped H=100 model"
    return [("export (seconds)", "", None, secs, "≤1 s", note),
            ("export (bytes per char)", "", None, max(sizes) / n, "≤40 B", "")]


# ---- the table -------------------------------------------------------------------------------

def verdict(peer, ours, target):
    """(ratio text, pass/fail) for a ratio target (float) or an absolute one ('≤30 s', ...)."""
    if ours is None:
        return "", "-"
    if isinstance(target, float):
        ratio = ours / peer
        return f"{ratio:.2f}×", "pass" if ratio >= target else "FAIL"
    num = float(re.search(r"[0-9.]+", target).group()) * (1e6 if "M" in target else 1)
    if "×" in target:  # a ratio to the peer's figure, e.g. '≤0.1× time'
        if not peer:
            return "", "-"
        return f"{ours / peer:.3f}×", "pass" if ours / peer <= num else "FAIL"
    ok = ours >= num if target.startswith("≥") else ours <= num
    return (f"{ours / peer:.2f}×" if peer else ""), "pass" if ok else "FAIL"


def fmt(x):
    if x is None:
        return "-"
    return f"{x:,.0f}" if x >= 100 else f"{x:.2f}"


def table(rows):
    head = ("target", "peer", "peer figure", "ours", "ratio", "target", "result", "notes")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, peer_name, peer, ours, target, note in rows:
        ratio, result = verdict(peer, ours, target)
        shown = f"≥{target:g}×" if isinstance(target, float) else target
        if ours is None:
            result = note.split(":")[0]
        lines.append("| " + " | ".join([name, peer_name or "-", fmt(peer), fmt(ours), ratio or "-",
                                        shown, result, note]) + " |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default="train,batched,tenx,record,scan,export,gated,ablate,process",
                    help="comma-separated subset of train,batched,tenx,record,scan,export,gated,ablate,process")
    ap.add_argument("--repeats", type=int, default=3, help="runs per figure (median); default 3")
    ap.add_argument("--scan-repeats", type=int, default=1, help="scan runs (each takes minutes)")
    ap.add_argument("--train-iters", type=int, default=2000)
    ap.add_argument("--scan-chars", type=int, default=1_000_000)
    ap.add_argument("--scan-units", type=int, default=512)
    ap.add_argument("--scan-child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.scan_child:
        return scan_child(args.scan_child)
    if not CORPUS.exists():
        sys.exit(f"{CORPUS} is missing; the benchmarks read ../shared/corpora beside the repository")
    only = set(args.only.split(","))
    rows = []
    steps = [("train", lambda: bench_train(args.repeats, args.train_iters)),
             ("batched", lambda: bench_batched(args.repeats)),
             ("tenx", lambda: bench_tenx(args.repeats)),
             ("record", lambda: bench_record(args.repeats, 20_000, 1_000_000, 2_000)),
             ("scan", lambda: bench_scan(args.scan_repeats, args.scan_chars, args.scan_units)),
             ("export", lambda: bench_export(args.repeats, 100_000)),
             ("gated", lambda: gated_rows("bench_gated", args.repeats)),      # bench_record_gated.py
             ("ablate", lambda: gated_rows("bench_ablate", args.repeats)),
             ("process", lambda: gated_rows("bench_process", args.repeats))]
    for name, step in steps:
        if name in only:
            print(f"running {name} ...", file=sys.stderr, flush=True)
            got = step()
            rows += got
            for row in got:  # each figure as soon as it is measured: a later failure loses nothing
                print("  " + " | ".join(map(str, row)), file=sys.stderr, flush=True)
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end; "
          f"medians of {args.repeats} runs (scan: {args.scan_repeats})\n")
    print(table(rows))


if __name__ == "__main__":
    main()
