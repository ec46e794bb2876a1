"""Callbacks: the ``Callback`` protocol and ``CallbackList``, the one way the loop calls them.

Every training feature beyond the loop itself (history, checkpoints, early stopping, learn
rate schedules, progress output) is a callback. The loop calls the hooks only through a
:class:`CallbackList`, which decides from what each callback declares (``wants_batch_end``,
``reads_node_values``) what to call per batch; state travels in ``logs`` and on the trainer.

Example:
    >>> class Count(Callback):
    ...     def __init__(self): self.epochs = 0
    ...     def on_epoch_end(self, epoch, logs): self.epochs += 1
    >>> cbs = CallbackList([Count()], trainer=None, params={"epochs": 2})
    >>> cbs.on_epoch_end(0, {}); cbs.callbacks[0].epochs, cbs.wants_batch_end
    (1, False)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:  # annotations only: the trainer imports this module
    from .trainer import Trainer

__all__ = ["Callback", "CallbackList", "monitor_better", "require_logged"]

BatchHook = Callable[[int, dict[str, float]], None]


class Callback:
    """Base class of callbacks; override the hooks you need.

    While training, ``self.trainer`` is the :class:`Trainer` (``trainer.model``,
    ``trainer.solver``, ``trainer.stop_training = True`` stops after the current batch) and
    ``self.params`` holds ``epochs``, ``steps`` (batches per epoch), ``batch_size``,
    ``samples`` and ``metrics`` (the names the epoch logs will have).
    ``on_batch_end`` gets running means over the epoch so far (``loss``, metrics) and
    ``size`` (this batch's size); keep it cheap. ``predict`` and ``evaluate`` are safe in any
    hook (they run their own machine on a copy of the graph); a machine of your own on the
    model's graph is not, during training (it would repoint the nodes' values).

    The hooks do nothing unless overridden; ``fit`` calls them in this order (8 samples,
    batches of 5, one epoch):

    Example:
        >>> import numpy as np, graphcore as gc, golgi as G
        >>> class Recorder(Callback):
        ...     def __init__(self):
        ...         self.calls = []
        ...     def on_train_begin(self, logs):
        ...         self.calls.append(f"train_begin steps={self.params['steps']}")
        ...     def on_epoch_begin(self, epoch, logs):
        ...         self.calls.append(f"epoch_begin {epoch}")
        ...     def on_batch_end(self, batch, logs):
        ...         self.calls.append(f"batch_end {batch} size={logs['size']}")
        ...     def on_epoch_end(self, epoch, logs):
        ...         self.calls.append(f"epoch_end {epoch} {sorted(logs)}")
        ...     def on_train_end(self, logs):
        ...         self.calls.append(f"train_end {logs}")
        >>> g = gc.NewGraph()
        >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
        >>> net = G.ComposeSeq(x, G.L(G.ConsFC(G.WithShape(1))))
        >>> rec = Recorder()
        >>> h = G.fit(net, np.ones((8, 2)), np.ones((8, 1)), loss=G.MSE,
        ...           solver=gc.NewVanillaSolver(), batch_size=5, callbacks=[rec], progress=False)
        >>> for call in rec.calls:
        ...     print(call)
        train_begin steps=2
        epoch_begin 0
        batch_end 0 size=5
        batch_end 1 size=3
        epoch_end 0 ['loss']
        train_end {'interrupted': False}
    """

    trainer: Trainer | None = None
    params: dict[str, Any] = {}
    #: Whether ``on_batch_end`` may look at the model's graph (node values, weights) rather
    #: than only at ``logs``. True, the safe default, makes the loop point the graph's values
    #: back at the training machine's results after the batch's callbacks (one cheap call per
    #: batch); callbacks that read only ``logs`` (the progress bar) set it False.
    reads_node_values: ClassVar[bool] = True
    #: When the loss or the weights stop being finite, ``fit`` puts back the last finite
    #: epoch and raises ``NonFiniteLossError``; a callback that sets this (``TerminateOnNaN``)
    #: makes it return the history instead, as a normal end of training.
    stops_on_nonfinite: ClassVar[bool] = False
    #: In a distributed fit (``golgi.MPIDataParallel``), whether every rank runs this callback
    #: (with the logs of the whole batch, so every rank decides alike) or rank 0 alone: False
    #: for callbacks that print or write files (progress, ``ModelCheckpoint``, ``CSVLogger``).
    on_every_rank: ClassVar[bool] = True

    @property
    def wants_batch_end(self) -> bool:
        """Whether the loop should call ``on_batch_end``: True when the class overrides it.

        The loop builds the per-batch logs only when some callback wants them, so callbacks
        with epoch hooks only cost nothing per batch. Override it to decide otherwise.

        Example:
            >>> class Epochs(Callback):
            ...     def on_epoch_end(self, epoch, logs): pass
            >>> class Batches(Callback):
            ...     def on_batch_end(self, batch, logs): pass
            >>> Epochs().wants_batch_end, Batches().wants_batch_end
            (False, True)
        """
        return type(self).on_batch_end is not Callback.on_batch_end

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        """Before the first epoch; ``self.trainer`` and ``self.params`` are set by then.

        Override it to check ``self.params`` (fail before any training) or to reset state
        kept from an earlier ``fit``. Called once per ``fit``; the example on
        :class:`Callback` shows the order of all hooks.

        Example:
            >>> import numpy as np, graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
            >>> net = G.ComposeSeq(x, G.L(G.ConsFC(G.WithShape(1))))
            >>> X, Y = np.ones((8, 2)), np.ones((8, 1))
            >>> class NeedsValidation(Callback):
            ...     def on_train_begin(self, logs):
            ...         if "val_loss" not in self.params["metrics"]:
            ...             raise ValueError("pass validation_data to fit")
            >>> G.fit(net, X, Y, loss=G.MSE, solver=gc.NewVanillaSolver(),
            ...       callbacks=[NeedsValidation()], progress=False)
            Traceback (most recent call last):
            ...
            ValueError: pass validation_data to fit
        """

    def on_train_end(self, logs: dict[str, Any]) -> None:
        """After the last epoch, an early stop or Ctrl-C (``logs["interrupted"]`` says which).

        Override it to clean up or to finish (``EarlyStopping`` restores the best weights
        here). Not called when training fails with an exception: ``on_train_error`` is.

        Example:
            >>> import numpy as np, graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
            >>> net = G.ComposeSeq(x, G.L(G.ConsFC(G.WithShape(1))))
            >>> X, Y = np.ones((8, 2)), np.ones((8, 1))
            >>> class Done(Callback):
            ...     def on_train_end(self, logs):
            ...         print("done; interrupted:", logs["interrupted"])
            >>> h = G.fit(net, X, Y, loss=G.MSE, solver=gc.NewVanillaSolver(), epochs=2,
            ...           callbacks=[Done()], progress=False)
            done; interrupted: False
        """

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any]) -> None:
        """Before epoch ``epoch`` (0-based), before its shuffle.

        Override it to change settings per epoch, e.g. the solver's learn rate
        (``self.trainer.solver``), as ``LearningRateScheduler`` does.

        Example:
            >>> import numpy as np, graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
            >>> net = G.ComposeSeq(x, G.L(G.ConsFC(G.WithShape(1))))
            >>> X, Y = np.ones((8, 2)), np.ones((8, 1))
            >>> class Decay(Callback):
            ...     def on_epoch_begin(self, epoch, logs):
            ...         self.trainer.solver.learn_rate = 0.1 / (epoch + 1)
            >>> solver = gc.NewVanillaSolver()
            >>> h = G.fit(net, X, Y, loss=G.MSE, solver=solver, epochs=2,
            ...           callbacks=[Decay()], progress=False)
            >>> solver.learn_rate
            0.05
        """

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        """After an epoch and its validation; ``logs`` may be extended (kept in the history).

        ``logs`` holds the epoch's mean ``loss``, metrics and ``val_...`` values. Override it
        to log, save or stop (``self.trainer.stop_training = True``).

        Example:
            >>> import numpy as np, graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
            >>> net = G.ComposeSeq(x, G.L(G.ConsFC(G.WithShape(1))))
            >>> X, Y = np.ones((8, 2)), np.ones((8, 1))
            >>> class WeightNorm(Callback):
            ...     def on_epoch_end(self, epoch, logs):
            ...         logs["w_norm"] = float(np.linalg.norm(self.trainer.model.model()[0].value))
            >>> h = G.fit(net, X, Y, loss=G.MSE, solver=gc.NewVanillaSolver(), epochs=2,
            ...           callbacks=[WeightNorm()], progress=False)
            >>> h.keys(), len(h["w_norm"])
            (['loss', 'w_norm'], 2)
        """

    def on_batch_end(self, batch: int, logs: dict[str, float]) -> None:
        """After each batch (solver step included); ``batch`` counts from 0 in each epoch.

        ``logs`` holds running means over the epoch so far and ``size`` (this batch's size).
        Override it for per-batch progress; keep it cheap (``predict`` is safe, but costs a
        forward pass per call).

        Example:
            >>> import numpy as np, graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
            >>> net = G.ComposeSeq(x, G.L(G.ConsFC(G.WithShape(1))))
            >>> X, Y = np.ones((8, 2)), np.ones((8, 1))
            >>> class Sizes(Callback):
            ...     def __init__(self):
            ...         self.sizes = []
            ...     def on_batch_end(self, batch, logs):
            ...         self.sizes.append(logs["size"])
            >>> cb = Sizes()
            >>> h = G.fit(net, X, Y, loss=G.MSE, solver=gc.NewVanillaSolver(), batch_size=3,
            ...           callbacks=[cb], progress=False)
            >>> cb.sizes
            [3, 3, 2]
        """

    def on_train_error(self, error: BaseException) -> None:
        """When training stops on an exception (not Ctrl-C), before it propagates.

        Override it to release what the callback holds open (``ProgressBar`` closes its
        bar); ``on_train_end`` is not called then. It must not raise.

        Example:
            >>> import numpy as np, graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
            >>> net = G.ComposeSeq(x, G.L(G.ConsFC(G.WithShape(1))))
            >>> X, Y = np.ones((8, 2)), np.ones((8, 1))
            >>> class Fails(Callback):
            ...     def on_epoch_end(self, epoch, logs):
            ...         raise RuntimeError("disk full")
            >>> class Cleanup(Callback):
            ...     def on_train_error(self, error):
            ...         self.error = error
            >>> cleanup = Cleanup()
            >>> try:
            ...     G.fit(net, X, Y, loss=G.MSE, solver=gc.NewVanillaSolver(),
            ...           callbacks=[Fails(), cleanup], progress=False)
            ... except RuntimeError:
            ...     pass
            >>> cleanup.error
            RuntimeError('disk full')
        """


class CallbackList:
    """The callbacks of one ``fit``, in order: gives each the trainer and the run's
    ``params``, and forwards every hook to them.

    ``on_batch_end`` reaches only the callbacks that want it (decided once, here): the loop
    calls ``batch_end`` (None when no callback wants batch events, so no per-batch logs are
    built); ``reads_node_values`` says whether any of them looks at the graph, so the loop
    re-points its values afterwards.

    Example:
        >>> class Sizes(Callback):
        ...     reads_node_values = False
        ...     def __init__(self): self.sizes = []
        ...     def on_batch_end(self, batch, logs): self.sizes.append(logs["size"])
        >>> sizes = Sizes()
        >>> cbs = CallbackList([sizes, Callback()], trainer=None, params={"steps": 2})
        >>> cbs.wants_batch_end, cbs.reads_node_values, sizes.params
        (True, False, {'steps': 2})
        >>> cbs.batch_end(0, {"size": 5}); cbs.on_batch_end(1, {"size": 3}); sizes.sizes
        [5, 3]

        The loop calls the other hooks the same way; each reaches every callback, in order:

        >>> class Log(Callback):
        ...     def __init__(self): self.seen = []
        ...     def on_epoch_end(self, epoch, logs): self.seen.append((epoch, dict(logs)))
        ...     def on_train_error(self, error): self.seen.append(type(error).__name__)
        >>> log = Log(); cbs = CallbackList([log])
        >>> cbs.on_train_begin({}); cbs.on_epoch_begin(0, {})
        >>> cbs.on_epoch_end(0, {"loss": 0.5}); cbs.on_train_end({})
        >>> cbs.on_train_error(KeyboardInterrupt()); log.seen
        [(0, {'loss': 0.5}), 'KeyboardInterrupt']
        >>> CallbackList(["not a callback"])
        Traceback (most recent call last):
        ...
        TypeError: fit: callbacks must be golgi Callback objects, got 'not a callback'
    """

    def __init__(
        self,
        callbacks: Iterable[Callback] = (),
        *,
        trainer: Trainer | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        cbs = list(callbacks)
        for cb in cbs:
            if not isinstance(cb, Callback):
                raise TypeError(f"fit: callbacks must be golgi Callback objects, got {cb!r}")
        run = dict(params or {})
        for cb in cbs:
            cb.trainer, cb.params = trainer, run
        self.callbacks: list[Callback] = cbs
        self.params = run
        batch = tuple(cb for cb in cbs if cb.wants_batch_end)
        self._batch_hooks: tuple[BatchHook, ...] = tuple(cb.on_batch_end for cb in batch)
        self.wants_batch_end = bool(batch)
        self.reads_node_values = any(cb.reads_node_values for cb in batch)
        #: Whether a callback asks ``fit`` to return, not raise, on a non-finite loss.
        self.terminate_on_nan = any(cb.stops_on_nonfinite for cb in cbs)
        #: What the loop calls after each batch, chosen once: None when no callback wants
        #: batch events, the hook itself when one does (the usual progress bar: no dispatch
        #: cost per batch), else :meth:`on_batch_end`.
        self.batch_end: BatchHook | None = (
            None if not batch else self._batch_hooks[0] if len(batch) == 1 else self.on_batch_end
        )

    def __iter__(self) -> Iterator[Callback]:
        return iter(self.callbacks)

    def __len__(self) -> int:
        return len(self.callbacks)

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        """Every callback's ``on_train_begin``, in order."""
        for cb in self.callbacks:
            cb.on_train_begin(logs)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any]) -> None:
        """Every callback's ``on_epoch_begin``, in order."""
        for cb in self.callbacks:
            cb.on_epoch_begin(epoch, logs)

    def on_batch_end(self, batch: int, logs: dict[str, float]) -> None:
        """``on_batch_end`` of the callbacks that want it, in order."""
        for hook in self._batch_hooks:
            hook(batch, logs)

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        """Every callback's ``on_epoch_end``, in order (each sees what earlier ones logged)."""
        for cb in self.callbacks:
            cb.on_epoch_end(epoch, logs)

    def on_train_end(self, logs: dict[str, Any]) -> None:
        """Every callback's ``on_train_end``, in order."""
        for cb in self.callbacks:
            cb.on_train_end(logs)

    def on_train_error(self, error: BaseException) -> None:
        """Every callback's ``on_train_error``, in order."""
        for cb in self.callbacks:
            cb.on_train_error(error)


