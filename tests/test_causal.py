import numpy as np
import pytest

from interpret.analysis import causal
from interpret.analysis import gates
from conftest import small_model as model

from interpret.model import step
from interpret.model.model import Model
from interpret.model.sample import sample
from interpret.recording.recorder import record



def run_losses(m, ix):
    _, ys, _ = m.run(ix)
    ys = ys[:-1]
    lse = np.log(np.exp(ys - ys.max(1, keepdims=True)).sum(1)) + ys.max(1)
    return lse - ys[np.arange(len(ys)), ix[1:]]


TEXT = 'a "bc." d(e)\n "dd" (a) b.\n' * 3


@pytest.mark.parametrize("arch", ["rnn", "lstm", "gru"])
def test_intact_stream_equals_model_run(arch):
    m = model(arch)
    ix, _ = m.encode(TEXT)
    L = causal.losses(m, ix, 0, "h", [-1], [0.0], dtype=np.float64)
    np.testing.assert_allclose(L[0], run_losses(m, ix), atol=1e-10)


@pytest.mark.parametrize("arch,layer", [("rnn", 0), ("lstm", 0), ("lstm", 1)])
def test_zeroing_h_equals_cutting_its_outgoing_weights(arch, layer):
    m, j = model(arch), 2
    ix, _ = m.encode(TEXT)
    cut = Model({k: v.copy() for k, v in m.params.items()}, m.chars, arch=arch)
    if arch == "rnn":
        cut.params["Whh"][:, j] = 0
        cut.params["Why"][:, j] = 0
    else:
        cut.params[f"L{layer}_Wh"][j] = 0
        nxt = f"L{layer + 1}_Wx"
        if nxt in cut.params:
            cut.params[nxt][j] = 0
        else:
            cut.params["Why"][:, j] = 0
    L = causal.losses(m, ix, layer, "h", [-1, j], [0.0, 0.0], dtype=np.float64)
    np.testing.assert_allclose(L[1], run_losses(cut, ix), atol=1e-10)
    assert np.abs(L[1] - L[0]).max() > 1e-3  # the unit mattered


@pytest.mark.parametrize("arch,array", [("lstm", "c"), ("lstm", "h"), ("gru", "h")])
def test_clamped_unit_stays_at_its_value(arch, array):
    m = model(arch)
    W = step.weights(m)
    state = step.start_state(m, 2, np.float64)
    spec = {(1, array): (np.array([1]), np.array([3]), np.array([0.7]))}
    for i in m.encode(TEXT[:10])[0]:
        _, state = step.step(m, W, np.array([i, i]), state, spec)
        k = 0 if array == "h" else 1
        assert state[1][k][1, 3] == 0.7 and state[1][k][0, 3] != 0.7  # stream 0 untouched


def test_ablate_reports_groups_and_random_baseline():
    m = model("lstm")
    res = causal.ablate(m, TEXT, 2, layer=1, array="c", mode="mean", n_random=4, seed=1)
    names = [r["group"] for r in res["rows"]]
    assert names == ["all characters", 'before a "', "before a newline", "before ) ] }"]
    assert res["rows"][1]["n_chars"] == TEXT[1:].count('"')
    assert len(res["random_units"]) == 4 and 2 not in res["random_units"]
    for r in res["rows"]:
        assert 0 < r["p_random"] <= 1
    with pytest.raises(ValueError, match="out of range"):
        causal.ablate(m, TEXT, 6)
    with pytest.raises(ValueError, match="arrays h, c"):
        causal.ablate(m, TEXT, 1, array="f")


def test_clamped_sample_is_repeatable_and_differs():
    m = model("lstm")
    a = sample(m, 40, clamp=[(1, 5.0)], array="c", seed=3, prime="a ")
    assert a == sample(m, 40, clamp=[(1, 5.0)], array="c", seed=3, prime="a ")
    assert a.startswith("a ") and len(a) == 42
    assert a != sample(m, 40, seed=3, prime="a ")


def test_gate_saturation_matches_direct_count(tmp_path):
    m = model("lstm")
    rec = record(m, [("t", TEXT)], tmp_path / "r.rec")
    sat = gates.saturation(rec)
    assert [(s["layer"], s["array"]) for s in sat] == [(0, "i"), (0, "f"), (0, "o"), (1, "i"), (1, "f"), (1, "o")]
    acts, _, _ = m.run(m.encode(TEXT)[0])
    for s in sat:
        a = acts[(s["layer"], s["array"])].astype(np.float32)
        np.testing.assert_allclose(s["left"], (a < 0.1).mean(0))
        np.testing.assert_allclose(s["right"], (a > 0.9).mean(0))
    html = gates.page(sat, "t <x>")
    assert "forget gate" in html and "t &lt;x&gt;" in html
    assert "How to read this" in html and "What the paper saw" in html
    j = gates.as_json(sat, rec.n_chars)
    assert j["gates"][1]["name"] == "forget gate" and len(j["gates"][1]["left"]) == 6


@pytest.mark.parametrize("arch,layer,array", [("rnn", 0, "h"), ("lstm", 0, "c"), ("lstm", 1, "h"),
                                              ("gru", 1, "h"), ("gru", 0, "h")])
