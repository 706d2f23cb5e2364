"""Fast forward passes for recording a vanilla RNN: one stream, or many documents in lanes.

Many documents: the documents are cut, in order, into `lanes` contiguous groups of about equal
length; each group is a lane that reads its documents back to back, and all lanes step together,
so one step is one (B, H) @ (H, H) matrix product instead of B matrix-vector products. The
state of a lane is set to zeros where a document starts, so every document sees exactly the
state it would see alone (the plain form: `Model.run` per document from a zero state). Each
lane covers one contiguous range of rows of the output, so a chunk of steps is written back as
B slices.

One stream (a single lane) runs the same steps as `Model.run` (the same products in the same
order, so the same bits) with preallocated buffers.
"""
import numpy as np

LANES = 256           # documents stepped together at most
CHUNK_CHARS = 1 << 16  # characters per chunk of steps: bounds the float64 working set


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


def run_rnn_lanes(params, doc_ix, doc_starts, write, lanes=LANES, chunk_chars=CHUNK_CHARS, ix=None):
    """Step every document of a vanilla RNN; write(rows, states (M, H)) per chunk.

    rows: the M global rows, (M,) ints, or a slice when there is a single lane.

    doc_ix: list of (T_d,) index arrays, doc_starts: their global first rows; ix: their
    concatenation, if the caller has it already.
    """
    lengths = np.array([len(d) for d in doc_ix])
    groups = split_lanes(lengths, lanes)
    B, H = len(groups), params["Whh"].shape[0]
    ix = np.concatenate(doc_ix) if ix is None else ix             # (N,) in global row order
    first = np.array([doc_starts[a] for a, _ in groups])          # (B,) lane's first global row
    span = np.array([lengths[a:b].sum() for a, b in groups])      # (B,) lane length
    resets = {}                                                   # step -> lanes starting a doc
    for lane, (a, b) in enumerate(groups):
        for d in range(a + 1, b):
            resets.setdefault(int(doc_starts[d] - first[lane]), []).append(lane)
    WxhT = np.ascontiguousarray(params["Wxh"].T)                  # (V, H): rows gather fast
    bh, WhhT = params["bh"], params["Whh"].T
    h = np.zeros((B, H))
    steps = max(1, chunk_chars // B)
    for t0 in range(0, int(span.max()), steps):
        t = np.arange(t0, min(t0 + steps, int(span.max())))[:, None]   # (S, 1) lane steps
        valid = t < span[None, :]                                      # (S, B)
        rows = np.where(valid, first[None, :] + t, 0)                  # (S, B) global rows
        xh = WxhT[ix[rows]]                                            # (S, B, H) Wxh x_t
        xh += bh
        buf = np.empty_like(xh)                                        # (S, B, H) states
        h = _steps(xh, h, WhhT, buf, resets, t0)
        if B == 1:  # one lane: its rows are one slice of the output
            write(slice(int(rows[0, 0]), int(rows[-1, 0]) + 1), buf[:, 0])
        else:
            write(rows[valid], buf[valid])


def _steps(xh, h, WhhT, buf, resets, t0):
    """buf[s] = tanh(xh[s] + h @ WhhT), h = buf[s], for s = 0..S-1; lanes reset where docs start.

    A single lane steps with 1-D vectors (matrix-vector products), like Model.run.
    """
    one = xh.shape[1] == 1
    if one:
        xh, buf, h = xh[:, 0], buf[:, 0], h[0]
    z = np.empty_like(h)
    dot, add, tanh = np.dot, np.add, np.tanh
    for s in range(len(xh)):
        if t0 + s in resets:  # a new document starts here: its state starts at zeros
            h = np.zeros_like(h) if one else h.copy()
            h[resets[t0 + s]] = 0.0
        dot(h, WhhT, out=z)           # np.dot: far less call overhead than np.matmul
        add(xh[s], z, out=z)
        tanh(z, out=buf[s])
        h = buf[s]
    return h.reshape(-1, WhhT.shape[0]).copy()
