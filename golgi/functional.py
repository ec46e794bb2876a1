"""``Model``: a model with several inputs or outputs, made from the nodes that compute them.

``ComposeSeq`` chains terms from one input to one output. A model with two inputs (an image
and its metadata) or two heads (a class and a box) is built by applying terms to nodes
yourself, then naming the ends: ``Model(inputs={"img": x, "meta": m}, outputs={"cls": c,
"box": b})``. Its layers are found in the graph (every layer whose nodes the outputs need),
so ``model()``, ``save``/``load``, ``summary`` of the parts and ``fit``/``predict``/``evaluate``
work as for any model; data and targets go in as dicts keyed by these names (or lists in
order), and ``predict`` answers in the form ``outputs`` was given in.

Example:
    >>> import numpy as np, graphcore as gc, golgi as G
    >>> g = gc.NewGraph()
    >>> a = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("a"))
    >>> b = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("b"))
    >>> h = gc.Concat(1, G.ConsFC(a, G.WithShape(4), G.WithName("fa")).fwd(a),
    ...               G.ConsFC(b, G.WithShape(4), G.WithName("fb")).fwd(b))
    >>> head = G.ComposeSeq(h, G.L(G.ConsFC(G.WithShape(1), G.WithName("y"))))
    >>> m = Model(inputs=[a, b], outputs={"y": head.out})
    >>> [la.name for la in m.layers], list(m.inputs), list(m.outputs)
    (['fa', 'fb', 'y'], ['a', 'b'], ['y'])
    >>> G.predict(m, [np.ones((5, 3)), np.ones((5, 2))])["y"].shape
    (5, 1)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import graphcore as gc

from .layer import Layer
from .term import Term, layer_names

__all__ = ["Model"]


def _named(
    what: str, nodes: gc.Node | Sequence[gc.Node] | Mapping[str, gc.Node]
) -> tuple[dict[str, gc.Node], str]:
    """The nodes by name, and the form they were given in: "node", "list" or "dict"."""
    if isinstance(nodes, gc.Node):
        items, form = [(nodes.name, nodes)], "node"
    elif isinstance(nodes, Mapping):
        items, form = list(nodes.items()), "dict"
    elif isinstance(nodes, (list, tuple)):
        items, form = [(n.name if isinstance(n, gc.Node) else "?", n) for n in nodes], "list"
    else:
        raise TypeError(
            f"Model: {what} must be a node, a list of nodes or a dict name -> node, got "
            f"{type(nodes).__name__}"
        )
    if not items:
        raise ValueError(f"Model: give at least one of the {what}")
    out: dict[str, gc.Node] = {}
    for name, n in items:
        if not isinstance(n, gc.Node):
            raise TypeError(f"Model: {what} must be graph nodes, got {type(n).__name__}")
        if not isinstance(name, str) or not name:
            raise TypeError(f"Model: {what} are named by non-empty strings, got {name!r}")
        if name in out:
            raise ValueError(
                f"Model: two {what} are named {name!r}; give them as a dict with distinct names"
            )
        if not n.shape or n.shape[0] is not None:
            raise gc.ShapeError(
                f"Model: {what[:-1]} {name!r} is {n.describe()}; it must have a free batch "
                f"dimension (dimension 0 = None)"
            )
        out[name] = n
    return out, form


class Model(Term):
    """A model given by its input nodes and output nodes (several of each allowed).

    - ``inputs``: the input nodes (made with ``gc.NewMatrix``...), as one node, a list (named
      after the nodes) or a dict name -> node; each with a free batch dimension;
    - ``outputs``: the nodes computing the results (from layers applied to the inputs), in
      one of the same forms; ``predict`` returns one array, a list or a dict to match.

    Its ``layers`` are the golgi layers of the graph whose nodes the outputs need, in the
    order they were built. A model with one input and one output can also be used as a term
    on its own input (``fwd``).

    Example:
        >>> import graphcore as gc, golgi as G
        >>> g = gc.NewGraph()
        >>> x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 4), gc.WithName("x"))
        >>> h = G.ConsFC(x, G.WithShape(8), G.WithName("h"),
        ...              G.WithActivation(gc.Rectify)).fwd(x)
        >>> cls = G.ConsFC(h, G.WithShape(3), G.WithName("cls")).fwd(h)
        >>> box = G.ConsFC(h, G.WithShape(4), G.WithName("box")).fwd(h)
        >>> m = Model(inputs=x, outputs={"cls": cls, "box": box})
        >>> m
        Model(inputs=['x'], outputs=['cls', 'box'], layers=['h', 'cls', 'box'])
        >>> len(m.model()), m.param_count()
        (6, 103)
    """

    def __init__(
        self,
        inputs: gc.Node | Sequence[gc.Node] | Mapping[str, gc.Node],
        outputs: gc.Node | Sequence[gc.Node] | Mapping[str, gc.Node],
    ) -> None:
        self.inputs, self.input_form = _named("inputs", inputs)
        self.outputs, self.output_form = _named("outputs", outputs)
        graphs = {id(n.graph) for n in (*self.inputs.values(), *self.outputs.values())}
        if len(graphs) != 1:
            raise gc.GraphError("Model: the inputs and outputs must all belong to one graph")
        graph = next(iter(self.outputs.values())).graph
        if graph is None:
            raise gc.GraphError(
                "Model: the outputs belong to no graph (they are computed from constants "
                "only); build them from input nodes of a graph (gc.NewMatrix(g, ...))"
            )
        self.graph: gc.Graph = graph
        needed = graph.exact_subgraph_roots(*self.outputs.values()).nodes
        inside = {id(n) for n in needed}
        for name, n in self.inputs.items():
            if n.op is not None:
                raise gc.GraphError(
                    f"Model: input {name!r} is {n.describe()}, computed by the graph; inputs "
                    f"are input nodes (gc.NewMatrix(g, ...))"
                )
            if id(n) not in inside:
                raise gc.GraphError(
                    f"Model: no output depends on input {name!r}; leave it out or use it"
                )
        fed = {id(n) for n in self.inputs.values()}
        missing = [
            n
            for n in needed
            if n.op is None and not n.is_constant and id(n) not in fed and not n.has_value
        ]
        if missing:
            raise gc.GraphError(
                f"Model: the outputs also need {missing[0].describe()}, which is neither an "
                f"input of the model nor holds a value; add it to inputs"
            )
        self._layers = [
            la
            for la in layer_names(self.graph).values()
            if any(id(out) in inside for _, out in la._cache.values())
        ]

    @property
    def input(self) -> gc.Node | None:
        """The input node when there is exactly one (else None).

        Example:
            >>> import graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 4), gc.WithName("x"))
            >>> m = G.Model(inputs=x, outputs=G.ConsFC(x, G.WithShape(2)).fwd(x))
            >>> m.input.name, m.out.shape
            ('x', (None, 2))
        """
        return next(iter(self.inputs.values())) if len(self.inputs) == 1 else None

    @property
    def out(self) -> gc.Node | None:
        """The output node when there is exactly one (else None).

        Example:
            >>> import graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 4), gc.WithName("x"))
            >>> a = G.ConsFC(x, G.WithShape(2)).fwd(x); b = G.ConsFC(x, G.WithShape(3)).fwd(x)
            >>> G.Model(inputs=x, outputs=a).out is a, G.Model(inputs=x, outputs=[a, b]).out
            (True, None)
        """
        return next(iter(self.outputs.values())) if len(self.outputs) == 1 else None

    @property
    def layers(self) -> list[Layer]:
        """The layers the outputs need, in the order they were built."""
        return list(self._layers)

    def fwd(self, x: gc.Node) -> gc.Node:
        """The output, for the model's own (single) input ``x``.

        A model made of nodes is tied to its input nodes; for another input, build the
        layers' nodes on it (``layer.fwd(other)``) and make another ``Model``.
        """
        if len(self.inputs) != 1 or len(self.outputs) != 1:
            raise TypeError(
                f"Model.fwd: this model has {len(self.inputs)} inputs and {len(self.outputs)} "
                f"outputs; use predict(model, {{name: array}}) or its output nodes"
            )
        if x is not self.input:
            raise gc.GraphError(
                "Model.fwd: a Model is built on its own input nodes; apply its layers to "
                f"{x.name!r} (layer.fwd(node)) and make a new Model for that input"
            )
        out = self.out
        assert out is not None
        return out

    def summary_input(self) -> tuple[str, tuple[int | None, ...], gc.Dtype] | None:
        """The single input (name, shape, dtype); a model with several has no one table."""
        x = self.input
        if x is None:
            return None
        return x.name, tuple(x.shape), x.dtype

    def summary_rows(
        self, table: Any, shape: tuple[int | None, ...], dtype: gc.Dtype
    ) -> tuple[tuple[int | None, ...], gc.Dtype]:
        """One row per layer, with the shape of the node it computes for the model."""
        for la in self._layers:
            outs = [out for _, out in la._cache.values()]
            table.add_layer(la, tuple(outs[-1].shape) if outs else ("?",))
        out = self.out
        if out is None:
            # several outputs: the table shows a placeholder, not a shape, after the layers
            return ("…",), dtype  # type: ignore[return-value]
        return tuple(out.shape), out.dtype

    def __getstate__(self) -> dict[str, Any]:
        raise TypeError(
            "a golgi.Model made of graph nodes cannot be pickled: its graph's ops are not all "
            "picklable, and the nodes between its layers cannot be rebuilt. Save its weights "
            "with golgi.save, and build it again with the same code before golgi.load"
        )

    def __repr__(self) -> str:
        return (
            f"Model(inputs={list(self.inputs)}, outputs={list(self.outputs)}, "
            f"layers={[la.name for la in self._layers]})"
        )
