"""Read the files of a PyTorch character model without unpickling: its tensors and its vocabulary.

Tensors come from `.safetensors` (the safetensors package's numpy API; torch not needed) or from
a `torch.save`d state_dict, only where torch is installed and only with
`torch.load(..., weights_only=True)`, which refuses anything but tensors and plain containers.
The vocabulary is a JSON list of characters, a JSON {char: index} (or {index: char}) object, or
any other file read verbatim as UTF-8: every character, a newline included, is one entry in
index order, and nothing is stripped (so a trailing newline is an entry: a duplicate, refused).
"""
import json
import zipfile

import numpy as np

SAVE_AS_SAFETENSORS = ("save it as safetensors instead: safetensors.torch.save_file(model.state_dict(), "
                       "'model.safetensors')")


# ---- reading the weights --------------------------------------------------------------------
def read_tensors(path):
    """{key: float64 array} of a .safetensors or torch.save'd state_dict file."""
    with open(path, "rb") as f:
        head = f.read(9)
    if len(head) == 9 and head[8:9] == b"{":  # safetensors: 8-byte header length, then JSON
        return _read_safetensors(path)
    if head[:1] == b"\x80" or (head[:2] == b"PK" and _is_torch_zip(path)):  # torch.save: zip or legacy
        return _read_torch(path)
    raise ValueError(f"{path} is neither a .safetensors file nor a torch.save'd state_dict; "
                     f"{SAVE_AS_SAFETENSORS}")


def _is_torch_zip(path):
    """A torch.save zip holds ARCHIVE/data.pkl (an .npz, say, does not)."""
    try:
        with zipfile.ZipFile(path) as z:
            return any(name.endswith("/data.pkl") for name in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _read_safetensors(path):
    from safetensors import SafetensorError
    from safetensors.numpy import load_file
    try:
        arrays = load_file(path)
    except (SafetensorError, ValueError, TypeError, OSError) as e:
        raise ValueError(f"{path} is not a readable safetensors file ({e}); save the tensors "
                         "as float32: {k: v.float() for k, v in model.state_dict().items()}") from None
    return {k: np.asarray(v, dtype=np.float64) for k, v in arrays.items()}


def _read_torch(path):
    try:
        import torch
    except ImportError:
        raise ValueError(f"{path} is a torch.save file, which needs torch installed to read; "
                         f"{SAVE_AS_SAFETENSORS}") from None
    refused = torch.serialization.pickle.UnpicklingError  # what weights_only raises for anything else
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except refused:
        raise ValueError(f"{path} holds more than tensors (objects that only unpickling could read, "
                         f"which interpret never does); {SAVE_AS_SAFETENSORS}") from None
    except (RuntimeError, EOFError, OSError) as e:
        raise ValueError(f"{path} is not a readable torch.save file ({e}); {SAVE_AS_SAFETENSORS}") from None
    return {k: v.detach().cpu().double().numpy() for k, v in tensors_only(obj, path, torch.Tensor).items()}


def tensors_only(obj, path, tensor_type):
    """obj when it is a {str: tensor} state_dict; else ValueError naming the first other entry."""
    if not isinstance(obj, dict):
        raise ValueError(f"{path} holds a {type(obj).__name__}, not a state_dict; "
                         f"save model.state_dict(), or {SAVE_AS_SAFETENSORS}")
    for k, v in obj.items():
        if not isinstance(v, tensor_type):
            raise ValueError(f"{path} holds more than tensors (entry {k!r} is of type {type(v).__name__}); "
                             f"save only model.state_dict(), or {SAVE_AS_SAFETENSORS}")
    return obj


# ---- the vocabulary ---------------------------------------------------------------------------
def read_vocab(path):
    """Characters in index order from a .json list / {char: index} / {index: char}, or any other
    file read verbatim as UTF-8 (every character, newlines included, is one entry; nothing stripped)."""
    if str(path).lower().endswith(".json"):
        with open(path, encoding="utf-8") as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f"vocabulary {path} is not valid JSON ({e}); give a JSON list of characters") from None
        chars = _vocab_from_json(data, path)
    else:
        with open(path, encoding="utf-8", newline="") as f:  # newline="": a "\r" stays a "\r"
            chars = list(f.read())
    if not chars:
        raise ValueError(f"vocabulary {path} is empty")
    for i, ch in enumerate(chars):
        if not isinstance(ch, str) or len(ch) != 1:
            raise ValueError(f"vocabulary {path}: entry {i} is {ch!r}, not a single character; "
                             "interpret reads character-level models only")
        if chars.index(ch) != i:
            hint = " (a text vocabulary is read verbatim: is there a trailing newline?)" if ch == "\n" else ""
            raise ValueError(f"vocabulary {path}: character {ch!r} appears twice, at {chars.index(ch)} "
                             f"and {i}{hint}")
    return chars


def _vocab_from_json(data, path):
    if isinstance(data, list):
        return data
    if not isinstance(data, dict):
        raise ValueError(f"vocabulary {path} holds a JSON {type(data).__name__}; give a list of characters "
                         "or a {char: index} object")
    if data and all(isinstance(v, str) for v in data.values()):  # {index: char}, e.g. an ix_to_char
        try:
            data = {ch: int(i) for i, ch in data.items()}
        except ValueError:
            raise ValueError(f"vocabulary {path}: an object of strings needs index keys "
                             "({\"0\": \"a\", ...}); or give {char: index}") from None
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in data.values()):
        raise ValueError(f"vocabulary {path}: a {{char: index}} object needs integer indices")
    if sorted(data.values()) != list(range(len(data))):
        raise ValueError(f"vocabulary {path}: the indices are not 0..{len(data) - 1}, each once")
    return sorted(data, key=data.get)
