"""The compiled loops of model/jit.py (numba), imported on first use: importing numba costs ~0.5 s.

Read model/jit.py's notes first; these are its kernels, nothing else imports this module.
"""
import numba
import numpy as np
from numba.core import cgutils as _cgutils
from numba.core import types as _types
from numba.extending import intrinsic as _intrinsic
from numba.extending import overload as _overload


def product(gemm, h, W, out):
    """out = h @ W (all C-contiguous float32): numba compiles it per type of `gemm`."""


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


@numba.njit(fastmath=True, error_model="numpy", cache=True, inline="always")
def product_rows(gemm, h, W, WT, out):
    """out = h @ W as product does, but 2 to ROWS_DOT_M rows of h through rows_dot(h, WT), WT
    being W.T (C-contiguous): BLAS would pack all of W for so few rows."""
    if 2 <= h.shape[0] <= ROWS_DOT_M:
        rows_dot(h, WT, out, 0.0)
    else:
        product(gemm, h, W, out)


def product_nt(gemm, A, Bm, C, beta):
    """C = A @ Bm.T + beta C (A (M, K), Bm (N, K), C (M, N), C-contiguous float32)."""


@_overload(product_nt, jit_options={"fastmath": True})
def _product_nt(gemm, A, Bm, C, beta):
    if isinstance(gemm, _types.NoneType):
        def plain(gemm, A, Bm, C, beta):
            tmp = np.dot(A, Bm.T)
            if beta == 0.0:
                C[:] = tmp
            else:
                C += tmp
        return plain

    def blas(gemm, A, Bm, C, beta):  # row-major, Bm transposed
        M, K = A.shape
        N = Bm.shape[0]
        if M <= ROWS_DOT_M:
            rows_dot(A, Bm, C, beta)
        else:
            gemm(101, 111, 112, M, N, K, np.float32(1.0), A.ctypes.data, K, Bm.ctypes.data, K,
                 np.float32(beta), C.ctypes.data, N)
    return blas


ROWS_DOT_M = 24  # product_nt and product_rows with at most this many rows run rows_dot: BLAS packs
# all the weights for so few rows. Alternated against sgemm on one thread (H 256 and 512 shapes):
# 2 rows 2.8x faster, 4 1.4x, 8 1.3x, 16 1.13-1.48x, 22 1.0-1.3x; 32 rows even (1.0-1.08x).


@numba.njit(fastmath=True, error_model="numpy", cache=True, nogil=True)
def rows_dot(A, Bm, C, beta):
    """C = A @ Bm.T + beta C (float32; beta 0: C is only written) as dot products of rows: four
    rows of Bm stay in L1 while every row of A passes, two rows of A at a time (eight sums, each
    a vector register)."""
    M, K = A.shape
    N = Bm.shape[0]
    for r in range(0, N - N % 4, 4):
        w0, w1, w2, w3 = Bm[r], Bm[r + 1], Bm[r + 2], Bm[r + 3]
        b = 0
        while b + 2 <= M:
            x, y = A[b], A[b + 1]
            a0 = a1 = a2 = a3 = c0 = c1 = c2 = c3 = np.float32(0.0)
            for j in range(K):
                u, v = x[j], y[j]
                a0 += w0[j] * u
                a1 += w1[j] * u
                a2 += w2[j] * u
                a3 += w3[j] * u
                c0 += w0[j] * v
                c1 += w1[j] * v
                c2 += w2[j] * v
                c3 += w3[j] * v
            _put4(C, b, r, a0, a1, a2, a3, beta)
            _put4(C, b + 1, r, c0, c1, c2, c3, beta)
            b += 2
        if b < M:  # an odd last row of A
            for q in range(4):
                _put1(C, b, r + q, _dot1(Bm[r + q], A[b]), beta)
    for r in range(N - N % 4, N):  # the last N % 4 rows of Bm
        for b in range(M):
            _put1(C, b, r, _dot1(Bm[r], A[b]), beta)


