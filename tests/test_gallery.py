"""The gallery and the demo: only cells get excerpts, placed where feature and unit change together."""
import re

import numpy as np

from interpret.export import gallery
from interpret.export.gallery_html import gallery_page

from cli_helpers import ok, run


def test_pick_window_goes_where_feature_and_unit_change_together():
    n, length = 3000, 200
    text = ("x" * 59 + "\n") * 50
    feature = np.zeros(n)
    unit = np.zeros(n)
    feature[1000:1020] = feature[1100:1120] = 1           # the feature toggles at 1000, 1020, 1100, 1120
    unit[2000:2300] = np.sin(np.arange(300))               # the unit moves a lot, the feature does not
    unit[1000:1020] = unit[1100:1120] = 1                  # and follows the feature here
    start = gallery.pick_window(text, feature, unit, length)
    assert start <= 1000 and 1120 < start + length        # every joint change inside the window
    assert text[start - 1] == "\n"                         # from a line start
    assert gallery.pick_window(text[:150], feature[:150], unit[:150], length) == 0


def test_pick_window_for_a_line_cell_counts_line_ends_not_every_step():
    text = "a" * 1000 + ("b" * 30 + "\n") * 40 + "c" * 1000
    col = np.array([0] * 0 + list(range(1000)) + [k for _ in range(40) for k in range(31)] + list(range(1000)))
    unit = -np.tanh(col / 20.0)                            # falls along each line, jumps back at its end
    start = gallery.pick_window(text, col, unit, 300)
    assert 1000 - 31 <= start <= 1000 + 31 * 31            # among the short lines, not in the long runs


ROWS = [dict(feature="in_quote", unit=3, layer=0, array="h", metric="auroc", score=0.97, q=1e-9, verdict="cell",
             feature_type="binary"),
        dict(feature="in_quote", unit=5, layer=0, array="h", metric="auroc", score=0.99, q=1e-9, verdict="weak",
             feature_type="binary"),
        dict(feature="position_in_line", unit=40, layer=0, array="c", metric="spearman_rho", score=0.074, q=1e-3,
             verdict="none", feature_type="ordinal")]
CONTROL = [dict(feature="position_in_line", unit=1, layer=0, array="c", metric="spearman_rho", score=0.08),
           dict(feature="in_quote", unit=1, layer=0, array="h", metric="auroc", score=0.6)]


def test_only_cells_get_excerpts_and_the_rest_one_line():
    assert [(r["feature"], r["unit"]) for r in gallery.cell_rows(ROWS, 2)] == [("in_quote", 3)]
    lines = gallery.no_cell_lines(ROWS, CONTROL)
    assert list(lines) == ["position_in_line"]
    assert lines["position_in_line"] == ("no cell: best spearman_rho 0.074 (layer 0 c unit 40, verdict none); "
                                         "untrained control 0.080")
    page = gallery_page([], no_cells=lines)
    assert "Features without a cell" in page and "untrained control 0.080" in page
    assert "no entries" not in page


def test_the_demo_shows_cells_of_both_shipped_models(tmp_path):
    r = ok(run("demo", "-o", tmp_path / "d", "-q"))
    assert "prose:" in r.output and "C code:" in r.output
    page = (tmp_path / "d" / "cells.html").read_text(encoding="utf-8")
    groups = re.findall(r'<h2 id="g\d+">([^<]+)</h2>', page)
    assert "prose: in_quote" in groups                          # the quote cell
    assert any(g.startswith("C code: ") for g in groups)       # and at least one cell of the C model
    for part in ("demo_passage", "demo_code"):
        assert (tmp_path / "d" / f"{part}.rec" / "manifest.json").is_file()
        assert (tmp_path / "d" / f"{part}.scan.json").is_file()
