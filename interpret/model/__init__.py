"""Model: architecture + parameters + vocabulary (load, save, init), and the forward passes."""
from interpret.model.model import Model

__all__ = ["Model"]
