"""A tape machine called like a function: fixed input nodes in, fixed output nodes out.

``TapeMachine.function(inputs, outputs)`` gives a :class:`TapeFunction`. Calling it with one
array per input lends them to the inputs (``Let(x, a, copy=False)``: the same checks of shape
and dtype, the same safe casts), runs the machine and returns the outputs: written into the
arrays given as ``out`` (``run_all(into=...)``), else copies of them, since the machine
overwrites its buffers on the next run. It is what a prediction loop does per batch, with
the per-call work done once: the nodes are checked when the function is made.

A loop's calls (one input, one output, ``out`` given, each batch of the last call's shape
and dtype, at most ``Plan.copy_below`` bytes, and nothing else run on the machine's nodes
since) skip ``Let`` and ``run_all``'s general checks: the batch is copied into the plan's
buffer, or, over 64 kB, read where it lies by the BLAS products that take it, the steps
run, and the result is copied into ``out``. Node values end as the general path leaves them.

Example:
    >>> import numpy as np, graphcore as gc
    >>> g = gc.NewGraph()
    >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
    >>> w = gc.NewMatrix(g, gc.Float64, gc.WithName("w"), gc.WithValue([[1.0], [2.0]]))
    >>> y = gc.Sigmoid(gc.Mul(x, w))
    >>> f = gc.NewTapeMachine(g, gc.EvalMode()).function(x, y)
    >>> f(np.zeros((3, 2))).ravel().tolist()
    [0.5, 0.5, 0.5]
    >>> res = np.empty((1, 1)); f(np.array([[0.0, 0.0]]), out=res) is res
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from ctypes import addressof, c_char
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import GraphError
from ..graph import Node
from ..storage import publish_stamp
from ..values import Let

if TYPE_CHECKING:  # pragma: no cover
    from .plan import Plan
    from .tape import TapeMachine

__all__ = ["TapeFunction"]

# Inputs of more bytes than this are read where they lie when the steps reading them take
# their address as a pointer (BLAS products): taking an array's address costs ~0.25 us
# (~0.8 us for a read-only one), as much as copying ~10-40 kB (a batch of 100 MNIST rows,
# 313 kB, copies in ~7 us).
_POINT_ABOVE = 64 << 10


def _nodes(what: str, nodes: Node | Sequence[Node]) -> list[Node]:
    out = [nodes] if isinstance(nodes, Node) else list(nodes)
    for n in out:
        if not isinstance(n, Node):
            raise TypeError(
                f"TapeMachine.function: {what} must be nodes, got {type(n).__name__}"
            )
    if len({id(n) for n in out}) != len(out):
        raise GraphError(f"TapeMachine.function: a node is listed twice in {what}")
    return out


class TapeFunction:
    """A tape machine's graph as a function from ``inputs`` to ``outputs``; see the module
    docs. Made by :meth:`TapeMachine.function`.

    ``f(*arrays, out=None)`` is ``Let(x, a, copy=False)`` for each input and array, then
    ``machine.run_all(into=...)``: node values follow the same rules (after the call
    ``x.value is a``, and an output's value is its ``out`` array until the next run). With
    ``out`` the outputs are written there (one array of the output's shape and dtype per
    output node, or a sequence of them for several) and ``out`` is returned; without it, new
    arrays are. A function made with one output node returns an array, one made with a list
    of output nodes returns a list. Like its machine, it runs one thread at a time.

    Example:
        >>> import numpy as np, graphcore as gc
        >>> g = gc.NewGraph()
        >>> a = gc.NewVector(g, gc.Float64, gc.WithShape(None), gc.WithName("a"))
        >>> b = gc.NewVector(g, gc.Float64, gc.WithShape(None), gc.WithName("b"))
        >>> s, p = gc.Add(a, b), gc.HadamardProd(a, b)
        >>> f = gc.NewTapeMachine(g).function([a, b], [s, p])
        >>> [r.tolist() for r in f(np.array([1.0, 2.0]), np.array([3.0, 4.0]))]
        [[4.0, 6.0], [3.0, 8.0]]
        >>> f.inputs == [a, b], f.outputs == [s, p]
        (True, True)
    """

    def __init__(
        self, machine: TapeMachine, inputs: Node | Sequence[Node], outputs: Node | Sequence[Node]
    ) -> None:
        self.machine = machine
        self.inputs = _nodes("inputs", inputs)
        self.outputs = _nodes("outputs", outputs)
        self._single = isinstance(outputs, Node)
        if not self.outputs:
            raise GraphError("TapeMachine.function: give at least one output node")
        ran = {id(n) for n in machine.order}
        for x in self.inputs:
            if x.op is not None or x.is_constant or id(x) not in ran:
                raise GraphError(
                    f"TapeMachine.function: {x.describe()} is not an input node this machine "
                    f"reads; inputs are nodes made with NewMatrix/NewTensor/... that the "
                    f"outputs depend on"
                )
        for o in self.outputs:
            if id(o) not in ran:
                raise GraphError(
                    f"TapeMachine.function: {o.describe()} is not run by this machine; build "
                    f"the machine on a graph that holds it (g.subgraph_roots({o.name}))"
                )
            if o.op is not None and id(o) not in machine.protected_ids:
                raise GraphError(
                    f"TapeMachine.function: the machine may reuse the buffer of "
                    f"{o.describe()} for later nodes; build it with WithWatchlist({o.name}) "
                    f"or on g.subgraph_roots({o.name}) so the output is kept"
                )
        # what a call with one input and an ``out`` array may skip, learned from the last
        # call that ran the machine's general path (see _learn): None until then
        self._ready: tuple[Any, ...] | None = None

    def __call__(self, *arrays: Any, out: np.ndarray | Sequence[np.ndarray] | None = None) -> Any:
        """The outputs for ``arrays`` (one per input node); see the class docs."""
        ready = self._ready
        if ready is not None and type(out) is np.ndarray and len(arrays) == 1:
            # A prediction loop's call: the same plan, the same shapes, and nothing but this
            # function ran the machine or published node values since the last call. Then
            # what Let, run_all and its into= checks would do comes down to a few checks and
            # two copies (batch 1, numpy kernels: 216k instructions a call -> 185k).
            plan, xslot, xbuf, xshape, xdtype, lend, oslot, obuf, oshape, odtype, entry, \
                others, nbytes, points, home = ready
            a = arrays[0]
            if (
                type(a) is np.ndarray
                and a.shape == xshape
                and a.dtype is xdtype  # any other dtype object: the general checks
                and out.shape == oshape
                and out.dtype is odtype
                and nbytes <= plan.copy_below
            ):
                flags = a.flags
                lock = self.machine._running
                if (
                    flags.c_contiguous  # as Let lends it; else Let copies it
                    and flags.aligned
                    and out.flags.writeable
                    and lock.acquire(blocking=False)  # else the general path says it is busy
                ):
                    try:
                        if self._still(plan, entry, others, points):
                            if lend:  # as Let(copy=False) and the plan's copy leave it
                                xslot.bind(a, lent=True)
                            else:
                                xslot.bind(xbuf)
                            if points:  # the products read a where it lies
                                try:  # a quarter of the time a.ctypes.data takes
                                    addr = addressof(c_char.from_buffer(a))  # type: ignore[arg-type]
                                except TypeError:  # a read-only array
                                    addr = a.ctypes.data
                                for _, _, p in points:
                                    p.value = addr
                                try:
                                    for fn in plan.steps:
                                        fn()
                                finally:  # a may be freed: the steps read the buffer again
                                    for _, _, p in points:
                                        p.value = home
                            else:
                                xbuf[...] = a
                                for fn in plan.steps:
                                    fn()
                            out[...] = obuf
                            # the result is out until the next run, as run_all(into=) leaves it
                            plan._stamp = oslot.publish(out)
                            return out
                    finally:
                        lock.release()
        inputs = self.inputs
        if len(arrays) != len(inputs):
            raise TypeError(
                f"TapeFunction: takes {len(inputs)} array(s), one for each of "
                f"{[x.name for x in inputs]}, got {len(arrays)}"
            )
        for x, a in zip(inputs, arrays):
            Let(x, a, copy=False)
        outputs, machine = self.outputs, self.machine
        if out is None:
            machine.run_all()
            res = [np.array(o.value) for o in outputs]  # the buffers change on the next run
            return res[0] if self._single else res
        into: dict[Node, np.ndarray]
        if self._single:
            if not isinstance(out, np.ndarray):
                raise TypeError(
                    f"TapeFunction: out must be one array for {outputs[0].name!r}, "
                    f"got {type(out).__name__}"
                )
            into = {outputs[0]: out}
        else:
            if isinstance(out, np.ndarray) or len(out) != len(outputs):
                raise ValueError(
                    f"TapeFunction: out must be a sequence of {len(outputs)} arrays, one for "
                    f"each of {[o.name for o in outputs]}"
                )
            into = dict(zip(outputs, out))
        machine.run_all(into=into)  # checks each array's shape and dtype
        if self._single and len(inputs) == 1:
            self._learn()
        return out

    def _still(
        self,
        plan: Plan,
        entry: tuple[Any, ...],
        others: list[tuple[Any, Any]],
        points: list[tuple[int, Any, Any]] | None,
    ) -> bool:
        """Whether the machine is as ``_learn`` left it: the plan of the last call still its
        plan, no node value published since (no other machine, ``UnsafeLet`` or clearing),
        the result still shown as the last call's ``out`` and nothing else pointed
        elsewhere, no input read in place, every other input's value still the plan's, and
        the products that read the input where it lies still the plan's steps."""
        if (
            self.machine.plan is not plan
            or plan._stamp != publish_stamp()
            or plan._in_place
            or len(plan._detours) != 1
            or plan._detours[0] is not entry
        ):
            return False
        for slot, arr in others:
            if slot.value is not arr:
                return False
        if points:
            steps = plan.steps
            for i, fn, _ in points:
                if steps[i] is not fn:
                    return False
        return True

    def _learn(self) -> None:
        """After a general call with ``out``: what the next call may skip (``_ready``), or
        None where the fast path does not apply (gradients fed per run, an output that is
        not one of the plan's results)."""
        self._ready = None
        plan = self.machine.plan
        x, o = self.inputs[0], self.outputs[0]
        if plan is None or plan._fed_grads:
            return
        j = plan._pub_index.get(id(o))
        if j is None:
            return
        entry = plan._published[j]
        detours = plan._detours
        if entry[1] is None or entry[2] is not None or len(detours) != 1 or detours[0] is not entry:
            return
        xbuf, others = None, []
        for n, slot, arr, _ in plan._bindings:
            if n is x:
                xbuf = arr
            else:
                others.append((slot, arr))
        if xbuf is None:
            return
        obuf = entry[1]
        lend = id(x) in plan._lendable
        points = plan.lent_pointers(x) if lend and xbuf.nbytes > _POINT_ABOVE else None
        self._ready = (
            plan, x.slot, xbuf, xbuf.shape, x.dtype.np, lend, o.slot, obuf, obuf.shape,
            o.dtype.np, entry, others, max(xbuf.nbytes, obuf.nbytes), points,
            xbuf.ctypes.data if points else 0,
        )

    def __repr__(self) -> str:
        return (
            f"TapeFunction({[x.name for x in self.inputs]} -> {[o.name for o in self.outputs]})"
        )
