"""Batch normalisation: ``BatchNorm(x, gamma, beta)`` reads a ``BatchNormStats(x)`` node.

The statistics node holds per-channel mean and 1/std: batch statistics in training, running
statistics in eval; the running statistics are arrays owned by that op (or passed in by a
layer), updated in place by training runs. The backward pass is three fused ops
(``BatchNormSums``, ``BatchNormGrad``, ``PickRow``); each expands into graph ops for second
derivatives, where the statistics' own dependence on x (``BatchNormStats``'s gradient) comes
in, in training runs only.

Example:
    >>> import numpy as np, graphcore as gc
    >>> g = gc.NewGraph()
    >>> x = gc.NewTensor(g, gc.Float32, 4, gc.WithShape(None, 8, 5, 5), gc.WithName("x"))
    >>> y = gc.BatchNorm(x, np.ones(8, np.float32), np.zeros(8, np.float32))
    >>> y.shape, y.children[1].op.name
    ((None, 8, 5, 5), 'BatchNormStats')
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ...dtypes import Dtype
from ...errors import DtypeError, ShapeError
from ...graph import Node
from ...shapes import Shape, fmt_shape
from ...values import as_node
from ..base import ExecContext, Kernel, Op, TypeInfo, apply_op, describe, same_dtype
from ..elementwise import Cube
from ..images import contiguous
from ..indexing import Slice
from ..reduce import Sum, scale_by_inv_size
from ..shape import Concat, Reshape

__all__ = [
    "BatchNorm", "BatchNormStatsOp", "TrainingOnlyOp", "training_only", "BatchNormOp",
    "BatchNormSumsOp", "BatchNormGradOp", "PickRowOp",
]


def _bn_axes(ndim: int) -> tuple[int, ...]:
    """Axes batch norm reduces over: all but channel axis 1 ((N, C): (0,); NCHW: (0, 2, 3))."""
    return (0, *range(2, ndim))


def _bcast(ndim: int, c: int) -> tuple[int, ...]:
    return (1, c) + (1,) * (ndim - 2)


class BatchNormStatsOp(Op):
    """Per-channel (mean, 1/sqrt(var + eps)) as a (2, C) array, from x.

    Training runs use the batch's statistics (biased variance) and update the running ones in
    place: ``running = (1 - momentum) * running + momentum * batch``, with the unbiased variance
    for ``running_var`` (as PyTorch). Training needs more than one value per channel (as
    PyTorch; one value would normalise to 0 and output beta); eval runs, which use the running
    statistics, take any non-empty batch. ``running_mean`` and ``running_var`` are plain
    arrays of shape (C,), owned by whoever made the op (a layer shares them among all the
    nodes it builds).

    Example:
        >>> op = BatchNormStatsOp(np.zeros(3), np.ones(3), 0.1, 1e-5)
        >>> op.running_var.tolist()
        [1.0, 1.0, 1.0]
    """

    name = "BatchNormStats"
    arity = 1

    def __init__(
        self, running_mean: np.ndarray, running_var: np.ndarray, momentum: float, eps: float
    ) -> None:
        self.running_mean = running_mean
        self.running_var = running_var
        self.momentum = momentum
        self.eps = eps
        # set by BatchNorm once the nodes exist: run-time errors name them
        self._where = "BatchNorm"

    def params(self) -> dict[str, Any]:
        return {"momentum": self.momentum, "eps": self.eps}

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        (x,) = ins
        _bn_check_input(x)
        c = x.shape[1]
        if any(d == 0 for i, d in enumerate(x.shape) if i != 1):
            raise ShapeError(
                f"BatchNorm: input {describe(x)} has no values per channel (a dimension other "
                f"than the channels is 0, e.g. an empty batch); give it at least one example "
                f"(two in training)"
            )
        if self.running_mean.shape != (c,) or self.running_var.shape != (c,):
            raise ShapeError(
                f"BatchNorm: running statistics have shapes {fmt_shape(self.running_mean.shape)}"
                f" and {fmt_shape(self.running_var.shape)}, but {describe(x)} has {c} channels"
            )
        return (2, c), x.dtype

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        x = xs[0]
        axes = _bn_axes(x.ndim)
        c = x.shape[1]
        m_count = x.size // c
        mean, inv = out[0], out[1]
        mean_b = mean.reshape(_bcast(x.ndim, c))
        dev = np.empty_like(x)
        var = np.empty(c, x.dtype)
        tmp = np.empty(c, self.running_mean.dtype)
        rm, rv, mom, eps = self.running_mean, self.running_var, self.momentum, self.eps
        unbias = m_count / (m_count - 1) if m_count > 1 else 1.0
        where = self._where

        def run() -> None:
            if not ctx.training:
                np.copyto(mean, rm)
                np.add(rv, eps, out=inv)
                np.sqrt(inv, out=inv)
                np.reciprocal(inv, out=inv)
                return
            if m_count < 2:
                raise ShapeError(
                    f"{where}: training needs more than 1 value per channel to compute batch "
                    f"statistics, but the input has shape {x.shape} ({m_count} value per "
                    f"channel; one would normalise to 0 and output beta); train with a batch "
                    f"of 2 or more, or run in eval mode (EvalMode(), vm.training = False) to "
                    f"use the running statistics"
                )
            np.add.reduce(x, axis=axes, out=mean)
            np.multiply(mean, 1.0 / m_count, out=mean)
            np.subtract(x, mean_b, out=dev)
            np.square(dev, out=dev)
            np.add.reduce(dev, axis=axes, out=var)
            np.multiply(var, 1.0 / m_count, out=var)
            # running statistics, in place (they are shared with the layer that owns them)
            np.multiply(mean, mom, out=tmp)
            np.multiply(rm, 1.0 - mom, out=rm)
            np.add(rm, tmp, out=rm)
            np.multiply(var, mom * unbias, out=tmp)
            np.multiply(rv, 1.0 - mom, out=rv)
            np.add(rv, tmp, out=rv)
            np.add(var, eps, out=inv)
            np.sqrt(inv, out=inv)
            np.reciprocal(inv, out=inv)

        return run

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        # Only second derivatives get here (BatchNorm's own rule folds the statistics into dx).
        # mean = sum(x)/M and inv = (var + eps)^-1/2 with var = sum((x - mean)^2)/M, so
        # dx = (g_mean - g_inv * inv^3 * (x - mean)) / M; in eval the statistics are constants.
        (x,) = node.children
        dev = x - _per_channel(node, 0, x)
        dx = _per_channel(g, 0, x) - _per_channel(g, 1, x) * Cube(_per_channel(node, 1, x)) * dev
        return [training_only(scale_by_inv_size(dx, x, _bn_axes(x.ndim)))]


def _per_channel(stats: Node, row: int, x: Node) -> Node:
    """Row ``row`` of a (2, C) node, shaped to broadcast against ``x``."""
    return Reshape(Slice(stats, row), _bcast(x.ndim, x.shape[1]))


class TrainingOnlyOp(Op):
    """Its operand in training runs, zeros in eval runs: a term of a derivative that exists
    only while batch statistics depend on the batch.

    Example:
        >>> TrainingOnlyOp().name
        'TrainingOnly'
    """

    name = "TrainingOnly"
    arity = 1

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        return ins[0].shape, ins[0].dtype

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        x = xs[0]

        def run() -> None:
            if ctx.training:
                np.copyto(out, x)
            else:
                out.fill(0)

        return run

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        return [training_only(g)]


def training_only(x: Node) -> Node:
    """``x`` in training runs, zeros in eval runs (see :class:`TrainingOnlyOp`).

    Example:
        >>> import graphcore as gc
        >>> training_only(gc.NewConstant([1.0])).op.name
        'TrainingOnly'
    """
    return apply_op(TrainingOnlyOp(), x)


def _bn_check_input(x: TypeInfo) -> None:
    if not x.dtype.is_float:
        raise DtypeError(f"BatchNorm needs a Float32 or Float64 input, got {describe(x)}")
    if len(x.shape) < 2 or x.shape[1] is None or any(d is None for d in x.shape[2:]):
        raise ShapeError(
            f"BatchNorm: input {describe(x)} must be (N, C) or (N, C, H, W) with known "
            f"channels (and spatial sizes); only the batch dimension may be None"
        )


class BatchNormOp(Op):
    """``gamma * (x - mean) / std + beta`` per channel: operands x, stats (2, C), gamma, beta.

    Example:
        >>> BatchNormOp().name
        'BatchNorm'
    """

    name = "BatchNorm"
    arity = 4
    inplace = True

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        x, stats, gamma, beta = ins
        dt = same_dtype(self.name, ins, float_only=True)
        return x.shape, dt

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        x, stats, gamma, beta = xs
        c = x.shape[1]
        bshape = _bcast(x.ndim, c)
        scale = np.empty(c, x.dtype)
        shift = np.empty(c, x.dtype)
        scale_b, shift_b = scale.reshape(bshape), shift.reshape(bshape)
        mean, inv = stats[0], stats[1]
        gamma1, g_refresh = contiguous(gamma, (c,))
        beta1, b_refresh = contiguous(beta, (c,))

        def run() -> None:
            if g_refresh is not None:
                g_refresh()
            if b_refresh is not None:
                b_refresh()
            np.multiply(gamma1, inv, out=scale)
            np.multiply(mean, scale, out=shift)
            np.subtract(beta1, shift, out=shift)
            np.multiply(x, scale_b, out=out)
            np.add(out, shift_b, out=out)

        return run

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        x, stats, gamma, beta = node.children
        sums = apply_op(BatchNormSumsOp(), x, stats, g)
        return [
            apply_op(BatchNormGradOp(), x, stats, gamma, g, sums) if wants[0] else None,
            None,
            apply_op(PickRowOp(1, gamma.shape), sums) if wants[2] else None,
            apply_op(PickRowOp(0, beta.shape), sums) if wants[3] else None,
        ]


class BatchNormSumsOp(Op):
    """Per channel [sum(g), sum(g * xhat)] as (2, C): dbeta, dgamma, and what dx needs.

    Example:
        >>> BatchNormSumsOp().name
        'BatchNormSums'
    """

    name = "BatchNormSums"
    arity = 3

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        x, stats, g = ins
        return stats.shape, same_dtype(self.name, ins)

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        x, stats, g = xs
        axes = _bn_axes(x.ndim)
        mean_b = stats[0].reshape(_bcast(x.ndim, x.shape[1]))
        inv = stats[1]
        sum_g, sum_gx = out[0], out[1]
        dev = np.empty_like(x)

        def run() -> None:
            np.add.reduce(g, axis=axes, out=sum_g)
            np.subtract(x, mean_b, out=dev)
            np.multiply(dev, g, out=dev)
            np.add.reduce(dev, axis=axes, out=sum_gx)
            np.multiply(sum_gx, inv, out=sum_gx)

        return run

    def expand(self, node: Node) -> Node:
        x, stats, g = node.children
        axes, c = _bn_axes(x.ndim), x.shape[1]
        sum_g = Sum(g, axis=axes)
        sum_gx = Sum(g * (x - _per_channel(stats, 0, x)), axis=axes) * Slice(stats, 1)
        return Concat(0, Reshape(sum_g, (1, c)), Reshape(sum_gx, (1, c)))


class BatchNormGradOp(Op):
    """dx from x, stats, gamma, g and the sums; the full formula in training, affine in eval.

    Training: dx = gamma * inv * (g - sum(g)/M - xhat * sum(g*xhat)/M), M values per channel.
    Eval (statistics are constants): dx = gamma * inv * g.

    Example:
        >>> BatchNormGradOp().arity
        5
    """

    name = "BatchNormGrad"
    arity = 5

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        return ins[0].shape, same_dtype(self.name, ins)

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        x, stats, gamma, g, sums = xs
        c = x.shape[1]
        m_count = x.size // c
        bshape = _bcast(x.ndim, c)
        mean, inv = stats[0], stats[1]
        gamma1, g_refresh = contiguous(gamma, (c,))
        scale, k, shift, tmp = (np.empty(c, x.dtype) for _ in range(4))
        scale_b, k_b, shift_b = (a.reshape(bshape) for a in (scale, k, shift))

        def run() -> None:
            if g_refresh is not None:
                g_refresh()
            np.multiply(gamma1, inv, out=scale)
            if not ctx.training:
                np.multiply(g, scale_b, out=out)
                return
            # xhat * (-S1/M) = x * k - mean * k with k = -inv * S1 / M, so
            # dx = scale * (x * k + g + shift) with shift = -mean * k - S0 / M: four passes
            np.multiply(sums[1], inv, out=k)
            np.multiply(k, -1.0 / m_count, out=k)
            np.multiply(mean, k, out=shift)
            np.multiply(sums[0], 1.0 / m_count, out=tmp)
            np.add(shift, tmp, out=shift)
            np.negative(shift, out=shift)
            np.multiply(x, k_b, out=out)
            np.add(out, g, out=out)
            np.add(out, shift_b, out=out)
            np.multiply(out, scale_b, out=out)

        return run

    def expand(self, node: Node) -> Node:
        x, stats, gamma, g, sums = node.children
        inv = _per_channel(stats, 1, x)
        scale = Reshape(gamma, _bcast(x.ndim, x.shape[1])) * inv
        xhat = (x - _per_channel(stats, 0, x)) * inv
        centring = _per_channel(sums, 0, x) + xhat * _per_channel(sums, 1, x)
        return scale * (g - training_only(scale_by_inv_size(centring, x, _bn_axes(x.ndim))))


class PickRowOp(Op):
    """Row ``i`` of a (2, C) array, shaped like the parameter it is the gradient of.

    A copy, not a view: C values, and a gradient bound to a learnable needs its own buffer.

    Example:
        >>> PickRowOp(0, (3,)).params()
        {'row': 0, 'shape': (3,)}
    """

    name = "PickRow"
    arity = 1

    def __init__(self, row: int, shape: Shape) -> None:
        self.row = row
        self.shape = shape

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        return self.shape, ins[0].dtype

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        src = xs[0][self.row].reshape(out.shape)
        return lambda: np.copyto(out, src)

    def expand(self, node: Node) -> Node:
        return Reshape(Slice(node.children[0], self.row), self.shape)


def BatchNorm(
    x: Any,
    gamma: Any,
    beta: Any,
    running_mean: np.ndarray | None = None,
    running_var: np.ndarray | None = None,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Node:
    """Batch normalisation per channel of (N, C) or (N, C, H, W) inputs (over all other axes).

    Training runs normalise with the batch's mean and biased variance and update the running
    statistics in place (``running = (1-momentum)*running + momentum*batch``, unbiased
    variance, as PyTorch); eval runs use the running statistics. ``gamma`` and ``beta`` have C
    values, shaped (C,) or broadcastable ((1, C) or (1, C, 1, 1)); pass ones and zeros for a
    plain normalisation (a layer's job). ``running_mean``/``running_var`` are float arrays of
    shape (C,) that the op updates in place (default: new zeros and ones, reachable as
    ``node.children[1].op.running_mean``). Gradients flow to x, gamma and beta.

    Example:
        >>> import numpy as np, graphcore as gc
        >>> g = gc.NewGraph()
        >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
        >>> rm, rv = np.zeros(3), np.ones(3)
        >>> y = gc.BatchNorm(x, np.ones(3), np.zeros(3), rm, rv)
        >>> gc.Let(x, np.array([[0.0, 1.0, 2.0], [2.0, 3.0, 4.0]]))
        >>> gc.NewTapeMachine(g).run_all(); y.value.round(3).tolist(), rm.tolist()
        ([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]], [0.1, 0.2, 0.30000000000000004])
    """
    xn = as_node(x)
    xi = TypeInfo(xn.shape, xn.dtype, xn.name)
    _bn_check_input(xi)
    c = xn.shape[1]
    gn, bn = as_node(gamma, xn), as_node(beta, xn)
    bshape = _bcast(len(xn.shape), c)
    for role, p in (("gamma", gn), ("beta", bn)):
        if p.shape not in ((c,), bshape):
            raise ShapeError(
                f"BatchNorm: {role} {p.describe()} must have shape ({c},) or {fmt_shape(bshape)} "
                f"for {describe(xi)} ({c} channels)"
            )
    if not 0.0 <= float(momentum) <= 1.0:
        raise ValueError(f"BatchNorm: momentum must be in [0, 1], got {momentum!r}")
    if not float(eps) > 0.0:
        raise ValueError(f"BatchNorm: eps must be > 0, got {eps!r}")
    np_dt = xn.dtype.np
    rm = np.zeros(c, np_dt) if running_mean is None else running_mean
    rv = np.ones(c, np_dt) if running_var is None else running_var
    for role, a in (("running_mean", rm), ("running_var", rv)):
        if not isinstance(a, np.ndarray) or a.dtype.kind != "f" or a.shape != (c,):
            raise ShapeError(
                f"BatchNorm: {role} must be a float numpy array of shape ({c},) for "
                f"{describe(xi)}, got {type(a).__name__} {getattr(a, 'shape', '')}"
            )
    stats_op = BatchNormStatsOp(rm, rv, float(momentum), float(eps))
    stats = apply_op(stats_op, xn)
    out = apply_op(BatchNormOp(), xn, stats, gn, bn)
    stats_op._where = (
        f"BatchNorm node {out.name!r} (statistics node {stats.name!r}, input {xn.name!r})"
    )
    return out
