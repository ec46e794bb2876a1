"""Fused, numerically stable losses on logits: ``SoftmaxCrossEntropy`` and
``SigmoidBinaryCrossEntropy``; and Gorgonia's ``BinaryXent`` on probabilities, with its logs
floored at -100.

Each loss is one node whose gradient is one fused node, computed in a few passes over memory
with scratch buffers made once per plan; the gradient nodes state the same computation with
graph ops (``expand``), through which second derivatives go. Both losses stay finite and
exact for logits of any size (±1000 included): softmax is shifted by the row maximum, and
the sigmoid loss uses ``max(z, 0) - z*t + log1p(exp(-|z|))``. The sigmoid loss and the
common softmax case ((batch, classes) logits, float targets, reduced to a scalar) run named
kernels of the machine's backend (:mod:`graphcore.kernels`): numpy, or one compiled loop
with numba.

Example:
    >>> import numpy as np, graphcore as gc
    >>> g = gc.NewGraph()
    >>> z = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("z"))
    >>> y = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("y"))
    >>> cost = gc.SoftmaxCrossEntropy(z, y)
    >>> gc.Let(z, [[1000.0, -1000.0, 0.0]]); gc.Let(y, [[0.0, 1.0, 0.0]])
    >>> gc.NewTapeMachine(g).run_all(); float(cost.value)
    2000.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..dtypes import Dtype
from ..errors import DtypeError, ShapeError
from ..graph import Node
from ..kernels import filled
from ..shapes import Shape, fmt_shape, norm_axes, size_of
from ..values import NewConstant
from .activation import LogSoftMax, SoftMax
from .base import ExecContext, Kernel, Op, TypeInfo, apply_op, describe
from .elementwise import Log, Maximum, Sigmoid, mask
from .linalg import Transpose
from .reduce import Sum, scale_by_inv_size
from .shape import ByIndices, Reshape

__all__ = [
    "SoftmaxCrossEntropy",
    "SigmoidBinaryCrossEntropy",
    "SoftmaxCrossEntropyOp",
    "SoftmaxCrossEntropyGradOp",
    "SoftmaxCrossEntropyTargetGradOp",
    "SigmoidBinaryCrossEntropyOp",
    "SigmoidBinaryCrossEntropyGradOp",
    "SigmoidBinaryCrossEntropyTargetGradOp",
    "BinaryXent",
    "BinaryXentOp",
    "BinaryXentGradOp",
]

REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(name: str, reduction: str) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(
            f"{name}: reduction must be one of {', '.join(map(repr, REDUCTIONS))}, "
            f"got {reduction!r}"
        )
    return reduction


def _fits(a: Shape, b: Shape) -> bool:
    """Same rank and every dimension equal (a free dimension fits any size)."""
    if len(a) != len(b):
        return False
    return all(p is None or q is None or p == q for p, q in zip(a, b, strict=True))


def _scale(g: np.ndarray, reduction: str, n: int, out: np.ndarray) -> Kernel:
    """A kernel writing into the 0-d ``out`` the factor a mean or sum loss's gradient takes."""
    inv = (1.0 / n if n else 0.0) if reduction == "mean" else 1.0
    return lambda: np.multiply(g, inv, out=out)


def _saved(ctx: ExecContext, source: Op | None, shape: tuple[int, ...]) -> Any:
    """The arrays ``source``'s forward kernel saved in ``ctx`` (a tuple whose first array has
    the logits' ``shape``), or None.

    A machine builds the forward kernel before the gradient's (the loss node is an operand
    of its gradient node), so the entry, when there is one, belongs to the same plan.
    """
    entry = ctx.saved.get(id(source)) if source is not None else None
    if entry is None or entry[0] is not source or entry[1][0].shape != tuple(shape):
        return None
    return entry[1]


# ----- graph-op forms of the fused gradients (for second derivatives) --------------------------


def _factor(g: Node, z: Node, reduction: str, ax: int | None) -> Node:
    """What multiplies a per-element gradient: ``g`` for a sum, ``g / N`` for a mean (``N``
    rows, or every element when ``ax`` is None), ``g`` per row (kept axis ``ax``) for none."""
    if reduction == "sum":
        return g
    if reduction == "mean":
        rows = tuple(i for i in range(z.ndim) if i != ax)
        return scale_by_inv_size(g, z, rows)
    return g if ax is None else Reshape(g, z.shape[:ax] + (1,) + z.shape[ax + 1 :])


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


