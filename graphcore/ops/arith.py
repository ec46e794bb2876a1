"""Elementwise binary arithmetic with numpy broadcasting, and the central ``SumTo`` reduction.

Gradients of broadcasting ops are reduced back to each operand's shape in one place:
:func:`reduce_to`, which ``Grad`` applies to every operand gradient.

Example:
    >>> import graphcore as gc
    >>> g = gc.NewGraph()
    >>> x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 3), gc.WithName("x"))
    >>> b = gc.NewMatrix(g, gc.Float32, gc.WithShape(1, 3), gc.WithName("b"))
    >>> gc.Add(x, b).shape
    (None, 3)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..dtypes import Dtype
from ..errors import ShapeError
from ..graph import Node
from ..kernels import filled
from ..kernels.blas import can_gemm, gemm_into
from ..shapes import Shape, broadcast_shapes, fmt_shape
from .base import ExecContext, Kernel, Op, TypeInfo, apply_op, describe, same_dtype

__all__ = [
    "Add", "Sub", "HadamardProd", "HadamardDiv", "Div", "Pow", "SumTo", "BroadcastTo",
    "reduce_to", "BinaryOp", "Maximum", "Minimum",
]


class BinaryOp(Op):
    """Elementwise binary op with numpy broadcasting.

    Example:
        >>> BinaryOp("Add", np.add).name
        'Add'
    """

    arity = 2
    inplace = True
    rebuildable = True

    def __init__(self, name: str, ufunc: Callable[..., Any]) -> None:
        self.name = name  # type: ignore[misc]
        self._f = ufunc

    def params(self) -> dict[str, Any]:
        return {}

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        a, b = ins
        dt = same_dtype(self.name, ins)
        try:
            shape = broadcast_shapes(a.shape, b.shape)
        except ValueError:
            raise ShapeError(
                f"{self.name}: shapes do not broadcast: {describe(a)} and {describe(b)}; "
                f"numpy broadcasting needs each dimension, from the right, to be equal or 1"
            ) from None
        return shape, dt

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        a, b, f = xs[0], xs[1], self._f
        return lambda: f(a, b, out=out)

    def check_bound(self, ins: Sequence[TypeInfo], shapes: Sequence[tuple[int, ...]]) -> None:
        # The gradient of a broadcast is reduced by the operands' static shapes, so a free
        # dimension may not silently broadcast against another free dimension of size 1.
        a, b = ins
        nd = max(len(a.shape), len(b.shape))
        sa = (1,) * (nd - len(a.shape)) + tuple(a.shape)
        sb = (1,) * (nd - len(b.shape)) + tuple(b.shape)
        ca = (1,) * (nd - len(shapes[0])) + tuple(shapes[0])
        cb = (1,) * (nd - len(shapes[1])) + tuple(shapes[1])
        for i in range(nd):
            if sa[i] is None and sb[i] is None and ca[i] != cb[i]:
                raise ShapeError(
                    f"{self.name}: {a.name!r} and {b.name!r} both have a free dimension {i}, "
                    f"bound to different sizes {ca[i]} and {cb[i]}; free dimensions are one "
                    f"batch size. Declare the operand that broadcasts with size 1 (e.g. "
                    f"WithShape(1, ...))"
                )

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        a, b = node.children
        n = self.name
        if n == "Add":
            return [g, g]
        if n == "Sub":
            return [g, _neg(g) if wants[1] else None]
        if n == "HadamardProd":
            return [HadamardProd(g, b) if wants[0] else None,
                    HadamardProd(g, a) if wants[1] else None]
        if n == "HadamardDiv":
            ga = HadamardDiv(g, b)
            # d(a/b)/db = -a/b^2 = -(1/b) * out
            gb = _neg(HadamardProd(ga, node)) if wants[1] else None
            return [ga if wants[0] else None, gb]
        if n == "Pow":
            from .unary import Log

            ga = HadamardProd(g, HadamardProd(b, Pow(a, Sub(b, 1.0)))) if wants[0] else None
            gb = HadamardProd(g, HadamardProd(node, Log(a))) if wants[1] else None
            return [ga, gb]
        if n in ("Maximum", "Minimum"):
            from .compare import Eq

            # ties split evenly, like the Max/Min reductions
            ma = Eq(a, node, True)
            mb = Eq(b, node, True)
            tot = Add(ma, mb)
            return [HadamardProd(g, HadamardDiv(ma, tot)) if wants[0] else None,
                    HadamardProd(g, HadamardDiv(mb, tot)) if wants[1] else None]
        raise NotImplementedError(n)


def _neg(x: Node) -> Node:
    from .unary import Neg

    return Neg(x)


def Add(a: Any, b: Any) -> Node:
    """Elementwise a + b with numpy broadcasting (``a + b`` on nodes).

    Example:
        >>> import graphcore as gc; gc.Add(gc.NewConstant([1.0, 2.0]), 1.0).shape
        (2,)
    """
    return apply_op(BinaryOp("Add", np.add), a, b)


def Sub(a: Any, b: Any) -> Node:
    """Elementwise a - b with numpy broadcasting.

    Example:
        >>> import graphcore as gc
        >>> gc.Sub(gc.NewConstant([1.0]), gc.NewConstant([[1.0], [2.0]])).shape
        (2, 1)
    """
    return apply_op(BinaryOp("Sub", np.subtract), a, b)


def HadamardProd(a: Any, b: Any) -> Node:
    """Elementwise a * b with numpy broadcasting (``a * b`` on nodes).

    Example:
        >>> import graphcore as gc; gc.HadamardProd(gc.NewConstant([1.0, 2.0]), 3.0).shape
        (2,)
    """
    return apply_op(BinaryOp("HadamardProd", np.multiply), a, b)


def HadamardDiv(a: Any, b: Any) -> Node:
    """Elementwise a / b with numpy broadcasting (``a / b`` on nodes).

    Example:
        >>> import graphcore as gc; gc.HadamardDiv(gc.NewConstant([1.0, 2.0]), 2.0).shape
        (2,)
    """
    return apply_op(BinaryOp("HadamardDiv", np.divide), a, b)


def Div(a: Any, b: Any) -> Node:
    """Gorgonia's ``Div``: elementwise division, with numpy broadcasting here.

    Example:
        >>> import graphcore as gc; gc.Div(gc.NewConstant([4.0]), 2.0).op.name
        'HadamardDiv'
    """
    return HadamardDiv(a, b)


def Pow(a: Any, b: Any) -> Node:
    """Elementwise a ** b with numpy broadcasting (``a ** b`` on nodes).

    Example:
        >>> import graphcore as gc; gc.Pow(gc.NewConstant([2.0]), 3.0).op.name
        'Pow'
    """
    return apply_op(BinaryOp("Pow", np.power), a, b)


def Maximum(a: Any, b: Any) -> Node:
    """Elementwise maximum (Gorgonia's ``MaxBetween``); ties split the gradient evenly.

    Example:
        >>> import graphcore as gc; gc.Maximum(gc.NewConstant([1.0]), 2.0).shape
        (1,)
    """
    return apply_op(BinaryOp("Maximum", np.maximum), a, b)


def Minimum(a: Any, b: Any) -> Node:
    """Elementwise minimum (Gorgonia's ``MinBetween``); ties split the gradient evenly.

    Example:
        >>> import graphcore as gc; gc.Minimum(gc.NewConstant([1.0]), 2.0).shape
        (1,)
    """
    return apply_op(BinaryOp("Minimum", np.minimum), a, b)


def _reduce_axes(src: Shape, dst: Shape) -> tuple[tuple[int, ...], bool]:
    """Axes of ``src`` to sum so it becomes ``dst`` (numpy broadcasting in reverse)."""
    lead = len(src) - len(dst)
    if lead < 0:
        raise ValueError
    axes = list(range(lead))
    for i, d in enumerate(dst):
        s = src[lead + i]
        if d == 1 and s != 1:
            axes.append(lead + i)
        elif d != s and not (d is None or s is None):
            raise ValueError
    return tuple(axes), lead > 0


class SumToOp(Op):
    """Sum a broadcast result back to an operand's shape (operand 1 gives the shape only).

    Example:
        >>> SumToOp().shape_only
        (1,)
    """

    name = "SumTo"
    arity = 2
    shape_only = (1,)

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        g, like = ins
        try:
            _reduce_axes(g.shape, like.shape)
        except ValueError:
            raise ShapeError(
                f"SumTo: cannot reduce {describe(g)} to the shape of {describe(like)}"
            ) from None
        return like.shape, g.dtype

    @staticmethod
    def gemv_operands(
        g: np.ndarray, out: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """``(ones, g2, out2)`` with ``out2 = ones @ g2`` equal to the sum, when the summed
        axes lead ``g`` (a bias gradient summed over the batch): BLAS then does it in one
        pass, 2-3x faster than ``np.sum(axis=0)``. None otherwise.

        Example:
            >>> ones, g2, o2 = SumToOp.gemv_operands(np.ones((4, 3)), np.empty((1, 3)))
            >>> ones.shape, g2.shape, o2.shape
            ((1, 4), (4, 3), (1, 3))
        """
        axes, _ = _reduce_axes(g.shape, out.shape)
        k = len(axes)
        if (
            not k
            or axes != tuple(range(k))
            or g.dtype not in (np.float32, np.float64)
            or not g.flags.c_contiguous
            or not out.flags.c_contiguous
        ):
            return None
        rows = int(np.prod(g.shape[:k], dtype=np.int64))
        cols = g.size // rows if rows else 0
        if rows == 0 or cols == 0 or out.size != cols:
            return None
        ones = filled(1.0, (1, rows), g.dtype)
        g2, out2 = g.reshape(rows, cols), out.reshape(1, cols)
        return (ones, g2, out2) if can_gemm(ones, g2, out2) else None

    def accumulate_kernel(
        self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext
    ) -> tuple[Kernel, Kernel] | None:
        gemv = self.gemv_operands(xs[0], out)
        if gemv is None:
            return None
        return gemm_into(*gemv, 0.0), gemm_into(*gemv, 1.0)

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        g = xs[0]
        axes, _ = _reduce_axes(g.shape, out.shape)
        if not axes:
            return lambda: np.copyto(out, g.reshape(out.shape))
        gemv = self.gemv_operands(g, out)
        if gemv is not None:
            return gemm_into(*gemv, 0.0)
        kept = tuple(d for i, d in enumerate(g.shape) if i not in axes)
        o = out.reshape(kept)
        return lambda: np.sum(g, axis=axes, out=o)

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        return [BroadcastTo(g, node.children[0]), None]


class BroadcastToOp(Op):
    """Broadcast operand 0 to the shape of operand 1 (read for its shape only).

    Example:
        >>> BroadcastToOp().name
        'BroadcastTo'
    """

    name = "BroadcastTo"
    arity = 2
    shape_only = (1,)

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        x, like = ins
        try:
            _reduce_axes(like.shape, x.shape)
        except ValueError:
            raise ShapeError(
                f"BroadcastTo: {describe(x)} does not broadcast to the shape of {describe(like)}"
            ) from None
        return like.shape, x.dtype

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        x = xs[0]
        return lambda: np.copyto(out, x)

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        return [SumTo(g, node.children[0]), None]


def SumTo(g: Node, like: Node) -> Node:
    """Sum ``g`` over broadcast axes so it has ``like``'s shape (identity when equal).

    Example:
        >>> import graphcore as gc
        >>> gc.SumTo(gc.NewConstant([[1.0, 2.0], [3.0, 4.0]]), gc.NewConstant([[0.0, 0.0]])).shape
        (1, 2)
    """
    if g.shape == like.shape:
        return g
    return apply_op(SumToOp(), g, like)


def BroadcastTo(x: Node, like: Node) -> Node:
    """Broadcast ``x`` to ``like``'s shape (identity when equal).

    Example:
        >>> import graphcore as gc
        >>> gc.BroadcastTo(gc.NewConstant([1.0]), gc.NewConstant([0.0, 0.0])).shape
        (2,)
    """
    if x.shape == like.shape:
        return x
    return apply_op(BroadcastToOp(), x, like)


def reduce_to(grad: Node, operand: Node) -> Node:
    """The one place broadcasting is undone: sum ``grad`` down to ``operand``'s shape.

    Example:
        >>> import graphcore as gc
        >>> reduce_to(gc.NewConstant([[1.0, 1.0]]), gc.NewConstant(0.0)).shape
        ()
    """
    if grad.shape == operand.shape:
        return grad
    try:
        _reduce_axes(grad.shape, operand.shape)
    except ValueError:
        raise ShapeError(
            f"gradient of shape {fmt_shape(grad.shape)} does not reduce to "
            f"{operand.describe()}"
        ) from None
    return apply_op(SumToOp(), grad, operand)
