"""Reshape layers: ``ConsReshape(ToShape(...))`` and ``ConsFlatten()``; the batch stays free.

Example:
    >>> import graphcore as gc, golgi as G
    >>> g = gc.NewGraph()
    >>> img = gc.NewTensor(g, gc.Float32, 4, gc.WithShape(None, 1, 28, 28), gc.WithName("img"))
    >>> G.ConsFlatten(img).fwd(img).shape
    (None, 784)
    >>> G.ConsReshape(img, G.ToShape(None, 28, 28)).fwd(img).shape
    (None, 28, 28)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import graphcore as gc
from graphcore.shapes import fmt_shape

from ..layer import Layer, sample_sizes
from ..options import LayerOpt
from ..term import Thunk

__all__ = ["Reshape", "Flatten", "ConsReshape", "ConsFlatten"]


class Reshape(Layer):
    """Reshape to ``ToShape(dims...)`` (batch dimension included; ``None`` keeps the input's
    batch, one ``-1`` is inferred). No learnables.

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph()
        >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 6), gc.WithName("x"))
        >>> ConsReshape(x, LayerOpt("to_shape", (None, 2, -1))).output_shape((None, 6))
        (None, 2, 3)
    """

    kind = "Reshape"
    prefix = "reshape"
    options = ("name", "to_shape", "batched")

    def build(self, x: gc.Node) -> None:
        """Check ``ToShape`` against the input (no learnables)."""
        if "to_shape" not in self.opts:
            raise self.error("give the target shape with ToShape(None, ...)", ValueError)
        dims = self.opts["to_shape"]
        if any(d is None for d in dims[1:]):
            raise self.error(
                f"ToShape{tuple(dims)}: only the first (batch) entry may be None", ValueError
            )
        self.output_shape(x.shape)  # fail now rather than at fwd

    def output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        """The ``ToShape`` target with ``None`` and ``-1`` resolved for ``input_shape``."""
        src = tuple(input_shape)
        tgt: list[int | None] = list(self.opts["to_shape"])
        if tgt[0] is None:
            tgt[0] = src[0] if src else None
        if (None in src) != (None in tgt):
            raise self.error(
                f"cannot reshape {fmt_shape(src)} to {self._fmt()}: the input's batch "
                f"dimension is free, so the target must keep it: write ToShape(None, ...)"
                if None in src
                else f"cannot reshape {fmt_shape(src)} to {self._fmt()}: the input has no free "
                f"dimension to keep"
            )
        known_src = math.prod(d for d in src if d is not None)
        known_tgt = math.prod(d for d in tgt if d not in (None, -1))
        if -1 in tgt:
            if known_tgt == 0 or known_src % known_tgt:
                raise self.error(
                    f"cannot reshape {fmt_shape(src)} to {self._fmt()}: {known_src} elements "
                    f"per sample do not divide into {known_tgt}"
                )
            tgt[tgt.index(-1)] = known_src // known_tgt
            known_tgt = known_src
        if known_src != known_tgt:
            raise self.error(
                f"cannot reshape {fmt_shape(src)} to {self._fmt()}: {known_src} elements "
                f"(batch aside) do not fit {known_tgt}"
            )
        return tuple(tgt)

    def _fmt(self) -> str:
        return fmt_shape(tuple(self.opts["to_shape"]))

    def forward(self, x: gc.Node) -> gc.Node:
        """``gc.Reshape`` of ``x`` to the resolved target shape."""
        return gc.Reshape(x, self.output_shape(x.shape))

    def config(self) -> dict[str, Any]:
        """Name and ``to_shape``."""
        return {"name": self.name, "to_shape": list(self.opts["to_shape"])}


class Flatten(Layer):
    """Flatten all but the batch dimension: (batch, a, b, ...) -> (batch, a*b*...).

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph()
        >>> x = gc.NewTensor(g, gc.Float64, 3, gc.WithShape(None, 2, 3), gc.WithName("x"))
        >>> ConsFlatten(x).output_shape((None, 2, 3))
        (None, 6)
    """

    kind = "Flatten"
    prefix = "flatten"
    options = ("name",)

    def check_input(self, x: gc.Node) -> None:
        """Also require at least 2 dimensions, all but the batch known."""
        if x.ndim < 2 or None in x.shape[1:]:
            raise self.error(
                f"{x.describe()} must be (batch, ...) with at least 2 dimensions, all "
                f"but the batch known"
            )
        super().check_input(x)

    def output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        """``(batch, product of the other sizes)``."""
        return (input_shape[0], math.prod(sample_sizes(self, input_shape)))

    def forward(self, x: gc.Node) -> gc.Node:
        """``gc.Reshape`` of ``x`` to (batch, features)."""
        return gc.Reshape(x, self.output_shape(x.shape))

    def config(self) -> dict[str, Any]:
        """Just the name."""
        return {"name": self.name}


def ConsReshape(x: gc.Node | LayerOpt | None = None, *opts: LayerOpt) -> Reshape | Thunk:
    """Reshape layer: ``ConsReshape(x, ToShape(None, 784))``; ``None`` keeps the free batch.

    Options: ``ToShape(dims...)`` (required), ``WithName``.

    Example:
        >>> import golgi as G
        >>> G.ConsReshape(G.ToShape(None, 784))
        L(ConsReshape(ToShape(None, 784)))
    """
    return Reshape.cons(x, *opts)


def ConsFlatten(x: gc.Node | LayerOpt | None = None, *opts: LayerOpt) -> Flatten | Thunk:
    """Flatten layer: (batch, ...) -> (batch, features), the batch left free. Option ``WithName``.

    Example:
        >>> import golgi as G
        >>> G.ConsFlatten()
        L(ConsFlatten())
    """
    return Flatten.cons(x, *opts)
