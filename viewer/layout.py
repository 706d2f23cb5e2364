"""Where each character of a window is drawn, and in what colour: pure functions of the text."""
import numpy as np

from interpret.export.html import BLUE, RED

WRAP = 100  # columns per drawn row; longer source lines wrap
SHOWN = {"\n": "\u21b5", "\t": "\u21e5", "\r": "\u240d"}  # how invisible characters are drawn
N_PALETTE = 257  # odd, so 0 has its own pure white colour


def palette():
    """The colours of -1 (red) .. 0 (white) .. +1 (blue), the same end colours as the HTML export."""
    out = []
    for k in range(N_PALETTE):
        v = 2.0 * k / (N_PALETTE - 1) - 1.0
        end = RED if v < 0 else BLUE
        out.append("#%02x%02x%02x" % tuple(round(255 + (c - 255) * abs(v)) for c in end))
    return out


def layout_window(text):
    """(x, y, n_rows) for drawing `text` wrapped at WRAP columns, newlines kept: char t at (x[t], -y[t])."""
    n = len(text)
    if n == 0:
        return np.zeros(0, np.int32), np.zeros(0, np.int32), 1
    codes = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")  # (T,)
    nl = codes == 10
    line = np.concatenate(([0], np.cumsum(nl[:-1])))  # (T,) a newline belongs to the line it ends
    starts = np.concatenate(([0], np.flatnonzero(nl) + 1))  # first index of each line
    col = np.arange(n) - starts[line]  # (T,)
    n_lines = len(starts)
    # characters per line, its newline not counted: (L,)
    lens = np.bincount(line, minlength=n_lines) - np.bincount(line, weights=nl, minlength=n_lines).astype(int)
    margin = nl & (col == lens[line]) & (col > 0) & (col % WRAP == 0)  # a newline right after a full row
    col = np.where(margin, col - 1, col)
    x = np.where(margin, WRAP, col % WRAP)
    sub = col // WRAP
    rows = np.maximum(1, (np.maximum(lens, 1) - 1) // WRAP + 1)  # drawn rows per line
    offset = np.concatenate(([0], np.cumsum(rows)[:-1]))
    y = offset[line] + sub
    return x.astype(np.int32), y.astype(np.int32), int(y.max()) + 1


def to_grid(values, x, y, n_rows):
    """(n_rows, WRAP + 1) image of values at their characters' cells, NaN elsewhere; row 0 is the
    bottom row of text (images grow upwards), so the character at (x, y = -row) is at [n_rows-1-row, x]."""
    grid = np.full((n_rows, WRAP + 1), np.nan, dtype=np.float32)
    grid[n_rows - 1 + np.asarray(y, dtype=np.int64), np.asarray(x, dtype=np.int64)] = values
    return grid


def shown(text):
    """The characters as drawn: newline, tab and CR as visible symbols, other controls as a dot."""
    return [SHOWN.get(c, c if c.isprintable() or c == " " else "\u00b7") for c in text]
