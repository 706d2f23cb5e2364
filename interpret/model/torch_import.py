"""Import a character model trained in PyTorch as an interpret Model, without unpickling anything.

A state_dict (read by interpret.torch_files from .safetensors, or weights-only from torch.save): one
nn.RNN (tanh) / nn.LSTM / nn.GRU module of any depth, an optional nn.Embedding in front (folded
exactly into layer 0's input weights: embedding row x times W_ih is row x of E @ W_ih^T) and an
nn.Linear head. PyTorch's row blocks become interpret's column blocks (LSTM i f g o -> i f o g),
b_ih + b_hh is one bias, and the GRU's hidden-side candidate bias b_hn stays apart (L{l}_bhn)
because PyTorch applies the reset gate after it. The vocabulary is put in sorted order (a row
permutation, exact), as every interpret model has it.
"""
import os
import re

import numpy as np

from interpret.model.torch_files import read_tensors, read_vocab
from interpret._util.hashing import file_sha256

SUPPORTED = ("supported: one nn.RNN (tanh), nn.LSTM or nn.GRU module (any num_layers, unidirectional, "
             "no proj_size), an optional nn.Embedding and an nn.Linear head")
ARCH_OF_GATES = {1: "rnn", 3: "gru", 4: "lstm"}
EMBEDDING_NAMES = ("embedding", "embed", "encoder", "emb", "embeddings", "char_embedding")
HEAD_NAMES = ("fc", "decoder", "linear", "head", "out", "output", "proj", "lm_head", "classifier")
ROLES = ("rnn", "embedding", "head", "ignore")
RECURRENT_KEY = re.compile(r"(?P<module>.*?)(?P<what>weight|bias)_(?P<side>ih|hh|hr)_l(?P<layer>\d+)"
                           r"(?P<reverse>_reverse)?\Z")
LSTM_BLOCKS = (0, 1, 3, 2)  # PyTorch's i f g o blocks, in interpret's order i f o g


# ---- which keys are which layer -------------------------------------------------------------
def parse_map(items):
    """["rnn=lstm", "head=proj", "ignore=ln"] -> {role: [module, ...]} (rnn may list several: a,b)."""
    out = {}
    for item in items:
        role, sep, name = item.partition("=")
        role = role.strip()
        if not sep or role not in ROLES:
            raise ValueError(f"--map {item!r}: expected ROLE=MODULE with ROLE one of {', '.join(ROLES)} "
                             "(e.g. --map rnn=mylstm --map head=proj)")
        names = [n.strip() for n in name.split(",")] if role in ("rnn", "ignore") else [name.strip()]
        out.setdefault(role, []).extend(names)
    for role in ("embedding", "head"):
        if len(out.get(role, ())) > 1:
            raise ValueError(f"--map {role} given {len(out[role])} times; give one module")
    return out


def _show(module):
    return module.rstrip(".") or "(top level)"


def _keys_found(tensors):
    return ", ".join(f"{k} {tuple(v.shape)}" for k, v in tensors.items())


def recurrent_modules(tensors):
    """{module prefix ('lstm.' or ''): {(what, side, layer): key}}; rejects bidirectional and proj_size."""
    mods = {}
    for key in tensors:
        m = RECURRENT_KEY.match(key)
        if not m:
            continue
        if m["reverse"]:
            raise ValueError(f"{key}: bidirectional layers are not supported (a character model reads left "
                             f"to right); {SUPPORTED}")
        if m["side"] == "hr":
            raise ValueError(f"{key}: LSTM projections (proj_size) are not supported; {SUPPORTED}")
        mods.setdefault(m["module"], {})[(m["what"], m["side"], int(m["layer"]))] = key
    return mods


def _module_layers(tensors, module, keys):
    """[(arch, W_ih, W_hh, b_ih or None, b_hh or None)] of one nn.RNN/LSTM/GRU, layer by layer."""
    layers = []
    n = 1 + max(layer for _, _, layer in keys)
    for layer in range(n):
        need = [("weight", "ih", layer), ("weight", "hh", layer)]
        biases = [("bias", "ih", layer), ("bias", "hh", layer)]
        has_bias = [b in keys for b in biases]
        if any(has_bias) and not all(has_bias):
            need += biases
        missing = [f"{module}{w}_{s}_l{layer}" for w, s, layer in need if (w, s, layer) not in keys]
        if missing:
            raise ValueError(f"missing {', '.join(missing)}; keys found: {_keys_found(tensors)}")
        W_ih, W_hh = (tensors[keys[k]] for k in need[:2])
        b_ih, b_hh = (tensors[keys[k]] for k in biases) if all(has_bias) else (None, None)
        H = W_hh.shape[1] if W_hh.ndim == 2 else 0
        G = W_hh.shape[0] // H if H else 0
        if W_ih.ndim != 2 or W_hh.shape != (G * H, H) or W_ih.shape[0] != G * H or G not in ARCH_OF_GATES:
            raise ValueError(f"{_show(module)} layer {layer}: weight_ih {W_ih.shape} and weight_hh {W_hh.shape} "
                             f"are not an nn.RNN, nn.LSTM or nn.GRU layer; {SUPPORTED}")
        for b in (b_ih, b_hh):
            if b is not None and b.shape != (G * H,):
                raise ValueError(f"{_show(module)} layer {layer}: a bias has shape {b.shape}, expected {(G * H,)}")
        layers.append((ARCH_OF_GATES[G], W_ih, W_hh, b_ih, b_hh))
    return layers


