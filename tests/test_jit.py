"""The compiled step loops (model/jit.py) against the numpy loops they replace (infer.Runner with
INTERPRET_JIT=0), float32, every architecture, with resets, clamps, lanes and chunk seams."""
import numpy as np
import pytest

from interpret.model import jit
from interpret.model.infer import Net, Runner
from interpret.model.model import Model

pytestmark = pytest.mark.skipif(not jit.enabled(), reason="numba not installed or INTERPRET_JIT=0")

CHARS = list('\n "().abcde')


def model(arch, layers=2, seed=0, bhn=False, H=6):
    m = Model.init(CHARS, hidden_size=H, arch=arch, n_layers=layers if arch != "rnn" else 1, seed=seed)
    rng = np.random.RandomState(seed)
    for v in m.params.values():
        v += rng.randn(*v.shape) * 0.3
    if bhn:
        m.params["L0_bhn"] = rng.randn(H)
    return m


def test_tanh32_is_within_2e7_of_tanh_everywhere():
    x = np.concatenate([np.linspace(-12, 12, 2_000_001), [-1e30, -50, -9, 0, 1e-30, 9, 50, 1e30]]).astype(np.float32)
    got = np.empty_like(x)
    jit.kernels().tanh_array(x, got)
    err = np.abs(got.astype(np.float64) - np.tanh(x.astype(np.float64)))
    assert err.max() < 2.5e-7
    assert np.all(np.abs(got) <= 1.0) and got[np.argmax(x == 0)] == 0.0
    assert np.all(np.abs(got[x > 10] - 1.0) <= 6e-8)  # saturates (to within an ulp below 1)
    jit.kernels().tanh_array(-x, got_neg := np.empty_like(x))
    np.testing.assert_array_equal(got_neg, -got)  # odd, exactly


def run_chunks(m, X, resets, clamp, use_jit, monkeypatch, chunk=5, threads=1):
    monkeypatch.setattr(jit, "enabled", lambda: use_jit)
    net = Net(m.arch, m.params, np.float32)
    run, state, got = Runner(net, threads), net.zero_state(X.shape[1]), {}
    for a in range(0, len(X), chunk):
        here = {t - a: lanes for t, lanes in resets.items() if a <= t < a + chunk}
        out, top, state = run.run(X[a:a + chunk], state, None, here, clamp)
        for k, v in list(out.items()) + [("top", top)]:
            got.setdefault(k, []).append(v.copy())
    return {k: np.concatenate(v) for k, v in got.items()}


@pytest.mark.parametrize("arch,bhn", [("lstm", False), ("gru", False), ("gru", True), ("rnn_stack", False),
                                      ("rnn", False)])
@pytest.mark.parametrize("B,product", [(1, "blas"), (4, "blas"), (30, "blas"), (4, "numba"), (30, "numba")])
@pytest.mark.parametrize("H", [6, 40])
def test_compiled_loops_equal_the_numpy_loops(arch, bhn, B, product, H, monkeypatch):
    """product: the (B, H) x (H, G*H) product through numpy's BLAS (B 1: gemv; 30: sgemm, through
    ctypes) or numba's np.dot (30); B 4 runs kernels.rows_dot either way. H 40: every gate loop runs
    its vectorised body (H 6 only the scalar remainder)."""
    if product == "blas" and jit.gemm() is None:
        pytest.skip("numpy's BLAS exports no cblas_sgemm here")
    if product == "numba":
        monkeypatch.setattr(jit, "gemm", lambda: None)
    m = model(arch, bhn=bhn, H=H)
    rng = np.random.default_rng(B)
    X = rng.integers(0, len(CHARS), size=(23, B))
    resets = {3: np.array([0]), 11: np.arange(B), 17: np.array([B - 1])}
    plain = run_chunks(m, X, resets, {}, False, monkeypatch)
    fast = run_chunks(m, X, resets, {}, True, monkeypatch)
    assert sorted(plain, key=str) == sorted(fast, key=str)
    # float32 rounding (tanh32's 2e-7, the products' sum order) grows with H terms a sum and with
    # the 23 recurrent steps: up to 2.4e-6 at H 40; a wrong index or offset is of order 0.1
    atol = 2e-6 if H < 16 else 1e-5
    for k in plain:
        np.testing.assert_allclose(fast[k], plain[k], rtol=0, atol=atol, err_msg=str(k))


