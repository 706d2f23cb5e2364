"""Causal tests of single units: ablate a unit (zero or hold at its mean) and clamp it while sampling.

Everything runs B streams of one text side by side, one character per step, with interventions:
`clamp[(layer, kind)] = (rows, cols, values)` sets unit cols[k] of stream rows[k] in that layer's
h (or, for the LSTM, its cell state c, before h = o * tanh(c) is formed) to values[k] after
every step. So one pass over the text measures the intact model and many ablations at once.
"""
import numpy as np
from scipy.special import expit

from interpret import gated

CLAMP_KINDS = {"rnn": ("h",), "lstm": ("h", "c"), "gru": ("h",), "rnn_stack": ("h",)}


def _set(arr, spec):
    if spec is not None:
        rows, cols, values = spec
        arr[rows, cols] = values


def step(model, P, x, state, clamp):
    """One character x (B,) for every stream; returns (logits (B, V), new state)."""
    if model.arch == "rnn":
        h = np.tanh(P["Wxh"].T[x] + state[0] @ P["Whh"].T + P["bh"])
        _set(h, clamp.get((0, "h")))
        return h @ P["Why"].T + P["by"], [h]
    new, inp = [], None
    for layer, st in enumerate(state):
        Wx, Wh, b = P[f"L{layer}_Wx"], P[f"L{layer}_Wh"], P[f"L{layer}_b"]
        H = Wh.shape[0]
        a = (Wx[x] if layer == 0 else inp @ Wx) + b
        hw = st[0] @ Wh
        if model.arch == "lstm":
            a += hw
            ifo, g = expit(a[:, :3 * H]), np.tanh(a[:, 3 * H:])
            c = ifo[:, H:2 * H] * st[1] + ifo[:, :H] * g
            _set(c, clamp.get((layer, "c")))
            h = ifo[:, 2 * H:] * np.tanh(c)
            _set(h, clamp.get((layer, "h")))
            new.append((h, c))
        elif model.arch == "rnn_stack":
            h = np.tanh(a + hw)
            _set(h, clamp.get((layer, "h")))
            new.append((h,))
        else:
            rz = expit(a[:, :2 * H] + hw[:, :2 * H])
            if f"L{layer}_bhn" in P:  # PyTorch's hidden-side candidate bias (imported GRUs)
                hw[:, 2 * H:] += P[f"L{layer}_bhn"]
            n = np.tanh(a[:, 2 * H:] + rz[:, :H] * hw[:, 2 * H:])
            z = rz[:, H:]
            h = (1 - z) * n + z * st[0]
            _set(h, clamp.get((layer, "h")))
            new.append((h,))
        inp = h
    return inp @ P["Why"].T + P["by"], new


def start_state(model, B, dtype=np.float32):
    if model.arch == "rnn":
        return [np.zeros((B, model.hidden_size), dtype=dtype)]
    return [tuple(s.astype(dtype) for s in layer) for layer in gated.zero_state(model.arch, model.params, B)]


def check_target(model, layer, kind, units):
    """Raise ValueError unless (layer, kind, unit) can be intervened on in this model."""
    if kind not in CLAMP_KINDS[model.arch]:
        raise ValueError(f"a {model.arch} model can be intervened on in kinds "
                         f"{', '.join(CLAMP_KINDS[model.arch])} (got {kind!r})")
    if not 0 <= layer < model.n_layers:
        raise ValueError(f"layer {layer} does not exist; the model has {model.n_layers} layer(s) (0-{model.n_layers - 1})")
    for u in units:
        if not 0 <= u < model.hidden_size:
            raise ValueError(f"unit {u} is out of range: the model has {model.hidden_size} units per layer "
                             f"(0-{model.hidden_size - 1})")


