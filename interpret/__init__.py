"""interpret: find and show the interpretable cells of character-level RNNs.

    from interpret import Model, record, scan
    rec = record(Model.load("trained_models/warpeace-lstm.npz"), text="...")
    print(scan(rec, ["in_quote", "position_in_line"]).table())

The names below are imported on first use (PEP 562), so `interpret COMMAND` loads only what the
command needs (scipy.stats, for one, takes half a second).
"""
from importlib import import_module

from interpret._util.version import __version__

_API = {"Model": "interpret.model.model", "Recording": "interpret.recording.recording",
        "record": "interpret.recording.recorder", "Scan": "interpret.scanning.result", "scan": "interpret.scanning.result",
        "features": "interpret.features"}

__all__ = ["Model", "Recording", "Scan", "features", "record", "scan", "__version__"]


def __getattr__(name):
    if name not in _API:
        raise AttributeError(f"module 'interpret' has no attribute {name!r}")
    module = import_module(_API[name])
    value = module if name == "features" else getattr(module, name)
    globals()[name] = value  # looked up once
    return value


def __dir__():
    return sorted([*globals(), *_API])
