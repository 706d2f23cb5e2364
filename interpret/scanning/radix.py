"""Average ranks of float32 rows, compiled (numba): a radix sort of 32-bit keys per row.

ranks.py's numpy form sorts packed uint64 (key, position) words with np.sort, row by row; this
gives the same ranks at a third to a fifth of the cost (about 23 against 60-100 ms for a row of
1M characters, ranked over all and within each character). Each value maps to
ranks.value_keys's 32-bit key (in the loop); one counting pass by the keys' top 16 bits
scatters (key << 32 | position) words into buckets (one word: one cache line a move), and each
bucket is sorted by the keys' low 16 bits while in cache. One walk over the sorted keys gives
every place its rank over all and, counting the places of each character passed so far,
within its character; tied runs get their mean. Every step is integer work or exact
half-integer arithmetic (no fastmath), so the ranks equal the numpy form's bit for bit.
"""
import numba
import numpy as np

from interpret.model import jit

TOP_BUCKETS = 1 << 16      # the first pass sorts by the keys' top 16 bits
SHORT = 24                 # buckets up to this long: insertion sort


def available(x: np.ndarray) -> bool:
    """Whether ranks_rows takes x (B, N): float32, N <= 2^24 (so that every centred rank, a
    half-integer below N / 2, is exact in the float32 scratch), numba on."""
    return jit.enabled() and x.dtype == np.float32 and x.ndim == 2 and 0 < x.shape[1] <= 2**24


def ranks_rows(x: np.ndarray, codes: np.ndarray | None = None, counts: np.ndarray | None = None,
               dtype=np.float64):
    """(rc, rg): rc (B, N) the centred average ranks of each row of the float32 x (B, N) (ties
    share their mean); with codes (N,) in 0..V-1 and their counts (V,) (every one above 0), rg
    (B, N) the centred average ranks among each code's positions; else rg None. dtype float64
    or float32 (exact too: half-integers below 2^23)."""
    x = np.ascontiguousarray(x)
    rc = np.empty(x.shape, dtype)
    if codes is None:
        _ranks_rows(x, np.zeros(0, np.uint8), np.zeros(0, np.int64), rc, rc[:0])
        return rc, None
    rg = np.empty(x.shape, dtype)
    _ranks_rows(x, codes, np.asarray(counts, np.int64), rc, rg)
    return rc, rg


_jit = numba.njit(cache=True, nogil=True)


@_jit
def _ranks_rows(x, codes, counts, rc, rg):
    """rc[b] (and rg[b], if rg has rows) of each row x[b], with one set of scratch arrays.
    Both ranks of a position go to one float32 pair of `both` (random writes, one cache
    line each; the memory of the sort's scratch), copied into rc and rg in position order
    afterwards."""
    n, grouped = x.shape[1], rg.shape[0] > 0
    kp = np.empty(n, np.uint64)                       # sorted (key << 32 | position) words
    tmp = np.empty(n, np.uint64)                      # the sort's scratch, then `both`
    both = tmp.view(np.float32)[:n * (2 if grouped else 1)].reshape((n, -1))
    start = np.empty(TOP_BUCKETS + 1, np.uint32)
    code = np.empty(n if grouped else 0, codes.dtype)
    next_rank, run = np.zeros(len(counts)), np.zeros(len(counts), np.int64)
    for b in range(x.shape[0]):
        _sort_row(x[b], kp, tmp, start)
        for i in range(code.shape[0]):                 # independent loads, in sorted order
            code[i] = codes[kp[i] & LOW32]
        _put_ranks(kp, code, counts, both, next_rank, run)
        if grouped:
            for t in range(n):
                rc[b, t], rg[b, t] = both[t, 0], both[t, 1]
        else:
            for t in range(n):
                rc[b, t] = both[t, 0]


U8, U16, ONE = np.uint32(255), np.uint32(16), np.uint32(1)   # unsigned: no index checks
B8, K0, K8 = np.uint64(255), np.uint64(32), np.uint64(40)    # a word's key bits 0-7, 8-15
LOW32 = np.uint64(0xFFFFFFFF)                                # a word's position


@_jit
def _key(u):
    """The order-preserving 32-bit key of float32 bits u (ranks.value_keys; -0.0 as +0.0)."""
    if u & np.uint32(0x7FFFFFFF) == 0:
        return np.uint32(0x80000000)
    sign = np.uint32(0x80000000)
    return (u ^ np.uint32(0xFFFFFFFF)) if u & sign else (u | sign)


