import json

import numpy as np
import pytest

from interpret.model import model as model_mod
from interpret.model.model import Model
from interpret.recording.recorder import Recording, record

from cli_helpers import PROSE, fails, ok, run


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("gated")
    (d / "prose.txt").write_text(PROSE, encoding="utf-8")
    ok(run("train", d / "prose.txt", "-o", d / "m.npz", "--arch", "lstm", "--layers", 2, "--hidden", 12,
           "--batch-size", 4, "--seq-length", 20, "--iters", 30, "--val-every", 10, "-q"))
    ok(run("record", d / "m.npz", d / "prose.txt", "-o", d / "run.rec", "-q"))
    return d


def test_train_lstm_reports_validation_and_resumes(work):
    r = ok(run("train", work / "prose.txt", "-o", work / "m2.npz", "--resume", work / "m.npz",
               "--iters", 40, "-q"))
    assert "best validation loss" in r.output and "trained 40 iterations" in r.output
    m = Model.load(work / "m2.npz")
    assert m.arch == "lstm" and m.n_layers == 2 and m.meta["batch_size"] == 4
    assert m.meta["learning_rate"] == 2e-3
    ok(run("train", work / "prose.txt", "-o", work / "m3.npz", "--resume", work / "m2.npz",
           "--iters", 42, "--lr", 5e-4, "-q"))
    assert Model.load(work / "m3.npz").meta["learning_rate"] == 5e-4
    assert (work / "m.best.npz").exists()


def test_batched_rnn_trains_and_a_stacked_rnn_is_refused(work):
    ok(run("train", work / "prose.txt", "-o", work / "r.npz", "--batch-size", 4, "--hidden", 8,
           "--iters", 5, "--optimizer", "rmsprop", "-q"))
    m = Model.load(work / "r.npz")
    assert m.arch == "rnn" and m.meta["trainer"] == "batched" and m.params["Whh"].shape == (8, 8)
    r = run("train", work / "prose.txt", "-o", work / "x.npz", "--batch-size", 4, "--layers", 2)
    assert r.exit_code == 1 and "one layer" in r.stderr and "Traceback" not in r.stderr


def test_threads_option_trains_the_same_model(work):
    """--threads 2 splits the 4 streams in two: the same model as one thread, to float32 rounding."""
    for k in (1, 2):
        ok(run("train", work / "prose.txt", "-o", work / f"t{k}.npz", "--arch", "gru", "--hidden", 8,
               "--batch-size", 4, "--seq-length", 10, "--iters", 6, "--threads", k, "-q"))
    one, two = (Model.load(work / f"t{k}.npz").params for k in (1, 2))
    for name in one:
        np.testing.assert_allclose(two[name], one[name], rtol=1e-4, atol=1e-5)
    r = run("train", work / "prose.txt", "-o", work / "t0.npz", "--arch", "gru", "--threads", 0)
    assert r.exit_code == 2 and "--threads" in r.stderr


def test_recording_has_every_array_per_layer(work):
    rec = Recording(work / "run.rec")
    assert rec.array_list() == [(l, k, 12) for l in (0, 1) for k in ("h", "c", "i", "f", "o", "g")]
    m = Model.load(work / "m.npz")
    acts, _, _ = m.run(m.encode(PROSE)[0])
    np.testing.assert_allclose(rec.activations(1, "c"), acts[(1, "c")], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rec.activations(0, "f"), acts[(0, "f")], rtol=1e-5, atol=1e-6)


def test_scan_selects_layer_and_array_and_runs_a_gated_control(work):
    r = ok(run("scan", work / "run.rec", "-f", "in_quote", "--layer", 1, "--array", "c", "--json",
               "--shifts", 20, "--control", "untrained", "-q"))
    data = json.loads(r.output)
    assert {(row["layer"], row["array"]) for row in data["rows"]} == {(1, "c")}
    assert {(row["layer"], row["array"]) for row in data["control"]} == {(1, "c")}
    r = ok(run("scan", work / "run.rec", "-f", "in_quote", "--array", "h,c", "--json", "--shifts", 20,
               "--control", "untrained", "-q"))
    data = json.loads(r.output)
    want = {(l, k) for l in (0, 1) for k in "hc"}
    assert {(x["layer"], x["array"]) for x in data["rows"]} == want
    assert {(x["layer"], x["array"]) for x in data["control"]} == want


