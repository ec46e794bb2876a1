"""Graphviz export: ``ToDot(g)`` draws a graph's nodes in five clusters.

The clusters are data inputs, learnables, constants, forward ops and gradient ops. Each node's
label gives its name, its op with parameters, its shape (``None`` for a free dimension) and
its dtype. ``render_svg`` runs Graphviz's ``dot`` program when it is installed. Importing
this module gives graphs their ``to_dot()`` method and Jupyter's picture (``_repr_svg_``), so
the graph module does not import the drawing code.

Which cluster a node falls in:

- constants: ``NewConstant`` nodes (and the Python numbers ops turned into constants);
- learnables: input nodes given a value when built (``WithInit``/``WithValue``/``WithGrad``)
  or that ``Grad`` differentiated (they have a ``.deriv``);
- data: all other input nodes (bound with ``Let`` before a run);
- gradient ops: op nodes that some gradient node (``w.deriv``) depends on, but that no
  non-gradient root (a root that is not a ``.deriv``) depends on. The forward values the
  backward pass reads (a ReLU output, say) stay forward ops, as they should;
- forward ops: all other op nodes.

Example:
    >>> import graphcore as gc
    >>> g = gc.NewGraph()
    >>> x = gc.NewVector(g, gc.Float64, gc.WithShape(None), gc.WithName("x"))
    >>> print(gc.ToDot(g))  # doctest: +ELLIPSIS
    digraph "graph" {
    ...
"""

from __future__ import annotations

import shutil
import subprocess

from .graph import Graph, Node, ancestors
from .shapes import fmt_shape

__all__ = ["ToDot", "render_svg", "classify"]

# cluster key -> (title, fill colour)
_CLUSTERS: dict[str, tuple[str, str]] = {
    "data": ("inputs (data)", "#dbe9f6"),
    "learnable": ("learnables", "#fde8c8"),
    "constant": ("constants", "#eeeeee"),
    "forward": ("forward ops", "#e3f2dc"),
    "gradient": ("gradient ops", "#f6dada"),
}


def _esc(text: str) -> str:
    """Quote ``text`` for a double-quoted DOT string (backslashes, quotes, newlines)."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def classify(g: Graph) -> dict[str, list[Node]]:
    """Sort the nodes of ``g`` (constants included) into the five clusters ``ToDot`` draws.

    Keys: ``"data"``, ``"learnable"``, ``"constant"``, ``"forward"``, ``"gradient"``; see the
    module docs for the rule.

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph()
        >>> w = gc.NewScalar(g, gc.Float64, gc.WithName("w"), gc.WithValue(2.0))
        >>> c = gc.Square(w); _ = gc.Grad(c, w)
        >>> [n.name for n in classify(g)["learnable"]], [n.op.name for n in classify(g)["gradient"]]
        (['w'], ['SquareGrad'])
    """
    order = ancestors(g.nodes)
    roots = g.roots()
    grad_roots = [n for n in roots if n.deriv_of is not None]
    derivs = [n.deriv for n in order if n.deriv is not None] + grad_roots
    fwd_roots = [n for n in roots if n.deriv_of is None]
    in_bwd = {id(n) for n in ancestors(derivs)}
    in_fwd = {id(n) for n in ancestors(fwd_roots)}
    out: dict[str, list[Node]] = {k: [] for k in _CLUSTERS}
    for n in order:
        if n.is_constant:
            key = "constant"
        elif n.op is None:
            learnable = (
                n.deriv is not None
                or n.init is not None
                or n.has_grad
                or getattr(n, "preset", False)
            )
            key = "learnable" if learnable else "data"
        elif id(n) in in_bwd and id(n) not in in_fwd:
            key = "gradient"
        else:
            key = "forward"
        out[key].append(n)
    return out


def _label(n: Node) -> str:
    lines = [n.name]
    if n.op is not None:
        lines.append(str(n.op))
    elif n.is_constant:
        lines.append("constant")
    lines.append(f"{fmt_shape(n.shape)} {n.dtype}")
    return "\n".join(lines)


def ToDot(g: Graph) -> str:
    """Graphviz text of ``g``: clusters for data, learnables, constants, forward and gradient ops.

    Edges run from each operand to the node that reads it. Render it with
    ``dot -Tsvg graph.dot`` or see it inline in Jupyter (``Graph._repr_svg_``).

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph()
        >>> x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 3), gc.WithName("x"))
        >>> y = gc.Sum(gc.Rectify(x), 1)
        >>> text = gc.ToDot(g)
        >>> "cluster_data" in text and "(None, 3) Float32" in text
        True
    """
    if not isinstance(g, Graph):
        raise TypeError(f"ToDot: expected a Graph (NewGraph()), got {type(g).__name__}")
    groups = classify(g)
    lines = [
        f'digraph "{_esc(g.name)}" {{',
        "  rankdir=TB;",
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];',
        '  edge [color="#555555", arrowsize=0.6];',
    ]
    for key, (title, colour) in _CLUSTERS.items():
        members = groups[key]
        if not members:
            continue
        lines.append(f"  subgraph cluster_{key} {{")
        lines.append(f'    label="{_esc(title)}"; style=dashed; color="#999999";')
        for n in members:
            lines.append(f'    n{n.id} [label="{_esc(_label(n))}", fillcolor="{colour}"];')
        lines.append("  }")
    for members in groups.values():
        for n in members:
            for i, c in enumerate(n.children):
                attrs = f' [label="{i}", fontsize=8]' if len(n.children) > 1 else ""
                lines.append(f"  n{c.id} -> n{n.id}{attrs};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_svg(g: Graph, timeout: float = 30.0) -> str | None:
    """SVG of ``g`` drawn by Graphviz's ``dot``, or ``None`` when ``dot`` is not installed.

    ``None`` also comes back when ``dot`` fails, so Jupyter falls back to the text form
    (install Graphviz, e.g. ``apt install graphviz``, for pictures).

    Example:
        >>> import graphcore as gc
        >>> svg = render_svg(gc.NewGraph())
        >>> svg is None or "<svg" in svg
        True
    """
    exe = shutil.which("dot")
    if exe is None:
        return None
    try:
        proc = subprocess.run(
            [exe, "-Tsvg"],
            input=ToDot(g),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    return proc.stdout


def _to_dot(self: Graph) -> str:
    """Graphviz text of this graph (see ``ToDot``).

    Example:
        >>> import graphcore as gc
        >>> gc.NewGraph().to_dot().startswith("digraph")
        True
    """
    return ToDot(self)


def _repr_svg_(self: Graph) -> str | None:
    return render_svg(self)


def _repr_pretty_(self: Graph, p: object, cycle: bool) -> None:
    # IPython's text form, shown by Jupyter when _repr_svg_ gives None (no Graphviz)
    p.text(repr(self) if cycle else f"{self!r}\n{ToDot(self)}")  # type: ignore[attr-defined]


Graph.to_dot = _to_dot  # type: ignore[method-assign]  # graph.py declares it for type checks
Graph._repr_svg_ = _repr_svg_  # type: ignore[attr-defined]
Graph._repr_pretty_ = _repr_pretty_  # type: ignore[attr-defined]
