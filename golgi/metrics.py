"""Metrics on numpy arrays (outside the graph): ``Accuracy``.

Example:
    >>> import numpy as np
    >>> Accuracy(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([1, 1]))
    0.5
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

__all__ = ["Accuracy", "MetricFn", "resolve_metrics", "BatchAccuracy", "batch_scorer"]

#: A metric: (predictions, targets) -> float, on numpy arrays.
MetricFn = Callable[[np.ndarray, np.ndarray], float]


def Accuracy(pred: Any, labels: Any, threshold: float = 0.5) -> float:
    """Fraction of samples whose predicted class matches the label.

    ``pred``: scores, probabilities or logits of shape (n, classes) (argmax is taken), or
    binary predictions of shape (n,) or (n, 1) compared with ``threshold`` (0.5 for
    probabilities; pass 0.0 for logits). ``labels``: ints (n,) or one-hot (n, classes) for
    multi-class; 0/1 (n,) or (n, 1) for binary. Graph nodes are accepted through ``.value``.

    Example:
        >>> Accuracy(np.array([[0.2], [0.7]]), np.array([[0], [0]]))
        0.5
        >>> Accuracy(np.eye(3), np.eye(3))
        1.0
    """
    p = np.asarray(getattr(pred, "value", pred))
    y = np.asarray(getattr(labels, "value", labels))
    if p.ndim == 0 or p.shape[0] == 0:
        raise ValueError(f"Accuracy: predictions must be a non-empty batch, got shape {p.shape}")
    n = p.shape[0]
    binary = p.ndim == 1 or (p.ndim == 2 and p.shape[1] == 1)
    if binary:
        guess = (p.reshape(n) > threshold).astype(np.int64)
        if y.size != n:
            raise ValueError(
                f"Accuracy: binary predictions {p.shape} need one 0/1 label per sample, got "
                f"labels of shape {y.shape}"
            )
        truth = y.reshape(n).astype(np.int64)
    else:
        if p.ndim != 2:
            raise ValueError(f"Accuracy: predictions must be (n, classes), got shape {p.shape}")
        guess = p.argmax(axis=1)
        if y.shape == p.shape:
            truth = y.argmax(axis=1)  # one-hot (or soft) targets
        elif y.shape == (n,) or y.shape == (n, 1):
            if y.dtype.kind == "f" and not np.all(y == np.round(y)):
                raise ValueError("Accuracy: integer labels expected, got fractional values")
            truth = y.reshape(n).astype(np.int64)
        else:
            raise ValueError(
                f"Accuracy: labels of shape {y.shape} fit neither class indices ({n},) nor "
                f"one-hot rows {p.shape}"
            )
    return float(np.mean(guess == truth))


def resolve_metrics(metrics: Any) -> dict[str, MetricFn]:
    """Metrics by name from what ``fit`` takes: None, "accuracy", a function ``(pred, y) ->
    float`` (named after it), a list of those, or a dict name -> function.

    Example:
        >>> def mae(pred, y): return float(np.mean(np.abs(pred - y)))
        >>> resolve_metrics(["accuracy", mae]) == {"accuracy": Accuracy, "mae": mae}
        True
        >>> resolve_metrics({"loss": mae})
        Traceback (most recent call last):
        ...
        ValueError: a metric may not be called 'loss'
    """
    if metrics is None:
        return {}
    if isinstance(metrics, Mapping):
        items = list(metrics.items())
    else:
        if isinstance(metrics, str) or callable(metrics):
            metrics = [metrics]
        items = []
        for m in metrics:
            if isinstance(m, str):
                if m.lower() not in ("accuracy", "acc"):
                    raise ValueError(f"unknown metric {m!r}; use 'accuracy' or a function")
                items.append(("accuracy", Accuracy))
            elif callable(m):
                items.append((getattr(m, "__name__", "metric").lower(), m))
            else:
                raise TypeError(
                    f"a metric must be a name or a function (pred, y) -> float, got {m!r}"
                )
    out = dict(items)
    for bad in ("loss", "lr", "size"):
        if bad in out:
            raise ValueError(f"a metric may not be called {bad!r}")
    return out


class BatchAccuracy:
    """``Accuracy`` of (n, classes) scores on training batches, with no per-batch allocation:
    the labels are found once per fit and gathered by the batch's row indices.

    Example:
        >>> acc = BatchAccuracy(np.array([0, 1, 1]))
        >>> float(acc(np.array([[0.9, 0.1], [0.8, 0.2]]), None, np.array([0, 2])))
        0.5
    """

    def __init__(self, labels: np.ndarray) -> None:
        self.labels = labels
        self._bufs: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def __call__(self, pred: np.ndarray, truth: np.ndarray, idx: np.ndarray) -> float:
        b = idx.shape[0]
        bufs = self._bufs.get(b)
        if bufs is None:
            bufs = self._bufs[b] = (np.empty(b, np.intp), np.empty(b, np.intp), np.empty(b, bool))
        lab, guess, hit = bufs
        np.take(self.labels, idx, out=lab, mode="clip")
        np.argmax(pred, axis=1, out=guess)
        np.equal(guess, lab, out=hit)
        return np.count_nonzero(hit) / b


def batch_scorer(
    fn: MetricFn, Y: np.ndarray, out_shape: tuple[int | None, ...]
) -> Callable[[np.ndarray, np.ndarray, np.ndarray], float]:
    """A per-batch scorer ``(pred, truth, idx) -> float`` for metric ``fn`` on the epoch's
    targets ``Y``, for a model whose output has ``out_shape``; ``idx`` are the batch's rows.

    Accuracy on class scores becomes a :class:`BatchAccuracy` (no allocation per batch);
    any other metric is called on the batch's predictions and targets.

    Example:
        >>> Y = np.eye(3)[[0, 2, 1]]
        >>> type(batch_scorer(Accuracy, Y, (None, 3))).__name__
        'BatchAccuracy'
        >>> score = batch_scorer(Accuracy, Y, (None, 3))
        >>> float(score(np.eye(3)[[0, 1]], None, np.array([0, 1])))
        0.5
    """
    classes = out_shape[-1] if len(out_shape) == 2 else None
    if fn is Accuracy and classes is not None and classes > 1:
        if Y.shape == (len(Y), classes):  # one-hot (or soft) rows: Accuracy takes their argmax
            return BatchAccuracy(Y.argmax(axis=1))
        if Y.ndim == 1 and Y.dtype.kind in "iu":
            return BatchAccuracy(Y.astype(np.intp))
    return lambda pred, truth, idx: fn(pred, truth)
