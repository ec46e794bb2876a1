"""Terms: ``Term`` (a node -> node map) and ``Thunk`` (a delayed layer).

A *term* maps a graph node to a graph node (``term.fwd(x)``). Layers (``golgi.layer``) are terms
that own learnables; a :class:`Thunk` is a layer constructor waiting for its input
(``L(ConsFC(...))``); compositions and joins (``golgi.compose``) are terms made of terms. Each
term describes itself: its layers, its summary rows and its repr.

Example:
    >>> import graphcore as gc, golgi as G
    >>> g = gc.NewGraph()
    >>> x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 4), gc.WithName("x"))
    >>> t = G.L(G.ConsFC(G.WithShape(3), G.WithName("h")))
    >>> isinstance(t, Term), t.built, t.fwd(x).shape, sorted(layer_names(g))
    (True, False, (None, 3), ['h'])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

import graphcore as gc
from graphcore.rng import get_rng

from .model_methods import TRANSIENT, ModelMethods
from .naming import claim_name, layer_names, release_name
from .summary import SummaryTable

if TYPE_CHECKING:  # annotations only: layer.py builds on this module
    from .layer import Layer

# layer_names, claim_name, release_name and TRANSIENT are re-exported: this was their home.
__all__ = ["Term", "Thunk", "layer_names", "claim_name", "release_name", "TRANSIENT"]


class Term(ModelMethods):
    """Anything that maps a node to a node: a layer, a thunk, a composition, a join, ``I``.

    Subclasses implement ``fwd``; the rest has sensible defaults for terms without learnables.

    Example:
        >>> import golgi as G
        >>> isinstance(G.I, Term)
        True
    """

    def fwd(self, x: gc.Node) -> gc.Node:
        """Build (or reuse) the nodes computing this term on input ``x``; return the output.

        Every term overrides it: map the input node to an output node with graphcore ops.
        ``term(x)`` is ``term.fwd(x)``.

        Example:
            >>> import graphcore as gc
            >>> class Double(Term):
            ...     def fwd(self, x):
            ...         return x * 2.0
            >>> Double()(gc.NewConstant([[1.0, 2.0]])).shape
            (1, 2)
        """
        raise NotImplementedError

    def __call__(self, x: gc.Node) -> gc.Node:
        return self.fwd(x)

    @property
    def layers(self) -> list[Layer]:
        """The built layers of this term, flat, in order (empty before it is built).

        Terms that hold layers override it; the learnables, state and summary come from it.

        Example:
            >>> import graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
            >>> net = G.ComposeSeq(x, G.L(G.ConsFC(G.WithShape(2), G.WithName("a"))),
            ...                    G.L(G.ConsFC(G.WithShape(1), G.WithName("b"))))
            >>> [la.name for la in net.layers], G.I.layers
            (['a', 'b'], [])
        """
        return []

    def model(self) -> list[gc.Node]:
        """The learnables, in layer order (W then b within a layer), each once.

        Example:
            >>> import golgi as G
            >>> G.I.model()
            []
        """
        return list(self.named_learnables().values())

    def named_learnables(self) -> dict[str, gc.Node]:
        """Learnables keyed ``"<layer>/<param>"`` (the keys ``golgi.save`` writes).

        Example:
            >>> import golgi as G
            >>> G.I.named_learnables()
            {}
        """
        out: dict[str, gc.Node] = {}
        seen: set[int] = set()
        for layer in self.layers:
            for k, n in layer.named_learnables().items():
                if id(n) not in seen:  # a weight shared by two layers is listed once
                    seen.add(id(n))
                    out[k] = n
        return out

    def state(self) -> dict[str, np.ndarray]:
        """Non-learnable arrays to save (e.g. batch norm running statistics), keyed by layer.

        Example:
            >>> import golgi as G
            >>> G.I.state()
            {}
        """
        out: dict[str, np.ndarray] = {}
        for layer in self.layers:
            out.update(layer.state())
        return out

    def load_state(self, d: dict[str, np.ndarray]) -> None:
        """Copy saved non-learnable arrays back (keys as ``state()`` gives them).

        Each layer gets the keys that start with its name; keys of no layer are ignored.

        Example:
            >>> import numpy as np, graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
            >>> net = G.ComposeSeq(x, G.L(G.ConsBatchNorm(G.WithName("bn"))))
            >>> sorted(net.state())
            ['bn/running_mean', 'bn/running_var']
            >>> net.load_state({"bn/running_mean": np.array([1.0, 2.0])})
            >>> net.state()["bn/running_mean"]
            array([1., 2.])
        """
        for layer in self.layers:
            mine = {k: v for k, v in d.items() if k.startswith(layer.name + "/")}
            if mine:
                layer.load_state(mine)

    def non_trainable(self) -> dict[str, np.ndarray]:
        """The state arrays that count as non-trainable parameters (batch norm running
        statistics), keyed like ``state()``; a subset of it (a dropout generator's state is
        saved, but is no parameter).

        Example:
            >>> import golgi as G
            >>> G.I.non_trainable()
            {}
        """
        out: dict[str, np.ndarray] = {}
        seen: set[int] = set()
        for layer in self.layers:
            for k, v in layer.non_trainable().items():
                if id(v) not in seen:  # a layer applied twice counts once
                    seen.add(id(v))
                    out[k] = v
        return out

    def flops(self, batch: int = 1) -> int:
        """Floating-point operations of one forward pass over ``batch`` samples: the sum of
        the layers' ``flops`` (Golgi's ``FLOPs``), joins' combining included.

        Example:
            >>> import graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 4), gc.WithName("x"))
            >>> net = G.ComposeSeq(x, G.L(G.ConsFC(G.WithShape(3))), G.L(G.ConsFC(G.WithShape(1))))
            >>> [la.flops() for la in net.layers], net.flops(), net.flops(batch=10)
            ([24, 6], 30, 300)
        """
        return sum(layer.flops(batch) for layer in self.layers)

    def by_name(self, name: str) -> Any:
        """The layer named ``name`` in this term, or the learnable keyed ``name``
        (``"<layer>/W"``): Golgi's ``ByName``. Raises ``KeyError`` listing the names.

        Example:
            >>> import graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 4), gc.WithName("x"))
            >>> net = G.ComposeSeq(x, G.L(G.ConsFC(G.WithShape(3), G.WithName("h"))))
            >>> net.by_name("h"), net.by_name("h/b").shape
            (FC(name='h', size=3, activation=None, bias=True), (1, 3))
        """
        layers = self.layers
        for layer in layers:
            if layer.name == name:
                return layer
        for layer in layers:
            node = layer.named_learnables().get(name)
            if node is not None:
                return node
        names = [la.name for la in layers]
        raise KeyError(
            f"no layer or learnable named {name!r}; the layers are {names}"
            if names
            else f"no layer named {name!r}: the term has no layers (is it built?)"
        )

    def param_count(self) -> int:
        """Number of learnable scalars.

        Example:
            >>> import golgi as G
            >>> G.I.param_count()
            0
        """
        return sum(int(np.prod(n.shape)) for n in self.model())

    def describe(self) -> list[dict[str, Any]]:
        """A plain description of every layer (kind, name, config, learnable shapes), for saving.

        ``golgi.save`` stores it; ``golgi.load`` compares it with the model it loads into.

        Example:
            >>> import graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 4), gc.WithName("x"))
            >>> d = G.ComposeSeq(x, G.L(G.ConsFC(G.WithShape(2), G.WithName("h")))).describe()
            >>> [(la["kind"], la["name"], la["learnables"]["W"]) for la in d]
            [('FC', 'h', [[4, 2], 'Float32'])]
        """
        return [layer.describe_layer() for layer in self.layers]

    def summary(
        self,
        input_shape: Sequence[int | None] | None = None,
        print_fn: Any = print,
        dtype: gc.Dtype | None = None,
        flops: bool = False,
    ) -> str:
        """A Keras-like table of layers, output shapes (None batch) and parameter counts.

        Prints it (with ``print_fn``; pass ``None`` to stay quiet) and returns the string.
        ``input_shape`` (and ``dtype``, default the built input's, else Float32) also works
        before the model is built: the table then comes from throwaway layers, and the model
        and the random seed are left as they were. ``flops=True`` adds a column of each row's
        FLOPs per sample (see :meth:`flops`) and their total.

        Example:
            >>> import graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 4), gc.WithName("x"))
            >>> s = G.ConsFC(x, G.WithShape(2), G.WithName("out")).summary(print_fn=None)
            >>> "Total params: 10" in s
            True
        """
        info = self.summary_input()
        if input_shape is None:
            if info is None:
                raise gc.GraphError(
                    "summary: the model is not built yet; apply it to an input (net.fwd(x)) or "
                    "pass input_shape=(None, ...)"
                )
            name, shape, in_dt = info
        else:
            name, shape = "input", tuple(input_shape)
            in_dt = info[2] if info else gc.Float32
        in_dt = dtype if dtype is not None else in_dt
        shape = (None, *shape[1:]) if shape else shape
        table = SummaryTable()
        rng = get_rng()
        saved = rng.bit_generator.state
        try:
            self.summary_rows(table, shape, in_dt)
        finally:
            rng.bit_generator.state = saved  # throwaway layers drew initial weights from it
        text = table.render(name, shape, in_dt, flops=flops)
        if print_fn is not None:
            print_fn(text)
        return text

    def summary_input(self) -> tuple[str, tuple[int | None, ...], gc.Dtype] | None:
        """The input the summary starts from: (name, shape, dtype), or None before a build.

        The default is the first layer's input; a composition built on an input node gives
        that node.

        Example:
            >>> import graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 4), gc.WithName("x"))
            >>> G.ConsFC(x, G.WithShape(2)).summary_input(), G.I.summary_input()
            (('input', (None, 4), Float32), None)
        """
        layers = self.layers
        if layers:
            return "input", layers[0].input_shape, layers[0].input_dtype
        return None

    def summary_rows(
        self, table: SummaryTable, shape: tuple[int | None, ...], dtype: gc.Dtype
    ) -> tuple[tuple[int | None, ...], gc.Dtype]:
        """Add this term's rows to a summary ``table`` for an input of ``shape`` and ``dtype``;
        return the output's shape and dtype.

        Every kind of term describes itself: a layer adds its row, a composition its terms'
        rows in order, a join its branches' rows and a join row, ``I`` nothing. A term of your
        own overrides it to appear in summaries (the default raises ``TypeError``).

        Example:
            >>> import graphcore as gc, golgi as G
            >>> from golgi.summary import SummaryTable
            >>> table = SummaryTable()
            >>> G.L(G.ConsFC(G.WithShape(3), G.WithName("h"))).summary_rows(
            ...     table, (None, 4), gc.Float32)
            ((None, 3), Float32)
            >>> table.rows
            [('h (FC)', '(None, 3)', 15)]
        """
        raise TypeError(
            f"summary: cannot describe {self!r}; a term of your own overrides summary_rows"
        )

    @property
    def built(self) -> bool:
        """True once every layer of this term exists (a thunk builds its layer when applied).

        Example:
            >>> import golgi as G
            >>> G.I.built, G.L(G.ConsFC(G.WithShape(2))).built
            (True, False)
        """
        return True

    def instantiate(self, x: gc.Node) -> Term:
        """The term a composition keeps after applying this one to ``x``: a thunk builds its
        layer for ``x``; any other term is itself.

        Example:
            >>> import graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
            >>> G.L(G.ConsFC(G.WithShape(3))).instantiate(x), G.I.instantiate(x)
            (FC(name='fc_1', size=3, activation=None, bias=True), I)
        """
        return self

    def flat_terms(self) -> list[Term]:
        """This term as a list of terms, nested compositions spliced in (for the repr).

        Example:
            >>> import golgi as G
            >>> G.I.flat_terms()
            [I]
        """
        return [self]

    def repr_tree(self, indent: str = "") -> str:
        """The repr, indented for its place in a tree of terms (nested terms one level deeper).

        Example:
            >>> import golgi as G
            >>> print(G.Add(G.I, G.I).repr_tree())
            Add(
                I,
                I,
            )
        """
        return repr(self)


class Thunk(Term):
    """A delayed layer constructor: ``ConsFC(WithShape(250))`` without an input node.

    Applied to a node it builds a NEW layer sized from that node, then applies it; a
    composition keeps the layer it built, so use thunks inside ``ComposeSeq``.

    Example:
        >>> import golgi as G
        >>> t = G.L(G.ConsFC, G.WithShape(250), G.WithName("e1"))
        >>> t
        L(ConsFC(WithShape(250), WithName('e1')))
        >>> t == G.L(G.ConsFC(G.WithShape(250), G.WithName("e1")))
        True
    """

    def __init__(self, cls: type[Layer], opts: Sequence[Any]) -> None:
        cls.parse_options(opts)  # fail now, where the user wrote the options
        self.cls = cls
        self.opts = tuple(opts)

    def build(self, x: gc.Node) -> Layer:
        """Construct the layer for input ``x`` (not applied).

        Example:
            >>> import graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
            >>> G.ConsFC(G.WithShape(3)).build(x).model()[0].shape
            (2, 3)
        """
        return self.cls(x, *self.opts)

    def fwd(self, x: gc.Node) -> gc.Node:
        """Build a new layer for ``x`` and apply it; each call makes another layer.

        Example:
            >>> import graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
            >>> t = G.ConsFC(G.WithShape(3))
            >>> t.fwd(x).shape, t.fwd(x).shape, sorted(G.layer_names(g))
            ((None, 3), (None, 3), ['fc_1', 'fc_2'])
        """
        return self.build(x).fwd(x)

    @property
    def built(self) -> bool:
        """Always False: a thunk is a layer still to build (a composition keeps the layer).

        Example:
            >>> import golgi as G
            >>> G.ConsFC(G.WithShape(3)).built
            False
        """
        return False

    def instantiate(self, x: gc.Node) -> Layer:
        """The layer built for ``x``, which a composition keeps in this thunk's place.

        Example:
            >>> import graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
            >>> G.ConsFC(G.WithShape(3), G.WithName("h")).instantiate(x).name
            'h'
        """
        return self.build(x)

    def summary_rows(
        self, table: SummaryTable, shape: tuple[int | None, ...], dtype: gc.Dtype
    ) -> tuple[tuple[int | None, ...], gc.Dtype]:
        """Describe the layer this thunk would build, from a throwaway one (see
        :meth:`Term.summary_rows`): it is built on a placeholder in the table's scratch graph,
        so the model stays unbuilt.

        Example:
            >>> import graphcore as gc, golgi as G
            >>> from golgi.summary import SummaryTable
            >>> table = SummaryTable()
            >>> G.ConsFC(G.WithShape(3)).summary_rows(table, (None, 2), gc.Float64)
            ((None, 3), Float64)
            >>> table.rows, table.scratch.name
            ([('fc_1 (FC)', '(None, 3)', 9)], 'summary')
        """
        if table.scratch is None:
            table.scratch = gc.NewGraph("summary")
        x = gc.NewTensor(table.scratch, dtype, len(shape), gc.WithShape(*shape))
        built = self.build(x)
        y = built.fwd(x)
        table.add_layer(built, tuple(y.shape))
        return tuple(y.shape), y.dtype

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Thunk)
            and other.cls is self.cls
            and len(other.opts) == len(self.opts)
            and all(repr(a) == repr(b) for a, b in zip(self.opts, other.opts, strict=True))
        )

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"L({self.cls.cons_name_of()}({', '.join(repr(o) for o in self.opts)}))"
