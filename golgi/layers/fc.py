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

from collections.abc import Sequence
from typing import Any

import graphcore as gc
from graphcore.shapes import fmt_shape

from ..layer import Layer
from ..options import LayerOpt, fn_name
from ..term import Thunk

__all__ = ["FC", "ConsFC"]


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
    options = ("name", "shape", "activation", "bias", "init", "weights")
    defaults = {"activation": None, "bias": True}

    def check_input(self, x: gc.Node) -> None:
        """Also require a float matrix (batch, features) with a known feature size."""
        if x.ndim == 1:
            n = x.shape[0]
            raise self.error(
                f"{x.describe()} is a vector; FC takes a matrix (batch, features): "
                f"declare the input with shape (1, {n}) or (None, {n}) (or reshape it with "
                f"ConsReshape(ToShape(1, {n})))"
            )
        if x.ndim != 2:
            raise self.error(
                f"{x.describe()} is {x.ndim}-D; FC takes a matrix (batch, features): put "
                f"L(ConsFlatten()) before it to flatten all but the batch dimension"
            )
        if not x.dtype.is_float:
            raise self.error(f"{x.describe()} must be Float32 or Float64", gc.DtypeError)
        if x.shape[1] is None:
            raise self.error(f"{x.describe()} must have a known feature size (dimension 1)")
        super().check_input(x)

    def build(self, x: gc.Node) -> None:
        """Create ``W`` (in, size) (``WithInit``/``WithWeights``) and the bias ``b`` (1, size)."""
        n_in = x.shape[1]
        o = self.opts
        w = o.get("weights")
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
        if o["bias"]:
            self.learnable("b", (1, self.size), init=gc.Zeroes())

    def forward(self, x: gc.Node) -> gc.Node:
        """``act(x @ W + b)``."""
        h = gc.Mul(x, self.params["W"])
        if "b" in self.params:
            h = gc.Add(h, self.params["b"])
        act = self.opts["activation"]
        return act(h) if act is not None else h

    def output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        """``(batch, size)``, without tracing."""
        if len(input_shape) != 2:
            raise self.error(f"takes (batch, features), got {fmt_shape(tuple(input_shape))}")
        return (input_shape[0], self.size)

    def config(self) -> dict[str, Any]:
        """Name, ``size``, activation, bias (and init, weights when given)."""
        out: dict[str, Any] = {
            "name": self.name,
            "size": self.size,
            "activation": fn_name(self.opts["activation"]),
            "bias": bool(self.opts["bias"]),
        }
        if "init" in self.opts:
            out["init"] = fn_name(self.opts["init"])
        if "weights" in self.opts:
            out["weights"] = "given"
        return out


def ConsFC(x: gc.Node | LayerOpt | None = None, *opts: LayerOpt) -> FC | Thunk:
    """A fully connected layer for input ``x`` (batch, features); without ``x``, a thunk for ``L``.

    Options: ``WithShape(n)`` (units; ``WithSize`` alias), ``WithName``, ``WithActivation(fn)``
    (any graphcore activation, default none), ``WithBias(bool)`` (default on; shape (1, n)),
    ``WithInit(initializer)`` (default ``GlorotU(1.0)``), ``WithWeights(array or node)``.

    The input must be a matrix (batch, features). A vector is refused with a hint (declare it
    (1, n) or (None, n)): treating it as one sample would silently change the output's rank.
    Inputs with more dimensions need ``L(ConsFlatten())`` first.

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
