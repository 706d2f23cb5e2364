import os
import subprocess
import sys

import numpy as np
import pytest

from interpret.model.model import Model
from interpret.model.sample import sample
from interpret.train.gist import TrainState, effective_seq_length, loss_and_grads, read_text, train

from conftest import SHARED
TEXT = ("It was the best of times, it was the worst of times; \"quoted (nested) text\" here.\n" * 12)


# ---- the oracle: the gist's update rule, written plainly (one-hot, dict of time steps) ---------
def gist_train(text, iters, H=100, L=25, lr=0.1, seed=0):
    np.random.seed(seed)
    chars = sorted(set(text))
    V = len(chars)
    c2i = {c: i for i, c in enumerate(chars)}
    Wxh = np.random.randn(H, V) * 0.01
    Whh = np.random.randn(H, H) * 0.01
    Why = np.random.randn(V, H) * 0.01
    bh, by = np.zeros((H, 1)), np.zeros((V, 1))
    params = [Wxh, Whh, Why, bh, by]
    mems = [np.zeros_like(p) for p in params]
    n = p = 0
    while n < iters:
        if p + L + 1 >= len(text) or n == 0:
            hprev, p = np.zeros((H, 1)), 0
        inputs = [c2i[c] for c in text[p:p + L]]
        targets = [c2i[c] for c in text[p + 1:p + L + 1]]
        xs, hs, ps = {}, {-1: hprev}, {}
        for t in range(len(inputs)):
            xs[t] = np.zeros((V, 1))
            xs[t][inputs[t]] = 1
            hs[t] = np.tanh(np.dot(Wxh, xs[t]) + np.dot(Whh, hs[t - 1]) + bh)
            y = np.dot(Why, hs[t]) + by
            ps[t] = np.exp(y) / np.sum(np.exp(y))
        grads = [np.zeros_like(q) for q in params]
        dWxh, dWhh, dWhy, dbh, dby = grads
        dhnext = np.zeros((H, 1))
        for t in reversed(range(len(inputs))):
            dy = np.copy(ps[t])
            dy[targets[t]] -= 1
            dWhy += np.dot(dy, hs[t].T)
            dby += dy
            dh = np.dot(Why.T, dy) + dhnext
            dhraw = (1 - hs[t] * hs[t]) * dh
            dbh += dhraw
            dWxh += np.dot(dhraw, xs[t].T)
            dWhh += np.dot(dhraw, hs[t - 1].T)
            dhnext = np.dot(Whh.T, dhraw)
        for g in grads:
            np.clip(g, -5, 5, out=g)
        hprev = hs[len(inputs) - 1]
        for q, g, m in zip(params, grads, mems):
            m += g * g
            q += -lr * g / np.sqrt(m + 1e-8)
        p += L
        n += 1
    return dict(zip(["Wxh", "Whh", "Why", "bh", "by"], [Wxh, Whh, Why, bh[:, 0], by[:, 0]]))


def max_diff(a, b):
    return max(float(np.abs(a[k] - b[k]).max()) for k in ("Wxh", "Whh", "Why", "bh", "by"))


def test_parity_with_the_gists_update_rule():
    text = TEXT * 3
    oracle = gist_train(text, 200, H=32)
    state = TrainState.fresh(text, 32, 25, 0.1, 0)
    train(state, text, 200)
    assert max_diff(oracle, state.model.params) <= 1e-9


@pytest.mark.skipif(not (SHARED / "reference" / "min_char_rnn.py").exists(), reason="no ../shared")
def test_parity_with_the_reference_script(tmp_path):
    src = SHARED / "corpora" / "tinyshakespeare.txt"
    subprocess.run([sys.executable, str(SHARED / "reference" / "min_char_rnn.py"), str(src),
                    "--iters", "200", "--out", str(tmp_path / "ref.npz"), "--print-every", "0"],
                   check=True, capture_output=True)
    ref = Model.load(tmp_path / "ref.npz")
    text = read_text(src)
    state = TrainState.fresh(text, 100, 25, 0.1, 0)
    train(state, text, 200)
    assert ref.chars == state.model.chars
    assert max_diff(ref.params, state.model.params) <= 1e-9


