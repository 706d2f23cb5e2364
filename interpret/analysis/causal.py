"""Causal tests of single units: ablate a unit (zero it, or hold it at its mean) against random units.

B streams read one text side by side, with interventions: stream b holds one unit at a value
after every step, in that layer's h (or, for the LSTM, its cell state c, before h = o * tanh(c)
is formed). So one pass over the text measures the intact model and every ablation at once: the
streams are lanes of model/infer.py's batched kernel (a chunk of steps per call, the output layer
once per chunk), and `losses_by_step` is the plain form, one model.step.step per character.
Sampling with clamped units is model.sample.sample.
"""
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from functools import partial

import numpy as np

from interpret._util.blas import one_thread
from interpret._util.progress import open_bar
from interpret.model import jit
from interpret.model.infer import Net, Runner
from interpret.model.lanes import log_softmax_pick
from interpret.model.step import check_target, start_state, step, weights
from interpret.train.split import parts

__all__ = ["ablate", "check_target", "losses", "losses_by_step", "unit_means"]

CHUNK_STEPS = 256  # steps per kernel call: the output layer runs once per chunk, (S * B, H) x (H, V)


def _streams(cols, values, dtype):
    """(cols (B,), values (B,), rows of the clamped streams) with cols[b] = -1 meaning intact."""
    cols, values = np.asarray(cols, dtype=np.int64), np.asarray(values, dtype=dtype)
    return cols, values, np.flatnonzero(cols >= 0)


def losses(model, ix, layer, array, cols, values, dtype=np.float32, progress=None, threads=1):
    """Per-character next-char loss (B, T-1) of B copies of ix (T,): stream b has unit cols[b]
    held at values[b] (cols[b] = -1: intact). progress(n) is called as steps are done.

    threads > 1: the streams split into that many nearly equal parts, each stepped by its own
    Runner in its own thread (the kernels release the GIL); the parts meet once a chunk, and
    the calling thread reports progress and takes Ctrl-C between chunks."""
    cols, values, _ = _streams(cols, values, dtype)
    B, T = len(cols), len(ix)
    net = Net(model.arch, model.params, dtype)
    WhyT, out = np.ascontiguousarray(net.Why.T), np.empty((B, T - 1))
    ix = np.asarray(ix)
    groups = [_Part(net, layer, array, cols[s], values[s], s) for s in parts(B, threads)]
    with ThreadPoolExecutor(len(groups)) if len(groups) > 1 else nullcontext() as pool:
        for a in range(0, T - 1, CHUNK_STEPS):
            S = min(CHUNK_STEPS, T - 1 - a)
            if pool is None:
                groups[0].chunk(ix, a, S, WhyT, out)
            else:  # the results, in turn: a part's error (or Ctrl-C while waiting) ends the pass
                for _ in pool.map(lambda g: g.chunk(ix, a, S, WhyT, out), groups):
                    pass
            if progress:
                progress(S)
    return out


class _Part:
    """Some of losses()'s streams (the rows `streams`, a slice, of its output) with their own
    Runner and state."""

    def __init__(self, net, layer, array, cols, values, streams):
        clamped = np.flatnonzero(cols >= 0)
        self.net, self.streams, self.B = net, streams, len(cols)
        self.run = Runner(net)
        self.state = net.zero_state(len(cols), shared_below=layer)  # below `layer` all streams agree
        self.clamp = {(layer, array): (clamped, cols[clamped], values[clamped])}

    def chunk(self, ix, a, S, WhyT, out):
        """Steps a .. a + S - 1: the losses into out[streams, a:a + S]."""
        B, X = self.B, ix[a:a + S, None]                      # (S, 1): one text in every stream
        _, top, self.state = self.run.run(X, self.state, lambda l, k: False, clamp=self.clamp)
        ys = np.dot(top.reshape(S * B, -1), WhyT) + self.net.by   # (S * B, V) logits
        out[self.streams, a:a + S] = log_softmax_pick(ys, np.repeat(ix[a + 1:a + 1 + S], B)).reshape(S, B).T


def losses_by_step(model, ix, layer, array, cols, values, dtype=np.float32, progress=None):
    """losses() the plain way: one model.step.step per character for all B streams."""
    W = weights(model, dtype)
    cols, values, rows = _streams(cols, values, dtype)
    B = len(cols)
    state, out = start_state(model, B, dtype), np.empty((B, len(ix) - 1))
    spec = {(layer, array): (rows, cols[rows], values[rows])}
    for t in range(len(ix) - 1):
        ys, state = step(model, W, np.full(B, ix[t]), state, spec)
        out[:, t] = log_softmax_pick(ys.astype(np.float64), np.full(B, ix[t + 1]))
        if progress:
            progress(1)
    return out


