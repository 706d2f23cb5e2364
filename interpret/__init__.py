"""interpret: find and show the interpretable cells of character-level RNNs."""

__version__ = "0.1.0"
