"""Layer names, unique per graph: each graph keeps a table of the golgi layers built in it,
by name; a layer claims its name when it is built (``fc_1``, ``fc_2``... unless given one).

Example:
    >>> import graphcore as gc, golgi as G
    >>> g = gc.NewGraph()
    >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
    >>> _ = G.ConsFC(x, G.WithShape(1)), G.ConsFC(x, G.WithShape(1), G.WithName("out"))
    >>> sorted(layer_names(g))
    ['fc_1', 'out']
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import graphcore as gc

if TYPE_CHECKING:  # annotations only: layers claim their names from here
    from .layer import Layer

__all__ = ["layer_names", "claim_name", "release_name"]

# The graph keeps one table per namespace; golgi's layers live in this one.
_NAMESPACE = "golgi.layers"


def layer_names(graph: gc.Graph) -> dict[str, Layer]:
    """The layers built in ``graph``, by name.

    Example:
        >>> import graphcore as gc
        >>> layer_names(gc.NewGraph())
        {}
    """
    return dict(graph.registry(_NAMESPACE))


def claim_name(layer: Layer, wanted: str | None) -> str:
    """Register ``layer`` in its graph under ``wanted``, or the first free ``<prefix>_<i>``.

    Raises ``GraphError`` when ``wanted`` is taken, naming both layers. ``Layer.__init__``
    calls it; a layer whose build fails gives its name back with :func:`release_name`.

    Example:
        >>> import graphcore as gc, golgi as G
        >>> g = gc.NewGraph()
        >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
        >>> fc = G.ConsFC(x, G.WithShape(1), G.WithName("h"))
        >>> claim_name(fc, "h")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        graphcore.errors.GraphError: ConsFC: graph ... already has a layer named 'h': ...
    """
    taken = layer.graph.registry(_NAMESPACE)
    if wanted is not None:
        other = taken.get(wanted)
        if other is not None:
            raise gc.GraphError(
                f"{layer.cons_name}: graph {layer.graph.name!r} already has a layer named "
                f"{wanted!r}: {other!r}; give the new {layer.kind} layer another name with "
                f"WithName(...), or reuse the existing layer to share its weights"
            )
        name = wanted
    else:
        i = 1
        while f"{layer.prefix}_{i}" in taken:
            i += 1
        name = f"{layer.prefix}_{i}"
    taken[name] = layer
    return name


def release_name(layer: Layer) -> None:
    """Remove ``layer`` from its graph's registry (if the name is still its own).

    Example:
        >>> import graphcore as gc, golgi as G
        >>> g = gc.NewGraph()
        >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
        >>> fc = G.ConsFC(x, G.WithShape(1), G.WithName("h")); release_name(fc)
        >>> layer_names(g)
        {}
    """
    taken = layer.graph.registry(_NAMESPACE)
    if taken.get(layer.name) is layer:
        del taken[layer.name]
