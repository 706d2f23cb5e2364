"""Average ranks of float32 rows, compiled (numba): a radix sort of 32-bit keys per row.

ranks.py's numpy form sorts packed uint64 (key, position) words with np.sort, row by row; this
gives the same ranks at a third to a fifth of the cost (about 16-23 against 60-100 ms for a row
of 1M characters, ranked over all and within each character). Each value maps to
ranks.value_keys's 32-bit key (in the loop); one counting pass by the keys' top 16 bits
scatters (key << 32 | code << 24 | position) words into buckets (one word: one cache line a
move; the character's code rides along when it fits a byte), and each bucket is sorted by the
keys' low 16 bits while in cache. One walk over the sorted keys gives every place its rank
over all and, counting the places of each character passed so far, within its character;
tied runs get their mean. The ranks are staged in bins of 1024 positions and put in place a
bin at a time, so neither the walk nor the puts write at random across the row. Every step is
integer work or exact half-integer arithmetic (no fastmath), so the ranks equal the numpy
form's bit for bit.
"""
import numba
import numpy as np

from interpret.model import jit

TOP_BUCKETS = 1 << 16      # the first pass sorts by the keys' top 16 bits
SHORT = 24                 # buckets up to this long: insertion sort


def available(x: np.ndarray) -> bool:
    """Whether ranks_rows takes x (B, N): float32, N <= 2^24 (every position fits a word's 24
    bits, every centred rank, a half-integer below N / 2, is exact in float32), numba on."""
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
        _ranks_rows(x, np.zeros(0, np.uint8), np.zeros(0, np.int64), rc, rc[:0], False)
        return rc, None
    rg = np.empty(x.shape, dtype)
    _ranks_rows(x, codes, np.asarray(counts, np.int64), rc, rg, codes.dtype == np.uint8)
    return rc, rg


_jit = numba.njit(cache=True, nogil=True)


