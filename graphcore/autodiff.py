"""Symbolic reverse-mode differentiation: ``Grad`` and ``Backpropagate`` add gradient nodes
to the graph.

``Backpropagate(outputs, grad_outputs, wrt)`` builds vector-Jacobian products of outputs of
any shape; ``Grad(cost, wrt...)`` is its case of one scalar cost seeded with 1.

The walk is iterative (no recursion limit on deep graphs). Each op's ``grad`` rule builds the
operand gradients from other ops; broadcasting is undone centrally by ``reduce_to``;
gradients of nodes read several times are summed, except that the gradients of a node's
parts (its slices, say the T steps of a sequence) are written into one buffer by one node,
not added up as T arrays the size of the node. A fused op (``TanhGrad``,
``SoftMaxGrad``, a loss's gradient) has no rule of its own: it gives ``expand``, the same
computation written with differentiable ops, and the walk goes through that expansion. So
every gradient node is differentiable again: a cost may contain gradients (a gradient
penalty), and ``Grad`` of ``Sum(Grad(cost, w)[0] * v)`` is a Hessian-vector product.

Example:
    >>> import numpy as np, graphcore as gc
    >>> g = gc.NewGraph()
    >>> w = gc.NewVector(g, gc.Float64, gc.WithShape(2), gc.WithName("w"),
    ...                  gc.WithValue([1.0, -2.0]))
    >>> cost = gc.Sum(gc.Square(w))
    >>> (dw,) = gc.Grad(cost, w)
    >>> penalty = gc.Sum(gc.Square(dw))  # |2w|^2, through the fused SquareGrad node
    >>> (dp,) = gc.Grad(penalty, w)
    >>> gc.NewTapeMachine(g).run_all()
    >>> dw.value.tolist(), dp.value.tolist()
    ([2.0, -4.0], [8.0, -16.0])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .errors import GradError
from .graph import Graph, Node, ancestors
from .ops.base import Op, building_in
from .ops.elementwise import Add
from .ops.unbroadcast import BroadcastTo, reduce_to
from .shapes import fmt_shape
from .values import NewConstant

__all__ = ["Grad", "Backpropagate", "backprop", "vjp"]


def _check(cost: Node, wrt: Sequence[Node]) -> None:
    if not isinstance(cost, Node):
        raise TypeError(f"Grad: cost must be a node, got {type(cost).__name__}")
    if cost.shape != ():
        raise GradError(
            f"Grad: the cost {cost.describe()} is not a scalar; reduce it first "
            f"(e.g. Mean(...) or Sum(...)) so it has shape ()"
        )
    if not cost.dtype.is_float:
        raise GradError(f"Grad: the cost {cost.describe()} must be Float32 or Float64")
    if not wrt:
        raise GradError("Grad: give at least one node to differentiate with respect to")
    for w in wrt:
        if not isinstance(w, Node):
            raise TypeError(f"Grad: wrt must be nodes, got {type(w).__name__}")
        if not w.dtype.is_float:
            raise GradError(f"Grad: cannot differentiate with respect to {w.describe()}: "
                            f"it is not a float node")


def _upstream(outputs: Sequence[Node], leaves: set[int]) -> list[Node]:
    """The nodes ``outputs`` depend on without looking past ``leaves``, in topological order;
    iterative, like ``ancestors``."""
    order: list[Node] = []
    seen: set[int] = set()
    for root in outputs:
        if id(root) in seen:
            continue
        seen.add(id(root))
        stack: list[tuple[Node, int]] = [(root, 0)]
        while stack:
            node, i = stack[-1]
            kids = () if id(node) in leaves else node.children
            if i < len(kids):
                stack[-1] = (node, i + 1)
                c = kids[i]
                if id(c) not in seen:
                    seen.add(id(c))
                    stack.append((c, 0))
            else:
                stack.pop()
                order.append(node)
    return order


def _operand_grads(op: Op, n: Node, g: Node, wants: list[bool]) -> list[Node | None]:
    """The gradient rule of ``op`` (``n``'s op), or, for a fused op, the gradient through its
    expansion."""
    # the expansion is built detached: only the parts the gradients read enter a program
    with building_in(None):
        expr = op.expand(n)
    if expr is None:
        return op.grad(n, g, wants)
    if expr.shape != n.shape:
        raise GradError(
            f"Grad: internal error: the expansion of {n.describe()} has shape "
            f"{fmt_shape(expr.shape)}"
        )
    # a node given twice as an operand gets its gradient once, at its first position
    first = {id(c): i for i, c in reversed(list(enumerate(n.children)))}
    wanted = [c for i, c in enumerate(n.children) if wants[i] and first[id(c)] == i]
    grads = dict(zip(map(id, wanted), vjp(expr, g, wanted), strict=True))
    return [
        grads.get(id(c)) if wants[i] and first[id(c)] == i else None
        for i, c in enumerate(n.children)
    ]


def _wants(op: Op, n: Node, depends: set[int]) -> list[bool]:
    """Which operands of ``n`` (made by ``op``) a gradient must reach: those on a path from a
    wrt, and whose value (not only shape) ``op`` reads."""
    skip = op.shape_only
    return [id(c) in depends and i not in skip for i, c in enumerate(n.children)]


def _walk(
    order: list[Node], seeds: dict[int, Node], wrt: Sequence[Node], cost_name: str,
    stop_at_wrt: bool,
) -> dict[int, Node]:
    """Backpropagate ``seeds`` (gradients of some nodes of ``order``) down ``order`` (in
    topological order) towards ``wrt``; returns the gradients reached, by node id.

    ``stop_at_wrt``: treat the ``wrt`` as independent inputs, even where one depends on
    another (a fused op's operands); otherwise a ``wrt`` that depends on another passes its
    gradient on (``Grad(cost, x, h)`` with ``h`` computed from ``x``)."""
    wrt_ids = {id(w) for w in wrt}
    # nodes on a path from some wrt that can carry a gradient: not through integers, masks
    # (zero_gradient) or operands read for their shape only
    depends: set[int] = set()
    for n in order:
        if id(n) in wrt_ids:
            depends.add(id(n))
        elif n.dtype.is_float and n.op is not None and not n.op.zero_gradient:
            if any(_wants(n.op, n, depends)):
                depends.add(id(n))
    # each node's gradient contributions, summed when the walk reaches the node: all its
    # readers come before it in reversed order, so the list is complete by then. A part of a
    # node (a slice, ``Op.part_key``) leaves its (part, gradient) pair instead, so that the
    # parts' gradients are written into one buffer, not one buffer the size of the node each.
    pending: dict[int, list[Node | tuple[Node, Node]]] = {k: [v] for k, v in seeds.items()}
    grads: dict[int, Node] = {}
    for n in reversed(order):
        contributions = pending.pop(id(n), None)
        if contributions is None:
            continue
        g = grads[id(n)] = _total(n, contributions)
        if n.op is None or (stop_at_wrt and id(n) in wrt_ids):
            continue
        wants = _wants(n.op, n, depends)
        if not any(wants):
            continue
        if not n.op.differentiable:
            raise GradError(
                f"Grad: {n.describe()} uses {n.op}, which is not differentiable, and lies "
                f"on the path from {', '.join(repr(w.name) for w in wrt)} to the cost "
                f"{cost_name!r}; use a differentiable op or stop the gradient before it"
            )
        if n.op.part_key is not None:
            pending.setdefault(id(n.children[0]), []).append((n, g))
            continue
        parts = _operand_grads(n.op, n, g, wants)
        for c, want, gc in zip(n.children, wants, parts, strict=True):
            if want and gc is not None:
                pending.setdefault(id(c), []).append(_checked(gc, c, n))
    return grads


def _checked(gc: Node, c: Node, reader: Node) -> Node:
    """``gc``, the gradient of ``c`` from ``reader``, unbroadcast to ``c``'s shape."""
    gc = reduce_to(gc, c)
    if gc.shape != c.shape:
        raise GradError(
            f"Grad: internal shape error: gradient {fmt_shape(gc.shape)} for "
            f"{c.describe()} (op {reader.op})"
        )
    return gc


def _total(n: Node, contributions: list[Node | tuple[Node, Node]]) -> Node:
    """The gradient of ``n``: its contributions added in the order they came, where the
    (part, gradient) pairs of ``n``'s parts whose ops share a ``part_key`` make one node, by
    the op's ``join_part_grads``, in the place of the first."""
    groups: dict[str, list[tuple[Node, Node]]] = {}
    for c in contributions:
        if isinstance(c, tuple):
            groups.setdefault(_key(c), []).append(c)
    terms: list[Node] = []
    for c in contributions:
        if not isinstance(c, tuple):
            terms.append(c)
        elif groups[_key(c)][0] is c:
            parts = groups[_key(c)]
            part = c[0]
            terms.append(_checked(part.op.join_part_grads(parts), n, part))  # type: ignore[union-attr]
    total = terms[0]
    for t in terms[1:]:
        total = Add(total, t)
    return total


def _key(pair: tuple[Node, Node]) -> str:
    return pair[0].op.part_key  # type: ignore[union-attr,return-value]


def vjp(output: Node, g: Node, wrt: Sequence[Node]) -> list[Node | None]:
    """The gradients of ``Sum(output * g)`` for each of ``wrt``, which are treated as
    independent inputs (the walk does not look past them); None where none flows.

    This is how ``Grad`` differentiates a fused op through its expansion.

    Example:
        >>> import graphcore as gc
        >>> x = gc.NewConstant([1.0, 2.0]); y = gc.Square(x)
        >>> (dx,) = vjp(y, gc.NewConstant([1.0, 1.0]), [x]); dx.op.name
        'SquareGrad'
    """
    order = _upstream([output], {id(w) for w in wrt})
    grads = _walk(order, {id(output): g}, wrt, output.name, True)
    return [grads.get(id(w)) for w in wrt]


def _check_outputs(
    outputs: Sequence[Node], seeds: Sequence[Node], wrt: Sequence[Node], who: str
) -> None:
    if not outputs:
        raise GradError(f"{who}: give at least one output to differentiate")
    if len(seeds) != len(outputs):
        raise GradError(
            f"{who}: {len(outputs)} output(s) but {len(seeds)} grad_outputs; give one gradient "
            f"(a node shaped like its output) per output"
        )
    for o, s in zip(outputs, seeds, strict=True):
        if not isinstance(o, Node):
            raise TypeError(f"{who}: outputs must be nodes, got {type(o).__name__}")
        if not o.dtype.is_float:
            raise GradError(f"{who}: the output {o.describe()} must be Float32 or Float64")
        if s.dtype != o.dtype:
            raise GradError(
                f"{who}: the gradient {s.describe()} for the output {o.describe()} must have "
                f"the output's dtype {o.dtype}; make it with that dtype, or cast it with "
                f"ConvType (graphcore does not cast implicitly)"
            )
        if len(s.shape) != len(o.shape) or any(
            a is not None and b is not None and a != b for a, b in zip(s.shape, o.shape)
        ):
            raise GradError(
                f"{who}: the gradient {s.describe()} for the output {o.describe()} must be "
                f"shaped like the output ({fmt_shape(o.shape)}; None matches any size)"
            )
    if not wrt:
        raise GradError(f"{who}: give at least one node to differentiate with respect to")
    for w in wrt:
        if not isinstance(w, Node):
            raise TypeError(f"{who}: wrt must be nodes, got {type(w).__name__}")
        if not w.dtype.is_float:
            raise GradError(f"{who}: cannot differentiate with respect to {w.describe()}: "
                            f"it is not a float node")


def _backprop(
    outputs: Sequence[Node], seeds: Sequence[Node], wrt: Sequence[Node], graph: Graph | None,
    who: str,
) -> list[Node]:
    """The gradient of ``sum_i <outputs[i], seeds[i]>`` for each of ``wrt``, built into
    ``graph``; zeros for a ``wrt`` reached only through piecewise-constant ops."""
    order = ancestors(outputs)
    index = {id(n) for n in order}
    names = ", ".join(repr(o.name) for o in outputs)
    subject = f"the cost {names} does" if who == "Grad" else f"the outputs {names} do"
    for w in wrt:
        if id(w) not in index:
            raise GradError(
                f"{who}: {subject} not depend on {w.describe()}; "
                f"remove it from the list or check how the "
                + ("cost is built" if who == "Grad" else "outputs are built")
            )
    with building_in(graph):
        start: dict[int, Node] = {}
        for o, s in zip(outputs, seeds, strict=True):
            start[id(o)] = s if id(o) not in start else Add(start[id(o)], s)
        grads = _walk(order, start, wrt, " + ".join(o.name for o in outputs), False)
        zero = lambda w: BroadcastTo(NewConstant(0.0, dtype=w.dtype), w)  # noqa: E731
        return [grads[id(w)] if id(w) in grads else zero(w) for w in wrt]


def backprop(cost: Node, wrt: Sequence[Node], graph: Graph | None) -> list[Node]:
    """Gradient nodes of ``cost`` for each of ``wrt``, built into ``graph``.

    ``graph=None`` builds detached nodes (the Lisp machine's private gradient program). A
    ``wrt`` the cost reaches only through piecewise-constant ops (ReLU's mask, in a second
    derivative) gets zeros.

    Example:
        >>> import graphcore as gc
        >>> x = gc.NewConstant(3.0)
        >>> (dx,) = backprop(gc.Square(x), [x], None); dx.op.name, dx.graph
        ('SquareGrad', None)
    """
    _check(cost, wrt)
    seed = NewConstant(1.0, name="1", dtype=cost.dtype)
    return _backprop([cost], [seed], wrt, graph, "Grad")


def _as_list(x: Any) -> list[Any]:
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _link(outputs: Sequence[Node], wrt: Sequence[Node], grads: Sequence[Node]) -> None:
    """Record each gradient as ``w.deriv`` (what ``w.grad`` and ``BindDualValues`` read) and
    name it ``d<output>/d<w>`` when it is a node of its own."""
    graph = outputs[0].graph
    top = outputs[0].name if len(outputs) == 1 else "(" + "+".join(o.name for o in outputs) + ")"
    for w, d in zip(wrt, grads, strict=True):
        w.deriv = d
        d.deriv_of = w
        if d.graph is graph and d.name.startswith(f"{d.op.name if d.op else 'input'}_"):
            d.name = f"d{top}/d{w.name}"


def Backpropagate(outputs: Any, grad_outputs: Any, wrt: Any) -> list[Node]:
    """Add the vector-Jacobian products of ``outputs`` to the graph: the gradient of
    ``sum_i <outputs[i], grad_outputs[i]>`` with respect to each of ``wrt``.

    ``outputs`` is a node or a list of nodes of any shape; ``grad_outputs`` gives one node
    (or array) per output, shaped like it: an input node fed with ``Let`` at each run gives
    the product with a new vector every run. ``wrt`` is a node or a list of nodes. As with
    ``Grad`` (the case of one scalar output seeded with 1), each ``w`` remembers its gradient
    node (``w.deriv``), so ``w.grad`` reads it and ``BindDualValues(w)`` accumulates it; and
    every gradient node can be differentiated again.

    Example:
        >>> import numpy as np, graphcore as gc
        >>> g = gc.NewGraph()
        >>> x = gc.NewVector(g, gc.Float64, gc.WithShape(2), gc.WithName("x"),
        ...                  gc.WithValue([1.0, 2.0]))
        >>> y = gc.Square(x) * 3.0  # Jacobian diag(6x)
        >>> v = gc.NewVector(g, gc.Float64, gc.WithShape(2), gc.WithName("v"))
        >>> (vjp,) = gc.Backpropagate(y, v, x)
        >>> gc.Let(v, [1.0, 10.0]); gc.NewTapeMachine(g).run_all(); vjp.value.tolist()
        [6.0, 120.0]
    """
    outs = _as_list(outputs)
    for o in outs:
        if not isinstance(o, Node):
            raise TypeError(f"Backpropagate: outputs must be nodes, got {type(o).__name__}")
    if isinstance(outputs, Node) and not (
        isinstance(grad_outputs, (list, tuple))
        and len(grad_outputs) == 1
        and isinstance(grad_outputs[0], Node)
    ):
        given = [grad_outputs]  # one output: a list of numbers is its gradient, not several
    else:
        given = _as_list(grad_outputs)
    seeds = [
        s if isinstance(s, Node) else NewConstant(s, dtype=o.dtype)
        for o, s in zip(outs, given)
    ] if len(given) == len(outs) else given
    return _backpropagate(outs, seeds, _as_list(wrt), "Backpropagate")


def _backpropagate(
    outputs: list[Node], seeds: list[Node], wrt: list[Node], who: str
) -> list[Node]:
    _check_outputs(outputs, seeds, wrt, who)
    graph = next((o.graph for o in outputs if o.graph is not None), None)
    if graph is None:
        if who == "Grad":
            raise GradError(f"Grad: the cost {outputs[0].describe()} belongs to no graph")
        raise GradError(
            f"{who}: none of the outputs "
            + ", ".join(o.describe() for o in outputs)
            + " belongs to a graph; build them from input nodes of a graph (NewMatrix(g, ...))"
        )
    grads = _backprop(outputs, seeds, wrt, graph, who)
    _link(outputs, wrt, grads)
    return grads


def Grad(cost: Node, *wrt: Node) -> list[Node]:
    """Add the gradient nodes of a scalar ``cost`` w.r.t. each of ``wrt`` and return them.

    ``Backpropagate([cost], [1], wrt)``: each ``w`` remembers its gradient node
    (``w.deriv``), so ``w.grad`` reads its value after a machine runs; with
    ``BindDualValues`` the machine accumulates it into ``w.grad`` instead. The cost may itself
    contain gradient nodes (second derivatives): every gradient node is differentiable again.

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph(); x = gc.NewScalar(g, gc.Float64, gc.WithName("x"))
        >>> (dx,) = gc.Grad(gc.Square(x), x)
        >>> dx.deriv_of is x
        True
    """
    if len(wrt) == 1 and isinstance(wrt[0], (list, tuple)):
        wrt = tuple(wrt[0])
    _check(cost, wrt)
    return _backpropagate([cost], [NewConstant(1.0, name="1", dtype=cost.dtype)], list(wrt), "Grad")
