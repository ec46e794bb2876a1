"""The compiled tape machine: plan once per batch size, then run with no allocations.

Compiling a graph for a concrete set of input shapes gives a :class:`Plan`:

1. order: the nodes in topological order (inputs and constants included);
2. shapes: each op's ``infer`` re-run with concrete sizes (so a free batch dimension binds);
3. liveness: the last step that reads each node's value;
4. buffers: each op writes into a preallocated buffer; buffers of dead temporaries are reused
   (best fit), elementwise ops run in place on an operand that dies at that step, and views
   (transposes, reshapes) share their operand's buffer. Nodes the user can read (inputs,
   learnables, gradients, roots, the watchlist) keep buffers of their own;
5. steps: one prebuilt kernel closure per op, run in order by ``run_all``.

Plans are cached by input shape, so a model built once trains at batch 100 and predicts at 1.

Example:
    >>> import numpy as np, graphcore as gc
    >>> g = gc.NewGraph()
    >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
    >>> y = gc.Sum(gc.Rectify(x), 1)
    >>> vm = gc.NewTapeMachine(g)
    >>> gc.Let(x, np.array([[1.0, -1.0]])); vm.run_all(); y.value.tolist()
    [1.0]
    >>> gc.Let(x, np.ones((3, 2))); vm.run_all(); y.value.tolist()
    [2.0, 2.0, 2.0]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .. import kernels
from ..errors import GraphError, NonFiniteError, ShapeError, ValueNotAvailableError
from ..graph import Graph, Node, _Clobbered, ancestors
from ..ops.base import ExecContext, Kernel, TypeInfo
from ..shapes import fmt_shape, size_of
from .arena import bind_grads
from .options import MachineOpt, parse_machine_opts

__all__ = ["TapeMachine", "NewTapeMachine", "Plan"]


class _Storage:
    __slots__ = ("flat", "last", "protected", "writers")

    def __init__(self, flat: np.ndarray, protected: bool) -> None:
        self.flat = flat
        self.last = -1
        self.protected = protected
        self.writers: list[Node] = []


class _FreePool:
    """Dead buffers by (dtype, size): exact sizes are found at once, else the best larger fit."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, int], list[_Storage]] = {}
        self._ids: set[int] = set()

    def put(self, st: _Storage) -> None:
        if id(st) in self._ids:
            return
        self._ids.add(id(st))
        self._by_key.setdefault((st.flat.dtype.str, st.flat.size), []).append(st)

    def take(self, size: int, dtype: np.dtype) -> _Storage | None:
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
        st = bucket.pop()
        self._ids.discard(id(st))
        return st


