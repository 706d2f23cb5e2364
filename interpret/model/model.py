"""Model: architecture + parameters + vocabulary; one forward pass; load/save as .npz.

A vanilla RNN keeps the min-char-rnn gist's names and shapes:

    Wxh (H, V)   input to hidden        bh (H,)  hidden bias
    Whh (H, H)   hidden to hidden       by (V,)  output bias
    Why (V, H)   hidden to output

The gist keeps biases as (H, 1) columns; both forms load, and we hold them 1-D.
The file also carries `chars` (the vocabulary, sorted(set(text))) and `meta` (a JSON string).
Other architectures slot in through ARCHS: each names its arrays and how to run them.
"""
import json
import os
import zipfile

import numpy as np

from interpret._util import atomic
from interpret.model.infer import GATES
from interpret.model.lanes import steps_one
from interpret._util.hashing import file_sha256


def _stack():
    """model/stack.py, imported when a gated model needs it: it loads layers.py, which imports
    scipy.sparse (~0.3 s) that recording a vanilla model never uses."""
    from interpret.model import stack
    return stack

UNKNOWN_POLICIES = ("error", "skip", "space")
UNKNOWN_HINT = "use --unknown skip or --unknown space"


class RNNCell:
    """The gist's vanilla layer: h_t = tanh(Wxh x_t + Whh h_{t-1} + bh)."""

    arrays = ("h",)

    @staticmethod
    def shapes(H, V):
        return {"Wxh": (H, V), "Whh": (H, H), "Why": (V, H), "bh": (H,), "by": (V,)}

    @staticmethod
    def init(H, V, rng=np.random):
        """randn * 0.01 drawn in the gist's order Wxh, Whh, Why; zero biases."""
        Wxh = rng.randn(H, V) * 0.01
        Whh = rng.randn(H, H) * 0.01
        Why = rng.randn(V, H) * 0.01
        return {"Wxh": Wxh, "Whh": Whh, "Why": Why, "bh": np.zeros(H), "by": np.zeros(V)}


class GatedStack:
    """Stacked LSTM or GRU layers (interpret.gated): arrays L{layer}_Wx, L{layer}_Wh, L{layer}_b, Why, by."""

    def __init__(self, arch):
        self.arch = arch
        self.arrays = ("h", "c") + GATES[arch] if arch == "lstm" else ("h",) + GATES[arch]

    def shapes(self, H, V, n_layers=1):
        return _stack().shapes(self.arch, H, V, n_layers)

    def init(self, H, V, rng=np.random, n_layers=1, forget_bias=None):
        return _stack().init_params(self.arch, H, V, n_layers, rng, forget_bias)


ARCHS = {"rnn": RNNCell, "lstm": GatedStack("lstm"), "gru": GatedStack("gru"),
         "rnn_stack": GatedStack("rnn_stack")}  # tanh layers stacked: multi-layer nn.RNN imports
GATED_CHUNK = 4096  # steps per forward call in Model.run: bounds the gate cache of a long text


