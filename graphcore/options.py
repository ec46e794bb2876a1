"""Node construction options, Gorgonia style: ``NewMatrix(g, dt, WithShape(2, 3), WithName("w"))``.

Example:
    >>> import graphcore as gc
    >>> g = gc.NewGraph()
    >>> w = gc.NewMatrix(g, gc.Float64, gc.WithShape(2, 3), gc.WithName("w"),
    ...                  gc.WithInit(gc.Zeroes()))
    >>> w.value.shape
    (2, 3)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np

__all__ = ["Option", "NodeOpt", "WithShape", "WithName", "WithInit", "WithValue", "WithGrad"]


class Option:
    """The base of every option: node, machine and solver options here, layer options in golgi.

    An option is a small immutable value: a ``kind`` (what it sets) and a ``value``. Its repr
    is the builder call that makes it (``WithName('x')``), taken from the subclass's
    ``builders`` table. Options compare and hash by class, kind and value.

    Example:
        >>> o = WithName("x"); o.kind, o.value, o
        ('name', 'x', WithName('x'))
        >>> o == WithName("x"), o == WithName("y")
        (True, False)
    """

    __slots__ = ("kind", "value")
    #: kind -> the name of the function that builds the option (for reprs and messages)
    builders: ClassVar[Mapping[str, str]] = {}

    kind: str
    value: Any

    def __init__(self, kind: str, value: Any = None) -> None:
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "value", value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    @property
    def builder(self) -> str:
        """The name of the function that builds this option, e.g. ``"WithName"``.

        Example:
            >>> WithShape(2, 3).builder
            'WithShape'
        """
        return self.builders.get(self.kind, self.kind)

    def __repr__(self) -> str:
        return f"{self.builder}({self.value!r})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        a, b = self.value, other.value  # type: ignore[attr-defined]
        if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
            same = a is b
        else:
            try:
                same = bool(a == b)
            except Exception:  # noqa: BLE001 - values that do not compare are different
                same = a is b
        return self.kind == other.kind and same  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        try:
            return hash((type(self), self.kind, self.value))
        except TypeError:
            return hash((type(self), self.kind, id(self.value)))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.kind, self.value))


class NodeOpt(Option):
    """One option for a node constructor; build it with ``WithShape``, ``WithName``, ...

    Example:
        >>> WithName("x").kind, WithName("x").arg
        ('name', 'x')
    """

    __slots__ = ()
    builders = {"shape": "WithShape", "name": "WithName", "init": "WithInit",
                "value": "WithValue", "grad": "WithGrad"}

    @property
    def arg(self) -> Any:
        """The option's value (Gorgonia's name for it).

        Example:
            >>> WithShape(None, 3).arg
            (None, 3)
        """
        return self.value


def WithShape(*dims: int | None) -> NodeOpt:
    """The node's shape; ``None`` in dimension 0 leaves the batch size free.

    Example:
        >>> WithShape(None, 784).arg
        (None, 784)
    """
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    return NodeOpt("shape", tuple(dims))


def WithName(name: str) -> NodeOpt:
    """The node's name (unique among a graph's input nodes).

    Example:
        >>> WithName("w1").arg
        'w1'
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"WithName expects a non-empty string, got {name!r}")
    return NodeOpt("name", name)


def WithInit(fn: Callable[..., np.ndarray]) -> NodeOpt:
    """Initialise the node's value with an initializer such as ``GlorotN(1.0)``.

    Example:
        >>> import graphcore as gc
        >>> WithInit(gc.Ones()).kind
        'init'
    """
    if not callable(fn):
        raise TypeError(f"WithInit expects an initializer such as GlorotN(1.0), got {fn!r}")
    return NodeOpt("init", fn)


def WithValue(value: Any) -> NodeOpt:
    """Bind an initial value (array or scalar); the shape is taken from it when not given.

    Example:
        >>> WithValue([1.0, 2.0]).kind
        'value'
    """
    return NodeOpt("value", value)


def WithGrad(grad: Any) -> NodeOpt:
    """Bind an initial gradient (same shape as the value).

    Example:
        >>> WithGrad([0.0, 0.0]).kind
        'grad'
    """
    return NodeOpt("grad", grad)
