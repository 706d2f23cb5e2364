"""Features the user brings: a regular expression, or a Python file of @register'ed functions."""
import inspect
import re
import sys
import types
from pathlib import Path


from interpret.features.registry import Feature, collecting
from interpret.features.spans import as_values, spans_mask



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
        return as_values(spans_mask(len(text), [m.span() for m in rx.finditer(text) if m.end() > m.start()]))

    return Feature(name, func, "binary", False, "any", f"inside a match of /{pattern}/")


def load_feature_file(path):
    """Run a user's Python file; return its @register'ed features, then its feature_<name> functions."""
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
    sys.modules[module.__name__] = module  # dataclasses and the like look their module up here
    try:
        with collecting() as loaded:
            exec(code, module.__dict__)  # by design: a feature file is the user's own code
    except (Exception, SystemExit) as exc:  # any error in user code (even sys.exit) is the user's to fix
        raise ValueError(f"{where} raised {type(exc).__name__} while loading: {exc}") from exc
    finally:
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
                         "@register(type=..., causal=...) from interpret.features, or name it feature_<name>")
    return list(loaded.values())
