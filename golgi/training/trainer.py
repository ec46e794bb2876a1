"""The trainer: ``Trainer`` (one model, one loss, its training graph and machines) and ``fit``.

``fit`` builds one training graph for the model (a free batch dimension, so the last partial
batch is trained, not dropped), one compiled tape machine for training and one in eval mode
for validation, then loops: shuffle (seeded), gather each batch into the input buffers, run,
step the solver. Everything else is a callback (history, checkpoints, early stopping, learn
rate schedules, progress), called through a :class:`~golgi.training.callbacks.CallbackList`.
Ctrl-C stops after the current batch and returns the history.

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

import inspect
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import numpy as np

import graphcore as gc

from ..losses import LossFn, resolve_loss
from ..metrics import batch_scorer, resolve_metrics
from .callbacks import Callback, CallbackList
from .data import (
    as_data,
    check_batch_size,
    data_dtype,
    gather_rows,
    is_built,
    model_input,
    model_output,
    new_input,
    put_rows,
)
from .history import History
from .predict import Predictor
from .progress import StopOnInterrupt, progress_callbacks

__all__ = ["Trainer", "fit", "takes_fit_options"]

F = TypeVar("F", bound=Callable[..., Any])


class Trainer:
    """Trains one model with one loss: holds the training graph and its machines.

    ``fit`` can be called again to continue training (the graph and compiled plans are
    kept); ``evaluate`` and ``predict`` run in eval mode. ``golgi.fit`` makes (and reuses) a
    Trainer for you.

    - ``model``: a golgi layer or composition (``fwd(node)``, ``model()``);
    - ``loss``: a function (output node, target node) -> scalar node, e.g. ``golgi.CrossEntropy``
      (from logits), or "cross_entropy", "bce", "mse";
    - ``solver``: a graphcore solver (``gc.NewRMSPropSolver()``...);
    - ``input``: the input node or shape; default: the model's own input (its batch dimension
      is freed if it was fixed), or for an unbuilt model the shape of the training data;
    - ``metrics``: "accuracy", functions ``(pred, y) -> float`` or a dict name -> function;
    - ``dtype``: for an unbuilt model, the input dtype (default: Float64 for float64 data,
      else Float32).

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
        loss: LossFn | str,
        solver: Any,
        *,
        input: gc.Node | Sequence[int | None] | None = None,
        metrics: Any = None,
        dtype: gc.Dtype | None = None,
    ) -> None:
        if not hasattr(model, "fwd") or not hasattr(model, "model"):
            raise TypeError(
                f"Trainer: the model must be a golgi layer or composition (with fwd and model), "
                f"got {type(model).__name__}"
            )
        self.model = model
        self.loss = resolve_loss(loss)
        self.solver = solver
        self.input_spec = input
        self.metrics = resolve_metrics(metrics)
        self.dtype = dtype
        self.stop_training = False
        self.x: gc.Node | None = None
        self.out: gc.Node | None = None
        self.target: gc.Node | None = None
        self.cost: gc.Node | None = None
        self.learnables: list[gc.Node] = []
        self._grads: list[gc.Node] = []
        self._train_vm: gc.TapeMachine | None = None
        self._eval_vm: gc.TapeMachine | None = None
        self._predictor: Predictor | None = None
        self._vgs: list[Any] = []

    # ----- building -----------------------------------------------------------------------------
    def _ensure_io(self, data: np.ndarray | None = None, seed: int | None = None) -> None:
        if self.x is not None:
            return
        if not is_built(self.model) and seed is not None:
            gc.SetSeed(seed)  # the layers fit builds draw their initial weights from it
        sample = None if data is None else tuple(np.shape(data)[1:])
        dtype = self.dtype or (None if data is None else data_dtype(np.asarray(data)))
        x = model_input(self.model, self.input_spec, sample, dtype)
        self.out = model_output(self.model, x)
        self.x = x

    def _ensure_train(self, y: np.ndarray) -> None:
        assert self.x is not None and self.out is not None
        if self.target is not None:
            return
        y = np.asarray(y)
        if y.ndim == 0:
            raise gc.ShapeError("fit: y must hold one target per sample, got a scalar")
        if y.dtype.kind in "iu":
            dt = gc.Int32 if y.dtype == np.int32 else gc.Int64
        elif y.dtype.kind in "fb":
            dt = self.out.dtype
        else:
            raise gc.DtypeError(f"fit: targets of dtype {y.dtype} are not supported")
        g = self.x.graph
        target = new_input(g, dt, (None, *y.shape[1:]), "y")
        cost = self.loss(self.out, target)
        if not isinstance(cost, gc.Node) or cost.shape != ():
            raise gc.ShapeError(
                f"the loss must return a scalar node (shape ()), got "
                f"{cost.describe() if isinstance(cost, gc.Node) else type(cost).__name__}; "
                f"reduce it with gc.Mean"
            )
        learnables = list(self.model.model())
        if not learnables:
            raise gc.GraphError("fit: the model has no learnables to train")
        grads = gc.Grad(cost, *learnables)
        self._train_vm = gc.NewTapeMachine(
            g.subgraph_roots(cost, *grads),
            gc.BindDualValues(*learnables),
            gc.WithWatchlist(cost, self.out),
        )
        self.target, self.cost, self.learnables, self._grads = target, cost, learnables, grads
        self._vgs = gc.NodesToValueGrads(learnables)

    def _claim_grads(self) -> None:
        # Another Grad on the same learnables (a second Trainer) repoints w.deriv; plans this
        # machine compiles later must see this trainer's gradient nodes.
        for w, d in zip(self.learnables, self._grads, strict=True):
            if w.deriv is not d:
                w.deriv, d.deriv_of = d, w

    # ----- public -------------------------------------------------------------------------------
    def fit(
        self,
        x: Any,
        y: Any,
        *,
        epochs: int = 1,
        batch_size: int = 32,
        validation_data: tuple[Any, Any] | None = None,
        callbacks: Iterable[Callback] = (),
        seed: int | None = None,
        shuffle: bool = True,
        progress: bool | str = True,
        initial_epoch: int = 0,
        validation_batch_size: int | None = None,
    ) -> History:
        """Train for epochs ``initial_epoch .. epochs-1``; return the :class:`History`.

        Every epoch: shuffle (``seed`` makes the shuffles, dropout masks and weights of layers
        fit builds reproducible, bit for bit), train on every sample (the last batch may be
        smaller), then evaluate ``validation_data`` in eval mode (``val_loss``, ``val_<metric>``).
        ``progress``: True (a tqdm bar when available and a line per epoch), "bar", "epoch"
        (lines only) or False. Ctrl-C stops after the current batch: the history so far is
        returned with ``interrupted=True`` (checkpoints already written stay intact).

        Example:
            >>> import numpy as np, graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 4), gc.WithName("x"))
            >>> net = G.ComposeSeq(x, G.L(G.ConsFC(G.WithShape(3))))
            >>> X = np.random.default_rng(0).normal(size=(12, 4)).astype(np.float32)
            >>> Y = np.eye(3, dtype=np.float32)[np.arange(12) % 3]
            >>> t = Trainer(net, G.CrossEntropy, gc.NewAdamSolver(), metrics=["accuracy"])
            >>> h = t.fit(X, Y, epochs=3, batch_size=4, validation_data=(X[:6], Y[:6]),
            ...           seed=0, progress=False)
            >>> len(h), h.keys(), h["loss"][-1] < h["loss"][0]
            (3, ['loss', 'accuracy', 'val_loss', 'val_accuracy'], True)
            >>> h2 = t.fit(X, Y, epochs=5, initial_epoch=3, batch_size=4, progress=False)
            >>> h2.epoch  # continued: the weights and graph are kept
            [3, 4]
        """
        bs = check_batch_size("fit", batch_size)
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(f"fit: epochs must be a non-negative integer, got {epochs!r}")
        if not 0 <= initial_epoch <= max(epochs, 0):
            raise ValueError(f"fit: initial_epoch={initial_epoch} must be in [0, epochs={epochs}]")
        vbs = check_batch_size("fit", validation_batch_size or bs)
        self._ensure_io(x, seed)
        assert self.x is not None
        X = as_data(x, self.x, "fit: x")
        self._ensure_train(np.asarray(y))
        assert self.target is not None and self._train_vm is not None
        Y = as_data(y, self.target, "fit: y")
        if len(X) != len(Y):
            raise ValueError(f"fit: x has {len(X)} samples but y has {len(Y)}")
        if len(X) == 0:
            raise ValueError("fit: no training samples (x is empty)")
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise TypeError("fit: validation_data must be a pair (x_val, y_val)")
            xv = as_data(validation_data[0], self.x, "fit: validation x")
            yv = as_data(validation_data[1], self.target, "fit: validation y")
            if len(xv) != len(yv) or len(xv) == 0:
                raise ValueError(
                    f"fit: validation x and y must hold the same, non-zero number of samples "
                    f"(got {len(xv)} and {len(yv)})"
                )
            val = (xv, yv)
        self._claim_grads()
        names = ["loss", *self.metrics]
        names += [f"val_{k}" for k in names] if val is not None else []
        steps = -(-len(X) // bs)
        params = {
            "epochs": epochs,
            "steps": steps,
            "batch_size": bs,
            "samples": len(X),
            "metrics": names,
        }
        history = History()  # last: it records the logs the other callbacks extended
        cbs = CallbackList(
            [*callbacks, *progress_callbacks(progress), history], trainer=self, params=params
        )
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % (2**63))  # type: ignore[operator]
        self.stop_training = False
        interrupted = False
        try:
            with StopOnInterrupt() as sigint:
                cbs.on_train_begin({})
                for epoch in range(initial_epoch, epochs):
                    cbs.on_epoch_begin(epoch, {})
                    logs = self._train_epoch(X, Y, bs, epoch, seed, shuffle, cbs, sigint)
                    if sigint.requested:
                        raise KeyboardInterrupt
                    if val is not None:
                        ev = self._evaluate(val[0], val[1], vbs)
                        logs.update({f"val_{k}": v for k, v in ev.items()})
                    cbs.on_epoch_end(epoch, logs)
                    if self.stop_training:
                        break
        except KeyboardInterrupt:
            for w in self.learnables:  # a batch cut short leaves partial gradients
                w.grad.fill(0)
            interrupted = True
            if progress:
                done = len(history)
                print(
                    f"golgi: interrupted (Ctrl-C); stopping with {done} epoch"
                    f"{'s' if done != 1 else ''} done this run",
                    file=sys.stderr,
                )
        except BaseException as error:
            cbs.on_train_error(error)
            raise
        cbs.on_train_end({"interrupted": interrupted})
        return history

    def _train_epoch(
        self,
        X: np.ndarray,
        Y: np.ndarray,
        bs: int,
        epoch: int,
        seed: int,
        shuffle: bool,
        cbs: CallbackList,
        sigint: StopOnInterrupt,
    ) -> dict[str, float]:
        x, t, cost, out = self.x, self.target, self.cost, self.out
        vm, step, vgs = self._train_vm, self.solver.step, self._vgs
        assert x is not None and t is not None and cost is not None and out is not None
        assert vm is not None
        n = len(X)
        perm = np.random.default_rng((seed, epoch)).permutation(n) if shuffle else np.arange(n)
        vm.rng = np.random.default_rng((seed, epoch, 1))  # dropout masks, per epoch
        metrics = [(name, batch_scorer(fn, Y, out.shape)) for name, fn in self.metrics.items()]
        sums = [0.0] * len(metrics)
        batch_end = cbs.batch_end
        republish = cbs.reads_node_values
        blogs: dict[str, float] = {}
        loss_sum, seen = 0.0, 0
        vm.publish()  # an eval run since the last epoch pointed values elsewhere
        for bi, s in enumerate(range(0, n, bs)):
            idx = perm[s : s + bs]
            b = idx.shape[0]
            gather_rows(x, X, idx)
            gather_rows(t, Y, idx)
            vm.run_all()
            step(vgs)
            seen += b
            loss_sum += float(cost.value) * b
            if metrics:
                pred, truth = out.value, t.value
                for j, (_, score) in enumerate(metrics):
                    sums[j] += score(pred, truth, idx) * b
            if batch_end is not None:
                blogs["loss"] = loss_sum / seen
                for j, (name, _) in enumerate(metrics):
                    blogs[name] = sums[j] / seen
                blogs["size"] = b
                batch_end(bi, blogs)
                if republish:
                    vm.publish()
            if sigint.requested or self.stop_training:
                break
        logs = {"loss": loss_sum / seen}
        for j, (name, _) in enumerate(metrics):
            logs[name] = sums[j] / seen
        return logs

    def _evaluate(self, X: np.ndarray, Y: np.ndarray, bs: int) -> dict[str, float]:
        x, t, cost, out = self.x, self.target, self.cost, self.out
        assert x is not None and t is not None and cost is not None and out is not None
        if self._eval_vm is None:
            self._eval_vm = gc.NewTapeMachine(
                x.graph.subgraph_roots(out, cost), gc.EvalMode(), gc.WithWatchlist(out, cost)
            )
        vm = self._eval_vm
        n = len(X)
        loss_sum = 0.0
        pred: np.ndarray | None = None
        for s in range(0, n, bs):
            rows = X[s : s + bs]
            b = len(rows)
            put_rows(x, rows)
            put_rows(t, Y[s : s + b])
            vm.run_all()
            if s == 0:
                vm.publish()
                if self.metrics:
                    pred = np.empty((n, *out.value.shape[1:]), out.value.dtype)
            loss_sum += float(cost.value) * b
            if pred is not None:
                pred[s : s + b] = out.value
        res = {"loss": loss_sum / n}
        for name, fn in self.metrics.items():
            res[name] = float(fn(pred, Y))
        return res

    def evaluate(self, x: Any, y: Any, batch_size: int = 256) -> dict[str, float]:
        """Loss and metrics on ``(x, y)`` in eval mode, as a dict (``{"loss": ..., ...}``).

        The loss is the mean over samples; metrics are computed on all predictions at once.

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
        bs = check_batch_size("evaluate", batch_size)
        self._ensure_io(x)
        assert self.x is not None
        X = as_data(x, self.x, "evaluate: x")
        self._ensure_train(np.asarray(y))
        assert self.target is not None
        Y = as_data(y, self.target, "evaluate: y")
        if len(X) != len(Y) or len(X) == 0:
            raise ValueError(
                f"evaluate: x and y must hold the same, non-zero number of samples "
                f"(got {len(X)} and {len(Y)})"
            )
        return self._evaluate(X, Y, bs)

    def predict(self, x: Any, batch_size: int = 256) -> np.ndarray:
        """The model's outputs for ``x`` in eval mode, at any batch size (see :func:`predict`).

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
        bs = check_batch_size("predict", batch_size)
        self._ensure_io(x)
        assert self.x is not None and self.out is not None
        if self._predictor is None:
            self._predictor = Predictor(self.x, self.out)
        return self._predictor(as_data(x, self.x, "predict: x"), bs)

    def __repr__(self) -> str:
        loss = getattr(self.loss, "__name__", repr(self.loss))
        return (
            f"Trainer({type(self.model).__name__}, loss={loss}, "
            f"solver={type(self.solver).__name__}, metrics={list(self.metrics)})"
        )


