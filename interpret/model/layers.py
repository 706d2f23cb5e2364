"""LSTM, GRU and vanilla RNN layers in numpy: forward and backward over B streams x T steps.

Row vectors, so a batch is one product: Wx (D, G*H), Wh (H, G*H), b (G*H,); G = 4 blocks for the
LSTM (i f o g), 3 for the GRU (r z n; bhn (H,), PyTorch's b_hn inside r * (h Whn + bhn), is
optional). Layer 0 reads characters: x @ Wx is a gather. Sigmoids are (1 + tanh(a / 2)) / 2 with
the halving folded into the weights. Each step's nonlinear part is a cell function (lstm_cell_c,
lstm_cell_h, gru_cell) that model.step calls too. The parameters' dtype is kept (float32 to
train, float64 for gradient checks). Equations and speed notes: docs/internals.md.
"""
import numpy as np

from interpret.model import jit


def buffer(work, name, shape, dtype):
    """np.empty(shape, dtype), or with `work` (a dict kept by the caller) a buffer reused across
    calls: a training step then does not ask the OS for ~40 MB of fresh, page-faulting memory
    (about a tenth of an LSTM step). Only for callers that drop the results before the next call."""
    if work is None:
        return np.empty(shape, dtype)
    a = work.get(name)
    if a is None or a.shape != shape or a.dtype != dtype:
        a = work[name] = np.empty(shape, dtype)
    return a


def input_gates(Wx, b, X, n_half=0, work=None):
    """x @ Wx + b for all steps at once, its first n_half columns halved (the sigmoid gates: see
    the module notes). X (T, B) indices or (T, B, D) floats -> (T, B, G*H)."""
    T, B = X.shape[:2]
    A = buffer(work, "A", (T, B, Wx.shape[1]), Wx.dtype)
    if X.ndim == 2:
        table = Wx + b  # (V, G*H): row x of Wx plus the bias, so the whole input is one gather
        table[:, :n_half] *= 0.5
        return np.take(table, X, axis=0, out=A, mode="clip")  # one-hot rows; X comes from encode()
    D = X.shape[2]
    np.dot(X.reshape(T * B, D), Wx, out=A.reshape(T * B, -1))
    A += b
    A[..., :n_half] *= 0.5
    return A


def halved_T(Wh, n_half):
    """Wh.T (G*H, H) contiguous with its first n_half rows halved: BLAS runs this orientation
    ~30% faster, and the halving turns tanh into the sigmoid (module notes)."""
    WhT = np.ascontiguousarray(Wh.T)
    WhT[:n_half] *= 0.5
    return WhT


def _input_grads(Wx, X, dA, work=None):
    """dWx, db and dX (None for one-hot input) from the pre-activation gradients dA (T, B, G*H).

    With work, the dense results are buffers too (fresh multi-MB arrays cost page faults)."""
    GH = dA.shape[2]
    dA2 = dA.reshape(-1, GH)
    if X.ndim == 2:  # dWx[v] = sum of the rows of dA whose input is character v
        import scipy.sparse  # here: importing it costs 0.2 s, and only training needs it
        n = dA2.shape[0]
        onehot_T = scipy.sparse.csr_matrix((np.ones(n, dtype=dA.dtype), (X.ravel(), np.arange(n))),
                                           shape=(Wx.shape[0], n))  # (V, T*B)
        dWx = np.asarray(onehot_T @ dA2)
        return dWx, dWx.sum(axis=0), None  # every row of dA is in one row of dWx: db without reading dA again
    db = dA2.sum(axis=0)
    T, B, D = X.shape
    Xf = X.reshape(T * B, D)
    dWx = np.dot(Xf.T, dA2, out=buffer(work, "dWx", Wx.shape, dA.dtype))
    dX = np.dot(dA2, Wx.T, out=buffer(work, "dX", (T * B, D), dA.dtype)).reshape(T, B, D)
    return dWx, db, dX


