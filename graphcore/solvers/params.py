"""What a solver step takes and checks: the :class:`ValueGrad` protocol, the per-parameter
checks (errors name the parameter), :func:`NodesToValueGrads`, and :class:`_Bound`, the
record that lets a step given the same graph nodes skip the checks.

Example:
    >>> import numpy as np
    >>> class P:
    ...     value = np.zeros(2); grad = np.ones(2); name = "p"
    >>> len(NodesToValueGrads([P()]))
    1
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import numpy as np

from ..errors import DtypeError, ShapeError, ValueNotAvailableError
from ..graph import Node
from ..kernels.segments import Segment
from ..storage import Slot

__all__ = ["ValueGrad", "NodesToValueGrads"]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


# ----- the ValueGrad protocol --------------------------------------------------------------------
class ValueGrad(Protocol):
    """What solvers update: a ``value`` array and a same-shaped ``grad`` array (``name`` optional).

    Graph nodes satisfy it; so does any small object.

    Example:
        >>> import numpy as np
        >>> class P:
        ...     value = np.zeros(2); grad = np.ones(2); name = "p"
        >>> len(NodesToValueGrads([P()]))
        1
    """

    @property
    def value(self) -> np.ndarray:
        """The parameter's array (float32 or float64); ``step`` updates it in place.

        Example:
            >>> import numpy as np, graphcore as gc
            >>> class P:
            ...     value = np.ones(2); grad = np.full(2, 0.5)
            >>> p = P(); before = p.value
            >>> gc.NewVanillaSolver(gc.WithLearnRate(1.0)).step([p])
            >>> p.value, p.value is before
            (array([0.5, 0.5]), True)
        """
        ...

    @property
    def grad(self) -> np.ndarray:
        """The cost's gradient for ``value``, same shape; ``step`` reads it, then zeroes it.

        For a graph node it is bound by ``Grad(cost, node)`` and a machine built with
        ``BindDualValues(node)``, and filled by each run.

        Example:
            >>> import numpy as np, graphcore as gc
            >>> class P:
            ...     value = np.ones(2); grad = np.array([1.0, -1.0])
            >>> p = P(); gc.NewVanillaSolver(gc.WithLearnRate(0.1)).step([p])
            >>> p.value, p.grad
            (array([0.9, 1.1]), array([0., 0.]))
        """
        ...


def _label(vg: Any, i: int) -> str:
    name = getattr(vg, "name", None)
    return f"parameter {i} ({name!r})" if name else f"parameter {i}"


def _value_grad(vg: Any, i: int, where: str) -> tuple[np.ndarray, np.ndarray]:
    """The checked ``(value, grad)`` arrays of one ValueGrad."""
    try:
        w = vg.value
    except AttributeError as e:
        raise TypeError(
            f"{where}: {_label(vg, i)} ({type(vg).__name__}) has no .value; pass graph nodes "
            f"(or objects with .value and .grad arrays)"
        ) from e
    if not isinstance(w, np.ndarray):
        raise TypeError(
            f"{where}: the value of {_label(vg, i)} is a {type(w).__name__}, not a numpy array"
        )
    if w.dtype not in _FLOATS:
        raise DtypeError(
            f"{where}: {_label(vg, i)} has dtype {w.dtype}; solvers update float32 or float64 "
            f"values only"
        )
    try:
        g = vg.grad
    except AttributeError as e:
        raise TypeError(
            f"{where}: {_label(vg, i)} ({type(vg).__name__}) has no .grad; pass graph nodes "
            f"(or objects with .value and .grad arrays)"
        ) from e
    if g is None:
        raise ValueNotAvailableError(
            f"{where}: {_label(vg, i)} has no gradient: call Grad(cost, ...) with it and build "
            f"the machine with BindDualValues(...) so that its gradient is bound"
        )
    if not isinstance(g, np.ndarray):
        raise TypeError(
            f"{where}: the gradient of {_label(vg, i)} is a {type(g).__name__}, not a numpy array"
        )
    if g.shape != w.shape:
        raise ShapeError(
            f"{where}: {_label(vg, i)} has value shape {w.shape} but gradient shape {g.shape}"
        )
    if g.dtype != w.dtype:
        raise DtypeError(f"{where}: {_label(vg, i)} has a {w.dtype} value but a {g.dtype} gradient")
    if not (w.flags.writeable and g.flags.writeable):
        raise ValueError(
            f"{where}: the value or gradient of {_label(vg, i)} is read-only; solvers update "
            f"both in place"
        )
    return w, g


def _check_distinct(
    pairs: Sequence[tuple[np.ndarray, np.ndarray]], vgs: Sequence[Any], where: str
) -> None:
    seen: dict[int, int] = {}
    for i, (w, _) in enumerate(pairs):
        j = seen.setdefault(id(w), i)
        if j != i:
            raise ValueError(
                f"{where}: {_label(vgs[i], i)} and {_label(vgs[j], j)} share one value array, "
                f"so it would be updated twice; list each parameter once"
            )


def _as_list(vgs: Any, where: str) -> list[Any]:
    if isinstance(vgs, (list, tuple)):
        return vgs if isinstance(vgs, list) else list(vgs)
    if isinstance(vgs, (str, bytes, np.ndarray)) or not isinstance(vgs, Iterable):
        raise TypeError(
            f"{where} expects a list of parameters (graph nodes or ValueGrads), got "
            f"{type(vgs).__name__}"
        )
    return list(vgs)


def NodesToValueGrads(nodes: Iterable[Any]) -> list[Any]:
    """Check that each node has a float value and a bound gradient of its shape; return them.

    The result, in the same order, is what ``solver.step`` takes. Errors name the node.

    Example:
        >>> import numpy as np, graphcore as gc
        >>> g = gc.NewGraph()
        >>> w = gc.NewVector(g, gc.Float64, gc.WithShape(2), gc.WithName("w"),
        ...                  gc.WithValue([1.0, 2.0]))
        >>> _ = gc.Grad(gc.Sum(gc.Square(w)), w)
        >>> gc.NewTapeMachine(g, gc.BindDualValues(w)).run_all()
        >>> vgs = gc.NodesToValueGrads([w]); vgs[0] is w
        True
    """
    where = "NodesToValueGrads"
    items = list(_as_list(nodes, where))
    pairs = [_value_grad(n, i, where) for i, n in enumerate(items)]
    _check_distinct(pairs, items, where)
    return items


class _Bound:
    """The graph nodes a step last updated, their slots, value and gradient arrays, and the
    segments built for them: a step given the same nodes, with the same arrays bound and no
    lazy zeroing pending, needs none of the per-parameter checks again.

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph(); w = gc.NewVector(g, gc.Float64, gc.WithShape(1), gc.WithName("w"),
        ...     gc.WithValue([1.0]), gc.WithGrad([2.0]))
        >>> b = _Bound.of([w], [(w.value, w.grad)], []); b.holds([w]), b.holds([])
        (True, False)
        >>> w.zero_grad(); b.holds([w])  # a pending zeroing: the slow path reads a real zero
        False
    """

    __slots__ = ("items", "slots", "values", "grads", "segs")

    def __init__(self, items: tuple[Node, ...], segs: list[Segment]) -> None:
        self.items = items
        self.slots: tuple[Slot, ...] = tuple(n.slot for n in items)
        self.values = tuple(s.value for s in self.slots)
        self.grads = tuple(s.grad for s in self.slots)
        self.segs = segs

    @classmethod
    def of(cls, vgs: Sequence[Any], pairs: list[tuple[np.ndarray, np.ndarray]],
           segs: list[Segment]) -> _Bound | None:
        """A record for these checked parameters when every one is a graph node whose slot
        holds exactly the arrays the step used, else None."""
        for vg, (w, g) in zip(vgs, pairs, strict=True):
            if not isinstance(vg, Node) or vg.slot.value is not w or vg.slot.grad is not g:
                return None
        return cls(tuple(vgs), segs)

    def holds(self, vgs: Sequence[Any]) -> bool:
        """Whether ``vgs`` are these nodes, in order, with the same arrays bound and their
        gradients current (not lazily zeroed)."""
        if len(vgs) != len(self.items):
            return False
        for vg, item, slot, w, g in zip(vgs, self.items, self.slots, self.values, self.grads):
            if vg is not item or slot.value is not w or slot.grad is not g or slot.grad_stale:
                return False
        return True
