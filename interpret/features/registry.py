"""Per-character signals computed from text alone, and the FEATURES registry.

Alignment: feature(text)[t] describes text[t] as the state *after reading* text[t], the same
index as row t of a Recording. Every feature returns a (len(text),) array.
Lines end at "\\n", "\\r\\n" (one break) or a lone "\\r"; terminator characters belong to the line
they end. Each feature's docstring states its exact convention.

The code features (a C/Python lexer for comments, strings and if-conditions) live in
code_features.py; this module imports them at its end and stays the one public entry point.
"""
import inspect
import re
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

KINDS = ("binary", "ordinal", "continuous")
DOMAINS = ("prose", "code", "any")
SPLITS = ("document", "line", "paragraph", "any")  # see Feature.split


@dataclass(frozen=True)
class Feature:
    """A per-character signal, func(text) -> (len(text),) array, and how to read it."""

    name: str
    func: Callable[[str], np.ndarray]
    kind: str  # "binary" | "ordinal" | "continuous"
    causal: bool  # knowable from text[:t+1] alone
    domain: str  # "prose" | "code" | "any"
    description: str  # one line, for `interpret features`
    # where a long document may be cut and each piece evaluated alone, with the same values:
    # "line" after any "\n", "paragraph" after a blank line, "any" anywhere when carry (text,
    # state) -> (values, state) continues from the state at the end of the previous piece
    # (None at a document's start); "document": nowhere (user features)
    split: str = "document"
    carry: Callable | None = None


FEATURES: dict[str, Feature] = {}
_loading = None  # the registry @register fills while load_feature_file runs a user's file


def register(name=None, *, kind, causal, domain="any", description="", registry=None,
             split="document", carry=None):
    """Decorator: record func as a Feature in registry (default FEATURES, or the file being loaded)."""
    if kind not in KINDS:
        raise ValueError(f"feature kind {kind!r} is not one of {', '.join(KINDS)}")
    if domain not in DOMAINS:
        raise ValueError(f"feature domain {domain!r} is not one of {', '.join(DOMAINS)}")
    if split not in SPLITS or (split == "any") != (carry is not None):
        raise ValueError(f"feature split {split!r} is not one of {', '.join(SPLITS)} (and 'any' "
                         "goes with a carry function, the others without)")

    def decorate(func):
        fname = name or func.__name__
        target = registry if registry is not None else _loading if _loading is not None else FEATURES
        if fname in target:
            raise ValueError(f"feature {fname!r} is registered twice; give one of them another name")
        doc = description or (func.__doc__ or "").strip().split("\n")[0]
        target[fname] = Feature(fname, func, kind, bool(causal), domain, doc, split, carry)
        return func

    return decorate


# ---- helpers on code points, lines and spans -----------------------------------------------

