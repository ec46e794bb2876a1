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

from .dtypes import Dtype
from .errors import GraphError, ValueNotAvailableError
from .shapes import Shape, fmt_shape
from .storage import Slot

if TYPE_CHECKING:  # pragma: no cover
    from .ops.base import Op

__all__ = ["Graph", "SubGraph", "Node", "NewGraph", "ancestors"]

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
        """The part of the graph needed to compute ``roots`` (run it with a machine), plus the
        statements that update its inputs (``Set(w, ...)`` nodes reading only this part),
        as Gorgonia's ``SubgraphRoots`` discovers them.

        Example:
            >>> import graphcore as gc
            >>> g = gc.NewGraph(); x = gc.NewScalar(g, gc.Float64, gc.WithName("x"))
            >>> len(g.subgraph_roots(x))
            1
        """
        nodes = ancestors(roots)
        inside = {id(n) for n in nodes}
        extra = [
            n for n in self._nodes
            if n.op is not None and n.op.statement and id(n) not in inside
            and all(id(c) in inside or c.graph is None for c in n.children)
        ]
        return SubGraph(self, ancestors([*nodes, *extra]) if extra else nodes)

    def exact_subgraph_roots(self, *roots: Node) -> SubGraph:
        """Exactly the part of the graph needed to compute ``roots``: their ancestors, and no
        statements (``subgraph_roots`` adds ``Set`` nodes that update that part's inputs).

        Example:
            >>> import graphcore as gc
            >>> g = gc.NewGraph(); x = gc.NewScalar(g, gc.Float64, gc.WithName("x"))
            >>> y = gc.Exp(x); z = gc.Neg(x)
            >>> [n is y for n in g.exact_subgraph_roots(y).nodes]
            [False, True]
        """
        return SubGraph(self, ancestors(roots))

    def subgraph(self, nodes: Iterable[Node]) -> SubGraph:
        """A subgraph holding exactly ``nodes`` (a machine on it also runs what they need).

        Example:
            >>> import graphcore as gc
            >>> g = gc.NewGraph(); x = gc.NewScalar(g, gc.Float64, gc.WithName("x"))
            >>> y = gc.Exp(x); len(g.subgraph([y]))
            1
        """
        nodes = list(nodes)
        for n in nodes:
            if not isinstance(n, Node):
                raise TypeError(f"subgraph: expected nodes, got {type(n).__name__}")
            if n.graph is not self and getattr(n.graph, "parent", None) is not self:
                raise GraphError(f"subgraph: {n.describe()} is not a node of graph {self.name!r}")
        return SubGraph(self, nodes)

    def clone(
        self, memo: dict[int, Node] | None = None, share: Iterable[Node] = ()
    ) -> Graph:
        """A copy of the graph: new nodes with the same names, ops and structure, holding
        copies of the values and bound gradients (so the copy trains independently).

        ``memo``, if given, is filled with ``id(old node) -> new node``. Constants (which
        belong to no graph) are shared; gradient links (``deriv``) point into the copy.
        Nodes in ``share`` (learnables, say) keep their value arrays shared with the copy
        instead: a copy per thread then runs its own machine on the same weights, each
        thread with its own inputs and results.

        Example:
            >>> import graphcore as gc
            >>> g = gc.NewGraph(); w = gc.NewScalar(g, gc.Float64, gc.WithName("w"),
            ...                                     gc.WithValue(2.0))
            >>> y = gc.Square(w); g2 = g.clone(); w2 = g2.by_name("w")
            >>> w2 is not w, float(w2.value), len(g2)
            (True, 2.0, 2)
            >>> g.clone(share=[w]).by_name("w").value is w.value
            True
        """
        memo = {} if memo is None else memo
        shared = {id(n) for n in share}
        out = Graph(self.name)
        for n in self._nodes:
            memo[id(n)] = n._copy_into(
                out, [memo.get(id(c), c) for c in n.children], share=id(n) in shared
            )
        for n in self._nodes:
            new = memo[id(n)]
            if n.deriv is not None:
                new.deriv = memo.get(id(n.deriv))
            if n.deriv_of is not None:
                new.deriv_of = memo.get(id(n.deriv_of))
        return out

    def unbind_all(self) -> None:
        """Drop every node's value and bound gradient (inputs and learnables included).

        Example:
            >>> import graphcore as gc
            >>> g = gc.NewGraph(); w = gc.NewScalar(g, gc.Float64, gc.WithValue(1.0))
            >>> g.unbind_all(); w.has_value
            False
        """
        for n in self._nodes:
            if not n.is_constant:
                n.slot.clear()
                n.slot.bind_grad(None)

    def unbind_all_non_inputs(self) -> None:
        """Drop the values of every op node (the results of runs); inputs, learnables and
        their gradients stay. A machine's next run computes them again.

        Example:
            >>> import graphcore as gc
            >>> g = gc.NewGraph(); w = gc.NewScalar(g, gc.Float64, gc.WithValue(1.0))
            >>> y = gc.Exp(w); gc.NewTapeMachine(g).run_all(); g.unbind_all_non_inputs()
            >>> y.has_value, w.has_value
            (False, True)
        """
        for n in self._nodes:
            if n.op is not None:
                n.slot.clear()

    if TYPE_CHECKING:  # installed by graphcore.dot, which imports this module

        def to_dot(self) -> str: ...

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
        self.slot = Slot()  # value and gradient storage: see graphcore.storage
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
        v = self.slot.value
        if v is not None:
            if v.ndim == 0 and self.op is not None:
                # a computed scalar lives in a buffer the next run overwrites; hand out its
                # value, so `losses.append(cost.value)` keeps each step's number
                return v[()]
            return v
        by = self.slot.clobbered_by
        if by is not None:
            raise ValueNotAvailableError(
                f"the value of {self.describe()} is gone: the tape machine reused its buffer "
                f"for {by} to save memory. To read it, build the machine with "
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
        return self.slot.value is not None

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
        grad = self.slot.read_grad()
        if grad is not None:
            return grad
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
        return self.slot.lent

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
        self.slot.zero_grad()

    def unbind_grad(self) -> None:
        """Drop the bound gradient buffer; a machine built with ``BindDualValues`` binds a
        fresh zeroed one. (``w.grad`` then reads the symbolic gradient node's value, if any.)

        Example:
            >>> import graphcore as gc
            >>> g = gc.NewGraph()
            >>> w = gc.NewVector(g, gc.Float64, gc.WithShape(1), gc.WithValue([1.0]),
            ...                  gc.WithGrad([3.0]))
            >>> w.unbind_grad(); w.has_grad
            False
        """
        self.slot.bind_grad(None)

    @property
    def has_grad(self) -> bool:
        """True when a gradient buffer is bound (``BindDualValues``, ``WithGrad``).

        Example:
            >>> import graphcore as gc
            >>> gc.NewScalar(gc.NewGraph(), gc.Float64, gc.WithValue(1.0)).has_grad
            False
        """
        return self.slot.grad is not None

    # ----- description ------------------------------------------------------------------------
    def clone(self, name: str | None = None) -> Node:
        """A copy of this node in the same graph: the same op and operands (an op node) or a
        new input of the same shape and dtype (an input, named ``name``, by default
        ``<name>_clone``), holding a copy of the value.

        Example:
            >>> import graphcore as gc
            >>> g = gc.NewGraph(); w = gc.NewScalar(g, gc.Float64, gc.WithName("w"),
            ...                                     gc.WithValue(2.0))
            >>> w2 = w.clone(); w2.name, float(w2.value), w2.graph is g
            ('w_clone', 2.0, True)
        """
        if self.is_constant or self.graph is None:
            raise GraphError(f"clone: {self.describe()} belongs to no graph; use it as it is")
        if name is None and self.op is None:
            name, i = f"{self.name}_clone", 1
            while name in self.graph._by_name:
                i += 1
                name = f"{self.name}_clone{i}"
        return self._copy_into(self.graph, list(self.children), name)

    def _copy_into(
        self, graph: Graph, children: list[Node], name: str | None = None, share: bool = False
    ) -> Node:
        if self.is_constant:
            return self
        new = Node(graph, self.op, children, self.shape, self.dtype,
                   name if name is not None else self.name)
        new.init, new.preset = self.init, self.preset
        v, g = self.slot.value, self.slot.grad
        if v is not None and self.op is None:
            new.slot.bind(v if share else np.array(v, copy=True), lent=share)
        if g is not None and not share:
            new.slot.bind_grad(np.array(self.slot.read_grad(), copy=True))
        return new

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

    # Python operators (+ - * / @ ** unary -, [], .T) are installed by graphcore.ops, which
    # defines what they build; these declarations are for type checkers only.
    if TYPE_CHECKING:  # pragma: no cover

        def __add__(self, other: Any) -> Node: ...
        def __radd__(self, other: Any) -> Node: ...
        def __sub__(self, other: Any) -> Node: ...
        def __rsub__(self, other: Any) -> Node: ...
        def __mul__(self, other: Any) -> Node: ...
        def __rmul__(self, other: Any) -> Node: ...
        def __truediv__(self, other: Any) -> Node: ...
        def __rtruediv__(self, other: Any) -> Node: ...
        def __matmul__(self, other: Any) -> Node: ...
        def __rmatmul__(self, other: Any) -> Node: ...
        def __pow__(self, other: Any) -> Node: ...
        def __rpow__(self, other: Any) -> Node: ...
        def __neg__(self) -> Node: ...
        def __pos__(self) -> Node: ...
        def __getitem__(self, index: Any) -> Node: ...
        @property
        def T(self) -> Node: ...

    def __bool__(self) -> bool:
        raise TypeError(
            f"the truth value of node {self.name!r} is not known when the graph is built; "
            f"use Gt/Lt/Eq to build a comparison node"
        )

    __hash__ = object.__hash__


def NewGraph(name: str = "graph") -> Graph:
    """A new, empty graph.

    Example:
        >>> NewGraph()
        Graph('graph', 0 nodes)
    """
    return Graph(name)


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
