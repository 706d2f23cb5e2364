"""Temporary paths beside a target, for writes that appear whole or not at all (written there,
then moved into place with os.replace).

A run killed outright (SIGKILL, the out-of-memory killer, a power cut) cannot remove its
temporary, so each one is named after its target, host and process, .NAME.HOST-PID.XXXX.tmp,
and the next write of the same target removes those whose process on this host is gone.
"""
import os
import re
import shutil
import socket
import tempfile


def _host():
    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:40] or "host"


def _prefix(target):
    return f".{os.path.basename(os.fspath(target))}.{_host()}-"


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
