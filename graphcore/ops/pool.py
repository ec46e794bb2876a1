"""Max and average pooling: 2-D of NCHW images, 1-D of NCL signals (the 2-D ops on
(N, C, 1, L) views), and global average pooling.

The gradient ops are linear in the upstream gradient, so each one's own gradient is its
adjoint: ``MaxPool2DGrad`` (route to each window's maximum) pairs with ``MaxPool2DPick``
(read at each window's maximum), and ``AvgPool2DGrad`` (spread evenly) with average pooling.
Second derivatives thus route exactly as the forward pass does, and are zero where the pooled
value is piecewise linear in x.

Max pooling runs the machine's kernels (:mod:`graphcore.kernels`, ``max_pool2d`` and its
gradient): with numba, one loop forward that also saves each window's argmax, which the
gradient's kernel scatters ``g`` through; with numpy, a pass per window offset each way.

Example:
    >>> import graphcore as gc
    >>> g = gc.NewGraph()
    >>> x = gc.NewTensor(g, gc.Float32, 4, gc.WithShape(None, 8, 28, 28), gc.WithName("x"))
    >>> gc.MaxPool2D(x).shape, gc.AvgPool2D(x, kernel=3, pad=1, stride=1).shape
    ((None, 8, 14, 14), (None, 8, 28, 28))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..dtypes import Dtype
from ..errors import ShapeError
from ..graph import Node
from ..kernels.reference.pooling import arg_dtype
from ..shapes import Shape
from ..values import as_node
from .base import ExecContext, Kernel, Op, TypeInfo, apply_op, describe, same_dtype
from .images import (
    Geometry,
    Pair,
    check_image,
    check_signal,
    out_length,
    padded,
    pair,
    single,
    window_slices,
)
from .shape import Reshape
from .unbroadcast import BroadcastTo

__all__ = [
    "MaxPool2D", "AvgPool2D", "AveragePool2D", "MaxPool2DOp", "MaxPool2DGradOp",
    "MaxPool2DPickOp", "AvgPool2DOp", "AvgPool2DGradOp", "MaxPool1D", "AveragePool1D",
    "AvgPool1D", "GlobalAveragePool2D", "GlobalAveragePool2DOp",
]


class _PoolOp(Op):
    """Shared shape logic of the 2-D pooling ops."""

    arity = 1

    def __init__(self, kernel: Pair, pad: Pair, stride: Pair) -> None:
        self.kernel_shape = kernel
        self.pad = pad
        self.stride = stride

    def _geo(self) -> Geometry:
        return Geometry(self.kernel_shape, self.pad, self.stride)

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        (x,) = ins
        check_image(self.name, x)
        ho, wo = self._geo().out_hw(self.name, x)
        return (x.shape[0], x.shape[1], ho, wo), x.dtype

    def _slices(self, src: np.ndarray, out: np.ndarray) -> list[np.ndarray]:
        return window_slices(src, self.kernel_shape, self.stride, (1, 1), out.shape[2:])


class MaxPool2DOp(_PoolOp):
    """Max over each window; padding counts as -inf (it never wins).

    Example:
        >>> MaxPool2DOp((2, 2), (0, 0), (2, 2))
        MaxPool2D(kernel_shape=(2, 2), pad=(0, 0), stride=(2, 2))
    """

    name = "MaxPool2D"

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        x, k = xs[0], ctx.kernels
        # each window's maximum position, for the gradient's kernel (the compiled backend
        # fills it; numpy finds the maxima again from x and y)
        arg: np.ndarray = np.empty(out.shape, arg_dtype(self.kernel_shape))
        ctx.saved[id(self)] = (self, (out, arg))
        scratch = k.max_pool2d_scratch(x, out, arg, self.kernel_shape, self.pad, self.stride)
        return lambda: k.max_pool2d(x, out, arg, scratch)

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        op = MaxPool2DGradOp(self.kernel_shape, self.pad, self.stride, self)
        return [apply_op(op, node.children[0], node, g)]


class MaxPool2DGradOp(_PoolOp):
    """Routes each window's gradient to its maximum: operands x, the pooled output y, and g.

    Ties go to the first maximum in row-major window order (the one a scan finds first).
    Linear in g, piecewise constant in x and y: its gradient is ``MaxPool2DPick`` for g, zero
    for x and y.

    Example:
        >>> MaxPool2DGradOp((2, 2), (0, 0), (2, 2)).name
        'MaxPool2DGrad'
    """

    name = "MaxPool2DGrad"
    arity = 3

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        return ins[0].shape, same_dtype(self.name, ins)

    def __init__(self, kernel: Pair, pad: Pair, stride: Pair, source: Op | None = None) -> None:
        super().__init__(kernel, pad, stride)
        self._source = source  # the forward op, whose kernel saves each window's argmax

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        x, y, g = xs
        k, geo = ctx.kernels, (self.kernel_shape, self.pad, self.stride)
        entry = ctx.saved.get(id(self._source)) if self._source is not None else None
        fresh = True  # no forward kernel of this plan saved the argmax of this y
        if entry is not None and entry[0] is self._source:
            y_saved, arg = entry[1]
            fresh = not _same_array(y_saved, y)
        if fresh:
            # find the maxima here: pool x again into a buffer of its own
            y_own = np.empty(y.shape, y.dtype)
            arg = np.empty(y.shape, arg_dtype(self.kernel_shape))
            fwd = k.max_pool2d_scratch(x, y_own, arg, *geo)
        scratch = k.max_pool2d_grad_scratch(x, y, arg, g, out, *geo)
        if not fresh:
            return lambda: k.max_pool2d_grad(x, y, arg, g, out, scratch)

        def run() -> None:
            k.max_pool2d(x, y_own, arg, fwd)
            k.max_pool2d_grad(x, y, arg, g, out, scratch)

        return run

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        x, y, _ = node.children
        op = MaxPool2DPickOp(self.kernel_shape, self.pad, self.stride)
        return [None, None, apply_op(op, x, y, g) if wants[2] else None]


class MaxPool2DPickOp(_PoolOp):
    """For each window, ``u`` at the position of its maximum in ``x``: operands x, the pooled
    output y, and u (shaped like x). The adjoint of ``MaxPool2DGrad``, choosing the same
    position (the first maximum), so second derivatives route as the forward pass does.

    Example:
        >>> MaxPool2DPickOp((2, 2), (0, 0), (2, 2)).name
        'MaxPool2DPick'
    """

    name = "MaxPool2DPick"
    arity = 3

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        return ins[1].shape, same_dtype(self.name, ins)

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        x, y, u = xs
        src, refresh = padded(x, self.pad, -np.inf)
        usrc, urefresh = padded(u, self.pad, 0.0)
        pairs = list(zip(self._slices(src, y), self._slices(usrc, y), strict=True))
        left = np.empty_like(out)  # 1 until the window's maximum is found, then 0
        hit = np.empty_like(out)

        def run() -> None:
            if refresh is not None:
                refresh()
            if urefresh is not None:
                urefresh()
            out.fill(0)
            left.fill(1)
            for xs_k, us_k in pairs:
                np.equal(xs_k, y, out=hit)
                np.multiply(hit, left, out=hit)
                np.subtract(left, hit, out=left)
                np.multiply(hit, us_k, out=hit)
                np.add(out, hit, out=out)

        return run

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        x, y, _ = node.children
        source = y.op if isinstance(y.op, MaxPool2DOp) and y.children[0] is x else None
        op = MaxPool2DGradOp(self.kernel_shape, self.pad, self.stride, source)
        return [None, None, apply_op(op, x, y, g) if wants[2] else None]


def _same_array(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether ``a`` and ``b`` are the same memory with the same layout."""
    return (
        a.shape == b.shape
        and a.strides == b.strides
        and a.dtype == b.dtype
        and a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
    )


