"""record() and Recording: every unit of a model at every character, on disk or in memory."""
from interpret.recording.recorder import record
from interpret.recording.recording import Recording

__all__ = ["Recording", "record"]
