"""Recording gated models and ablation (issue 15, points 2, 3 and 5), side by side in one run.

Rows (bench.py's format: name, peer, peer figure, ours, target, notes):
- recording an LSTM, one document (batch 1), `h` and `c` and the loss, against PyTorch's
  nn.LSTM forward (h of the last layer only), both on 1 thread, then PyTorch on 2;
- all gates as well, against `h` and `c` alone (target: at most 2x slower);
- many documents in lanes, against PyTorch's forward at the same batch;
- ablate, the batched kernel against the plain one-step-at-a-time path (what ablate ran before,
  BLAS threads unrestricted as they were);
- the whole `interpret record` process on 2M characters (vanilla H 100) against bench.py's
  gist-style loop, timed on fewer characters and its rate used.
PyTorch is a benchmark peer only; without it the PyTorch rows are skipped. Run alone:

    python benchmarks/bench_record_gated.py [--repeats 3] [--only gated,ablate,process]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from interpret.analysis import causal  # noqa: E402
from interpret.model.model import Model  # noqa: E402
from interpret.recording import recorder as R  # noqa: E402

CORPUS = REPO.parent / "shared" / "corpora" / "warandpeace.txt"
LSTM = REPO / "trained_models" / "warpeace-lstm.npz"
RNN = REPO / "trained_models" / "warpeace-rnn.npz"


def med(xs):
    return float(np.median(xs))


def load_note():
    return f"load {os.getloadavg()[0]:.1f}"


def lstm_2x256(chars):
    """A 2x256 LSTM with random weights (speed does not depend on them)."""
    return Model.init(chars, hidden_size=256, arch="lstm", n_layers=2, seed=0)


def ours_rate(model, ix, starts, arrays, lanes=None, threads=1, fresh=False):
    """chars/s of fill_arrays into in-memory float32 outputs (the loss included). The outputs are
    the caller's (fill_arrays' contract): written once before the clock starts, unless fresh, as
    a first touch of new memory costs about 1 s of kernel time per 256 MiB on these virtual
    machines (the guest hands freed pages back to the host), which is no part of the forward."""
    outs = {(l, k): np.empty((len(ix), n), np.float32) for l, k, n in model.array_list() if k in arrays}
    loss = np.empty(len(ix), np.float32)
    if not fresh:
        for a in list(outs.values()) + [loss]:
            a.fill(0.0)
    t = time.perf_counter()
    R.fill_arrays(model, ix, starts, outs, loss, lanes=lanes, threads=threads)
    return len(ix) / (time.perf_counter() - t)


class TorchLSTM:
    """nn.LSTM (or nn.GRU, for a GRU model) forward over one-hot characters, in chunks of 1024 steps, state carried."""

    def __init__(self, torch, model):
        self.torch, self.V = torch, model.vocab_size
        kind = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[model.arch]
        self.rnn = kind(model.vocab_size, model.hidden_size, num_layers=model.n_layers)

    def rate(self, X, threads):  # X (T, B) indices
        torch = self.torch
        torch.set_num_threads(threads)
        x = torch.nn.functional.one_hot(torch.from_numpy(X.astype(np.int64)), self.V).float()  # (T, B, V)
        t, state = time.perf_counter(), None
        with torch.no_grad():
            for a in range(0, len(X), 1024):
                _, state = self.rnn(x[a:a + 1024], state)
        return X.size / (time.perf_counter() - t)


def bench_gated(repeats, n_one=100_000, n_docs=128, doc_len=2_000, lanes=64):
    try:
        import torch
    except ImportError:
        torch = None
    text = CORPUS.read_text(encoding="utf-8")
    rows = []
    for name, model in [("1×256", Model.load(LSTM)), ("2×256", None)]:
        model = model or lstm_2x256(Model.load(LSTM).chars)
        ix = model.encode(text[:n_one], unknown="skip")[0]
        res = {"hc": [], "hc2": [], "all": [], "t1": [], "t2": [], "fresh": []}
        peer = TorchLSTM(torch, model) if torch else None
        ours_rate(model, ix[:3000], [0], ("h", "c"))  # numba's compiled loops: loaded from its cache
        ours_rate(model, ix[:3000], [0], ("h", "c"), threads=2)
        for _ in range(repeats):  # alternate, so load hits every side
            res["hc"].append(ours_rate(model, ix, [0], ("h", "c")))
            res["hc2"].append(ours_rate(model, ix, [0], ("h", "c"), threads=2))
            if peer:
                res["t1"].append(peer.rate(ix[:, None], 1))
                res["t2"].append(peer.rate(ix[:, None], 2))
            res["all"].append(ours_rate(model, ix, [0], ("h", "c", "i", "f", "o", "g")))
            res["fresh"].append(ours_rate(model, ix, [0], ("h", "c"), fresh=True))
        v = torch.__version__.split("+")[0] if torch else ""
        note = (f"{len(ix):,} chars of War and Peace, batch 1; ours h, c and the loss into float32 arrays "
                f"(float32 arithmetic) on 1 BLAS thread, the arrays written once before the clock (into "
                f"new memory: {med(res['fresh']):,.0f} chars/s on 1 thread); PyTorch h of the last layer "
                f"only; {load_note()}")
        if peer:
            rows.append((f"record LSTM {name}, one document, h+c (chars/s)", f"nn.LSTM forward {v}, 1 thread",
                         med(res["t1"]), med(res["hc"]), 1.0, note))
            rows.append((f"record LSTM {name}, one document, h+c (chars/s)", f"nn.LSTM forward {v}, 2 threads",
                         med(res["t2"]), med(res["hc2"]), 1.0, "ours on 2 threads (record --threads 2: the "
                         f"units split over a team of 2 threads); ours on 1 thread {med(res['hc']):,.0f}; " + note))
        rows.append((f"record LSTM {name}, one document, all gates (chars/s)", "ours, h and c only",
                     med(res["hc"]), med(res["all"]), 0.5, "target: at most 2× slower; " + note))
        docs = [model.encode(text[a:a + doc_len], unknown="skip")[0] for a in range(0, n_docs * doc_len, doc_len)]
        starts = np.cumsum([0] + [len(d) for d in docs])
        all_ix, m = np.concatenate(docs), min(len(d) for d in docs)
        X = np.stack([d[:m] for d in docs[:lanes]], axis=1)  # (m, lanes): PyTorch's batch
        many = {"ours": [], "t1": []}
        for _ in range(repeats):
            many["ours"].append(ours_rate(model, all_ix, starts[:-1], ("h", "c"), lanes=lanes))
            if peer:
                many["t1"].append(peer.rate(X, 1))
        if peer:
            rows.append((f"record LSTM {name}, {n_docs} documents in {lanes} lanes, h+c (chars/s)",
                         f"nn.LSTM forward {v}, batch {lanes}, 1 thread", med(many["t1"]), med(many["ours"]), 1.0,
                         f"{n_docs} documents of {doc_len:,} chars; ours h, c and the loss, 1 BLAS thread, the arrays "
                         f"written once before the clock; "
                         f"{load_note()}"))
    if torch:
        rows += gru_rows(torch, text, repeats, n_one, n_docs, doc_len, lanes)
    return rows


def gru_rows(torch, text, repeats, n_one, n_docs, doc_len, lanes):
    """A 1x256 GRU (random weights): one document and many in lanes, `h`, against nn.GRU."""
    chars = Model.load(LSTM).chars
    model = Model.init(chars, hidden_size=256, arch="gru", n_layers=1, seed=0)
    ix = model.encode(text[:n_one], unknown="skip")[0]
    peer, v = TorchLSTM(torch, model), torch.__version__.split("+")[0]
    docs = [model.encode(text[a:a + doc_len], unknown="skip")[0] for a in range(0, n_docs * doc_len, doc_len)]
    starts = np.cumsum([0] + [len(d) for d in docs])
    all_ix, m = np.concatenate(docs), min(len(d) for d in docs)
    X = np.stack([d[:m] for d in docs[:lanes]], axis=1)
    ours_rate(model, ix[:3000], [0], ("h",))
    res = {"one": [], "t1": [], "many": [], "tm": []}
    for _ in range(repeats):
        res["one"].append(ours_rate(model, ix, [0], ("h",)))
        res["t1"].append(peer.rate(ix[:, None], 1))
        res["many"].append(ours_rate(model, all_ix, starts[:-1], ("h",), lanes=lanes))
        res["tm"].append(peer.rate(X, 1))
    return [("record GRU 1×256, one document, h (chars/s)", f"nn.GRU forward {v}, 1 thread", med(res["t1"]),
             med(res["one"]), 1.0, f"{len(ix):,} chars, batch 1; ours h and the loss, 1 BLAS thread; {load_note()}"),
            (f"record GRU 1×256, {n_docs} documents in {lanes} lanes, h (chars/s)",
             f"nn.GRU forward {v}, batch {lanes}, 1 thread", med(res["tm"]), med(res["many"]), 1.0,
             f"{n_docs} documents of {doc_len:,} chars; ours h and the loss, 1 BLAS thread, the arrays "
             f"written once before the clock; {load_note()}")]


def sgemm_gflops(h, threads=2, reps=5):
    """The machine's best float32 matrix product rate (GFLOPS, best of reps): (4096, h) @ (h, 4h)
    on `threads` BLAS threads, a shape BLAS runs near its peak."""
    from interpret._util.blas import threads as blas_threads
    rng = np.random.default_rng(0)
    a, b = rng.random((4096, h), np.float32), rng.random((h, 4 * h), np.float32)
    out, best = np.empty((4096, 4 * h), np.float32), np.inf
    with blas_threads(threads):
        for _ in range(reps + 1):
            t = time.perf_counter()
            np.matmul(a, b, out=out)
            best = min(best, time.perf_counter() - t)
    return 2 * a.size * b.shape[1] / best / 1e9


def ablate_flops(model, layer, streams):
    """Multiply-adds x 2 per character that ablating a unit of `layer` needs at the least: the
    layers below it once, it and those above once a stream (each a recurrent product and, above
    layer 0, an input one; layer 0's input is a column of a one-hot product), and the output
    layer once a stream."""
    h, gates = model.hidden_size, {"lstm": 4, "gru": 3}.get(model.arch, 1)
    per_layer = [2 * h * gates * h * (1 if l == 0 else 2) for l in range(model.n_layers)]
    return sum(per_layer[:layer]) + streams * (sum(per_layer[layer:]) + 2 * h * model.vocab_size)


def bench_ablate(repeats, n=4_000):
    """causal.ablate against the plain path it replaced (losses_by_step, BLAS threads free), and
    the ceiling the machine's arithmetic puts on it (sgemm_gflops, ablate_flops)."""
    text = CORPUS.read_text(encoding="utf-8")[100_000:100_000 + n]
    rows = []
    for name, model, layer in [("1×256", Model.load(LSTM), 0), ("2×256", None, 1)]:
        model = model or lstm_2x256(Model.load(LSTM).chars)
        data = model.encode(text, unknown="skip")[1]
        ix = model.indices(data)
        cols = np.concatenate([[-1, 5], np.arange(6, 26)])  # the target and 20 random units

        def before():
            t = time.perf_counter()
            causal.losses_by_step(model, ix, layer, "h", cols, np.zeros(len(cols)))
            return len(ix) / (time.perf_counter() - t)

        def after(threads):
            t = time.perf_counter()
            causal.ablate(model, data, 5, layer=layer, n_random=20, threads=threads)
            return len(ix) / (time.perf_counter() - t)

        causal.ablate(model, data[:300], 5, layer=layer, n_random=20)  # numba's loops loaded from its cache
        b, a1, a2, peak = [], [], [], []
        for _ in range(repeats):
            b.append(before())
            a1.append(after(1))
            a2.append(after(2))
            peak.append(sgemm_gflops(model.hidden_size))
        need = ablate_flops(model, layer, len(cols))
        ceiling = med(peak) * 1e9 / need
        rows.append((f"ablate LSTM {name}, layer {layer}, 1 + 20 random units (chars/s)",
                     "one step per character (the old path)", med(b), med(a2), 10.0,
                     f"{len(ix):,} chars; before: model.step per character, BLAS threads as the machine "
                     f"gives; after: causal.ablate (the compiled kernel, BLAS on 1 thread) with the streams "
                     f"on 2 threads as `interpret ablate` runs them by default; on 1 thread: {med(a1):,.0f} "
                     f"chars/s ({med(a1) / med(b):.2f}×); ceiling: {len(cols)} streams need "
                     f"{need / 1e6:.2f} MFLOP a character, the machine's best float32 product (4096×"
                     f"{model.hidden_size} @ {model.hidden_size}×{4 * model.hidden_size}, 2 threads) runs "
                     f"{med(peak):.0f} GFLOPS, so no code passes {ceiling:,.0f} chars/s = "
                     f"{ceiling / med(b):.1f}× the old path; {load_note()}"))
    return rows


def bench_process(repeats, n=2_000_000, n_peer=200_000):
    """Wall time of `python -m interpret record` on n chars against the gist-style loop's rate."""
    from bench import onehot_loop
    model = Model.load(RNN)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "text.txt"
        src.write_text(CORPUS.read_text(encoding="utf-8")[:n], encoding="utf-8")
        ix = model.encode(CORPUS.read_text(encoding="utf-8")[:n_peer], unknown="skip")[0]
        env = dict(os.environ, PYTHONPATH=str(REPO))
        peer, ours = [], []
        for k in range(repeats):
            t = time.perf_counter()
            onehot_loop(model, ix)
            peer.append(len(ix) / (time.perf_counter() - t))
            out = Path(tmp) / f"r{k}.rec"
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "interpret", "record", str(RNN), str(src), "-o", str(out), "-q",
                            "--unknown", "skip"], env=env, check=True, stdout=subprocess.DEVNULL)
            ours.append(n / (time.perf_counter() - t))
    return [("`interpret record` process, vanilla H 100, 2M chars (chars/s)", "gist-style loop (onehot_loop)",
             med(peer), med(ours), 4.0, f"ours: the whole process (start-up, both passes, writing {n:,} chars); "
             f"the peer timed on {len(ix):,} chars, its rate used; {load_note()}")]


def main():
    from bench import table
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", default="gated,ablate,process")
    args = ap.parse_args()
    only, rows = set(args.only.split(",")), []
    for name, f in [("gated", bench_gated), ("ablate", bench_ablate), ("process", bench_process)]:
        if name in only:
            print(f"running {name} ...", file=sys.stderr, flush=True)
            rows += f(args.repeats)
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end; OPENBLAS_CORETYPE="
          f"{os.environ.get('OPENBLAS_CORETYPE', '(unset)')}; medians of {args.repeats} runs\n")
    print(table(rows))


if __name__ == "__main__":
    main()
