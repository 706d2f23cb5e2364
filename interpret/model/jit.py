"""Compiled step loops (numba) for model/infer.py's float32 kernel: one call per chunk.

The numpy loop of infer.Runner makes about ten ufunc calls per step, and numpy's float32 tanh
is not vectorised on every CPU (about 3 ns per element on AVX2 machines): at batch 1 the calls,
at batch 64 the tanh, cost more than the (B, H) x (H, G*H) product. Here each step is that
product (BLAS) and one fused pass over the gates, with a vectorisable tanh: Lambert's continued
fraction for tanh(x / 4), truncated to a rational of degree (5, 6), then doubled twice with
tanh(2u) = 2 tanh(u) / (1 + tanh(u)^2) on numerator and denominator (one division); the largest error is 2.0e-7 (numpy's own: 6e-8).

Same buffers, layouts, resets and clamps as Runner's numpy loop (its docstring), float32 only;
tests compare every architecture with it. INTERPRET_JIT=0 in the environment, or numba missing,
turns this off. Compiled code is cached on disk (numba's cache) after the first use.
"""
import os

import numpy as np

try:  # numba is a dependency; the numpy loop stays as the plain form and as a fallback
    import numba
except ImportError:  # pragma: no cover - exercised by INTERPRET_JIT=0 in the tests instead
    numba = None


def enabled():
    """Whether the compiled loops run (numba importable and INTERPRET_JIT not 0)."""
    return numba is not None and os.environ.get("INTERPRET_JIT", "1") != "0"


def _numpy_sgemm():
    """numpy's own cblas_sgemm through ctypes, or None. numba's np.dot calls scipy's BLAS, which
    can be a slower build than numpy's (0.3.30 against 0.3.31 here: a (64, 256) x (256, 1024)
    product took 510 us against 420); numpy's wheels export theirs as scipy_cblas_sgemm64_."""
    import ctypes
    try:
        from threadpoolctl import threadpool_info
        paths = [i["filepath"] for i in threadpool_info() if i.get("user_api") == "blas"
                 and "numpy" in i.get("filepath", "").replace("\\", "/").split("/site-packages/")[-1]]
    except Exception:  # noqa: BLE001 - any failure: numba's own product is used
        return None
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name, int_t in (("scipy_cblas_sgemm64_", ctypes.c_int64), ("cblas_sgemm64_", ctypes.c_int64),
                            ("scipy_cblas_sgemm", ctypes.c_int), ("cblas_sgemm", ctypes.c_int)):
            fn = getattr(lib, name, None)
            if fn is not None:
                fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, int_t, int_t, int_t, ctypes.c_float,
                               ctypes.c_void_p, int_t, ctypes.c_void_p, int_t, ctypes.c_float,
                               ctypes.c_void_p, int_t]
                fn.restype = None
                return fn
    return None


_GEMM = []


def gemm():
    """The product the kernels call for (B, H) x (H, G*H), B > 1: numpy's sgemm, else None."""
    if not _GEMM:
        _GEMM.append(_numpy_sgemm() if os.environ.get("INTERPRET_JIT_GEMM", "1") != "0" else None)
    return _GEMM[0]


def product(gemm, h, W, out):
    """out = h @ W (all C-contiguous float32): numba compiles it per type of `gemm`."""


