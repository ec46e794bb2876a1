"""Combinators: ``ComposeSeq``, ``Compose``, ``L``, ``Apply``, identity ``I``, joins ``Add`` and
``HadamardProd``.

``ComposeSeq(x, t1, t2, ...)`` with an input node first builds every layer right away (so
``model()`` works) and ``fwd(x)`` returns the output; ``fwd`` on another input node of the same
graph reuses the same layers (weight sharing). Without an input node it is built by its first
``fwd``.

Example:
    >>> import graphcore as gc, golgi as G
    >>> g = gc.NewGraph()
    >>> x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 8), gc.WithName("x"))
    >>> net = G.ComposeSeq(x, G.L(G.ConsFC, G.WithShape(4), G.WithActivation(gc.Tanh)),
    ...                    G.L(G.ConsFC(G.WithShape(2))))
    >>> net.fwd(x).shape, len(net.model())
    ((None, 2), 4)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import graphcore as gc
from graphcore.shapes import broadcast_shapes, fmt_shape

from .layer import Layer, per_sample
from .options import LayerOpt
from .summary import SummaryTable
from .term import TRANSIENT, Term, Thunk

__all__ = [
    "Composition",
    "Join",
    "Identity",
    "I",
    "ComposeSeq",
    "Compose",
    "L",
    "Apply",
    "Add",
    "HadamardProd",
    "K",
    "Redefine",
]


def _as_term(t: Any, where: str) -> Term:
    if isinstance(t, Term):
        return t
    if isinstance(t, type) and issubclass(t, Layer):
        return Thunk(t, ())
    if callable(t) and getattr(t, "__name__", "").startswith("Cons"):
        return L(t)
    if isinstance(t, gc.Node):
        raise TypeError(
            f"{where}: got node {t.name!r} where a layer or term was expected; only the first "
            f"argument of ComposeSeq may be the input node"
        )
    if isinstance(t, LayerOpt):
        raise TypeError(
            f"{where}: got the option {t!r} on its own; options go inside a constructor: "
            f"L(ConsFC, {t!r}) or L(ConsFC({t!r}))"
        )
    raise TypeError(
        f"{where}: {t!r} ({type(t).__name__}) is not a term; use L(ConsFC, options...), a built "
        f"layer, a composition, I, Add(...) or HadamardProd(...)"
    )


class Composition(Term):
    """Terms applied one after another; made by ``ComposeSeq`` and ``Compose``.

    Attributes: ``terms`` (as written, thunks replaced by the layers they built), ``input``
    and ``out`` (the first input node and its output, or None). A nested composition stays
    one term, so it keeps its layers and works as a sub-model once the outer one is built
    (``enc.model()``, ``enc.fwd(other_x)`` with the same weights); ``layers``, ``repr`` and
    ``summary`` show the nesting flattened.

    Example:
        >>> import graphcore as gc, golgi as G
        >>> g = gc.NewGraph()
        >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
        >>> c = G.ComposeSeq(x, G.L(G.ConsFC(G.WithShape(2), G.WithName("a"))))
        >>> c.layers[0].name, c.out.shape
        ('a', (None, 2))
    """

    def __init__(self, terms: list[Term]) -> None:
        # the identity adds nothing to a sequence
        self.terms: list[Term] = [t for t in terms if t is not I]
        self.input: gc.Node | None = None
        self.out: gc.Node | None = None
        self._cache: dict[int, tuple[gc.Node, gc.Node]] = {}

    @property
    def built(self) -> bool:
        """True once every thunk has built its layer (after the first ``fwd``).

        Example:
            >>> import graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
            >>> c = G.ComposeSeq(G.L(G.ConsFC(G.WithShape(2))))
            >>> c.built, c.fwd(x).shape, c.built
            (False, (None, 2), True)
        """
        return all(t.built for t in self.terms)

    def fwd(self, x: gc.Node) -> gc.Node:
        """Apply the terms in order to ``x`` (building layers on the first call).

        Example:
            >>> import graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
            >>> c = G.ComposeSeq(G.L(G.ConsFC(G.WithShape(2)))); c.fwd(x).shape
            (None, 2)
        """
        if not isinstance(x, gc.Node):
            raise TypeError(f"Composition.fwd takes a graph node, got {type(x).__name__}")
        hit = self._cache.get(id(x))
        if hit is not None and hit[0] is x:
            return hit[1]
        h = x
        for i, t in enumerate(self.terms):
            t = self.terms[i] = t.instantiate(h)
            h = t.fwd(h)
        self._cache[id(x)] = (x, h)
        if self.input is None:
            self.input, self.out = x, h
        return h

    def flops(self, batch: int = 1) -> int:
        """The terms' FLOPs summed (joins count their combining too)."""
        return sum(t.flops(batch) for t in self.terms)

    @property
    def layers(self) -> list[Layer]:
        """The layers of every term, in order, nested compositions flattened."""
        out: list[Layer] = []
        for t in self.terms:
            out.extend(t.layers)
        return out

    def named_learnables(self) -> dict[str, gc.Node]:
        """As :meth:`Term.named_learnables`; raises ``GraphError`` before the first ``fwd``."""
        if not self.built:
            raise gc.GraphError(
                "this composition is not built yet, so it has no learnables: apply it to an "
                "input first (out = net.fwd(x)), or give the input to ComposeSeq(x, ...)"
            )
        return super().named_learnables()

    def summary_input(self) -> tuple[str, tuple[int | None, ...], gc.Dtype] | None:
        """The input node it was built on (name, shape, dtype); else as :class:`Term`'s."""
        n = self.input
        if n is not None:
            return n.name, tuple(n.shape), n.dtype
        return super().summary_input()

    def summary_rows(
        self, table: SummaryTable, shape: tuple[int | None, ...], dtype: gc.Dtype
    ) -> tuple[tuple[int | None, ...], gc.Dtype]:
        """Each term's rows in order, each term's output feeding the next."""
        for t in self.terms:
            shape, dtype = t.summary_rows(table, shape, dtype)
        return shape, dtype

    def flat_terms(self) -> list[Term]:
        """The terms in order, nested compositions spliced in."""
        return [f for t in self.terms for f in t.flat_terms()]

    def __getstate__(self) -> dict[str, Any]:
        """What ``pickle`` keeps: the terms (layers with their weights and state), and the
        input node's name, shape and dtype; the graph is built again when unpickled.

        Example:
            >>> import pickle, numpy as np, graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
            >>> net = G.ComposeSeq(x, G.L(G.ConsFC(G.WithShape(4), G.WithActivation(gc.Tanh))),
            ...                    G.L(G.ConsFC(G.WithShape(2))))
            >>> copy = pickle.loads(pickle.dumps(net))
            >>> X = np.ones((3, 3)); np.array_equal(copy.predict(X), net.predict(X))
            True
            >>> copy.input.graph is copy.layers[1].graph, copy.input.graph is g
            (True, False)
        """
        state = dict(self.__dict__)
        for k in TRANSIENT:
            state.pop(k, None)
        state["_cache"] = {}
        state["out"] = None
        x = self.input
        # an input node is rebuilt from its description; an intermediate one (a composition
        # nested in another) is rebuilt by the outer composition
        state["input"] = None if x is None or x.op is not None else (x.name, x.shape, x.dtype)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        # __getstate__ left the input node's description in its place
        spec = cast("tuple[str, tuple[int | None, ...], gc.Dtype] | None", self.input)
        self.input = None
        if spec is None:
            return
        name, shape, dtype = spec
        _forget_graph(self)
        x = gc.NewTensor(gc.NewGraph(), dtype, len(shape), gc.WithShape(*shape), gc.WithName(name))
        self.fwd(x)

    def repr_tree(self, indent: str = "") -> str:
        """``ComposeSeq(`` with the input node and the flat terms, one per line."""
        inner = indent + "    "
        # the input node by name when it is one of the user's inputs; a composition nested in
        # another one (a residual block) starts from an intermediate node, named by the graph
        shown = self.input is not None and self.input.op is None
        items = ([self.input.name] if shown else []) + [  # type: ignore[union-attr]
            t.repr_tree(inner) for t in self.flat_terms()
        ]
        return "ComposeSeq(\n" + "".join(f"{inner}{s},\n" for s in items) + f"{indent})"

    def __repr__(self) -> str:
        return self.repr_tree()