class AvgPool2DOp(_PoolOp):
    """Mean over each window; padding counts as zeros and is included in the divisor.

    Example:
        >>> AvgPool2DOp((2, 2), (0, 0), (2, 2)).name
        'AvgPool2D'
    """

    name = "AvgPool2D"

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        src, refresh = padded(xs[0], self.pad, 0.0)
        first, *rest = self._slices(src, out)
        inv = 1.0 / (self.kernel_shape[0] * self.kernel_shape[1])

        def run() -> None:
            if refresh is not None:
                refresh()
            np.copyto(out, first)
            for s in rest:
                np.add(out, s, out=out)
            np.multiply(out, inv, out=out)

        return run

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        op = AvgPool2DGradOp(self.kernel_shape, self.pad, self.stride)
        return [apply_op(op, g, node.children[0])]


class AvgPool2DGradOp(_PoolOp):
    """Spreads each window's gradient evenly over it: operands g and x (shape only). Linear
    in g; its gradient is average pooling with the same geometry.

    Example:
        >>> AvgPool2DGradOp((2, 2), (0, 0), (2, 2)).shape_only
        (1,)
    """

    name = "AvgPool2DGrad"
    arity = 2
    shape_only = (1,)

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        return ins[1].shape, same_dtype(self.name, ins)

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        g = xs[0]
        ph, pw = self.pad
        n, c, h, w = out.shape
        has_pad = bool(ph or pw)
        acc = np.empty((n, c, h + 2 * ph, w + 2 * pw), out.dtype) if has_pad else out
        inner = acc[:, :, ph : ph + h, pw : pw + w]
        dsts = self._slices(acc, g)
        share = np.empty_like(g)
        inv = 1.0 / (self.kernel_shape[0] * self.kernel_shape[1])

        def run() -> None:
            acc.fill(0)
            np.multiply(g, inv, out=share)
            for d in dsts:
                np.add(d, share, out=d)
            if has_pad:
                np.copyto(out, inner)

        return run

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        return [apply_op(AvgPool2DOp(self.kernel_shape, self.pad, self.stride), g), None]


