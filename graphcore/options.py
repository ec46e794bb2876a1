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

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["NodeOpt", "WithShape", "WithName", "WithInit", "WithValue", "WithGrad"]


@dataclass(frozen=True)
class NodeOpt:
    """One option for a node constructor; build it with ``WithShape``, ``WithName``, ...

    Example:
        >>> WithName("x").kind
        'name'
    """

    kind: str
    arg: Any

    def __repr__(self) -> str:
        names = {"shape": "WithShape", "name": "WithName", "init": "WithInit",
                 "value": "WithValue", "grad": "WithGrad"}
        return f"{names[self.kind]}({self.arg!r})"


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
