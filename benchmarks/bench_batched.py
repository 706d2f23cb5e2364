"""Batched training against PyTorch (target 2 of issue 4): chars/s and the loss after 200 steps.

Both sides train the same model from the same initial parameters on the same batches: one-hot
characters in, a vanilla tanh RNN or an LSTM, a linear output layer, mean cross-entropy, global
gradient clipping at 5, Adam (lr 2e-3, betas 0.9/0.999). One training step is timed as a whole
(forward, backward, clipping, update). PyTorch runs with its default thread count and with one
thread; ours runs on one BLAS thread (interpret._util.blas.one_thread, as the trainer does).

Differences that remain (they can only move the curves, not the speed, and stay within noise):
PyTorch's Adam adds eps to sqrt(v_hat) where ours adds it to sqrt(v) before the bias correction;
PyTorch's recurrent layers have a second bias (bias_hh), which is held at zero and frozen here
so that the two models have the same parameters.

Run alone: python benchmarks/bench_batched.py [--repeats 3]
"""
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from interpret.model import stack as gated  # noqa: E402
from interpret.train import batched as tb  # noqa: E402
from interpret._util.blas import one_thread  # noqa: E402

# (arch, hidden, batch, seq_length, steps per timed chunk): the gist's vanilla sizes with a
# batch of 32, and the LSTM that DESIGN.md names as the one that learns the quote cell
CONFIGS = [("rnn", 100, 32, 25, 40), ("lstm", 256, 32, 100, 8)]
LR, CLIP, LOSS_AT = 2e-3, 5.0, 200


class Ours:
    """The batched trainer's step: loss_and_grads, clip_global_norm, update (Adam)."""

    def __init__(self, st):
        self.arch, self.p, self.opt, self.n = st.meta["arch"], st.params, st.opt, 0
        self.state = gated.zero_state(self.arch, self.p, st.meta["batch_size"])
        self.losses, self.work = [], {}

    def step(self, X, Y):
        loss, grads, self.state = gated.loss_and_grads(self.arch, self.p, X, Y, self.state, self.work)
        tb.clip_global_norm(grads, CLIP)
        self.n += 1
        tb.update(self.p, grads, self.opt, "adam", LR, self.n)
        self.losses.append(loss)


class Torch:
    """The same model in PyTorch, started from our parameters (gate order i f g o there)."""

    def __init__(self, torch, st):
        self.torch, arch, p = torch, st.meta["arch"], st.params
        V, H = p["Why"].shape
        self.rnn = (torch.nn.LSTM if arch == "lstm" else torch.nn.RNN)(V, H)
        self.out = torch.nn.Linear(H, V)
        Wx, Wh, b = p["L0_Wx"].T, p["L0_Wh"].T, p["L0_b"]  # (G*H, V), (G*H, H), (G*H,)
        order = np.arange(len(b))
        if arch == "lstm":  # ours i f o g -> torch i f g o
            order = np.concatenate([order[:2 * H], order[3 * H:], order[2 * H:3 * H]])
        with torch.no_grad():
            self.rnn.weight_ih_l0.copy_(torch.from_numpy(np.ascontiguousarray(Wx[order])))
            self.rnn.weight_hh_l0.copy_(torch.from_numpy(np.ascontiguousarray(Wh[order])))
            self.rnn.bias_ih_l0.copy_(torch.from_numpy(b[order]))
            self.rnn.bias_hh_l0.zero_()
            self.out.weight.copy_(torch.from_numpy(p["Why"]))
            self.out.bias.copy_(torch.from_numpy(p["by"]))
        self.rnn.bias_hh_l0.requires_grad_(False)  # one bias vector, as in ours
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


def med_of(values):
    return float(np.median(values))


def windows(S, T):
    """Endless (X, Y) windows (T, B) of the B streams S (L, B), in the trainer's order."""
    while True:
        for a in range(0, len(S) - T - 1, T):
            yield S[a:a + T], S[a + 1:a + T + 1]


def bench_config(torch, text, arch, H, B, T, chunk, repeats):
    st = tb.BatchedState.fresh(text, arch, H, 1, B, T, LR, "adam", CLIP, val_fraction=0.0, seed=0)
    S = tb.streams(st.model.encode(text)[0], B, T)
    ours, peer = Ours(st), Torch(torch, st)
    ours_batches, peer_batches = windows(S, T), windows(S, T)
    default_threads = torch.get_num_threads()

    def timed(runner, batches, threads=None):
        if threads:
            torch.set_num_threads(threads)
        t0 = time.perf_counter()
        for _ in range(chunk):
            runner.step(*next(batches))
        return chunk * B * T / (time.perf_counter() - t0)

    with one_thread():
        res = {"ours": [], "torch": [], "torch1": []}
        for _ in range(repeats):  # interleaved; ours runs twice so both sides do the same steps
            res["ours"].append(timed(ours, ours_batches))
            res["torch"].append(timed(peer, peer_batches, default_threads))
            res["ours"].append(timed(ours, ours_batches))
            res["torch1"].append(timed(peer, peer_batches, 1))
        torch.set_num_threads(1 if med_of(res["torch1"]) > med_of(res["torch"]) else default_threads)
        while len(ours.losses) < LOSS_AT:  # untimed, to the step where the losses are compared
            ours.step(*next(ours_batches))
            peer.step(*next(peer_batches))
        torch.set_num_threads(default_threads)
    med = {k: med_of(v) for k, v in res.items()}
    at = [1, LOSS_AT // 4, LOSS_AT // 2, LOSS_AT]

    def curve_of(losses):  # the loss at each step of `at`: the mean of the 10 steps up to it
        return "/".join(f"{np.mean(losses[max(0, n - 10):n]):.3f}" for n in at)
    what = f"{arch} H={H}, batch {B}, seq {T}"
    curve = (f"loss at steps {'/'.join(map(str, at))}: ours {curve_of(ours.losses)}, "
             f"PyTorch {curve_of(peer.losses)}")
    return [(f"batched {arch} vs PyTorch, {default_threads} threads (chars/s)",
             f"PyTorch {torch.__version__.split('+')[0]} CPU", med["torch"], med["ours"], 1.0,
             f"{what}; ours on 1 thread, PyTorch on {default_threads}; {curve}"),
            (f"batched {arch} vs PyTorch, 1 thread (chars/s)",
             f"PyTorch {torch.__version__.split('+')[0]} CPU", med["torch1"], med["ours"], 1.0,
             f"{what}; both on 1 thread")]


def bench_batched(text, repeats, configs=CONFIGS):
    """Rows for the table of bench.py; a 'skipped' row when PyTorch is not installed."""
    try:
        import torch
    except ImportError:
        return [("batched training vs PyTorch", "PyTorch 2.13 CPU", None, None, "≥1.0×",
                 "skipped: torch not installed (pip install torch==2.13.0)")]
    rows = []
    for arch, H, B, T, chunk in configs:
        rows += bench_config(torch, text, arch, H, B, T, chunk, repeats)
    return rows


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--chars", type=int, default=2_000_000, help="War and Peace characters to read")
    ap.add_argument("--arch", choices=["rnn", "lstm"], help="one configuration only")
    args = ap.parse_args()
    corpus = REPO.parent / "shared" / "corpora" / "warandpeace.txt"
    text = corpus.read_text(encoding="utf-8")[:args.chars]
    cfgs = [c for c in CONFIGS if args.arch in (None, c[0])]
    for row in bench_batched(text, args.repeats, cfgs):
        print(row)
