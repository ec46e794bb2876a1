"""Nearest-neighbour upsampling of NCHW images by integer factors.

``Upsample2D`` repeats each pixel into a block; its gradient sums each block. Both are linear
and each is the other's adjoint, so each one's gradient is the other: derivatives of any order
route exactly.

Example:
    >>> import graphcore as gc
    >>> g = gc.NewGraph()
    >>> x = gc.NewTensor(g, gc.Float32, 4, gc.WithShape(None, 3, 8, 8), gc.WithName("x"))
    >>> gc.Upsample2D(x, 2).shape
    (None, 3, 16, 16)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..dtypes import Dtype
from ..graph import Node
from ..shapes import Shape
from .base import ExecContext, Kernel, Op, TypeInfo, apply_op, same_dtype
from .images import Pair, check_image, pair

__all__ = ["Upsample2D", "Upsample2DOp", "Upsample2DGradOp"]


def _blocks(a: np.ndarray, scale: Pair) -> np.ndarray:
    """(N, C, H*sh, W*sw) ``a`` as an (N, C, H, sh, W, sw) view of its blocks (any strides)."""
    n, c, hh, ww = a.shape
    (sh, sw), (s0, s1, s2, s3) = scale, a.strides
    return as_strided(a, (n, c, hh // sh, sh, ww // sw, sw), (s0, s1, s2 * sh, s2, s3 * sw, s3))


class Upsample2DOp(Op):
    """Repeat each pixel into an sh x sw block: (N, C, H, W) -> (N, C, H*sh, W*sw).

    One copy from a view of ``x`` that repeats each value with zero strides.

    Example:
        >>> Upsample2DOp((2, 2))
        Upsample2D(scale=(2, 2))
    """

    name = "Upsample2D"
    arity = 1

    def __init__(self, scale: Pair) -> None:
        self.scale = scale

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        (x,) = ins
        check_image(self.name, x)
        n, c, h, w = x.shape
        return (n, c, h * self.scale[0], w * self.scale[1]), x.dtype

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        x = xs[0]
        n, c, h, w = x.shape
        (sh, sw), (s0, s1, s2, s3) = self.scale, x.strides
        src = as_strided(x, (n, c, h, sh, w, sw), (s0, s1, s2, 0, s3, 0), writeable=False)
        dst = out.reshape(n, c, h, sh, w, sw)
        return lambda: np.copyto(dst, src)

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        return [apply_op(Upsample2DGradOp(self.scale), g, node.children[0])]


class Upsample2DGradOp(Op):
    """Sum each sh x sw block of ``g`` (N, C, H*sh, W*sw) into (N, C, H, W): the gradient of
    ``Upsample2D``. Operands: g and the image (read for its shape only). Its own gradient is
    ``Upsample2D``.

    Example:
        >>> Upsample2DGradOp((2, 2)).shape_only
        (1,)
    """

    name = "Upsample2DGrad"
    arity = 2
    shape_only = (1,)

    def __init__(self, scale: Pair) -> None:
        self.scale = scale

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        return ins[1].shape, same_dtype(self.name, ins)

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        blocks = _blocks(xs[0], self.scale)

        def run() -> None:  # a def, not a lambda: a kernel returns None, not numpy's array
            np.add.reduce(blocks, axis=(3, 5), out=out)

        return run

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        return [apply_op(Upsample2DOp(self.scale), g), None]


def Upsample2D(x: Any, scale: int | Sequence[int] = 2) -> Node:
    """Nearest-neighbour upsampling of NCHW images by an integer factor (Gorgonia's
    ``Upsample2D(x, scale)``): each pixel becomes a scale x scale block; (N, C, H, W) ->
    (N, C, H*scale, W*scale). A pair (sh, sw) scales height and width differently. The
    gradient sums each block.

    Example:
        >>> import numpy as np, graphcore as gc
        >>> g = gc.NewGraph()
        >>> x = gc.NodeFromAny(g, np.array([[[[1.0, 2.0]]]]), gc.WithName("x"))
        >>> y = gc.Upsample2D(x, 2); y.shape
        (1, 1, 2, 4)
        >>> gc.NewTapeMachine(g).run_all(); y.value[0, 0].tolist()
        [[1.0, 1.0, 2.0, 2.0], [1.0, 1.0, 2.0, 2.0]]
    """
    return apply_op(Upsample2DOp(pair("Upsample2D", "scale", scale, 1)), x)
