"""The comparison table: ``a <op> b`` elementwise with numpy broadcasting, each row a numpy
ufunc; the public functions below it, and :func:`mask`.

Comparisons are not differentiable (as in Gorgonia): ``Grad`` refuses them. Inside a
derivative, a comparison used as a 0/1 factor is a :func:`mask`, whose gradient is zero, which
is what makes second derivatives of ReLU, Abs or Maximum exact.

Example:
    >>> import graphcore as gc
    >>> gc.Lt(gc.NewConstant([1.0, 3.0]), 2.0).dtype, gc.Lt(gc.NewConstant([1.0]), 2.0, True).dtype
    (Bool, Float64)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ...dtypes import Bool, Dtype
from ...errors import ShapeError
from ...graph import Node
from ...shapes import Shape, broadcast_shapes
from ..base import ExecContext, Kernel, Op, TypeInfo, apply_op, describe, same_dtype

__all__ = [
    "Lt", "Gt", "Lte", "Gte", "Eq", "Ne", "mask", "COMPARISONS", "CompareOp", "MaskOp",
    "broadcast_result",
]


def broadcast_result(name: str, a: TypeInfo, b: TypeInfo) -> Shape:
    """The shape ``a`` and ``b`` broadcast to (numpy's rules), or a ``ShapeError`` naming the
    op ``name`` and both operands.

    Example:
        >>> import graphcore as gc
        >>> a, b = TypeInfo((None, 3), gc.Float64, "a"), TypeInfo((3,), gc.Float64, "b")
        >>> broadcast_result("Add", a, b)
        (None, 3)
    """
    try:
        return broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ShapeError(
            f"{name}: shapes do not broadcast: {describe(a)} and {describe(b)}; "
            f"numpy broadcasting needs each dimension, from the right, to be equal or 1"
        ) from None


# ----- the comparison table ----------------------------------------------------------------------

#: comparisons have no derivative: Grad refuses them, and derivatives use masks instead
COMPARISONS: dict[str, Callable[..., Any]] = {
    "Lt": np.less,
    "Gt": np.greater,
    "Lte": np.less_equal,
    "Gte": np.greater_equal,
    "Eq": np.equal,
    "Ne": np.not_equal,
}


class CompareOp(Op):
    """``a <op> b`` elementwise; ``Bool`` output, or 0/1 in the operands' dtype (``ret_same``).

    Example:
        >>> CompareOp("Lt", True)
        Lt(ret_same=True)
    """

    arity = 2
    differentiable = False
    inplace = True  # only taken when the output has operand 0's dtype (ret_same)

    def __init__(self, name: str, ret_same: bool) -> None:
        if name not in COMPARISONS:
            raise ValueError(f"unknown comparison {name!r}; use one of {', '.join(COMPARISONS)}")
        self.name = name  # type: ignore[misc]
        self.ret_same = bool(ret_same)
        self._f = COMPARISONS[name]

    def params(self) -> dict[str, Any]:
        return {"ret_same": self.ret_same} if self.ret_same else {}

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        dt = same_dtype(self.name, ins)
        return broadcast_result(self.name, *ins), (dt if self.ret_same else Bool)

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        a, b, f = xs[0], xs[1], self._f
        # a ufunc casts its bool result into a float/int ``out`` chunk by chunk, no full temporary
        return lambda: f(a, b, out=out)


class MaskOp(CompareOp):
    """A comparison as a 0/1 factor inside a derivative (``x > 0`` in ReLU's): piecewise
    constant, so its gradient is zero and ``Grad`` sends none through it.

    Example:
        >>> MaskOp("Gt").name, MaskOp("Gt").zero_gradient
        ('GtMask', True)
    """

    differentiable = True
    zero_gradient = True

    def __init__(self, name: str) -> None:
        super().__init__(name, True)
        self.name = f"{name}Mask"  # type: ignore[misc]

    def params(self) -> dict[str, Any]:
        return {}

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        return [None, None]


def mask(name: str, a: Any, b: Any) -> Node:
    """``a <name> b`` (a comparison of the table: "Gt", "Eq", ...) as 0/1 in the operands'
    dtype, with a zero gradient: the factor derivatives use for piecewise functions.

    Example:
        >>> import graphcore as gc
        >>> m = mask("Gt", gc.NewConstant([-1.0, 2.0]), 0.0); m.op.name, m.dtype
        ('GtMask', Float64)
    """
    return apply_op(MaskOp(name), a, b)


# ----- public functions: comparisons -------------------------------------------------------------


def _flag(name: str, retSame: Any, ret_same: Any) -> bool:
    if ret_same is not None:
        if retSame is not None and bool(retSame) != bool(ret_same):
            raise TypeError(f"{name}: retSame={retSame!r} and ret_same={ret_same!r} disagree")
        retSame = ret_same
    if retSame is None:
        return False
    if not isinstance(retSame, (bool, np.bool_)):
        raise TypeError(
            f"{name}: retSame must be True or False, got {retSame!r}; the call is "
            f"{name}(a, b, retSame) as in Gorgonia"
        )
    return bool(retSame)


def _compare(name: str, a: Any, b: Any, retSame: Any, ret_same: Any) -> Node:
    return apply_op(CompareOp(name, _flag(name, retSame, ret_same)), a, b)


def Lt(a: Any, b: Any, retSame: bool | None = None, *, ret_same: bool | None = None) -> Node:
    """``a < b`` elementwise (numpy broadcasting); ``retSame=True`` gives 0/1 in a's dtype.

    Example:
        >>> import graphcore as gc
        >>> gc.Lt(gc.NewConstant([1.0, 3.0]), 2.0).op.compute(
        ...     [np.array([1.0, 3.0]), np.array(2.0)], gc.ExecContext()).tolist()
        [True, False]
    """
    return _compare("Lt", a, b, retSame, ret_same)


def Gt(a: Any, b: Any, retSame: bool | None = None, *, ret_same: bool | None = None) -> Node:
    """``a > b`` elementwise (numpy broadcasting); ``retSame=True`` gives 0/1 in a's dtype.

    Example:
        >>> import graphcore as gc
        >>> gc.Gt(gc.NewConstant([1.0, 3.0]), 2.0, True).dtype
        Float64
    """
    return _compare("Gt", a, b, retSame, ret_same)


def Lte(a: Any, b: Any, retSame: bool | None = None, *, ret_same: bool | None = None) -> Node:
    """``a <= b`` elementwise (numpy broadcasting); ``retSame=True`` gives 0/1 in a's dtype.

    Example:
        >>> import graphcore as gc
        >>> gc.Lte(gc.NewConstant([[1.0], [2.0]]), gc.NewConstant([1.0, 2.0])).shape
        (2, 2)
    """
    return _compare("Lte", a, b, retSame, ret_same)


def Gte(a: Any, b: Any, retSame: bool | None = None, *, ret_same: bool | None = None) -> Node:
    """``a >= b`` elementwise (numpy broadcasting); ``retSame=True`` gives 0/1 in a's dtype.

    Example:
        >>> import graphcore as gc
        >>> gc.Gte(gc.NewConstant([1.0]), 1.0, ret_same=True).op
        Gte(ret_same=True)
    """
    return _compare("Gte", a, b, retSame, ret_same)


def Eq(a: Any, b: Any, retSame: bool | None = None, *, ret_same: bool | None = None) -> Node:
    """``a == b`` elementwise (numpy broadcasting); ``retSame=True`` gives 0/1 in a's dtype.

    Example:
        >>> import graphcore as gc
        >>> gc.Eq(gc.NewConstant([1.0, 2.0]), 2.0).dtype
        Bool
    """
    return _compare("Eq", a, b, retSame, ret_same)


def Ne(a: Any, b: Any, retSame: bool | None = None, *, ret_same: bool | None = None) -> Node:
    """``a != b`` elementwise (numpy broadcasting); ``retSame=True`` gives 0/1 in a's dtype.

    Example:
        >>> import graphcore as gc
        >>> gc.Ne(gc.NewConstant([1.0, 2.0]), 2.0).dtype
        Bool
    """
    return _compare("Ne", a, b, retSame, ret_same)
