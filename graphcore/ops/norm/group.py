"""Group normalisation: ``GroupNorm(x, scale, bias, groups)``.

Per example, the channels fall into ``groups`` groups of C/G consecutive channels; each group
(with all spatial positions) is normalised by its own mean and variance, then each channel is
scaled and shifted by its own parameters (PyTorch's group_norm). There are no running
statistics and no train/eval difference. As for BatchNorm, the statistics are a node
(``GroupNormStats``: (N, 2, G), mean and 1/std) and the backward pass is fused ops that
expand into graph ops for second derivatives.

Example:
    >>> import numpy as np, graphcore as gc
    >>> g = gc.NewGraph()
    >>> x = gc.NewTensor(g, gc.Float32, 4, gc.WithShape(None, 8, 5, 5), gc.WithName("x"))
    >>> y = gc.GroupNorm(x, np.ones(8, np.float32), np.zeros(8, np.float32), 4)
    >>> y.shape, y.children[1].op.name
    ((None, 8, 5, 5), 'GroupNormStats')
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ...dtypes import Dtype
from ...errors import DtypeError, ShapeError
from ...graph import Node
from ...shapes import Shape, fmt_shape, size_of
from ...values import NewConstant, as_node
from ..base import ExecContext, Kernel, Op, TypeInfo, apply_op, describe, same_dtype
from ..elementwise import Cube
from ..images import contiguous
from ..indexing import Slice
from ..reduce import Sum
from ..shape import Concat, Reshape
from .batch import _bcast

__all__ = ["GroupNorm", "GroupNormStatsOp", "GroupNormOp", "GroupNormSumsOp", "GroupNormGradOp"]


def _gn_check_input(x: TypeInfo) -> None:
    if not x.dtype.is_float:
        raise DtypeError(f"GroupNorm needs a Float32 or Float64 input, got {describe(x)}")
    if len(x.shape) < 2 or x.shape[1] is None or any(d is None for d in x.shape[2:]):
        raise ShapeError(
            f"GroupNorm: input {describe(x)} must be (N, C) or (N, C, ...) (e.g. NCHW) with "
            f"known channels and spatial sizes; only the batch dimension may be None"
        )


def _group_size(x_shape: Shape, groups: int) -> int:
    """Values per (example, group): C/G channels times the spatial positions."""
    return x_shape[1] // groups * size_of(tuple(x_shape[2:]))


def _spatial(ndim: int) -> tuple[int, ...]:
    return tuple(range(2, ndim))


def _group_stat(stats: Node, row: int, x: Node, groups: int) -> Node:
    """Row ``row`` of the (N, 2, G) statistics as (N, C, 1, ...): each group's value repeated
    for its channels, to broadcast against ``x``."""
    n, c = x.shape[0], x.shape[1]
    per_group = Reshape(Slice(stats, None, row), (n, groups, 1))
    ones = NewConstant(np.ones((1, 1, c // groups)), dtype=x.dtype)
    return Reshape(per_group * ones, (n, c) + (1,) * (x.ndim - 2))


def _group_sum(a: Node, groups: int) -> Node:
    """(N, C) ``a`` summed over each group's channels, repeated back to (N, C)."""
    n, c = a.shape
    s = Sum(Reshape(a, (n, groups, c // groups)), axis=2, keepdims=True)
    ones = NewConstant(np.ones((1, 1, c // groups)), dtype=a.dtype)
    return Reshape(s * ones, (n, c))


class GroupNormStatsOp(Op):
    """Per example and group, (mean, 1/sqrt(var + eps)) as an (N, 2, G) array (biased
    variance), from x (N, C, ...).

    Example:
        >>> GroupNormStatsOp(2, 1e-5).params()
        {'groups': 2, 'eps': 1e-05}
    """

    name = "GroupNormStats"
    arity = 1

    def __init__(self, groups: int, eps: float) -> None:
        self.groups = groups
        self.eps = eps

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        (x,) = ins
        _gn_check_input(x)
        return (x.shape[0], 2, self.groups), x.dtype

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        x = xs[0]
        n, gs = x.shape[0], self.groups
        m = _group_size(x.shape, gs)
        xg, refresh = contiguous(x, (n, gs, m))
        mean, inv = out[:, 0, :], out[:, 1, :]
        mean_b = mean[:, :, None]
        dev = np.empty((n, gs, m), x.dtype)
        var = np.empty((n, gs), x.dtype)
        eps = self.eps

        def run() -> None:
            if refresh is not None:
                refresh()
            np.add.reduce(xg, axis=2, out=mean)
            np.multiply(mean, 1.0 / m, out=mean)
            np.subtract(xg, mean_b, out=dev)
            np.square(dev, out=dev)
            np.add.reduce(dev, axis=2, out=var)
            np.multiply(var, 1.0 / m, out=var)
            np.add(var, eps, out=inv)
            np.sqrt(inv, out=inv)
            np.reciprocal(inv, out=inv)

        return run

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        # Only second derivatives get here (GroupNorm's own rule folds the statistics into dx):
        # per group, dx = (g_mean - g_inv * inv^3 * (x - mean)) / M
        (x,) = node.children
        gs = self.groups
        dev = x - _group_stat(node, 0, x, gs)
        inv3 = Cube(_group_stat(node, 1, x, gs))
        dx = _group_stat(g, 0, x, gs) - _group_stat(g, 1, x, gs) * inv3 * dev
        return [dx * (1.0 / _group_size(x.shape, gs))]


class GroupNormOp(Op):
    """``scale * (x - mean) / std + bias``, the statistics per example and group, scale and
    bias per channel: operands x, stats (N, 2, G), scale, bias.

    Example:
        >>> GroupNormOp(2).name
        'GroupNorm'
    """

    name = "GroupNorm"
    arity = 4
    inplace = True

    def __init__(self, groups: int) -> None:
        self.groups = groups

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        return ins[0].shape, same_dtype(self.name, ins, float_only=True)

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        x, stats, scale, bias = xs
        n, c = x.shape[:2]
        gs = self.groups
        shape3 = (1, gs, c // gs)
        scale3, s_refresh = contiguous(scale, shape3)
        bias3, b_refresh = contiguous(bias, shape3)
        # y = x * a + b with a = scale * inv and b = bias - mean * a, per (example, channel)
        a, b = np.empty((n, c), x.dtype), np.empty((n, c), x.dtype)
        a3, b3 = a.reshape(n, gs, c // gs), b.reshape(n, gs, c // gs)
        tail = (1,) * (x.ndim - 2)
        a_b, b_b = a.reshape((n, c) + tail), b.reshape((n, c) + tail)
        mean, inv = stats[:, 0, :, None], stats[:, 1, :, None]

        def run() -> None:
            if s_refresh is not None:
                s_refresh()
            if b_refresh is not None:
                b_refresh()
            np.multiply(scale3, inv, out=a3)
            np.multiply(mean, a3, out=b3)
            np.subtract(bias3, b3, out=b3)
            np.multiply(x, a_b, out=out)
            np.add(out, b_b, out=out)

        return run

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        x, stats, scale, bias = node.children
        sums = apply_op(GroupNormSumsOp(self.groups), x, stats, g)

        def param_grad(row: int, like: Node) -> Node:
            return Reshape(Sum(Slice(sums, None, row), axis=0), like.shape)

        return [
            apply_op(GroupNormGradOp(self.groups), x, stats, scale, g, sums) if wants[0] else None,
            None,
            param_grad(1, scale) if wants[2] else None,
            param_grad(0, bias) if wants[3] else None,
        ]


class GroupNormSumsOp(Op):
    """Per example and channel, [sum(g), sum(g * xhat)] over the spatial positions, as
    (N, 2, C): the bias and scale gradients (summed over the batch), and what dx needs.

    Example:
        >>> GroupNormSumsOp(2).name
        'GroupNormSums'
    """

    name = "GroupNormSums"
    arity = 3

    def __init__(self, groups: int) -> None:
        self.groups = groups

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        x, stats, g = ins
        return (x.shape[0], 2, x.shape[1]), same_dtype(self.name, ins)

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        x, stats, g = xs
        n, c = x.shape[:2]
        gs, axes = self.groups, _spatial(x.ndim)
        sum_g, sum_gx = out[:, 0, :], out[:, 1, :]
        mean_c, inv_c = np.empty((n, c), x.dtype), np.empty((n, c), x.dtype)
        mean3, inv3 = mean_c.reshape(n, gs, c // gs), inv_c.reshape(n, gs, c // gs)
        mean_b = mean_c.reshape((n, c) + (1,) * (x.ndim - 2))
        dev = np.empty(x.shape, x.dtype)

        def run() -> None:
            np.add.reduce(g, axis=axes, out=sum_g)
            np.copyto(mean3, stats[:, 0, :, None])
            np.copyto(inv3, stats[:, 1, :, None])
            np.subtract(x, mean_b, out=dev)
            np.multiply(dev, g, out=dev)
            np.add.reduce(dev, axis=axes, out=sum_gx)
            np.multiply(sum_gx, inv_c, out=sum_gx)

        return run

    def expand(self, node: Node) -> Node:
        x, stats, g = node.children
        n, c = x.shape[:2]
        axes, gs = _spatial(x.ndim), self.groups
        dev_g = g * (x - _group_stat(stats, 0, x, gs))
        sum_g = Sum(g, axis=axes) if axes else g
        sum_gx = Sum(dev_g, axis=axes) if axes else dev_g
        inv = Reshape(_group_stat(stats, 1, x, gs), (n, c))
        return Concat(1, Reshape(sum_g, (n, 1, c)), Reshape(sum_gx * inv, (n, 1, c)))


class GroupNormGradOp(Op):
    """dx of GroupNorm from x, stats, scale, g and the sums: with ``h = g * scale`` and M
    values per group, ``dx = inv * (h - sum(h)/M - xhat * sum(h * xhat)/M)`` per group.

    Example:
        >>> GroupNormGradOp(2).arity
        5
    """

    name = "GroupNormGrad"
    arity = 5

    def __init__(self, groups: int) -> None:
        self.groups = groups

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        return ins[0].shape, same_dtype(self.name, ins)

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        x, stats, scale, g, sums = xs
        n, c = x.shape[:2]
        gs = self.groups
        cg, m = c // gs, _group_size(x.shape, gs)
        scale3, s_refresh = contiguous(scale, (1, gs, cg))
        sums4, sums_refresh = contiguous(sums, (n, 2, gs, cg))
        mean, inv = stats[:, 0, :, None], stats[:, 1, :, None]
        # dx = a * g + k * x + b, with a = scale * inv per channel, and per group
        # k = -inv^2 * B / M and b = -inv * A / M - k * mean (A, B: the group sums of
        # scale * sum(g) and scale * sum(g * xhat))
        tmp3 = np.empty((n, gs, cg), x.dtype)
        sa, sb = np.empty((n, gs, 1), x.dtype), np.empty((n, gs, 1), x.dtype)
        a, k, b = (np.empty((n, c), x.dtype) for _ in range(3))
        a3, k3, b3 = (v.reshape(n, gs, cg) for v in (a, k, b))
        tail = (1,) * (x.ndim - 2)
        a_b, k_b, b_b = (v.reshape((n, c) + tail) for v in (a, k, b))
        tmp = np.empty(x.shape, x.dtype)

        def run() -> None:
            if s_refresh is not None:
                s_refresh()
            if sums_refresh is not None:
                sums_refresh()
            np.multiply(sums4[:, 0], scale3, out=tmp3)
            np.add.reduce(tmp3, axis=2, keepdims=True, out=sa)
            np.multiply(sums4[:, 1], scale3, out=tmp3)
            np.add.reduce(tmp3, axis=2, keepdims=True, out=sb)
            np.multiply(scale3, inv, out=a3)
            np.multiply(sb, inv, out=sb)
            np.multiply(sb, inv, out=sb)
            np.multiply(sb, -1.0 / m, out=sb)  # k per group
            np.copyto(k3, sb)
            np.multiply(sb, mean, out=sb)
            np.multiply(sa, inv, out=sa)
            np.multiply(sa, 1.0 / m, out=sa)
            np.add(sa, sb, out=sa)
            np.negative(sa, out=sa)  # b per group
            np.copyto(b3, sa)
            np.multiply(x, k_b, out=out)
            np.add(out, b_b, out=out)
            np.multiply(g, a_b, out=tmp)
            np.add(out, tmp, out=out)

        return run

    def expand(self, node: Node) -> Node:
        x, stats, scale, g, sums = node.children
        n, c = x.shape[:2]
        gs, m = self.groups, _group_size(x.shape, self.groups)
        shape = (n, c) + (1,) * (x.ndim - 2)
        gamma = Reshape(scale, (1, c))
        sum_a = Reshape(_group_sum(Slice(sums, None, 0) * gamma, gs), shape)
        sum_b = Reshape(_group_sum(Slice(sums, None, 1) * gamma, gs), shape)
        inv = _group_stat(stats, 1, x, gs)
        xhat = (x - _group_stat(stats, 0, x, gs)) * inv
        h = g * Reshape(scale, (1, c) + (1,) * (x.ndim - 2))
        return inv * (h - (sum_a + xhat * sum_b) * (1.0 / m))


def GroupNorm(x: Any, scale: Any, bias: Any, groups: int, eps: float = 1e-5) -> Node:
    """Group normalisation of (N, C, ...) inputs (PyTorch's ``group_norm``): the C channels
    fall into ``groups`` groups of C/groups consecutive channels, each example's group is
    normalised by its own mean and (biased) variance, then each channel is scaled by
    ``scale`` and shifted by ``bias`` (C values each, shaped (C,) or (1, C, 1, ...)).

    Gorgonia's ``GroupNorm(x, scale, bias, numGroups, numChannels, eps)``, with the channels
    read from ``x``. The same in training and eval (no running statistics). Gradients flow to
    x, scale and bias, and are differentiable again.

    Example:
        >>> import numpy as np, graphcore as gc
        >>> g = gc.NewGraph()
        >>> x = gc.NodeFromAny(g, np.array([[0.0, 2.0, 10.0, 30.0]]), gc.WithName("x"))
        >>> y = gc.GroupNorm(x, np.ones(4), np.zeros(4), groups=2, eps=0.0)
        >>> gc.NewTapeMachine(g).run_all(); y.value.tolist()
        [[-1.0, 1.0, -1.0, 1.0]]
    """
    xn = as_node(x)
    xi = TypeInfo(xn.shape, xn.dtype, xn.name)
    _gn_check_input(xi)
    c = xn.shape[1]
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"GroupNorm: groups must be an int >= 1, got {groups!r}")
    if c % groups:
        raise ShapeError(
            f"GroupNorm: {describe(xi)} has {c} channels, which do not split into {groups} "
            f"groups; use a number of groups that divides {c}"
        )
    if any(d == 0 for d in xn.shape[1:]):
        raise ShapeError(
            f"GroupNorm: input {describe(xi)} has no values per group (a channel or spatial "
            f"size is 0); give each group at least one value"
        )
    if not float(eps) >= 0.0:
        raise ValueError(f"GroupNorm: eps must be >= 0, got {eps!r}")
    sn, bn = as_node(scale, xn), as_node(bias, xn)
    bshape = _bcast(len(xn.shape), c)
    for role, p in (("scale", sn), ("bias", bn)):
        if p.shape not in ((c,), bshape):
            raise ShapeError(
                f"GroupNorm: {role} {p.describe()} must have shape ({c},) or "
                f"{fmt_shape(bshape)} for {describe(xi)} ({c} channels)"
            )
    stats = apply_op(GroupNormStatsOp(int(groups), float(eps)), xn)
    return apply_op(GroupNormOp(int(groups)), xn, stats, sn, bn)
