"""Undoing broadcasts: ``SumTo`` sums a gradient back to its operand's shape, ``BroadcastTo``
repeats a value to another's shape; each is the other's gradient.

Elementwise ops broadcast like numpy, and their gradient rules ignore it: ``Grad`` applies
:func:`reduce_to` to every operand gradient, the one place broadcasting is undone.

Example:
    >>> import graphcore as gc
    >>> g = gc.NewConstant([[1.0, 2.0], [3.0, 4.0]])
    >>> SumTo(g, gc.NewConstant([[0.0, 0.0]])).shape, reduce_to(g, gc.NewConstant(0.0)).shape
    ((1, 2), ())
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..dtypes import Dtype
from ..errors import ShapeError
from ..graph import Node
from ..kernels import filled
from ..kernels.blas import can_gemm, gemm_into
from ..shapes import Shape, fmt_shape
from .base import ExecContext, Kernel, Op, TypeInfo, apply_op, describe

__all__ = ["SumTo", "BroadcastTo", "reduce_to", "SumToOp", "BroadcastToOp"]


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

        def run() -> None:  # a def, not a lambda: a kernel returns None, not numpy's array
            np.sum(g, axis=axes, out=o)

        return run

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
