"""Skip layer (Golgi's ``ConsSkip``): add a constant to the input, ``x + c``.

Example:
    >>> import numpy as np, graphcore as gc, golgi as G
    >>> g = gc.NewGraph()
    >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
    >>> skip = G.ConsSkip(x, G.WithConst(np.array([1.0, 2.0, 3.0])))
    >>> y = skip.fwd(x); gc.Let(x, np.zeros((2, 3))); gc.NewTapeMachine(g).run_all()
    >>> y.value
    array([[1., 2., 3.],
           [1., 2., 3.]])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

import graphcore as gc
from graphcore.shapes import broadcast_shapes, fmt_shape

from ..layer import Layer
from ..options import LayerOpt
from ..term import Thunk

__all__ = ["Skip", "ConsSkip"]


class Skip(Layer):
    """``x + c`` for the constant ``c`` of ``WithConst`` (broadcast); no learnables.

    A number or an array becomes a constant of the input's dtype; a node is used as it is
    (it must have the input's dtype), so it may be another part of the graph.

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph()
        >>> x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 2), gc.WithName("x"))
        >>> Skip(x, LayerOpt("const", 0.5))
        Skip(name='skip_1', const=0.5)
    """

    kind = "Skip"
    prefix = "skip"
    options = ("name", "const")

    def check_input(self, x: gc.Node) -> None:
        """Also require a float input."""
        if not x.dtype.is_float:
            raise self.error(f"{x.describe()} must be Float32 or Float64", gc.DtypeError)
        super().check_input(x)

    def build(self, x: gc.Node) -> None:
        """Make the constant node (from ``WithConst``) and check that it broadcasts."""
        if "const" not in self.opts:
            raise self.error("give the constant to add with WithConst(c)", ValueError)
        c = self.opts["const"]
        if isinstance(c, gc.Node):
            if c.dtype != self.dtype:
                raise self.error(
                    f"WithConst node {c.describe()} must have the input's dtype {self.dtype}",
                    gc.DtypeError,
                )
            self.const = c
        else:
            self.const = gc.NewConstant(
                np.asarray(c, dtype=self.dtype.np), name=f"{self.name}/const"
            )
        self.output_shape(x.shape)  # fail now: the constant must broadcast

    def forward(self, x: gc.Node) -> gc.Node:
        """``x + c``."""
        return gc.Add(x, self.const)

    def output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        """The input shape broadcast with the constant's."""
        try:
            return tuple(broadcast_shapes(tuple(input_shape), tuple(self.const.shape)))
        except ValueError:
            raise self.error(
                f"the constant {fmt_shape(tuple(self.const.shape))} does not broadcast with "
                f"the input {fmt_shape(tuple(input_shape))}"
            ) from None

    def flops(self, batch: int = 1) -> int:
        """One addition per output value.

        Example:
            >>> import graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
            >>> G.ConsSkip(x, G.WithConst(1.0)).flops(batch=2)
            6
        """
        out = self.output_shape(self.input_shape)
        return batch * math.prod(d for d in out[1:] if d is not None)

    def config(self) -> dict[str, Any]:
        """Name and the constant: a number, a short list, or its node name and shape."""
        c = self.opts["const"]
        if isinstance(c, gc.Node):
            value: Any = f"node {c.name!r} {fmt_shape(tuple(c.shape))}"
        else:
            arr = np.asarray(c)
            value = arr.tolist() if arr.size <= 8 else f"array {fmt_shape(arr.shape)}"
        return {"name": self.name, "const": value}


def ConsSkip(x: gc.Node | LayerOpt | None = None, *opts: LayerOpt) -> Skip | Thunk:
    """A layer adding a constant to its input. Options: ``WithConst(c)`` (a number, an array
    or a node, broadcast against the input; required), ``WithName``.

    Example:
        >>> import golgi as G
        >>> G.ConsSkip(G.WithConst(1.0))
        L(ConsSkip(WithConst(1.0)))
    """
    return Skip.cons(x, *opts)
