"""``Set(a, b)``: an assignment statement. When it runs, ``b``'s value is written into the
input node ``a``, so the graph updates its own inputs (an SGD step ``Set(w, w - lr * dw)``,
a step counter ``Set(t, t + 1)``).

A ``Set`` node is a statement (``Op.statement``): ``g.subgraph_roots`` includes the ones
that update its part of the graph, and machines run each statement after every other node
that reads ``a`` in the same run, so they all see the value from before the update (and the
next run sees the new one). The node's own value is ``a``'s new value.

Example:
    >>> import numpy as np, graphcore as gc
    >>> g = gc.NewGraph()
    >>> t = gc.NewScalar(g, gc.Float64, gc.WithName("t"), gc.WithValue(0.0))
    >>> tick = gc.Set(t, t + 1.0)
    >>> vm = gc.NewTapeMachine(g); vm.run_all(); vm.run_all(); float(t.value)
    2.0
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..dtypes import Dtype
from ..errors import GraphError, ShapeError
from ..graph import Node
from ..shapes import Shape, broadcast_shapes
from ..values import as_node
from .base import ExecContext, Kernel, Op, TypeInfo, apply_op, describe, same_dtype

__all__ = ["Set", "SetOp"]


class SetOp(Op):
    """Write operand 1 into operand 0's array; the output is a copy of the new value.

    Example:
        >>> a = np.zeros(2); out = np.empty(2)
        >>> SetOp().kernel([a, np.array([1.0, 2.0])], out, ExecContext())(); a.tolist()
        [1.0, 2.0]
    """

    name = "Set"
    arity = 2
    statement = True
    differentiable = False  # an update is not a function of its operands

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        a, b = ins
        dt = same_dtype("Set", ins)
        try:
            fits = broadcast_shapes(a.shape, b.shape) == tuple(a.shape)
        except ValueError:
            fits = False
        if not fits:
            raise ShapeError(
                f"Set: the new value {describe(b)} does not fit {describe(a)}; it must have "
                f"a's shape (or broadcast to it, as a scalar does)"
            )
        return a.shape, dt

    def check_bound(self, ins: Sequence[TypeInfo], shapes: Sequence[tuple[int, ...]]) -> None:
        a, b = ins
        if broadcast_shapes(shapes[0], shapes[1]) != tuple(shapes[0]):
            raise ShapeError(
                f"Set: the new value {b.name!r} of shape {shapes[1]} does not fit "
                f"{a.name!r} of shape {shapes[0]} in this run"
            )

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        a, b = xs

        def run() -> None:
            np.copyto(a, b)
            np.copyto(out, a)

        return run


def Set(a: Node, b: Any) -> Node:
    """An assignment statement ``a = b``: each run writes ``b``'s value into the input node
    ``a`` (a learnable, a counter), after every other node that reads ``a`` in that run.

    ``a`` must be an input node with a value (not a constant, not an op's result, which
    the next run computes again); ``b`` has ``a``'s dtype and shape (or broadcasts to it).
    ``Set`` is not differentiable. Training in the graph, without a solver:

    Example:
        >>> import numpy as np, graphcore as gc
        >>> g = gc.NewGraph()
        >>> w = gc.NewVector(g, gc.Float64, gc.WithShape(2), gc.WithName("w"),
        ...                  gc.WithValue([1.0, -2.0]))
        >>> cost = gc.Sum(gc.Square(w)); (dw,) = gc.Grad(cost, w)
        >>> step = gc.Set(w, w - 0.25 * dw)  # w <- w - 0.25 * 2w = w / 2
        >>> vm = gc.NewTapeMachine(g); vm.run_all(); vm.run_all()
        >>> float(cost.value), w.value.tolist()  # the cost read w before the second update
        (1.25, [0.25, -0.5])
    """
    if not isinstance(a, Node):
        raise TypeError(f"Set: a must be an input node, got {type(a).__name__}")
    if a.is_constant or a.op is not None:
        what = "a constant" if a.is_constant else f"computed by {a.op}, so each run overwrites it"
        raise GraphError(
            f"Set: {a.describe()} is {what}; Set writes into an input node (a learnable or a "
            f"data input made with NewScalar/NewVector/NewMatrix/NewTensor)"
        )
    if a.graph is None:
        raise GraphError(f"Set: {a.describe()} belongs to no graph")
    return apply_op(SetOp(), a, as_node(b, a if a.dtype.is_float else None))
