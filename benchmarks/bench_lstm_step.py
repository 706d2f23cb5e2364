"""Training speed of the numpy LSTM/GRU step (loss + gradients of one B x T window), in chars/s.

Side by side in one run, medians of several repeats: float32 vs float64, 1 vs 2 layers, LSTM vs
GRU. Run with the thread count you will train with, e.g.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_lstm_step.py
"""
import sys
import time

import numpy as np

from interpret.model import stack as gated


def chars_per_s(arch, H, layers, B=32, T=100, V=80, dtype=np.float32, repeats=5):
    rng = np.random.RandomState(0)
    p = {k: v.astype(dtype) for k, v in gated.init_params(arch, H, V, layers, rng).items()}
    X, Y = rng.randint(0, V, (T, B)), rng.randint(0, V, (T, B))
    state = gated.zero_state(arch, p, B)
    times = []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        gated.loss_and_grads(arch, p, X, Y, state)
        times.append(time.perf_counter() - t0)
    return B * T / float(np.median(times[1:]))


def main():
    configs = [("lstm", 256, 1, np.float32), ("lstm", 256, 1, np.float64), ("lstm", 256, 2, np.float32),
               ("lstm", 512, 1, np.float32), ("gru", 256, 1, np.float32)]
    if "--quick" in sys.argv:
        configs = configs[:2]
    print(f"{'arch':5s} {'H':>4s} {'layers':>6s} {'dtype':8s} {'chars/s':>9s}   (B=32, T=100)")
    for arch, H, layers, dtype in configs:
        cps = chars_per_s(arch, H, layers, dtype=dtype)
        print(f"{arch:5s} {H:4d} {layers:6d} {np.dtype(dtype).name:8s} {cps:9.0f}")


if __name__ == "__main__":
    main()
