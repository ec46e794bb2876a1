"""golgi's module structure: no import cycles, only graphcore's public API, no private access."""

from __future__ import annotations

import ast
from pathlib import Path

GOLGI = Path(__file__).resolve().parent.parent / "golgi"
PUBLIC_GRAPHCORE = {
    "graphcore",
    "graphcore.extend",
    "graphcore.shapes",
    "graphcore.rng",
    "graphcore.options",
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(GOLGI.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[str]:
    """Modules ``path`` imports, at module level or inside functions (a late import is still
    a cycle), leaving out ``if TYPE_CHECKING:`` blocks (annotations only)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    me = _module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    skipped = {
        id(n)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and ast.unparse(block.test).endswith("TYPE_CHECKING")
        for n in ast.walk(block)
    }
    out: list[str] = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append(mod)
            # ``from . import models`` imports the submodule itself
            out += [f"{mod}.{a.name}" for a in node.names]
    return out


def _golgi_files() -> list[Path]:
    return sorted(GOLGI.rglob("*.py"))


def test_golgi_modules_import_no_cycle():
    modules = {_module_name(p): p for p in _golgi_files()}
    graph = {
        name: {m for m in _imports(p) if m in modules and m != name}
        for name, p in modules.items()
    }
    # a package's __init__ importing its own submodules is not a cycle: the submodule
    # imports the package first, then the package goes on
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if node.startswith(dep + ".") or dep == "golgi":
                continue  # a submodule's import of its (already importing) package
            if state.get(dep) == 1:
                cycle = stack[stack.index(dep) :] + [dep] if dep in stack else [node, dep]
                raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
            if dep not in state:
                visit(dep, [*stack, dep])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_golgi_uses_only_the_public_graphcore_api():
    bad = []
    for path in _golgi_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            mods = []
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                mods = [node.module or ""]
            for m in mods:
                if m.startswith("graphcore") and m not in PUBLIC_GRAPHCORE:
                    bad.append(f"{path.name}: import {m}")
            # gc.<private> or node._private on graphcore objects
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "gc"
                and node.attr.startswith("_")
                and not node.attr.endswith("__")
            ):
                bad.append(f"{path.name}:{node.lineno}: gc.{node.attr}")
    assert not bad, bad
