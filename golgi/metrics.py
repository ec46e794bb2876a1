"""Metrics on numpy arrays (outside the graph): ``Accuracy``, ``TopKAccuracy``,
``Precision``, ``Recall``, ``F1``, ``MAE`` and ``AUC``.

Each is a function ``(predictions, targets) -> float`` (the classes are metrics you
configure first: ``TopKAccuracy(k=3)``, ``Precision(average="micro")``), and ``fit`` takes
them by name too: "accuracy", "top_k_accuracy" (k=5, or "top3_accuracy"), "precision",
"recall", "f1", "mae", "auc". Predictions are what the model outputs: class scores or
logits (n, classes), or one score per sample (n,) / (n, 1) for binary problems; targets
are class indices, one-hot rows, or 0/1.

During ``fit``, metrics that are means over samples (accuracy, top-k, MAE) are averaged
over the batches; the others (precision, recall, F1, AUC) are computed once per epoch on
all of its predictions. Validation metrics are always computed on all predictions at once.

Example:
    >>> import numpy as np
    >>> Accuracy(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([1, 1]))
    0.5
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

__all__ = [
    "Accuracy",
    "TopKAccuracy",
    "Precision",
    "Recall",
    "F1",
    "MAE",
    "AUC",
    "MetricFn",
    "resolve_metrics",
    "BatchAccuracy",
    "batch_scorer",
]

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


def _arrays(pred: Any, labels: Any, who: str) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(getattr(pred, "value", pred))
    y = np.asarray(getattr(labels, "value", labels))
    if p.ndim == 0 or p.shape[0] == 0:
        raise ValueError(f"{who}: predictions must be a non-empty batch, got shape {p.shape}")
    if len(y) != len(p):
        raise ValueError(
            f"{who}: {len(p)} predictions but {len(y)} targets; give one target per sample"
        )
    return p, y


def _is_binary(p: np.ndarray) -> bool:
    return p.ndim == 1 or (p.ndim == 2 and p.shape[1] == 1)


def _class_labels(p: np.ndarray, y: np.ndarray, who: str) -> np.ndarray:
    """Integer class labels (n,) from targets: class indices, or one-hot (or soft) rows."""
    n = len(p)
    if p.ndim == 2 and y.shape == p.shape and p.shape[1] > 1:
        return y.argmax(axis=1)
    if y.shape in ((n,), (n, 1)):
        if y.dtype.kind == "f" and not np.all(y == np.round(y)):
            raise ValueError(f"{who}: integer labels (or 0/1) expected, got fractional values")
        return y.reshape(n).astype(np.int64)
    raise ValueError(
        f"{who}: targets of shape {y.shape} fit neither class indices ({n},) nor one-hot "
        f"rows {p.shape}"
    )


class TopKAccuracy:
    """Fraction of samples whose label is among the ``k`` highest scores (n, classes).

    Named ``top{k}_accuracy`` in the history; ``fit`` also takes "top_k_accuracy" (k=5) or
    "top3_accuracy". Ties with the k-th score count as hits.

    Example:
        >>> scores = np.array([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7]])
        >>> TopKAccuracy(2)(scores, np.array([1, 0])), TopKAccuracy(2).__name__
        (0.5, 'top2_accuracy')
    """

    per_epoch = False

    def __init__(self, k: int = 5) -> None:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"TopKAccuracy: k must be a positive integer, got {k!r}")
        self.k = int(k)
        self.__name__ = f"top{self.k}_accuracy"

    def __call__(self, pred: Any, labels: Any) -> float:
        p, y = _arrays(pred, labels, "TopKAccuracy")
        if p.ndim != 2:
            raise ValueError(f"TopKAccuracy: predictions must be (n, classes), got {p.shape}")
        truth = _class_labels(p, y, "TopKAccuracy")
        own = p[np.arange(len(p)), truth]
        higher = np.count_nonzero(p > own[:, None], axis=1)
        return float(np.mean(higher < self.k))

    def __repr__(self) -> str:
        return f"TopKAccuracy(k={self.k})"


def _confusion(p: np.ndarray, y: np.ndarray, threshold: float, who: str) -> tuple[Any, int]:
    """Predicted and true labels, and the number of classes (2 for binary scores)."""
    if _is_binary(p):
        guess = (p.reshape(len(p)) > threshold).astype(np.int64)
        truth = _class_labels(p, y, who)
        if np.any((truth != 0) & (truth != 1)):
            raise ValueError(f"{who}: binary predictions need 0/1 targets")
        return (guess, truth), 2
    if p.ndim != 2:
        raise ValueError(f"{who}: predictions must be (n,), (n, 1) or (n, classes), got {p.shape}")
    return (p.argmax(axis=1), _class_labels(p, y, who)), p.shape[1]


class _ClassMetric:
    per_epoch = True
    _name = ""

    def __init__(self, average: str | None = None, threshold: float = 0.5) -> None:
        if average not in (None, "binary", "macro", "micro", "weighted"):
            raise ValueError(
                f"{type(self).__name__}: average must be 'binary', 'macro', 'micro' or "
                f"'weighted', got {average!r}"
            )
        self.average = average
        self.threshold = float(threshold)
        self.__name__ = self._name

    def _counts(self, pred: Any, labels: Any) -> tuple[np.ndarray, ...]:
        p, y = _arrays(pred, labels, type(self).__name__)
        (guess, truth), k = _confusion(p, y, self.threshold, type(self).__name__)
        k = max(k, int(truth.max()) + 1, int(guess.max()) + 1)
        tp = np.bincount(truth[guess == truth], minlength=k).astype(np.float64)
        pred_pos = np.bincount(guess, minlength=k).astype(np.float64)
        true_pos = np.bincount(truth, minlength=k).astype(np.float64)
        return tp, pred_pos, true_pos, np.array(_is_binary(p))

    def _score(self, tp: np.ndarray, pp: np.ndarray, ap: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, pred: Any, labels: Any) -> float:
        tp, pp, ap, binary = self._counts(pred, labels)
        average = self.average or ("binary" if binary else "macro")
        if average == "binary":
            if not binary:
                raise ValueError(
                    f"{type(self).__name__}: average='binary' needs binary predictions; use "
                    f"'macro', 'micro' or 'weighted' for {len(tp)} classes"
                )
            return float(self._score(tp[1:], pp[1:], ap[1:])[0])
        if average == "micro":
            return float(self._score(tp.sum(keepdims=True), pp.sum(keepdims=True),
                                     ap.sum(keepdims=True))[0])
        per_class = self._score(tp, pp, ap)
        if average == "weighted":
            return float(np.sum(per_class * ap) / max(ap.sum(), 1.0))
        present = (ap > 0) | (pp > 0)  # classes that appear in the targets or predictions
        return float(per_class[present].mean()) if present.any() else 0.0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(average={self.average!r}, threshold={self.threshold})"


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a / b, 0 where b is 0 (no predictions of a class: precision 0, as scikit-learn)."""
    return np.divide(a, b, out=np.zeros_like(a), where=b > 0)


