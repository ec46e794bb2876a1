"""The memory pass of compiling a graph: where every value lives.

Walking the program in order, each op node gets an array to write:

- a *view* of its operand when the op declares ``view`` (transposes, reshapes): no buffer;
- its operand's own buffer when the op declares ``inplace`` and that operand dies at this
  step (elementwise ops);
- ``w.grad`` itself for a learnable's gradient that the op can accumulate
  (``accumulate_kernel``: BLAS adds a weight gradient with ``beta=1``);
- otherwise a buffer from the pool of dead temporaries (best fit by size and dtype), or a new
  one. Pinned nodes (inputs, roots, the watchlist, unbound gradients: values the user can
  read) get buffers of their own that are never reused.

A buffer is dead after the last step that reads any value in it (``last_reads``). The pass
records which node last wrote each buffer, so a value overwritten by a later node can say
which one when it is read (``Slot.clobbered_by``).

Example:
    >>> import numpy as np, graphcore as gc
    >>> from graphcore.machines.program import whole_graph
    >>> from graphcore.machines.schedule import concrete_shapes, last_reads
    >>> g = gc.NewGraph(); x = gc.NewVector(g, gc.Float64, gc.WithShape(4), gc.WithName("x"))
    >>> y = gc.Neg(gc.Exp(gc.Exp(x))); gc.Let(x, np.zeros(4))
    >>> order = whole_graph(g, ()).order
    >>> lay = lay_out(order, concrete_shapes(order, []), last_reads(order), {id(x), id(y)},
    ...               gc.ExecContext())
    >>> len(lay.steps), lay.nbytes  # the second Exp runs in place on the first's buffer
    (3, 64)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

import numpy as np

from ..errors import GraphError
from ..graph import Node
from ..ops.base import ExecContext
from ..shapes import size_of

__all__ = ["Layout", "lay_out"]

Kernel = Callable[[], None]


class _Buffer:
    """A flat array, the step after which nothing reads it, and the nodes that wrote it."""

    __slots__ = ("flat", "last", "pinned", "writers")

    def __init__(self, flat: np.ndarray, pinned: bool) -> None:
        self.flat = flat
        self.last = -1
        self.pinned = pinned
        self.writers: list[Node] = []


class _Pool:
    """Dead buffers by (dtype, size): exact sizes are found at once, else the best larger fit."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, int], list[_Buffer]] = {}
        self._ids: set[int] = set()

    def put(self, buf: _Buffer) -> None:
        if id(buf) in self._ids:
            return
        self._ids.add(id(buf))
        self._by_key.setdefault((buf.flat.dtype.str, buf.flat.size), []).append(buf)

    def take(self, size: int, dtype: np.dtype) -> _Buffer | None:
        key = (np.dtype(dtype).str, max(size, 1))
        bucket = self._by_key.get(key)
        if not bucket:
            best = None
            for k, b in self._by_key.items():
                if b and k[0] == key[0] and k[1] > key[1] and (best is None or k[1] < best[1]):
                    best = k
            if best is None:
                return None
            bucket = self._by_key[best]
        buf = bucket.pop()
        self._ids.discard(id(buf))
        return buf


@dataclass
class Layout:
    """The result of the memory pass for one plan.

    - ``arrays``: node id -> the array the node's value lives in (inputs: their own values);
    - ``steps``: ``(node, kernel)`` for each op node that computes (views compute nothing);
    - ``views``: ids of op nodes that are views of their operand;
    - ``ready_after``: view id -> the step node after which the view's data is complete
      (None: before the first step);
    - ``accumulated``: ids of gradient nodes whose step adds straight into ``w.grad``;
    - ``published``: for each op node, its array, or (None, description of the node that
      overwrote it) when a later step reused its buffer;
    - ``nbytes``: bytes of the buffers this plan allocated.

    Example:
        >>> Layout().nbytes
        0
    """

    arrays: dict[int, np.ndarray] = field(default_factory=dict)
    steps: list[tuple[Node, Kernel]] = field(default_factory=list)
    views: set[int] = field(default_factory=set)
    ready_after: dict[int, Node | None] = field(default_factory=dict)
    accumulated: set[int] = field(default_factory=set)
    published: list[tuple[Node, np.ndarray | None, str | None]] = field(default_factory=list)
    nbytes: int = 0