@pytest.mark.parametrize("arch,array", [("lstm", "c"), ("lstm", "h"), ("gru", "h"), ("rnn_stack", "h")])
def test_compiled_loops_hold_clamped_units_as_the_numpy_loops(arch, array, monkeypatch):
    m = model(arch)
    X = np.random.default_rng(0).integers(0, len(CHARS), size=(19, 1))
    X = np.repeat(X, 3, axis=1)
    clamp = {(1 if array == "h" else 0, array): (np.array([1, 2]), np.array([4, 0]), np.array([0.0, 0.7]))}
    plain = run_chunks(m, X, {}, clamp, False, monkeypatch)
    fast = run_chunks(m, X, {}, clamp, True, monkeypatch)
    layer = next(iter(clamp))[0]
    np.testing.assert_array_equal(fast[(layer, array)][:, 1, 4], 0.0)
    np.testing.assert_array_equal(fast[(layer, array)][:, 2, 0], np.float32(0.7))
    for k in plain:
        np.testing.assert_allclose(fast[k], plain[k], rtol=0, atol=2e-6, err_msg=str(k))
    # the clamp changes what the layers above see: lane 0 (intact) differs from lanes 1 and 2
    assert np.abs(fast["top"][:, 0] - fast["top"][:, 1]).max() > 1e-3


@pytest.mark.parametrize("B,H", [(1, 6), (3, 7), (2, 64)])
def test_the_split_lstm_loop_equals_the_numpy_loop(B, H, monkeypatch):
    """Units split over 2 threads (blocks of unequal size when H is odd), resets, clamps of c and h."""
    m = model("lstm", H=H)
    rng = np.random.default_rng(H)
    X = rng.integers(0, len(CHARS), size=(23, B))
    resets = {4: np.array([0]), 13: np.arange(B)}
    clamp = {(0, "c"): (np.array([B - 1]), np.array([2]), np.array([0.5])),
             (1, "h"): (np.array([0]), np.array([H - 1]), np.array([-0.25]))}
    plain = run_chunks(m, X, resets, clamp, False, monkeypatch)
    split = run_chunks(m, X, resets, clamp, True, monkeypatch, threads=2)
    np.testing.assert_array_equal(split[(0, "c")][:, B - 1, 2], np.float32(0.5))
    np.testing.assert_array_equal(split[(1, "h")][:, 0, H - 1], np.float32(-0.25))
    for k in plain:
        np.testing.assert_allclose(split[k], plain[k], rtol=0, atol=3e-6, err_msg=str(k))


@pytest.mark.parametrize("arch,B", [("gru", 1), ("gru", 7), ("rnn_stack", 2), ("lstm", 7)])
def test_deeper_layers_input_terms_split_over_threads_equal_the_numpy_loop(arch, B, monkeypatch):
    """threads > 1: a deeper layer's input terms (one product for the chunk) split by rows."""
    m = model(arch, layers=3, H=7)
    X = np.random.default_rng(5).integers(0, len(CHARS), size=(21, B))
    resets = {8: np.array([0])}
    plain = run_chunks(m, X, resets, {}, False, monkeypatch, chunk=6)
    split = run_chunks(m, X, resets, {}, True, monkeypatch, chunk=6, threads=2)
    for k in plain:
        np.testing.assert_allclose(split[k], plain[k], rtol=0, atol=3e-6, err_msg=str(k))


