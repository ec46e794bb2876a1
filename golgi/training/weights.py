"""Per-sample weights for ``fit``: ``sample_weight`` and ``class_weight``, as in Keras.

The weighted loss is the batch mean of each sample's loss times its weight (Keras's
convention: weights scale the loss, they do not renormalise it). ``class_weight`` gives every
sample the weight of its class (from the targets: class indices, one-hot rows or 0/1);
classes it does not list weigh 1. Both together multiply.

Example:
    >>> import numpy as np
    >>> y = np.eye(3)[[0, 2, 2, 1]]
    >>> sample_weights(4, None, {2: 3.0}, y, np.float32)
    array([1., 3., 3., 1.], dtype=float32)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .data import check_finite

__all__ = ["sample_weights", "class_labels"]


def class_labels(y: np.ndarray, who: str = "class_weight") -> np.ndarray:
    """The class of each sample from targets: one-hot (or soft) rows -> argmax; class
    indices or 0/1 values (n,) or (n, 1) -> those.

    Example:
        >>> import numpy as np
        >>> class_labels(np.eye(3)[[2, 0]]), class_labels(np.array([[1.0], [0.0]]))
        (array([2, 0]), array([1, 0]))
    """
    a = np.asarray(y)
    n = len(a)
    if a.ndim == 2 and a.shape[1] > 1:
        return a.argmax(axis=1)
    if a.shape in ((n,), (n, 1)):
        flat = a.reshape(n)
        if flat.dtype.kind == "f" and not np.all(flat == np.round(flat)):
            raise ValueError(
                f"{who}: the targets are not classes (fractional values); use sample_weight"
            )
        return flat.astype(np.int64)
    raise ValueError(
        f"{who}: targets of shape {a.shape} are neither class indices (n,), 0/1 (n, 1) nor "
        f"one-hot rows (n, classes); use sample_weight"
    )


def sample_weights(
    n: int, sample_weight: Any, class_weight: Any, y: np.ndarray | None, dtype: Any
) -> np.ndarray | None:
    """One weight per sample (``dtype``), or None when neither argument is given.

    Example:
        >>> import numpy as np
        >>> sample_weights(3, [1.0, 0.5, 2.0], None, None, np.float64)
        array([1. , 0.5, 2. ])
        >>> sample_weights(2, [1.0, -1.0], None, None, np.float64)
        Traceback (most recent call last):
        ...
        ValueError: fit: sample_weight must not be negative (row 1 holds -1.0)
    """
    if sample_weight is None and class_weight is None:
        return None
    w = np.ones(n, dtype)
    if sample_weight is not None:
        sw = np.asarray(sample_weight)
        if sw.dtype.kind not in "fiub":
            raise TypeError(f"fit: sample_weight must be numbers, got {sw.dtype}")
        if sw.shape not in ((n,), (n, 1)):
            raise ValueError(
                f"fit: sample_weight must hold one weight per sample, shape ({n},), got "
                f"{sw.shape}"
            )
        sw = sw.reshape(n).astype(dtype)
        check_finite("fit: sample_weight", sw)
        neg = np.flatnonzero(sw < 0)
        if neg.size:
            raise ValueError(
                f"fit: sample_weight must not be negative (row {neg[0]} holds {sw[neg[0]]})"
            )
        w *= sw
    if class_weight is not None:
        if not isinstance(class_weight, Mapping):
            raise TypeError(
                f"fit: class_weight must be a dict class -> weight, got "
                f"{type(class_weight).__name__}"
            )
        if y is None:
            raise ValueError("fit: class_weight needs the targets y")
        labels = class_labels(y)
        for c, cw in class_weight.items():
            if isinstance(c, bool) or not isinstance(c, (int, np.integer)):
                raise TypeError(f"fit: class_weight keys are class indices, got {c!r}")
            cw = float(cw)
            if not (cw >= 0 and np.isfinite(cw)):
                raise ValueError(
                    f"fit: class_weight[{c}] must be a finite weight >= 0, got {cw}"
                )
            w[labels == c] *= cw
    return w