if numba is not None:
    from numba.core import types as _types
    from numba.extending import overload as _overload

    @_overload(product, jit_options={"fastmath": True})
    def _product(gemm, h, W, out):
        if isinstance(gemm, _types.NoneType):
            def plain(gemm, h, W, out):
                np.dot(h, W, out)
            return plain

        def blas(gemm, h, W, out):
            if h.shape[0] == 1:  # a vector: BLAS's gemv path (sgemm has none at M = 1)
                np.dot(h, W, out)
            else:  # row-major, no transposes: out (B, N) = h (B, K) W (K, N)
                K, N = W.shape
                gemm(101, 111, 111, h.shape[0], N, K, np.float32(1.0), h.ctypes.data, K,
                     W.ctypes.data, N, np.float32(0.0), out.ctypes.data, N)
        return blas

    _jit = numba.njit(fastmath=True, error_model="numpy", cache=True, nogil=True)
    _inline = numba.njit(fastmath=True, error_model="numpy", cache=True, inline="always")

    # tanh(x / 4) ~ x/4 * N(y) / D(y), y = (x/4)^2: the 5th convergent of Lambert's fraction
    _N0, _N1, _N2 = np.float32(1.0), np.float32(4.0 / 33.0), np.float32(2.0 / 990.0)
    _D1, _D2, _D3 = np.float32(15.0 / 33.0), np.float32(20.0 / 990.0), np.float32(1.0 / 10395.0)

    @_inline
    def tanh32(x):
        """tanh of a float32, vectorisable (no branches, one clamp)."""
        u = min(max(x, np.float32(-9.0)), np.float32(9.0)) * np.float32(0.25)
        y = u * u
        a = u * (_N0 + y * (_N1 + y * _N2))                       # tanh(u) = a / b
        b = np.float32(1.0) + y * (_D1 + y * (_D2 + y * _D3))
        a, b = np.float32(2.0) * a * b, a * a + b * b           # tanh(2u) = a / b
        return np.float32(2.0) * a * b / (a * a + b * b)        # tanh(4u): one division

    @_jit
    def tanh_array(a, out):
        """out[:] = tanh32(a) over flat float32 arrays (tests check tanh32's error with it)."""
        for j in range(a.shape[0]):
            out[j] = tanh32(a[j])

    @_jit
    def _clamp(arr, t, lanes, cols, values, offset):
        for k in range(lanes.shape[0]):
            arr[t, lanes[k], offset + cols[k]] = values[k]

    @_jit
    def lstm_steps(gemm, X, table, buf, hs, Wh, z, reset, cl, cc, cv, hl, hc, hv):
        """gemm: gemm() (numpy's sgemm or None); buf (S+1, B, 5H) rows [o|i|f|g|c_prev] (gate values out; c_t written into
        buf[t+1, :, 4H:]; the input terms in, unless table has rows: then row X[t, b] of table
        (V, >= 4H) is the input term), hs (S+1, B, H) with hs[0] the state, Wh (H, 4H) halved
        as infer.Net, z (B, 4H) scratch, reset (S, B) uint8, clamps of c (cl, cc, cv) and h."""
        S, B, H = reset.shape[0], hs.shape[1], hs.shape[2]
        half = np.float32(0.5)
        for t in range(S):
            product(gemm, hs[t], Wh, z)
            for b in range(B):
                g, zb = buf[t, b], z[b]
                if table.shape[0]:
                    g[:4 * H] = table[X[t, b], :4 * H]
                if reset[t, b]:
                    for j in range(3 * H):
                        g[j] = half + half * tanh32(g[j])
                    for j in range(3 * H, 4 * H):
                        g[j] = tanh32(g[j])
                    for j in range(H):
                        buf[t + 1, b, 4 * H + j] = g[H + j] * g[3 * H + j]
                else:
                    for j in range(3 * H):
                        g[j] = half + half * tanh32(g[j] + zb[j])
                    for j in range(3 * H, 4 * H):
                        g[j] = tanh32(g[j] + zb[j])
                    for j in range(H):
                        buf[t + 1, b, 4 * H + j] = g[H + j] * g[3 * H + j] + g[2 * H + j] * g[4 * H + j]
            _clamp(buf, t + 1, cl, cc, cv, 4 * H)
            for b in range(B):
                g, c, h = buf[t, b], buf[t + 1, b], hs[t + 1, b]
                for j in range(H):
                    h[j] = g[j] * tanh32(c[4 * H + j])
            _clamp(hs, t + 1, hl, hc, hv, 0)

    @_jit
    def gru_steps(gemm, X, table, A, hs, Wh, hw, bhn, reset, hl, hc, hv):
        """A (S, B, 3H) rows [r|z|n] (input terms in, or table[X[t, b]] as lstm_steps; gate values
        out), hs (S+1, B, H), Wh (H, 3H), hw (B, 3H) scratch, bhn (H,) (zeros when the model has
        none), reset (S, B), h clamps."""
        S, B, H = reset.shape[0], hs.shape[1], hs.shape[2]
        half = np.float32(0.5)
        for t in range(S):
            product(gemm, hs[t], Wh, hw)
            for b in range(B):
                a, w, hp, h = A[t, b], hw[b], hs[t, b], hs[t + 1, b]
                if table.shape[0]:
                    a[:] = table[X[t, b]]
                if reset[t, b]:
                    for j in range(2 * H):
                        a[j] = half + half * tanh32(a[j])
                    for j in range(H):
                        n = tanh32(a[2 * H + j] + a[j] * bhn[j])
                        a[2 * H + j] = n
                        h[j] = (np.float32(0.0) - n) * a[H + j] + n
                else:
                    for j in range(2 * H):
                        a[j] = half + half * tanh32(a[j] + w[j])
                    for j in range(H):
                        n = tanh32(a[2 * H + j] + a[j] * (w[2 * H + j] + bhn[j]))
                        a[2 * H + j] = n
                        h[j] = (hp[j] - n) * a[H + j] + n
            _clamp(hs, t + 1, hl, hc, hv, 0)

    @_jit
    def rnn_steps(gemm, X, table, A, hs, Wh, z, reset, hl, hc, hv):
        """A (S, B, H) input terms (or table[X[t, b]] as lstm_steps), hs (S+1, B, H), Wh (H, H),
        z (B, H) scratch, reset, h clamps."""
        S, B, H = reset.shape[0], hs.shape[1], hs.shape[2]
        for t in range(S):
            product(gemm, hs[t], Wh, z)
            for b in range(B):
                a, zb, h = A[t, b], z[b], hs[t + 1, b]
                if table.shape[0]:
                    a[:] = table[X[t, b]]
                if reset[t, b]:
                    for j in range(H):
                        h[j] = tanh32(a[j])
                else:
                    for j in range(H):
                        h[j] = tanh32(a[j] + zb[j])
            _clamp(hs, t + 1, hl, hc, hv, 0)


    @_jit
    def store_lanes(src, dst, rows, counts):
        """dst[rows[b] + t] = src[t, b] for t < counts[b]: the lanes' (S, B, H) rows into the
        recording's (N, H) rows, read in step order (src is a strided view of the chunk)."""
        for t in range(src.shape[0]):
            for b in range(src.shape[1]):
                if t < counts[b]:
                    dst[rows[b] + t] = src[t, b]


def load_blas():
    """Import the BLAS that the compiled np.dot calls (scipy's), so that a BLAS thread limit
    set afterwards (_util.blas.one_thread) finds it. A no-op when the loops are off."""
    if enabled():
        import scipy.linalg.cython_blas  # noqa: F401


def reset_mask(resets, S, B):
    """{step: lanes} -> (S, B) uint8, 1 where the lane's state restarts at zeros before the step."""
    mask = np.zeros((S, B), np.uint8)
    for t, lanes in resets.items():
        mask[t, lanes] = 1
    return mask


_NONE = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))


def clamp_arrays(spec):
    """(lanes, cols, values) or None -> three arrays for the kernels (int64, int64, float32)."""
    if spec is None:
        return _NONE
    lanes, cols, values = spec
    n = len(np.atleast_1d(cols))
    return (np.broadcast_to(np.asarray(lanes, np.int64), (n,)).copy(),
            np.broadcast_to(np.asarray(cols, np.int64), (n,)).copy(),
            np.broadcast_to(np.asarray(values, np.float32), (n,)).copy())