@numba.njit(fastmath=True, error_model="numpy", cache=True, inline="always")
def _dot1(w, x):
    """w . x in float32."""
    s = np.float32(0.0)
    for j in range(x.shape[0]):
        s += w[j] * x[j]
    return s


@numba.njit(fastmath=True, error_model="numpy", cache=True, inline="always")
def _put1(C, b, r, s, beta):
    """C[b, r] = s (+ beta times what it held, unless beta is 0)."""
    C[b, r] = s if beta == 0.0 else s + np.float32(beta) * C[b, r]


@numba.njit(fastmath=True, error_model="numpy", cache=True, inline="always")
def _put4(C, b, r, s0, s1, s2, s3, beta):
    """C[b, r:r + 4] = the sums (+ beta times what it held, unless beta is 0: C may hold NaN)."""
    if beta == 0.0:
        C[b, r], C[b, r + 1], C[b, r + 2], C[b, r + 3] = s0, s1, s2, s3
    else:
        f = np.float32(beta)
        C[b, r] = s0 + f * C[b, r]
        C[b, r + 1] = s1 + f * C[b, r + 1]
        C[b, r + 2] = s2 + f * C[b, r + 2]
        C[b, r + 3] = s3 + f * C[b, r + 3]


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


@_inline
def _lstm_gates(g, x, zb, keep, H):
    """g[:4H] = the gate values of pre-activations x + keep * zb (o i f halved: sigmoids).
    Called with x the row g itself (deeper layers) as the same variable, so that LLVM sees one
    array and vectorises; a second name for g would look like an overlap and run scalar."""
    half = np.float32(0.5)
    for j in range(3 * H):
        g[j] = half + half * tanh32(x[j] + keep * zb[j])
    for j in range(H):  # from 0: a loop from 3H is not vectorised (3x slower)
        g[3 * H + j] = tanh32(x[3 * H + j] + keep * zb[3 * H + j])


@_jit
def lstm_steps(gemm, X, table, buf, hs, Wh, WhT, z, reset, cl, cc, cv, hl, hc, hv):
    """gemm: gemm() (numpy's sgemm or None); buf (S+1, B, 5H) rows [o|i|f|g|c_prev] (gate values out; c_t written into
    buf[t+1, :, 4H:]; the input terms in, unless table has rows: then row X[t, b] of table
    (V, >= 4H) is the input term), hs (S+1, B, H) with hs[0] the state, Wh (H, 4H) halved
    as infer.Net (WhT: its transpose, C-contiguous), z (B, 4H) scratch, reset (S, B) uint8, clamps of
    c (cl, cc, cv) and h."""
    S, B, H = reset.shape[0], hs.shape[1], hs.shape[2]
    fused = cl.shape[0] == 0  # no clamp of c: h in the same pass
    for t in range(S):
        product_rows(gemm, hs[t], Wh, WhT, z)
        for b in range(B):
            g, zb = buf[t, b], z[b]
            keep = np.float32(0.0) if reset[t, b] else np.float32(1.0)  # 0: the state restarts
            if table.shape[0]:
                _lstm_gates(g, table[X[t, b]], zb, keep, H)
            else:
                _lstm_gates(g, g, zb, keep, H)
            cn, h = buf[t + 1, b], hs[t + 1, b]
            if fused:
                for j in range(H):
                    c = g[H + j] * g[3 * H + j] + g[2 * H + j] * (keep * g[4 * H + j])
                    cn[4 * H + j] = c
                    h[j] = g[j] * tanh32(c)
            else:
                for j in range(H):
                    cn[4 * H + j] = g[H + j] * g[3 * H + j] + g[2 * H + j] * (keep * g[4 * H + j])
        if not fused:
            _clamp(buf, t + 1, cl, cc, cv, 4 * H)
            for b in range(B):
                g, c, h = buf[t, b], buf[t + 1, b], hs[t + 1, b]
                for j in range(H):
                    h[j] = g[j] * tanh32(c[4 * H + j])
        _clamp(hs, t + 1, hl, hc, hv, 0)