def _forget_graph(term: Term) -> None:
    """Make every layer of ``term`` build again on its next input, and drop the nodes
    every composition and join built (unpickling moves a model into a new graph)."""
    for sub in getattr(term, "terms", None) or getattr(term, "branches", None) or ():
        _forget_graph(sub)
    if isinstance(term, Layer):
        term._rehome()
    elif isinstance(term, (Composition, Join)):
        term._cache = {}
        if isinstance(term, Composition):
            term.input = term.out = None


class Join(Term):
    """Two terms applied to the same input, their outputs combined (``Add``, ``HadamardProd``).

    Example:
        >>> import graphcore as gc, golgi as G
        >>> g = gc.NewGraph()
        >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
        >>> res = G.Add(G.I, G.L(G.ConsFC(G.WithShape(3))))
        >>> res.fwd(x).shape
        (None, 3)
    """

    def __init__(
        self, kind: str, combine: Callable[[gc.Node, gc.Node], gc.Node], a: Any, b: Any
    ) -> None:
        self.kind = kind
        self._combine = combine
        self.branches: list[Term] = [_as_term(a, kind), _as_term(b, kind)]
        self._cache: dict[int, tuple[gc.Node, gc.Node]] = {}

    @property
    def built(self) -> bool:
        """True once both branches have built their layers (after the first ``fwd``).

        Example:
            >>> import graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
            >>> res = G.Add(G.I, G.L(G.ConsFC(G.WithShape(3))))
            >>> res.built, res.fwd(x).shape, res.built
            (False, (None, 3), True)
        """
        return all(t.built for t in self.branches)

    def fwd(self, x: gc.Node) -> gc.Node:
        """Apply both branches to ``x`` (building their layers on the first call); combine."""
        hit = self._cache.get(id(x))
        if hit is not None and hit[0] is x:
            return hit[1]
        outs = []
        for i, t in enumerate(self.branches):
            t = self.branches[i] = t.instantiate(x)
            outs.append(t.fwd(x))
        try:
            out = self._combine(outs[0], outs[1])
        except gc.ShapeError:
            raise gc.ShapeError(
                f"{self.kind} join: its branches give outputs of shapes "
                f"{fmt_shape(outs[0].shape)} and {fmt_shape(outs[1].shape)} for input "
                f"{x.describe()}; they must be equal (or broadcast), e.g. give both the same size"
            ) from None
        self._cache[id(x)] = (x, out)
        return out

    def flops(self, batch: int = 1) -> int:
        """Both branches' FLOPs, plus one per output value for the combining (once built)."""
        out = sum(t.flops(batch) for t in self.branches)
        for _, node in self._cache.values():
            return out + batch * per_sample(node.shape)
        return out

    @property
    def layers(self) -> list[Layer]:
        """The first branch's layers, then the second's."""
        return [la for t in self.branches for la in t.layers]

    def summary_rows(
        self, table: SummaryTable, shape: tuple[int | None, ...], dtype: gc.Dtype
    ) -> tuple[tuple[int | None, ...], gc.Dtype]:
        """Both branches' rows, then a row for the join with the combined shape."""
        a, dt = self.branches[0].summary_rows(table, shape, dtype)
        b, _ = self.branches[1].summary_rows(table, shape, dtype)
        try:
            out = broadcast_shapes(a, b)
        except ValueError:
            raise gc.ShapeError(
                f"{self.kind} join: branch outputs {fmt_shape(a)} and {fmt_shape(b)} differ"
            ) from None
        table.add_row(f"({self.kind} join)", out, flops=per_sample(out))
        return out, dt

    def __getstate__(self) -> dict[str, Any]:
        """The branches and the combining op; the nodes it built are built again."""
        state = dict(self.__dict__)
        for k in TRANSIENT:
            state.pop(k, None)
        state["_cache"] = {}
        return state

    def repr_tree(self, indent: str = "") -> str:
        """``Add(`` (or the join's kind) with both branches, one per line."""
        inner = indent + "    "
        a, b = (t.repr_tree(inner) for t in self.branches)
        return f"{self.kind}(\n{inner}{a},\n{inner}{b},\n{indent})"

    def __repr__(self) -> str:
        return self.repr_tree()