def unit_means(model, ix, layer, array, dtype=np.float32):
    """Mean activation of every unit of (layer, array) over ix: the 'hold at mean' values. One
    stream through model/infer.py's kernel in `dtype` (the ablations' own arithmetic), chunk by
    chunk, only that array kept; the sums in float64."""
    net = Net(model.arch, model.params, dtype)
    run, state = Runner(net), net.zero_state(1)
    ix, total = np.asarray(ix), np.zeros(net.H)
    for a in range(0, len(ix), CHUNK_STEPS):
        out, _, state = run.run(ix[a:a + CHUNK_STEPS, None], state, lambda l, k: (l, k) == (layer, array))
        total += out[(layer, array)][:, 0].sum(axis=0, dtype=np.float64)
    return total / len(ix)


TARGET_GROUPS = (("all characters", None), ('before a "', '"'), ("before a newline", "\n"),
                 ("before ) ] }", ")]}"))


def ablate(model, text, unit, *, layer=0, array="h", mode="zero", n_random=20, seed=0, feature=None,
           progress=None, by_step=False, threads=1):
    """Change in next-char loss when `unit` is zeroed / held at its mean, against random units.

    Returns rows, one per group of positions (all characters; those whose next character is a
    quote, a newline, a closing bracket; where `feature` (name, values) is on), each with the
    unit's mean loss change (nats), the random units' mean and std, and an empirical p-value:
    the share of random units whose change is at least as large (with +1 smoothing).
    progress: a factory progress(total, label) -> bar (interpret._util.progress); the bar counts
    the len(text) - 1 steps. by_step: run the plain form (losses_by_step), for tests.
    threads: the streams split over this many threads (losses(); the plain form runs on one).
    """
    if mode not in ("zero", "mean"):
        raise ValueError(f"unknown ablation mode {mode!r}; use zero or mean")
    check_target(model, layer, array, [unit])
    ix, text = model.encode(text)
    if len(ix) < 2:
        raise ValueError("the text needs at least 2 characters to measure a next-character loss")
    rng = np.random.RandomState(seed)
    others = np.setdiff1d(np.arange(model.hidden_size), [unit])
    randoms = rng.choice(others, size=min(n_random, len(others)), replace=False)
    cols = np.concatenate([[-1, unit], randoms]).astype(np.int64)
    means = unit_means(model, ix, layer, array) if mode == "mean" else np.zeros(model.hidden_size)
    values = np.where(cols >= 0, means[np.maximum(cols, 0)], 0.0)
    run = losses_by_step if by_step else partial(losses, threads=threads)
    # BLAS on one thread: with a busy second core, two threads made these (B, H) products twenty
    # times slower (258 chars/s against 4k, 1x256 with 22 streams); idle, they gained a quarter
    jit.load_blas()
    with open_bar(progress, len(ix) - 1, "ablating") as bar, one_thread():
        L = run(model, ix, layer, array, cols, values, progress=bar.update)  # (B, T-1)
    d = L[1:] - L[0]  # (1 + n_random, T-1): loss change of each ablation per position
    nxt = np.array(list(text[1:]))
    groups = [(name, np.ones(len(nxt), bool) if chars is None else np.isin(nxt, list(chars)))
              for name, chars in TARGET_GROUPS]
    if feature is not None:
        fname, fvals = feature
        groups.append((f"where {fname} is on", np.asarray(fvals[:-1]) > 0))
    rows = []
    for name, mask in groups:
        if not mask.any():
            continue
        per = d[:, mask].mean(axis=1)  # (1 + n_random,)
        rnd = per[1:]
        rows.append({"group": name, "n_chars": int(mask.sum()), "unit_delta": float(per[0]),
                     "random_mean": float(rnd.mean()) if len(rnd) else float("nan"),
                     "random_std": float(rnd.std()) if len(rnd) else float("nan"),
                     "p_random": float((1 + (rnd >= per[0]).sum()) / (1 + len(rnd))),
                     "base_loss": float(L[0][mask].mean())})
    return {"unit": int(unit), "layer": layer, "array": array, "mode": mode,
            "random_units": randoms.tolist(), "rows": rows}
