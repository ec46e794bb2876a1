"""Losses: graph nodes giving a scalar cost to minimise.

- ``CrossEntropy(logits, y)``: softmax cross-entropy from logits, fused and stable;
- ``BinaryCrossEntropy(x, y, from_logits=True)``: sigmoid cross-entropy (stable from logits;
  from probabilities the probabilities are clipped to ``[eps, 1 - eps]``);
- ``MSE(pred, y)``: mean squared error (what Golgi calls ``RMS``);
- ``RMS(pred, y)``: a real root mean square error, ``sqrt(MSE)``.

Every loss is a mean over the batch (and, for BCE/MSE/RMS, over every element).

Example:
    >>> import graphcore as gc
    >>> g = gc.NewGraph()
    >>> p = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("p"))
    >>> y = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("y"))
    >>> MSE(p, y).shape
    ()
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import graphcore as gc

__all__ = ["CrossEntropy", "BinaryCrossEntropy", "MSE", "RMS", "LossFn", "resolve_loss"]

#: A loss: (output node, target node) -> scalar node.
LossFn = Callable[[gc.Node, gc.Node], gc.Node]


def _node(v: Any, who: str) -> gc.Node:
    if not isinstance(v, gc.Node):
        raise TypeError(f"{who} takes graph nodes, got {type(v).__name__}")
    return v


def _same_shape(who: str, a: gc.Node, b: gc.Node) -> None:
    if len(a.shape) != len(b.shape) or any(
        p is not None and q is not None and p != q for p, q in zip(a.shape, b.shape, strict=True)
    ):
        raise gc.ShapeError(
            f"{who}: predictions {a.describe()} and targets {b.describe()} must have the same "
            f"shape (None matches any batch size)"
        )


def CrossEntropy(logits: gc.Node, y: gc.Node) -> gc.Node:
    """Mean softmax cross-entropy of ``logits`` (batch, classes) against targets ``y``.

    ``y``: one-hot (or probability) rows of the logits' shape, or integer class indices
    (batch,).

    Takes logits, not probabilities: softmax and log are fused (``gc.SoftmaxCrossEntropy``),
    so it stays finite for any logits. Do not put ``WithActivation(gc.SoftMax)`` on the last
    layer when you use it.

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph()
        >>> z = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 10), gc.WithName("z"))
        >>> y = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 10), gc.WithName("y"))
        >>> CrossEntropy(z, y).shape
        ()
    """
    logits, y = _node(logits, "CrossEntropy"), _node(y, "CrossEntropy")
    if logits.ndim != 2:
        raise gc.ShapeError(
            f"CrossEntropy: logits must be (batch, classes), got {logits.describe()}"
        )
    return gc.SoftmaxCrossEntropy(logits, y, reduction="mean")


def BinaryCrossEntropy(
    x: gc.Node, y: gc.Node, from_logits: bool = True, eps: float = 1e-7
) -> gc.Node:
    """Mean binary cross-entropy of predictions ``x`` against 0/1 (or soft) targets ``y``.

    ``from_logits=True`` (default): ``x`` are logits; the sigmoid is fused in
    (``gc.SigmoidBinaryCrossEntropy``), stable for any logits. ``from_logits=False``: ``x`` are
    probabilities (e.g. after ``gc.Sigmoid``); they are clipped to ``[eps, 1 - eps]`` before
    the logs, so the loss stays finite, and its gradient is zero where the clip is active
    (as in Keras). Prefer logits: they need no clip.

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph()
        >>> p = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 1), gc.WithName("p"))
        >>> y = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 1), gc.WithName("y"))
        >>> BinaryCrossEntropy(p, y, from_logits=False).shape
        ()
    """
    x, y = _node(x, "BinaryCrossEntropy"), _node(y, "BinaryCrossEntropy")
    _same_shape("BinaryCrossEntropy", x, y)
    if from_logits:
        return gc.SigmoidBinaryCrossEntropy(x, y, reduction="mean")
    if not 0.0 < eps < 0.5:
        raise ValueError(f"BinaryCrossEntropy: eps must be in (0, 0.5), got {eps}")
    p = gc.Maximum(gc.Minimum(x, 1.0 - eps), eps)
    ll = gc.Add(gc.HadamardProd(y, gc.Log(p)), gc.HadamardProd(gc.Sub(1.0, y), gc.Log1p(gc.Neg(p))))
    return gc.Neg(gc.Mean(ll))


def MSE(pred: gc.Node, y: gc.Node) -> gc.Node:
    """Mean squared error over every element: ``mean((pred - y)**2)``.

    Example:
        >>> import graphcore as gc
        >>> a = gc.NewConstant([[1.0, 3.0]]); b = gc.NewConstant([[0.0, 0.0]])
        >>> MSE(a, b).op.name
        'Mean'
    """
    pred, y = _node(pred, "MSE"), _node(y, "MSE")
    _same_shape("MSE", pred, y)
    return gc.Mean(gc.Square(gc.Sub(pred, y)))


def RMS(pred: gc.Node, y: gc.Node) -> gc.Node:
    """Root mean squared error: ``sqrt(mean((pred - y)**2))`` (Golgi's ``RMS`` is our ``MSE``).

    Its gradient is undefined at a perfect fit (error 0); train with ``MSE`` and report RMS.

    Example:
        >>> import graphcore as gc
        >>> RMS(gc.NewConstant([[3.0, 4.0]]), gc.NewConstant([[0.0, 0.0]])).op.name
        'Sqrt'
    """
    return gc.Sqrt(MSE(pred, y))


def resolve_loss(loss: LossFn | str) -> LossFn:
    """The loss function for ``loss``: a function (output, target) -> scalar node, returned as
    it is, or one of the names "cross_entropy", "binary_cross_entropy" ("bce") and "mse".

    Example:
        >>> resolve_loss("bce") is BinaryCrossEntropy, resolve_loss(MSE) is MSE
        (True, True)
    """
    if isinstance(loss, str):
        ce, bce = CrossEntropy, BinaryCrossEntropy
        table = {
            "cross_entropy": ce,
            "crossentropy": ce,
            "binary_cross_entropy": bce,
            "bce": bce,
            "mse": MSE,
        }
        fn = table.get(loss.lower())
        if fn is None:
            raise ValueError(f"unknown loss {loss!r}; use one of {', '.join(table)} or a function")
        return fn
    if not callable(loss):
        raise TypeError(
            f"loss must be a function (output node, target node) -> scalar node such as "
            f"golgi.CrossEntropy, got {loss!r}"
        )
    return loss
