"""The compiled tape machine: plan once per batch size, then run with no allocations.

Compiling a graph for a concrete set of input shapes gives a :class:`~graphcore.machines.plan.Plan`
(the passes: :mod:`~graphcore.machines.schedule` for the order, the concrete shapes and
liveness; :mod:`~graphcore.machines.memory` for buffers: reuse of dead temporaries, in-place
elementwise ops, views; :mod:`~graphcore.machines.grads` for bound gradients). Nodes the user
can read (inputs, learnables, gradients, roots, the watchlist) keep buffers of their own.
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

import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import GraphError, MachineBusyError, ValueNotAvailableError
from ..graph import Graph, Node
from ..ops.base import ExecContext
from .function import TapeFunction
from .grads import bind_grads
from .options import MachineOpt, parse_machine_opts
from .plan import Plan
from .program import Program, backward_pass, forward_pass, whole_graph

__all__ = ["TapeMachine", "NewTapeMachine", "Plan"]


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
        self.graph = g
        self._plans: dict[tuple[Any, ...], Plan] = {}
        self.plan: Plan | None = None
        self._closed = False
        self._running = threading.Lock()
        if not isinstance(g, Graph):
            raise TypeError(f"NewTapeMachine: expected a Graph, got {type(g).__name__}")
        o = parse_machine_opts(opts, "NewTapeMachine")
        bound: tuple[Node, ...] = o["bind"]
        program: Program = o["precompiled"] or whole_graph(g, bound)
        kept: set[int] = set()
        if o["fwdonly"]:
            program, kept = forward_pass(program)
        elif o["bwdonly"]:
            program = backward_pass(program)
            if not any(n.deriv_of is not None for n in program.order):
                raise GraphError(
                    "ExecuteBwdOnly: the graph has no gradient nodes to run; call "
                    "Grad(cost, ...) first"
                )
        self.program = program
        self.order: list[Node] = program.order
        self.given: set[int] = program.given
        in_order = {id(n) for n in self.order}
        self.bind = bound
        derivs: dict[int, Node] = {}
        for w in bound:
            d = w.deriv
            if d is None or id(d) not in in_order:
                raise GraphError(
                    f"BindDualValues: {w.describe()} has no gradient node in this "
                    f"{'program' if o['precompiled'] else 'graph'}; call Grad(cost, {w.name}, "
                    f"...) before building the machine"
                )
            if w.op is not None:
                raise GraphError(
                    f"BindDualValues: {w.describe()} is not an input node; bind learnables or "
                    f"inputs (read an op node's gradient as its gradient node's value)"
                )
            derivs[id(w)] = d
        # inputs fed per run (no value yet, or a free batch dimension) get a gradient buffer
        # per plan, overwritten by each run; learnables accumulate until a solver zeroes them
        self.fed = tuple(w for w in bound if not w.has_value or None in w.shape)
        bind_grads([w for w in bound if w not in self.fed])
        self.watch = o["watch"]
        outside = [n.name for n in self.watch if id(n) not in in_order]
        if outside:
            raise GraphError(
                f"WithWatchlist: {outside} are not run by this machine (they are not in the "
                f"graph or program it was given), so they would never get a value; build the "
                f"machine on a graph that holds them, e.g. g.subgraph_roots(..., {outside[0]})"
            )
        self.nan_watch: bool = o["nan"]
        self.inf_watch: bool = o["inf"]
        self.noreuse: bool = o["noreuse"] or o["trace"]
        self.logger: logging.Logger | None = o["logger"]
        self.log_direction: str | None = o["logdir"]
        self.ctx = ExecContext(training=o["training"])
        # the gradient nodes as they are now: a later Grad call must not rewire this machine
        self.derivs = derivs
        bound_derivs = {id(d) for d in self.derivs.values()}
        outputs = program.outputs or g.roots()
        pinned = {id(n) for n in self.watch} | {id(n) for n in outputs} | kept
        for n in self.order:
            if n.deriv_of is not None and id(n) not in bound_derivs:
                pinned.add(id(n))
        pinned -= bound_derivs - {id(n) for n in self.watch}
        self.protected_ids = pinned
        self.free_inputs = [
            n for n in self.order
            if (n.op is None and not n.is_constant and None in n.shape) or id(n) in self.given
        ]
        self._inputs = [
            n for n in self.order if (n.op is None and not n.is_constant) or id(n) in self.given
        ]
        self._free_slots = [n.slot for n in self.free_inputs]
        self._plan_key: tuple[Any, ...] | None = None  # the input shapes of self.plan

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

    def _check_inputs(self) -> None:
        """Raise ``ValueNotAvailableError`` naming the first input this machine reads that has
        no value (``run_all`` checks before compiling a plan, and whenever one is missing)."""
        for n in self._inputs:
            if not n.has_value:
                if id(n) in self.given:
                    raise ValueNotAvailableError(
                        f"{n.describe()} is read by this machine's program, which does not "
                        f"compute it: run the forward pass first (a machine built with "
                        f"ExecuteFwdOnly() keeps the values a backward-only machine reads), or "
                        f"set it with UnsafeLet"
                    )
                raise ValueNotAvailableError(
                    f"{n.describe()} has no value: call Let({n.name}, array) before "
                    f"run_all(), or run only the part of the graph you need with "
                    f"NewTapeMachine(g.subgraph_roots(cost, ...), ...)"
                )

    def _key(self) -> tuple[Any, ...]:
        try:
            # a slot without a value (None) raises AttributeError: handled below, off the hot path
            return tuple([s.value.shape for s in self._free_slots])  # type: ignore[union-attr]
        except AttributeError:  # an input without a value
            self._check_inputs()
            raise

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
        if not self._running.acquire(blocking=False):
            raise MachineBusyError(
                f"{self!r} is already running in another thread: a machine holds one set of "
                f"buffers and runs one thread at a time. Give each thread its own machine on "
                f"its own copy of the graph (g.clone(share=learnables))"
            )
        try:
            self._run(into)
        finally:
            self._running.release()

    def _run(self, into: Mapping[Node, np.ndarray] | None) -> None:
        key = self._key()
        plan = self.plan
        if plan is None or key != self._plan_key:  # not the plan of the last run
            plan = self._switch_plan(key)
        # another machine over the same nodes may have pointed them elsewhere since
        plan.republish()
        plan.bind_inputs()
        if plan._fed_grads:
            plan.bind_fed_grads()
        if not into:
            for fn in plan.steps:
                fn()
            return
        small = plan.copy_below
        specs = plan.into_specs
        for node, dest in into.items():
            spec = specs.get(node)
            if (
                spec is None
                or type(dest) is not np.ndarray
                or dest.shape != spec[0]
                or dest.dtype != spec[1]
                or dest.nbytes > small
                or not dest.flags.writeable
            ):
                self._run_into(plan, into)  # redirects, or raises naming what is wrong
                return
        for fn in plan.steps:
            fn()
        # a few rows are copied: cheaper than building the last step again, and undoing it
        self._copy_results(plan, into.items())

    def _switch_plan(self, key: tuple[Any, ...]) -> Plan:
        """The plan for input shapes ``key``: cached, or compiled now."""
        self._check_inputs()
        plan = self._plans.pop(key, None)
        if plan is None:
            plan = Plan(self)
            while self._plans and len(self._plans) >= self.max_plans:
                del self._plans[next(iter(self._plans))]  # the least recently run
        self._plans[key] = plan  # most recently run last
        self._plan_key = key
        self.plan = plan
        self.ctx.kernels = plan.kernels
        return plan

    def _run_into(self, plan: Plan, into: Mapping[Node, np.ndarray]) -> None:
        """The steps, writing results of more than ``Plan.copy_below`` bytes straight into
        their ``into`` arrays where that is safe; the rest are copied after the run."""
        for node, dest in into.items():
            _check_into(node, dest, plan)
        undo, copies, moved = [], [], []
        small = plan.copy_below
        try:
            for node, dest in into.items():
                u = (
                    plan.redirect(node, dest)
                    if dest.nbytes > small and dest.flags.c_contiguous
                    else None
                )
                if u is None:
                    copies.append((node, dest))
                else:
                    undo.append(u)
                    moved.append(node)
            for fn in plan.steps:
                fn()
        finally:
            for u in undo:
                u()
        if moved:
            plan.published_elsewhere(moved)
        self._copy_results(plan, copies)

    @staticmethod
    def _copy_results(plan: Plan, copies: Iterable[tuple[Node, np.ndarray]]) -> None:
        published = plan._pub_index
        moved = []
        for node, dest in copies:
            src = node.slot.value
            # same shape and dtype (checked): a[...] = b is half the call cost of np.copyto
            dest[...] = src if src is not None else node.value  # node.value: why it's gone
            if id(node) in published:  # a result, as if redirected: dest until the next run
                node.slot.publish(dest)  # (never an input's: Let would write into dest)
                moved.append(node)
        if moved:
            plan.published_elsewhere(moved)

    def function(
        self, inputs: Node | Sequence[Node], outputs: Node | Sequence[Node]
    ) -> TapeFunction:
        """This machine as a function from ``inputs`` to ``outputs``: ``f(*arrays, out=None)``
        lends the arrays to the inputs, runs the machine, and returns the outputs (written
        into ``out`` when given); see :class:`~graphcore.machines.function.TapeFunction`.

        The fastest way to predict batch by batch: the nodes are checked once, here.

        Example:
            >>> import numpy as np, graphcore as gc
            >>> g = gc.NewGraph(); x = gc.NewVector(g, gc.Float64, gc.WithShape(None))
            >>> y = gc.Square(x); f = gc.NewTapeMachine(g).function(x, y)
            >>> f(np.array([1.0, 3.0])).tolist()
            [1.0, 9.0]
        """
        return TapeFunction(self, inputs, outputs)

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
            for n, _, _ in self.plan._published:
                n.slot.clear()
        self._plans.clear()
        self.plan = None
        self._closed = True

    def __enter__(self) -> TapeMachine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        # robust when the constructor raised early (a traceback's locals show the object)
        graph = getattr(self, "graph", None)
        name = graph.name if isinstance(graph, Graph) else "?"
        ctx = getattr(self, "ctx", None)
        training = ctx.training if ctx is not None else "?"
        return (
            f"TapeMachine({name!r}, {len(getattr(self, 'order', ()))} nodes, "
            f"{len(getattr(self, '_plans', {}))} plan(s), training={training})"
        )


def NewTapeMachine(g: Graph, *opts: MachineOpt) -> TapeMachine:
    """Compile ``g`` for the tape machine; options: ``BindDualValues``, ``WithWatchlist``, ...

    Example:
        >>> import graphcore as gc
        >>> gc.NewTapeMachine(gc.NewGraph())
        TapeMachine('graph', 0 nodes, 0 plan(s), training=True)
    """
    return TapeMachine(g, *opts)
