"""Build-time simplifications: stable or shorter forms substituted when a node is built.

As Gorgonia does, the graph never holds the unstable form of these expressions:

- ``Log(SoftMax(x))`` becomes ``LogSoftMax(x)`` (never ``log(0)``);
- ``Log(1 + x)`` becomes ``Log1p(x)`` (accurate for small x);
- ``Log(Sigmoid(x))`` becomes ``-Softplus(-x)`` (finite for large -x);
- ``Neg(Neg(x))`` and ``Transpose(Transpose(x))`` (axes that undo each other) become ``x``.

Each rule takes the op being built and its operand nodes and returns an equivalent node, or
None; importing the ops registers them with ``add_rewrite``, so ``apply_op`` applies them to
every node, the nodes ``Grad`` builds included. The rules read nodes only through their
public API (``op``, ``children``, ``value``, ``shape``).

The rewrites are on by default. Gorgonia's switches turn them off and on for the nodes built
afterwards (nodes already built stay as they are): ``UseNonStable()`` and
``UseStabilization()``. Each also works as a context manager, which puts the previous
setting back when the block ends. The setting is global (one per process), as in Gorgonia.

Example:
    >>> import graphcore as gc
    >>> x = gc.NewConstant([0.5])
    >>> gc.Log(gc.Add(1.0, x)).op.name, gc.Log(gc.Sigmoid(x)).op.name
    ('Log1p', 'Neg')
    >>> with gc.UseNonStable():
    ...     gc.Log(gc.Add(1.0, x)).op.name
    'Log'
"""

from __future__ import annotations

from types import TracebackType

import numpy as np

from .graph import Node
from .ops.activation import LogSoftMax, SoftMaxOp
from .ops.base import Op, Rewrite, add_rewrite
from .ops.elementwise import BinaryOp, Log1p, Neg, Softplus, UnaryOp
from .ops.linalg import TransposeOp

__all__ = ["RULES", "log_of_softmax", "log_of_one_plus", "log_of_sigmoid", "double_negation",
           "double_transpose", "UseNonStable", "UseStabilization", "Stabilization",
           "stabilizing"]

# whether the rules apply to nodes built now (a list: one mutable cell, read at every build)
_on = [True]


class Stabilization:
    """The rewrite setting made by ``UseStabilization()`` or ``UseNonStable()``; as a
    context manager it puts the setting from before the call back when the block ends.

    Example:
        >>> s = UseNonStable(); stabilizing(), s.before
        (False, True)
        >>> _ = UseStabilization(); stabilizing()
        True
    """

    __slots__ = ("on", "before")

    def __init__(self, on: bool) -> None:
        self.before = _on[0]
        self.on = on
        _on[0] = on

    def __enter__(self) -> Stabilization:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        _on[0] = self.before

    def __repr__(self) -> str:
        return "UseStabilization()" if self.on else "UseNonStable()"


def UseStabilization() -> Stabilization:
    """Apply the stabilising rewrites to nodes built from now on (the default).

    Call it, or use it in a ``with`` block (the setting before is restored after it).

    Example:
        >>> import graphcore as gc
        >>> with gc.UseNonStable():
        ...     with gc.UseStabilization():
        ...         inner = gc.Log(gc.SoftMax(gc.NewConstant([[1.0, 2.0]]))).op.name
        ...     outer = gc.Log(gc.SoftMax(gc.NewConstant([[1.0, 2.0]]))).op.name
        >>> inner, outer
        ('LogSoftMax', 'Log')
    """
    return Stabilization(True)


def UseNonStable() -> Stabilization:
    """Build the plain ops from now on: no rewrite of ``Log(SoftMax(x))``, ``Log(1 + x)``,
    ``Log(Sigmoid(x))``, ``Neg(Neg(x))`` or double transposes (for comparing with the plain
    forms, or with Gorgonia run the same way).

    Call it (``UseStabilization()`` switches back), or use it in a ``with`` block.

    Example:
        >>> import graphcore as gc
        >>> x = gc.NewConstant([[1.0, 2.0]])
        >>> with gc.UseNonStable():
        ...     y = gc.Log(gc.SoftMax(x))
        >>> y.op.name, y.children[0].op.name, gc.Log(gc.SoftMax(x)).op.name
        ('Log', 'SoftMax', 'LogSoftMax')
    """
    return Stabilization(False)


