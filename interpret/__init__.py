"""interpret: find and show the interpretable cells of character-level RNNs.

    from interpret import Model, record, scan
    rec = record(Model.load("trained_models/warpeace-lstm.npz"), text="...")
    scan(rec, ["in_quote", "position_in_line"]).table()
"""
from interpret._util.version import __version__  # noqa: E402

from interpret.model import Model  # noqa: E402
from interpret.recording import Recording, record  # noqa: E402
from interpret.scan import Scan, scan  # noqa: E402
from interpret import features  # noqa: E402

__all__ = ["Model", "Recording", "Scan", "features", "record", "scan", "__version__"]