class Identity(Term):
    """The identity term ``I``: ``I.fwd(x) is x`` (for residual joins: ``Add(I, block)``).

    Example:
        >>> import graphcore as gc
        >>> x = gc.NewConstant(1.0); I.fwd(x) is x
        True
    """

    def fwd(self, x: gc.Node) -> gc.Node:
        """``x`` itself."""
        return x

    def __call__(self, x: gc.Node | None = None) -> Any:
        return self if x is None else x  # Golgi writes I{}; I() is I

    def __reduce__(self) -> str:
        return "I"  # one identity: compositions test for it with ``is``

    def summary_rows(
        self, table: SummaryTable, shape: tuple[int | None, ...], dtype: gc.Dtype
    ) -> tuple[tuple[int | None, ...], gc.Dtype]:
        """No row: the input passes through."""
        return shape, dtype

    def __repr__(self) -> str:
        return "I"


I = Identity()


def ComposeSeq(*terms: Any) -> Composition:
    """Compose terms left to right; an input node first builds the layers right away.

    Example:
        >>> import graphcore as gc, golgi as G
        >>> g = gc.NewGraph()
        >>> x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 784), gc.WithName("x"))
        >>> ae = G.ComposeSeq(x, G.L(G.ConsFC(G.WithShape(50), G.WithName("e"))),
        ...                   G.L(G.ConsFC, G.WithShape(784), G.WithName("d")))
        >>> [n.name for n in ae.model()]
        ['e/W', 'e/b', 'd/W', 'd/b']
    """
    x = None
    if terms and isinstance(terms[0], gc.Node):
        x, terms = terms[0], terms[1:]
    if not terms:
        raise TypeError(
            "ComposeSeq needs at least one term after the input: "
            "ComposeSeq(x, L(ConsFC, WithShape(10)), ...)"
        )
    c = Composition(
        [_as_term(t, f"ComposeSeq argument {i + 1 + (x is not None)}") for i, t in enumerate(terms)]
    )
    if x is not None:
        c.fwd(x)
    return c


