"""Average ranks of many long series, fast: compiled radix sorts, or one SIMD sort of packed keys.

Two kinds: over the whole series (centred_ranks), and within groups of positions that share a
code, the current character (ranks_in_groups). Ranked within its character, any function of the
character ties inside every group and scores exactly chance, whatever its shape (the in-memory engine's
beyond_char). Values that float32 holds map to 32-bit keys in value order (value_keys). With
numba, radix.py sorts those keys in compiled loops (3-5x faster); the numpy form here, the
plain one and the fallback, packs each key with its position (and, for the groups, below its
code) into a uint64, and one np.sort (numpy's SIMD sort) gives the order and the ties at once.
Both give the same ranks, bit for bit (exact half-integers).
"""
import numpy as np

from interpret.model import jit


class Groups:
    """Positions 0..N-1 grouped by codes (N,) in 0..V-1 (every code present): what ranking
    within the groups and summing over them needs, computed once per scan."""

    def __init__(self, codes: np.ndarray):
        codes = np.asarray(codes)
        self.counts = np.bincount(codes).astype(np.float64)            # (V,) n_c
        v = len(self.counts)
        small = np.uint8 if v <= 256 else np.uint16 if v <= 65536 else np.int64
        self.codes = codes.astype(small, copy=False)                   # (N,) radix-sortable
        sorted_codes = np.repeat(np.arange(v), self.counts.astype(np.int64))
        middle = np.cumsum(self.counts) - (self.counts + 1) / 2        # (V,) middle sorted place
        self.position = np.arange(len(codes)) - middle[sorted_codes]   # (N,) centred group rank
        self.same = sorted_codes[1:] == sorted_codes[:-1]              # (N-1,) same group as next
        self.inv_count = 1.0 / self.counts[self.codes]                 # (N,) 1 / n_c(t)


def centred_ranks(x: np.ndarray) -> np.ndarray:
    """(B, N) float64 average ranks (1..N, ties share their mean) of each row of x (B, N),
    minus (N + 1) / 2."""
    return _ranks(x, None)[0]


