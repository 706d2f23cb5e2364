"""The gist's training step, fast and bit for bit: preallocated buffers, few numpy calls per step.

`GistStep.step` computes exactly what `train.gist.loss_and_grads` followed by the gist's Adagrad
update computes, to the last bit: Adagrad amplifies a 1e-16 difference into a different run, so
every float operation keeps the gist's order (gemv per step, the gradient sums as the gist's
running sums, one flat Adagrad vector). Why each choice keeps the bits: docs/internals.md.
Tests check the two agree bit for bit.
"""
import numpy as np

PARAM_NAMES = ("Wxh", "Whh", "Why", "bh", "by")


def _shapes(H, V):
    return {"Wxh": (H, V), "Whh": (H, H), "Why": (V, H), "bh": (H,), "by": (V,)}


def flat_views(flat, H, V):
    """Views into one flat vector, one per parameter, in PARAM_NAMES order."""
    views, at = {}, 0
    for name, shape in _shapes(H, V).items():
        size = int(np.prod(shape))
        views[name] = flat[at:at + size].reshape(shape)
        at += size
    return views


def flat_size(H, V):
    return H * V + H * H + V * H + H + V


class GistStep:
    """Buffers for one gist iteration of T steps; step() updates params in place (Adagrad)."""

    def __init__(self, params, mem, T, lr):
        H, V = params["Whh"].shape[0], params["Why"].shape[0]
        self.H, self.V, self.T, self.lr = H, V, T, lr
        n = flat_size(H, V)
        self.theta, self.flat_mem, self.g, self.tmp = (np.zeros(n) for _ in range(4))
        self.p, self.m = flat_views(self.theta, H, V), flat_views(self.flat_mem, H, V)
        self.d = flat_views(self.g, H, V)
        for k in PARAM_NAMES:
            self.p[k][...] = params[k]
            self.m[k][...] = mem[k]
        # time-reversed buffers: row r holds step T-1-r; R[T] is hprev (the state before step 0)
        self.R = np.zeros((T + 1, H))             # (T+1, H) hidden states
        self.ys = np.zeros((T, V, 1))             # (T, V, 1) logits, then probabilities, then dy
        self.z = np.zeros(H)                      # (H,) pre-activation scratch
        self.dtanh = np.zeros((T, H))             # (T, H) 1 - h*h
        self.dWy = np.zeros((T, H, 1))            # (T, H, 1) Why^T dy_t
        self.dh = np.zeros(H)                     # (H,)
        self.dhnext = np.zeros(H)                 # (H,)
        self.dhraw = np.zeros((T, H))             # (T, H) reversed like R
        self.rows = np.arange(T)

    def bind(self, params, mem):
        """Point the caller's dicts at the flat buffers (so they see every update)."""
        params.update(self.p)
        mem.update(self.m)

    def step(self, inputs, targets, hprev):
        """One gist iteration on inputs/targets (T,) from hprev (H,); returns (loss, new hprev)."""
        T, p, R, z, ys = self.T, self.p, self.R, self.z, self.ys
        Whh, bh = p["Whh"], p["bh"]
        xin = p["Wxh"].T[inputs[::-1]]                         # (T, H) row r: Wxh[:, inputs[T-1-r]]
        R[T] = hprev
        dot, add, tanh = np.dot, np.add, np.tanh
        for r in range(T - 1, -1, -1):            # forward in time: h = tanh(Wxh x + Whh h + bh)
            dot(Whh, R[r + 1], out=z)
            add(xin[r], z, out=z)
            add(z, bh, out=z)
            tanh(z, out=R[r])
        # output layer for all steps: y = Why h + by, p = exp(y) / sum(exp(y))
        np.matmul(p["Why"], R[:T, :, None], out=ys)           # T gemv calls, as the gist does
        ys += p["by"][:, None]
        np.exp(ys, out=ys)
        ys /= ys.sum(axis=1, keepdims=True)
        tgt = targets[::-1]
        dy = ys[:, :, 0]                                       # (T, V) reversed
        # the loss in the gist's order (a Python sum from the first step); it only feeds smooth_loss
        loss = sum((-np.log(dy[self.rows, tgt]))[::-1].tolist())
        dy[self.rows, tgt] -= 1.0                              # softmax gradient
        self._backward(dy, inputs)
        np.clip(self.g, -5.0, 5.0, out=self.g)
        self._adagrad()
        return loss, R[0].copy()

    def _backward(self, dy, inputs):
        """Gradients into self.g (views self.d), in the gist's order (see the module doc)."""
        T, p, d, R = self.T, self.p, self.d, self.R
        np.matmul(p["Why"].T, dy[:, :, None], out=self.dWy)   # dh from the output, all steps
        np.multiply(R[:T], R[:T], out=self.dtanh)
        np.subtract(1.0, self.dtanh, out=self.dtanh)           # 1 - h*h
        WhhT, dWy, dtanh, dhraw = p["Whh"].T, self.dWy[:, :, 0], self.dtanh, self.dhraw
        dh, dhnext = self.dh, self.dhnext
        dhnext[:] = 0.0
        dot, add, mul = np.dot, np.add, np.multiply
        for r in range(T):                        # backward in time: last step first
            add(dWy[r], dhnext, out=dh)           # dh = Why^T dy + dhnext
            mul(dtanh[r], dh, out=dhraw[r])       # dhraw = (1 - h*h) * dh
            dot(WhhT, dhraw[r], out=dhnext)       # dhnext = Whh^T dhraw
        # sum over steps, last step first: dWhy = sum_t outer(dy_t, h_t), dWhh = sum_t outer(dhraw_t, h_{t-1})
        np.einsum("tv,th->vh", dy, R[:T], out=d["Why"])
        np.einsum("ti,tj->ij", dhraw, R[1:], out=d["Whh"])
        np.add.reduce(dy, axis=0, out=d["by"])                 # dby = sum_t dy_t
        np.add.reduce(dhraw, axis=0, out=d["bh"])              # dbh = sum_t dhraw_t
        d["Wxh"][...] = 0.0                                    # dWxh[:, x_t] += dhraw_t (one-hot x)
        np.add.at(d["Wxh"].T, inputs[::-1], dhraw)

    def _adagrad(self):
        """mem += g*g; theta += -lr * g / sqrt(mem + 1e-8), over the flat vector."""
        g, tmp, mem = self.g, self.tmp, self.flat_mem
        np.multiply(g, g, out=tmp)
        np.add(mem, tmp, out=mem)
        np.add(mem, 1e-8, out=tmp)
        np.sqrt(tmp, out=tmp)
        np.multiply(g, -self.lr, out=g)
        np.divide(g, tmp, out=g)
        np.add(self.theta, g, out=self.theta)