class Model:
    """A character-level recurrent model: parameters, vocabulary and metadata."""

    def __init__(self, params, chars, arch="rnn", meta=None):
        if arch not in ARCHS:
            raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(ARCHS)}")
        self.arch = arch
        self.cell = ARCHS[arch]
        self.chars = list(chars)
        self.params = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
        self.meta = dict(meta or {})
        self.meta.setdefault("arch", arch)
        self.char_to_ix = {ch: i for i, ch in enumerate(self.chars)}
        self.sha256 = None  # set when loaded from / saved to a file
        self.extra = {}  # non-parameter arrays kept in the file (a checkpoint's opt_* state)
        self._check()

    # ---- shape facts -------------------------------------------------------------------------
    @property
    def vocab_size(self):
        return len(self.chars)

    @property
    def gated(self):
        return self.arch != "rnn"

    @property
    def hidden_size(self):
        return self.params["L0_Wh" if self.gated else "Whh"].shape[0]

    @property
    def n_layers(self):
        if not self.gated:
            return 1
        n = 0
        while f"L{n}_Wx" in self.params:
            n += 1
        return n

    def array_list(self):
        """Recordable arrays as (layer, array, n_units), in recording order."""
        return [(layer, k, self.hidden_size) for layer in range(self.n_layers) for k in self.cell.arrays]

    def _check(self):
        if len(set(self.chars)) != len(self.chars) or any(len(c) != 1 for c in self.chars):
            raise ValueError("model vocabulary must be distinct single characters")
        if self.gated and "L0_Wh" not in self.params:
            raise ValueError(f"a {self.arch} model needs the array 'L0_Wh' (layer 0's hidden weights)")
        if not self.gated and "Whh" not in self.params:
            raise ValueError("model has no 'Whh' array; is this a min-char-rnn model file?")
        H, V = self.hidden_size, self.vocab_size
        shapes = self.cell.shapes(H, V, self.n_layers) if self.gated else self.cell.shapes(H, V)
        for name, shape in shapes.items():
            if name not in self.params:
                raise ValueError(f"model is missing the array {name!r} (expected shape {shape})")
            a = self.params[name]
            if a.ndim == 2 and len(shape) == 1 and a.shape[1] == 1:
                a = self.params[name] = a[:, 0]  # the gist's (H, 1) bias columns
            if a.shape != shape:
                raise ValueError(
                    f"array {name!r} has shape {a.shape}, expected {shape} for hidden size {H} "
                    f"and a vocabulary of {V} characters"
                )
            if not np.all(np.isfinite(a)):
                raise ValueError(f"array {name!r} contains NaN or Inf; the model is unusable")
        for layer in range(self.n_layers if self.arch == "gru" else 0):  # optional: PyTorch's b_hn
            a = self.params.get(f"L{layer}_bhn")
            if a is not None and (a.shape != (H,) or not np.all(np.isfinite(a))):
                raise ValueError(f"array 'L{layer}_bhn' must be {H} finite numbers (shape {a.shape})")

    # ---- construction ------------------------------------------------------------------------
    @classmethod
    def init(cls, chars, hidden_size=100, arch="rnn", seed=None, meta=None, n_layers=1, forget_bias=None):
        """A fresh model; with a seed, np.random.seed(seed) first, as the gist does.

        forget_bias: gated models only (see gated.init_params); None draws every bias uniform."""
        if arch not in ARCHS:
            raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(ARCHS)}")
        if seed is not None:
            np.random.seed(seed)
        if arch == "rnn":
            if n_layers != 1:
                raise ValueError(f"the vanilla rnn has one layer (got {n_layers}); use --arch lstm or gru")
            params = ARCHS[arch].init(hidden_size, len(chars))
        else:
            params = ARCHS[arch].init(hidden_size, len(chars), np.random, n_layers, forget_bias)
        return cls(params, chars, arch=arch, meta=meta)

    # ---- text <-> indices --------------------------------------------------------------------
    def encode(self, text, unknown="error", hint=UNKNOWN_HINT, dtype=np.int64):
        """Text -> (indices (T,) as dtype, kept text). `unknown`: error | skip | space; `hint`: the way out."""
        missing = self.unknown_chars(text)
        self.check_unknown(missing, unknown, hint)
        text = self.keep_known(text, missing, unknown)
        return self.indices(text, dtype), text

    def unknown_chars(self, text):
        """{character: count} of the characters of `text` outside the vocabulary."""
        c2i = self.char_to_ix
        return {ch: text.count(ch) for ch in set(text) if ch not in c2i}

    def check_unknown(self, missing, unknown="error", hint=UNKNOWN_HINT):
        """Raise if the policy `unknown` cannot deal with the characters `missing` {char: count}."""
        if unknown not in UNKNOWN_POLICIES:
            raise ValueError(f"unknown policy {unknown!r}; use one of {', '.join(UNKNOWN_POLICIES)}")
        if missing and unknown == "error":
            listed = ", ".join(f"{ch!r} x{n}" for ch, n in sorted(missing.items(), key=lambda kv: -kv[1])[:10])
            more = "" if len(missing) <= 10 else f" and {len(missing) - 10} more"
            raise ValueError(
                f"{len(missing)} character(s) are not in the model's vocabulary "
                f"({self.vocab_size} characters): {listed}{more}; {hint}"
            )
        if missing and unknown == "space" and " " not in self.char_to_ix:
            raise ValueError("--unknown space needs ' ' in the model's vocabulary; use --unknown skip")

    def keep_known(self, text, missing, unknown):
        """`text` with the characters `missing` skipped or made spaces (after check_unknown)."""
        if not missing:
            return text
        c2i = self.char_to_ix
        if unknown == "space":
            return "".join(ch if ch in c2i else " " for ch in text)
        return "".join(ch for ch in text if ch in c2i)

    def indices(self, text, dtype=np.int64, chunk=1 << 20):
        """Indices of a text whose characters are all in the vocabulary, as `dtype`, chunk by chunk."""
        out = np.empty(len(text), dtype=dtype)
        if any(len(c) != 1 for c in self.chars):  # not one code point each: look them up one by one
            out[:] = np.fromiter((self.char_to_ix[ch] for ch in text), dtype=np.int64, count=len(text))
            return out
        codes = np.array([ord(c) for c in self.chars], dtype=np.uint32)  # sorted vocabulary: sorted codes
        order = np.argsort(codes)
        for a in range(0, len(text), chunk):  # (chunk,) code points at a time: no (N,) temporaries
            cp = np.frombuffer(text[a:a + chunk].encode("utf-32-le", "surrogatepass"), dtype="<u4")
            out[a:a + len(cp)] = order[np.searchsorted(codes, cp, sorter=order)]
        return out

    def decode(self, ix):
        return "".join(self.chars[i] for i in ix)

    # ---- forward -----------------------------------------------------------------------------
    def initial_state(self):
        """Vanilla: h (H,). Gated: per layer (h, c) (LSTM) or (h,) (GRU), each (H,)."""
        if self.gated:
            return [tuple(s[0] for s in layer) for layer in _stack().zero_state(self.arch, self.params, 1)]
        return np.zeros(self.hidden_size)

    def run(self, ix, state=None, logits=True):
        """Run over indices ix (T,). Returns ({(layer, array): (T, n_units)}, logits (T, V) or None, state).

        Row t is the state after reading ix[t]; logits[t] predicts ix[t+1].
        """
        if self.gated:
            return self._run_gated(ix, state, logits)
        p = self.params
        h = self.initial_state() if state is None else np.array(state, dtype=np.float64)
        hs = p["Wxh"].T[np.asarray(ix)] + p["bh"]  # (T, H): Wxh x_t + bh, x one-hot so just a column,
        h = steps_one(hs, h, np.ascontiguousarray(p["Whh"]))  # turned into the states in place
        ys = hs @ p["Why"].T + p["by"] if logits else None  # (T, V)
        return {(0, "h"): hs}, ys, h

    def _run_gated(self, ix, state, logits):
        gated = _stack()
        state = self.initial_state() if state is None else state
        parts, tops = [], []
        for a in range(0, max(len(ix), 1), GATED_CHUNK):
            acts, top, state = gated.run_kinds(self.arch, self.params, np.asarray(ix[a:a + GATED_CHUNK]), state)
            parts.append(acts)
            tops.append(top)
        acts = parts[0] if len(parts) == 1 else {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        top = np.concatenate(tops)  # (T, H) top layer's h
        ys = top @ self.params["Why"].T + self.params["by"] if logits else None  # (T, V)
        return acts, ys, state

    def step(self, i, state):
        """One character in, (logits (V,), new state) out."""
        acts, ys, state = self.run(np.array([i]), state)
        return ys[0], state

    # ---- files -------------------------------------------------------------------------------
    def save(self, path, extra=None, dtype=None):
        """Write one .npz (gist names + chars + JSON meta [+ extra arrays]), atomically."""
        arrays = {k: (v.astype(dtype) if dtype else v) for k, v in self.params.items()}
        arrays.update(extra or {})
        arrays["chars"] = np.array(self.chars)
        arrays["meta"] = np.array(json.dumps(self.meta, sort_keys=True))
        with atomic.replacing(path, "wb") as f:
            np.savez(f, **arrays)
        self.sha256 = file_sha256(path)

    @classmethod
    def load(cls, path):
        """Load a model .npz (ours or the gist's np.savez); never unpickles."""
        path = os.fspath(path)
        if os.path.isdir(path):
            raise ValueError(f"{path} is a directory, not a model file (.npz)")
        if os.path.isfile(path) and not zipfile.is_zipfile(path):  # .npz is a zip; anything else is not ours
            raise ValueError(f"{path} is not a readable model file (not an .npz archive); give a model "
                             "saved by `interpret train` or np.savez")
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except FileNotFoundError:
            raise FileNotFoundError(f"model file {path} does not exist")
        except ValueError as e:
            if "pickle" in str(e):
                raise ValueError(f"{path} holds pickled objects, which interpret never loads; "
                                 "save the arrays as plain numbers and strings") from None
            raise ValueError(f"{path} is not a readable model file ({e})") from None
        except (OSError, EOFError, zipfile.BadZipFile, KeyError) as e:
            raise ValueError(f"{path} is not a readable model .npz file ({e})") from None
        if "chars" not in arrays:
            raise ValueError(f"{path} has no 'chars' array (the vocabulary); save it with "
                             "chars=np.array(chars) as the README shows")
        chars = [str(c) for c in arrays.pop("chars").tolist()]
        meta = {}
        if "meta" in arrays:
            try:
                meta = json.loads(str(arrays.pop("meta")))
            except json.JSONDecodeError:
                raise ValueError(f"{path}: the 'meta' entry is not valid JSON") from None
            if not isinstance(meta, dict):
                raise ValueError(f"{path}: the 'meta' entry is not a JSON object; remove it or save a dict")
        arch = meta.get("arch", "rnn")
        extra = {k: arrays.pop(k) for k in list(arrays) if k.startswith("opt_")}
        for k, v in arrays.items():
            if not np.issubdtype(v.dtype, np.number):
                raise ValueError(f"{path}: array {k!r} has dtype {v.dtype}, expected numbers")
        try:
            model = cls(arrays, chars, arch=arch, meta=meta)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None
        model.sha256 = file_sha256(path)
        model.extra = extra
        return model
