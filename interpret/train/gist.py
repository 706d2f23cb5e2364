"""Training with the min-char-rnn gist's math: Adagrad, truncated BPTT, gradient clip +-5.

The faithful trainer reproduces the gist step for step: the same parameter draws after
np.random.seed(seed), the same data pointer sweep (reset p and hprev when p + seq_length + 1
reaches the end of the data), the same loss, gradients, clipping and Adagrad update, so the same
seed and text give the same parameters, bit for bit.

loss_and_grads below is the plain form of one step (no one-hot vectors: Wxh x is a column of Wxh).
The training loop runs faithful.GistStep, which computes the same bits with preallocated buffers,
far fewer numpy calls and one Adagrad update over a flat parameter vector.
"""
import hashlib

import numpy as np

from interpret import __version__
from interpret._util.blas import one_thread
from interpret.train.faithful import GistStep
from interpret._util.interrupt import SafePoints
from interpret.model.model import Model
from interpret._util.textfile import read_blocks

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
        hs[t + 1] = np.tanh(Wxh[:, inputs[t]] + Whh @ hs[t] + bh)  # Wxh x_t is a column: no one-hot
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


def load_checkpoint(path, text, trainer):
    """A checkpoint's Model, checked to come from `trainer` ("faithful" | "batched") on this text."""
    model = Model.load(path)
    meta = model.meta
    if meta.get("trainer") != trainer or "resume" not in meta:
        what = "`interpret train`" if trainer == "faithful" else "batched training"
        raise ValueError(f"{path} is not a checkpoint of {what} (no optimizer state); "
                         "start a new run without --resume")
    keys = ("n", "p") if trainer == "faithful" else ("n", "pos")
    r = meta["resume"]
    if not (isinstance(r, dict) and all(isinstance(r.get(k), int) and r[k] >= 0 for k in keys)):
        raise ValueError(f"{path} has a damaged 'resume' entry in its meta ({r!r}); it cannot be resumed, "
                         "start a new run without --resume")
    if meta.get("corpus_sha256") != text_sha256(text):
        raise ValueError(f"{path} was trained on a different text (corpus sha256 differs); "
                         "resume with the same training text")
    return model


def check_finite(params, n, path):
    """FloatingPointError (nothing written) if a parameter is NaN or infinite."""
    bad = [k for k, v in params.items() if not np.isfinite(v).all()]
    if bad:
        raise FloatingPointError(f"the parameters ({', '.join(bad)}) became NaN or infinite at iteration {n}; "
                                 f"{path} was not overwritten with them; lower --lr")


def diverged(loss, n, path, saved_at):
    """The one-line error for a non-finite loss: what happened, what is on disk, the way out."""
    if not path:
        kept = "nothing was saved"
    elif saved_at is None:
        kept = f"{path} was not changed"
    else:
        kept = f"{path} keeps iteration {saved_at}, the last good state"
    return FloatingPointError(f"the loss became {loss} at iteration {n} ({kept}); lower --lr")


def text_sha256(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def train(state, text, iters, *, checkpoint_path=None, checkpoint_every=0, sample_every=0,
          sample_len=200, on_progress=None, on_sample=None):
    """Run the gist's loop until state.n == iters; checkpoint on the way and on Ctrl-C.

    on_progress(n, smooth_loss_per_char) is called every few iterations; on_sample(text) with
    periodic samples drawn from the current state (its own RNG, so parameters are unaffected).
    """
    model, meta = state.model, state.model.meta
    params, mem = model.params, state.mem
    L = effective_seq_length(len(text), meta["seq_length"])
    lr = meta["learning_rate"]
    data, _ = model.encode(text)
    rng = np.random.RandomState(meta["seed"] + 1)
    stepper = GistStep(params, mem, L, lr)  # fast exact form of loss_and_grads + Adagrad
    stepper.bind(params, mem)  # params and mem become views into its flat buffers
    report_every = max(1, min(100, iters // 1000 or 1))
    saved_at = None  # the iteration last written to checkpoint_path in this call
    # a diverging run overflows on its way to a NaN loss: no warnings, the loss check says it in one line
    with one_thread(), np.errstate(over="ignore", invalid="ignore", divide="ignore"), SafePoints() as ctrl_c:
        try:
            while state.n < iters:
                ctrl_c.check()  # between two whole iterations: the state saved below is consistent
                if state.p + L + 1 >= len(data) or state.n == 0:
                    state.hprev = np.zeros(model.hidden_size)  # back to the start: forget the state
                    state.p = 0
                p = state.p
                inputs, targets = data[p:p + L], data[p + 1:p + L + 1]
                if sample_every and on_sample and state.n % sample_every == 0:
                    on_sample(sample_ix(model, inputs[0], sample_len, state.hprev, rng=rng))
                # plain form: loss, grads, hprev = loss_and_grads(params, inputs, targets, hprev), then
                # for each k: mem[k] += grads[k]**2; params[k] += -lr * grads[k] / sqrt(mem[k] + 1e-8)
                loss, state.hprev = stepper.step(inputs, targets, state.hprev)
                state.smooth_loss = state.smooth_loss * 0.999 + loss * 0.001
                state.p += L
                state.n += 1
                if on_progress and state.n % report_every == 0:
                    on_progress(state.n, state.smooth_loss / L)
                if not np.isfinite(state.smooth_loss):
                    raise diverged(loss, state.n, checkpoint_path, saved_at)
                if checkpoint_path and checkpoint_every and state.n % checkpoint_every == 0:
                    state.save(checkpoint_path)
                    saved_at = state.n
        except KeyboardInterrupt:
            if checkpoint_path:
                state.save(checkpoint_path)
            raise
        if checkpoint_path:
            state.save(checkpoint_path)
    return state


def sample_ix(model, seed_ix, n, h=None, *, temperature=1.0, argmax=False, rng=None):
    """Sample n characters after feeding seed_ix from state h (the gist's sample())."""
    rng = rng or np.random
    p = model.params
    h = model.initial_state() if h is None else np.array(h, dtype=np.float64)
    ix, out = seed_ix, []
    for _ in range(n):
        h = np.tanh(p["Wxh"][:, ix] + p["Whh"] @ h + p["bh"])
        y = (p["Why"] @ h + p["by"])
        if argmax:
            ix = int(np.argmax(y))
        else:
            y = y / temperature
            e = np.exp(y - y.max())
            ix = int(rng.choice(len(e), p=e / e.sum()))
        out.append(ix)
    return model.decode(out)


def sample(model, n=200, *, prime="", temperature=1.0, argmax=False, seed=None):
    """Primer + n sampled characters. The primer is run through the model first."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0 (got {temperature}); use --argmax for greedy sampling")
    if model.arch != "rnn":
        if argmax:
            raise ValueError("greedy (argmax) sampling is only for the vanilla rnn; use a low temperature")
        from interpret.analysis.causal import sample as gated_sample
        return gated_sample(model, n, prime=prime, temperature=temperature, seed=seed)
    rng = np.random.RandomState(seed)
    if not prime:
        prime = "\n" if "\n" in model.char_to_ix else model.chars[0]
        shown = ""
    else:
        shown = prime
    ix, _ = model.encode(prime, hint="remove them from --prime")
    h = None
    if len(ix) > 1:
        _, _, h = model.run(ix[:-1], logits=False)
    return shown + sample_ix(model, int(ix[-1]), n, h, temperature=temperature, argmax=argmax, rng=rng)


def read_text(path, encoding="utf-8"):
    """Read a whole text file exactly (no newline translation), with clear errors (those of
    text_blocks.read_blocks, which reads it)."""
    return "".join(read_blocks(path, encoding))
