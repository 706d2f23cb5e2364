"""Training with the min-char-rnn gist's math: Adagrad, truncated BPTT, gradient clip +-5.

The faithful trainer reproduces the gist step for step: the same parameter draws after
np.random.seed(seed), the same data pointer sweep (reset p and hprev when p + seq_length + 1
reaches the end of the data), the same loss, gradients, clipping and Adagrad update, so the same
seed and text give the same parameters, bit for bit.

loss_and_grads below is the plain form of one step (no one-hot vectors: Wxh x is a column of Wxh).
GistIteration (one iteration, run by loop.run) steps with faithful.GistStep, which computes the
same bits with preallocated buffers, far fewer numpy calls and one flat Adagrad update.
"""
import numpy as np

from interpret import __version__
from interpret._util.textfile import read_blocks
from interpret.model.model import Model
from interpret.model.sample import sample_ix
from interpret.model.step import rnn_step
from interpret.train import loop
from interpret.train.checkpoint import check_finite, load_checkpoint, text_sha256
from interpret.train.faithful import GistStep

PARAM_NAMES = ("Wxh", "Whh", "Why", "bh", "by")


def loss_and_grads(params, inputs, targets, hprev):
    """The gist's lossFun: loss (nats, summed), grads (clipped to +-5), last hidden state.

    Parity note: Adagrad amplifies rounding differences (a 1e-16 change in one gradient becomes
    1e-5 in the parameters within 200 steps), so every sum here is done in the gist's order:
    matrix-vector products per step (not one matrix-matrix product, whose blocked sums round
    differently) and outer products summed from the last step to the first.
    """
    Wxh, Whh, Why, bh, by = (params[k] for k in PARAM_NAMES)
    T, H = len(inputs), Whh.shape[0]
    hs = np.empty((T + 1, H))  # hs[0] = hprev, hs[t+1] = state after inputs[t]
    hs[0] = hprev
    ys = np.empty((T, Why.shape[0]))  # (T, V) unnormalised log-probabilities
    for t in range(T):
        hs[t + 1] = rnn_step(Wxh, Whh, bh, inputs[t], hs[t])  # the gist's tanh(Wxh x + Whh h + bh)
        ys[t] = Why @ hs[t + 1]
    ys += by
    ps = np.exp(ys)
    ps /= ps.sum(axis=1, keepdims=True)
    rows = np.arange(T)
    loss = -np.log(ps[rows, targets]).sum()
    dy = ps
    dy[rows, targets] -= 1  # (T, V) softmax gradient
    dhraw = np.empty((T, H))
    dhnext = np.zeros(H)
    for t in reversed(range(T)):
        dh = Why.T @ dy[t] + dhnext
        dhraw[t] = (1 - hs[t + 1] * hs[t + 1]) * dh  # backprop through tanh
        dhnext = Whh.T @ dhraw[t]
    rev = slice(None, None, -1)  # last step first, as the gist accumulates
    dWhy = (dy[rev, :, None] * hs[1:][rev, None, :]).sum(axis=0)  # sum_t outer(dy_t, h_t)
    dWhh = (dhraw[rev, :, None] * hs[:-1][rev, None, :]).sum(axis=0)  # sum_t outer(dhraw_t, h_{t-1})
    dby = dy[rev].sum(axis=0)
    dbh = dhraw[rev].sum(axis=0)
    dWxh = np.zeros_like(Wxh)
    np.add.at(dWxh.T, inputs[rev], dhraw[rev])  # one-hot inputs: step t adds dhraw_t to one column
    grads = {"Wxh": dWxh, "Whh": dWhh, "Why": dWhy, "bh": dbh, "by": dby}
    for g in grads.values():
        np.clip(g, -5, 5, out=g)
    return loss, grads, hs[T].copy()


def effective_seq_length(n_chars, seq_length):
    """The gist needs seq_length + 1 characters; shorter texts train on a shortened window."""
    if n_chars < 2:
        raise ValueError(f"the training text has {n_chars} character(s); it needs at least 2")
    return min(seq_length, n_chars - 1)


