"""What every test shares: the repository's paths, the viewer on sys.path, the shipped models, and
the corpora beside the repository (tests that need them skip when they are not there)."""
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CORPORA = SHARED / "corpora"
SHIPPED = ROOT / "trained_models"

if str(ROOT) not in sys.path:  # viewer/ is a bokeh app directory, imported as a package by its tests
    sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="session")
def root():
    return ROOT


@pytest.fixture(scope="session")
def shipped():
    """The shipped models and demo texts (trained_models/)."""
    return SHIPPED


@pytest.fixture(scope="session")
def corpora():
    """../shared/corpora, or a skip where the repository stands alone."""
    if not CORPORA.is_dir():
        pytest.skip(f"{CORPORA} is not here (the corpora sit beside the repository)")
    return CORPORA


SMALL_CHARS = list('\n "().abcde')


def small_model(arch, layers=2, seed=0):
    """A 6-unit model of any architecture with large random weights (so every path is exercised)."""
    from interpret.model.model import Model
    m = Model.init(SMALL_CHARS, hidden_size=6, arch=arch, n_layers=layers if arch != "rnn" else 1, seed=seed)
    rng = np.random.RandomState(seed)
    for v in m.params.values():
        v += rng.randn(*v.shape) * 0.5
    return m
