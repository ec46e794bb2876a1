"""Options for ``NewTapeMachine`` and ``NewLispMachine``, and which machine honours which.

Every option is honoured by both machines, or refused by one with an error saying what to
use instead (the table ``SUPPORTED``); contradictory pairs (``ExecuteFwdOnly`` with
``BindDualValues``, say) are refused too, so an option is never accepted and then ignored.

Example:
    >>> import graphcore as gc
    >>> g = gc.NewGraph(); w = gc.NewScalar(g, gc.Float64, gc.WithName("w"), gc.WithValue(1.0))
    >>> c = gc.Square(w); _ = gc.Grad(c, w)
    >>> vm = gc.NewTapeMachine(g, gc.BindDualValues(w), gc.WithNaNWatch())
    >>> gc.NewTapeMachine(g, gc.WithManualGradient([1.0]))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    graphcore.errors.GraphError: NewTapeMachine does not take WithManualGradient: ...
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..errors import GraphError
from ..graph import Node
from ..options import Option

if TYPE_CHECKING:  # pragma: no cover
    from .program import Program

__all__ = [
    "MachineOpt",
    "BindDualValues",
    "WithWatchlist",
    "WithNaNWatch",
    "WithInfWatch",
    "EvalMode",
    "TrainMode",
    "ExecuteFwdOnly",
    "ExecuteBwdOnly",
    "WithNoBufferReuse",
    "TraceExec",
    "WithManualGradient",
    "WithLogger",
    "LogFwd",
    "LogBwd",
    "LogBothDir",
    "WithPrecompiled",
    "SUPPORTED",
    "parse_machine_opts",
]


class MachineOpt(Option):
    """One machine option; build it with ``BindDualValues``, ``WithWatchlist``, ...

    Example:
        >>> WithNaNWatch().kind, EvalMode()
        ('nan', EvalMode())
    """

    __slots__ = ()
    builders = {"bind": "BindDualValues", "watch": "WithWatchlist", "nan": "WithNaNWatch",
                "inf": "WithInfWatch", "training": "TrainMode", "fwdonly": "ExecuteFwdOnly",
                "bwdonly": "ExecuteBwdOnly", "noreuse": "WithNoBufferReuse", "trace": "TraceExec",
                "manualgrad": "WithManualGradient", "logger": "WithLogger", "logdir": "LogFwd",
                "precompiled": "WithPrecompiled"}

    def __repr__(self) -> str:
        if self.kind == "training":
            return "TrainMode()" if self.value else "EvalMode()"
        if self.kind in ("bind", "watch"):
            return f"{self.builder}({', '.join(n.name for n in self.value)})"
        if self.kind == "logdir":
            return {"fwd": "LogFwd()", "bwd": "LogBwd()"}.get(self.value, "LogBothDir()")
        if self.kind in ("logger", "precompiled", "manualgrad"):
            return f"{self.builder}({self.value!r})"
        return f"{self.builder}()"

    @property
    def arg(self) -> Any:
        """The option's value (the nodes of ``BindDualValues``, the mode of ``TrainMode``...).

        Example:
            >>> EvalMode().arg
            False
        """
        return self.value


def _nodes(kind: str, nodes: tuple[Any, ...]) -> tuple[Node, ...]:
    if len(nodes) == 1 and isinstance(nodes[0], (list, tuple)):
        nodes = tuple(nodes[0])
    for n in nodes:
        if not isinstance(n, Node):
            raise TypeError(f"{kind} takes nodes, got {type(n).__name__}")
    return tuple(nodes)


def BindDualValues(*nodes: Node) -> MachineOpt:
    """Accumulate each node's gradient into ``node.grad`` on every run (until a solver zeroes it).

    Example:
        >>> BindDualValues().kind
        'bind'
    """
    return MachineOpt("bind", _nodes("BindDualValues", nodes))


def WithWatchlist(*nodes: Node) -> MachineOpt:
    """Keep these nodes' values readable: the tape machine never reuses their buffers.

    Example:
        >>> WithWatchlist().kind
        'watch'
    """
    return MachineOpt("watch", _nodes("WithWatchlist", nodes))


def WithNaNWatch() -> MachineOpt:
    """Stop at the first op that produces a NaN and name it (slower; for debugging).

    Example:
        >>> WithNaNWatch().kind
        'nan'
    """
    return MachineOpt("nan")


def WithInfWatch() -> MachineOpt:
    """Stop at the first op that produces an Inf and name it (slower; for debugging).

    Example:
        >>> WithInfWatch().kind
        'inf'
    """
    return MachineOpt("inf")


def EvalMode() -> MachineOpt:
    """Run in evaluation mode: dropout is the identity, batch norm uses running statistics.

    Example:
        >>> EvalMode().arg
        False
    """
    return MachineOpt("training", False)


def TrainMode() -> MachineOpt:
    """Run in training mode (the default).

    Example:
        >>> TrainMode().arg
        True
    """
    return MachineOpt("training", True)


def ExecuteFwdOnly() -> MachineOpt:
    """Run the forward pass only: no gradient node runs (inference on a training graph).

    The tape machine keeps the forward values that gradient nodes read, so a machine built
    with ``ExecuteBwdOnly()`` can run the backward pass from them afterwards.

    Example:
        >>> ExecuteFwdOnly().kind
        'fwdonly'
    """
    return MachineOpt("fwdonly", True)


def WithNoBufferReuse() -> MachineOpt:
    """Tape machine: give every node its own buffer so every value stays readable (debugging).

    Example:
        >>> WithNoBufferReuse().kind
        'noreuse'
    """
    return MachineOpt("noreuse", True)


def ExecuteBwdOnly() -> MachineOpt:
    """Run the backward pass only, reading the forward values already computed (by a machine
    built with ``ExecuteFwdOnly()`` on the same graph, say).

    Example:
        >>> import numpy as np, graphcore as gc
        >>> g = gc.NewGraph(); x = gc.NewVector(g, gc.Float64, gc.WithShape(2), gc.WithName("x"))
        >>> w = gc.NewVector(g, gc.Float64, gc.WithShape(2), gc.WithName("w"),
        ...                  gc.WithValue([1.0, 2.0]))
        >>> cost = gc.Sum(gc.Square(x * w)); _ = gc.Grad(cost, w); gc.Let(x, [1.0, 1.0])
        >>> fwd = gc.NewTapeMachine(g, gc.ExecuteFwdOnly())
        >>> bwd = gc.NewTapeMachine(g, gc.ExecuteBwdOnly(), gc.BindDualValues(w))
        >>> fwd.run_all(); bwd.run_all(); float(cost.value), w.grad.tolist()
        (5.0, [2.0, 4.0])
    """
    return MachineOpt("bwdonly", True)


def TraceExec() -> MachineOpt:
    """Keep every value a run computes readable afterwards (no buffer is reused; for
    debugging). The Lisp machine always does.

    Example:
        >>> TraceExec().kind
        'trace'
    """
    return MachineOpt("trace", True)


def WithManualGradient(grad: Any) -> MachineOpt:
    """Lisp machine: differentiate from a root of any shape, seeded with ``grad`` instead of 1
    (a vector-Jacobian product). ``grad`` is an array of the root's shape, or a node whose
    value is read at each run (feed it with ``Let``).

    The tape machine runs symbolic gradients instead: build them with
    ``Backpropagate(outputs, grad_outputs, wrt)``, ``grad_outputs`` an input node.

    Example:
        >>> import numpy as np, graphcore as gc
        >>> g = gc.NewGraph()
        >>> w = gc.NewVector(g, gc.Float64, gc.WithShape(2), gc.WithName("w"),
        ...                  gc.WithValue([1.0, 2.0]))
        >>> y = gc.Square(w)  # a vector root
        >>> gc.NewLispMachine(g, gc.WithManualGradient([1.0, 10.0])).run_all(); w.grad.tolist()
        [2.0, 40.0]
    """
    return MachineOpt("manualgrad", grad)


def WithLogger(logger: logging.Logger | None = None) -> MachineOpt:
    """Log every step a run executes to ``logger`` (default: the ``graphcore.machines``
    logger) at DEBUG level: the node, its op and shape, and a summary of its value. Choose
    the directions with ``LogFwd()``, ``LogBwd()`` or ``LogBothDir()`` (the default).

    Example:
        >>> import logging
        >>> WithLogger(logging.getLogger("mine")).value.name
        'mine'
    """
    if logger is None:
        logger = logging.getLogger("graphcore.machines")
    if not isinstance(logger, logging.Logger):
        raise TypeError(f"WithLogger takes a logging.Logger, got {type(logger).__name__}")
    return MachineOpt("logger", logger)


def LogFwd() -> MachineOpt:
    """Log the forward steps only (with ``WithLogger``, or the default logger).

    Example:
        >>> LogFwd()
        LogFwd()
    """
    return MachineOpt("logdir", "fwd")


def LogBwd() -> MachineOpt:
    """Log the backward (gradient) steps only.

    Example:
        >>> LogBwd()
        LogBwd()
    """
    return MachineOpt("logdir", "bwd")


def LogBothDir() -> MachineOpt:
    """Log forward and backward steps.

    Example:
        >>> LogBothDir()
        LogBothDir()
    """
    return MachineOpt("logdir", "both")


def WithPrecompiled(program: Program) -> MachineOpt:
    """Tape machine: run a program made by ``CompileFunction(g, inputs, outputs)`` (only what
    the outputs need) instead of the whole graph.

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph(); x = gc.NewScalar(g, gc.Float64, gc.WithName("x"))
        >>> y = gc.Square(x); z = gc.Exp(x)
        >>> prog = gc.CompileFunction(g, [x], [y]); gc.Let(x, 3.0)
        >>> gc.NewTapeMachine(g, gc.WithPrecompiled(prog)).run_all(); float(y.value)
        9.0
    """
    from .program import Program

    if not isinstance(program, Program):
        raise TypeError(
            f"WithPrecompiled takes a program made by CompileFunction(g, inputs, outputs), "
            f"got {type(program).__name__}"
        )
    return MachineOpt("precompiled", program)


#: machine -> option kind -> None (honoured) or why it is refused and what to use instead
SUPPORTED: dict[str, dict[str, str | None]] = {
    "NewTapeMachine": {
        "bind": None, "watch": None, "nan": None, "inf": None, "training": None,
        "fwdonly": None, "bwdonly": None, "noreuse": None, "trace": None, "logger": None,
        "logdir": None, "precompiled": None,
        "manualgrad": "the tape machine runs symbolic gradients; build them for a non-scalar "
        "output with Backpropagate(outputs, grad_outputs, wrt), grad_outputs an input node "
        "you Let, or use NewLispMachine(g, WithManualGradient(...))",
    },
    "NewLispMachine": {
        "bind": None, "watch": None, "nan": None, "inf": None, "training": None,
        "fwdonly": None, "bwdonly": None, "noreuse": None, "trace": None, "logger": None,
        "logdir": None, "manualgrad": None,
        "precompiled": "the Lisp machine interprets the graph as it is; run a compiled program "
        "with NewTapeMachine(g, WithPrecompiled(program))",
    },
}

_CONFLICTS = [
    ("fwdonly", "bwdonly", "run one of the two passes, not both; leave both out for both"),
    ("fwdonly", "bind", "no gradient runs, so there is nothing to bind"),
    ("fwdonly", "manualgrad", "no gradient runs, so there is nothing to seed"),
]


def parse_machine_opts(opts: tuple[Any, ...], who: str) -> dict[str, Any]:
    """Collect options into a dict; refuse unknown objects, options ``who`` does not honour
    and contradictory pairs, each with an error naming the option and what to do.

    Example:
        >>> parse_machine_opts((EvalMode(),), "NewTapeMachine")["training"]
        False
    """
    out: dict[str, Any] = {"bind": (), "watch": (), "nan": False, "inf": False,
                           "training": True, "fwdonly": False, "bwdonly": False,
                           "noreuse": False, "trace": False, "manualgrad": None, "logger": None,
                           "logdir": None, "precompiled": None}
    given: dict[str, MachineOpt] = {}
    support = SUPPORTED[who]
    for o in opts:
        if not isinstance(o, MachineOpt):
            raise TypeError(
                f"{who}: {o!r} is not a machine option; use one of "
                + ", ".join(sorted(set(MachineOpt.builders.values()) | {"EvalMode"}))
            )
        why = support.get(o.kind)
        if why is not None:
            raise GraphError(f"{who} does not take {o.builder}: {why}")
        given[o.kind] = o
        if o.kind in ("bind", "watch"):
            out[o.kind] = out[o.kind] + o.arg
        elif o.kind in ("nan", "inf"):
            out[o.kind] = True
        else:
            out[o.kind] = o.arg
    for a, b, why in _CONFLICTS:
        if a in given and b in given:
            raise GraphError(f"{who}: {given[a]!r} and {given[b]!r} contradict: {why}")
    if out["logdir"] is not None and out["logger"] is None:
        out["logger"] = logging.getLogger("graphcore.machines")
    if out["logger"] is not None and out["logdir"] is None:
        out["logdir"] = "both"
    return out
