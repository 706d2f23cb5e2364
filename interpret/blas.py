"""BLAS threads: the small matrix products of training, recording and scanning run on one thread.

A 100 x 100 product is too small to split across cores: BLAS threads that wait for each other
(or, on a busy machine, for a free core) make every call many times slower. threadpoolctl sets
the limit for the duration of a `with` block; without it, this is a no-op.
"""
from contextlib import nullcontext

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # optional: only speed depends on it
    threadpool_limits = None


def one_thread():
    """Context manager: BLAS on one thread inside the block."""
    if threadpool_limits is None:
        return nullcontext()
    return threadpool_limits(limits=1, user_api="blas")
