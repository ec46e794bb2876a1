"""Bound gradients (``BindDualValues``): their buffers, and how runs accumulate into them.

A machine built with ``BindDualValues(w, ...)`` gives each learnable without a gradient
buffer a view into one zeroed array per dtype, in the order they were bound, so solvers can
run each pass of their update once over every parameter. Each run then adds the gradient
node's value into ``w.grad``, or overwrites it when a solver zeroed it lazily since
(``Slot.into_grad``). Where the gradient node's op can accumulate by itself (a matrix product
with ``beta=1``), the memory pass lets it write into ``w.grad`` directly; the rest is copied
or added after the step that completes the gradient (:func:`accumulation_steps`).

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
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from ..graph import Node

__all__ = ["bind_grads", "accumulation_candidates", "accumulation_steps"]

Kernel = Callable[[], None]


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
        g = w.slot.grad
        if g is None or g.shape != w.value.shape:
            group = fresh.setdefault(w.value.dtype, [])
            if all(v is not w for v in group):
                group.append(w)
    for dtype, group in fresh.items():
        flat = np.zeros(sum(math.prod(w.value.shape) for w in group), dtype)
        lo = 0
        for w in group:
            n = math.prod(w.value.shape)
            w.slot.bind_grad(flat[lo : lo + n].reshape(w.value.shape))
            lo += n


def accumulation_candidates(
    bound: Sequence[Node],
    derivs: Mapping[int, Node],
    pinned: set[int],
    last_read: Mapping[int, int],
    position: Mapping[int, int],
) -> dict[int, Node]:
    """Gradient node id -> learnable, for gradients the memory pass may compute straight into
    ``w.grad``: op nodes that nothing else reads, that are not pinned, and that are the
    gradient of one bound learnable only.

    Example:
        >>> accumulation_candidates([], {}, set(), {}, {})
        {}
    """
    out: dict[int, Node] = {}
    for w in bound:
        d = derivs[id(w)]
        if (
            d.op is not None
            and id(d) not in pinned
            and last_read[id(d)] == position[id(d)]
            and sum(1 for v in bound if derivs[id(v)] is d) == 1
        ):
            out[id(d)] = w
    return out


def accumulate(w: Node, src: np.ndarray) -> Kernel:
    """A kernel for ``w.grad += src`` (or ``w.grad = src`` after a lazy zeroing).

    Example:
        >>> import numpy as np, graphcore as gc
        >>> w = gc.NewVector(gc.NewGraph(), gc.Float64, gc.WithShape(2), gc.WithValue([1, 2]))
        >>> bind_grads([w]); run = accumulate(w, np.array([1.0, 2.0])); run(); run()
        >>> w.grad.tolist()
        [2.0, 4.0]
    """
    g = w.slot.grad
    assert g is not None
    return w.slot.into_grad(lambda: np.copyto(g, src), lambda: np.add(g, src, out=g))


def accumulation_steps(
    bound: Sequence[Node],
    derivs: Mapping[int, Node],
    arrays: Mapping[int, np.ndarray],
    accumulated: set[int],
    ready_after: Mapping[int, Node | None],
) -> tuple[list[Kernel], dict[int, list[Kernel]]]:
    """The accumulations into ``w.grad`` that the memory pass did not fuse into a step:
    ``(before, after)`` where ``before`` runs ahead of every step (gradients that are inputs
    or views ready from the start) and ``after[id(node)]`` right after ``node``'s step.

    Example:
        >>> accumulation_steps([], {}, {}, set(), {})
        ([], {})
    """
    before: list[Kernel] = []
    after: dict[int, list[Kernel]] = {}
    for w in bound:
        d = derivs[id(w)]
        if id(d) in accumulated:
            continue
        run = accumulate(w, arrays[id(d)])
        at = ready_after.get(id(d), d) if d.op is not None else None
        if at is None:
            before.append(run)
        else:
            after.setdefault(id(at), []).append(run)
    return before, after
