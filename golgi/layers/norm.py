"""Layer normalisation over the last axis, with a per-feature scale (gamma) and shift (beta).

Unlike Golgi's LayerNorm (normalise, then a dense (in, size) projection), this is the standard
form: ``gamma * (x - mean) / sqrt(var + eps) + beta`` with gamma, beta of shape (features,).

Example:
    >>> import graphcore as gc, golgi as G
    >>> g = gc.NewGraph()
    >>> x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 16), gc.WithName("x"))
    >>> ln = G.ConsLayerNorm(x, G.WithName("ln"))
    >>> [n.name for n in ln.model()], ln.fwd(x).shape
    (['ln/gamma', 'ln/beta'], (None, 16))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import graphcore as gc

from ..layer import Layer, per_sample
from ..options import LayerOpt
from ..term import Thunk

__all__ = ["LayerNorm", "ConsLayerNorm"]


class LayerNorm(Layer):
    """Normalise each sample over its last axis; learnables ``gamma`` (ones), ``beta`` (zeros).

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph()
        >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 4), gc.WithName("x"))
        >>> ConsLayerNorm(x).config()
        {'name': 'layernorm_1', 'eps': 1e-05}
    """

    kind = "LayerNorm"
    prefix = "layernorm"
    options = ("name", "eps")
    defaults = {"eps": 1e-5}

    def check_input(self, x: gc.Node) -> None:
        """Also require a float input with a known last dimension."""
        if x.ndim < 1 or x.shape[-1] is None:
            raise self.error(f"{x.describe()} needs a known last (feature) dimension")
        if not x.dtype.is_float:
            raise self.error(f"{x.describe()} must be Float32 or Float64", gc.DtypeError)
        super().check_input(x)

    def build(self, x: gc.Node) -> None:
        """Create ``gamma`` (ones) and ``beta`` (zeros), sized like the last dimension."""
        n = x.shape[-1]
        self.learnable("gamma", (n,), init=gc.Ones())
        self.learnable("beta", (n,), init=gc.Zeroes())

    def forward(self, x: gc.Node) -> gc.Node:
        """Normalise over the last axis, then scale by ``gamma`` and shift by ``beta``."""
        mu = gc.Mean(x, -1, keepdims=True)
        d = gc.Sub(x, mu)
        var = gc.Mean(gc.Square(d), -1, keepdims=True)
        xhat = gc.HadamardProd(d, gc.InverseSqrt(gc.Add(var, self.opts["eps"])))
        return gc.Add(gc.HadamardProd(xhat, self.params["gamma"]), self.params["beta"])

    def output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        """The input shape."""
        return tuple(input_shape)

    def flops(self, batch: int = 1) -> int:
        """About 8 per value: the mean, the centring, the variance, the normalisation, gamma and
        beta.

        Example:
            >>> import graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 4), gc.WithName("x"))
            >>> G.ConsLayerNorm(x).flops()
            32
        """
        return batch * per_sample(self.input_shape) * 8

    def config(self) -> dict[str, Any]:
        """Name and ``eps``."""
        return {"name": self.name, "eps": self.opts["eps"]}


def ConsLayerNorm(x: gc.Node | LayerOpt | None = None, *opts: LayerOpt) -> LayerNorm | Thunk:
    """Layer normalisation over the last axis. Options: ``WithEps`` (default 1e-5), ``WithName``.

    Example:
        >>> import golgi as G
        >>> G.ConsLayerNorm(G.WithEps(1e-3))
        L(ConsLayerNorm(WithEps(0.001)))
    """
    return LayerNorm.cons(x, *opts)
