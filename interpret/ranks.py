"""Average ranks of many long series, fast: a radix sort when the values are float32-exact."""
import numpy as np


def centred_ranks(x: np.ndarray) -> np.ndarray:
    """(B, N) float64 average ranks (1..N, ties share their mean) of each row of x (B, N),
    minus (N + 1) / 2."""
    b, n = x.shape
    out = np.empty((b, n))
    position = np.arange(n) - (n - 1) / 2.0           # centred rank of each sorted position
    tmp = np.empty(n)
    for row, dst in zip(x, out):
        perms, s = sort_order(row)
        ranked = position
        tied = np.flatnonzero(s[1:] == s[:-1])         # sorted position i ties with i + 1
        if len(tied):  # runs of equal values: [first, last] sorted positions share their mean
            cut = np.flatnonzero(np.diff(tied) != 1)
            first, last = tied[np.append(0, cut + 1)], tied[np.append(cut, len(tied) - 1)] + 1
            length = last - first + 1
            at = (np.repeat(first - np.cumsum(np.append(0, length[:-1])), length) +
                  np.arange(length.sum()))            # every sorted position inside a run
            ranked = position.copy()
            ranked[at] = np.repeat((first + last) / 2.0 - (n - 1) / 2.0, length)
        if len(perms) == 1:
            dst[perms[0]] = ranked
        else:                                         # order = low[high]: dst[low[high]] = ranked
            low, high = perms
            tmp[high] = ranked
            dst[low] = tmp
    return out


def sort_order(col: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """([order] or [low, high] with order = low[high] = np.argsort(col), the sort keys in that
    order): equal keys <=> equal values; ties in any order.

    Float32 values (or float64 ones that float32 holds exactly) map to unsigned ints with the same
    order (flip all bits of negatives, the sign bit of the rest; -0.0 is made +0.0 first); two
    stable 16-bit radix passes (numpy sorts 16-bit keys by radix) sort them: `low` sorts by the
    low 16 bits, `high` then by the high 16. Anything else falls back to np.argsort.
    """
    c32 = np.add(col, np.float32(0.0), dtype=np.float32)   # + 0.0 turns -0.0 into +0.0
    if col.dtype != np.float32 and not np.array_equal(c32, col):
        order = np.argsort(col)
        return [order], col[order]
    flip = (c32.view(np.int32) >> 31).view(np.uint32) | np.uint32(0x80000000)   # all bits or sign
    key = c32.view(np.uint32) ^ flip
    low = np.argsort(key.astype(np.uint16), kind="stable")
    key = key[low]
    high = np.argsort((key >> 16).astype(np.uint16), kind="stable")
    return [low, high], key[high]
