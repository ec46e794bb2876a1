"""Symbolic reverse-mode differentiation: ``Grad`` adds gradient nodes to the graph.

The walk is iterative (no recursion limit on deep graphs). Each op's ``grad`` rule builds
the operand gradients from other ops; broadcasting is undone centrally by ``reduce_to``;
gradients of nodes read several times are summed.

Example:
    >>> import numpy as np, graphcore as gc
    >>> g = gc.NewGraph()
    >>> w = gc.NewVector(g, gc.Float64, gc.WithShape(2), gc.WithName("w"),
    ...                  gc.WithValue([1.0, -2.0]))
    >>> cost = gc.Sum(gc.Square(w))
    >>> (dw,) = gc.Grad(cost, w)
    >>> gc.NewTapeMachine(g).run_all()
    >>> dw.value.tolist()
    [2.0, -4.0]
"""

from __future__ import annotations

from collections.abc import Sequence

from .errors import GradError
from .graph import Graph, Node, ancestors
from .ops.arith import Add, reduce_to
from .ops.base import building_in
from .shapes import fmt_shape
from .values import NewConstant

__all__ = ["Grad", "backprop"]


def backprop(cost: Node, wrt: Sequence[Node], graph: Graph | None) -> list[Node]:
    """Gradient nodes of ``cost`` for each of ``wrt``, built into ``graph``.

    ``graph=None`` builds detached nodes (the Lisp machine's private gradient program).

    Example:
        >>> import graphcore as gc
        >>> x = gc.NewConstant(3.0)
        >>> isinstance(backprop, object)
        True
    """
    if not isinstance(cost, Node):
        raise TypeError(f"Grad: cost must be a node, got {type(cost).__name__}")
    if cost.shape != ():
        raise GradError(
            f"Grad: the cost {cost.describe()} is not a scalar; reduce it first "
            f"(e.g. Mean(...) or Sum(...)) so it has shape ()"
        )
    if not cost.dtype.is_float:
        raise GradError(f"Grad: the cost {cost.describe()} must be Float32 or Float64")
    if not wrt:
        raise GradError("Grad: give at least one node to differentiate with respect to")
    for w in wrt:
        if not isinstance(w, Node):
            raise TypeError(f"Grad: wrt must be nodes, got {type(w).__name__}")
        if not w.dtype.is_float:
            raise GradError(f"Grad: cannot differentiate with respect to {w.describe()}: "
                            f"it is not a float node")
    order = ancestors([cost])
    index = {id(n): i for i, n in enumerate(order)}
    for w in wrt:
        if id(w) not in index:
            raise GradError(
                f"Grad: the cost {cost.name!r} does not depend on {w.describe()}; "
                f"remove it from the list or check how the cost is built"
            )
    # nodes on a path from some wrt to the cost
    wrt_ids = {id(w) for w in wrt}
    depends: set[int] = set()
    for n in order:
        if id(n) in wrt_ids or any(id(c) in depends for c in n.children):
            if n.dtype.is_float or id(n) in wrt_ids:
                depends.add(id(n))
    grads: dict[int, Node] = {}
    with building_in(graph):
        grads[id(cost)] = NewConstant(1.0, name="1", dtype=cost.dtype)
        for n in reversed(order):
            g = grads.get(id(n))
            if g is None or n.op is None:
                continue
            wants = [id(c) in depends for c in n.children]
            if not any(wants):
                continue
            if not n.op.differentiable:
                raise GradError(
                    f"Grad: {n.describe()} uses {n.op}, which is not differentiable, and lies "
                    f"on the path from {', '.join(repr(w.name) for w in wrt)} to the cost "
                    f"{cost.name!r}; use a differentiable op or stop the gradient before it"
                )
            parts = n.op.grad(n, g, wants)
            for c, want, gc in zip(n.children, wants, parts):
                if not want or gc is None:
                    continue
                gc = reduce_to(gc, c)
                if gc.shape != c.shape:
                    raise GradError(
                        f"Grad: internal shape error: gradient {fmt_shape(gc.shape)} for "
                        f"{c.describe()} (op {n.op})"
                    )
                prev = grads.get(id(c))
                grads[id(c)] = gc if prev is None else Add(prev, gc)
    out = []
    for w in wrt:
        d = grads.get(id(w))
        if d is None:  # pragma: no cover - guarded by the dependency check
            raise GradError(f"Grad: no gradient reaches {w.describe()}")
        out.append(d)
    return out


def Grad(cost: Node, *wrt: Node) -> list[Node]:
    """Add the gradient nodes of a scalar ``cost`` w.r.t. each of ``wrt`` and return them.

    Each ``w`` remembers its gradient node (``w.deriv``), so ``w.grad`` reads its value after a
    machine runs; with ``BindDualValues`` the machine accumulates it into ``w.grad`` instead.

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph(); x = gc.NewScalar(g, gc.Float64, gc.WithName("x"))
        >>> (dx,) = gc.Grad(gc.Square(x), x)
        >>> dx.deriv_of is x
        True
    """
    if len(wrt) == 1 and isinstance(wrt[0], (list, tuple)):
        wrt = tuple(wrt[0])
    if cost.graph is None:
        raise GradError(f"Grad: the cost {cost.describe()} belongs to no graph")
    grads = backprop(cost, wrt, cost.graph)
    for w, d in zip(wrt, grads):
        w.deriv = d
        d.deriv_of = w
        if d.graph is cost.graph and d.name.startswith(f"{d.op.name if d.op else 'input'}_"):
            d.name = f"d{cost.name}/d{w.name}"
    return grads
