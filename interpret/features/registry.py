"""Per-character signals computed from text alone, and the FEATURES registry.

Alignment: feature(text)[t] describes text[t] as the state *after reading* text[t], the same
index as row t of a Recording. Every feature returns a (len(text),) array.
Lines end at "\\n", "\\r\\n" (one break) or a lone "\\r"; terminator characters belong to the line
they end. Each feature's docstring states its exact convention.

The code features (a C/Python lexer for comments, strings and if-conditions) live in
code.py; the package imports every module, so FEATURES holds them all.
"""
import contextlib
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

import numpy as np

from interpret._util.cores import workers as default_workers

TYPES = ("binary", "ordinal", "continuous")
DOMAINS = ("prose", "code", "any")
SPLITS = ("document", "line", "paragraph", "any")  # see Feature.split


@dataclass(frozen=True)
class Feature:
    """A per-character signal, func(text) -> (len(text),) array, and how to read it."""

    name: str
    func: Callable[[str], np.ndarray]
    type: str  # "binary" | "ordinal" | "continuous"
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


def register(name=None, *, type=None, causal, kind=None, domain="any", description="", registry=None,
             split="document", carry=None):
    """Decorator: record func as a Feature in registry (default FEATURES, or the file being loaded)."""
    type = type or kind  # kind=: the older spelling, still taken from feature files
    if type not in TYPES:
        raise ValueError(f"feature type {type!r} is not one of {', '.join(TYPES)}")
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
        target[fname] = Feature(fname, func, type, bool(causal), domain, doc, split, carry)
        return func

    return decorate


@contextlib.contextmanager
def collecting():
    """While inside, @register (without registry=) puts features into the dict it yields, not FEATURES."""
    global _loading
    previous, _loading = _loading, {}
    try:
        yield _loading
    finally:
        _loading = previous


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
    out = np.empty(len(text), dtype=np.uint8 if compact and feature.type == "binary" else np.float64)
    evaluate_documents([feature], ((a, text[a:b]) for a, b in zip(bounds, bounds[1:])), [out])
    return out


def evaluate_all(features, text, doc_starts=None, compact=False, workers=None):
    """[evaluate(f, text, doc_starts, compact) for f in features], a feature per thread on up to
    `workers` threads at once (default: 2, or 1 on one core): numpy's passes over a long text
    release the GIL, so a scan's 17 features take about two thirds of their time on one. The
    first bad feature in the list raises, as evaluating them in turn would."""
    workers = workers or default_workers()
    if workers == 1 or len(features) < 2:
        return [evaluate(f, text, doc_starts, compact) for f in features]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(evaluate, f, text, doc_starts, compact) for f in features]
        try:
            return [future.result() for future in futures]
        except BaseException:                         # a bad feature, Ctrl-C: drop the rest
            for future in futures:
                future.cancel()
            raise


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
        if self.feature.type == "binary" and self.odd is None and not np.isin(values, (0.0, 1.0)).all():
            self.odd = values[~np.isin(values, (0.0, 1.0))][0]
        return values

    def raise_if_bad(self):
        name = self.feature.name
        if self.n_bad:
            raise ValueError(f"feature {name!r} returned {self.first_bad[0]} at position {self.first_bad[1]} "
                             f"({self.n_bad} non-finite values); it must return finite numbers")
        if self.odd is not None:
            raise ValueError(f"binary feature {name!r} returned {self.odd}; it must return 0/1 or booleans")
