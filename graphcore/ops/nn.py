"""Neural-network ops: 2-D convolution, max and average pooling, dropout, batch normalisation.

Images are NCHW: (batch, channels, height, width); the batch may be free (``None``).

Each op that needs something from its forward pass in its backward pass gets it from a node of
the graph, never from state hidden in the op, so the tape machine's liveness analysis keeps it
alive exactly as long as needed and two machines running one graph never share it:

- ``Conv2d(x, w)`` is two nodes: ``Im2Col(x)`` (the column matrix, read again by the filter
  gradient) and ``Conv2d(cols, w)`` (one GEMM);
- ``Dropout(x, p)`` reads a ``DropoutMask(x)`` node drawn each run; its gradient reads the
  same mask, so forward and backward of one run always agree;
- ``BatchNorm`` reads a ``BatchNormStats(x)`` node (per-channel mean and 1/std: batch
  statistics in training, running statistics in eval); the running statistics are arrays
  owned by that op (or passed in by a layer), updated in place by training runs.

Example:
    >>> import graphcore as gc
    >>> g = gc.NewGraph()
    >>> x = gc.NewTensor(g, gc.Float32, 4, gc.WithShape(None, 1, 28, 28), gc.WithName("x"))
    >>> w = gc.NewTensor(g, gc.Float32, 4, gc.WithShape(8, 1, 3, 3), gc.WithName("w"))
    >>> h = gc.MaxPool2D(gc.Conv2d(x, w, pad=(1, 1)))
    >>> h.shape
    (None, 8, 14, 14)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..dtypes import Dtype
from ..errors import DtypeError, ShapeError
from ..graph import Node
from ..kernels.blas import can_gemm, gemm_into
from ..shapes import Shape, fmt_shape
from .base import ExecContext, Kernel, Op, TypeInfo, apply_op, describe, same_dtype

__all__ = [
    "Conv2d",
    "MaxPool2D",
    "AvgPool2D",
    "AveragePool2D",
    "Dropout",
    "BatchNorm",
    "Im2ColOp",
    "Conv2dOp",
    "MaxPool2DOp",
    "AvgPool2DOp",
    "DropoutMaskOp",
    "DropoutOp",
    "BatchNormStatsOp",
    "BatchNormOp",
]

Pair = tuple[int, int]


# ----- helpers ----------------------------------------------------------------------------------


def _pair(op: str, what: str, v: Any, minimum: int) -> Pair:
    """``v`` as a pair of ints >= ``minimum`` (one int means the same for both)."""
    vals = (v, v) if isinstance(v, (int, np.integer)) and not isinstance(v, bool) else v
    try:
        a, b = vals
        ok = all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in (a, b))
    except (TypeError, ValueError):
        ok = False
    if not ok or min(a, b) < minimum:
        raise ValueError(f"{op}: {what} must be an int or a pair of ints >= {minimum}, got {v!r}")
    return int(a), int(b)


def _float_image(op: str, x: TypeInfo, role: str = "input") -> None:
    if not x.dtype.is_float:
        raise DtypeError(f"{op} needs a Float32 or Float64 {role}, got {describe(x)}")
    if len(x.shape) != 4:
        raise ShapeError(
            f"{op}: {role} {describe(x)} must be 4-D NCHW (batch, channels, height, width); "
            f"reshape it first, e.g. Reshape(x, (None, 1, 28, 28))"
        )
    if any(d is None for d in x.shape[1:]):
        raise ShapeError(
            f"{op}: {role} {describe(x)} must have known channels, height and width; only the "
            f"batch dimension may be None"
        )


def _out_size(op: str, x: TypeInfo, size: int, k: int, p: int, s: int, d: int, axis: str) -> int:
    span = d * (k - 1) + 1
    if size + 2 * p < span:
        raise ShapeError(
            f"{op}: the {axis} of {describe(x)} ({size}, padded by {p} on each side) is smaller "
            f"than the kernel's reach ({span}); use a smaller kernel or more padding"
        )
    return (size + 2 * p - span) // s + 1


def _contig(a: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, Callable[[], Any] | None]:
    """``a`` reshaped as a view when it is contiguous, else a buffer plus a refresh function."""
    if a.flags.c_contiguous:
        return a.reshape(shape), None
    buf = np.empty(shape, a.dtype)
    return buf, lambda: np.copyto(buf.reshape(a.shape), a)


def _matmul_into(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> Callable[[], Any]:
    # scipy's BLAS like MatMul, so the machine never alternates two OpenBLAS thread pools
    if can_gemm(a, b, out):
        return gemm_into(a, b, out, 0.0)
    return lambda: np.matmul(a, b, out=out)


def _padded(x: np.ndarray, pad: Pair, fill: float) -> tuple[np.ndarray, Callable[[], Any] | None]:
    """A padded copy of ``x`` (border set once to ``fill``), refreshed by the returned function."""
    ph, pw = pad
    if ph == 0 and pw == 0:
        return x, None
    n, c, h, w = x.shape
    xp = np.full((n, c, h + 2 * ph, w + 2 * pw), fill, x.dtype)
    inner = xp[:, :, ph : ph + h, pw : pw + w]
    return xp, lambda: np.copyto(inner, x)


def _window_slices(
    a: np.ndarray, kernel: Pair, stride: Pair, dilation: Pair, out_hw: Pair
) -> list[np.ndarray]:
    """For each kernel offset (row-major), the strided (N, C, Ho, Wo) view of ``a`` it reads."""
    (kh, kw), (sh, sw), (dh, dw), (ho, wo) = kernel, stride, dilation, out_hw
    return [
        a[:, :, i * dh : i * dh + sh * (ho - 1) + 1 : sh, j * dw : j * dw + sw * (wo - 1) + 1 : sw]
        for i in range(kh)
        for j in range(kw)
    ]


class _Geometry:
    """Kernel, padding, stride and dilation of a sliding-window op, with its output size."""

    def __init__(self, kernel: Pair, pad: Pair, stride: Pair, dilation: Pair = (1, 1)) -> None:
        self.kernel_shape = kernel
        self.pad = pad
        self.stride = stride
        self.dilation = dilation

    def out_hw(self, op: str, x: TypeInfo) -> Pair:
        (kh, kw), (ph, pw), (sh, sw), (dh, dw) = (
            self.kernel_shape,
            self.pad,
            self.stride,
            self.dilation,
        )
        return (
            _out_size(op, x, x.shape[2], kh, ph, sh, dh, "height"),
            _out_size(op, x, x.shape[3], kw, pw, sw, dw, "width"),
        )

    def concrete_out_hw(self, shape: tuple[int, ...]) -> Pair:
        """Output (height, width) for a concrete, already checked NCHW shape."""
        (kh, kw), (ph, pw), (sh, sw), (dh, dw) = (
            self.kernel_shape,
            self.pad,
            self.stride,
            self.dilation,
        )
        return (
            (shape[2] + 2 * ph - dh * (kh - 1) - 1) // sh + 1,
            (shape[3] + 2 * pw - dw * (kw - 1) - 1) // sw + 1,
        )


# ----- convolution ------------------------------------------------------------------------------


class Im2ColOp(Op):
    """Unfold image patches into columns: (N, C, H, W) -> (C*kh*kw, N, Ho*Wo).

    Row ``(c, i, j)`` holds channel ``c`` shifted by kernel offset ``(i, j)``; this layout makes
    the convolution one GEMM and its filter gradient another, with no batch loop.

    Example:
        >>> Im2ColOp((3, 3), (1, 1), (1, 1), (1, 1)).name
        'Im2Col'
    """

    name = "Im2Col"
    arity = 1

    def __init__(self, kernel: Pair, pad: Pair, stride: Pair, dilation: Pair) -> None:
        self.kernel_shape = kernel
        self.pad = pad
        self.stride = stride
        self.dilation = dilation

    def _geo(self) -> _Geometry:
        return _Geometry(self.kernel_shape, self.pad, self.stride, self.dilation)

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        (x,) = ins
        _float_image("Conv2d", x)
        ho, wo = self._geo().out_hw("Conv2d", x)
        kh, kw = self.kernel_shape
        return (x.shape[1] * kh * kw, x.shape[0], ho * wo), x.dtype

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        x = xs[0]
        n, c, _, _ = x.shape
        (kh, kw), (sh, sw), (dh, dw) = self.kernel_shape, self.stride, self.dilation
        ho, wo = self._geo().concrete_out_hw(x.shape)
        src, refresh = _padded(x, self.pad, 0.0)
        s_n, s_c, s_h, s_w = src.strides
        windows = as_strided(
            src,
            shape=(c, kh, kw, n, ho, wo),
            strides=(s_c, s_h * dh, s_w * dw, s_n, s_h * sh, s_w * sw),
            writeable=False,
        )
        out6 = out.reshape(c, kh, kw, n, ho, wo)

        def run() -> None:
            if refresh is not None:
                refresh()
            np.copyto(out6, windows)

        return run

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        return [
            apply_op(
                Col2ImOp(self.kernel_shape, self.pad, self.stride, self.dilation),
                g,
                node.children[0],
            )
        ]


class Col2ImOp(Op):
    """Fold columns back into an image, summing overlaps (the gradient of ``Im2Col``).

    Operands: the columns and the image (read for its shape only).

    Example:
        >>> Col2ImOp((3, 3), (0, 0), (1, 1), (1, 1)).shape_only
        (1,)
    """

    name = "Col2Im"
    arity = 2
    differentiable = False
    shape_only = (1,)

    def __init__(self, kernel: Pair, pad: Pair, stride: Pair, dilation: Pair) -> None:
        self.kernel_shape = kernel
        self.pad = pad
        self.stride = stride
        self.dilation = dilation

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        cols, x = ins
        return x.shape, same_dtype(self.name, ins)

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        cols = xs[0]
        n, c, h, w = out.shape
        (kh, kw), (ph, pw) = self.kernel_shape, self.pad
        ho, wo = _Geometry(self.kernel_shape, self.pad, self.stride, self.dilation).concrete_out_hw(
            out.shape
        )
        padded = ph or pw
        acc = np.empty((n, c, h + 2 * ph, w + 2 * pw), out.dtype) if padded else out
        cols6, refresh = _contig(cols, (c, kh, kw, n, ho, wo))
        dsts = _window_slices(acc, self.kernel_shape, self.stride, self.dilation, (ho, wo))
        # (C, N, Ho, Wo) destination views next to their column blocks; summing offset by
        # offset avoids np.add.at (within one offset the targets never overlap)
        offsets = [(i, j) for i in range(kh) for j in range(kw)]
        pairs = [
            (d.transpose(1, 0, 2, 3), cols6[:, i, j])
            for d, (i, j) in zip(dsts, offsets, strict=True)
        ]
        inner = acc[:, :, ph : ph + h, pw : pw + w]

        def run() -> None:
            if refresh is not None:
                refresh()
            acc.fill(0)
            for d, s in pairs:
                np.add(d, s, out=d)
            if padded:
                np.copyto(out, inner)

        return run


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
        w2, w_refresh = _contig(w, (co, k))
        cols2, c_refresh = _contig(cols, (k, n * p))
        tmp = np.empty((co, n * p), out.dtype)
        gemm = _matmul_into(w2, cols2, tmp)
        # (Cout, N, P) -> (N, Cout, P): the one copy the column layout costs
        src = tmp.reshape(co, n, p).transpose(1, 0, 2)
        dst = out.reshape(n, co, p)

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
        gt = apply_op(_ConvOutToColsOp(), g)
        return [
            apply_op(_Conv2dColsGradOp(), w, gt) if wants[0] else None,
            apply_op(_Conv2dFilterGradOp(w.shape), gt, cols) if wants[1] else None,
        ]


class _ConvOutToColsOp(Op):
    """(N, Cout, Ho, Wo) -> (Cout, N, Ho*Wo): the upstream gradient in the GEMM's layout."""

    name = "ConvOutToCols"
    arity = 1
    differentiable = False

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


