"""Installed, not only checked out: the wheel built from this tree, installed in a fresh venv,
runs `interpret demo` and serves `interpret view` from a directory outside the checkout.

The venv sees the machine's numpy/scipy/bokeh/click (--system-site-packages: no download), so
the tests check that interpret itself comes from the venv's site-packages, not the checkout
(nor an editable install of it), and that bokeh serves the venv's copy of viewer/. One wheel,
one venv and one demo run for the whole module (about 20 s).
"""
import contextlib
import importlib.util
import os
import signal
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from chromium import Browser, find_chromium, free_port
from interpret._util import paths

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "interpret", "viewer", "trained_models")
SHIPPED = ["trained_models/" + n for n in ("warpeace-lstm.npz", "warpeace-rnn.npz", "c-lstm.npz", "c-rnn.npz",
                                           "demo_passage.txt", "demo_code.c", "README.md", "card.py")]
SHIPPED += ["viewer/" + n for n in ("__init__.py", "main.py", "data.py", "layout.py", "summaries.py",
                                    "theme.yaml", "templates/index.html")]


def run(cmd, timeout, **kw):
    """Run a command; its CompletedProcess, with its output in the assertion message if it failed."""
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))} exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
    return r


def build_wheel(src, dist):
    """pip wheel, offline when this Python can build wheels itself, else in pip's build isolation."""
    import setuptools

    offline = importlib.util.find_spec("wheel") or tuple(map(int, setuptools.__version__.split(".")[:2])) >= (70, 1)
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(src)]
    run(cmd + (["--no-build-isolation"] if offline else []), timeout=300)
    (wheel,) = dist.glob("interpret-*.whl")
    return wheel


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A venv outside the checkout with the wheel installed: (wheel, venv, env, work directory)."""
    base = tmp_path_factory.mktemp("installed")
    src = base / "src"  # a copy, so the build leaves no build/ or egg-info in the checkout
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(ROOT / name, src / name)
    wheel = build_wheel(src, base / "dist")
    venv = base / "venv"
    run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], timeout=120)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", VIRTUAL_ENV=str(venv))
    # --ignore-installed: an editable install of this checkout in the system site-packages is not "it"
    run([venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--ignore-installed",
         str(wheel)], timeout=300, env=env)
    work = base / "elsewhere"
    work.mkdir()
    return wheel, venv, env, work


def site(installed):
    """The venv's site-packages."""
    _, venv, env, work = installed
    code = "import sysconfig; print(sysconfig.get_path('purelib'))"
    return Path(run([venv / "bin" / "python", "-c", code], timeout=60, cwd=work, env=env).stdout.strip())


@pytest.fixture(scope="module")
def demo(installed):
    """`interpret demo` run once from a directory outside the checkout; its output directory."""
    _, venv, env, work = installed
    r = run([venv / "bin" / "interpret", "demo", "-o", "demo-out", "-q"], timeout=900, cwd=work, env=env)
    return work / "demo-out", r.stdout


def test_the_wheel_carries_every_package_the_models_and_the_viewer(installed):
    wheel = installed[0]
    names = set(zipfile.ZipFile(wheel).namelist())
    packages = {str(p.parent.relative_to(ROOT)) for p in (ROOT / "interpret").rglob("__init__.py")
                if "__pycache__" not in p.parts}
    missing = sorted(p for p in packages if f"{p}/__init__.py" not in names)
    assert not missing, f"not in the wheel: {missing}; add them to [tool.setuptools] packages in pyproject.toml"
    assert not [n for n in SHIPPED if f"interpret/_shipped/{n}" not in names]
    assert "interpret/_shipped/viewer/screenshot.png" not in names
    assert wheel.stat().st_size < 8e6


def test_the_venv_imports_the_installed_copy_not_the_checkout(installed):
    _, venv, env, work = installed
    code = ("import interpret; from interpret._util import paths; "
            "print(interpret.__file__); print(paths.shipped_models()); print(paths.viewer_dir())")
    out = run([venv / "bin" / "python", "-c", code], timeout=60, cwd=work, env=env).stdout.split()
    package = site(installed) / "interpret"
    assert [Path(p) for p in out] == [package / "__init__.py", package / "_shipped" / "trained_models",
                                      package / "_shipped" / "viewer"]
    assert all(ROOT not in Path(p).parents for p in out)