@_inline
def _gru_cell(a, x, w, bhn, hp, h, keep, H):
    """a[:3H] = r z n from pre-activations x and w = h_prev Wh (r z halved), h = the new state.
    x is a itself for deeper layers, passed as the same variable (see _lstm_gates)."""
    half = np.float32(0.5)
    for j in range(2 * H):
        a[j] = half + half * tanh32(x[j] + keep * w[j])
    r, zg, ng, xn, wn = a[:H], a[H:2 * H], a[2 * H:3 * H], x[2 * H:3 * H], w[2 * H:3 * H]
    for j in range(H):  # blocks as slices: a[2H + j] written beside a[j] read is not vectorised
        n = tanh32(xn[j] + r[j] * (keep * wn[j] + bhn[j]))
        ng[j] = n
        h[j] = (keep * hp[j] - n) * zg[j] + n


@_jit
def gru_steps(gemm, X, table, A, hs, Wh, WhT, hw, bhn, reset, hl, hc, hv):
    """A (S, B, 3H) rows [r|z|n] (input terms in, or table[X[t, b]] as lstm_steps; gate values
    out), hs (S+1, B, H), Wh (H, 3H) and WhT, hw (B, 3H) scratch, bhn (H,) (zeros when the model
    has none), reset (S, B), h clamps."""
    S, B, H = reset.shape[0], hs.shape[1], hs.shape[2]
    for t in range(S):
        product_rows(gemm, hs[t], Wh, WhT, hw)
        for b in range(B):
            a, w, hp, h = A[t, b], hw[b], hs[t, b], hs[t + 1, b]
            keep = np.float32(0.0) if reset[t, b] else np.float32(1.0)  # 0: the state restarts
            if table.shape[0]:
                _gru_cell(a, table[X[t, b]], w, bhn, hp, h, keep, H)
            else:
                _gru_cell(a, a, w, bhn, hp, h, keep, H)
        _clamp(hs, t + 1, hl, hc, hv, 0)


@_jit
def rnn_steps(gemm, X, table, A, hs, Wh, WhT, z, reset, hl, hc, hv):
    """A (S, B, H) input terms (or table[X[t, b]] as lstm_steps), hs (S+1, B, H), Wh (H, H) and
    WhT, z (B, H) scratch, reset, h clamps."""
    for t in range(reset.shape[0]):
        product_rows(gemm, hs[t], Wh, WhT, z)
        if table.shape[0]:
            for b in range(A.shape[1]):
                A[t, b] = table[X[t, b]]
        _tanh_rows(A[t], z, reset[t], hs[t + 1])
        _clamp(hs, t + 1, hl, hc, hv, 0)


@_inline
def _tanh_rows(a, z, reset, out):
    """out = tanh32(a + z) row by row, (B, H); rows with reset[b] take tanh32(a): a zero state.
    out may be a itself, passed as the same variable (inlined: see _lstm_gates)."""
    for b in range(a.shape[0]):
        ab, zb, ob = a[b], z[b], out[b]
        if reset[b]:
            for j in range(a.shape[1]):
                ob[j] = tanh32(ab[j])
        else:
            for j in range(a.shape[1]):
                ob[j] = tanh32(ab[j] + zb[j])


@_jit
def input_terms(gemm, A, W, b, xz, out):
    """out[m, :N] = A[m] @ W + b for the M rows of A (M, K), W (K, N), out (M, >= N): blocks of
    len(xz) rows at a time through xz (R, N), so that the product's rows are added while in cache."""
    M, N, R = A.shape[0], W.shape[1], xz.shape[0]
    for m0 in range(0, M, R):
        m1 = min(M, m0 + R)
        product(gemm, A[m0:m1], W, xz[:m1 - m0])
        for m in range(m0, m1):
            for j in range(N):
                out[m, j] = xz[m - m0, j] + b[j]


@numba.njit(fastmath=True, error_model="numpy", cache=True, parallel=True)
def input_terms_team(gemm, A, W, b, xz, out, blocks):
    """input_terms over `blocks` threads, each a block of rows through its own xz[k] (R, N)."""
    M = A.shape[0]
    per = (M + blocks - 1) // blocks
    for k in numba.prange(blocks):
        m0, m1 = k * per, min(M, (k + 1) * per)
        if m1 > m0:
            input_terms(gemm, A[m0:m1], W, b, xz[k], out[m0:m1])


