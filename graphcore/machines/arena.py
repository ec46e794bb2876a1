"""Gradient buffers for bound learnables, allocated side by side in one flat array.

A machine built with ``BindDualValues`` gives each learnable without a gradient buffer a view
into one zeroed array per dtype, in the order they were bound. Solvers notice the layout and
run each pass of their update once over every parameter instead of once per parameter (for
the talk's MLP, one numpy call where there were six).

Example:
    >>> import graphcore as gc
    >>> g = gc.NewGraph()
    >>> a = gc.NewVector(g, gc.Float32, gc.WithShape(2), gc.WithName("a"), gc.WithValue([1, 2]))
    >>> b = gc.NewMatrix(g, gc.Float32, gc.WithShape(1, 3), gc.WithName("b"),
    ...                  gc.WithValue([[1, 2, 3]]))
    >>> bind_grads([a, b]); a.grad.base is b.grad.base, b.grad.shape
    (True, (1, 3))
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..graph import Node

__all__ = ["bind_grads"]


def bind_grads(nodes: Sequence[Node]) -> None:
    """Give every node of ``nodes`` that lacks a gradient buffer of its value's shape a zeroed
    one, as consecutive views of one flat array per dtype.

    Buffers that exist already are kept: another machine's plans may accumulate into them.

    Example:
        >>> import graphcore as gc
        >>> w = gc.NewVector(gc.NewGraph(), gc.Float64, gc.WithShape(2), gc.WithValue([1, 2]))
        >>> bind_grads([w]); w.grad.tolist()
        [0.0, 0.0]
    """
    fresh: dict[np.dtype, list[Node]] = {}
    for w in nodes:
        if w._grad is None or w._grad.shape != w.value.shape:
            group = fresh.setdefault(w.value.dtype, [])
            if all(v is not w for v in group):
                group.append(w)
    for dtype, group in fresh.items():
        flat = np.zeros(sum(math.prod(w.value.shape) for w in group), dtype)
        lo = 0
        for w in group:
            n = math.prod(w.value.shape)
            w._grad = flat[lo : lo + n].reshape(w.value.shape)
            w._grad_zeroed = False
            lo += n
