"""Two checkouts of interpret side by side: bench.py of each, alternating, medians and ratios.

    python benchmarks/compare_checkouts.py OLD_CHECKOUT [NEW_CHECKOUT] --only train,record --rounds 3 [-- BENCH_ARGS]

Each round runs `bench.py --repeats 1` of the old checkout, then of the new one (each imports its
own interpret), so machine load hits both alike; the table gives every row's median per side and
new / old for rates (chars/s) and old / new for times and sizes (seconds, bytes), so a
"speed" above 1 always means the new checkout does better.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def run_bench(checkout, only, extra):
    """{row name: (ours figure, unit hint)} from one bench.py run of a checkout."""
    cmd = [sys.executable, str(Path(checkout) / "benchmarks" / "bench.py"), "--only", only, "--repeats", "1", *extra]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=checkout).stdout
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 6 and cells[0] not in ("target", "") and not set(cells[0]) <= {"-"}:
            ours = cells[3].replace(",", "")
            if re.fullmatch(r"[0-9.]+", ours):
                rows[cells[0]] = float(ours)
    return rows


def lower_is_better(name):
    """Times and sizes (seconds, bytes); every other row is a rate (chars/s)."""
    return "chars/s" not in name


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("old")
    ap.add_argument("new", nargs="?", default=str(HERE))
    ap.add_argument("--only", default="train,batched,record,export")
    ap.add_argument("--rounds", type=int, default=3)
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)  # after --: passed to bench.py as it is
    args, extra = ap.parse_args(argv[:cut]), argv[cut + 1:]
    runs = {"old": [], "new": []}
    for r in range(args.rounds):
        for side in ("old", "new"):
            print(f"round {r + 1}/{args.rounds}: {side}", file=sys.stderr, flush=True)
            runs[side].append(run_bench(getattr(args, side), args.only, extra))
    names = [n for n in runs["old"][0] if all(n in run for side in runs.values() for run in side)]
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end; medians of {args.rounds} "
          f"alternating rounds\nold: {args.old}\nnew: {args.new}\n")
    print("| row | old | new | speed (new vs old) |\n|---|---|---|---|")
    for n in names:
        old = statistics.median(run[n] for run in runs["old"])
        new = statistics.median(run[n] for run in runs["new"])
        speed = old / new if lower_is_better(n) else new / old
        print(f"| {n} | {old:,.2f} | {new:,.2f} | {speed:.3f}× |")


if __name__ == "__main__":
    main()
