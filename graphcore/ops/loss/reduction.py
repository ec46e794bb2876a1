"""What the losses of this package share: the reductions (mean, sum or none) and the factor a
reduced loss's gradient takes (as a kernel and as graph ops), the shape check of targets
against logits, and the lookup of the arrays a loss's forward kernel saved for its gradient.

Example:
    >>> _check_reduction("BinaryXent", "sum"), _fits((None, 3), (5, 3)), _fits((2,), (2, 1))
    ('sum', True, False)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...graph import Node
from ...shapes import Shape
from ..base import ExecContext, Kernel, Op
from ..reduce import scale_by_inv_size
from ..shape import Reshape

__all__ = ["REDUCTIONS"]

REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(name: str, reduction: str) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(
            f"{name}: reduction must be one of {', '.join(map(repr, REDUCTIONS))}, "
            f"got {reduction!r}"
        )
    return reduction


def _fits(a: Shape, b: Shape) -> bool:
    """Same rank and every dimension equal (a free dimension fits any size)."""
    if len(a) != len(b):
        return False
    return all(p is None or q is None or p == q for p, q in zip(a, b, strict=True))


def _scale(g: np.ndarray, reduction: str, n: int, out: np.ndarray) -> Kernel:
    """A kernel writing into the 0-d ``out`` the factor a mean or sum loss's gradient takes."""
    inv = (1.0 / n if n else 0.0) if reduction == "mean" else 1.0
    return lambda: np.multiply(g, inv, out=out)


def _saved(ctx: ExecContext, source: Op | None, shape: tuple[int, ...]) -> Any:
    """The arrays ``source``'s forward kernel saved in ``ctx`` (a tuple whose first array has
    the logits' ``shape``), or None.

    A machine builds the forward kernel before the gradient's (the loss node is an operand
    of its gradient node), so the entry, when there is one, belongs to the same plan.
    """
    entry = ctx.saved.get(id(source)) if source is not None else None
    if entry is None or entry[0] is not source or entry[1][0].shape != tuple(shape):
        return None
    return entry[1]


# ----- graph-op forms of the fused gradients (for second derivatives) --------------------------


def _factor(g: Node, z: Node, reduction: str, ax: int | None) -> Node:
    """What multiplies a per-element gradient: ``g`` for a sum, ``g / N`` for a mean (``N``
    rows, or every element when ``ax`` is None), ``g`` per row (kept axis ``ax``) for none."""
    if reduction == "sum":
        return g
    if reduction == "mean":
        rows = tuple(i for i in range(z.ndim) if i != ax)
        return scale_by_inv_size(g, z, rows)
    return g if ax is None else Reshape(g, z.shape[:ax] + (1,) + z.shape[ax + 1 :])
