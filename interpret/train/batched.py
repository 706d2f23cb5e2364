"""Batched training (LSTM, GRU, or the vanilla RNN): B parallel streams, truncated BPTT, Adam or RMSProp.

The training text (all but its last --val-fraction, the validation text) is cut into B
contiguous streams read seq_length characters an iteration, each stream's state carried between
windows and reset when they wrap (an epoch). float32 compute; BLAS on one thread; with threads > 1
the streams are split into one part per thread, or (LSTMs of 512+ units) BLAS runs on that many
threads (train.split). A checkpoint is a model file plus opt_* arrays and meta["resume"], so
--resume continues exactly where the run stopped.
"""
import os
import time

import numpy as np

from interpret import __version__
from interpret.model import stack as gated
from interpret.model.model import Model
from interpret.train import loop
from interpret.train.split import SplitStep, default_threads, default_way
from interpret.train.checkpoint import check_finite, load_checkpoint, text_sha256

OPTIMIZERS = ("adam", "rmsprop")
DTYPE = np.float32


def split_text(text, val_fraction):
    """(train text, validation text): the validation text is the last val_fraction of it."""
    if not 0 <= val_fraction < 1:
        raise ValueError(f"--val-fraction must be in [0, 1) (got {val_fraction})")
    n_val = int(round(len(text) * val_fraction))
    return text[:len(text) - n_val], text[len(text) - n_val:]


def streams(ix, B, T):
    """Indices (N,) -> (L, B): column b is the b-th contiguous piece of the text."""
    L = len(ix) // B
    if L < T + 1:
        raise ValueError(f"the text ({len(ix)} characters) is too short for --batch-size {B} "
                         f"and --seq-length {T}: each stream needs at least {T + 1}; lower them")
    return np.ascontiguousarray(ix[:B * L].reshape(B, L).T)


def fitting_seq_length(text, val_fraction, B, T):
    """T, or shorter when the training text's B streams are too short for T-windows (as the gist
    trainer shortens its window on a short text); at least 1."""
    L = len(split_text(text, val_fraction)[0]) // B
    return max(1, min(T, L - 1))


