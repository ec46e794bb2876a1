"""Inverted dropout: ``Dropout(x, p)`` reads a ``DropoutMask(x)`` node drawn each run; its
gradient reads the same mask, so forward and backward of one run always agree.

The mask is a node of the graph, not state hidden in the op, so the tape machine keeps it
alive exactly as long as needed and two machines running one graph never share it.

Example:
    >>> import graphcore as gc
    >>> g = gc.NewGraph()
    >>> x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 100), gc.WithName("x"))
    >>> y = gc.Dropout(x, 0.5); y.children[1].op.name
    'DropoutMask'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..dtypes import Dtype
from ..errors import DtypeError
from ..graph import Node
from ..shapes import Shape
from ..values import as_node
from .base import ExecContext, Kernel, Op, TypeInfo, apply_op, describe, same_dtype

__all__ = ["Dropout", "DropoutMaskOp", "DropoutOp", "DropoutGradOp"]


class DropoutMaskOp(Op):
    """The scaled keep-mask of one run: 1/(1-p) with probability 1-p, else 0 (training only).

    Its operand is the dropped tensor, read for its shape only. Drawn into this node's buffer
    each training run from ``rng`` when given (a golgi Dropout layer's own generator, saved
    with the layer so a resumed run draws the same masks), else from the machine's generator
    (``ctx.generator()``); eval runs fill it with ones (``Dropout`` and its gradient then pass
    values through without reading it).

    Example:
        >>> DropoutMaskOp(0.5).name
        'DropoutMask'
    """

    name = "DropoutMask"
    arity = 1
    zero_gradient = True  # drawn at random, not a function of x
    shape_only = (0,)

    def __init__(self, p: float, rng: np.random.Generator | None = None) -> None:
        self.p = p
        self._rng = rng  # private: not an op parameter (repr, drawings)

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        (x,) = ins
        if not x.dtype.is_float:
            raise DtypeError(f"Dropout needs a Float32 or Float64 operand, got {describe(x)}")
        return x.shape, x.dtype

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        p, scale, dt = self.p, 1.0 / (1.0 - self.p), out.dtype
        flat = out.reshape(-1)
        own = self._rng

        def run() -> None:
            if not ctx.training:
                # keep-all, so the node's value means the same in both modes (and a NaN watch
                # never sees whatever a reused buffer held)
                flat.fill(1.0)
                return
            (own if own is not None else ctx.generator()).random(out=flat, dtype=dt)
            # u >= p keeps with probability 1 - p
            np.greater_equal(flat, p, out=flat)
            np.multiply(flat, scale, out=flat)

        return run


class DropoutOp(Op):
    """``x * mask`` in training, ``x`` in eval: operands x and its ``DropoutMask`` node.

    Example:
        >>> DropoutOp(0.5).name
        'Dropout'
    """

    name = "Dropout"
    arity = 2
    inplace = True

    def __init__(self, p: float) -> None:
        self.p = p

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        return ins[0].shape, same_dtype(self.name, ins, float_only=True)

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        x, mask = xs

        def run() -> None:
            if ctx.training:
                np.multiply(x, mask, out=out)
            else:
                np.copyto(out, x)

        return run

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        # the mask is random, not a function of x: no gradient flows into it
        return [apply_op(DropoutGradOp(self.p), g, node.children[1]), None]


class DropoutGradOp(Op):
    """``g * mask`` (the same mask as the forward of this run) in training, ``g`` in eval;
    linear in g, so its own gradient is itself.

    Example:
        >>> DropoutGradOp(0.5).name
        'DropoutGrad'
    """

    name = "DropoutGrad"
    arity = 2
    inplace = True

    def __init__(self, p: float) -> None:
        self.p = p

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        return ins[0].shape, same_dtype(self.name, ins)

    kernel = DropoutOp.kernel  # the same computation with g in place of x

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        return [apply_op(DropoutGradOp(self.p), g, node.children[1]), None]


def Dropout(x: Any, p: float, rng: np.random.Generator | None = None) -> Node:
    """Inverted dropout: in training, zero each element with probability ``p`` and scale the
    kept ones by 1/(1-p), so the expected value is unchanged; in eval mode, the identity.

    The mode is the machine's (``EvalMode()``, ``vm.training = False``), read at run time.
    Masks come from ``rng`` (a ``numpy.random.Generator``) when given, else from the machine's
    generator, seeded by ``SetSeed``. ``p == 0`` returns ``x`` itself. The gradient is
    ``g * mask / (1-p)`` with the mask of the same run (Gorgonia divides by ``p`` instead).

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph()
        >>> x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 100), gc.WithName("x"))
        >>> gc.Dropout(x, 0.5).op
        Dropout(p=0.5)
    """
    if isinstance(p, bool) or not isinstance(p, (int, float, np.floating, np.integer)):
        raise TypeError(f"Dropout: p must be a float in [0, 1), got {p!r}")
    p = float(p)
    if not 0.0 <= p < 1.0:
        raise ValueError(
            f"Dropout: p={p} is the probability of dropping an element and must be in [0, 1)"
        )
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"Dropout: rng must be a numpy Generator (np.random.default_rng(seed)) or None, "
            f"got {type(rng).__name__}"
        )
    if p == 0.0:
        return as_node(x)
    mask = apply_op(DropoutMaskOp(p, rng), x)
    return apply_op(DropoutOp(p), x, mask)
