"""Recording a gated stack (LSTM, GRU, stacked tanh RNN): one document, or many in lanes.

Like model/lanes.py for the vanilla RNN: the documents are cut, in order, into at most `lanes`
contiguous groups (lanes.lane_plan); all lanes step together through model/infer.py's kernel,
each lane's state restarting at zeros where a document starts, so every document sees the state
it would see alone (the plain form: Model.run per document). One document is one lane (B = 1).
Only the arrays asked for are copied out; the gate rows are computed anyway (the cell needs them).

Precision: float32 arithmetic for float32/float16 outputs (PyTorch's forward does the same),
float64 for float64 outputs; tests bound the difference to Model.run's float64.
"""
import bisect

import numpy as np

from interpret.model import jit
from interpret.model.infer import Net, Runner
from interpret.model.lanes import lane_loss, lane_plan

LANES = 64             # documents stepped together at most: (64, H) x (H, 4H) products
CHUNK_CHARS = 1 << 13  # steps x lanes per chunk: bounds the working set (S+1, B, 5H) per layer
MAX_STEPS = 1024       # steps per chunk at most


def fill_gated_lanes(model, ix, doc_starts, outs, loss, progress=None, lanes=LANES,
                     chunk_chars=CHUNK_CHARS, check=None, threads=1):
    """Record every document of ix (N,) into outs {(layer, array): (N, H)} and loss (N,) or None.

    progress(n): n more characters done. check(arr, dtype, key, row0): called on each chunk's
    (n, H) rows before they are stored (the recorder's range check for float16 outputs).
    threads: see infer.Runner.
    """
    N = len(ix)
    first, span, resets = lane_plan(doc_starts, N, lanes)
    B = len(first)
    dtype = np.float64 if all(a.dtype == np.float64 for a in outs.values()) and outs else np.float32
    net = Net(model.arch, model.params, dtype)
    run, state = Runner(net, threads), net.zero_state(B)
    ends = np.append(np.asarray(doc_starts[1:], dtype=np.int64), N)  # (n_docs,) one past each doc
    WhyT, scratch = np.ascontiguousarray(net.Why.T), []
    keys = sorted(resets)
    steps, n_steps = max(1, min(chunk_chars // B, MAX_STEPS)), int(span.max())
    for t0 in range(0, n_steps, steps):
        S = min(steps, n_steps - t0)
        rows = np.minimum(first[None, :] + np.arange(t0, t0 + S)[:, None], N - 1)  # (S, B) global rows
        X = np.asarray(ix[rows.ravel()]).reshape(S, B)  # (S, B) padding lanes re-read row N-1
        here = {s - t0: resets[s] for s in keys[bisect.bisect_left(keys, t0):bisect.bisect_left(keys, t0 + S)]}
        acts, top, state = run.run(X, state, lambda l, a: (l, a) in outs, here)
        counts = np.clip(span - t0, 0, S)  # (B,) real rows of each lane in this chunk
        chunk_loss = None if loss is None else lane_loss(top, first + t0, ix, ends, WhyT, net.by,
                                                         scratch, threads)
        _store(outs, acts, loss, chunk_loss, first + t0, counts, check)
        if progress:
            progress(int(counts.sum()))


def _store(outs, acts, loss, chunk_loss, rows, counts, check):
    """Copy lane b's first counts[b] steps of each array to rows rows[b]... of the outputs."""
    for key, arr in outs.items():
        src = acts[key]
        if jit.enabled() and isinstance(arr, np.ndarray) and arr.dtype == src.dtype == np.float32:  # one call
            jit.kernels().store_lanes(src, arr.view(np.ndarray), rows, counts)
            continue
        for b in np.flatnonzero(counts):
            r, n = int(rows[b]), int(counts[b])
            part = src[:n, b]  # (n, H)
            if check is not None:
                check(part, arr.dtype, key, r)
            arr[r:r + n] = part
    if loss is not None:
        for b in np.flatnonzero(counts):
            r, n = int(rows[b]), int(counts[b])
            loss[r:r + n] = chunk_loss[:n, b]
