"""Gorgonia's builders over other ops: ``ReduceAdd`` and ``ReduceMul`` fold a list of nodes
with ``Add`` and ``HadamardProd``; ``KeepDims`` gives a reduction's result back the
operand's number of dimensions. They add no op of their own, so they differentiate as the
ops they build.

Example:
    >>> import graphcore as gc
    >>> a, b, c = (gc.NewConstant([float(i)]) for i in (1, 2, 3))
    >>> gc.ReduceAdd([a, b, c]).op.name, gc.ReduceMul([a, b]).op.name
    ('Add', 'HadamardProd')
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..errors import GraphError, ShapeError
from ..graph import Node
from ..shapes import fmt_shape
from ..values import as_node
from .elementwise import Add, HadamardProd
from .shape import Reshape

__all__ = ["ReduceAdd", "ReduceMul", "KeepDims"]


def _fold(name: str, op: Callable[[Any, Any], Node], nodes: Iterable[Any]) -> Node:
    if isinstance(nodes, Node):
        raise TypeError(f"{name} takes a list of nodes, got the single node {nodes.name!r}; "
                        f"call {name}([a, b, ...])")
    items = list(nodes)
    if not items:
        raise GraphError(f"{name} needs at least one node; give it a list such as [a, b]")
    like = next((n for n in items if isinstance(n, Node) and n.dtype.is_float), None)
    total = as_node(items[0], like)
    for n in items[1:]:
        total = op(total, n)
    return total


def ReduceAdd(nodes: Iterable[Any]) -> Node:
    """``nodes[0] + nodes[1] + ...``, left to right (Gorgonia's foldl of ``Add``); one node
    is returned as it is. Shapes broadcast as in ``Add``.

    Example:
        >>> import numpy as np, graphcore as gc
        >>> g = gc.NewGraph()
        >>> xs = [gc.NewVector(g, gc.Float64, gc.WithShape(2), gc.WithName(f"x{i}"),
        ...                    gc.WithValue([i, 10.0 * i])) for i in range(3)]
        >>> s = gc.ReduceAdd(xs); gc.NewTapeMachine(g).run_all(); s.value.tolist()
        [3.0, 30.0]
    """
    return _fold("ReduceAdd", Add, nodes)


def ReduceMul(nodes: Iterable[Any]) -> Node:
    """``nodes[0] * nodes[1] * ...`` elementwise, left to right (Gorgonia's foldl of
    ``HadamardProd``); one node is returned as it is.

    Example:
        >>> import numpy as np, graphcore as gc
        >>> g = gc.NewGraph()
        >>> xs = [gc.NewVector(g, gc.Float64, gc.WithShape(2), gc.WithName(f"x{i}"),
        ...                    gc.WithValue([i, 2.0])) for i in (1, 2, 3)]
        >>> p = gc.ReduceMul(xs); gc.NewTapeMachine(g).run_all(); p.value.tolist()
        [6.0, 8.0]
    """
    return _fold("ReduceMul", HadamardProd, nodes)


def KeepDims(a: Any, expandLeft: bool, fn: Callable[[Node], Node]) -> Node:
    """``fn(a)`` reshaped to ``a``'s number of dimensions, Gorgonia's way: missing
    dimensions of size 1 are added on the left (``expandLeft=True``) or on the right.

    ``fn`` is a function of one node (a reduction such as ``lambda t: Sum(t, 1)``). A result
    with ``a``'s shape is returned as it is; one with more dimensions than ``a`` is an error.
    Unlike Gorgonia, a scalar result works too (all ones). Note the ones go at one end, not
    back where the reduced axes were: for that, pass ``keepdims=True`` to the reduction.

    Example:
        >>> import numpy as np, graphcore as gc
        >>> x = gc.NewConstant(np.zeros((3, 4)))
        >>> gc.KeepDims(x, False, lambda t: gc.Sum(t, 1)).shape
        (3, 1)
        >>> gc.KeepDims(x, True, lambda t: gc.Sum(t, 0)).shape
        (1, 4)
    """
    if not callable(fn):
        raise TypeError(
            f"KeepDims: fn must be a function of one node (e.g. lambda t: Sum(t, 1)), got "
            f"{type(fn).__name__}; the call is KeepDims(a, expandLeft, fn)"
        )
    an = as_node(a)
    b = fn(an)
    if not isinstance(b, Node):
        raise TypeError(f"KeepDims: fn must return a node, got {type(b).__name__}")
    if b.shape == an.shape:
        return b
    diff = an.ndim - b.ndim
    if diff < 0:
        raise ShapeError(
            f"KeepDims: fn's result {b.describe()} has more dimensions than the operand "
            f"{an.describe()}; KeepDims only adds dimensions back"
        )
    target = (1,) * diff + b.shape if expandLeft else b.shape + (1,) * diff
    if None in target[1:]:
        raise ShapeError(
            f"KeepDims: the result {b.describe()} padded {'left' if expandLeft else 'right'} "
            f"would be {fmt_shape(target)}, moving its free (None) dimension away from axis 0, "
            f"which Reshape cannot keep; use expandLeft=False, or keepdims=True in the "
            f"reduction"
        )
    return Reshape(b, target)