def _codes(text):
    """Code points of text, (n,) uint32."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")


def _spans_mask(n, spans):
    """(n,) bool, True inside any of the non-overlapping half-open spans [(start, end), ...]."""
    if not spans:
        return np.zeros(n, dtype=bool)
    start, end = np.asarray(spans, dtype=np.int64).T
    edges = np.bincount(start, minlength=n + 1) - np.bincount(end, minlength=n + 1)
    return np.cumsum(edges[:n]) > 0


def _lines(codes):
    """Per char: line index, column, content length of its line (without terminator), is-terminator."""
    n = len(codes)
    nl, cr = codes == 10, codes == 13
    cr_of_crlf = np.zeros(n, dtype=bool)
    cr_of_crlf[:-1] = cr[:-1] & nl[1:]  # "\r\n" is one break: it ends at the "\n"
    ends = nl | (cr & ~cr_of_crlf)
    term = nl | cr
    line = np.cumsum(ends) - ends  # (n,) breaks strictly before t
    starts = np.concatenate(([0], np.flatnonzero(ends) + 1))
    length = np.bincount(line, weights=~term, minlength=len(starts)).astype(np.int64)[line]
    # the terminator sits at the column just past the content; both chars of "\r\n" get it
    column = np.minimum(np.arange(n) - starts[line], length)
    return line, column, length, term


def _depth(codes, opens, closes, start=0):
    """Nesting depth after reading each char, clamped at 0 (an unmatched closer is ignored),
    from depth `start` before the first char."""
    step = np.isin(codes, opens).astype(np.int64) - np.isin(codes, closes)
    s = np.cumsum(step)
    s += start
    # a walk clamped at 0 is the free walk minus its running minimum below 0 (Skorokhod reflection)
    return s - np.minimum(np.minimum.accumulate(s), 0)


def _depth_carry(opens, closes, test=None):
    """carry for a depth feature (or depth > 0 if test): the state is the depth."""
    def carry(text, state):
        d = _depth(_codes(text), opens, closes, state or 0)
        return _f(d > 0 if test else d), (int(d[-1]) if len(d) else state)
    return carry


def _f(mask):
    """As float64, the dtype every feature returns."""
    return np.asarray(mask, dtype=np.float64)


# ---- prose and layout ----------------------------------------------------------------------

_BLANK = (9, 11, 12, 32)  # tab, vertical tab, form feed, space


# paired quotation marks, opener -> closer: English curly, guillemets, CJK corner brackets
PAIRED_QUOTES = {"\u201c": "\u201d", "\u00ab": "\u00bb", "\u300c": "\u300d", "\u300e": "\u300f"}


@register(kind="binary", causal=True, domain="prose", split="paragraph",
          description="inside double quotes: straight \" \" or paired \u201c \u201d, \u00ab \u00bb, "
                      "\u300c \u300d, \u300e \u300f; resets to outside at each blank line")
def in_quote(text):
    """1 from an opening quote (inclusive) to its closing quote (exclusive: after reading it we are out).

    Straight quotes '"' toggle; paired marks nest (an unmatched closer is ignored). Quotes pair
    up within a paragraph: every char of a blank line (empty or only spaces/tabs) is 0 and
    pairing restarts after it, so a paragraph that leaves a quote open (War and Peace reopens a
    multi-paragraph quote on each new paragraph) cannot invert the rest of the text.
    """
    codes = _codes(text)
    line, _, _, term = _lines(codes)
    blank = np.bincount(line, weights=~term & ~np.isin(codes, _BLANK))[line] == 0  # per char: on a blank line
    quotes = np.cumsum(codes == 34)
    base = np.maximum.accumulate(np.where(blank, quotes, 0))  # quotes before the last blank line
    inside = (quotes - base) % 2 == 1
    opens = [ord(c) for c in PAIRED_QUOTES]
    if np.isin(codes, opens).any():
        inside |= _paired_depth(codes, blank, opens, [ord(c) for c in PAIRED_QUOTES.values()]) > 0
    return _f(inside)


def _paired_depth(codes, blank, opens, closes):
    """Nesting depth of paired marks, restarting from 0 after every run of blank-line chars."""
    depth = np.zeros(len(codes), dtype=np.int64)
    cuts = np.flatnonzero(np.diff(blank.astype(np.int8)) != 0) + 1
    for a, b in zip(np.concatenate(([0], cuts)), np.append(cuts, len(codes))):  # paragraphs and gaps
        if not blank[a]:
            depth[a:b] = _depth(codes[a:b], opens, closes)
    return depth


@register(kind="ordinal", causal=True, domain="any", split="line",
          description="column of the character: 0 for the first character of a line")
def position_in_line(text):
    """Column of text[t], 0 for a line's first char; the terminator gets the line's length."""
    return _f(_lines(_codes(text))[1])


@register(kind="ordinal", causal=False, domain="any", split="line",
          description="length of the current line without its terminator")
def line_length(text):
    """Content length of text[t]'s line (terminator excluded); its terminator chars get it too."""
    return _f(_lines(_codes(text))[2])


@register(kind="ordinal", causal=False, domain="any", split="line",
          description="characters from this one to the end of the line")