class Precision(_ClassMetric):
    """Of the samples predicted as a class, the fraction that belong to it.

    Binary scores (n,) / (n, 1) are thresholded at ``threshold`` (0.5 for probabilities; pass
    0.0 for logits) and score the positive class; class scores (n, classes) are averaged over
    the classes: ``average`` "macro" (default: the plain mean over classes), "micro"
    (counts pooled) or "weighted" (by each class's number of samples). A class never
    predicted has precision 0.

    Example:
        >>> Precision()(np.array([0.9, 0.8, 0.2, 0.7]), np.array([1, 0, 0, 1]))
        0.6666666666666666
    """

    _name = "precision"

    def _score(self, tp: np.ndarray, pp: np.ndarray, ap: np.ndarray) -> np.ndarray:
        return _ratio(tp, pp)


class Recall(_ClassMetric):
    """Of the samples of a class, the fraction predicted as it (averaged as ``Precision``).

    Example:
        >>> Recall()(np.array([0.9, 0.8, 0.2, 0.7]), np.array([1, 0, 0, 1]))
        1.0
    """

    _name = "recall"

    def _score(self, tp: np.ndarray, pp: np.ndarray, ap: np.ndarray) -> np.ndarray:
        return _ratio(tp, ap)


class F1(_ClassMetric):
    """The harmonic mean of precision and recall, per class (averaged as ``Precision``).

    Example:
        >>> round(F1()(np.array([0.9, 0.8, 0.2, 0.7]), np.array([1, 0, 0, 1])), 4)
        0.8
    """

    _name = "f1"

    def _score(self, tp: np.ndarray, pp: np.ndarray, ap: np.ndarray) -> np.ndarray:
        return _ratio(2.0 * tp, pp + ap)