def test_gates_ablate_and_clamp_commands(work):
    ok(run("gates", work / "run.rec", "-o", work / "g.html", "--json", work / "g.json"))
    g = json.loads((work / "g.json").read_text())
    assert [(x["layer"], x["array"]) for x in g["gates"]][:3] == [(0, "i"), (0, "f"), (0, "o")]
    r = ok(run("ablate", work / "m.npz", work / "prose.txt", "--unit", 3, "--layer", 1, "--array", "c",
               "--length", 300, "--random", 3, "-f", "in_quote"))
    assert "where in_quote is on" in r.output and "p_random" in r.output
    a = ok(run("sample", work / "m.npz", "-n", 30, "--clamp", "3=1.5", "--array", "c", "--seed", 1)).output
    assert a == ok(run("sample", work / "m.npz", "-n", 30, "--clamp", "3=1.5", "--array", "c", "--seed", 1)).output
    bad = run("sample", work / "m.npz", "--clamp", "3:1")
    assert bad.exit_code == 2 and "J=VALUE" in bad.stderr
    bad = run("ablate", work / "m.npz", work / "prose.txt", "--unit", 99)
    assert bad.exit_code == 1 and "out of range" in bad.stderr


def test_ablate_reports_the_same_on_one_thread_and_on_several(work):
    args = ["ablate", work / "m.npz", work / "prose.txt", "--unit", 3, "--layer", 1, "--length", 600,
            "--random", 4, "--json", "-q"]
    one = json.loads(ok(run(*args, "--threads", 1)).stdout)
    for threads in (2, 3):
        got = json.loads(ok(run(*args, "--threads", threads)).stdout)
        assert got["random_units"] == one["random_units"]
        for a, b in zip(got["rows"], one["rows"], strict=True):
            assert a["group"] == b["group"] and a["p_random"] == b["p_random"]
            assert abs(a["unit_delta"] - b["unit_delta"]) < 1e-6 and abs(a["base_loss"] - b["base_loss"]) < 1e-6
    bad = run(*args, "--threads", 0)
    assert bad.exit_code == 2 and "--threads" in bad.stderr


def test_gates_on_a_vanilla_recording_is_refused(tmp_path):
    m = Model.init(sorted(set(PROSE)), hidden_size=5, seed=0)
    rec = record(m, [("p", PROSE[:200])], tmp_path / "v.rec")
    r = run("gates", rec.path, "-o", tmp_path / "g.html")
    assert r.exit_code == 1 and "no gate arrays" in r.stderr and not (tmp_path / "g.html").exists()


@pytest.mark.parametrize("arch", ["lstm", "gru"])
def test_model_file_round_trip_and_chunked_run(tmp_path, monkeypatch, arch):
    m = Model.init(list("abc d"), hidden_size=7, arch=arch, n_layers=2, seed=4)
    m.save(tmp_path / "m.npz", dtype="float32")
    m2 = Model.load(tmp_path / "m.npz")
    assert (m2.arch, m2.n_layers, m2.hidden_size) == (arch, 2, 7)
    with np.load(tmp_path / "m.npz") as z:
        assert z["L1_Wh"].dtype == np.float32
    ix = np.random.RandomState(0).randint(0, 5, 50)
    acts, ys, st = m2.run(ix)
    monkeypatch.setattr(model_mod, "GATED_CHUNK", 7)
    acts7, ys7, st7 = m2.run(ix)
    np.testing.assert_allclose(ys7, ys, atol=1e-12)
    np.testing.assert_allclose(acts7[(1, "h")], acts[(1, "h")], atol=1e-12)
    _, ys_b, _ = m2.run(ix[20:], state=m2.run(ix[:20])[2])
    np.testing.assert_allclose(ys_b, ys[20:], atol=1e-12)


def test_gated_file_with_a_missing_array_is_named(tmp_path):
    m = Model.init(list("abc"), hidden_size=4, arch="lstm", n_layers=1, seed=0)
    arrays = dict(m.params)
    del arrays["L0_b"]
    np.savez(tmp_path / "bad.npz", **arrays, chars=np.array(m.chars), meta=np.array('{"arch": "lstm"}'))
    with pytest.raises(ValueError, match="L0_b"):
        Model.load(tmp_path / "bad.npz")