@_jit
def _sort_row(row, kp, tmp, start):
    """kp = row's (key << 32 | position) words in order (ties by position): one counting pass
    by the keys' top 16 bits (start (2^16 + 1,) uint32: each bucket's first place), then each
    bucket by the keys' low 16 (in cache). One word per element: one cache line a move."""
    bits = row.view(np.uint32)
    start[:] = 0
    for i in range(row.shape[0]):
        start[(_key(bits[i]) >> U16) + ONE] += ONE
    for d in range(TOP_BUCKETS):
        start[d + 1] += start[d]
    at = start[:-1].copy()
    for i in range(row.shape[0]):
        k = _key(bits[i])
        j = at[k >> U16]
        kp[j] = (np.uint64(k) << K0) | np.uint64(i)
        at[k >> U16] = j + ONE
    at0, at1 = np.empty(256, np.uint32), np.empty(256, np.uint32)
    for d in range(TOP_BUCKETS):
        if start[d + 1] - start[d] > ONE:
            _sort_low(kp, tmp, start[d], start[d + 1], at0, at1)


@_jit
def _sort_low(kp, tmp, lo, hi, at0, at1):
    """Sort kp[lo:hi] (one top-16-bit bucket, positions ascending) by the keys' low 16 bits:
    insertion sort of the words when short, else two stable counting passes of 8 bits
    (counters at0, at1 (256,) uint32) through tmp and back."""
    if hi - lo <= SHORT:
        for i in range(lo + 1, hi):
            v, j = kp[i], i
            while j > lo and kp[j - 1] > v:
                kp[j] = kp[j - 1]
                j -= 1
            kp[j] = v
        return
    at0[:] = 0
    at1[:] = 0
    for i in range(lo, hi):
        at0[(kp[i] >> K0) & B8] += ONE
        at1[(kp[i] >> K8) & B8] += ONE
    t0, t1 = lo, lo
    for d in range(256):
        t0, at0[d] = t0 + at0[d], t0
        t1, at1[d] = t1 + at1[d], t1
    _scatter(kp, tmp, lo, hi, K0, at0)
    _scatter(tmp, kp, lo, hi, K8, at1)


@numba.njit(cache=True, nogil=True, inline="always")
def _scatter(src, dst, lo, hi, shift, at):
    """One stable counting pass: src[lo:hi] into dst by the 8 key bits at `shift` (at: where
    each digit's words go next)."""
    for i in range(lo, hi):
        v = src[i]
        d = (v >> shift) & B8
        j = at[d]
        dst[j] = v
        at[d] = j + ONE


@_jit
def _put_ranks(kp, code, counts, both, next_rank, run):
    """both[pos[i], 0] = the centred average rank of sorted place i (pos[i] = kp[i]'s low 32
    bits; a run of equal keys, the high 32, gets the mean of its places); if both has 2
    columns, both[pos[i], 1] the same within the places of its code code[i] (next_rank:
    scratch, float64, the centred rank within each code of the next place; run: zeros in and
    out). Half-integers: every sum is exact."""
    n = kp.shape[0]
    grouped = both.shape[1] > 1
    next_rank[:] = (1 - counts) / 2.0
    r = (1 - n) / 2.0                                       # the next place's, over all
    i = 0
    while i < n:
        j = i
        while j + 1 < n and kp[j + 1] >> K0 == kp[i] >> K0:
            j += 1
        if j == i:                                          # no tie: the common case
            p = kp[i] & LOW32
            both[p, 0] = r
            r += 1.0
            if grouped:
                c = code[i]
                both[p, 1] = next_rank[c]
                next_rank[c] += 1.0
            i += 1
            continue
        mean = r + (j - i) / 2.0
        for k in range(i, j + 1):
            both[kp[k] & LOW32, 0] = mean
        r += j - i + 1
        if grouped:                                         # m places of code c tie: the
            for k in range(i, j + 1):                       # mean of the next m
                run[code[k]] += 1
            for k in range(i, j + 1):
                c = code[k]
                both[kp[k] & LOW32, 1] = next_rank[c] + (run[c] - 1) / 2.0
            for k in range(i, j + 1):
                c = code[k]
                next_rank[c] += run[c]
                run[c] = 0
        i = j + 1
