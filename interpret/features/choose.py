"""Which features to scan: named ones, user regex/file features, or by default those whose domain fits the text."""
from interpret.features.registry import get_features
from interpret.features.user import load_feature_file, regex_feature


SNIFF = 200_000  # characters looks_like_code reads


def looks_like_code(text):
    """Heuristic: many lines of source code end in ; { } or ), lines of prose and verse hardly ever."""
    lines = [ln.rstrip() for ln in text[:SNIFF].splitlines() if ln.strip()]
    ends = sum(ln[-1] in ";{})" for ln in lines)
    return bool(lines) and ends > 0.15 * len(lines)


def choose_features(text, names=(), regexes=(), files=()):
    """Features to scan: named ones (or 'all'), plus user regex/file features; by default
    the built-ins whose domain fits the text (prose or code) plus any user features."""
    custom = [regex_feature(spec) for spec in regexes]
    for path in files:
        custom.extend(load_feature_file(path))
    names = [n for n in names if n]
    everything = get_features(None, extra=custom)  # raises if a user feature takes a taken name
    if "all" in names:
        return everything
    if names:  # the named ones, then every user feature (given, so wanted) not already named
        chosen = get_features(names, extra=custom)
        return chosen + [f for f in custom if f not in chosen]
    domain = "code" if looks_like_code(text) else "prose"
    return [f for f in everything if f.domain in (domain, "any") or f in custom]