def test_probe_command(work):
    r = ok(run("probe", work / "run.rec", "-f", "in_quote", "-f", "position_in_line", "--array", "c", "--json"))
    data = json.loads(r.stdout)
    assert [d["feature"] for d in data] == ["in_quote", "position_in_line"]
    assert data[0]["metric"] == "auroc" and data[0]["best_unit"].startswith("L")
    assert ok(run("probe", work / "run.rec", "-f", "in_quote")).stdout.count("in_quote") == 1


def test_ablate_probe_gates_show_progress_on_stderr_and_q_silences_it(work):
    """Like train/record/scan: a progress bar on stderr (stdout stays clean JSON); -q: nothing."""
    cmds = {"ablate": ["ablate", work / "m.npz", work / "prose.txt", "--unit", 1, "--length", 300,
                       "--random", 2, "--json"],
            "probe": ["probe", work / "run.rec", "-f", "in_quote", "--json"],
            "gates": ["gates", work / "run.rec", "-o", work / "gq.html", "--json", work / "gq.json"]}
    labels = {"ablate": "ablating", "probe": "probing", "gates": "reading gates"}
    for name, args in cmds.items():
        loud, quiet = ok(run(*args)), ok(run(*args, "-q"))
        assert labels[name] in loud.stderr and quiet.stderr == "", name
        if name != "gates":
            assert json.loads(loud.stdout) == json.loads(quiet.stdout), name
    assert json.loads(ok(run(*cmds["ablate"], "-q")).stdout)["rows"][0]["n_chars"] == 299


def test_ablate_unknown_characters_error_unless_asked(work, tmp_path):
    (tmp_path / "t.txt").write_text(PROSE[:200] + "\u2713" + PROSE[200:400], encoding="utf-8")
    args = ["ablate", work / "m.npz", tmp_path / "t.txt", "--unit", 1, "--random", 2, "--json", "-q"]
    bad = run(*args)
    assert bad.exit_code == 1 and "'\u2713'" in bad.stderr and "--unknown skip" in bad.stderr
    skip = json.loads(ok(run(*args, "--unknown", "skip")).stdout)
    space = json.loads(ok(run(*args, "--unknown", "space")).stdout)
    assert skip["rows"][0]["n_chars"] == 399 and space["rows"][0]["n_chars"] == 400


def _integrator(chars, gain=20.0):
    """A 1-unit LSTM whose input, forget and candidate gates are all but 1: c grows by ~1 a character."""
    V = len(chars)
    b = np.array([gain, gain, 0.0, gain])  # gate order i, f, o, g
    return Model({"L0_Wx": np.zeros((V, 4)), "L0_Wh": np.zeros((1, 4)), "L0_b": b,
                  "Why": np.zeros((V, 1)), "by": np.zeros(V)}, chars, arch="lstm")


def test_record_float16_refuses_values_beyond_its_range(tmp_path):
    import warnings
    _integrator(["a", "b"]).save(tmp_path / "grow.npz")
    (tmp_path / "long.txt").write_text("ab" * 33500, encoding="utf-8")  # c reaches 67,000 > 65,504
    out = tmp_path / "run.rec"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's overflow warning must never reach the user
        r = run("record", tmp_path / "grow.npz", tmp_path / "long.txt", "-o", out, "--dtype", "float16", "-q")
    err = fails(r, "L0.c unit 0", "float16", "--dtype float32")
    assert "character 6550" in err  # c passes 65,504 at the 65,505th character, give or take rounding
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith("run.rec")]


def test_the_control_scans_only_the_arrays_the_recording_has(work, tmp_path):
    from interpret import features as F
    from interpret.scanning.run import judged
    model = Model.load(work / "m.npz")
    rec = record(model, [("p.txt", PROSE)], tmp_path / "hc.rec", keep=lambda l, k: k in ("h", "c"))
    rows, control = judged(rec, F.get_features(["in_quote"]), n_shifts=10)
    want = {(l, k) for l in (0, 1) for k in "hc"}
    assert {(r["layer"], r["array"]) for r in rows} == want
    assert {(r["layer"], r["array"]) for r in control} == want  # no gates: the text's recording has none