def takes_fit_options(fn: F) -> F:
    """Give ``fn``, which forwards its ``**options`` to :meth:`Trainer.fit`, the signature with
    those keyword parameters in their place: ``help()``, ``inspect.signature`` and the docs
    show the real parameters, written once (on ``Trainer.fit``).

    Example:
        >>> import inspect
        >>> @takes_fit_options
        ... def train(model, x, y, **options):
        ...     return Trainer(model, "mse", None).fit(x, y, **options)
        >>> list(inspect.signature(train).parameters)[:5]
        ['model', 'x', 'y', 'epochs', 'batch_size']
    """
    own = inspect.signature(fn)
    forwarded = [
        p
        for p in inspect.signature(Trainer.fit).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    kept = [p for p in own.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    if kept and kept[-1].kind is not inspect.Parameter.KEYWORD_ONLY:
        forwarded = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in forwarded]
    fn.__signature__ = own.replace(parameters=[*kept, *forwarded])  # type: ignore[attr-defined]
    return fn


@takes_fit_options
def fit(
    model: Any,
    x: Any,
    y: Any,
    *,
    loss: LossFn | str,
    solver: Any,
    input: gc.Node | Sequence[int | None] | None = None,
    metrics: Any = None,
    **options: Any,
) -> History:
    """Train ``model`` on ``(x, y)``; a :class:`Trainer` in one call. Returns the History.

    ``loss`` takes (output node, target node) and returns a scalar node (``golgi.CrossEntropy``
    from logits, ``golgi.BinaryCrossEntropy``, ``golgi.MSE``, or your own). ``solver`` is a
    graphcore solver. The other keyword arguments (``epochs``, ``batch_size``, ``callbacks``...)
    go to :meth:`Trainer.fit`. Calling ``fit`` again on the same model with the same loss
    continues training with the graph and machines already built (``history.trainer`` is that
    Trainer: ``evaluate``, ``predict``).

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
    unknown = options.keys() - _FIT_OPTIONS
    if unknown:
        raise TypeError(f"fit() got an unexpected keyword argument {min(unknown)!r}")
    lf = resolve_loss(loss)
    # Kept on the model (a Trainer refers to its model, so a weak-keyed table would keep the
    # model alive forever; an attribute makes a cycle the garbage collector frees).
    trainer = getattr(model, "_golgi_trainer", None)
    if (
        not isinstance(trainer, Trainer)
        or trainer.loss is not lf
        or trainer.input_spec is not input
    ):
        trainer = Trainer(model, lf, solver, input=input, metrics=metrics)
        try:
            model._golgi_trainer = trainer
        except AttributeError:  # no __dict__: no reuse
            pass
    else:
        trainer.solver = solver
        trainer.metrics = resolve_metrics(metrics)
    return trainer.fit(x, y, **options)


_FIT_OPTIONS = frozenset(
    name
    for name, p in inspect.signature(Trainer.fit).parameters.items()
    if p.kind is inspect.Parameter.KEYWORD_ONLY
)
