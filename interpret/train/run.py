"""train_model: a whole training run from a text file, what `interpret train` calls.

It picks the trainer (the gist's faithful one for a one-stream vanilla RNN, else the batched
one, or the one a --resume checkpoint came from), starts fresh or resumes (an lr given with a
resume replaces the checkpoint's), notes a shortened window, runs the loop with a progress bar
labelled with the loss, logs samples and validation lines, and returns a Summary whose str() is
the closing line. Errors are ValueError with one-line messages; Ctrl-C saves the checkpoint and
raises Interrupted (a KeyboardInterrupt) whose message says how to continue.
Progress: a factory progress(total, label) -> bar (interpret._util.progress); None: no bar.
"""
import os
import time
from dataclasses import dataclass

from interpret._util.progress import open_bar
from interpret.model.model import Model
from interpret.train import batched as tb
from interpret.train.gist import TrainState, effective_seq_length, read_text
from interpret.train.gist import train as train_gist


class Interrupted(KeyboardInterrupt):
    """Ctrl-C stopped training; the checkpoint is saved and the message says how to continue."""


@dataclass
class Summary:
    out: str
    iterations: int
    chars: int
    seconds: float
    loss: float                  # smoothed training loss, nats/char
    best_val_loss: float = None  # batched runs with validation

    def __str__(self):
        val = "" if self.best_val_loss is None else f"; best validation loss {self.best_val_loss:.4f}"
        return (f"trained {self.iterations} iterations ({self.chars} characters in {self.seconds:.1f} s, "
                f"{self.chars / max(self.seconds, 1e-9):.0f} chars/s); smoothed loss {self.loss:.4f} "
                f"nats/char{val}; saved {self.out}")


def is_batched(path):
    """Whether the model file at path is a checkpoint of the batched trainer."""
    return Model.load(path).meta.get("trainer") == "batched"


def train_model(text_path, out, *, arch="rnn", hidden=100, layers=1, seq_length=25, lr=None, iters=10000,
                seed=0, batch_size=1, optimizer="adam", clip=5.0, val_fraction=0.05, val_every=500,
                reset_state=False, forget_bias=None, sample_every=0, checkpoint_every=1000, resume=None,
                encoding="utf-8", progress=None, log=print, threads=None):
    """Train on the text file text_path until iteration `iters`, checkpointing to out; a Summary.

    lr None: 0.1 (the gist's Adagrad) or 2e-3 (Adam / RMSProp); with resume, the checkpoint's.
    threads: the batched trainer's workers (None: train.split.default_threads); the gist's
    trainer is one stream and ignores it."""
    data = read_text(text_path, encoding)
    if arch != "rnn" or batch_size > 1 or (resume and is_batched(resume)):
        settings = dict(arch=arch, hidden=hidden, layers=layers, batch_size=batch_size, seq_length=seq_length,
                        lr=lr or 2e-3, optimizer=optimizer, clip=clip, val_fraction=val_fraction, seed=seed,
                        reset_state=reset_state, forget_bias=forget_bias)
        return _batched(data, text_path, out, resume, iters, checkpoint_every, val_every, settings, lr is not None,
                        progress, log, threads)
    if layers != 1:
        raise ValueError(f"the vanilla rnn has one layer (got --layers {layers}); use --arch lstm "
                         "or gru for stacked layers")
    if resume:
        state = TrainState.load(resume, data)
        _resumed(state.model.meta, resume, state.n, lr, log)
    else:
        state = TrainState.fresh(data, hidden, seq_length, lr or 0.1, seed, os.path.basename(text_path))
    L = effective_seq_length(len(data), state.model.meta["seq_length"])
    if L < state.model.meta["seq_length"]:
        log(f"note: the text has {len(data)} characters; training on windows of {L}")
    if state.n >= iters:
        raise ValueError(f"the checkpoint is already at iteration {state.n}; ask for more with --iters (> {state.n})")
    t0, n0 = time.perf_counter(), state.n
    with open_bar(progress, iters - state.n, "training") as bar:
        done = [n0]

        def on_progress(n, loss):
            bar.label = f"training  loss {loss:.3f} nats/char"
            bar.update(n - done[0])
            done[0] = n
        try:
            train_gist(state, data, iters, checkpoint_path=out, checkpoint_every=checkpoint_every,
                       sample_every=sample_every, on_progress=on_progress,
                       on_sample=lambda s: log(f"\n---- sample at iteration {state.n}\n{s}\n----"))
        except KeyboardInterrupt:
            raise Interrupted(f"\ninterrupted at iteration {state.n}; checkpoint saved to {out}\ncontinue with: "
                              f"interpret train {text_path} -o {out} --resume {out} --iters {iters}") from None
    return Summary(out, state.n, (state.n - n0) * L, time.perf_counter() - t0, state.smooth_loss / L)


def _resumed(meta, resume, n, lr, log):
    """Say where a resumed run starts; an lr given replaces the checkpoint's (e.g. lower at the end)."""
    log(f"resuming {resume} at iteration {n}")
    if lr is not None:
        meta["learning_rate"] = lr
        log(f"learning rate set to {lr}")


def _batched(data, text_path, out, resume, iters, checkpoint_every, val_every, settings, lr_given, progress, log,
             threads=None):
    """train_model for the batched trainer."""
    if resume:
        st = tb.BatchedState.load(resume, data)
        _resumed(st.meta, resume, st.n, settings["lr"] if lr_given else None, log)
    else:
        st = tb.BatchedState.fresh(data, corpus_name=os.path.basename(text_path), **settings)
        if st.meta["seq_length"] < settings["seq_length"]:
            log(f"note: the text has {len(data)} characters; training on windows of {st.meta['seq_length']}")
    if st.n >= iters:
        raise ValueError(f"the checkpoint is already at iteration {st.n}; ask for more with --iters")
    t0, n0, last_val = time.perf_counter(), st.n, [None]
    with open_bar(progress, iters - st.n, "training") as bar:
        done = [n0]

        def on_progress(n, loss, val):
            if val is not None:
                last_val[0] = val
                health = st.meta.get("cell_health") if st.meta["arch"] == "lstm" else None
                h = f"; {tb.health_text(health)}" if health else ""
                log(f"\niteration {n}: train loss {loss:.4f}, validation loss {val:.4f} nats/char{h}")
            v = "" if last_val[0] is None else f", val {last_val[0]:.3f}"
            bar.label = f"training  loss {loss:.3f}{v} nats/char"
            bar.update(n - done[0])
            done[0] = n
        try:
            tb.train(st, data, iters, checkpoint_path=out, checkpoint_every=checkpoint_every,
                     val_every=val_every, on_progress=on_progress, threads=threads)
        except KeyboardInterrupt:
            raise Interrupted(f"\ninterrupted at iteration {st.n}; checkpoint saved to {out}; continue with "
                              f"--resume {out}") from None
    m = st.meta
    return Summary(out, st.n, (st.n - n0) * m["batch_size"] * m["seq_length"], time.perf_counter() - t0,
                   m["smooth_loss"], m.get("best_val_loss"))
