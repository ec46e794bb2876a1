"""Gorgonia's ``BinaryXent``: binary cross-entropy on probabilities, each log floored at -100
(so the loss is finite at exactly 0 and 1), and its fused gradient for the probabilities,
which states the same computation with graph ops (``expand``) for second derivatives.

Example:
    >>> import numpy as np, graphcore as gc
    >>> p = gc.NewConstant(np.array([0.5, 0.0])); t = gc.NewConstant(np.array([1.0, 1.0]))
    >>> gc.BinaryXent(p, t).op, BinaryXentOp("none").compute(
    ...     [np.array([0.5, 0.0]), np.ones(2)], gc.ExecContext()).round(4).tolist()
    (BinaryXent(reduction='none'), [0.6931, 100.0])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ...dtypes import Dtype
from ...errors import DtypeError, ShapeError
from ...graph import Node
from ...kernels import filled
from ...shapes import Shape
from ..base import ExecContext, Kernel, Op, TypeInfo, apply_op, describe
from ..elementwise import Log, Maximum, mask
from .reduction import _check_reduction, _factor, _fits, _scale

__all__ = ["BinaryXent", "BinaryXentOp", "BinaryXentGradOp", "log_floor"]


def log_floor(dt: Any) -> float:
    """What BinaryXent takes the log of at least: ``e^-100`` (PyTorch clamps its logs at -100),
    or the dtype's smallest normal number where that is larger (float32: 1.2e-38, a log of
    -87.3), so that ``1 / floor``, in the gradient, is finite too.

    Example:
        >>> log_floor(np.float64) == math.exp(-100), round(math.log(log_floor(np.float32)), 1)
        (True, -87.3)
    """
    return max(math.exp(-100.0), float(np.finfo(dt).tiny))


class BinaryXentOp(Op):
    """``-(t * log(max(p, f)) + (1 - t) * log(max(1 - p, f)))`` elementwise, then reduced
    (mean, sum or none), with ``f = log_floor(dtype)`` (``e^-100`` in float64): each log term
    is at least -100, so the loss is finite for any ``p`` in [0, 1], 0 and 1 included.

    Example:
        >>> BinaryXentOp("none")
        BinaryXent(reduction='none')
    """

    name = "BinaryXent"
    arity = 2

    def __init__(self, reduction: str) -> None:
        self.reduction = reduction

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        p, t = ins
        if not p.dtype.is_float or t.dtype != p.dtype:
            raise DtypeError(
                f"BinaryXent needs float probabilities and targets of the same dtype, got "
                f"probabilities {describe(p)} and targets {describe(t)}; convert the targets "
                f"to the probabilities' dtype"
            )
        if not _fits(p.shape, t.shape):
            raise ShapeError(
                f"BinaryXent: probabilities {describe(p)} and targets {describe(t)} must have "
                f"the same shape"
            )
        return (p.shape if self.reduction == "none" else ()), p.dtype

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        p, t = xs
        floor = filled(log_floor(p.dtype), p.shape, p.dtype)
        lp, lq = np.empty(p.shape, p.dtype), np.empty(p.shape, p.dtype)
        per = out if self.reduction == "none" else lp
        n = p.size
        scale = (1.0 / n if n else 0.0) if self.reduction == "mean" else 1.0

        def run() -> None:
            np.maximum(p, floor, out=lp)
            np.log(lp, out=lp)
            np.subtract(1.0, p, out=lq)
            np.maximum(lq, floor, out=lq)
            np.log(lq, out=lq)
            # -(t*lp + (1-t)*lq) = -(lq + t*(lp - lq))
            np.subtract(lp, lq, out=lp)
            np.multiply(lp, t, out=per)
            np.add(per, lq, out=per)
            if self.reduction == "none":
                np.negative(per, out=per)
                return
            np.sum(per, out=out)
            np.multiply(out, -scale, out=out)

        return run

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        p, t = node.children
        gp = apply_op(BinaryXentGradOp(self.reduction), p, t, g) if wants[0] else None
        gt = None
        if wants[1]:
            floor = log_floor(p.dtype.np)
            logs = Log(Maximum(p, floor)) - Log(Maximum(1.0 - p, floor))
            gt = -logs * _factor(g, p, self.reduction, None)
        return [gp, gt]


class BinaryXentGradOp(Op):
    """Gradient of BinaryXent for the probabilities, fused: ``((1 - t) * [1 - p > f] / (1 - p)
    - t * [p > f] / p) * g`` (divided by the number of elements for a mean), ``f`` the log
    floor: the exact derivative of the floored loss, 0 where a log is floored (the loss is
    flat there), and finite for every ``p`` in [0, 1] (``1 / f`` is).

    Example:
        >>> BinaryXentGradOp("mean").name
        'BinaryXentGrad'
    """

    name = "BinaryXentGrad"
    arity = 3

    def __init__(self, reduction: str) -> None:
        self.reduction = reduction

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        return ins[0].shape, ins[0].dtype

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        p, t, g = xs
        floor = filled(log_floor(p.dtype), p.shape, p.dtype)
        a, q, m = (np.empty(p.shape, p.dtype) for _ in range(3))
        if self.reduction == "none":
            c, factor = g, None
        else:
            c = np.empty((), p.dtype)
            factor = _scale(g, self.reduction, p.size, c)

        def run() -> None:
            if factor is not None:
                factor()
            # masks before divisions: a floored term is 0, never 0 * (1 / 0)
            np.greater(p, floor, out=m)
            np.multiply(t, m, out=m)
            np.maximum(p, floor, out=a)
            np.divide(m, a, out=a)  # t * [p > floor] / p
            np.subtract(1.0, p, out=q)
            np.greater(q, floor, out=m)
            np.maximum(q, floor, out=q)
            np.subtract(1.0, t, out=out)
            np.multiply(out, m, out=out)
            np.divide(out, q, out=out)  # (1 - t) * [1 - p > floor] / (1 - p)
            np.subtract(out, a, out=out)
            np.multiply(out, c, out=out)

        return run

    def expand(self, node: Node) -> Node:
        p, t, g = node.children
        floor = log_floor(p.dtype.np)
        q = 1.0 - p
        d = (1.0 - t) * mask("Gt", q, floor) / Maximum(q, floor)
        d = d - t * mask("Gt", p, floor) / Maximum(p, floor)
        return d * _factor(g, p, self.reduction, None)


def BinaryXent(p: Any, t: Any, reduction: str = "none") -> Node:
    """Binary cross-entropy of probabilities ``p`` in [0, 1] against targets ``t``:
    ``-(t * log(p) + (1 - t) * log(1 - p))`` elementwise (Gorgonia's ``BinaryXent``), with
    ``reduction`` "none" (the default, as Gorgonia), "mean" or "sum".

    Each log is floored at -100, as PyTorch's ``binary_cross_entropy`` clamps its logs, by
    taking the log of ``max(p, f)`` and ``max(1 - p, f)`` with ``f = e^-100`` in float64 (in
    float32, where that is subnormal, ``f`` is the smallest normal number, a floor of -87.3):
    the loss is finite (at most 100 per term) for ``p`` exactly 0 or 1, where Gorgonia's
    ``1e-16`` rounds away in float32 and float64 and gives ``inf``. The gradient is the exact
    derivative of that floored loss, finite everywhere in [0, 1] (0 where a log is floored,
    where PyTorch's is a large finite surrogate). Prefer ``SigmoidBinaryCrossEntropy`` on
    logits when you have them: it is exact where probabilities round to 0 or 1.

    Example:
        >>> import numpy as np, graphcore as gc
        >>> g = gc.NewGraph()
        >>> p = gc.NodeFromAny(g, np.array([0.5, 0.0, 1.0]), gc.WithName("p"))
        >>> t = gc.NodeFromAny(g, np.array([1.0, 1.0, 1.0]), gc.WithName("t"))
        >>> loss = gc.BinaryXent(p, t); gc.NewTapeMachine(g).run_all()
        >>> np.round(loss.value, 4).tolist()
        [0.6931, 100.0, -0.0]
    """
    return apply_op(BinaryXentOp(_check_reduction("BinaryXent", reduction)), p, t)
