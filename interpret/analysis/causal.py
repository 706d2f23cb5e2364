"""Causal tests of single units: ablate a unit (zero it, or hold it at its mean) against random units.

Everything runs B streams of one text side by side, one character per step (model.step.step),
with interventions: stream b holds one unit at a value after every step, in that layer's h (or,
for the LSTM, its cell state c, before h = o * tanh(c) is formed). So one pass over the text
measures the intact model and many ablations at once. Sampling with clamped units is
model.sample.sample.
"""
import numpy as np

from interpret.model.step import check_target, start_state, step, weights

__all__ = ["ablate", "check_target", "losses", "unit_means"]


def losses(model, ix, layer, array, cols, values, dtype=np.float32, progress=None):
    """Per-character next-char loss (B, T-1) of B copies of ix (T,): stream b has unit cols[b]
    held at values[b] (cols[b] = -1: intact). progress(n) is called as steps are done."""
    W = weights(model, dtype)
    B = len(cols)
    cols, values = np.asarray(cols), np.asarray(values, dtype=dtype)
    rows = np.flatnonzero(cols >= 0)
    state, out = start_state(model, B, dtype), np.empty((B, len(ix) - 1))
    spec = {(layer, array): (rows, cols[rows], values[rows])}
    for t in range(len(ix) - 1):
        ys, state = step(model, W, np.full(B, ix[t]), state, spec)
        m = ys.max(axis=1)
        out[:, t] = np.log(np.exp(ys - m[:, None]).sum(axis=1)) + m - ys[:, ix[t + 1]]
        if progress and (t + 1) % 256 == 0:
            progress(256)
    if progress:
        progress((len(ix) - 1) % 256)
    return out


def unit_means(model, ix, layer, array):
    """Mean activation of every unit of (layer, array) over ix: the 'hold at mean' values."""
    acts, _, _ = model.run(ix, logits=False)
    return acts[(layer, array)].mean(axis=0)


TARGET_GROUPS = (("all characters", None), ('before a "', '"'), ("before a newline", "\n"),
                 ("before ) ] }", ")]}"))


def ablate(model, text, unit, *, layer=0, array="h", mode="zero", n_random=20, seed=0, feature=None,
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
    L = losses(model, ix, layer, array, cols, values, progress=progress)  # (B, T-1)
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
