"""The version, one place: the package, the model files and the recordings say it."""

__version__ = "0.1.0"