def test_gradient_check():
    """Analytic gradients against central differences (the gist's gradCheck), rel. error < 1e-5."""
    rng = np.random.RandomState(1)
    H, V, T = 10, 7, 12
    params = {"Wxh": rng.randn(H, V) * 0.5, "Whh": rng.randn(H, H) * 0.5, "Why": rng.randn(V, H) * 0.5,
              "bh": rng.randn(H) * 0.1, "by": rng.randn(V) * 0.1}
    inputs, targets = rng.randint(V, size=T), rng.randint(V, size=T)
    hprev = rng.randn(H) * 0.5
    _, grads, _ = loss_and_grads(params, inputs, targets, hprev)
    assert all(np.abs(g).max() < 5 for g in grads.values())  # clipping inactive: exact gradients
    delta, worst = 1e-5, 0.0
    for name, p in params.items():
        for _ in range(15):
            i = tuple(rng.randint(s) for s in p.shape)
            old = p[i]
            p[i] = old + delta
            lp = loss_and_grads(params, inputs, targets, hprev)[0]
            p[i] = old - delta
            lm = loss_and_grads(params, inputs, targets, hprev)[0]
            p[i] = old
            num, ana = (lp - lm) / (2 * delta), grads[name][i]
            if abs(num) + abs(ana) > 1e-9:
                worst = max(worst, abs(num - ana) / abs(num + ana))
    assert worst < 1e-5


def test_resume_reaches_the_same_parameters(tmp_path):
    straight = TrainState.fresh(TEXT, 16, 10, 0.1, 0)
    train(straight, TEXT, 60)
    ck = tmp_path / "ck.npz"
    first = TrainState.fresh(TEXT, 16, 10, 0.1, 0)
    train(first, TEXT, 30, checkpoint_path=ck)
    resumed = TrainState.load(ck, TEXT)
    assert resumed.n == 30
    train(resumed, TEXT, 60, checkpoint_path=ck)
    for k in straight.model.params:
        np.testing.assert_array_equal(straight.model.params[k], resumed.model.params[k])
    assert resumed.smooth_loss == straight.smooth_loss


def test_ctrl_c_saves_a_checkpoint_that_resumes_exactly(tmp_path):
    ck = tmp_path / "ck.npz"
    state = TrainState.fresh(TEXT, 16, 10, 0.1, 0)

    def interrupt(n, loss):
        if n == 23:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(state, TEXT, 50, checkpoint_path=ck, on_progress=interrupt)
    resumed = TrainState.load(ck, TEXT)
    assert resumed.n == 23
    train(resumed, TEXT, 50)
    straight = TrainState.fresh(TEXT, 16, 10, 0.1, 0)
    train(straight, TEXT, 50)
    assert max_diff(straight.model.params, resumed.model.params) == 0.0
    with pytest.raises(ValueError, match="different text"):
        TrainState.load(ck, TEXT + "x")


def test_short_text_trains_on_a_shortened_window():
    assert effective_seq_length(5, 25) == 4
    state = TrainState.fresh("hello", 8, 25, 0.1, 0)
    train(state, "hello", 30)
    assert state.n == 30 and np.isfinite(state.smooth_loss)
    with pytest.raises(ValueError, match="at least 2"):
        effective_seq_length(1, 25)


def test_training_lowers_the_loss():
    state = TrainState.fresh(TEXT, 32, 25, 0.1, 0)
    start = state.smooth_loss / 25
    train(state, TEXT, 400)
    assert state.smooth_loss / 25 < start - 0.5


