"""The interpreted Lisp machine: evaluates node by node, and differentiates at run time.

No plan, no buffer reuse: every value stays readable. Without a prior ``Grad`` call it
differentiates the graph's scalar cost privately (its gradient nodes never enter the user's
graph) and accumulates gradients into ``node.grad`` of the learnables, like
``BindDualValues`` on the tape machine. It is the reference the tape machine is tested against.

Example:
    >>> import graphcore as gc
    >>> g = gc.NewGraph()
    >>> w = gc.NewVector(g, gc.Float64, gc.WithShape(2), gc.WithName("w"), gc.WithValue([1.0, 3.0]))
    >>> cost = gc.Sum(gc.Square(w))
    >>> m = gc.NewLispMachine(g); m.run_all()
    >>> float(cost.value), w.grad.tolist()
    (10.0, [2.0, 6.0])
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np

from .. import kernels
from ..autodiff import backprop
from ..errors import (
    GraphError,
    MachineBusyError,
    NonFiniteError,
    ShapeError,
    ValueNotAvailableError,
)
from ..graph import Graph, Node, ancestors
from ..ops.base import ExecContext, TypeInfo, building_in
from ..ops.reduce import Sum
from ..values import Let
from .grads import bind_grads
from .options import MachineOpt, parse_machine_opts
from .plan import summarize
from .program import backward_ids, statement_tail, whole_graph

__all__ = ["LispMachine", "NewLispMachine"]


class LispMachine:
    """Interprets a graph eagerly; see the module docs.

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph(); x = gc.NewScalar(g, gc.Float64, gc.WithName("x"), gc.WithValue(2.0))
        >>> y = gc.Exp(x); gc.NewLispMachine(g, gc.ExecuteFwdOnly()).run_all()
        >>> round(float(y.value), 3)
        7.389
    """

    def __init__(self, g: Graph, *opts: MachineOpt) -> None:
        self.graph = g
        self.order: list[Node] = []
        self._running = threading.Lock()
        if not isinstance(g, Graph):
            raise TypeError(f"NewLispMachine: expected a Graph, got {type(g).__name__}")
        o = parse_machine_opts(opts, "NewLispMachine")
        self.order = whole_graph(g, o["bind"]).order
        self.fwd_only: bool = o["fwdonly"]
        self.bwd_only: bool = o["bwdonly"]
        self.nan_watch, self.inf_watch = o["nan"], o["inf"]
        self.logger: logging.Logger | None = o["logger"]
        self.log_direction: str | None = o["logdir"]
        self.ctx = ExecContext(training=o["training"])
        self.ctx.kernels = kernels.backend()  # the backend is chosen once, here
        self.bind: tuple[Node, ...] = o["bind"]
        self._private: list[tuple[Node, Node]] = []  # (wrt, detached gradient node)
        self._fwd: list[Node] = self.order
        self._bwd: list[Node] = []
        self._last: list[Node] = []  # statements and their dependents: run after both passes
        self._bound: list[tuple[Node, Node]] = []
        self._seed: tuple[Node, Any] | None = None
        symbolic = any(n.deriv_of is not None for n in self.order)
        bwd = backward_ids(self.order) if symbolic else set()
        if symbolic:
            self._fwd = [n for n in self.order if id(n) not in bwd]
            self._bwd = [n for n in self.order if id(n) in bwd]
        if self.fwd_only:
            return
        # statements (Set) run after the backward pass too, whose nodes may read what they
        # write: they, and what depends on them, go last (a backward-only run: those of the
        # backward pass)
        tail = statement_tail(self.order)
        self._fwd = [n for n in self._fwd if id(n) not in tail]
        self._bwd = [n for n in self._bwd if id(n) not in tail]
        self._last = [
            n for n in self.order if id(n) in tail and (not self.bwd_only or id(n) in bwd)
        ]
        if symbolic:
            if o["manualgrad"] is not None:
                raise GraphError(
                    "NewLispMachine: WithManualGradient seeds the machine's own "
                    "differentiation, but this graph already has gradient nodes from Grad; "
                    "build the graph without Grad, or use Backpropagate with grad_outputs"
                )
            self._bound = [(w, w.deriv) for w in self.bind]
            missing = [w.name for w in self.bind if w.deriv is None]
            if missing:
                raise GraphError(
                    f"BindDualValues: {missing} have no gradient node; call Grad for them"
                )
            return
        cost = self._find_cost(o["manualgrad"] is not None)
        if o["manualgrad"] is not None:
            cost = self._seeded(cost, o["manualgrad"])
        wrt = list(self.bind) or [
            n for n in ancestors([cost])
            if n.op is None and not n.is_constant and n.dtype.is_float and n.graph is g
        ]
        grads = backprop(cost, wrt, None)
        self._private = list(zip(wrt, grads))
        known = {id(n) for n in self.order}
        self._bwd = [n for n in ancestors(grads) if id(n) not in known]

    def _find_cost(self, manual: bool) -> Node:
        roots = [
            n for n in self.graph.roots()
            if n.dtype.is_float and (manual or n.shape == ()) and not (n.op and n.op.statement)
        ]
        if len(roots) != 1:
            raise GraphError(
                "NewLispMachine: to differentiate, the graph needs exactly one "
                + ("float root (the output to seed)" if manual else "scalar float root (the cost)")
                + f"; found {[n.name for n in roots]}. Use ExecuteFwdOnly() to only run the "
                "forward pass" + ("" if manual else ", or WithManualGradient(g) for a "
                                  "non-scalar output")
            )
        return roots[0]

    def _seeded(self, out: Node, grad: Any) -> Node:
        """A private scalar ``Sum(out * seed)``: its gradient is the vector-Jacobian product
        of ``out`` with the seed (bound before each run from ``grad``)."""
        with building_in(None):
            seed = Node(None, None, (), out.shape, out.dtype, name=f"d{out.name}")
            self._seed = (seed, grad)
            self._bind_seed()
            return Sum(out * seed)

    def _bind_seed(self) -> None:
        assert self._seed is not None
        seed, grad = self._seed
        value = grad.value if isinstance(grad, Node) else grad
        try:
            Let(seed, value)
        except (ShapeError, TypeError) as e:
            raise type(e)(
                f"WithManualGradient: the gradient for the output must fit it: {e}"
            ) from None

    @property
    def training(self) -> bool:
        """Train (True) or eval (False) mode.

        Example:
            >>> import graphcore as gc
            >>> gc.NewLispMachine(gc.NewGraph(), gc.ExecuteFwdOnly()).training
            True
        """
        return self.ctx.training

    @training.setter
    def training(self, on: bool) -> None:
        self.ctx.training = bool(on)

    @property
    def rng(self) -> np.random.Generator:
        """The random generator the machine's ops draw from (dropout masks); assignable.

        Example:
            >>> import numpy as np, graphcore as gc
            >>> m = gc.NewLispMachine(gc.NewGraph(), gc.ExecuteFwdOnly())
            >>> m.rng = np.random.default_rng(0); isinstance(m.rng, np.random.Generator)
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

    def _eval(self, nodes: list[Node], direction: str) -> None:
        log = self.logger if self.log_direction in ("both", direction) else None
        for n in nodes:
            if n.op is None:
                if not n.has_value:
                    raise ValueNotAvailableError(
                        f"{n.describe()} has no value: call Let({n.name}, array) first"
                    )
                continue
            xs = []
            for c in n.children:
                if not c.has_value:
                    raise ValueNotAvailableError(
                        f"{n.describe()} reads {c.describe()}, which has no value: "
                        + ("run the forward pass first (ExecuteBwdOnly reads its values)"
                           if self.bwd_only else f"call Let({c.name}, array) first")
                    )
                xs.append(c.value)
            try:
                n.op.check_bound(
                    [TypeInfo(c.shape, c.dtype, c.name) for c in n.children], [x.shape for x in xs]
                )
                v = n.op.compute(xs, self.ctx)
            except GraphError as e:  # messages from compute name operands #0, #1, ...
                names = ", ".join(f"#{i}={c.name!r}" for i, c in enumerate(n.children))
                raise type(e)(f"{n.describe()} (operands {names}): {e}") from None
            if (self.nan_watch or self.inf_watch) and v.dtype.kind == "f":
                if self.nan_watch and np.isnan(v).any():
                    raise NonFiniteError(f"NaN watch: {n.describe()} produced NaN")
                if self.inf_watch and np.isinf(v).any():
                    raise NonFiniteError(f"Inf watch: {n.describe()} produced Inf")
            n.slot.publish(v)
            if log is not None and log.isEnabledFor(logging.DEBUG):
                log.debug("%s %s: %s", direction, n.describe(), summarize(v))

    def run_all(self) -> None:
        """Evaluate the forward pass, then (unless forward-only) the gradients, which are
        accumulated into the learnables' ``grad`` (an input fed per run gets the gradient for
        its batch instead: overwritten each run).

        Example:
            >>> import graphcore as gc
            >>> gc.NewLispMachine(gc.NewGraph(), gc.ExecuteFwdOnly()).run_all()
        """
        if not self._running.acquire(blocking=False):
            raise MachineBusyError(
                f"{self!r} is already running in another thread; give each thread its own "
                f"machine on its own copy of the graph (g.clone(share=learnables))"
            )
        try:
            self._run()
        finally:
            self._running.release()

    def _run(self) -> None:
        if not self.bwd_only:
            self._eval(self._fwd, "fwd")
        if self.fwd_only:
            return
        if self._seed is not None:
            self._bind_seed()
        self._eval(self._bwd, "bwd")
        pairs = self._private or self._bound
        bind_grads([w for w, _ in pairs])
        for w, d in pairs:
            if None in w.shape:  # fed per run: this batch's gradient
                w.slot.zero_grad()
            g = w.grad
            np.add(g, d.value, out=g)
        self._eval(self._last, "bwd")

    def reset(self) -> None:
        """Kept for porting Gorgonia code; nothing to rewind.

        Example:
            >>> import graphcore as gc
            >>> gc.NewLispMachine(gc.NewGraph(), gc.ExecuteFwdOnly()).reset()
        """

    def close(self) -> None:
        """Nothing to release; kept for symmetry with the tape machine.

        Example:
            >>> import graphcore as gc
            >>> gc.NewLispMachine(gc.NewGraph(), gc.ExecuteFwdOnly()).close()
        """

    def __repr__(self) -> str:
        graph = getattr(self, "graph", None)
        name = graph.name if isinstance(graph, Graph) else "?"
        return f"LispMachine({name!r}, {len(getattr(self, 'order', ()))} nodes)"


def NewLispMachine(g: Graph, *opts: MachineOpt) -> LispMachine:
    """An interpreting machine; differentiates at run time unless ``ExecuteFwdOnly()``.

    Example:
        >>> import graphcore as gc
        >>> gc.NewLispMachine(gc.NewGraph(), gc.ExecuteFwdOnly())
        LispMachine('graph', 0 nodes)
    """
    return LispMachine(g, *opts)
