"""Sigmoid binary cross-entropy on logits: one fused, stable node for the loss
(``max(z, 0) - z*t + log1p(exp(-|z|))``, exact for logits of any size), one for its gradient
for the logits, one for the targets' gradient; each gradient node states the same computation
with graph ops (``expand``), through which second derivatives go.

The loss runs named kernels of the machine's backend (:mod:`graphcore.kernels`): numpy, or
one compiled loop with numba; the sigmoid comes out of the loss's ``exp`` and is saved for
the gradient.

Example:
    >>> import graphcore as gc
    >>> g = gc.NewGraph()
    >>> z = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 1), gc.WithName("z"))
    >>> y = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 1), gc.WithName("y"))
    >>> cost = gc.SigmoidBinaryCrossEntropy(z, y)
    >>> gc.Let(z, [[1000.0], [0.0]]); gc.Let(y, [[0.0], [1.0]])
    >>> gc.NewTapeMachine(g).run_all(); round(float(cost.value), 4)
    500.3466
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ...dtypes import Dtype
from ...errors import DtypeError, ShapeError
from ...graph import Node
from ...shapes import Shape
from ..base import ExecContext, Kernel, Op, TypeInfo, apply_op, describe
from ..elementwise import Sigmoid
from .reduction import _check_reduction, _factor, _fits, _saved, _scale

__all__ = [
    "SigmoidBinaryCrossEntropy",
    "SigmoidBinaryCrossEntropyOp",
    "SigmoidBinaryCrossEntropyGradOp",
    "SigmoidBinaryCrossEntropyTargetGradOp",
]


class SigmoidBinaryCrossEntropyOp(Op):
    """``max(z, 0) - z*t + log1p(exp(-|z|))`` elementwise, then reduced (mean, sum or none).

    Example:
        >>> SigmoidBinaryCrossEntropyOp("mean")
        SigmoidBinaryCrossEntropy(reduction='mean')
    """

    name = "SigmoidBinaryCrossEntropy"
    arity = 2

    def __init__(self, reduction: str) -> None:
        self.reduction = reduction

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        z, t = ins
        if not z.dtype.is_float or t.dtype != z.dtype:
            raise DtypeError(
                f"SigmoidBinaryCrossEntropy needs float logits and targets of the same dtype, "
                f"got logits {describe(z)} and targets {describe(t)}"
            )
        if not _fits(z.shape, t.shape):
            raise ShapeError(
                f"SigmoidBinaryCrossEntropy: logits {describe(z)} and targets {describe(t)} "
                f"must have the same shape"
            )
        return (z.shape if self.reduction == "none" else ()), z.dtype

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        # per element: softplus(z) - z*t = max(z, 0) + log(1 + e^-|z|) - z*t. The sigmoid
        # comes out of the same exp and is saved for the gradient kernel.
        z, t = xs
        k = ctx.kernels
        sig = np.empty(z.shape, z.dtype)
        ctx.saved[id(self)] = (self, (sig,))
        if self.reduction == "none":
            scratch = k.sigmoid_bce_scratch(z, t, sig, out)
            return lambda: k.sigmoid_bce(z, t, sig, out, scratch)
        n = z.size
        scale = (1.0 / n if n else 0.0) if self.reduction == "mean" else 1.0
        scratch = k.sigmoid_bce_sum_scratch(z, t, sig, out)
        return lambda: k.sigmoid_bce_sum(z, t, scale, sig, out, scratch)

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        z, t = node.children
        gz = gt = None
        if wants[0]:
            # the loss node is an operand so its kernel (which saves the sigmoid) runs first
            gz = apply_op(SigmoidBinaryCrossEntropyGradOp(self.reduction, self), z, t, g, node)
        if wants[1]:
            gt = apply_op(SigmoidBinaryCrossEntropyTargetGradOp(self.reduction), z, g)
        return [gz, gt]


class SigmoidBinaryCrossEntropyGradOp(Op):
    """Gradient of SigmoidBinaryCrossEntropy for the logits, fused: ``(sigmoid(z) - t) * g``
    (divided by the number of elements for a mean).

    Operands: logits ``z``, targets ``t``, the upstream gradient ``g`` and the loss node (an
    ordering operand: its kernel saves the sigmoid this kernel reads, so it is not computed
    twice).

    Example:
        >>> SigmoidBinaryCrossEntropyGradOp("mean").name
        'SigmoidBinaryCrossEntropyGrad'
    """

    name = "SigmoidBinaryCrossEntropyGrad"
    arity = 4
    shape_only = (3,)

    def __init__(self, reduction: str, source: Op | None = None) -> None:
        self.reduction = reduction
        self._source = source

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        return ins[0].shape, ins[0].dtype

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        z, t, g, _ = xs
        if self.reduction == "none":
            c, factor = g, None
        else:
            c = np.empty((), z.dtype)
            factor = _scale(g, self.reduction, z.size, c)
        saved = _saved(ctx, self._source, z.shape)
        k = ctx.kernels
        fresh = saved is None  # no saving forward kernel ran in this context: compute it here
        sig = np.empty(z.shape, z.dtype) if fresh else saved[0]
        sig_scratch = k.sigmoid_scratch(z, sig) if fresh else None
        scratch = k.sigmoid_bce_grad_scratch(sig, t, c, out)

        def run() -> None:
            if factor is not None:
                factor()
            if fresh:
                k.sigmoid(z, sig, sig_scratch)
            k.sigmoid_bce_grad(sig, t, c, out, scratch)

        return run

    def expand(self, node: Node) -> Node:
        z, t, g, _ = node.children
        return (Sigmoid(z) - t) * _factor(g, z, self.reduction, None)


class SigmoidBinaryCrossEntropyTargetGradOp(Op):
    """Gradient of SigmoidBinaryCrossEntropy for the targets: ``-z * g`` (divided by the number
    of elements for a mean).

    Example:
        >>> SigmoidBinaryCrossEntropyTargetGradOp("sum").name
        'SigmoidBinaryCrossEntropyTargetGrad'
    """

    name = "SigmoidBinaryCrossEntropyTargetGrad"
    arity = 2

    def __init__(self, reduction: str) -> None:
        self.reduction = reduction

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        return ins[0].shape, ins[0].dtype

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        z, g = xs
        if self.reduction == "none":

            def run_none() -> None:
                np.multiply(z, g, out=out)
                np.negative(out, out=out)

            return run_none

        c = np.empty((), z.dtype)
        factor = _scale(g, self.reduction, z.size, c)

        def run() -> None:
            factor()
            np.negative(c, out=c)
            np.multiply(z, c, out=out)

        return run

    def expand(self, node: Node) -> Node:
        z, g = node.children
        return -z * _factor(g, z, self.reduction, None)


def SigmoidBinaryCrossEntropy(logits: Any, targets: Any, reduction: str = "mean") -> Node:
    """Binary cross-entropy of ``sigmoid(logits)`` against targets in [0, 1], fused and stable.

    Elementwise ``max(z, 0) - z*t + log1p(exp(-|z|))``; ``reduction`` gives the mean over
    every element (default), the sum, or (``"none"``) the elementwise values. The gradient
    for the logits is one fused node, ``(sigmoid(z) - t) / N`` for the mean.

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph()
        >>> z = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 1), gc.WithName("z"))
        >>> y = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 1), gc.WithName("y"))
        >>> gc.SigmoidBinaryCrossEntropy(z, y).shape
        ()
    """
    op = SigmoidBinaryCrossEntropyOp(_check_reduction("SigmoidBinaryCrossEntropy", reduction))
    return apply_op(op, logits, targets)