def lstm_forward(Wx, Wh, b, X, h0, c0, work=None):
    """Run T steps. Returns (hs (T+1, B, H) with hs[0] = h0, cache for lstm_backward)."""
    T, B = X.shape[:2]
    H = Wh.shape[0]
    gates = input_gates(Wx, b, X, 3 * H, work)  # (T, B, 4H), turned into gate activations in place
    hs = buffer(work, "hs", (T + 1, B, H), Wh.dtype)
    cs = buffer(work, "cs", (T + 1, B, H), Wh.dtype)
    tcs = buffer(work, "tcs", (T, B, H), Wh.dtype)  # tanh(c_t)
    hs[0], cs[0] = h0, c0
    ig = np.empty((B, H), dtype=Wh.dtype)
    WhT = halved_T(Wh, 3 * H)  # (4H, H)
    if _fast(Wh):  # the same loop compiled (model/kernels.py)
        jit.kernels().lstm_train_forward(jit.gemm(), gates, WhT, hs, cs, tcs)
        return hs, (X, gates, hs, cs, tcs)
    for t in range(T):
        a = gates[t]
        a += (WhT @ hs[t].T).T
        lstm_cell_c(a, cs[t], cs[t + 1], ig)
        lstm_cell_h(a, cs[t + 1], tcs[t], hs[t + 1])
    return hs, (X, gates, hs, cs, tcs)


def _fast(W):
    """Whether float32 work takes the compiled cells of model/kernels.py (jit.enabled)."""
    return W.dtype == np.float32 and jit.enabled()


def lstm_cell_c(a, c_prev, c, ig):
    """The LSTM cell, first half: a (B, 4H) pre-activations (sigmoid blocks halved) become the
    gate activations i, f, o, g in place; c (B, H) = f * c_prev + i * g. ig: (B, H) scratch."""
    H = c.shape[1]
    np.tanh(a, out=a)  # plain form: i, f, o = sigmoid(pre-activations), g = tanh(...)
    sig = a[:, :3 * H]
    sig *= 0.5  # sigmoid(x) = (1 + tanh(x / 2)) / 2; x / 2 is already in a
    sig += 0.5
    np.multiply(a[:, H:2 * H], c_prev, out=c)
    np.multiply(a[:, :H], a[:, 3 * H:], out=ig)
    c += ig


def lstm_cell_h(a, c, tc, h):
    """The LSTM cell, second half: tc = tanh(c), h = o * tc, all (B, H); a holds the activations."""
    H = c.shape[1]
    np.tanh(c, out=tc)
    np.multiply(a[:, 2 * H:3 * H], tc, out=h)


def lstm_backward(Wx, Wh, cache, dhs, dh_last=None, dc_last=None, work=None):
    """Gradients from dhs (T, B, H) = dLoss/dh_t. Returns ({Wx, Wh, b}, dX or None).

    Per step, plain form: do = dh tanh(c); dc += dh o (1 - tanh(c)^2); then the pre-activation
    gradients di = dc g, df = dc c_prev, do, each times its sigmoid's derivative s (1 - s),
    dg = dc i (1 - g^2); dc *= f for the step before.
    """
    X, gates, hs, cs, tcs = cache
    T, B, H = dhs.shape
    dA = buffer(work, "dA", gates.shape, gates.dtype)  # (T, B, 4H) pre-activation gradients
    dh_next = np.zeros((B, H), dtype=Wh.dtype) if dh_last is None else dh_last.copy()
    dc = np.zeros((B, H), dtype=Wh.dtype) if dc_last is None else dc_last.copy()
    if _fast(Wh):  # the same loop compiled (model/kernels.py)
        jit.kernels().lstm_train_backward(jit.gemm(), gates, np.ascontiguousarray(Wh), cs, tcs,
                                          np.ascontiguousarray(dhs), dh_next, dc, dA)
    else:
        _lstm_back_steps(gates, cs, tcs, dhs, dh_next, dc, dA, np.ascontiguousarray(Wh.T))
    return _weight_grads(Wx, Wh, X, hs, dA, dA, work)