def _pool(cls: type[_PoolOp], x: Any, kernel: Any, pad: Any, stride: Any) -> Node:
    name = cls.name
    k = pair(name, "kernel", kernel, 1)
    p = pair(name, "pad", pad, 0)
    if p[0] >= k[0] or p[1] >= k[1]:
        raise ValueError(
            f"{name}: pad {p} must be smaller than the kernel {k}, so every window holds at "
            f"least one input value"
        )
    return apply_op(cls(k, p, pair(name, "stride", stride, 1)), x)


def MaxPool2D(
    x: Any,
    kernel: int | Sequence[int] = (2, 2),
    pad: int | Sequence[int] = (0, 0),
    stride: int | Sequence[int] = (2, 2),
) -> Node:
    """Max pooling of NCHW images; windows that run past the border see -inf padding.

    The gradient goes to each window's maximum; on ties, to the first in row-major order.
    ``pad`` must be smaller than ``kernel``. Output size: (H + 2p - k) // s + 1 (floor).

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph()
        >>> x = gc.NewTensor(g, gc.Float32, 4, gc.WithShape(None, 8, 28, 28), gc.WithName("x"))
        >>> gc.MaxPool2D(x).shape
        (None, 8, 14, 14)
    """
    return _pool(MaxPool2DOp, x, kernel, pad, stride)


def AvgPool2D(
    x: Any,
    kernel: int | Sequence[int] = (2, 2),
    pad: int | Sequence[int] = (0, 0),
    stride: int | Sequence[int] = (2, 2),
) -> Node:
    """Average pooling of NCHW images (Gorgonia's ``AveragePool2D``).

    Padding counts as zeros that are included in the divisor (always kh*kw), as in
    PyTorch's default ``count_include_pad=True``. ``pad`` must be smaller than ``kernel``.

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph()
        >>> x = gc.NewTensor(g, gc.Float32, 4, gc.WithShape(None, 8, 28, 28), gc.WithName("x"))
        >>> gc.AvgPool2D(x, kernel=3, pad=1, stride=1).shape
        (None, 8, 28, 28)
    """
    return _pool(AvgPool2DOp, x, kernel, pad, stride)


AveragePool2D = AvgPool2D


# ----- 1-D pooling: the 2-D ops on (N, C, 1, L) views ------------------------------------------


def _pool1d(name: str, cls: type[_PoolOp], x: Any, kernel: Any, pad: Any, stride: Any) -> Node:
    xn = as_node(x)
    xi = TypeInfo(xn.shape, xn.dtype, xn.name)
    check_signal(name, xi)
    k = single(name, "kernel", kernel, 1)
    p = single(name, "pad", pad, 0)
    s = single(name, "stride", stride, 1)
    if p >= k:
        raise ValueError(
            f"{name}: pad {p} must be smaller than the kernel {k}, so every window holds at "
            f"least one input value"
        )
    lo = out_length(name, xi, k, p, s)
    n, c, length = xn.shape
    y = apply_op(cls((1, k), (0, p), (1, s)), Reshape(xn, (n, c, 1, length)))
    return Reshape(y, (n, c, lo))


