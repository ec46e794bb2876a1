"""2-D convolution of NCHW images: ``Conv2d(x, w)`` is two nodes, ``Im2Col(x)`` (the column
matrix, read again by the filter gradient; :mod:`graphcore.ops.im2col`) and
``Conv2d(cols, w)`` (one GEMM). ``Conv1d`` is ``Conv2d`` on (N, C, 1, L) views.

The gradient ops (``ConvOutToCols``, ``Conv2dColsGrad``, ``Conv2dFilterGrad`` here, and
``Col2Im`` for the columns) are fused GEMMs and copies; each is differentiable again, through
its own rule or through its expansion into ``Reshape``, ``Transpose`` and ``Tensordot``.

Example:
    >>> import graphcore as gc
    >>> g = gc.NewGraph()
    >>> x = gc.NewTensor(g, gc.Float32, 4, gc.WithShape(None, 1, 28, 28), gc.WithName("x"))
    >>> w = gc.NewTensor(g, gc.Float32, 4, gc.WithShape(8, 1, 3, 3), gc.WithName("w"))
    >>> y = gc.Conv2d(x, w, pad=(1, 1)); y.shape, y.children[0].op.name
    ((None, 8, 28, 28), 'Im2Col')
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..dtypes import Dtype
from ..errors import ShapeError
from ..graph import Node
from ..kernels.blas import can_gemm, gemm_into
from ..shapes import Shape, size_of
from ..values import as_node
from .base import ExecContext, Kernel, Op, TypeInfo, apply_op, describe, same_dtype
from .im2col import Im2ColOp
from .images import (
    Geometry,
    Pair,
    check_image,
    check_signal,
    contiguous,
    matmul_into,
    out_length,
    pair,
    single,
)
from .linalg import Tensordot, Transpose
from .shape import Reshape

__all__ = [
    "Conv2d", "Conv2dOp", "ConvOutToColsOp", "Conv2dColsGradOp", "Conv2dFilterGradOp", "Conv1d",
]


# From this many output pixels per image on, the forward product runs per image, straight into
# NCHW: measured with one BLAS thread, (32x9 @ 9x784) x 32 images takes 0.4x the time of the
# one product plus its (Cout, N, P) -> NCHW copy, and 16 channels at 28x28 0.77x, while at
# 196 pixels and fewer the per-image products are as slow or slower (0.6-1.5x).
_PER_IMAGE_P = 512


class Conv2dOp(Op):
    """The GEMM half of a convolution: columns (K, N, P) and filter (Cout, Cin, kh, kw) -> NCHW.

    Example:
        >>> Conv2dOp((28, 28)).params()
        {'out_hw': (28, 28)}
    """

    name = "Conv2d"
    arity = 2

    def __init__(self, out_hw: Pair) -> None:
        self.out_hw = out_hw

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        cols, w = ins
        dt = same_dtype(self.name, ins, float_only=True)
        ho, wo = self.out_hw
        if len(w.shape) != 4 or len(cols.shape) != 3:
            raise ShapeError(
                f"Conv2d: expected columns (K, N, P) and a 4-D filter, got "
                f"{describe(cols)} and {describe(w)}"
            )
        k = w.shape[1] * w.shape[2] * w.shape[3]
        if cols.shape[0] != k or cols.shape[2] != ho * wo:
            raise ShapeError(f"Conv2d: columns {describe(cols)} do not fit filter {describe(w)}")
        return (cols.shape[1], w.shape[0], ho, wo), dt

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        cols, w = xs
        k, n, p = cols.shape
        co = w.shape[0]
        w2, w_refresh = contiguous(w, (co, k))
        cols2, c_refresh = contiguous(cols, (k, n * p))
        out3 = out.reshape(n, co, p)
        if p >= _PER_IMAGE_P and all(
            can_gemm(w2, cols2[:, i * p : (i + 1) * p], out3[i]) for i in range(n)
        ):
            # one product per image, each writing its NCHW slab (the columns' slab read
            # with a leading dimension): no (Cout, N, P) product to copy
            gemms = [gemm_into(w2, cols2[:, i * p : (i + 1) * p], out3[i], 0.0) for i in range(n)]

            def run_per_image() -> None:
                if w_refresh is not None:
                    w_refresh()
                if c_refresh is not None:
                    c_refresh()
                for gemm_i in gemms:
                    gemm_i()

            return run_per_image
        tmp = np.empty((co, n * p), out.dtype)
        gemm = matmul_into(w2, cols2, tmp)
        # (Cout, N, P) -> (N, Cout, P): the one copy the column layout costs
        src = tmp.reshape(co, n, p).transpose(1, 0, 2)
        dst = out3

        def run() -> None:
            if w_refresh is not None:
                w_refresh()
            if c_refresh is not None:
                c_refresh()
            gemm()
            np.copyto(dst, src)

        return run

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        cols, w = node.children
        gt = apply_op(ConvOutToColsOp(), g)
        return [
            apply_op(Conv2dColsGradOp(), w, gt) if wants[0] else None,
            apply_op(Conv2dFilterGradOp(w.shape), gt, cols) if wants[1] else None,
        ]


class ConvOutToColsOp(Op):
    """(N, Cout, Ho, Wo) -> (Cout, N, Ho*Wo): the upstream gradient in the GEMM's layout.

    Example:
        >>> ConvOutToColsOp().name
        'ConvOutToCols'
    """

    name = "ConvOutToCols"
    arity = 1

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        (g,) = ins
        n, c, h, w = g.shape
        return (c, n, h * w), g.dtype

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        g = xs[0]
        n, c, h, w = g.shape
        src = g.reshape(n, c, h * w).transpose(1, 0, 2) if g.flags.c_contiguous else None
        if src is None:
            return lambda: np.copyto(out, g.reshape(n, c, h * w).transpose(1, 0, 2))
        return lambda: np.copyto(out, src)

    def expand(self, node: Node) -> Node:
        (g,) = node.children
        n, c, h, w = g.shape
        return Transpose(Reshape(g, (n, c, h * w)), (1, 0, 2))


class Conv2dFilterGradOp(Op):
    """dW = gT (Cout, N*P) @ cols (K, N*P)^T, shaped like the filter.

    Example:
        >>> Conv2dFilterGradOp((8, 1, 3, 3)).params()
        {'filter_shape': (8, 1, 3, 3)}
    """

    name = "Conv2dFilterGrad"
    arity = 2

    def __init__(self, filter_shape: Shape) -> None:
        self.filter_shape = filter_shape

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        return self.filter_shape, same_dtype(self.name, ins)

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        gt, cols = xs
        co, n, p = gt.shape
        k = cols.shape[0]
        gt2, g_refresh = contiguous(gt, (co, n * p))
        cols2, c_refresh = contiguous(cols, (k, n * p))
        out2 = out.reshape(co, k)
        gemm = matmul_into(gt2, cols2.T, out2)

        def run() -> None:
            if g_refresh is not None:
                g_refresh()
            if c_refresh is not None:
                c_refresh()
            gemm()

        return run

    def expand(self, node: Node) -> Node:
        gt, cols = node.children
        return Reshape(Tensordot(gt, cols, [1, 2], [1, 2]), self.filter_shape)


class Conv2dColsGradOp(Op):
    """dcols = W (Cout, K)^T @ gT (Cout, N*P), shaped (K, N, P).

    Example:
        >>> Conv2dColsGradOp().name
        'Conv2dColsGrad'
    """

    name = "Conv2dColsGrad"
    arity = 2

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        w, gt = ins
        k = w.shape[1] * w.shape[2] * w.shape[3]
        return (k, gt.shape[1], gt.shape[2]), same_dtype(self.name, ins)

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        w, gt = xs
        co, n, p = gt.shape
        k = out.shape[0]
        w2, w_refresh = contiguous(w, (co, k))
        gt2, g_refresh = contiguous(gt, (co, n * p))
        out2 = out.reshape(k, n * p)
        gemm = matmul_into(w2.T, gt2, out2)

        def run() -> None:
            if w_refresh is not None:
                w_refresh()
            if g_refresh is not None:
                g_refresh()
            gemm()

        return run

    def expand(self, node: Node) -> Node:
        w, gt = node.children
        co = w.shape[0]
        return Tensordot(Reshape(w, (co, size_of(w.shape[1:]))), gt, [0], [0])


def Conv2d(
    x: Any,
    w: Any,
    kernel: Sequence[int] | None = None,
    pad: int | Sequence[int] = (0, 0),
    stride: int | Sequence[int] = (1, 1),
    dilation: int | Sequence[int] = (1, 1),
) -> Node:
    """2-D cross-correlation of NCHW images ``x`` with filters ``w`` (Cout, Cin, kh, kw); no bias.

    ``pad`` zero-pads each side, ``stride`` steps the window, ``dilation`` spaces its taps;
    ``kernel`` (Gorgonia's argument) is optional and, when given, must equal ``w``'s (kh, kw).
    Output: (N, Cout, (H + 2ph - dh(kh-1) - 1) // sh + 1, ...). Built as an ``Im2Col`` node
    and one GEMM node.

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph()
        >>> x = gc.NewTensor(g, gc.Float64, 4, gc.WithShape(None, 3, 32, 32), gc.WithName("x"))
        >>> w = gc.NewTensor(g, gc.Float64, 4, gc.WithShape(16, 3, 5, 5), gc.WithName("w"))
        >>> gc.Conv2d(x, w, pad=2, stride=2).shape
        (None, 16, 16, 16)
    """
    xn = as_node(x)
    wn = as_node(w, xn)
    xi = TypeInfo(xn.shape, xn.dtype, xn.name)
    wi = TypeInfo(wn.shape, wn.dtype, wn.name)
    check_image("Conv2d", xi)
    same_dtype("Conv2d", [xi, wi], float_only=True)
    if len(wn.shape) != 4 or any(d is None for d in wn.shape):
        raise ShapeError(
            f"Conv2d: filter {describe(wi)} must be 4-D (out_channels, in_channels, kh, kw) with "
            f"known sizes"
        )
    if wn.shape[1] != xn.shape[1]:
        raise ShapeError(
            f"Conv2d: input {describe(xi)} has {xn.shape[1]} channels but filter {describe(wi)} "
            f"expects {wn.shape[1]} (a filter is (out_channels, in_channels, kh, kw))"
        )
    kh, kw = wn.shape[2], wn.shape[3]
    if kernel is not None and pair("Conv2d", "kernel", kernel, 1) != (kh, kw):
        raise ShapeError(
            f"Conv2d: kernel={tuple(kernel)} does not match filter {describe(wi)} "
            f"(kernel {(kh, kw)}); drop the kernel argument or fix the filter"
        )
    geo = Geometry(
        (kh, kw),
        pair("Conv2d", "pad", pad, 0),
        pair("Conv2d", "stride", stride, 1),
        pair("Conv2d", "dilation", dilation, 1),
    )
    out_hw = geo.out_hw("Conv2d", xi)
    cols = apply_op(Im2ColOp(geo.kernel_shape, geo.pad, geo.stride, geo.dilation), xn)
    node = apply_op(Conv2dOp(out_hw), cols, wn)
    return node


def Conv1d(
    x: Any,
    w: Any,
    kernel: int | None = None,
    pad: int = 0,
    stride: int = 1,
    dilation: int = 1,
) -> Node:
    """1-D cross-correlation of NCL signals ``x`` with filters ``w`` (Cout, Cin, k); no bias.

    Gorgonia's ``Conv1d(in, filter, kernel, pad, stride, dilation)``: the same ints, with
    ``kernel`` optional (when given it must equal ``w``'s k). Output:
    (N, Cout, (L + 2*pad - dilation*(k-1) - 1) // stride + 1). Built as ``Conv2d`` on (N, C, 1,
    L) views with a (1, k) kernel (as Gorgonia does), so it shares Conv2d's kernels and
    gradients, second derivatives included; the reshapes are views.

    Example:
        >>> import numpy as np, graphcore as gc
        >>> g = gc.NewGraph()
        >>> x = gc.NewTensor(g, gc.Float64, 3, gc.WithShape(None, 2, 10), gc.WithName("x"))
        >>> w = gc.NewTensor(g, gc.Float64, 3, gc.WithShape(4, 2, 3), gc.WithName("w"),
        ...                  gc.WithValue(np.ones((4, 2, 3))))
        >>> y = gc.Conv1d(x, w, pad=1, stride=2); y.shape
        (None, 4, 5)
        >>> gc.Let(x, np.ones((1, 2, 10))); gc.NewTapeMachine(g).run_all()
        >>> y.value[0, 0].tolist()
        [4.0, 6.0, 6.0, 6.0, 6.0]
    """
    xn = as_node(x)
    wn = as_node(w, xn)
    xi = TypeInfo(xn.shape, xn.dtype, xn.name)
    wi = TypeInfo(wn.shape, wn.dtype, wn.name)
    check_signal("Conv1d", xi)
    same_dtype("Conv1d", [xi, wi], float_only=True)
    if len(wn.shape) != 3 or any(d is None for d in wn.shape):
        raise ShapeError(
            f"Conv1d: filter {describe(wi)} must be 3-D (out_channels, in_channels, k) with known "
            f"sizes"
        )
    co, ci, k = wn.shape
    if ci != xn.shape[1]:
        raise ShapeError(
            f"Conv1d: input {describe(xi)} has {xn.shape[1]} channels but filter {describe(wi)} "
            f"expects {ci} (a filter is (out_channels, in_channels, k))"
        )
    if kernel is not None and single("Conv1d", "kernel", kernel, 1) != k:
        raise ShapeError(
            f"Conv1d: kernel={kernel!r} does not match filter {describe(wi)} (kernel {k}); drop "
            f"the kernel argument or fix the filter"
        )
    p = single("Conv1d", "pad", pad, 0)
    s = single("Conv1d", "stride", stride, 1)
    d = single("Conv1d", "dilation", dilation, 1)
    lo = out_length("Conv1d", xi, k, p, s, d)
    n = xn.shape[0]
    x4 = Reshape(xn, (n, ci, 1, xn.shape[2]))
    w4 = Reshape(wn, (co, ci, 1, k))
    y4 = Conv2d(x4, w4, pad=(0, p), stride=(1, s), dilation=(1, d))
    return Reshape(y4, (n, co, lo))