# ----- monitored quantities (checkpoints, early stopping) -----------------------------------


def monitor_better(mode: str, monitor: str) -> Callable[[float, float], bool]:
    """``better(new, best)`` for ``mode`` "min", "max" or "auto" (max for accuracies and AUC).

    Example:
        >>> better = monitor_better("auto", "val_accuracy"); better(0.9, 0.8)
        True
        >>> monitor_better("auto", "val_loss")(0.9, 0.8)
        False
    """
    if mode == "auto":
        mode = "max" if ("acc" in monitor or monitor.endswith("auc")) else "min"
    if mode == "min":
        return lambda new, best: new < best
    if mode == "max":
        return lambda new, best: new > best
    raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")


def require_logged(who: str, monitor: str, params: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` naming ``who`` unless the run logs ``monitor`` (``params["metrics"]``).

    Example:
        >>> require_logged("EarlyStopping", "val_loss", {"metrics": ["loss"]})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: EarlyStopping: monitor='val_loss' is not logged by this fit ...
    """
    names = params.get("metrics", [])
    if names is None:  # a custom train step: its names are known once it has run
        return
    if monitor not in names:
        hint = "; pass validation_data to fit" if monitor.startswith("val_") else ""
        raise ValueError(
            f"{who}: monitor={monitor!r} is not logged by this fit (it logs "
            f"{', '.join(names)}){hint}"
        )

