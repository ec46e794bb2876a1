"""Embedding: a learned table W (classes, dims) looked up by integer indices or multiplied by
one-hot rows.

Example:
    >>> import graphcore as gc, golgi as G
    >>> g = gc.NewGraph()
    >>> oh = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 10), gc.WithName("oh"))
    >>> emb = G.ConsEmbedding(oh, G.WithOneHotInput(), G.WithShape(4), G.WithName("emb"))
    >>> emb.model()[0].shape, emb.fwd(oh).shape
    ((10, 4), (None, 4))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import graphcore as gc

from ..layer import Layer
from ..options import LayerOpt, fn_name
from ..term import Thunk

__all__ = ["Embedding", "ConsEmbedding"]


class Embedding(Layer):
    """Rows of ``<name>/W`` (classes, dims), ``GlorotN(1.0)`` unless ``WithInit``/``WithWeights``.

    By index (default): input ints (batch,) or (batch, t) -> (batch, dims) or (batch, t, dims);
    the table's dtype comes from ``Of(dtype)`` (default Float32) and ``WithClasses(n)`` is
    required. With ``WithOneHotInput()``: input floats (batch, classes) -> x @ W.

    Example:
        >>> import graphcore as gc
        >>> Embedding.kind
        'Embedding'
    """

    kind = "Embedding"
    prefix = "embedding"
    options = ("name", "shape", "classes", "onehot", "dtype", "init", "weights")
    defaults = {"onehot": False}

    def check_input(self, x: gc.Node) -> None:
        """Also require integer indices (batch,)/(batch, t), or float one-hot rows."""
        if self.opts["onehot"]:
            if x.ndim != 2 or not x.dtype.is_float or x.shape[1] is None:
                raise self.error(
                    f"with WithOneHotInput() the input must be float one-hot rows (batch, "
                    f"classes), got {x.describe()}"
                )
        elif x.dtype.is_float or x.dtype == gc.Bool or x.ndim not in (1, 2):
            raise self.error(
                f"the input must be integer indices of shape (batch,) or (batch, t), got "
                f"{x.describe()}; for one-hot float rows add WithOneHotInput()",
                gc.DtypeError if x.dtype.is_float else gc.ShapeError,
            )
        super().check_input(x)

    def build(self, x: gc.Node) -> None:
        """Create the table ``W`` (classes, dims), from ``WithInit``/``WithWeights``."""
        o = self.opts
        w = o.get("weights")
        if o["onehot"]:
            classes = x.shape[1]
            if "classes" in o and o["classes"] != classes:
                raise self.error(
                    f"WithClasses({o['classes']}) differs from the one-hot input's "
                    f"{classes} columns ({x.describe()})"
                )
            if "dtype" in o and o["dtype"] != x.dtype:
                raise self.error(f"Of({o['dtype']}) differs from the input's {x.dtype}")
        else:
            self.dtype = o.get("dtype", gc.Float32)
            classes = o.get("classes") or (w.shape[0] if w is not None else None)
            if classes is None:
                raise self.error("give the number of classes with WithClasses(n)", ValueError)
        if "shape" in o:
            if len(o["shape"]) != 1:
                raise self.error(f"WithShape takes one size (dims), got {o['shape']}", ValueError)
            dims = o["shape"][0]
        elif w is not None and len(w.shape) == 2:
            dims = w.shape[1]
        else:
            raise self.error("give the embedding size with WithShape(dims)", ValueError)
        self.classes, self.dims = int(classes), int(dims)
        shape = (self.classes, self.dims)
        if isinstance(w, gc.Node):
            self.adopt("W", w, shape)
        elif w is not None:
            self.learnable("W", shape, value=w)
        else:
            self.learnable("W", shape, init=o.get("init") or gc.GlorotN(1.0))

    def forward(self, x: gc.Node) -> gc.Node:
        """Rows of ``W`` picked by index, or ``x @ W`` for one-hot input."""
        if self.opts["onehot"]:
            return gc.Mul(x, self.params["W"])
        return gc.ByIndices(self.params["W"], x, 0)

    def output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        """The input shape plus ``dims`` (one-hot: ``(batch, dims)``)."""
        if self.opts["onehot"]:
            return (input_shape[0], self.dims)
        return (*input_shape, self.dims)

    def flops(self, batch: int = 1) -> int:
        """None for a lookup by index (a copy); ``(2 classes - 1) * dims`` per one-hot row.

        Example:
            >>> import graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> oh = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("oh"))
            >>> G.ConsEmbedding(oh, G.WithOneHotInput(), G.WithShape(2)).flops()
            10
        """
        if not self.opts["onehot"]:
            return 0
        return batch * (2 * self.classes - 1) * self.dims

    def config(self) -> dict[str, Any]:
        """Name, classes, ``size`` (dims), onehot, dtype (and init when given)."""
        out: dict[str, Any] = {
            "name": self.name,
            "classes": self.classes,
            "size": self.dims,
            "onehot": bool(self.opts["onehot"]),
            "dtype": str(self.dtype),
        }
        if "init" in self.opts:
            out["init"] = fn_name(self.opts["init"])
        return out


def ConsEmbedding(x: gc.Node | LayerOpt | None = None, *opts: LayerOpt) -> Embedding | Thunk:
    """An embedding table for integer indices (or one-hot rows with ``WithOneHotInput()``).

    Options: ``WithClasses(n)`` (rows; required for indices), ``WithShape(dims)``, ``Of(dtype)``
    (table dtype for index input, default Float32), ``WithOneHotInput()``, ``WithInit``
    (default ``GlorotN(1.0)``), ``WithWeights``, ``WithName``.

    Example:
        >>> import graphcore as gc, golgi as G
        >>> G.ConsEmbedding(G.WithClasses(100), G.WithShape(8), G.Of(gc.Float64))
        L(ConsEmbedding(WithClasses(100), WithShape(8), Of(Float64)))
    """
    return Embedding.cons(x, *opts)
