"""Static HTML export: colour bins, escaping, exact round trip, hover titles, gallery, atomic writes."""
import os
import re
from html.parser import HTMLParser

import numpy as np
import pytest

from interpret.export.gallery_html import gallery_page
from interpret.export.html import N_BINS, NAN_BIN, colour_bins, unit_page, write_html

MID = N_BINS // 2
EVIL = '<script>alert(1)</script> &amp; "quoted" \'single\' "><img src=x onerror=alert(1)>'


class Page(HTMLParser):
    """Collect each excerpt's text and its spans (class, title, text), and every tag seen."""

    def __init__(self, html):
        super().__init__(convert_charrefs=True)
        self.excerpts, self.spans, self.tags, self.headings = [], [], [], []
        self._depth = 0  # nesting depth inside the current excerpt div, 0 = outside
        self._span = None
        self._heading = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if self._depth:
            self._depth += 1
            if tag == "i":  # one <i> per run of same-colour characters
                self._span = [a.get("class"), a.get("title"), ""]
                self.spans[-1].append(self._span)
        elif tag == "div" and a.get("class") == "excerpt":
            self._depth = 1
            self.excerpts.append("")
            self.spans.append([])
        if tag in ("h1", "h2", "h3"):
            self._heading = ""

    def handle_endtag(self, tag):
        if self._depth:
            self._depth -= 1
            self._span = None
        if tag in ("h1", "h2", "h3") and self._heading is not None:
            self.headings.append(self._heading)
            self._heading = None

    def handle_data(self, data):
        if self._depth:
            self.excerpts[-1] += data
            if self._span is not None:
                self._span[2] += data
        if self._heading is not None:
            self._heading += data


def smooth_noise(n, seed=0):
    """Activation-like values in (-1, 1): smoothed Gaussian noise through tanh."""
    x = np.random.default_rng(seed).standard_normal(n + 9)
    return np.tanh(np.convolve(x, np.ones(10) / np.sqrt(10), "valid")[:n])


def assert_inert(page):
    """No script, no external resource, no injected element or attribute."""
    low = page.lower()
    assert "<script" not in low
    assert "<img" not in low
    assert "http://" not in low and "https://" not in low
    for tag, attrs in Page(page).tags:
        assert tag not in ("script", "img", "link", "iframe")
        assert not any(k.startswith("on") for k in attrs)


# colour_bins

def test_colour_bins_ends_middle_and_clipping():
    b = colour_bins([-1.0, 0.0, 1.0, -7.5, 3.0, -0.0])
    assert b.tolist() == [0, MID, N_BINS - 1, 0, N_BINS - 1, MID]


def test_colour_bins_nan_and_monotone():
    v = np.linspace(-1.2, 1.2, 1001)
    b = colour_bins(v)
    assert np.all(np.diff(b) >= 0) and set(b.tolist()) == set(range(N_BINS))
    assert colour_bins([np.nan, 0.5]).tolist() == [NAN_BIN, colour_bins([0.5])[0]]


def test_colour_bins_small_values_are_white_and_even_bins_refused():
    assert set(colour_bins([-0.04, 0.04], 21).tolist()) == {10}
    assert colour_bins([-1, 0, 1], 3).tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="odd"):
        colour_bins([0.0], 20)


def test_white_bin_is_pure_white_and_ends_are_red_and_blue():
    page = unit_page("a", [0.0])
    assert f".b{MID}{{background-color:#ffffff}}" in page
    r, g, b = (int(page.split(".b0{background-color:#")[1][i:i + 2], 16) for i in (0, 2, 4))
    assert r > 150 and g < 100 and b < 100
    r, g, b = (int(page.split(f".b{N_BINS - 1}{{background-color:#")[1][i:i + 2], 16) for i in (0, 2, 4))
    assert b > 150 and r < 100


# round trip and merged runs

def test_round_trip_exact_text_with_whitespace_unicode_and_emoji():
    text = "\n  leading newline\tand tab\n\n\"quote\" café — 日本語 🙂👍🏽\r\nCRLF  \n"
    p = Page(unit_page(text, smooth_noise(len(text))))
    assert p.excerpts == [text]
    assert "".join(s[2] for s in p.spans[0]) == text


