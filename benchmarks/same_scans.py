"""Do two checkouts record and scan the shipped models identically? (a refactoring's check)

    python benchmarks/same_scans.py OLD_CHECKOUT [NEW_CHECKOUT]

Each checkout records each shipped model on its demo text and scans the recording (with the
untrained control) through its own command line; then every array and every row is compared.
Rows written before the renames (kind -> array, feature_kind -> feature_type) are read as renamed.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parents[1]
PAIRS = (("warpeace-lstm", "demo_passage.txt"), ("warpeace-rnn", "demo_passage.txt"),
         ("c-lstm", "demo_code.c"), ("c-rnn", "demo_code.c"))
RENAMED = {"kind": "array", "feature_kind": "feature_type"}


def run(checkout, out):
    """Record and scan every shipped pair with one checkout's interpret; {model: (rec dir, scan)}."""
    env = dict(os.environ, PYTHONPATH=str(checkout))
    done = {}
    Path(out).mkdir(parents=True)
    for model, text in PAIRS:
        rec, models = Path(out) / f"{model}.rec", Path(checkout) / "trained_models"
        cli = [sys.executable, "-m", "interpret"]
        subprocess.run([*cli, "record", str(models / f"{model}.npz"), str(models / text), "-o", str(rec), "-q"],
                       env=env, check=True, cwd=checkout, capture_output=True)
        scan = subprocess.run([*cli, "scan", str(rec), "--json", "-q"], env=env, check=True, cwd=checkout,
                              capture_output=True, text=True).stdout
        done[model] = (rec, json.loads(scan))
    return done


def renamed(rows):
    return [{RENAMED.get(k, k): v for k, v in r.items()} for r in rows or []]


def differences(a, b):
    """How two lists of rows differ: whether the order (feature, unit) and the verdicts are the
    same, and the largest absolute and relative difference of any number."""
    a, b = renamed(a), renamed(b)
    order = [(r["feature"], r["unit"]) for r in a] == [(r["feature"], r["unit"]) for r in b]
    verdicts = [r.get("verdict") for r in a] == [r.get("verdict") for r in b]
    most, rel = 0.0, 0.0
    for r, s in zip(a, b):
        for k, v in r.items():
            w = s.get(k)
            if isinstance(v, float) and isinstance(w, float) and v != w:
                most = max(most, abs(v - w))
                rel = max(rel, abs(v - w) / max(abs(v), abs(w)))
    return (f"same order: {order}, same verdicts: {verdicts}, "
            f"largest difference {most:.3g} (relative {rel:.3g})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("old")
    ap.add_argument("new", nargs="?", default=str(HERE))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        old, new = run(args.old, Path(tmp) / "old"), run(args.new, Path(tmp) / "new")
        same_all = True
        for model, _ in PAIRS:
            (rec_a, scan_a), (rec_b, scan_b) = old[model], new[model]
            files = sorted(f for f in os.listdir(rec_a) if f.endswith(".npy"))
            arrays = all(np.array_equal(np.load(rec_a / f), np.load(rec_b / f), equal_nan=True) for f in files)
            rows = renamed(scan_a["rows"]) == renamed(scan_b["rows"])
            control = renamed(scan_a["control"]) == renamed(scan_b["control"])
            same_all &= arrays and rows and control
            print(f"{model}: {len(files)} arrays identical: {arrays}; {len(scan_b['rows'])} rows identical: {rows}; "
                  f"{len(scan_b['control'] or [])} control rows identical: {control}")
            if not rows:
                print(f"  rows: {differences(scan_a['rows'], scan_b['rows'])}")
            if not control:
                print(f"  control rows: {differences(scan_a['control'], scan_b['control'])}")
    sys.exit(0 if same_all else 1)


if __name__ == "__main__":
    main()