class Plan:
    """A compiled program for one set of concrete input shapes.

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph(); x = gc.NewScalar(g, gc.Float64, gc.WithName("x"), gc.WithValue(2.0))
        >>> y = gc.Square(x); vm = gc.NewTapeMachine(g); vm.run_all()
        >>> vm.plan.n_steps
        1
    """

    def __init__(self, machine: TapeMachine) -> None:
        self.machine = machine
        machine.ctx.kernels = kernels.backend()  # the backend is chosen once per plan
        order = machine.order
        pos = {id(n): i for i, n in enumerate(order)}
        # --- concrete shapes -----------------------------------------------------------------
        shapes: dict[int, tuple[int, ...]] = {}
        for n in order:
            if n.op is None:
                shapes[id(n)] = n._value.shape
                continue
            ins = [TypeInfo(shapes[id(c)], c.dtype, c.name) for c in n.children]
            try:
                shape, _ = n.op.infer(ins)
                n.op.check_bound(
                    [TypeInfo(c.shape, c.dtype, c.name) for c in n.children],
                    [shapes[id(c)] for c in n.children],
                )
            except ShapeError as e:
                raise ShapeError(
                    "with the input shapes bound now ("
                    + ", ".join(f"{i.name} {fmt_shape(i.value.shape)}" for i in machine.free_inputs)
                    + f"), node {n.name!r} fails: {e}"
                ) from None
            shapes[id(n)] = tuple(shape)
        self.shapes = shapes
        # --- liveness -------------------------------------------------------------------------
        last_read = {id(n): pos[id(n)] for n in order}
        for n in order:
            if n.op is None:
                continue
            skip = n.op.shape_only
            for j, c in enumerate(n.children):
                if j not in skip:
                    last_read[id(c)] = max(last_read[id(c)], pos[id(n)])
        protected = machine.protected_ids
        # --- buffers --------------------------------------------------------------------------
        arrays: dict[int, np.ndarray] = {}
        storage_of: dict[int, _Storage] = {}
        version: dict[int, int] = {}
        free = _FreePool()
        all_storages: list[_Storage] = []
        steps: list[tuple[Node, Callable[[], None]]] = []
        noreuse = machine.noreuse
        self._fused_ids: set[int] = set()
        anchor: dict[int, Node | None] = {}
        view_ids: set[int] = set()

        def assign(n: Node, arr: np.ndarray, st: _Storage, write: bool) -> None:
            arrays[id(n)] = arr
            storage_of[id(n)] = st
            if write:
                st.writers.append(n)
            version[id(n)] = len(st.writers)
            lr = last_read[id(n)]
            if lr > st.last:
                st.last = lr

        def new_storage(size: int, dtype: np.dtype, prot: bool) -> _Storage:
            if not prot:
                st = free.take(size, dtype)
                if st is not None:
                    return st
            st = _Storage(np.empty(max(size, 1), dtype), prot)
            all_storages.append(st)
            return st

        # A learnable's gradient read by nothing else, made by an op that can accumulate
        # (a weight gradient is a matrix product, a bias gradient a sum over the batch: BLAS
        # with beta=1), is added straight into w.grad: no buffer, no extra pass.
        fuse: dict[int, Node] = {}
        for w in machine.bind:
            d = machine.derivs[id(w)]
            if (
                d.op is not None
                and id(d) not in protected
                and last_read[id(d)] == pos[id(d)]
                and sum(1 for v in machine.bind if machine.derivs[id(v)] is d) == 1
            ):
                fuse[id(d)] = w

        for i, n in enumerate(order):
            if n.op is None:
                v = n._value
                if n._borrowed:  # the caller's array: the plan needs a buffer of its own
                    v = np.empty_like(v)
                st = _Storage(v, True)
                assign(n, v, st, True)
                continue
            if id(n) in fuse:
                xs = [arrays[id(c)] for c in n.children]
                w = fuse[id(n)]
                acc = n.op.accumulate_kernel(xs, w._grad, machine.ctx)
                if acc is not None:
                    st = _Storage(w._grad, True)
                    assign(n, w._grad, st, True)
                    steps.append((n, _into_grad(w, *acc)))
                    self._fused_ids.add(id(n))
                    self._free_dead(n, i, storage_of, free)
                    continue
            xs = [arrays[id(c)] for c in n.children]
            shape = shapes[id(n)]
            dtype = n.dtype.np
            prot = id(n) in protected or noreuse
            view = n.op.view_of(xs) if n.op.view and not prot else None
            # a view op may have to copy (reshaping a transposed view): then it needs a buffer
            if view is not None and np.may_share_memory(view, xs[0]):
                assign(n, view, storage_of[id(n.children[0])], False)
                view_ids.add(id(n))
                # a view is ready once the last step before it ran
                anchor[id(n)] = steps[-1][0] if steps else None
            else:
                target = None
                if n.op.inplace and not prot and not noreuse:
                    c0 = n.children[0]
                    s0 = storage_of[id(c0)]
                    a0 = xs[0]
                    if (
                        not s0.protected
                        and s0.last == i
                        and a0.shape == shape
                        and a0.dtype == dtype
                        and a0.flags.c_contiguous
                        and all(
                            storage_of[id(c)] is not s0
                            or (x.__array_interface__ == a0.__array_interface__)
                            for c, x in zip(n.children[1:], xs[1:])
                        )
                    ):
                        target = (a0, s0)
                if target is None:
                    st = new_storage(size_of(shape), dtype, prot)
                    arr = st.flat[: size_of(shape)].reshape(shape)
                    target = (arr, st)
                arr, st = target
                assign(n, arr, st, True)
                try:
                    fn = n.op.kernel(xs, arr, machine.ctx)
                except Exception as e:  # a kernel factory failing is a bug in that op
                    raise GraphError(f"cannot compile {n.describe()}: {e}") from e
                steps.append((n, fn))
            self._free_dead(n, i, storage_of, free)
        self.arrays = arrays
        self.fused = len(self._fused_ids)
        self.nbytes = sum(s.flat.nbytes for s in all_storages)
        # --- which values stay readable -------------------------------------------------------
        self._published: list[tuple[Node, Any]] = []
        for n in order:
            if n.op is None:
                continue
            st = storage_of[id(n)]
            if id(n) in self._fused_ids:
                w = fuse[id(n)]
                self._published.append(
                    (n, _Clobbered(f"accumulation into {w.name}.grad (read {w.name}.grad)"))
                )
            elif version[id(n)] == len(st.writers):
                self._published.append((n, arrays[id(n)]))
            else:
                clobberer = st.writers[version[id(n)]]
                self._published.append((n, _Clobbered(clobberer.describe())))
        # --- gradient accumulation (BindDualValues) -------------------------------------------
        accum_after: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
        pre: list[Callable[[], None]] = []
        for w in machine.bind:
            d = machine.derivs[id(w)]
            if id(d) in self._fused_ids:
                continue
            src = arrays[id(d)]
            at = anchor.get(id(d), d) if d.op is not None else None
            if at is None:
                pre.append(_accum(w, src))
            else:
                accum_after.setdefault(id(at), []).append((w, src))
        fns: list[Callable[[], None]] = list(pre)
        watch_nan, watch_inf = machine.nan_watch, machine.inf_watch
        fn_index: dict[int, int] = {}
        for n, fn in steps:
            if watch_nan or watch_inf:
                fn = _watched(n, fn, arrays[id(n)], watch_nan, watch_inf)
            fn_index[id(n)] = len(fns)
            fns.append(fn)
            for w, src in accum_after.get(id(n), ()):
                fns.append(_accum(w, src))
        self.steps = fns
        self.n_steps = len(steps)
        self.inputs = [(n, arrays[id(n)]) for n in order if n.op is None and not n.is_constant]
        # --- inputs the products can read in place (Let(x, data, copy=False)) ---------------
        self._fuse, self._fn_index = fuse, fn_index
        self._pub_index = {id(n): i for i, (n, _) in enumerate(self._published)}
        self._orig = (list(fns), list(self._published))
        self._lendable: dict[int, tuple[list[Node], list[Node]]] = {}
        self._lent: dict[int, np.ndarray] = {}
        self._unread = {id(n) for n in order if n.op is not None and last_read[id(n)] == pos[id(n)]}
        self._unread -= {id(d) for d in machine.derivs.values()}  # read by w.grad's accumulation
        self._view_ids = view_ids
        self._watched = watch_nan or watch_inf
        if not (watch_nan or watch_inf):
            for x in machine.free_inputs:
                found = _rebuildable_readers(x, order, view_ids, self._fused_ids)
                if found is not None:
                    self._lendable[id(x)] = found

    @staticmethod
    def _free_dead(n: Node, i: int, storage_of: dict[int, _Storage], free: _FreePool) -> None:
        """Return to the pool the buffers whose last reader is step ``i``."""
        for c in n.children:
            sc = storage_of[id(c)]
            if not sc.protected and sc.last == i:
                free.put(sc)
        sn = storage_of[id(n)]
        if not sn.protected and sn.last == i:
            free.put(sn)  # a value nobody reads (possible in a subgraph)

    def publish(self) -> None:
        """Point every op node's ``value`` at this plan's buffers (or mark it clobbered)."""
        for n, v in self._published:
            n._value = v

    def bind_inputs(self) -> None:
        """Copy each input's value into the plan's buffer, or, for an array lent with
        ``Let(..., copy=False)`` to an input only matrix products read, point them at it."""
        for n, arr in self.inputs:
            v = n._value
            lent = self._lent.get(id(n))
            if v is arr:
                if lent is not None:
                    self._read_inputs_from(n, arr)
                continue
            if (
                n._borrowed
                and id(n) in self._lendable
                and v.shape == arr.shape
                and v.dtype == arr.dtype
                and v.flags.c_contiguous
                and self._read_inputs_from(n, v)
            ):
                continue
            np.copyto(arr, v)
            n._value = arr
            n._borrowed = False
            if self._lent.get(id(n)) is not None:
                self._read_inputs_from(n, arr)

    def redirect(self, node: Node, dest: np.ndarray) -> Callable[[], None] | None:
        """Make the step computing ``node`` write into ``dest`` (its shape and dtype); return
        the undo, or None where that is not safe (the caller then copies the value).

        Only a result nothing else reads (a bound gradient is read by ``w.grad``'s
        accumulation), made by an elementwise, product or softmax op from op results (not
        inputs or views) that ``dest`` does not overlap, and without NaN/Inf watches.
        """
        i = self._fn_index.get(id(node))
        if (
            i is None
            or self._watched
            or id(node) in self._fused_ids
            or id(node) not in self._unread
            or not node.op.rebuildable
            or any(c.op is None or id(c) in self._view_ids for c in node.children)
        ):
            return None
        xs = [self.arrays[id(c)] for c in node.children]
        if any(np.may_share_memory(dest, x) for x in xs):
            return None
        old_fn, j = self.steps[i], self._pub_index[id(node)]
        old_pub = self._published[j]
        self.steps[i] = node.op.kernel(xs, dest, self.machine.ctx)
        self._published[j] = (node, dest)
        node._value = dest

        def undo() -> None:
            self.steps[i] = old_fn
            self._published[j] = old_pub

        return undo

    def _read_inputs_from(self, x: Node, src: np.ndarray) -> bool:
        """Rebuild the steps reading input ``x`` (through views too) to read ``src``; with
        the plan's own buffer, restore them. False (and nothing changed) if BLAS cannot."""
        if src is self.arrays[id(x)]:
            fns, published = self._orig
            views, readers = self._lendable[id(x)]
            for r in readers:
                i = self._fn_index[id(r)]
                self.steps[i] = fns[i]
            for vn in views:
                j = self._pub_index[id(vn)]
                self._published[j] = published[j]
                vn._value = published[j][1]
            self._lent.pop(id(x), None)
            return True
        if self._lent.get(id(x)) is src:
            return True
        views, readers = self._lendable[id(x)]
        arrays = {id(x): src}
        for vn in views:
            base = arrays.get(id(vn.children[0]), self.arrays[id(vn.children[0])])
            view = vn.op.view_of([base, *(self.arrays[id(c)] for c in vn.children[1:])])
            if not np.may_share_memory(view, base):
                return False
            arrays[id(vn)] = view
        new: list[tuple[int, Callable[[], None]]] = []
        for r in readers:
            xs = [arrays.get(id(c), self.arrays[id(c)]) for c in r.children]
            if id(r) in self._fused_ids:
                w = self._fuse[id(r)]
                acc = r.op.accumulate_kernel(xs, w._grad, self.machine.ctx)
                if acc is None:
                    return False
                new.append((self._fn_index[id(r)], _into_grad(w, *acc)))
            else:
                fn = r.op.kernel(xs, self.arrays[id(r)], self.machine.ctx)
                new.append((self._fn_index[id(r)], fn))
        for i, fn in new:
            self.steps[i] = fn
        for vn in views:
            j = self._pub_index[id(vn)]
            self._published[j] = (vn, arrays[id(vn)])
            vn._value = arrays[id(vn)]
        self._lent[id(x)] = src
        return True

    def run(self) -> None:
        for fn in self.steps:
            fn()


