"""The README's Python example runs as written and finds what it says (the API is the CLI's)."""
import os
import re

from conftest import ROOT


def readme_python():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## From Python"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_python_example_runs(tmp_path, monkeypatch):
    (tmp_path / "trained_models").symlink_to(ROOT / "trained_models")
    monkeypatch.chdir(tmp_path)
    ns = {}
    exec(compile(readme_python(), "README.md", "exec"), ns)  # noqa: S102  (the project's own README)
    rec, s, best = ns["rec"], ns["s"], ns["best"]
    assert ns["acts"].shape == (len(ns["text"]), 256)
    assert best[0]["feature"] == "in_quote" and best[0]["verdict"] == "cell"  # the shipped quote cell
    assert rec.names == ["L0.h", "L0.c"] and rec.n_chars == len(ns["text"])
    assert (tmp_path / "run.rec" / "manifest.json").is_file()
    assert '"rows"' in (tmp_path / "scan.json").read_text() and ns["page"].startswith("<!DOCTYPE html>")
    assert (tmp_path / "quote-cell.html").read_text() == str(ns["page"])
    assert list(ns["quotes"]) == [0] * 8 + [1] * 4 + [0] * 8  # the opening quote is inside, the closing one not
    assert "<iframe" in ns["page"]._repr_html_() and "<table>" in s._repr_html_()
    assert "Recording" in rec._repr_html_()
    assert os.getcwd() == str(tmp_path)
