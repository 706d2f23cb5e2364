import json
import os

import numpy as np
import pytest

from interpret import __version__

from cli_helpers import PROSE, fails, ok, run


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    (d / "prose.txt").write_text(PROSE, encoding="utf-8")
    ok(run("train", d / "prose.txt", "-o", d / "m.npz", "--iters", 150, "--hidden", 16, "-q"))
    ok(run("record", d / "m.npz", d / "prose.txt", "-o", d / "run.rec", "-q"))
    return d


def test_help_version_and_examples():
    r = ok(run("--help"))
    assert "Example:" in r.output
    assert ok(run("--version")).output.strip().endswith(__version__)
    for cmd in ("train", "sample", "record", "scan", "export", "demo", "features"):
        assert "Example:" in ok(run(cmd, "-h")).output, cmd


def test_train_writes_a_model_and_reports_the_loss(work):
    r = ok(run("train", work / "prose.txt", "-o", work / "t.npz", "--iters", 20, "--hidden", 8,
               "--sample-every", 10))
    assert "trained 20 iterations" in r.output and "nats/char" in r.output
    assert "---- sample at iteration 10" in r.stderr
    r = ok(run("train", work / "prose.txt", "-o", work / "t.npz", "--resume", work / "t.npz",
               "--iters", 30, "-q"))
    assert "trained 30 iterations" in r.output
    fails(run("train", work / "prose.txt", "-o", work / "t.npz", "--resume", work / "t.npz",
              "--iters", 10), "already at iteration 30")
    fails(run("train", work / "prose.txt", "-o", work / "t.npz", "--iters", 0), "--iters")


def test_sample(work):
    r = ok(run("sample", work / "m.npz", "-n", 40, "--prime", "said ", "--seed", 1))
    assert r.output.startswith("said ") and len(r.output.rstrip("\n")) >= 40
    assert ok(run("sample", work / "m.npz", "-n", 40, "--prime", "said ", "--seed", 1)).output == r.output
    ok(run("sample", work / "m.npz", "-n", 10, "--argmax"))
    fails(run("sample", work / "m.npz", "--prime", "\u00e9"), "vocabulary")


def test_scan_table_json_csv(work):
    r = ok(run("scan", work / "run.rec", "-q"))
    assert "in_quote" in r.output and "position_in_line" in r.output
    out = json.loads(ok(run("scan", work / "run.rec", "--feature", "in_quote", "--top", 5, "--json", "-q")).output)
    rows = out["rows"]
    assert len(rows) == 5 and len(out["control"]) == 5  # the untrained control runs by default
    assert all(r["verdict"] in ("cell", "weak", "none") for r in rows + out["control"])
    none = json.loads(ok(run("scan", work / "run.rec", "-f", "in_quote", "--control", "none", "--json", "-q")).output)
    assert none["control"] is None and {r["verdict"] for r in none["rows"]} <= {"weak", "none"}
    assert len(rows) == 5 and {r["feature"] for r in rows} == {"in_quote"}
    for key in ("feature", "unit", "layer", "array", "metric", "score", "sign", "p", "q", "beyond_char"):
        assert key in rows[0]
    assert rows == sorted(rows, key=lambda r: -r["score"])
    csv = ok(run("scan", work / "run.rec", "-f", "position_in_line", "--csv", "-q")).output.splitlines()
    assert csv[0].startswith("feature,") and csv[0].endswith(",verdict") and len(csv) == 1 + 16
    r = ok(run("scan", work / "run.rec", "-f", "in_quote", "--control", "untrained", "--json", "--top", 2, "-q"))
    both = json.loads(r.output)
    assert len(both["rows"]) == 2 and len(both["control"]) == 2
    r = ok(run("scan", work / "run.rec", "--feature-regex", "said=said", "-f", "said", "--top", 1, "--json", "-q"))
    assert json.loads(r.output)["rows"][0]["feature"] == "said"


def test_scan_errors(work):
    fails(run("scan", work / "run.rec", "--feature", "nope"), "unknown feature 'nope'")
    fails(run("scan", work / "run.rec", "--feature-regex", "bad=("), "bad")
    fails(run("scan", work / "prose.txt"), "not a recording")
    fails(run("scan", work / "run.rec", "--array", "c"), "no layer")


def test_export_unit_and_gallery(work):
    out = work / "u.html"
    r = ok(run("export", work / "run.rec", "--unit", 3, "--start", 10, "--length", 200, "-o", out))
    page = out.read_text(encoding="utf-8")
    assert "unit 3" in page and "&quot;" in page
    fails(run("export", work / "run.rec", "--unit", 16, "-o", work / "bad.html"), "unit 16 is out of range")
    assert not (work / "bad.html").exists()
    fails(run("export", work / "run.rec", "--unit", 0, "--start", 10 ** 7, "-o", work / "bad.html"), "past the end")
    r = ok(run("export", work / "run.rec", "--gallery", "-o", work / "g.html", "-q"))
    g = (work / "g.html").read_text(encoding="utf-8")
    assert "in_quote" in g and "position_in_line" in g
    # no [] in the text: constant, so no excerpt, only its line among the features without a cell
    assert "<b>square_depth</b>: constant on this text: not scored" in g and ">square_depth</h2>" not in g
    js = work / "scan.json"
    js.write_text(ok(run("scan", work / "run.rec", "--json", "-q")).output)
    ok(run("export", work / "run.rec", "--gallery", "--scan", js, "-o", work / "g2.html"))
    rows = json.loads(js.read_text())["rows"]
    rows[0]["unit"] = 16                              # a scan of a bigger model's recording
    js.write_text(json.dumps(rows))
    fails(run("export", work / "run.rec", "--gallery", "--scan", js, "-o", work / "g3.html"),
          "another recording")
    js.write_text("[{\"feature\": 1}]")
    fails(run("export", work / "run.rec", "--gallery", "--scan", js, "-o", work / "g3.html"), "lacks")
    js.write_text("{oops")
    fails(run("export", work / "run.rec", "--gallery", "--scan", js, "-o", work / "g3.html"), "not valid scan JSON")
    assert not (work / "g3.html").exists()


