"""Linear reductions over any axes, with keep-dims: ``Sum`` and ``Mean``, and what every
reduction shares: the axes argument (:func:`parse_axes`) and the division by a size known at
run time (:func:`scale_by_inv_size`). ``Max``, ``Min``, ``LogSumExp`` and ``Norm``, whose
gradients read the values, are in :mod:`graphcore.ops.reduce_nonlinear`.

Example:
    >>> import graphcore as gc
    >>> x = gc.NewConstant([[1.0, 2.0], [3.0, 4.0]])
    >>> gc.Sum(x, 1).shape, gc.Mean(x).shape, gc.Sum(x, 0, keepdims=True).shape
    ((2,), (), (1, 2))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..dtypes import Dtype
from ..errors import DtypeError
from ..graph import Node
from ..shapes import Shape, norm_axes, reduced_shape, size_of
from .base import ExecContext, Kernel, Op, TypeInfo, apply_op, describe

__all__ = [
    "Sum",
    "Mean",
    "ReduceOp",
    "ReduceGradOp",
    "parse_axes",
    "ScaleByInvSizeOp",
    "scale_by_inv_size",
]


def parse_axes(axes: tuple[Any, ...], axis: Any, op: str = "reduction") -> Any:
    """Accept ``Sum(x, 1)``, ``Sum(x, 0, 1)``, ``Sum(x, [0, 1])`` and ``Sum(x, axis=1)``.

    Returns None (all axes), an int or a tuple of ints; numpy integers become ints. Anything
    else (a float, a string, a bool, a set) is a ``TypeError`` naming ``op``.

    Example:
        >>> parse_axes((0, 1), None, "Sum"), parse_axes((), [1], "Sum")
        ((0, 1), (1,))
    """
    if axis is not None:
        if axes:
            raise TypeError(f"{op}: give the axes either positionally or as axis=..., not both")
        given = axis
    elif not axes:
        return None
    else:
        given = axes[0] if len(axes) == 1 else tuple(axes)
    if _is_axis(given):
        return int(given)
    if isinstance(given, (list, tuple)) and all(_is_axis(a) for a in given):
        return tuple(int(a) for a in given)
    raise TypeError(
        f"{op}: axes must be integers (an int, several ints, or a list/tuple of ints; None "
        f"for all axes), got {given!r}; e.g. {op}(x, 1) or {op}(x, axis=(0, 1))"
    )


def _is_axis(a: Any) -> bool:
    # bool is an int subclass, but Sum(x, True) is surely a mistake (keepdims=True?)
    return isinstance(a, (int, np.integer)) and not isinstance(a, (bool, np.bool_))


class ReduceOp(Op):
    """Sum or mean over ``axes`` (``None``: all).

    Example:
        >>> ReduceOp("Sum", None, False).name
        'Sum'
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
        if self.name == "Mean" and not x.dtype.is_float:
            raise DtypeError(f"Mean needs a float operand, got {describe(x)}")
        axes = self._axes(len(x.shape))
        return reduced_shape(x.shape, axes, self.keepdims), x.dtype

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        x = xs[0]
        axes = self._axes(x.ndim)
        o = out.reshape(reduced_shape(x.shape, axes, False))
        # defs, not lambdas: a kernel returns None, not the array numpy hands back
        if self.name == "Sum":

            def run_sum() -> None:
                np.sum(x, axis=axes, out=o)

            return run_sum

        def run_mean() -> None:
            np.mean(x, axis=axes, out=o)

        return run_mean

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        x = node.children[0]
        return [
            apply_op(ReduceGradOp(self._axes(x.ndim), self.keepdims, self.name == "Mean"), g, x)
        ]


class ReduceGradOp(Op):
    """Spread ``g`` back over the reduced axes of ``x`` (divided by their size for a mean).

    Example:
        >>> ReduceGradOp((0,), False, True).name
        'ReduceGrad'
    """

    name = "ReduceGrad"
    arity = 2
    shape_only = (1,)

    def __init__(self, axes: tuple[int, ...], keepdims: bool, mean: bool) -> None:
        self.axes = axes
        self.keepdims = keepdims
        self.mean = mean

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        return ins[1].shape, ins[0].dtype

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        g = xs[0].reshape(reduced_shape(out.shape, self.axes, True))
        if not self.mean:
            return lambda: np.copyto(out, g)
        n = size_of(tuple(out.shape[a] for a in self.axes))
        scale = 1.0 / n if n else 0.0
        return lambda: np.multiply(g, scale, out=out)

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        if not wants[0]:
            return [None, None]
        op = ReduceOp("Mean" if self.mean else "Sum", self.axes, self.keepdims)
        if self.mean:
            # d/dg of broadcast(g)/n is the mean of the upstream gradient, rescaled
            s = apply_op(ReduceOp("Sum", self.axes, self.keepdims), g)
            return [scale_by_inv_size(s, node.children[1], self.axes), None]
        return [apply_op(op, g), None]


class ScaleByInvSizeOp(Op):
    """``x / n``, ``n`` the number of elements of operand 1 (shape only) along ``axes``, known
    when the machine runs: a mean's divisor, free (None) dimensions included.

    Example:
        >>> ScaleByInvSizeOp((0,)).shape_only
        (1,)
    """

    name = "ScaleByInvSize"
    arity = 2
    shape_only = (1,)

    def __init__(self, axes: tuple[int, ...]) -> None:
        self.axes = axes

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        return ins[0].shape, ins[0].dtype

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        n = size_of(tuple(xs[1].shape[a] for a in self.axes))
        x, s = xs[0], (1.0 / n if n else 0.0)
        return lambda: np.multiply(x, s, out=out)

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        return [scale_by_inv_size(g, node.children[1], self.axes), None]


def scale_by_inv_size(x: Node, like: Node, axes: Sequence[int]) -> Node:
    """``x`` divided by the size of ``like`` along ``axes`` (at run time: free dimensions
    count with their bound size).

    Example:
        >>> import graphcore as gc
        >>> like = gc.NewConstant(np.zeros((4, 3)))
        >>> scale_by_inv_size(gc.NewConstant(1.0), like, (0, 1)).op.name
        'ScaleByInvSize'
    """
    return apply_op(ScaleByInvSizeOp(tuple(axes)), x, like)


def Sum(
    x: Any, *axes: int | Sequence[int], axis: Any = None, keepdims: bool = False
) -> Node:
    """Sum over the given axes (all when none are given).

    Example:
        >>> import graphcore as gc
        >>> gc.Sum(gc.NewConstant([[1.0, 2.0]]), 1).shape
        (1,)
    """
    return apply_op(ReduceOp("Sum", parse_axes(axes, axis, "Sum"), bool(keepdims)), x)


def Mean(
    x: Any, *axes: int | Sequence[int], axis: Any = None, keepdims: bool = False
) -> Node:
    """Mean over the given axes (all when none are given); free dimensions count at run time.

    Example:
        >>> import graphcore as gc
        >>> gc.Mean(gc.NewConstant([[1.0, 2.0]])).shape
        ()
    """
    return apply_op(ReduceOp("Mean", parse_axes(axes, axis, "Mean"), bool(keepdims)), x)
