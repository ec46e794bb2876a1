"""Softmax family along any axis (default last), stable for large logits, and sparsemax.

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
from ..errors import DtypeError, ShapeError
from ..graph import Node
from ..shapes import Shape, norm_axes, reduced_shape
from .base import ExecContext, Kernel, Op, TypeInfo, apply_op, describe, same_dtype
from .elementwise import Exp, mask
from .reduce import Sum

__all__ = [
    "SoftMax", "Softmax", "LogSoftMax", "LogSoftmax", "SoftMaxOp", "Sparsemax", "SparsemaxOp",
    "SparsemaxGradOp",
]


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
        # the ufuncs' own reduce: np.max and np.sum add ~2 us of Python a call (batch 1: half
        # the kernel)
        amax, asum = np.maximum.reduce, np.add.reduce
        if self.log:

            def run() -> None:
                amax(x, axis=ax, keepdims=True, out=red)
                np.subtract(x, red, out=out)
                np.exp(out, out=scratch)
                asum(scratch, axis=ax, keepdims=True, out=red)
                np.log(red, out=red)
                np.subtract(out, red, out=out)

            scratch = np.empty_like(out)
            return run

        def run_soft() -> None:
            amax(x, axis=ax, keepdims=True, out=red)
            np.subtract(x, red, out=out)
            np.exp(out, out=out)
            asum(out, axis=ax, keepdims=True, out=red)
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


# ----- sparsemax -------------------------------------------------------------------------------


class SparsemaxOp(Op):
    """The Euclidean projection of each slice along ``axis`` onto the probability simplex:
    ``max(x - tau, 0)`` with ``tau`` such that the slice sums to 1 (Martins & Astudillo, 2016).

    Sorting finds ``tau``: with ``z`` the slice sorted in decreasing order, the support is the
    first ``k`` entries with ``1 + k z_k > z_1 + ... + z_k`` (always a prefix) and ``tau =
    (z_1 + ... + z_k - 1) / k``. The slices are copied into a buffer with ``axis`` last and
    sorted in place there; every scratch array is made with the kernel.

    Example:
        >>> SparsemaxOp(-1)
        Sparsemax(axis=-1)
    """

    name = "Sparsemax"
    arity = 1

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        (x,) = ins
        if not x.dtype.is_float:
            raise DtypeError(
                f"Sparsemax needs a Float32 or Float64 operand, got {describe(x)}; convert it "
                f"to a float dtype"
            )
        if len(x.shape) == 0:
            raise DtypeError(
                f"Sparsemax needs at least one axis, got a scalar {describe(x)}; reshape it to "
                f"a vector"
            )
        (ax,) = norm_axes(self.axis, len(x.shape), f"Sparsemax axis of {x.name!r}")
        if x.shape[ax] is None:
            raise ShapeError(
                f"Sparsemax: axis {self.axis} of {describe(x)} is free (None); the axis it "
                f"normalises along needs a known size"
            )
        return x.shape, x.dtype

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        x = xs[0]
        (ax,) = norm_axes(self.axis, x.ndim)
        k = x.shape[ax]
        last = np.moveaxis(x, ax, -1)  # views: the slices along the last axis
        zs = np.empty(last.shape, x.dtype)  # sorted slices (increasing, in place)
        desc = zs[..., ::-1]
        cs = np.empty(last.shape, x.dtype)  # running sums of the decreasing order
        ks = np.arange(1, k + 1, dtype=x.dtype)
        bound = np.empty(last.shape, x.dtype)
        keep = last.shape[:-1] + (1,)
        total = np.empty(keep, x.dtype)
        count = np.empty(keep, x.dtype)
        tau = np.moveaxis(total, -1, ax)  # (the same memory, laid out like a keepdims of x)

        def run() -> None:
            np.copyto(zs, last)
            zs.sort(axis=-1)
            np.cumsum(desc, axis=-1, out=cs)
            np.multiply(desc, ks, out=bound)
            np.add(bound, 1.0, out=bound)
            np.greater(bound, cs, out=bound)  # 1 on the support (a prefix), 0 after
            np.sum(bound, axis=-1, keepdims=True, out=count)
            np.multiply(bound, desc, out=bound)
            np.sum(bound, axis=-1, keepdims=True, out=total)
            np.subtract(total, 1.0, out=total)
            np.divide(total, count, out=total)
            np.subtract(x, tau, out=out)
            np.maximum(out, 0.0, out=out)

        return run

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        return [apply_op(SparsemaxGradOp(self.axis), node, g)]


class SparsemaxGradOp(Op):
    """Backward of sparsemax from its output ``y`` and upstream ``g``, fused:
    ``s * (g - sum(g * s) / sum(s))`` along the axis, ``s`` the support (``y > 0``).

    Sparsemax is piecewise linear, so the support is a mask (no gradient flows through it);
    the expansion is linear in ``g``, and second derivatives of sparsemax alone are zero.

    Example:
        >>> SparsemaxGradOp(-1).name
        'SparsemaxGrad'
    """

    name = "SparsemaxGrad"
    arity = 2

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        return ins[0].shape, same_dtype(self.name, ins)

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        y, g = xs
        (ax,) = norm_axes(self.axis, y.ndim)
        keep = reduced_shape(y.shape, (ax,), True)
        support = np.empty(y.shape, y.dtype)
        dot, size = np.empty(keep, y.dtype), np.empty(keep, y.dtype)

        def run() -> None:
            np.greater(y, 0.0, out=support)
            np.multiply(g, support, out=out)
            np.sum(out, axis=ax, keepdims=True, out=dot)
            np.sum(support, axis=ax, keepdims=True, out=size)
            np.divide(dot, size, out=dot)
            np.subtract(g, dot, out=out)
            np.multiply(out, support, out=out)

        return run

    def expand(self, node: Node) -> Node:
        y, g = node.children
        s = mask("Gt", y, 0.0)
        return s * (g - Sum(g * s, self.axis, keepdims=True) / Sum(s, self.axis, keepdims=True))


def Sparsemax(x: Any, axis: int = -1) -> Node:
    """Sparsemax along ``axis`` (default last): like softmax, a probability distribution per
    slice, but the Euclidean projection onto the simplex, so small entries are exactly 0.

    Gorgonia's ``Sparsemax(x, axis)``. Piecewise linear; the gradient is
    ``s * (g - mean of g over the support)``, ``s`` the support.

    Example:
        >>> import numpy as np, graphcore as gc
        >>> g = gc.NewGraph()
        >>> x = gc.NodeFromAny(g, np.array([[2.0, 1.5, -1.0], [0.1, 0.2, 0.3]]),
        ...                    gc.WithName("x"))
        >>> y = gc.Sparsemax(x); gc.NewTapeMachine(g).run_all()
        >>> np.round(y.value, 4).tolist()
        [[0.75, 0.25, 0.0], [0.2333, 0.3333, 0.4333]]
    """
    return apply_op(SparsemaxOp(int(axis)), x)
