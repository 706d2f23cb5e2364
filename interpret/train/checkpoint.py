"""Checkpoints: a model file that also carries a trainer's optimizer state, checked before resuming.

A checkpoint is a Model .npz whose meta names its trainer ("faithful" or "batched"), the corpus's
sha256 and a "resume" entry (the iteration and the data position), plus opt_* arrays (optimizer
moments, the carried hidden state). Resuming on another text, or from a plain model file, fails
with a one-line message saying what to do instead.
"""
import hashlib

import numpy as np

from interpret.model.model import Model


def load_checkpoint(path, text, trainer):
    """A checkpoint's Model, checked to come from `trainer` ("faithful" | "batched") on this text."""
    model = Model.load(path)
    meta = model.meta
    if meta.get("trainer") != trainer or "resume" not in meta:
        what = "`interpret train`" if trainer == "faithful" else "batched training"
        raise ValueError(f"{path} is not a checkpoint of {what} (no optimizer state); "
                         "start a new run without --resume")
    keys = ("n", "p") if trainer == "faithful" else ("n", "pos")
    r = meta["resume"]
    if not (isinstance(r, dict) and all(isinstance(r.get(k), int) and r[k] >= 0 for k in keys)):
        raise ValueError(f"{path} has a damaged 'resume' entry in its meta ({r!r}); it cannot be resumed, "
                         "start a new run without --resume")
    if meta.get("corpus_sha256") != text_sha256(text):
        raise ValueError(f"{path} was trained on a different text (corpus sha256 differs); "
                         "resume with the same training text")
    return model


def check_finite(params, n, path):
    """FloatingPointError (nothing written) if a parameter is NaN or infinite."""
    bad = [k for k, v in params.items() if not np.isfinite(v).all()]
    if bad:
        raise FloatingPointError(f"the parameters ({', '.join(bad)}) became NaN or infinite at iteration {n}; "
                                 f"{path} was not overwritten with them; lower --lr")


def text_sha256(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
