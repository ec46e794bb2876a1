"""Image patches as columns: ``Im2Col`` (the convolution's column matrix, read again by the
filter gradient) with its adjoint ``Col2Im``, and the public ``Im2Col`` in Gorgonia's
(N, Ho, Wo, C*kh*kw) layout with its adjoint.

Example:
    >>> import graphcore as gc
    >>> g = gc.NewGraph()
    >>> x = gc.NewTensor(g, gc.Float32, 4, gc.WithShape(None, 3, 28, 28), gc.WithName("x"))
    >>> gc.Im2Col(x, (3, 3)).shape, Im2ColOp((3, 3), (1, 1), (1, 1), (1, 1)).name
    ((None, 26, 26, 27), 'Im2Col')
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..dtypes import Dtype
from ..graph import Node
from ..kernels.windows import strided_windows
from ..shapes import Shape
from .base import ExecContext, Kernel, Op, TypeInfo, apply_op, same_dtype
from .images import (
    Geometry,
    Pair,
    check_image,
    contiguous,
    pair,
    window_slices,
)

__all__ = ["Im2Col", "Im2ColOp", "Col2ImOp", "Im2ColRowsOp", "Col2ImRowsOp"]


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

    def _geo(self) -> Geometry:
        return Geometry(self.kernel_shape, self.pad, self.stride, self.dilation)

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        (x,) = ins
        check_image("Conv2d", x)
        ho, wo = self._geo().out_hw("Conv2d", x)
        kh, kw = self.kernel_shape
        return (x.shape[1] * kh * kw, x.shape[0], ho * wo), x.dtype

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        x, k = xs[0], ctx.kernels
        geo = (self.kernel_shape, self.pad, self.stride, self.dilation)
        scratch = k.im2col_scratch(x, out, *geo)
        return lambda: k.im2col(x, out, scratch)

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
        k = ctx.kernels
        cols, refresh = contiguous(xs[0], xs[0].shape)
        scratch = k.col2im_scratch(
            cols, out, self.kernel_shape, self.pad, self.stride, self.dilation
        )
        if refresh is None:
            return lambda: k.col2im(cols, out, scratch)

        def run() -> None:
            refresh()
            k.col2im(cols, out, scratch)

        return run

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        # folding is linear, and its adjoint is unfolding with the same geometry
        op = Im2ColOp(self.kernel_shape, self.pad, self.stride, self.dilation)
        return [apply_op(op, g), None]

# ----- the public Im2Col: one row of patch values per output position ---------------------------


class Im2ColRowsOp(Op):
    """Gorgonia's ``Im2Col``: (N, C, H, W) -> (N, Ho, Wo, C*kh*kw), the patch each output
    position of a convolution reads, flattened in (channel, kernel row, kernel column) order.

    One copy from a strided view of the (padded) image. (``Conv2d`` uses ``Im2ColOp``, whose
    (C*kh*kw, N, Ho*Wo) layout suits its GEMMs.) Linear; its gradient is ``Col2ImRows``.

    Example:
        >>> Im2ColRowsOp((3, 3), (1, 1), (1, 1), (1, 1)).name
        'Im2Col'
    """

    name = "Im2Col"
    arity = 1

    def __init__(self, kernel: Pair, pad: Pair, stride: Pair, dilation: Pair) -> None:
        self.kernel_shape = kernel
        self.pad = pad
        self.stride = stride
        self.dilation = dilation

    def _geo(self) -> Geometry:
        return Geometry(self.kernel_shape, self.pad, self.stride, self.dilation)

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        (x,) = ins
        check_image("Im2Col", x)
        ho, wo = self._geo().out_hw("Im2Col", x)
        kh, kw = self.kernel_shape
        return (x.shape[0], ho, wo, x.shape[1] * kh * kw), x.dtype

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        x = xs[0]
        n, c, _, _ = x.shape
        kh, kw = self.kernel_shape
        ho, wo = self._geo().concrete_out_hw(x.shape)
        refresh, all_windows = strided_windows(
            x, self.kernel_shape, self.pad, self.stride, self.dilation, (ho, wo)
        )
        windows = all_windows.transpose(0, 4, 5, 1, 2, 3)  # (N, Ho, Wo, C, kh, kw)
        out6 = out.reshape(n, ho, wo, c, kh, kw)

        def run() -> None:
            if refresh is not None:
                refresh()
            np.copyto(out6, windows)

        return run

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        op = Col2ImRowsOp(self.kernel_shape, self.pad, self.stride, self.dilation)
        return [apply_op(op, g, node.children[0])]


class Col2ImRowsOp(Op):
    """Fold (N, Ho, Wo, C*kh*kw) patch rows back into an (N, C, H, W) image, summing where
    patches overlap: the gradient of ``Im2Col``. Operands: the rows and the image (read for its
    shape only). Linear; its gradient is ``Im2Col`` again.

    Example:
        >>> Col2ImRowsOp((3, 3), (0, 0), (1, 1), (1, 1)).shape_only
        (1,)
    """

    name = "Col2ImRows"
    arity = 2
    shape_only = (1,)

    def __init__(self, kernel: Pair, pad: Pair, stride: Pair, dilation: Pair) -> None:
        self.kernel_shape = kernel
        self.pad = pad
        self.stride = stride
        self.dilation = dilation

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        return ins[1].shape, same_dtype(self.name, ins)

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        rows = xs[0]
        n, c, h, w = out.shape
        (kh, kw), (ph, pw) = self.kernel_shape, self.pad
        ho, wo = rows.shape[1], rows.shape[2]
        has_pad = bool(ph or pw)
        acc = np.empty((n, c, h + 2 * ph, w + 2 * pw), out.dtype) if has_pad else out
        rows6, refresh = contiguous(rows, (n, ho, wo, c, kh, kw))
        dsts = window_slices(acc, self.kernel_shape, self.stride, self.dilation, (ho, wo))
        # each kernel offset's (N, C, Ho, Wo) destination next to its values; within one offset
        # the targets never overlap, so plain adds do (no np.add.at)
        offsets = [(i, j) for i in range(kh) for j in range(kw)]
        pairs = [
            (d, rows6[:, :, :, :, i, j].transpose(0, 3, 1, 2))
            for d, (i, j) in zip(dsts, offsets, strict=True)
        ]
        inner = acc[:, :, ph : ph + h, pw : pw + w]

        def run() -> None:
            if refresh is not None:
                refresh()
            acc.fill(0)
            for d, s in pairs:
                np.add(d, s, out=d)
            if has_pad:
                np.copyto(out, inner)

        return run

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        op = Im2ColRowsOp(self.kernel_shape, self.pad, self.stride, self.dilation)
        return [apply_op(op, g), None]


def Im2Col(
    x: Any,
    kernel: int | Sequence[int],
    pad: int | Sequence[int] = (0, 0),
    stride: int | Sequence[int] = (1, 1),
    dilation: int | Sequence[int] = (1, 1),
) -> Node:
    """The patches of NCHW images a convolution reads, one row per output position.

    Gorgonia's ``Im2Col(x, kernel, pad, stride, dilation)``: (N, C, H, W) -> (N, Ho, Wo,
    C*kh*kw), each row in (channel, kernel row, kernel column) order, padding read as zeros;
    Ho and Wo as for ``Conv2d``. PyTorch's ``unfold`` gives the same values as
    (N, C*kh*kw, Ho*Wo). Differentiable (the gradient folds the rows back, summing overlaps).

    Example:
        >>> import numpy as np, graphcore as gc
        >>> g = gc.NewGraph()
        >>> x = gc.NodeFromAny(g, np.arange(16.0).reshape(1, 1, 4, 4), gc.WithName("x"))
        >>> cols = gc.Im2Col(x, kernel=2, stride=2); cols.shape
        (1, 2, 2, 4)
        >>> gc.NewTapeMachine(g).run_all(); cols.value[0, 0, 1].tolist()
        [2.0, 3.0, 6.0, 7.0]
    """
    geo = Geometry(
        pair("Im2Col", "kernel", kernel, 1),
        pair("Im2Col", "pad", pad, 0),
        pair("Im2Col", "stride", stride, 1),
        pair("Im2Col", "dilation", dilation, 1),
    )
    return apply_op(Im2ColRowsOp(geo.kernel_shape, geo.pad, geo.stride, geo.dilation), x)
