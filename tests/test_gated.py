import numpy as np
import pytest

from interpret.model import stack as gated


def sig(x):
    return 1 / (1 + np.exp(-x))


def plain_lstm(params, ix, n_layers):
    """Per-step, per-stream reference with the textbook equations (column vectors)."""
    T, B = ix.shape
    outs = np.zeros((T, B, params["Why"].shape[0]))
    for b in range(B):
        H = params["L0_Wh"].shape[0]
        h = [np.zeros(H) for _ in range(n_layers)]
        c = [np.zeros(H) for _ in range(n_layers)]
        for t in range(T):
            x = np.zeros(params["L0_Wx"].shape[0])
            x[ix[t, b]] = 1
            for l in range(n_layers):
                Wx, Wh, bb = params[f"L{l}_Wx"], params[f"L{l}_Wh"], params[f"L{l}_b"]
                a = Wx.T @ x + Wh.T @ h[l] + bb
                i, f, o, g = sig(a[:H]), sig(a[H:2 * H]), sig(a[2 * H:3 * H]), np.tanh(a[3 * H:])
                c[l] = f * c[l] + i * g
                h[l] = o * np.tanh(c[l])
                x = h[l]
            outs[t, b] = params["Why"] @ x + params["by"]
    return outs


def plain_gru(params, ix, n_layers):
    T, B = ix.shape
    outs = np.zeros((T, B, params["Why"].shape[0]))
    for b in range(B):
        H = params["L0_Wh"].shape[0]
        h = [np.zeros(H) for _ in range(n_layers)]
        for t in range(T):
            x = np.zeros(params["L0_Wx"].shape[0])
            x[ix[t, b]] = 1
            for l in range(n_layers):
                Wx, Wh, bb = params[f"L{l}_Wx"], params[f"L{l}_Wh"], params[f"L{l}_b"]
                ax, ah = Wx.T @ x + bb, Wh.T @ h[l]
                r, z = sig(ax[:H] + ah[:H]), sig(ax[H:2 * H] + ah[H:2 * H])
                n = np.tanh(ax[2 * H:] + r * ah[2 * H:])
                h[l] = (1 - z) * n + z * h[l]
                x = h[l]
            outs[t, b] = params["Why"] @ x + params["by"]
    return outs


def make(arch, layers, H=5, V=4, seed=0):
    rng = np.random.RandomState(seed)
    p = gated.init_params(arch, H, V, layers, rng)
    return {k: v + rng.randn(*v.shape) * 0.3 for k, v in p.items()}  # nonzero biases too


def logits(arch, params, ix, state):
    top, _, _ = gated.stack_forward(arch, params, ix, state)
    return top @ params["Why"].T + params["by"]


@pytest.mark.parametrize("arch,plain", [("lstm", plain_lstm), ("gru", plain_gru)])
@pytest.mark.parametrize("layers", [1, 2])
def test_forward_matches_plain_loop(arch, plain, layers):
    p = make(arch, layers)
    ix = np.random.RandomState(1).randint(0, 4, size=(7, 3))
    got = logits(arch, p, ix, gated.zero_state(arch, p, 3))
    np.testing.assert_allclose(got, plain(p, ix, layers), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("arch", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("layers", [1, 2])
def test_gradients_match_central_differences(arch, layers):
    p = make(arch, layers, seed=layers)
    rng = np.random.RandomState(2)
    X, Y = rng.randint(0, 4, size=(6, 3)), rng.randint(0, 4, size=(6, 3))
    # a nonzero start state, so the gradient through the carried state is exercised too
    state = [tuple(rng.randn(3, 5) * 0.5 for _ in s) for s in gated.zero_state(arch, p, 3)]
    _, grads, _ = gated.loss_and_grads(arch, p, X, Y, state)
    assert set(grads) == set(p)
    worst, checked = 0.0, 0
    for name, W in p.items():  # every parameter
        flat = W.reshape(-1)
        for j in range(flat.size):
            old = flat[j]
            flat[j] = old + 1e-5
            lp = gated.loss_and_grads(arch, p, X, Y, state)[0]
            flat[j] = old - 1e-5
            lm = gated.loss_and_grads(arch, p, X, Y, state)[0]
            flat[j] = old
            num, ana = (lp - lm) / 2e-5, grads[name].reshape(-1)[j]
            # below ~1e-6 the central difference itself is rounding noise (1e-16 / 1e-5 per loss)
            if abs(num) + abs(ana) > 1e-6:
                worst = max(worst, abs(num - ana) / (abs(num) + abs(ana)))
                checked += 1
    assert checked > 0.7 * sum(W.size for W in p.values()) and worst < 1e-5, (worst, checked)


@pytest.mark.parametrize("arch", ["lstm", "gru"])
def test_state_carries_across_chunks(arch):
    p = make(arch, 2)
    ix = np.random.RandomState(3).randint(0, 4, size=(10, 2))
    whole = logits(arch, p, ix, gated.zero_state(arch, p, 2))
    top, _, st = gated.stack_forward(arch, p, ix[:4], gated.zero_state(arch, p, 2))
    rest = logits(arch, p, ix[4:], st)
    np.testing.assert_allclose(rest, whole[4:], atol=1e-12)


def test_float32_stays_float32():
    p = {k: v.astype(np.float32) for k, v in make("lstm", 1).items()}
    X = np.zeros((3, 2), dtype=np.int64)
    loss, grads, st = gated.loss_and_grads("lstm", p, X, X, gated.zero_state("lstm", p, 2))
    assert all(g.dtype == np.float32 for g in grads.values())
    assert st[0][0].dtype == np.float32


@pytest.mark.parametrize("arch", ["lstm", "gru", "rnn"])
def test_reused_buffers_give_the_same_step_as_fresh_ones(arch):
    """loss_and_grads with a kept `work` dict: every buffer is fully rewritten on each call."""
    layers = 1 if arch == "rnn" else 2
    p = make(arch, layers)
    rng = np.random.RandomState(4)
    work, state = {}, gated.zero_state(arch, p, 3)
    for _ in range(3):
        X, Y = rng.randint(0, 4, size=(6, 3)), rng.randint(0, 4, size=(6, 3))
        fresh_loss, fresh_grads, fresh_state = gated.loss_and_grads(arch, p, X, Y, state)
        loss, grads, state = gated.loss_and_grads(arch, p, X, Y, state, work)
        assert loss == fresh_loss and work
        for k in grads:
            np.testing.assert_array_equal(grads[k], fresh_grads[k])
        for a, b in zip(state, fresh_state):
            np.testing.assert_array_equal(a[0], b[0])
