"""``Trainer.fit`` and ``Trainer.train_step``: fit's arguments checked before any work; then,
with the default step, the data checked and split off for validation, the per-sample
weights, the plan of one fit (feeds, metrics, logged names) and its epochs (a custom
``train_step`` runs :func:`~golgi.training.custom.fit_custom` instead). Also
:func:`takes_fit_options`, which gives functions that pass their options on to ``fit`` its
signature.

Example:
    >>> import numpy as np, golgi as G
    >>> t = G.Trainer(G.ComposeSeq(G.L(G.ConsFC(G.WithShape(1)))), "mse", "sgd")
    >>> isinstance(t, TrainerFitting), len(t.fit(np.ones((4, 2)), np.ones((4, 1)), epochs=2,
    ...                                          progress=False))
    (True, 2)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

import graphcore as gc

from ..metrics import MetricFn
from .build import TrainGraph, TrainMachine
from .callbacks import Callback, CallbackList
from .copies import one_fit_at_a_time
from .custom import fit_custom
from .data import check_batch_size
from .distribution import check_distributed
from .evaluation import eval_arrays
from .history import History
from .loop import Plan, run_epochs, train_epoch
from .progress import progress_callbacks, progress_from_verbose
from .safety import batchnorm_batch_problem
from .steps import Batch, TrainStep
from .structure import Ends, data_arrays, raw_targets, target_arrays
from .weights import sample_weights

__all__ = ["TrainerFitting", "takes_fit_options", "FIT_OPTIONS"]

F = TypeVar("F", bound=Callable[..., Any])


class TrainerFitting:
    """The training half of :class:`~golgi.training.trainer.Trainer`: ``fit`` and the
    default ``train_step`` (a mixin; the Trainer holds the model, losses, solver and machines
    it uses).

    Example:
        >>> import numpy as np, golgi as G
        >>> t = G.Trainer(G.ComposeSeq(G.L(G.ConsFC(G.WithShape(1)))), "mse", "sgd")
        >>> h = t.fit(np.ones((8, 2)), np.ones((8, 1)), epochs=3, batch_size=4, progress=False)
        >>> h.epoch, t.machine is not None
        ([0, 1, 2], True)
    """

    model: Any
    loss: Any
    solver: Any
    distributed: Any
    metrics: dict[str, MetricFn]
    output_metrics: dict[str, dict[str, MetricFn]]
    ends: Ends | None
    graph: TrainGraph | None
    learnables: list[gc.Node]

    if TYPE_CHECKING:  # the Trainer's, which builds the graph and machines once

        def _ensure_io(self, x: Any = None, seed: int | None = None) -> Ends: ...

        def _ensure_losses(self, ys: Sequence[Any | None]) -> TrainGraph: ...

        def _ensure_machine(self, weighted: bool) -> TrainMachine: ...

    # ----- training -----------------------------------------------------------------------------
    def fit(
        self,
        x: Any,
        y: Any = None,
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
        verbose: int | str | None = None,
        validation_split: float = 0.0,
        sample_weight: Any = None,
        class_weight: Mapping[int, float] | None = None,
        loss_weights: Mapping[str, float] | Sequence[float] | None = None,
        check_data: bool = True,
        drop_last: bool = False,
        train_step: TrainStep | None = None,
        distributed: Any = None,
    ) -> History:
        """Train for epochs ``initial_epoch .. epochs-1``; return the :class:`History`.

        Every epoch: shuffle (``seed`` makes the shuffles, dropout masks and weights of layers
        fit builds reproducible, bit for bit), train on every sample (the last batch may be
        smaller; ``drop_last=True`` leaves it out), then evaluate the validation data in
        eval mode (``val_loss``, ``val_<metric>``).

        - ``x``, ``y``: arrays; for a model with several inputs or outputs, dicts keyed by
          their names (or lists in order);
        - ``validation_data``: ``(x_val, y_val)``; or ``validation_split``: the fraction of
          the samples (the last ones, before shuffling) to hold out for validation;
        - ``sample_weight``: one weight per sample; ``class_weight``: a dict class -> weight
          (each sample weighs its class's weight); the loss is the batch mean of the
          weighted per-sample losses (as Keras); validation stays unweighted;
        - ``loss_weights``: for several outputs, the weight of each output's loss in the
          total (a dict by output name or a list in order; default 1 each);
        - ``verbose``: 0 silent, 1 a progress bar and a line per epoch, 2 a line per epoch
          (as Keras); or ``progress``: True (a tqdm bar when available and a line per
          epoch), "bar", "epoch" (lines only) or False;
        - ``check_data``: refuse NaN or infinite values in the data (naming the array, the
          row and the column), checked once per fit; False trains on them anyway;
        - ``train_step``: a function ``step(batch) -> {name: value}`` that trains on one
          batch its own way (see :mod:`golgi.training.steps`); ``fit`` still batches,
          shuffles, logs and calls the callbacks;
        - ``distributed``: ``golgi.MPIDataParallel()`` trains on every rank of an MPI job,
          each on its share of every batch of ``batch_size`` (see
          :class:`~golgi.distributed.MPIDataParallel`); default: the trainer's.

        Ctrl-C stops after the current batch: the history so far is returned with
        ``interrupted=True`` (checkpoints already written stay intact). A NaN or infinite
        loss (or weight) stops training: the weights, layer state and solver state go back
        to the end of the last finite epoch, and :class:`NonFiniteLossError` is raised
        (with a ``TerminateOnNaN`` callback, the history is returned instead).

        Example:
            >>> import numpy as np, graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 4), gc.WithName("x"))
            >>> net = G.ComposeSeq(x, G.L(G.ConsFC(G.WithShape(3))))
            >>> X = np.random.default_rng(0).normal(size=(12, 4)).astype(np.float32)
            >>> Y = np.eye(3, dtype=np.float32)[np.arange(12) % 3]
            >>> t = G.Trainer(net, G.CrossEntropy, gc.NewAdamSolver(), metrics=["accuracy"])
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
        if verbose is not None:
            if progress is not True:
                raise TypeError("fit: give verbose or progress, not both")
            progress = progress_from_verbose(verbose)
        progress_callbacks(progress)  # check it now, before any work
        if not (isinstance(validation_split, (int, float)) and 0.0 <= validation_split < 1.0):
            raise ValueError(f"fit: validation_split must be in [0, 1), got {validation_split!r}")
        if validation_split and validation_data is not None:
            raise ValueError("fit: give validation_data or validation_split, not both")
        step_fn = train_step
        if step_fn is None and type(self).train_step is not TrainerFitting.train_step:
            step_fn = self.train_step  # a subclass's own step
        if step_fn is not None and not callable(step_fn):
            raise TypeError(
                f"fit: train_step must be a function step(batch) -> dict, got {step_fn!r}"
            )
        if step_fn is None and self.loss is None:
            raise TypeError(
                "fit: give a loss (loss=golgi.CrossEntropy, 'mse'...), or a train_step that "
                "trains the model its own way"
            )
        if step_fn is None and self.solver is None:
            raise TypeError(
                "fit: give a solver: a name ('adam', 'rmsprop', 'sgd') or a solver object "
                "(gc.NewAdamSolver(gc.WithLearnRate(0.01)))"
            )
        if y is None and step_fn is None:
            raise TypeError("fit: give the targets y (or a train_step that needs none)")
        dist = check_distributed(distributed) or self.distributed
        if dist is not None and step_fn is not None:
            raise TypeError(
                "fit: distributed training runs the default step; a custom train_step trains "
                "its own way: sum its gradients with graphcore.AllreduceGrads in it, and call "
                "fit without distributed"
            )
        if seed is None:  # with several ranks, rank 0's is used
            seed = int(np.random.SeedSequence().entropy % (2**63))  # type: ignore[operator]
        args = (
            step_fn, x, y, epochs, bs, vbs, validation_data, validation_split, callbacks,
            seed, shuffle, progress, initial_epoch, check_data, drop_last, sample_weight,
            class_weight, loss_weights,
        )
        with one_fit_at_a_time(self.model):
            if dist is None:
                return self._fit(*args)
            with dist.fit_session(self) as session:
                return self._fit(*args, session)

    def _fit(
        self,
        step_fn: TrainStep | None,
        x: Any,
        y: Any,
        epochs: int,
        bs: int,
        vbs: int,
        validation_data: Any,
        validation_split: float,
        callbacks: Iterable[Callback],
        seed: int,
        shuffle: bool,
        progress: bool | str,
        initial_epoch: int,
        check_data: bool,
        drop_last: bool,
        sample_weight: Any,
        class_weight: Any,
        loss_weights: Any,
        session: Any = None,
    ) -> History:
        if step_fn is not None:
            return fit_custom(
                self, step_fn, x, y, epochs, bs, vbs, validation_data, validation_split,
                callbacks, seed, shuffle, progress, initial_epoch, check_data, drop_last,
            )
        ends = self._ensure_io(x, seed)
        X = data_arrays("fit: x", x, ends.inputs, ends.input_names, ends.input_form, check_data)
        tg = self._ensure_losses(raw_targets(y, self.ends))
        Y = target_arrays("fit: y", self.ends, self.graph, y, check_data)
        n = len(X[0])
        for what, a in [*zip(ends.input_names, X), *(("y", t) for t in Y)]:
            if len(a) != n:
                raise ValueError(f"fit: x has {n} samples but {what} has {len(a)}")
        if n == 0:
            raise ValueError("fit: no training samples (x is empty)")
        W = sample_weights(
            n, sample_weight, class_weight, Y[0] if len(Y) == 1 else None, ends.outputs[0].dtype.np
        )
        if class_weight is not None and len(Y) > 1:
            raise ValueError("fit: class_weight is for one output; use sample_weight")
        val = None
        if validation_split:
            n_val = int(round(n * validation_split))
            if n_val == 0 or n_val == n:
                raise ValueError(
                    f"fit: validation_split={validation_split} of {n} samples leaves "
                    f"{n - n_val} to train on and {n_val} to validate on; both need some"
                )
            cut = n - n_val
            val = ([a[cut:] for a in X], [a[cut:] for a in Y])
            X, Y = [a[:cut] for a in X], [a[:cut] for a in Y]
            W = None if W is None else W[:cut]
            n = cut
        elif validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise TypeError("fit: validation_data must be a pair (x_val, y_val)")
            xv = data_arrays("fit: validation x", validation_data[0], ends.inputs,
                            ends.input_names, ends.input_form, check_data)
            yv = target_arrays(
                "fit: validation y", self.ends, self.graph, validation_data[1], check_data
            )
            if any(len(a) != len(xv[0]) for a in (*xv, *yv)) or len(xv[0]) == 0:
                raise ValueError(
                    f"fit: validation x and y must hold the same, non-zero number of samples "
                    f"(got {len(xv[0])} and {len(yv[0])})"
                )
            val = (xv, yv)
        if drop_last and n < bs:
            raise ValueError(
                f"fit: drop_last=True with {n} samples and batch_size={bs} leaves no batch; "
                f"use a smaller batch_size"
            )
        problem = batchnorm_batch_problem([tg.cost], n, bs, drop_last)
        if problem is not None:
            raise ValueError(f"fit: {problem}")
        lw = tg.loss_weight_values(loss_weights)
        mt = self._ensure_machine(W is not None)
        mt.claim_grads()
        for node, v in zip(tg.loss_weight_nodes, lw):
            gc.Let(node, np.asarray(v, node.dtype.np))
        plan = Plan(n=n - n % bs if drop_last else n, batch_size=bs, seed=seed, shuffle=shuffle,
                    total=n)
        plan.feeds = [*zip(ends.inputs, X), *zip(tg.targets, Y)]
        if W is not None:
            assert mt.weight is not None
            plan.feeds.append((mt.weight, W))
        assert self.solver is not None  # checked above: fit without a train_step needs one
        plan.vm, plan.step, plan.vgs, plan.cost = mt.vm, self.solver.step, mt.vgs, mt.cost
        multi = len(tg.trained) > 1
        if multi:
            plan.parts = [(f"{ends.output_names[i]}_loss", node)
                          for i, node in zip(tg.trained, mt.loss_nodes)]
        for name, fn, i in self._metric_list():
            j = tg.trained.index(i) if i in tg.trained else None
            if j is None:
                raise ValueError(
                    f"fit: metric {name!r} is for output {ends.output_names[i]!r}, which has "
                    f"no loss and so no targets"
                )
            out = ends.outputs[i]
            if getattr(fn, "per_epoch", False):
                buf = np.empty((plan.n, *out.shape[1:]), out.dtype.np)
                plan.epoch_metrics.append((name, fn, out, Y[j], buf))
            else:
                plan.metrics.append((name, fn, out, tg.targets[j], Y[j]))
        names = ["loss", *(name for name, _ in plan.parts), *(m[0] for m in self._metric_list())]
        names += [f"val_{k}" for k in names] if val is not None else []
        params = {
            "epochs": epochs,
            "steps": -(-plan.n // bs),
            "batch_size": bs,
            "samples": plan.n,
            "metrics": names,
        }
        split = None
        if session is not None:  # every rank got here, with the same data, or all raise
            session.start(plan, mt.learnables, {
                "samples": n, **params, "initial_epoch": initial_epoch, "shuffle": bool(shuffle),
                "validation": None if val is None else len(val[0][0]),
                "weighted": W is not None, "loss_weights": lw, "solver": repr(self.solver),
                "solver_steps": getattr(self.solver, "num_steps", None),
            })
            callbacks = session.callbacks(callbacks)
            progress = progress if session.is_root else False
            split = session.dp

        def run_epoch(epoch: int, cbs: CallbackList, sigint: Any) -> dict[str, float]:
            if session is None:
                logs = train_epoch(plan, epoch, cbs, sigint, self)
            else:
                logs = session.train_epoch(plan, epoch, cbs, sigint)
            if val is not None and not sigint.requested:
                ev = eval_arrays(self, val[0], val[1], vbs, split=split)
                logs.update({f"val_{k}": v for k, v in ev.items()})
            return logs

        return run_epochs(self, run_epoch, epochs, initial_epoch, callbacks, progress, params,
                          self.learnables, session)

    def _metric_list(self) -> list[tuple[str, MetricFn, int]]:
        """(log name, metric, output index) for every metric of every output."""
        ends = self.ends
        assert ends is not None
        several = len(ends.outputs) > 1
        trained = self.graph.trained if self.graph is not None else range(len(ends.outputs))
        out = []
        for i, oname in enumerate(ends.output_names):
            # metrics for every output: those with targets; metrics named for an output: all
            # (fit refuses one for an output without targets)
            mine = dict(self.metrics) if i in trained else {}
            mine.update(self.output_metrics.get(oname, {}))
            for name, fn in mine.items():
                out.append((f"{oname}_{name}" if several else name, fn, i))
        return out

    def train_step(self, batch: Batch) -> dict[str, float]:
        """The default training step on one batch, for custom steps to build on: feed
        ``batch.x`` and ``batch.y``, run the training machine, step the solver; return
        ``{"loss": ...}``. (``fit`` itself runs an equivalent loop that allocates nothing.)

        A subclass of ``Trainer`` may override it: ``fit`` then calls the override for every
        batch (as Keras's ``Model.train_step``).

        Example:
            >>> import numpy as np, graphcore as gc, golgi as G
            >>> class Logged(G.Trainer):
            ...     def train_step(self, batch):
            ...         logs = super().train_step(batch)
            ...         logs["lr"] = self.solver.learn_rate
            ...         return logs
            >>> net = G.ComposeSeq(G.L(G.ConsFC(G.WithShape(1))))
            >>> t = Logged(net, "mse", "sgd")
            >>> h = t.fit(np.ones((8, 2)), np.ones((8, 1)), epochs=2, batch_size=4,
            ...           seed=0, progress=False)
            >>> h.keys(), h["lr"]
            (['loss', 'lr'], [0.01, 0.01])
        """
        ends, tg = self.ends, self.graph
        if ends is None or tg is None or self.solver is None:
            raise TypeError("Trainer.train_step needs a model, a loss and a solver given to fit")
        mt = self._ensure_machine(False)
        X = data_arrays("train_step: x", batch.x, ends.inputs, ends.input_names, ends.input_form,
                       False)
        Y = target_arrays("train_step: y", self.ends, self.graph, batch.y, False)
        for node, a in [*zip(ends.inputs, X), *zip(tg.targets, Y)]:
            gc.Let(node, a)
        mt.vm.run_all()
        loss = float(mt.cost.value)
        self.solver.step(mt.vgs)
        return {"loss": loss}


def takes_fit_options(fn: F) -> F:
    """Give ``fn``, which forwards its ``**options`` to :meth:`Trainer.fit`, the signature with
    those keyword parameters in their place: ``help()``, ``inspect.signature`` and the docs
    show the real parameters, written once (on ``Trainer.fit``).

    Example:
        >>> import inspect, golgi as G
        >>> @takes_fit_options
        ... def train(model, x, y, **options):
        ...     return G.Trainer(model, "mse", None).fit(x, y, **options)
        >>> list(inspect.signature(train).parameters)[:5]
        ['model', 'x', 'y', 'epochs', 'batch_size']
    """
    own = inspect.signature(fn)
    forwarded = [
        p
        for p in inspect.signature(TrainerFitting.fit).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    kept = [p for p in own.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    if kept and kept[-1].kind is not inspect.Parameter.KEYWORD_ONLY:
        forwarded = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in forwarded]
    fn.__signature__ = own.replace(parameters=[*kept, *forwarded])  # type: ignore[attr-defined]
    return fn


#: the keyword options of ``Trainer.fit`` (what ``golgi.fit`` passes on)
FIT_OPTIONS = frozenset(
    name
    for name, p in inspect.signature(TrainerFitting.fit).parameters.items()
    if p.kind is inspect.Parameter.KEYWORD_ONLY
)
