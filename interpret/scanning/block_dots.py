"""The feature products of a block of units, compiled (numba): one pass instead of six numpy ones.

The in-memory scan dots every unit's centred ranks with the features (the raw statistic), its
ranks within each character with their beyond_char rows, and its centred values with the
standardised features (pearson_r), and needs the three norms. With numpy that is three matrix
products (each streams the feature rows through memory and packs them) and three more passes,
over float64 copies. Here one pass, in tiles of positions that stay in cache, reads the float32
values and ranks once (radix.py gives the ranks in float32: half-integers, exact). The sums are
float64 in another order than BLAS's (fastmath reassociation, so they vectorise): the scores
move in the last bits, within 1e-12 of the numpy form (tests). memory.py imports this with
numba (model.jit.enabled()); its numpy products are the plain form.
"""
import numba
import numpy as np

TILE = 512          # positions per tile: 44 feature rows and a block's rows of it fit in L2


def block_dots(a, rc, rg, mean, fb, weight, fs, bg, zs):
    """(raw (B, F), beyond (B, F), pearson (B, Fz), norms (B, 3)) for a block of B units: rc @
    [fb; fs].T, rg @ [fb * weight; bg].T, (a - mean) @ zs.T and the squared norms of rc, rg and
    a - mean (columns 0-2), from float32 values a, centred ranks rc and ranks within characters
    rg (B, N), the float64 means (B,) of a, the binary features' 0/1 values fb (Fb, N) uint8 and
    the float64 weights (N,) of their beyond rows, and float64 feature rows fs, bg (F - Fb, N)
    and zs (Fz, N). A binary row is made float64 (and weighted) a tile at a time, once for the
    block, where a float64 row would be read from memory again for every block: the same
    values, so the same sums."""
    b, f = len(rc), len(fb) + len(fs)
    fz = 0 if zs is None else len(zs)
    raw, beyond = np.zeros((b, f)), np.zeros((b, f))
    pearson, norms = np.zeros((b, fz)), np.zeros((b, 3))
    _dots(a, rc, rg, mean, fb, weight, fs, bg, np.zeros((0, rc.shape[1])) if zs is None else zs,
          raw, beyond, pearson, norms)
    return raw, beyond, pearson, norms


_jit = numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})


@_jit
def _dot(u, v):
    """sum u * v over two float64 vectors (reassociated: it vectorises)."""
    s = 0.0
    for t in range(u.shape[0]):
        s += u[t] * v[t]
    return s


@_jit
def _dot4(u0, u1, u2, u3, v):
    """(u0 . v, u1 . v, u2 . v, u3 . v): v is loaded once for four rows."""
    s0 = s1 = s2 = s3 = 0.0
    for t in range(v.shape[0]):
        w = v[t]
        s0 += u0[t] * w
        s1 += u1[t] * w
        s2 += u2[t] * w
        s3 += u3[t] * w
    return s0, s1, s2, s3


@_jit
def _dot4x2(u0, u1, u2, u3, v, w):
    """(u0 . v, ..., u3 . v, u0 . w, ..., u3 . w): eight sums, each u loaded once for two
    feature rows (eight independent chains keep both FMA units busy)."""
    a0 = a1 = a2 = a3 = b0 = b1 = b2 = b3 = 0.0
    for t in range(v.shape[0]):
        p, q = v[t], w[t]
        x0, x1, x2, x3 = u0[t], u1[t], u2[t], u3[t]
        a0 += x0 * p
        a1 += x1 * p
        a2 += x2 * p
        a3 += x3 * p
        b0 += x0 * q
        b1 += x1 * q
        b2 += x2 * q
        b3 += x3 * q
    return a0, a1, a2, a3, b0, b1, b2, b3


@_jit
def _products(rows, m, feats, t0, out):
    """out[b, k] += rows[b, :m] . feats[k, t0:t0 + m] for every row b and feature k: four rows
    and two features at a time, then four rows and one feature, then one and one."""
    nb, nf = rows.shape[0], feats.shape[0]
    k = 0
    while k + 2 <= nf:
        v, w = feats[k, t0:t0 + m], feats[k + 1, t0:t0 + m]
        b = 0
        while b + 4 <= nb:
            s = _dot4x2(rows[b, :m], rows[b + 1, :m], rows[b + 2, :m], rows[b + 3, :m], v, w)
            for i in range(4):
                out[b + i, k] += s[i]
                out[b + i, k + 1] += s[4 + i]
            b += 4
        for b in range(b, nb):
            out[b, k] += _dot(rows[b, :m], v)
            out[b, k + 1] += _dot(rows[b, :m], w)
        k += 2
    if k < nf:
        v = feats[k, t0:t0 + m]
        b = 0
        while b + 4 <= nb:
            s0, s1, s2, s3 = _dot4(rows[b, :m], rows[b + 1, :m], rows[b + 2, :m], rows[b + 3, :m], v)
            out[b, k] += s0
            out[b + 1, k] += s1
            out[b + 2, k] += s2
            out[b + 3, k] += s3
            b += 4
        for b in range(b, nb):
            out[b, k] += _dot(rows[b, :m], v)


@_jit
def _dots(a, rc, rg, mean, fb, weight, fs, bg, zs, raw, beyond, pearson, norms):
    """Accumulate the products into raw, beyond, pearson and norms (zeros in), tile by tile;
    each tile's rows are made float64 once (c, g, x: (B, TILE) scratch), and so are the
    binary features' rows and their weighted beyond rows (fbt, fgt: (Fb, TILE))."""
    nb, n = rc.shape
    nf = fb.shape[0]
    c, g, x = np.empty((nb, TILE)), np.empty((nb, TILE)), np.empty((nb, TILE))
    fbt, fgt = np.empty((nf, TILE)), np.empty((nf, TILE))
    for t0 in range(0, n, TILE):
        m = min(TILE, n - t0)
        for k in range(nf):
            for t in range(m):
                v = np.float64(fb[k, t0 + t])
                fbt[k, t] = v
                fgt[k, t] = v * weight[t0 + t]
        for b in range(nb):
            cb, gb, xb, mb = c[b, :m], g[b, :m], x[b, :m], mean[b]
            for t in range(m):
                cb[t] = rc[b, t0 + t]
                gb[t] = rg[b, t0 + t]
                xb[t] = np.float64(a[b, t0 + t]) - mb
            norms[b, 0] += _dot(cb, cb)
            norms[b, 1] += _dot(gb, gb)
            norms[b, 2] += _dot(xb, xb)
        _products(c, m, fbt, 0, raw[:, :nf])
        _products(g, m, fgt, 0, beyond[:, :nf])
        _products(c, m, fs, t0, raw[:, nf:])
        _products(g, m, bg, t0, beyond[:, nf:])
        _products(x, m, zs, t0, pearson)
