"""Stabilising rewrites applied when a node is built, as Gorgonia does.

``Log(SoftMax(x))`` becomes ``LogSoftMax(x)``, ``Log(1 + x)`` becomes ``Log1p(x)`` and
``Log(Sigmoid(x))`` becomes ``-Softplus(-x)``.

Example:
    >>> import graphcore as gc
    >>> x = gc.NewConstant([0.5])
    >>> gc.Log(gc.Add(1.0, x)).op.name
    'Log1p'
"""

from __future__ import annotations

import numpy as np

from ..graph import Node

__all__ = ["stabilize_log"]


def _is_one(n: Node) -> bool:
    return n.is_constant and n.ndim == 0 and float(np.asarray(n.value)) == 1.0


def stabilize_log(x: Node) -> Node | None:
    """The stable equivalent of ``Log(x)``, or ``None`` when no rewrite applies.

    Example:
        >>> import graphcore as gc
        >>> stabilize_log(gc.NewConstant([1.0])) is None
        True
    """
    from .activation import LogSoftMax, SoftMaxOp
    from .arith import BinaryOp
    from .unary import Log1p, Neg, Softplus, UnaryOp

    op = x.op
    if isinstance(op, SoftMaxOp) and not op.log:
        return LogSoftMax(x.children[0], op.axis)
    if isinstance(op, UnaryOp) and op.name == "Sigmoid":
        return Neg(Softplus(Neg(x.children[0])))
    if isinstance(op, BinaryOp) and op.name == "Add":
        a, b = x.children
        if _is_one(a) and b.shape == x.shape:
            return Log1p(b)
        if _is_one(b) and a.shape == x.shape:
            return Log1p(a)
    return None
