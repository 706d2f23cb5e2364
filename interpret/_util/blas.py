"""BLAS threads: the small matrix products of training, recording and scanning run on one thread.

A 100 x 100 product is too small to split across cores: BLAS threads that wait for each other
(or, on a busy machine, for a free core) make every call many times slower. threadpoolctl sets
the limit for the duration of a `with` block; without it, this is a no-op.
"""
import sys
from contextlib import nullcontext

import numpy  # noqa: F401  numpy's BLAS is loaded before the controller looks for it

try:
    from threadpoolctl import ThreadpoolController
except ImportError:  # optional: only speed depends on it
    ThreadpoolController = None

_controller = []  # (scipy loaded?, controller): finding the loaded BLAS libraries costs ~2 ms per look


def one_thread():
    """Context manager: BLAS on one thread inside the block."""
    return threads(1)


def threads(n):
    """Context manager: BLAS on at most n threads inside the block (nested blocks: the innermost)."""
    if ThreadpoolController is None:
        return nullcontext()
    scipy = "scipy.linalg" in sys.modules  # scipy's own BLAS, once something imported it (not here:
    if not _controller or _controller[0][0] != scipy:  # importing scipy.linalg costs ~0.3 s)
        _controller[:] = [(scipy, ThreadpoolController())]
    return _controller[0][1].limit(limits=int(n), user_api="blas")