def test_batched_ablation_equals_each_unit_ablated_one_at_a_time(arch, layer, array):
    """losses(): every ablation a lane of one batched pass (layers below `layer` shared) ==
    losses_by_step() with one ablated stream beside the intact one, unit by unit, in float64."""
    m = model(arch)
    ix, _ = m.encode(TEXT)
    cols, values = [-1, 2, 0, 5, 3], [0.0, 0.0, 0.3, -0.2, 0.0]
    L = causal.losses(m, ix, layer, array, cols, values, dtype=np.float64)
    for b in range(1, len(cols)):
        one = causal.losses_by_step(m, ix, layer, array, [-1, cols[b]], [0.0, values[b]], dtype=np.float64)
        np.testing.assert_allclose(L[b], one[1], rtol=0, atol=1e-10)
        np.testing.assert_allclose(L[0], one[0], rtol=0, atol=1e-10)


@pytest.mark.parametrize("arch,layer,array,dtype", [("lstm", 0, "c", np.float64), ("lstm", 1, "h", np.float32),
                                                    ("gru", 1, "h", np.float64), ("gru", 0, "h", np.float32),
                                                    ("rnn", 0, "h", np.float32)])
def test_streams_split_over_threads_give_the_plain_losses(arch, layer, array, dtype):
    """losses(threads=k): each thread steps some streams with its own state, carried over three
    chunks, == losses_by_step (one model.step per character, float64); float32 (the compiled
    kernels, whose products may sum in another order for fewer rows) also == one thread's."""
    m = model(arch)
    ix, _ = m.encode(TEXT * 8)                             # 623 steps: three chunks
    assert len(ix) - 1 > 2 * causal.CHUNK_STEPS
    cols, values = [-1, 2, 0, 5, 3], [0.0, 0.0, 0.3, -0.2, 0.0]
    plain = causal.losses_by_step(m, ix, layer, array, cols, values, dtype=np.float64)
    assert np.abs(plain[1:] - plain[0]).max() > 1e-3       # the ablations do change the losses
    one = causal.losses(m, ix, layer, array, cols, values, dtype=dtype)
    for threads in (1, 2, 3, 5, 8):                        # 8: more threads than streams
        got = causal.losses(m, ix, layer, array, cols, values, dtype=dtype, threads=threads)
        np.testing.assert_allclose(got, plain, rtol=0, atol=1e-10 if dtype == np.float64 else 1e-4)
        np.testing.assert_allclose(got, one, rtol=0, atol=1e-12 if dtype == np.float64 else 2e-6)


@pytest.mark.parametrize("arch,layer,array", [("rnn", 0, "h"), ("lstm", 0, "c"), ("lstm", 1, "h"), ("gru", 1, "h")])
def test_unit_means_are_the_means_of_model_run(arch, layer, array):
    """The 'hold at mean' values: one stream through the batched kernel, chunk by chunk (three
    here), == the mean of Model.run's array; float32 (the default) within float32 rounding."""
    m = model(arch)
    ix, _ = m.encode(TEXT * 8)
    acts, _, _ = m.run(ix, logits=False)
    want = acts[(layer, array)].mean(axis=0)
    assert np.ptp(want) > 1e-3                               # units that differ: a real check
    np.testing.assert_allclose(causal.unit_means(m, ix, layer, array, np.float64), want, rtol=0, atol=1e-12)
    np.testing.assert_allclose(causal.unit_means(m, ix, layer, array), want, rtol=0, atol=1e-6)


def test_a_thread_that_fails_ends_the_pass_with_its_error(monkeypatch):
    m = model("lstm")
    ix, _ = m.encode(TEXT * 8)
    real = causal._Part.chunk

    def chunk(self, ix, a, S, WhyT, out):
        if a > 0 and self.streams.start > 0:
            raise MemoryError("no room for this part")
        return real(self, ix, a, S, WhyT, out)

    monkeypatch.setattr(causal._Part, "chunk", chunk)
    steps = []
    with pytest.raises(MemoryError, match="no room"):
        causal.losses(m, ix, 0, "h", [-1, 2, 0, 5], [0.0] * 4, threads=2, progress=steps.append)
    assert steps == [causal.CHUNK_STEPS]                   # the first chunk only


def test_ablate_fast_and_plain_paths_give_the_same_report():
    m = model("lstm")
    fast = causal.ablate(m, TEXT, 2, layer=1, array="c", mode="mean", n_random=4, seed=1)
    plain = causal.ablate(m, TEXT, 2, layer=1, array="c", mode="mean", n_random=4, seed=1, by_step=True)
    assert fast["random_units"] == plain["random_units"]
    for a, b in zip(fast["rows"], plain["rows"]):
        assert a["group"] == b["group"] and a["n_chars"] == b["n_chars"]
        for k in ("unit_delta", "random_mean", "base_loss"):
            assert abs(a[k] - b[k]) < 1e-5  # float32 both ways, summed in another order


def test_ablate_reports_progress_through_the_factory():
    m, seen = model("gru"), []

    class Bar:
        def __init__(self, total, label):
            seen.append((total, label))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n):
            seen.append(n)

    causal.ablate(m, TEXT, 1, n_random=3, progress=Bar)
    assert seen[0] == (len(TEXT) - 1, "ablating") and sum(seen[1:]) == len(TEXT) - 1