def lay_out(
    order: list[Node],
    shapes: Mapping[int, tuple[int, ...]],
    last_read: Mapping[int, int],
    pinned: set[int],
    ctx: ExecContext,
    no_reuse: bool = False,
    accumulate_into: Mapping[int, Node] | None = None,
    given: AbstractSet[int] = frozenset(),
    replaced: AbstractSet[int] = frozenset(),
    unwritten: AbstractSet[int] = frozenset(),
) -> Layout:
    """Assign every node of ``order`` its array and build the op steps' kernels.

    ``pinned``: ids of op nodes whose values stay readable (own buffers, never reused);
    ``no_reuse``: every op node gets a buffer of its own (debugging); ``accumulate_into``:
    gradient node id -> the learnable whose bound ``grad`` it may add into; ``given``: ids of
    op nodes whose values are read, not computed (each gets a buffer their value is copied
    into at every run, like a lent input's); ``replaced``: ids of op nodes whose steps a
    later pass builds (here a placeholder that fails if run), and ``unwritten``: those of
    them whose values nothing computes (no buffer: a read-only zero-strided view).

    Example:
        >>> import numpy as np, graphcore as gc
        >>> from graphcore.machines.program import whole_graph
    >>> from graphcore.machines.schedule import concrete_shapes, last_reads
        >>> g = gc.NewGraph(); x = gc.NewVector(g, gc.Float64, gc.WithShape(2), gc.WithName("x"))
        >>> y = x.T; gc.Let(x, np.ones(2)); order = whole_graph(g, ()).order
        >>> lay = lay_out(order, concrete_shapes(order, []), last_reads(order), set(),
        ...               gc.ExecContext())
        >>> lay.views == {id(y)}, lay.steps
        (True, [])
    """
    lay = Layout()
    accumulate_into = accumulate_into or {}
    arrays = lay.arrays
    buffer_of: dict[int, _Buffer] = {}
    version: dict[int, int] = {}
    pool = _Pool()
    allocated: list[_Buffer] = []

    def assign(n: Node, arr: np.ndarray, buf: _Buffer, writes: bool) -> None:
        arrays[id(n)] = arr
        buffer_of[id(n)] = buf
        if writes:
            buf.writers.append(n)
        version[id(n)] = len(buf.writers)
        buf.last = max(buf.last, last_read[id(n)])

    def fresh(size: int, dtype: np.dtype, pin: bool) -> _Buffer:
        if not pin:
            buf = pool.take(size, dtype)
            if buf is not None:
                return buf
        buf = _Buffer(np.empty(max(size, 1), dtype), pin)
        allocated.append(buf)
        return buf

    def free_dead(n: Node, i: int) -> None:
        for m in (*n.children, n):  # n itself when nobody reads it (possible in a subgraph)
            buf = buffer_of[id(m)]
            if not buf.pinned and buf.last == i:
                pool.put(buf)

    for i, n in enumerate(order):
        if n.op is None or id(n) in given:
            v = n.slot.value
            assert v is not None  # the caller checked every input is bound
            if n.slot.lent or n.op is not None:  # not ours: the plan needs a buffer of its own
                v = np.empty_like(v)
            assign(n, v, _Buffer(v, True), True)
            continue
        xs = [arrays[id(c)] for c in n.children]
        if id(n) in unwritten:
            arr = np.broadcast_to(np.zeros(1, n.dtype.np), shapes[id(n)])
            assign(n, arr, _Buffer(arr, True), True)
            lay.steps.append((n, _placeholder(n)))
            free_dead(n, i)  # its step still reads its operands (copies them)
            continue
        w = accumulate_into.get(id(n)) if id(n) not in replaced else None
        if w is not None:
            grad = w.slot.grad
            if grad is not None and (acc := n.op.accumulate_kernel(xs, grad, ctx)) is not None:
                assign(n, grad, _Buffer(grad, True), True)
                lay.steps.append((n, w.slot.into_grad(*acc)))
                lay.accumulated.add(id(n))
                free_dead(n, i)
                continue
        shape, dtype = shapes[id(n)], n.dtype.np
        pin = id(n) in pinned or no_reuse
        view = n.op.view_of(xs) if n.op.view and not pin else None
        # a view op may have to copy (reshaping a transposed view): then it needs a buffer
        if view is not None and np.may_share_memory(view, xs[0]):
            assign(n, view, buffer_of[id(n.children[0])], False)
            lay.views.add(id(n))
            lay.ready_after[id(n)] = lay.steps[-1][0] if lay.steps else None
            free_dead(n, i)
            continue
        target = _in_place_target(n, i, xs, shape, dtype, buffer_of) if (
            n.op.inplace and not pin
        ) else None
        if target is None:
            buf = fresh(size_of(shape), dtype, pin)
            target = (buf.flat[: size_of(shape)].reshape(shape), buf)
        arr, buf = target
        assign(n, arr, buf, True)
        try:
            fn = _placeholder(n) if id(n) in replaced else n.op.kernel(xs, arr, ctx)
        except Exception as e:  # a kernel factory failing is a bug in that op
            raise GraphError(f"cannot compile {n.describe()}: {e}") from e
        lay.steps.append((n, fn))
        free_dead(n, i)
    lay.nbytes = sum(b.flat.nbytes for b in allocated)
    for n in order:
        if n.op is None or id(n) in given:
            continue
        buf = buffer_of[id(n)]
        if id(n) in lay.accumulated:
            w = accumulate_into[id(n)]
            why = f"accumulation into {w.name}.grad (read {w.name}.grad)"
            lay.published.append((n, None, why))
        elif version[id(n)] == len(buf.writers):
            lay.published.append((n, arrays[id(n)], None))
        else:
            lay.published.append((n, None, buf.writers[version[id(n)]].describe()))
    return lay


def _placeholder(n: Node) -> Kernel:
    """The step of a node whose kernel another pass builds: fails if it is ever run."""

    def not_built() -> None:
        raise GraphError(f"{n.describe()}: its step was never built (a plan pass skipped it)")

    return not_built


def _in_place_target(
    n: Node,
    i: int,
    xs: list[np.ndarray],
    shape: tuple[int, ...],
    dtype: np.dtype,
    buffer_of: Mapping[int, _Buffer],
) -> tuple[np.ndarray, _Buffer] | None:
    """Operand 0's array and buffer when ``n`` may write over it: the operand dies at this
    step, has the result's shape and dtype, is contiguous, and no other operand reads an
    overlapping part of the same buffer differently."""
    buf = buffer_of[id(n.children[0])]
    a0 = xs[0]
    if (
        buf.pinned
        or buf.last != i
        or a0.shape != shape
        or a0.dtype != dtype
        or not a0.flags.c_contiguous
    ):
        return None
    for c, x in zip(n.children[1:], xs[1:]):
        if buffer_of[id(c)] is buf and x.__array_interface__ != a0.__array_interface__:
            return None
    return a0, buf
