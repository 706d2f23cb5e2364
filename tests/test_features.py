"""Features: hand-written ground truth, alignment conventions, evaluate(), user features."""

import numpy as np
import pytest

from interpret import features as F
from interpret.features import FEATURES, Feature, evaluate, get_features, load_feature_file, regex_feature

from conftest import CORPORA


def run(name, text):
    return FEATURES[name].func(text).tolist()


def run_array(name, text):
    return FEATURES[name].func(text)


# ---- prose and layout ----------------------------------------------------------------------

def test_in_quote_opening_inside_closing_outside():
    #                      a     "  b  "  _  c
    assert run("in_quote", 'a "b" c') == [0, 0, 1, 1, 0, 0, 0]


def test_in_quote_resets_at_blank_line_after_unclosed_paragraph():
    text = '"ab\n' + "\n" + '"cd\n' + " \t\n" + 'e "f" g'
    expected = [1, 1, 1, 1] + [0] + [1, 1, 1, 1] + [0, 0, 0] + [0, 0, 1, 1, 0, 0, 0]
    assert run("in_quote", text) == expected


def test_in_quote_resets_with_crlf_blank_line():
    text = '"ab\r\n\r\n"c"'
    assert run("in_quote", text) == [1, 1, 1, 1, 1, 0, 0, 1, 1, 0]


def test_in_quote_single_newline_does_not_reset():
    assert run("in_quote", '"a\nb"c') == [1, 1, 1, 1, 0, 0]


@pytest.mark.skipif(not (CORPORA / "warandpeace.txt").exists(), reason="corpus not present")
@pytest.mark.parametrize("open_, close", [("\u201c", "\u201d"), ("\u00ab", "\u00bb"), ("\u300c", "\u300d"),
                                          ("\u300e", "\u300f")])
def test_in_quote_paired_styles(open_, close):
    assert run("in_quote", f"a {open_}b{close} c") == [0, 0, 1, 1, 0, 0, 0]
    # nested marks stay inside until the outer closer; a stray closer is ignored
    assert run("in_quote", f"{close}{open_}x{open_}y{close}z{close}w") == [0, 1, 1, 1, 1, 1, 1, 0, 0]
    # a paragraph left open does not leak past the blank line
    assert run("in_quote", f"{open_}a\n\nb") == [1, 1, 1, 0, 0]


def test_in_quote_mixed_styles_and_chinese():
    text = '他说：「你好。」她答："好"。'
    expected = [0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0]  # 「你好。」 and "好"
    assert run("in_quote", text) == expected
    assert run("in_quote", "\u201ea\u201c b") == [0, 0, 1, 1, 1]  # German low-high quotes are not paired (documented)


def test_in_quote_on_war_and_peace(corpora):
    text = (corpora / "warandpeace.txt").read_text(encoding="utf-8")
    inside = run_array("in_quote", text)
    assert 0.12 < inside.mean() < 0.30  # the corpus README: about 20%
    assert inside[int(0.9 * len(text)):].mean() < 0.5  # no inversion that lasts to the end


def test_position_in_line_lf_crlf_and_lone_cr():
    assert run("position_in_line", "ab\ncd") == [0, 1, 2, 0, 1]
    assert run("position_in_line", "ab\r\ncd") == [0, 1, 2, 2, 0, 1]
    assert run("position_in_line", "ab\rc") == [0, 1, 2, 0]
    assert run("position_in_line", "\n\r\n\r") == [0, 0, 0, 0]


def test_line_length_and_chars_to_line_end():
    assert run("line_length", "ab\ncde") == [2, 2, 2, 3, 3, 3]
    assert run("line_length", "ab\r\nc\rde") == [2, 2, 2, 2, 1, 1, 2, 2]
    assert run("chars_to_line_end", "ab\ncde") == [2, 1, 0, 3, 2, 1]
    assert run("chars_to_line_end", "a\r\nb") == [1, 0, 0, 1]


def _line_reference(text):
    """Plain per-char loop: (column, line length, chars to end) with \\r\\n as one break."""
    lines, cur = [], []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in "\r\n":
            k = 2 if text.startswith("\r\n", i) else 1
            lines.append((cur, k))
            cur, i = [], i + k
        else:
            cur.append(ch)
            i += 1
    lines.append((cur, 0))
    col, length, to_end = [], [], []
    for content, k in lines:
        n = len(content)
        for j in range(n + k):
            col.append(min(j, n))
            length.append(n)
            to_end.append(n - min(j, n))
    return col, length, to_end