def losses(model, ix, layer, kind, cols, values, dtype=np.float32, progress=None):
    """Per-character next-char loss (B, T-1) of B copies of ix (T,): stream b has unit cols[b]
    held at values[b] (cols[b] = -1: intact). progress(n) is called as steps are done."""
    P = {k: v.astype(dtype) for k, v in model.params.items()}
    B = len(cols)
    cols, values = np.asarray(cols), np.asarray(values, dtype=dtype)
    rows = np.flatnonzero(cols >= 0)
    state, out = start_state(model, B, dtype), np.empty((B, len(ix) - 1))
    spec = {(layer, kind): (rows, cols[rows], values[rows])}
    for t in range(len(ix) - 1):
        ys, state = step(model, P, np.full(B, ix[t]), state, spec)
        m = ys.max(axis=1)
        out[:, t] = np.log(np.exp(ys - m[:, None]).sum(axis=1)) + m - ys[:, ix[t + 1]]
        if progress and (t + 1) % 256 == 0:
            progress(256)
    if progress:
        progress((len(ix) - 1) % 256)
    return out


def unit_means(model, ix, layer, kind):
    """Mean activation of every unit of (layer, kind) over ix: the 'hold at mean' values."""
    acts, _, _ = model.run(ix, logits=False)
    return acts[(layer, kind)].mean(axis=0)


def sample(model, n, *, clamp=(), layer=0, kind="h", prime="", temperature=1.0, seed=None):
    """Primer + n characters generated with units held fixed: clamp = [(unit, value), ...]."""
    check_target(model, layer, kind, [u for u, _ in clamp])
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0 (got {temperature})")
    rng = np.random.RandomState(seed)
    P = {k: v.astype(np.float64) for k, v in model.params.items()}
    shown = prime
    if not prime:
        prime = "\n" if "\n" in model.char_to_ix else model.chars[0]
    ix, _ = model.encode(prime, hint="remove them from --prime")
    units = np.array([u for u, _ in clamp], dtype=np.int64)
    spec = {(layer, kind): (np.zeros(len(units), dtype=np.int64), units,
                            np.array([v for _, v in clamp], dtype=np.float64))}
    state, out = start_state(model, 1, np.float64), []
    for i in ix[:-1]:
        _, state = step(model, P, np.array([i]), state, spec)
    x = int(ix[-1])
    for _ in range(n):
        ys, state = step(model, P, np.array([x]), state, spec)
        y = ys[0] / temperature
        e = np.exp(y - y.max())
        x = int(rng.choice(len(e), p=e / e.sum()))
        out.append(x)
    return shown + model.decode(out)


TARGET_GROUPS = (("all characters", None), ('before a "', '"'), ("before a newline", "\n"),
                 ("before ) ] }", ")]}"))


def ablate(model, text, unit, *, layer=0, kind="h", mode="zero", n_random=20, seed=0, feature=None,
           progress=None):
    """Change in next-char loss when `unit` is zeroed / held at its mean, against random units.

    Returns rows, one per group of positions (all characters; those whose next character is a
    quote, a newline, a closing bracket; where `feature` (name, values) is on), each with the
    unit's mean loss change (nats), the random units' mean and std, and an empirical p-value:
    the share of random units whose change is at least as large (with +1 smoothing).
    progress(n): called as the characters are run (len(text) - 1 in all).
    """
    if mode not in ("zero", "mean"):
        raise ValueError(f"unknown ablation mode {mode!r}; use zero or mean")
    check_target(model, layer, kind, [unit])
    ix, text = model.encode(text)
    if len(ix) < 2:
        raise ValueError("the text needs at least 2 characters to measure a next-character loss")
    rng = np.random.RandomState(seed)
    others = np.setdiff1d(np.arange(model.hidden_size), [unit])
    randoms = rng.choice(others, size=min(n_random, len(others)), replace=False)
    cols = np.concatenate([[-1, unit], randoms]).astype(np.int64)
    means = unit_means(model, ix, layer, kind) if mode == "mean" else np.zeros(model.hidden_size)
    values = np.where(cols >= 0, means[np.maximum(cols, 0)], 0.0)
    L = losses(model, ix, layer, kind, cols, values, progress=progress)  # (B, T-1)
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
    return {"unit": int(unit), "layer": layer, "kind": kind, "mode": mode,
            "random_units": randoms.tolist(), "rows": rows}