# ----- softmax cross-entropy ------------------------------------------------------------------


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
                np.vecdot(t, d, axis=ax, out=per_row)
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


# ----- sigmoid binary cross-entropy -----------------------------------------------------------


class SigmoidBinaryCrossEntropyOp(Op):
    """``max(z, 0) - z*t + log1p(exp(-|z|))`` elementwise, then reduced (mean, sum or none).

    Example:
        >>> SigmoidBinaryCrossEntropyOp("mean")
        SigmoidBinaryCrossEntropy(reduction='mean')
    """

    name = "SigmoidBinaryCrossEntropy"
    arity = 2

    def __init__(self, reduction: str) -> None:
        self.reduction = reduction

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        z, t = ins
        if not z.dtype.is_float or t.dtype != z.dtype:
            raise DtypeError(
                f"SigmoidBinaryCrossEntropy needs float logits and targets of the same dtype, "
                f"got logits {describe(z)} and targets {describe(t)}"
            )
        if not _fits(z.shape, t.shape):
            raise ShapeError(
                f"SigmoidBinaryCrossEntropy: logits {describe(z)} and targets {describe(t)} "
                f"must have the same shape"
            )
        return (z.shape if self.reduction == "none" else ()), z.dtype

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        # per element: softplus(z) - z*t = max(z, 0) + log(1 + e^-|z|) - z*t. The sigmoid
        # comes out of the same exp and is saved for the gradient kernel.
        z, t = xs
        k = ctx.kernels
        sig = np.empty(z.shape, z.dtype)
        ctx.saved[id(self)] = (self, (sig,))
        if self.reduction == "none":
            scratch = k.sigmoid_bce_scratch(z, t, sig, out)
            return lambda: k.sigmoid_bce(z, t, sig, out, scratch)
        n = z.size
        scale = (1.0 / n if n else 0.0) if self.reduction == "mean" else 1.0
        scratch = k.sigmoid_bce_sum_scratch(z, t, sig, out)
        return lambda: k.sigmoid_bce_sum(z, t, scale, sig, out, scratch)

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        z, t = node.children
        gz = gt = None
        if wants[0]:
            # the loss node is an operand so its kernel (which saves the sigmoid) runs first
            gz = apply_op(SigmoidBinaryCrossEntropyGradOp(self.reduction, self), z, t, g, node)
        if wants[1]:
            gt = apply_op(SigmoidBinaryCrossEntropyTargetGradOp(self.reduction), z, g)
        return [gz, gt]


class SigmoidBinaryCrossEntropyGradOp(Op):
    """Gradient of SigmoidBinaryCrossEntropy for the logits, fused: ``(sigmoid(z) - t) * g``
    (divided by the number of elements for a mean).

    Operands: logits ``z``, targets ``t``, the upstream gradient ``g`` and the loss node (an
    ordering operand: its kernel saves the sigmoid this kernel reads, so it is not computed
    twice).

    Example:
        >>> SigmoidBinaryCrossEntropyGradOp("mean").name
        'SigmoidBinaryCrossEntropyGrad'
    """

    name = "SigmoidBinaryCrossEntropyGrad"
    arity = 4
    shape_only = (3,)

    def __init__(self, reduction: str, source: Op | None = None) -> None:
        self.reduction = reduction
        self._source = source

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        return ins[0].shape, ins[0].dtype

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        z, t, g, _ = xs
        if self.reduction == "none":
            c, factor = g, None
        else:
            c = np.empty((), z.dtype)
            factor = _scale(g, self.reduction, z.size, c)
        saved = _saved(ctx, self._source, z.shape)
        k = ctx.kernels
        fresh = saved is None  # no saving forward kernel ran in this context: compute it here
        sig = np.empty(z.shape, z.dtype) if fresh else saved[0]
        sig_scratch = k.sigmoid_scratch(z, sig) if fresh else None
        scratch = k.sigmoid_bce_grad_scratch(sig, t, c, out)

        def run() -> None:
            if factor is not None:
                factor()
            if fresh:
                k.sigmoid(z, sig, sig_scratch)
            k.sigmoid_bce_grad(sig, t, c, out, scratch)

        return run

    def expand(self, node: Node) -> Node:
        z, t, g, _ = node.children
        return (Sigmoid(z) - t) * _factor(g, z, self.reduction, None)


