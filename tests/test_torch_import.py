"""`interpret import`: models trained in PyTorch, checked against PyTorch's own forward pass.

The fixtures in tests/fixtures/torch were made by make_fixtures.py there (with torch); these tests
need only numpy and safetensors. Each NAME.expected.npz holds PyTorch's h (and c) of every layer
after every character of text.txt, and its logits, with the vocabulary in PyTorch's index order.
"""
import hashlib
import json
import pickle
import re
import shlex
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from cli_helpers import fails, ok, run
from interpret.analysis import causal
from interpret.model.model import Model
from interpret.recording import Recording
from interpret.model.torch_files import read_vocab, tensors_only
from interpret.model.torch_import import import_model

FIX = Path(__file__).resolve().parent / "fixtures" / "torch"
README = Path(__file__).resolve().parent.parent / "README.md"
TEXT = (FIX / "text.txt").read_text(encoding="utf-8")
# name: (vocabulary file, --map arguments, arch interpret stores it as, layers)
FIXTURES = {
    "lstm2_emb": ("lstm2_emb.vocab.json", [], "lstm", 2),              # embedding, dropout, JSON list
    "gru2_onehot": ("gru2_onehot.vocab.json", [], "gru", 2),           # one-hot, {char: index}
    "rnn1_emb": ("rnn1_emb.vocab.txt", [], "rnn", 1),                  # the gist's arrays, text vocabulary
    "rnn2_nobias": ("rnn2_nobias.vocab.json", [], "rnn_stack", 2),     # no biases anywhere
    "gru1_emb_nobias": ("gru1_emb_nobias.vocab.json", [], "gru", 1),
    "lstm1_mapped": ("lstm1_mapped.vocab.json", ["embedding=net.table", "head=net.to_chars"], "lstm", 1),
}
TOL = 1e-5