class BatchedState:
    """Everything a run needs to continue: parameters, optimizer moments, positions, states."""

    def __init__(self, model, params, opt, n, pos, state, meta):
        self.model, self.params, self.opt = model, params, opt
        self.n, self.pos, self.state, self.meta = n, pos, state, meta

    @classmethod
    def fresh(cls, text, arch, hidden, layers, batch_size, seq_length, lr, optimizer="adam",
              clip=5.0, val_fraction=0.05, seed=0, corpus_name=None, reset_state=False, forget_bias=None):
        if arch not in gated.N_GATES:
            raise ValueError(f"batched training supports --arch rnn, lstm or gru (got {arch!r})")
        if arch == "rnn" and layers != 1:
            raise ValueError(f"the vanilla rnn has one layer (got --layers {layers}); use --arch lstm or gru")
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {optimizer!r}; use one of {', '.join(OPTIMIZERS)}")
        chars = sorted(set(text))
        seq_length = fitting_seq_length(text, val_fraction, batch_size, seq_length)
        meta = {"arch": arch, "trainer": "batched", "hidden_size": hidden, "n_layers": layers,
                "batch_size": batch_size, "seq_length": seq_length, "learning_rate": lr,
                "optimizer": optimizer, "clip": clip, "val_fraction": val_fraction, "seed": seed,
                "reset_state": bool(reset_state), "forget_bias": forget_bias,
                "corpus": corpus_name, "corpus_sha256": text_sha256(text), "corpus_chars": len(text),
                "tool_version": __version__, "wall_time_s": 0.0, "chars_trained": 0, "epochs": 0,
                "val_history": []}
        model = Model.init(chars, hidden_size=hidden, arch=arch, seed=seed, n_layers=layers, meta=meta,
                           forget_bias=forget_bias)
        params = _train_names(arch, {k: v.astype(DTYPE) for k, v in model.params.items()})
        opt = {f"{m}_{k}": np.zeros_like(v) for k, v in params.items()
               for m in (("m", "v") if optimizer == "adam" else ("v",))}
        state = gated.zero_state(arch, params, batch_size)
        return cls(model, params, opt, 0, 0, state, meta)

    def to_model(self):
        """The current parameters as a Model (meta included)."""
        arch = self.meta["arch"]
        return Model(_model_names(arch, self.params), self.model.chars, arch=arch, meta=self.meta)

    def save(self, path, with_optimizer=True):
        """Atomic checkpoint (float32): parameters, and with_optimizer the state to resume."""
        check_finite(self.params, self.n, path)
        self.meta["resume"] = {"n": self.n, "pos": self.pos}
        extra = {}
        if with_optimizer:
            extra = {f"opt_{k}": v for k, v in self.opt.items()}
            for layer, st in enumerate(self.state):
                for j, s in enumerate(st):
                    extra[f"opt_state_L{layer}_{j}"] = s
        self.to_model().save(path, extra=extra, dtype=DTYPE)

    @classmethod
    def load(cls, path, text):
        model = load_checkpoint(path, text, "batched")
        meta = model.meta
        params = _train_names(meta["arch"], {k: v.astype(DTYPE) for k, v in model.params.items()})
        ex = model.extra
        try:
            opt = {k[4:]: ex[k].astype(DTYPE) for k in ex if not k.startswith("opt_state_")}
            state = []
            for layer, st in enumerate(gated.zero_state(meta["arch"], params, meta["batch_size"])):
                state.append(tuple(ex[f"opt_state_L{layer}_{j}"].astype(DTYPE) for j in range(len(st))))
        except KeyError as e:
            raise ValueError(f"{path} lacks the optimizer array {e}; it cannot be resumed") from None
        r = meta["resume"]
        return cls(model, params, opt, int(r["n"]), int(r["pos"]), state, meta)


_GIST_NAMES = (("Wxh", "L0_Wx"), ("Whh", "L0_Wh"), ("bh", "L0_b"))


def _train_names(arch, params):
    """A vanilla model's gist arrays (Wxh (H, V), Whh, bh) as the batched layer's L0_Wx (V, H), ..."""
    return _renamed(arch, params, _GIST_NAMES)


def _model_names(arch, params):
    """The inverse of _train_names: the file keeps the gist's names and shapes."""
    return _renamed(arch, params, [(ours, gist) for gist, ours in _GIST_NAMES])


def _renamed(arch, params, pairs):
    """Rename (src -> dst) and transpose the input-side arrays of a vanilla model; others as they are."""
    if arch != "rnn":
        return params
    out = {"Why": params["Why"], "by": params["by"]}
    for src, dst in pairs:
        out[dst] = np.ascontiguousarray(params[src].T)
    return out


def clip_global_norm(grads, max_norm):
    """Scale all gradients together so their joint L2 norm is at most max_norm; returns the norm."""
    norm = float(np.sqrt(sum(float(np.vdot(g, g)) for g in grads.values())))
    if max_norm and norm > max_norm:
        for g in grads.values():
            g *= max_norm / norm
    return norm


def update(params, grads, opt, optimizer, lr, n):
    """One Adam (betas 0.9, 0.999) or RMSProp (decay 0.95) step; n counts steps from 1.

    In the parameters' dtype throughout (the step sizes are Python floats, so float32 arrays stay
    float32), each gradient's array reused as scratch: the gradients are spent after this."""
    eps = 1e-8
    if optimizer == "adam":
        b1, b2 = 0.9, 0.999
        step = float(lr * np.sqrt(1 - b2 ** n) / (1 - b1 ** n))
        for k, g in grads.items():
            m, v = opt[f"m_{k}"], opt[f"v_{k}"]
            m -= g  # m = b1 m + (1 - b1) g, as b1 (m - g) + g: no temporary array
            m *= b1
            m += g
            g *= g  # v = b2 v + (1 - b2) g^2, the same way
            v -= g
            v *= b2
            v += g
            _descend(params[k], m, v, step, eps, g)
    else:
        for k, g in grads.items():
            v = opt[f"v_{k}"]
            v *= 0.95
            v += 0.05 * g * g
            params[k] -= (lr * g / (np.sqrt(v) + eps)).astype(params[k].dtype, copy=False)