def test_line_features_match_a_plain_loop_on_random_text():
    rng = np.random.default_rng(0)
    text = "".join(rng.choice(list("ab \t\r\n"), size=2000))
    col, length, to_end = _line_reference(text)
    assert run("position_in_line", text) == col
    assert run("line_length", text) == length
    assert run("chars_to_line_end", text) == to_end


def test_word_position():
    assert run("word_position", "ab c-d") == [1, 2, 0, 1, 0, 1]


def test_indent_level_tabs_and_spaces():
    text = "\tx\n" + "  y\n" + " \tz\n" + "\n" + "a\tb\n" + "   "
    expected = [8, 8, 8] + [2, 2, 2, 2] + [8, 8, 8, 8] + [0] + [0, 0, 0, 0] + [3, 3, 3]
    assert run("indent_level", text) == expected
    assert run("indent_level", "  a\r\n\tb") == [2, 2, 2, 2, 2, 8, 8]


# ---- brackets ------------------------------------------------------------------------------

def test_bracket_depths_nested_and_interleaved():
    text = "(a[b)c]{"
    assert run("bracket_depth", text) == [1, 1, 2, 2, 1, 1, 0, 1]
    assert run("paren_depth", text) == [1, 1, 1, 1, 0, 0, 0, 0]
    assert run("square_depth", text) == [0, 0, 1, 1, 1, 1, 0, 0]
    assert run("curly_depth", text) == [0, 0, 0, 0, 0, 0, 0, 1]


def test_bracket_depth_ignores_unmatched_closers():
    assert run("bracket_depth", "))(a)]") == [0, 0, 1, 1, 0, 0]
    assert run("in_parens", "x(y)z)") == [0, 1, 1, 0, 0, 0]


def test_depth_matches_a_clamped_loop():
    rng = np.random.default_rng(1)
    text = "".join(rng.choice(list("(()x)"), size=3000))
    depth, expected = 0, []
    for ch in text:
        depth = depth + 1 if ch == "(" else max(depth - 1, 0) if ch == ")" else depth
        expected.append(depth)
    assert run("paren_depth", text) == expected


def test_code_depth_skips_strings_and_comments():
    text = 'f("(", x) /* { */ [1]'
    expected = [0, 1, 1, 1, 1, 1, 1, 1, 0] + [0] * 9 + [1, 1, 0]
    assert run("code_depth", text) == expected


# ---- comments, strings, if-conditions ------------------------------------------------------

def test_c_comments_block_spans_lines_and_line_comment_stops_before_newline():
    text = "a/*b\nc*/d // e\nf"
    assert run("in_comment", text) == [0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 0]
    assert run("in_comment_c", text) == run("in_comment", text)


def test_comment_marker_inside_string_is_not_a_comment():
    text = 'x = "a//b"; // c'
    assert run("in_comment", text) == [0] * 12 + [1] * 4
    assert run("in_string", text) == [0] * 4 + [1] * 6 + [0] * 6


def test_quotes_inside_comment_do_not_start_strings():
    text = "// don't \"x\"\ny = \"z\";"
    assert run("in_comment", text) == [1] * 12 + [0] * 9
    assert run("in_string", text) == [0] * 12 + [0] * 5 + [1, 1, 1] + [0]
    assert run("in_comment", "/* \" */ x") == [1] * 7 + [0, 0]


def test_include_is_c_and_hash_comments_are_python():
    c_text = '#include <a.h>\nint x; // c\n'
    assert F.comment_style(c_text) == "c"
    assert run("in_comment", c_text) == [0] * 15 + [0] * 7 + [1] * 4 + [0]
    assert run("in_comment_hash", c_text) == [1] * 14 + [0] * 13

    py_text = 'x = 1  # n\n# w\ny = "#"\n'
    assert F.comment_style(py_text) == "hash"
    assert run("in_comment", py_text) == [0] * 7 + [1] * 3 + [0] + [1] * 3 + [0] + [0] * 8
    assert run("in_string", py_text) == [0] * 19 + [1, 1, 1] + [0]
    assert F.comment_style("# a\nx = a // 2\n") == "hash"  # floor division is not a C comment


def test_string_escapes():
    assert run("in_string", 'a "b\\"c" d') == [0, 0, 1, 1, 1, 1, 1, 1, 0, 0]
    assert run("in_string", '"\\\\" x') == [1, 1, 1, 1, 0, 0]  # \\ does not escape the quote
    assert run("in_string", "c = '\\'';") == [0, 0, 0, 0, 1, 1, 1, 1, 0]


def test_unterminated_string_ends_at_newline():
    assert run("in_string", '"ab\ncd "e"') == [1, 1, 1, 0, 0, 0, 0, 1, 1, 1]