class SigmoidBinaryCrossEntropyTargetGradOp(Op):
    """Gradient of SigmoidBinaryCrossEntropy for the targets: ``-z * g`` (divided by the number
    of elements for a mean).

    Example:
        >>> SigmoidBinaryCrossEntropyTargetGradOp("sum").name
        'SigmoidBinaryCrossEntropyTargetGrad'
    """

    name = "SigmoidBinaryCrossEntropyTargetGrad"
    arity = 2

    def __init__(self, reduction: str) -> None:
        self.reduction = reduction

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        return ins[0].shape, ins[0].dtype

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        z, g = xs
        if self.reduction == "none":

            def run_none() -> None:
                np.multiply(z, g, out=out)
                np.negative(out, out=out)

            return run_none

        c = np.empty((), z.dtype)
        factor = _scale(g, self.reduction, z.size, c)

        def run() -> None:
            factor()
            np.negative(c, out=c)
            np.multiply(z, c, out=out)

        return run

    def expand(self, node: Node) -> Node:
        z, g = node.children
        return -z * _factor(g, z, self.reduction, None)


# ----- binary cross-entropy on probabilities ---------------------------------------------------


def log_floor(dt: Any) -> float:
    """What BinaryXent takes the log of at least: ``e^-100`` (PyTorch clamps its logs at -100),
    or the dtype's smallest normal number where that is larger (float32: 1.2e-38, a log of
    -87.3), so that ``1 / floor``, in the gradient, is finite too.

    Example:
        >>> log_floor(np.float64) == math.exp(-100), round(math.log(log_floor(np.float32)), 1)
        (True, -87.3)
    """
    return max(math.exp(-100.0), float(np.finfo(dt).tiny))


class BinaryXentOp(Op):
    """``-(t * log(max(p, f)) + (1 - t) * log(max(1 - p, f)))`` elementwise, then reduced
    (mean, sum or none), with ``f = log_floor(dtype)`` (``e^-100`` in float64): each log term
    is at least -100, so the loss is finite for any ``p`` in [0, 1], 0 and 1 included.

    Example:
        >>> BinaryXentOp("none")
        BinaryXent(reduction='none')
    """

    name = "BinaryXent"
    arity = 2

    def __init__(self, reduction: str) -> None:
        self.reduction = reduction

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        p, t = ins
        if not p.dtype.is_float or t.dtype != p.dtype:
            raise DtypeError(
                f"BinaryXent needs float probabilities and targets of the same dtype, got "
                f"probabilities {describe(p)} and targets {describe(t)}; convert the targets "
                f"to the probabilities' dtype"
            )
        if not _fits(p.shape, t.shape):
            raise ShapeError(
                f"BinaryXent: probabilities {describe(p)} and targets {describe(t)} must have "
                f"the same shape"
            )
        return (p.shape if self.reduction == "none" else ()), p.dtype

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        p, t = xs
        floor = filled(log_floor(p.dtype), p.shape, p.dtype)
        lp, lq = np.empty(p.shape, p.dtype), np.empty(p.shape, p.dtype)
        per = out if self.reduction == "none" else lp
        n = p.size
        scale = (1.0 / n if n else 0.0) if self.reduction == "mean" else 1.0

        def run() -> None:
            np.maximum(p, floor, out=lp)
            np.log(lp, out=lp)
            np.subtract(1.0, p, out=lq)
            np.maximum(lq, floor, out=lq)
            np.log(lq, out=lq)
            # -(t*lp + (1-t)*lq) = -(lq + t*(lp - lq))
            np.subtract(lp, lq, out=lp)
            np.multiply(lp, t, out=per)
            np.add(per, lq, out=per)
            if self.reduction == "none":
                np.negative(per, out=per)
                return
            np.sum(per, out=out)
            np.multiply(out, -scale, out=out)

        return run

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        p, t = node.children
        gp = apply_op(BinaryXentGradOp(self.reduction), p, t, g) if wants[0] else None
        gt = None
        if wants[1]:
            floor = log_floor(p.dtype.np)
            logs = Log(Maximum(p, floor)) - Log(Maximum(1.0 - p, floor))
            gt = -logs * _factor(g, p, self.reduction, None)
        return [gp, gt]


