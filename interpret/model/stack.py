"""A stack of LSTM, GRU or vanilla RNN layers with a softmax output: what Model.run and the
batched trainer call. The layers themselves (forward and backward, their array conventions and
speed notes) are in interpret.model.layers; one clamped step at a time is interpret.model.step.
"""
import numpy as np

from interpret.model.layers import (buffer, gru_backward, gru_forward, lstm_backward, lstm_forward,
                              rnn_backward, rnn_forward)

N_GATES = {"lstm": 4, "gru": 3, "rnn": 1, "rnn_stack": 1}  # rnn_stack: tanh layers stacked (PyTorch imports)
GATE_ARRAYS = {"lstm": ("i", "f", "o", "g"), "gru": ("r", "z", "n"), "rnn": (), "rnn_stack": ()}
FORWARD = {"lstm": lstm_forward, "gru": gru_forward, "rnn": rnn_forward, "rnn_stack": rnn_forward}
BACKWARD = {"lstm": lstm_backward, "gru": gru_backward, "rnn": rnn_backward, "rnn_stack": rnn_backward}


def n_layers_of(params):
    """How many layers a parameter dict holds (L0_Wx, L1_Wx, ...)."""
    n = 0
    while f"L{n}_Wx" in params:
        n += 1
    return n


def zero_state(arch, params, B):
    """Per layer (h, c) for the LSTM or (h,) for the GRU, each (B, H), zeros."""
    dtype = params["Why"].dtype
    out = []
    for layer in range(n_layers_of(params)):
        H = params[f"L{layer}_Wh"].shape[0]
        out.append(tuple(np.zeros((B, H), dtype=dtype) for _ in range(2 if arch == "lstm" else 1)))
    return out


def stack_forward(arch, params, X, state, work=None):
    """X (T, B) indices. Returns (top hs (T, B, H), caches per layer, new state).

    work: a dict the caller keeps across calls to reuse big buffers (see layers.buffer);
    the returned arrays are then overwritten by the next call."""
    inp, caches, new_state = X, [], []
    for layer, st in enumerate(state):
        W = (params[f"L{layer}_Wx"], params[f"L{layer}_Wh"], params[f"L{layer}_b"])
        more = {"bhn": params[f"L{layer}_bhn"]} if f"L{layer}_bhn" in params else {}  # imported GRUs only
        hs, cache = FORWARD[arch](*W, inp, *st, work=_layer_work(work, layer), **more)
        if arch == "lstm":
            new_state.append((hs[-1].copy(), cache[3][-1].copy()))
        else:
            new_state.append((hs[-1].copy(),))
        caches.append(cache)
        inp = hs[1:]
    return inp, caches, new_state


def _layer_work(work, layer):
    return None if work is None else work.setdefault(layer, {})


def loss_and_grads(arch, params, X, Y, state, work=None):
    """Mean cross-entropy (nats/char) of targets Y (T, B) given inputs X (T, B); grads; new state.

    work: optional dict of reusable buffers, kept by the caller across steps (see layers.buffer);
    the big gradients are then such buffers too, overwritten by the next call."""
    top, caches, new_state = stack_forward(arch, params, X, state, work)
    T, B, H = top.shape
    Why, by = params["Why"], params["by"]
    hf = top.reshape(T * B, H)
    ys = np.dot(hf, Why.T, out=buffer(work, "ys", (T * B, len(by)), hf.dtype))  # (T*B, V) logits
    ys += by
    ys -= ys.max(axis=1, keepdims=True)
    np.exp(ys, out=ys)
    ys /= ys.sum(axis=1, keepdims=True)  # probabilities
    rows, yf = np.arange(T * B), Y.ravel()
    loss = -np.log(ys[rows, yf]).mean(dtype=np.float64)
    ys[rows, yf] -= 1
    ys /= T * B  # dLoss/dlogits
    grads = {"Why": ys.T @ hf, "by": ys.sum(axis=0)}
    dh = np.dot(ys, Why, out=buffer(work, "dh", (T * B, H), hf.dtype)).reshape(T, B, H)
    for layer in reversed(range(len(caches))):
        Wx, Wh = params[f"L{layer}_Wx"], params[f"L{layer}_Wh"]
        g, dh = BACKWARD[arch](Wx, Wh, caches[layer], dh, work=_layer_work(work, layer))
        for k, v in g.items():
            grads[f"L{layer}_{k}"] = v
    return float(loss), grads, new_state


def init_params(arch, H, V, n_layers, rng, forget_bias=None):
    """Uniform(+-1/sqrt(H)) weights, drawn per layer as Wx, Wh, b, then Why; by starts at 0.

    forget_bias None: every bias uniform too, PyTorch's default (the forget gate starts half open,
    so a cell state carried through a whole text stays bounded). A number: every bias 0 and the
    LSTM's forget-gate bias that number (1 is the classic choice; with state carried over long
    texts it makes integrators whose cell states grow without bound)."""
    G, s = N_GATES[arch], 1.0 / np.sqrt(H)
    params = {}
    for layer in range(n_layers):
        D = V if layer == 0 else H
        params[f"L{layer}_Wx"] = rng.uniform(-s, s, (D, G * H))
        params[f"L{layer}_Wh"] = rng.uniform(-s, s, (H, G * H))
        if forget_bias is None:
            b = rng.uniform(-s, s, G * H)
        else:
            b = np.zeros(G * H)
            if arch == "lstm":
                b[H:2 * H] = forget_bias
        params[f"L{layer}_b"] = b
    params["Why"] = rng.uniform(-s, s, (V, H))
    params["by"] = np.zeros(V)
    return params


def shapes(arch, H, V, n_layers):
    """{name: shape} of every array of a stack."""
    G = N_GATES[arch]
    out = {}
    for layer in range(n_layers):
        out.update({f"L{layer}_Wx": (V if layer == 0 else H, G * H), f"L{layer}_Wh": (H, G * H),
                    f"L{layer}_b": (G * H,)})
    out.update({"Why": (V, H), "by": (V,)})
    return out


def run_kinds(arch, params, ix, state):
    """Run one stream ix (T,): ({(layer, array): (T, H)}, top hs (T, H), new state); state per layer."""
    st = [tuple(s[None, :] for s in layer) for layer in state]  # B = 1
    inp, acts, new_state = ix[:, None], {}, []
    for layer, s in enumerate(st):
        W = (params[f"L{layer}_Wx"], params[f"L{layer}_Wh"], params[f"L{layer}_b"])
        H = W[1].shape[0]
        if arch == "lstm":
            hs, (_, gates, _, cs, _) = lstm_forward(*W, inp, *s)
            acts[(layer, "c")] = cs[1:, 0]
            new_state.append((hs[-1, 0].copy(), cs[-1, 0].copy()))
        elif arch == "gru":
            hs, (_, gates, _, _) = gru_forward(*W, inp, *s, bhn=params.get(f"L{layer}_bhn"))
            new_state.append((hs[-1, 0].copy(),))
        else:  # rnn_stack: no gates
            hs, _ = rnn_forward(*W, inp, *s)
            new_state.append((hs[-1, 0].copy(),))
        acts[(layer, "h")] = hs[1:, 0]
        for j, array in enumerate(GATE_ARRAYS[arch]):
            acts[(layer, array)] = gates[:, 0, j * H:(j + 1) * H]
        inp = hs[1:]
    return acts, inp[:, 0], new_state
