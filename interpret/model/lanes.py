"""Fast forward passes for recording a vanilla RNN: one stream, or many documents in lanes.

Many documents are cut into `lanes` contiguous groups stepped together (one (B, H) @ (H, H)
product a step), each lane's state reset to zeros where a document starts, so every document
sees what it would alone. One stream steps in float64 (Model.run's loop: equal to 1e-12);
several lanes in the caller's dtype (float32 for float32 recordings). More: docs/internals.md.
"""
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from interpret.model import jit

LANES = 512           # documents stepped together at most
CHUNK_CHARS = 1 << 16  # characters per chunk of steps: bounds the working set
MAX_STEPS = 1024       # steps per chunk at most, so that one stream has chunks to overlap
THREADED_ONE = False   # one stream's output layer on the worker thread? Its step loop holds the
# GIL between tiny numpy calls, so the worker waits for it (the switch interval is 5 ms) and
# each hand-off costs more than the output layer it moves (profiled on 2M characters)


def log_softmax_pick(ys, nxt):
    """-log softmax(ys)[nxt] per row, stably; overwrites ys. ys (T, V), nxt (T,) -> (T,)."""
    m = ys.max(axis=1, keepdims=True)                     # (T, 1)
    picked = ys[np.arange(len(nxt)), nxt] - m[:, 0]
    ys -= m
    np.exp(ys, out=ys)
    return np.log(ys.sum(axis=1)) - picked


def next_char_loss(states, WhyT, by, nxt, out=None, threads=1):
    """log_softmax_pick(states @ WhyT + by, nxt) for states (M, H) with |h| <= 1, in their dtype.

    No logit can exceed bound = max_v(sum_h |Why[v, h]| + |by[v]|) when |h| <= 1, so the bias
    is shifted down by it: exp then never overflows, and no per-row maximum is needed. Rows
    whose exps all underflow (every logit far below the bound) are redone the plain way.
    out: an optional (M, V) C-contiguous scratch array for the logits. threads > 1: float32
    logits in row blocks over that many threads (the compiled loops' kernels.input_terms_team).
    """
    bound = float((np.abs(WhyT).sum(axis=0) + np.abs(by)).max())
    f32 = np.result_type(states, WhyT) == np.float32
    plain = 2 * bound > (87.0 if f32 else 708.0)  # exp could give subnormals, each many times
    shift = by if plain else by - bound            # slower: the plain way
    ys = _logits(states, WhyT, shift, out, threads)       # (M, V) logits (- bound)
    if plain:
        return log_softmax_pick(ys, nxt)
    picked = ys[np.arange(len(nxt)), nxt]
    np.exp(ys, out=ys)
    total = ys.sum(axis=1)
    low = np.flatnonzero(total < 1e-30)
    total[low] = 1.0  # redone below; no log(0) warning
    out = np.log(total) - picked
    if len(low):
        out[low] = log_softmax_pick(states[low] @ WhyT + by, nxt[low])
    return out


def _logits(states, WhyT, shift, out, threads):
    """states @ WhyT + shift into out (or a new array)."""
    f32 = states.dtype == WhyT.dtype == np.float32 and states.flags.c_contiguous
    if threads > 1 and f32 and jit.enabled() and out is not None and out.flags.c_contiguous:
        blocks = jit.split_threads(threads)  # (rows over threads, as kernels.input_terms_team)
        scratch = np.empty((blocks, 256, WhyT.shape[1]), np.float32)
        shift = np.asarray(shift, np.float32)
        jit.kernels().input_terms_team(jit.gemm(), states, WhyT, shift, scratch, out, blocks)
        return out
    ys = np.dot(states, WhyT, out=out)
    ys += shift
    return ys


def doc_lengths(doc_starts, n):
    """(n_docs,) lengths of the documents starting at doc_starts in n rows."""
    return np.diff(np.append(np.asarray(doc_starts, dtype=np.int64), n))


def split_lanes(lengths, lanes):
    """Cut documents (in order) into at most `lanes` contiguous groups of about equal length.

    Returns [(first_doc, end_doc), ...] (end exclusive), no group empty.
    """
    n_docs = len(lengths)
    lanes = max(1, min(lanes, n_docs))
    ends = np.cumsum(lengths)
    total = int(ends[-1])
    cuts = [0]
    for k in range(1, lanes):  # the first document ending at or past k/lanes of the text
        c = int(np.searchsorted(ends, total * k / lanes)) + 1
        if cuts[-1] < c < n_docs:
            cuts.append(c)
    cuts.append(n_docs)
    return list(zip(cuts[:-1], cuts[1:]))


