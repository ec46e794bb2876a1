"""Options for ``NewTapeMachine`` and ``NewLispMachine``.

Example:
    >>> import graphcore as gc
    >>> g = gc.NewGraph(); w = gc.NewScalar(g, gc.Float64, gc.WithName("w"), gc.WithValue(1.0))
    >>> c = gc.Square(w); _ = gc.Grad(c, w)
    >>> vm = gc.NewTapeMachine(g, gc.BindDualValues(w), gc.WithNaNWatch())
"""

from __future__ import annotations

from typing import Any

from ..graph import Node
from ..options import Option

__all__ = [
    "MachineOpt",
    "BindDualValues",
    "WithWatchlist",
    "WithNaNWatch",
    "WithInfWatch",
    "EvalMode",
    "TrainMode",
    "ExecuteFwdOnly",
    "WithNoBufferReuse",
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
                "noreuse": "WithNoBufferReuse"}

    def __repr__(self) -> str:
        if self.kind == "training":
            return "TrainMode()" if self.value else "EvalMode()"
        if self.kind in ("bind", "watch"):
            return f"{self.builder}({', '.join(n.name for n in self.value)})"
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
    """Lisp machine: run the forward pass only, computing no gradients.

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


def parse_machine_opts(opts: tuple[Any, ...], who: str) -> dict[str, Any]:
    """Collect options into a dict; unknown objects raise a ``TypeError`` naming ``who``."""
    out: dict[str, Any] = {"bind": (), "watch": (), "nan": False, "inf": False,
                           "training": True, "fwdonly": False, "noreuse": False}
    for o in opts:
        if not isinstance(o, MachineOpt):
            raise TypeError(
                f"{who}: {o!r} is not a machine option; use BindDualValues, WithWatchlist, "
                f"WithNaNWatch, WithInfWatch, EvalMode, ExecuteFwdOnly or WithNoBufferReuse"
            )
        if o.kind in ("bind", "watch"):
            out[o.kind] = out[o.kind] + o.arg
        elif o.kind in ("nan", "inf"):
            out[o.kind] = True
        else:
            out[o.kind] = o.arg
    return out
