"""``SizeOf(axis, x)``: the size of one axis of ``x`` as a scalar node, read when the graph
runs, so a free (``None``) batch dimension counts with the size it has in that run.

The op reads only its operand's shape (``shape_only``): ``x``'s buffer may be reused before
it runs, and no gradient flows to ``x`` through it (the size does not change with ``x``'s
values), so ``Sum(x) / SizeOf(0, x)`` differentiates like a mean.

Example:
    >>> import numpy as np, graphcore as gc
    >>> g = gc.NewGraph()
    >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
    >>> n = gc.SizeOf(0, x); vm = gc.NewTapeMachine(g)
    >>> gc.Let(x, np.ones((5, 3))); vm.run_all(); float(n.value)
    5.0
    >>> gc.Let(x, np.ones((2, 3))); vm.run_all(); float(n.value)
    2.0
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..dtypes import Dtype, Int64
from ..errors import ShapeError
from ..graph import Node
from ..shapes import Shape
from ..values import as_node
from .base import ExecContext, Kernel, Op, TypeInfo, apply_op, describe

__all__ = ["SizeOf", "SizeOfOp"]


class SizeOfOp(Op):
    """The size of ``axis`` of operand 0 (shape only), in its dtype (``Int64`` for ``Bool``).

    Example:
        >>> SizeOfOp(-1).compute([np.zeros((4, 7))], ExecContext())
        array(7.)
    """

    name = "SizeOf"
    arity = 1
    shape_only = (0,)

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        (x,) = ins
        nd = len(x.shape)
        if not -nd <= self.axis < nd:
            raise ShapeError(
                f"SizeOf: axis {self.axis} is out of range for {describe(x)}, which has "
                + (f"axes 0 to {nd - 1} (or -{nd} to -1)" if nd else "no axes (a scalar)")
            )
        return (), (Int64 if x.dtype.np.kind == "b" else x.dtype)

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        size = xs[0].shape[self.axis]  # concrete: a plan is compiled per set of input shapes
        return lambda: out.fill(size)

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        return [None]  # never asked: the operand is read for its shape only


def SizeOf(axis: int, x: Any) -> Node:
    """The size of ``axis`` of ``x`` as a scalar node in ``x``'s dtype, right for a free
    (``None``) batch dimension at run time (Gorgonia's argument order: the axis first).

    Example:
        >>> import graphcore as gc
        >>> x = gc.NewConstant(np.zeros((4, 7), np.float32))
        >>> n = gc.SizeOf(1, x); n.shape, n.dtype
        ((), Float32)
    """
    if isinstance(axis, (Node, bool, np.bool_)) or not hasattr(axis, "__index__"):
        raise TypeError(
            f"SizeOf: the first argument is the axis (an int), got {type(axis).__name__}; "
            f"call SizeOf(axis, x)"
        )
    return apply_op(SizeOfOp(int(axis)), as_node(x))