def _lstm_back_steps(gates, cs, tcs, dhs, dh_next, dc, dA, WhT):
    """lstm_backward's time loop in numpy: dA (T, B, 4H) from dhs; dc (B, H) updated in place."""
    T, B, H = dhs.shape
    dh, u = np.empty((B, H), dtype=dc.dtype), np.empty((B, H), dtype=dc.dtype)
    ds = np.empty((B, 3 * H), dtype=dc.dtype)  # the sigmoids' derivatives s (1 - s)
    for t in reversed(range(T)):
        a, d = gates[t], dA[t]
        f, o, g, tc = a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:], tcs[t]
        np.add(dhs[t], dh_next, out=dh)
        np.multiply(tc, tc, out=u)          # dc += dh o (1 - tc^2)
        np.subtract(1, u, out=u)
        u *= o
        u *= dh
        dc += u
        np.multiply(dc, g, out=d[:, :H])    # the sigmoid gates' upstream gradients ...
        np.multiply(dc, cs[t], out=d[:, H:2 * H])
        np.multiply(dh, tc, out=d[:, 2 * H:3 * H])
        np.subtract(1, a[:, :3 * H], out=ds)
        ds *= a[:, :3 * H]
        d[:, :3 * H] *= ds                  # ... times s (1 - s), all three at once
        np.multiply(g, g, out=u)            # dg = dc i (1 - g^2)
        np.subtract(1, u, out=u)
        u *= a[:, :H]
        np.multiply(dc, u, out=d[:, 3 * H:])
        dc *= f
        dh_next = d @ WhT


def gru_forward(Wx, Wh, b, X, h0, work=None, bhn=None):
    """Run T steps. Returns (hs (T+1, B, H) with hs[0] = h0, cache for gru_backward).

    bhn: optional (H,) hidden-side candidate bias (see the module notes; forward only)."""
    T, B = X.shape[:2]
    H = Wh.shape[0]
    gates = input_gates(Wx, b, X, 2 * H, work)  # (T, B, 3H) -> r, z, n activations in place
    hn = buffer(work, "hn", (T, B, H), Wh.dtype)  # h_{t-1} @ Whn, needed for dr
    hs = buffer(work, "hs", (T + 1, B, H), Wh.dtype)
    hs[0] = h0
    WhT = halved_T(Wh, 2 * H)  # (3H, H)
    if _fast(Wh):  # the same loop compiled (model/kernels.py)
        zeros = np.zeros(H, Wh.dtype)
        jit.kernels().gru_train_forward(jit.gemm(), gates, WhT, zeros if bhn is None else bhn.astype(Wh.dtype),
                                        hs, hn, np.empty((B, 3 * H), Wh.dtype))
        return hs, (X, gates, hs, hn)
    for t in range(T):
        hw = (WhT @ hs[t].T).T  # (B, 3H)
        if bhn is not None:
            hw[:, 2 * H:] += bhn  # PyTorch's b_hn, inside r * (h Whn + b_hn)
        hn[t] = hw[:, 2 * H:]
        gru_cell(gates[t], hw, hs[t], hs[t + 1])
    return hs, (X, gates, hs, hn)


def gru_cell(a, hw, h_prev, h):
    """The GRU cell: a (B, 3H) input pre-activations (r, z halved) become r, z, n in place, given
    hw (B, 3H) = h_prev @ Wh (r, z halved); h (B, H) = (1 - z) * n + z * h_prev."""
    H = h.shape[1]
    rz = a[:, :2 * H]
    rz += hw[:, :2 * H]
    np.tanh(rz, out=rz)  # r, z = sigmoid(x) = (1 + tanh(x / 2)) / 2, x / 2 already in rz
    rz *= 0.5
    rz += 0.5
    n = a[:, 2 * H:]
    n += a[:, :H] * hw[:, 2 * H:]
    np.tanh(n, out=n)
    z = a[:, H:2 * H]
    np.subtract(h_prev, n, out=h)
    h *= z
    h += n