@pytest.mark.parametrize("layers", [1, 2])
def test_a_team_that_cannot_meet_gives_up_and_the_rest_runs_on_one_thread(layers, monkeypatch):
    """numba on one thread runs the team's two blocks one after the other: the first waits at the
    barrier of step 0 in vain, gives up after TEAM_PATIENCE yields, the second finishes step 0,
    and the chunk's other steps (deeper layers: input terms in the buffer) run on one thread."""
    import numba

    from interpret.model import infer
    m = model("lstm", layers=layers, H=9)
    X = np.random.default_rng(2).integers(0, len(CHARS), size=(17, 1))
    resets = {6: np.array([0])}
    clamp = {(layers - 1, "c"): (np.array([0]), np.array([3]), np.array([0.25]))}
    plain = run_chunks(m, X, resets, clamp, False, monkeypatch, chunk=8)
    before = numba.get_num_threads()
    monkeypatch.setattr(infer, "TEAM_PATIENCE", 50)
    monkeypatch.setattr(jit, "split_threads", lambda n: (numba.set_num_threads(1), 2)[1])
    gave_up = []
    real = infer.Runner._lstm_jit

    def spy(self, *a):
        out = real(self, *a)
        gave_up.append(self.threads)
        return out
    monkeypatch.setattr(infer.Runner, "_lstm_jit", spy)
    try:
        team = run_chunks(m, X, resets, clamp, True, monkeypatch, chunk=8, threads=2)
    finally:
        numba.set_num_threads(before)
    assert gave_up[0] == 1  # the first call gave up, and the runner went on with one thread
    for k in plain:
        np.testing.assert_allclose(team[k], plain[k], rtol=0, atol=3e-6, err_msg=str(k))


def test_the_team_barrier_gives_up_after_the_step_it_waited_at():
    """Two blocks on one thread: block 0 does step 0 and gives up; block 1 does step 0 and stops:
    step 0 is whole, nothing of step 1 is written."""
    import numba
    k, H, S = jit.kernels(), 5, 4
    rng = np.random.default_rng(0)
    WT, table = rng.normal(0, 0.5, (4 * H, H)).astype(np.float32), rng.normal(0, 1, (3, 5 * H)).astype(np.float32)
    buf, hs = np.zeros((S + 1, 1, 5 * H), np.float32), np.full((S + 1, 1, H), np.nan, np.float32)
    hs[0] = 0.1
    mask, vals, sync = np.zeros((1, H), np.bool_), np.zeros((1, H), np.float32), np.zeros(2, np.int64)
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        k.lstm_steps_team(np.zeros((S, 1), np.int64), table, buf, hs, WT, np.zeros((1, 4 * H), np.float32),
                          np.zeros((S, 1), np.uint8), mask, vals, mask, vals, 2, sync, jit.yield_fn(), 20)
    finally:
        numba.set_num_threads(before)
    assert sync[0] & k.ABORT and sync[1] == 0 and sync[0] & (k.ABORT - 1) == 2  # both arrived at step 0
    assert np.isfinite(hs[1]).all() and np.isnan(hs[2:]).all()


def test_more_lanes_than_the_split_takes_run_the_batched_loop(monkeypatch):
    from interpret.model import infer
    m = model("lstm")
    X = np.random.default_rng(1).integers(0, len(CHARS), size=(9, infer.SPLIT_LANES + 1))
    called = []
    monkeypatch.setattr(jit.kernels(), "lstm_steps_team", lambda *a: called.append(1))
    run_chunks(m, X, {}, {}, True, monkeypatch, threads=2)
    assert not called
    run_chunks(m, X[:, :1], {}, {}, True, monkeypatch, threads=2)
    assert called


@pytest.mark.parametrize("arch", ["lstm", "gru"])
@pytest.mark.parametrize("one_hot", [True, False])
@pytest.mark.parametrize("H", [8, 40])
def test_compiled_training_cells_equal_the_numpy_cells(arch, one_hot, H, monkeypatch):
    """layers' forward and backward in float32: the compiled cells against the numpy ones (H 40:
    the vectorised bodies of the gate loops too)."""
    from interpret.model import layers
    rng = np.random.default_rng(7)
    T, B, D, G = 9, 5, 11, {"lstm": 4, "gru": 3}[arch]
    Wx, Wh = (rng.normal(0, 0.6, s).astype(np.float32) for s in ((D, G * H), (H, G * H)))
    b = rng.normal(0, 0.3, G * H).astype(np.float32)
    X = rng.integers(0, D, (T, B)) if one_hot else rng.normal(0, 1, (T, B, D)).astype(np.float32)
    h0 = rng.normal(0, 0.5, (B, H)).astype(np.float32)
    c0 = rng.normal(0, 0.5, (B, H)).astype(np.float32)
    dhs = rng.normal(0, 1, (T, B, H)).astype(np.float32)
    dh_last = rng.normal(0, 1, (B, H)).astype(np.float32)

    def run(use_jit):
        monkeypatch.setattr(jit, "enabled", lambda: use_jit)
        if arch == "lstm":
            hs, cache = layers.lstm_forward(Wx, Wh, b, X, h0, c0)
            hs = hs.copy()
            grads, dX = layers.lstm_backward(Wx, Wh, cache, dhs, dh_last, c0)
        else:
            hs, cache = layers.gru_forward(Wx, Wh, b, X, h0, bhn=b[:H])
            hs = hs.copy()
            grads, dX = layers.gru_backward(Wx, Wh, cache, dhs, dh_last)
        return hs, {k: np.array(v) for k, v in grads.items()}, dX

    hs0, g0, dx0 = run(False)
    hs1, g1, dx1 = run(True)
    np.testing.assert_allclose(hs1, hs0, rtol=0, atol=2e-6 if H < 16 else 1e-5)  # as above: float32 sums
    for k in g0:
        scale = np.abs(g0[k]).max()
        np.testing.assert_allclose(g1[k], g0[k], rtol=0, atol=2e-5 * scale, err_msg=k)
    if not one_hot:
        np.testing.assert_allclose(dx1, dx0, rtol=0, atol=2e-5 * np.abs(dx0).max())