def expected(name):
    with np.load(FIX / f"{name}.expected.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def torch_chars(name):
    return read_vocab(FIX / FIXTURES[name][0])


def map_args(name):
    return [a for m in FIXTURES[name][1] for a in ("--map", m)]


def imported(tmp_path, name):
    """Run `interpret import` on a fixture; the model file's path."""
    out = tmp_path / f"{name}.npz"
    ok(run("import", FIX / f"{name}.safetensors", "--vocab", FIX / FIXTURES[name][0], "-o", out, *map_args(name)))
    return out


def torch_losses(name):
    """-log p(text[t+1] | text[:t+1]) from PyTorch's logits: (T-1,)."""
    e = expected(name)
    z = e["logits"][:-1].astype(np.float64)
    logp = z - z.max(axis=1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
    return -logp[np.arange(len(z)), e["x"][1:]]


# ---- exactness ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", FIXTURES)
def test_recording_equals_pytorchs_forward(tmp_path, name):
    """import + record: every layer's h (and c) and the next-character loss equal PyTorch's."""
    model_path = imported(tmp_path, name)
    ok(run("record", model_path, FIX / "text.txt", "-o", tmp_path / "run.rec", "-q"))
    rec, want = Recording(tmp_path / "run.rec"), expected(name)
    arrays = [k for k in want if k.startswith("L")]
    assert len(arrays) == FIXTURES[name][3] * (2 if "lstm" in name else 1)
    for key in arrays:
        layer, array = int(key[1]), key.split(".")[1]
        np.testing.assert_allclose(rec.activations(layer, array), want[key], atol=TOL, rtol=0, err_msg=key)
    loss = np.load(tmp_path / "run.rec" / "loss.npy")
    np.testing.assert_allclose(loss[:-1], torch_losses(name), atol=TOL, rtol=0)
    m = Model.load(model_path)
    assert m.arch == FIXTURES[name][2] and m.n_layers == FIXTURES[name][3]


@pytest.mark.parametrize("name", FIXTURES)
def test_logits_equal_pytorchs_and_the_vocabulary_is_sorted(name):
    m = import_model(FIX / f"{name}.safetensors", FIX / FIXTURES[name][0], FIXTURES[name][1])
    chars, want = torch_chars(name), expected(name)
    assert m.chars == sorted(chars) and m.chars != chars  # the fixture's order was shuffled
    _, ys, _ = m.run(m.indices(TEXT))
    order = [chars.index(c) for c in m.chars]  # PyTorch's column of each of our characters
    np.testing.assert_allclose(ys, want["logits"][:, order], atol=TOL, rtol=0)


@pytest.mark.parametrize("name", FIXTURES)
def test_the_intervention_path_equals_pytorch(name):
    """causal.step (ablate, sample --clamp) runs its own forward: intact, it is PyTorch's too."""
    m = import_model(FIX / f"{name}.safetensors", FIX / FIXTURES[name][0], FIXTURES[name][1])
    got = causal.losses(m, m.indices(TEXT), 0, "h", [-1], [0.0], dtype=np.float64)[0]
    np.testing.assert_allclose(got, torch_losses(name), atol=TOL, rtol=0)


def test_the_file_records_where_it_came_from(tmp_path):
    m = Model.load(imported(tmp_path, "lstm2_emb"))
    src = FIX / "lstm2_emb.safetensors"
    info = m.meta["imported"]
    assert info["from"] == src.name and info["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert (info["rnn"], info["embedding"], info["head"], info["torch_arch"]) == (["lstm"], "embedding", "fc", "lstm")
    assert m.meta["arch"] == "lstm" and m.meta["trainer"] == "pytorch"


# ---- the native GRU with and without PyTorch's b_hn ------------------------------------------------
def plain_gru_states(params, ix, bhn):
    """Per-step reference, column vectors: n = tanh(W_in x + b_in + r * (W_hn h + bhn))."""
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    H = params["L0_Wh"].shape[0]
    h, out = np.zeros(H), []
    for i in ix:
        ax, ah = params["L0_Wx"][i] + params["L0_b"], params["L0_Wh"].T @ h
        r, z = sig(ax[:H] + ah[:H]), sig(ax[H:2 * H] + ah[H:2 * H])
        n = np.tanh(ax[2 * H:] + r * (ah[2 * H:] + bhn))
        h = (1 - z) * n + z * h
        out.append(h)
    return np.array(out)


def test_native_gru_is_unchanged_and_bhn_is_applied_inside_the_reset_gate(tmp_path):
    m = Model.init(list("abcdef"), hidden_size=7, arch="gru", seed=4)
    ix = np.random.RandomState(0).randint(0, 6, 50)
    native = m.run(ix)[0][(0, "h")]
    np.testing.assert_allclose(native, plain_gru_states(m.params, ix, 0.0), atol=1e-12)  # as before
    bhn = np.random.RandomState(1).randn(7)
    with_bhn = Model({**m.params, "L0_bhn": bhn}, m.chars, arch="gru")
    got = with_bhn.run(ix)[0][(0, "h")]
    np.testing.assert_allclose(got, plain_gru_states(m.params, ix, bhn), atol=1e-12)
    assert np.abs(got - native).max() > 1e-2
    zero = Model({**m.params, "L0_bhn": np.zeros(7)}, m.chars, arch="gru")
    np.testing.assert_array_equal(zero.run(ix)[0][(0, "h")], native)  # a zero b_hn is exactly no b_hn
    with_bhn.save(tmp_path / "g.npz")  # kept in the file
    np.testing.assert_array_equal(Model.load(tmp_path / "g.npz").params["L0_bhn"], bhn)
    with pytest.raises(ValueError, match="L0_bhn"):
        Model({**m.params, "L0_bhn": np.zeros(3)}, m.chars, arch="gru")


# ---- the other commands on an imported model ---------------------------------------------------
@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("imported")
    ok(run("import", FIX / "lstm2_emb.safetensors", "--vocab", FIX / "lstm2_emb.vocab.json", "-o", d / "m.npz"))
    (d / "text.txt").write_text(TEXT * 4, encoding="utf-8")
    ok(run("record", d / "m.npz", d / "text.txt", "-o", d / "run.rec", "-q"))
    return d


def test_scan_export_gates_probe_on_an_imported_model(work):
    r = ok(run("scan", work / "run.rec", "-f", "in_quote", "--array", "h,c", "--json", "--shifts", 20, "-q"))
    data = json.loads(r.output)
    assert {(x["layer"], x["array"]) for x in data["rows"]} == {(l, k) for l in (0, 1) for k in "hc"}
    ok(run("export", work / "run.rec", "--unit", 3, "-o", work / "u.html"))
    assert "<html" in (work / "u.html").read_text(encoding="utf-8").lower()
    ok(run("gates", work / "run.rec", "-o", work / "g.html", "--json", work / "g.json"))
    g = json.loads((work / "g.json").read_text())
    assert [(x["layer"], x["array"]) for x in g["gates"]] == [(l, k) for l in (0, 1) for k in "ifo"]
    r = ok(run("probe", work / "run.rec", "-f", "in_quote", "--array", "c", "--json"))
    assert "in_quote" in r.output


def test_sample_and_ablate_an_imported_model(work):
    a = ok(run("sample", work / "m.npz", "-n", 40, "--seed", 1, "--prime", "ab")).output
    assert a == ok(run("sample", work / "m.npz", "-n", 40, "--seed", 1, "--prime", "ab")).output
    assert set(a.rstrip("\n")) <= set(torch_chars("lstm2_emb"))
    r = ok(run("ablate", work / "m.npz", work / "text.txt", "--unit", 2, "--layer", 1, "--array", "c",
               "--length", 300, "--random", 2, "-f", "in_quote"))
    assert "p_random" in r.output


def test_the_viewer_opens_an_imported_models_recording(work):
    from test_viewer import build
    doc = build(work / "run.rec")
    assert doc.roots


# ---- module names ---------------------------------------------------------------------------------
def test_unguessable_names_need_map_and_the_error_lists_the_keys(tmp_path):
    out = tmp_path / "m.npz"
    err = fails(run("import", FIX / "lstm1_mapped.safetensors", "--vocab", FIX / "lstm1_mapped.vocab.json",
                    "-o", out), "no nn.Linear head found", "net.to_chars.weight (10, 5)", "--map head=")
    assert err.strip().count("\n") == 0 and not out.exists()
    fails(run("import", FIX / "lstm1_mapped.safetensors", "--vocab", FIX / "lstm1_mapped.vocab.json", "-o", out,
              "--map", "head=net.to_chars"), "keys not understood: net.table.weight", "--map ignore=")
    fails(run("import", FIX / "lstm2_emb.safetensors", "--vocab", FIX / "lstm2_emb.vocab.json", "-o", out,
              "--map", "rnn=mylstm"), "no recurrent module 'mylstm'", "lstm.weight_ih_l0")
    fails(run("import", FIX / "lstm2_emb.safetensors", "--vocab", FIX / "lstm2_emb.vocab.json", "-o", out,
              "--map", "body=lstm"), "ROLE=MODULE", "rnn, embedding, head")
    assert not out.exists()


def test_two_modules_of_one_type_stack_in_the_order_map_gives(tmp_path):
    """lstm2_emb's two layers saved as two one-layer modules: --map rnn=a,b equals the original."""
    sd = load_file(str(FIX / "lstm2_emb.safetensors"))
    split = {}
    for k, v in sd.items():
        m = re.match(r"lstm\.(\w+)_l(\d)$", k)
        split[f"lstm_{'ab'[int(m[2])]}.{m[1]}_l0" if m else k] = v
    save_file(split, str(tmp_path / "split.safetensors"))
    vocab = FIX / "lstm2_emb.vocab.json"
    fails(run("import", tmp_path / "split.safetensors", "--vocab", vocab, "-o", tmp_path / "m.npz"),
          "several recurrent modules found (lstm_a, lstm_b)", "--map rnn=lstm_a,lstm_b")
    m = import_model(tmp_path / "split.safetensors", vocab, ["rnn=lstm_a,lstm_b"])
    acts = m.run(m.indices(TEXT))[0]
    np.testing.assert_allclose(acts[(1, "c")], expected("lstm2_emb")["L1.c"], atol=TOL, rtol=0)
    with pytest.raises(ValueError, match="gives vectors of size 4 but layer 0 reads 6"):
        import_model(tmp_path / "split.safetensors", vocab, ["rnn=lstm_b,lstm_a"])


# ---- unsupported models and bad inputs: one line, non-zero exit, no file -----------------------------
@pytest.mark.parametrize("weights,vocab,needles", [
    ("bidirectional.safetensors", "lstm2_emb.vocab.json",
     ["_l0_reverse: bidirectional layers are not supported", "supported: one nn.RNN"]),
    ("proj_size.safetensors", "lstm2_emb.vocab.json", ["proj_size", "not supported", "supported: one nn.RNN"]),
    ("mixed.safetensors", "lstm2_emb.vocab.json",
     ["stacked layers of different types (gru: gru, lstm: lstm) are not supported", "supported: one nn.RNN"]),
    ("lstm2_emb.safetensors", "gru2_onehot.vocab.json", []),  # same characters: imports (control case)
    ("lstm2_emb.safetensors", "rnn1_emb.vocab.txt", []),
])
def test_refusals(tmp_path, weights, vocab, needles):
    out = tmp_path / "m.npz"
    r = run("import", FIX / weights, "--vocab", FIX / vocab, "-o", out)
    if not needles:
        ok(r)
        return
    err = fails(r, *needles)
    assert err.strip().count("\n") == 0, err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_vocabulary_size_differs_from_the_embedding(tmp_path):
    (tmp_path / "v.json").write_text(json.dumps(list("abcdefghi")), encoding="utf-8")
    fails(run("import", FIX / "lstm2_emb.safetensors", "--vocab", tmp_path / "v.json", "-o", tmp_path / "m.npz"),
          "has 9 characters but the model's embedding embedding is 10")
    fails(run("import", FIX / "gru2_onehot.safetensors", "--vocab", tmp_path / "v.json", "-o", tmp_path / "m.npz"),
          "has 9 characters but the model's input size of layer 0 is 10")
    assert not (tmp_path / "m.npz").exists()


def test_a_missing_key_is_named_and_the_keys_found_listed(tmp_path):
    sd = load_file(str(FIX / "gru2_onehot.safetensors"))
    del sd["gru.weight_hh_l1"]
    save_file(sd, str(tmp_path / "w.safetensors"))
    fails(run("import", tmp_path / "w.safetensors", "--vocab", FIX / "gru2_onehot.vocab.json", "-o", tmp_path / "m.npz"),
          "missing gru.weight_hh_l1; keys found:", "gru.weight_ih_l1 (15, 5)")
    del sd["decoder.weight"], sd["decoder.bias"]
    save_file(sd, str(tmp_path / "w.safetensors"))
    fails(run("import", tmp_path / "w.safetensors", "--vocab", FIX / "gru2_onehot.vocab.json", "-o", tmp_path / "m.npz"),
          "missing gru.weight_hh_l1")
    assert not (tmp_path / "m.npz").exists()


def test_not_a_weights_file(tmp_path):
    fails(run("import", FIX / "text.txt", "--vocab", FIX / "lstm2_emb.vocab.json", "-o", tmp_path / "m.npz"),
          "neither a .safetensors file nor a torch.save'd state_dict", "save_file(model.state_dict()")
    m = import_model(FIX / "lstm2_emb.safetensors", FIX / "lstm2_emb.vocab.json")
    m.save(tmp_path / "native.npz")  # a zip too, but not torch.save's
    fails(run("import", tmp_path / "native.npz", "--vocab", FIX / "lstm2_emb.vocab.json", "-o", tmp_path / "m.npz"),
          "native.npz is neither a .safetensors file nor a torch.save'd state_dict")


# ---- torch.save files ----------------------------------------------------------------------------------
def test_a_pt_file_without_torch_says_save_as_safetensors(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch fails, as where it is not installed
    err = fails(run("import", FIX / "lstm2_emb.pt", "--vocab", FIX / "lstm2_emb.vocab.json", "-o", tmp_path / "m.npz"),
                "needs torch installed", "save it as safetensors instead")
    assert err.strip().count("\n") == 0 and not (tmp_path / "m.npz").exists()


class FakeTensor:
    """Stands in for torch.Tensor where torch is not installed: what _read_torch calls on one."""

    def __init__(self, a):
        self.a = a

    def detach(self):
        return self

    cpu = double = detach

    def numpy(self):
        return self.a


def fake_torch(monkeypatch, load):
    calls = []

    def fake_load(path, map_location=None, weights_only=False):
        calls.append(weights_only)
        return load()
    serialization = types.SimpleNamespace(pickle=pickle)
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(load=fake_load, Tensor=FakeTensor,
                                                                     serialization=serialization))
    return calls


def test_a_pt_state_dict_is_loaded_weights_only(tmp_path, monkeypatch):
    sd = load_file(str(FIX / "lstm2_emb.safetensors"))
    calls = fake_torch(monkeypatch, lambda: {k: FakeTensor(v) for k, v in sd.items()})
    ok(run("import", FIX / "lstm2_emb.pt", "--vocab", FIX / "lstm2_emb.vocab.json", "-o", tmp_path / "m.npz"))
    assert calls == [True]
    m = Model.load(tmp_path / "m.npz")
    np.testing.assert_allclose(m.run(m.indices(TEXT))[0][(1, "h")], expected("lstm2_emb")["L1.h"], atol=TOL)


def test_a_pt_holding_more_than_tensors_is_refused(tmp_path, monkeypatch):
    fake_torch(monkeypatch, lambda: {"model": {}, "chars": ["a"]})
    fails(run("import", FIX / "with_extras.pt", "--vocab", FIX / "lstm2_emb.vocab.json", "-o", tmp_path / "m.npz"),
          "holds more than tensors (entry 'model' is of type dict)", "save it as safetensors instead")

    def refuse():
        raise pickle.UnpicklingError("Weights only load failed")
    fake_torch(monkeypatch, refuse)
    err = fails(run("import", FIX / "whole_module.pt", "--vocab", FIX / "lstm2_emb.vocab.json", "-o",
                    tmp_path / "m.npz"), "holds more than tensors", "never does", "save it as safetensors")
    assert err.strip().count("\n") == 0 and not (tmp_path / "m.npz").exists()
    with pytest.raises(ValueError, match="holds a list, not a state_dict"):  # (what torch.load gave)
        tensors_only([1], "x.pt", FakeTensor)


def test_real_torch_reads_the_pt_files_when_installed(tmp_path):
    pytest.importorskip("torch")
    ok(run("import", FIX / "lstm2_emb.pt", "--vocab", FIX / "lstm2_emb.vocab.json", "-o", tmp_path / "m.npz"))
    m = Model.load(tmp_path / "m.npz")
    np.testing.assert_allclose(m.run(m.indices(TEXT))[0][(0, "c")], expected("lstm2_emb")["L0.c"], atol=TOL)
    for bad in ("with_extras.pt", "whole_module.pt"):
        fails(run("import", FIX / bad, "--vocab", FIX / "lstm2_emb.vocab.json", "-o", tmp_path / "x.npz"),
              "holds more than tensors")


# ---- vocabulary files ------------------------------------------------------------------------------
def test_vocabulary_forms(tmp_path):
    chars = ["b", "\n", "a", " "]
    (tmp_path / "l.json").write_text(json.dumps(chars))
    (tmp_path / "d.json").write_text(json.dumps({c: i for i, c in enumerate(chars)}))
    (tmp_path / "i.json").write_text(json.dumps({str(i): c for i, c in enumerate(chars)}))
    (tmp_path / "v.txt").write_text("".join(chars), newline="")
    for name in ("l.json", "d.json", "i.json", "v.txt"):
        assert read_vocab(tmp_path / name) == chars, name
    (tmp_path / "nl.txt").write_text("".join(chars) + "\n", newline="")  # an editor's trailing newline
    with pytest.raises(ValueError, match="appears twice, at 1 and 4 .*trailing newline"):
        read_vocab(tmp_path / "nl.txt")
    (tmp_path / "gap.json").write_text(json.dumps({"a": 0, "b": 2}))
    with pytest.raises(ValueError, match=r"indices are not 0\.\.1"):
        read_vocab(tmp_path / "gap.json")
    (tmp_path / "tok.json").write_text(json.dumps(["a", "th"]))
    with pytest.raises(ValueError, match="entry 1 is 'th', not a single character"):
        read_vocab(tmp_path / "tok.json")


# ---- README -----------------------------------------------------------------------------------------
def readme_import_command():
    """The `interpret import ...` line of README's "Bring your own model" section."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Bring your own model", 1)[1].split("\n## ", 1)[0]
    (line,) = [ln.strip() for ln in section.splitlines() if ln.strip().startswith("interpret import ")]
    return shlex.split(line)[1:]


def test_the_readmes_import_command_runs_on_a_fixture(tmp_path, monkeypatch):
    args = readme_import_command()
    assert args[:2] == ["import", "model.safetensors"] and "vocab.json" in args and "model.npz" in args
    for name, src in (("model.safetensors", "lstm2_emb.safetensors"), ("vocab.json", "lstm2_emb.vocab.json")):
        (tmp_path / name).write_bytes((FIX / src).read_bytes())
    monkeypatch.chdir(tmp_path)
    ok(run(*args))
    m = Model.load(tmp_path / "model.npz")
    np.testing.assert_allclose(m.run(m.indices(TEXT))[0][(0, "h")], expected("lstm2_emb")["L0.h"], atol=TOL)


@pytest.mark.parametrize("name", ["rnn2_nobias", "gru2_onehot", "rnn1_emb"])
def test_other_architectures_scan_with_their_untrained_twin_and_sample(tmp_path, name):
    model_path = imported(tmp_path, name)
    (tmp_path / "t.txt").write_text(TEXT * 4, encoding="utf-8")
    ok(run("record", model_path, tmp_path / "t.txt", "-o", tmp_path / "run.rec", "-q"))
    data = json.loads(ok(run("scan", tmp_path / "run.rec", "-f", "in_quote", "--json", "--shifts", 20, "-q")).output)
    assert len(data["control"]) == len(data["rows"]) > 0  # the untrained twin has the imported shape
    out = ok(run("sample", model_path, "-n", 30, "--seed", 2)).output[:-1]  # echo's newline
    assert len(out) == 30 and set(out) <= set(torch_chars(name))
