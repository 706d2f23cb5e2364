"""Ctrl-C at a safe point: a training step updates many arrays in place, and an interrupt in the
middle of one would save a checkpoint that mixes two iterations (and resume to other numbers)."""
import signal
import threading


class SafePoints:
    """Within the block, the first SIGINT only sets a flag; check() raises KeyboardInterrupt at a
    safe point. A second SIGINT interrupts at once (the previous handler runs)."""

    def __enter__(self):
        self.pending, self._old = False, None
        if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
            self._old = signal.signal(signal.SIGINT, self._note)
        return self

    def _note(self, signum, frame):
        if self.pending and callable(self._old):
            self._old(signum, frame)
        self.pending = True

    def check(self):
        """Raise KeyboardInterrupt here if Ctrl-C was pressed since the last check."""
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        return False
