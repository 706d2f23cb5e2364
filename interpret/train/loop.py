"""The one training loop: call a trainer's step until the iteration count, checkpointing on the way.

A step is a callable that runs one whole iteration (gist.GistIteration, batched.BatchedIteration):
it advances state.n by one and returns the iteration's loss; a non-finite loss means the run
diverged (a batched step returns it before touching the parameters). The loop owns what every
trainer shares: one BLAS thread, Ctrl-C only between two whole iterations (SafePoints, so a
checkpoint never mixes two iterations), a checkpoint every checkpoint_every iterations, on
Ctrl-C and at the end, and the one-line error of a diverging run naming what is on disk.
The state only needs .n and .save(path).
"""
import numpy as np

from interpret._util.blas import one_thread
from interpret._util.interrupt import SafePoints


def run(state, iters, step, *, checkpoint_path=None, checkpoint_every=0):
    """Call step() until state.n == iters; save to checkpoint_path every checkpoint_every
    iterations, on Ctrl-C (then KeyboardInterrupt is raised again) and at the end."""
    saved_at = None  # the iteration last written to checkpoint_path in this call
    # a diverging run overflows on its way to a NaN loss: no warnings, the loss check says it in one line
    with one_thread(), np.errstate(over="ignore", invalid="ignore", divide="ignore"), SafePoints() as ctrl_c:
        try:
            while state.n < iters:
                ctrl_c.check()  # between two whole iterations: the state saved below is consistent
                n = state.n
                loss = step()
                if not np.isfinite(loss):
                    raise diverged(loss, n + 1, checkpoint_path, saved_at)
                if checkpoint_path and checkpoint_every and state.n % checkpoint_every == 0:
                    state.save(checkpoint_path)
                    saved_at = state.n
        except KeyboardInterrupt:
            if checkpoint_path:
                state.save(checkpoint_path)
            raise
        if checkpoint_path:
            state.save(checkpoint_path)
    return state


def diverged(loss, n, path, saved_at):
    """The one-line error for a non-finite loss: what happened, what is on disk, the way out."""
    if not path:
        kept = "nothing was saved"
    elif saved_at is None:
        kept = f"{path} was not changed"
    else:
        kept = f"{path} keeps iteration {saved_at}, the last good state"
    return FloatingPointError(f"the loss became {loss} at iteration {n} ({kept}); lower --lr")
