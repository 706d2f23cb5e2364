"""Reading a float16 recording in row chunks, as order-preserving 16-bit keys: what the streaming passes share."""
from __future__ import annotations

import numpy as np

from interpret.scan.unit_blocks import drop_pages


KEYS = 1 << 16


def float16_keys(x: np.ndarray) -> np.ndarray:
    """float16 array -> uint16 keys with the same order (-0.0 and +0.0 share one key)."""
    bits = x.view(np.uint16)
    flip = (bits.view(np.int16) >> 15).view(np.uint16) | np.uint16(0x8000)   # all bits or sign
    key = bits ^ flip
    np.add(key, key == 0x7FFF, out=key, casting="unsafe")            # -0.0 (0x7FFF) to +0.0
    return key


def key_values() -> np.ndarray:
    """(65536,) float64: the float16 value of each key (0 for the keys of NaN and infinity,
    which a checked recording never holds)."""
    k = np.arange(KEYS, dtype=np.uint32)
    bits = np.where(k & 0x8000, k ^ 0x8000, ~k & 0xFFFF).astype(np.uint16)
    vals = bits.view(np.float16).astype(np.float64)
    vals[~np.isfinite(vals)] = 0.0
    return vals


def count_dtype(n: int):
    """Counters of up to n characters: 4 bytes each below 2^32."""
    return np.uint32 if n < 2 ** 32 else np.int64


def row_chunks(n: int, rows: int):
    return [(c0, min(c0 + rows, n)) for c0 in range(0, n, rows)]


def read_rows(acts, c0, c1, g0=0, g1=None):
    """acts[c0:c1, g0:g1] as a unit-major (G, L) float16 array (each unit's table lookups then
    stay in one place of the cache)."""
    x = np.ascontiguousarray(np.asarray(acts[c0:c1, g0:g1]).T)
    drop_pages(acts)
    return x
