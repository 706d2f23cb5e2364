"""The inference kernel (model/infer.py) and gated lanes (model/gated_lanes.py) against their plain
forms: Model.run per document (the training forward), float64 and float32; only what is asked."""
import numpy as np
import pytest

from interpret.model import gated_lanes, stack
from interpret.model.infer import GATES, Net, Runner
from interpret.model.lanes import log_softmax_pick
from interpret.model.model import Model
from interpret.recording import recorder as R

CHARS = list('\n "().abcde')


def model(arch, layers=2, seed=0, bhn=False):
    m = Model.init(CHARS, hidden_size=6, arch=arch, n_layers=layers if arch != "rnn" else 1, seed=seed)
    rng = np.random.RandomState(seed)
    for v in m.params.values():
        v += rng.randn(*v.shape) * 0.5
    if bhn:
        m.params["L0_bhn"] = rng.randn(6)
    return m


def docs_of(rng, n_docs):
    return ["".join(rng.choice(CHARS, size=int(rng.integers(1, 120)))) for _ in range(n_docs)]


def test_gate_names_are_the_stacks():
    for arch in ("lstm", "gru", "rnn_stack"):
        assert GATES[arch] == stack.GATE_ARRAYS[arch]


@pytest.mark.parametrize("arch,bhn", [("lstm", False), ("gru", False), ("gru", True), ("rnn_stack", False),
                                      ("rnn", False)])
def test_chunked_kernel_equals_model_run(arch, bhn):
    m = model(arch, bhn=bhn)
    ix, _ = m.encode('a "bc." d(e)\n "dd" (a) b.\n' * 3)
    acts, _, _ = m.run(ix)
    net = Net(m.arch, m.params, np.float64)
    run, state, got = Runner(net), net.zero_state(1), {}
    for a in range(0, len(ix), 7):  # chunk seams carry the state
        out, _, state = run.run(ix[a:a + 7, None], state)
        for k, v in out.items():
            got.setdefault(k, []).append(v[:, 0].copy())
    assert sorted(got) == sorted(acts)
    for k in acts:
        np.testing.assert_allclose(np.concatenate(got[k]), acts[k], rtol=0, atol=1e-12)


@pytest.mark.parametrize("arch", ["lstm", "gru", "rnn_stack"])
@pytest.mark.parametrize("lanes", [1, 3, 1000])
def test_documents_in_gated_lanes_equal_each_document_alone(arch, lanes, monkeypatch):
    """float64 outputs: float64 lanes, with resets inside lanes and chunk seams == Model.run per doc."""
    monkeypatch.setattr(gated_lanes, "MAX_STEPS", 16)
    m = model(arch, bhn=arch == "gru")
    docs = docs_of(np.random.default_rng(lanes), 25)
    starts = np.cumsum([0] + [len(d) for d in docs])
    ix = [m.encode(d)[0] for d in docs]
    outs = {(l, k): np.empty((starts[-1], n)) for l, k, n in m.array_list()}
    loss, seen = np.empty(starts[-1]), []
    R.fill_arrays(m, np.concatenate(ix), starts[:-1], outs, loss, progress=seen.append, lanes=lanes)
    assert sum(seen) == starts[-1]
    for d, a, b in zip(ix, starts[:-1], starts[1:]):
        acts, ys, _ = m.run(d)
        for k in acts:
            np.testing.assert_allclose(outs[k][a:b], acts[k], rtol=0, atol=1e-12)
        want = np.append(log_softmax_pick(ys[:-1], d[1:]), np.nan)
        np.testing.assert_allclose(loss[a:b], want, rtol=1e-10, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("lanes", [1, 4])
def test_float32_gated_lanes_stay_within_float32_error_and_record_only_what_is_asked(lanes):
    m = model("lstm")
    docs = docs_of(np.random.default_rng(3), 12)
    starts = np.cumsum([0] + [len(d) for d in docs])
    ix = [m.encode(d)[0] for d in docs]
    outs = {(1, "h"): np.full((starts[-1], 6), np.nan, np.float32),
            (0, "c"): np.full((starts[-1], 6), np.nan, np.float32)}
    R.fill_arrays(m, np.concatenate(ix), starts[:-1], outs, None, lanes=lanes)
    for d, a, b in zip(ix, starts[:-1], starts[1:]):
        acts, _, _ = m.run(d)
        for k in outs:
            np.testing.assert_allclose(outs[k][a:b], acts[k], rtol=1e-5, atol=1e-5)


def test_the_kernel_returns_only_the_arrays_wanted():
    m = model("lstm")
    net = Net("lstm", m.params, np.float32)
    out, top, _ = Runner(net).run(np.zeros((5, 2), np.int64), net.zero_state(2), lambda l, k: k == "c")
    assert sorted(out) == [(0, "c"), (0, "h"), (1, "c"), (1, "h")] and top.shape == (5, 2, 6)