def test_merged_runs_on_hand_made_example():
    p = Page(unit_page("abcdef", [0.9, 0.9, 0.9, -0.9, 0.0, 0.0], start=100))
    spans = p.spans[0]
    b_pos, b_neg = colour_bins([0.9, -0.9]).tolist()
    assert [(c, t, s) for c, t, s in spans] == [
        (f"b{b_pos}", "100–102: 0.900", "abc"),
        (f"b{b_neg}", "103: -0.900", "d"),
        (f"b{MID}", "104–105: 0.000", "ef"),
    ]


def test_run_title_gives_min_and_max():
    p = Page(unit_page("xyz", [0.51, 0.54, 0.52], start=7))
    assert [(s[1], s[2]) for s in p.spans[0]] == [("7–9: 0.510 … 0.540", "xyz")]


def test_newline_inside_a_run_survives():
    p = Page(unit_page("ab\ncd\n", [0.3] * 6))
    assert len(p.spans[0]) == 1 and p.spans[0][0][2] == "ab\ncd\n"
    assert "white-space:pre-wrap" in unit_page("a", [0.0])


def test_hover_titles_use_absolute_positions_and_3_decimals():
    text = "hello world"
    v = np.linspace(-1, 1, len(text))
    p = Page(unit_page(text, v, start=1042))
    titles = [s[1] for s in p.spans[0]]
    assert titles[0].startswith("1042") and titles[-1].startswith("1052")
    assert titles[0] == "1042: -1.000" and titles[-1] == "1052: 1.000"
    for t in titles:
        assert t.split(": ")[1].replace(" … ", "").replace("-", "").replace(".", "").isdigit()


def test_nan_gets_grey_class_and_na_title():
    p = Page(unit_page("abc", [0.2, np.nan, np.nan], start=5))
    assert p.spans[0][-1][:3] == ["bn", "6–7: n/a", "bc"]
    assert ".bn{background-color:" in unit_page("a", [np.nan])


def test_negative_zero_is_shown_as_zero():
    p = Page(unit_page("a", [-0.0001]))
    assert p.spans[0][0][1] == "0: 0.000"


def test_tanh_maps_values_and_says_so():
    page = unit_page("ab", [5.0, -0.2], tanh=True, legend="cell state c")
    p = Page(page)
    assert p.spans[0][0][1] == f"0: {np.tanh(5.0):.3f}"
    assert "tanh of cell state c" in page


def test_length_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="3 characters"):
        unit_page("abc", [0.1, 0.2])


def test_empty_text():
    p = Page(unit_page("", []))
    assert p.excerpts == [""]


# escaping and self-containment

def test_evil_text_and_titles_are_escaped_and_round_trip():
    page = unit_page(EVIL, smooth_noise(len(EVIL)), title=EVIL, subtitle=EVIL, legend=EVIL)
    assert_inert(page)
    p = Page(page)
    assert p.excerpts == [EVIL]
    assert p.headings == [EVIL]
    assert "&lt;script&gt;" in page and "&amp;amp;" in page and "&quot;" in page and "&#x27;" in page


def test_page_is_self_contained_and_has_legend():
    page = unit_page("some text\n", smooth_noise(10))
    assert_inert(page)
    assert '<meta charset="utf-8">' in page and page.count("<style>") == 1
    assert " style=" not in page  # classes, not inline styles
    assert "−1" in page and "+1" in page and "activation (h, tanh)" in page
    for k in range(N_BINS):
        assert f".b{k}{{" in page


# gallery

def entry(feature, unit, text, **kw):
    e = dict(feature=feature, unit=unit, layer=0, array="h", metric="AUROC", score=0.987, sign=1,
             q=0.001, beyond_char=0.12, text=text, values=smooth_noise(len(text), unit), start=500)
    e.update(kw)
    return e


def test_gallery_headings_scores_and_grouping_in_input_order():
    es = [entry("in_quote", 42, 'he said "hi" to me\n'),
          entry("line_pos", 7, "a line\nanother\n", metric="spearman_rho", score=0.97, sign=-1,
                pearson_r=-0.83, saturated=0.25),
          entry("in_quote", 3, 'x "y" z\n', score=0.765)]
    page = gallery_page(es, intro="three cells")
    p = Page(page)
    assert_inert(page)
    assert p.headings == ["interpret: interpretable cells", "in_quote", "in_quote — layer 0 h unit 42",
                          "in_quote — layer 0 h unit 3", "line_pos", "line_pos — layer 0 h unit 7"]
    assert p.excerpts == [es[0]["text"], es[2]["text"], es[1]["text"]]
    for s in ("AUROC 0.987", "AUROC 0.765", "spearman_rho 0.970", "sign −", "q 0.001",
              "beyond char 0.120", "Pearson r -0.830", "saturated 0.250"):
        assert s in page
    assert page.count("Pearson r") == 1 and page.count("saturated") == 1   # only where given