@_jit
def store_lanes(src, dst, rows, counts):
    """dst[rows[b] + t] = src[t, b] for t < counts[b]: the lanes' (S, B, H) rows into the
    recording's (N, H) rows, read in step order (src is a strided view of the chunk)."""
    for t in range(src.shape[0]):
        for b in range(src.shape[1]):
            if t < counts[b]:
                s, d = src[t, b], dst[rows[b] + t]
                for j in range(d.shape[0]):  # a loop, not a slice copy: 30% faster (strided src)
                    d[j] = s[j]


# The team barrier (lstm_steps_team): threads count their arrivals in sync[0]; a thread that has
# waited too long sets ABORT in it, with the step it waited at in sync[1], and every thread stops
# after that step, so the caller can run the rest on one thread (no deadlock when the threading
# layer runs the team's blocks one after the other, or a thread is starved).
ABORT = 1 << 62
_SPINS = 1 << 12  # loads before each wait also yields the core


def _pointer(context, builder, sig, args):
    ary = context.make_array(sig.args[0])(context, builder, args[0])
    return _cgutils.get_item_pointer(context, builder, sig.args[0], ary, [args[1]])


@_intrinsic
def _load_acquire(typingctx, arr, i):
    """arr[i] (int64) read atomically, later reads ordered after it."""
    def codegen(context, builder, sig, args):
        return builder.load_atomic(_pointer(context, builder, sig, args), "acquire", 8)
    return _types.int64(arr, i), codegen


@_intrinsic
def _fetch_add(typingctx, arr, i, v):
    """arr[i] += v atomically (earlier writes published with it); returns the old value."""
    def codegen(context, builder, sig, args):
        return builder.atomic_rmw("add", _pointer(context, builder, sig, args), args[2], "seq_cst")
    return _types.int64(arr, i, v), codegen


@_intrinsic
def _compare_swap(typingctx, arr, i, old, new):
    """arr[i] = new if arr[i] == old, atomically; returns whether it swapped."""
    def codegen(context, builder, sig, args):
        pair = builder.cmpxchg(_pointer(context, builder, sig, args), args[2], args[3], "seq_cst", "seq_cst")
        return builder.extract_value(pair, 1)
    return _types.boolean(arr, i, old, new), codegen


@numba.njit(cache=True)
def _barrier(sync, t, blocks, yield_fn, patience):
    """Wait until every block has done step t; False: stop (the team gave up at step t)."""
    n = 0
    while True:
        v = _load_acquire(sync, 0)
        if v & ABORT:
            return t < sync[1]  # a block behind finishes the step the others stopped after
        if v >= (t + 1) * blocks:
            return True
        n += 1
        if n > _SPINS:
            yield_fn()
            if n > _SPINS + patience:
                sync[1] = t  # every block that waits this long waits at the same step
                if _compare_swap(sync, 0, v, v | ABORT):
                    return False


