"""Temporary paths beside a target, for writes that appear whole or not at all (written there,
then moved into place with os.replace).

A run killed outright (SIGKILL, the out-of-memory killer, a power cut) cannot remove its
temporary, so each one is named after its target, host and process, .NAME.HOST-PID.XXXX.tmp,
and the next write of the same target removes those whose process on this host is gone.
"""
import contextlib
import errno
import os
import re
import shutil
import socket
import tempfile

import numpy as np


def host_tag():
    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:40] or "host"


def _prefix(target):
    return f".{os.path.basename(os.fspath(target))}.{host_tag()}-"


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process: it exists
        return True
    return True


def leftovers(target):
    """Paths of temporaries of target left by processes of this host that are gone."""
    folder = os.path.dirname(os.path.abspath(target))
    pattern = re.compile(re.escape(_prefix(target)) + r"(\d+)\.[^.]+\.tmp\Z")
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    found = []
    for name in names:
        m = pattern.match(name)
        if m and int(m.group(1)) != os.getpid() and not _alive(int(m.group(1))):
            found.append(os.path.join(folder, name))
    return found


def sweep(target):
    """Remove the temporaries killed runs left beside target (best effort: a race with another
    run sweeping the same ones is harmless)."""
    for path in leftovers(target):
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)
        except OSError:
            pass


def temp_file(target):
    """(fd, path) of a new temporary file beside target (sweeping killed runs' ones first)."""
    sweep(target)
    return tempfile.mkstemp(prefix=f"{_prefix(target)}{os.getpid()}.", suffix=".tmp",
                            dir=os.path.dirname(os.path.abspath(target)))


def temp_dir(target):
    """Path of a new temporary directory beside target (sweeping killed runs' ones first)."""
    sweep(target)
    return tempfile.mkdtemp(prefix=f"{_prefix(target)}{os.getpid()}.", suffix=".tmp",
                            dir=os.path.dirname(os.path.abspath(target)))


TMP_WAY_OUT = ("free some space there, or point TMPDIR at a disk with room (the scan of a big "
               "recording keeps its features in temporary files)")


def new_memmap(path, dtype, shape, way_out="free some space or write elsewhere", what=None):
    """np.lib.format.open_memmap(path, "w+") with the file's disk blocks allocated at once, so
    that a full disk is a clear ValueError here (naming `what`, default the path) rather than a
    SIGBUS at some later write through the mapping (a fresh .npy is a sparse file)."""
    arr = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    size = os.path.getsize(path)
    if hasattr(os, "posix_fallocate") and size:
        with open(path, "r+b") as f:
            try:
                os.posix_fallocate(f.fileno(), 0, size)
            except OSError as e:
                if e.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                    return arr  # the file system cannot allocate ahead (it may still have room)
                del arr
                free = shutil.disk_usage(os.path.dirname(os.path.abspath(path))).free
                raise ValueError(f"not enough disk space for {what or path}: it needs "
                                 f"{size / 2**20:,.0f} MB more and {free / 2**20:,.0f} MB are free "
                                 f"there; {way_out}") from None
    return arr


def name_full_disk(exc, target):
    """A write error without a file name (a full disk, from an open file's write) gets the
    target's, so the one-line error says what could not be written."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT) and not exc.filename:
        exc.filename = os.fspath(target)


def umask():
    """The process's umask (read without changing it for long)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def replacing(path, mode="w"):
    """The one atomic writer: yields a file open on a temporary beside path ("w": UTF-8 text with
    newlines as written, "wb": bytes); on success it gets the usual permissions (0666 minus the
    umask) and replaces path; on any error it is removed and path is untouched."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"directory {folder!r} does not exist; create it before writing {path!r}")
    fd, tmp = temp_file(path)
    try:
        with (os.fdopen(fd, "wb") if "b" in mode else os.fdopen(fd, "w", encoding="utf-8", newline="")) as f:
            yield f
        os.chmod(tmp, 0o666 & ~umask())  # mkstemp makes 0600
        os.replace(tmp, path)
    except BaseException as e:
        name_full_disk(e, path)
        raise
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text(path, text):
    """Write a str to path atomically (see replacing)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    with replacing(path) as f:
        f.write(text)
