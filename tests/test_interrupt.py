"""Interruptions: `train` and `record` killed (SIGKILL) at a random moment never leave a torn file
where a good one was; Ctrl-C (SIGINT) then --resume ends with the uninterrupted run's parameters,
and stops an ablation's threads at once; a diverging run stops in one line and keeps its last
good checkpoint."""
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from cli_helpers import PROSE, ok, run
from interpret.train import batched as tb
from interpret.model.model import Model
from interpret.recording.recorder import Recording
from interpret.train.gist import TrainState

from conftest import ROOT
TEXT = PROSE * 4  # about 12k characters
TRAINERS = {  # name -> (extra `train` options, the checkpoint loader)
    "faithful": (["--hidden", "32", "--seq-length", "25"], TrainState.load),
    "lstm": (["--arch", "lstm", "--hidden", "32", "--seq-length", "20", "--batch-size", "4",
              "--val-every", "0"], tb.BatchedState.load),
}
ITERS = {"faithful": 2000, "lstm": 800}  # enough that Ctrl-C lands before the end


def start(*args):
    """`python -m interpret ARGS` in its own process group, running this checkout's code."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "interpret", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def wait_for(pred, proc, timeout=30):
    """Until pred() is true (the process is at the point we want to interrupt)."""
    end = time.monotonic() + timeout
    while not pred():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, "the process never got there"
        time.sleep(0.01)


def changed(path, before):
    """A predicate: path exists with an mtime other than `before`."""
    return lambda: os.path.exists(path) and os.stat(path).st_mtime_ns != before


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("interrupt") / "prose.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


# ---- SIGKILL ------------------------------------------------------------------------------------
@pytest.mark.parametrize("trainer", TRAINERS)
def test_sigkill_during_train_leaves_a_complete_checkpoint(text_file, tmp_path, trainer):
    opts, load = TRAINERS[trainer]
    out = tmp_path / "model.npz"
    ok(run("train", text_file, "-o", out, "--iters", "3", "-q", *opts))  # a good file is there first
    rng = random.Random()
    for attempt in range(3):
        before = os.stat(out).st_mtime_ns
        proc = start("train", text_file, "-o", out, "--iters", 10**6, "--checkpoint-every", 1, "-q", *opts)
        wait_for(changed(out, before), proc)  # training and saving a checkpoint every iteration
        delay = rng.uniform(0, 0.4)
        time.sleep(delay)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        state = load(out, TEXT)  # complete, consistent, resumable
        params = state.model.params if trainer == "faithful" else state.params
        assert state.n >= 1 and all(np.isfinite(v).all() for v in params.values()), (attempt, delay)
        stray = [p.name for p in tmp_path.iterdir() if p.name not in ("model.npz",)]
        assert all(s.startswith(".model.npz.") and s.endswith(".tmp") for s in stray), stray
    ok(run("train", text_file, "-o", out, "--iters", "3", "-q", *opts))
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]  # killed runs' temporaries swept


def test_sigkill_during_record_leaves_the_old_or_the_new_recording(tmp_path):
    model = Model.init(sorted(set(TEXT)), hidden_size=32, seed=0)
    model.save(tmp_path / "m.npz")
    (tmp_path / "short.txt").write_text(PROSE, encoding="utf-8")
    (tmp_path / "long.txt").write_text(TEXT * 8, encoding="utf-8")  # about 100k characters
    out = tmp_path / "run.rec"
    ok(run("record", tmp_path / "m.npz", tmp_path / "short.txt", "-o", out, "-q"))
    t0 = time.monotonic()
    ok(run("record", tmp_path / "m.npz", tmp_path / "long.txt", "-o", tmp_path / "timing.rec", "-q"))
    seconds = time.monotonic() - t0
    rng = random.Random()
    for attempt in range(3):
        ok(run("record", tmp_path / "m.npz", tmp_path / "short.txt", "-o", out, "-q"))
        proc = start("record", tmp_path / "m.npz", tmp_path / "long.txt", "-o", out, "-q")
        wait_for(lambda: any(p.name.startswith(".run.rec.") for p in tmp_path.iterdir()), proc)
        delay = rng.uniform(0, 1.2 * seconds)  # sometimes after it has finished
        time.sleep(delay)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        if not out.exists():  # killed between its two renames: the old one waits beside it, whole
            (old,) = [p for p in tmp_path.iterdir() if p.name.startswith("run.rec.old-")]
            with pytest.raises(ValueError, match="left the previous one"):
                Recording(out)
            os.replace(old, out)
        r = Recording(out)
        assert r.text in (PROSE, TEXT * 8), (attempt, delay)
        assert r.activations().shape == (len(r.text), 32) and r.loss.shape == (len(r.text),)
        assert np.isfinite(r.activations()[-1]).all()  # the last row was written, not a hole
        stray = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
        assert all(s.startswith(".run.rec.") and s.endswith(".tmp") for s in stray), stray
    ok(run("record", tmp_path / "m.npz", tmp_path / "short.txt", "-o", out, "-q"))
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # swept


# ---- SIGINT then --resume -----------------------------------------------------------------------
@pytest.mark.parametrize("trainer", TRAINERS)
def test_sigint_then_resume_gives_the_uninterrupted_parameters(text_file, tmp_path, trainer):
    opts = TRAINERS[trainer][0] + ["--hidden", "16"]  # small: most of the time is spent inside steps
    n = ITERS[trainer]
    ok(run("train", text_file, "-o", tmp_path / "straight.npz", "--iters", n, "-q", *opts))
    ck = tmp_path / "ck.npz"
    proc = start("train", text_file, "-o", ck, "--iters", n, "--checkpoint-every", 20, *opts)
    wait_for(changed(ck, None), proc)  # it has begun: the first checkpoint is written
    time.sleep(random.uniform(0, 0.3))
    proc.send_signal(signal.SIGINT)  # Ctrl-C: lands anywhere, also inside a step
    _, err = proc.communicate(timeout=60)
    err = err.decode()
    assert proc.returncode == 130 and "interrupted at iteration" in err and "Traceback" not in err, err
    stopped = Model.load(ck).meta["resume"]["n"]
    assert 0 < stopped < n
    ok(run("train", text_file, "-o", ck, "--resume", ck, "--iters", n, "-q", *opts))
    straight, resumed = Model.load(tmp_path / "straight.npz"), Model.load(ck)
    for k in straight.params:
        np.testing.assert_array_equal(resumed.params[k], straight.params[k], err_msg=f"{k} after {stopped}")
    assert resumed.meta["smooth_loss"] == straight.meta["smooth_loss"]


def test_ctrl_c_inside_a_step_waits_for_the_end_of_the_iteration(tmp_path, monkeypatch):
    """A SIGINT that arrives after a step has updated the parameters in place (but before the
    iteration is counted) must not save a checkpoint mixing two iterations."""
    from interpret.train import faithful
    from interpret.train.gist import train
    step, calls = faithful.GistStep.step, [0]

    def step_then_ctrl_c(self, *args):
        out = step(self, *args)
        calls[0] += 1
        if calls[0] == 37:
            os.kill(os.getpid(), signal.SIGINT)  # delivered here, mid-iteration
        return out
    monkeypatch.setattr(faithful.GistStep, "step", step_then_ctrl_c)
    ck = tmp_path / "ck.npz"
    with pytest.raises(KeyboardInterrupt):
        train(TrainState.fresh(TEXT, 16, 10, 0.1, 0), TEXT, 80, checkpoint_path=ck)
    resumed = TrainState.load(ck, TEXT)
    assert resumed.n == 37
    monkeypatch.setattr(faithful.GistStep, "step", step)
    train(resumed, TEXT, 80)
    straight = train(TrainState.fresh(TEXT, 16, 10, 0.1, 0), TEXT, 80)
    for k in straight.model.params:
        np.testing.assert_array_equal(resumed.model.params[k], straight.model.params[k])


def test_ctrl_c_inside_a_batched_update_waits_for_the_end_of_the_iteration(tmp_path, monkeypatch):
    update, calls = tb.update, [0]

    def update_then_ctrl_c(*args):
        update(*args)
        calls[0] += 1
        if calls[0] == 13:
            os.kill(os.getpid(), signal.SIGINT)
    fresh = lambda: tb.BatchedState.fresh(TEXT, "lstm", 16, 1, 4, 20, 2e-3)  # noqa: E731
    monkeypatch.setattr(tb, "update", update_then_ctrl_c)
    ck = str(tmp_path / "ck.npz")
    with pytest.raises(KeyboardInterrupt):
        tb.train(fresh(), TEXT, 30, checkpoint_path=ck)
    resumed = tb.BatchedState.load(ck, TEXT)
    assert resumed.n == 13
    monkeypatch.setattr(tb, "update", update)
    tb.train(resumed, TEXT, 30)
    straight = tb.train(fresh(), TEXT, 30)
    for k in straight.params:
        np.testing.assert_array_equal(resumed.params[k], straight.params[k])


def test_ctrl_c_stops_an_ablation_on_threads_at_once(tmp_path):
    """The parts' threads finish their chunk and stop; the command ends in one line, no traceback."""
    text = tmp_path / "long.txt"
    text.write_text(PROSE * 16, encoding="utf-8")               # about 50k characters: seconds of work
    proc = start("ablate", ROOT / "trained_models" / "warpeace-lstm.npz", text, "--unit", 3, "--length",
                 100_000, "--unknown", "skip", "--threads", 2)
    for line in proc.stderr:                                    # the progress bar's first line
        if b"ablating" in line:
            break
    t = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    err = err.decode()
    assert proc.returncode == 1 and "Aborted!" in err and "Traceback" not in err, err
    assert b"p_random" not in out and time.monotonic() - t < 5


