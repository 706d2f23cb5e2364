"""Compiled step loops (numba) for model/infer.py's float32 kernel: one call per chunk.

The numpy loop of infer.Runner makes about ten ufunc calls per step, and numpy's float32 tanh
is not vectorised on every CPU (about 3 ns per element on AVX2 machines): at batch 1 the calls,
at batch 64 the tanh, cost more than the (B, H) x (H, G*H) product. Here each step is that
product (BLAS) and one fused pass over the gates, with a vectorisable tanh: Lambert's continued
fraction for tanh(x / 4), truncated to a rational of degree (5, 6), then doubled twice with
tanh(2u) = 2 tanh(u) / (1 + tanh(u)^2) on numerator and denominator (one division); the largest
error is 2.0e-7 (numpy's own: 6e-8).

Same buffers, layouts, resets and clamps as Runner's numpy loop (its docstring), float32 only;
tests compare every architecture with it. INTERPRET_JIT=0 in the environment, or numba missing,
turns this off. The kernels are in model/kernels.py, imported with numba on first use (~0.5 s);
numba caches the compiled code on disk, so only the first use on a machine compiles.
"""
import importlib.util
import os

import numpy as np

_HAVE = []


def enabled():
    """Whether the compiled loops run (numba installed and INTERPRET_JIT not 0)."""
    if not _HAVE:  # numba is a dependency; the numpy loop stays as the plain form and a fallback
        _HAVE.append(importlib.util.find_spec("numba") is not None)
    return _HAVE[0] and os.environ.get("INTERPRET_JIT", "1") != "0"


def kernels():
    """The compiled loops (model/kernels.py), imported (and numba with them) on first use."""
    from interpret.model import kernels as k
    return k


def _numpy_sgemm():
    """numpy's own cblas_sgemm through ctypes, or None. numba's np.dot calls scipy's BLAS, which
    can be a slower build than numpy's (0.3.30 against 0.3.31 here: a (64, 256) x (256, 1024)
    product took 510 us against 420); numpy's wheels export theirs as scipy_cblas_sgemm64_."""
    import ctypes
    try:
        from threadpoolctl import threadpool_info
        paths = [i["filepath"] for i in threadpool_info() if i.get("user_api") == "blas"
                 and "numpy" in i.get("filepath", "").replace("\\", "/").split("/site-packages/")[-1]]
    except Exception:  # noqa: BLE001 - any failure: numba's own product is used
        return None
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name, int_t in (("scipy_cblas_sgemm64_", ctypes.c_int64), ("cblas_sgemm64_", ctypes.c_int64),
                            ("scipy_cblas_sgemm", ctypes.c_int), ("cblas_sgemm", ctypes.c_int)):
            fn = getattr(lib, name, None)
            if fn is not None:
                fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, int_t, int_t, int_t, ctypes.c_float,
                               ctypes.c_void_p, int_t, ctypes.c_void_p, int_t, ctypes.c_float,
                               ctypes.c_void_p, int_t]
                fn.restype = None
                return fn
    return None


_GEMM = []


def gemm():
    """The product the kernels call for (B, H) x (H, G*H), B > 1: numpy's sgemm, else None."""
    if not _GEMM:
        _GEMM.append(_numpy_sgemm() if os.environ.get("INTERPRET_JIT_GEMM", "1") != "0" else None)
    return _GEMM[0]


def load_blas():
    """Import the BLAS that the compiled np.dot calls (scipy's), so that a BLAS thread limit
    set afterwards (_util.blas.one_thread) finds it. A no-op when the loops are off."""
    if enabled():
        import scipy.linalg.cython_blas  # noqa: F401


_YIELD = []


def yield_fn():
    """The OS's "let another thread run" (sched_yield; SwitchToThread on Windows) as a ctypes
    function for the team barrier (kernels.lstm_steps_team), or None where there is none."""
    if not _YIELD:
        import ctypes
        import sys
        fn = None
        try:
            fn = ctypes.windll.kernel32.SwitchToThread if sys.platform == "win32" else ctypes.CDLL(None).sched_yield
            fn.argtypes, fn.restype = [], ctypes.c_int
        except (OSError, AttributeError):
            fn = None
        _YIELD.append(fn)
    return _YIELD[0]


def split_threads(n):
    """Set numba's threads for the split loop to n (at most what numba has); returns the count."""
    import numba
    n = max(1, min(int(n), numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(n)
    return n


def clamp_masks(spec, B, H):
    """(lanes, cols, values) or None -> (B, H) bool mask and float32 values (lstm_steps_team)."""
    mask, values = np.zeros((B, H), np.bool_), np.zeros((B, H), np.float32)
    if spec is not None:
        lanes, cols, vals = (np.asarray(a) for a in spec)
        mask[lanes, cols], values[lanes, cols] = True, vals
    return mask, values


def reset_mask(resets, S, B, t0=0):
    """{step: lanes} -> (S, B) uint8 for steps t0 .. t0 + S - 1: 1 where the lane's state restarts
    at zeros before the step."""
    mask = np.zeros((S, B), np.uint8)
    if len(resets) < S:  # few resets (one document: one in all): no look-up per step
        for s, lanes in resets.items():
            if t0 <= s < t0 + S:
                mask[s - t0, lanes] = 1
        return mask
    for s in range(S):
        lanes = resets.get(t0 + s)
        if lanes is not None:
            mask[s, lanes] = 1
    return mask


_NONE = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))


def clamp_arrays(spec):
    """(lanes, cols, values) or None -> three arrays for the kernels (int64, int64, float32)."""
    if spec is None:
        return _NONE
    lanes, cols, values = spec
    n = len(np.atleast_1d(cols))
    return (np.broadcast_to(np.asarray(lanes, np.int64), (n,)).copy(),
            np.broadcast_to(np.asarray(cols, np.int64), (n,)).copy(),
            np.broadcast_to(np.asarray(values, np.float32), (n,)).copy())
