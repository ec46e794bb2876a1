"""A compiled program for one set of concrete input shapes: the passes, put together.

:class:`Plan` runs the compile passes in order (:mod:`~graphcore.machines.schedule` for order,
shapes and liveness, :mod:`~graphcore.machines.grads` for what may accumulate into bound
gradients, :mod:`~graphcore.machines.memory` for buffers and kernels), then lays out the
tape: one kernel per step, with the accumulations into ``w.grad`` right after the steps that
complete them, and NaN/Inf watches around steps when asked for.

Two run-time services rebuild steps on other arrays, which ops allow by declaring
``rebuildable``: reading an input the caller lent with ``Let(x, a, copy=False)`` in place
(for ops that declare ``reads_lent``: matrix products), and writing a result straight into
an array given to ``run_all(into=...)``. Both pay off for big arrays only: arrays of at most
``Plan.copy_below`` bytes (1 MiB: predicting one sample, or a few hundred, at a time) are
copied instead, and a lent array that is the same memory as the one the steps read already
(a new view of it) rebuilds nothing.

Example:
    >>> import graphcore as gc
    >>> g = gc.NewGraph(); x = gc.NewScalar(g, gc.Float64, gc.WithName("x"), gc.WithValue(2.0))
    >>> y = gc.Square(x); vm = gc.NewTapeMachine(g); vm.run_all()
    >>> vm.plan.n_steps
    1
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import kernels
from ..errors import NonFiniteError, ValueNotAvailableError
from ..graph import Node
from ..storage import Slot, publish_stamp
from . import grads
from .conv_fusion import Direct, find_convolutions, fuse_convolutions
from .fusion import fuse_steps
from .memory import lay_out
from .program import backward_ids
from .schedule import concrete_shapes, last_reads

if TYPE_CHECKING:  # pragma: no cover
    from .tape import TapeMachine

__all__ = ["Plan"]

Kernel = Callable[[], None]


class Plan:
    """A compiled program for one set of concrete input shapes; see the module docs.

    Attributes: ``shapes`` (node id -> concrete shape), ``arrays`` (node id -> array),
    ``steps`` (the kernels ``run`` calls in order), ``n_steps`` (op steps, accumulations not
    counted), ``fused`` (gradients accumulated straight into ``w.grad``), ``nbytes``.

    Example:
        >>> import numpy as np, graphcore as gc
        >>> g = gc.NewGraph(); x = gc.NewVector(g, gc.Float64, gc.WithShape(None))
        >>> y = gc.Exp(x); gc.Let(x, np.zeros(3)); vm = gc.NewTapeMachine(g); vm.run_all()
        >>> vm.plan.shapes[id(y)], vm.plan.nbytes
        ((3,), 24)
    """

    #: Lent inputs and ``run_all(into=...)`` destinations of at most this many bytes are
    #: copied rather than read or written in place. A copy of a row takes well under a
    #: microsecond, building the kernels that touch the array again ~20; and up to about
    #: half of a core's L2 cache the copy is faster even counted in full (measured on a
    #: 784-250-100-10 MLP: 0.82x the time of reading in place at 150 KiB a batch, 0.91x at
    #: 300, 0.98x at 1.2 MiB; 3 MiB and more read in place are ~10% faster than copied).
    copy_below: int = 1 << 20

    def __init__(self, machine: TapeMachine) -> None:
        self.machine = machine
        # the kernel backend is chosen once per plan; kernels rebuilt later use it too
        self.kernels = machine.ctx.kernels = kernels.backend()
        order = machine.order
        pos = {id(n): i for i, n in enumerate(order)}
        given = machine.given
        self.shapes = shapes = concrete_shapes(order, machine.free_inputs, given)
        last = last_reads(order, given)
        pinned = machine.protected_ids
        # inputs fed per run: a gradient buffer of this plan's batch size, bound at each run
        self._fed_grads = [
            (w, np.zeros(shapes[id(w)], w.dtype.np)) for w in machine.fed
        ]
        for w, g in self._fed_grads:
            w.slot.bind_grad(g)
        candidates = grads.accumulation_candidates(
            machine.bind, machine.derivs, pinned, last, pos
        )
        # thin 3x3 convolutions run directly (numba): found first, so that their columns get
        # no buffers and their steps are built once the arrays are laid out
        direct = (
            Direct()
            if machine.nan_watch or machine.inf_watch or machine.logger is not None
            else find_convolutions(order, shapes, {*pinned, *candidates}, given, self.kernels)
        )
        lay = lay_out(
            order, shapes, last, pinned, machine.ctx, machine.noreuse, candidates, given,
            direct.replaced, direct.unwritten,
        )
        self.arrays = lay.arrays
        self.fused = len(lay.accumulated)
        self.nbytes = lay.nbytes
        self._accumulate_into = candidates
        self._accumulated = lay.accumulated
        self._views = lay.views
        self._published = lay.published
        # --- the tape: steps, accumulations into w.grad, watches -----------------------------
        before, after = grads.accumulation_steps(
            machine.bind, machine.derivs, lay.arrays, lay.accumulated, lay.ready_after
        )
        fns: list[Kernel] = list(before)
        watch_nan, watch_inf = machine.nan_watch, machine.inf_watch
        self._watched = watch_nan or watch_inf
        index: dict[int, int] = {}
        logger, direction = machine.logger, machine.log_direction
        backward = backward_ids(order) if logger is not None else set()
        # a dense layer's steps fused (not where steps are watched or logged one by one)
        conv = fuse_convolutions(lay.steps, lay.arrays, direct, self._published)
        self.nbytes += direct.nbytes
        if self._watched or logger is not None:
            fused = conv
        else:
            fused = fuse_steps(conv.steps, lay.arrays, lay.accumulated, candidates, after,
                               self.kernels)
            fused.folded.update(conv.folded)
            fused.rebuild.update(conv.rebuild)
        self._folded = fused.folded
        self._rebuild = fused.rebuild
        for n, fn in fused.steps:
            if self._watched:
                fn = _watched(n, fn, lay.arrays[id(n)], watch_nan, watch_inf)
            if logger is not None:
                d = "bwd" if id(n) in backward else "fwd"
                if direction in ("both", d):
                    fn = _logged(n, fn, lay.arrays[id(n)], d, logger)
            index[id(n)] = len(fns)
            fns.append(fn)
            fns.extend(after.get(id(n), ()))
        self.steps = fns
        self.n_steps = len(fused.steps)
        self.inputs = [
            (n, lay.arrays[id(n)])
            for n in order
            if (n.op is None and not n.is_constant) or id(n) in given
        ]
        # what bind_inputs reads per run, looked up once: it runs before every prediction
        self._bindings = [(n, n.slot, arr, id(n)) for n, arr in self.inputs]
        self._step_index = index
        #: node -> (shape, numpy dtype) of every node the plan runs: what an array given to
        #: ``run_all(into=...)`` for it must be
        self.into_specs = {n: (shapes[id(n)], n.dtype.np) for n in order}
        self._pub_index = {id(n): i for i, (n, _, _) in enumerate(self._published)}
        self._original = (list(fns), list(self._published))
        # the publish stamp right after this plan last published (see republish), and the
        # entries of _published a run pointed elsewhere since (run_all(into=...) results)
        self._stamp = -1
        self._detours: list[tuple[Node, np.ndarray | None, str | None]] = []
        # results nothing reads (a bound gradient is read by w.grad's accumulation)
        self._unread = {id(n) for n in order if n.op is not None and last[id(n)] == pos[id(n)]}
        self._unread -= {id(d) for d in machine.derivs.values()}
        # --- inputs that may be read in place when lent (Let(x, data, copy=False)) ----------
        self._lendable: dict[int, tuple[list[Node], list[Node]]] = {}
        # inputs read from a caller's array this run (by id), and those of them whose
        # readers were rebuilt to read it in place (the rest were copied: see bind_inputs)
        self._lent: dict[int, np.ndarray] = {}
        self._in_place: set[int] = set()
        if not self._watched:
            for x in machine.free_inputs:
                found = _lent_readers(x, order, lay.views, lay.accumulated)
                # a reader folded into another node's step has no step to rebuild
                if found is not None and not any(id(r) in self._folded for r in found[1]):
                    self._lendable[id(x)] = found

    def run(self) -> None:
        """Run every step once (inputs must be bound: see ``bind_inputs``).

        Example:
            >>> import graphcore as gc
            >>> g = gc.NewGraph(); x = gc.NewScalar(g, gc.Float64, gc.WithValue(3.0))
            >>> y = gc.Neg(x); vm = gc.NewTapeMachine(g); vm.run_all(); vm.plan.run()
            >>> float(y.value)
            -3.0
        """
        for fn in self.steps:
            fn()

    def publish(self) -> None:
        """Point every op node's ``value`` at this plan's buffers (or mark it clobbered).

        Example:
            >>> import graphcore as gc
            >>> g = gc.NewGraph(); x = gc.NewScalar(g, gc.Float64, gc.WithValue(3.0))
            >>> y = gc.Neg(x); vm = gc.NewTapeMachine(g); vm.run_all(); vm.plan.publish()
            >>> float(y.value)
            -3.0
        """
        for n, arr, why in self._published:
            n.slot.publish(arr, why)
        self._detours = []
        self._stamp = publish_stamp()

    def republish(self) -> None:
        """``publish``, skipping what still holds: when nothing was published anywhere since
        this plan last did (no other machine ran, no ``UnsafeLet``, no clearing), only the
        results the last run wrote elsewhere (``run_all(into=...)``) point back at the plan's
        buffers. ``run_all`` calls it before every run.

        Example:
            >>> import graphcore as gc
            >>> g = gc.NewGraph(); x = gc.NewScalar(g, gc.Float64, gc.WithValue(3.0))
            >>> y = gc.Neg(x); vm = gc.NewTapeMachine(g); vm.run_all(); vm.plan.republish()
            >>> float(y.value)
            -3.0
        """
        if self._stamp != publish_stamp():
            self.publish()
            return
        if self._detours:
            for n, arr, why in self._detours:
                n.slot.publish(arr, why)
            self._detours = []
            self._stamp = publish_stamp()

    def published_elsewhere(self, nodes: list[Node]) -> None:
        """Record that ``nodes`` (results of this plan) now show arrays of the caller's; the
        next ``republish`` points them back at the plan's buffers."""
        index, published, detours = self._pub_index, self._published, self._detours
        for n in nodes:
            detours.append(published[index[id(n)]])
        self._stamp = publish_stamp()

    def bind_inputs(self) -> None:
        """Copy each input's value into the plan's buffer, or, for an array lent with
        ``Let(..., copy=False)`` to an input only ``reads_lent`` ops read, point them at it.

        A lent array of at most ``copy_below`` bytes is copied instead (the node's value
        stays the caller's array): a copy of a few rows costs less than building the
        readers' kernels again for the array's address, as a loop over batches would on
        every call.

        Example:
            >>> import numpy as np, graphcore as gc
            >>> g = gc.NewGraph(); x = gc.NewVector(g, gc.Float64, gc.WithShape(None))
            >>> y = gc.Neg(x); gc.Let(x, np.ones(2)); vm = gc.NewTapeMachine(g); vm.run_all()
            >>> gc.Let(x, np.full(2, 5.0), copy=False); vm.plan.bind_inputs(); vm.plan.run()
            >>> y.value.tolist()
            [-5.0, -5.0]
        """
        lent = self._lent
        for n, slot, arr, i in self._bindings:
            v = slot.value
            if v is not arr:
                self._bind_input(n, slot, arr, i, v)
            elif lent and i in lent:
                self._own_input(n, arr)

    def _bind_input(
        self, n: Node, slot: Slot, arr: np.ndarray, i: int, v: np.ndarray | None
    ) -> None:
        """``bind_inputs`` for an input whose value is not the plan's buffer ``arr``."""
        if v is None:
            self.machine._check_inputs()  # raises, naming the input without a value
            raise ValueNotAvailableError(f"{n.describe()} has no value: Let it first")
        lent = self._lent
        if (
            slot.lent
            and i in self._lendable
            and v.shape == arr.shape
            and v.dtype == arr.dtype
        ):
            if v.nbytes <= self.copy_below:
                arr[...] = v  # same shape and dtype: half the call cost of np.copyto
                if i in self._in_place:
                    self._read_input_from(n, arr)
                lent[i] = v
                return
            if v.flags.c_contiguous and self._read_input_from(n, v):
                return
        np.copyto(arr, v)
        if n.op is None:
            slot.bind(arr)
        if i in lent:
            self._own_input(n, arr)

    def _own_input(self, n: Node, arr: np.ndarray) -> None:
        """Input ``n`` is read from the plan's buffer ``arr`` again (not from a lent array)."""
        if id(n) in self._in_place:
            self._read_input_from(n, arr)
        self._lent.pop(id(n), None)

    def bind_fed_grads(self) -> None:
        """Point the gradients of inputs fed per run at this plan's buffers, zeroed lazily, so
        the run writes the gradient for the batch it is given.

        Example:
            >>> import numpy as np, graphcore as gc
            >>> g = gc.NewGraph(); x = gc.NewVector(g, gc.Float64, gc.WithShape(None))
            >>> c = gc.Sum(gc.Square(x)); _ = gc.Grad(c, x)
            >>> vm = gc.NewTapeMachine(g, gc.BindDualValues(x))
            >>> gc.Let(x, [1.0, 2.0]); vm.run_all(); vm.run_all(); x.grad.tolist()
            [2.0, 4.0]
        """
        for w, g in self._fed_grads:
            slot = w.slot
            if slot.grad is not g:
                slot.bind_grad(g)
            slot.zero_grad()

    def redirect(self, node: Node, dest: np.ndarray) -> Kernel | None:
        """Make the step computing ``node`` write into ``dest`` (its shape and dtype); return
        the undo, or None where that is not safe (the caller then copies the value).

        Only a result nothing else reads (a bound gradient is read by ``w.grad``'s
        accumulation), made by a ``rebuildable`` op from op results (not inputs or views)
        that ``dest`` does not overlap, and without NaN/Inf watches.

        Example:
            >>> import numpy as np, graphcore as gc
            >>> g = gc.NewGraph(); x = gc.NewVector(g, gc.Float64, gc.WithShape(2))
            >>> y = gc.Neg(x); gc.Let(x, np.ones(2)); vm = gc.NewTapeMachine(g); vm.run_all()
            >>> vm.plan.redirect(y, np.empty(2)) is None  # y reads an input: not redirected
            True
        """
        i, op = self._step_index.get(id(node)), node.op
        if (
            i is None
            or op is None
            or self._watched
            or id(node) in self._accumulated
            or id(node) not in self._unread
            or not op.rebuildable
            or any(c.op is None or id(c) in self._views for c in node.children)
        ):
            return None
        rebuild = self._rebuild.get(id(node))
        # a fused step reads its folded node's operands
        operands = node.children[0].children if rebuild is not None else node.children
        if rebuild is not None and any(
            id(c) in self._lendable or id(c) in self._views for c in operands
        ):
            return None
        xs = [self.arrays[id(c)] for c in operands]
        if any(np.may_share_memory(dest, x) for x in xs):
            return None
        old_fn, j = self.steps[i], self._pub_index[id(node)]
        old_pub = self._published[j]
        self.steps[i] = (
            rebuild(dest) if rebuild is not None else op.kernel(xs, dest, self.machine.ctx)
        )
        self._published[j] = (node, dest, None)
        node.slot.publish(dest)

        def undo() -> None:
            self.steps[i] = old_fn
            self._published[j] = old_pub

        return undo

    def lent_pointers(self, x: Node) -> list[tuple[int, Kernel, Any]] | None:
        """``(step index, kernel, pointer)`` for each step reading input ``x``, when they all
        read it straight through a ``ctypes`` pointer to the plan's buffer (BLAS products,
        see ``gemm_into``), not through views; else None. For one run a caller may point them
        at another C-contiguous array of the buffer's shape and dtype, under the machine's
        lock, and must point them back before releasing it.

        Example:
            >>> import numpy as np, graphcore as gc
            >>> g = gc.NewGraph(); x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2))
            >>> w = gc.NewMatrix(g, gc.Float64, gc.WithValue(np.ones((2, 2))))
            >>> y = gc.Mul(x, w); gc.Let(x, np.ones((3, 2))); vm = gc.NewTapeMachine(g)
            >>> vm.run_all(); found = vm.plan.lent_pointers(x)  # None on scipy's BLAS
            >>> found is None or [i for i, _, _ in found] == [0]
            True
        """
        found = self._lendable.get(id(x))
        if found is None or found[0] or id(x) in self._in_place:
            return None
        home = self.arrays[id(x)].ctypes.data
        out: list[tuple[int, Kernel, Any]] = []
        for r in found[1]:
            i = self._step_index.get(id(r))
            if i is None or id(r) in self._accumulated:
                return None
            fn = self.steps[i]
            pointers = getattr(fn, "pointers", None)
            if pointers is None or len(pointers) != len(r.children):
                return None
            for c, p in zip(r.children, pointers):
                if c is x:
                    if p.value != home:
                        return None
                    out.append((i, fn, p))
        return out or None

    def _read_input_from(self, x: Node, src: np.ndarray) -> bool:
        """Rebuild the steps reading input ``x`` (through views too) to read ``src``; with
        the plan's own buffer, restore them. False (and nothing changed) if an op cannot."""
        views, readers = self._lendable[id(x)]
        if src is self.arrays[id(x)]:
            fns, published = self._original
            for r in readers:
                i = self._step_index[id(r)]
                self.steps[i] = fns[i]
            for vn in views:
                j = self._pub_index[id(vn)]
                self._published[j] = published[j]
                vn.slot.publish(published[j][1], published[j][2])
            self._lent.pop(id(x), None)
            self._in_place.discard(id(x))
            return True
        if id(x) in self._in_place and _same_memory(self._lent[id(x)], src):
            # the kernels read that memory already (a new view of the same rows, as a loop
            # predicting one array again makes): nothing to build; the plan keeps the array
            # they were built on, so that memory cannot be freed and reused under them
            return True
        arrays = {id(x): src}
        for vn in views:
            base = arrays.get(id(vn.children[0]), self.arrays[id(vn.children[0])])
            assert vn.op is not None  # a view is an op's result
            view = vn.op.view_of([base, *(self.arrays[id(c)] for c in vn.children[1:])])
            if not np.may_share_memory(view, base):
                return False
            arrays[id(vn)] = view
        new: list[tuple[int, Kernel]] = []
        ctx = self.machine.ctx
        for r in readers:
            assert r.op is not None  # a reader is a step
            xs = [arrays.get(id(c), self.arrays[id(c)]) for c in r.children]
            if id(r) in self._accumulated:
                w = self._accumulate_into[id(r)]
                g = w.slot.grad
                acc = r.op.accumulate_kernel(xs, g, ctx) if g is not None else None
                if acc is None:
                    return False
                new.append((self._step_index[id(r)], w.slot.into_grad(*acc)))
            else:
                new.append((self._step_index[id(r)], r.op.kernel(xs, self.arrays[id(r)], ctx)))
        for i, fn in new:
            self.steps[i] = fn
        for vn in views:
            j = self._pub_index[id(vn)]
            self._published[j] = (vn, arrays[id(vn)], None)
            vn.slot.publish(arrays[id(vn)])
        self._lent[id(x)] = src
        self._in_place.add(id(x))
        return True


