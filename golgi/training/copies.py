"""Threads: each thread predicts and evaluates on its own copy of the model's graph.

A machine holds one set of buffers, so one machine runs one thread at a time (graphcore
refuses a second with ``MachineBusyError``), and two machines on one graph share its input
nodes. ``predict`` and ``evaluate`` therefore run an eval-mode machine on a copy of the part
of the graph they need (``Graph.clone``), made once per thread and model: the copy has its
own data inputs and results, and shares every other input's array with the model (the
weights, which the solver updates in place) and every op (so batch norm reads the running
statistics the layer owns). Nothing a copy does writes to the model, so predicting never
disturbs a ``fit`` running in another thread.

Building graph nodes (``model.fwd``, the trainer's loss and gradients) is not thread-safe;
everything that builds takes :data:`BUILD_LOCK` (building happens once per model, not per
batch).

Example:
    >>> import numpy as np, graphcore as gc, golgi as G
    >>> g = gc.NewGraph()
    >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
    >>> fc = G.ConsFC(x, G.WithShape(2)); out = fc.fwd(x)
    >>> copy = EvalCopy([x], [out]); copy.inputs[0] is x, copy.outputs[0].shape
    (False, (None, 2))
    >>> gc.Let(copy.inputs[0], np.ones((4, 3))); copy.run(); copy.outputs[0].value.shape
    (4, 2)
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import graphcore as gc

from .data import graph_of

__all__ = ["BUILD_LOCK", "EvalCopy", "per_thread", "one_fit_at_a_time"]

#: Held while golgi builds graph nodes for a model (its free input, its output, a trainer's
#: loss and gradients, a copy of its graph); reentrant, so builders may nest.
BUILD_LOCK = threading.RLock()

T = TypeVar("T")


class EvalCopy:
    """An eval-mode tape machine on a copy of the graph that computes ``outputs`` from
    ``inputs``, sharing every other input (weights, constants) and every op with the model.

    ``inputs`` and ``outputs`` (and ``extra``, more nodes to keep readable, e.g. a loss) are
    nodes of the model's graph; the attributes of the same names are their copies, to feed
    with ``gc.Let`` and read after :meth:`run`.

    Example:
        >>> import numpy as np, graphcore as gc, golgi as G
        >>> g = gc.NewGraph()
        >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
        >>> fc = G.ConsFC(x, G.WithShape(1), G.WithName("h")); out = fc.fwd(x)
        >>> c = EvalCopy([x], [out]); c.outputs[0].graph is g, c.vm.training
        (False, False)
    """

    def __init__(
        self, inputs: Sequence[gc.Node], outputs: Sequence[gc.Node], extra: Sequence[gc.Node] = ()
    ) -> None:
        roots = [*outputs, *extra]
        with BUILD_LOCK:
            graph = graph_of(roots[0], "EvalCopy")
            # exact: no Set statements, which would write to the shared inputs
            sub = graph.exact_subgraph_roots(*roots)
            fed = {id(n) for n in inputs}
            shared = [n for n in sub.nodes if n.op is None and id(n) not in fed]
            memo: dict[int, gc.Node] = {}
            copy = sub.clone(memo, share=shared)
        self.graph = copy
        self.inputs = [memo[id(n)] for n in inputs]
        self.outputs = [memo[id(n)] for n in outputs]
        self.extra = [memo[id(n)] for n in extra]
        # the model's inputs and their copies: a weight rebound to a new array (Let with
        # copy=False) is followed at the next call (see sync)
        self._shared = [(n, memo[id(n)]) for n in shared if n.has_value]
        self.vm = gc.NewTapeMachine(
            copy, gc.EvalMode(), gc.WithWatchlist(*self.outputs, *self.extra)
        )

    def sync(self) -> None:
        """Point the copy's shared inputs at the model's arrays again, where the model's were
        rebound since (a ``Let(w, a, copy=False)``); in-place updates need nothing.

        Example:
            >>> import numpy as np, graphcore as gc
            >>> g = gc.NewGraph()
            >>> x = gc.NewVector(g, gc.Float64, gc.WithShape(None), gc.WithName("x"))
            >>> w = gc.NewScalar(g, gc.Float64, gc.WithName("w"), gc.WithValue(2.0))
            >>> c = EvalCopy([x], [x * w]); gc.Let(w, np.array(3.0), copy=False); c.sync()
            >>> gc.Let(c.inputs[0], [1.0]); c.run(); c.outputs[0].value.tolist()
            [3.0]
        """
        for src, dst in self._shared:
            v = src.value
            if dst.value is not v:
                gc.Let(dst, v, copy=False)

    def run(self) -> None:
        """Run the copy once on the values bound to its inputs."""
        self.vm.run_all()


class _PerThread(threading.local):
    def __init__(self) -> None:
        self.tables: weakref.WeakKeyDictionary[Any, dict[Any, Any]] = (
            weakref.WeakKeyDictionary()
        )


_local = _PerThread()


def per_thread(owner: Any, key: Any, make: Callable[[], T]) -> T:
    """This thread's object for ``(owner, key)``, made by ``make()`` on first use; kept as
    long as ``owner`` lives (and the thread). An owner that cannot be weakly referenced gets
    a new object every call.

    Example:
        >>> class Model: pass
        >>> m = Model(); a = per_thread(m, "p", list); a is per_thread(m, "p", list)
        True
    """
    try:
        table = _local.tables.get(owner)
        if table is None:
            table = _local.tables[owner] = {}
    except TypeError:  # not hashable or not weakly referable: nothing to key on
        return make()
    obj = table.get(key)
    if obj is None:
        obj = table[key] = make()
    return obj


_fitting: weakref.WeakSet[Any] = weakref.WeakSet()


@contextlib.contextmanager
def one_fit_at_a_time(model: Any) -> Iterator[None]:
    """Refuse a second ``fit`` of one model while the first runs (in another thread): they
    would feed and step the same weights, and one would corrupt the other's batches."""
    with BUILD_LOCK:
        try:
            busy = model in _fitting
            if not busy:
                _fitting.add(model)
        except TypeError:  # not weakly referable: nothing to track
            yield
            return
    if busy:
        raise gc.MachineBusyError(
            f"fit: this {type(model).__name__} is being trained by another fit (in another "
            f"thread); train a copy of it (copy.deepcopy(model)) or wait for that fit to end"
        )
    try:
        yield
    finally:
        with BUILD_LOCK:
            _fitting.discard(model)
