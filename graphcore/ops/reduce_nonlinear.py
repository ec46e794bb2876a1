"""Reductions whose gradients read the values, over any axes, with keep-dims: ``Max`` and
``Min`` (ties share the gradient), ``LogSumExp`` and ``Norm``; each gradient is one fused
node that states the same computation with graph ops (``expand``) for second derivatives.

Example:
    >>> import graphcore as gc
    >>> x = gc.NewConstant([[1.0, 2.0], [3.0, 4.0]])
    >>> gc.Max(x, 1).shape, gc.LogSumExp(x, 1, keepdims=True).shape, gc.Norm(x, axis=0).shape
    ((2,), (2, 1), (2,))
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
from .reduce import Sum, parse_axes
from .shape import Reshape

__all__ = [
    "Max",
    "Min",
    "LogSumExp",
    "Norm",
    "ExtremumOp",
    "ExtremumGradOp",
    "LogSumExpOp",
    "LogSumExpGradOp",
    "NormOp",
    "NormGradOp",
]


def _keep(a: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
    """``a`` (a reduction's result) as a view with the reduced axes kept as size 1."""
    return a if keepdims else np.expand_dims(a, axes)


def _kept(r: Node, x: Node, axes: tuple[int, ...], keepdims: bool) -> Node:
    """A reduction's result ``r`` (or its gradient) with the reduced axes of ``x`` kept as
    size 1, so it broadcasts against ``x``."""
    return r if keepdims else Reshape(r, reduced_shape(x.shape, axes, True))


def _check_nonempty(name: str, x: TypeInfo, axes: tuple[int, ...]) -> None:
    if any(x.shape[a] == 0 for a in axes):
        raise ShapeError(
            f"{name}: cannot reduce {describe(x)} over axes {axes}: one of them has size 0"
        )


class ExtremumOp(Op):
    """Max or Min over ``axes`` (``None``: all); the gradient is split evenly among ties.

    Example:
        >>> ExtremumOp("Max", 1, False)
        Max(axes=1, keepdims=False)
    """

    arity = 1

    def __init__(self, kind: str, axes: Any, keepdims: bool) -> None:
        self.name = kind  # type: ignore[misc]
        self.axes = axes
        self.keepdims = keepdims

    def _axes(self, ndim: int) -> tuple[int, ...]:
        return norm_axes(self.axes, ndim, f"{self.name} axis")

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        (x,) = ins
        axes = self._axes(len(x.shape))
        _check_nonempty(self.name, x, axes)
        return reduced_shape(x.shape, axes, self.keepdims), x.dtype

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        x = xs[0]
        axes = self._axes(x.ndim)
        o = out.reshape(reduced_shape(x.shape, axes, False))
        f = np.max if self.name == "Max" else np.min

        def run() -> None:
            f(x, axis=axes, out=o)

        return run

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        x = node.children[0]
        op = ExtremumGradOp(self.name, self._axes(x.ndim), self.keepdims)
        return [apply_op(op, x, node, g)]


class ExtremumGradOp(Op):
    """``g * (x == y) / ties``: the gradient of Max/Min, shared evenly by tied elements.

    Operands: ``x``, the reduction's output ``y`` and the upstream gradient ``g``.

    Example:
        >>> ExtremumGradOp("Max", (0,), False).name
        'MaxGrad'
    """

    arity = 3

    def __init__(self, kind: str, axes: tuple[int, ...], keepdims: bool) -> None:
        self.name = f"{kind}Grad"  # type: ignore[misc]
        self.axes = axes
        self.keepdims = keepdims

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        return ins[0].shape, same_dtype(self.name, ins, float_only=True)

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        x, axes = xs[0], self.axes
        y = _keep(xs[1], axes, self.keepdims)
        g = _keep(xs[2], axes, self.keepdims)
        cnt = np.empty(reduced_shape(x.shape, axes, True), out.dtype)

        def run() -> None:
            np.equal(x, y, out=out)  # 0/1 mask, cast chunk-wise into the float buffer
            np.sum(out, axis=axes, keepdims=True, out=cnt)
            np.divide(g, cnt, out=cnt)
            np.multiply(out, cnt, out=out)

        return run

    def expand(self, node: Node) -> Node:
        x, y, g = node.children
        # the tie mask is piecewise constant: the second derivative is zero but for g's part
        hit = mask("Eq", x, _kept(y, x, self.axes, self.keepdims))
        return _kept(g, x, self.axes, self.keepdims) * (hit / Sum(hit, axis=self.axes,
                                                                  keepdims=True))


def _finite_max(x: np.ndarray, axes: tuple[int, ...], m: np.ndarray, bad: np.ndarray) -> None:
    """The max over ``axes`` into ``m`` (kept dims), with 0 where it is not finite: shifting an
    all -inf (or +inf) slice by its max would give inf - inf = nan."""
    np.max(x, axis=axes, keepdims=True, out=m)
    np.isfinite(m, out=bad)
    np.logical_not(bad, out=bad)
    np.copyto(m, 0.0, where=bad)


class LogSumExpOp(Op):
    """``log(sum(exp(x)))`` over ``axes``, computed stably (shifted by the maximum).

    Example:
        >>> LogSumExpOp(-1, False)
        LogSumExp(axes=-1, keepdims=False)
    """

    name = "LogSumExp"
    arity = 1

    def __init__(self, axes: Any, keepdims: bool) -> None:
        self.axes = axes
        self.keepdims = keepdims

    def _axes(self, ndim: int) -> tuple[int, ...]:
        return norm_axes(self.axes, ndim, "LogSumExp axis")

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        (x,) = ins
        if not x.dtype.is_float:
            raise DtypeError(f"LogSumExp needs a float operand, got {describe(x)}")
        axes = self._axes(len(x.shape))
        _check_nonempty("LogSumExp", x, axes)
        return reduced_shape(x.shape, axes, self.keepdims), x.dtype

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        x = xs[0]
        axes = self._axes(x.ndim)
        m = np.empty(reduced_shape(x.shape, axes, True), x.dtype)
        bad = np.empty(m.shape, np.bool_)
        tmp = np.empty(x.shape, x.dtype)
        o = out.reshape(m.shape)

        def run() -> None:
            _finite_max(x, axes, m, bad)
            np.subtract(x, m, out=tmp)
            np.exp(tmp, out=tmp)
            np.sum(tmp, axis=axes, keepdims=True, out=o)
            np.log(o, out=o)
            np.add(o, m, out=o)

        return run

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        x = node.children[0]
        return [apply_op(LogSumExpGradOp(self._axes(x.ndim), self.keepdims), x, g)]


class LogSumExpGradOp(Op):
    """``g * softmax(x)``, the gradient of LogSumExp, from ``x`` and the upstream ``g``.

    Softmax is recomputed shifted by the maximum rather than as ``exp(x - lse)``: a float32
    ``lse`` of a large ``x`` is rounded to a few ulp of ``|x|``, which exp would amplify.

    Example:
        >>> LogSumExpGradOp((1,), False).name
        'LogSumExpGrad'
    """

    name = "LogSumExpGrad"
    arity = 2

    def __init__(self, axes: tuple[int, ...], keepdims: bool) -> None:
        self.axes = axes
        self.keepdims = keepdims

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        return ins[0].shape, same_dtype(self.name, ins)

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        x, axes = xs[0], self.axes
        g = _keep(xs[1], axes, self.keepdims)
        m = np.empty(reduced_shape(x.shape, axes, True), x.dtype)
        bad = np.empty(m.shape, np.bool_)

        def run() -> None:
            _finite_max(x, axes, m, bad)
            np.subtract(x, m, out=out)
            np.exp(out, out=out)
            np.sum(out, axis=axes, keepdims=True, out=m)
            np.divide(g, m, out=m)
            np.multiply(out, m, out=out)

        return run

    def expand(self, node: Node) -> Node:
        x, g = node.children
        lse = LogSumExp(x, axis=self.axes, keepdims=True)
        return _kept(g, x, self.axes, self.keepdims) * Exp(x - lse)


class NormOp(Op):
    """The p-norm (p = 1 or 2) over ``axes`` (``None``: all of them, i.e. the whole tensor).

    Example:
        >>> NormOp(None, 2, False)
        Norm(axes=None, p=2, keepdims=False)
    """

    name = "Norm"
    arity = 1

    def __init__(self, axes: Any, p: int, keepdims: bool) -> None:
        self.axes = axes
        self.p = p
        self.keepdims = keepdims

    def _axes(self, ndim: int) -> tuple[int, ...]:
        return norm_axes(self.axes, ndim, "Norm axis")

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        (x,) = ins
        if not x.dtype.is_float:
            raise DtypeError(f"Norm needs a float operand, got {describe(x)}")
        return reduced_shape(x.shape, self._axes(len(x.shape)), self.keepdims), x.dtype

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        x = xs[0]
        axes = self._axes(x.ndim)
        o = out.reshape(reduced_shape(x.shape, axes, False))
        tmp = np.empty(x.shape, x.dtype)
        if self.p == 1:

            def run_l1() -> None:
                np.abs(x, out=tmp)
                np.sum(tmp, axis=axes, out=o)

            return run_l1

        def run_l2() -> None:
            np.multiply(x, x, out=tmp)
            np.sum(tmp, axis=axes, out=o)
            np.sqrt(o, out=o)

        return run_l2

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        x = node.children[0]
        op = NormGradOp(self._axes(x.ndim), self.p, self.keepdims)
        # the 1-norm's gradient sign(x) * g does not read the norm itself
        return [apply_op(op, x, g) if self.p == 1 else apply_op(op, x, g, node)]


class NormGradOp(Op):
    """Gradient of Norm: ``g * sign(x)`` (p=1) or ``g * x / norm`` (p=2, and 0 where norm is 0).

    Operands: ``x``, the upstream gradient ``g`` and (p=2) the norm ``y``.

    Example:
        >>> NormGradOp((0,), 2, False).name
        'NormGrad'
    """

    name = "NormGrad"

    def __init__(self, axes: tuple[int, ...], p: int, keepdims: bool) -> None:
        self.axes = axes
        self.p = p
        self.keepdims = keepdims

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        return ins[0].shape, same_dtype(self.name, ins)

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        x = xs[0]
        g = _keep(xs[1], self.axes, self.keepdims)
        if self.p == 1:

            def run_l1() -> None:
                np.sign(x, out=out)
                np.multiply(out, g, out=out)

            return run_l1

        y = _keep(xs[2], self.axes, self.keepdims)
        r = np.empty(y.shape, out.dtype)

        def run_l2() -> None:
            # r = g / y, with y replaced by 1 where it is 0: there x is all zeros, so the
            # gradient comes out 0 without a 0/0
            np.equal(y, 0.0, out=r)
            np.add(r, y, out=r)
            np.divide(g, r, out=r)
            np.multiply(x, r, out=out)

        return run_l2

    def expand(self, node: Node) -> Node:
        x, g = node.children[:2]
        gk = _kept(g, x, self.axes, self.keepdims)
        if self.p == 1:
            return gk * (mask("Gt", x, 0.0) - mask("Lt", x, 0.0))
        y = _kept(node.children[2], x, self.axes, self.keepdims)
        return gk * x / (y + mask("Eq", y, 0.0))


def Max(
    x: Any, *axes: int | Sequence[int], axis: Any = None, keepdims: bool = False
) -> Node:
    """Maximum over the given axes (all when none are given); ties share the gradient evenly.

    Example:
        >>> import graphcore as gc
        >>> gc.Max(gc.NewConstant([[1.0, 5.0], [3.0, 2.0]]), 1).shape
        (2,)
    """
    return apply_op(ExtremumOp("Max", parse_axes(axes, axis, "Max"), bool(keepdims)), x)


def Min(
    x: Any, *axes: int | Sequence[int], axis: Any = None, keepdims: bool = False
) -> Node:
    """Minimum over the given axes (all when none are given); ties share the gradient evenly.

    Example:
        >>> import graphcore as gc
        >>> gc.Min(gc.NewConstant([[1.0, 5.0], [3.0, 2.0]]), axis=0, keepdims=True).shape
        (1, 2)
    """
    return apply_op(ExtremumOp("Min", parse_axes(axes, axis, "Min"), bool(keepdims)), x)


def LogSumExp(
    x: Any, *axes: int | Sequence[int], axis: Any = None, keepdims: bool = False
) -> Node:
    """``log(sum(exp(x)))`` over the given axes, stable for any finite x.

    With no axes given it reduces the last axis (Gorgonia's ``LogSumExp(a, axis)`` always
    names one); to reduce everything, name every axis (``LogSumExp(x, 0, 1)``). Its gradient
    is ``g * softmax(x)``.

    Example:
        >>> import graphcore as gc
        >>> gc.LogSumExp(gc.NewConstant([[1000.0, 1000.0]])).shape
        (1,)
    """
    ax = parse_axes(axes, axis, "LogSumExp")
    return apply_op(LogSumExpOp(-1 if ax is None else ax, bool(keepdims)), x)


def Norm(x: Any, axis: Any = None, p: int = 2, keepdims: bool = False) -> Node:
    """The p-norm over ``axis`` (an int, a tuple, or ``None`` for the whole tensor).

    ``p=2`` is the Euclidean norm, ``p=1`` the sum of absolute values. The gradient at a zero
    vector is defined as 0 (no NaN).

    Example:
        >>> import graphcore as gc
        >>> gc.Norm(gc.NewConstant([[3.0, 4.0]]), 1).shape
        (1,)
    """
    if isinstance(p, bool) or p not in (1, 2):
        raise ValueError(f"Norm: p must be 1 or 2, got {p!r}")
    return apply_op(NormOp(parse_axes((), axis, "Norm"), int(p), bool(keepdims)), x)