def test_sampling_options():
    state = TrainState.fresh(TEXT, 32, 25, 0.1, 0)
    train(state, TEXT, 300)
    m = state.model
    a = sample(m, 50, prime="It was", seed=3)
    assert a.startswith("It was") and len(a) == 56
    assert sample(m, 50, prime="It was", seed=3) == a
    g1 = sample(m, 40, prime="the ", argmax=True, seed=1)
    g2 = sample(m, 40, prime="the ", argmax=True, seed=2)
    assert g1 == g2  # greedy ignores the seed
    cold = sample(m, 400, temperature=0.2, seed=0)
    hot = sample(m, 400, temperature=3.0, seed=0)
    trigrams = lambda s: len({s[i:i + 3] for i in range(len(s) - 2)})
    assert trigrams(cold) < trigrams(hot)  # low temperature repeats the likely paths
    with pytest.raises(ValueError, match="temperature"):
        sample(m, 5, temperature=0)
    with pytest.raises(ValueError, match="vocabulary"):
        sample(m, 5, prime="\u00e9")


def test_read_text_errors(tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "bin.txt").write_bytes(b"\x00\x01\x02abc")
    (tmp_path / "latin.txt").write_bytes("caf\u00e9".encode("latin-1"))
    (tmp_path / "crlf.txt").write_bytes(b"a\r\nb\rc")
    with pytest.raises(ValueError, match="empty"):
        read_text(tmp_path / "empty.txt")
    with pytest.raises(ValueError, match="binary"):
        read_text(tmp_path / "bin.txt")
    with pytest.raises(ValueError, match="--encoding"):
        read_text(tmp_path / "latin.txt")
    assert read_text(tmp_path / "latin.txt", "latin-1") == "caf\u00e9"
    assert read_text(tmp_path / "crlf.txt") == "a\r\nb\rc"  # no newline translation
    with pytest.raises(ValueError, match="directory"):
        read_text(tmp_path)
    assert os.path.exists(tmp_path / "crlf.txt")


@pytest.mark.parametrize("scale", [0.3, 12.0])  # 12: large weights, gradients hit the +-5 clip
def test_fast_step_equals_the_plain_step_bit_for_bit(scale):
    """GistStep (flat buffers, reversed time, einsum sums) == loss_and_grads + the gist's Adagrad."""
    from interpret.train.faithful import GistStep
    rng = np.random.RandomState(3)
    H, V, T, lr = 24, 11, 9, 0.1
    plain = {"Wxh": rng.randn(H, V) * scale, "Whh": rng.randn(H, H) * scale,
             "Why": rng.randn(V, H) * scale, "bh": rng.randn(H) * 0.1, "by": rng.randn(V) * 0.1}
    plain_mem = {k: np.abs(rng.randn(*v.shape)) * 0.01 for k, v in plain.items()}
    fast = {k: v.copy() for k, v in plain.items()}
    fast_mem = {k: v.copy() for k, v in plain_mem.items()}
    step = GistStep(fast, fast_mem, T, lr)
    step.bind(fast, fast_mem)
    h_plain = h_fast = rng.randn(H) * 0.5
    clipped = 0
    for _ in range(30):
        inputs = rng.randint(V, size=T)
        inputs[:3] = inputs[3]  # repeated characters: the one-hot gradient columns accumulate
        targets = rng.randint(V, size=T)
        loss, grads, h_plain = loss_and_grads(plain, inputs, targets, h_plain)
        clipped += sum(int((np.abs(g) == 5).sum()) for g in grads.values())
        for k in plain:
            plain_mem[k] += grads[k] * grads[k]
            plain[k] += -lr * grads[k] / np.sqrt(plain_mem[k] + 1e-8)
        fast_loss, h_fast = step.step(inputs, targets, h_fast)
        assert abs(fast_loss - loss) <= 1e-12 * abs(loss)
        np.testing.assert_array_equal(h_fast, h_plain)
    for k in plain:
        np.testing.assert_array_equal(fast[k], plain[k])
        np.testing.assert_array_equal(fast_mem[k], plain_mem[k])
    assert clipped > 0 or scale < 1  # the large-weight run must exercise the clip


def test_short_text_starts_its_smoothed_loss_at_uniform_per_character():
    from interpret.train.gist import TrainState
    st = TrainState.fresh("hello", 8, 25, 0.1, 0)  # the window shrinks to 4 characters
    assert st.smooth_loss / 4 == pytest.approx(np.log(4))  # uniform over h, e, l, o; not 7.85