@_jit
def _ranks_rows(x, codes, counts, rc, rg, packed):
    """rc[b] (and rg[b], if rg has rows) of each row x[b], with one set of scratch arrays:
    the sorted words, then each place's ranks staged by position (stage_ranks) and put in
    place (unstage). packed: codes are uint8, carried in each word's bits 24-31."""
    n, grouped = x.shape[1], rg.shape[0] > 0
    kp = np.empty(n, np.uint64)                       # sorted (key << 32 | code << 24 | position)
    tmp = np.empty(n, np.uint64)                      # the sort's scratch, then the staged ranks
    start = np.empty(TOP_BUCKETS + 1, np.uint32)
    code = np.empty(n if grouped and not packed else 0, codes.dtype)
    fill = np.empty((n + BIN - 1) // BIN, np.int64)
    next2, run = np.zeros(len(counts), np.int64), np.zeros(len(counts), np.int64)
    for b in range(x.shape[0]):
        _sort_row(x[b], codes if packed else codes[:0], kp, tmp, start)
        for i in range(code.shape[0]):                 # independent loads, in sorted order
            code[i] = codes[kp[i] & POSITION]
        _stage_ranks(kp, code, grouped, counts, tmp, fill, next2, run)
        _unstage(tmp, rc[b], rg[b] if grouped else rc[b, :0])


U16, ONE = np.uint32(16), np.uint32(1)                     # unsigned: no index checks
B8, K0, K8 = np.uint64(255), np.uint64(32), np.uint64(40)    # a word's key bits 0-7, 8-15
POSITION, CODE = np.uint64(0xFFFFFF), np.uint64(24)          # a word's position; its code's shift
BIN, BIN_BITS = 1 << 10, np.uint64(10)                     # staged ranks: bins of 1024 positions
RANK_BITS, RANK_MASK = np.uint64(39), np.uint64((1 << 25) - 1)   # fields of a staged word
IN_BIN = np.uint64(BIN - 1)


@_jit
def _key(u):
    """The order-preserving 32-bit key of float32 bits u (ranks.value_keys; -0.0 as +0.0)."""
    if u & np.uint32(0x7FFFFFFF) == 0:
        return np.uint32(0x80000000)
    sign = np.uint32(0x80000000)
    return (u ^ np.uint32(0xFFFFFFFF)) if u & sign else (u | sign)


@_jit
def _sort_row(row, codes, kp, tmp, start):
    """kp = row's (key << 32 | code << 24 | position) words in order (codes (N,) uint8, or no
    codes: code 0; ties by code, then position): one counting pass by the keys' top 16 bits
    (start (2^16 + 1,) uint32: each bucket's first place), then each bucket by the keys' low 16
    (in cache). One word per element: one cache line a move."""
    bits = row.view(np.uint32)
    start[:] = 0
    for i in range(row.shape[0]):
        start[(_key(bits[i]) >> U16) + ONE] += ONE
    for d in range(TOP_BUCKETS):
        start[d + 1] += start[d]
    at = start[:-1].copy()
    with_codes = codes.shape[0] > 0
    for i in range(row.shape[0]):
        k = _key(bits[i])
        j = at[k >> U16]
        w = (np.uint64(k) << K0) | np.uint64(i)
        if with_codes:
            w |= np.uint64(codes[i]) << CODE
        kp[j] = w
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
def _stage_ranks(kp, code, grouped, counts, stage, fill, next2, run):
    """Walk the sorted words kp once: sorted place i (position p = its low 24 bits) gets its
    centred average rank over all (a run of equal keys, the high 32 bits, gets the mean of its
    places) and, if grouped, within the places of its code (code[i], or the word's bits 24-31
    if code is empty). Both go doubled (integers: every rank is a half-integer) and offset by
    N (so 1..2N-1: 25 bits for N <= 2^24) into one word, (2 rc + N) << 39 | (2 rg + N) << 10 |
    p mod 1024, appended to p's bin of 1024 positions in stage (N,): bin k fills
    stage[1024 k:1024 (k + 1)] (fill: the next slot of each). The appends go down one stream
    a bin, a cache line filled by 8 of them, where writing each rank straight to its position
    would bring in a line a place. next2, run (V,) int64: scratch."""
    n = kp.shape[0]
    for k in range(fill.shape[0]):
        fill[k] = k * BIN
    next2[:] = 1 - counts                                  # 2 x the next rank within each code
    r2 = 1 - n                                             # 2 x the next place's, over all
    packed = code.shape[0] == 0
    i = 0
    while i < n:
        j = i
        while j + 1 < n and kp[j + 1] >> K0 == kp[i] >> K0:
            j += 1
        if j == i:                                         # no tie: the common case
            w = kp[i]
            word = np.uint64(r2 + n) << RANK_BITS
            r2 += 2
            if grouped:
                c = _code_of(kp, code, i, packed)
                word |= np.uint64(next2[c] + n) << BIN_BITS
                next2[c] += 2
            _append(stage, fill, w & POSITION, word)
            i += 1
            continue
        mean2 = np.uint64(r2 + j - i + n) << RANK_BITS     # a tied run: its mean place
        r2 += 2 * (j - i + 1)
        if not grouped:
            for k in range(i, j + 1):
                _append(stage, fill, kp[k] & POSITION, mean2)
            i = j + 1
            continue
        for k in range(i, j + 1):                          # m places of code c tie: the mean
            run[_code_of(kp, code, k, packed)] += 1        # of its next m
        for k in range(i, j + 1):
            c = _code_of(kp, code, k, packed)
            _append(stage, fill, kp[k] & POSITION,
                    mean2 | (np.uint64(next2[c] + run[c] - 1 + n) << BIN_BITS))
        for k in range(i, j + 1):
            c = _code_of(kp, code, k, packed)
            next2[c] += 2 * run[c]
            run[c] = 0
        i = j + 1


@numba.njit(cache=True, nogil=True, inline="always")
def _code_of(kp, code, i, packed):
    """The code of sorted place i: its word's bits 24-31 if packed, else code[i]."""
    return np.int64((kp[i] >> CODE) & B8) if packed else np.int64(code[i])


@numba.njit(cache=True, nogil=True, inline="always")
def _append(stage, fill, p, word):
    """word, with p's place in its bin, to the end of p's bin of stage."""
    k = p >> BIN_BITS
    at = fill[k]
    stage[at] = word | (p & IN_BIN)
    fill[k] = at + 1


@_jit
def _unstage(stage, rc, rg):
    """rc (N,) and, if rg has places, rg (N,): the ranks stage_ranks staged, each put at its
    position; one bin at a time, so the writes stay within 1024 places."""
    n = stage.shape[0]
    grouped = rg.shape[0] > 0
    for lo in range(0, n, BIN):
        for at in range(lo, min(n, lo + BIN)):
            w = stage[at]
            p = lo + np.int64(w & IN_BIN)
            rc[p] = (np.int64(w >> RANK_BITS) - n) * 0.5
            if grouped:
                rg[p] = (np.int64((w >> BIN_BITS) & RANK_MASK) - n) * 0.5
