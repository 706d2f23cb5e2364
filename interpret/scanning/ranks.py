"""Average ranks of many long series, fast: one SIMD sort of packed keys when the values are float32-exact.

Two kinds: over the whole series (centred_ranks), and within groups of positions that share a
code, the current character (ranks_in_groups). Ranked within its character, any function of the
character ties inside every group and scores exactly chance, whatever its shape (the in-memory engine's
beyond_char). Both come from one sort by value (sort_order): a stable radix sort of the codes
in value order puts the positions in (code, value) order.
"""
import numpy as np


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


def ranks_in_groups(x: np.ndarray, groups: Groups) -> tuple[np.ndarray, np.ndarray]:
    """(rc, rg), both (B, N) float64: the centred_ranks of each row of x (B, N), and its average
    ranks within each group (1..n_c among the n_c positions holding code c, ties share their
    mean) minus (n_c + 1) / 2. A row constant within every group has rg all 0."""
    return _ranks(x, groups)


def _ranks(x, groups):
    """centred_ranks of x (B, N) and, with groups, its ranks within them: one sort by value per
    row serves both."""
    b, n = x.shape
    rc = np.empty((b, n))
    rg = np.empty((b, n)) if groups is not None else None
    position = np.arange(n) - (n - 1) / 2.0           # centred rank of each sorted position
    for i, row in enumerate(x):
        order, s = sort_order(row)                    # (N,) each
        _put_ranks(rc[i], order, position, s[1:] == s[:-1])
        if groups is not None:                        # (code, value) order: stable sort by code
            by_code = np.argsort(groups.codes[order], kind="stable")
            s = s[by_code]
            _put_ranks(rg[i], order[by_code], groups.position, (s[1:] == s[:-1]) & groups.same)
    return rc, rg


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
    in that order: equal keys <=> equal values.

    Float32 values (or float64 ones that float32 holds exactly) map to unsigned ints with the same
    order (flip all bits of negatives, the sign bit of the rest; -0.0 is made +0.0 first); each
    goes to the high half of a uint64 whose low half is its position, and one np.sort of those
    (numpy's SIMD sort: 3-5x faster than two stable 16-bit radix passes and their gathers)
    gives both the keys and the order. Anything else falls back to np.argsort.
    """
    c32 = np.add(col, np.float32(0.0), dtype=np.float32)   # + 0.0 turns -0.0 into +0.0
    if (col.dtype != np.float32 and not np.array_equal(c32, col)) or len(col) >= 2**32:
        order = np.argsort(col)
        return order, col[order]
    flip = (c32.view(np.int32) >> 31).view(np.uint32) | np.uint32(0x80000000)   # all bits or sign
    packed = (c32.view(np.uint32) ^ flip).astype(np.uint64)                      # (N,) key
    packed <<= np.uint64(32)
    packed |= np.arange(len(col), dtype=np.uint64)    # key in the high half, position in the low
    packed.sort()
    order = (packed & np.uint64(0xFFFFFFFF)).view(np.int64)
    return order, packed >> np.uint64(32)


def ranks_from_counts(code: np.ndarray, count: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(P,) the centred average rank within its group of each of P distinct (code, value) pairs,
    given sorted by code, then value, with count (P,) positions each; counts (V,) the group
    sizes (what count sums to per code): (positions of the group below the pair) + (count + 1)
    / 2 - (n_c + 1) / 2, ranks_in_groups by counting (no sort: the streaming scan)."""
    below = np.cumsum(count) - count - (np.cumsum(counts) - counts)[code]
    return below + (count - counts[code]) / 2