def lane_plan(doc_starts, n, lanes):
    """Where each lane runs: (first (B,) global row, span (B,) steps, resets {step: [lanes]}).

    resets: the lane steps at which a lane starts a new document (its state restarts at zeros)."""
    lengths = doc_lengths(doc_starts, n)
    groups = split_lanes(lengths, lanes)
    first = np.array([doc_starts[a] for a, _ in groups], dtype=np.int64)  # (B,) lane's first row
    span = np.array([lengths[a:b].sum() for a, b in groups], dtype=np.int64)  # (B,) lane length
    resets = {}
    for lane, (a, b) in enumerate(groups):
        for d in range(a + 1, b):
            resets.setdefault(int(doc_starts[d] - first[lane]), []).append(lane)
    return first, span, resets


def run_rnn_lanes(params, ix, doc_starts, write, lanes=LANES, chunk_chars=CHUNK_CHARS,
                  dtype=np.float64):
    """Step every document of a vanilla RNN; write(rows, counts, states) per chunk of steps.

    states (S, B, H) holds S steps of the B lanes; lane b's first counts[b] steps are rows
    rows[b] .. rows[b] + counts[b] - 1 of the output (global rows; the rest is padding).
    Two buffers take turns as `states` (fresh memory every chunk costs page faults), so write
    must be done with a chunk's states when its next call returns.
    ix: (N,) every document's character indices back to back (an array or a memmap: only a
    chunk's rows are read at a time); doc_starts: each document's first row. dtype: the lanes'
    arithmetic (a single lane always steps in float64).
    """
    first, span, resets = lane_plan(doc_starts, len(ix), lanes)
    B, H = len(first), params["Whh"].shape[0]
    dtype = np.float64 if B == 1 else dtype
    table = (params["Wxh"].T + params["bh"]).astype(dtype)        # (V, H): Wxh x + bh per char
    Whh = params["Whh"].astype(dtype)
    h = np.zeros((B, H), dtype=dtype)
    steps, n_steps = max(1, min(chunk_chars // B, MAX_STEPS)), int(span.max())
    bufs = [np.empty((min(steps, n_steps), B, H), dtype=dtype) for _ in range(2)]
    compiled = jit.enabled() and (B == 1 or dtype == np.float32)  # model/kernels.py's loops
    if compiled:
        jit.load_blas()
        WhhT = np.ascontiguousarray(Whh.T)
    for k, t0 in enumerate(range(0, n_steps, steps)):
        t = np.arange(t0, min(t0 + steps, n_steps))[:, None]     # (S, 1) lane steps
        rows = np.minimum(first[None, :] + t, len(ix) - 1)        # (S, B) global rows (clipped)
        xh = np.take(table, ix[rows], axis=0, out=bufs[k % 2][:len(t)], mode="clip")  # (S, B, H):
        # the input terms Wxh x + bh, turned into the states in place
        if compiled:
            mask = jit.reset_mask(resets, len(t), B, t0)
            h = (jit.kernels().rnn_one(xh[:, 0], h[0], Whh, mask[:, 0])[None] if B == 1 else
                 jit.kernels().rnn_lanes(jit.gemm(), xh, h, WhhT, Whh, mask))
        elif B > 1:
            h = _steps(xh, h, Whh, resets, t0)
        else:
            h = steps_one(xh[:, 0], h[0], Whh, resets, t0)[None]
        write(first + t0, np.clip(span - t0, 0, len(t)), xh)


def _steps(xh, h, Whh, resets, t0):
    """xh[s] = tanh(xh[s] + h @ Whh.T), h = xh[s], for s = 0..S-1; lanes reset where docs start."""
    WhhT = Whh.T
    z = np.empty_like(h)
    dot, add, tanh = np.dot, np.add, np.tanh
    for s, row in enumerate(xh):
        if t0 + s in resets:  # a new document starts here: its state starts at zeros
            h = h.copy()
            h[resets[t0 + s]] = 0.0
        dot(h, WhhT, out=z)           # np.dot: far less call overhead than np.matmul
        add(row, z, out=row)
        tanh(row, out=row)
        h = row
    return h.copy()


def steps_one(xh, h, Whh, resets=(), t0=0):
    """One lane, float64: xh[s] = tanh(Whh @ h + xh[s]) in place, two calls per step; returns the
    last state. xh (S, H) C-contiguous rows Wxh x + bh; h (H,); resets: steps whose state restarts.

    dgemv adds the product into xh[s] itself (beta = 1, overwrite_y); Whh.T is Whh's memory
    read as a Fortran array, so trans=1 multiplies by Whh without a copy. Positional arguments
    (alpha, a, x, beta, y, offx, incx, offy, incy, trans, overwrite_y): f2py parses them faster.
    """
    from scipy.linalg.blas import dgemv  # here: importing scipy.linalg costs ~0.3 s

    A, tanh = Whh.T, np.tanh
    if not resets:
        for row in xh:
            dgemv(1.0, A, h, 1.0, row, 0, 1, 0, 1, 1, 1)
            tanh(row, row)
            h = row
        return h.copy()
    for s, row in enumerate(xh):
        if t0 + s in resets:  # a new document starts here: its state starts at zeros
            h = np.zeros_like(h)
        dgemv(1.0, A, h, 1.0, row, 0, 1, 0, 1, 1, 1)
        tanh(row, row)
        h = row
    return h.copy()


def fill_rnn_lanes(params, ix, doc_starts, out, loss, progress=None, lanes=LANES,
                   chunk_chars=CHUNK_CHARS):
    """Record every document of ix (N,) into out (N, H) and loss (N,) (or None) with run_rnn_lanes.

    Each chunk's output layer (logits, next-character loss) and its copy into out/loss run on
    a second thread while the next chunk steps: numpy releases the GIL inside both. Nothing
    N-sized is made: each chunk reads the characters its rows predict from ix.
    """
    N = len(ix)
    ends = np.append(np.asarray(doc_starts[1:], dtype=np.int64), N)  # (n_docs,) one past each doc
    dtype = np.float64 if out.dtype == np.float64 else np.float32  # compute as precisely as stored
    WhyT, by = np.ascontiguousarray(params["Why"].T, dtype=dtype), params["by"].astype(dtype)

    logits = []  # the worker's scratch array for the logits, kept across chunks

    def store(rows, counts, states):                      # states (S, B, H); lane b: counts[b] rows
        S, B, H = states.shape
        if loss is not None:
            chunk_loss = lane_loss(states, rows, ix, ends, WhyT, by, logits)
        for b in range(B):                                # each lane's rows are one slice
            r, n = int(rows[b]), int(counts[b])
            out[r:r + n] = states[:n, b]
            if loss is not None:
                loss[r:r + n] = chunk_loss[:n, b]
        return int(counts.sum())

    pending = []

    def finish():
        n = pending.pop().result()
        if progress:
            progress(n)

    def write(rows, counts, states):                      # one chunk in flight at most
        if pending:
            finish()
        if states.shape[1] == 1 and not THREADED_ONE:  # one stream: see THREADED_ONE
            n = store(rows, counts, states)
            if progress:
                progress(n)
            return
        pending.append(_worker().submit(store, rows, counts, states))

    try:
        run_rnn_lanes(params, ix, doc_starts, write, lanes=lanes, chunk_chars=chunk_chars,
                      dtype=dtype)
    finally:  # on an error too: the last chunk's job must end before its buffers go
        if pending:
            finish()


def lane_loss(states, rows, ix, ends, WhyT, by, scratch, threads=1):
    """(S, B) next-character loss of a chunk of lane states (S, B, H), NaN at each document's
    last row; rows (B,) the lanes' first global rows, ends (n_docs,) one past each document.
    scratch: a list holding the (M, V) logits buffer, kept across chunks by the caller.
    threads: see next_char_loss."""
    S, B, H = states.shape
    N = len(ix)
    if not scratch or len(scratch[0]) < S * B:
        scratch[:] = [np.empty((S * B, len(by)), dtype=WhyT.dtype)]
    idx = np.minimum(rows[None, :] + np.arange(S)[:, None], N - 1)  # (S, B) global rows
    nxt = np.asarray(ix[np.minimum(idx.ravel() + 1, N - 1)])  # the character each row predicts
    flat = np.ascontiguousarray(states).reshape(S * B, H)  # a view when states are contiguous
    chunk_loss = next_char_loss(flat.astype(WhyT.dtype, copy=False), WhyT, by, nxt,
                                scratch[0][:S * B], threads).reshape(S, B)
    lo, hi = np.searchsorted(ends, rows + 1), np.searchsorted(ends, rows + S + 1)  # (B,)
    for b in np.flatnonzero(hi > lo):  # a document's last row (end - 1) predicts nothing
        chunk_loss[ends[lo[b]:hi[b]] - 1 - rows[b], b] = np.nan
    return chunk_loss


_WORKER = []


def _worker():
    """The recorder's one output-layer thread, started once per process (starting one costs
    about as much as recording a thousand characters)."""
    if not _WORKER:
        _WORKER.append(ThreadPoolExecutor(max_workers=1, thread_name_prefix="interpret-record"))
    return _WORKER[0]
