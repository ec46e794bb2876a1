"""``Trace``: a pass-through term that logs what flows through it at every run.

Golgi's ``Trace`` printed the node when the network was built. Here the log comes from the
machine: ``Trace`` adds an identity op whose kernel writes one ``logging`` record per run
with the trace's name, the value's shape and dtype, and its min, max, mean and standard
deviation (and the count of NaN/inf values when there are any). With ``grads=True`` the
gradient flowing back through the same point is traced too (name suffixed ``'``).

The op copies nothing when the machine lets it work in place, and skips the statistics
when the logger would drop the record; it is a debugging tool, so the record itself (a
formatted string) is allocated on every run.

Example:
    >>> import logging, numpy as np, graphcore as gc, golgi as G
    >>> g = gc.NewGraph()
    >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
    >>> records = []
    >>> class Keep(logging.Handler):
    ...     def emit(self, record): records.append(record.getMessage())
    >>> log = logging.getLogger("example.trace"); log.addHandler(Keep()); log.setLevel("INFO")
    >>> net = G.ComposeSeq(x, G.L(G.ConsFC(G.WithShape(2), G.WithInit(gc.Ones()))),
    ...                    G.Trace("after fc", logger=log))
    >>> gc.Let(x, np.array([[1.0, 2.0], [3.0, 4.0]])); gc.NewTapeMachine(g).run_all()
    >>> records
    ["trace 'after fc' run 1: (2, 2) float64 min 3 max 7 mean 5 std 2"]
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

import graphcore as gc
from graphcore.extend import ExecContext, Kernel, Op, TypeInfo, apply_op

from .summary import SummaryTable
from .term import Term

__all__ = ["Trace", "TraceOp", "DEFAULT_FORMAT"]

#: the default record; fields: name, run, shape, dtype, min, max, mean, std, nonfinite
DEFAULT_FORMAT = (
    "trace {name!r} run {run}: {shape} {dtype} min {min:.6g} max {max:.6g} mean {mean:.6g} "
    "std {std:.6g}{nonfinite}"
)


class TraceOp(Op):
    """The identity, whose kernel logs its operand's statistics each time it runs.

    Example:
        >>> import numpy as np
        >>> op = TraceOp("t", logging.getLogger("quiet"), logging.DEBUG)
        >>> out = np.empty(2); op.kernel([np.array([1.0, 3.0])], out, ExecContext())(); out
        array([1., 3.])
    """

    name = "Trace"
    arity = 1
    identity = True  # exported (ONNX) as an identity
    # the output may share the operand's buffer: then there is nothing to copy
    inplace = True

    def __init__(
        self, label: str, logger: logging.Logger, level: int, fmt: str = DEFAULT_FORMAT
    ) -> None:
        self.label = label
        self._logger = logger
        self._level = level
        self._fmt = fmt
        self._runs = 0

    def params(self) -> dict[str, Any]:
        return {"label": self.label}

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[tuple[int | None, ...], gc.Dtype]:
        return tuple(ins[0].shape), ins[0].dtype

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        x = xs[0]
        same = np.shares_memory(out, x) and out.shape == x.shape

        def run() -> None:
            if not same:
                np.copyto(out, x)
            self._runs += 1
            if self._logger.isEnabledFor(self._level):
                self._logger.log(self._level, self.describe(x))

        return run

    def describe(self, x: np.ndarray) -> str:
        """The record for value ``x`` (the statistics of its finite values).

        Example:
            >>> import numpy as np
            >>> op = TraceOp("h", logging.getLogger("quiet"), logging.DEBUG)
            >>> op.describe(np.array([1.0, np.nan, 3.0]))
            "trace 'h' run 0: (3,) float64 min 1 max 3 mean 2 std 1 (1 NaN/inf)"
        """
        vals = x
        bad = 0
        if x.size and x.dtype.kind == "f" and not np.isfinite(x.min() + x.max()):
            finite = np.isfinite(x)
            bad = int(x.size - np.count_nonzero(finite))
            vals = x[finite]
        if vals.size:
            stats = (float(vals.min()), float(vals.max()), float(vals.mean()), float(vals.std()))
        else:
            stats = (float("nan"),) * 4
        return self._fmt.format(
            name=self.label,
            run=self._runs,
            shape=tuple(x.shape),
            dtype=x.dtype,
            min=stats[0],
            max=stats[1],
            mean=stats[2],
            std=stats[3],
            nonfinite=f" ({bad} NaN/inf)" if bad else "",
        )

    def grad(self, node: gc.Node, g: gc.Node, wants: Sequence[bool]) -> list[gc.Node | None]:
        return [g]


class _TraceGradOp(TraceOp):
    """A trace of the gradient: its own gradient (of a gradient) passes straight through."""

    name = "TraceGrad"


class _TracingOp(TraceOp):
    """A trace whose gradient is traced as well, under the name with a ``'``."""

    def grad(self, node: gc.Node, g: gc.Node, wants: Sequence[bool]) -> list[gc.Node | None]:
        op = _TraceGradOp(self.label + "'", self._logger, self._level, self._fmt)
        return [apply_op(op, g)]


class Trace(Term):
    """A pass-through term that logs name, shape and value statistics at each run.

    ``Trace(name)`` in a ``ComposeSeq`` marks a point of the network; each machine run logs
    one record there through ``logger`` (default ``logging.getLogger("golgi.trace")``) at
    ``level`` (default INFO). ``fmt`` replaces the record's format (fields: name, run, shape,
    dtype, min, max, mean, std, nonfinite; see ``DEFAULT_FORMAT``). ``grads=True`` also
    traces the gradient coming back through this point, as ``name'``.

    Example:
        >>> import graphcore as gc, golgi as G
        >>> g = gc.NewGraph()
        >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
        >>> t = G.Trace("input"); y = t.fwd(x)
        >>> t, y.shape, y.op, t.fwd(x) is y
        (Trace('input'), (None, 2), Trace(label='input'), True)
    """

    def __init__(
        self,
        name: str,
        fmt: str | None = None,
        logger: logging.Logger | None = None,
        level: int = logging.INFO,
        grads: bool = False,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"Trace takes a non-empty name, got {name!r}")
        self.name = name
        self.fmt = fmt or DEFAULT_FORMAT
        self.logger = logger or logging.getLogger("golgi.trace")
        self.level = level
        self.grads = grads
        self._cache: dict[int, tuple[gc.Node, gc.Node]] = {}

    def fwd(self, x: gc.Node) -> gc.Node:
        """``x`` through the logging identity op (one op node per input node).

        Example:
            >>> import graphcore as gc, golgi as G
            >>> G.Trace("t").fwd(gc.NewConstant([1.0, 2.0])).shape
            (2,)
        """
        if not isinstance(x, gc.Node):
            raise TypeError(f"Trace({self.name!r}).fwd takes a graph node, got {x!r}")
        hit = self._cache.get(id(x))
        if hit is not None and hit[0] is x:
            return hit[1]
        cls = _TracingOp if self.grads else TraceOp
        out = apply_op(cls(self.name, self.logger, self.level, self.fmt), x)
        self._cache[id(x)] = (x, out)
        return out

    def summary_rows(
        self, table: SummaryTable, shape: tuple[int | None, ...], dtype: gc.Dtype
    ) -> tuple[tuple[int | None, ...], gc.Dtype]:
        """A row ``name (Trace)``; the shape passes through."""
        table.add_row(f"{self.name} (Trace)", shape)
        return shape, dtype

    def __repr__(self) -> str:
        return f"Trace({self.name!r})"
