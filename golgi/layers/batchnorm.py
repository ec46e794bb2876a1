"""Batch normalisation layer for (N, C) features or (N, C, H, W) images, per channel.

Learnables ``gamma`` (ones) and ``beta`` (zeros), shape (C,). The running mean and variance
(zeros and ones) are arrays owned by the layer: every node the layer builds reads and updates
the same arrays, training runs update them (momentum 0.1, unbiased variance, as PyTorch), eval
runs use them, building a machine never resets them, and ``state()`` / ``load_state`` (used by
``golgi.save`` / ``golgi.load``) save and restore them in place.

Example:
    >>> import graphcore as gc, golgi as G
    >>> g = gc.NewGraph()
    >>> x = gc.NewTensor(g, gc.Float32, 4, gc.WithShape(None, 16, 8, 8), gc.WithName("x"))
    >>> bn = G.ConsBatchNorm(x, G.WithName("bn1"))
    >>> [n.name for n in bn.model()], sorted(bn.state())
    (['bn1/gamma', 'bn1/beta'], ['bn1/running_mean', 'bn1/running_var'])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

import graphcore as gc

from ..layer import Layer, per_sample
from ..options import LayerOpt
from ..term import Thunk

__all__ = ["BatchNorm", "ConsBatchNorm"]


class BatchNorm(Layer):
    """Batch normalisation; build it with :func:`ConsBatchNorm`.

    Example:
        >>> BatchNorm.defaults
        {'eps': 1e-05, 'momentum': 0.1}
    """

    kind = "BatchNorm"
    prefix = "batchnorm"
    options = ("name", "eps", "momentum")
    defaults = {"eps": 1e-5, "momentum": 0.1}

    def check_input(self, x: gc.Node) -> None:
        """Also require a float (batch, features) or NCHW input, all but the batch known."""
        if x.ndim not in (2, 4):
            raise self.error(
                f"{x.describe()} is {x.ndim}-D; BatchNorm takes (batch, features) or NCHW "
                f"images (batch, channels, height, width)"
            )
        if not x.dtype.is_float:
            raise self.error(f"{x.describe()} must be Float32 or Float64", gc.DtypeError)
        if None in x.shape[1:]:
            raise self.error(f"{x.describe()}: only the batch dimension may be None")
        super().check_input(x)

    def build(self, x: gc.Node) -> None:
        """Create ``gamma``, ``beta`` and the running mean/variance state (per channel)."""
        c = x.shape[1]
        self.channels: int = int(c)
        self.learnable("gamma", (c,), init=gc.Ones())
        self.learnable("beta", (c,), init=gc.Zeroes())
        self.running_mean = self.add_state("running_mean", np.zeros(c, self.dtype.np))
        self.running_var = self.add_state("running_var", np.ones(c, self.dtype.np))

    def forward(self, x: gc.Node) -> gc.Node:
        """``gc.BatchNorm``: batch statistics while training, running ones in eval mode."""
        return gc.BatchNorm(
            x,
            self.params["gamma"],
            self.params["beta"],
            self.running_mean,
            self.running_var,
            momentum=self.opts["momentum"],
            eps=self.opts["eps"],
        )

    def output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        """The input shape."""
        return tuple(input_shape)

    def flops(self, batch: int = 1) -> int:
        """About 5 per value: subtract the mean, scale by the inverse deviation, then gamma and
        beta (the statistics themselves are not counted).

        Example:
            >>> import graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 4), gc.WithName("x"))
            >>> G.ConsBatchNorm(x).flops()
            20
        """
        return batch * per_sample(self.input_shape) * 5

    def config(self) -> dict[str, Any]:
        """Name, ``eps`` and ``momentum``."""
        return {"name": self.name, "eps": self.opts["eps"], "momentum": self.opts["momentum"]}


def ConsBatchNorm(x: gc.Node | LayerOpt | None = None, *opts: LayerOpt) -> BatchNorm | Thunk:
    """Batch normalisation per channel. Options: ``WithEps`` (default 1e-5), ``WithMomentum``
    (running-statistics momentum, default 0.1: ``running = 0.9 * running + 0.1 * batch``),
    ``WithName``.

    Example:
        >>> import golgi as G
        >>> G.ConsBatchNorm(G.WithMomentum(0.01))
        L(ConsBatchNorm(WithMomentum(0.01)))
    """
    return BatchNorm.cons(x, *opts)