class TrainState:
    """Everything needed to continue a run exactly: model, Adagrad memory, hprev, pointers."""

    def __init__(self, model, mem, hprev, n, p, smooth_loss):
        self.model, self.mem, self.hprev = model, mem, hprev
        self.n, self.p, self.smooth_loss = n, p, smooth_loss

    @classmethod
    def fresh(cls, text, hidden_size, seq_length, lr, seed, corpus_name=""):
        chars = sorted(set(text))
        meta = {
            "arch": "rnn", "trainer": "faithful", "hidden_size": hidden_size,
            "vocab_size": len(chars), "seq_length": seq_length, "learning_rate": lr,
            "optimizer": "adagrad", "clip": 5.0, "seed": seed, "iterations": 0,
            "corpus": corpus_name, "corpus_sha256": text_sha256(text),
            "corpus_chars": len(text), "tool_version": __version__,
        }
        model = Model.init(chars, hidden_size, seed=seed, meta=meta)
        mem = {k: np.zeros_like(v) for k, v in model.params.items()}
        # the gist's starting value, -log(1/V) per character of a window: of the window really
        # used when the text is shorter than seq_length + 1
        smooth = -np.log(1.0 / len(chars)) * effective_seq_length(len(text), seq_length)
        return cls(model, mem, np.zeros(hidden_size), 0, 0, smooth)

    def save(self, path):
        """A checkpoint is a model file that also carries the optimizer state (opt_* arrays)."""
        m = self.model
        check_finite(m.params, self.n, path)
        m.meta.update(iterations=self.n, smooth_loss=self.smooth_loss,
                      loss_per_char=self.smooth_loss / effective_seq_length(m.meta["corpus_chars"],
                                                                            m.meta["seq_length"]),
                      resume={"n": self.n, "p": self.p})
        extra = {f"opt_mem_{k}": v for k, v in self.mem.items()}
        extra["opt_hprev"] = self.hprev
        m.save(path, extra=extra)

    @classmethod
    def load(cls, path, text):
        model = load_checkpoint(path, text, "faithful")
        meta = model.meta
        extra = model.extra
        try:
            mem = {k: extra[f"opt_mem_{k}"] for k in PARAM_NAMES}
            hprev = extra["opt_hprev"]
        except KeyError as e:
            raise ValueError(f"{path} lacks the optimizer array {e}; it cannot be resumed") from None
        r = meta["resume"]
        return cls(model, mem, hprev, int(r["n"]), int(r["p"]), float(meta["smooth_loss"]))


class GistIteration:
    """One iteration of the gist's loop (a step for loop.run): window, sample, update, report."""

    def __init__(self, state, text, *, sample_every=0, sample_len=200, on_progress=None, on_sample=None,
                 report_every=100):
        meta = state.model.meta
        self.state, self.L = state, effective_seq_length(len(text), meta["seq_length"])
        self.data, _ = state.model.encode(text)
        self.rng = np.random.RandomState(meta["seed"] + 1)  # samples' own draws: parameters unaffected
        self.stepper = GistStep(state.model.params, state.mem, self.L, meta["learning_rate"])
        self.stepper.bind(state.model.params, state.mem)  # params and mem become views into its buffers
        self.sample_every, self.sample_len, self.report_every = sample_every, sample_len, report_every
        self.on_progress, self.on_sample = on_progress, on_sample

    def __call__(self):
        state, L, data = self.state, self.L, self.data
        if state.p + L + 1 >= len(data) or state.n == 0:
            state.hprev = np.zeros(state.model.hidden_size)  # back to the start: forget the state
            state.p = 0
        p = state.p
        inputs, targets = data[p:p + L], data[p + 1:p + L + 1]
        if self.sample_every and self.on_sample and state.n % self.sample_every == 0:
            ix = sample_ix(state.model, inputs[0], self.sample_len, state.hprev, rng=self.rng)
            self.on_sample(state.model.decode(ix))
        # plain form: loss, grads, hprev = loss_and_grads(params, inputs, targets, hprev), then
        # for each k: mem[k] += grads[k]**2; params[k] += -lr * grads[k] / sqrt(mem[k] + 1e-8)
        loss, state.hprev = self.stepper.step(inputs, targets, state.hprev)
        state.smooth_loss = state.smooth_loss * 0.999 + loss * 0.001
        state.p += L
        state.n += 1
        if self.on_progress and state.n % self.report_every == 0:
            self.on_progress(state.n, state.smooth_loss / L)
        return loss


def train(state, text, iters, *, checkpoint_path=None, checkpoint_every=0, sample_every=0,
          sample_len=200, on_progress=None, on_sample=None):
    """Run the gist's loop until state.n == iters; checkpoint on the way and on Ctrl-C.

    on_progress(n, smooth_loss_per_char) is called every few iterations; on_sample(text) with
    periodic samples drawn from the current state (its own RNG, so parameters are unaffected).
    """
    step = GistIteration(state, text, sample_every=sample_every, sample_len=sample_len,
                         on_progress=on_progress, on_sample=on_sample,
                         report_every=max(1, min(100, iters // 1000 or 1)))
    return loop.run(state, iters, step, checkpoint_path=checkpoint_path, checkpoint_every=checkpoint_every)


def read_text(path, encoding="utf-8"):
    """Read a whole text file exactly (no newline translation), with clear errors (those of
    text_blocks.read_blocks, which reads it)."""
    return "".join(read_blocks(path, encoding))
