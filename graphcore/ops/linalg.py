"""Matrix products and transposes: ``Mul`` (Gorgonia's overloaded product), ``MatMul``, ``Transpose``.

Transposes are views: the tape machine hands BLAS the transposed layout instead of copying.

Example:
    >>> import graphcore as gc
    >>> g = gc.NewGraph()
    >>> x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 784), gc.WithName("x"))
    >>> w = gc.NewMatrix(g, gc.Float32, gc.WithShape(784, 250), gc.WithName("w"))
    >>> gc.Mul(x, w).shape
    (None, 250)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..dtypes import Dtype
from ..errors import ShapeError
from ..graph import Node, as_node
from ..shapes import Shape, norm_axes
from .blas import can_gemm, gemm_into
from .base import ExecContext, Kernel, Op, TypeInfo, apply_op, describe, same_dtype

__all__ = ["Mul", "MatMul", "Transpose", "MatMulOp", "TransposeOp"]


def _dims_match(a: int | None, b: int | None) -> bool:
    return a is None or b is None or a == b


class MatMulOp(Op):
    """numpy ``matmul`` for 1-D and 2-D operands (vector-vector gives a scalar).

    Example:
        >>> MatMulOp().name
        'MatMul'
    """

    name = "MatMul"
    arity = 2

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        a, b = ins
        dt = same_dtype("Mul", ins, float_only=True)
        if not (1 <= len(a.shape) <= 2 and 1 <= len(b.shape) <= 2):
            raise ShapeError(
                f"Mul: operands must be vectors or matrices, got {describe(a)} and {describe(b)};"
                f" use BatchedMatMul or Tensordot for higher ranks"
            )
        k1 = a.shape[-1]
        k2 = b.shape[0]
        if not _dims_match(k1, k2):
            raise ShapeError(
                f"Mul: inner dimensions do not match: {describe(a)} times {describe(b)} "
                f"({k1} != {k2}); the last dimension of {a.name!r} must equal the first of "
                f"{b.name!r}"
            )
        shape = a.shape[:-1] + b.shape[1:]
        return shape, dt

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        a, b = xs
        if out.ndim == 0:
            return lambda: np.copyto(out, np.dot(a, b))
        if can_gemm(a, b, out):
            # scipy's BLAS for every product: alternating two OpenBLAS pools (numpy's and
            # scipy's) makes their idle threads spin against each other
            return gemm_into(a, b, out, 0.0)
        return lambda: np.matmul(a, b, out=out)

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        from .arith import HadamardProd
        from .shape import OuterProd

        a, b = node.children
        ga = gb = None
        if a.ndim == 2 and b.ndim == 2:
            ga = MatMul(g, Transpose(b)) if wants[0] else None
            gb = MatMul(Transpose(a), g) if wants[1] else None
        elif a.ndim == 2 and b.ndim == 1:  # (m,k)@(k,) -> (m,)
            ga = OuterProd(g, b) if wants[0] else None
            gb = MatMul(Transpose(a), g) if wants[1] else None
        elif a.ndim == 1 and b.ndim == 2:  # (k,)@(k,n) -> (n,)
            ga = MatMul(b, g) if wants[0] else None
            gb = OuterProd(a, g) if wants[1] else None
        else:  # dot product -> scalar
            ga = HadamardProd(g, b) if wants[0] else None
            gb = HadamardProd(g, a) if wants[1] else None
        return [ga, gb]


def MatMul(a: Any, b: Any) -> Node:
    """Matrix product of vectors/matrices, numpy's ``a @ b`` (``@`` on nodes).

    Example:
        >>> import graphcore as gc
        >>> gc.MatMul(gc.NewConstant([[1.0, 2.0]]), gc.NewConstant([[1.0], [1.0]])).shape
        (1, 1)
    """
    return apply_op(MatMulOp(), a, b)


def Mul(a: Any, b: Any) -> Node:
    """Gorgonia's ``Mul``: a matrix product for vectors and matrices, elementwise if a scalar.

    Example:
        >>> import graphcore as gc
        >>> gc.Mul(gc.NewConstant([[1.0, 2.0]]), 3.0).op.name
        'HadamardProd'
    """
    from .arith import HadamardProd

    like = a if isinstance(a, Node) else b if isinstance(b, Node) else None
    na, nb = as_node(a, like), as_node(b, like)
    if na.ndim == 0 or nb.ndim == 0:
        return HadamardProd(na, nb)
    return MatMul(na, nb)


class TransposeOp(Op):
    """Permute axes (a view: no copy).

    Example:
        >>> TransposeOp((1, 0)).params()
        {'axes': (1, 0)}
    """

    name = "Transpose"
    arity = 1
    view = True

    def __init__(self, axes: tuple[int, ...] | None) -> None:
        self.axes = axes

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        (x,) = ins
        axes = self.axes if self.axes is not None else tuple(reversed(range(len(x.shape))))
        if sorted(norm_axes(axes, len(x.shape))) != list(range(len(x.shape))) or len(axes) != len(
            x.shape
        ):
            raise ShapeError(
                f"Transpose: axes {axes} are not a permutation of the {len(x.shape)} axes of "
                f"{describe(x)}"
            )
        return tuple(x.shape[a] for a in axes), x.dtype

    def view_of(self, xs: list[np.ndarray]) -> np.ndarray:
        return np.transpose(xs[0], self.axes)

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        x, axes = xs[0], self.axes
        return lambda: np.copyto(out, np.transpose(x, axes))

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        n = node.children[0].ndim
        axes = self.axes if self.axes is not None else tuple(reversed(range(n)))
        inv = tuple(np.argsort(axes).tolist())
        return [Transpose(g, inv)]


def Transpose(x: Any, axes: Sequence[int] | None = None) -> Node:
    """Permute axes (reverse them by default); ``Transpose(Transpose(x))`` is ``x``.

    Example:
        >>> import graphcore as gc
        >>> gc.Transpose(gc.NewConstant([[1.0, 2.0, 3.0]])).shape
        (3, 1)
    """
    ax = None if axes is None else tuple(int(a) for a in axes)
    if isinstance(x, Node) and isinstance(x.op, TransposeOp):
        inner = x.children[0]
        n = inner.ndim
        a1 = x.op.axes if x.op.axes is not None else tuple(reversed(range(n)))
        a2 = ax if ax is not None else tuple(reversed(range(n)))
        if tuple(a1[i] for i in a2) == tuple(range(n)):
            return inner
    if ax is not None and isinstance(x, Node):
        ax = tuple(a % x.ndim if -x.ndim <= a < x.ndim else a for a in ax)
    return apply_op(TransposeOp(ax), x)
