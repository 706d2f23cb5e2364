"""`interpret ablate` as a whole command in two checkouts, alternated: wall seconds and reports.

Issue 15 asks for ablate >= 10x faster on the same text than the ablate it was filed against.
bench_record_gated.py times the plain path of this checkout in-process; this script runs the
command itself, in this checkout and in OLD (e.g. a `git worktree add ../old-1b995e5 1b995e5`),
one after the other, on 20,000 characters of War and Peace (the command's default length):

    python benchmarks/compare_ablate.py ../old-1b995e5 [--repeats 3] [--start 2900000]

Two models: the shipped 1x256 `warpeace-lstm` (unit 89, layer 0) and a 2x256 LSTM with random
weights (unit 5, layer 1), saved once to a temporary file that both checkouts read. Prints each
run, the medians and their ratio, and the largest difference between the two JSON reports.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_record_gated import CORPUS, LSTM, lstm_2x256  # noqa: E402
from interpret.model.model import Model  # noqa: E402

FIELDS = ("unit_delta", "random_mean", "random_std", "p_random", "base_loss")


def run(checkout, model, unit, layer, start):
    """(wall seconds, the JSON report) of one `python -m interpret ablate` in checkout."""
    cmd = [sys.executable, "-m", "interpret", "ablate", str(model), str(CORPUS), "--unit", str(unit),
           "--layer", str(layer), "--start", str(start), "--json", "-q"]
    env = dict(os.environ, PYTHONPATH=str(checkout))  # that checkout's package, not the installed one
    t = time.perf_counter()
    out = subprocess.run(cmd, cwd=checkout, env=env, capture_output=True, text=True, check=True).stdout
    return time.perf_counter() - t, json.loads(out)


def largest_difference(a, b):
    """Largest |difference| over the reports' rows, after checking they hold the same rows."""
    if a["random_units"] != b["random_units"] or [r["group"] for r in a["rows"]] != [r["group"] for r in b["rows"]]:
        raise SystemExit("the two checkouts ablated different units or reported different groups")
    return max(abs(ra[k] - rb[k]) for ra, rb in zip(a["rows"], b["rows"]) for k in FIELDS)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("old", type=Path, help="the other checkout (its folder holds interpret/)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--start", type=int, default=2_900_000, help="first War and Peace character used")
    args = ap.parse_args()
    if not (args.old / "interpret").is_dir():
        raise SystemExit(f"{args.old} holds no interpret/ package: give a checkout of this repository")
    with tempfile.TemporaryDirectory() as tmp:
        two = Path(tmp) / "lstm2x256.npz"
        lstm_2x256(Model.load(LSTM).chars).save(two)
        configs = [("1x256, layer 0, unit 89", LSTM, 89, 0), ("2x256, layer 1, unit 5", two, 5, 1)]
        for name, model, unit, layer in configs:
            times, reports = {"old": [], "new": []}, {}
            for _ in range(args.repeats):
                for side, checkout in (("old", args.old.resolve()), ("new", REPO)):
                    sec, reports[side] = run(checkout, model, unit, layer, args.start)
                    times[side].append(sec)
                    print(f"{name}: {side} {sec:.2f} s, load {os.getloadavg()[0]:.1f}", flush=True)
            old, new = float(np.median(times["old"])), float(np.median(times["new"]))
            print(f"{name}: median old {old:.2f} s, new {new:.2f} s, {old / new:.2f}x; largest report "
                  f"difference {largest_difference(reports['old'], reports['new']):.2g}", flush=True)


if __name__ == "__main__":
    main()
