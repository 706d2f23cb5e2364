"""Big inputs: record (and scan) tens of millions of characters; how much memory beyond the output.

    python benchmarks/bench_big.py                                   # 50M characters (about 20 min)
    python benchmarks/bench_big.py --chars 2000000 --scan-chars 500000,1000000 --no-scan-full   # a quick look

The input is War and Peace from ../shared/corpora repeated to --chars characters, cut into
documents of --doc-chars (one file each, as `interpret record` takes them). Each step runs as
`python -m interpret ...` in a child process whose /proc/PID/status is read every 20 ms:

- peak RssAnon: the process's own memory (heap, numpy arrays), i.e. what it holds beyond the
  file-backed pages of the memory-mapped output; this is the figure the bound is about;
- peak VmRSS: everything resident, the mapped output's pages included (the kernel may drop those
  at any time: they are already in the file).

The scan is measured on the whole input (streaming: scan_stream.py, the path a scan takes when
whole columns do not fit) and on recordings of the --scan-chars sizes (the first documents of the
input; --scan-path chooses the path), to show how its memory does (not) grow with the length.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpora" / "warandpeace.txt"
MODEL = REPO / "trained_models" / "warpeace-rnn.npz"
MB = 2 ** 20


def status(pid):
    """{field: kB} of /proc/PID/status (only the kB fields)."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if value.strip().endswith("kB"):
                out[key] = int(value.split()[0])
    return out


def measured(args, scan_path=""):
    """Run `python -m interpret ARGS`; (seconds, peak RssAnon MB, peak VmRSS MB, stdout).
    scan_path 'stream' or 'memory' forces the scan's path (INTERPRET_SCAN)."""
    env = dict(os.environ, PYTHONPATH=str(REPO), INTERPRET_SCAN=scan_path)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "interpret", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = {"RssAnon": 0, "VmRSS": 0}

    def sample():
        while proc.poll() is None:
            try:
                s = status(proc.pid)
            except (FileNotFoundError, ProcessLookupError):
                break
            for k in peak:
                peak[k] = max(peak[k], s.get(k, 0))
            time.sleep(0.02)
    sampler = threading.Thread(target=sample)
    sampler.start()
    out, err = proc.communicate()
    sampler.join()
    if proc.returncode:
        raise RuntimeError(f"interpret {' '.join(map(str, args))} failed:\n{err}")
    return time.perf_counter() - t0, peak["RssAnon"] / 1024, peak["VmRSS"] / 1024, out


def write_documents(folder, n_chars, doc_chars):
    """The corpus repeated to n_chars characters, in files of doc_chars; their paths."""
    corpus = CORPUS.read_text(encoding="utf-8")
    paths, done, k = [], 0, 0
    while done < n_chars:
        size = min(doc_chars, n_chars - done)
        start = done % len(corpus)
        piece = (corpus[start:] + corpus * (size // len(corpus) + 1))[:size]
        path = folder / f"doc{k:04d}.txt"
        path.write_text(piece, encoding="utf-8", newline="")
        paths.append(path)
        done, k = done + size, k + 1
    return paths


def du(path):
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--chars", type=int, default=50_000_000, help="characters to record")
    ap.add_argument("--doc-chars", type=int, default=1_000_000, help="characters per document (file)")
    ap.add_argument("--dtype", default="float16", choices=["float16", "float32"])
    ap.add_argument("--scan-chars", default="5000000,10000000",
                    help="comma-separated sizes to scan (recorded separately); '' for none")
    ap.add_argument("--scan-path", default="stream", choices=["stream", "memory", ""],
                    help="the scan's path for --scan-chars ('' = what fits; the full input always "
                         "streams)")
    ap.add_argument("--no-scan-full", action="store_true", help="do not scan the whole input")
    ap.add_argument("--feature", default="default",
                    help="the scan's features, comma-separated; 'default': those scan picks for the "
                         "text (the prose ones: 10)")
    ap.add_argument("--shifts", type=int, default=10, help="the scan's circular shifts")
    ap.add_argument("--workdir", default=None, help="scratch directory (default: a temporary one)")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-big-", dir=a.workdir))
    print(f"model {MODEL.name}; input: {CORPUS.name} repeated; scratch {work}", flush=True)
    try:
        docs = write_documents(work, a.chars, a.doc_chars)
        rows = []
        rec = work / "big.rec"
        secs, anon, rss, _ = measured(["record", MODEL, *docs, "-o", rec, "--dtype", a.dtype, "-q"])
        size = du(rec)
        rows.append(("record", a.chars, secs, size, anon, rss))
        chosen = [] if a.feature == "default" else [x for f in a.feature.split(",") for x in ("-f", f)]
        scan_args = [*chosen, "--shifts", a.shifts, "--json", "-q"]
        what = f"{a.feature} features" if a.feature == "default" else f"-f {a.feature}"
        if not a.no_scan_full:
            secs, anon, rss, _ = measured(["scan", rec, *scan_args], "stream")
            rows.append((f"scan (stream) {what} --shifts {a.shifts}", a.chars, secs, size,
                         anon, rss))
        shutil.rmtree(rec)
        for n in [int(x) for x in a.scan_chars.split(",") if x]:
            k = max(1, -(-n // a.doc_chars))
            small = work / f"scan{n}.rec"
            measured(["record", MODEL, *docs[:k], "-o", small, "--dtype", a.dtype, "-q"])
            chars = sum(len(d.read_text(encoding="utf-8")) for d in docs[:k])
            secs, anon, rss, _ = measured(["scan", small, *scan_args], a.scan_path)
            rows.append((f"scan ({a.scan_path or 'auto'}) {what} --shifts {a.shifts}", chars,
                         secs, du(small), anon, rss))
            shutil.rmtree(small)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n| step | characters | seconds | chars/s | output on disk | peak RssAnon (beyond the mapped "
          f"output) | peak VmRSS |\n|---|---|---|---|---|---|---|")
    for step, n, secs, size, anon, rss in rows:
        print(f"| {step} | {n:,} | {secs:.0f} | {n / secs:,.0f} | {size / MB:,.0f} MB | {anon:,.0f} MB "
              f"({anon * MB / n:.2f} B/char) | {rss:,.0f} MB |")


if __name__ == "__main__":
    main()