class _Conv2dFilterGradOp(Op):
    """dW = gT (Cout, N*P) @ cols (K, N*P)^T, shaped like the filter."""

    name = "Conv2dFilterGrad"
    arity = 2
    differentiable = False

    def __init__(self, filter_shape: Shape) -> None:
        self.filter_shape = filter_shape

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        return self.filter_shape, same_dtype(self.name, ins)

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        gt, cols = xs
        co, n, p = gt.shape
        k = cols.shape[0]
        gt2, g_refresh = _contig(gt, (co, n * p))
        cols2, c_refresh = _contig(cols, (k, n * p))
        out2 = out.reshape(co, k)
        gemm = _matmul_into(gt2, cols2.T, out2)

        def run() -> None:
            if g_refresh is not None:
                g_refresh()
            if c_refresh is not None:
                c_refresh()
            gemm()

        return run


class _Conv2dColsGradOp(Op):
    """dcols = W (Cout, K)^T @ gT (Cout, N*P), shaped (K, N, P)."""

    name = "Conv2dColsGrad"
    arity = 2
    differentiable = False

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        w, gt = ins
        k = w.shape[1] * w.shape[2] * w.shape[3]
        return (k, gt.shape[1], gt.shape[2]), same_dtype(self.name, ins)

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        w, gt = xs
        co, n, p = gt.shape
        k = out.shape[0]
        w2, w_refresh = _contig(w, (co, k))
        gt2, g_refresh = _contig(gt, (co, n * p))
        out2 = out.reshape(k, n * p)
        gemm = _matmul_into(w2.T, gt2, out2)

        def run() -> None:
            if w_refresh is not None:
                w_refresh()
            if g_refresh is not None:
                g_refresh()
            gemm()

        return run


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
    from ..values import as_node

    xn = as_node(x)
    wn = as_node(w, xn)
    xi = TypeInfo(xn.shape, xn.dtype, xn.name)
    wi = TypeInfo(wn.shape, wn.dtype, wn.name)
    _float_image("Conv2d", xi)
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
    if kernel is not None and _pair("Conv2d", "kernel", kernel, 1) != (kh, kw):
        raise ShapeError(
            f"Conv2d: kernel={tuple(kernel)} does not match filter {describe(wi)} "
            f"(kernel {(kh, kw)}); drop the kernel argument or fix the filter"
        )
    geo = _Geometry(
        (kh, kw),
        _pair("Conv2d", "pad", pad, 0),
        _pair("Conv2d", "stride", stride, 1),
        _pair("Conv2d", "dilation", dilation, 1),
    )
    out_hw = geo.out_hw("Conv2d", xi)
    cols = apply_op(Im2ColOp(geo.kernel_shape, geo.pad, geo.stride, geo.dilation), xn)
    node = apply_op(Conv2dOp(out_hw), cols, wn)
    return node