def Compose(a: Any, b: Any) -> Composition:
    """``b`` after ``a``: ``Compose(a, b).fwd(x) == b(a(x))``; ``a`` may be the input node.

    Example:
        >>> import golgi as G
        >>> len(G.Compose(G.L(G.ConsFC(G.WithShape(2))), G.L(G.ConsFC(G.WithShape(1)))).terms)
        2
    """
    return ComposeSeq(a, b)


def L(cons: Any, *opts: LayerOpt) -> Term:
    """A delayed layer: ``L(ConsFC, opts...)`` (Golgi) or ``L(ConsFC(opts...))`` (the talk).

    Example:
        >>> import golgi as G
        >>> G.L(G.ConsFC, G.WithShape(3)) == G.L(G.ConsFC(G.WithShape(3)))
        True
    """
    if isinstance(cons, Term):
        if opts:
            raise TypeError(
                f"L: options go inside the constructor; write L(ConsFC, opts...) or "
                f"L(ConsFC(opts...)), not L({cons!r}, ...)"
            )
        return cons
    if isinstance(cons, type) and issubclass(cons, Layer):
        return Thunk(cons, opts)
    if callable(cons):
        if opts and isinstance(opts[0], gc.Node):
            raise TypeError(
                "L: a delayed layer gets its input later; leave the node out: L(ConsFC, opts...)"
            )
        t = cons(*opts)
        if isinstance(t, Term):
            return t
        raise TypeError(f"L: {cons!r} did not return a layer constructor (got {t!r})")
    raise TypeError(f"L takes a layer constructor such as ConsFC (and its options), got {cons!r}")


def Apply(term: Any, x: gc.Node | Any) -> Any:
    """``term`` applied to ``x``: the output node; if ``x`` is a term, their composition.

    A thunk builds a new layer each time it is applied; to keep the layer, compose it
    (``ComposeSeq(x, thunk)``) or construct it on the node (``ConsFC(x, ...)``).

    Example:
        >>> import graphcore as gc, golgi as G
        >>> x = gc.NewConstant([[1.0, 2.0]])
        >>> G.Apply(G.I, x) is x
        True
    """
    t = _as_term(term, "Apply")
    if isinstance(x, gc.Node):
        return t.fwd(x)
    return Compose(x, t)


