"""``GolgiRegressor``: a golgi network as a scikit-learn regressor.

Example:
    >>> import numpy as np
    >>> X = np.random.default_rng(0).uniform(-1, 1, size=(100, 2))
    >>> reg = GolgiRegressor(hidden_layer_sizes=(16,), epochs=300, learning_rate=0.01,
    ...                      random_state=0).fit(X, X[:, 0] - 2 * X[:, 1])
    >>> bool(reg.score(X, X[:, 0] - 2 * X[:, 1]) > 0.95)
    True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.utils.validation import validate_data

from ._base import SupervisedEstimator, sample_weights
from ._network import weighted_mse

__all__ = ["GolgiRegressor"]


class GolgiRegressor(RegressorMixin, SupervisedEstimator):
    """A golgi network as a scikit-learn regressor: by default an MLP with ReLU hidden
    layers and a linear output, trained with Adam on the mean squared error.

    The graph is built in ``fit`` from the data: ``n_features_in_`` inputs (a pandas
    DataFrame's column names go to ``feature_names_in_``) and one output per target column
    (y may be 1-D or 2-D; ``predict`` returns the same). ``sample_weight`` scales each
    sample's squared error. ``predict`` is safe to call from many threads at once; pickle and
    joblib work. Scale the targets too (``TransformedTargetRegressor`` with a
    ``StandardScaler``) when they are far from unit size.

    Fitted attributes: ``n_features_in_``, ``feature_names_in_`` (DataFrames only),
    ``n_outputs_``, ``model_`` (the golgi model), ``n_iter_`` (epochs trained in all) and
    ``loss_curve_`` (each epoch's loss).

    Args:
        hidden_layer_sizes: units of each hidden layer, e.g. ``(100,)`` or ``(64, 32)``.
        activation: the hidden layers' activation: "relu", "tanh", "logistic" ("sigmoid"),
            "identity", "gelu", "elu", "softplus", "leaky_relu", or a graphcore op such as
            ``gc.Tanh``.
        model: instead of that MLP, a callable ``model(n_features_in, n_outputs)`` returning
            a golgi term that gives ``n_outputs`` values. Define it at module level: a lambda
            cannot be pickled.
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
        warm_start: ``fit`` continues from the fitted weights (same features and number of
            targets) instead of starting again.
        verbose: 0 quiet, 1 a line per epoch, 2 a progress bar as well.

    Example:
        >>> import numpy as np
        >>> X = np.random.default_rng(0).normal(size=(50, 3))
        >>> reg = GolgiRegressor(epochs=20, random_state=0).fit(X, X[:, :2])
        >>> reg.n_outputs_, reg.predict(X[:4]).shape
        (2, (4, 2))
    """

    _loss = staticmethod(weighted_mse)
    #: the number of targets seen by ``fit`` (set there)
    n_outputs_: int

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

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _targets(self, y: np.ndarray, sample_weight: Any) -> np.ndarray:
        # the targets, then each sample's weight in a last column (what weighted_mse reads)
        w = sample_weights(sample_weight, len(y))
        return np.hstack([y.reshape(len(y), -1), w[:, None]]).astype(self._np_dtype())

    def _data(self, X: Any, y: Any, reset: bool) -> tuple[np.ndarray, np.ndarray, int]:
        X, y = validate_data(
            self, X, y, dtype=self._np_dtype(), multi_output=True, y_numeric=True, reset=reset
        )
        return X, y, 1 if y.ndim == 1 else y.shape[1]

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> GolgiRegressor:
        """Build the network for ``X`` and ``y`` and train it for ``epochs`` epochs.

        Example:
            >>> import numpy as np
            >>> X = np.random.default_rng(0).normal(size=(20, 3))
            >>> reg = GolgiRegressor(epochs=5, random_state=0).fit(X, X[:, 0])
            >>> reg.n_outputs_, reg.n_iter_
            (1, 5)
        """
        self._check_params()
        X, y, n_out = self._data(X, y, reset=True)
        warm = self.warm_start and hasattr(self, "_network")
        if warm and (self._network.x.shape[1] != X.shape[1] or n_out != self.n_outputs_):
            raise ValueError(
                f"warm_start: the data must have the fitted {self._network.x.shape[1]} "
                f"features and {self.n_outputs_} targets; got {X.shape[1]} and {n_out}. Set "
                f"warm_start=False to start again"
            )
        if not warm:
            self._start(X.shape[1], n_out, self._draw_seed())
            self.n_outputs_ = n_out
        self._y_ndim = y.ndim
        self._train(X, self._targets(y, sample_weight), int(self.epochs), self._new_solver())
        return self

    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> GolgiRegressor:
        """Train one epoch on ``X`` and ``y``, continuing from the current weights and solver
        state; the first call builds the network.

        Example:
            >>> import numpy as np
            >>> X = np.random.default_rng(0).normal(size=(20, 3))
            >>> reg = GolgiRegressor(random_state=0).partial_fit(X, X[:, 0])
            >>> reg.partial_fit(X, X[:, 0]).n_iter_
            2
        """
        first = not hasattr(self, "_network")
        if first:
            self._check_params()
        X, y, n_out = self._data(X, y, reset=first)
        if first:
            self._start(X.shape[1], n_out, self._draw_seed())
            self.n_outputs_ = n_out
            self._y_ndim = y.ndim
        elif n_out != self.n_outputs_:
            raise ValueError(
                f"partial_fit: y has {n_out} targets, the fitted model {self.n_outputs_}"
            )
        self._train(X, self._targets(y, sample_weight), 1, self._partial_solver())
        return self

    def predict(self, X: Any) -> np.ndarray:
        """The predicted targets: (n,) when fitted on a 1-D y, else (n, n_outputs_).

        Example:
            >>> import numpy as np
            >>> X = np.random.default_rng(0).normal(size=(20, 3))
            >>> GolgiRegressor(epochs=5, random_state=0).fit(X, X[:, 0]).predict(X).shape
            (20,)
        """
        out = self._run(X)
        return out[:, 0] if self._y_ndim == 1 else out