# ----- pooling ----------------------------------------------------------------------------------


class _PoolOp(Op):
    """Shared shape logic of the 2-D pooling ops."""

    arity = 1

    def __init__(self, kernel: Pair, pad: Pair, stride: Pair) -> None:
        self.kernel_shape = kernel
        self.pad = pad
        self.stride = stride

    def _geo(self) -> _Geometry:
        return _Geometry(self.kernel_shape, self.pad, self.stride)

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        (x,) = ins
        _float_image(self.name, x)
        ho, wo = self._geo().out_hw(self.name, x)
        return (x.shape[0], x.shape[1], ho, wo), x.dtype

    def _slices(self, src: np.ndarray, out: np.ndarray) -> list[np.ndarray]:
        return _window_slices(src, self.kernel_shape, self.stride, (1, 1), out.shape[2:])


class MaxPool2DOp(_PoolOp):
    """Max over each window; padding counts as -inf (it never wins).

    Example:
        >>> MaxPool2DOp((2, 2), (0, 0), (2, 2))
        MaxPool2D(kernel_shape=(2, 2), pad=(0, 0), stride=(2, 2))
    """

    name = "MaxPool2D"

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        src, refresh = _padded(xs[0], self.pad, -np.inf)
        first, *rest = self._slices(src, out)

        def run() -> None:
            if refresh is not None:
                refresh()
            np.copyto(out, first)
            for s in rest:
                np.maximum(out, s, out=out)

        return run

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        op = _MaxPool2DGradOp(self.kernel_shape, self.pad, self.stride)
        return [apply_op(op, node.children[0], node, g)]


