"""Metrics on numpy arrays (outside the graph): ``Accuracy``.

Example:
    >>> import numpy as np
    >>> Accuracy(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([1, 1]))
    0.5
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["Accuracy"]


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
