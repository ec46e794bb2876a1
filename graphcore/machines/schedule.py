"""The first passes of compiling a graph: what runs, in which order, at which sizes, and how
long each value is needed. Pure functions of the graph and the bound inputs.

(:mod:`~graphcore.machines.program` says which nodes run.)

1. :func:`concrete_shapes`: each op's ``infer`` run again with the sizes bound now, so a free
   (``None``) batch dimension gets its size, and each op's ``check_bound`` rules;
2. :func:`last_reads`: the last step that reads each value (liveness), which tells the memory
   pass when a buffer can be reused.

Example:
    >>> import numpy as np, graphcore as gc
    >>> from graphcore.machines.program import whole_graph
    >>> g = gc.NewGraph()
    >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
    >>> y = gc.Exp(x); z = gc.Sum(y)
    >>> order = whole_graph(g, ()).order
    >>> gc.Let(x, np.ones((5, 3)))
    >>> concrete_shapes(order, [x])[id(y)], last_reads(order)[id(y)] == order.index(z)
    ((5, 3), True)
"""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet

from ..errors import ShapeError
from ..graph import Node
from ..ops.base import TypeInfo
from ..shapes import fmt_shape

__all__ = ["concrete_shapes", "last_reads"]

Shapes = dict[int, tuple[int, ...]]


def concrete_shapes(
    order: Sequence[Node], free_inputs: Sequence[Node], given: AbstractSet[int] = frozenset()
) -> Shapes:
    """Each node's shape with the input sizes bound now, by node id.

    Raises ``ShapeError`` naming the node whose op refuses the bound sizes and listing the
    free inputs' shapes (the usual cause: two inputs bound to different batch sizes).
    ``given``: ids of op nodes whose values are read, not computed (their shapes are their
    values').

    Example:
        >>> import numpy as np, graphcore as gc
        >>> from graphcore.machines.program import whole_graph
        >>> g = gc.NewGraph()
        >>> a = gc.NewVector(g, gc.Float64, gc.WithShape(None), gc.WithName("a"))
        >>> b = gc.NewVector(g, gc.Float64, gc.WithShape(None), gc.WithName("b"))
        >>> s = a + b; gc.Let(a, np.ones(3)); gc.Let(b, np.ones(2))
        >>> concrete_shapes(whole_graph(g, ()).order, [a, b])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        graphcore.errors.ShapeError: with the input shapes bound now (a (3,), b (2,)), node ...
    """
    shapes: Shapes = {}
    for n in order:
        if n.op is None or id(n) in given:
            shapes[id(n)] = n.value.shape
            continue
        ins = [TypeInfo(shapes[id(c)], c.dtype, c.name) for c in n.children]
        try:
            shape, _ = n.op.infer(ins)
            n.op.check_bound(
                [TypeInfo(c.shape, c.dtype, c.name) for c in n.children],
                [shapes[id(c)] for c in n.children],
            )
        except ShapeError as e:
            raise ShapeError(
                "with the input shapes bound now ("
                + ", ".join(f"{i.name} {fmt_shape(i.value.shape)}" for i in free_inputs)
                + f"), node {n.name!r} fails: {e}"
            ) from None
        shapes[id(n)] = tuple(shape)
    return shapes


def last_reads(order: Sequence[Node], given: AbstractSet[int] = frozenset()) -> dict[int, int]:
    """The position (in ``order``) of the last step that reads each node's value, by node id;
    a node nobody reads has its own position. Operands an op reads only for their shape
    (``Op.shape_only``) do not count.

    Example:
        >>> import graphcore as gc
        >>> from graphcore.machines.program import whole_graph
        >>> g = gc.NewGraph(); a = gc.NewScalar(g, gc.Float64, gc.WithName("a"))
        >>> b = gc.Exp(a); c = gc.Neg(b); order = whole_graph(g, ()).order
        >>> [last_reads(order)[id(n)] for n in (a, b, c)]
        [1, 2, 2]
    """
    pos = {id(n): i for i, n in enumerate(order)}
    last = dict(pos)
    for n in order:
        if n.op is None or id(n) in given:
            continue
        skip = n.op.shape_only
        for j, c in enumerate(n.children):
            if j not in skip and last[id(c)] < pos[id(n)]:
                last[id(c)] = pos[id(n)]
    return last