class BinaryXentGradOp(Op):
    """Gradient of BinaryXent for the probabilities, fused: ``((1 - t) * [1 - p > f] / (1 - p)
    - t * [p > f] / p) * g`` (divided by the number of elements for a mean), ``f`` the log
    floor: the exact derivative of the floored loss, 0 where a log is floored (the loss is
    flat there), and finite for every ``p`` in [0, 1] (``1 / f`` is).

    Example:
        >>> BinaryXentGradOp("mean").name
        'BinaryXentGrad'
    """

    name = "BinaryXentGrad"
    arity = 3

    def __init__(self, reduction: str) -> None:
        self.reduction = reduction

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        return ins[0].shape, ins[0].dtype

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        p, t, g = xs
        floor = filled(log_floor(p.dtype), p.shape, p.dtype)
        a, q, m = (np.empty(p.shape, p.dtype) for _ in range(3))
        if self.reduction == "none":
            c, factor = g, None
        else:
            c = np.empty((), p.dtype)
            factor = _scale(g, self.reduction, p.size, c)

        def run() -> None:
            if factor is not None:
                factor()
            # masks before divisions: a floored term is 0, never 0 * (1 / 0)
            np.greater(p, floor, out=m)
            np.multiply(t, m, out=m)
            np.maximum(p, floor, out=a)
            np.divide(m, a, out=a)  # t * [p > floor] / p
            np.subtract(1.0, p, out=q)
            np.greater(q, floor, out=m)
            np.maximum(q, floor, out=q)
            np.subtract(1.0, t, out=out)
            np.multiply(out, m, out=out)
            np.divide(out, q, out=out)  # (1 - t) * [1 - p > floor] / (1 - p)
            np.subtract(out, a, out=out)
            np.multiply(out, c, out=out)

        return run

    def expand(self, node: Node) -> Node:
        p, t, g = node.children
        floor = log_floor(p.dtype.np)
        q = 1.0 - p
        d = (1.0 - t) * mask("Gt", q, floor) / Maximum(q, floor)
        d = d - t * mask("Gt", p, floor) / Maximum(p, floor)
        return d * _factor(g, p, self.reduction, None)


# ----- public functions -----------------------------------------------------------------------


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


def SigmoidBinaryCrossEntropy(logits: Any, targets: Any, reduction: str = "mean") -> Node:
    """Binary cross-entropy of ``sigmoid(logits)`` against targets in [0, 1], fused and stable.

    Elementwise ``max(z, 0) - z*t + log1p(exp(-|z|))``; ``reduction`` gives the mean over
    every element (default), the sum, or (``"none"``) the elementwise values. The gradient
    for the logits is one fused node, ``(sigmoid(z) - t) / N`` for the mean.

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph()
        >>> z = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 1), gc.WithName("z"))
        >>> y = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 1), gc.WithName("y"))
        >>> gc.SigmoidBinaryCrossEntropy(z, y).shape
        ()
    """
    op = SigmoidBinaryCrossEntropyOp(_check_reduction("SigmoidBinaryCrossEntropy", reduction))
    return apply_op(op, logits, targets)


def BinaryXent(p: Any, t: Any, reduction: str = "none") -> Node:
    """Binary cross-entropy of probabilities ``p`` in [0, 1] against targets ``t``:
    ``-(t * log(p) + (1 - t) * log(1 - p))`` elementwise (Gorgonia's ``BinaryXent``), with
    ``reduction`` "none" (the default, as Gorgonia), "mean" or "sum".

    Each log is floored at -100, as PyTorch's ``binary_cross_entropy`` clamps its logs, by
    taking the log of ``max(p, f)`` and ``max(1 - p, f)`` with ``f = e^-100`` in float64 (in
    float32, where that is subnormal, ``f`` is the smallest normal number, a floor of -87.3):
    the loss is finite (at most 100 per term) for ``p`` exactly 0 or 1, where Gorgonia's
    ``1e-16`` rounds away in float32 and float64 and gives ``inf``. The gradient is the exact
    derivative of that floored loss, finite everywhere in [0, 1] (0 where a log is floored,
    where PyTorch's is a large finite surrogate). Prefer ``SigmoidBinaryCrossEntropy`` on
    logits when you have them: it is exact where probabilities round to 0 or 1.

    Example:
        >>> import numpy as np, graphcore as gc
        >>> g = gc.NewGraph()
        >>> p = gc.NodeFromAny(g, np.array([0.5, 0.0, 1.0]), gc.WithName("p"))
        >>> t = gc.NodeFromAny(g, np.array([1.0, 1.0, 1.0]), gc.WithName("t"))
        >>> loss = gc.BinaryXent(p, t); gc.NewTapeMachine(g).run_all()
        >>> np.round(loss.value, 4).tolist()
        [0.6931, 100.0, -0.0]
    """
    return apply_op(BinaryXentOp(_check_reduction("BinaryXent", reduction)), p, t)