def test_bad_inputs_give_one_line_errors(work, tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "bin.txt").write_bytes(b"\x7fELF\x00\x00\x01")
    (tmp_path / "latin.txt").write_bytes("caf\u00e9 au lait".encode("latin-1"))
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
    np.savez(tmp_path / "pickled.npz", Wxh=np.zeros((2, 2)), chars=np.array(["a", "b"], dtype=object))
    np.savez(tmp_path / "shapes.npz", Wxh=np.zeros((4, 3)), Whh=np.zeros((4, 4)), Why=np.zeros((3, 5)),
             bh=np.zeros(4), by=np.zeros(3), chars=np.array(list("abc")))
    out = tmp_path / "x.rec"
    fails(run("train", tmp_path / "empty.txt", "-o", tmp_path / "m.npz"), "empty")
    fails(run("train", tmp_path / "bin.txt", "-o", tmp_path / "m.npz"), "binary")
    fails(run("train", tmp_path / "latin.txt", "-o", tmp_path / "m.npz"), "--encoding")
    fails(run("train", tmp_path / "missing.txt", "-o", tmp_path / "m.npz"), "does not exist")
    assert not (tmp_path / "m.npz").exists()
    fails(run("record", tmp_path / "junk.npz", work / "prose.txt", "-o", out), "not a readable")
    fails(run("record", tmp_path / "pickled.npz", work / "prose.txt", "-o", out), "pickled")
    fails(run("record", tmp_path / "shapes.npz", work / "prose.txt", "-o", out), "'Why'")
    fails(run("record", work / "m.npz", tmp_path / "latin.txt", "-o", out, "--encoding", "latin-1"),
          "not in the model's vocabulary", "--unknown")
    fails(run("record", work / "m.npz", tmp_path / "empty.txt", "-o", out), "empty")
    assert not out.exists() and not [p for p in os.listdir(tmp_path) if p.startswith(".rec")]
    r = ok(run("record", work / "m.npz", tmp_path / "latin.txt", "-o", out, "--encoding", "latin-1",
               "--unknown", "skip", "-q"))
    assert "recorded" in r.output
    for result in (run("scan", tmp_path / "missing.rec"), run("export", out, "-o", tmp_path / "e.html")):
        assert result.exit_code != 0 and "Traceback" not in result.stderr


def test_python_dash_m():
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "interpret", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and __version__ in r.stdout


@pytest.mark.parametrize("modules", ["interpret.cli.main, interpret.model.model, interpret.recording.recorder",
                                     "interpret.analysis.causal, interpret.model.stack, interpret.model.infer"])
def test_recording_and_ablating_do_not_import_scipy(modules):
    """scipy (0.2-0.5 s to import) only where it is used: training's one-hot gradient, the scan."""
    import subprocess
    import sys
    code = f"import sys, {modules}; print(sorted(m for m in sys.modules if m.split('.')[0] == 'scipy'))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr


def test_progress_to_a_log_file_is_a_line_every_tenth(tmp_path):
    (tmp_path / "t.txt").write_text(PROSE, encoding="utf-8")
    r = ok(run("train", tmp_path / "t.txt", "-o", tmp_path / "m.npz", "--iters", 1000, "--checkpoint-every", 0))
    progress = [ln for ln in r.stderr.splitlines() if ln.startswith("training")]
    assert 10 <= len(progress) <= 11, progress  # 867 lines for 1000 iterations before
    assert progress[-1].endswith("1000/1000 (100%)") and "loss" in progress[-1]


def test_lr_is_honoured_on_resume_of_the_gist_trainer(tmp_path):
    from interpret.model.model import Model
    (tmp_path / "t.txt").write_text(PROSE, encoding="utf-8")
    ok(run("train", tmp_path / "t.txt", "-o", tmp_path / "m.npz", "--iters", 20, "-q"))
    ok(run("train", tmp_path / "t.txt", "-o", tmp_path / "m2.npz", "--resume", tmp_path / "m.npz", "--iters", 40, "-q"))
    r = ok(run("train", tmp_path / "t.txt", "-o", tmp_path / "m3.npz", "--resume", tmp_path / "m.npz", "--iters", 40,
               "--lr", 0.01))
    assert "learning rate set to 0.01" in r.stderr
    same, slow = Model.load(tmp_path / "m2.npz"), Model.load(tmp_path / "m3.npz")
    assert same.meta["learning_rate"] == 0.1 and slow.meta["learning_rate"] == 0.01
    start = Model.load(tmp_path / "m.npz").params["Why"]
    step = lambda m: np.abs(m.params["Why"] - start).max()  # noqa: E731
    assert step(slow) < 0.5 * step(same)  # Adagrad's steps scale with the rate
