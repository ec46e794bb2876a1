"""``GolgiTransformer``: a golgi autoencoder as a scikit-learn transformer.

Example:
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(50, 5))
    >>> ae = GolgiTransformer(hidden_layer_sizes=(16, 2), epochs=20, random_state=0)
    >>> ae.fit_transform(X).shape, ae.n_components_
    ((50, 2), 2)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted, validate_data

import graphcore as gc

from ..compose import ComposeSeq
from ._base import GolgiEstimator, activation_op, dense, sample_weights
from ._network import Network, weighted_mse

__all__ = ["GolgiTransformer"]


class GolgiTransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, GolgiEstimator):
    """A golgi autoencoder as a scikit-learn transformer: ``transform`` gives the code
    layer, ``inverse_transform`` decodes codes back to features.

    By default the encoder has ``hidden_layer_sizes`` layers, the last (linear) one being the
    code, and the decoder mirrors it: ``(100, 10)`` gives features-100-10-100-features, the
    activation on the hidden layers, trained with Adam to reconstruct the input (mean squared
    error: scale the features first, e.g. with a ``StandardScaler``). ``score`` is the
    negative reconstruction error (higher is better, as scikit-learn wants), so grid searches
    can tune it. ``transform`` is safe to call from many threads at once; pickle and joblib
    work; ``get_feature_names_out`` names the code columns (``set_output`` works).

    Fitted attributes: ``n_features_in_``, ``feature_names_in_`` (DataFrames only),
    ``n_components_`` (the code size), ``model_`` (the golgi model: encoder, then decoder),
    ``n_iter_`` (epochs trained in all) and ``loss_curve_`` (each epoch's loss).

    Args:
        hidden_layer_sizes: units of each encoder layer, the last being the code size, e.g.
            ``(100, 10)``; the decoder mirrors them.
        activation: the hidden layers' activation (not the code's nor the output's): "relu",
            "tanh", "logistic" ("sigmoid"), "identity", "gelu", "elu", "softplus",
            "leaky_relu", or a graphcore op such as ``gc.Tanh``.
        model: instead of that autoencoder, a callable ``model(n_features_in)`` returning a
            pair of golgi terms ``(encoder, decoder)``: the encoder gives the codes, the
            decoder ``n_features_in`` values from a code. Define it at module level: a lambda
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
        warm_start: ``fit`` continues from the fitted weights (same features) instead of
            starting again.
        verbose: 0 quiet, 1 a line per epoch, 2 a progress bar as well.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(200, 2)) @ rng.normal(size=(2, 6))  # rank 2 in 6-D
        >>> ae = GolgiTransformer(hidden_layer_sizes=(2,), epochs=300, learning_rate=0.01,
        ...                       random_state=0).fit(X)
        >>> codes = ae.transform(X)
        >>> codes.shape, bool(np.abs(ae.inverse_transform(codes) - X).mean() < 0.1)
        ((200, 2), True)
        >>> ae.get_feature_names_out().tolist()
        ['golgitransformer0', 'golgitransformer1']
    """

    _loss = staticmethod(weighted_mse)

    def __init__(
        self,
        hidden_layer_sizes: Any = (100, 10),
        activation: Any = "relu",
        *,
        model: Callable[[int], Any] | None = None,
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

    def _make_network(self, n_features: int, n_outputs: int) -> Network:
        if self.model is None:
            hidden = self._hidden()
            act = activation_op(self.activation)
            enc_names = [f"enc{i}" for i in range(1, len(hidden))] + ["code"]
            dec_sizes = [*reversed(hidden[:-1]), n_features]
            dec_names = [f"dec{i}" for i in range(1, len(hidden))] + ["out"]
            encoder = dense(hidden, act, enc_names)
            decoder = dense(dec_sizes, act, dec_names)
        else:
            made = self.model(n_features)
            if not isinstance(made, tuple) or len(made) != 2:
                raise TypeError(
                    f"model: {self.model!r} must return a pair (encoder, decoder), got "
                    f"{type(made).__name__}"
                )
            encoder, decoder = made
        x = self._input(encoder, n_features)
        model = ComposeSeq(encoder, decoder)
        out = self._output(f"{self.model!r}", model, x, n_outputs)
        code = encoder.fwd(x)  # the node the model computed on the way (built layers cache it)
        if code.ndim != 2 or code.shape[1] is None:
            raise gc.ShapeError(f"model: the encoder must give (None, k) codes, got "
                                f"{code.describe()}")
        if x.graph is None:
            raise gc.GraphError(f"model: the input {x.describe()} belongs to no graph; build "
                                f"the model on an input node of a graph (gc.NewMatrix(g, ...))")
        z = gc.NewMatrix(x.graph, x.dtype, gc.WithShape(None, code.shape[1]),
                         gc.WithName("code_in"))
        decoded = decoder.fwd(z)  # the same decoder layers, from codes given to it
        return Network(model, x, {"out": (x, out), "code": (x, code), "decode": (z, decoded)})

    @property
    def _n_features_out(self) -> int:
        return self.n_components_

    def _fit(self, X: Any, sample_weight: Any, partial: bool) -> GolgiTransformer:
        fitted = hasattr(self, "_network")
        keep = fitted and (partial or self.warm_start)  # continue from the fitted weights
        if not keep:
            self._check_params()
        X = validate_data(self, X, dtype=self._np_dtype(), reset=not (partial and keep))
        if keep and self._network.x.shape[1] != X.shape[1]:
            raise ValueError(
                f"warm_start: X must have the fitted {self._network.x.shape[1]} features, got "
                f"{X.shape[1]}. Set warm_start=False to start again"
            )
        if not keep:
            self._start(X.shape[1], X.shape[1], self._draw_seed())
            self.n_components_ = int(self._network.outputs["code"][1].shape[1])
        T = np.hstack([X, sample_weights(sample_weight, len(X))[:, None]]).astype(X.dtype)
        if partial:
            self._train(X, T, 1, self._partial_solver())
        else:
            self._train(X, T, int(self.epochs), self._new_solver())
        return self

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> GolgiTransformer:
        """Build the autoencoder for ``X`` and train it to reconstruct ``X`` (``y`` is
        ignored).

        Example:
            >>> import numpy as np
            >>> X = np.random.default_rng(0).normal(size=(20, 4))
            >>> GolgiTransformer((8, 2), epochs=5, random_state=0).fit(X).n_components_
            2
        """
        return self._fit(X, sample_weight, partial=False)

    def partial_fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> GolgiTransformer:
        """Train one epoch on ``X``, continuing from the current weights (and solver state);
        the first call builds the autoencoder.

        Example:
            >>> import numpy as np
            >>> X = np.random.default_rng(0).normal(size=(20, 4))
            >>> ae = GolgiTransformer((8, 2), random_state=0).partial_fit(X)
            >>> ae.partial_fit(X).n_iter_
            2
        """
        return self._fit(X, sample_weight, partial=True)

    def transform(self, X: Any) -> np.ndarray:
        """The code of each sample, (n, n_components_).

        Example:
            >>> import numpy as np
            >>> X = np.random.default_rng(0).normal(size=(20, 4))
            >>> GolgiTransformer((8, 3), epochs=2, random_state=0).fit(X).transform(X).shape
            (20, 3)
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=self._np_dtype())
        return self._network.run("code", X)

    def inverse_transform(self, X: Any) -> np.ndarray:
        """Decode codes (n, n_components_) back to features (n, n_features_in_).

        Example:
            >>> import numpy as np
            >>> X = np.random.default_rng(0).normal(size=(20, 4))
            >>> ae = GolgiTransformer((8, 3), epochs=2, random_state=0).fit(X)
            >>> ae.inverse_transform(ae.transform(X)).shape
            (20, 4)
        """
        check_is_fitted(self)
        Z = check_array(X, dtype=self._np_dtype())
        if Z.shape[1] != self.n_components_:
            raise ValueError(
                f"inverse_transform: codes must have {self.n_components_} columns "
                f"(n_components_), got {Z.shape[1]}"
            )
        return self._network.run("decode", Z)

    def score(self, X: Any, y: Any = None, sample_weight: Any = None) -> float:
        """The negative mean squared reconstruction error (0 is perfect; higher is better).

        Example:
            >>> import numpy as np
            >>> X = np.random.default_rng(0).normal(size=(20, 4))
            >>> GolgiTransformer((8, 3), epochs=2, random_state=0).fit(X).score(X) < 0
            True
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=self._np_dtype())
        err = ((self._network.run("out", X) - X) ** 2).mean(axis=1)
        return -float(np.average(err, weights=sample_weight))