def test_gallery_binary_feature_track_underlines_where_feature_is_one():
    text = 'ab "cd" ef'
    fv = np.array([c == '"' or 3 <= i <= 6 for i, c in enumerate(text)], dtype=float)
    page = gallery_page([entry("in_quote", 1, text, values=np.zeros(len(text)), feature_values=fv,
                               start=0)])
    spans = Page(page).spans[0]
    tracked = "".join(s[2] for s in spans if "f" in s[0].split())
    assert tracked == '"cd"'
    assert all(s[1].endswith(" · in_quote") for s in spans if "f" in s[0].split())
    assert ".f{background-image:" in page
    assert not re.search(r"\.b\w+\{background:", page)  # the shorthand would reset the track's image


def test_gallery_non_binary_feature_draws_no_track():
    text = "abc"
    page = gallery_page([entry("line_pos", 1, text, feature_values=[0, 1, 2])])
    assert all("f" not in s[0].split() for s in Page(page).spans[0])


def test_gallery_escapes_feature_names_and_stats():
    page = gallery_page([entry(EVIL, 1, EVIL, metric=EVIL, feature_values=np.ones(len(EVIL)))],
                        title=EVIL, intro=EVIL)
    assert_inert(page)
    p = Page(page)
    assert p.excerpts == [EVIL]
    assert f"{EVIL} — layer 0 h unit 1" in p.headings


def test_gallery_missing_key_is_a_clear_error():
    e = entry("in_quote", 1, "abc")
    del e["values"]
    with pytest.raises(ValueError, match="missing keys \\['values'\\]"):
        gallery_page([e])


# atomic writes

def leftovers(folder):
    return sorted(f for f in os.listdir(folder) if f.endswith(".tmp"))


def test_write_html_writes_utf8(tmp_path):
    target = tmp_path / "page.html"
    page = unit_page("héllo 🙂\n", [0.1] * 8)
    write_html(target, page)
    assert target.read_text(encoding="utf-8") == page
    assert leftovers(tmp_path) == []


def test_write_html_failure_keeps_old_file_and_leaves_nothing(tmp_path):
    target = tmp_path / "page.html"
    target.write_text("old", encoding="utf-8")
    with pytest.raises(TypeError, match="str"):
        write_html(target, b"<html>")
    with pytest.raises(UnicodeEncodeError):
        write_html(target, "bad \udc80 surrogate")  # fails midway, after the temp file exists
    assert target.read_text(encoding="utf-8") == "old"
    assert os.listdir(tmp_path) == ["page.html"]


def test_write_html_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_html(tmp_path / "nope" / "page.html", "<html></html>")
    assert os.listdir(tmp_path) == []


def test_trace_svg_draws_the_unit_the_feature_and_line_ends():
    from interpret.export.gallery_html import TRACE_H, TRACE_W, trace_svg
    text = "ab\ncd\n"
    v = np.array([1.0, 0.0, -1.0, 0.5, np.nan, 3.0])  # NaN draws at 0, 3 clips to +1
    svg = trace_svg(v, text, feature=[0, 1, 2, 0, 1, 2], feature_label='depth <"x">')
    unit = re.search(r'class="unit" points="([^"]+)"', svg).group(1).split()
    pts = np.array([p.split(",") for p in unit], dtype=float)
    np.testing.assert_allclose(pts[:, 0], np.arange(6) * TRACE_W / 5, atol=0.05)
    np.testing.assert_allclose(pts[:, 1], [0, TRACE_H / 2, TRACE_H, TRACE_H / 4, TRACE_H / 2, 0], atol=0.05)
    feat = re.search(r'class="feat" points="([^"]+)"', svg).group(1).split()
    fy = [float(p.split(",")[1]) for p in feat]
    assert fy[0] == fy[3] == TRACE_H - 4 and fy[2] == fy[5] == 4.0  # 0 at the bottom, the max at the top
    ticks = re.search(r'class="eol" d="([^"]+)"', svg).group(1)
    assert ticks == f"M{2 * TRACE_W / 5:.1f} 0V{TRACE_H}M{5 * TRACE_W / 5:.1f} 0V{TRACE_H}"
    assert '<"x">' not in svg and "&lt;&quot;x&quot;&gt;" in svg
    assert trace_svg([0.5], "a") == ""
