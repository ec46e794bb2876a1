"""Fusing a dense layer's steps when a plan is compiled: the graph, its gradients and what the
user can read stay as they are; only the tape runs fewer, fuller passes.

The patterns, found on the memory pass's steps (:mod:`~graphcore.machines.memory`):

- forward, ``Rectify(Add(xw, b))`` or ``Sigmoid(Add(xw, b))`` with ``b`` a row broadcast over
  ``xw``'s rows, where the activation runs in place on the sum's buffer: the sum's value is
  then overwritten at once, so nothing can read it, and one kernel (``bias_relu``,
  ``bias_sigmoid``) computes the activation of the sum in one pass;
- a bias add with no such activation after it (a network's last layer) runs as the compiled
  ``bias_add`` (numpy's broadcasting add takes an iterator buffer per call);
- backward, ``RectifyGrad(y, g)`` whose value a bias gradient sums over its rows straight
  into a bound ``b.grad``: one kernel (``relu_grad_bias``) writes the ReLU gradient and adds
  its column sums to ``b.grad`` while the rows are in cache, and the sum's own step goes.

Only plans on the compiled kernels fuse: there each pattern is one loop. The numpy kernels of
the same names make the same passes as the unfused steps, which measured no faster (and up
to 1% slower) as one step, so numpy plans keep their steps; the compiled kernels fall back
to them for arrays their loops cannot take. Fused steps give what the unfused ones give, to
float rounding. Plans with NaN/Inf watches or a logger keep every step (they report node by
node).

Example:
    >>> import numpy as np, graphcore as gc
    >>> g = gc.NewGraph()
    >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
    >>> w = gc.NewMatrix(g, gc.Float64, gc.WithName("w"), gc.WithValue(np.eye(2)))
    >>> b = gc.NewMatrix(g, gc.Float64, gc.WithName("b"), gc.WithValue([[1.0, -5.0]]))
    >>> y = gc.Rectify(gc.Add(gc.Mul(x, w), b)); s = gc.Sum(y)
    >>> vm = gc.NewTapeMachine(g); gc.Let(x, [[1.0, 2.0]]); vm.run_all()
    >>> y.value.tolist(), vm.plan.n_steps == (3 if gc.accel.enabled() else 4)
    ([[2.0, 0.0]], True)
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from types import ModuleType

import numpy as np

from ..graph import Node
from ..kernels import reference
from ..ops.elementwise import BinaryOp, UnaryGradOp, UnaryOp
from ..ops.unbroadcast import SumToOp

__all__ = ["Fused", "fuse_steps"]

Kernel = Callable[[], None]

#: Whether plans fuse steps (tests switch it off to compare with the unfused steps).
enabled: bool = True

# activation row -> the kernel module's fused bias-and-activation kernel
_BIAS_ACT = {"Rectify": "bias_relu", "Sigmoid": "bias_sigmoid"}


@dataclass
class Fused:
    """What :func:`fuse_steps` did: ``steps`` (the memory pass's, fused), ``folded`` (id of
    a node computed inside another node's step -> that node), and ``rebuild`` (id of a node
    whose step is a fused one -> a function building that step writing elsewhere, for
    ``run_all(into=...)``).

    Example:
        >>> Fused([]).folded
        {}
    """

    steps: list[tuple[Node, Kernel]]
    folded: dict[int, Node] = field(default_factory=dict)
    rebuild: dict[int, Callable[[np.ndarray], Kernel]] = field(default_factory=dict)


def _bias_operands(
    n: Node, arrays: Mapping[int, np.ndarray], out: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """``(x, b)`` when ``n = Add`` adds a row ``b`` (shape ``(k,)`` or ``(1, ..., k)``) to
    ``x`` of ``out``'s shape ``(..., k)``, one float dtype; else None."""
    if not (isinstance(n.op, BinaryOp) and n.op.name == "Add") or out.ndim < 2:
        return None
    a0, a1 = (arrays[id(c)] for c in n.children)
    for x, b in ((a0, a1), (a1, a0)):
        if (
            x.shape == out.shape
            and x.dtype == out.dtype == b.dtype
            and out.dtype.kind == "f"
            and b.size == out.shape[-1]
            and b.ndim >= 1
            and b.shape[-1] == b.size
            and b.ndim <= out.ndim
        ):
            return x, b
    return None


