import json

import numpy as np
import pytest

from interpret.model.model import Model


def gist_params(H=8, V=5, seed=0):
    rng = np.random.RandomState(seed)
    return dict(Wxh=rng.randn(H, V) * 0.3, Whh=rng.randn(H, H) * 0.3, Why=rng.randn(V, H) * 0.3,
                bh=rng.randn(H, 1) * 0.1, by=rng.randn(V, 1) * 0.1)


def plain_step(P, ix, h):
    """The gist's forward step with a one-hot input column."""
    x = np.zeros((P["Wxh"].shape[1], 1))
    x[ix] = 1
    h = np.tanh(np.dot(P["Wxh"], x) + np.dot(P["Whh"], h) + P["bh"])
    return h, np.dot(P["Why"], h) + P["by"]


def test_gist_saved_file_loads_unchanged(tmp_path):
    P = gist_params()
    chars = sorted(set("abcde"))
    path = tmp_path / "gist.npz"
    np.savez(path, **P, chars=np.array(chars))  # exactly what the README tells gist users to do
    m = Model.load(path)
    assert m.arch == "rnn" and m.hidden_size == 8 and m.vocab_size == 5 and m.chars == chars
    assert m.params["bh"].shape == (8,)  # (H, 1) columns accepted, held 1-D
    ix = np.array([0, 3, 1, 4, 4, 2])
    acts, ys, h = m.run(ix)
    hp = np.zeros((8, 1))
    for t, i in enumerate(ix):
        hp, y = plain_step(P, i, hp)
        np.testing.assert_allclose(acts[(0, "h")][t], hp[:, 0], atol=1e-12)
        np.testing.assert_allclose(ys[t], y[:, 0], atol=1e-12)
    np.testing.assert_allclose(h, hp[:, 0], atol=1e-12)
    assert len(m.sha256) == 64


def test_save_load_round_trip_keeps_meta(tmp_path):
    m = Model.init(list("ab c"), hidden_size=6, seed=3, meta={"iterations": 7})
    m.save(tmp_path / "m.npz")
    m2 = Model.load(tmp_path / "m.npz")
    assert m2.meta["iterations"] == 7 and m2.meta["arch"] == "rnn"
    for k in m.params:
        np.testing.assert_array_equal(m.params[k], m2.params[k])
    assert m2.chars == m.chars
    assert not list(tmp_path.glob("*.tmp"))


def test_init_draws_in_the_gists_order():
    m = Model.init(list("abc"), hidden_size=4, seed=5)
    np.random.seed(5)
    Wxh = np.random.randn(4, 3) * 0.01
    Whh = np.random.randn(4, 4) * 0.01
    Why = np.random.randn(3, 4) * 0.01
    np.testing.assert_array_equal(m.params["Wxh"], Wxh)
    np.testing.assert_array_equal(m.params["Whh"], Whh)
    np.testing.assert_array_equal(m.params["Why"], Why)


def test_pickled_file_is_refused(tmp_path):
    path = tmp_path / "evil.npz"
    P = gist_params()
    np.savez(path, **P, chars=np.array(list("abcde"), dtype=object))
    with pytest.raises(ValueError, match="pickled"):
        Model.load(path)


@pytest.mark.parametrize("name,shape", [("Whh", (8, 7)), ("Why", (4, 8)), ("bh", (9,))])
def test_wrong_shapes_are_named(tmp_path, name, shape):
    P = gist_params()
    P[name] = np.zeros(shape)
    np.savez(tmp_path / "m.npz", **P, chars=np.array(list("abcde")))
    with pytest.raises(ValueError, match=name):
        Model.load(tmp_path / "m.npz")


def test_truncated_nan_and_missing_chars(tmp_path):
    P = gist_params()
    np.savez(tmp_path / "ok.npz", **P, chars=np.array(list("abcde")))
    raw = (tmp_path / "ok.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="not a readable"):
        Model.load(tmp_path / "cut.npz")
    P2 = dict(P, Whh=np.full((8, 8), np.nan))
    np.savez(tmp_path / "nan.npz", **P2, chars=np.array(list("abcde")))
    with pytest.raises(ValueError, match="NaN"):
        Model.load(tmp_path / "nan.npz")
    np.savez(tmp_path / "nochars.npz", **P)
    with pytest.raises(ValueError, match="chars"):
        Model.load(tmp_path / "nochars.npz")
    np.savez(tmp_path / "badvocab.npz", **P, chars=np.array(list("abcd")))
    with pytest.raises(ValueError, match="vocabulary of 4"):
        Model.load(tmp_path / "badvocab.npz")
    np.savez(tmp_path / "badmeta.npz", **P, chars=np.array(list("abcde")), meta=np.array("{oops"))
    with pytest.raises(ValueError, match="meta"):
        Model.load(tmp_path / "badmeta.npz")
    with pytest.raises(FileNotFoundError):
        Model.load(tmp_path / "absent.npz")


def test_encode_unknown_policies():
    m = Model.init(list(" abc"), hidden_size=3, seed=0)
    with pytest.raises(ValueError) as e:
        m.encode("abxxz c")
    msg = str(e.value)
    assert "'x' x2" in msg and "'z' x1" in msg and "--unknown skip" in msg
    ix, kept = m.encode("abxxz c", unknown="skip")
    assert kept == "ab c" and list(ix) == [1, 2, 0, 3]
    ix, kept = m.encode("abxz", unknown="space")
    assert kept == "ab  "
    with pytest.raises(ValueError, match="policy"):
        m.encode("a", unknown="drop")


def test_meta_is_json_in_file(tmp_path):
    m = Model.init(list("xy"), hidden_size=2, seed=0, meta={"corpus": "t.txt"})
    m.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as z:
        assert json.loads(str(z["meta"]))["corpus"] == "t.txt"
        assert sorted(z.files) == sorted(["Wxh", "Whh", "Why", "bh", "by", "chars", "meta"])