def ranks_in_groups(x: np.ndarray, groups: Groups, dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    """(rc, rg), both (B, N) float64: the centred_ranks of each row of x (B, N), and its average
    ranks within each group (1..n_c among the n_c positions holding code c, ties share their
    mean) minus (n_c + 1) / 2. A row constant within every group has rg all 0. dtype float32
    gives both in float32 where the compiled ranks run (same values: half-integers below 2^23),
    float64 otherwise."""
    return _ranks(x, groups, dtype)


def _ranks(x, groups, dtype=np.float64):
    """centred_ranks of x (B, N) and, with groups, its ranks within them: compiled radix sorts
    (radix.py) for float32 x, else one sort of packed (value, position) keys per row for each,
    or one sort by value and a radix pass by code."""
    x32 = _as_float32(x)
    if x32 is not None and jit.enabled():
        from interpret.scanning import radix          # numba with it, on first use
        if radix.available(x32):
            return radix.ranks_rows(x32, *((groups.codes, groups.counts) if groups is not None
                                           else ()), dtype=dtype)
    b, n = x.shape
    rc = np.empty((b, n))
    rg = np.empty((b, n)) if groups is not None else None
    position = np.arange(n) - (n - 1) / 2.0           # centred rank of each sorted position
    bits = max(1, (n - 1).bit_length())               # for a position
    at = np.arange(n, dtype=np.uint64)
    code_keys = None                                  # (N,) code << (32 + bits), if it fits
    if groups is not None and 32 + bits + (len(groups.counts) - 1).bit_length() <= 64:
        code_keys = groups.codes.astype(np.uint64) << np.uint64(32 + bits)
    for i, row in enumerate(x):
        keys = value_keys(row)                        # (N,) uint64 or None
        if keys is None or (groups is not None and code_keys is None):
            _ranks_by_argsort(row, groups, position, rc[i], None if rg is None else rg[i])
            continue
        keys <<= np.uint64(bits)
        keys |= at                                    # value key, then position: (N,) distinct
        if code_keys is not None:                     # code, value key, position: (N,)
            _put_sorted(rg[i], np.bitwise_or(keys, code_keys), bits, groups.position)
        _put_sorted(rc[i], keys, bits, position)
    return rc, rg


def _as_float32(x: np.ndarray) -> np.ndarray | None:
    """x (B, N) as float32 if float32 holds every value (ranks depend on order and ties only),
    else None."""
    if x.dtype == np.float32:
        return x
    if x.dtype != np.float64:
        return None
    x32 = x.astype(np.float32)
    return x32 if np.array_equal(x32, x) else None


def _put_sorted(out: np.ndarray, packed: np.ndarray, bits: int, position: np.ndarray):
    """Sort packed keys (N,) (a tie key above `bits` bits of position) in place and give each
    position its average centred rank (position: the centred rank of each sorted place)."""
    packed.sort()
    order = (packed & np.uint64((1 << bits) - 1)).view(np.int64)
    tie = packed >> np.uint64(bits)
    _put_ranks(out, order, position, tie[1:] == tie[:-1])


def _ranks_by_argsort(row, groups, position, rc, rg):
    """rc (and rg) of one row (N,) from sort_order and a stable radix pass over the codes in
    value order (values float32 does not hold, or too many codes to pack)."""
    order, s = sort_order(row)                        # (N,) each
    _put_ranks(rc, order, position, s[1:] == s[:-1])
    if groups is not None:                            # (code, value) order: stable sort by code
        by_code = np.argsort(groups.codes[order], kind="stable")
        s = s[by_code]
        _put_ranks(rg, order[by_code], groups.position, (s[1:] == s[:-1]) & groups.same)


def _put_ranks(out: np.ndarray, order: np.ndarray, position: np.ndarray, tied: np.ndarray):
    """out[order] = position (N,), the centred rank of each sorted position, with each run of
    tied sorted positions (tied[i]: i ties with i + 1) given the run's mean. Within a run
    position must grow by 1 a step (true inside a group)."""
    out[order] = position
    tied = np.flatnonzero(tied)
    if not len(tied):
        return
    cut = np.flatnonzero(np.diff(tied) != 1)          # runs: [first, last] sorted positions
    first, last = tied[np.append(0, cut + 1)], tied[np.append(cut, len(tied) - 1)] + 1
    length = last - first + 1
    at = (np.repeat(first - np.cumsum(np.append(0, length[:-1])), length) +
          np.arange(length.sum()))                    # every sorted position inside a run
    out[order[at]] = np.repeat((position[first] + position[last]) / 2.0, length)


def sort_order(col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(order, keys): order (N,) = np.argsort(col) (ties in any order), keys (N,) the sort keys
    in that order: equal keys <=> equal values. value_keys, with the position in the low 32 bits
    and one np.sort (numpy's SIMD sort: 3-5x faster than two stable 16-bit radix passes); else
    np.argsort."""
    keys = value_keys(col)
    if keys is None or len(col) >= 2**32:
        order = np.argsort(col)
        return order, col[order]
    keys <<= np.uint64(32)
    keys |= np.arange(len(col), dtype=np.uint64)
    keys.sort()
    return (keys & np.uint64(0xFFFFFFFF)).view(np.int64), keys >> np.uint64(32)


def value_keys(col: np.ndarray) -> np.ndarray | None:
    """(N,) uint64 keys below 2^32 in the order of the values col (N,), equal where they are
    equal; None unless col is float32 or float64 that float32 holds exactly. Float32 values map
    to unsigned ints with the same order: flip all bits of negatives, the sign bit of the rest
    (-0.0 is made +0.0 first)."""
    c32 = np.add(col, np.float32(0.0), dtype=np.float32)   # + 0.0 turns -0.0 into +0.0
    if col.dtype != np.float32 and not np.array_equal(c32, col):
        return None
    i = c32.view(np.int32)
    i ^= (i >> 31) | np.int32(-2**31)                 # all bits or the sign bit, in place
    return i.view(np.uint32).astype(np.uint64)


def ranks_from_counts(code: np.ndarray, count: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(P,) the centred average rank within its group of each of P distinct (code, value) pairs,
    given sorted by code, then value, with count (P,) positions each; counts (V,) the group
    sizes (what count sums to per code): (positions of the group below the pair) + (count + 1)
    / 2 - (n_c + 1) / 2, ranks_in_groups by counting (no sort: the streaming scan)."""
    below = np.cumsum(count) - count - (np.cumsum(counts) - counts)[code]
    return below + (count - counts[code]) / 2