def test_tanh64_is_within_a_few_ulp_of_tanh():
    x = np.concatenate([np.linspace(-25, 25, 1_000_001), np.geomspace(1e-300, 1, 1000), [0.0, 19.1, 1e300]])
    x = np.concatenate([x, -x])
    got = np.empty_like(x)
    jit.kernels().tanh64_array(x, got)
    want = np.tanh(x)
    assert (np.abs(got - want) / np.maximum(np.abs(want), 1e-300)).max() < 1e-15
    assert got[x == 0.0][0] == 0.0 and np.all(np.abs(got[x > 20] - 1.0) <= 2.3e-16) and np.all(np.abs(got) <= 1.0)


def test_one_compiled_float64_stream_equals_steps_one_with_resets():
    from interpret.model import lanes
    rng = np.random.default_rng(3)
    H, S = 17, 300
    Whh, h = rng.normal(0, 0.4, (H, H)), rng.normal(0, 0.5, H)
    xh = rng.normal(0, 1.5, (S, H))
    plain, fast = xh.copy(), xh.copy()
    last = lanes.steps_one(plain, h, Whh, {40, 41, 299}, 0)
    mask = np.zeros(S, np.uint8)
    mask[[40, 41, 299]] = 1
    last_fast = jit.kernels().rnn_one(fast, h, Whh, mask)
    np.testing.assert_allclose(fast, plain, rtol=0, atol=1e-14)
    np.testing.assert_allclose(last_fast, last, rtol=0, atol=1e-14)
    assert np.abs(fast[40] - np.tanh(xh[40])).max() < 1e-15  # a reset step sees a zero state


def test_a_vanilla_stream_recorded_through_rnn_one_equals_model_run(monkeypatch):
    from interpret.recording import recorder as R
    calls = []
    k = jit.kernels()
    real = k.rnn_one
    monkeypatch.setattr(k, "rnn_one", lambda *a: calls.append(1) or real(*a))
    m = model("rnn", H=9)
    docs = ['a "bc." d(e)\n' * 20, '"dd" (a) b.\n' * 15]
    ix = [m.encode(d)[0] for d in docs]
    starts = np.cumsum([0] + [len(d) for d in ix])
    outs = {(0, "h"): np.empty((starts[-1], 9))}
    R.fill_arrays(m, np.concatenate(ix), starts[:-1], outs, None, lanes=1)
    assert calls
    for d, a, b in zip(ix, starts[:-1], starts[1:]):
        acts, _, _ = m.run(d)
        np.testing.assert_allclose(outs[(0, "h")][a:b], acts[(0, "h")], rtol=0, atol=1e-12)