def MaxPool1D(x: Any, kernel: int = 2, pad: int = 0, stride: int = 2) -> Node:
    """Max pooling of NCL signals (Gorgonia's ``MaxPool1D(x, kernel, pad, stride)``).

    ``MaxPool2D`` with a (1, kernel) window on (N, C, 1, L) views, so the same rules: padding
    is -inf, ties send the gradient to the first maximum, ``pad`` must be smaller than
    ``kernel``, output length (L + 2*pad - kernel) // stride + 1.

    Example:
        >>> import numpy as np, graphcore as gc
        >>> g = gc.NewGraph()
        >>> x = gc.NodeFromAny(g, np.array([[[1.0, 5.0, 2.0, 0.0, 3.0]]]), gc.WithName("x"))
        >>> y = gc.MaxPool1D(x, kernel=2, stride=2); y.shape
        (1, 1, 2)
        >>> gc.NewTapeMachine(g).run_all(); y.value.tolist()
        [[[5.0, 2.0]]]
    """
    return _pool1d("MaxPool1D", MaxPool2DOp, x, kernel, pad, stride)


def AveragePool1D(x: Any, kernel: int = 2, pad: int = 0, stride: int = 2) -> Node:
    """Average pooling of NCL signals (Gorgonia's ``AveragePool1D(x, kernel, pad, stride)``).

    ``AvgPool2D`` with a (1, kernel) window: padding counts as zeros included in the divisor
    (PyTorch's ``count_include_pad=True``); ``pad`` must be smaller than ``kernel``.

    Example:
        >>> import numpy as np, graphcore as gc
        >>> g = gc.NewGraph()
        >>> x = gc.NodeFromAny(g, np.array([[[1.0, 5.0, 2.0, 0.0]]]), gc.WithName("x"))
        >>> y = gc.AveragePool1D(x, kernel=2, stride=2)
        >>> gc.NewTapeMachine(g).run_all(); y.value.tolist()
        [[[3.0, 1.0]]]
    """
    return _pool1d("AveragePool1D", AvgPool2DOp, x, kernel, pad, stride)


AvgPool1D = AveragePool1D


# ----- global average pooling ------------------------------------------------------------------


class GlobalAveragePool2DOp(Op):
    """The mean of each channel's H x W plane: (N, C, H, W) -> (N, C, 1, 1).

    Its gradient spreads ``g / (H*W)`` over the plane (``BroadcastTo``), built from graph
    ops, so it is differentiable again (Gorgonia's op has no gradient).

    Example:
        >>> GlobalAveragePool2DOp().name
        'GlobalAveragePool2D'
    """

    name = "GlobalAveragePool2D"
    arity = 1

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        (x,) = ins
        check_image(self.name, x)
        if x.shape[2] * x.shape[3] == 0:
            raise ShapeError(
                f"GlobalAveragePool2D: input {describe(x)} has an empty H x W plane, which has "
                f"no mean; give it at least one pixel"
            )
        return (x.shape[0], x.shape[1], 1, 1), x.dtype

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        x = xs[0]
        inv = 1.0 / (x.shape[2] * x.shape[3])

        def run() -> None:
            np.add.reduce(x, axis=(2, 3), keepdims=True, out=out)
            np.multiply(out, inv, out=out)

        return run

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        (x,) = node.children
        return [BroadcastTo(g * (1.0 / (x.shape[2] * x.shape[3])), x)]


def GlobalAveragePool2D(x: Any) -> Node:
    """The mean over each channel's plane of NCHW images: (N, C, H, W) -> (N, C, 1, 1), as
    Gorgonia's ``GlobalAveragePool2D`` (and PyTorch's ``adaptive_avg_pool2d(x, 1)``), but
    differentiable.

    Example:
        >>> import numpy as np, graphcore as gc
        >>> g = gc.NewGraph()
        >>> x = gc.NodeFromAny(g, np.arange(8.0).reshape(1, 2, 2, 2), gc.WithName("x"))
        >>> y = gc.GlobalAveragePool2D(x); y.shape
        (1, 2, 1, 1)
        >>> gc.NewTapeMachine(g).run_all(); y.value.ravel().tolist()
        [1.5, 5.5]
    """
    return apply_op(GlobalAveragePool2DOp(), x)