def _same_memory(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether ``a`` and ``b`` are the same elements of the same memory: one array, or views
    with one address, shape, strides and dtype."""
    if a is b:
        return True
    return (
        a.shape == b.shape
        and a.strides == b.strides
        and a.dtype == b.dtype
        and a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
    )


def _lent_readers(
    x: Node, order: list[Node], views: set[int], accumulated: set[int]
) -> tuple[list[Node], list[Node]] | None:
    """``(views, readers)`` when every step reading input ``x`` (directly or through view
    nodes) is worth building again on a lent array (ops declaring ``reads_lent``, or an
    accumulation into a gradient); else None."""
    derived = {id(x)}
    found_views: list[Node] = []
    readers: list[Node] = []
    for n in order:
        if n.op is None:
            continue
        if not any(
            id(c) in derived and j not in n.op.shape_only for j, c in enumerate(n.children)
        ):
            continue
        if id(n) in views:
            found_views.append(n)
            derived.add(id(n))
        elif (n.op.rebuildable and n.op.reads_lent) or id(n) in accumulated:
            readers.append(n)
        else:
            return None
    return (found_views, readers) if readers else None


def _watched(n: Node, fn: Kernel, out: np.ndarray, nan: bool, inf: bool) -> Kernel:
    def run() -> None:
        fn()
        if out.dtype.kind != "f":
            return
        if nan and np.isnan(out).any():
            raise NonFiniteError(
                f"NaN watch: {n.describe()} produced NaN from operands "
                + ", ".join(c.describe() for c in n.children)
            )
        if inf and np.isinf(out).any():
            raise NonFiniteError(
                f"Inf watch: {n.describe()} produced Inf from operands "
                + ", ".join(c.describe() for c in n.children)
            )

    return run


def _logged(n: Node, fn: Kernel, out: np.ndarray, direction: str, logger: logging.Logger) -> Kernel:
    def run() -> None:
        fn()
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s %s: %s", direction, n.describe(), summarize(out))

    return run


def summarize(a: np.ndarray) -> str:
    """A one-line summary of an array for logs: shape, and min/mean/max of a float array
    (with the count of non-finite values when there are any).

    Example:
        >>> summarize(np.array([1.0, 2.0, np.nan]))
        'shape (3,) min 1 mean 1.5 max 2 (1 non-finite)'
    """
    if a.dtype.kind not in "fiu" or a.size == 0:
        return f"shape {a.shape} {a.dtype}"
    finite = a[np.isfinite(a)] if a.dtype.kind == "f" else a
    bad = a.size - finite.size
    if finite.size == 0:
        return f"shape {a.shape} all non-finite"
    text = (
        f"shape {a.shape} min {float(finite.min()):.4g} mean {float(finite.mean()):.4g} "
        f"max {float(finite.max()):.4g}"
    )
    return text + (f" ({bad} non-finite)" if bad else "")
