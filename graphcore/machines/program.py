"""What a tape machine runs: a :class:`Program` of nodes in order, some of them *given*.

A machine built on a graph runs the whole graph (and the gradients of the learnables it
binds); :func:`CompileFunction` makes a program of only what some outputs need from some
inputs (an inference function out of a training graph); ``ExecuteFwdOnly`` and
``ExecuteBwdOnly`` cut a program into its forward and backward passes.

A *given* node is an op node whose value the program reads instead of computing it (the
forward values a backward-only machine starts from, or an intermediate node passed to
``CompileFunction`` as an input): the machine copies its current value in at each run.

How the two passes are told apart: the backward pass is every node that only gradient
nodes need. The forward pass is everything the forward *sinks* need: nodes that are not
gradients (``deriv_of`` is None) and whose values no node reads (a loss read by its fused
gradient only to run first counts as unread: it reads it through ``Op.shape_only``). A
statement (``Set(a, b)``) is a forward sink when it needs no gradient node, else it belongs
to the backward pass (an SGD step ``Set(w, w - lr * dw)``).

Statements update an input when they run, so every program runs each statement after all
the other nodes that read its input (:func:`statements_last`): they all see the value from
before the update.

Example:
    >>> import graphcore as gc
    >>> g = gc.NewGraph(); w = gc.NewScalar(g, gc.Float64, gc.WithName("w"), gc.WithValue(3.0))
    >>> cost = gc.Square(w); (dw,) = gc.Grad(cost, w)
    >>> p = whole_graph(g, ())
    >>> [n.name for n in forward_pass(p)[0].order] == ["w", cost.name]
    True
    >>> [n is dw for n in backward_pass(p).order][-1]
    True
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence

from ..errors import GraphError
from ..graph import Graph, Node, ancestors

__all__ = [
    "Program", "CompileFunction", "whole_graph", "forward_pass", "backward_pass",
    "backward_ids", "statements_last", "statement_tail",
]


class Program:
    """Nodes in topological order, the ids of the op nodes among them that are *given*
    (read, not computed), and the outputs (kept readable). Made by :func:`CompileFunction`.

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph(); x = gc.NewScalar(g, gc.Float64, gc.WithName("x"))
        >>> y = gc.Exp(x); p = CompileFunction(g, [x], [y]); p  # doctest: +ELLIPSIS
        Program(2 nodes, inputs [x], outputs [Exp_...])
    """

    def __init__(
        self,
        graph: Graph,
        order: list[Node],
        given: set[int] | None = None,
        outputs: Sequence[Node] = (),
        inputs: Sequence[Node] = (),
    ) -> None:
        self.graph = graph
        self.order = order
        self.given = given or set()
        self.outputs = list(outputs)
        self.inputs = list(inputs)

    def __len__(self) -> int:
        return len(self.order)

    def __repr__(self) -> str:
        ins = ", ".join(n.name for n in self.inputs)
        outs = ", ".join(n.name for n in self.outputs)
        return f"Program({len(self.order)} nodes, inputs [{ins}], outputs [{outs}])"


def whole_graph(g: Graph, bound: Iterable[Node]) -> Program:
    """Every node of ``g``, plus the gradient nodes of ``bound`` learnables (which may lie
    outside ``g`` when it is a forward-only subgraph).

    Example:
        >>> import graphcore as gc
        >>> len(whole_graph(gc.NewGraph(), ()))
        0
    """
    order = ancestors([*g.nodes, *(w.deriv for w in bound if w.deriv is not None)])
    return Program(g, statements_last(order))


def _is_statement(n: Node) -> bool:
    return n.op is not None and n.op.statement


def _descendants(order: Sequence[Node], roots: Iterable[Node]) -> set[int]:
    """Ids of ``roots`` and of every node of ``order`` that depends on one of them."""
    found = {id(n) for n in roots}
    for n in order:
        if id(n) not in found and any(id(c) in found for c in n.children):
            found.add(id(n))
    return found


def _readers(order: Sequence[Node], target: Node, skip: set[int]) -> list[Node]:
    """Nodes of ``order`` (not in ``skip``) that read ``target``'s value, directly or
    through views of it (which share its memory), the views included."""
    derived = {id(target)}
    out = []
    for n in order:
        if n.op is None or id(n) in skip:
            continue
        shape_only = n.op.shape_only
        # another statement on the same target writes it without reading it
        writes = _is_statement(n) and n.children[0] is target
        if any(
            id(c) in derived and j not in shape_only and not (writes and j == 0)
            for j, c in enumerate(n.children)
        ):
            out.append(n)
            if n.op.view and id(n.children[0]) in derived:
                derived.add(id(n))
    return out


def statements_last(order: list[Node]) -> list[Node]:
    """``order`` (a topological order) with each statement ``Set(a, b)`` moved after every
    other node that reads ``a`` (but before the nodes that depend on the statement); the
    rest keeps its order. Raises ``GraphError`` when statements cannot all run after the
    readers of what they write (``Set(a, b)`` with ``Set(b, a)``).

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph(); w = gc.NewScalar(g, gc.Float64, gc.WithName("w"), gc.WithValue(1.0))
        >>> step = gc.Set(w, w * 0.5); late = gc.Square(w)  # built after the update, reads w
        >>> [n.op.name if n.op else n.name for n in statements_last(ancestors(g.nodes))]
        ['w', '0.5', 'HadamardProd', 'Square', 'Set']
    """
    statements = [n for n in order if _is_statement(n)]
    if not statements:
        return order
    pos = {id(n): i for i, n in enumerate(order)}
    after: dict[int, list[int]] = {i: [] for i in range(len(order))}
    waiting = [0] * len(order)
    for i, n in enumerate(order):
        for c in n.children:
            if id(c) in pos:  # (an order without the constants is fine too)
                after[pos[id(c)]].append(i)
                waiting[i] += 1
    for s in statements:
        later = _descendants(order, [s])
        for r in _readers(order, s.children[0], later):
            after[pos[id(r)]].append(pos[id(s)])
            waiting[pos[id(s)]] += 1
    # Kahn's algorithm, always taking the earliest ready node: without statements to delay,
    # that is the original order
    ready = [i for i in range(len(order)) if waiting[i] == 0]
    heapq.heapify(ready)
    out: list[Node] = []
    while ready:
        i = heapq.heappop(ready)
        out.append(order[i])
        for j in after[i]:
            waiting[j] -= 1
            if waiting[j] == 0:
                heapq.heappush(ready, j)
    if len(out) < len(order):
        stuck = [s.name for s in statements if waiting[pos[id(s)]] > 0]
        raise GraphError(
            f"the statements {stuck} cannot run in any order: each writes an input that "
            f"another one reads, as Set(a, b) with Set(b, a) does; copy one value first "
            f"(Set(b, a * 1.0) reads a through a node that runs before a is written)"
        )
    return out


def statement_tail(order: Sequence[Node]) -> set[int]:
    """Ids of the statements of ``order`` and of the nodes that depend on them: what a
    machine running its passes one after the other runs last.

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph(); t = gc.NewScalar(g, gc.Float64, gc.WithValue(0.0))
        >>> tick = gc.Set(t, t + 1.0); statement_tail(g.nodes) == {id(tick)}
        True
    """
    return _descendants(order, [n for n in order if _is_statement(n)])


def _value_readers(order: Sequence[Node]) -> set[int]:
    """Ids of the nodes some node of ``order`` reads the value of."""
    read: set[int] = set()
    for n in order:
        if n.op is not None:
            skip = n.op.shape_only
            read.update(id(c) for j, c in enumerate(n.children) if j not in skip)
    return read


def _forward_ids(order: Sequence[Node]) -> set[int]:
    read = _value_readers(order)
    sinks = [
        n for n in order
        if n.deriv_of is None and id(n) not in read
        and not (_is_statement(n) and any(m.deriv_of is not None for m in ancestors([n])))
    ]
    return {id(n) for n in ancestors(sinks)}


def backward_ids(order: Sequence[Node]) -> set[int]:
    """Ids of the nodes of ``order`` that belong to the backward pass (see the module docs).

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph(); w = gc.NewScalar(g, gc.Float64, gc.WithValue(1.0))
        >>> (dw,) = gc.Grad(gc.Square(w), w); backward_ids(g.nodes) == {id(dw)}
        True
    """
    fwd = _forward_ids(order)
    return {id(n) for n in order if id(n) not in fwd}


def forward_pass(p: Program) -> tuple[Program, set[int]]:
    """The forward part of ``p``, and the ids of its nodes whose values the backward part
    reads (a forward-only machine keeps them, for a backward-only machine to start from).

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph(); x = gc.NewScalar(g, gc.Float64, gc.WithValue(1.0))
        >>> fwd, kept = forward_pass(whole_graph(g, ())); len(fwd), kept
        (1, set())
    """
    fwd = _forward_ids(p.order)
    order = [n for n in p.order if id(n) in fwd]
    # every operand of the backward pass, those read for their shape only too: a
    # backward-only machine takes their values (and shapes) as given
    bwd_reads = {id(c) for n in p.order if id(n) not in fwd for c in n.children}
    kept = {id(n) for n in order if n.op is not None and id(n) in bwd_reads}
    return Program(p.graph, order, p.given & fwd, p.outputs, p.inputs), kept


def backward_pass(p: Program) -> Program:
    """The backward part of ``p``: the gradient nodes, with the forward op nodes they read
    as given nodes (their values come from an earlier forward run) and the inputs they read.

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph(); x = gc.NewScalar(g, gc.Float64, gc.WithValue(1.0))
        >>> len(backward_pass(whole_graph(g, ())))
        0
    """
    fwd = _forward_ids(p.order)
    bwd = [n for n in p.order if id(n) not in fwd]
    needed = {id(c) for n in bwd for c in n.children} | {id(n) for n in bwd}
    order = [n for n in p.order if id(n) in needed]
    given = {id(n) for n in order if n.op is not None and id(n) in fwd} | (p.given & needed)
    return Program(p.graph, order, given, p.outputs, p.inputs)


def CompileFunction(g: Graph, inputs: Sequence[Node], outputs: Sequence[Node]) -> Program:
    """A program computing ``outputs`` from ``inputs``: only the nodes the outputs need, run
    by ``NewTapeMachine(g, WithPrecompiled(program))`` (Theano's ``function``).

    ``inputs`` are input nodes you bind with ``Let``, or op nodes whose current values the
    program reads instead of computing them (set them with ``UnsafeLet`` or an earlier run).
    Learnables, constants and other inputs that hold a value are read as they are; an input
    node the outputs need that holds no value must be listed (an error here, not later).

    Example:
        >>> import numpy as np, graphcore as gc
        >>> g = gc.NewGraph()
        >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
        >>> w = gc.NewMatrix(g, gc.Float64, gc.WithShape(2, 1), gc.WithName("w"),
        ...                  gc.WithValue([[1.0], [2.0]]))
        >>> y = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 1), gc.WithName("y"))
        >>> out = x @ w; cost = gc.Mean(gc.Square(out - y)); _ = gc.Grad(cost, w)
        >>> infer = gc.NewTapeMachine(g, gc.WithPrecompiled(gc.CompileFunction(g, [x], [out])))
        >>> gc.Let(x, [[1.0, 1.0]]); infer.run_all(); out.value.tolist()
        [[3.0]]
    """
    if not isinstance(g, Graph):
        raise TypeError(f"CompileFunction: expected a Graph, got {type(g).__name__}")
    for what, nodes in (("inputs", inputs), ("outputs", outputs)):
        for n in nodes:
            if not isinstance(n, Node):
                raise TypeError(f"CompileFunction: {what} must be nodes, got {type(n).__name__}")
            if n.graph is not g and getattr(n.graph, "parent", None) is not g:
                raise GraphError(f"CompileFunction: {n.describe()} is not a node of {g!r}")
    if not outputs:
        raise GraphError("CompileFunction: give at least one output node")
    stop = {id(n) for n in inputs}
    order: list[Node] = []
    seen: set[int] = set()
    stack: list[tuple[Node, int]] = []
    for root in outputs:
        if id(root) in seen:
            continue
        seen.add(id(root))
        stack.append((root, 0))
        while stack:
            node, i = stack[-1]
            kids = () if id(node) in stop else node.children
            if i < len(kids):
                stack[-1] = (node, i + 1)
                c = kids[i]
                if id(c) not in seen:
                    seen.add(id(c))
                    stack.append((c, 0))
            else:
                stack.pop()
                order.append(node)
    missing = [
        n.name
        for n in order
        if n.op is None and not n.is_constant and id(n) not in stop and not n.has_value
    ]
    if missing:
        raise GraphError(
            f"CompileFunction: the outputs need the input(s) {missing}, which are neither in "
            f"inputs nor bound to a value; add them to inputs"
        )
    given = {id(n) for n in inputs if n.op is not None}
    return Program(g, statements_last(order), given, outputs, inputs)