def _check_into(node: Node, dest: Any, plan: Plan) -> None:
    shape = plan.shapes.get(id(node)) if isinstance(node, Node) else None
    if shape is None:
        raise GraphError(f"run_all(into=...): {node!r} is not a node this machine runs")
    if (
        not isinstance(dest, np.ndarray)
        or dest.shape != shape
        or dest.dtype != node.dtype.np
        or not dest.flags.writeable
    ):
        got = (f"{type(dest).__name__} {getattr(dest, 'shape', '')} "
               f"{getattr(dest, 'dtype', '')}").strip()
        raise ValueError(
            f"run_all(into=...): {node.describe()} needs a writeable {node.dtype.np} array of "
            f"shape {shape} (bound now), got {got}"
        )


def _rebuildable_readers(
    x: Node, order: list[Node], view_ids: set[int], fused_ids: set[int]
) -> tuple[list[Node], list[Node]] | None:
    """``(views, readers)`` when every step reading input ``x`` (directly or through view
    nodes) is worth building again on a lent array (ops declaring ``reads_lent``, or an
    accumulation into a gradient); else None."""
    derived = {id(x)}
    views: list[Node] = []
    readers: list[Node] = []
    for n in order:
        if n.op is None:
            continue
        if not any(
            id(c) in derived and j not in n.op.shape_only for j, c in enumerate(n.children)
        ):
            continue
        if id(n) in view_ids:
            views.append(n)
            derived.add(id(n))
        elif (n.op.rebuildable and n.op.reads_lent) or id(n) in fused_ids:
            readers.append(n)
        else:
            return None
    return (views, readers) if readers else None


