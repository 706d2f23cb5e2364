"""The progress protocol, one for the whole package.

A long library call takes `progress`, a factory `progress(total, label)` that returns a bar: a
context manager with `.update(n)` (n more units of work done) and settable `.label` and `.length`.
None means no progress. Inner loops take the bar's `update` as a plain callable `update(n)`.
The command line's bars (click, or log lines when stderr is not a terminal) live in `cli/`.
"""


class NoBar:
    """The do-nothing bar."""

    def __init__(self, length=None, label=""):
        self.length, self.label = length, label

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n, current_item=None):
        pass


def open_bar(factory, total, label):
    """factory(total, label), or a NoBar when there is no factory."""
    return factory(total, label) if factory else NoBar(total, label)
