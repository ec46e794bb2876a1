"""``GolgiClassifier``: a golgi network as a scikit-learn classifier.

Example:
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = GolgiClassifier(hidden_layer_sizes=(16,), epochs=100, learning_rate=0.01,
    ...                       random_state=0).fit(X, y)
    >>> clf.predict(X[:3]), bool(clf.score(X, y) > 0.9)
    (array([0, 0, 0]), True)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import validate_data

from ..losses import CrossEntropy
from ._base import SupervisedEstimator, sample_weights

__all__ = ["GolgiClassifier"]


class GolgiClassifier(ClassifierMixin, SupervisedEstimator):
    """A golgi network as a scikit-learn classifier: by default an MLP with ReLU hidden
    layers and one output per class, trained with Adam on the softmax cross-entropy.

    The graph is built in ``fit`` from the data: ``n_features_in_`` inputs (a pandas
    DataFrame's column names go to ``feature_names_in_``) and one output per class in
    ``classes_`` (any labels: ints, strings, bools). ``predict_proba`` is the softmax of the
    outputs; ``sample_weight`` scales each sample's loss. ``predict`` is safe to call from
    many threads at once; pickle and joblib work.

    Fitted attributes: ``classes_``, ``n_features_in_``, ``feature_names_in_`` (DataFrames
    only), ``model_`` (the golgi model: ``model_.summary()``, ``golgi.save(clf.model_,
    path)``), ``n_iter_`` (epochs trained in all) and ``loss_curve_`` (each epoch's loss).

    Args:
        hidden_layer_sizes: units of each hidden layer, e.g. ``(100,)`` or ``(64, 32)``.
        activation: the hidden layers' activation: "relu", "tanh", "logistic" ("sigmoid"),
            "identity", "gelu", "elu", "softplus", "leaky_relu", or a graphcore op such as
            ``gc.Tanh``.
        model: instead of that MLP, a callable ``model(n_features_in, n_classes)`` returning
            a golgi term that gives ``n_classes`` logits (no softmax on its last layer).
            Define it at module level: a lambda cannot be pickled.
        epochs: passes over the data per ``fit`` (``partial_fit`` makes one).
        batch_size: samples per step (the last batch of an epoch may be smaller).
        solver: "adam", "adamw", "sgd", "momentum", "rmsprop", "adagrad", or a callable taking
            no arguments that returns a graphcore solver (``learning_rate`` and ``alpha`` are
            then not used).
        learning_rate: the named solver's learning rate.
        alpha: L2 penalty of the named solver: each step adds ``alpha * w`` to a gradient.
        shuffle: reshuffle the samples every epoch.
        dtype: "float64" (results compare precisely) or "float32" (faster on large data);
            results are float64 either way.
        random_state: None, an int or a ``np.random.RandomState``, for the initial weights and
            the shuffles. An int makes ``fit`` reproducible. ``fit`` seeds graphcore's
            generator of the calling thread (``gc.SetSeed``).
        warm_start: ``fit`` continues from the fitted weights (same features and classes)
            instead of starting again.
        verbose: 0 quiet, 1 a line per epoch, 2 a progress bar as well.

    Example:
        >>> import numpy as np
        >>> X = np.array([[0.0, 0.0], [0.1, 0.2], [1.0, 1.0], [0.9, 1.1]])
        >>> clf = GolgiClassifier(hidden_layer_sizes=(8,), epochs=50, learning_rate=0.05,
        ...                       random_state=0).fit(X, ["no", "no", "yes", "yes"])
        >>> clf.classes_.tolist(), clf.predict([[0.0, 0.1], [1.0, 0.9]]).tolist()
        (['no', 'yes'], ['no', 'yes'])
        >>> clf.predict_proba(X).shape
        (4, 2)
    """

    _loss = staticmethod(CrossEntropy)
    #: the class labels seen by ``fit`` (set there)
    classes_: np.ndarray

    def __init__(
        self,
        hidden_layer_sizes: Any = (100,),
        activation: Any = "relu",
        *,
        model: Callable[[int, int], Any] | None = None,
        epochs: int = 200,
        batch_size: int = 200,
        solver: Any = "adam",
        learning_rate: float = 0.001,
        alpha: float = 0.0001,
        shuffle: bool = True,
        dtype: str = "float64",
        random_state: Any = None,
        warm_start: bool = False,
        verbose: int = 0,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.model = model
        self.epochs = epochs
        self.batch_size = batch_size
        self.solver = solver
        self.learning_rate = learning_rate
        self.alpha = alpha
        self.shuffle = shuffle
        self.dtype = dtype
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose

    def _targets(self, y_idx: np.ndarray, sample_weight: Any) -> np.ndarray:
        # one-hot rows scaled by the weights: each row's softmax cross-entropy is then
        # weighted by its sample's weight
        w = sample_weights(sample_weight, len(y_idx))
        t = np.zeros((len(y_idx), len(self.classes_)), self._np_dtype())
        t[np.arange(len(y_idx)), y_idx] = w
        return t

    def _index(self, y: np.ndarray) -> np.ndarray:
        idx = np.searchsorted(self.classes_, y)
        idx[idx >= len(self.classes_)] = 0
        unknown = self.classes_[idx] != y
        if np.any(unknown):
            raise ValueError(
                f"y holds labels that are not in classes_ {self.classes_.tolist()}: "
                f"{np.unique(y[unknown]).tolist()}"
            )
        return idx

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> GolgiClassifier:
        """Build the network for ``X`` and ``y`` and train it for ``epochs`` epochs.

        Example:
            >>> import numpy as np
            >>> X = np.random.default_rng(0).normal(size=(20, 3))
            >>> clf = GolgiClassifier(epochs=5, random_state=0).fit(X, X[:, 0] > 0)
            >>> clf.classes_, clf.n_features_in_, clf.n_iter_
            (array([False,  True]), 3, 5)
        """
        self._check_params()
        X, y = validate_data(self, X, y, dtype=self._np_dtype())
        check_classification_targets(y)
        classes = np.unique(y)
        warm = self.warm_start and hasattr(self, "_network")
        if warm and (
            self._network.x.shape[1] != X.shape[1] or not np.array_equal(classes, self.classes_)
        ):
            raise ValueError(
                f"warm_start: the data must have the fitted {self._network.x.shape[1]} "
                f"features and classes {self.classes_.tolist()}; got {X.shape[1]} features and "
                f"classes {classes.tolist()}. Set warm_start=False to start again"
            )
        if not warm:
            self._start(X.shape[1], len(classes), self._draw_seed())
            self.classes_ = classes
        T = self._targets(self._index(y), sample_weight)
        self._train(X, T, int(self.epochs), self._new_solver())
        return self

    def partial_fit(
        self, X: Any, y: Any, classes: Any = None, sample_weight: Any = None
    ) -> GolgiClassifier:
        """Train one epoch on ``X`` and ``y``, continuing from the current weights and solver
        state. The first call builds the network and needs every class in ``classes``.

        Example:
            >>> import numpy as np
            >>> X = np.random.default_rng(0).normal(size=(20, 3)); y = (X[:, 0] > 0) * 1
            >>> clf = GolgiClassifier(random_state=0)
            >>> for _ in range(3):
            ...     clf = clf.partial_fit(X, y, classes=[0, 1])
            >>> clf.n_iter_, len(clf.loss_curve_)
            (3, 3)
        """
        first = not hasattr(self, "_network")
        if first:
            self._check_params()
            if classes is None:
                raise ValueError(
                    "partial_fit: pass every class with classes=... on the first call "
                    "(later batches may lack some)"
                )
        X, y = validate_data(self, X, y, dtype=self._np_dtype(), reset=first)
        check_classification_targets(y)
        if first:
            all_classes = np.unique(np.asarray(classes))
            self._start(X.shape[1], len(all_classes), self._draw_seed())
            self.classes_ = all_classes
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(
                f"partial_fit: classes={np.unique(classes).tolist()} differs from the classes "
                f"of the first call, {self.classes_.tolist()}"
            )
        T = self._targets(self._index(y), sample_weight)
        self._train(X, T, 1, self._partial_solver())
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Each class's probability (the softmax of the network's outputs), (n, n_classes).

        Example:
            >>> import numpy as np
            >>> X = np.random.default_rng(0).normal(size=(20, 3))
            >>> clf = GolgiClassifier(epochs=5, random_state=0).fit(X, X[:, 0] > 0)
            >>> p = clf.predict_proba(X)
            >>> p.shape, bool(np.allclose(p.sum(1), 1))
            ((20, 2), True)
        """
        z = self._run(X)
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        return z

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """The log of ``predict_proba``, computed stably from the outputs.

        Example:
            >>> import numpy as np
            >>> X = np.random.default_rng(0).normal(size=(20, 3))
            >>> clf = GolgiClassifier(epochs=5, random_state=0).fit(X, X[:, 0] > 0)
            >>> bool(np.allclose(np.exp(clf.predict_log_proba(X)), clf.predict_proba(X)))
            True
        """
        z = self._run(X)
        z -= z.max(axis=1, keepdims=True)
        z -= np.log(np.exp(z).sum(axis=1, keepdims=True))
        return z

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each sample, as labels from ``classes_``.

        Example:
            >>> import numpy as np
            >>> X = np.random.default_rng(0).normal(size=(40, 2))
            >>> clf = GolgiClassifier(epochs=50, random_state=0).fit(X, X[:, 0] > 0)
            >>> clf.predict([[3.0, 0.0], [-3.0, 0.0]]).tolist()
            [True, False]
        """
        scores = self._run(X)  # first: it raises NotFittedError before classes_ is read
        return self.classes_[np.argmax(scores, axis=1)]
