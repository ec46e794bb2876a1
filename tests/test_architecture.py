"""The layout's rules, checked from the source with ``ast``: no import cycles in graphcore or
golgi (late imports count; imports only type checkers see do not), graphcore never imports
golgi, and golgi uses only graphcore's public modules and attributes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("graphcore", "golgi")
# what golgi may import from graphcore: the package and its public modules
GRAPHCORE_PUBLIC = {
    "graphcore", "graphcore.extend", "graphcore.options", "graphcore.shapes", "graphcore.rng",
}


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Modules ``name`` imports (anywhere in the file, late imports included; not imports
    that only type checkers see), resolved to the most specific known module."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_pkg = path.name == "__init__.py"
    here = name.split(".") if is_pkg else name.split(".")[:-1]
    found: set[str] = set()
    skip: set[int] = set()
    for node in ast.walk(tree):
        if _type_checking_only(node):
            skip.update(id(n) for n in ast.walk(node))
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # `from pkg import sub` imports the submodule when there is one
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def _graph() -> dict[str, set[str]]:
    known = _modules()
    return {name: _imports(name, path, known) for name, path in known.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_the_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    cycles = _cycles(_graph())
    assert not cycles, "import cycles (each line is one cycle's modules):\n" + "\n".join(
        " <-> ".join(c) for c in cycles
    )


def test_graphcore_never_imports_golgi():
    bad = {
        (m, t)
        for m, ts in _graph().items()
        if m.startswith("graphcore")
        for t in ts
        if t.startswith("golgi")
    }
    assert not bad, f"graphcore modules importing golgi: {sorted(bad)}"


def test_golgi_uses_only_public_graphcore_modules():
    bad = {
        (m, t)
        for m, ts in _graph().items()
        if m.startswith("golgi")
        for t in ts
        if t.startswith("graphcore") and t not in GRAPHCORE_PUBLIC
    }
    assert not bad, (
        f"golgi imports graphcore internals (use {', '.join(sorted(GRAPHCORE_PUBLIC))}): "
        f"{sorted(bad)}"
    )


def test_golgi_reads_no_private_graphcore_attribute():
    bad = []
    for path in sorted((ROOT / "golgi").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "gc"
                and node.attr.startswith("_")
                and not node.attr.endswith("__")
            ):
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: gc.{node.attr}")
    assert not bad, bad


@pytest.mark.parametrize("pkg", PACKAGES)
def test_package_init_has_nothing_after_all_and_no_guarded_imports(pkg):
    tree = ast.parse((ROOT / pkg / "__init__.py").read_text())
    names = [
        i
        for i, n in enumerate(tree.body)
        if isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in n.targets)
    ]
    assert names, f"{pkg}/__init__.py has no __all__"
    after = tree.body[names[-1] + 1 :]
    assert not [n for n in after if isinstance(n, (ast.Import, ast.ImportFrom, ast.Try))], (
        f"{pkg}/__init__.py imports after __all__"
    )
    assert not [n for n in tree.body if isinstance(n, ast.Try)], (
        f"{pkg}/__init__.py guards imports with try/except"
    )
