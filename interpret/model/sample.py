"""Sampling text from a model, optionally with units clamped: the one sampler.

`sample` runs a primer through the model and continues it (what `interpret sample` prints, with or
without --clamp); `sample_ix` continues from a given character and state (what training prints
every --sample-every iterations, from its own RNG so training is not disturbed). Both step
through model.step.step, one character at a time; a vanilla model steps in the gist's order, so
its samples are the gist's sample() for the same state and random draws.
"""
import numpy as np

from interpret.model.step import check_target, start_state, step, weights


def clamp_spec(clamp, layer=0, array="h"):
    """[(unit, value), ...] -> step()'s {(layer, array): (rows, cols, values)} for one stream."""
    units = np.array([u for u, _ in clamp], dtype=np.int64)
    values = np.array([v for _, v in clamp], dtype=np.float64)
    return {(layer, array): (np.zeros(len(units), dtype=np.int64), units, values)}


def draw(y, temperature, argmax, rng):
    """The next character from logits y (V,): argmax, or a draw from softmax(y / temperature)."""
    if argmax:
        return int(np.argmax(y))
    y = y / temperature
    e = np.exp(y - y.max())
    return int(rng.choice(len(e), p=e / e.sum()))


def sample_ix(model, x, n, state=None, *, temperature=1.0, argmax=False, rng=None, spec=None, W=None):
    """Indices of n characters sampled after feeding character x from state (None: zeros).

    state: step()'s per-layer tuples, or a vanilla model's h (H,) as training carries it."""
    rng = rng or np.random
    W = weights(model) if W is None else W
    if state is None:
        state = start_state(model, 1)
    elif model.arch == "rnn" and not isinstance(state, list):
        state = [(np.asarray(state, dtype=np.float64)[None, :],)]  # hprev (H,) -> [(h (1, H),)]
    out = []
    for _ in range(n):
        ys, state = step(model, W, np.array([x]), state, spec)
        x = draw(ys[0], temperature, argmax, rng)
        out.append(x)
    return out


def sample(model, n=200, *, prime="", temperature=1.0, argmax=False, seed=None, clamp=(), layer=0, array="h"):
    """Primer + n sampled characters; clamp = [(unit, value), ...] holds units of (layer, array)."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0 (got {temperature}); use --argmax for greedy sampling")
    if argmax and (model.gated or clamp):
        raise ValueError("greedy (argmax) sampling is only for the vanilla rnn without --clamp; "
                         "use a low --temperature")
    if clamp or model.gated:  # the layer and array a clamp would use must exist
        check_target(model, layer, array, [u for u, _ in clamp])
    shown = prime
    if not prime:
        prime = "\n" if "\n" in model.char_to_ix else model.chars[0]
    ix, _ = model.encode(prime, hint="remove them from --prime")
    W, spec = weights(model), clamp_spec(clamp, layer, array) if clamp else None
    state = start_state(model, 1)
    for i in ix[:-1]:  # the primer but its last character, which sample_ix feeds first
        _, state = step(model, W, np.array([i]), state, spec)
    out = sample_ix(model, int(ix[-1]), n, state, temperature=temperature, argmax=argmax,
                    rng=np.random.RandomState(seed), spec=spec, W=W)
    return shown + model.decode(out)
