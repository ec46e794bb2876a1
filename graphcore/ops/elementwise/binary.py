"""The binary table: arithmetic with numpy broadcasting, each row the numpy ufunc and the
gradient for each operand, written with graph ops on ``(g, a, b, y)`` and ignoring
broadcasting (``Grad`` sums a gradient back to its operand's shape); the public functions
below it.

Example:
    >>> import graphcore as gc
    >>> y = gc.HadamardProd(gc.NewConstant([[1.0], [2.0]]), gc.NewConstant([3.0, 4.0]))
    >>> y.shape, [d.op.name for d in y.op.grad(y, gc.NewConstant(np.ones((2, 2))), [True, True])]
    ((2, 2), ['HadamardProd', 'HadamardProd'])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...dtypes import Dtype
from ...errors import ShapeError
from ...graph import Node
from ...shapes import Shape
from ..base import ExecContext, Kernel, Op, TypeInfo, apply_op, same_dtype
from .compare import broadcast_result, mask
from .unary import Log

__all__ = [
    "Add", "Sub", "HadamardProd", "HadamardDiv", "Div", "Pow", "Maximum", "Minimum", "MaxBetween",
    "MinBetween", "BINARY", "Binary", "BinaryOp",
]


# ----- the binary table --------------------------------------------------------------------------


@dataclass(frozen=True)
class Binary:
    """One row of the binary table: the ufunc and the gradient for each operand.

    Example:
        >>> BINARY["HadamardProd"].fwd is np.multiply
        True
    """

    fwd: Callable[..., Any]
    #: ``da(g, a, b, y)`` and ``db(g, a, b, y)``: the gradients for ``a`` and ``b`` (``y`` is
    #: the result), written with graph ops, broadcasting ignored
    da: Callable[[Node, Node, Node, Node], Node]
    db: Callable[[Node, Node, Node, Node], Node]


def _share(a: Node, b: Node, y: Node) -> Node:
    """The share of ``a`` in ``y = max(a, b)`` (or min): 1, 0, or 1/2 on a tie."""
    ma, mb = mask("Eq", a, y), mask("Eq", b, y)
    return ma / (ma + mb)


# fmt: off
BINARY: dict[str, Binary] = {
    "Add": Binary(np.add, lambda g, a, b, y: g, lambda g, a, b, y: g),
    "Sub": Binary(np.subtract, lambda g, a, b, y: g, lambda g, a, b, y: -g),
    "HadamardProd": Binary(np.multiply, lambda g, a, b, y: g * b, lambda g, a, b, y: g * a),
    # d(a/b)/db = -a/b^2 = -y/b
    "HadamardDiv": Binary(np.divide, lambda g, a, b, y: g / b, lambda g, a, b, y: -(g * y / b)),
    "Pow": Binary(np.power, lambda g, a, b, y: g * (b * a ** (b - 1.0)),
                  lambda g, a, b, y: g * (y * Log(a))),
    # ties split evenly, like the Max/Min reductions
    "Maximum": Binary(np.maximum, lambda g, a, b, y: g * _share(a, b, y),
                      lambda g, a, b, y: g * _share(b, a, y)),
    "Minimum": Binary(np.minimum, lambda g, a, b, y: g * _share(a, b, y),
                      lambda g, a, b, y: g * _share(b, a, y)),
}
# fmt: on


class BinaryOp(Op):
    """An elementwise op from the binary table, with numpy broadcasting; it pickles as its
    row's name (a row holds lambdas).

    Example:
        >>> BinaryOp("Add").name
        'Add'
        >>> import pickle; pickle.loads(pickle.dumps(BinaryOp("Pow"))).row is BINARY["Pow"]
        True
    """

    arity = 2
    inplace = True
    rebuildable = True

    def __init__(self, name: str) -> None:
        self.name = name  # type: ignore[misc]
        self.row = BINARY[name]

    def params(self) -> dict[str, Any]:
        return {}

    def __reduce__(self) -> tuple[Any, ...]:
        # a row holds lambdas, which pickle cannot store: an op pickles as its row's name
        return (BinaryOp, (self.name,))

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        dt = same_dtype(self.name, ins)
        return broadcast_result(self.name, *ins), dt

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        a, b, f = xs[0], xs[1], self.row.fwd
        return lambda: f(a, b, out=out)

    def check_bound(self, ins: Sequence[TypeInfo], shapes: Sequence[tuple[int, ...]]) -> None:
        # The gradient of a broadcast is reduced by the operands' static shapes, so a free
        # dimension may not silently broadcast against another free dimension of size 1.
        a, b = ins
        nd = max(len(a.shape), len(b.shape))
        sa = (1,) * (nd - len(a.shape)) + tuple(a.shape)
        sb = (1,) * (nd - len(b.shape)) + tuple(b.shape)
        ca = (1,) * (nd - len(shapes[0])) + tuple(shapes[0])
        cb = (1,) * (nd - len(shapes[1])) + tuple(shapes[1])
        for i in range(nd):
            if sa[i] is None and sb[i] is None and ca[i] != cb[i]:
                raise ShapeError(
                    f"{self.name}: {a.name!r} and {b.name!r} both have a free dimension {i}, "
                    f"bound to different sizes {ca[i]} and {cb[i]}; free dimensions are one "
                    f"batch size. Declare the operand that broadcasts with size 1 (e.g. "
                    f"WithShape(1, ...))"
                )

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        a, b = node.children
        row = self.row
        return [
            row.da(g, a, b, node) if wants[0] else None,
            row.db(g, a, b, node) if wants[1] else None,
        ]


# ----- public functions: binary ------------------------------------------------------------------


def Add(a: Any, b: Any) -> Node:
    """Elementwise a + b with numpy broadcasting (``a + b`` on nodes).

    Example:
        >>> import graphcore as gc; gc.Add(gc.NewConstant([1.0, 2.0]), 1.0).shape
        (2,)
    """
    return apply_op(BinaryOp("Add"), a, b)


def Sub(a: Any, b: Any) -> Node:
    """Elementwise a - b with numpy broadcasting.

    Example:
        >>> import graphcore as gc
        >>> gc.Sub(gc.NewConstant([1.0]), gc.NewConstant([[1.0], [2.0]])).shape
        (2, 1)
    """
    return apply_op(BinaryOp("Sub"), a, b)


def HadamardProd(a: Any, b: Any) -> Node:
    """Elementwise a * b with numpy broadcasting (``a * b`` on nodes).

    Example:
        >>> import graphcore as gc; gc.HadamardProd(gc.NewConstant([1.0, 2.0]), 3.0).shape
        (2,)
    """
    return apply_op(BinaryOp("HadamardProd"), a, b)


def HadamardDiv(a: Any, b: Any) -> Node:
    """Elementwise a / b with numpy broadcasting (``a / b`` on nodes).

    Example:
        >>> import graphcore as gc; gc.HadamardDiv(gc.NewConstant([1.0, 2.0]), 2.0).shape
        (2,)
    """
    return apply_op(BinaryOp("HadamardDiv"), a, b)


def Div(a: Any, b: Any) -> Node:
    """Gorgonia's ``Div``: elementwise division, with numpy broadcasting here.

    Example:
        >>> import graphcore as gc; gc.Div(gc.NewConstant([4.0]), 2.0).op.name
        'HadamardDiv'
    """
    return HadamardDiv(a, b)


def Pow(a: Any, b: Any) -> Node:
    """Elementwise a ** b with numpy broadcasting (``a ** b`` on nodes).

    Example:
        >>> import graphcore as gc; gc.Pow(gc.NewConstant([2.0]), 3.0).op.name
        'Pow'
    """
    return apply_op(BinaryOp("Pow"), a, b)


def Maximum(a: Any, b: Any) -> Node:
    """Elementwise maximum (Gorgonia's ``MaxBetween``); ties split the gradient evenly.

    Example:
        >>> import graphcore as gc; gc.Maximum(gc.NewConstant([1.0]), 2.0).shape
        (1,)
    """
    return apply_op(BinaryOp("Maximum"), a, b)


def Minimum(a: Any, b: Any) -> Node:
    """Elementwise minimum (Gorgonia's ``MinBetween``); ties split the gradient evenly.

    Example:
        >>> import graphcore as gc; gc.Minimum(gc.NewConstant([1.0]), 2.0).shape
        (1,)
    """
    return apply_op(BinaryOp("Minimum"), a, b)


def MaxBetween(a: Any, b: Any) -> Node:
    """Gorgonia's name for :func:`Maximum`: the elementwise maximum of ``a`` and ``b``.

    Example:
        >>> import graphcore as gc; gc.MaxBetween(gc.NewConstant([1.0, 3.0]), 2.0).op.name
        'Maximum'
    """
    return Maximum(a, b)


def MinBetween(a: Any, b: Any) -> Node:
    """Gorgonia's name for :func:`Minimum`: the elementwise minimum of ``a`` and ``b``.

    Example:
        >>> import graphcore as gc; gc.MinBetween(gc.NewConstant([1.0, 3.0]), 2.0).op.name
        'Minimum'
    """
    return Minimum(a, b)