def MAE(pred: Any, targets: Any) -> float:
    """Mean absolute error over every element: ``mean(|pred - targets|)``.

    Example:
        >>> MAE(np.array([[1.0, 2.0]]), np.array([[0.0, 4.0]]))
        1.5
    """
    p, y = _arrays(pred, targets, "MAE")
    if p.shape != y.shape and p.size == y.size:
        y = y.reshape(p.shape)
    return float(np.mean(np.abs(p - y)))


def _binary_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """The area under the ROC curve: the chance that a random positive scores above a random
    negative (ties count half), from the ranks of the scores."""
    n_pos = int(np.count_nonzero(positive))
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    # late import: scipy.stats costs ~30 MiB that `import golgi` should not pay for one metric
    from scipy.stats import rankdata

    ranks = rankdata(scores)  # average ranks: ties count half
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def AUC(pred: Any, labels: Any) -> float:
    """Area under the ROC curve: binary scores (n,) / (n, 1) (probabilities or logits) against
    0/1 labels; for class scores (n, classes), the mean of each class against the rest
    (classes absent from the labels are left out). NaN when only one class is present.

    Example:
        >>> AUC(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))
        0.75
    """
    p, y = _arrays(pred, labels, "AUC")
    if _is_binary(p):
        truth = _class_labels(p, y, "AUC")
        return _binary_auc(p.reshape(len(p)).astype(np.float64), truth == 1)
    if p.ndim != 2:
        raise ValueError(f"AUC: predictions must be (n,), (n, 1) or (n, classes), got {p.shape}")
    truth = _class_labels(p, y, "AUC")
    areas = [
        _binary_auc(p[:, c].astype(np.float64), truth == c)
        for c in range(p.shape[1])
        if 0 < np.count_nonzero(truth == c) < len(truth)
    ]
    return float(np.mean(areas)) if areas else float("nan")


AUC.per_epoch = True  # type: ignore[attr-defined]

#: The metrics ``fit`` knows by name (lower case); "topK_accuracy" for any K too.
METRIC_NAMES: dict[str, Callable[[], MetricFn]] = {
    "accuracy": lambda: Accuracy,
    "acc": lambda: Accuracy,
    "top_k_accuracy": lambda: TopKAccuracy(5),
    "precision": lambda: Precision(),
    "recall": lambda: Recall(),
    "f1": lambda: F1(),
    "mae": lambda: MAE,
    "mean_absolute_error": lambda: MAE,
    "auc": lambda: AUC,
}


def _by_name(m: str) -> tuple[str, MetricFn]:
    key = m.lower()
    make = METRIC_NAMES.get(key)
    if make is None and key.startswith("top") and key.endswith("_accuracy"):
        k = key[3 : -len("_accuracy")]
        if k.isdigit():
            fn: MetricFn = TopKAccuracy(int(k))
            return fn.__name__, fn  # type: ignore[attr-defined]
    if make is None:
        raise ValueError(
            f"unknown metric {m!r}; use one of {', '.join(sorted(set(METRIC_NAMES)))}, "
            f"'top3_accuracy' or a function (pred, y) -> float"
        )
    fn = make()
    plain = {id(Accuracy): "accuracy", id(MAE): "mae", id(AUC): "auc"}
    return plain.get(id(fn)) or fn.__name__, fn  # type: ignore[attr-defined]


def resolve_metrics(metrics: Any) -> dict[str, MetricFn]:
    """Metrics by name from what ``fit`` takes: None, a name ("accuracy", "f1", "auc"...), a
    function ``(pred, y) -> float`` (named after it), a list of those, or a dict name ->
    function.

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
                items.append(_by_name(m))
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
