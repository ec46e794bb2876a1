"""Shape and indexing ops: ``Reshape``, ``OuterProd`` (more of this family live here too).

Example:
    >>> import graphcore as gc
    >>> gc.Reshape(gc.NewConstant([1.0, 2.0, 3.0, 4.0]), (2, 2)).shape
    (2, 2)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..dtypes import Dtype
from ..errors import ShapeError
from ..graph import Node
from ..shapes import Shape, as_shape, size_of
from .base import ExecContext, Kernel, Op, TypeInfo, apply_op, describe, same_dtype

__all__ = ["Reshape", "OuterProd", "ReshapeOp", "OuterProdOp"]


class ReshapeOp(Op):
    """Reshape to ``shape``; a ``None`` entry keeps the operand's free dimension 0 (a view).

    Example:
        >>> ReshapeOp((None, 4)).params()
        {'shape': (None, 4)}
    """

    name = "Reshape"
    arity = 1
    view = True

    def __init__(self, shape: Shape) -> None:
        self.shape = shape

    def _target(self, src: Shape) -> Shape:
        tgt = list(self.shape)
        if -1 in tgt:
            if tgt.count(-1) > 1:
                raise ShapeError(f"Reshape: at most one -1 in {self.shape}")
            known = [d for d in tgt if d not in (-1, None)]
            if None in src or None in tgt:
                raise ShapeError(
                    f"Reshape to {self.shape}: -1 cannot be combined with a free dimension"
                )
            rest = size_of(src) // max(1, size_of(tuple(known)))
            tgt[tgt.index(-1)] = rest
        return tuple(tgt)

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        (x,) = ins
        tgt = self._target(x.shape)
        src_free = [d for d in x.shape if d is None]
        tgt_free = [d for d in tgt if d is None]
        ok = len(src_free) == len(tgt_free)
        if ok and not src_free:
            ok = size_of(x.shape) == size_of(tgt)
        elif ok:
            ok = size_of(tuple(d for d in x.shape if d is not None)) == size_of(
                tuple(d for d in tgt if d is not None)
            )
        if not ok:
            raise ShapeError(
                f"Reshape: cannot reshape {describe(x)} to {tgt}: the number of elements "
                f"differs (a None dimension must stay None)"
            )
        return tgt, x.dtype

    def view_of(self, xs: list[np.ndarray]) -> np.ndarray:
        x = xs[0]
        tgt = tuple(x.shape[0] if d is None else d for d in self._target(x.shape))
        v = x.reshape(tgt)
        return v

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        x = xs[0]
        return lambda: np.copyto(out, x.reshape(out.shape))

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        x = node.children[0]
        return [Reshape(g, x.shape)]


def Reshape(x: Any, shape: Sequence[int | None] | int) -> Node:
    """Reshape; ``None`` keeps the free batch dimension, one ``-1`` is inferred.

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph(); x = gc.NewTensor(g, gc.Float32, 4, gc.WithShape(None, 1, 28, 28),
        ...                                     gc.WithName("img"))
        >>> gc.Reshape(x, (None, 784)).shape
        (None, 784)
    """
    if isinstance(shape, int):
        shape = (shape,)
    tgt = tuple(-1 if d == -1 else d for d in shape)
    as_shape([d for d in tgt if d != -1], "Reshape target")
    if isinstance(x, Node) and x.shape == tgt:
        return x
    return apply_op(ReshapeOp(tgt), x)


class OuterProdOp(Op):
    """Outer product of two vectors.

    Example:
        >>> OuterProdOp().name
        'OuterProd'
    """

    name = "OuterProd"
    arity = 2

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        a, b = ins
        dt = same_dtype(self.name, ins)
        if len(a.shape) != 1 or len(b.shape) != 1:
            raise ShapeError(f"OuterProd needs two vectors, got {describe(a)} and {describe(b)}")
        return (a.shape[0], b.shape[0]), dt

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        a, b = xs
        return lambda: np.multiply.outer(a, b, out=out)

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        from .linalg import MatMul

        a, b = node.children
        return [MatMul(g, b) if wants[0] else None, MatMul(a, g) if wants[1] else None]


def OuterProd(a: Any, b: Any) -> Node:
    """Outer product of vectors: out[i, j] = a[i] * b[j].

    Example:
        >>> import graphcore as gc
        >>> gc.OuterProd(gc.NewConstant([1.0, 2.0]), gc.NewConstant([1.0, 2.0, 3.0])).shape
        (2, 3)
    """
    return apply_op(OuterProdOp(), a, b)
