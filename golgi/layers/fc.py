"""Fully connected layer: ``act(x @ W + b)`` with W (in, out) and a (1, out) bias broadcast over
the batch.

Example:
    >>> import graphcore as gc, golgi as G
    >>> g = gc.NewGraph()
    >>> x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 784), gc.WithName("x"))
    >>> fc = G.ConsFC(x, G.WithShape(250), G.WithName("e1"), G.WithActivation(gc.Rectify))
    >>> [n.shape for n in fc.model()], fc.fwd(x).shape
    ([(784, 250), (1, 250)], (None, 250))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import graphcore as gc
from graphcore.shapes import fmt_shape

from ..layer import Layer, per_sample, sample_sizes
from ..options import AsBatched, LayerOpt, WithActivation, WithName, WithWB, fn_name
from ..term import Thunk
from .lazy import LazyLayer

__all__ = ["FC", "ConsFC", "NewFC", "MakeFC"]


class FC(Layer):
    """A fully connected layer; build it with :func:`ConsFC`.

    Learnables: ``<name>/W`` (in, size), ``GlorotU(1.0)`` unless ``WithInit``/``WithWeights``;
    ``<name>/b`` (1, size), zeros (``WithBias(False)`` removes it).

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph()
        >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
        >>> FC(x, LayerOpt("shape", (2,))).param_count()
        8
    """

    kind = "FC"
    prefix = "fc"
    options = (
        "name",
        "shape",
        "activation",
        "bias",
        "init",
        "weights",
        "wb",
        "positionwise",
        "batched",
    )
    defaults = {"activation": None, "bias": True}

    def check_input(self, x: gc.Node) -> None:
        """Also require a float matrix (batch, features) with a known feature size; with
        ``AsPositionwise()``, any (batch, ..., features)."""
        positionwise = self.opts.get("positionwise", False) and x.ndim >= 2
        if x.ndim == 1:
            n = x.shape[0]
            raise self.error(
                f"{x.describe()} is a vector; FC takes a matrix (batch, features): "
                f"declare the input with shape (1, {n}) or (None, {n}) (or reshape it with "
                f"ConsReshape(ToShape(1, {n})))"
            )
        if x.ndim != 2 and not positionwise:
            raise self.error(
                f"{x.describe()} is {x.ndim}-D; FC takes a matrix (batch, features): put "
                f"L(ConsFlatten()) before it to flatten all but the batch dimension (or, to "
                f"apply it at every position of a sequence, give it AsPositionwise())"
            )
        if positionwise and None in x.shape[1:]:
            raise self.error(f"{x.describe()}: only the batch dimension may be None")
        if not x.dtype.is_float:
            raise self.error(f"{x.describe()} must be Float32 or Float64", gc.DtypeError)
        if x.shape[1] is None:
            raise self.error(f"{x.describe()} must have a known feature size (dimension 1)")
        super().check_input(x)

    def build(self, x: gc.Node) -> None:
        """Create ``W`` (in, size) (``WithInit``/``WithWeights``) and the bias ``b`` (1, size)."""
        n_in = x.shape[-1]
        o = self.opts
        w = o.get("weights")
        wb = o.get("wb")
        if wb is not None:
            if w is not None:
                raise self.error(
                    "give the weights once: WithWeights or WithWB, not both", ValueError
                )
            w, b_given = wb
            if b_given is not None and not o["bias"]:
                raise self.error("WithWB gives a bias but WithBias(False) removes it", ValueError)
        if "shape" in o:
            if len(o["shape"]) != 1:
                raise self.error(
                    f"WithShape takes one size (the number of units), got {o['shape']}", ValueError
                )
            size = o["shape"][0]
        elif w is not None and len(w.shape) == 2 and w.shape[1] is not None:
            size = w.shape[1]
        else:
            raise self.error("give the number of units with WithShape(n)", ValueError)
        self.size: int = int(size)
        if isinstance(w, gc.Node):
            self.adopt("W", w, (n_in, self.size))
        elif w is not None:
            self.learnable("W", (n_in, self.size), value=w)
        else:
            self.learnable("W", (n_in, self.size), init=o.get("init") or gc.GlorotU(1.0))
        if wb is not None:
            b = wb[1]
            if isinstance(b, gc.Node):
                self.adopt("b", b, (1, self.size))
            elif b is not None:
                self.learnable("b", (1, self.size), value=np.reshape(b, (1, self.size)))
        elif o["bias"]:
            self.learnable("b", (1, self.size), init=gc.Zeroes())

    def forward(self, x: gc.Node) -> gc.Node:
        """``act(x @ W + b)`` (with ``AsPositionwise()``, over the last axis of ``x``)."""
        if x.ndim == 2:
            h = gc.Mul(x, self.params["W"])
        else:
            h = gc.Tensordot(x, self.params["W"], ([x.ndim - 1], [0]))
        if "b" in self.params:
            h = gc.Add(h, self.params["b"])
        act = self.opts["activation"]
        return act(h) if act is not None else h

    def output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        """``(batch, size)`` (positionwise: ``(batch, ..., size)``), without tracing."""
        if len(input_shape) != 2 and not (
            self.opts.get("positionwise", False) and len(input_shape) > 2
        ):
            raise self.error(f"takes (batch, features), got {fmt_shape(tuple(input_shape))}")
        return (*tuple(input_shape)[:-1], self.size)

    def flops(self, batch: int = 1) -> int:
        """Golgi's count: ``(2 in - 1) * size`` per row for the product, ``size`` for the
        bias and ``size`` for an activation; a row is a sample (or a position).

        Example:
            >>> import graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 4), gc.WithName("x"))
            >>> G.ConsFC(x, G.WithShape(3)).flops(), G.ConsFC(x, G.WithShape(3)).flops(10)
            (24, 240)
        """
        rows = batch * per_sample(self.input_shape[:-1])
        per_row = (2 * sample_sizes(self, self.input_shape)[-1] - 1) * self.size
        per_row += self.size * ("b" in self.params) + self.size * (
            self.opts["activation"] is not None
        )
        return rows * per_row

    def config(self) -> dict[str, Any]:
        """Name, ``size``, activation, bias (and init, weights when given)."""
        out: dict[str, Any] = {
            "name": self.name,
            "size": self.size,
            "activation": fn_name(self.opts["activation"]),
            "bias": "b" in self.params,
        }
        if self.opts.get("positionwise", False):
            out["positionwise"] = True
        if "init" in self.opts:
            out["init"] = fn_name(self.opts["init"])
        if "weights" in self.opts or "wb" in self.opts:
            out["weights"] = "given"
        return out


def ConsFC(x: gc.Node | LayerOpt | None = None, *opts: LayerOpt) -> FC | Thunk:
    """A fully connected layer for input ``x`` (batch, features); without ``x``, a thunk for ``L``.

    Options: ``WithShape(n)`` (units; ``WithSize`` alias), ``WithName``, ``WithActivation(fn)``
    (any graphcore activation, default none), ``WithBias(bool)`` (default on; shape (1, n)),
    ``WithInit(initializer)`` (default ``GlorotU(1.0)``), ``WithWeights(array or node)``,
    ``WithWB(w, b)`` (weights and bias; ``b=None``: no bias), ``AsPositionwise()`` (see
    below), ``AsBatched`` (accepted, changes nothing).

    The input must be a matrix (batch, features). A vector is refused with a hint (declare it
    (1, n) or (None, n)): treating it as one sample would silently change the output's rank.
    Inputs with more dimensions need ``L(ConsFlatten())`` first, except with
    ``AsPositionwise()``: then a sequence (batch, time, features) gives (batch, time, n), the
    same weights at every position.

    Example:
        >>> import graphcore as gc, golgi as G
        >>> g = gc.NewGraph()
        >>> x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 4), gc.WithName("x"))
        >>> G.ConsFC(x, G.WithShape(2), G.WithBias(False)).model()[0].shape
        (4, 2)
        >>> G.ConsFC(G.WithShape(2))
        L(ConsFC(WithShape(2)))
    """
    return FC.cons(x, *opts)


def NewFC(*opts: LayerOpt) -> LazyLayer:
    """Golgi's ``NewFC``: an FC layer built by its first ``fwd`` (sized from that input) and
    kept, so every later use shares its weights. Same options as :func:`ConsFC`.

    Example:
        >>> import graphcore as gc, golgi as G
        >>> g = gc.NewGraph()
        >>> a = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 4), gc.WithName("a"))
        >>> b = gc.NewMatrix(g, gc.Float64, gc.WithShape(8, 4), gc.WithName("b"))
        >>> fc = G.NewFC(G.WithShape(2), G.WithName("shared"))
        >>> fc.fwd(a).shape, fc.fwd(b).shape, len(G.layer_names(g))
        ((None, 2), (8, 2), 1)
    """
    thunk = FC.cons(*opts) if opts else Thunk(FC, ())
    return LazyLayer(thunk, "NewFC")


def MakeFC(
    w: gc.Node | Any,
    b: gc.Node | Any | None = None,
    act: Callable[[gc.Node], gc.Node] | None = None,
    name: str | None = None,
    batched: bool = True,
) -> LazyLayer:
    """Golgi's ``MakeFC(w, b, act, name, batched)``: an FC layer on given weights ``w``
    (in, size) and bias ``b`` (1, size) or None, built by its first ``fwd``.

    Nodes are shared (the layer's learnables are those nodes), arrays are copied into new
    learnables. ``batched`` is accepted and changes nothing: see :func:`AsBatched`.

    Example:
        >>> import numpy as np, graphcore as gc, golgi as G
        >>> g = gc.NewGraph()
        >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
        >>> w = gc.NewMatrix(g, gc.Float64, gc.WithShape(2, 3), gc.WithName("w"),
        ...                  gc.WithInit(gc.Ones()))
        >>> fc = G.MakeFC(w, None, gc.Rectify, "tied")
        >>> fc.fwd(x).shape, fc.model() == [w]
        ((None, 3), True)
    """
    opts: list[LayerOpt] = [WithWB(w, b), WithActivation(act), AsBatched(batched)]
    if name is not None:
        opts.append(WithName(name))
    return LazyLayer(FC.cons(*opts), "MakeFC")