@pytest.mark.parametrize("product", ["blas", "numba"])
def test_compiled_vanilla_lanes_equal_the_numpy_lanes(product, monkeypatch):
    from interpret.model import lanes
    if product == "blas" and jit.gemm() is None:
        pytest.skip("numpy's BLAS exports no cblas_sgemm here")
    rng = np.random.default_rng(5)
    S, B, H = 30, 7, 13
    Whh = rng.normal(0, 0.4, (H, H)).astype(np.float32)
    h = rng.normal(0, 0.5, (B, H)).astype(np.float32)
    xh = rng.normal(0, 1.5, (S, B, H)).astype(np.float32)
    resets = {3: [0, 4], 17: [6], 29: list(range(B))}
    plain, fast = xh.copy(), xh.copy()
    last = lanes._steps(plain, h, Whh, resets, 0)
    mask = np.zeros((S, B), np.uint8)
    for s, ls in resets.items():
        mask[s, ls] = 1
    gemm = jit.gemm() if product == "blas" else None
    last_fast = jit.kernels().rnn_lanes(gemm, fast, h, np.ascontiguousarray(Whh.T), Whh, mask)
    np.testing.assert_allclose(fast, plain, rtol=0, atol=2e-6)
    np.testing.assert_allclose(last_fast, last, rtol=0, atol=2e-6)
    assert np.abs(fast[17, 6] - np.tanh(xh[17, 6])).max() < 3e-7  # a reset lane sees a zero state


def test_vanilla_documents_in_compiled_lanes_stay_within_float32_error():
    from interpret.recording import recorder as R
    m = model("rnn", H=9)
    rng = np.random.default_rng(2)
    docs = ["".join(rng.choice(CHARS, size=int(rng.integers(1, 90)))) for _ in range(30)]
    ix = [m.encode(d)[0] for d in docs]
    starts = np.cumsum([0] + [len(d) for d in ix])
    outs = {(0, "h"): np.empty((starts[-1], 9), np.float32)}
    loss = np.empty(starts[-1], np.float32)
    R.fill_arrays(m, np.concatenate(ix), starts[:-1], outs, loss, lanes=6)
    for d, a, b in zip(ix, starts[:-1], starts[1:]):
        acts, _, _ = m.run(d)
        np.testing.assert_allclose(outs[(0, "h")][a:b], acts[(0, "h")], rtol=0, atol=1e-5)


@pytest.mark.parametrize("scale", [0.3, 120.0])  # small logits: the bound shift; large: the plain way
def test_the_loss_in_row_blocks_over_threads_equals_one_thread(scale):
    from interpret.model.lanes import next_char_loss
    rng = np.random.default_rng(3)
    states = np.tanh(rng.normal(0, 1, (700, 16))).astype(np.float32)
    WhyT = (rng.normal(0, 1, (16, 9)) * scale / 16).astype(np.float32)
    by = rng.normal(0, 0.5, 9).astype(np.float32)
    nxt = rng.integers(0, 9, 700)
    assert (2 * (np.abs(WhyT).sum(axis=0) + np.abs(by)).max() > 87) == (scale > 1)  # the path meant
    one = next_char_loss(states, WhyT, by, nxt, np.empty((700, 9), np.float32))
    two = next_char_loss(states, WhyT, by, nxt, np.empty((700, 9), np.float32), threads=2)
    logits = states.astype(np.float64) @ WhyT + by
    ref = np.log(np.exp(logits).sum(axis=1)) - logits[np.arange(700), nxt]
    tol = 4e-7 * max(1.0, np.abs(logits).max())  # float32 rounding of logits this large
    np.testing.assert_allclose(two, one, rtol=0, atol=tol)
    np.testing.assert_allclose(two, ref, rtol=0, atol=2 * tol)


@pytest.mark.parametrize("M,K,N", [(1, 9, 4), (2, 40, 8), (5, 33, 7), (16, 64, 256), (24, 256, 1030)])
@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_rows_dot_is_a_product_with_the_second_transposed(M, K, N, beta):
    """kernels.rows_dot (product_nt for few rows): odd rows, rows of Bm beyond a multiple of 4,
    beta 0 on a C full of NaN (only written) and beta 1 (added to), against float64."""
    rng = np.random.default_rng(M * 1000 + N)
    A, Bm = rng.normal(0, 1, (M, K)).astype(np.float32), rng.normal(0, 1, (N, K)).astype(np.float32)
    C0 = np.full((M, N), np.nan, np.float32) if beta == 0.0 else rng.normal(0, 1, (M, N)).astype(np.float32)
    C = C0.copy()
    jit.kernels().rows_dot(A, Bm, C, beta)
    want = A.astype(np.float64) @ Bm.T.astype(np.float64) + (beta * C0 if beta else 0.0)
    np.testing.assert_allclose(C, want, rtol=0, atol=3e-6 * np.sqrt(K) * 4)
