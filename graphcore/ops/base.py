"""The op contract and ``apply_op``, which builds a checked node.

An op states, side by side (as in HIPS autograd's tables):

- ``infer(ins)``: the output shape and dtype from the operands' (checked when a node is built,
  and again with concrete sizes when a machine plans a batch size);
- ``kernel(xs, out, ctx)``: a zero-argument function that computes the value into the
  preallocated array ``out`` (machines call it every run, so it must not allocate);
- ``grad(node, g, wants)``: symbolic gradients for each operand, built from other ops, so
  they can be differentiated again; or, for a fused op (one node doing the work of several,
  for speed), ``expand(node)``: the same computation written with differentiable ops, which
  ``Grad`` differentiates instead;
- capabilities the machines ask about instead of testing the op's class: ``inplace``
  (``out`` may be operand 0's buffer), ``view`` (the output is a view of operand 0 and needs
  no buffer), ``shape_only`` (operands whose shape, but not value, the op reads: they may
  die before it runs, and no gradient flows to them),
  ``rebuildable`` (the kernel may be built again on other arrays), ``reads_lent`` (it is
  worth building again on an input array lent by the caller), ``accumulate_kernel``
  (add the result into an existing array) and ``check_bound`` (rules on bound batch sizes);
- what ``Grad`` may do with it: ``differentiable`` (False: ``Grad`` refuses to pass a
  gradient through it), ``zero_gradient`` (the output is piecewise constant, a 0/1 mask
  inside a derivative: no gradient flows through it) and ``part_key`` with
  ``join_part_grads`` (the node is a part of its operand, such as a slice: ``Grad`` writes
  the gradients of all the parts of one operand into one node).

``apply_op`` also applies the build-time rewrites registered with ``add_rewrite`` (the stable
forms of :mod:`graphcore.rewrite`).

Example:
    >>> import graphcore as gc
    >>> g = gc.NewGraph(); x = gc.NewVector(g, gc.Float64, gc.WithShape(3), gc.WithName("x"))
    >>> gc.Exp(x).op.name
    'Exp'
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, ClassVar, NamedTuple

import numpy as np

from ..dtypes import Dtype
from ..errors import DtypeError, GraphError
from ..graph import Graph, Node
from ..kernels import reference
from ..shapes import Shape, fmt_shape
from ..values import as_node

__all__ = [
    "Op", "TypeInfo", "ExecContext", "apply_op", "building_in", "Kernel", "add_rewrite", "Rewrite",
]

Kernel = Callable[[], None]


class TypeInfo(NamedTuple):
    """What an op's ``infer`` sees of an operand: shape, dtype and a name for messages.

    Example:
        >>> import graphcore as gc
        >>> TypeInfo((None, 3), gc.Float32, "x").shape
        (None, 3)
    """

    shape: Shape
    dtype: Dtype
    name: str


@dataclass
class ExecContext:
    """Run-time state kernels may read: the train/eval mode, the machine's random generator,
    ``kernels``: the kernel module ops call (:mod:`graphcore.kernels.reference`, numpy, unless
    a machine chose the compiled one when it built its plan), and ``saved``: buffers a forward
    kernel fills for its gradient kernel to read (a loss keeps its softmax or sigmoid so the
    gradient does not recompute it).

    Example:
        >>> ctx = ExecContext(); ctx.training, ctx.kernels.__name__
        (True, 'graphcore.kernels.reference')
    """

    training: bool = True
    rng: np.random.Generator | None = None
    kernels: ModuleType = reference
    # arrays a forward kernel shares with its gradient's kernel (saved tensors), by op id
    saved: dict[int, Any] = field(default_factory=dict)

    def generator(self) -> np.random.Generator:
        """The machine's generator (created from the global seed on first use).

        Kernels that draw (dropout masks) call it when they run, not when they are built.

        Example:
            >>> import graphcore as gc
            >>> ctx = ExecContext(); ctx.generator() is ctx.generator()
            True
            >>> gc.SetSeed(3); a = ExecContext().generator().random()
            >>> gc.SetSeed(3); a == ExecContext().generator().random()
            True
        """
        if self.rng is None:
            from ..rng import spawn_rng

            self.rng = spawn_rng()
        return self.rng


class Op:
    """Base class of all ops. Subclasses set ``name`` and implement ``infer`` and ``kernel``.

    Example:
        >>> class Twice(Op):
        ...     name = "Twice"
        ...     def infer(self, ins): return ins[0].shape, ins[0].dtype
        ...     def kernel(self, xs, out, ctx): return lambda: np.multiply(xs[0], 2, out=out)
        ...     def grad(self, node, g, wants): return [g * 2.0]
        >>> import graphcore as gc
        >>> apply_op(Twice(), gc.NewConstant([1.0])).shape
        (1,)
    """

    name: ClassVar[str] = "Op"
    arity: ClassVar[int | None] = None
    # ----- what Grad may do with this op ---------------------------------------------------
    #: False: ``Grad`` raises when a gradient would have to pass through this op
    differentiable: ClassVar[bool] = True
    #: the output is piecewise constant in the operands (a 0/1 mask in a derivative, such as
    #: ``x > 0`` in ReLU's), so its gradient is zero: ``Grad`` never sends one through it
    zero_gradient: ClassVar[bool] = False
    #: the node is a part of operand 0 (a slice): ``Grad`` gathers the gradients of the parts
    #: of one operand whose ops share this key and builds their sum with ``join_part_grads``
    #: (one buffer), not one array the size of the operand per part, added up
    part_key: ClassVar[str | None] = None
    # ----- capabilities: what a machine may do with this op (it never tests the op's class) --
    #: ``out`` may be operand 0's buffer (elementwise ops)
    inplace: ClassVar[bool] = False
    #: the output is a view of operand 0 (``view_of``) and needs no buffer
    view: ClassVar[bool] = False
    #: operands whose shape, but not value, the op reads (they may die before it runs, and
    #: carry no gradient)
    shape_only: ClassVar[tuple[int, ...]] = ()
    #: the kernel only reads its operands and writes ``out``, keeping no state elsewhere, so
    #: a machine may build it again on other arrays (a caller's input lent with
    #: ``Let(..., copy=False)``, or a result array given to ``run_all(into=...)``)
    rebuildable: ClassVar[bool] = False
    #: a rebuildable kernel worth pointing at a caller's array instead of a copy of it: a
    #: tape machine lends an input given with ``Let(..., copy=False)`` only to such readers
    #: (matrix products, which hand the array to BLAS as it is)
    reads_lent: ClassVar[bool] = False
    #: the op updates an input when it runs (``Set``): ``subgraph_roots`` includes such nodes
    #: when they read only nodes of the subgraph
    statement: ClassVar[bool] = False
    #: the output always equals operand 0 (a debugging or ordering op, such as golgi's
    #: Trace): exporters write it as an identity
    identity: ClassVar[bool] = False

    def params(self) -> dict[str, Any]:
        """The op's parameters (shown in its repr and in graph drawings).

        The default lists the op's public instance attributes; override it when the
        parameters are stored otherwise, or to hide some.

        Example:
            >>> import graphcore as gc
            >>> x = gc.NewConstant(np.zeros((2, 3)))
            >>> gc.Sum(x, 0).op.params(), gc.Exp(x).op.params()
            ({'axes': 0, 'keepdims': False}, {})
        """
        return {k: v for k, v in vars(self).items() if not k.startswith("_") and k != "name"}

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        """The output's shape and dtype from the operands' :class:`TypeInfo` (every op overrides).

        An override raises ``ShapeError``/``DtypeError`` naming the op and the operands (see
        ``describe`` and ``same_dtype`` below) for operands it does not take. ``None``
        (free) sizes may appear when a node is built; a machine calls it again with concrete
        sizes when it plans a batch size.

        Example:
            >>> import graphcore as gc
            >>> op = gc.Add(gc.NewConstant(1.0), 2.0).op
            >>> op.infer([TypeInfo((None, 3), gc.Float64, "a"), TypeInfo((1, 3), gc.Float64, "b")])
            ((None, 3), Float64)
            >>> f32 = TypeInfo((3,), gc.Float32, "b")
            >>> op.infer([TypeInfo((3,), gc.Float64, "a"), f32])  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            graphcore.errors.DtypeError: Add: operands have different dtypes: ...
        """
        raise NotImplementedError

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        """A function of no arguments that computes the op of ``xs`` into ``out``.

        Every op overrides it (view ops override ``view_of`` instead). ``out`` is
        preallocated with the inferred shape and dtype. The kernel is made once and run at
        every machine run, on the same arrays, so it must write ``out`` in place and not
        allocate; per-run state (mode, random generator) comes from ``ctx``.

        Example:
            >>> import graphcore as gc
            >>> op = gc.Add(gc.NewConstant(1.0), 2.0).op
            >>> a, b, out = np.ones(3), np.arange(3.0), np.empty(3)
            >>> run = op.kernel([a, b], out, ExecContext())
            >>> _ = run(); out
            array([1., 2., 3.])
            >>> b[0] = 10.0; _ = run(); out
            array([11.,  2.,  3.])
        """
        raise NotImplementedError

    def view_of(self, xs: list[np.ndarray]) -> np.ndarray:
        """For view ops: the output as a view of ``xs[0]``.

        Ops with ``view = True`` override it instead of ``kernel``; the output then shares
        operand 0's memory and gets no buffer of its own.

        Example:
            >>> import graphcore as gc
            >>> op = gc.Reshape(gc.NewConstant(np.zeros((2, 3))), (3, 2)).op
            >>> src = np.arange(6.0).reshape(2, 3)
            >>> v = op.view_of([src]); v.shape, np.shares_memory(v, src)
            ((3, 2), True)
        """
        raise NotImplementedError

    def accumulate_kernel(
        self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext
    ) -> tuple[Kernel, Kernel] | None:
        """Kernels that write (``out = f(xs)``) and add (``out += f(xs)``) the op's result into
        ``out`` without a buffer of their own, or None when the op cannot for these arrays.

        A machine uses it to accumulate a learnable's gradient straight into ``w.grad`` (a
        weight gradient is a matrix product, a bias gradient a sum over the batch: BLAS does
        either with ``beta=1``). The default is None.

        Example:
            >>> import graphcore as gc
            >>> op = gc.MatMul(gc.NewConstant(np.ones((2, 3))), gc.NewConstant(np.ones((3, 1)))).op
            >>> out = np.zeros((2, 1)); write, add = op.accumulate_kernel(
            ...     [np.ones((2, 3)), np.ones((3, 1))], out, ExecContext())
            >>> write(); add(); out.tolist()
            [[6.0], [6.0]]
            >>> gc.Exp(gc.NewConstant(1.0)).op.accumulate_kernel([np.ones(())], out, ExecContext())
        """
        return None

    def check_bound(self, ins: Sequence[TypeInfo], shapes: Sequence[tuple[int, ...]]) -> None:
        """Check the operands' concrete ``shapes`` against their build-time ``ins`` when a
        machine binds the free (None) sizes; raise ``ShapeError`` naming the operands.

        ``infer`` has already passed on the concrete shapes; this is for rules that need both
        (two free dimensions must be bound to one batch size). The default checks nothing.

        Example:
            >>> import graphcore as gc
            >>> op = gc.Add(gc.NewConstant(1.0), 2.0).op
            >>> ins = [TypeInfo((None, 3), gc.Float64, "a"), TypeInfo((None, 3), gc.Float64, "b")]
            >>> op.check_bound(ins, [(4, 3), (1, 3)])  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            graphcore.errors.ShapeError: Add: 'a' and 'b' both have a free dimension 0, ...
        """

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        """Symbolic gradients of the cost for each operand, given ``g`` for this node.

        ``wants[i]`` says whether operand ``i`` needs one; return ``None`` where it does not
        (or where the gradient is zero), so no unused gradient nodes are built. Differentiable
        ops override it (or ``expand``), building each gradient from other ops on ``g``,
        ``node`` and ``node.children``, so it can be differentiated again; broadcasting is
        undone by ``Grad``, so a gradient may have the broadcast shape. ``gc.Grad`` calls it
        from the cost back.

        Example:
            >>> import graphcore as gc
            >>> g = gc.NewGraph()
            >>> a = gc.NewVector(g, gc.Float64, gc.WithShape(3), gc.WithName("a"))
            >>> b = gc.NewVector(g, gc.Float64, gc.WithShape(3), gc.WithName("b"))
            >>> y = gc.HadamardProd(a, b)
            >>> da, db = y.op.grad(y, gc.NewConstant(np.ones(3)), [True, False])
            >>> da.op.name, da.shape, db
            ('HadamardProd', (3,), None)
        """
        raise NotImplementedError(
            f"{self.name} has no gradient rule; give it grad(), or expand() for a fused op"
        )

    def expand(self, node: Node) -> Node | None:
        """For a fused op: ``node``'s value written with differentiable ops on
        ``node.children``, or None (the default) for an op with a ``grad`` of its own.

        A fused op does in one kernel what several ops would (``TanhGrad`` computes
        ``g * (1 - y*y)``); ``Grad`` differentiates through its expansion, so the fused node
        is as differentiable as the ops it stands for. The expansion is only built when a
        gradient must pass through the fused node (second derivatives), never for its value.

        Example:
            >>> import graphcore as gc
            >>> y = gc.Tanh(gc.NewConstant([0.5]))
            >>> (dy,) = y.op.grad(y, gc.NewConstant([1.0]), [True])
            >>> dy.op.name, dy.op.expand(dy).op.name
            ('TanhGrad', 'HadamardProd')
        """
        return None

    def join_part_grads(self, parts: Sequence[tuple[Node, Node]]) -> Node:
        """For an op with a ``part_key``: the gradient of operand 0 from its parts' gradients,
        ``parts`` being ``(part node, its gradient)`` pairs for nodes of ops with this key.

        ``Grad`` calls it, instead of each part's ``grad``, on the first part's op once it has
        every part's gradient: the gradients of the T steps of a sequence then make one buffer
        the size of the sequence, not T such buffers added up.

        Example:
            >>> import graphcore as gc
            >>> g = gc.NewGraph()
            >>> x = gc.NewVector(g, gc.Float64, gc.WithShape(3), gc.WithName("x"))
            >>> (dx,) = gc.Grad(x[0] * x[2], x)  # the gradients of two slices, in one node
            >>> dx.op.name, sorted(dx.op.params()["indices"])
            ('SlicesGrad', ['[0]', '[2]'])
        """
        raise NotImplementedError(f"{self.name} has no part_key: its nodes are not parts")

    def compute(self, xs: list[np.ndarray], ctx: ExecContext) -> np.ndarray:
        """Evaluate on concrete arrays, allocating the result (used by the Lisp machine).

        Example:
            >>> import graphcore as gc
            >>> gc.Exp(gc.NewConstant([0.0])).op.compute([np.zeros(1)], ExecContext())
            array([1.])
        """
        if self.view:
            return self.view_of(xs)
        ins = [TypeInfo(x.shape, _dtype_of(x), f"#{i}") for i, x in enumerate(xs)]
        shape, dtype = self.infer(ins)
        out = np.empty(shape, dtype=dtype.np)
        self.kernel(xs, out, ctx)()
        return out

    def __repr__(self) -> str:
        p = self.params()
        if not p:
            return self.name
        return f"{self.name}(" + ", ".join(f"{k}={v!r}" for k, v in p.items()) + ")"

    __str__ = __repr__


def _dtype_of(x: np.ndarray) -> Dtype:
    from ..dtypes import as_dtype

    return as_dtype(x.dtype)


class _Targets(threading.local):
    """The graphs ``building_in`` blocks name, innermost last, per thread: a block in one
    thread (the Lisp machine differentiating, a random node's draw) must not send the nodes
    another thread builds into its graph."""

    def __init__(self) -> None:
        self.stack: list[Graph | None] = []


_target = _Targets()

#: a build-time rewrite: ``(op, operand nodes)`` -> an equivalent node, or None to build as is
Rewrite = Callable[[Op, list[Node]], Node | None]
_REWRITES: dict[str, list[Rewrite]] = {}


def add_rewrite(op_name: str, rule: Rewrite) -> None:
    """Have ``apply_op`` try ``rule`` on every node of ops named ``op_name`` it builds.

    A rule returns an equivalent node (the stable or simpler form) or None; the first that
    answers wins. :mod:`graphcore.rewrite` registers Gorgonia's stabilising rewrites.

    Example:
        >>> import graphcore as gc
        >>> class Twice(Op):
        ...     name = "Twice"
        ...     def infer(self, ins): return ins[0].shape, ins[0].dtype
        >>> def twice_of_zero(op, nodes):  # Twice(0) is the same constant 0
        ...     x = nodes[0]
        ...     return x if x.is_constant and not x.value.any() else None
        >>> add_rewrite("Twice", twice_of_zero)
        >>> z = gc.NewConstant([0.0]); apply_op(Twice(), z) is z
        True
        >>> _REWRITES.pop("Twice") == [twice_of_zero]  # (the example cleans up)
        True
    """
    _REWRITES.setdefault(op_name, []).append(rule)


@contextlib.contextmanager
def building_in(graph: Graph | None) -> Iterator[None]:
    """Build new op nodes into ``graph`` (``None``: detached nodes) instead of the operands'.

    The Lisp machine uses it to differentiate without adding nodes to the user's graph.

    Example:
        >>> import graphcore as gc
        >>> with building_in(None):
        ...     n = gc.Neg(gc.NewConstant(1.0))
        >>> n.graph is None
        True
    """
    _target.stack.append(graph)
    try:
        yield
    finally:
        _target.stack.pop()


def _graph_of(children: Sequence[Node], op: Op) -> Graph | None:
    if _target.stack:
        return _target.stack[-1]
    graph = None
    for c in children:
        if c.graph is None:
            continue
        if graph is None:
            graph = c.graph
        elif c.graph is not graph and not (
            getattr(c.graph, "parent", None) is graph or getattr(graph, "parent", None) is c.graph
        ):
            raise GraphError(
                f"{op.name}: operands belong to different graphs "
                f"({c.name!r} is in {c.graph.name!r}, another operand in {graph.name!r}); "
                f"build every node of a computation in one graph"
            )
    return graph


def apply_op(op: Op, *children: Any) -> Node:
    """Build a node applying ``op`` to ``children`` (nodes or constants), checking types.

    Python numbers and arrays become constants of the float operands' dtype. A registered
    rewrite (``add_rewrite``) may return an equivalent node instead of a new one.

    Example:
        >>> import graphcore as gc
        >>> from graphcore.ops.elementwise import BinaryOp
        >>> apply_op(BinaryOp("Add"), gc.NewConstant(1.0), 2.0).shape
        ()
    """
    like = next((c for c in children if isinstance(c, Node) and c.dtype.is_float), None)
    nodes = [as_node(c, like) for c in children]
    if op.arity is not None and len(nodes) != op.arity:
        raise GraphError(f"{op.name} takes {op.arity} operand(s), got {len(nodes)}")
    ins = [TypeInfo(n.shape, n.dtype, n.name) for n in nodes]
    shape, dtype = op.infer(ins)
    for rule in _REWRITES.get(op.name, ()):
        done = rule(op, nodes)
        if done is not None:
            return done
    graph = _graph_of(nodes, op)
    return Node(graph, op, nodes, tuple(shape), dtype)


# ----- helpers shared by op modules -----------------------------------------------------------


def describe(t: TypeInfo) -> str:
    """``name (shape) dtype`` for messages."""
    return f"{t.name!r} {fmt_shape(t.shape)} {t.dtype}"


def same_dtype(opname: str, ins: Sequence[TypeInfo], float_only: bool = False) -> Dtype:
    """The common dtype of ``ins``, or a ``DtypeError`` naming each operand."""
    dt = ins[0].dtype
    for t in ins[1:]:
        if t.dtype != dt:
            raise DtypeError(
                f"{opname}: operands have different dtypes: "
                + ", ".join(describe(t) for t in ins)
                + "; graphcore does not cast implicitly, so make both the same dtype"
            )
    if float_only and not dt.is_float:
        raise DtypeError(
            f"{opname} needs Float32 or Float64 operands, got "
            + ", ".join(describe(t) for t in ins)
        )
    return dt