def chars_to_line_end(text):
    """line_length - position_in_line: chars from text[t] (inclusive) to the terminator, which is 0."""
    _, column, length, _ = _lines(_codes(text))
    return _f(length - column)


_WORD = re.compile(r"\w+")


@register(kind="ordinal", causal=True, domain="prose", split="line",
          description="letters read so far in the current word (0 outside words)")
def word_position(text):
    """1 for a word's first char, 2 for its second, ...; 0 for non-word chars (word = regex \\w+)."""
    inside = _spans_mask(len(text), [m.span() for m in _WORD.finditer(text)])
    count = np.cumsum(inside)
    return _f(count - np.maximum.accumulate(np.where(inside, 0, count)))


_INDENT = re.compile(r"(?<![^\r\n])[ \t]+")  # leading blanks: at text start or after a line break


@register(kind="ordinal", causal=False, domain="code", split="line",
          description="width of the current line's leading whitespace (tab stops every 8)")
def indent_level(text):
    """Width of the leading spaces/tabs of text[t]'s line, a tab advancing to the next multiple of 8.

    Every char of the line, terminator included, gets the same value; a blank line its own width.
    """
    line = _lines(_codes(text))[0]
    widths = np.zeros(int(line[-1]) + 1 if len(line) else 0)
    for m in _INDENT.finditer(text):
        widths[line[m.start()]] = len(m.group().expandtabs(8))
    return widths[line]


# ---- brackets ------------------------------------------------------------------------------

def _bracket_feature(name, opens, closes, what):
    @register(name, kind="ordinal", causal=True, domain="any", split="any",
              carry=_depth_carry(opens, closes),
              description=f"nesting depth of {what} after reading the character")
    def depth(text):
        """Depth after reading text[t]: an opener counts itself, its closer is back outside.

        Every bracket char counts, also in strings and comments (see code_depth for source code);
        unmatched closers are ignored, so it is never negative.
        """
        return _f(_depth(_codes(text), opens, closes))

    depth.__name__ = depth.__qualname__ = name

_bracket_feature("bracket_depth", (40, 91, 123), (41, 93, 125), "(), [] and {} combined")
_bracket_feature("paren_depth", (40,), (41,), "()")
_bracket_feature("square_depth", (91,), (93,), "[]")
_bracket_feature("curly_depth", (123,), (125,), "{}")


@register(kind="binary", causal=True, domain="prose", split="any",
          carry=_depth_carry((40,), (41,), test=True),
          description="inside parentheses (paren_depth > 0)")
def in_parens(text):
    """1 from '(' (inclusive) to its matching ')' (exclusive): paren_depth > 0."""
    return _f(_depth(_codes(text), (40,), (41,)) > 0)


# ---- registry access, evaluation, user features --------------------------------------------

def get_features(names=None, *, extra=()):
    """Features by name from the built-ins plus extra (user features); names None -> all of them."""
    pool = dict(FEATURES)
    for f in extra:
        if f.name in pool:
            raise ValueError(f"feature {f.name!r} is defined twice (built-in or user feature); rename one")
        pool[f.name] = f
    if names is None:
        return list(pool.values())
    if isinstance(names, str):
        names = [names]
    names = [part.strip() for n in names for part in n.split(",") if part.strip()]
    out = {}
    for name in names:
        if name not in pool:
            raise ValueError(f"unknown feature {name!r}; known: {', '.join(pool)}; "
                             "`interpret features` lists them")
        out[name] = pool[name]
    return list(out.values())


def _doc_bounds(doc_starts, n):
    """[0, s1, ..., n] from sorted document start offsets."""
    if doc_starts is None:
        return [0, n]
    starts = [int(s) for s in doc_starts]
    if not starts or starts[0] != 0 or starts[-1] > n or any(b < a for a, b in zip(starts, starts[1:])):
        raise ValueError(f"doc_starts must be sorted offsets starting at 0 and at most {n} (the text's "
                         f"length); got {starts[:6]}{' ...' if len(starts) > 6 else ''}")
    return starts + [n]