def _forward(
    n1: Node, n2: Node, arrays: Mapping[int, np.ndarray], k: ModuleType
) -> tuple[Kernel, Callable[[np.ndarray], Kernel]] | None:
    """The fused step of ``n2 = act(n1)``, ``n1 = x + b``, and its rebuilder; or None."""
    op = n2.op
    if not isinstance(op, UnaryOp) or op.name not in _BIAS_ACT or n2.children[0] is not n1:
        return None
    out = arrays[id(n2)]
    if out is not arrays[id(n1)]:  # not in place: the sum's value stays readable, keep it
        return None
    xb = _bias_operands(n1, arrays, out)
    if xb is None:
        return None
    x, b = xb
    name = _BIAS_ACT[op.name]
    f, make_scratch = getattr(k, name), getattr(k, name + "_scratch")

    def build(dest: np.ndarray) -> Kernel:
        scratch = make_scratch(x, b, dest)

        def fused_bias_activation() -> None:
            f(x, b, dest, scratch)

        return fused_bias_activation

    return build(out), build


def _bias_add(n: Node, arrays: Mapping[int, np.ndarray], k: ModuleType) -> Kernel | None:
    """A bias add ``n = x + b`` left alone by the activation pattern, as the kernel module's
    ``bias_add`` (the same numpy add, or one loop); or None for any other step."""
    out = arrays[id(n)]
    xb = _bias_operands(n, arrays, out)
    if xb is None:
        return None
    x, b = xb
    f, scratch = k.bias_add, k.bias_add_scratch(x, b, out)

    def bias_add() -> None:
        f(x, b, out, scratch)

    return bias_add


def _backward(
    r: Node,
    s: Node,
    arrays: Mapping[int, np.ndarray],
    accumulate_into: Mapping[int, Node],
    k: ModuleType,
) -> Kernel | None:
    """The fused step of ``r = RectifyGrad(y, g)`` and ``s = SumTo(r)`` accumulated into a
    bound ``b.grad``; or None."""
    op = r.op
    if not (isinstance(op, UnaryGradOp) and op.fwd.name == "Rectify"):
        return None
    if not isinstance(s.op, SumToOp) or s.children[0] is not r:
        return None
    y, g, out = (arrays[id(c)] for c in (*r.children, r))
    db = arrays[id(s)]
    if (
        out.ndim != 2
        or not (y.shape == g.shape == out.shape)
        or not (y.dtype == g.dtype == out.dtype == db.dtype)
        or out.dtype.kind != "f"
        or db.size != out.shape[1]
        or db.shape[-1] != db.size
        or not all(a.flags.c_contiguous for a in (y, g, out, db))
        or any(np.may_share_memory(out, a) for a in (y, g, db))
    ):
        return None
    slot = accumulate_into[id(s)].slot
    f, scratch = k.relu_grad_bias, k.relu_grad_bias_scratch(y, g, out, db)

    def fused_relu_grad_bias() -> None:  # writes b.grad (after a solver zeroed it lazily)
        f(y, g, out, db, False, scratch)

    def fused_relu_grad_bias_add() -> None:
        f(y, g, out, db, True, scratch)

    return slot.into_grad(fused_relu_grad_bias, fused_relu_grad_bias_add)


def fuse_steps(
    steps: list[tuple[Node, Kernel]],
    arrays: Mapping[int, np.ndarray],
    accumulated: Collection[int],
    accumulate_into: Mapping[int, Node],
    keep: Collection[int],
    k: ModuleType,
) -> Fused:
    """Fuse the patterns of the module docs in ``steps``; ``keep``: ids of nodes whose steps
    must stay their own (something runs right after them: an accumulation reading the value).

    Example:
        >>> fuse_steps([], {}, set(), {}, set(), None).steps
        []
    """
    res = Fused(list(steps))
    if not enabled or k is reference:  # numpy: the same passes, no faster (measured)
        return res
    out: list[tuple[Node, Kernel] | None] = list(steps)
    where = {id(n): i for i, (n, _) in enumerate(steps)}
    for i, (n, _) in enumerate(steps):
        if i + 1 < len(steps) and id(n) not in keep and out[i] is not None:
            n2 = steps[i + 1][0]
            fw = _forward(n, n2, arrays, k)
            if fw is not None:
                out[i], out[i + 1] = None, (n2, fw[0])
                res.folded[id(n)] = n2
                res.rebuild[id(n2)] = fw[1]
                continue
        if out[i] is not None and (add := _bias_add(n, arrays, k)) is not None:
            out[i] = (n, add)
            continue
        if isinstance(n.op, UnaryGradOp) and out[i] is not None:
            for m in (m for m, _ in steps[i + 1 :] if any(c is n for c in m.children)):
                if id(m) in accumulated and id(m) not in keep and id(m) in accumulate_into:
                    fn = _backward(n, m, arrays, accumulate_into, k)
                    if fn is not None:  # computes the gradient and the sum: both steps
                        out[i] = (n, fn)
                        out[where[id(m)]] = None
                        res.folded[id(m)] = n
                        break
    res.steps = [s for s in out if s is not None]
    return res