def test_if_condition_with_nested_parens():
    text = "if (a(b) && c) x;"
    assert run("in_if_condition", text) == [0, 0, 0] + [1] * 11 + [0, 0, 0]


def test_else_if_and_multiline_condition():
    text = "} else if (y &&\n z) {"
    assert run("in_if_condition", text) == [0] * 10 + [1] * 9 + [0, 0]


def test_if_condition_not_matched_for_preprocessor_and_identifiers():
    text = "#if (X)\n# if (Y)\n#ifdef Z\nnotif(z);\nelif (w):\nifx (v)\n"
    assert F.comment_style(text) == "c"
    assert run("in_if_condition", text) == [0] * len(text)


def test_if_condition_ignores_parens_in_strings_and_comments():
    assert run("in_if_condition", 'if (s == ")") y') == [0] * 3 + [1] * 10 + [0, 0]
    assert run("in_if_condition", "if (x /* ) */) y") == [0] * 3 + [1] * 11 + [0, 0]
    assert run("in_if_condition", '"if (x)"; // if (y)') == [0] * 19


def test_unclosed_if_condition_stops_before_semicolon():
    assert run("in_if_condition", "if (a;\nb)") == [0, 0, 0, 1, 1, 0, 0, 0, 0]


# ---- every feature, metadata ---------------------------------------------------------------

@pytest.mark.parametrize("text", ["", "abc", "\n\n\n", "\r\r\n", '"(', "if ("])
@pytest.mark.parametrize("name", list(FEATURES))
def test_every_feature_returns_one_finite_value_per_char(name, text):
    values = evaluate(FEATURES[name], text)
    assert values.shape == (len(text),) and values.dtype == np.float64
    assert FEATURES[name].func(text).shape == (len(text),)


REQUIRED = {  # name: (type, causal, domain)
    "in_quote": ("binary", True, "prose"), "position_in_line": ("ordinal", True, "any"),
    "line_length": ("ordinal", False, "any"), "chars_to_line_end": ("ordinal", False, "any"),
    "bracket_depth": ("ordinal", True, "any"), "paren_depth": ("ordinal", True, "any"),
    "square_depth": ("ordinal", True, "any"), "curly_depth": ("ordinal", True, "any"),
    "in_comment": ("binary", True, "code"), "in_comment_c": ("binary", True, "code"),
    "in_comment_hash": ("binary", True, "code"), "in_string": ("binary", True, "code"),
    "in_if_condition": ("binary", True, "code"), "indent_level": ("ordinal", False, "code"),
}


def test_registry_metadata():
    for name, (ftype, causal, domain) in REQUIRED.items():
        f = FEATURES[name]
        assert (f.type, f.causal, f.domain) == (ftype, causal, domain), name
    for name, f in FEATURES.items():
        assert f.name == name and f.type in F.TYPES and f.domain in F.DOMAINS
        assert isinstance(f.causal, bool) and f.description and "\n" not in f.description


def test_register_into_a_given_registry_and_bad_type():
    reg = {}

    @F.register(type="continuous", causal=False, registry=reg)
    def twice(text):
        """Twice the column."""
        return np.zeros(len(text))

    assert list(reg) == ["twice"] and reg["twice"].description == "Twice the column."
    assert "twice" not in FEATURES
    with pytest.raises(ValueError, match="type 'bool'"):
        F.register(type="bool", causal=True)
    older = {}  # feature files written for kind= still load
    F.register("older", kind="ordinal", causal=True, registry=older)(len)
    assert older["older"].type == "ordinal"


# ---- evaluate ------------------------------------------------------------------------------

def test_evaluate_resets_state_at_doc_starts():
    text = '"ab' + '"cd'
    assert evaluate(FEATURES["in_quote"], text).tolist() == [1, 1, 1, 0, 0, 0]
    assert evaluate(FEATURES["in_quote"], text, doc_starts=[0, 3]).tolist() == [1] * 6
    assert evaluate(FEATURES["paren_depth"], "((" + "a)", doc_starts=np.array([0, 2])).tolist() == [1, 2, 0, 0]


def test_evaluate_rejects_bad_doc_starts():
    with pytest.raises(ValueError, match="doc_starts"):
        evaluate(FEATURES["in_quote"], "abc", doc_starts=[1])
    with pytest.raises(ValueError, match="doc_starts"):
        evaluate(FEATURES["in_quote"], "abc", doc_starts=[0, 5])


def user(func, type="continuous"):
    return Feature("mine", func, type, False, "any", "test feature")


