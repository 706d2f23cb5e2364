"""Read columns (units) of a long (n_chars, n_units) array, such as a recording's memmap, unit by unit.

A block of columns of a row-major file touches every page of it. Where the page cache holds the
file (budget.direct_reads), the in-memory scan's workers gather their blocks straight from it
(row_stats.gather_columns) and its pages stay mapped. Otherwise the scan reads many units per
pass with read_block, in chunks of rows, and lets a memmap's pages go after each chunk.
(Reading the file with plain reads into a buffer instead was measured no faster: the kernel
copies every byte, where a memmap only maps the cached pages.)
"""
import mmap

import numpy as np


CHUNK_BYTES = 1 << 19   # a chunk of rows to turn: small enough to stay in the core's cache


def block_dtype(acts) -> np.dtype:
    """The dtype of read_block's arrays: float32 for float16/32 activations, else float64."""
    return np.dtype(np.float32 if acts.dtype in (np.float16, np.float32) else np.float64)


def read_block(acts, j0: int, j1: int, rows: int | None = None, out=None) -> np.ndarray:
    """acts[:, j0:j1] as a (j1 - j0, N) array of block_dtype(acts), in the first rows of out
    (R >= j1 - j0, N) if given: memory written before costs no page faults, where a fresh 512
    MiB costs about a second of kernel time on a virtual machine. Read `rows` rows at a time
    (default: CHUNK_BYTES of the block; 1M x 128 float32 units: 0.4 s at 1024 rows, 2.3 s at
    16384, whose chunk of 8 MB turns through main memory)."""
    a = np.empty((j1 - j0, acts.shape[0]), block_dtype(acts)) if out is None else out[:j1 - j0]
    if rows is None:
        rows = int(np.clip(CHUNK_BYTES // (a.itemsize * (j1 - j0)), 64, 1 << 14))
    for r0 in range(0, acts.shape[0], rows):
        a[:, r0:r0 + rows] = np.array(acts[r0:r0 + rows, j0:j1], dtype=a.dtype).T  # copy, turn
        drop_pages(acts)
    return a


def drop_pages(acts):
    """Let go of a read-only memmap's pages once a chunk is copied out (they stay in the page
    cache, but no longer count as this process's memory)."""
    mm = getattr(acts, "_mmap", None)
    if getattr(acts, "mode", None) == "r" and hasattr(mm, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
        mm.madvise(mmap.MADV_DONTNEED)