class _MaxPool2DGradOp(_PoolOp):
    """Routes each window's gradient to its maximum: operands x, the pooled output y, and g.

    Ties go to the first maximum in row-major window order (the one a scan finds first).
    """

    name = "MaxPool2DGrad"
    arity = 3
    differentiable = False

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        return ins[0].shape, same_dtype(self.name, ins)

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        x, y, g = xs
        src, refresh = _padded(x, self.pad, -np.inf)
        ph, pw = self.pad
        padded = ph or pw
        acc = np.empty(src.shape, out.dtype) if padded else out
        inner = acc[:, :, ph : ph + x.shape[2], pw : pw + x.shape[3]]
        pairs = list(zip(self._slices(src, y), self._slices(acc, y), strict=True))
        left = np.empty_like(g)  # gradient not yet routed (zero once a window's max is found)
        hit = np.empty_like(g)
        (kh, kw), (sh, sw) = self.kernel_shape, self.stride
        # windows that never overlap (stride >= kernel, the usual 2x2/2) own their pixels:
        # write each offset's share straight into dx instead of accumulating
        disjoint = not padded and sh >= kh and sw >= kw
        covered = disjoint and (sh, sw) == (kh, kw)
        covered = covered and y.shape[2] * kh == x.shape[2] and y.shape[3] * kw == x.shape[3]
        last = len(pairs) - 1

        def run() -> None:
            if refresh is not None:
                refresh()
            if not covered:
                acc.fill(0)
            np.copyto(left, g)
            for k, (xs_k, dst) in enumerate(pairs):
                # contiguous scratch first: ufuncs writing strided outputs are slow
                np.equal(xs_k, y, out=hit)
                np.multiply(hit, left, out=hit)
                if disjoint:
                    np.copyto(dst, hit)
                else:
                    np.add(dst, hit, out=dst)
                if k != last:
                    np.subtract(left, hit, out=left)
            if padded:
                np.copyto(out, inner)

        return run


