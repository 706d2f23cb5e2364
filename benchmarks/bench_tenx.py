"""The gist's model, 10x sooner (issue 15, point 6): the batched trainer against the gist trainer.

The gist trainer's 300,000 iterations on the first 2,876,640 characters of War and Peace made
trained_models/warpeace-rnn.npz, whose held-out loss is 1.831 nats/char: the model run over the
rest of the book (319,574 characters, the "tail") as one stream from a zero state, the mean
next-character loss. The same measure is applied here to the batched trainer's model as it trains.

Gist time: both gist trainers are timed over --gist-iters iterations on the same text and their
rates extrapolated to 300,000 iterations of 25 characters (7.5M characters): the reference script
(min_char_rnn.py) and the faithful trainer (interpret.train.gist, the same bits, about 2x faster);
the faster one is the baseline, the stricter comparison. Batched time: the training loop's wall
time until the tail loss first reaches the gist model's (the tail evaluations are not counted).

Run alone: python benchmarks/bench_tenx.py [--cap 120]
"""
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from interpret.model.model import Model  # noqa: E402
from interpret.train import batched as tb  # noqa: E402
from interpret.train.gist import TrainState  # noqa: E402
from interpret.train.gist import train as train_gist  # noqa: E402

SHARED = REPO.parent / "shared"
CORPUS = SHARED / "corpora" / "warandpeace.txt"
REFERENCE = SHARED / "reference" / "min_char_rnn.py"
GIST_MODEL = REPO / "trained_models" / "warpeace-rnn.npz"
SPLIT, GIST_ITERS, SEQ = 2_876_640, 300_000, 25
# the batched configuration: the gist's vanilla RNN (H 100, windows of 25), 32 streams, Adam
BATCHED = dict(arch="rnn", hidden=100, layers=1, batch_size=32, seq_length=25, lr=2e-3)


def tail_loss(model, tail):
    """Mean next-character loss (nats/char) of model over tail, one stream from a zero state."""
    ix = model.encode(tail)[0]
    _, ys, _ = model.run(ix)
    ys = ys[:-1].astype(np.float64)
    m = ys.max(axis=1, keepdims=True)
    lse = np.log(np.exp(ys - m).sum(axis=1)) + m[:, 0]
    return float(np.mean(lse - ys[np.arange(len(ys)), ix[1:]]))


def gist_rates(train, iters):
    """chars/s of the faithful trainer and (when ../shared/reference exists) the reference script."""
    state = TrainState.fresh(train, 100, SEQ, 0.1, 0)
    t0 = time.perf_counter()
    train_gist(state, train, iters)
    rates = {"faithful": iters * SEQ / (time.perf_counter() - t0)}
    if REFERENCE.exists():
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "train.txt"
            path.write_text(train, encoding="utf-8")
            out = subprocess.run([sys.executable, str(REFERENCE), str(path), "--iters", str(iters),
                                  "--print-every", "0"], capture_output=True, text=True, check=True).stdout
        rates["min_char_rnn.py"] = float(re.search(r"chars_per_s=([0-9.]+)", out).group(1))
    return rates


def batched_time(train, tail, target, cap, every=250):
    """Train BATCHED until the tail loss <= target (checked every `every` iterations) or cap
    seconds of training; (seconds, iterations, characters, tail loss)."""
    st = tb.BatchedState.fresh(train, val_fraction=0.0, seed=0, **BATCHED)
    step = tb.BatchedIteration(st, train, threads=1)
    wall, loss = 0.0, np.inf
    try:
        with np.errstate(over="ignore"):
            while loss > target and wall < cap:
                t0 = time.perf_counter()
                tb.loop.run(st, st.n + every, step)
                wall += time.perf_counter() - t0
                loss = tail_loss(st.to_model(), tail)
    finally:
        step.close()
    return wall, st.n, st.meta["chars_trained"], loss


def bench_tenx(gist_iters=2000, cap=120.0):
    """One row for bench.py: the gist trainer's extrapolated time and the batched trainer's."""
    text = CORPUS.read_text(encoding="utf-8")
    train, tail = text[:SPLIT], text[SPLIT:]
    target = tail_loss(Model.load(GIST_MODEL), tail)
    rates = gist_rates(train, gist_iters)
    best = max(rates, key=rates.get)
    gist_s = GIST_ITERS * SEQ / rates[best]
    wall, n, chars, loss = batched_time(train, tail, target, cap)
    reached = loss <= target
    b = BATCHED
    note = (f"gist: 300k iterations (7.5M chars) extrapolated from {gist_iters} iterations at "
            + ", ".join(f"{k} {v:,.0f} chars/s" for k, v in rates.items()) + f" ({best} is the baseline); "
            f"batched: --arch {b['arch']} --hidden {b['hidden']} --batch-size {b['batch_size']} --seq-length "
            f"{b['seq_length']} --lr {b['lr']} (Adam, 1 thread), {n} iterations, {chars:,} chars, tail loss "
            f"{loss:.4f} {'<=' if reached else '>'} the gist model's {target:.4f} (War and Peace after char "
            f"{SPLIT:,}, one stream); load average {os.getloadavg()[0]:.1f} at the end")
    return [("gist's model 10x sooner (seconds to its tail loss)", "gist trainer, 300k iterations", gist_s,
             wall if reached else float("inf"), "≤0.1× time", note)]


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gist-iters", type=int, default=2000, help="iterations the gist trainers are timed over")
    ap.add_argument("--cap", type=float, default=120.0, help="seconds of batched training at most")
    args = ap.parse_args()
    for row in bench_tenx(args.gist_iters, args.cap):
        print(row)
