"""The bad-input catalogue: every command against every bad input that applies.

Each case asserts: a non-zero exit, exactly one `Error:` line on stderr naming the bad value
(and the way out, where there is one), nothing else on stderr but click's usage hint, nothing on
stdout, no traceback, the inputs untouched, and no output left behind: a fresh -o path does not
appear (nor any temporary file beside it), and a previous output at -o is byte-identical.
The ways out the messages name (--encoding, --unknown skip) are tested to work; CRLF and lone-CR
texts go through the CLI and their line features are checked against hand-computed values.
"""
import hashlib
import json
import os
import shlex
import shutil
import subprocess

import numpy as np
import pytest

from interpret import features as F
from interpret.model.model import Model
from interpret.recording.recorder import Recording, record
from interpret.train.gist import TrainState

from cli_helpers import PROSE, ok, run

VOCAB = sorted(set(PROSE + "\u00e9\r"))
PREVIOUS = b"previous output, must survive a failed run\n"


# ---- fixtures, built once per module ---------------------------------------------------------
def _write_models(d):
    model = Model.init(VOCAB, 8, seed=0)
    model.save(d / "model.npz")
    Model.init(VOCAB, 4, arch="lstm", seed=0).save(d / "lstm.npz")
    raw = (d / "model.npz").read_bytes()
    (d / "m_trunc.npz").write_bytes(raw[: len(raw) // 2])
    (d / "m_garbage.npz").write_bytes(bytes(range(256)) * 4)
    (d / "m_empty.npz").write_bytes(b"")
    good = {k: v for k, v in model.params.items()}
    chars = np.array(VOCAB)
    obj = np.empty(1, dtype=object)
    obj[0] = {"pickled": True}
    np.savez(d / "m_pickle.npz", **good, chars=chars, extra=obj)
    np.savez(d / "m_shape.npz", **dict(good, Whh=np.zeros((8, 7))), chars=chars)
    np.savez(d / "m_nan.npz", **dict(good, Why=np.full(good["Why"].shape, np.nan)), chars=chars)
    np.savez(d / "m_inf.npz", **dict(good, bh=np.full(8, np.inf)), chars=chars)
    np.savez(d / "m_nochars.npz", **good)
    np.savez(d / "m_missing.npz", **{k: v for k, v in good.items() if k != "Why"}, chars=chars)
    np.savez(d / "m_badmeta.npz", **good, chars=chars, meta=np.array("{not json"))
    np.savez(d / "m_listmeta.npz", **good, chars=chars, meta=np.array("[1, 2]"))
    np.savez(d / "m_arch.npz", **good, chars=chars, meta=np.array('{"arch": "transformer"}'))
    np.savez(d / "m_strarray.npz", **dict(good, Whh=np.array(["a"] * 8)), chars=chars)
    np.save(d / "m_npy.npy", good["Whh"])
    np.savez(d / "m_chars.npz", **good, chars=np.array(["ab"] + VOCAB[1:]))
    np.savez(d / "m_vocab.npz", **good, chars=np.array(VOCAB[:-1]))
    st = TrainState.fresh(PROSE, 8, 25, 0.1, 0, "prose.txt")
    st.save(d / "ckpt.npz")
    st.model.meta["resume"] = "halfway"
    st.model.save(d / "ckpt_resume.npz", extra={f"opt_mem_{k}": v for k, v in st.mem.items()})


def _write_texts(d):
    (d / "prose.txt").write_text(PROSE, encoding="utf-8")
    (d / "adir").mkdir()
    (d / "empty.txt").write_bytes(b"")
    (d / "binary.bin").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    latin = PROSE.replace("old man", "caf\u00e9 man")
    (d / "latin1.txt").write_bytes(latin.encode("latin-1"))
    (d / "utf16.txt").write_bytes(latin.encode("utf-16"))
    (d / "unknown.txt").write_text(PROSE + "\u2713 \u00fc\u00fc\n", encoding="utf-8")
    (d / "allunknown.txt").write_text("\u2713\u2713\u00fc" * 3, encoding="utf-8")
    (d / "one.txt").write_text("a", encoding="utf-8")
    (d / "crlf.txt").write_bytes(PROSE.replace("\n", "\r\n").encode())
    (d / "lonecr.txt").write_bytes(PROSE.replace("\n", "\r").encode())


def _write_feature_files(d):
    files = {
        "ff_raise_load.py": "raise RuntimeError('boom while loading')\n",
        "ff_raise_eval.py": "def feature_boom(text):\n    raise KeyError('boom while evaluating')\n",
        "ff_exit.py": "import sys\nsys.exit(3)\n",
        "ff_shape.py": "def feature_short(text):\n    return [0.0]\n",
        "ff_nan.py": "import math\ndef feature_nanny(text):\n    return [math.nan] * len(text)\n",
        "ff_text.py": "def feature_wordy(text):\n    return ['x'] * len(text)\n",
        "ff_syntax.py": "def feature_x(text:\n    return 1\n",
        "ff_none.py": "x = 1\n",
        "ff_twice.py": "def feature_in_quote(text):\n    return [0.0] * len(text)\n",
    }
    for name, code in files.items():
        (d / name).write_text(code, encoding="utf-8")
    (d / "ff_latin1.py").write_bytes("# caf\u00e9\ndef feature_x(t):\n    return [0] * len(t)\n".encode("latin-1"))
    (d / "ff_binary.py").write_bytes(b"def feature_x(t):\x00\x01\x02\n")


def damage(src, dst, how):
    """A copy of the recording `src` at `dst`, damaged in one way."""
    shutil.copytree(src, dst)
    man = json.loads((dst / "manifest.json").read_text())
    arrays = ("L0_h.npy", "L0_i.npy")  # the first array (export, scan, probe) and the first gate (gates)
    if how == "no_manifest":
        (dst / "manifest.json").unlink()
    elif how == "manifest_not_json":
        (dst / "manifest.json").write_text("{oops", encoding="utf-8")
    elif how == "manifest_list":
        (dst / "manifest.json").write_text("[]", encoding="utf-8")
    elif how == "manifest_format":
        man["format"] = "something-else"
    elif how == "manifest_no_n_chars":
        del man["n_chars"]
    elif how == "manifest_bad_arrays":
        man["arrays"] = [{"file": a} for a in arrays]
    elif how == "manifest_file_path":
        man["arrays"][0]["file"] = "../lstm.rec/L0_h.npy"
    elif how == "manifest_bad_units":
        for a in man["arrays"]:
            a["n_units"] = "four"
    elif how == "manifest_bad_documents":
        man["documents"][1]["start"] = man["n_chars"] + 5
    elif how == "manifest_chars":
        man["chars"] = [c for c in man["chars"] if c != "e"]
    elif how == "array_missing":
        for a in arrays:
            (dst / a).unlink()
    elif how == "array_short":
        for a in arrays:
            np.save(dst / a, np.load(dst / a)[:-3])
    elif how == "array_units":
        for a in man["arrays"]:
            a["n_units"] = 9
    elif how == "array_pickled":
        for a in arrays:
            obj = np.empty((2, 2), dtype=object)
            np.save(dst / a, obj, allow_pickle=True)
    elif how == "array_truncated":
        for a in arrays:
            raw = (dst / a).read_bytes()
            (dst / a).write_bytes(raw[: len(raw) // 2])
    elif how == "array_nan":
        for a in arrays:
            x = np.load(dst / a)
            x[5, 1] = np.nan
            np.save(dst / a, x)
    elif how == "char_ix_missing":
        (dst / "char_ix.npy").unlink()
    elif how == "char_ix_float":
        np.save(dst / "char_ix.npy", np.load(dst / "char_ix.npy").astype(np.float32))
    elif how == "char_ix_short":
        np.save(dst / "char_ix.npy", np.load(dst / "char_ix.npy")[:-3])
    elif how == "char_ix_range":
        ix = np.load(dst / "char_ix.npy")
        ix[300] = len(man["chars"])
        np.save(dst / "char_ix.npy", ix)
    elif how == "char_ix_other_char":  # in range, but not the character text.txt has there
        ix = np.load(dst / "char_ix.npy")
        ix[300] = (ix[300] + 1) % len(man["chars"])
        np.save(dst / "char_ix.npy", ix)
    elif how == "char_ix_pickled":
        np.save(dst / "char_ix.npy", np.empty(3, dtype=object), allow_pickle=True)
    elif how == "manifest_char_ix_path":
        man["char_ix_file"] = "../lstm.rec/char_ix.npy"
    elif how == "text_missing":
        (dst / "text.txt").unlink()
    elif how == "text_short":
        (dst / "text.txt").write_text(PROSE[:100], encoding="utf-8")
    elif how == "text_not_utf8":
        raw = (dst / "text.txt").read_bytes()
        (dst / "text.txt").write_bytes(b"\xff" + raw[1:])
    else:
        raise AssertionError(how)
    if how in ("manifest_format", "manifest_no_n_chars", "manifest_bad_arrays", "manifest_file_path",
               "manifest_bad_units", "manifest_bad_documents", "manifest_chars", "array_units",
               "manifest_char_ix_path"):
        (dst / "manifest.json").write_text(json.dumps(man), encoding="utf-8")


CHAR_IX_DAMAGES = ("char_ix_missing", "char_ix_float", "char_ix_short", "char_ix_range", "char_ix_other_char",
                   "char_ix_pickled")
DAMAGES = ("no_manifest", "manifest_not_json", "manifest_list", "manifest_format", "manifest_no_n_chars",
           "manifest_bad_arrays", "manifest_file_path", "manifest_bad_units", "manifest_bad_documents",
           "manifest_chars", "array_missing", "array_short", "array_units", "array_pickled", "array_truncated", "array_nan",
           "text_missing", "text_short", "text_not_utf8", "manifest_char_ix_path") + CHAR_IX_DAMAGES
# what each damage must be reported as (a piece of the one error line)
DAMAGE_NEEDLE = {
    "no_manifest": "no manifest.json", "manifest_not_json": "not valid JSON", "manifest_list": "not an interpret",
    "manifest_format": "not an interpret", "manifest_no_n_chars": "n_chars",
    "manifest_bad_arrays": "arrays", "manifest_file_path": "'../lstm.rec/L0_h.npy'",
    "manifest_bad_units": "arrays", "manifest_bad_documents": "documents",
    "manifest_chars": "vocabulary", "array_missing": "missing", "array_short": "shape",
    "array_units": "shape", "array_pickled": "cannot be read", "array_truncated": "cannot be read",
    "array_nan": "NaN or Inf", "text_missing": "text.txt", "text_short": "characters", "text_not_utf8": "UTF-8",
    "manifest_char_ix_path": "'../lstm.rec/char_ix.npy'", "char_ix_missing": "char_ix.npy is missing",
    "char_ix_float": "dtype float32", "char_ix_short": "shape", "char_ix_range": "outside the vocabulary",
    "char_ix_other_char": "where text.txt has", "char_ix_pickled": "cannot be read",
}
# which commands read what: gates reads only the gate arrays; only scan needs the vocabulary
# (beyond_char) and the character indices (char_ix.npy); export and the viewer show NaN
# activations as they are (no colour), by design
SKIP = {"gates": ("manifest_chars", "text_missing", "text_short", "text_not_utf8") + CHAR_IX_DAMAGES,
        "export": ("manifest_chars", "array_nan") + CHAR_IX_DAMAGES,
        "view": ("manifest_chars", "array_nan") + CHAR_IX_DAMAGES, "probe": ("manifest_chars",) + CHAR_IX_DAMAGES}


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    _write_texts(d)
    _write_models(d)
    _write_feature_files(d)
    rnn = Model.load(d / "model.npz")
    lstm = Model.load(d / "lstm.npz")
    record(rnn, [("prose.txt", PROSE[:600])], d / "rnn.rec", model_path=d / "model.npz")
    record(lstm, [("a.txt", PROSE[:400]), ("b.txt", PROSE[400:800])], d / "lstm.rec", model_path=d / "lstm.npz")
    record(rnn, [("short.txt", PROSE[:20])], d / "short.rec")
    for how in DAMAGES:
        damage(d / "lstm.rec", d / f"r_{how}.rec", how)
    man = json.loads((d / "rnn.rec" / "manifest.json").read_text())
    shutil.copytree(d / "rnn.rec", d / "r_model_info.rec")
    shutil.copytree(d / "rnn.rec", d / "r_model_size.rec")
    man["model"]["hidden_size"] = 99  # the arrays have 8 units
    (d / "r_model_size.rec" / "manifest.json").write_text(json.dumps(man), encoding="utf-8")
    man["model"] = {"arch": "rnn"}  # no hidden_size: --control untrained cannot rebuild the model
    (d / "r_model_info.rec" / "manifest.json").write_text(json.dumps(man), encoding="utf-8")
    rows = json.loads(ok(run("scan", d / "rnn.rec", "-f", "in_quote", "--shifts", 10, "--json", "-q")).output)["rows"]
    (d / "scan.json").write_text(json.dumps(rows), encoding="utf-8")
    (d / "sj_bad.json").write_text("[{", encoding="utf-8")
    (d / "sj_empty.json").write_bytes(b"")
    (d / "sj_keys.json").write_text(json.dumps([{"feature": "in_quote"}]), encoding="utf-8")
    (d / "sj_other.json").write_text(json.dumps([dict(rows[0], unit=99)]), encoding="utf-8")
    (d / "sj_latin1.json").write_bytes('[{"feature": "caf\u00e9"}]'.encode("latin-1"))
    (d / "sj_dict.json").write_text('{"rows": 3}', encoding="utf-8")
    return d


def _paths(d, out):
    p = {name.replace(".", "_"): str(d / name) for name in os.listdir(d)}
    p.update(missing=str(d / "nope.txt"), OUT=str(out), OUTDIR=str(out.parent))
    return p


def _snapshot(root, contents=False):
    """{relative path: (size, mtime) or sha256 of the bytes} of every file under root."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            full = os.path.join(dirpath, f)
            if contents:
                with open(full, "rb") as fh:
                    out[os.path.relpath(full, root)] = hashlib.sha256(fh.read()).hexdigest()
            else:
                st = os.stat(full)
                out[os.path.relpath(full, root)] = (st.st_size, st.st_mtime_ns)
    return out


# ---- the catalogue ---------------------------------------------------------------------------
# (id, command line with {placeholders}, needles for the error line, output kind: None | file | dir)
MODEL_FILES = [  # (name, needles): every way a model file can be bad
    ("missing", ["nope.txt", "does not exist"]), ("adir", ["adir", "directory"]),
    ("m_empty_npz", ["m_empty.npz", "not a readable"]), ("m_garbage_npz", ["m_garbage.npz", "not a readable"]),
    ("m_trunc_npz", ["m_trunc.npz", "not a readable"]), ("m_pickle_npz", ["m_pickle.npz", "pickle"]),
    ("m_shape_npz", ["m_shape.npz", "'Whh'", "(8, 7)"]), ("m_nan_npz", ["m_nan.npz", "'Why'", "NaN"]),
    ("m_inf_npz", ["m_inf.npz", "'bh'", "Inf"]), ("m_nochars_npz", ["m_nochars.npz", "'chars'"]),
    ("m_missing_npz", ["m_missing.npz", "'Why'"]), ("m_badmeta_npz", ["m_badmeta.npz", "'meta'", "JSON"]),
    ("m_listmeta_npz", ["m_listmeta.npz", "'meta'"]), ("m_arch_npz", ["m_arch.npz", "'transformer'"]),
    ("m_strarray_npz", ["m_strarray.npz", "'Whh'"]), ("prose_txt", ["prose.txt", "not a readable"]),
    ("m_npy_npy", ["m_npy.npy", "not an .npz"]), ("m_chars_npz", ["m_chars.npz", "single characters"]),
    ("m_vocab_npz", ["m_vocab.npz", "'Wxh'", "31 characters"]),
]
TEXT_FILES = [  # (name, needles, options that show the way out)
    ("missing", ["nope.txt", "does not exist"]), ("adir", ["adir", "directory"]),
    ("empty_txt", ["empty.txt", "empty"]), ("binary_bin", ["binary.bin", "binary"]),
    ("latin1_txt", ["latin1.txt", "utf-8", "--encoding"]), ("utf16_txt", ["utf16.txt", "--encoding utf-16"]),
]


def _catalogue():
    cases = []

    def add(cid, cmd, needles, out=None):
        cases.append(pytest.param(cmd, needles, out, id=cid))

    # train
    train = "train {prose_txt} -o {OUT} --iters 3 --hidden 4 -q"
    for name, needles in TEXT_FILES:
        add(f"train-text-{name}", train.replace("{prose_txt}", "{%s}" % name), needles, "file")
    add("train-text-one-char", train.replace("{prose_txt}", "{one_txt}"), ["1 character"], "file")
    add("train-encoding-unknown", train + " --encoding klingon", ["'klingon'"], "file")
    for name, needles in MODEL_FILES:
        add(f"train-resume-{name}", train + " --resume {%s}" % name, needles, "file")
    add("train-resume-not-checkpoint", train + " --resume {model_npz}",
        ["model.npz", "checkpoint", "without --resume"], "file")
    add("train-resume-damaged-meta", train + " --resume {ckpt_resume_npz}",
        ["ckpt_resume.npz", "'halfway'"], "file")
    add("train-resume-other-text", "train {latin1_txt} --encoding latin-1 -o {OUT} --iters 3 --resume {ckpt_npz}",
        ["ckpt.npz", "different text"], "file")
    add("train-out-is-dir", "train {prose_txt} -o {adir} --iters 3", ["adir", "directory"])
    add("train-out-missing-dir", "train {prose_txt} -o {OUTDIR}/no/such/m.npz --iters 3 -q",
        ["no/such", "does not exist"])
    for opt, val in [("--hidden", 0), ("--hidden", -3), ("--seq-length", 0), ("--iters", 0), ("--iters", -5),
                     ("--lr", 0), ("--lr", -1), ("--lr", "fast"), ("--layers", 0), ("--batch-size", 0),
                     ("--clip", -1), ("--val-fraction", 1), ("--sample-every", -1), ("--checkpoint-every", -1),
                     ("--val-every", -1), ("--arch", "cnn"), ("--optimizer", "sgd"), ("--seed", "x")]:
        add(f"train-{opt[2:]}-{val}", f"train {{prose_txt}} -o {{OUT}} {opt} {val} -q", [opt, str(val)], "file")
    add("train-rnn-layers-2", train + " --layers 2", ["--layers 2", "--arch lstm"], "file")
    # a window too long for the streams is shortened (like the gist trainer); streams of < 2 characters fail
    add("train-batch-too-big", train + " --arch lstm --batch-size 100000 --seq-length 25", ["--batch-size 100000"],
        "file")
    add("train-unknown-option", train + " --hiden 4", ["--hiden"], "file")

    # sample
    for name, needles in MODEL_FILES:
        add(f"sample-model-{name}", "sample {%s} -n 5" % name, needles)
    for opt, val in [("-n", 0), ("-n", -1), ("--temperature", 0), ("--temperature", -1), ("--seed", "x")]:
        add(f"sample-{opt.strip('-')}-{val}", f"sample {{model_npz}} {opt} {val}", [opt, str(val)])
    add("sample-prime-unknown", "sample {model_npz} -n 5 --prime \u2713ok", ["'\u2713'", "vocabulary", "--prime"])
    add("sample-clamp-unit", "sample {model_npz} -n 5 --clamp 99=1", ["unit 99", "0-7"])
    add("sample-clamp-negative-unit", "sample {model_npz} -n 5 --clamp -1=1", ["unit -1", "0-7"])
    add("sample-clamp-format", "sample {model_npz} -n 5 --clamp 3", ["'3'", "J=VALUE"])
    add("sample-clamp-value", "sample {model_npz} -n 5 --clamp 3=big", ["'3=big'", "J=VALUE"])
    add("sample-clamp-layer", "sample {model_npz} -n 5 --clamp 1=1 --layer 3", ["layer 3", "1 layer"])
    add("sample-clamp-array", "sample {model_npz} -n 5 --clamp 1=1 --array c", ["'c'"])
    add("sample-lstm-kind", "sample {lstm_npz} -n 5 --kind z", ["'z'"])
    add("sample-lstm-layer", "sample {lstm_npz} -n 5 --layer -1", ["layer -1"])
    add("sample-lstm-argmax", "sample {lstm_npz} -n 5 --argmax", ["--argmax", "--temperature"])

    # record
    rec = "record {model_npz} {prose_txt} -o {OUT} -q"
    for name, needles in MODEL_FILES:
        add(f"record-model-{name}", rec.replace("{model_npz}", "{%s}" % name), needles, "dir")
    for name, needles in TEXT_FILES:
        add(f"record-text-{name}", rec.replace("{prose_txt}", "{%s}" % name), needles, "dir")
    add("record-second-text-bad", rec.replace("{prose_txt}", "{prose_txt} {binary_bin}"), ["binary.bin"], "dir")
    add("record-unknown-chars", rec.replace("{prose_txt}", "{unknown_txt}"),
        ["unknown.txt", "'\u00fc' x2", "'\u2713' x1", "--unknown skip"], "dir")
    add("record-only-unknown-chars", rec.replace("{prose_txt}", "{allunknown_txt}") + " --unknown skip",
        ["allunknown.txt", "no characters left"], "dir")
    add("record-encoding-unknown", rec + " --encoding klingon", ["'klingon'"], "dir")
    add("record-dtype", rec + " --dtype float64", ["float64"], "dir")
    add("record-unknown-policy", rec + " --unknown drop", ["drop"], "dir")
    add("record-out-is-file", "record {model_npz} {prose_txt} -o {prose_txt} -q", ["prose.txt", "not a recording"])
    add("record-out-is-dir", "record {model_npz} {prose_txt} -o {adir}/.. -q", ["not a recording"])
    add("record-out-missing-dir", "record {model_npz} {prose_txt} -o {OUTDIR}/no/such/r.rec -q",
        ["no/such", "does not exist"])
    add("record-no-text", "record {model_npz} -o {OUT}", ["TEXTS"], "dir")

    # recordings: scan, export, view, gates, probe on each damage
    reader = {"scan": "scan {R} -f in_quote --shifts 10 -q", "export": "export {R} --unit 0 -o {OUT}",
              "view": "view {R} --no-show", "gates": "gates {R} -o {OUT}", "probe": "probe {R} -f in_quote"}
    outs = {"export": "file", "gates": "file"}
    for cmd, line in reader.items():
        add(f"{cmd}-rec-missing", line.replace("{R}", "{missing}"), ["nope.txt", "does not exist"], outs.get(cmd))
        add(f"{cmd}-rec-is-file", line.replace("{R}", "{prose_txt}"), ["prose.txt", "not a recording"],
            outs.get(cmd))
        add(f"{cmd}-rec-empty-dir", line.replace("{R}", "{adir}"), ["adir", "manifest.json"], outs.get(cmd))
        for how in DAMAGES:
            if how in SKIP.get(cmd, ()):
                continue
            where = [] if (cmd, how) == ("scan", "array_nan") else [f"r_{how}.rec"]  # scan names the unit
            add(f"{cmd}-rec-{how}", line.replace("{R}", "{r_%s_rec}" % how), where + [DAMAGE_NEEDLE[how]],
                outs.get(cmd))

    # features: unknown names, regexes, feature files
    feats = {"scan": "scan {rnn_rec} --shifts 10 -q",
             "export": "export {rnn_rec} --gallery --shifts 10 -q -o {OUT}"}
    for cmd, line in feats.items():
        o = outs.get(cmd)
        add(f"{cmd}-feature-unknown", line + " -f nope", ["'nope'", "interpret features"], o)
        add(f"{cmd}-feature-unknown-in-list", line + " -f in_quote,nope", ["'nope'"], o)
        for spec, needles in [("bad=(", ["'bad=('", "pattern"]), ("noequals", ["'noequals'", "NAME=PATTERN"]),
                              ("=x", ["'=x'", "NAME=PATTERN"]), ("x=", ["'x='", "NAME=PATTERN"]),
                              ("y=[z-a]", ["'y=[z-a]'", "pattern"]), ("in_quote=q", ["'in_quote'", "twice"])]:
            add(f"{cmd}-regex-{spec}", line + f" --feature-regex {shlex.quote(spec)}", needles, o)
        for ff, needles in [("missing", ["nope.txt", "does not exist"]), ("adir", ["adir", "directory"]),
                            ("ff_raise_load_py", ["ff_raise_load.py", "RuntimeError", "boom while loading"]),
                            ("ff_raise_eval_py", ["'boom'", "boom while evaluating"]),
                            ("ff_exit_py", ["ff_exit.py", "SystemExit"]),
                            ("ff_shape_py", ["'short'", "shape (1,)"]), ("ff_nan_py", ["'nanny'", "nan"]),
                            ("ff_text_py", ["'wordy'", "not numbers"]),
                            ("ff_syntax_py", ["ff_syntax.py", "syntax error", "line 1"]),
                            ("ff_none_py", ["ff_none.py", "no features"]),
                            ("ff_twice_py", ["'in_quote'", "twice"]),
                            ("ff_latin1_py", ["ff_latin1.py", "UTF-8"]), ("ff_binary_py", ["ff_binary.py"])]:
            add(f"{cmd}-feature-file-{ff}", line + " --feature-file {%s}" % ff, needles, o)
    add("probe-feature-unknown", "probe {rnn_rec} -f nope", ["'nope'", "interpret features"])
    add("probe-no-feature", "probe {rnn_rec}", ["--feature"])
    add("probe-feature-constant", "probe {rnn_rec} -f in_comment_c", ["constant"])
    add("ablate-feature-unknown", "ablate {model_npz} {prose_txt} --unit 0 --length 50 -f nope", ["'nope'"])

    # units, layers, arrays out of range; sizes
    add("scan-layer", "scan {rnn_rec} --layer 4 -q", ["layer 4", "layer 0 array h"])
    add("scan-array", "scan {rnn_rec} --array z -q", ["'z'", "layer 0 array h"])
    add("scan-array-in-list", "scan {lstm_rec} -f in_quote --array h,z -q", ["'z'", "layer 0 array c"])
    add("scan-json-and-csv", "scan {rnn_rec} -q --json --csv", ["--json", "--csv"])
    for opt, val in [("--shifts", 0), ("--shifts", 5), ("--shifts", -1), ("--top", 0), ("--control", "trained"),
                     ("--seed", "x")]:
        add(f"scan-{opt[2:]}-{val}", f"scan {{rnn_rec}} -q {opt} {val}", [opt, str(val)])
    add("scan-control-model-info", "scan {r_model_info_rec} -f in_quote --shifts 10 --control untrained -q",
        ["r_model_info.rec", "hidden_size"])
    add("scan-control-model-size", "scan {r_model_size_rec} -f in_quote --shifts 10 --control untrained -q",
        ["r_model_size.rec", "99 units", "8"])
    exp = "export {rnn_rec} -o {OUT}"
    for args, needles in [("--unit 8", ["unit 8", "0-7"]), ("--unit -1", ["unit -1", "0-7"]),
                          ("", ["--unit"]), ("--unit 0 --layer 2", ["layer 2"]), ("--unit 0 --array c", ["'c'"]),
                          ("--unit 0 --start -1", ["--start", "-1"]),
                          ("--unit 0 --start 600", ["--start 600", "600 characters"]),
                          ("--unit 0 --length 0", ["--length", "0"]), ("--unit x", ["--unit", "'x'"]),
                          ("--gallery --top 0 -q", ["--top", "0"]),
                          ("--gallery --shifts 0 -q", ["--shifts", "0"])]:
        add(f"export-{args.replace(' ', '') or 'no-unit'}", f"{exp} {args}", needles, "file")
    for sj, needles in [("missing", ["nope.txt"]), ("sj_bad_json", ["sj_bad.json", "not valid scan JSON"]),
                        ("sj_empty_json", ["sj_empty.json", "not valid scan JSON"]),
                        ("sj_keys_json", ["sj_keys.json", "unit"]),
                        ("sj_other_json", ["sj_other.json", "unit 99"]),
                        ("sj_latin1_json", ["sj_latin1.json"]), ("sj_dict_json", ["sj_dict.json", "scan rows"])]:
        add(f"export-scan-{sj}", exp + " --gallery --scan {%s}" % sj, needles, "file")
        add(f"view-scan-{sj}", "view {rnn_rec} --no-show --scan {%s}" % sj, needles)
    add("export-out-is-dir", "export {rnn_rec} --unit 0 -o {adir}", ["adir", "directory"])
    add("export-out-missing-dir", "export {rnn_rec} --unit 0 -o {OUTDIR}/no/such/p.html",
        ["no/such", "does not exist"])
    add("view-port-0", "view {rnn_rec} --no-show --port 0", ["--port", "0"])
    add("view-port-big", "view {rnn_rec} --no-show --port 70000", ["--port", "70000"])
    add("gates-no-gates", "gates {rnn_rec} -o {OUT}", ["no gate arrays", "LSTM"], "file")
    add("gates-out-is-dir", "gates {lstm_rec} -o {adir}", ["adir", "directory"])
    add("gates-out-missing-dir", "gates {lstm_rec} -o {OUTDIR}/no/such/g.html", ["no/such", "does not exist"])
    add("gates-json-missing-dir", "gates {lstm_rec} -o {OUT} --json {OUTDIR}/no/such/g.json",
        ["no/such", "does not exist"], "file")
    add("gates-json-is-dir", "gates {lstm_rec} -o {OUT} --json {adir}", ["adir", "directory"], "file")
    for args, needles in [("-f in_quote --layer 3", ["layer 3"]), ("-f in_quote --array z", ["'z'"]),
                          ("-f in_quote --max-rows 0", ["--max-rows", "0"]),
                          ("-f in_quote --max-rows 50", ["--max-rows", "50"])]:
        add(f"probe-{args[12:].replace(' ', '')}", f"probe {{lstm_rec}} {args}", needles)
    add("probe-too-short", "probe {short_rec} -f in_quote", ["20 characters", "too few"])

    # ablate
    abl = "ablate {model_npz} {prose_txt} --unit 0 --length 60 --random 2"
    for name, needles in MODEL_FILES:
        add(f"ablate-model-{name}", abl.replace("{model_npz}", "{%s}" % name), needles)
    for name, needles in TEXT_FILES:
        add(f"ablate-text-{name}", abl.replace("{prose_txt}", "{%s}" % name), needles)
    add("ablate-text-unknown-chars", abl.replace("{prose_txt}", "{allunknown_txt}"), ["'\u2713'", "vocabulary"])
    add("ablate-encoding-unknown", abl + " --encoding klingon", ["'klingon'"])
    for args, needles in [("--unit 8", ["unit 8", "0-7"]), ("--unit -2", ["unit -2", "0-7"]),
                          ("--layer 1", ["layer 1"]),
                          ("--array c", ["'c'"]), ("--array z", ["'z'"]), ("--mode half", ["half"]),
                          ("--random 0", ["--random", "0"]), ("--start -1", ["--start", "-1"]),
                          ("--length 1", ["--length", "1"]), ("--length 0", ["--length", "0"]),
                          ("--start 99999", ["--start 99999", "characters"])]:
        add(f"ablate-{args.replace(' ', '')}", f"{abl} {args}", needles)
    add("ablate-no-unit", "ablate {model_npz} {prose_txt}", ["--unit"])

    # import (the PyTorch fixtures of test_torch_import.py)
    fix = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "torch", "")
    imp = "import " + fix + "lstm2_emb.safetensors --vocab " + fix + "lstm2_emb.vocab.json -o {OUT}"
    for weights, needles in [("{missing}", ["nope.txt", "does not exist"]), ("{adir}", ["adir", "directory"]),
                             ("{prose_txt}", ["prose.txt", "neither a .safetensors"]),
                             ("{model_npz}", ["model.npz", "neither a .safetensors"]),
                             (fix + "bidirectional.safetensors", ["bidirectional", "supported: one nn.RNN"]),
                             (fix + "proj_size.safetensors", ["proj_size", "supported: one nn.RNN"]),
                             (fix + "mixed.safetensors", ["different types", "supported: one nn.RNN"])]:
        add(f"import-weights-{os.path.basename(weights).strip('{}')}",
            imp.replace(fix + "lstm2_emb.safetensors", weights), needles, "file")
    for vocab, needles in [("{missing}", ["nope.txt", "does not exist"]), ("{prose_txt}", ["prose.txt", "twice"]),
                           ("{one_txt}", ["1 characters", "embedding embedding is 10"])]:
        add(f"import-vocab-{vocab.strip('{}')}", imp.replace(fix + "lstm2_emb.vocab.json", vocab), needles, "file")
    add("import-map-role", imp + " --map body=lstm", ["body=lstm", "ROLE=MODULE"], "file")
    add("import-map-missing", imp + " --map rnn=nosuch", ["'nosuch'", "lstm.weight_ih_l0"], "file")
    add("import-out-is-dir", imp.replace("{OUT}", "{adir}"), ["adir", "directory"])
    add("import-out-missing-dir", imp.replace("{OUT}", "{OUTDIR}/no/such/m.npz"), ["no/such", "does not exist"])

    # demo, features
    add("demo-out-is-file", "demo -o {prose_txt} -q", ["prose.txt", "file"])
    add("demo-out-under-a-file", "demo -o {prose_txt}/sub -q", ["prose.txt/sub", "Not a directory"])
    add("export-out-under-a-file", "export {rnn_rec} --unit 0 -o {prose_txt}/p.html",
        ["prose.txt", "does not exist"])
    add("features-extra-argument", "features in_quote", ["in_quote"])
    return cases


CASES = _catalogue()


class _NoServer:
    def __init__(self, *a, **k):
        raise AssertionError("view started a server for a bad input")


@pytest.mark.parametrize("cmd, needles, out", CASES)
def test_bad_input(ws, tmp_path, monkeypatch, cmd, needles, out):
    monkeypatch.setattr(subprocess, "Popen", _NoServer)
    target = tmp_path / ("out.rec" if out == "dir" else "out.npz" if cmd.startswith("train") else "out.html")
    p = _paths(ws, target)
    args = [tok.format(**p) for tok in shlex.split(cmd)]
    needles = [n.format(**p) for n in needles]
    before = _snapshot(ws)
    fails_cleanly(run(*args), needles)
    assert os.listdir(tmp_path) == [], "a failed run left files behind"
    assert _snapshot(ws) == before, "a failed run changed its inputs"
    if out is None:
        return
    if out == "dir":  # a previous recording at -o survives
        shutil.copytree(ws / "rnn.rec", target)
    else:
        target.write_bytes(PREVIOUS)
    previous = _snapshot(tmp_path, contents=True)
    fails_cleanly(run(*args), needles)
    assert _snapshot(tmp_path, contents=True) == previous, "a failed run changed the previous output"


def fails_cleanly(r, needles):
    assert r.exit_code not in (0, None), r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    err = r.stderr
    assert "Traceback" not in err and r.stdout == "", (r.stdout, err)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("Error: ")]
    assert len(errors) == 1, err
    assert all(ln.startswith(("Usage: ", "Try ")) for ln in lines if ln not in errors), err
    assert all(n in errors[0] for n in needles), (needles, errors[0])


def test_the_catalogue_covers_every_command():
    from interpret.cli.main import main

    used = {c.values[0].split()[0] for c in CASES}
    assert used == set(main.commands), set(main.commands) ^ used
    assert len(CASES) >= 300


# ---- the ways out work -----------------------------------------------------------------------
def test_encoding_is_the_way_out(ws, tmp_path):
    ok(run("train", ws / "latin1.txt", "--encoding", "latin-1", "-o", tmp_path / "m.npz", "--iters", 3,
           "--hidden", 4, "-q"))
    assert "\u00e9" in Model.load(tmp_path / "m.npz").chars
    ok(run("train", ws / "utf16.txt", "--encoding", "utf-16", "-o", tmp_path / "m16.npz", "--iters", 3,
           "--hidden", 4, "-q"))
    assert Model.load(tmp_path / "m16.npz").chars == Model.load(tmp_path / "m.npz").chars
    ok(run("record", ws / "model.npz", ws / "latin1.txt", "--encoding", "latin-1", "-o", tmp_path / "r.rec", "-q"))
    text = Recording(tmp_path / "r.rec").text
    assert text == (ws / "latin1.txt").read_bytes().decode("latin-1") and "caf\u00e9" in text
    r = ok(run("ablate", ws / "model.npz", ws / "utf16.txt", "--encoding", "utf-16", "--unit", 0, "--length", 60,
               "--random", 2, "--json"))
    assert json.loads(r.stdout)["rows"][0]["n_chars"] == 59


def test_unknown_skip_and_space_are_the_way_out(ws, tmp_path):
    for policy, kept in (("skip", PROSE + " \n"), ("space", PROSE + "    \n")):
        ok(run("record", ws / "model.npz", ws / "unknown.txt", "--unknown", policy, "-o", tmp_path / policy, "-q"))
        rec = Recording(tmp_path / policy)
        assert rec.text == kept and rec.documents[0]["dropped"] == (3 if policy == "skip" else 0)


def test_a_resumed_run_with_the_same_text_works(ws, tmp_path):
    shutil.copy(ws / "ckpt.npz", tmp_path / "c.npz")
    r = ok(run("train", ws / "prose.txt", "-o", tmp_path / "c.npz", "--resume", tmp_path / "c.npz",
               "--iters", 2, "-q"))
    assert "trained 2 iterations" in r.stdout and Model.load(tmp_path / "c.npz").meta["iterations"] == 2


# ---- CRLF and lone CR: one line break each, through the CLI ----------------------------------
def test_crlf_and_lone_cr_texts_keep_their_breaks_and_lines(ws, tmp_path):
    for name, br in (("crlf.txt", "\r\n"), ("lonecr.txt", "\r")):
        out = tmp_path / name
        ok(run("record", ws / "model.npz", ws / name, "-o", out, "-q"))
        rec = Recording(out)
        assert rec.text == PROSE.replace("\n", br)  # no newline translation on the way in
        first = rec.text.index(br)  # the first line: '"Come here," said ... (if you can)."'
        n = len(PROSE.split("\n")[0])
        pos = F.evaluate(F.FEATURES["position_in_line"], rec.text, rec.doc_starts)
        length = F.evaluate(F.FEATURES["line_length"], rec.text, rec.doc_starts)
        to_end = F.evaluate(F.FEATURES["chars_to_line_end"], rec.text, rec.doc_starts)
        assert first == n and list(pos[:3]) == [0, 1, 2] and list(pos[n:n + len(br) + 1]) == [n] * len(br) + [0]
        assert set(length[:n + len(br)]) == {n} and to_end[0] == n
        assert list(to_end[n - 1:n + len(br)]) == [1] + [0] * len(br)
        rows = json.loads(ok(run("scan", out, "-f", "position_in_line", "--shifts", 10, "--json", "-q")).output)["rows"]
        assert len(rows) == 8 and all(r["feature"] == "position_in_line" for r in rows)


def test_crlf_line_features_hand_computed():
    text = 'ab\r\ncd\re\n\r\n"x"'
    #        a  b  \r \n c  d  \r e  \n \r \n "  x  "
    pos = [0, 1, 2, 2, 0, 1, 2, 0, 1, 0, 0, 0, 1, 2]
    length = [2, 2, 2, 2, 2, 2, 2, 1, 1, 0, 0, 3, 3, 3]
    to_end = [2, 1, 0, 0, 2, 1, 0, 1, 0, 0, 0, 3, 2, 1]
    assert F.position_in_line(text).tolist() == pos
    assert F.line_length(text).tolist() == length
    assert F.chars_to_line_end(text).tolist() == to_end
    assert F.in_quote(text).tolist() == [0] * 11 + [1, 1, 0]
    assert F.indent_level("  a\r\n\tb\rc").tolist() == [2, 2, 2, 2, 2, 8, 8, 8, 0]
    assert F.in_quote('"a\r\n\r\nb"').tolist() == [1, 1, 1, 1, 0, 0, 0, 1]  # a CRLF blank line resets
    assert F.in_quote('"a\r\rb"').tolist() == [1, 1, 1, 0, 0, 1]  # so does a lone-CR one