@numba.njit(fastmath=True, error_model="numpy", cache=True, parallel=True)
def lstm_steps_team(X, table, buf, hs, WT, z, reset, cmask, cval, hmask, hval, blocks, sync, yield_fn,
                    patience):
    """lstm_steps for few lanes on a team of `blocks` threads: each owns a block of units, its
    columns of the product (WT (4H, H): row 4u + k is block k of unit u's column, k in o i f g)
    and its part of the cell, so its weights stay in its core's cache. The team lives for the
    whole chunk and meets at a spinning barrier after each step (sync: int64 (2,) zeros; see
    ABORT). z (B, 4H) scratch; clamps as (B, H) masks and values; yield_fn: the OS's yield."""
    S, B, H = reset.shape[0], hs.shape[1], hs.shape[2]
    half = np.float32(0.5)
    per = (H + blocks - 1) // blocks
    for k in numba.prange(blocks):
        u0, u1 = k * per, min(H, (k + 1) * per)
        for t in range(S):
            for b in range(B):
                g, zb, hp = buf[t, b], z[b], hs[t, b]
                x = table[X[t, b]] if table.shape[0] else g
                rst = reset[t, b]
                for u in range(u0, u1):
                    s0 = s1 = s2 = s3 = np.float32(0.0)
                    if not rst:
                        w0, w1, w2, w3 = WT[4 * u], WT[4 * u + 1], WT[4 * u + 2], WT[4 * u + 3]
                        for j in range(H):
                            v = hp[j]
                            s0 += w0[j] * v
                            s1 += w1[j] * v
                            s2 += w2[j] * v
                            s3 += w3[j] * v
                    zb[u] = x[u] + s0
                    zb[H + u] = x[H + u] + s1
                    zb[2 * H + u] = x[2 * H + u] + s2
                    zb[3 * H + u] = x[3 * H + u] + s3
                n = u1 - u0  # the cell on slices of the block, counted from 0: vectorised
                for q in range(3):
                    gq, zq = g[q * H + u0:q * H + u1], zb[q * H + u0:q * H + u1]
                    for i in range(n):
                        gq[i] = half + half * tanh32(zq[i])
                gq, zq = g[3 * H + u0:3 * H + u1], zb[3 * H + u0:3 * H + u1]
                for i in range(n):
                    gq[i] = tanh32(zq[i])
                cn, h = buf[t + 1, b][4 * H + u0:4 * H + u1], hs[t + 1, b][u0:u1]
                go, gi, gf, gg, gc = (g[u0:u1], g[H + u0:H + u1], g[2 * H + u0:2 * H + u1],
                                      g[3 * H + u0:3 * H + u1], g[4 * H + u0:4 * H + u1])
                cmb, cvb, hmb, hvb = cmask[b, u0:u1], cval[b, u0:u1], hmask[b, u0:u1], hval[b, u0:u1]
                keep = np.float32(0.0) if rst else np.float32(1.0)
                for i in range(n):
                    c = gi[i] * gg[i] + gf[i] * (keep * gc[i])
                    c = cvb[i] if cmb[i] else c
                    cn[i] = c
                    v = go[i] * tanh32(c)
                    h[i] = hvb[i] if hmb[i] else v
            if t + 1 < S:
                _fetch_add(sync, 0, 1)
                if not _barrier(sync, t, blocks, yield_fn, patience):
                    break


@_jit
def lstm_train_cell(a, c_prev, c, tc, h):
    """layers.lstm_cell_c and lstm_cell_h in one pass (training's gate order i f o g): a (B, 4H)
    pre-activations (sigmoid blocks halved) become the activations in place; c, tc = tanh(c), h."""
    B, H = c.shape
    half = np.float32(0.5)
    for b in range(B):
        ab, cb, tb, hb, pb = a[b], c[b], tc[b], h[b], c_prev[b]
        for j in range(3 * H):
            ab[j] = half + half * tanh32(ab[j])
        for j in range(H):  # from 0, as lstm_steps
            ab[3 * H + j] = tanh32(ab[3 * H + j])
        for j in range(H):
            cj = ab[H + j] * pb[j] + ab[j] * ab[3 * H + j]
            cb[j] = cj
            t = tanh32(cj)
            tb[j] = t
            hb[j] = ab[2 * H + j] * t


@_jit
def lstm_train_cell_back(a, c_prev, tc, dh_in, dh_next, dc, d):
    """One step of layers.lstm_backward's elementwise part: from dh = dh_in + dh_next and the
    running dc, the pre-activation gradients d (B, 4H) (i f o g); dc becomes dc * f."""
    B, H = dc.shape
    one = np.float32(1.0)
    for b in range(B):
        ab, db, tb, pb, dcb, hi, hn = a[b], d[b], tc[b], c_prev[b], dc[b], dh_in[b], dh_next[b]
        ai, af, ao, ag = ab[:H], ab[H:2 * H], ab[2 * H:3 * H], ab[3 * H:]
        di, df, do, dg = db[:H], db[H:2 * H], db[2 * H:3 * H], db[3 * H:]  # slices: vectorised
        for j in range(H):
            i, f, o, g = ai[j], af[j], ao[j], ag[j]
            dh = hi[j] + hn[j]
            t = tb[j]
            dcj = dcb[j] + dh * o * (one - t * t)
            di[j] = dcj * g * ((one - i) * i)
            df[j] = dcj * pb[j] * ((one - f) * f)
            do[j] = dh * t * ((one - o) * o)
            dg[j] = dcj * ((one - g * g) * i)
            dcb[j] = dcj * f


