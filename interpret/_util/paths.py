"""Where the shipped models and the viewer app are, in a source checkout or an installed wheel.

A checkout has them at the top level, beside interpret/ (trained_models/, viewer/); the wheel
carries the same folders inside the package as interpret/_shipped/trained_models and
interpret/_shipped/viewer (mapped by pyproject.toml's package-dir), so `interpret demo` and
`interpret view` work from any directory once installed.
"""
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]  # .../interpret
SHIPPED = PACKAGE / "_shipped"  # in an installed wheel


def checkout_root():
    """The checkout holding this interpret (for a subprocess's PYTHONPATH); None when installed."""
    return None if SHIPPED.is_dir() else PACKAGE.parent  # site-packages is never put on PYTHONPATH


def _find(name, marker):
    """The first of interpret/_shipped/NAME (installed) and ../NAME (checkout) that has marker."""
    for folder in (SHIPPED / name, PACKAGE.parent / name):
        if (folder / marker).is_file():
            return folder
    raise FileNotFoundError(f"{name}/ (with {marker}) is neither in {SHIPPED} nor in {PACKAGE.parent}; "
                            "reinstall interpret (pip install .) or run from a source checkout")


def shipped_models():
    """The folder of the shipped models and demo texts (trained_models/)."""
    return _find("trained_models", "demo_passage.txt")


def viewer_dir():
    """The Bokeh app folder to give `bokeh serve` (viewer/)."""
    return _find("viewer", "main.py")
