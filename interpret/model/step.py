"""One character in for B streams at once, with units clamped: the step sampling and ablation run.

A gated step is the batched forward's own cells (layers.lstm_cell_c / lstm_cell_h, gru_cell) on
one step's pre-activations, so it agrees with Model.run to rounding. The vanilla step is the
gist's form and order, h = tanh(Wxh x + Whh h + bh): the gist's sample() and lossFun compute
exactly these bits (train.gist.loss_and_grads steps through it too).

clamp: {(layer, array): (rows, cols, values)} sets unit cols[k] of stream rows[k] to values[k]
after every step; for the LSTM, array "c" is the cell state, set before h = o * tanh(c).
State: per layer a tuple (h,) or, for the LSTM, (h, c), each (B, H).
"""
import numpy as np

from interpret.model import stack
from interpret.model.layers import gru_cell, halved_T, lstm_cell_c, lstm_cell_h

CLAMP_ARRAYS = {"rnn": ("h",), "lstm": ("h", "c"), "gru": ("h",), "rnn_stack": ("h",)}
N_HALF = {"lstm": 3, "gru": 2, "rnn_stack": 0}  # sigmoid blocks per gated layer, first in the gate order


def weights(model, dtype=np.float64):
    """The model's arrays as step() takes them, in dtype. Vanilla: the gist's arrays. Gated: per
    layer the input table (Wx + b) or (Wx, b), and Wh.T, sigmoid columns halved (layers' notes)."""
    P = {k: v.astype(dtype) for k, v in model.params.items()}
    if model.arch == "rnn":
        return P
    out = {"Why": P["Why"], "by": P["by"], "layers": []}
    for layer in range(model.n_layers):
        Wx, Wh, b = P[f"L{layer}_Wx"], P[f"L{layer}_Wh"], P[f"L{layer}_b"]
        n_half = N_HALF[model.arch] * Wh.shape[0]
        table = Wx + b  # (V, G*H) layer 0: row x is Wx x + b; deeper layers: Wx, then b added
        table[:, :n_half] *= 0.5
        bhn = P.get(f"L{layer}_bhn")  # PyTorch's GRU candidate bias (imported models), or None
        out["layers"].append({"table": table, "Wx": Wx, "b": b, "WhT": halved_T(Wh, n_half), "n_half": n_half,
                              "bhn": bhn})
    return out


def start_state(model, B, dtype=np.float64):
    """Zeros: [(h,)] (vanilla), per layer (h, c) (LSTM) or (h,) (GRU), each (B, H)."""
    if model.arch == "rnn":
        return [(np.zeros((B, model.hidden_size), dtype=dtype),)]
    return [tuple(s.astype(dtype) for s in layer) for layer in stack.zero_state(model.arch, model.params, B)]


def clamp_units(arr, spec):
    """arr[rows, cols] = values for spec (rows, cols, values); nothing for None."""
    if spec is not None:
        rows, cols, values = spec
        arr[rows, cols] = values


def rnn_step(Wxh, Whh, bh, x, h):
    """The vanilla step in the gist's form and order: tanh(Wxh x + Whh h + bh), x one-hot so a column.

    x an index and h (H,), or x (B,) and h (B, H); for one stream these are the gist's bits."""
    return np.tanh(Wxh.T[x] + (Whh @ h.T).T + bh)


def step(model, W, x, state, clamp=None):
    """One character x (B,) for every stream; returns (logits (B, V), new state). W: weights(model)."""
    clamp = clamp or {}
    if model.arch == "rnn":
        h = rnn_step(W["Wxh"], W["Whh"], W["bh"], x, state[0][0])  # (B, H)
        clamp_units(h, clamp.get((0, "h")))
        return h @ W["Why"].T + W["by"], [(h,)]
    new, inp = [], None
    for layer, (st, w) in enumerate(zip(state, W["layers"])):
        if layer == 0:
            a = w["table"][x]                                   # (B, G*H) fresh rows
        else:
            a = inp @ w["Wx"] + w["b"]
            a[:, :w["n_half"]] *= 0.5
        hw = (w["WhT"] @ st[0].T).T                             # (B, G*H)
        h = np.empty_like(st[0])
        if model.arch == "lstm":
            a += hw
            c = np.empty_like(st[1])
            lstm_cell_c(a, st[1], c, np.empty_like(c))
            clamp_units(c, clamp.get((layer, "c")))
            lstm_cell_h(a, c, np.empty_like(c), h)
        elif model.arch == "rnn_stack":
            np.tanh(a + hw, out=h)
        else:
            if w["bhn"] is not None:
                hw[:, 2 * (h.shape[1]):] += w["bhn"]  # inside r * (h Whn + b_hn)
            gru_cell(a, hw, st[0], h)
        clamp_units(h, clamp.get((layer, "h")))
        new.append((h, c) if model.arch == "lstm" else (h,))
        inp = h
    return inp @ W["Why"].T + W["by"], new


def check_target(model, layer, array, units):
    """Raise ValueError unless (layer, array, unit) can be intervened on in this model."""
    if array not in CLAMP_ARRAYS[model.arch]:
        raise ValueError(f"a {model.arch} model can be intervened on in arrays "
                         f"{', '.join(CLAMP_ARRAYS[model.arch])} (got {array!r})")
    if not 0 <= layer < model.n_layers:
        raise ValueError(f"layer {layer} does not exist; the model has {model.n_layers} layer(s) "
                         f"(0-{model.n_layers - 1})")
    for u in units:
        if not 0 <= u < model.hidden_size:
            raise ValueError(f"unit {u} is out of range: the model has {model.hidden_size} units per layer "
                             f"(0-{model.hidden_size - 1})")