def _run(feature, doc):
    """feature.func(doc) as a checked (len(doc),) float64 array."""
    if not doc:
        return np.zeros(0)
    if FEATURES.get(feature.name) is feature:
        values = feature.func(doc)  # a built-in failing is our bug: let its traceback through
    else:
        try:
            values = feature.func(doc)
        except (Exception, SystemExit) as exc:  # user code may fail in any way (even sys.exit)
            why = f"it called sys.exit({exc.code})" if isinstance(exc, SystemExit) else exc
            raise ValueError(f"feature {feature.name!r} failed: {why}") from exc
    try:
        values = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"feature {feature.name!r} returned values that are not numbers: {exc}") from None
    if values.shape != (len(doc),):
        raise ValueError(f"feature {feature.name!r} returned shape {values.shape} for a document of "
                         f"{len(doc)} characters; it must return a 1-D array with one value per character")
    return values


def evaluate(feature, text, doc_starts=None, compact=False):
    """feature over text, run per document (state resets at each start) and joined: (n,) float64,
    or uint8 for a binary feature if compact (1 byte a character: big texts). Each document's
    values go straight into the result, so the peak is the result and one document's float64."""
    bounds = _doc_bounds(doc_starts, len(text))
    out = np.empty(len(text), dtype=np.uint8 if compact and feature.kind == "binary" else np.float64)
    evaluate_documents([feature], ((a, text[a:b]) for a, b in zip(bounds, bounds[1:])), [out])
    return out


def evaluate_documents(features, documents, outs):
    """Each feature over documents [(start, text), ...] (in order, covering the outputs), into
    outs (one (n,) array each: float64, or uint8 for a binary feature; a memory-mapped file
    works). One pass over the documents, so they may come from a file a document at a time.
    Raises after the pass, for the first feature with non-finite or (binary) non-0/1 values."""
    checks = [_Check(f) for f in features]
    for a, doc in documents:
        for check, out in zip(checks, outs):
            state = None
            for p, q in pieces(doc, check.feature.split):
                if check.feature.split == "any":
                    values, state = check.feature.carry(doc[p:q], state)
                else:
                    values = _run(check.feature, doc[p:q])
                values = check.take(values, a + p)
                if check.ok:
                    out[a + p:a + q] = values
    for check in checks:
        check.raise_if_bad()


PIECE = 1 << 18  # characters: a longer document is evaluated in pieces of about this many
_AFTER_BLANK_LINE = re.compile(r"\n[ \t\x0b\x0c]*\r?\n")  # a line break, a blank line, its break


def pieces(text, split, size=None):
    """[(start, end), ...] covering text, cut where `split` allows (see Feature.split) about
    every `size` characters (default PIECE): a long document's feature needs one piece's
    temporaries, not the whole document's."""
    size, n = size or PIECE, len(text)
    cuts = [0]
    while split != "document" and n - cuts[-1] > size:
        at = cuts[-1] + size
        if split == "any":
            cut = at
        elif split == "line":
            cut = text.find("\n", at) + 1 or n
        else:  # paragraph
            m = _AFTER_BLANK_LINE.search(text, at - 1)
            cut = m.end() if m else n
        if cut >= n:
            break
        cuts.append(cut)
    cuts.append(n)
    return list(zip(cuts, cuts[1:]))


class _Check:
    """evaluate()'s checks of one feature's values, accumulated over documents."""

    def __init__(self, feature):
        self.feature, self.first_bad, self.n_bad, self.odd = feature, None, 0, None

    @property
    def ok(self):
        return self.first_bad is None and self.odd is None

    def take(self, values, a):
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size and self.first_bad is None:
            self.first_bad = (values[bad[0]], a + bad[0])
        self.n_bad += bad.size
        if self.feature.kind == "binary" and self.odd is None and not np.isin(values, (0.0, 1.0)).all():
            self.odd = values[~np.isin(values, (0.0, 1.0))][0]
        return values

    def raise_if_bad(self):
        name = self.feature.name
        if self.n_bad:
            raise ValueError(f"feature {name!r} returned {self.first_bad[0]} at position {self.first_bad[1]} "
                             f"({self.n_bad} non-finite values); it must return finite numbers")
        if self.odd is not None:
            raise ValueError(f"binary feature {name!r} returned {self.odd}; it must return 0/1 or booleans")