def _descend(p, m, v, step, eps, scratch):
    """p -= step * m / (sqrt(v) + eps), with scratch (p's shape) as the one temporary."""
    np.sqrt(v, out=scratch)
    scratch += eps
    np.divide(m, scratch, out=scratch)
    scratch *= step
    p -= scratch


def evaluate(arch, params, ix, B, T, health=None):
    """Mean next-character loss (nats/char) over indices ix, read as B streams of T-windows.

    health: a list to which an LSTM's cell-state sizes are appended (see cell_health)."""
    S = streams(ix, B, 1)  # (L, B)
    state, total, count, work = gated.zero_state(arch, params, B), 0.0, 0, {}
    step = max(1, (len(S) * B) // HEALTH_ROWS)  # medians from every step-th row of c; the max from all
    samples, peaks = [], []
    for a in range(0, len(S) - 1, T):
        X, Y = S[a:min(a + T, len(S) - 1)], S[a + 1:min(a + T, len(S) - 1) + 1]
        top, caches, state = gated.stack_forward(arch, params, X, state, work)
        if arch == "lstm" and health is not None:  # cache[3]: cs (T+1, B, H); row 0 is the carried state
            cs = [c[3][1:].reshape(-1, c[3].shape[2]) for c in caches]
            samples.append([np.abs(c[::step]) for c in cs])
            peaks.append([max(float(c.max()), -float(c.min())) for c in cs])
        ys = top.reshape(-1, top.shape[2]) @ params["Why"].T + params["by"]
        m = ys.max(axis=1, keepdims=True)
        lse = np.log(np.exp(ys - m).sum(axis=1)) + m[:, 0]
        total += float((lse - ys[np.arange(len(ys)), Y.ravel()]).sum(dtype=np.float64))
        count += len(ys)
    for k in range(len(samples[0]) if samples else 0):  # per layer
        h = cell_health(np.concatenate([s[k] for s in samples]))
        health.append(dict(h, max_abs_c=max(p[k] for p in peaks)))
    return total / count


HEALTH_ROWS = 20000  # rows of |c| kept for the cell-state health of a validation pass
SATURATED_C = 5.0  # |c| above this puts tanh(c) within 1e-4 of +-1: the unit shows as solid colour


def cell_health(abs_c):
    """Sizes of LSTM cell states |c| (N, H): median, share of units with median above 5, max."""
    per_unit = np.median(abs_c, axis=0)
    return {"median_abs_c": float(np.median(abs_c)), "share_units_median_gt5": float((per_unit > SATURATED_C).mean()),
            "max_abs_c": float(abs_c.max())}


def health_text(health):
    """One line per layer, e.g. 'L0 |c| median 1.1, 4% of units above 5, max 23'."""
    return "; ".join(f"L{k} |c| median {h['median_abs_c']:.3g}, {100 * h['share_units_median_gt5']:.0f}% of "
                     f"units above {SATURATED_C:g}, max {h['max_abs_c']:.3g}" for k, h in enumerate(health))


class BatchedIteration:
    """One batched iteration (a step for loop.run): window, gradients, update, validation, report.

    on_progress(n, smooth_loss, val_loss or None), losses in nats/char. threads: the workers
    the batch is split across (None: split.default_threads); close() stops them."""

    def __init__(self, st, text, *, checkpoint_path=None, val_every=0, on_progress=None, report_every=10,
                 threads=None):
        meta = st.meta
        B, T = meta["batch_size"], meta["seq_length"]
        train_text, val_text = split_text(text, meta["val_fraction"])
        self.S = streams(st.model.encode(train_text)[0], B, T)  # (L, B)
        val_ix = st.model.encode(val_text)[0] if val_text else None
        self.val_ix = None if val_ix is None or len(val_ix) < B * 2 else val_ix
        self.st, self.B, self.T, self.checkpoint_path = st, B, T, checkpoint_path
        self.val_every, self.on_progress, self.report_every = val_every, on_progress, report_every
        self.smooth = meta.get("smooth_loss", np.log(len(st.model.chars)))
        H = st.params["L0_Wh"].shape[0]
        if threads is None:
            threads = default_threads(meta["arch"], H, B)
        self.split = SplitStep(threads, default_way(meta["arch"], H, threads, B))  # keeps its buffers
        self.t0, self.wall0 = time.perf_counter(), meta["wall_time_s"]

    def __call__(self):
        st, meta, B, T, S = self.st, self.st.meta, self.B, self.T, self.S
        arch = meta["arch"]
        if st.pos + T + 1 > len(S):  # the streams wrapped around: one epoch done
            st.pos, meta["epochs"] = 0, meta["epochs"] + 1
            st.state = gated.zero_state(arch, st.params, B)
        if meta.get("reset_state"):  # every window starts from zeros: cell states cannot drift
            st.state = gated.zero_state(arch, st.params, B)
        X, Y = S[st.pos:st.pos + T], S[st.pos + 1:st.pos + T + 1]
        loss, grads, st.state = self.split(arch, st.params, X, Y, st.state)
        if not np.isfinite(loss):
            return loss  # diverged: the loop says so; the parameters keep the last good values
        clip_global_norm(grads, meta["clip"])
        st.n += 1
        update(st.params, grads, st.opt, meta["optimizer"], meta["learning_rate"], st.n)
        st.pos += T
        self.smooth = smooth = loss if st.n == 1 else 0.99 * self.smooth + 0.01 * loss
        meta["smooth_loss"], meta["chars_trained"] = smooth, meta["chars_trained"] + B * T
        meta["wall_time_s"] = self.wall0 + time.perf_counter() - self.t0
        val = self.validate() if self.val_ix is not None and self.val_every and st.n % self.val_every == 0 else None
        if self.on_progress and (st.n % self.report_every == 0 or val is not None):
            self.on_progress(st.n, smooth, val)
        return loss

    def validate(self):
        """The validation loss now; recorded in meta with the cell health; the best kept on disk."""
        st, meta = self.st, self.st.meta
        health = []
        val = evaluate(meta["arch"], st.params, self.val_ix, self.B, self.T, health)
        meta["val_history"].append([st.n, meta["chars_trained"], self.smooth, val])
        if health:
            meta["cell_health"] = health
            meta.setdefault("cell_health_history", []).append([st.n, health])
        _keep_best(st, self.checkpoint_path, val)
        return val

    def close(self):
        self.split.close()


def train(st, text, iters, *, checkpoint_path=None, checkpoint_every=0, val_every=0, on_progress=None,
          report_every=10, threads=None):
    """Train until st.n == iters (see BatchedIteration) on `threads` workers (None: the default),
    BLAS on one thread each; checkpoint on the way, on Ctrl-C and at the end."""
    step = BatchedIteration(st, text, checkpoint_path=checkpoint_path, val_every=val_every,
                            on_progress=on_progress, report_every=report_every, threads=threads)
    try:
        return loop.run(st, iters, step, checkpoint_path=checkpoint_path, checkpoint_every=checkpoint_every)
    finally:
        step.close()


def best_path(checkpoint_path):
    root, ext = os.path.splitext(checkpoint_path)
    return f"{root}.best{ext or '.npz'}"


def _keep_best(st, checkpoint_path, val):
    """Track the best validation loss; save those parameters beside the checkpoint."""
    meta = st.meta
    if val < meta.get("best_val_loss", np.inf):
        meta["best_val_loss"], meta["best_val_iter"] = val, st.n
        if checkpoint_path:
            st.save(best_path(checkpoint_path), with_optimizer=False)
