"""``LazyLayer``: a layer built by its first ``fwd`` and kept (Golgi's ``NewFC`` semantics).

A thunk (``L(ConsFC(...))``) builds a new layer each time it is applied outside a
composition; a lazy layer builds once, on the first input it sees, and is that layer from
then on, wherever it is used: two compositions holding one lazy layer share its weights.

Example:
    >>> import graphcore as gc, golgi as G
    >>> g = gc.NewGraph()
    >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 4), gc.WithName("x"))
    >>> fc = G.NewFC(G.WithShape(2), G.WithName("h"))
    >>> fc.built, fc.fwd(x) is fc.fwd(x), fc.built, [n.name for n in fc.model()]
    (False, True, True, ['h/W', 'h/b'])
"""

from __future__ import annotations

from typing import Any

import graphcore as gc

from ..layer import Layer
from ..summary import SummaryTable
from ..term import Term, Thunk

__all__ = ["LazyLayer"]


class LazyLayer(Term):
    """A layer waiting for its first input; built then, and kept.

    ``layer`` is None until the first ``fwd`` (or until a composition instantiates it), then
    the built layer, which every later use applies.

    Example:
        >>> import golgi as G
        >>> lazy = LazyLayer(G.ConsFC(G.WithShape(3)), "NewFC")
        >>> lazy, lazy.layer
        (NewFC(WithShape(3)), None)
    """

    def __init__(self, thunk: Thunk, builder: str = "LazyLayer") -> None:
        if not isinstance(thunk, Thunk):
            raise TypeError(f"{builder} takes a delayed layer such as ConsFC(...), got {thunk!r}")
        self.thunk = thunk
        self.builder = builder
        self.layer: Layer | None = None

    def instantiate(self, x: gc.Node) -> Layer:
        """The layer: built for ``x`` the first time, the same one afterwards.

        Example:
            >>> import graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 4), gc.WithName("x"))
            >>> lazy = G.NewFC(G.WithShape(2))
            >>> lazy.instantiate(x) is lazy.instantiate(x) is lazy.layer
            True
        """
        if self.layer is None:
            self.layer = self.thunk.build(x)
        return self.layer

    def fwd(self, x: gc.Node) -> gc.Node:
        """Build the layer on the first call; apply it.

        Example:
            >>> import graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 4), gc.WithName("x"))
            >>> G.NewFC(G.WithShape(2)).fwd(x).shape
            (None, 2)
        """
        return self.instantiate(x).fwd(x)

    @property
    def built(self) -> bool:
        """True once the first input built the layer.

        Example:
            >>> import golgi as G
            >>> G.NewFC(G.WithShape(2)).built
            False
        """
        return self.layer is not None

    @property
    def layers(self) -> list[Layer]:
        """``[layer]`` once built, else empty."""
        return [] if self.layer is None else [self.layer]

    def named_learnables(self) -> dict[str, gc.Node]:
        """As :meth:`Term.named_learnables`; raises ``GraphError`` before the first ``fwd``."""
        if self.layer is None:
            raise gc.GraphError(
                f"{self!r} is not built yet, so it has no learnables: apply it to an input "
                f"first (out = layer.fwd(x))"
            )
        return self.layer.named_learnables()

    def summary_rows(
        self, table: SummaryTable, shape: tuple[int | None, ...], dtype: gc.Dtype
    ) -> tuple[tuple[int | None, ...], gc.Dtype]:
        """The built layer's row, or (before the first ``fwd``) a throwaway one's."""
        if self.layer is not None:
            return self.layer.summary_rows(table, shape, dtype)
        return self.thunk.summary_rows(table, shape, dtype)

    def flops(self, batch: int = 1) -> int:
        """The built layer's FLOPs (0 before the first ``fwd``)."""
        return 0 if self.layer is None else self.layer.flops(batch)

    def repr_tree(self, indent: str = "") -> str:
        """The layer's repr once built, else the builder call."""
        return repr(self)

    def __repr__(self) -> str:
        if self.layer is not None:
            return repr(self.layer)
        return f"{self.builder}({', '.join(repr(o) for o in self.thunk.opts)})"

    def __getattr__(self, name: str) -> Any:
        # before the build there is nothing to forward to; after it, act as the layer
        layer = self.__dict__.get("layer")
        if layer is None or name.startswith("__"):
            raise AttributeError(name)
        return getattr(layer, name)