def stabilizing() -> bool:
    """True when the rewrites apply to nodes built now.

    Example:
        >>> stabilizing()
        True
    """
    return _on[0]


def _is(node: Node, op_type: type[Op], name: str) -> bool:
    return isinstance(node.op, op_type) and node.op.name == name


def _is_one(n: Node) -> bool:
    return n.is_constant and n.ndim == 0 and float(np.asarray(n.value)) == 1.0


def log_of_softmax(op: Op, nodes: list[Node]) -> Node | None:
    """``Log(SoftMax(x))`` -> ``LogSoftMax(x)``, along the same axis.

    Example:
        >>> import graphcore as gc
        >>> gc.Log(gc.SoftMax(gc.NewConstant([[1.0, 2.0]]), 0)).op
        LogSoftMax(axis=0)
    """
    (x,) = nodes
    if isinstance(op, UnaryOp) and isinstance(x.op, SoftMaxOp) and not x.op.log:
        return LogSoftMax(x.children[0], x.op.axis)
    return None


def log_of_one_plus(op: Op, nodes: list[Node]) -> Node | None:
    """``Log(1 + x)`` or ``Log(x + 1)`` -> ``Log1p(x)``, when ``x`` has the sum's shape.

    Example:
        >>> import graphcore as gc
        >>> gc.Log(gc.NewConstant([0.5]) + 1.0).op.name
        'Log1p'
    """
    (s,) = nodes
    if not isinstance(op, UnaryOp) or not _is(s, BinaryOp, "Add"):
        return None
    a, b = s.children
    if _is_one(a) and b.shape == s.shape:
        return Log1p(b)
    if _is_one(b) and a.shape == s.shape:
        return Log1p(a)
    return None


def log_of_sigmoid(op: Op, nodes: list[Node]) -> Node | None:
    """``Log(Sigmoid(x))`` -> ``-Softplus(-x)``.

    Example:
        >>> import graphcore as gc
        >>> y = gc.Log(gc.Sigmoid(gc.NewConstant([-800.0])))
        >>> y.op.name, y.children[0].op.name
        ('Neg', 'Softplus')
    """
    (x,) = nodes
    if isinstance(op, UnaryOp) and _is(x, UnaryOp, "Sigmoid"):
        return Neg(Softplus(Neg(x.children[0])))
    return None


def double_negation(op: Op, nodes: list[Node]) -> Node | None:
    """``Neg(Neg(x))`` -> ``x``.

    Example:
        >>> import graphcore as gc
        >>> x = gc.NewConstant([1.0]); gc.Neg(gc.Neg(x)) is x
        True
    """
    (x,) = nodes
    return x.children[0] if isinstance(op, UnaryOp) and _is(x, UnaryOp, "Neg") else None


def double_transpose(op: Op, nodes: list[Node]) -> Node | None:
    """``Transpose(Transpose(x))`` -> ``x`` when the second permutation undoes the first.

    Example:
        >>> import graphcore as gc
        >>> x = gc.NewConstant(np.zeros((2, 3, 4)))
        >>> gc.Transpose(gc.Transpose(x, (1, 2, 0)), (2, 0, 1)) is x
        True
    """
    (t,) = nodes
    if not isinstance(t.op, TransposeOp) or not isinstance(op, TransposeOp):
        return None
    inner = t.children[0]
    n = inner.ndim
    first = t.op.axes if t.op.axes is not None else tuple(reversed(range(n)))
    second = op.axes if op.axes is not None else tuple(reversed(range(n)))
    return inner if tuple(first[i] for i in second) == tuple(range(n)) else None


#: op name -> the rules tried, in order, when a node of that op is built
RULES = {
    "Log": (log_of_softmax, log_of_one_plus, log_of_sigmoid),
    "Neg": (double_negation,),
    "Transpose": (double_transpose,),
}



def _when_stabilizing(rule: Rewrite) -> Rewrite:
    """``rule``, applied only while the rewrites are on."""

    def gated(op: Op, nodes: list[Node]) -> Node | None:
        return rule(op, nodes) if _on[0] else None

    gated.__name__ = gated.__qualname__ = rule.__name__
    return gated


for _name, _rules in RULES.items():
    for _rule in _rules:
        add_rewrite(_name, _when_stabilizing(_rule))
