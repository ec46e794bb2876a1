"""What the three estimators share: hyperparameter checks, seeds, solvers, the MLP they build,
training, and pickling (the weights travel as the bytes of a golgi checkpoint).

Example:
    >>> import graphcore as gc
    >>> make_solver("adam", 0.01, 0.0).learn_rate, activation_op("relu") is gc.Rectify
    (0.01, True)
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

import graphcore as gc

from ..compose import ComposeSeq, Composition, L
from ..layers.fc import ConsFC
from ..options import WithActivation, WithName, WithShape
from ._network import Network

__all__ = [
    "GolgiEstimator",
    "SupervisedEstimator",
    "make_solver",
    "activation_op",
    "dense",
    "sample_weights",
]

#: Activation names (scikit-learn's, and a few more) -> graphcore ops.
ACTIVATIONS: dict[str, Any] = {
    "identity": None,
    "relu": gc.Rectify,
    "tanh": gc.Tanh,
    "logistic": gc.Sigmoid,
    "sigmoid": gc.Sigmoid,
    "gelu": gc.Gelu,
    "elu": gc.Elu,
    "softplus": gc.Softplus,
    "leaky_relu": gc.LeakyRelu,
}

#: Solver names -> graphcore solver constructors.
SOLVERS: dict[str, Callable[..., Any]] = {
    "adam": gc.NewAdamSolver,
    "adamw": gc.NewAdamW,
    "sgd": gc.NewVanillaSolver,
    "momentum": gc.NewMomentum,
    "rmsprop": gc.NewRMSPropSolver,
    "adagrad": gc.NewAdaGradSolver,
}

DTYPES = {"float64": gc.Float64, "float32": gc.Float32}


def activation_op(activation: Any) -> Any:
    """The graphcore op for ``activation``: a name from ``ACTIVATIONS`` or an op function.

    Example:
        >>> activation_op("identity") is None, activation_op(gc.Tanh) is gc.Tanh
        (True, True)
    """
    if callable(activation):
        return activation
    if isinstance(activation, str) and activation in ACTIVATIONS:
        return ACTIVATIONS[activation]
    raise ValueError(
        f"activation={activation!r}: use one of {', '.join(map(repr, ACTIVATIONS))} or a "
        f"graphcore op function such as gc.Tanh"
    )


def make_solver(solver: Any, learning_rate: float, alpha: float) -> Any:
    """A new graphcore solver: ``solver`` names one (``SOLVERS``), with ``learning_rate`` and
    L2 penalty ``alpha``; or it is a callable taking no arguments that returns one (then
    ``learning_rate`` and ``alpha`` are its own business).

    Example:
        >>> type(make_solver("sgd", 0.1, 0.0)).__name__
        'VanillaSolver'
    """
    if isinstance(solver, str):
        if solver not in SOLVERS:
            raise ValueError(
                f"solver={solver!r}: use one of {', '.join(map(repr, SOLVERS))} or a callable "
                f"returning a graphcore solver, e.g. functools.partial(gc.NewMomentum, "
                f"gc.WithLearnRate(0.01))"
            )
        return SOLVERS[solver](gc.WithLearnRate(learning_rate), gc.WithL2Reg(alpha))
    if callable(solver):
        made = solver()
        if not hasattr(made, "step"):
            raise TypeError(
                f"solver: the callable {solver!r} returned {type(made).__name__}, not a "
                f"graphcore solver (gc.NewAdamSolver(), ...)"
            )
        return made
    raise TypeError(f"solver={solver!r}: give a solver name or a callable returning a solver")


def dense(
    sizes: Sequence[int], activation: Any, names: Sequence[str], last_activation: Any = None
) -> Composition:
    """Fully connected layers of ``sizes`` units named ``names``: ``activation`` on every
    layer but the last, which gets ``last_activation`` (default: none, a linear layer).

    Example:
        >>> net = dense([4, 2], gc.Rectify, ["fc1", "out"])
        >>> len(net.terms), net.built
        (2, False)
    """
    acts = [activation] * (len(sizes) - 1) + [last_activation]
    return ComposeSeq(
        *[
            L(ConsFC(WithShape(n), WithName(name), WithActivation(act)))
            for n, name, act in zip(sizes, names, acts, strict=True)
        ]
    )


def sample_weights(sample_weight: Any, n: int) -> np.ndarray:
    """``sample_weight`` checked (n non-negative finite numbers, not all zero) and scaled to
    average 1, so weighted losses stay on the scale of unweighted ones; None gives ones.

    Example:
        >>> sample_weights([0, 1, 3], 3).tolist()
        [0.0, 0.75, 2.25]
        >>> sample_weights([0, 0], 2)
        Traceback (most recent call last):
        ...
        ValueError: sample_weight: every weight is zero; at least one must be positive
    """
    if sample_weight is None:
        return np.ones(n)
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.ndim == 0:
        w = np.full(n, float(w))
    if w.shape != (n,):
        raise ValueError(
            f"sample_weight must hold one weight per sample: shape ({n},), got {w.shape}"
        )
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("sample_weight: weights must be finite and non-negative")
    total = w.sum()
    if total <= 0:
        raise ValueError("sample_weight: every weight is zero; at least one must be positive")
    return w * (n / total)


def _positive_int(name: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
        raise ValueError(f"{name} must be a positive integer, got {v!r}")
    return int(v)


class GolgiEstimator(BaseEstimator):
    """The shared machinery of ``GolgiClassifier``, ``GolgiRegressor`` and
    ``GolgiTransformer`` (see them for the hyperparameters).

    Subclasses define ``_make_network(n_features, n_outputs)`` (a built
    :class:`~golgi.sklearn._network.Network`) and ``_loss``.

    Example:
        >>> issubclass(GolgiEstimator, BaseEstimator)
        True
    """

    _loss: Callable[[gc.Node, gc.Node], gc.Node]
    # hyperparameters the subclasses' __init__ sets, typed here where they are checked
    learning_rate: float
    alpha: float

    # ----- hyperparameters ----------------------------------------------------------------------
    def _check_params(self) -> None:
        _positive_int("epochs", self.epochs)
        _positive_int("batch_size", self.batch_size)
        hidden = self.hidden_layer_sizes
        if isinstance(hidden, numbers.Integral):
            hidden = (hidden,)
        if not isinstance(hidden, Sequence) or any(
            isinstance(h, bool) or not isinstance(h, numbers.Integral) or h < 1 for h in hidden
        ):
            raise ValueError(
                f"hidden_layer_sizes must be a sequence of positive ints such as (100,), got "
                f"{self.hidden_layer_sizes!r}"
            )
        activation_op(self.activation)
        if self.model is not None and not callable(self.model):
            raise TypeError(f"model must be None or a callable that builds the model, got "
                            f"{self.model!r}")
        if not isinstance(self.learning_rate, numbers.Real) or not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be a positive number, got "
                             f"{self.learning_rate!r}")
        if not isinstance(self.alpha, numbers.Real) or not self.alpha >= 0:
            raise ValueError(f"alpha must be a non-negative number, got {self.alpha!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be 'float64' or 'float32', got {self.dtype!r}")
        make_solver(self.solver, self.learning_rate, self.alpha)

    def _hidden(self) -> tuple[int, ...]:
        h = self.hidden_layer_sizes
        return (int(h),) if isinstance(h, numbers.Integral) else tuple(int(n) for n in h)

    def _np_dtype(self) -> type[np.floating[Any]]:
        return np.float64 if self.dtype == "float64" else np.float32

    def _progress(self) -> bool | str:
        v = int(self.verbose or 0)
        return False if v <= 0 else ("epoch" if v == 1 else True)

    def _draw_seed(self) -> int:
        # an int random_state gives the same seed every fit; None a fresh one
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

    # ----- building and training ----------------------------------------------------------------
    def _make_network(self, n_features: int, n_outputs: int) -> Network:
        raise NotImplementedError

    def _input(self, model: Any, n_features: int) -> gc.Node:
        """The input node for ``model``: its own when it is built on one, else a new graph's."""
        x = getattr(model, "input", None)
        if isinstance(x, gc.Node):
            if x.ndim != 2 or x.shape[0] is not None or x.shape[1] != n_features:
                raise gc.ShapeError(
                    f"model: the model's input {x.describe()} must be (None, {n_features}) "
                    f"for this data; declare it with gc.WithShape(None, {n_features})"
                )
            return x
        g = gc.NewGraph(type(self).__name__)
        return gc.NewMatrix(
            g, DTYPES[self.dtype], gc.WithShape(None, n_features), gc.WithName("x")
        )

    @staticmethod
    def _output(who: str, model: Any, x: gc.Node, n_outputs: int) -> gc.Node:
        out = model.fwd(x)
        if not isinstance(out, gc.Node) or out.shape != (None, n_outputs):
            got = out.describe() if isinstance(out, gc.Node) else type(out).__name__
            raise gc.ShapeError(
                f"model: {who} must give (None, {n_outputs}) outputs for this data, got {got}; "
                f"end it with L(ConsFC(WithShape({n_outputs})))"
            )
        return out

    def _start(self, n_features: int, n_outputs: int, seed: int) -> None:
        """Build a new network (weights drawn from ``seed``) and reset the training record."""
        gc.SetSeed(seed)
        self._network = self._make_network(n_features, n_outputs)
        self._arch = self._architecture(n_outputs)
        self._seed = seed
        self.model_ = self._network.model
        self.n_iter_ = 0
        self.loss_curve_: list[float] = []

    def _architecture(self, n_outputs: int) -> dict[str, Any]:
        # what the graph is built from, kept so unpickling rebuilds the fitted graph even if
        # the hyperparameters were changed since
        return {
            "hidden_layer_sizes": self._hidden(),
            "activation": self.activation,
            "model": self.model,
            "dtype": self.dtype,
            "n_outputs": n_outputs,
        }

    def _train(self, X: np.ndarray, T: np.ndarray, epochs: int, solver: Any) -> None:
        net = self._network
        start = self.n_iter_
        losses = net.train(
            X,
            T,
            self._loss,
            solver,
            epochs=start + epochs,
            initial_epoch=start,  # later runs reshuffle differently, still seeded
            batch_size=int(self.batch_size),
            seed=self._seed,
            shuffle=bool(self.shuffle),
            progress=self._progress(),
        )
        self.loss_curve_ = [*self.loss_curve_, *losses]
        self.n_iter_ = start + len(losses)

    def _new_solver(self) -> Any:
        # kept with the fitted state: unpickling remakes the solver training used
        self._solver_spec = (self.solver, self.learning_rate, self.alpha)
        return make_solver(*self._solver_spec)

    def _partial_solver(self) -> Any:
        """The solver partial_fit continues with (its state kept between calls)."""
        solver = self._network.solver
        return solver if solver is not None else self._new_solver()

    # ----- pickling -----------------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        net = state.pop("_network", None)
        state.pop("model_", None)
        if net is not None:
            state["_checkpoint"] = net.to_bytes()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        checkpoint = state.pop("_checkpoint", None)
        super().__setstate__(state)
        if checkpoint is None:
            return
        raw, with_solver = checkpoint
        arch = self._arch
        # build with the fitted architecture, not with hyperparameters set since the fit
        names = ("hidden_layer_sizes", "activation", "model", "dtype")
        current = {k: getattr(self, k) for k in names}
        try:
            for k in current:
                setattr(self, k, arch[k])
            net = self._make_network(self.n_features_in_, arch["n_outputs"])
        finally:
            for k, v in current.items():
                setattr(self, k, v)
        solver = make_solver(*self._solver_spec) if with_solver else None
        net.load_bytes(raw, solver)
        self._network = net
        self.model_ = net.model


class SupervisedEstimator(GolgiEstimator):
    """A network from the features to ``n_outputs`` outputs: the MLP of
    ``hidden_layer_sizes`` and ``activation`` with a linear last layer, or what ``model``
    builds. Base of ``GolgiClassifier`` and ``GolgiRegressor``.

    Example:
        >>> issubclass(SupervisedEstimator, GolgiEstimator)
        True
    """

    def _make_network(self, n_features: int, n_outputs: int) -> Network:
        if self.model is None:
            hidden = self._hidden()
            names = [f"fc{i}" for i in range(1, len(hidden) + 1)] + ["out"]
            model = dense([*hidden, n_outputs], activation_op(self.activation), names)
        else:
            model = self.model(n_features, n_outputs)
        x = self._input(model, n_features)
        out = self._output(f"{self.model!r}", model, x, n_outputs)
        return Network(model, x, {"out": (x, out)})

    def _run(self, X: Any) -> np.ndarray:
        """The network's outputs for ``X`` (checked against the fitted features), float64."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=self._np_dtype())
        return self._network.run("out", X)