def _pick_rnn(tensors, mods, mapping):
    """The recurrent modules to stack, in order, and the arch they share."""
    names = mapping.get("rnn")
    if names is None:
        if not mods:
            raise ValueError(f"no recurrent layer found (looked for keys like lstm.weight_ih_l0); keys found: "
                             f"{_keys_found(tensors)}; name it with --map rnn=MODULE")
        names = [_show(m) for m in mods]
        if len(mods) > 1:
            archs = {_show(m): _module_layers(tensors, m, mods[m])[0][0] for m in mods}
            if len(set(archs.values())) == 1:
                raise ValueError(f"several recurrent modules found ({', '.join(names)}); give their order "
                                 f"with --map rnn={','.join(names)}")
    chosen = []
    for name in names:
        module = "" if name in ("", "(top level)") else name + "."
        if module not in mods:
            raise ValueError(f"--map rnn: no recurrent module {name!r}; recurrent modules found: "
                             f"{', '.join(_show(m) for m in mods) or 'none'}; keys found: {_keys_found(tensors)}")
        chosen.append((module, _module_layers(tensors, module, mods[module])))
    archs = {_show(m): layers[0][0] for m, layers in chosen}
    mixed = {m: {layer[0] for layer in layers} for m, layers in chosen}
    if len(set(archs.values())) > 1 or any(len(a) > 1 for a in mixed.values()):
        listed = ", ".join(f"{m}: {a}" for m, a in archs.items())
        raise ValueError(f"stacked layers of different types ({listed}) are not supported; {SUPPORTED}")
    return [m for m, _ in chosen], [layer for _, layers in chosen for layer in layers]


def _pick_linear(tensors, mapping, role, guesses, used):
    """Module prefix of the embedding or head: named by --map, else guessed; None when absent."""
    if role in mapping:
        name = mapping[role][0]
        if name == "none" and role == "embedding":
            return None
        if f"{name}.weight" not in tensors or tensors[f"{name}.weight"].ndim != 2:
            raise ValueError(f"--map {role}={name}: there is no 2-D key {name}.weight; keys found: "
                             f"{_keys_found(tensors)}")
        return name + "."
    found = [k[:-len("weight")] for k in tensors
             if k not in used and k.endswith(".weight") and tensors[k].ndim == 2
             and k[:-len(".weight")].rsplit(".", 1)[-1] in guesses]
    if len(found) > 1:
        raise ValueError(f"several possible {role} modules ({', '.join(_show(m) for m in found)}); choose one "
                         f"with --map {role}=MODULE")
    return found[0] if found else None


def find_layout(tensors, mapping=None):
    """{'arch', 'rnn': [module, ...], 'layers', 'embedding', 'head'} of a state_dict, or ValueError."""
    mapping = mapping or {}
    mods = recurrent_modules(tensors)
    rnn_modules, layers = _pick_rnn(tensors, mods, mapping)
    used = {k for m in rnn_modules for k in mods[m].values()}
    embedding = _pick_linear(tensors, mapping, "embedding", EMBEDDING_NAMES, used)
    head = _pick_linear(tensors, mapping, "head", HEAD_NAMES, used | {f"{embedding}weight"})
    if head is None:
        raise ValueError(f"no nn.Linear head found (looked for {', '.join(HEAD_NAMES)}); keys found: "
                         f"{_keys_found(tensors)}; name it with --map head=MODULE")
    used |= {f"{m}{w}" for m in (embedding, head) if m is not None for w in ("weight", "bias")}
    ignored = [m + "." for m in mapping.get("ignore", ())]
    left = [k for k in tensors if k not in used and not any(k.startswith(m) for m in ignored)]
    if left:
        raise ValueError(f"keys not understood: {', '.join(left)}; {SUPPORTED} (dropout has no weights); "
                         "if those arrays take no part in the forward pass, pass --map ignore=MODULE")
    return {"arch": layers[0][0], "rnn": rnn_modules, "layers": layers, "embedding": embedding, "head": head}


# ---- PyTorch's arrays as interpret's ----------------------------------------------------------
def _blocks(a, arch, H):
    """Rows of a PyTorch gate array (G*H, ...) in interpret's block order (LSTM i f g o -> i f o g)."""
    if arch != "lstm":
        return a
    return np.concatenate([a[j * H:(j + 1) * H] for j in LSTM_BLOCKS])