class AvgPool2DOp(_PoolOp):
    """Mean over each window; padding counts as zeros and is included in the divisor.

    Example:
        >>> AvgPool2DOp((2, 2), (0, 0), (2, 2)).name
        'AvgPool2D'
    """

    name = "AvgPool2D"

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        src, refresh = _padded(xs[0], self.pad, 0.0)
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
        op = _AvgPool2DGradOp(self.kernel_shape, self.pad, self.stride)
        return [apply_op(op, g, node.children[0])]


class _AvgPool2DGradOp(_PoolOp):
    """Spreads each window's gradient evenly over it: operands g and x (shape only)."""

    name = "AvgPool2DGrad"
    arity = 2
    differentiable = False
    shape_only = (1,)

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        return ins[1].shape, same_dtype(self.name, ins)

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        g = xs[0]
        ph, pw = self.pad
        n, c, h, w = out.shape
        padded = ph or pw
        acc = np.empty((n, c, h + 2 * ph, w + 2 * pw), out.dtype) if padded else out
        inner = acc[:, :, ph : ph + h, pw : pw + w]
        dsts = self._slices(acc, g)
        share = np.empty_like(g)
        inv = 1.0 / (self.kernel_shape[0] * self.kernel_shape[1])

        def run() -> None:
            acc.fill(0)
            np.multiply(g, inv, out=share)
            for d in dsts:
                np.add(d, share, out=d)
            if padded:
                np.copyto(out, inner)

        return run


def _pool(cls: type[_PoolOp], x: Any, kernel: Any, pad: Any, stride: Any) -> Node:
    name = cls.name
    k = _pair(name, "kernel", kernel, 1)
    p = _pair(name, "pad", pad, 0)
    if p[0] >= k[0] or p[1] >= k[1]:
        raise ValueError(
            f"{name}: pad {p} must be smaller than the kernel {k}, so every window holds at "
            f"least one input value"
        )
    return apply_op(cls(k, p, _pair(name, "stride", stride, 1)), x)


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


# ----- dropout ----------------------------------------------------------------------------------


class DropoutMaskOp(Op):
    """The scaled keep-mask of one run: 1/(1-p) with probability 1-p, else 0 (training only).

    Its operand is the dropped tensor, read for its shape only. Drawn into this node's buffer
    each training run from ``rng`` when given (a golgi Dropout layer's own generator, saved
    with the layer so a resumed run draws the same masks), else from the machine's generator
    (``ctx.generator()``); eval runs fill it with ones (``Dropout`` and its gradient then pass
    values through without reading it).

    Example:
        >>> DropoutMaskOp(0.5).name
        'DropoutMask'
    """

    name = "DropoutMask"
    arity = 1
    differentiable = False
    shape_only = (0,)

    def __init__(self, p: float, rng: np.random.Generator | None = None) -> None:
        self.p = p
        self._rng = rng  # private: not an op parameter (repr, drawings)

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        (x,) = ins
        if not x.dtype.is_float:
            raise DtypeError(f"Dropout needs a Float32 or Float64 operand, got {describe(x)}")
        return x.shape, x.dtype

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        p, scale, dt = self.p, 1.0 / (1.0 - self.p), out.dtype
        flat = out.reshape(-1)
        own = self._rng

        def run() -> None:
            if not ctx.training:
                # keep-all, so the node's value means the same in both modes (and a NaN watch
                # never sees whatever a reused buffer held)
                flat.fill(1.0)
                return
            (own if own is not None else ctx.generator()).random(out=flat, dtype=dt)
            # u >= p keeps with probability 1 - p
            np.greater_equal(flat, p, out=flat)
            np.multiply(flat, scale, out=flat)

        return run


