"""Gorgonia's explicit broadcasting ops, for porting Gorgonia code: ``BroadcastAdd(a, b, leftAxes,
rightAxes)`` and friends.

``leftAxes`` names the axes along which the left operand ``a`` is repeated to match ``b``, and
``rightAxes`` those along which ``b`` is repeated to match ``a``. An operand of lower rank gets
new size-1 axes at those positions; an operand of full rank must already have size 1 there.
Every other axis must match exactly (no implicit broadcasting, as in Gorgonia; a scalar
operand is the exception). The operands are then reshaped (no copy) and combined with the
numpy-broadcasting ops (``Add``, ``Lt``, ...), so gradients are the usual sums over the
broadcast axes.

The eleven functions are generated from one table, :data:`TABLE`: five arithmetic ones
``Broadcast<Op>(a, b, leftAxes, rightAxes)`` and six comparisons, which also take Gorgonia's
``retSame`` third. ``Broadcast(a, b, NewBroadcastPattern(leftAxes, rightAxes))`` gives the
two operands ready for any binary op, and ``Auto(op, a, b)`` finds the axes itself.

Example:
    >>> import graphcore as gc
    >>> g = gc.NewGraph()
    >>> x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 250), gc.WithName("x"))
    >>> b = gc.NewVector(g, gc.Float32, gc.WithShape(250), gc.WithName("b"))
    >>> gc.BroadcastAdd(x, b, None, [0]).shape          # b is added to every row
    (None, 250)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ShapeError
from ..graph import Node
from ..shapes import Shape, fmt_shape
from ..values import as_node
from .elementwise import Add, Eq, Gt, Gte, HadamardDiv, HadamardProd, Lt, Lte, Ne, Pow, Sub
from .shape import Reshape

__all__ = [
    "BroadcastAdd",
    "BroadcastSub",
    "BroadcastHadamardProd",
    "BroadcastHadamardDiv",
    "BroadcastPow",
    "BroadcastLt",
    "BroadcastGt",
    "BroadcastLte",
    "BroadcastGte",
    "BroadcastEq",
    "BroadcastNe",
    "broadcast_pair",
    "BroadcastPattern",
    "NewBroadcastPattern",
    "Broadcast",
    "Auto",
]

Axes = Iterable[int] | int | bytes | None


def _is_int(a: Any) -> bool:
    return isinstance(a, (int, np.integer)) and not isinstance(a, (bool, np.bool_))


def _axis_list(name: str, which: str, axes: Axes) -> list[int]:
    if axes is None:
        return []
    if _is_int(axes):
        return [int(axes)]  # type: ignore[arg-type]
    items = list(axes) if isinstance(axes, (list, tuple, bytes, range, np.ndarray)) else None
    if items is None or not all(_is_int(a) for a in items):
        raise TypeError(f"{name}: {which} must be a list of axes (ints) or None, got {axes!r}")
    out = [int(a) for a in items]
    if len(set(out)) != len(out):
        raise ShapeError(f"{name}: {which} {out} repeats an axis")
    return out


def _expanded(shape: Shape, axes: list[int], ndim: int) -> Shape | None:
    """``shape`` with size-1 axes at ``axes`` (positions in an ``ndim``-D result), or ``None``
    when that cannot make an ``ndim``-D shape."""
    pos = []
    for a in axes:
        if not -ndim <= a < ndim:
            return None
        pos.append(a % ndim)
    if len(shape) == ndim:
        return shape if all(shape[p] == 1 for p in pos) else None
    if len(shape) + len(pos) != ndim:
        return None
    it = iter(shape)
    return tuple(1 if i in pos else next(it) for i in range(ndim))


def _plan(name: str, a: Node, b: Node, left: list[int], right: list[int]) -> tuple[Shape, Shape]:
    """The shapes to give ``a`` and ``b`` so numpy broadcasting does what the axes say."""
    both = set(left) & set(right)
    if both:
        raise ShapeError(
            f"{name}: axis {min(both)} is in both leftAxes {left} and rightAxes {right}; an "
            f"axis is repeated on one side, to match the other operand"
        )
    na, nb = len(a.shape), len(b.shape)
    why = ""
    for ndim in dict.fromkeys((max(na, nb), max(na + len(left), nb + len(right)))):
        sa, sb = _expanded(a.shape, left, ndim), _expanded(b.shape, right, ndim)
        if sa is None or sb is None:
            continue
        lpos, rpos = {x % ndim for x in left}, {x % ndim for x in right}
        for i, (da, db) in enumerate(zip(sa, sb, strict=True)):
            if i in lpos or i in rpos or da == db or da is None or db is None:
                continue
            why = (
                f"; after broadcasting, axis {i} still differs ({da} vs {db}): name it in "
                f"leftAxes or rightAxes if the size-1 operand should be repeated along it"
            )
            break
        else:
            return sa, sb
    raise ShapeError(
        f"{name}: cannot broadcast {a.describe()} along leftAxes {left} and {b.describe()} "
        f"along rightAxes {right}{why}. Each named axis is one where that operand is repeated "
        f"to match the other: a lower-rank operand gets a new axis there, a full-rank one "
        f"must have size 1 there"
    )


def _reshaped(name: str, x: Node, shape: Shape) -> Node:
    if shape == x.shape:
        return x
    if any(d is None for d in shape[1:]):
        raise ShapeError(
            f"{name}: broadcasting {x.describe()} to {fmt_shape(shape)} would move its free "
            f"(None) dimension away from axis 0, which Reshape cannot keep; broadcast along "
            f"axes after the batch axis"
        )
    return Reshape(x, shape)


def broadcast_pair(
    a: Any, b: Any, leftAxes: Axes = None, rightAxes: Axes = None, name: str = "Broadcast"
) -> tuple[Node, Node]:
    """Gorgonia's ``Broadcast(a, b, NewBroadcastPattern(leftAxes, rightAxes))``: the two
    operands reshaped (size-1 axes inserted) so that numpy broadcasting repeats ``a`` along
    ``leftAxes`` and ``b`` along ``rightAxes``.

    Example:
        >>> import graphcore as gc
        >>> a, b = broadcast_pair(gc.NewConstant([1.0, 2.0]), gc.NewConstant([1.0, 2.0, 3.0]),
        ...                       [1], [0])
        >>> a.shape, b.shape
        ((2, 1), (1, 3))
    """
    like = next((v for v in (a, b) if isinstance(v, Node) and v.dtype.is_float), None)
    a, b = as_node(a, like), as_node(b, like)
    left = _axis_list(name, "leftAxes", leftAxes)
    right = _axis_list(name, "rightAxes", rightAxes)
    if a.shape == b.shape:  # as Golgi's generated wrappers: nothing to broadcast
        return a, b
    if (a.ndim == 0 and not left) or (b.ndim == 0 and not right):
        return a, b
    sa, sb = _plan(name, a, b, left, right)
    return _reshaped(name, a, sa), _reshaped(name, b, sb)


def _check_ret_same(name: str, retSame: Any) -> None:
    # Gorgonia's retSame is always a bool, so anything else here is an axes list put third
    if not isinstance(retSame, (bool, np.bool_)):
        raise TypeError(
            f"{name}: the third argument is retSame (True/False), got {retSame!r}; the call is "
            f"{name}(a, b, retSame, leftAxes, rightAxes) as in Gorgonia, or pass leftAxes= and "
            f"rightAxes= by keyword"
        )


_SETUP = """
    Example:
        >>> import graphcore as gc
        >>> x = gc.NewConstant(np.ones((3, 4))); v = gc.NewConstant(np.arange(4.0))
        >>> """

# The family, one row per op: the numpy-broadcasting op, its symbol, and a doctest example
# (a call on x (3, 4) and v (4,), and its result).
# fmt: off
TABLE: dict[str, tuple[Callable[..., Node], str, str, str]] = {
    "Add": (Add, "+", "gc.BroadcastAdd(x, v, None, [0]).shape", "(3, 4)"),
    "Sub": (Sub, "-", "gc.BroadcastSub(v, x, [0], None).shape", "(3, 4)"),
    "HadamardProd": (HadamardProd, "*", "gc.BroadcastHadamardProd(x, v, None, [0]).shape",
                     "(3, 4)"),
    "HadamardDiv": (HadamardDiv, "/",
                    "gc.BroadcastHadamardDiv(x, gc.NewConstant([1.0, 2.0, 3.0]), None, [1]).shape",
                    "(3, 4)"),
    "Pow": (Pow, "**", "gc.BroadcastPow(x, v, None, [0]).shape", "(3, 4)"),
    "Lt": (Lt, "<", "gc.BroadcastLt(x, v, False, None, [0]).dtype", "Bool"),
    "Gt": (Gt, ">", "gc.BroadcastGt(x, v, True, None, [0]).dtype", "Float64"),
    "Lte": (Lte, "<=", "gc.BroadcastLte(x, v, rightAxes=[0]).dtype", "Bool"),
    "Gte": (Gte, ">=", "gc.BroadcastGte(v, x, False, [0]).dtype", "Bool"),
    "Eq": (Eq, "==", "gc.BroadcastEq(x, v, True, None, [0]).dtype", "Float64"),
    "Ne": (Ne, "!=", "gc.BroadcastNe(x, v, ret_same=True, rightAxes=[0]).dtype", "Float64"),
}
# fmt: on


def _named(fn: Callable[..., Node], name: str, doc: str) -> Callable[..., Node]:
    _, sym, call, result = TABLE[name]
    fn.__name__ = fn.__qualname__ = f"Broadcast{name}"
    fn.__doc__ = doc.format(sym=sym) + _SETUP + f"{call}\n        {result}\n    "
    return fn


def _arith(name: str) -> Callable[..., Node]:
    """``Broadcast<name>(a, b, leftAxes, rightAxes)`` for an arithmetic row of the table."""
    op, who = TABLE[name][0], f"Broadcast{name}"

    def fn(a: Any, b: Any, leftAxes: Axes = None, rightAxes: Axes = None) -> Node:
        x, y = broadcast_pair(a, b, leftAxes, rightAxes, who)
        return op(x, y)

    return _named(fn, name, "Elementwise ``a {sym} b``, repeating ``a`` along ``leftAxes`` and "
                  "``b`` along ``rightAxes``.\n")


def _compare(name: str) -> Callable[..., Node]:
    """``Broadcast<name>(a, b, retSame, leftAxes, rightAxes)`` for a comparison row."""
    op, who = TABLE[name][0], f"Broadcast{name}"

    def fn(
        a: Any,
        b: Any,
        retSame: bool = False,
        leftAxes: Axes = None,
        rightAxes: Axes = None,
        *,
        ret_same: bool | None = None,
    ) -> Node:
        _check_ret_same(who, retSame)
        x, y = broadcast_pair(a, b, leftAxes, rightAxes, who)
        return op(x, y, retSame or None, ret_same=ret_same)

    return _named(fn, name, "Elementwise ``a {sym} b`` after repeating ``a`` along ``leftAxes`` "
                  "and ``b`` along\n    ``rightAxes``; Bool, or 0/1 in the operands' dtype with "
                  "``retSame=True``.\n")


BroadcastAdd = _arith("Add")
BroadcastSub = _arith("Sub")
BroadcastHadamardProd = _arith("HadamardProd")
BroadcastHadamardDiv = _arith("HadamardDiv")
BroadcastPow = _arith("Pow")
BroadcastLt = _compare("Lt")
BroadcastGt = _compare("Gt")
BroadcastLte = _compare("Lte")
BroadcastGte = _compare("Gte")
BroadcastEq = _compare("Eq")
BroadcastNe = _compare("Ne")


# ----- Gorgonia's pattern form, and Auto -------------------------------------------------------


@dataclass(frozen=True)
class BroadcastPattern:
    """Which axes each operand is repeated along: Gorgonia's one-byte pattern, here two
    tuples of axes (any number of them, not four at most). Build it with
    :func:`NewBroadcastPattern`.

    Example:
        >>> NewBroadcastPattern([0], None)
        BroadcastPattern(left=(0,), right=())
    """

    left: tuple[int, ...]
    right: tuple[int, ...]


def NewBroadcastPattern(leftAxes: Axes = None, rightAxes: Axes = None) -> BroadcastPattern:
    """The pattern for :func:`Broadcast`: repeat the left operand along ``leftAxes`` and the
    right one along ``rightAxes``.

    Example:
        >>> NewBroadcastPattern(None, [1, 2]).right
        (1, 2)
    """
    return BroadcastPattern(
        tuple(_axis_list("NewBroadcastPattern", "leftAxes", leftAxes)),
        tuple(_axis_list("NewBroadcastPattern", "rightAxes", rightAxes)),
    )


def Broadcast(a: Any, b: Any, pattern: BroadcastPattern) -> tuple[Node, Node]:
    """Gorgonia's ``Broadcast``: ``a`` and ``b`` made ready for a binary op by the
    pattern (size-1 axes inserted where they are repeated; numpy broadcasting repeats them
    without a copy). Returns the pair.

    Example:
        >>> import graphcore as gc
        >>> x = gc.NewConstant(np.ones((3, 4))); v = gc.NewConstant(np.arange(4.0))
        >>> a, b = gc.Broadcast(x, v, gc.NewBroadcastPattern(None, [0]))
        >>> a.shape, b.shape, gc.HadamardProd(a, b).shape
        ((3, 4), (1, 4), (3, 4))
    """
    if not isinstance(pattern, BroadcastPattern):
        raise TypeError(
            f"Broadcast: the third argument is a pattern made by NewBroadcastPattern(leftAxes, "
            f"rightAxes), got {type(pattern).__name__}"
        )
    return broadcast_pair(a, b, pattern.left, pattern.right, "Broadcast")


# the plain ops Auto also takes, with the Broadcast function each stands for
_BROADCAST_OF: dict[Callable[..., Node], str] = {row[0]: name for name, row in TABLE.items()}


def _auto_axes(a: Node, b: Node) -> tuple[list[int], list[int]]:
    if a.ndim != b.ndim:
        raise ShapeError(
            f"Auto: {a.describe()} and {b.describe()} must have the same number of dimensions "
            f"(as in Gorgonia); Reshape one, or use the Broadcast<Op> function with explicit "
            f"axes, or the plain op (numpy broadcasting)"
        )
    left, right = [], []
    for i, (da, db) in enumerate(zip(a.shape, b.shape, strict=True)):
        if da == db:
            continue
        # the smaller side is repeated; a free (None) size is larger than a size of 1
        if db is None or (da is not None and da < db):
            left.append(i)
        else:
            right.append(i)
    return left, right


def Auto(op: Callable[..., Node], a: Any, b: Any) -> Node:
    """Apply a broadcasting op, finding the axes itself: where ``a`` is smaller than ``b``
    ``a`` is repeated, and the other way round (Gorgonia's ``Auto``; the operands need the
    same number of dimensions, and the smaller size must be 1).

    ``op`` is one of the ``Broadcast<Op>`` functions (``BroadcastHadamardProd``, ...), or the
    plain op it stands for (``HadamardProd``, ``Lt``, ...).

    Example:
        >>> import graphcore as gc
        >>> a = gc.NewConstant(np.ones((3, 1))); b = gc.NewConstant(np.ones((1, 4)))
        >>> gc.Auto(gc.BroadcastHadamardProd, a, b).shape
        (3, 4)
        >>> gc.Auto(gc.Add, a, b).shape
        (3, 4)
    """
    like = next((v for v in (a, b) if isinstance(v, Node) and v.dtype.is_float), None)
    an, bn = as_node(a, like), as_node(b, like)
    left, right = _auto_axes(an, bn)
    name = _BROADCAST_OF.get(op)
    fn = _FAMILY.get(name, op) if name is not None else op
    if fn not in _FAMILY.values():
        raise TypeError(
            f"Auto: op must be a Broadcast<Op> function (BroadcastAdd, BroadcastLt, ...) or the "
            f"op it stands for (Add, Lt, ...), got {getattr(op, '__name__', op)!r}"
        )
    return fn(an, bn, leftAxes=left, rightAxes=right)


_FAMILY: dict[str, Callable[..., Node]] = {
    "Add": BroadcastAdd, "Sub": BroadcastSub, "HadamardProd": BroadcastHadamardProd,
    "HadamardDiv": BroadcastHadamardDiv, "Pow": BroadcastPow, "Lt": BroadcastLt,
    "Gt": BroadcastGt, "Lte": BroadcastLte, "Gte": BroadcastGte, "Eq": BroadcastEq,
    "Ne": BroadcastNe,
}