@_jit
def gru_train_cell(a, hw, h_prev, h):
    """layers.gru_cell in one pass: a (B, 3H) input pre-activations (r z halved) become r z n in
    place given hw (B, 3H) = h_prev Wh (+ b_hn); h = (h_prev - n) z + n."""
    B, H = h.shape
    half = np.float32(0.5)
    for b in range(B):
        ab, wb, pb, hb = a[b], hw[b], h_prev[b], h[b]
        for j in range(2 * H):
            ab[j] = half + half * tanh32(ab[j] + wb[j])
        r, z, ng, wn = ab[:H], ab[H:2 * H], ab[2 * H:3 * H], wb[2 * H:3 * H]  # as gru_steps
        for j in range(H):
            n = tanh32(ng[j] + r[j] * wn[j])
            ng[j] = n
            hb[j] = (pb[j] - n) * z[j] + n


@_jit
def gru_train_cell_back(a, hn, h_prev, dh_in, dh_next, d, dh_, zpart):
    """One step of layers.gru_backward's elementwise part: d (B, 3H) the input pre-activation
    gradients, dh_ (B, 3H) those of h_prev Wh, zpart = dh z (dh_next is then zpart + dh_ Wh^T)."""
    B, H = h_prev.shape
    one = np.float32(1.0)
    for b in range(B):
        ab, db, gb = a[b], d[b], dh_[b]
        ar, az, an = ab[:H], ab[H:2 * H], ab[2 * H:]
        dr_, dz_, dn_ = db[:H], db[H:2 * H], db[2 * H:]  # slices, as lstm_train_cell_back
        gr, gz, gn = gb[:H], gb[H:2 * H], gb[2 * H:]
        hnb, hpb, hib, hxb, zb = hn[b], h_prev[b], dh_in[b], dh_next[b], zpart[b]
        for j in range(H):
            r, z, n = ar[j], az[j], an[j]
            dh = hib[j] + hxb[j]
            dan = dh * (one - z) * (one - n * n)
            dn_[j] = dan
            dr = dan * hnb[j] * r * (one - r)
            dz = dh * (hpb[j] - n) * z * (one - z)
            dr_[j], dz_[j] = dr, dz
            gr[j], gz[j], gn[j] = dr, dz, dan * r
            zb[j] = dh * z


# float64: the 8th convergent, tanh(u) ~ u * N(y) / D(y), for |x| <= 19.1 (beyond, tanh is 1.0)
_M1, _M2, _M3, _M4 = 7.0 / 51.0, 1.0 / 255.0, 2.0 / 69615.0, 1.0 / 34459425.0
_E1, _E2, _E3, _E4 = 8.0 / 17.0, 7.0 / 255.0, 4.0 / 9945.0, 1.0 / 765765.0


@numba.njit(error_model="numpy", cache=True, inline="always")
def tanh64(x):
    """tanh of a float64 within 5 ulp (relative error 4.7e-16), vectorisable; no fastmath."""
    u = min(max(x, -19.1), 19.1) * 0.25
    y = u * u
    a = u * (1.0 + y * (_M1 + y * (_M2 + y * (_M3 + y * _M4))))
    b = 1.0 + y * (_E1 + y * (_E2 + y * (_E3 + y * _E4)))
    a, b = 2.0 * a * b, a * a + b * b
    return min(max(2.0 * a * b / (a * a + b * b), -1.0), 1.0)  # rounding could pass 1 by an ulp


