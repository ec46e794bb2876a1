"""Dropout layer: inverted dropout in training runs, the identity in eval runs.

The drop probability defaults to 0.5 (PyTorch's default and the classic rate for hidden
units). Golgi's default is 0, which silently makes the layer a no-op; ``WithProbability(0)``
still gives that.

Example:
    >>> import graphcore as gc, golgi as G
    >>> g = gc.NewGraph()
    >>> x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 100), gc.WithName("x"))
    >>> G.ConsDropout(x, G.WithProbability(0.2)).fwd(x).op
    Dropout(p=0.2)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import graphcore as gc

from ..layer import Layer, Thunk
from ..options import LayerOpt

__all__ = ["Dropout", "ConsDropout"]


class Dropout(Layer):
    """Zero each element with probability p and scale the rest by 1/(1-p) while training.

    The mode is the machine's: ``gc.NewTapeMachine(g, gc.EvalMode())`` or ``vm.training =
    False`` makes it the identity. Masks come from the machine's generator (``gc.SetSeed``).

    Example:
        >>> Dropout.kind, Dropout.defaults
        ('Dropout', {'probability': 0.5})
    """

    kind = "Dropout"
    prefix = "dropout"
    options = ("name", "probability")
    defaults = {"probability": 0.5}

    def check_input(self, x: gc.Node) -> None:
        if not x.dtype.is_float:
            raise self.error(f"{x.describe()} must be Float32 or Float64", gc.DtypeError)
        super().check_input(x)

    def forward(self, x: gc.Node) -> gc.Node:
        return gc.Dropout(x, self.opts["probability"])

    def output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        return tuple(input_shape)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "probability": self.opts["probability"]}


def ConsDropout(x: gc.Node | LayerOpt | None = None, *opts: LayerOpt) -> Dropout | Thunk:
    """A dropout layer. Options: ``WithProbability(p)`` (drop probability, default 0.5),
    ``WithName``.

    Example:
        >>> import golgi as G
        >>> G.ConsDropout(G.WithProbability(0.25))
        L(ConsDropout(WithProbability(0.25)))
    """
    return Dropout.cons(x, *opts)
