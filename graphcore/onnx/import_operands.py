"""Reading an ONNX node's operands for the import rows: graph nodes, or arrays known while
loading (shape arithmetic, constants), and its int and axes arguments; ``Value`` and ``Build``,
the types of a row's outputs and of its builder.

Example:
    >>> _ints(np.array([[1, 2], [3, 4]]))
    [1, 2, 3, 4]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ..graph import Node

if TYPE_CHECKING:  # pragma: no cover
    from .importer import Loader

__all__ = ["Value", "Build"]

#: what a row's builder returns per output: a graph node, or an array known while loading
Value = Node | np.ndarray
#: ``build(ld, p, a)``: ONNX node ``p``'s outputs (attributes ``a``), built with the loader ``ld``
Build = Callable[["Loader", Any, dict[str, Any]], list[Value]]


def _arg(ld: Loader, name: str) -> Any:
    """An operand of an elementwise op: a node, or the array of a constant (which the op
    turns into a constant of the other operand's float dtype)."""
    if name in ld.nodes or name in ld.initializers:
        return ld.node(name)
    arr = ld.static(name)
    return arr if arr is not None else ld.node(name)


def _all_static(ld: Loader, p: Any) -> list[np.ndarray] | None:
    """Every input as an array, when all are known while loading (and none is a weight)."""
    out = []
    for name in p.input:
        if name in ld.nodes or name in ld.initializers and ld.initializers[name].dtype.kind == "f":
            return None
        arr = ld.static(name)
        if arr is None:
            return None
        out.append(arr)
    return out


def _x(ld: Loader, p: Any, i: int = 0) -> Node:
    return ld.node(p.input[i])


def _ints(v: Any) -> list[int]:
    return [int(i) for i in np.asarray(v).reshape(-1)]


def _axes(ld: Loader, p: Any, a: dict[str, Any], since: int, i: int = 1) -> list[int] | None:
    """Axes given as an attribute (before opset ``since``) or as input ``i`` (from it)."""
    if ld.opset < since:
        return None if "axes" not in a else _ints(a["axes"])
    return _ints(ld.need_static(p, i, "axes")) if ld.has(p, i) else None
