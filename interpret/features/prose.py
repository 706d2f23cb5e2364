"""Prose and layout features (quotes, lines, words, indentation, brackets), registered in this order."""
import re

import numpy as np

from interpret.features.registry import register
from interpret.features.spans import as_values, code_points, depth_after, depth_carry, line_bounds, spans_mask

# ---- prose and layout ----------------------------------------------------------------------

BLANK = (9, 11, 12, 32)  # tab, vertical tab, form feed, space


# paired quotation marks, opener -> closer: English curly, guillemets, CJK corner brackets
PAIRED_QUOTES = {"\u201c": "\u201d", "\u00ab": "\u00bb", "\u300c": "\u300d", "\u300e": "\u300f"}


@register(type="binary", causal=True, domain="prose", split="paragraph",
          description="inside double quotes: straight \" \" or paired \u201c \u201d, \u00ab \u00bb, "
                      "\u300c \u300d, \u300e \u300f; resets to outside at each blank line")
def in_quote(text):
    """1 from an opening quote (inclusive) to its closing quote (exclusive: after reading it we are out).

    Straight quotes '"' toggle; paired marks nest (an unmatched closer is ignored). Quotes pair
    up within a paragraph: every char of a blank line (empty or only spaces/tabs) is 0 and
    pairing restarts after it, so a paragraph that leaves a quote open (War and Peace reopens a
    multi-paragraph quote on each new paragraph) cannot invert the rest of the text.
    """
    codes = code_points(text)
    line, _, _, term = line_bounds(codes)
    blank = np.bincount(line, weights=~term & ~np.isin(codes, BLANK))[line] == 0  # per char: on a blank line
    quotes = np.cumsum(codes == 34)
    base = np.maximum.accumulate(np.where(blank, quotes, 0))  # quotes before the last blank line
    inside = (quotes - base) % 2 == 1
    opens = [ord(c) for c in PAIRED_QUOTES]
    if np.isin(codes, opens).any():
        inside |= _paired_depth(codes, blank, opens, [ord(c) for c in PAIRED_QUOTES.values()]) > 0
    return as_values(inside)


def _paired_depth(codes, blank, opens, closes):
    """Nesting depth of paired marks, restarting from 0 after every run of blank-line chars."""
    depth = np.zeros(len(codes), dtype=np.int64)
    cuts = np.flatnonzero(np.diff(blank.astype(np.int8)) != 0) + 1
    for a, b in zip(np.concatenate(([0], cuts)), np.append(cuts, len(codes))):  # paragraphs and gaps
        if not blank[a]:
            depth[a:b] = depth_after(codes[a:b], opens, closes)
    return depth


@register(type="ordinal", causal=True, domain="any", split="line",
          description="column of the character: 0 for the first character of a line")
def position_in_line(text):
    """Column of text[t], 0 for a line's first char; the terminator gets the line's length."""
    return as_values(line_bounds(code_points(text))[1])


@register(type="ordinal", causal=False, domain="any", split="line",
          description="length of the current line without its terminator")
def line_length(text):
    """Content length of text[t]'s line (terminator excluded); its terminator chars get it too."""
    return as_values(line_bounds(code_points(text))[2])


@register(type="ordinal", causal=False, domain="any", split="line",
          description="characters from this one to the end of the line")
def chars_to_line_end(text):
    """line_length - position_in_line: chars from text[t] (inclusive) to the terminator, which is 0."""
    _, column, length, _ = line_bounds(code_points(text))
    return as_values(length - column)


_WORD = re.compile(r"\w+")


@register(type="ordinal", causal=True, domain="prose", split="line",
          description="letters read so far in the current word (0 outside words)")
def word_position(text):
    """1 for a word's first char, 2 for its second, ...; 0 for non-word chars (word = regex \\w+)."""
    inside = spans_mask(len(text), [m.span() for m in _WORD.finditer(text)])
    count = np.cumsum(inside)
    return as_values(count - np.maximum.accumulate(np.where(inside, 0, count)))


_INDENT = re.compile(r"(?<![^\r\n])[ \t]+")  # leading blanks: at text start or after a line break


@register(type="ordinal", causal=False, domain="code", split="line",
          description="width of the current line's leading whitespace (tab stops every 8)")
def indent_level(text):
    """Width of the leading spaces/tabs of text[t]'s line, a tab advancing to the next multiple of 8.

    Every char of the line, terminator included, gets the same value; a blank line its own width.
    """
    line = line_bounds(code_points(text))[0]
    widths = np.zeros(int(line[-1]) + 1 if len(line) else 0)
    for m in _INDENT.finditer(text):
        widths[line[m.start()]] = len(m.group().expandtabs(8))
    return widths[line]


# ---- brackets ------------------------------------------------------------------------------

def _bracket_feature(name, opens, closes, what):
    @register(name, type="ordinal", causal=True, domain="any", split="any",
              carry=depth_carry(opens, closes),
              description=f"nesting depth of {what} after reading the character")
    def depth(text):
        """Depth after reading text[t]: an opener counts itself, its closer is back outside.

        Every bracket char counts, also in strings and comments (see code_depth for source code);
        unmatched closers are ignored, so it is never negative.
        """
        return as_values(depth_after(code_points(text), opens, closes))

    depth.__name__ = depth.__qualname__ = name

_bracket_feature("bracket_depth", (40, 91, 123), (41, 93, 125), "(), [] and {} combined")
_bracket_feature("paren_depth", (40,), (41,), "()")
_bracket_feature("square_depth", (91,), (93,), "[]")
_bracket_feature("curly_depth", (123,), (125,), "{}")


@register(type="binary", causal=True, domain="prose", split="any",
          carry=depth_carry((40,), (41,), test=True),
          description="inside parentheses (paren_depth > 0)")
def in_parens(text):
    """1 from '(' (inclusive) to its matching ')' (exclusive): paren_depth > 0."""
    return as_values(depth_after(code_points(text), (40,), (41,)) > 0)
