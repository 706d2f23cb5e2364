"""The package's house rules, checked over interpret/ and viewer/: no import cycle, no use of another
module's private names, click only in cli/, and a public API that is really there."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules():
    """{module name: (path, ast)} of every .py in interpret/ and viewer/."""
    out = {}
    for folder in ("interpret", "viewer"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            out[module_name(path)] = (path, ast.parse(path.read_text(encoding="utf-8")))
    return out


MODULES = modules()


def resolve(importer, node):
    """The absolute module an ImportFrom names (relative imports and the viewer's sibling imports)."""
    if node.level:
        pkg = importer.split(".")
        is_pkg = MODULES[importer][0].name == "__init__.py"
        base = pkg[:len(pkg) - node.level + is_pkg]
        return ".".join(base + ([node.module] if node.module else []))
    if node.module and f"viewer.{node.module}" in MODULES and importer.startswith("viewer"):
        return f"viewer.{node.module}"  # bokeh serve puts viewer/ on sys.path
    return node.module or ""


def imports(name):
    """[(imported module, [names])] of one module, at any depth (function-level imports too)."""
    path, tree = MODULES[name]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = resolve(name, node)
            for alias in node.names:  # `from pkg import sub` imports the submodule
                sub = f"{base}.{alias.name}"
                out.append((sub, []) if sub in MODULES else (base, [alias.name]))
        elif isinstance(node, ast.Import):
            out += [(alias.name, []) for alias in node.names]
    return [(m, names) for m, names in out if m in MODULES]


def graph():
    return {name: {m for m, _ in imports(name) if m != name} for name in MODULES}


def cycles(edges):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in edges:
        if v not in index:
            visit(v)
    return found


def test_the_checker_finds_a_cycle_and_a_chain():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    assert cycles(graph()) == []


def private(name):
    return name.startswith("_") and not name.startswith("__")


def test_no_module_uses_another_modules_private_names():
    bad = []
    for name, (path, tree) in MODULES.items():
        aliases = {}  # local name -> module, for `from interpret.x import y as z` of a module
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                base = resolve(name, node)
                for alias in node.names:
                    if f"{base}.{alias.name}" in MODULES:
                        aliases[alias.asname or alias.name] = f"{base}.{alias.name}"
                    elif base in MODULES and private(alias.name):
                        bad.append(f"{name} imports {base}.{alias.name}")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in MODULES and alias.asname:
                        aliases[alias.asname] = alias.name
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in aliases and private(node.attr)):
                bad.append(f"{name} uses {aliases[node.value.id]}.{node.attr}")
    assert bad == []


def test_click_is_imported_only_in_cli():
    users = {name for name in MODULES for m in ast.walk(MODULES[name][1])
             if isinstance(m, ast.Import) and any(a.name == "click" for a in m.names)
             or isinstance(m, ast.ImportFrom) and m.module == "click"}
    assert users and all(u.startswith("interpret.cli") for u in users), sorted(users)


@pytest.mark.parametrize("name", ["Model", "Recording", "Scan", "record", "scan", "features", "__version__"])
def test_the_public_api_is_at_the_top(name):
    import interpret
    assert name in interpret.__all__ and getattr(interpret, name) is not None


def test_the_top_level_reads_as_the_pipeline():
    folders = sorted(p.name for p in (ROOT / "interpret").iterdir() if p.is_dir() and (p / "__init__.py").exists())
    assert folders == ["_util", "analysis", "cli", "export", "features", "model", "recording", "scan", "train"]
