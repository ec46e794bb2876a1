"""The ``Layer`` base class: a term that owns learnables sized from its first input.

``ConsFC(x, opts...)`` builds a layer on node ``x``; ``layer.fwd(x)`` builds its output node.
Terms, thunks and layer names are in ``golgi.term``; the option checks in ``golgi.options``;
a layer's learnables and state in ``golgi.layer_weights``, what it says about itself (FLOPs,
output shape, config, summary row) in ``golgi.layer_description``.

Example:
    >>> import graphcore as gc, golgi as G
    >>> g = gc.NewGraph()
    >>> x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 4), gc.WithName("x"))
    >>> fc = G.ConsFC(x, G.WithShape(3), G.WithName("h"))
    >>> fc
    FC(name='h', size=3, activation=None, bias=True)
    >>> [n.name for n in fc.model()], fc.fwd(x).shape
    (['h/W', 'h/b'], (None, 3))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

import graphcore as gc
from graphcore.rng import get_rng
from graphcore.shapes import fmt_shape

from .layer_description import LayerDescription
from .layer_weights import LayerWeights
from .options import (
    OPTION_NAMES,
    LayerOpt,
    WithName,
    check_option_value,
    is_activation_like,
)
from .term import Term, Thunk, claim_name, layer_names, release_name

# Term, Thunk, layer_names and is_activation_like are re-exported: this was their home.
__all__ = ["Term", "Layer", "Thunk", "is_activation_like", "layer_names"]


class Layer(LayerWeights, LayerDescription, Term):
    """Base class of layers: a term that owns learnables sized from its first input.

    Using a layer:
        ``ConsFC(x, opts...)`` builds the layer for input node ``x`` (not yet applied);
        ``layer.fwd(x)`` builds its output node (same input node -> same output node; another
        input node of the same graph -> new nodes, same weights); ``layer.model()`` lists the
        learnables (W then b); ``named_learnables()`` keys them ``"<name>/W"``...

    Writing a layer (see ``golgi/layers/fc.py`` for a complete one):

    1. Subclass ``Layer``; set the class attributes ``kind`` (``"Conv"``), ``prefix`` (default
       name stem: ``"conv"`` gives ``conv_1``, ``conv_2``...), ``options`` (the option kinds
       it accepts, e.g. ``("name", "shape", "activation", "kernel")``; ``"name"`` is always
       accepted) and ``defaults`` (kind -> value for options not given).
    2. Override ``build(self, x)``: read options from ``self.opts`` (a dict kind -> value,
       defaults filled in), check ``x`` (raise with ``self.error(...)``; the message then names
       the layer), and create learnables with ``self.learnable("W", shape, init=...)`` (node
       named ``"<layer>/W"``, in ``self.graph``, dtype ``self.dtype``) or share a node with
       ``self.adopt("W", node)``. Non-learnable arrays to save go in ``self.add_state(key, arr)``.
       Option values arrive as the builders store them: sizes are tuples
       (``WithShape(250)`` gives ``self.opts["shape"] == (250,)``, so the size is
       ``self.opts["shape"][-1]``; ``WithStride(2)`` gives ``(2, 2)``).
    3. Override ``forward(self, x)``: build and return the output node from graphcore ops
       (``fwd`` adds caching and calls ``check_input`` first).
    4. Optionally override ``check_input(self, x)`` (default: same rank, dtype and non-batch
       sizes as the build input), ``output_shape(input_shape)`` (default: traced by building
       ``forward`` on a detached placeholder) and ``config()`` (plain values for ``repr``,
       ``summary`` and the saved model description; default: the options).
    5. Add a constructor function with a docstring::

           def ConsConv(x=None, *opts):
               \"\"\"...\"\"\"
               return Conv.cons(x, *opts)

       Called with a node it builds the layer; called with options only it returns a
       :class:`Thunk` for ``L(...)`` and ``ComposeSeq``.

    Example:
        >>> import graphcore as gc
        >>> class Scale(Layer):
        ...     kind, prefix, options = "Scale", "scale", ("name",)
        ...     def build(self, x):
        ...         self.learnable("s", (1, x.shape[-1]), init=lambda dt, sh: np.ones(sh, dt.np))
        ...     def forward(self, x):
        ...         return x * self.params["s"]
        >>> g = gc.NewGraph()
        >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
        >>> s = Scale.cons(x); s.name, s.fwd(x).shape
        ('scale_1', (None, 3))
    """

    kind: ClassVar[str] = "Layer"
    prefix: ClassVar[str] = "layer"
    options: ClassVar[tuple[str, ...]] = ("name",)
    defaults: ClassVar[dict[str, Any]] = {}

    # ----- construction ------------------------------------------------------------------------
    @classmethod
    def cons_name_of(cls) -> str:
        """The constructor's public name, e.g. ``"ConsFC"``.

        Example:
            >>> import golgi as G
            >>> G.FC.cons_name_of()
            'ConsFC'
        """
        return f"Cons{cls.kind}"

    @property
    def cons_name(self) -> str:
        """The constructor's public name, e.g. ``"ConsFC"`` (error messages start with it).

        Example:
            >>> import graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
            >>> G.ConsFC(x, G.WithShape(1)).cons_name
            'ConsFC'
        """
        return self.cons_name_of()

    @classmethod
    def accepted(cls) -> tuple[str, ...]:
        """Option kinds this layer takes (``"name"`` always).

        Example:
            >>> import golgi as G
            >>> G.LayerNorm.accepted()
            ('name', 'eps')
        """
        return ("name",) + tuple(k for k in cls.options if k != "name")

    @classmethod
    def parse_options(cls, opts: Sequence[Any]) -> dict[str, Any]:
        """Check options and return kind -> value with defaults filled in (later ones win).

        Raises ``TypeError`` naming the layer and the option for anything it does not take.

        Example:
            >>> Layer.parse_options([])
            {}
        """
        got: dict[str, Any] = {}
        who = cls.cons_name_of()
        for o in opts:
            if isinstance(o, LayerOpt) and o.kind == "name":
                who = f"{cls.cons_name_of()} (layer {o.value!r})"
        accepted = cls.accepted()
        for o in opts:
            if not isinstance(o, LayerOpt):
                hint = ""
                if isinstance(o, gc.Node):
                    hint = "; the input node goes first: ConsX(x, options...)"
                elif type(o).__module__.startswith("graphcore"):
                    hint = "; use golgi's options (G.WithShape, G.WithName...), not graphcore's"
                raise TypeError(f"{who}: {o!r} is not a layer option{hint}")
            if o.kind not in accepted:
                takes = ", ".join(OPTION_NAMES.get(k, k) for k in accepted)
                raise TypeError(
                    f"{who} does not take {OPTION_NAMES.get(o.kind, o.kind)}; it takes {takes}"
                )
            got[o.kind] = check_option_value(who, o.kind, o.value)
        out = {k: v for k, v in cls.defaults.items() if k in accepted}
        out.update(got)
        return out

    @classmethod
    def cons(cls, x: Any = None, *opts: Any) -> Any:
        """Build the layer for node ``x``; without a node, return a :class:`Thunk`.

        Example:
            >>> Layer.cons()
            L(ConsLayer())
        """
        if isinstance(x, gc.Node):
            return cls(x, *opts)
        if x is None:
            return Thunk(cls, opts)
        if isinstance(x, LayerOpt):
            return Thunk(cls, (x, *opts))
        raise TypeError(
            f"{cls.cons_name_of()}: the first argument must be the input node or an option, "
            f"got {type(x).__name__}; give a graph node (gc.NewMatrix(...)) or leave it out "
            f"to get a delayed constructor for L(...)"
        )

    def __init__(self, x: gc.Node, *opts: LayerOpt) -> None:
        if not isinstance(x, gc.Node):
            raise TypeError(f"{self.cons_name}: the input must be a graph node, got {x!r}")
        self.opts: dict[str, Any] = self.parse_options(opts)
        self.name: str = self.opts.get("name") or self.cons_name  # provisional, for messages
        if x.graph is None:
            raise gc.GraphError(
                f"{self.cons_name}: {x.describe()} belongs to no graph; build the "
                f"layer on an input node of a graph (gc.NewMatrix(g, ...))"
            )
        self.graph: gc.Graph = x.graph
        self.input_shape: tuple[int | None, ...] = tuple(x.shape)
        self.input_dtype: gc.Dtype = x.dtype
        self.dtype: gc.Dtype = x.dtype
        self.params: dict[str, gc.Node] = {}
        self._state: dict[str, np.ndarray] = {}
        self._cache: dict[int, tuple[gc.Node, gc.Node]] = {}
        self.check_input(x)
        self.name = claim_name(self, self.opts.get("name"))
        try:
            self.build(x)
        except BaseException:
            release_name(self)
            raise

    # ----- for subclasses ------------------------------------------------------------------------
    def build(self, x: gc.Node) -> None:
        """Create the learnables for input ``x`` (override); the default creates none.

        Called once, by the constructor, after ``check_input(x)`` and after the layer got its
        name. An override reads ``self.opts``, sizes the learnables from ``x.shape`` and makes
        them with ``self.learnable`` (or ``self.adopt``, ``self.add_state``); it raises with
        ``self.error(...)`` for options that do not fit the input. It builds no output node.

        Example:
            >>> import graphcore as gc
            >>> class Bias(Layer):
            ...     kind, prefix = "Bias", "bias"
            ...     def build(self, x):
            ...         self.learnable("b", (1, x.shape[1]), init=gc.Zeroes())
            ...     def forward(self, x):
            ...         return x + self.params["b"]
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
            >>> [(n.name, n.shape) for n in Bias.cons(x).model()]
            [('bias_1/b', (1, 3))]
        """

    def forward(self, x: gc.Node) -> gc.Node:
        """Build the output node for input ``x`` (every layer overrides it).

        An override builds new nodes from graphcore ops on ``x`` and ``self.params`` and
        returns the output; it keeps no per-input state (``fwd`` checks the input and caches
        the output per input node) and must also work on the detached placeholder that the
        default ``output_shape`` passes. Call ``fwd``, not ``forward``, to use a layer.

        Example:
            >>> import graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 4), gc.WithName("x"))
            >>> fc = G.ConsFC(x, G.WithShape(2))
            >>> fc.forward(x).shape, fc.forward(x) is fc.forward(x), fc.fwd(x) is fc.fwd(x)
            ((None, 2), False, True)
        """
        raise NotImplementedError(f"{type(self).__name__} must implement forward(x)")

    def error(self, msg: str, cls: type[Exception] = gc.ShapeError) -> Exception:
        """An exception whose message starts with the constructor and the layer's name.

        Example:
            >>> str(Layer.__new__(Layer).error("bad", ValueError)).startswith("ConsLayer")
            True
        """
        name = getattr(self, "name", None)
        who = (
            self.cons_name
            if name in (None, self.cons_name)
            else (f"{self.cons_name} (layer {name!r})")
        )
        return cls(f"{who}: {msg}")

    def check_input(self, x: gc.Node) -> None:
        """Raise unless ``x`` fits the shapes and dtype this layer was built for.

        The default wants the build input's dtype and rank, and its sizes except the batch
        (dimension 0). It runs before ``build`` (on the build input) and before every
        ``forward``. An override adds the layer's own rules (rank, float dtype...), raising
        with ``self.error(...)``, then calls ``super().check_input(x)``.

        Example:
            >>> import graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 4), gc.WithName("x"))
            >>> fc = G.ConsFC(x, G.WithShape(2), G.WithName("h"))
            >>> fc.check_input(gc.NewMatrix(g, gc.Float64, gc.WithShape(8, 4), gc.WithName("a")))
            >>> b = gc.NewMatrix(g, gc.Float64, gc.WithShape(8, 5), gc.WithName("b"))
            >>> fc.check_input(b)  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            graphcore.errors.ShapeError: ConsFC (layer 'h'): was built for inputs of shape ...
        """
        want = self.input_shape
        if x.dtype != self.input_dtype:
            raise self.error(
                f"was built for {self.input_dtype} inputs, got {x.describe()}", gc.DtypeError
            )
        if len(x.shape) != len(want) or any(
            a is not None and b is not None and a != b
            for a, b in zip(x.shape[1:], want[1:], strict=True)
        ):
            raise self.error(
                f"was built for inputs of shape {fmt_shape(want)}, got {x.describe()}; only "
                f"the batch dimension (0) may differ"
            )

    # ----- using a layer -------------------------------------------------------------------------
    def fwd(self, x: gc.Node) -> gc.Node:
        """The output node for input ``x`` (cached per input node; weights shared across inputs).

        Example:
            >>> import graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
            >>> fc = G.ConsFC(x, G.WithShape(1)); fc.fwd(x) is fc.fwd(x)
            True
        """
        if not isinstance(x, gc.Node):
            raise self.error(f"fwd takes a graph node, got {type(x).__name__}", TypeError)
        hit = self._cache.get(id(x))
        if hit is not None and hit[0] is x:
            return hit[1]
        if x.graph is not None and x.graph is not self.graph:
            raise self.error(
                f"input {x.name!r} belongs to another graph ({x.graph!r}) than this layer's "
                f"weights ({self.graph!r}); build the input in the layer's graph, or build a "
                f"new layer in the input's graph",
                gc.GraphError,
            )
        self.check_input(x)
        out = self.forward(x)
        self._cache[id(x)] = (x, out)
        return out

    @property
    def layers(self) -> list[Layer]:
        """A layer's layers: just itself.

        Example:
            >>> import graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
            >>> fc = G.ConsFC(x, G.WithShape(1)); fc.layers == [fc]
            True
        """
        return [self]

    # ----- pickling: rebuilt from its constructor, options, weights and state ----------------
    def __getstate__(self) -> dict[str, Any]:
        """What ``pickle`` keeps of a layer: its class, options, input shape and dtype, weights
        and state (not its graph: graph ops are not all picklable, and a layer rebuilt from
        its constructor is the same layer). A composition rebuilds its layers in one new
        graph; a layer unpickled alone gets a graph of its own.

        Example:
            >>> import pickle, numpy as np, graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
            >>> fc = G.ConsFC(x, G.WithShape(2), G.WithName("h"), G.WithActivation(gc.Tanh))
            >>> copy = pickle.loads(pickle.dumps(fc))
            >>> copy, np.array_equal(copy.params["W"].value, fc.params["W"].value)
            (FC(name='h', size=2, activation=Tanh, bias=True), True)
        """
        pending = getattr(self, "_pending", None)
        if pending is not None:
            return pending
        return {
            "name": self.name,
            "opts": tuple(LayerOpt(k, v) for k, v in self.opts.items()
                          if k not in ("name", "weights")),
            "input": (tuple(self.input_shape), self.input_dtype),
            "values": {k: n.value for k, n in self.params.items()},
            "state": self.state(),
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._pending: dict[str, Any] | None = state
        shape, dtype = state["input"]
        x = gc.NewTensor(gc.NewGraph(), dtype, len(shape), gc.WithShape(*shape),
                         gc.WithName("x"))
        self._rebuild(x)

    def _rehome(self) -> None:
        """Forget the graph: the next ``instantiate(x)`` builds the layer again on ``x``, with
        its current weights and state (a composition being unpickled moves its layers into
        one graph this way)."""
        if getattr(self, "_pending", None) is None:
            self._pending = self.__getstate__()

    def _rebuild(self, x: gc.Node) -> None:
        p = self._pending
        assert p is not None
        rng = get_rng()
        drawn = rng.bit_generator.state
        try:  # the initial weights it draws are replaced: leave the seeded stream as it was
            Layer.__init__(self, x, *p["opts"], WithName(p["name"]))
        finally:
            rng.bit_generator.state = drawn
        for k, v in p["values"].items():
            gc.Let(self.params[k], v)
        if p["state"]:
            self.load_state(p["state"])
        self._pending = None

    def instantiate(self, x: gc.Node) -> Term:
        """The layer itself (built on ``x`` first when it was just unpickled)."""
        if getattr(self, "_pending", None) is not None:
            self._rebuild(x)
        return self

    def __repr__(self) -> str:
        parts = []
        for k, v in self.config().items():
            bare = k in ("activation", "init", "dtype") and isinstance(v, str)
            parts.append(f"{k}={v if bare else repr(tuple(v) if isinstance(v, list) else v)}")
        return f"{self.kind}({', '.join(parts)})"




def per_sample(shape: Sequence[int | None]) -> int:
    """Values per sample of a (batch, ...) shape, for FLOPs and summaries.

    A free size besides the batch (a sequence of any length) counts as 1: FLOPs are then per
    position along it.

    Example:
        >>> per_sample((None, 3, 4)), per_sample((None, None, 4)), per_sample((None,))
        (12, 4, 1)
    """
    return math.prod(d for d in shape[1:] if d is not None)


def sample_sizes(layer: Layer, shape: Sequence[int | None]) -> tuple[int, ...]:
    """The sizes after the batch of ``shape``, for a layer that needs them all known (its
    ``check_input`` says so); the layer's ``ShapeError`` when one is free.

    Example:
        >>> import graphcore as gc, golgi as G
        >>> g = gc.NewGraph()
        >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 4), gc.WithName("x"))
        >>> fc = G.ConsFC(x, G.WithShape(2), G.WithName("h"))
        >>> sample_sizes(fc, (None, 3, 4))
        (3, 4)
    """
    sizes = tuple(d for d in shape[1:] if d is not None)
    if len(sizes) != len(shape) - 1:
        raise layer.error(
            f"input shape {fmt_shape(tuple(shape))}: only the batch size may be None here"
        )
    return sizes
