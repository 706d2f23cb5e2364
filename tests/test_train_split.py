"""The batch split across threads (train.split) computes what one thread computes, to float32 rounding."""
import numpy as np
import pytest

from interpret.model import stack as gated
from interpret.train import batched as tb
from interpret.train.split import SplitStep, cores, default_threads, default_way, parts

TEXT = ('"Come here," said the old man. "Look at this."\nShe did not move; the rain went on.\n') * 40


def test_parts_cover_the_batch_in_order():
    for B, k in [(32, 2), (5, 2), (7, 3), (2, 4)]:
        cols = parts(B, k)
        assert np.concatenate([np.arange(B)[s] for s in cols]).tolist() == list(range(B))
        assert len(cols) == min(k, B) and all(s.stop > s.start for s in cols)


@pytest.mark.parametrize("arch,layers", [("lstm", 1), ("lstm", 2), ("gru", 2), ("rnn", 1)])
@pytest.mark.parametrize("threads,way", [(2, "split"), (3, "split"), (2, "blas")])
def test_split_step_equals_one_thread(arch, layers, threads, way):
    rng = np.random.RandomState(0)
    p = {k: v.astype(np.float32) for k, v in gated.init_params(arch, 16, 6, layers, rng).items()}
    X, Y = rng.randint(0, 6, size=(9, 7)), rng.randint(0, 6, size=(9, 7))
    state = [tuple(rng.randn(7, 16).astype(np.float32) * 0.5 for _ in s) for s in gated.zero_state(arch, p, 7)]
    loss, grads, new = gated.loss_and_grads(arch, p, X, Y, state)
    with SplitStep(threads, way) as split:
        for _ in range(2):  # the second call reuses the workers' buffers
            s_loss, s_grads, s_new = split(arch, p, X, Y, state)
            assert s_loss == pytest.approx(loss, rel=1e-6)
            for k in grads:
                np.testing.assert_allclose(s_grads[k], grads[k], rtol=1e-5, atol=1e-7)
            for a, b in zip(s_new, new):
                for x, y in zip(a, b):
                    np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("arch", ["lstm", "gru"])
def test_training_on_two_threads_follows_the_one_thread_curve(arch):
    """A few whole iterations (clipping, Adam) on 2 threads: the same losses and parameters."""
    runs = {}
    for threads in (1, 2):
        st = tb.BatchedState.fresh(TEXT, arch, 16, 2, 4, 12, 1e-2, val_fraction=0.1, seed=0)
        losses = []
        step = tb.BatchedIteration(st, TEXT, threads=threads)
        try:
            for _ in range(8):
                losses.append(step())
        finally:
            step.close()
        runs[threads] = (losses, st.params)
    np.testing.assert_allclose(runs[2][0], runs[1][0], rtol=1e-5)
    for k in runs[1][1]:
        np.testing.assert_allclose(runs[2][1][k], runs[1][1][k], rtol=1e-4, atol=1e-5)


def test_default_threads():
    assert default_threads("rnn", 512, 64) == 1 and default_threads("lstm", 64, 64) == 1
    assert default_threads("lstm", 256, 8) == 1  # fewer than 16 streams per part: one thread
    assert 1 <= default_threads("lstm", 256, 32) <= 2


def test_default_way_shares_blas_threads_for_big_lstms_beyond_the_parts_only():
    assert default_way("lstm", 512, 2, 32) == "split"  # a part of 16 streams for each thread
    assert default_way("lstm", 512, 3, 32) == "blas" and default_way("lstm", 1024, 8, 32) == "blas"
    assert default_way("lstm", 512, 4, 64) == "split" and default_way("lstm", 512, 2, 8) == "blas"
    assert default_way("lstm", 256, 8, 32) == "split" and default_way("gru", 512, 8, 32) == "split"
    assert default_way("lstm", 512, 1, 32) == "split"
    assert default_threads("lstm", 512, 32) == cores()  # not held to one per 16 streams
    with pytest.raises(ValueError, match="unknown way 'both'"):
        SplitStep(2, "both")


def test_the_blas_way_runs_the_step_with_blas_on_that_many_threads(monkeypatch):
    """Inside one_thread (as the trainer runs), the step's BLAS gets `threads` threads, and the
    limit is back to one after it."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from interpret._util.blas import one_thread

    def blas_threads():
        return min(i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas")
    seen = []
    real = gated.loss_and_grads
    monkeypatch.setattr(gated, "loss_and_grads", lambda *a: (seen.append(blas_threads()), real(*a))[1])
    rng = np.random.RandomState(0)
    p = {k: v.astype(np.float32) for k, v in gated.init_params("lstm", 8, 6, 1, rng).items()}
    X = rng.randint(0, 6, size=(5, 4))
    most = blas_threads()  # what BLAS has (a one-core machine: 1)
    with one_thread():
        with SplitStep(2, "blas") as split:
            split("lstm", p, X, X, gated.zero_state("lstm", p, 4))
        assert blas_threads() == 1
    assert seen == [min(2, most)]


def test_cores_and_default_workers_follow_the_affinity(monkeypatch):
    """A process pinned to one core gets one worker (scan blocks, features, ablation streams),
    though the machine has more; without an affinity call, every core counts."""
    import os

    from interpret._util import cores as C

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert (C.cores(), C.workers(), C.workers(4)) == (1, 1, 1)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 5}, raising=False)
    assert (C.cores(), C.workers(), C.workers(8)) == (4, 2, 4)
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    assert (C.cores(), C.workers(), C.workers(16)) == (8, 2, 8)