def test_evaluate_rejects_wrong_length_nan_and_non_binary():
    with pytest.raises(ValueError, match=r"'mine'.*shape \(4,\).*3 characters"):
        evaluate(user(lambda t: np.zeros(len(t) + 1)), "abc")
    with pytest.raises(ValueError, match=r"'mine'.*shape \(3, 1\)"):
        evaluate(user(lambda t: np.zeros((len(t), 1))), "abc")
    with pytest.raises(ValueError, match=r"'mine' returned nan at position 1"):
        evaluate(user(lambda t: np.array([0.0, np.nan, 1.0])), "abc")
    with pytest.raises(ValueError, match=r"binary feature 'mine' returned 2"):
        evaluate(user(lambda t: np.full(len(t), 2), type="binary"), "abc")


def test_evaluate_wraps_user_errors_and_casts_bools():
    def boom(text):
        raise RuntimeError("boom")

    with pytest.raises(ValueError, match=r"feature 'mine' failed: boom"):
        evaluate(user(boom), "ab")
    out = evaluate(user(lambda t: np.array([c == "a" for c in t]), type="binary"), "aba")
    assert out.dtype == np.float64 and out.tolist() == [1, 0, 1]


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_evaluate_all_is_evaluate_in_turn(workers):
    text = 'if (a) { "b" } // c\n' * 50 + "x = (1 + [2])\n" * 30
    starts = [0, 400]
    feats = get_features(None)
    for compact in (False, True):
        got = F.evaluate_all(feats, text, starts, compact, workers=workers)
        assert len(got) == len(feats)
        for f, values in zip(feats, got):
            want = evaluate(f, text, starts, compact)
            assert values.dtype == want.dtype and np.array_equal(values, want), f.name


def test_evaluate_all_raises_for_the_first_bad_feature_in_the_list():
    def boom(text):
        raise RuntimeError("boom")

    bad_nan = Feature("nan_one", lambda t: np.full(len(t), np.nan), "continuous", False, "any", "")
    feats = [FEATURES["in_quote"], user(boom), bad_nan]
    with pytest.raises(ValueError, match=r"feature 'mine' failed: boom"):
        F.evaluate_all(feats, "abc", workers=2)
    with pytest.raises(ValueError, match=r"'nan_one' returned nan"):
        F.evaluate_all(feats[::2], "abc", workers=2)


# ---- regex features ------------------------------------------------------------------------

def test_regex_feature_marks_matches():
    f = regex_feature("digits=[0-9]+")
    assert (f.name, f.type, f.causal) == ("digits", "binary", False)
    assert evaluate(f, "a12b3").tolist() == [0, 1, 1, 0, 1]
    assert regex_feature("start=^x").func("x\nx").tolist() == [1, 0, 1]  # MULTILINE
    assert regex_feature("as=a*").func("bab").tolist() == [0, 1, 0]  # empty matches mark nothing


@pytest.mark.parametrize("spec, match", [
    ("nodelimiter", "NAME=PATTERN"), ("=abc", "NAME=PATTERN"), ("x=", "NAME=PATTERN"),
    ("x=(", "invalid pattern"),
])
def test_regex_feature_bad_specs(spec, match):
    with pytest.raises(ValueError, match=match) as info:
        regex_feature(spec)
    assert repr(spec) in str(info.value)


# ---- feature files and get_features --------------------------------------------------------

GOOD_FILE = '''
import numpy as np
from interpret.features import register

@register(type="binary", causal=True, domain="prose", description="a vowel")
def vowel(text):
    return np.array([c in "aeiou" for c in text])

def feature_code_point(text):
    """The code point."""
    return np.array([ord(c) for c in text], dtype=float)

def helper(text):
    return 0
'''


def test_load_feature_file_decorated_and_prefixed(tmp_path):
    path = tmp_path / "mine.py"
    path.write_text(GOOD_FILE)
    feats = load_feature_file(path)
    assert [f.name for f in feats] == ["vowel", "code_point"]
    vowel, cp = feats
    assert (vowel.type, vowel.causal, vowel.domain, vowel.description) == ("binary", True, "prose", "a vowel")
    assert (cp.type, cp.causal, cp.domain, cp.description) == ("continuous", False, "any", "The code point.")
    assert evaluate(vowel, "bab").tolist() == [0, 1, 0]
    assert evaluate(cp, "ab").tolist() == [97, 98]
    assert "vowel" not in FEATURES  # the file's features go to its own registry
    assert [f.name for f in get_features(["vowel", "in_quote"], extra=feats)] == ["vowel", "in_quote"]