def native_params(layout, tensors, V):
    """interpret's arrays (vocabulary in PyTorch's index order) for a layout of find_layout."""
    arch, layers = layout["arch"], layout["layers"]
    H = layers[0][2].shape[1]
    E = tensors[layout["embedding"] + "weight"] if layout["embedding"] else None  # (V, D)
    params = {}
    for layer, (_, W_ih, W_hh, b_ih, b_hh) in enumerate(layers):
        if W_hh.shape[1] != H:
            raise ValueError(f"layer {layer} has {W_hh.shape[1]} units and layer 0 has {H}; interpret needs "
                             f"one size for every layer; {SUPPORTED}")
        if layer == 0 and E is not None:
            if E.shape[1] != W_ih.shape[1]:
                raise ValueError(f"the embedding {_show(layout['embedding'])} gives vectors of size {E.shape[1]} "
                                 f"but layer 0 reads {W_ih.shape[1]}; is --map embedding the right module?")
            Wx = E @ W_ih.T  # (V, G*H): embedding row x times W_ih^T is row x of this, exactly
        else:
            Wx = W_ih.T  # (D, G*H)
        if layer > 0 and Wx.shape[0] != H:
            raise ValueError(f"layer {layer} reads inputs of size {Wx.shape[0]}, but the layer below has {H} "
                             f"units; {SUPPORTED}")
        b = np.zeros(W_hh.shape[0]) if b_ih is None else b_ih + b_hh
        if arch == "gru" and b_hh is not None:  # n = tanh(W_in x + b_in + r * (W_hn h + b_hn)): b_hn apart
            b[2 * H:] = b_ih[2 * H:]
            params[f"L{layer}_bhn"] = b_hh[2 * H:]
        params[f"L{layer}_Wx"] = np.ascontiguousarray(_blocks(Wx.T, arch, H).T)
        params[f"L{layer}_Wh"] = np.ascontiguousarray(_blocks(W_hh, arch, H).T)
        params[f"L{layer}_b"] = _blocks(b, arch, H)
    Why = tensors[layout["head"] + "weight"]
    by = tensors.get(layout["head"] + "bias", np.zeros(Why.shape[0]))
    if Why.shape != (V, H) or by.shape != (V,):
        raise ValueError(f"the head {_show(layout['head'])} maps {Why.shape[1]} units to {Why.shape[0]} outputs; "
                         f"expected {H} units (the last layer) to {V} characters (the vocabulary)")
    params["Why"], params["by"] = Why, by
    if arch == "rnn" and len(layers) == 1:  # one tanh layer: the gist's own names and shapes
        return "rnn", {"Wxh": params["L0_Wx"].T, "Whh": params["L0_Wh"].T, "bh": params["L0_b"],
                       "Why": Why, "by": by}
    return ("rnn_stack" if arch == "rnn" else arch), params


def sorted_vocabulary(arch, params, chars):
    """The same model with its vocabulary in sorted order: the input rows and output rows permuted."""
    order = sorted(range(len(chars)), key=chars.__getitem__)
    out = dict(params)
    if arch == "rnn":
        out["Wxh"] = params["Wxh"][:, order]
    else:
        out["L0_Wx"] = params["L0_Wx"][order]
    out["Why"], out["by"] = params["Why"][order], params["by"][order]
    return out, [chars[i] for i in order]


def import_model(weights, vocab, mapping=None):
    """An interpret Model from a PyTorch state_dict file and its vocabulary file (see the module notes)."""
    from interpret._util.version import __version__
    from interpret.model.model import Model

    tensors = read_tensors(weights)
    chars = read_vocab(vocab)
    layout = find_layout(tensors, parse_map(mapping) if isinstance(mapping, (list, tuple)) else mapping)
    n_inputs = (tensors[layout["embedding"] + "weight"] if layout["embedding"] else layout["layers"][0][1].T).shape[0]
    if len(chars) != n_inputs:
        source = f"embedding {_show(layout['embedding'])}" if layout["embedding"] else "input size of layer 0"
        raise ValueError(f"the vocabulary {os.path.basename(vocab)} has {len(chars)} characters but the model's "
                         f"{source} is {n_inputs}; give the vocabulary the model was trained with")
    arch, params = native_params(layout, tensors, len(chars))
    params, chars = sorted_vocabulary(arch, params, chars)
    H, n_layers = layout["layers"][0][2].shape[1], len(layout["layers"])
    meta = {"arch": arch, "hidden_size": H, "n_layers": n_layers, "trainer": "pytorch", "tool_version": __version__,
            "imported": {"from": os.path.basename(weights), "sha256": file_sha256(weights),
                         "vocab": os.path.basename(vocab), "vocab_sha256": file_sha256(vocab),
                         "rnn": [_show(m) for m in layout["rnn"]], "torch_arch": layout["arch"],
                         "embedding": _show(layout["embedding"]) if layout["embedding"] else None,
                         "head": _show(layout["head"])}}
    return Model(params, chars, arch=arch, meta=meta)
