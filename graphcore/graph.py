"""Graphs and nodes: the define-then-run expression graph.

A :class:`Graph` owns nodes. Input nodes (``NewMatrix`` and friends) hold values bound with
``Let`` or an initializer; op nodes are built by calling ops (``Mul``, ``Rectify``, ...) or
Python operators on nodes, and get values when a machine runs the graph.

Example:
    >>> import numpy as np, graphcore as gc
    >>> g = gc.NewGraph()
    >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
    >>> y = gc.Sum(x * 2.0)
    >>> gc.Let(x, np.ones((4, 3)))
    >>> gc.NewTapeMachine(g).run_all()
    >>> float(y.value)
    24.0
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .dtypes import Dtype, DtypeLike, as_dtype
from .errors import DtypeError, GraphError, ShapeError, ValueNotAvailableError
from .options import NodeOpt
from .shapes import Shape, as_shape, fmt_shape, is_concrete

if TYPE_CHECKING:  # pragma: no cover
    from .ops.base import Op

__all__ = [
    "Graph",
    "Node",
    "NewGraph",
    "NewScalar",
    "NewVector",
    "NewMatrix",
    "NewTensor",
    "NewConstant",
    "NodeFromAny",
    "Let",
    "as_node",
]

_ids = itertools.count()


class Graph:
    """A computation graph: an ordered set of nodes.

    Example:
        >>> g = NewGraph("mlp")
        >>> g.name, len(g)
        ('mlp', 0)
    """

    def __init__(self, name: str = "graph") -> None:
        self.name = name
        self._nodes: list[Node] = []
        self._by_name: dict[str, Node] = {}
        self._registries: dict[str, dict[str, Any]] = {}

    def registry(self, namespace: str) -> dict[str, Any]:
        """A table of named things kept with this graph, one per ``namespace``.

        For libraries built on graphcore that need names unique per graph (golgi keeps its
        layers under ``"layers"``). The table lives and dies with the graph.

        Example:
            >>> g = NewGraph(); g.registry("layers")["fc_1"] = "a layer"
            >>> g.registry("layers"), g.registry("other")
            ({'fc_1': 'a layer'}, {})
        """
        return self._registries.setdefault(namespace, {})

    def _add(self, node: Node) -> None:
        if node.op is None and not node.is_constant:
            other = self._by_name.get(node.name)
            if other is not None:
                raise GraphError(
                    f"graph {self.name!r} already has an input node named {node.name!r} "
                    f"(shape {fmt_shape(other.shape)}, {other.dtype}); give each input its own "
                    f"name with WithName(...), or reuse the existing node"
                )
            self._by_name[node.name] = node
        self._nodes.append(node)

    @property
    def nodes(self) -> list[Node]:
        """All nodes, in the order they were built (a topological order).

        Example:
            >>> NewGraph().nodes
            []
        """
        return list(self._nodes)

    def __len__(self) -> int:
        return len(self._nodes)

    def __iter__(self) -> Iterator[Node]:
        return iter(self._nodes)

    def inputs(self) -> list[Node]:
        """Input nodes (no op): data, learnables and constants.

        Example:
            >>> NewGraph().inputs()
            []
        """
        return [n for n in self._nodes if n.op is None]

    def roots(self) -> list[Node]:
        """Nodes no other node in this graph reads.

        Example:
            >>> NewGraph().roots()
            []
        """
        used = {id(c) for n in self._nodes for c in n.children}
        return [n for n in self._nodes if id(n) not in used]

    def by_name(self, name: str) -> Node:
        """The node with this name (inputs first, then op nodes).

        Example:
            >>> import graphcore as gc
            >>> g = gc.NewGraph(); x = gc.NewScalar(g, gc.Float64, gc.WithName("x"))
            >>> g.by_name("x") is x
            True
        """
        if name in self._by_name:
            return self._by_name[name]
        for n in self._nodes:
            if n.name == name:
                return n
        raise KeyError(f"graph {self.name!r} has no node named {name!r}")

    def subgraph_roots(self, *roots: Node) -> SubGraph:
        """The part of the graph needed to compute ``roots`` (run it with a machine).

        Example:
            >>> import graphcore as gc
            >>> g = gc.NewGraph(); x = gc.NewScalar(g, gc.Float64, gc.WithName("x"))
            >>> len(g.subgraph_roots(x))
            1
        """
        return SubGraph(self, ancestors(roots))

    def to_dot(self) -> str:
        """Graphviz text of this graph (see ``ToDot``).

        Example:
            >>> NewGraph().to_dot().startswith("digraph")
            True
        """
        from .dot import ToDot

        return ToDot(self)

    def _repr_svg_(self) -> str | None:
        from .dot import render_svg

        return render_svg(self)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        # IPython's text form, shown by Jupyter when _repr_svg_ gives None (no Graphviz)
        p.text(repr(self) if cycle else f"{self!r}\n{self.to_dot()}")

    def __repr__(self) -> str:
        return f"Graph({self.name!r}, {len(self._nodes)} nodes)"


class SubGraph(Graph):
    """The ancestors of some roots within a graph; machines accept it in place of a graph.

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph(); x = gc.NewScalar(g, gc.Float64, gc.WithName("x"))
        >>> g.subgraph_roots(x).nodes == [x]
        True
    """

    def __init__(self, parent: Graph, nodes: list[Node]) -> None:
        super().__init__(parent.name)
        self.parent = parent
        keep = {id(n) for n in nodes}
        self._nodes = [n for n in parent._nodes if id(n) in keep]
        self._by_name = {k: v for k, v in parent._by_name.items() if id(v) in keep}


class _Clobbered:
    """Marker for a value whose buffer the tape machine reused."""

    __slots__ = ("reader",)

    def __init__(self, reader: str) -> None:
        self.reader = reader


class Node:
    """A node of a graph: an input (data, learnable, constant) or the result of an op.

    Attributes: ``name``, ``shape`` (``None`` for a free dimension), ``dtype``, ``op``
    (``None`` for inputs), ``children``, ``value`` and ``grad``.

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph()
        >>> a = gc.NewVector(g, gc.Float64, gc.WithShape(3), gc.WithName("a"))
        >>> (a + 1.0).shape
        (3,)
    """

    __array_priority__ = 100  # numpy defers to our operators for ndarray <op> Node

    def __init__(
        self,
        graph: Graph | None,
        op: Op | None,
        children: Sequence[Node],
        shape: Shape,
        dtype: Dtype,
        name: str | None = None,
        constant: bool = False,
    ) -> None:
        self.id = next(_ids)
        self.graph = graph
        self.op = op
        self.children: tuple[Node, ...] = tuple(children)
        self.shape: Shape = shape
        self.dtype: Dtype = dtype
        self.is_constant = constant
        self.name = name if name is not None else f"{op.name if op else 'input'}_{self.id}"
        self._value: Any = None  # ndarray, None, or _Clobbered
        self._grad: np.ndarray | None = None
        # set by zero_grad(): the gradient is zero and its buffer is stale, so the next
        # accumulation overwrites instead of adding (saves solvers a pass over every weight)
        self._grad_zeroed = False
        self._borrowed = False  # value is the caller's array, lent by Let(..., copy=False)
        self.deriv: Node | None = None  # symbolic gradient node, set by Grad
        self.deriv_of: Node | None = None
        self.init: Any = None
        self.preset = False  # given a value when built (WithValue/WithInit): drawn as learnable
        if graph is not None:
            graph._add(self)

    # ----- values -----------------------------------------------------------------------------
    @property
    def value(self) -> np.ndarray:
        """The node's current value (set by ``Let``, an initializer, or a machine run).

        Raises ``ValueNotAvailableError`` when nothing computed it yet, or when the tape machine
        reused its buffer for a later node; keep it with ``WithWatchlist(node)``.

        Example:
            >>> import numpy as np, graphcore as gc
            >>> g = gc.NewGraph(); x = gc.NewScalar(g, gc.Float64, gc.WithName("x"))
            >>> gc.Let(x, 2.0); float(x.value)
            2.0
        """
        v = self._value
        if isinstance(v, np.ndarray):
            if v.ndim == 0 and self.op is not None:
                # a computed scalar lives in a buffer the next run overwrites; hand out its
                # value, so `losses.append(cost.value)` keeps each step's number
                return v[()]
            return v
        if isinstance(v, _Clobbered):
            raise ValueNotAvailableError(
                f"the value of {self.describe()} is gone: the tape machine reused its buffer "
                f"for {v.reader} to save memory. To read it, build the machine with "
                f"WithWatchlist({self.name}) (or pass the node to the machine's watchlist)"
            )
        if self.op is None:
            raise ValueNotAvailableError(
                f"{self.describe()} has no value yet: bind one with Let({self.name}, array)"
                f" or create it with WithInit(...)/WithValue(...)"
            )
        raise ValueNotAvailableError(
            f"{self.describe()} has no value yet: run a machine on its graph first "
            f"(vm = NewTapeMachine(g); vm.run_all())"
        )

    @property
    def has_value(self) -> bool:
        """True when ``value`` can be read.

        Example:
            >>> import graphcore as gc
            >>> g = gc.NewGraph(); gc.NewScalar(g, gc.Float64, gc.WithName("x")).has_value
            False
        """
        return isinstance(self._value, np.ndarray)

    @property
    def grad(self) -> np.ndarray:
        """The gradient of the cost with respect to this node.

        Bound gradients (``BindDualValues``) accumulate across runs until a solver zeroes them;
        otherwise this is the value of the symbolic gradient node made by ``Grad``.

        Example:
            >>> import numpy as np, graphcore as gc
            >>> g = gc.NewGraph()
            >>> w = gc.NewVector(g, gc.Float64, gc.WithShape(2), gc.WithName("w"),
            ...                                     gc.WithValue([1.0, 2.0]))
            >>> c = gc.Sum(gc.Square(w)); _ = gc.Grad(c, w)
            >>> gc.NewTapeMachine(g, gc.BindDualValues(w)).run_all(); w.grad.tolist()
            [2.0, 4.0]
        """
        if self._grad is not None:
            if self._grad_zeroed:
                self._grad.fill(0)
                self._grad_zeroed = False
            return self._grad
        if self.deriv is not None:
            return self.deriv.value
        raise ValueNotAvailableError(
            f"{self.describe()} has no gradient: call Grad(cost, {self.name}) and run a machine "
            f"(NewTapeMachine(g, BindDualValues({self.name})) accumulates it into .grad)"
        )

    @property
    def is_lent(self) -> bool:
        """True when ``value`` is the caller's own array, lent with ``Let(node, a, copy=False)``.

        Write into ``value`` only when it is not lent: a lent array belongs to the caller.

        Example:
            >>> import numpy as np, graphcore as gc
            >>> g = gc.NewGraph(); x = gc.NewVector(g, gc.Float64, gc.WithShape(2))
            >>> gc.Let(x, np.zeros(2), copy=False); x.is_lent
            True
            >>> gc.Let(x, [1.0, 2.0]); x.is_lent
            False
        """
        return self._borrowed

    def zero_grad(self) -> None:
        """Set the bound gradient to zero (lazily: the next run overwrites it instead of adding).

        Solvers call this after each update, as Gorgonia's solvers zero the gradients.

        Example:
            >>> import graphcore as gc
            >>> g = gc.NewGraph()
            >>> w = gc.NewVector(g, gc.Float64, gc.WithShape(2), gc.WithName("w"),
            ...                  gc.WithValue([1.0, 2.0]), gc.WithGrad([3.0, 4.0]))
            >>> w.zero_grad(); w.grad.tolist()
            [0.0, 0.0]
        """
        if self._grad is not None:
            self._grad_zeroed = True

    # ----- description ------------------------------------------------------------------------
    @property
    def is_input(self) -> bool:
        """True for nodes without an op (data, learnables, constants).

        Example:
            >>> import graphcore as gc
            >>> gc.NewConstant(1.0).is_input
            True
        """
        return self.op is None

    @property
    def ndim(self) -> int:
        """Number of dimensions.

        Example:
            >>> import graphcore as gc
            >>> gc.NewConstant([1.0, 2.0]).ndim
            1
        """
        return len(self.shape)

    def describe(self) -> str:
        """Short description used in error messages: name, op, shape and dtype.

        Example:
            >>> import graphcore as gc
            >>> gc.NewConstant(1.0, name="one").describe()
            "constant 'one' () Float64"
        """
        kind = "constant" if self.is_constant else ("input" if self.op is None else f"{self.op}")
        return f"{kind} {self.name!r} {fmt_shape(self.shape)} {self.dtype}"

    def __repr__(self) -> str:
        if self.op is None:
            kind = "Constant" if self.is_constant else "Input"
            return f"<{kind} {self.name} {fmt_shape(self.shape)} {self.dtype}>"
        args = ", ".join(c.name for c in self.children)
        return f"<{self.name} = {self.op}({args}) {fmt_shape(self.shape)} {self.dtype}>"

    # ----- operators --------------------------------------------------------------------------
    def _ops(self):  # late import: ops import this module
        from . import ops

        return ops

    def __add__(self, other: Any) -> Node:
        return self._ops().Add(self, other)

    def __radd__(self, other: Any) -> Node:
        return self._ops().Add(other, self)

    def __sub__(self, other: Any) -> Node:
        return self._ops().Sub(self, other)

    def __rsub__(self, other: Any) -> Node:
        return self._ops().Sub(other, self)

    def __mul__(self, other: Any) -> Node:
        return self._ops().HadamardProd(self, other)

    def __rmul__(self, other: Any) -> Node:
        return self._ops().HadamardProd(other, self)

    def __truediv__(self, other: Any) -> Node:
        return self._ops().HadamardDiv(self, other)

    def __rtruediv__(self, other: Any) -> Node:
        return self._ops().HadamardDiv(other, self)

    def __matmul__(self, other: Any) -> Node:
        return self._ops().MatMul(self, other)

    def __rmatmul__(self, other: Any) -> Node:
        return self._ops().MatMul(other, self)

    def __pow__(self, other: Any) -> Node:
        return self._ops().Pow(self, other)

    def __rpow__(self, other: Any) -> Node:
        return self._ops().Pow(other, self)

    def __neg__(self) -> Node:
        return self._ops().Neg(self)

    def __pos__(self) -> Node:
        return self

    def __getitem__(self, index: Any) -> Node:
        return self._ops().Slice(self, index if isinstance(index, tuple) else (index,))

    @property
    def T(self) -> Node:
        """The transpose (reversed axes), as a view.

        Example:
            >>> import graphcore as gc
            >>> gc.NewConstant([[1.0, 2.0]]).T.shape
            (2, 1)
        """
        return self._ops().Transpose(self)

    def __bool__(self) -> bool:
        raise TypeError(
            f"the truth value of node {self.name!r} is not known when the graph is built; "
            f"use Gt/Lt/Eq to build a comparison node"
        )

    __hash__ = object.__hash__


# ----- constructors ---------------------------------------------------------------------------


def NewGraph(name: str = "graph") -> Graph:
    """A new, empty graph.

    Example:
        >>> NewGraph()
        Graph('graph', 0 nodes)
    """
    return Graph(name)


def _parse_opts(opts: Sequence[NodeOpt], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for o in opts:
        if not isinstance(o, NodeOpt):
            raise TypeError(
                f"{where}: {o!r} is not a node option; use WithShape, WithName, WithInit, "
                f"WithValue or WithGrad"
            )
        out[o.kind] = o.arg
    return out


def _cast_value(value: Any, dt: Dtype, who: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype != dt.np:
        if not np.can_cast(arr.dtype, dt.np, casting="same_kind") or (
            arr.dtype.kind == "f" and dt.np.kind in "iub"
        ):
            raise DtypeError(
                f"{who}: cannot use a {arr.dtype} value for a {dt} node without losing "
                f"information; convert it first (e.g. arr.astype(np.{dt.np}))"
            )
    return np.array(arr, dtype=dt.np, copy=True, order="C")


def _new_input(
    g: Graph, dt: DtypeLike, ndim: int | None, opts: Sequence[NodeOpt], ctor: str
) -> Node:
    if not isinstance(g, Graph):
        raise TypeError(f"{ctor}: the first argument must be a Graph (NewGraph()), got {g!r}")
    dtype = as_dtype(dt)
    o = _parse_opts(opts, ctor)
    value = o.get("value")
    if "shape" in o:
        shape = as_shape(o["shape"])
    elif value is not None:
        shape = np.shape(value)
    elif ndim == 0:
        shape = ()
    else:
        raise ShapeError(f"{ctor}: give the node a shape with WithShape(...)")
    name = o.get("name")
    if ndim is not None and len(shape) != ndim:
        raise ShapeError(
            f"{ctor}({name or ''}): a {ctor[3:].lower()} has {ndim} dimension(s), but the shape "
            f"given is {fmt_shape(shape)}; use NewTensor for other ranks"
        )
    node = Node(g, None, (), shape, dtype, name)
    if value is not None:
        Let(node, value)
        node.preset = True
    if "init" in o:
        if not is_concrete(shape):
            raise ShapeError(
                f"{ctor}({node.name}): cannot initialise a node of shape {fmt_shape(shape)} "
                f"with a free (None) dimension; learnables need a fixed shape"
            )
        node.init = o["init"]
        arr = o["init"](dtype, shape)
        Let(node, arr)
    if "grad" in o:
        if not node.has_value:
            raise GraphError(f"{ctor}({node.name}): WithGrad needs a value (WithValue/WithInit)")
        grad = _cast_value(o["grad"], dtype, f"WithGrad for {node.name!r}")
        if grad.shape != node.value.shape:
            raise ShapeError(
                f"WithGrad for {node.name!r}: gradient shape {fmt_shape(grad.shape)} differs "
                f"from the value's {fmt_shape(node.value.shape)}"
            )
        node._grad = grad
    return node


def NewScalar(g: Graph, dt: DtypeLike, *opts: NodeOpt) -> Node:
    """A scalar input node.

    Example:
        >>> import graphcore as gc
        >>> gc.NewScalar(gc.NewGraph(), gc.Float32, gc.WithName("lr")).shape
        ()
    """
    return _new_input(g, dt, 0, opts, "NewScalar")


def NewVector(g: Graph, dt: DtypeLike, *opts: NodeOpt) -> Node:
    """A 1-D input node.

    Example:
        >>> import graphcore as gc
        >>> gc.NewVector(gc.NewGraph(), gc.Float32, gc.WithShape(5), gc.WithName("v")).shape
        (5,)
    """
    return _new_input(g, dt, 1, opts, "NewVector")


def NewMatrix(g: Graph, dt: DtypeLike, *opts: NodeOpt) -> Node:
    """A 2-D input node; ``WithShape(None, n)`` leaves the batch size free.

    Example:
        >>> import graphcore as gc
        >>> gc.NewMatrix(gc.NewGraph(), gc.Float32, gc.WithShape(None, 784), gc.WithName("x")).shape
        (None, 784)
    """
    return _new_input(g, dt, 2, opts, "NewMatrix")


def NewTensor(g: Graph, dt: DtypeLike, dims: int | None = None, *opts: NodeOpt) -> Node:
    """An input node of any rank (``dims`` checks the rank when given).

    Example:
        >>> import graphcore as gc
        >>> gc.NewTensor(gc.NewGraph(), gc.Float32, 4, gc.WithShape(None, 1, 28, 28),
        ...              gc.WithName("img")).ndim
        4
    """
    if isinstance(dims, NodeOpt):
        opts = (dims, *opts)
        dims = None
    return _new_input(g, dt, dims, opts, "NewTensor")


def NewConstant(value: Any, name: str | None = None, dtype: DtypeLike | None = None) -> Node:
    """A constant node; it belongs to no graph until an op uses it.

    Python floats become Float64 unless ``dtype`` is given; ops cast constants to their
    other operand's float type.

    Example:
        >>> import graphcore as gc
        >>> gc.NewConstant(2.0).value
        array(2.)
    """
    arr = np.asarray(value)
    if dtype is not None:
        dt = as_dtype(dtype)
    elif arr.dtype.kind == "f":
        dt = as_dtype(arr.dtype) if arr.dtype in (np.float32, np.float64) else as_dtype("float64")
    elif arr.dtype.kind in "iu":
        dt = as_dtype("int64") if arr.dtype != np.int32 else as_dtype("int32")
    elif arr.dtype.kind == "b":
        dt = as_dtype("bool")
    else:
        raise DtypeError(f"NewConstant: unsupported value {value!r} of dtype {arr.dtype}")
    if name is None:
        name = str(value) if arr.ndim == 0 else f"const{arr.shape}"
    node = Node(None, None, (), arr.shape, dt, name, constant=True)
    node._value = np.array(arr, dtype=dt.np, copy=True)
    node._value.flags.writeable = False
    return node


def NodeFromAny(g: Graph, value: Any, *opts: NodeOpt) -> Node:
    """An input node of ``value``'s shape and dtype, holding a copy of it.

    Example:
        >>> import numpy as np, graphcore as gc
        >>> n = gc.NodeFromAny(gc.NewGraph(), np.zeros((2, 2), np.float32), gc.WithName("z"))
        >>> n.dtype, n.shape
        (Float32, (2, 2))
    """
    arr = np.asarray(value)
    return _new_input(g, arr.dtype, None, (*opts, NodeOpt("value", arr)), "NodeFromAny")


def as_node(x: Any, like: Node | None = None) -> Node:
    """``x`` if it is a node, else a constant (float constants take ``like``'s float dtype).

    Example:
        >>> as_node(3.0).is_constant
        True
    """
    if isinstance(x, Node):
        return x
    if like is not None and like.dtype.is_float and np.asarray(x).dtype.kind in "fiub":
        return NewConstant(x, dtype=like.dtype)
    return NewConstant(x)


def Let(node: Node, value: Any, copy: bool = True) -> None:
    """Bind a value to an input node, checking its shape and dtype.

    A ``None`` dimension accepts any size. Safe casts only (float64 data into a float32 node
    is allowed as numpy's ``same_kind`` cast; floats into an int node are not). The node keeps
    its own copy, so later changes to ``value`` do not leak into the graph.

    ``copy=False`` lends the array instead when it already has the node's dtype and is
    C-contiguous (else it is copied as usual): a tape machine whose only readers of the
    node are matrix products reads it in place, skipping a copy of the whole batch (10% of
    predicting at batch 10,000). Do not change the array until the machine has run.

    Example:
        >>> import numpy as np, graphcore as gc
        >>> g = gc.NewGraph()
        >>> x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 2), gc.WithName("x"))
        >>> gc.Let(x, np.ones((5, 2))); x.value.shape
        (5, 2)
        >>> data = np.zeros((3, 2), np.float32); gc.Let(x, data, copy=False); x.value is data
        True
    """
    if not isinstance(node, Node):
        raise TypeError(f"Let: the first argument must be a node, got {type(node).__name__}")
    if node.op is not None or node.is_constant:
        raise GraphError(
            f"Let: {node.describe()} is not an input node; only inputs made with "
            f"NewScalar/NewVector/NewMatrix/NewTensor take values"
        )
    try:
        arr = np.asarray(value)
    except Exception as e:  # noqa: BLE001 - numpy raises many types for bad input
        raise TypeError(
            f"Let({node.name}): cannot turn {type(value).__name__} into an array"
        ) from e
    if arr.dtype == object:
        raise TypeError(f"Let({node.name}): cannot bind an object array; give a numeric array")
    if len(arr.shape) != len(node.shape) or any(
        d is not None and d != a for d, a in zip(node.shape, arr.shape)
    ):
        raise ShapeError(
            f"Let({node.name}): node {node.name!r} expects shape {fmt_shape(node.shape)}, "
            f"got an array of shape {fmt_shape(arr.shape)}"
            + ("; None dimensions take any size" if None in node.shape else "")
        )
    dt = node.dtype
    if arr.dtype != dt.np:
        if not np.can_cast(arr.dtype, dt.np, casting="same_kind") or (
            arr.dtype.kind == "f" and dt.np.kind in "iub"
        ):
            raise DtypeError(
                f"Let({node.name}): node {node.name!r} is {dt}, got a {arr.dtype} array; "
                f"convert it first (arr.astype(np.{dt.np}))"
            )
    narrowing = arr.dtype.kind == "f" and dt.np.kind == "f" and arr.dtype.itemsize > dt.itemsize
    if narrowing:
        with np.errstate(over="ignore"):
            cast = arr.astype(dt.np)
        if not np.isfinite(cast).all() and np.isfinite(arr).all():
            raise DtypeError(
                f"Let({node.name}): values of the {arr.dtype} array overflow the {dt} node "
                f"{node.name!r} (largest magnitude {float(np.abs(arr).max()):.3g}); rescale the "
                f"data or use a Float64 node"
            )
        arr = cast
    if not copy and arr.dtype == dt.np and arr.flags.c_contiguous and arr.flags.aligned:
        node._value = arr
        node._borrowed = True
        return
    cur = node._value
    # Copy into the existing buffer so machines that bound it keep seeing the new data (never
    # into a lent array: that is the caller's).
    if (
        isinstance(cur, np.ndarray)
        and not node._borrowed
        and cur.shape == arr.shape
        and cur.flags.writeable
    ):
        np.copyto(cur, arr, casting="same_kind")
    else:
        node._value = np.array(arr, dtype=dt.np, copy=True, order="C")
        node._borrowed = False


def ancestors(roots: Iterable[Node]) -> list[Node]:
    """All nodes ``roots`` depend on (themselves included), in topological order; iterative.

    Example:
        >>> import graphcore as gc
        >>> a = gc.NewConstant(1.0); b = gc.Neg(a)
        >>> [n.name for n in ancestors([b])] == [a.name, b.name]
        True
    """
    order: list[Node] = []
    seen: set[int] = set()
    for root in roots:
        if id(root) in seen:
            continue
        stack: list[tuple[Node, int]] = [(root, 0)]
        seen.add(id(root))
        while stack:
            node, i = stack[-1]
            if i < len(node.children):
                stack[-1] = (node, i + 1)
                c = node.children[i]
                if id(c) not in seen:
                    seen.add(id(c))
                    stack.append((c, 0))
            else:
                stack.pop()
                order.append(node)
    return order
