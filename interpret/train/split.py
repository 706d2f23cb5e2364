"""Data-parallel training steps: the B streams split into one part per thread, run side by side.

The streams of a batch are independent until their gradients are summed, so each of `threads`
workers runs stack.loss_and_grads on its own columns of the window (T, B_k) and its own slice of
the carried state, with its own reusable buffers; the parts' losses and gradients are then
weighted by B_k / B and summed, which is the mean over all B streams that one thread computes
(the same numbers up to float32 rounding: only the order of the sums changes).

Threads share the process, so no data is copied: numpy releases the GIL inside BLAS calls and
ufunc loops, and each worker's BLAS stays on one thread (blas.one_thread is process-wide).
Measured on 2 cores (benchmarks/README.md): this beats two BLAS threads per matrix product,
whose (B, H) x (H, G*H) products are too small to share. The split stops at one part per 16
streams; an LSTM of BLAS_FROM units or more given more threads than that runs the whole batch on
one worker with BLAS on `threads` threads instead (way "blas"), so that every core works.
"""
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from interpret._util import blas
from interpret._util.cores import cores  # noqa: F401  (split.cores: tests and callers)
from interpret.model import stack as gated


BLAS_FROM = 512  # LSTMs of this many units use threads beyond the split's parts as BLAS threads:
# their products are big enough to share. Where the split has a part for every thread it wins:
# at 2x512, batch 32, 2 threads, it beat two BLAS threads in 7 runs of 8 once the cells were
# vectorised (+8 to +34%; the eighth -11%; benchmarks/README.md). GRUs of 512 and LSTMs of 256
# units stay split.
PART = 16  # streams per part at least


def default_way(arch, hidden, threads, batch_size):
    """How `threads` threads share a step: "split" (the batch, one BLAS thread each) or "blas"
    (the whole batch, BLAS on `threads` threads): blas for an LSTM of BLAS_FROM+ units with more
    threads than parts of PART streams; see BLAS_FROM."""
    return "blas" if _big_lstm(arch, hidden) and threads > max(1, batch_size // PART) else "split"


def _big_lstm(arch, hidden):
    """An LSTM whose products are big enough to share BLAS threads (BLAS_FROM)."""
    return arch == "lstm" and hidden >= BLAS_FROM


def default_threads(arch, hidden, batch_size):
    """Threads the trainer uses unless told: every core for LSTMs of BLAS_FROM+ units (those
    beyond the split's parts as BLAS threads); up to one per PART streams for other gated models
    of 128+ units, where the split measured faster; one for small ones, whose steps are mostly
    numpy's per-call cost, which threads do not share (the GIL)."""
    if arch == "rnn" or hidden < 128:
        return 1
    if _big_lstm(arch, hidden):  # beyond the split's parts: BLAS threads
        return cores()
    return max(1, min(cores(), batch_size // PART))


def parts(B, threads):
    """The column slices of each thread's streams: threads nearly equal parts of range(B)."""
    edges = np.linspace(0, B, min(threads, B) + 1).round().astype(int)
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]


class SplitStep:
    """loss_and_grads over B streams, split across `threads` workers (way "split"), or in place with
    BLAS on `threads` threads (way "blas"); threads 1 runs in place either way.

    Same contract as stack.loss_and_grads (mean loss, gradients, new state). Call close() (or use
    it as a context manager) to stop the workers."""

    def __init__(self, threads=1, way="split"):
        if way not in ("split", "blas"):
            raise ValueError(f"unknown way {way!r}; use split or blas")
        self.threads, self.way = max(1, int(threads)), way
        split = self.threads > 1 and way == "split"
        self.pool = ThreadPoolExecutor(self.threads) if split else None
        self.works = [{} for _ in range(self.threads if split else 1)]  # each worker's buffers (layers.buffer)

    def __call__(self, arch, params, X, Y, state):
        B = X.shape[1]
        if self.way == "blas" and self.threads > 1:
            with blas.threads(self.threads):
                return gated.loss_and_grads(arch, params, X, Y, state, self.works[0])
        if self.pool is None or B < 2:
            return gated.loss_and_grads(arch, params, X, Y, state, self.works[0])
        cols = parts(B, self.threads)
        jobs = [self.pool.submit(gated.loss_and_grads, arch, params, X[:, s], Y[:, s],
                                 [tuple(a[s] for a in layer) for layer in state], work)
                for s, work in zip(cols, self.works)]
        results = [j.result() for j in jobs]
        return combine(results, [(s.stop - s.start) / B for s in cols])

    def close(self):
        if self.pool is not None:
            self.pool.shutdown()
            self.pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def combine(results, weights):
    """[(loss, grads, state)] of the parts -> (weighted mean loss, weighted gradient sum, joined state)."""
    loss = sum(w * r[0] for w, r in zip(weights, results))
    grads = results[0][1]
    for k, g in grads.items():  # the first part's arrays are fresh: sum into them
        g *= g.dtype.type(weights[0])
        for w, r in zip(weights[1:], results[1:]):
            g += g.dtype.type(w) * r[1][k]
    state = [tuple(np.concatenate(arrays, axis=0) for arrays in zip(*layers))
             for layers in zip(*(r[2] for r in results))]
    return loss, grads, state