def test_demo_runs_from_the_installed_wheel(demo):
    out, stdout = demo
    page = (out / "cells.html").read_text(encoding="utf-8")
    assert "interpret demo: interpretable cells" in page
    for stem in ("demo_passage", "demo_code"):  # both shipped LSTMs, on both shipped texts
        assert (out / f"{stem}.rec").is_dir() and (out / f"{stem}.scan.json").is_file()
    assert f"gallery: {Path('demo-out') / 'cells.html'}" in stdout
    assert "interpret view demo-out/demo_passage.rec --scan demo-out/demo_passage.scan.json" in stdout


@contextlib.contextmanager
def serving(venv, env, work, *args):
    """`interpret view ARGS --port P` in its own process group: (process, port, page, log) once the page
    answers 200; the whole group is killed on the way out, whatever happened."""
    for _ in range(3):  # a port taken between free_port() and bokeh's bind: try another
        port = free_port()
        with tempfile.TemporaryFile() as log:
            proc = subprocess.Popen([venv / "bin" / "interpret", "view", *args, "--port", str(port), "--no-show"],
                                    cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                page = wait_page(proc, f"http://127.0.0.1:{port}/viewer", timeout=90)
                if page is not None:
                    yield proc, port, page, log
                    return
            finally:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of the group
                except ProcessLookupError:
                    pass
                proc.wait(10)
            log.seek(0)
            output = log.read().decode("utf-8", "replace")
        if "in use" not in output:
            break
    raise AssertionError(f"interpret view exited {proc.returncode} before serving:\n{output}")


def wait_page(proc, url, timeout):
    """The page's HTML once it answers 200; None if the process ended first."""
    end = time.monotonic() + timeout
    while proc.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                assert r.status == 200
                return r.read().decode("utf-8")
        except OSError:  # refused while bokeh starts (URLError), or a slow first answer (TimeoutError)
            if time.monotonic() > end:
                raise TimeoutError(f"{url} did not answer within {timeout} s") from None
            time.sleep(0.1)
    return None


def children(pid):
    """{pid: command line} of the processes whose parent is pid (Linux /proc)."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found[int(stat.parent.name)] = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            pass  # gone meanwhile
    return found


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_view_serves_the_installed_viewer(installed, demo):
    _, venv, env, work = installed
    rec, scan = Path("demo-out") / "demo_passage.rec", Path("demo-out") / "demo_passage.scan.json"
    with serving(venv, env, work, rec, "--scan", scan) as (proc, port, page, log):
        (server, cmdline), = children(proc.pid).items()  # bokeh serve, on the venv's copy of viewer/
        assert f"bokeh serve {site(installed) / 'interpret' / '_shipped' / 'viewer'} " in cmdline
        environ = dict(v.partition("=")[::2] for v in Path(f"/proc/{server}/environ").read_text().split("\0"))
        assert str(ROOT) not in environ.get("PYTHONPATH", "")  # nor the checkout smuggled into its path
        assert "<title>interpret viewer</title>" in page  # main.py ran: it sets the title
        assert "#f7f7f5" in page  # the viewer's own templates/index.html
        if find_chromium():  # and it draws the text in a real browser
            with Browser(1300, 900) as browser:
                assert browser.open_viewer(f"http://127.0.0.1:{port}/viewer", timeout=90) > 0
                assert browser.errors == []
        proc.send_signal(signal.SIGTERM)  # as Ctrl-C's twin: `interpret view` stops bokeh serve too
        proc.wait(30)
        assert not alive(server), "bokeh serve still runs after `interpret view` stopped"
        log.seek(0)
        output = log.read().decode("utf-8", "replace")
    bad = [line for line in output.splitlines() if any(w in line for w in ("Traceback", "ERROR", "Error"))]
    assert not bad, output


def test_a_missing_folder_is_one_line_naming_the_way_out(monkeypatch, tmp_path):
    monkeypatch.setattr(paths, "PACKAGE", tmp_path / "interpret")
    monkeypatch.setattr(paths, "SHIPPED", tmp_path / "interpret" / "_shipped")
    for find in (paths.shipped_models, paths.viewer_dir):
        with pytest.raises(FileNotFoundError, match="pip install ") as e:
            find()
        assert "\n" not in str(e.value)
    assert paths.checkout_root() == tmp_path  # a checkout goes on the bokeh subprocess's PYTHONPATH
    (tmp_path / "interpret" / "_shipped").mkdir(parents=True)
    assert paths.checkout_root() is None  # an installed wheel does not


def test_a_checkout_finds_its_own_top_level_folders():
    assert (paths.shipped_models(), paths.viewer_dir(), paths.checkout_root()) == \
        (ROOT / "trained_models", ROOT / "viewer", ROOT)
