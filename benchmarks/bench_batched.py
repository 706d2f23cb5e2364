"""Batched training against PyTorch (issue 15, point 1): chars/s at equal threads, and the loss curves.

Both sides train the same model from the same initial parameters on the same batches: one-hot
characters in, a vanilla tanh RNN, an LSTM or a GRU (1 or 2 layers), a linear output layer, mean
cross-entropy, global gradient clipping at 5, Adam (lr 2e-3, betas 0.9/0.999). One training step
is timed as a whole (forward, backward, clipping, update). Each side runs at 1 thread and at 2
(PyTorch: torch.set_num_threads; ours: train.split.SplitStep as `interpret train --threads` runs
it: the batch split into one part per thread, each part's BLAS on one thread, or, for LSTMs of
512+ units given more threads than parts of 16 streams, the whole batch with BLAS on the threads;
the 2-thread row's note gives the other way too). The timings alternate inside each repeat, so
machine load hits all of them, after one untimed chunk of steps per side and thread count (a
cold first step is up to 40% slower).

Differences that remain (they can only move the curves, not the speed, and stay within noise):
PyTorch's Adam adds eps to sqrt(v_hat) where ours adds it to sqrt(v) before the bias correction;
PyTorch's recurrent layers have a second bias (bias_hh), which is held at zero and frozen here
so that the two models have the same parameters (for the GRU that is PyTorch's b_hn, which a
native GRU here does not have).

Run alone: python benchmarks/bench_batched.py [--repeats 3] [--arch lstm] [--hidden 512]
"""
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from interpret.model import stack as gated  # noqa: E402
from interpret.train import batched as tb  # noqa: E402
from interpret.train.split import SplitStep, default_way  # noqa: E402
from interpret._util.blas import one_thread  # noqa: E402

# (arch, hidden, layers, batch, seq_length, steps per timed chunk, loss compared up to step): the
# gist's vanilla sizes with a batch of 32, the 1x256 LSTM that DESIGN.md names as the one that
# learns the quote cell, the GRU of that size, and 2x512 (the bigger models to come)
CONFIGS = [("rnn", 100, 1, 32, 25, 40, 200), ("lstm", 256, 1, 32, 100, 6, 200),
           ("gru", 256, 1, 32, 100, 6, 200), ("lstm", 512, 2, 32, 100, 2, 20),
           ("gru", 512, 2, 32, 100, 2, 20)]
LR, CLIP = 2e-3, 5.0
THREADS = (1, 2)
WAYS = {"split": "the batch split", "blas": "unsplit, BLAS on 2 threads"}  # train.split's two ways


class Ours:
    """The batched trainer's step: loss_and_grads (split over `threads`), clip_global_norm, update (Adam)."""

    def __init__(self, st):
        self.arch, self.p, self.opt, self.n = st.meta["arch"], st.params, st.opt, 0
        self.state = gated.zero_state(self.arch, self.p, st.meta["batch_size"])
        self.way = default_way(self.arch, self.p["L0_Wh"].shape[0], 2, st.meta["batch_size"])  # as `train
        # --threads 2` runs it
        self.other = {"split": "blas", "blas": "split"}[self.way]
        self.losses, self.threads = [], 1
        self.splits = {k: SplitStep(k, self.way) for k in THREADS} | {"other": SplitStep(2, self.other)}

    def step(self, X, Y):
        run = self.splits[self.threads]
        loss, grads, self.state = run(self.arch, self.p, X, Y, self.state)
        tb.clip_global_norm(grads, CLIP)
        self.n += 1
        tb.update(self.p, grads, self.opt, "adam", LR, self.n)
        self.losses.append(loss)


class Torch:
    """The same model in PyTorch, started from our parameters (gate order i f g o there)."""

    def __init__(self, torch, st):
        self.torch, arch, p = torch, st.meta["arch"], st.params
        V, H = p["Why"].shape
        n_layers = gated.n_layers_of(p)
        kind = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[arch]
        self.rnn = kind(V, H, num_layers=n_layers)
        self.out = torch.nn.Linear(H, V)
        order = np.arange(p["L0_b"].size)
        if arch == "lstm":  # ours i f o g -> torch i f g o (the GRU's r z n is the same in both)
            order = np.concatenate([order[:2 * H], order[3 * H:], order[2 * H:3 * H]])
        with torch.no_grad():
            for k in range(n_layers):
                Wx, Wh, b = p[f"L{k}_Wx"].T, p[f"L{k}_Wh"].T, p[f"L{k}_b"]  # (G*H, D), (G*H, H), (G*H,)
                getattr(self.rnn, f"weight_ih_l{k}").copy_(torch.from_numpy(np.ascontiguousarray(Wx[order])))
                getattr(self.rnn, f"weight_hh_l{k}").copy_(torch.from_numpy(np.ascontiguousarray(Wh[order])))
                getattr(self.rnn, f"bias_ih_l{k}").copy_(torch.from_numpy(b[order]))
                getattr(self.rnn, f"bias_hh_l{k}").zero_()
                getattr(self.rnn, f"bias_hh_l{k}").requires_grad_(False)  # one bias vector, as in ours
            self.out.weight.copy_(torch.from_numpy(p["Why"]))
            self.out.bias.copy_(torch.from_numpy(p["by"]))
        self.params = [q for q in list(self.rnn.parameters()) + list(self.out.parameters())
                       if q.requires_grad]
        self.opt = torch.optim.Adam(self.params, lr=LR)
        self.V, self.state, self.losses = V, None, []

    def step(self, X, Y):
        torch = self.torch
        x = torch.nn.functional.one_hot(torch.from_numpy(X), self.V).float()  # (T, B, V)
        hs, state = self.rnn(x, self.state)
        self.state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
        loss = torch.nn.functional.cross_entropy(self.out(hs).reshape(-1, self.V),
                                                 torch.from_numpy(Y).reshape(-1))
        self.opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, CLIP)
        self.opt.step()
        self.losses.append(loss.item())