class DropoutOp(Op):
    """``x * mask`` in training, ``x`` in eval: operands x and its ``DropoutMask`` node.

    Example:
        >>> DropoutOp(0.5).name
        'Dropout'
    """

    name = "Dropout"
    arity = 2
    inplace = True

    def __init__(self, p: float) -> None:
        self.p = p

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        return ins[0].shape, same_dtype(self.name, ins, float_only=True)

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        x, mask = xs

        def run() -> None:
            if ctx.training:
                np.multiply(x, mask, out=out)
            else:
                np.copyto(out, x)

        return run

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        # the mask is random, not a function of x: no gradient flows into it
        return [apply_op(_DropoutGradOp(self.p), g, node.children[1]), None]


class _DropoutGradOp(Op):
    """``g * mask`` (the same mask as the forward of this run) in training, ``g`` in eval."""

    name = "DropoutGrad"
    arity = 2
    inplace = True
    differentiable = False

    def __init__(self, p: float) -> None:
        self.p = p

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        return ins[0].shape, same_dtype(self.name, ins)

    kernel = DropoutOp.kernel  # the same computation with g in place of x


def Dropout(x: Any, p: float, rng: np.random.Generator | None = None) -> Node:
    """Inverted dropout: in training, zero each element with probability ``p`` and scale the
    kept ones by 1/(1-p), so the expected value is unchanged; in eval mode, the identity.

    The mode is the machine's (``EvalMode()``, ``vm.training = False``), read at run time.
    Masks come from ``rng`` (a ``numpy.random.Generator``) when given, else from the machine's
    generator, seeded by ``SetSeed``. ``p == 0`` returns ``x`` itself. The gradient is
    ``g * mask / (1-p)`` with the mask of the same run (Gorgonia divides by ``p`` instead).

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph()
        >>> x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 100), gc.WithName("x"))
        >>> gc.Dropout(x, 0.5).op
        Dropout(p=0.5)
    """
    if isinstance(p, bool) or not isinstance(p, (int, float, np.floating, np.integer)):
        raise TypeError(f"Dropout: p must be a float in [0, 1), got {p!r}")
    p = float(p)
    if not 0.0 <= p < 1.0:
        raise ValueError(
            f"Dropout: p={p} is the probability of dropping an element and must be in [0, 1)"
        )
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"Dropout: rng must be a numpy Generator (np.random.default_rng(seed)) or None, "
            f"got {type(rng).__name__}"
        )
    if p == 0.0:
        from ..values import as_node

        return as_node(x)
    mask = apply_op(DropoutMaskOp(p, rng), x)
    return apply_op(DropoutOp(p), x, mask)


# ----- batch normalisation ----------------------------------------------------------------------


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
    differentiable = False

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
        gamma1, g_refresh = _contig(gamma, (c,))
        beta1, b_refresh = _contig(beta, (c,))

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
        sums = apply_op(_BatchNormSumsOp(), x, stats, g)
        return [
            apply_op(_BatchNormGradOp(), x, stats, gamma, g, sums) if wants[0] else None,
            None,
            apply_op(_PickRowOp(1, gamma.shape), sums) if wants[2] else None,
            apply_op(_PickRowOp(0, beta.shape), sums) if wants[3] else None,
        ]


class _BatchNormSumsOp(Op):
    """Per channel [sum(g), sum(g * xhat)] as (2, C): dbeta, dgamma, and what dx needs."""

    name = "BatchNormSums"
    arity = 3
    differentiable = False

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


class _BatchNormGradOp(Op):
    """dx from x, stats, gamma, g and the sums; the full formula in training, affine in eval.

    Training: dx = gamma * inv * (g - sum(g)/M - xhat * sum(g*xhat)/M), M values per channel.
    Eval (statistics are constants): dx = gamma * inv * g.
    """

    name = "BatchNormGrad"
    arity = 5
    differentiable = False

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        return ins[0].shape, same_dtype(self.name, ins)

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        x, stats, gamma, g, sums = xs
        c = x.shape[1]
        m_count = x.size // c
        bshape = _bcast(x.ndim, c)
        mean, inv = stats[0], stats[1]
        gamma1, g_refresh = _contig(gamma, (c,))
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


class _PickRowOp(Op):
    """Row ``i`` of a (2, C) array, shaped like the parameter it is the gradient of.

    A copy, not a view: C values, and a gradient bound to a learnable needs its own buffer.
    """

    name = "PickRow"
    arity = 1
    differentiable = False

    def __init__(self, row: int, shape: Shape) -> None:
        self.row = row
        self.shape = shape

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        return self.shape, ins[0].dtype

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        src = xs[0][self.row].reshape(out.shape)
        return lambda: np.copyto(out, src)


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
    from ..values import as_node

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