@numba.njit(error_model="numpy", cache=True, nogil=True)
def tanh64_array(a, out):
    """out[:] = tanh64(a) (the tests check tanh64's error with it)."""
    for j in range(a.shape[0]):
        out[j] = tanh64(a[j])


@numba.njit(error_model="numpy", cache=True, nogil=True)  # no fastmath: float64 as Model.run
def rnn_one(xh, h, Whh, reset):
    """lanes.steps_one compiled: xh (S, H) rows Wxh x + bh become tanh(Whh h + row) in place,
    one step after another from h (H,); reset (S,) uint8: the state restarts at zeros there."""
    H = h.shape[0]
    z = np.empty(H)
    hp = h.copy()
    for s in range(xh.shape[0]):
        if reset[s]:
            hp = np.zeros(H)
        np.dot(Whh, hp, z)
        row = xh[s]
        for j in range(H):
            row[j] = tanh64(row[j] + z[j])
        hp = row
    return hp.copy()


@_jit
def rnn_lanes(gemm, xh, h, WhhT, Whh, reset):
    """lanes._steps compiled (float32): xh (S, B, H) input terms become the states in place,
    xh[s] = tanh(xh[s] + h WhhT) from h (B, H) (Whh: WhhT's transpose, C-contiguous, for few
    lanes); reset (S, B): that lane starts from zeros. Returns the last state (a copy)."""
    z = np.empty(h.shape, np.float32)
    hp = h.copy()
    for s in range(xh.shape[0]):
        product_rows(gemm, hp, WhhT, Whh, z)
        row = xh[s]
        _tanh_rows(row, z, reset[s], row)
        hp = row
    return hp.copy()


@_jit
def lstm_train_forward(gemm, gates, WhT, hs, cs, tcs):
    """layers.lstm_forward's time loop, float32: gates[t] += hs[t] WhT^T (WhT (4H, H), sigmoid
    rows halved), then lstm_train_cell; no Python between the steps (threads run side by side)."""
    for t in range(gates.shape[0]):
        product_nt(gemm, hs[t], WhT, gates[t], 1.0)
        lstm_train_cell(gates[t], cs[t], cs[t + 1], tcs[t], hs[t + 1])


@_jit
def lstm_train_backward(gemm, gates, Wh, cs, tcs, dhs, dh_next, dc, dA):
    """layers.lstm_backward's time loop, float32: lstm_train_cell_back, then dh_next = dA[t] Wh^T
    (Wh (H, 4H)); dh_next and dc (B, H) are updated in place."""
    for t in range(gates.shape[0] - 1, -1, -1):
        lstm_train_cell_back(gates[t], cs[t], tcs[t], dhs[t], dh_next, dc, dA[t])
        product_nt(gemm, dA[t], Wh, dh_next, 0.0)


@_jit
def gru_train_forward(gemm, gates, WhT, bhn, hs, hn, hw):
    """layers.gru_forward's time loop, float32: hw = hs[t] WhT^T (+ bhn on the n block; WhT
    (3H, H), r z rows halved), hn[t] = its n block, then gru_train_cell. hw (B, 3H) scratch."""
    H = hs.shape[2]
    for t in range(gates.shape[0]):
        product_nt(gemm, hs[t], WhT, hw, 0.0)
        for b in range(hw.shape[0]):
            for j in range(H):
                hw[b, 2 * H + j] += bhn[j]
                hn[t, b, j] = hw[b, 2 * H + j]
        gru_train_cell(gates[t], hw, hs[t], hs[t + 1])


@_jit
def gru_train_backward(gemm, gates, Wh, hs, hn, dhs, dh_next, dA, dAh, zpart):
    """layers.gru_backward's time loop, float32: gru_train_cell_back, then
    dh_next = zpart + dAh[t] Wh^T (Wh (H, 3H)), in place."""
    for t in range(gates.shape[0] - 1, -1, -1):
        gru_train_cell_back(gates[t], hn[t], hs[t], dhs[t], dh_next, dA[t], dAh[t], zpart)
        product_nt(gemm, dAh[t], Wh, dh_next, 0.0)
        dh_next += zpart