def Add(a: Any, b: Any) -> Join:
    """Apply ``a`` and ``b`` to the same input and add the outputs (residual: ``Add(I, block)``).

    Example:
        >>> import golgi as G
        >>> G.Add(G.I, G.L(G.ConsFC(G.WithShape(3)))).kind
        'Add'
    """
    return Join("Add", gc.Add, a, b)


def HadamardProd(a: Any, b: Any) -> Join:
    """Apply ``a`` and ``b`` to the same input and multiply the outputs elementwise (gating).

    Example:
        >>> import golgi as G
        >>> G.HadamardProd(G.I, G.I).kind
        'HadamardProd'
    """
    return Join("HadamardProd", gc.HadamardProd, a, b)


class K(Term):
    """A constant term (Golgi's ``K``): ``K(c).fwd(x)`` is the constant ``c``, whatever ``x``.

    ``c`` is a node (used as it is) or a number/array (a constant node). With a join it
    adds a fixed tensor: ``Add(I, K(bias))``.

    Example:
        >>> import numpy as np, graphcore as gc, golgi as G
        >>> x = gc.NewConstant([[1.0, 2.0]])
        >>> k = G.K(np.array([[10.0, 20.0]]))
        >>> k.fwd(x).value, k
        (array([[10., 20.]]), K(<(1, 2) Float64>))
    """

    def __init__(self, c: Any) -> None:
        self.node: gc.Node = c if isinstance(c, gc.Node) else gc.NewConstant(c, name="K")

    def fwd(self, x: gc.Node) -> gc.Node:
        """The constant node (``x`` is ignored)."""
        return self.node

    def summary_rows(
        self, table: SummaryTable, shape: tuple[int | None, ...], dtype: gc.Dtype
    ) -> tuple[tuple[int | None, ...], gc.Dtype]:
        """A row ``(K)`` with the constant's shape, which is the output."""
        out = tuple(self.node.shape)
        table.add_row("(K)", out)
        return out, self.node.dtype

    def __repr__(self) -> str:
        n = self.node
        what = f"{n.name!r} " if n.op is not None or n.graph is not None else ""
        return f"K(<{what}{fmt_shape(tuple(n.shape))} {n.dtype}>)"


def Redefine(layer: Any, *opts: LayerOpt) -> Thunk:
    """A delayed layer like ``layer`` with ``opts`` applied on top (Golgi's ``Redefine``).

    ``layer`` is a built layer or a delayed one; the result has its options followed by
    ``opts`` (later ones win) and builds a new layer when applied. A built layer keeps its
    learnables: golgi never changes a built layer in place. Options the layer does not take
    raise ``TypeError`` here. To build it in the graph of a layer with an explicit name,
    give a new ``WithName``.

    Example:
        >>> import graphcore as gc, golgi as G
        >>> g = gc.NewGraph()
        >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 4), gc.WithName("x"))
        >>> fc = G.ConsFC(x, G.WithShape(3), G.WithName("h"))
        >>> G.Redefine(fc, G.WithActivation(gc.Tanh), G.WithName("h2"))
        L(ConsFC(WithShape(3), WithName('h'), WithActivation(Tanh), WithName('h2')))
        >>> G.Redefine(G.ConsFC(G.WithShape(3)), G.WithBias(False)).fwd(x).shape
        (None, 3)
    """
    if isinstance(layer, Thunk):
        return Thunk(layer.cls, (*layer.opts, *opts))
    if isinstance(layer, Layer):
        cls = type(layer)
        given = [
            LayerOpt(k, v)
            for k, v in layer.opts.items()
            if not (k in cls.defaults and _same(cls.defaults[k], v))
        ]
        return Thunk(cls, (*given, *opts))
    raise TypeError(f"Redefine takes a layer or a delayed layer (L(ConsFC(...))), got {layer!r}")


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b) and type(a) is type(b)
    except (TypeError, ValueError):
        return False
