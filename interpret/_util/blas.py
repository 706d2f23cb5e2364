"""BLAS threads: the small matrix products of training, recording and scanning run on one thread.

A 100 x 100 product is too small to split across cores: BLAS threads that wait for each other
(or, on a busy machine, for a free core) make every call many times slower. threadpoolctl sets
the limit for the duration of a `with` block; without it, this is a no-op.
"""
from contextlib import nullcontext

import numpy  # noqa: F401  numpy's BLAS and scipy's own (scipy.linalg.blas, used by model/lanes.py)
import scipy.linalg.blas  # noqa: F401  are both loaded before the controller looks for them

try:
    from threadpoolctl import ThreadpoolController
except ImportError:  # optional: only speed depends on it
    ThreadpoolController = None

_controller = []  # made once: finding the loaded BLAS libraries costs ~2 ms per look


def one_thread():
    """Context manager: BLAS on one thread inside the block."""
    if ThreadpoolController is None:
        return nullcontext()
    if not _controller:
        _controller.append(ThreadpoolController())
    return _controller[0].limit(limits=1, user_api="blas")
