"""What every command shares: the click context, options, one-line errors, progress bars, output checks."""
import errno
import functools
import os
import sys
import time

import click

from interpret._util.progress import NoBar

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
IN_FILE = click.Path(exists=True, dir_okay=False)
IN_PATH = click.Path(exists=True)


def friendly(fn):
    """The library's ValueError / FileNotFoundError become one-line errors (exit 1, no traceback)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (ValueError, FileNotFoundError, FloatingPointError) as e:
            raise click.ClickException(str(e)) from None
        except (PermissionError, NotADirectoryError, IsADirectoryError) as e:  # the file system said no
            raise click.ClickException(f"cannot use {e.filename}: {e.strerror}") from None
        except MemoryError:
            raise click.ClickException("out of memory; try a shorter text or --dtype float16") from None
        except OSError as e:
            if e.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            where = f" writing {e.filename}" if e.filename else ""
            raise click.ClickException(f"the disk is full{where}; free some space or write "
                                       "elsewhere") from None
    return wrapper


class _LazyBar:
    """click.progressbar on stderr, drawn from the first update on: a command that fails before
    doing any work prints its error line alone. Setting .label relabels the bar. When stderr is
    not a terminal (a log file), a plain line at most every 10% of the work or 30 seconds."""

    def __init__(self, length, label):
        self.length, self.label, self._bar = length, label, None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._bar.__exit__(*exc) if self._bar is not None else False

    def update(self, n, current_item=None):
        if self._bar is None:
            self._bar = (click.progressbar(length=self.length, label=self.label, file=sys.stderr,
                                           show_pos=True, width=30).__enter__() if _is_tty(sys.stderr)
                         else _LogLines(self.length))
        self._bar.label = self.label
        self._bar.update(n, current_item)


def _is_tty(f):
    try:
        return f.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False


class _LogLines:
    """Progress for a log file: 'label: done/total (pct%)' every 10% of the work or 30 s, and at the end."""

    EVERY_S, EVERY_FRACTION = 30.0, 0.1

    def __init__(self, length):
        self.length, self.done, self.label = max(int(length), 1), 0, ""
        self._last_t, self._last_done = time.monotonic(), 0

    def update(self, n, current_item=None):
        self.done += n
        now = time.monotonic()
        if (self.done - self._last_done >= self.EVERY_FRACTION * self.length or now - self._last_t >= self.EVERY_S
                or self.done >= self.length > self._last_done):
            click.echo(f"{self.label}: {self.done}/{self.length} ({100 * self.done / self.length:.0f}%)", err=True)
            self._last_t, self._last_done = now, self.done

    def __exit__(self, *exc):
        return False


def bar(length, label, quiet):
    """A progress bar on stderr; nothing with -q."""
    return NoBar() if quiet else _LazyBar(length, label)


def check_out(out, inputs=()):
    """Fail before any work if `out` cannot be written: its folder is missing, or it is an input."""
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise click.BadParameter(f"directory {folder!r} does not exist; create it first", param_hint="-o")
    for path in inputs:
        if os.path.exists(out) and os.path.samefile(out, path):
            raise click.BadParameter(f"{out} is also an input; writing it would destroy that input, "
                                     "choose another -o path", param_hint="-o")


def info(msg, quiet=False):
    if not quiet:
        click.echo(msg, err=True)


quiet_option = click.option("-q", "--quiet", is_flag=True, help="No progress output on stderr.")
encoding_option = click.option("--encoding", default="utf-8", show_default=True,
                               help="Text encoding of the input files (e.g. latin-1).")




def progress(quiet):
    """The progress factory the library takes (see interpret._util.progress): bars on stderr."""
    return lambda total, label: bar(total, label, quiet)


def with_options(options):
    def deco(fn):
        for opt in reversed(options):
            fn = opt(fn)
        return fn
    return deco
