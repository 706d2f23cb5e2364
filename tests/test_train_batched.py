import numpy as np
import pytest

from interpret.train import batched as tb
from interpret.model.model import Model

TEXT = ('"Come here," said the old man. "Look at this."\nShe did not move; the rain went on.\n') * 40


def fresh(arch="lstm", **kw):
    settings = dict(hidden=16, layers=1, batch_size=4, seq_length=12, lr=1e-2, val_fraction=0.1, seed=0)
    settings.update(kw)
    return tb.BatchedState.fresh(TEXT, arch, **settings)


@pytest.mark.parametrize("arch,layers", [("lstm", 1), ("gru", 2), ("rnn", 1)])
def test_loss_goes_down_on_a_small_text(arch, layers):
    st = fresh(arch, layers=layers)
    _, val = tb.split_text(TEXT, 0.1)
    before = tb.evaluate(arch, st.params, st.model.encode(val)[0], 4, 12)
    tb.train(st, TEXT, 150, val_every=50)
    after = st.meta["val_history"][-1][3]
    assert before > 3.0 and after < 0.6 * before, (before, after)
    assert st.meta["best_val_loss"] <= after and st.meta["chars_trained"] == 150 * 4 * 12


def test_resume_continues_exactly(tmp_path):
    whole = fresh()
    tb.train(whole, TEXT, 40)
    half = fresh()
    path = str(tmp_path / "ck.npz")
    tb.train(half, TEXT, 17, checkpoint_path=path)
    resumed = tb.BatchedState.load(path, TEXT)
    assert resumed.n == 17 and resumed.pos == half.pos
    tb.train(resumed, TEXT, 40, checkpoint_path=path)
    for k in whole.params:
        np.testing.assert_array_equal(whole.params[k], resumed.params[k])
    assert not list(tmp_path.glob("*.tmp"))


def test_epoch_wraps_and_resets_state():
    st = fresh(batch_size=8, seq_length=30)
    L = len(tb.split_text(TEXT, 0.1)[0]) // 8  # characters per stream
    tb.train(st, TEXT, L // 30 + 1)
    assert st.meta["epochs"] == 1 and st.pos == 30


def test_ctrl_c_saves_a_resumable_checkpoint(tmp_path):
    st, path = fresh(), str(tmp_path / "ck.npz")

    def stop(n, loss, val):
        if n == 20:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        tb.train(st, TEXT, 100, checkpoint_path=path, on_progress=stop)
    assert tb.BatchedState.load(path, TEXT).n == 20
    m = Model.load(path)
    assert m.arch == "lstm" and m.params["L0_Wx"].shape == (len(set(TEXT)), 64)
    with np.load(path) as z:
        assert z["L0_Wh"].dtype == np.float32 and "opt_m_L0_Wh" in z.files


def test_bad_settings_are_named(tmp_path):
    with pytest.raises(ValueError, match="rnn, lstm or gru"):
        fresh("tcn")
    with pytest.raises(ValueError, match="one layer"):
        fresh("rnn", layers=2)
    with pytest.raises(ValueError, match="too short"):
        tb.streams(np.arange(100), 8, 20)
    with pytest.raises(ValueError, match="different text"):
        st = fresh()
        st.save(tmp_path / "ck.npz")
        tb.BatchedState.load(tmp_path / "ck.npz", TEXT + "x")


def test_adam_matches_the_textbook_update():
    p = {"w": np.array([1.0, -2.0], dtype=np.float32)}
    g = {"w": np.array([0.5, 0.25], dtype=np.float32)}
    opt = {"m_w": np.zeros(2, np.float32), "v_w": np.zeros(2, np.float32)}
    tb.update(p, g, opt, "adam", 0.1, 1)
    # step 1: m = 0.1 g, v = 0.001 g^2, mhat = g, vhat = g^2 -> w -= lr * sign(g)
    np.testing.assert_allclose(p["w"], [0.9, -2.1], rtol=1e-5)


def test_clip_scales_the_global_norm():
    g = {"a": np.array([3.0, 0.0]), "b": np.array([4.0])}
    assert tb.clip_global_norm(g, 1.0) == pytest.approx(5.0)
    np.testing.assert_allclose(np.sqrt((g["a"] ** 2).sum() + (g["b"] ** 2).sum()), 1.0)


def test_rmsprop_matches_the_textbook_update():
    p = {"w": np.array([1.0, -2.0], dtype=np.float32)}
    g = {"w": np.array([0.5, -0.25], dtype=np.float32)}
    opt = {"v_w": np.zeros(2, np.float32)}
    tb.update(p, g, opt, "rmsprop", 0.01, 1)
    # cache = 0.05 g^2 -> step = lr * g / (sqrt(0.05) |g|) = lr * sign(g) / sqrt(0.05)
    np.testing.assert_allclose(p["w"], [1.0 - 0.01 / np.sqrt(0.05), -2.0 + 0.01 / np.sqrt(0.05)], rtol=1e-5)


def test_batched_rnn_saves_the_gists_file_format(tmp_path):
    st = fresh("rnn")
    tb.train(st, TEXT, 10, checkpoint_path=str(tmp_path / "r.npz"))
    m = Model.load(tmp_path / "r.npz")
    assert m.arch == "rnn" and m.params["Wxh"].shape == (16, len(set(TEXT)))
    np.testing.assert_array_equal(m.params["Whh"].astype(np.float32), st.params["L0_Wh"].T)
    back = tb.BatchedState.load(tmp_path / "r.npz", TEXT)
    np.testing.assert_array_equal(back.params["L0_Wx"], st.params["L0_Wx"])
    ix = m.encode(TEXT[:50])[0]  # the batched layer and Model.run agree
    top, _, _ = __import__("interpret.model.stack", fromlist=["x"]).stack_forward(
        "rnn", {k: v.astype(np.float64) for k, v in back.params.items()}, ix[:, None],
        [(np.zeros((1, 16)),)])
    np.testing.assert_allclose(top[:, 0], m.run(ix)[0][(0, "h")], atol=1e-6)


def test_reset_state_starts_every_window_from_zeros(monkeypatch):
    from interpret.model import stack as gated
    seen, real = [], gated.loss_and_grads

    def spy(arch, params, X, Y, state, work=None):
        seen.append(max(float(np.abs(s).max()) for layer in state for s in layer))
        return real(arch, params, X, Y, state, work)
    monkeypatch.setattr(gated, "loss_and_grads", spy)
    tb.train(fresh(reset_state=True), TEXT, 4)
    tb.train(fresh(), TEXT, 4)
    assert seen[:4] == [0.0] * 4 and min(seen[5:8]) > 0  # carried states are nonzero


def test_short_text_trains_on_a_shortened_window():
    st = tb.BatchedState.fresh("hello", "lstm", 8, 1, 1, 25, 2e-3, val_fraction=0.0)
    assert st.meta["seq_length"] == 4  # like the gist trainer: len(text) - 1
    tb.train(st, "hello", 3)
    assert st.n == 3 and st.meta["chars_trained"] == 12
    assert tb.BatchedState.fresh("a" * 40, "gru", 8, 1, 4, 25, 2e-3, val_fraction=0.0).meta["seq_length"] == 9
