"""Helpers the features share: code points, line bounds, spans as masks, bracket depth, carries."""
import numpy as np

def code_points(text):
    """Code points of text, (n,) uint32."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")


def spans_mask(n, spans):
    """(n,) bool, True inside any of the non-overlapping half-open spans [(start, end), ...]."""
    if not spans:
        return np.zeros(n, dtype=bool)
    start, end = np.asarray(spans, dtype=np.int64).T
    edges = np.bincount(start, minlength=n + 1) - np.bincount(end, minlength=n + 1)
    return np.cumsum(edges[:n]) > 0


def line_bounds(codes):
    """Per char: line index, column, content length of its line (without terminator), is-terminator."""
    n = len(codes)
    nl, cr = codes == 10, codes == 13
    cr_of_crlf = np.zeros(n, dtype=bool)
    cr_of_crlf[:-1] = cr[:-1] & nl[1:]  # "\r\n" is one break: it ends at the "\n"
    ends = nl | (cr & ~cr_of_crlf)
    term = nl | cr
    line = np.cumsum(ends) - ends  # (n,) breaks strictly before t
    starts = np.concatenate(([0], np.flatnonzero(ends) + 1))
    length = np.bincount(line, weights=~term, minlength=len(starts)).astype(np.int64)[line]
    # the terminator sits at the column just past the content; both chars of "\r\n" get it
    column = np.minimum(np.arange(n) - starts[line], length)
    return line, column, length, term


def depth_after(codes, opens, closes, start=0):
    """Nesting depth after reading each char, clamped at 0 (an unmatched closer is ignored),
    from depth `start` before the first char."""
    step = np.isin(codes, opens).astype(np.int64) - np.isin(codes, closes)
    s = np.cumsum(step)
    s += start
    # a walk clamped at 0 is the free walk minus its running minimum below 0 (Skorokhod reflection)
    return s - np.minimum(np.minimum.accumulate(s), 0)


def depth_carry(opens, closes, test=None):
    """carry for a depth feature (or depth > 0 if test): the state is the depth."""
    def carry(text, state):
        d = depth_after(code_points(text), opens, closes, state or 0)
        return as_values(d > 0 if test else d), (int(d[-1]) if len(d) else state)
    return carry


def as_values(mask):
    """As float64, the dtype every feature returns."""
    return np.asarray(mask, dtype=np.float64)