@pytest.mark.parametrize("source, match", [
    ("raise RuntimeError('nope')\n", "raised RuntimeError while loading: nope"),
    ("def (:\n", "syntax error on line 1"),
    ("x = 1\n", "defines no features"),
])
def test_load_feature_file_errors(tmp_path, source, match):
    path = tmp_path / "bad.py"
    path.write_text(source)
    with pytest.raises(ValueError, match=match):
        load_feature_file(path)
    # the registry swap is undone: a feature registered now goes into FEATURES again
    F.register("_after_failed_load", type="binary", causal=True)(lambda text: np.zeros(len(text)))
    try:
        assert "_after_failed_load" in F.FEATURES
    finally:
        del F.FEATURES["_after_failed_load"]


def test_load_feature_file_missing(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_feature_file(tmp_path / "nope.py")


def test_get_features():
    assert [f.name for f in get_features()] == list(FEATURES)
    assert [f.name for f in get_features(["line_length", "in_quote"])] == ["line_length", "in_quote"]
    assert [f.name for f in get_features(["in_quote, line_length", "in_quote"])] == ["in_quote", "line_length"]
    with pytest.raises(ValueError) as info:
        get_features(["foo"])
    assert str(info.value) == (f"unknown feature 'foo'; known: {', '.join(FEATURES)}; "
                               "`interpret features` lists them")
    with pytest.raises(ValueError, match="'in_quote' is defined twice"):
        get_features(extra=[Feature("in_quote", len, "binary", True, "any", "clash")])


def test_compact_evaluation_keeps_binary_features_in_one_byte_and_checks_every_document():
    text = 'a "b" c\n"dd" e\n' * 3
    starts = [0, 7, 20]
    full = evaluate(FEATURES["in_quote"], text, starts)
    small = evaluate(FEATURES["in_quote"], text, starts, compact=True)
    assert small.dtype == np.uint8 and np.array_equal(small, full) and full.sum() > 0
    assert evaluate(FEATURES["position_in_line"], text, starts, compact=True).dtype == np.float64
    nan_late = Feature("nan_late", lambda d: np.where(np.arange(len(d)) % 5 == 4, np.nan, 0.0),
                       "continuous", True, "any", "")
    with pytest.raises(ValueError, match=r"returned nan at position 4 \(8 non-finite values\)"):
        evaluate(nan_late, text, starts, compact=True)   # counted over every document
    two = Feature("two", lambda d: np.full(len(d), 2.0), "binary", True, "any", "")
    with pytest.raises(ValueError, match="binary feature 'two' returned 2.0"):
        evaluate(two, text, starts, compact=True)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 40])
def test_long_documents_evaluated_in_pieces_equal_the_whole(size, monkeypatch):
    """Every built-in cut where its split allows, pieces evaluated alone (or carried) == whole."""
    import random
    from interpret.features import registry
    monkeypatch.setattr(registry, "PIECE", size)
    parts = ['"', "\n", "\r", "\r\n", " ", "\t", "(", ")", "[", "]", "{", "}", "ab", "é", "\U0001F600",
             "\n\n", "\n \n", "\n\t\r\n", "/*", "*/", "//", "#", "if (", "'"]
    rng = random.Random(size)
    checked = 0
    for _ in range(60):
        text = "".join(rng.choice(parts) for _ in range(rng.randint(1, 120)))
        for f in F.FEATURES.values():
            got = np.empty(len(text))
            F.evaluate_documents([f], [(0, text)], [got])
            np.testing.assert_array_equal(got, f.func(text), err_msg=f"{f.name} {text!r}")
            n_pieces = len(F.pieces(text, f.split))
            assert f.split != "any" or n_pieces == -(-len(text) // size)
            checked += n_pieces > 1
    assert checked > 500                                            # really cut, many times


def test_pieces_cut_only_where_the_split_allows():
    text = 'ab\ncd\n\nef "g"\n \r\nhi\rjk\n'
    for split, want in [("document", [0]), ("any", [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22]),
                        ("line", [0, 3, 6, 14, 17]), ("paragraph", [0, 7, 17])]:
        got = [a for a, _ in F.pieces(text, split, size=2)]
        assert got == want, split
        assert F.pieces(text, split, size=2)[-1][1] == len(text)


def test_a_split_is_checked_when_a_feature_is_registered():
    for split, carry in [("sentence", None), ("any", None), ("line", lambda t, s: (t, s))]:
        with pytest.raises(ValueError, match="feature split"):
            F.register("x", type="binary", causal=True, split=split, carry=carry, registry={})(len)
