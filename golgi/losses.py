"""Losses: graph nodes giving a scalar cost to minimise.

- ``CrossEntropy(logits, y)``: softmax cross-entropy from logits, fused and stable;
- ``BinaryCrossEntropy(x, y, from_logits=True)``: sigmoid cross-entropy (stable from logits;
  from probabilities the probabilities are clipped to ``[eps, 1 - eps]``);
- ``MSE(pred, y)``: mean squared error (what Golgi calls ``RMS``);
- ``RMS(pred, y)``: a real root mean square error, ``sqrt(MSE)``.

Every loss is a mean over the batch (and, for BCE/MSE/RMS, over every element).
``reduction="none"`` gives one loss per sample instead (shape ``(batch,)``: BCE and MSE
average over the other axes), which ``fit`` weighs with ``sample_weight`` and
``class_weight``.

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

__all__ = [
    "CrossEntropy",
    "BinaryCrossEntropy",
    "MSE",
    "RMS",
    "LossFn",
    "resolve_loss",
    "per_sample_loss",
]

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


def _check_reduction(who: str, reduction: str) -> None:
    if reduction not in ("mean", "none"):
        raise ValueError(f"{who}: reduction must be 'mean' or 'none', got {reduction!r}")


def _per_sample(who: str, elementwise: gc.Node) -> gc.Node:
    """The mean over every axis but the batch: (batch, ...) -> (batch,)."""
    if elementwise.ndim < 1:
        raise gc.ShapeError(f"{who}: reduction='none' needs a batch axis, got a scalar loss")
    if elementwise.ndim == 1:
        return elementwise
    return gc.Mean(elementwise, tuple(range(1, elementwise.ndim)))


def CrossEntropy(logits: gc.Node, y: gc.Node, reduction: str = "mean") -> gc.Node:
    """Mean softmax cross-entropy of ``logits`` (batch, classes) against targets ``y``.

    ``y``: one-hot (or probability) rows of the logits' shape, or integer class indices
    (batch,).

    Takes logits, not probabilities: softmax and log are fused (``gc.SoftmaxCrossEntropy``),
    so it stays finite for any logits. Do not put ``WithActivation(gc.SoftMax)`` on the last
    layer when you use it. ``reduction="none"``: one loss per sample, shape (batch,).

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
    _check_reduction("CrossEntropy", reduction)
    return gc.SoftmaxCrossEntropy(logits, y, reduction=reduction)


def BinaryCrossEntropy(
    x: gc.Node, y: gc.Node, from_logits: bool = True, eps: float = 1e-7, reduction: str = "mean"
) -> gc.Node:
    """Mean binary cross-entropy of predictions ``x`` against 0/1 (or soft) targets ``y``.

    ``from_logits=True`` (default): ``x`` are logits; the sigmoid is fused in
    (``gc.SigmoidBinaryCrossEntropy``), stable for any logits. ``from_logits=False``: ``x`` are
    probabilities (e.g. after ``gc.Sigmoid``); they are clipped to ``[eps, 1 - eps]`` before
    the logs, so the loss stays finite, and its gradient is zero where the clip is active
    (as in Keras). Prefer logits: they need no clip. ``reduction="none"``: one loss per
    sample (the mean over its elements), shape (batch,).

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
    _check_reduction("BinaryCrossEntropy", reduction)
    if from_logits:
        if reduction == "none":
            elementwise = gc.SigmoidBinaryCrossEntropy(x, y, reduction="none")
            return _per_sample("BinaryCrossEntropy", elementwise)
        return gc.SigmoidBinaryCrossEntropy(x, y, reduction="mean")
    if not 0.0 < eps < 0.5:
        raise ValueError(f"BinaryCrossEntropy: eps must be in (0, 0.5), got {eps}")
    p = gc.Maximum(gc.Minimum(x, 1.0 - eps), eps)
    ll = gc.Add(gc.HadamardProd(y, gc.Log(p)), gc.HadamardProd(gc.Sub(1.0, y), gc.Log1p(gc.Neg(p))))
    if reduction == "none":
        return gc.Neg(_per_sample("BinaryCrossEntropy", ll))
    return gc.Neg(gc.Mean(ll))


def MSE(pred: gc.Node, y: gc.Node, reduction: str = "mean") -> gc.Node:
    """Mean squared error over every element: ``mean((pred - y)**2)``
    (``reduction="none"``: per sample, shape (batch,)).

    Example:
        >>> import graphcore as gc
        >>> a = gc.NewConstant([[1.0, 3.0]]); b = gc.NewConstant([[0.0, 0.0]])
        >>> MSE(a, b).op.name
        'Mean'
    """
    pred, y = _node(pred, "MSE"), _node(y, "MSE")
    _same_shape("MSE", pred, y)
    _check_reduction("MSE", reduction)
    sq = gc.Square(gc.Sub(pred, y))
    return _per_sample("MSE", sq) if reduction == "none" else gc.Mean(sq)


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
        table: dict[str, LossFn] = {
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


def per_sample_loss(loss: LossFn, out: gc.Node, target: gc.Node) -> gc.Node:
    """``loss(out, target, reduction="none")``, checked: one value per sample, shape (batch,).

    golgi's losses take ``reduction``; a loss of your own needs the same keyword to be
    weighted per sample (``fit(sample_weight=..., class_weight=...)``).

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph()
        >>> p = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("p"))
        >>> y = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("y"))
        >>> per_sample_loss(MSE, p, y).shape
        (None,)
        >>> per_sample_loss(lambda a, b: MSE(a, b), p, y)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        TypeError: sample weights need one loss per sample: the loss <lambda> must take ...
    """
    name = getattr(loss, "__name__", repr(loss))
    try:
        node = loss(out, target, reduction="none")  # type: ignore[call-arg]
    except TypeError as e:
        if "reduction" not in str(e):
            raise
        raise TypeError(
            f"sample weights need one loss per sample: the loss {name} must take "
            f"reduction='none' and return shape (batch,), as golgi.CrossEntropy does"
        ) from None
    if not isinstance(node, gc.Node) or node.ndim != 1:
        raise gc.ShapeError(
            f"the loss {name} with reduction='none' must return one value per sample, shape "
            f"(batch,), got "
            f"{node.describe() if isinstance(node, gc.Node) else type(node).__name__}"
        )
    return node
