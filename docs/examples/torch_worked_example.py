"""Worked example: a char LSTM trained in PyTorch, imported into interpret, scanned like a native one.

Three steps, run from the repository root (`train` and `states` need torch; `compare` needs only
interpret):

  TORCH=/path/to/venv-with-torch/bin/python
  $TORCH docs/examples/torch_worked_example.py train  ../shared/corpora/warandpeace.txt out/
  $TORCH docs/examples/torch_worked_example.py states ../shared/corpora/warandpeace.txt out/
  python docs/examples/torch_worked_example.py compare out/

train:   nn.Embedding(V, 32) -> nn.LSTM(32, 256) -> nn.Linear(256, V) on the text without its last
         100,000 characters (32 contiguous streams, windows of 100, state carried, Adam 2e-3,
         clip 5, one thread), saved as out/model.safetensors + out/vocab.json.
states:  PyTorch's own forward over the held-out last 100,000 characters: h and c of every step,
         saved as out/torch_states.npz, and the held-out text as out/heldout.txt.
compare: `interpret import`, `interpret record`, then `interpret scan` twice (features in_quote and
         position_in_line): on interpret's recording, and on a copy whose L0_h / L0_c arrays are
         replaced by PyTorch's. Prints the max abs differences and both tables' top rows.
"""
import json
import os
import shutil
import subprocess
import sys
import time

HELD_OUT = 100_000
B, T, E, H = 32, 100, 32, 256


def train(text_path, out, max_chars=40_000_000, max_seconds=840):
    import torch
    from safetensors.torch import save_file

    torch.set_num_threads(1)
    torch.manual_seed(0)
    text = open(text_path, encoding="utf-8").read()
    chars = sorted(set(text))
    c2i = {c: i for i, c in enumerate(chars)}
    V = len(chars)
    data = torch.tensor([c2i[c] for c in text[:-HELD_OUT]], dtype=torch.long)
    model = CharLSTM(V)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    L = (len(data) - 1) // B
    xs, ys = data[:B * L].view(B, L), data[1:B * L + 1].view(B, L)
    state, pos, seen, step, avg, t0 = None, 0, 0, 0, None, time.time()
    while seen < max_chars and time.time() - t0 < max_seconds:
        if pos + T > L:
            pos, state = 0, None
        logits, state = model(xs[:, pos:pos + T], state)
        state = tuple(s.detach() for s in state)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), ys[:, pos:pos + T].reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        pos, step, seen = pos + T, step + 1, seen + B * T
        avg = loss.item() if avg is None else 0.99 * avg + 0.01 * loss.item()
        if step % 200 == 0:
            print(f"step {step} chars {seen} loss {avg:.3f} {seen / (time.time() - t0):.0f} chars/s", flush=True)
    os.makedirs(out, exist_ok=True)
    save_file(model.state_dict(), os.path.join(out, "model.safetensors"))
    with open(os.path.join(out, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(chars, f)
    summary = {"steps": step, "chars": seen, "smoothed_loss": avg, "seconds": round(time.time() - t0, 1)}
    json.dump(summary, open(os.path.join(out, "train.json"), "w"))
    print("done:", summary)


def _torch_module():
    import torch

    class CharLSTM(torch.nn.Module):
        def __init__(self, V):
            super().__init__()
            self.embedding = torch.nn.Embedding(V, E)
            self.lstm = torch.nn.LSTM(E, H, batch_first=True)
            self.fc = torch.nn.Linear(H, V)

        def forward(self, x, state=None):
            o, state = self.lstm(self.embedding(x), state)
            return self.fc(o), state
    return CharLSTM


def CharLSTM(V):
    return _torch_module()(V)


def states(text_path, out):
    """PyTorch's forward, one step at a time at batch 1: h and c after every character."""
    import numpy as np
    import torch
    from safetensors.torch import load_file

    torch.set_num_threads(1)
    text = open(text_path, encoding="utf-8").read()[-HELD_OUT:]
    chars = json.load(open(os.path.join(out, "vocab.json"), encoding="utf-8"))
    model = CharLSTM(len(chars))
    model.load_state_dict(load_file(os.path.join(out, "model.safetensors")))
    model.eval()
    x = torch.tensor([[chars.index(c) for c in text]])  # (1, N): War and Peace's end uses no new characters
    hs, cs, state = [], [], None
    with torch.no_grad():
        emb = model.embedding(x)
        for t in range(x.shape[1]):  # nn.LSTM returns only the last c, so step to keep every c
            _, state = model.lstm(emb[:, t:t + 1], state)
            hs.append(state[0][0, 0].numpy().copy())
            cs.append(state[1][0, 0].numpy().copy())
    np.savez(os.path.join(out, "torch_states.npz"), h=np.array(hs), c=np.array(cs))
    with open(os.path.join(out, "heldout.txt"), "w", encoding="utf-8", newline="") as f:
        f.write(text)
    print(f"PyTorch states of {len(text)} characters saved")


def _interpret(*args):
    cmd = [sys.executable, "-m", "interpret", *args]
    print("$ interpret", " ".join(args), flush=True)
    res = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return res.stdout


def compare(out):
    import numpy as np

    j = lambda name: os.path.join(out, name)  # noqa: E731
    _interpret("import", j("model.safetensors"), "--vocab", j("vocab.json"), "-o", j("imported.npz"))
    shutil.rmtree(j("interp.rec"), ignore_errors=True)
    _interpret("record", j("imported.npz"), j("heldout.txt"), "-o", j("interp.rec"), "-q")
    ref = np.load(j("torch_states.npz"), allow_pickle=False)
    ours = {k: np.load(os.path.join(j("interp.rec"), f"L0_{k}.npy")) for k in ("h", "c")}
    for k in ("h", "c"):
        print(f"max |interpret {k} - PyTorch {k}| over {ours[k].shape}: {np.abs(ours[k] - ref[k]).max():.3g}")
    rel = np.abs(ours["c"] - ref["c"]) / np.maximum(np.abs(ref["c"]), 1.0)  # c grows: float32 keeps ~7 digits
    print(f"max |c| {np.abs(ref['c']).max():.1f}; max relative difference of c (over max(|c|, 1)) {rel.max():.3g}; "
          f"max |tanh(c) difference| (what the scan scores) {np.abs(np.tanh(ours['c']) - np.tanh(ref['c'])).max():.3g}")
    shutil.rmtree(j("torch.rec"), ignore_errors=True)  # the same recording with PyTorch's own states in it
    shutil.copytree(j("interp.rec"), j("torch.rec"))
    for k in ("h", "c"):
        np.save(os.path.join(j("torch.rec"), f"L0_{k}.npy"), ref[k].astype(np.float32))
    tables = {}
    for name in ("interp.rec", "torch.rec"):
        args = ["scan", j(name), "--feature", "in_quote", "--feature", "position_in_line", "--kind", "h,c",
                "--top", "3", "-q"]
        tables[name] = _interpret(*args, "--json")
        print(f"--- scan of {name} ---")
        print(_interpret(*args))
    a, b = (json.loads(tables[name])["rows"] for name in ("interp.rec", "torch.rec"))
    same = [(r["feature"], r["kind"], r["unit"]) for r in a] == [(r["feature"], r["kind"], r["unit"]) for r in b]
    diff = max(abs(r[k] - s[k]) for r, s in zip(a, b) for k in r if isinstance(r[k], float) and r[k] == r[k])
    print(f"top rows identical (feature, kind, unit): {same}; max abs difference of any score: {diff:.3g}")


if __name__ == "__main__":
    step = sys.argv[1]
    {"train": train, "states": states, "compare": compare}[step](*sys.argv[2:])
