"""Shared by the CLI tests: run a command through click's CliRunner and check its outcome."""
from click.testing import CliRunner

from interpret.cli.main import main

PROSE = ('"Come here," said the old man. "Look at this (if you can)."\n'
         'She did not move; the rain went on.\n\n') * 30


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def ok(result):
    assert result.exit_code == 0, (result.output, result.stderr)
    return result


def fails(result, *needles):
    """A user error: non-zero exit, the needles on stderr, no traceback."""
    assert result.exit_code != 0
    err = result.stderr
    assert "Traceback" not in err and result.exception is None or isinstance(result.exception, SystemExit)
    assert all(n in err for n in needles), err
    return err


def fake_server(monkeypatch):
    """Make `interpret view` record its `bokeh serve` command line instead of starting a server."""
    import signal
    import subprocess
    calls = []

    class FakeServer:
        def __init__(self, cmd, env=None):
            calls.append(cmd)

        def wait(self):
            return 0

        def poll(self):
            return 0
    monkeypatch.setattr(subprocess, "Popen", FakeServer)
    monkeypatch.setattr(signal, "signal", lambda *a: None)
    return calls