def _into_grad(w: Node, over: Kernel, add: Kernel) -> Kernel:
    """Run ``over`` (write) if a solver zeroed ``w.grad`` lazily since the last run, else
    ``add``.
    """

    def run() -> None:
        if w._grad_zeroed:
            over()
            w._grad_zeroed = False
        else:
            add()

    return run


def _accum(w: Node, src: np.ndarray) -> Callable[[], None]:
    """``w.grad += src`` (or ``= src`` after a lazy zeroing)."""
    g = w._grad
    return _into_grad(w, lambda: np.copyto(g, src), lambda: np.add(g, src, out=g))


def _watched(
    n: Node, fn: Callable[[], None], out: np.ndarray, nan: bool, inf: bool
) -> Callable[[], None]:
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


class TapeMachine:
    """Runs a graph compiled to a tape of kernels; see the module docs.

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph(); x = gc.NewScalar(g, gc.Float64, gc.WithName("x"), gc.WithValue(3.0))
        >>> y = gc.Square(x); vm = gc.NewTapeMachine(g); vm.run_all(); float(y.value)
        9.0
        >>> vm.max_plans  # compiled plans kept, one per set of input shapes
        8
    """

    def __init__(self, g: Graph, *opts: MachineOpt) -> None:
        if not isinstance(g, Graph):
            raise TypeError(f"NewTapeMachine: expected a Graph, got {type(g).__name__}")
        o = parse_machine_opts(opts, "NewTapeMachine")
        self.graph = g
        bind_opts: tuple[Node, ...] = o["bind"]
        # the gradients of bound nodes run even when g is a subgraph of the forward pass only
        self.order: list[Node] = ancestors(
            [*g.nodes, *(w.deriv for w in bind_opts if w.deriv is not None)]
        )
        in_order = {id(n) for n in self.order}
        self.bind: tuple[Node, ...] = o["bind"]
        for w in self.bind:
            if w.deriv is None or id(w.deriv) not in in_order:
                raise GraphError(
                    f"BindDualValues: {w.describe()} has no gradient node in this graph; "
                    f"call Grad(cost, {w.name}, ...) before building the machine"
                )
            if not w.has_value:
                raise GraphError(f"BindDualValues: {w.describe()} has no value yet")
        bind_grads(self.bind)
        self.watch = o["watch"]
        self.nan_watch: bool = o["nan"]
        self.inf_watch: bool = o["inf"]
        self.noreuse: bool = o["noreuse"]
        self.ctx = ExecContext(training=o["training"])
        # the gradient nodes as they are now: a later Grad call must not rewire this machine
        self.derivs: dict[int, Node] = {id(w): w.deriv for w in self.bind}
        bound_derivs = {id(d) for d in self.derivs.values()}
        roots = {id(n) for n in g.roots()}
        prot = {id(n) for n in self.watch} | roots
        for n in self.order:
            if n.deriv_of is not None and id(n) not in bound_derivs:
                prot.add(id(n))
        prot -= bound_derivs - {id(n) for n in self.watch}
        self.protected_ids = prot
        self.free_inputs = [
            n for n in self.order if n.op is None and not n.is_constant and None in n.shape
        ]
        self._inputs = [n for n in self.order if n.op is None and not n.is_constant]
        self._plans: dict[tuple[Any, ...], Plan] = {}
        self.plan: Plan | None = None
        self._closed = False

    #: How many compiled plans (one per set of input shapes: full batches, the last partial
    #: batch, prediction batches) a machine keeps; beyond it the least recently run is dropped
    #: and recompiled (milliseconds) when its shapes come back. The plan being run is always
    #: kept, so 0 or 1 both mean "only the current one".
    max_plans: int = 8

    @property
    def training(self) -> bool:
        """Train (True) or eval (False) mode, read by dropout and batch norm at run time.

        Example:
            >>> import graphcore as gc
            >>> vm = gc.NewTapeMachine(gc.NewGraph()); vm.training = False; vm.training
            False
        """
        return self.ctx.training

    @training.setter
    def training(self, on: bool) -> None:
        self.ctx.training = bool(on)

    @property
    def rng(self) -> np.random.Generator:
        """The random generator the machine's ops draw from (dropout masks); assign one to
        make the draws of a run reproducible.

        Example:
            >>> import numpy as np, graphcore as gc
            >>> vm = gc.NewTapeMachine(gc.NewGraph()); vm.rng = np.random.default_rng(0)
            >>> isinstance(vm.rng, np.random.Generator)
            True
        """
        return self.ctx.generator()

    @rng.setter
    def rng(self, generator: np.random.Generator) -> None:
        if not isinstance(generator, np.random.Generator):
            raise TypeError(
                f"rng must be a numpy Generator (np.random.default_rng(seed)), got "
                f"{type(generator).__name__}"
            )
        self.ctx.rng = generator

    def publish(self) -> None:
        """Point every op node's ``value`` at this machine's results of its last run.

        Node values are shared by the machines that run a graph: after another machine ran
        (an evaluation machine on the training graph), call it before reading values this
        machine computed. ``run_all`` publishes too.

        Example:
            >>> import graphcore as gc
            >>> g = gc.NewGraph(); x = gc.NewScalar(g, gc.Float64, gc.WithValue(2.0))
            >>> y = gc.Square(x); a, b = gc.NewTapeMachine(g), gc.NewTapeMachine(g)
            >>> a.run_all(); b.run_all(); a.publish(); float(y.value)
            4.0
        """
        if self.plan is not None:
            self.plan.publish()

    def _key(self) -> tuple[Any, ...]:
        for n in self._inputs:
            if not isinstance(n._value, np.ndarray):
                raise ValueNotAvailableError(
                    f"{n.describe()} has no value: call Let({n.name}, array) before "
                    f"run_all(), or run only the part of the graph you need with "
                    f"NewTapeMachine(g.subgraph_roots(cost, ...), ...)"
                )
        return tuple(n._value.shape for n in self.free_inputs)

    def run_all(self, into: Mapping[Node, np.ndarray] | None = None) -> None:
        """Run every op of the graph once (forward, then gradients if ``Grad`` added them).

        ``into`` maps result nodes to arrays of their shape and dtype to fill: where it is
        safe the node's step writes there directly (no copy of, say, a 10,000-row
        prediction), else the value is copied there after the run. The node's ``value`` is
        then that array until the next run.

        Example:
            >>> import numpy as np, graphcore as gc
            >>> g = gc.NewGraph(); x = gc.NewVector(g, gc.Float64, gc.WithShape(None))
            >>> y = gc.Square(x); gc.Let(x, [1.0, 2.0]); res = np.empty(2)
            >>> gc.NewTapeMachine(g).run_all(into={y: res}); res.tolist()
            [1.0, 4.0]
        """
        if self._closed:
            raise GraphError("this machine was closed; build a new one")
        key = self._key()
        plan = self._plans.pop(key, None)
        if plan is None:
            plan = Plan(self)
            while self._plans and len(self._plans) >= self.max_plans:
                del self._plans[next(iter(self._plans))]  # the least recently run
        self._plans[key] = plan  # most recently run last
        # publish every run: another machine over the same nodes may have pointed them elsewhere
        plan.publish()
        self.plan = plan
        plan.bind_inputs()
        if not into:
            for fn in plan.steps:
                fn()
            return
        for node, dest in into.items():
            _check_into(node, dest, plan)
        undo, copies = [], []
        try:
            for node, dest in into.items():
                u = plan.redirect(node, dest) if dest.flags.c_contiguous else None
                if u is None:
                    copies.append((node, dest))
                else:
                    undo.append(u)
            for fn in plan.steps:
                fn()
        finally:
            for u in undo:
                u()
        for node, dest in copies:
            np.copyto(dest, node.value)

    def reset(self) -> None:
        """Kept for porting Gorgonia code: ``run_all`` always starts from the first step.

        Example:
            >>> import graphcore as gc
            >>> gc.NewTapeMachine(gc.NewGraph()).reset()
        """

    def close(self) -> None:
        """Release the machine's buffers; op node values become unavailable.

        Example:
            >>> import graphcore as gc
            >>> gc.NewTapeMachine(gc.NewGraph()).close()
        """
        if self.plan is not None:
            for n, _ in self.plan._published:
                n._value = None
        self._plans.clear()
        self.plan = None
        self._closed = True

    def __enter__(self) -> TapeMachine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"TapeMachine({self.graph.name!r}, {len(self.order)} nodes, "
            f"{len(self._plans)} plan(s), training={self.training})"
        )


def NewTapeMachine(g: Graph, *opts: MachineOpt) -> TapeMachine:
    """Compile ``g`` for the tape machine; options: ``BindDualValues``, ``WithWatchlist``, ...

    Example:
        >>> import graphcore as gc
        >>> gc.NewTapeMachine(gc.NewGraph())
        TapeMachine('graph', 0 nodes, 0 plan(s), training=True)
    """
    return TapeMachine(g, *opts)
