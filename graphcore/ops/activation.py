"""Softmax family along any axis (default last), stable for large logits.

Example:
    >>> import graphcore as gc
    >>> gc.SoftMax(gc.NewConstant([[1.0, 2.0]])).shape
    (1, 2)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..dtypes import Dtype
from ..errors import DtypeError
from ..graph import Node
from ..shapes import Shape, norm_axes, reduced_shape
from .base import ExecContext, Kernel, Op, TypeInfo, apply_op, describe, same_dtype
from .elementwise import Exp
from .reduce import Sum

__all__ = ["SoftMax", "Softmax", "LogSoftMax", "LogSoftmax", "SoftMaxOp"]


class SoftMaxOp(Op):
    """softmax (``log=False``) or log-softmax (``log=True``) along ``axis``.

    Example:
        >>> SoftMaxOp(-1, True).name
        'LogSoftMax'
    """

    arity = 1
    rebuildable = True

    def __init__(self, axis: int, log: bool) -> None:
        self.axis = axis
        self.log = log
        self.name = "LogSoftMax" if log else "SoftMax"  # type: ignore[misc]

    def params(self) -> dict[str, Any]:
        return {"axis": self.axis}

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        (x,) = ins
        if not x.dtype.is_float:
            raise DtypeError(f"{self.name} needs a float operand, got {describe(x)}")
        if len(x.shape) == 0:
            raise DtypeError(f"{self.name} needs at least one axis, got a scalar {describe(x)}")
        norm_axes(self.axis, len(x.shape), f"{self.name} axis")
        return x.shape, x.dtype

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        x = xs[0]
        (ax,) = norm_axes(self.axis, x.ndim)
        red = np.empty(reduced_shape(x.shape, (ax,), True), x.dtype)
        if self.log:

            def run() -> None:
                np.max(x, axis=ax, keepdims=True, out=red)
                np.subtract(x, red, out=out)
                np.exp(out, out=scratch)
                np.sum(scratch, axis=ax, keepdims=True, out=red)
                np.log(red, out=red)
                np.subtract(out, red, out=out)

            scratch = np.empty_like(out)
            return run

        def run_soft() -> None:
            np.max(x, axis=ax, keepdims=True, out=red)
            np.subtract(x, red, out=out)
            np.exp(out, out=out)
            np.sum(out, axis=ax, keepdims=True, out=red)
            np.divide(out, red, out=out)

        return run_soft

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        return [apply_op(SoftMaxGradOp(self.axis, self.log), node, g)]


class SoftMaxGradOp(Op):
    """Backward of softmax / log-softmax from the forward output ``y`` and upstream ``g``,
    fused: ``y * (g - sum(g*y))`` for softmax, ``g - exp(y) * sum(g)`` for log-softmax.

    Example:
        >>> SoftMaxGradOp(-1, False).name
        'SoftMaxGrad'
    """

    arity = 2

    def __init__(self, axis: int, log: bool) -> None:
        self.axis = axis
        self.log = log
        self.name = "LogSoftMaxGrad" if log else "SoftMaxGrad"  # type: ignore[misc]

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        return ins[0].shape, same_dtype(self.name, ins)

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        y, g = xs
        (ax,) = norm_axes(self.axis, y.ndim)
        red = np.empty(reduced_shape(y.shape, (ax,), True), y.dtype)
        if self.log:
            # dx = g - softmax * sum(g)
            def run() -> None:
                np.sum(g, axis=ax, keepdims=True, out=red)
                np.exp(y, out=out)
                np.multiply(out, red, out=out)
                np.subtract(g, out, out=out)

            return run

        # dx = y * (g - sum(g*y))
        def run_soft() -> None:
            np.multiply(g, y, out=out)
            np.sum(out, axis=ax, keepdims=True, out=red)
            np.subtract(g, red, out=out)
            np.multiply(out, y, out=out)

        return run_soft

    def expand(self, node: Node) -> Node:
        y, g = node.children
        if self.log:
            return g - Exp(y) * Sum(g, self.axis, keepdims=True)
        return y * (g - Sum(g * y, self.axis, keepdims=True))


def SoftMax(x: Any, axis: int = -1) -> Node:
    """Softmax along ``axis`` (default last), computed stably.

    Example:
        >>> import graphcore as gc
        >>> gc.SoftMax(gc.NewConstant([[1.0, 2.0]]), axis=1).op
        SoftMax(axis=1)
    """
    return apply_op(SoftMaxOp(int(axis), False), x)


def LogSoftMax(x: Any, axis: int = -1) -> Node:
    """log(softmax(x)) along ``axis``, computed stably (never -inf for finite x).

    Example:
        >>> import graphcore as gc
        >>> gc.LogSoftMax(gc.NewConstant([[1.0, 2.0]])).op
        LogSoftMax(axis=-1)
    """
    return apply_op(SoftMaxOp(int(axis), True), x)


Softmax = SoftMax
LogSoftmax = LogSoftMax