def regex_feature(spec):
    """Binary feature from "NAME=PATTERN": 1 for chars inside any non-empty match (re.MULTILINE)."""
    name, sep, pattern = spec.partition("=")
    name = name.strip()
    if not sep or not name or not pattern:
        raise ValueError(f"regex feature {spec!r} must look like NAME=PATTERN, e.g. digits=[0-9]+")
    try:
        rx = re.compile(pattern, re.MULTILINE)
    except re.error as exc:
        raise ValueError(f"regex feature {spec!r} has an invalid pattern ({exc}); fix the part after '='") \
            from None

    def func(text):
        return _f(_spans_mask(len(text), [m.span() for m in rx.finditer(text) if m.end() > m.start()]))

    return Feature(name, func, "binary", False, "any", f"inside a match of /{pattern}/")


def load_feature_file(path):
    """Run a user's Python file; return its @register'ed features, then its feature_<name> functions."""
    global _loading
    path = Path(path)
    where = f"feature file {str(path)!r}"
    try:
        code = compile(path.read_text(encoding="utf-8"), str(path), "exec")
    except FileNotFoundError:
        raise ValueError(f"{where} does not exist; check the path") from None
    except UnicodeDecodeError:
        raise ValueError(f"{where} is not UTF-8 text") from None
    except OSError as exc:
        raise ValueError(f"cannot read {where}: {exc.strerror}") from None
    except SyntaxError as exc:
        raise ValueError(f"{where} has a syntax error on line {exc.lineno}: {exc.msg}") from None
    except ValueError:  # compile() of a source with NUL bytes (Python < 3.12)
        raise ValueError(f"{where} is not Python source (it contains NUL bytes)") from None
    module = types.ModuleType(f"_interpret_user_features_{path.stem}")
    module.__file__ = str(path)
    previous = _loading
    loaded = _loading = {}
    sys.modules[module.__name__] = module  # dataclasses and the like look their module up here
    try:
        exec(code, module.__dict__)  # by design: a feature file is the user's own code
    except (Exception, SystemExit) as exc:  # any error in user code (even sys.exit) is the user's to fix
        raise ValueError(f"{where} raised {type(exc).__name__} while loading: {exc}") from exc
    finally:
        _loading = previous
        del sys.modules[module.__name__]
    taken = {f.func for f in loaded.values()}
    for attr, obj in vars(module).items():
        if attr.startswith("feature_") and len(attr) > 8 and inspect.isfunction(obj) and obj not in taken:
            if attr[8:] in loaded:
                raise ValueError(f"{where} defines feature {attr[8:]!r} twice; rename one")
            doc = (obj.__doc__ or "").strip().split("\n")[0] or f"{attr} from {path.name}"
            loaded[attr[8:]] = Feature(attr[8:], obj, "continuous", False, "any", doc)
    if not loaded:
        raise ValueError(f"{where} defines no features; decorate a function with "
                         "@register(kind=..., causal=...) from interpret.features, or name it feature_<name>")
    return list(loaded.values())


# ---- code features: code_features.py registers them here, last (it imports register above) ----

from interpret.features import code as code_features  # noqa: E402  (also fine mid-import, if code_features came first)

_CODE_NAMES = ("comment_style", "in_comment", "in_comment_c", "in_comment_hash", "code_depth", "in_string",
               "in_if_condition")


def __getattr__(name):
    """comment_style and the code features' functions, re-exported (PEP 562): looked up on use, so
    `import interpret.code_features` before this module, which is a cycle, works too."""
    if name in _CODE_NAMES:
        return getattr(code_features, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_CODE_NAMES])
