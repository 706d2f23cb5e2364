"""The single clamped step and the one sampler against their plain forms: Model.run (the batched
forward), the gist's one-hot step and sample(); train_model's progress and log protocol."""
import numpy as np
import pytest

from conftest import small_model as model

from interpret.model import step
from interpret.model.sample import sample
from interpret.train.run import Summary, train_model

TEXT = 'a "bc." d(e)\n "dd" (a) b.\n' * 3


@pytest.mark.parametrize("arch", ["rnn", "lstm", "gru"])
def test_unclamped_step_equals_model_run(arch):
    m = model(arch)
    ix, _ = m.encode(TEXT)
    acts, ys, _ = m.run(ix)
    W, state = step.weights(m), step.start_state(m, 3)
    for t, i in enumerate(ix):
        logits, state = step.step(m, W, np.full(3, i), state)
        for layer, st in enumerate(state):
            np.testing.assert_allclose(st[0], np.tile(acts[(layer, "h")][t], (3, 1)), atol=1e-12)
            if arch == "lstm":
                np.testing.assert_allclose(st[1], np.tile(acts[(layer, "c")][t], (3, 1)), atol=1e-12)
        np.testing.assert_allclose(logits, np.tile(ys[t], (3, 1)), atol=1e-12)


def gist_sample(m, h, seed_ix, n, rng):
    """The gist's sample(), one-hot vectors and column states as it writes them."""
    Wxh, Whh, Why = m.params["Wxh"], m.params["Whh"], m.params["Why"]
    bh, by = m.params["bh"][:, None], m.params["by"][:, None]
    x = np.zeros((m.vocab_size, 1))
    x[seed_ix] = 1
    out = []
    for _ in range(n):
        h = np.tanh(np.dot(Wxh, x) + np.dot(Whh, h) + bh)
        y = np.dot(Why, h) + by
        p = np.exp(y - y.max()) / np.sum(np.exp(y - y.max()))
        ix = rng.choice(range(m.vocab_size), p=p.ravel())
        x = np.zeros((m.vocab_size, 1))
        x[ix] = 1
        out.append(ix)
    return out, h


def test_vanilla_step_is_the_gists_bits():
    m = model("rnn")
    h, hg = np.random.RandomState(1).randn(6) * 0.3, None
    hg = h[:, None]
    P = m.params
    for i in m.encode(TEXT)[0]:
        x = np.zeros((m.vocab_size, 1))
        x[i] = 1
        hg = np.tanh(np.dot(P["Wxh"], x) + np.dot(P["Whh"], hg) + P["bh"][:, None])
        h = step.rnn_step(P["Wxh"], P["Whh"], P["bh"], i, h)
        assert np.array_equal(h, hg[:, 0])


@pytest.mark.parametrize("seed", range(5))
def test_sample_is_the_gists_sample(seed):
    m = model("rnn")
    prime = "a (b"
    ix = m.encode(prime)[0]
    h = np.zeros((6, 1))
    for i in ix[:-1]:  # the primer, the gist's way
        x = np.zeros((m.vocab_size, 1))
        x[i] = 1
        h = np.tanh(np.dot(m.params["Wxh"], x) + np.dot(m.params["Whh"], h) + m.params["bh"][:, None])
    want, _ = gist_sample(m, h, ix[-1], 60, np.random.RandomState(seed))
    assert sample(m, 60, prime=prime, seed=seed) == prime + m.decode(want)


def test_clamped_sample_holds_the_unit_and_checks_it():
    m = model("lstm")
    assert sample(m, 30, clamp=[(2, 0.9)], layer=1, array="c", seed=0) != sample(m, 30, seed=0)
    with pytest.raises(ValueError, match="unit 6 is out of range"):
        sample(m, 5, clamp=[(6, 1.0)])
    with pytest.raises(ValueError, match="argmax"):
        sample(m, 5, argmax=True)


class Bar:
    """A bar of the progress protocol that remembers what it was told."""
    made = []

    def __init__(self, total, label):
        self.length, self.label, self.done, self.labels = total, label, 0, []
        Bar.made.append(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n, current_item=None):
        self.done += n
        self.labels.append(self.label)


@pytest.mark.parametrize("arch", ["rnn", "lstm"])
def test_train_model_reports_through_progress_and_log(tmp_path, arch):
    src = tmp_path / "t.txt"
    src.write_text(TEXT * 4, encoding="utf-8")
    lines, Bar.made[:] = [], []
    s = train_model(src, tmp_path / "m.npz", arch=arch, hidden=8, seq_length=400, iters=30, batch_size=1 if arch == "rnn" else 2,
                    val_every=10, sample_every=10, progress=Bar, log=lines.append)
    assert isinstance(s, Summary) and s.iterations == 30 and str(s).startswith("trained 30 iterations")
    bar, = Bar.made
    assert bar.length == 30 and bar.done == 30 and "loss" in bar.labels[-1]
    assert any(line.startswith("note: the text has") for line in lines)
    if arch == "rnn":
        assert sum("---- sample at iteration" in line for line in lines) == 3
    else:
        assert sum("validation loss" in line for line in lines) == 3 and s.best_val_loss is not None
    with pytest.raises(ValueError, match="already at iteration 30"):
        train_model(src, tmp_path / "m.npz", resume=tmp_path / "m.npz", iters=30, log=lines.append)
