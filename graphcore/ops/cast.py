"""``ConvType``: the explicit cast between dtypes (graphcore never casts implicitly).

Between the two float types the cast is differentiable: the gradient is cast back to the
operand's dtype. To or from an integer or boolean dtype no gradient flows (``Grad`` only
follows float nodes).

Example:
    >>> import graphcore as gc
    >>> x = gc.NewConstant([1.5, -2.5])
    >>> gc.ConvType(x, gc.Float32).dtype, gc.ConvType(x, gc.Int64).dtype
    (Float32, Int64)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..dtypes import Dtype, DtypeLike, as_dtype
from ..errors import DtypeError
from ..graph import Node
from ..shapes import Shape
from ..values import as_node
from .base import ExecContext, Kernel, Op, TypeInfo, apply_op

__all__ = ["ConvType", "ConvTypeOp"]


class ConvTypeOp(Op):
    """Cast to ``to``: floats to integers truncate toward zero, anything to ``Bool`` is
    ``x != 0``, ``Bool`` to numbers is 0/1.

    Example:
        >>> import graphcore as gc
        >>> ConvTypeOp(gc.Int32).compute([np.array([1.9, -1.9])], ExecContext()).tolist()
        [1, -1]
    """

    name = "ConvType"
    arity = 1
    rebuildable = True

    def __init__(self, to: Dtype) -> None:
        self.to = to

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        return ins[0].shape, self.to

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        x = xs[0]
        # numpy's C casts, chunk by chunk into ``out``: no temporary
        return lambda: np.copyto(out, x, casting="unsafe")

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        # only reached between float types: the gradient goes back to the operand's dtype
        return [ConvType(g, node.children[0].dtype)]


def ConvType(x: Any, to_or_from: DtypeLike, to: DtypeLike | None = None) -> Node:
    """``x`` cast to another dtype: ``ConvType(x, to)``, or Gorgonia's ``ConvType(x, from,
    to)``, where ``from`` must be ``x``'s dtype. Casting to ``x``'s own dtype returns ``x``.

    Differentiable between ``Float32`` and ``Float64`` (the gradient is cast back), so a
    float32 model can feed a float64 loss, say. Floats become integers by truncation toward
    zero (NaN and out-of-range values are undefined, as in numpy).

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph()
        >>> x = gc.NewVector(g, gc.Float32, gc.WithShape(2), gc.WithName("x"),
        ...                  gc.WithValue([1.0, 2.0]))
        >>> cost = gc.Sum(gc.Square(gc.ConvType(x, gc.Float64)))
        >>> (dx,) = gc.Grad(cost, x); gc.NewTapeMachine(g).run_all()
        >>> cost.dtype, dx.dtype, dx.value.tolist()
        (Float64, Float32, [2.0, 4.0])
    """
    xn = as_node(x)
    if to is None:
        target = _dtype(to_or_from, "ConvType")
    else:
        given = _dtype(to_or_from, "ConvType")
        if given != xn.dtype:
            raise DtypeError(
                f"ConvType: 'from' is {given}, but the operand {xn.describe()} is "
                f"{xn.dtype}; pass its own dtype as 'from', or call ConvType(x, to)"
            )
        target = _dtype(to, "ConvType")
    if target == xn.dtype:
        return xn
    return apply_op(ConvTypeOp(target), xn)


def _dtype(dt: DtypeLike, who: str) -> Dtype:
    try:
        return as_dtype(dt)
    except TypeError as e:
        raise DtypeError(f"{who}: {e}") from None
