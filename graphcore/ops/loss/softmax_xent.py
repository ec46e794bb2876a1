"""Softmax cross-entropy: one fused, stable node for the loss, one for its gradient for the
logits, one for the float targets' gradient; each gradient node states the same computation
with graph ops (``expand``), through which second derivatives go.

Softmax is shifted by the row maximum, so the loss is exact for logits of any size. The
common case ((batch, classes) logits, float targets, reduced to a scalar) runs named kernels
of the machine's backend (:mod:`graphcore.kernels`): numpy, or one compiled loop with numba.

Example:
    >>> import graphcore as gc
    >>> g = gc.NewGraph()
    >>> z = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("z"))
    >>> y = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("y"))
    >>> cost = gc.SoftmaxCrossEntropy(z, y)
    >>> gc.Let(z, [[1000.0, -1000.0, 0.0]]); gc.Let(y, [[0.0, 1.0, 0.0]])
    >>> gc.NewTapeMachine(g).run_all(); float(cost.value)
    2000.0
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ...dtypes import Dtype
from ...errors import DtypeError, ShapeError
from ...graph import Node
from ...shapes import Shape, fmt_shape, norm_axes, size_of
from ...values import NewConstant
from ..activation import LogSoftMax, SoftMax
from ..base import ExecContext, Kernel, Op, TypeInfo, apply_op, describe
from ..indexing import ByIndices
from ..linalg import Transpose
from ..reduce import Sum
from .reduction import _check_reduction, _factor, _fits, _saved, _scale

__all__ = [
    "SoftmaxCrossEntropy",
    "SoftmaxCrossEntropyOp",
    "SoftmaxCrossEntropyGradOp",
    "SoftmaxCrossEntropyTargetGradOp",
]


def _one_hot(t: Node, z: Node, ax: int) -> Node:
    """Integer class indices ``t`` as one-hot rows along axis ``ax`` of the logits ``z``."""
    classes = z.shape[ax]
    if classes is None:
        raise ShapeError(
            f"SoftmaxCrossEntropy: differentiating the gradient with integer targets needs a "
            f"known number of classes, but {z.describe()} has a free class axis {ax}; use "
            f"one-hot float targets"
        )
    hot = ByIndices(NewConstant(np.eye(classes), dtype=z.dtype), t, 0)
    if ax == z.ndim - 1:
        return hot
    perm = list(range(z.ndim - 1))
    perm.insert(ax, z.ndim - 1)
    return Transpose(hot, perm)


class _ClassIndex:
    """Flat positions of each row's target class in a C-ordered array of the logits' shape.

    Made once per plan; ``update`` refreshes them from the integer targets and checks range.
    """

    def __init__(self, shape: tuple[int, ...], axis: int, targets: np.ndarray, who: str) -> None:
        self.shape, self.axis, self.t, self.who = shape, axis, targets, who
        self.classes = shape[axis]
        self.stride = size_of(shape[axis + 1 :])
        self.base = np.take(np.arange(size_of(shape)).reshape(shape), 0, axis=axis)
        self.flat = np.empty(self.base.shape, np.int64)

    def update(self) -> np.ndarray:
        t = self.t
        if t.size:
            lo, hi = t.min(), t.max()
            if lo < 0 or hi >= self.classes:
                bad = lo if lo < 0 else hi
                raise ValueError(
                    f"SoftmaxCrossEntropy: class index {int(bad)} in targets {self.who!r} is out "
                    f"of range for {self.classes} classes (logits axis {self.axis}); class "
                    f"indices must lie in [0, {self.classes})"
                )
        np.multiply(t, self.stride, out=self.flat, dtype=np.int64)
        np.add(self.flat, self.base, out=self.flat)
        return self.flat


class SoftmaxCrossEntropyOp(Op):
    """``-sum(t * log_softmax(z))`` along ``axis`` per row, then reduced (mean, sum or none).

    Operands: logits ``z`` and targets ``t`` (z's shape, or integer class indices with z's
    shape less ``axis``).

    Example:
        >>> SoftmaxCrossEntropyOp(-1, "mean")
        SoftmaxCrossEntropy(axis=-1, reduction='mean')
    """

    name = "SoftmaxCrossEntropy"
    arity = 2

    def __init__(self, axis: int, reduction: str) -> None:
        self.axis = axis
        self.reduction = reduction
        self._who = "targets"

    def _ax(self, ndim: int) -> int:
        return norm_axes(self.axis, ndim, "SoftmaxCrossEntropy axis")[0]

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        z, t = ins
        if not z.dtype.is_float:
            raise DtypeError(f"SoftmaxCrossEntropy needs float logits, got {describe(z)}")
        if len(z.shape) == 0:
            raise ShapeError(
                f"SoftmaxCrossEntropy needs logits with a class axis, got a scalar {describe(z)}"
            )
        ax = self._ax(len(z.shape))
        rows = z.shape[:ax] + z.shape[ax + 1 :]
        if t.dtype.is_float:
            if t.dtype != z.dtype:
                raise DtypeError(
                    f"SoftmaxCrossEntropy: logits {describe(z)} and targets {describe(t)} have "
                    f"different dtypes; make both the same float type"
                )
            ok = _fits(z.shape, t.shape)
        elif t.dtype.np.kind in "iu":
            ok = _fits(rows, t.shape)
        else:
            raise DtypeError(
                f"SoftmaxCrossEntropy: targets {describe(t)} must be float (one-hot or "
                f"probabilities) or integer class indices"
            )
        if not ok:
            raise ShapeError(
                f"SoftmaxCrossEntropy: targets {describe(t)} do not fit logits {describe(z)}: "
                f"give float targets of the logits' shape {fmt_shape(z.shape)} (one-hot or "
                f"probabilities) or integer class indices of shape {fmt_shape(rows)}"
            )
        return (rows if self.reduction == "none" else ()), z.dtype

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        z, t = xs
        ax = self._ax(z.ndim)
        keep = z.shape[:ax] + (1,) + z.shape[ax + 1 :]
        rows = z.shape[:ax] + z.shape[ax + 1 :]
        s = np.empty(keep, z.dtype)  # sum(exp(d)), saved for the gradient
        d = np.empty(z.shape, z.dtype)  # z - max, then exp(z - max), saved for the gradient
        st = np.empty(keep, z.dtype) if t.dtype.kind == "f" else None
        ctx.saved[id(self)] = (self, (d, s, st))
        if st is not None and self.reduction != "none" and z.ndim == 2 and ax == 1 and z.size:
            # the common case, (batch, classes) logits and float targets reduced to a
            # scalar: totals instead of per-row losses, in one kernel
            k = ctx.kernels
            scale = 1.0 / z.shape[0] if self.reduction == "mean" else 1.0
            scratch = k.softmax_ce_sum_scratch(z, t, d, s, st, out)
            return lambda: k.softmax_ce_sum(z, t, scale, d, s, st, out, scratch)
        m = np.empty(keep, z.dtype)
        ls = np.empty(keep, z.dtype)
        ls_rows = ls.reshape(rows)
        # per-row loss: into ``out`` itself when it is the result
        per_row = out if self.reduction == "none" else np.empty(rows, z.dtype)
        finish = self._reduce(per_row, out, size_of(rows))
        if st is not None:

            def run() -> None:
                # loss = sum(t) * log(sum(exp(d))) - sum(t * d), with d = z - max(z)
                np.max(z, axis=ax, keepdims=True, out=m)
                np.subtract(z, m, out=d)
                # the numpy stubs give gufuncs no axis= keyword
                np.vecdot(t, d, axis=ax, out=per_row)  # type: ignore[call-overload]
                np.exp(d, out=d)
                np.sum(d, axis=ax, keepdims=True, out=s)
                np.log(s, out=ls)
                np.sum(t, axis=ax, keepdims=True, out=st)
                np.multiply(ls, st, out=ls)
                np.subtract(ls_rows, per_row, out=per_row)
                finish()

            return run

        idx = _ClassIndex(z.shape, ax, t, self._who)
        d_flat = d.reshape(-1)

        def run_idx() -> None:
            # loss = log(sum(exp(d))) - d[target], with d = z - max(z)
            flat = idx.update()
            np.max(z, axis=ax, keepdims=True, out=m)
            np.subtract(z, m, out=d)
            np.take(d_flat, flat, out=per_row, mode="clip")  # in range: checked by update
            np.exp(d, out=d)
            np.sum(d, axis=ax, keepdims=True, out=s)
            np.log(s, out=ls)
            np.subtract(ls_rows, per_row, out=per_row)
            finish()

        return run_idx

    def _reduce(self, per_row: np.ndarray, out: np.ndarray, n: int) -> Kernel:
        if self.reduction == "none":
            return lambda: None
        scale = (1.0 / n if n else 0.0) if self.reduction == "mean" else 1.0

        def run() -> None:
            np.sum(per_row, out=out)
            np.multiply(out, scale, out=out)

        return run

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        z, t = node.children
        gz = gt = None
        if wants[0]:
            op = SoftmaxCrossEntropyGradOp(self.axis, self.reduction, self)
            op._who = self._who
            # the loss node is an operand so its kernel (which saves exp and sums) runs first
            gz = apply_op(op, z, t, g, node)
        if wants[1] and t.dtype.is_float:
            gt = apply_op(SoftmaxCrossEntropyTargetGradOp(self.axis, self.reduction), z, g)
        return [gz, gt]


class SoftmaxCrossEntropyGradOp(Op):
    """Gradient of SoftmaxCrossEntropy for the logits, fused: ``(softmax(z) * sum(t) - t) * g``
    (divided by the number of rows for a mean).

    Operands: logits ``z``, targets ``t``, the upstream gradient ``g`` and the loss node (an
    ordering operand: its kernel saves ``exp(z - max)`` and the row sums this kernel reads).

    Example:
        >>> SoftmaxCrossEntropyGradOp(-1, "mean").name
        'SoftmaxCrossEntropyGrad'
    """

    name = "SoftmaxCrossEntropyGrad"
    arity = 4
    shape_only = (3,)

    def __init__(self, axis: int, reduction: str, source: Op | None = None) -> None:
        self.axis = axis
        self.reduction = reduction
        self._who = "targets"
        self._source = source

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        return ins[0].shape, ins[0].dtype

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        z, t, g, _ = xs
        (ax,) = norm_axes(self.axis, z.ndim)
        keep = z.shape[:ax] + (1,) + z.shape[ax + 1 :]
        ratio = np.empty(keep, z.dtype)
        if self.reduction == "none":
            c_rows = g  # the per-row factor
            c = np.expand_dims(g, ax)
            factor = None
        else:
            c = c_rows = np.empty((), z.dtype)
            factor = _scale(g, self.reduction, size_of(keep), c)
        floats = t.dtype.kind == "f"
        saved = _saved(ctx, self._source, z.shape)
        if saved is not None:  # exp(z - max) and its row sums from the forward kernel
            e, s, st = saved
            prepare = None
        else:  # no saving forward kernel ran in this context: compute them here
            e = np.empty(z.shape, z.dtype)
            s, m = np.empty(keep, z.dtype), np.empty(keep, z.dtype)
            st = np.empty(keep, z.dtype) if floats else None

            def prepare() -> None:
                np.max(z, axis=ax, keepdims=True, out=m)
                np.subtract(z, m, out=e)
                np.exp(e, out=e)
                np.sum(e, axis=ax, keepdims=True, out=s)
                if st is not None:
                    np.sum(t, axis=ax, keepdims=True, out=st)

        def softmax_scaled(num: np.ndarray) -> None:  # out = softmax(z) * num
            if factor is not None:
                factor()
            if prepare is not None:
                prepare()
            np.divide(num, s, out=ratio)
            np.multiply(e, ratio, out=out)

        if floats and prepare is None and factor is not None and z.ndim == 2 and ax == 1:
            # the forward kernel's common case: its saved arrays, one kernel
            k = ctx.kernels
            scratch = k.softmax_ce_grad_scratch(e, s, st, t, c, out)

            def run_matrix() -> None:
                factor()
                k.softmax_ce_grad(e, s, st, t, c, out, scratch)

            return run_matrix

        if floats:

            def run() -> None:
                softmax_scaled(st)
                np.subtract(out, t, out=out)
                np.multiply(out, c, out=out)

            return run

        idx = _ClassIndex(z.shape, ax, t, self._who)
        out_flat = out.reshape(-1)  # out is a fresh C-ordered buffer: a view
        picked = np.empty(idx.base.shape, z.dtype)

        def run_idx() -> None:
            flat = idx.update()
            softmax_scaled(c)
            np.take(out_flat, flat, out=picked, mode="clip")
            np.subtract(picked, c_rows, out=picked)
            np.put(out_flat, flat, picked, mode="clip")

        return run_idx

    def expand(self, node: Node) -> Node:
        z, t, g, _ = node.children
        ax = norm_axes(self.axis, z.ndim)[0]
        p = SoftMax(z, ax)
        d = p * Sum(t, axis=ax, keepdims=True) - t if t.dtype.is_float else p - _one_hot(t, z, ax)
        return d * _factor(g, z, self.reduction, ax)


class SoftmaxCrossEntropyTargetGradOp(Op):
    """Gradient of SoftmaxCrossEntropy for float targets: ``-log_softmax(z) * g``
    (divided by the number of rows for a mean).

    Operands: logits ``z`` and the upstream gradient ``g``.

    Example:
        >>> SoftmaxCrossEntropyTargetGradOp(-1, "sum").name
        'SoftmaxCrossEntropyTargetGrad'
    """

    name = "SoftmaxCrossEntropyTargetGrad"
    arity = 2

    def __init__(self, axis: int, reduction: str) -> None:
        self.axis = axis
        self.reduction = reduction

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        return ins[0].shape, ins[0].dtype

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        z, g = xs
        (ax,) = norm_axes(self.axis, z.ndim)
        keep = z.shape[:ax] + (1,) + z.shape[ax + 1 :]
        m = np.empty(keep, z.dtype)
        s = np.empty(keep, z.dtype)
        e = np.empty(z.shape, z.dtype)
        if self.reduction == "none":
            c = np.expand_dims(g, ax)
            factor = None
        else:
            c = np.empty((), z.dtype)
            factor = _scale(g, self.reduction, size_of(keep), c)

        def run() -> None:
            if factor is not None:
                factor()
            np.max(z, axis=ax, keepdims=True, out=m)
            np.subtract(z, m, out=out)
            np.exp(out, out=e)
            np.sum(e, axis=ax, keepdims=True, out=s)
            np.log(s, out=s)
            np.subtract(s, out, out=out)  # -log_softmax(z)
            np.multiply(out, c, out=out)

        return run

    def expand(self, node: Node) -> Node:
        z, g = node.children
        ax = norm_axes(self.axis, z.ndim)[0]
        return -LogSoftMax(z, ax) * _factor(g, z, self.reduction, ax)

def SoftmaxCrossEntropy(logits: Any, targets: Any, axis: int = -1, reduction: str = "mean") -> Node:
    """Softmax cross-entropy of ``logits`` against ``targets``, fused and stable.

    ``targets`` are either floats of the logits' shape (one-hot rows or probabilities) or
    integer class indices with the logits' shape less ``axis`` (``(batch,)`` for
    ``(batch, classes)`` logits). Per row (every position along the other axes) the loss is
    ``-sum(t * log_softmax(logits))``; ``reduction`` gives their mean (default), their sum,
    or (``"none"``) the per-row values. The gradient for the logits is one fused node,
    ``(softmax(z) * sum(t) - t) / N`` for the mean, finite for logits of any size. Float
    targets also get a gradient (``-log_softmax(z)``, scaled likewise). Logits must be finite
    (mask classes with a large negative number, not ``-inf``); integer class indices out of
    range raise ``ValueError`` when the machine runs.

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph()
        >>> z = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 10), gc.WithName("z"))
        >>> labels = gc.NewVector(g, gc.Int64, gc.WithShape(None), gc.WithName("labels"))
        >>> gc.SoftmaxCrossEntropy(z, labels).shape, gc.SoftmaxCrossEntropy(z, labels,
        ...                                                   reduction="none").shape
        ((), (None,))
    """
    op = SoftmaxCrossEntropyOp(int(axis), _check_reduction("SoftmaxCrossEntropy", reduction))
    node = apply_op(op, logits, targets)
    op._who = node.children[1].name
    return node
