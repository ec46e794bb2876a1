"""The trainer: ``Trainer`` (one model, its losses, its training graph and machines), and
``fit`` and ``evaluate``, which make one and keep it on the model for the next call.

``fit`` builds one training graph for the model (a free batch dimension, so the last partial
batch is trained, not dropped) and one compiled tape machine for training, then loops:
shuffle (seeded), gather each batch into the input buffers, run, check the loss, step the
solver. Validation, ``evaluate`` and ``predict`` run eval-mode machines on copies of the
graph that share the weights (one per thread). Everything else is a callback (history,
checkpoints, early stopping, learn rate schedules, progress), called through a
:class:`~golgi.training.callbacks.CallbackList`. Ctrl-C stops after the current batch and
returns the history; a NaN or infinite loss stops training with the model as it was at
the end of the last finite epoch. ``Trainer.fit`` itself (its arguments, data and plan) is
in :mod:`golgi.training.fitting`.

Example:
    >>> import numpy as np, graphcore as gc, golgi as G
    >>> g = gc.NewGraph()
    >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
    >>> net = G.ComposeSeq(x, G.L(G.ConsFC(G.WithShape(1), G.WithName("lin"))))
    >>> X = np.random.default_rng(0).normal(size=(64, 2)); Y = X @ [[2.0], [-1.0]]
    >>> h = G.fit(net, X, Y, loss=G.MSE, solver=gc.NewAdamSolver(gc.WithLearnRate(0.1)),
    ...           epochs=30, batch_size=16, seed=0, progress=False)
    >>> h["loss"][-1] < h["loss"][0]
    True
    >>> G.predict(net, X[:3]).shape
    (3, 1)
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

import graphcore as gc

from ..losses import LossFn
from ..metrics import MetricFn, resolve_metrics
from .build import TrainGraph, TrainMachine, build_losses, build_machine, resolve_losses
from .copies import BUILD_LOCK, per_thread
from .data import (
    check_batch_size,
    data_dtype,
    is_built,
)
from .distribution import check_distributed
from .evaluation import eval_arrays
from .fitting import FIT_OPTIONS, TrainerFitting, takes_fit_options
from .history import History
from .predict import Predictor
from .solvers import resolve_solver
from .structure import (
    Ends,
    data_arrays,
    is_multi,
    model_ends,
    raw_targets,
    shaped_like,
    target_arrays,
)

# takes_fit_options is re-exported: this was its home
__all__ = ["Trainer", "fit", "evaluate", "takes_fit_options"]


class Trainer(TrainerFitting):
    """Trains one model with its loss: holds the training graph and its machines.

    ``fit`` can be called again to continue training (the graph and compiled plans are
    kept); ``evaluate`` and ``predict`` run in eval mode, from any thread. ``golgi.fit``
    makes (and reuses) a Trainer for you.

    - ``model``: a golgi layer, composition or ``golgi.Model`` (several inputs and outputs);
    - ``loss``: a function (output node, target node) -> scalar node, e.g.
      ``golgi.CrossEntropy`` (from logits), or "cross_entropy", "bce", "mse"; for a model with
      several outputs, one loss for all or a dict output name -> loss (outputs left out are
      not trained and need no targets); None for a custom ``train_step`` that needs none;
    - ``solver``: a graphcore solver (``gc.NewRMSPropSolver()``...) or a name ("adam",
      "rmsprop", "sgd", ...: see :data:`~golgi.training.solvers.SOLVERS`);
    - ``input``: the input node or shape; default: the model's own input (its batch dimension
      is freed if it was fixed), or for an unbuilt model the shape of the training data;
    - ``metrics``: names ("accuracy", "f1", "auc"...), functions ``(pred, y) -> float``, or a
      dict name -> function; for several outputs, these apply to each (logged as
      ``<output>_<metric>``), or give a dict output name -> metrics;
    - ``dtype``: for an unbuilt model, the input dtype (default: Float64 for float64 data,
      else Float32);
    - ``distributed``: ``golgi.MPIDataParallel()`` to train, evaluate and predict on every
      rank of an MPI job (see :mod:`golgi.distributed`); ``fit``, ``evaluate`` and
      ``predict`` may also be given one per call.

    Example:
        >>> import numpy as np, graphcore as gc, golgi as G
        >>> net = G.ComposeSeq(G.L(G.ConsFC(G.WithShape(3), G.WithName("clf"))))
        >>> t = Trainer(net, G.CrossEntropy, gc.NewAdamSolver(), metrics=["accuracy"])
        >>> X = np.random.default_rng(0).normal(size=(30, 4)).astype(np.float32)
        >>> Y = np.eye(3, dtype=np.float32)[np.arange(30) % 3]
        >>> h = t.fit(X, Y, epochs=2, batch_size=8, seed=0, progress=False)
        >>> sorted(h.keys()), t.predict(X).shape
        (['accuracy', 'loss'], (30, 3))
    """

    def __init__(
        self,
        model: Any,
        loss: LossFn | str | Mapping[str, Any] | None = None,
        solver: Any = None,
        *,
        input: gc.Node | Sequence[int | None] | None = None,
        metrics: Any = None,
        dtype: gc.Dtype | None = None,
        distributed: Any = None,
    ) -> None:
        if not is_multi(model) and (not hasattr(model, "fwd") or not hasattr(model, "model")):
            raise TypeError(
                f"Trainer: the model must be a golgi layer, composition or Model (with fwd and "
                f"model), got {type(model).__name__}"
            )
        self.model = model
        self.loss: Any = resolve_losses(loss, model)
        self.solver = None if solver is None else resolve_solver(solver)
        self.solver_name = solver if isinstance(solver, str) else None
        self.input_spec = input
        self.metrics: dict[str, MetricFn] = {}
        self.output_metrics: dict[str, dict[str, MetricFn]] = {}
        self.set_metrics(metrics)
        self.dtype = dtype
        self.distributed = check_distributed(distributed)
        self.stop_training = False
        self.ends: Ends | None = None
        self.x: gc.Node | None = None
        self.out: gc.Node | None = None
        self.target: gc.Node | None = None
        self.cost: gc.Node | None = None
        self.learnables: list[gc.Node] = []
        self.graph: TrainGraph | None = None  # the losses, targets, unweighted cost
        self._machines: dict[bool, TrainMachine] = {}  # weighted? -> its cost and machine

    # ----- settings -----------------------------------------------------------------------------
    def set_metrics(self, metrics: Any) -> None:
        """Set the metrics (as the constructor takes them).

        Example:
            >>> import golgi as G
            >>> t = Trainer(G.ComposeSeq(G.L(G.ConsFC(G.WithShape(2)))), "mse", "sgd")
            >>> t.set_metrics(["mae"]); list(t.metrics)
            ['mae']
        """
        outs = list(self.model.outputs) if is_multi(self.model) else []
        if (
            outs
            and isinstance(metrics, Mapping)
            and metrics
            and all(k in outs for k in metrics)
        ):
            self.metrics = {}
            self.output_metrics = {k: resolve_metrics(v) for k, v in metrics.items()}
        else:
            self.metrics = resolve_metrics(metrics)
            self.output_metrics = {}

    @property
    def machine(self) -> gc.TapeMachine | None:
        """The training machine (built by the first ``fit`` with a loss), or None.

        Example:
            >>> import numpy as np, graphcore as gc, golgi as G
            >>> net = G.ComposeSeq(G.L(G.ConsFC(G.WithShape(1))))
            >>> t = G.Trainer(net, "mse", gc.NewAdamSolver())
            >>> t.machine is None
            True
            >>> _ = t.fit(np.ones((4, 2)), np.ones((4, 1)), progress=False)
            >>> type(t.machine).__name__
            'TapeMachine'
        """
        tg = self._machines.get(False)
        return None if tg is None else tg.vm

    # ----- building -----------------------------------------------------------------------------
    def _ensure_io(self, x: Any = None, seed: int | None = None) -> Ends:
        if self.ends is not None:
            return self.ends
        with BUILD_LOCK:
            if self.ends is not None:
                return self.ends
            if not is_built(self.model) and seed is not None:
                gc.SetSeed(seed)  # the layers fit builds draw their initial weights from it
            first = None
            if x is not None and not is_multi(self.model):
                first = next(iter(x.values())) if isinstance(x, Mapping) and len(x) == 1 else x
                first = np.asarray(first)
            sample = None if first is None else tuple(first.shape[1:])
            dtype = self.dtype or (None if first is None else data_dtype(first))
            ends = model_ends(self.model, self.input_spec, sample, dtype)
            self.x, self.out = ends.inputs[0], ends.outputs[0]
            self.ends = ends
            return ends

    def _ensure_losses(self, ys: Sequence[Any | None]) -> TrainGraph:
        ends = self.ends
        assert ends is not None
        if self.graph is not None:
            return self.graph
        if self.loss is None:
            raise TypeError(
                "fit: give a loss (loss=golgi.CrossEntropy, 'mse'...), or a train_step that "
                "trains the model its own way"
            )
        with BUILD_LOCK:
            if self.graph is None:
                tg = build_losses(ends, self.loss, ys)
                self.target, self.cost = tg.targets[0], tg.cost
                self.graph = tg
        return self.graph

    def _ensure_machine(self, weighted: bool) -> TrainMachine:
        tg = self._machines.get(weighted)
        if tg is None:
            assert self.graph is not None
            with BUILD_LOCK:
                tg = self._machines[weighted] = build_machine(self.graph, self.model, weighted)
                self.learnables = tg.learnables
        return tg

    # ----- evaluation ---------------------------------------------------------------------------
    def evaluate(
        self, x: Any, y: Any, batch_size: int = 256, metrics: Any = None, *,
        distributed: Any = None,
    ) -> dict[str, float]:
        """Loss and metrics on ``(x, y)`` in eval mode, as a dict (``{"loss": ..., ...}``).

        The loss is the mean over samples (for several outputs, the weighted total and each
        ``<output>_loss``); metrics (the trainer's, or ``metrics`` given here) are computed
        on all predictions at once. Safe from any thread, also while ``fit`` runs.
        ``distributed`` (default: the trainer's): every rank evaluates its block of the rows
        and every rank gets the result for all of them.

        Example:
            >>> import numpy as np, graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 4), gc.WithName("x"))
            >>> net = G.ComposeSeq(x, G.L(G.ConsFC(G.WithShape(3))))
            >>> X = np.random.default_rng(0).normal(size=(12, 4)).astype(np.float32)
            >>> labels = np.arange(12) % 3
            >>> Y = np.eye(3, dtype=np.float32)[labels]
            >>> t = Trainer(net, G.CrossEntropy, gc.NewAdamSolver(), metrics=["accuracy"])
            >>> _ = t.fit(X, Y, epochs=2, batch_size=4, seed=0, progress=False)
            >>> ev = t.evaluate(X, Y, batch_size=5)
            >>> sorted(ev), bool(ev["accuracy"] == np.mean(t.predict(X).argmax(1) == labels))
            (['accuracy', 'loss'], True)
        """
        dist = check_distributed(distributed) or self.distributed
        if dist is None:
            return self._evaluate(x, y, batch_size, metrics, None)
        with dist.together("evaluate") as agree:
            X, Y, bs = self._evaluate(x, y, batch_size, metrics, agree)
        with dist.guard("evaluate"):
            return eval_arrays(self, X, Y, bs, metrics, split=dist)

    def _evaluate(self, x: Any, y: Any, batch_size: int, metrics: Any, agree: Any) -> Any:
        bs = check_batch_size("evaluate", batch_size)
        ends = self._ensure_io(x)
        X = data_arrays("evaluate: x", x, ends.inputs, ends.input_names, ends.input_form, False)
        self._ensure_losses(raw_targets(y, self.ends))
        Y = target_arrays("evaluate: y", self.ends, self.graph, y, False)
        if any(len(a) != len(X[0]) for a in (*X, *Y)) or len(X[0]) == 0:
            raise ValueError(
                f"evaluate: x and y must hold the same, non-zero number of samples "
                f"(got {len(X[0])} and {len(Y[0])})"
            )
        if agree is None:
            return eval_arrays(self, X, Y, bs, metrics)
        agree.same("samples", len(X[0]))
        return X, Y, bs

    def predict(self, x: Any, batch_size: int = 256, *, distributed: Any = None) -> Any:
        """The model's outputs for ``x`` in eval mode, at any batch size (see :func:`predict`).
        ``distributed`` (default: the trainer's): every rank predicts its block of the rows
        and every rank gets the outputs for all of them.

        Example:
            >>> import numpy as np, graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 4), gc.WithName("x"))
            >>> net = G.ComposeSeq(x, G.L(G.ConsFC(G.WithShape(3))))
            >>> X = np.random.default_rng(0).normal(size=(12, 4)).astype(np.float32)
            >>> Y = np.eye(3, dtype=np.float32)[np.arange(12) % 3]
            >>> t = Trainer(net, G.CrossEntropy, gc.NewAdamSolver())
            >>> _ = t.fit(X, Y, epochs=1, batch_size=4, seed=0, progress=False)
            >>> p = t.predict(X, batch_size=5)  # batches of 5, 5 and 2
            >>> p.shape, p.dtype, np.allclose(p, t.predict(X))
            ((12, 3), dtype('float32'), True)
        """
        dist = check_distributed(distributed) or self.distributed
        with dist.together("predict") if dist is not None else contextlib.nullcontext() as agree:
            bs = check_batch_size("predict", batch_size)
            ends = self._ensure_io(x)
            pred = per_thread(self, "predict", lambda: Predictor(ends.inputs, ends.outputs))
            X = data_arrays("predict: x", x, ends.inputs, ends.input_names, ends.input_form,
                            False)
            if agree is not None:
                agree.same("samples", len(X[0]))
        outs = pred(X, bs) if dist is None else dist.predict_rows(pred, X, bs)
        return shaped_like(ends.output_form, ends.output_names, outs)

    def __repr__(self) -> str:
        loss = self.loss
        shown = (
            {k: getattr(v, "__name__", repr(v)) for k, v in loss.items()}
            if isinstance(loss, Mapping)
            else getattr(loss, "__name__", repr(loss))
        )
        return (
            f"Trainer({type(self.model).__name__}, loss={shown}, "
            f"solver={type(self.solver).__name__}, metrics={list(self.metrics)})"
        )


def _same_loss(a: Any, b: Any) -> bool:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(a[k] is b[k] for k in a)
    return a is b


def model_trainer(model: Any, loss: Any, solver: Any, input: Any, metrics: Any) -> Trainer:
    """The Trainer ``fit`` and ``evaluate`` use for ``model``: the one kept on the model by an
    earlier ``fit`` with the same loss and input (so training continues on the same graph
    and machines), else a new one, kept there.

    ``loss=None`` takes the kept trainer's loss; ``solver=None`` its solver, and a solver
    name the same as before keeps the solver (and its state).

    Example:
        >>> import golgi as G
        >>> net = G.ComposeSeq(G.L(G.ConsFC(G.WithShape(2))))
        >>> t = model_trainer(net, "mse", "adam", None, None)
        >>> model_trainer(net, None, None, None, None) is t
        True
    """
    # Kept on the model (a Trainer refers to its model, so a weak-keyed table would keep the
    # model alive forever; an attribute makes a cycle the garbage collector frees).
    trainer = getattr(model, "_golgi_trainer", None)
    lf = None if loss is None else resolve_losses(loss, model)
    if (
        not isinstance(trainer, Trainer)
        or (lf is not None and not _same_loss(trainer.loss, lf))
        or trainer.input_spec is not input
    ):
        trainer = Trainer(model, lf, solver, input=input, metrics=metrics)
        try:
            model._golgi_trainer = trainer
        except AttributeError:  # no __dict__: no reuse
            pass
        return trainer
    if solver is not None and not (
        isinstance(solver, str) and solver == trainer.solver_name and trainer.solver is not None
    ):
        trainer.solver = resolve_solver(solver)
        trainer.solver_name = solver if isinstance(solver, str) else None
    trainer.set_metrics(metrics)
    return trainer


@takes_fit_options
def fit(
    model: Any,
    x: Any,
    y: Any = None,
    *,
    loss: LossFn | str | Mapping[str, Any] | None = None,
    solver: Any = None,
    input: gc.Node | Sequence[int | None] | None = None,
    metrics: Any = None,
    **options: Any,
) -> History:
    """Train ``model`` on ``(x, y)``; a :class:`Trainer` in one call. Returns the History.

    ``loss`` takes (output node, target node) and returns a scalar node (``golgi.CrossEntropy``
    from logits, ``golgi.BinaryCrossEntropy``, ``golgi.MSE``, or your own); for several
    outputs, a dict output name -> loss. ``solver`` is a graphcore solver or a name ("adam",
    "rmsprop", "sgd"...). The other keyword arguments (``epochs``, ``batch_size``,
    ``callbacks``...) go to :meth:`Trainer.fit`. Calling ``fit`` again on the same model with
    the same loss continues training with the graph and machines already built (and, for a
    solver given by the same name, the same solver state); ``history.trainer`` is that
    Trainer. ``model.fit(...)`` is the same call.

    Example:
        >>> import numpy as np, graphcore as gc, golgi as G
        >>> g = gc.NewGraph()
        >>> x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 4), gc.WithName("x"))
        >>> net = G.ComposeSeq(x, G.L(G.ConsFC(G.WithShape(3))))
        >>> X = np.ones((10, 4), np.float32); Y = np.eye(3, dtype=np.float32)[np.arange(10) % 3]
        >>> h = G.fit(net, X, Y, loss=G.CrossEntropy, solver=gc.NewRMSPropSolver(),
        ...           metrics=["accuracy"], epochs=2, batch_size=4, progress=False)
        >>> len(h), list(h.keys())
        (2, ['loss', 'accuracy'])
        >>> G.fit(net, X, Y, loss=G.CrossEntropy, solver=gc.NewRMSPropSolver(), epoch=2)
        Traceback (most recent call last):
        ...
        TypeError: fit() got an unexpected keyword argument 'epoch'
    """
    unknown = options.keys() - FIT_OPTIONS
    if unknown:
        raise TypeError(f"fit() got an unexpected keyword argument {min(unknown)!r}")
    if loss is None and options.get("train_step") is None:
        raise TypeError(
            "fit() needs a loss (loss=golgi.CrossEntropy, 'mse'...), or a train_step that "
            "trains the model its own way"
        )
    trainer = model_trainer(model, loss, solver, input, metrics)
    return trainer.fit(x, y, **options)


def evaluate(
    model: Any,
    x: Any,
    y: Any,
    *,
    loss: LossFn | str | Mapping[str, Any] | None = None,
    metrics: Any = None,
    batch_size: int = 256,
    input: gc.Node | Sequence[int | None] | None = None,
    distributed: Any = None,
) -> dict[str, float]:
    """Loss and metrics of ``model`` on ``(x, y)`` in eval mode: ``{"loss": ..., ...}``.

    Without ``loss`` (and ``metrics``), those of the model's last ``fit`` are used. Safe from
    any number of threads, also while ``fit`` trains the model. ``model.evaluate(...)`` is
    the same call. ``distributed=golgi.MPIDataParallel()``: every rank evaluates its block
    of the rows; every rank gets the result.

    Example:
        >>> import numpy as np, graphcore as gc, golgi as G
        >>> g = gc.NewGraph()
        >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
        >>> net = G.ComposeSeq(x, G.L(G.ConsFC(G.WithShape(1))))
        >>> X = np.ones((6, 2)); Y = np.zeros((6, 1))
        >>> sorted(G.evaluate(net, X, Y, loss="mse", metrics=["mae"]))
        ['loss', 'mae']
    """
    kept = getattr(model, "_golgi_trainer", None)
    if loss is None and not isinstance(kept, Trainer):
        raise TypeError(
            "evaluate: give a loss (loss=golgi.CrossEntropy, 'mse'...); this model has not "
            "been trained with fit, whose loss it would use"
        )
    lf = None if loss is None else resolve_losses(loss, model)
    if isinstance(kept, Trainer) and (lf is None or _same_loss(kept.loss, lf)) and (
        kept.input_spec is input
    ):
        trainer = kept
    else:  # another loss: a trainer of its own, kept aside so fit's stays as it is
        if not hasattr(model, "_golgi_evaluators"):
            with contextlib.suppress(AttributeError):
                model._golgi_evaluators = []
        aside = getattr(model, "_golgi_evaluators", [])
        found: Trainer | None = next(
            (t for t in aside if _same_loss(t.loss, lf) and t.input_spec is input), None
        )
        if found is None:
            found = Trainer(model, lf, None, input=input)
            aside.append(found)
        trainer = found
    return trainer.evaluate(x, y, batch_size=batch_size, metrics=metrics,
                            distributed=distributed)
