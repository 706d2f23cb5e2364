"""Per-character signals of source code: one C/Python lexer, and the code features built on it.

The lexer finds comments and string literals in one left-to-right pass; in_comment, in_comment_c,
in_comment_hash, code_depth, in_string and in_if_condition read its spans. Conventions (alignment,
float64 arrays, line breaks) are those of interpret.features, the one public entry point: import
from there. It imports this module at its end, so these features register after its own.
"""
import functools
import re

import numpy as np

from interpret.features.registry import register
from interpret.features.spans import as_values, code_points, depth_after, spans_mask

# ---- the lexer: comment style, comment and string-literal spans ----------------------------

_DIRECTIVE = re.compile(r"^[ \t]*#[ \t]*(?:include|define|if|ifdef|ifndef|endif|else|elif|pragma"
                        r"|undef|error|line)\b", re.MULTILINE)
_HASH_LINE = re.compile(r"^[ \t]*#", re.MULTILINE)
_C_COMMENT_LINE = re.compile(r"^[ \t]*(?://|/\*)", re.MULTILINE)
_TOKENS = {"c": re.compile(r"[\"']|//|/\*"), "hash": re.compile(r"[\"'#]")}
_STRING_STOP = {'"': re.compile(r'["\\\r\n]'), "'": re.compile(r"['\\\r\n]")}
_NEWLINE = re.compile(r"[\r\n]")


def comment_style(text):
    """'c' (// and /* */; # lines are preprocessor) or 'hash' (# to end of line), guessed from text."""
    directives = len(_DIRECTIVE.findall(text))
    other = len(_HASH_LINE.findall(text)) - directives
    if directives > other:
        return "c"
    # Python's // (floor division) never starts a line, so look for comment *lines* only
    if other and not _C_COMMENT_LINE.search(text):
        return "hash"
    return "hash" if "#" in text and "//" not in text and "/*" not in text else "c"


def _string_end(text, i, stop):
    """End (exclusive) of a literal whose body starts at i: past its closing quote, or at a newline."""
    while m := stop.search(text, i):
        if m.group() == "\\":
            i = m.end() + (2 if text.startswith("\r\n", m.end()) else 1)  # skip the escaped char
        elif m.group() in "\r\n":
            return m.start()  # unterminated: stop before the newline so the error cannot spread
        else:
            return m.end()
    return len(text)


@functools.lru_cache(maxsize=4)  # in_comment, in_string and in_if_condition lex the same text
def _lex(text, style):
    """(comment spans, string-literal spans) of text, lexed left to right in one pass."""
    comments, strings = [], []
    token, n, i = _TOKENS[style], len(text), 0
    while m := token.search(text, i):
        s, tok = m.start(), m.group()
        if tok == "/*":
            e = text.find("*/", s + 2)
            e = n if e < 0 else e + 2
            comments.append((s, e))
        elif tok in ("//", "#"):
            nl = _NEWLINE.search(text, s)
            e = nl.start() if nl else n  # the newline itself is no longer in the comment
            comments.append((s, e))
        else:
            e = _string_end(text, s + 1, _STRING_STOP[tok])
            strings.append((s, e))
        i = e
    return tuple(comments), tuple(strings)


# ---- code features: comments, strings, brackets in code, if-conditions ----------------------

def _comments(text, style):
    return as_values(spans_mask(len(text), _lex(text, style)[0]))


@register(type="binary", causal=True, domain="code",
          description="inside a comment (C or # style, guessed from the text)")
def in_comment(text):
    """1 inside a comment, delimiters included; the newline ending a // or # comment is 0.

    Style from comment_style(): C (// and /* */; #include etc. are code) or hash (# to line end).
    Causal but for one char: the '/' opening a C comment is marked though only the next reveals it.
    """
    return _comments(text, comment_style(text))


@register(type="binary", causal=True, domain="code", description="inside a C comment: // or /* */")
def in_comment_c(text):
    """in_comment with C style forced: // to line end and /* */, delimiters included."""
    return _comments(text, "c")


@register(type="binary", causal=True, domain="code", description="inside a # comment (Python, shell)")
def in_comment_hash(text):
    """in_comment with hash style forced: # to line end, the newline excluded."""
    return _comments(text, "hash")


def _code_mask(text):
    """(n,) bool: True for chars outside comments and string literals."""
    comments, strings = _lex(text, comment_style(text))
    return ~(spans_mask(len(text), comments) | spans_mask(len(text), strings))


@register(type="ordinal", causal=True, domain="code",
          description="nesting depth of (), [] and {} in code, skipping strings and comments")
def code_depth(text):
    """bracket_depth counting only brackets outside strings and comments (a '[' in "%s[" is text)."""
    return as_values(depth_after(np.where(_code_mask(text), code_points(text), 0), (40, 91, 123), (41, 93, 125)))


@register(type="binary", causal=True, domain="code",
          description="inside a string or char literal, quotes included")
def in_string(text):
    """1 inside "..." or '...' with backslash escapes, both quotes included; ends before a newline."""
    return as_values(spans_mask(len(text), _lex(text, comment_style(text))[1]))


_IF = re.compile(r"\bif\s*\(")


@register(type="binary", causal=True, domain="code",
          description="inside the parentheses of an if (...) condition")
def in_if_condition(text):
    """1 from the '(' after keyword `if` to its matching ')', both inclusive (also `else if`).

    Causal: the '(' is known once read, and so is the ')' that returns to its depth. Parens in
    strings/comments are skipped; `#if`, `ifdef`, `elif`, `notif(` are not conditions. An unclosed
    condition ends before the next ';' or '{' in code, which cannot sit inside one.
    """
    codes, n = code_points(text), len(text)
    code = _code_mask(text)
    depth = depth_after(np.where(code, codes, 0), (40,), (41,))
    closes = np.flatnonzero(code & (codes == 41))
    stops = np.flatnonzero(code & ((codes == 59) | (codes == 123)))
    order = np.argsort(depth[closes], kind="stable")  # group ')' positions by depth after them
    levels, first = np.unique(depth[closes][order], return_index=True)
    by_depth = dict(zip(levels.tolist(), np.split(closes[order], first[1:])))
    spans = []
    for m in _IF.finditer(text):
        p = m.end() - 1  # the '('
        j = m.start() - 1
        while j >= 0 and text[j] in " \t":
            j -= 1
        if not (code[m.start()] and code[p]) or (j >= 0 and text[j] == "#"):
            continue
        end, after = n, by_depth.get(int(depth[p]) - 1)
        if after is not None and (k := np.searchsorted(after, p, side="right")) < len(after):
            end = int(after[k]) + 1
        if (k := np.searchsorted(stops, p, side="right")) < len(stops):
            end = min(end, int(stops[k]))
        spans.append((p, end))
    return as_values(spans_mask(n, spans))