# ---- divergence ---------------------------------------------------------------------------------
def one_line_error(result, *needles):
    assert result.exit_code == 1 and result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert all(n in lines[0] for n in needles), lines[0]
    return lines[0]


@pytest.mark.parametrize("trainer", TRAINERS)
def test_a_diverging_run_stops_in_one_line_and_keeps_the_last_good_checkpoint(text_file, tmp_path, trainer):
    opts, load = TRAINERS[trainer]
    out = tmp_path / "m.npz"
    ok(run("train", text_file, "-o", out, "--iters", "20", "-q", *opts))
    good = out.read_bytes()
    # diverges at once, before any checkpoint: the previous file stays as it was
    r = run("train", text_file, "-o", out, "--iters", "300", "--lr", "1e30", "-q", *opts)
    one_line_error(r, "the loss became", "not changed", "lower --lr")
    assert out.read_bytes() == good
    # diverges after some checkpoints: the last one with finite numbers is on disk, and resumes
    if trainer == "faithful":
        r = run("train", text_file, "-o", out, "--iters", "300", "--lr", "30", "--checkpoint-every", "1", "-q", *opts)
    else:
        r = run("train", text_file, "-o", out, "--resume", out, "--iters", "300", "--lr", "3",
                "--checkpoint-every", "1", "-q", *opts)
    line = one_line_error(r, "became", "lower --lr")
    state = load(out, TEXT)
    params = state.model.params if trainer == "faithful" else state.params
    assert all(np.isfinite(v).all() for v in params.values())
    if "keeps iteration" in line:
        assert f"keeps iteration {state.n}," in line
    else:  # the update itself overflowed: those parameters were refused, the file holds the one before
        assert "was not overwritten" in line
    assert state.n >= (21 if trainer == "lstm" else 1)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_only_temporaries_of_gone_processes_of_this_host_are_swept(tmp_path):
    from interpret._util import atomic
    target = tmp_path / "page.html"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    mine = f".page.html.{atomic.host_tag()}-"
    names = {
        "stale_file": f"{mine}{gone.pid}.abc_1.tmp",                 # its process has ended
        "stale_dir": f"{mine}{gone.pid}.xyz.tmp",
        "live": f"{mine}{os.getppid()}.abc.tmp",                     # a running process's
        "own": f"{mine}{os.getpid()}.abc.tmp",
        "other_host": f".page.html.elsewhere-{gone.pid}.abc.tmp",
        "other_target": f".other.html.{atomic.host_tag()}-{gone.pid}.abc.tmp",
        "not_ours": f"{mine}{gone.pid}.abc.txt",
    }
    for key, name in names.items():
        if key == "stale_dir":
            (tmp_path / name).mkdir()
            (tmp_path / name / "L0_h.npy").write_bytes(b"x")
        else:
            (tmp_path / name).write_text("x")
    fd, path = atomic.temp_file(target)
    os.close(fd)
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {n for k, n in names.items() if not k.startswith("stale")} | {os.path.basename(path)}