def blas_threads(n):
    """BLAS held to n threads inside the block (threadpoolctl, which one_thread uses too)."""
    from threadpoolctl import threadpool_limits
    return threadpool_limits(n, user_api="blas")


def blas_arch():
    """numpy's OpenBLAS kernel family (threadpoolctl's 'architecture': SkylakeX, Haswell, ...)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown"
    return next((i.get("architecture", "?") for i in threadpool_info() if i.get("internal_api") == "openblas"), "?")


def med_of(values):
    return float(np.median(values))


def windows(S, T):
    """Endless (X, Y) windows (T, B) of the B streams S (L, B), in the trainer's order."""
    while True:
        for a in range(0, len(S) - T - 1, T):
            yield S[a:a + T], S[a + 1:a + T + 1]


def bench_config(torch, text, cfg, repeats):
    """Two rows (1 thread each, 2 threads each) for one configuration of CONFIGS."""
    arch, H, layers, B, T, chunk, loss_at = cfg
    st = tb.BatchedState.fresh(text, arch, H, layers, B, T, LR, "adam", CLIP, val_fraction=0.0, seed=0)
    S = tb.streams(st.model.encode(text)[0], B, T)
    ours, peer = Ours(st), Torch(torch, st)
    ours_batches, peer_batches = windows(S, T), windows(S, T)
    default_threads = torch.get_num_threads()

    def timed(runner, batches, threads):
        if runner is peer:
            torch.set_num_threads(threads)
        else:
            ours.threads = threads
        with blas_threads(1):
            t0 = time.perf_counter()
            for _ in range(chunk):
                runner.step(*next(batches))
            return chunk * B * T / (time.perf_counter() - t0)

    loads = [os.getloadavg()[0]]
    with one_thread():
        res = {(side, k): [] for side in ("ours", "torch", "other") for k in THREADS}
        # untimed first chunks: buffers, threads and caches warm on both sides (a cold 2x512 step
        # read 2,664 chars/s against 3,717 warm, with 20k page faults; its timings take 2 steps)
        for k in THREADS:
            timed(ours, ours_batches, k)
            timed(peer, peer_batches, k)
        timed(ours, ours_batches, "other")
        for _ in range(repeats):  # interleaved
            for k in THREADS:
                res[("ours", k)].append(timed(ours, ours_batches, k))
                res[("torch", k)].append(timed(peer, peer_batches, k))
            res[("other", 2)].append(timed(ours, ours_batches, "other"))  # the other way on 2 threads
        while len(peer.losses) < len(ours.losses):  # the same number of steps on both sides
            peer.step(*next(peer_batches))
        while len(ours.losses) < loss_at:  # untimed, to the step where the losses are compared
            ours.step(*next(ours_batches))
            peer.step(*next(peer_batches))
    torch.set_num_threads(default_threads)
    loads.append(os.getloadavg()[0])
    for s in ours.splits.values():
        s.close()
    med = {k: med_of(v) for k, v in res.items() if v}
    at = sorted({1, loss_at // 4, loss_at // 2, loss_at})

    def curve_of(losses):  # the loss at each step of `at`: the mean of the 10 steps up to it
        return "/".join(f"{np.mean(losses[max(0, n - 10):n]):.3f}" for n in at)
    what = f"{arch} {layers}x{H}, batch {B}, seq {T}"
    curve = (f"loss at steps {'/'.join(map(str, at))}: ours {curve_of(ours.losses)}, "
             f"PyTorch {curve_of(peer.losses)}")
    peer_name = f"PyTorch {torch.__version__.split('+')[0]} CPU"
    load = f"load average {loads[0]:.1f}-{loads[1]:.1f}; numpy's OpenBLAS: {blas_arch()}"
    return [(f"batched {arch} {layers}x{H} vs PyTorch, {k} thread{'s' * (k > 1)} each (chars/s)", peer_name,
             med[("torch", k)], med[("ours", k)], 1.0,
             f"{what}; ours on {k} thread{'s' * (k > 1)}{f' ({WAYS[ours.way]})' * (k > 1)}, PyTorch "
             f"set_num_threads({k}); {load}"
             + (f"; {curve}" if k == THREADS[0] else
                f"; ours {WAYS[ours.other]} instead: {med[('other', 2)]:,.0f} chars/s")) for k in THREADS]


def bench_batched(text, repeats, configs=CONFIGS):
    """Rows for the table of bench.py; a 'skipped' row when PyTorch is not installed."""
    try:
        import torch
    except ImportError:
        return [("batched training vs PyTorch", "PyTorch 2.13 CPU", None, None, "≥1.0×",
                 "skipped: torch not installed (pip install torch==2.13.0)")]
    rows = []
    for cfg in configs:
        rows += bench_config(torch, text, cfg, repeats)
    return rows


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--chars", type=int, default=2_000_000, help="War and Peace characters to read")
    ap.add_argument("--arch", choices=["rnn", "lstm", "gru"], help="these configurations only")
    ap.add_argument("--hidden", type=int, help="these configurations only (100, 256, 512)")
    args = ap.parse_args()
    corpus = REPO.parent / "shared" / "corpora" / "warandpeace.txt"
    text = corpus.read_text(encoding="utf-8")[:args.chars]
    cfgs = [c for c in CONFIGS if args.arch in (None, c[0]) and args.hidden in (None, c[1])]
    for row in bench_batched(text, args.repeats, cfgs):
        print(row)