def gru_backward(Wx, Wh, cache, dhs, dh_last=None, work=None):
    """Gradients from dhs (T, B, H) = dLoss/dh_t. Returns ({Wx, Wh, b}, dX or None)."""
    X, gates, hs, hn = cache
    T, B, H = dhs.shape
    dA = buffer(work, "dA", gates.shape, gates.dtype)  # (T, B, 3H) gradients of the input pre-activations
    dAh = buffer(work, "dAh", gates.shape, gates.dtype)  # (T, B, 3H) gradients of h_{t-1} @ Wh
    dh_next = np.zeros((B, H), dtype=Wh.dtype) if dh_last is None else dh_last.copy()
    if _fast(Wh):  # the same loop compiled (model/kernels.py)
        jit.kernels().gru_train_backward(jit.gemm(), gates, np.ascontiguousarray(Wh), hs, hn,
                                         np.ascontiguousarray(dhs), dh_next, dA, dAh, np.empty((B, H), Wh.dtype))
    else:
        _gru_back_steps(gates, hs, hn, dhs, dh_next, dA, dAh, np.ascontiguousarray(Wh.T))
    return _weight_grads(Wx, Wh, X, hs, dA, dAh, work)


def _weight_grads(Wx, Wh, X, hs, dA, dAh, work):
    """({Wx, Wh, b}, dX) from the input pre-activation gradients dA and those of h_{t-1} Wh, dAh
    (T, B, G*H; the same array for the LSTM), and the states hs (T+1, B, H)."""
    T, B, H = hs.shape[0] - 1, hs.shape[1], hs.shape[2]
    dWh = buffer(work, "dWh", Wh.shape, Wh.dtype)
    np.dot(hs[:-1].reshape(T * B, H).T, dAh.reshape(T * B, -1), out=dWh)
    dWx, db, dX = _input_grads(Wx, X, dA, work)
    return {"Wx": dWx, "Wh": dWh, "b": db}, dX


def _gru_back_steps(gates, hs, hn, dhs, dh_next, dA, dAh, WhT):
    """gru_backward's time loop in numpy: dA and dAh (T, B, 3H) from dhs."""
    T, B, H = dhs.shape
    for t in reversed(range(T)):
        a, d, dh_ = gates[t], dA[t], dAh[t]
        r, z, n = a[:, :H], a[:, H:2 * H], a[:, 2 * H:]
        dh = dhs[t] + dh_next
        dan = dh * (1 - z) * (1 - n * n)
        d[:, 2 * H:] = dan
        d[:, :H] = dan * hn[t] * r * (1 - r)
        d[:, H:2 * H] = dh * (hs[t] - n) * z * (1 - z)
        dh_[:, :2 * H] = d[:, :2 * H]
        dh_[:, 2 * H:] = dan * r
        dh_next = dh * z + dh_ @ WhT


def rnn_forward(Wx, Wh, b, X, h0, work=None):
    """The vanilla layer h_t = tanh(x_t Wx + h_{t-1} Wh + b), batched; same contract as gru_forward."""
    T, B = X.shape[:2]
    A = input_gates(Wx, b, X, 0, work)  # (T, B, H)
    hs = buffer(work, "hs", (T + 1, B, Wh.shape[0]), Wh.dtype)
    hs[0] = h0
    WhT = np.ascontiguousarray(Wh.T)
    for t in range(T):
        a = A[t]
        a += (WhT @ hs[t].T).T
        np.tanh(a, out=hs[t + 1])
    return hs, (X, A, hs)


def rnn_backward(Wx, Wh, cache, dhs, dh_last=None, work=None):
    X, A, hs = cache
    T, B, H = dhs.shape
    dA = buffer(work, "dA", A.shape, A.dtype)  # (T, B, H) gradients before the tanh
    dh_next = np.zeros((B, H), dtype=Wh.dtype) if dh_last is None else dh_last
    WhT = np.ascontiguousarray(Wh.T)
    for t in reversed(range(T)):
        h = hs[t + 1]
        np.multiply(dhs[t] + dh_next, 1 - h * h, out=dA[t])
        dh_next = dA[t] @ WhT
    dWh = buffer(work, "dWh", Wh.shape, Wh.dtype)
    np.dot(hs[:-1].reshape(T * B, H).T, dA.reshape(T * B, H), out=dWh)
    dWx, db, dX = _input_grads(Wx, X, dA, work)
    return {"Wx": dWx, "Wh": dWh, "b": db}, dX
