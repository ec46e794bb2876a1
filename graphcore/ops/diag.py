"""``DiagFlat``: a square matrix with the flattened operand on its diagonal, and its
gradient, the diagonal read back in the operand's shape.

Gorgonia's ``DiagFlat`` is not differentiable; here both ops are linear and each is the
other's gradient, so they differentiate to any order.

Example:
    >>> import graphcore as gc
    >>> gc.DiagFlat(gc.NewConstant([[1.0, 2.0], [3.0, 4.0]])).shape
    (4, 4)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..dtypes import Dtype
from ..errors import ShapeError
from ..graph import Node
from ..shapes import Shape, fmt_shape, size_of
from ..values import as_node
from .base import ExecContext, Kernel, Op, TypeInfo, apply_op, describe

__all__ = ["DiagFlat", "DiagFlatOp", "DiagPartOp"]


def _diagonal(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The diagonal of the square matrix ``a`` as a view shaped ``shape`` (a strided 1-D
    view splits into any shape without a copy)."""
    return np.diagonal(a).reshape(shape)


class DiagFlatOp(Op):
    """``x`` flattened onto the diagonal of an ``(n, n)`` matrix of zeros, ``n = x.size``.

    Example:
        >>> DiagFlatOp().compute([np.array([1.0, 2.0])], ExecContext()).tolist()
        [[1.0, 0.0], [0.0, 2.0]]
    """

    name = "DiagFlat"
    arity = 1
    rebuildable = True

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        (x,) = ins
        if None in x.shape:
            raise ShapeError(
                f"DiagFlat: {describe(x)} has a free (None) dimension, so the size of the "
                f"(n, n) result is not known when the graph is built; give the operand a "
                f"fixed shape (one sample: x[0]) or Reshape it to known sizes"
            )
        n = size_of(x.shape)
        return (n, n), x.dtype

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        x = xs[0]
        n = out.shape[0]
        # out is contiguous (a fresh buffer), so every (n+1)-th element is the diagonal
        diag = out.reshape(-1)[:: n + 1].reshape(x.shape)

        def run() -> None:
            out.fill(0)
            np.copyto(diag, x)

        return run

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        return [apply_op(DiagPartOp(node.children[0].shape), g)]


class DiagPartOp(Op):
    """The diagonal of a square matrix, shaped ``shape`` (the gradient of ``DiagFlat``).

    Example:
        >>> DiagPartOp((2,)).compute([np.arange(4.0).reshape(2, 2)], ExecContext()).tolist()
        [0.0, 3.0]
    """

    name = "DiagPart"
    arity = 1
    rebuildable = True

    def __init__(self, shape: Shape) -> None:
        self.shape = tuple(shape)

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        (m,) = ins
        n = size_of(self.shape)
        if tuple(m.shape) != (n, n):
            raise ShapeError(
                f"DiagPart: {describe(m)} must be a ({n}, {n}) matrix to give a diagonal "
                f"shaped {fmt_shape(self.shape)}"
            )
        return self.shape, m.dtype

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        diag = _diagonal(xs[0], self.shape)
        return lambda: np.copyto(out, diag)

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        return [apply_op(DiagFlatOp(), g)]


def DiagFlat(x: Any) -> Node:
    """A square matrix with ``x``, flattened, on its diagonal and zeros elsewhere (numpy's
    ``diagflat``): ``(n, n)`` for ``n`` elements. The operand's shape must be known (no free
    dimension). Differentiable, unlike Gorgonia's.

    Example:
        >>> import graphcore as gc
        >>> m = gc.DiagFlat(gc.NewConstant([1.0, 2.0, 3.0]))
        >>> m.op.compute([np.array([1.0, 2.0, 3.0])], gc.ExecContext()).tolist()
        [[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 3.0]]
    """
    return apply_op(DiagFlatOp(), as_node(x))
