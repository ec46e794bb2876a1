"""Training loop: ``fit``, ``predict``, ``Trainer``, ``History`` and callbacks, Keras style.

``fit`` builds one training graph for the model (a free batch dimension, so the last partial
batch is trained, not dropped), one compiled tape machine for training and one in eval mode
for validation and prediction, then loops: shuffle (seeded), gather each batch into the input
buffers, run, step the solver. Ctrl-C stops after the current batch and returns the history.

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

import math
import signal
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

import graphcore as gc

from .metrics import Accuracy

__all__ = [
    "History",
    "Callback",
    "ModelCheckpoint",
    "EarlyStopping",
    "LearningRateScheduler",
    "ProgressBar",
    "EpochLogger",
    "Trainer",
    "fit",
    "predict",
]

LossFn = Callable[[gc.Node, gc.Node], gc.Node]
MetricFn = Callable[[np.ndarray, np.ndarray], float]


# ----- History ------------------------------------------------------------------------------------


class History:
    """What ``fit`` returns: per-epoch logs as a dict of lists, Keras style.

    ``history["loss"]``, ``history["val_accuracy"]``... (``history.history`` is the dict);
    ``epoch`` (0-based epoch numbers), ``times`` (seconds per epoch, validation included),
    ``interrupted`` (Ctrl-C), ``stopped_early`` (a callback set ``trainer.stop_training``).

    Example:
        >>> h = History(); h.record(0, {"loss": 0.5}, 1.0); h.record(1, {"loss": 0.25}, 1.0)
        >>> h["loss"], len(h)
        ([0.5, 0.25], 2)
    """

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []
        self.times: list[float] = []
        self.interrupted = False
        self.stopped_early = False
        self.trainer: Trainer | None = None

    def record(self, epoch: int, logs: Mapping[str, float], seconds: float) -> None:
        """Append one epoch's logs (keys missing on either side are padded with NaN).

        ``fit`` calls it after each epoch's ``on_epoch_end`` callbacks.

        Example:
            >>> h = History(); h.record(0, {"loss": 1.0}, 0.5); h.record(3, {"lr": 0.1}, 0.25)
            >>> h["loss"], h["lr"], h.epoch, h.times
            ([1.0, nan], [nan, 0.1], [0, 3], [0.5, 0.25])
        """
        n = len(self.epoch)
        for k, v in logs.items():
            self.history.setdefault(k, [math.nan] * n).append(float(v))
        for vs in self.history.values():
            if len(vs) == n:
                vs.append(math.nan)
        self.epoch.append(epoch)
        self.times.append(seconds)

    def __getitem__(self, key: str) -> list[float]:
        try:
            return self.history[key]
        except KeyError:
            raise KeyError(
                f"History has no {key!r}; it has {', '.join(self.history) or 'nothing yet'}"
            ) from None

    def __contains__(self, key: object) -> bool:
        return key in self.history

    def __len__(self) -> int:
        return len(self.epoch)

    def keys(self) -> list[str]:
        """The logged names (``loss``, metrics, ``val_...``, ``lr``).

        Example:
            >>> History().keys()
            []
        """
        return list(self.history)

    def plot(self, keys: Sequence[str] | None = None) -> Any:
        """Plot each quantity per epoch (training and validation together); needs matplotlib.

        Returns the matplotlib ``Figure`` (a notebook shows it; a script can ``savefig``).

        Example:
            >>> h = History(); h.record(0, {"loss": 1.0, "val_loss": 1.2}, 0.1)
            >>> h.plot().axes[0].get_title()  # doctest: +SKIP
            'loss'
        """
        try:
            import matplotlib.pyplot as plt
        except ImportError:
            raise ImportError(
                "History.plot needs matplotlib, an optional extra: pip install 'golgi-dl[plot]'"
            ) from None
        if keys is None:
            keys = [k for k in self.history if not k.startswith("val_")] or list(self.history)
        if not keys:
            raise ValueError("History.plot: nothing recorded yet; train for an epoch first")
        fig, axes = plt.subplots(1, len(keys), figsize=(4.5 * len(keys), 3.2), squeeze=False)
        epochs = [e + 1 for e in self.epoch]
        for ax, k in zip(axes[0], keys, strict=True):
            ax.plot(epochs, self[k], marker=".", label="training")
            if f"val_{k}" in self.history:
                ax.plot(epochs, self.history[f"val_{k}"], marker=".", label="validation")
                ax.legend()
            ax.set_title(k)
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
        fig.tight_layout()
        return fig

    def __repr__(self) -> str:
        last = ", ".join(f"{k}={v[-1]:.4g}" for k, v in self.history.items() if v)
        flags = " interrupted" if self.interrupted else ""
        return f"History({len(self)} epochs{': ' + last if last else ''}{flags})"


# ----- callbacks ----------------------------------------------------------------------------------


class Callback:
    """Base class of callbacks; override the hooks you need.

    While training, ``self.trainer`` is the :class:`Trainer` (``trainer.model``,
    ``trainer.solver``, ``trainer.stop_training = True`` stops after the current batch) and
    ``self.params`` holds ``epochs``, ``steps`` (batches per epoch), ``batch_size``,
    ``samples`` and ``metrics`` (the names the epoch logs will have).
    ``on_batch_end`` gets running means over the epoch so far (``loss``, metrics) and
    ``size`` (this batch's size); it must not run machines on the model (no ``predict``).

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
        here). Not called when training fails with an exception.

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
        Override it for per-batch progress; keep it cheap and run no machine on the model.

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


def _better(mode: str, monitor: str) -> Callable[[float, float], bool]:
    if mode == "auto":
        mode = "max" if ("acc" in monitor or monitor.endswith("auc")) else "min"
    if mode == "min":
        return lambda new, best: new < best
    if mode == "max":
        return lambda new, best: new > best
    raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")


def _need_monitor(who: str, monitor: str, params: Mapping[str, Any]) -> None:
    names = params.get("metrics", [])
    if monitor not in names:
        hint = "; pass validation_data to fit" if monitor.startswith("val_") else ""
        raise ValueError(
            f"{who}: monitor={monitor!r} is not logged by this fit (it logs "
            f"{', '.join(names)}){hint}"
        )


class ModelCheckpoint(Callback):
    """Save the model (and the solver's state) with ``golgi.save`` after each epoch.

    ``path`` may hold ``{epoch}`` and log names (``"ckpt-{epoch:02d}-{val_loss:.3f}.npz"``).
    ``save_best_only``: save only when ``monitor`` improves (``mode`` "min", "max" or "auto":
    max for accuracies). The write is atomic, so Ctrl-C never leaves a broken file; the file's
    ``extra`` holds ``epoch`` (epochs completed, for ``fit(initial_epoch=...)``) and the logs.

    Example:
        >>> cb = ModelCheckpoint("best.npz", monitor="val_accuracy", save_best_only=True)
        >>> cb.best is None
        True
    """

    def __init__(
        self,
        path: str,
        monitor: str = "val_loss",
        save_best_only: bool = False,
        mode: str = "auto",
        verbose: bool = False,
    ) -> None:
        self.path = str(path)
        self.monitor = monitor
        self.save_best_only = save_best_only
        self._better = _better(mode, monitor)
        self.verbose = verbose
        self.best: float | None = None
        self.last_saved: str | None = None

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        """With ``save_best_only``, check that ``monitor`` is logged."""
        if self.save_best_only:
            _need_monitor("ModelCheckpoint", self.monitor, self.params)

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        """Save (if ``monitor`` improved, with ``save_best_only``) to ``path``."""
        value = logs.get(self.monitor)
        if self.save_best_only:
            if value is None or math.isnan(value):
                return
            if self.best is not None and not self._better(value, self.best):
                return
            self.best = value
        from .io import save

        assert self.trainer is not None
        path = self.path.format(epoch=epoch + 1, **logs) if "{" in self.path else self.path
        extra = {"epoch": epoch + 1, "logs": dict(logs), "monitor": self.monitor}
        save(self.trainer.model, path, solver=self.trainer.solver, extra=extra)
        self.last_saved = path
        if self.verbose:
            print(f"epoch {epoch + 1}: saved {path}")


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    ``restore_best=True`` puts back the weights (and layer state) of the best epoch when
    training ends. ``stopped_epoch`` is the epoch it stopped after (or None).

    Example:
        >>> es = EarlyStopping("val_loss", patience=3)
        >>> es.patience, es.stopped_epoch
        (3, None)
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 0,
        min_delta: float = 0.0,
        mode: str = "auto",
        restore_best: bool = False,
        verbose: bool = False,
    ) -> None:
        if patience < 0:
            raise ValueError(f"EarlyStopping: patience must be >= 0, got {patience}")
        self.monitor = monitor
        self.patience = int(patience)
        self.min_delta = abs(float(min_delta))
        better = _better(mode, monitor)
        sign = -1.0 if better(0.0, 1.0) else 1.0  # min mode: improve means drop by min_delta
        self._improved = lambda new, best: better(new, best + sign * self.min_delta)
        self.restore_best = restore_best
        self.verbose = verbose
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.stopped_epoch: int | None = None
        self.wait = 0
        self._saved: tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None = None

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        """Check that ``monitor`` is logged; reset the best value and the wait."""
        _need_monitor("EarlyStopping", self.monitor, self.params)
        self.best, self.best_epoch, self.stopped_epoch, self.wait = None, None, None, 0
        self._saved = None

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        """Track the best value; stop after ``patience`` epochs without improvement."""
        value = logs.get(self.monitor)
        if value is None or math.isnan(value):
            return
        if self.best is None or self._improved(value, self.best):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best:
                self._snapshot()
            return
        self.wait += 1
        if self.wait >= max(self.patience, 1):
            assert self.trainer is not None
            self.stopped_epoch = epoch
            self.trainer.stop_training = True
            if self.verbose:
                print(
                    f"epoch {epoch + 1}: early stop ({self.monitor} best at epoch "
                    f"{(self.best_epoch or 0) + 1}: {self.best:.4g})"
                )

    def _snapshot(self) -> None:
        assert self.trainer is not None
        model = self.trainer.model
        params = {k: n.value.copy() for k, n in model.named_learnables().items()}
        state = {k: np.array(v, copy=True) for k, v in model.state().items()}
        self._saved = (params, state)

    def on_train_end(self, logs: dict[str, Any]) -> None:
        """With ``restore_best``, put back the best epoch's weights and state."""
        if self.restore_best and self._saved is not None:
            assert self.trainer is not None
            model = self.trainer.model
            params, state = self._saved
            for k, n in model.named_learnables().items():
                gc.Let(n, params[k])  # copies into the buffer the machines read
            if state:
                model.load_state(state)


class LearningRateScheduler(Callback):
    """Set ``solver.learn_rate = schedule(epoch, learn_rate)`` before each epoch; logs ``lr``.

    Example:
        >>> halve = LearningRateScheduler(lambda epoch, lr: lr * 0.5 if epoch >= 10 else lr)
        >>> halve.schedule(10, 0.01)
        0.005
    """

    def __init__(self, schedule: Callable[[int, float], float], verbose: bool = False) -> None:
        if not callable(schedule):
            raise TypeError(
                f"LearningRateScheduler takes a function (epoch, lr) -> lr, got {schedule!r}"
            )
        self.schedule = schedule
        self.verbose = verbose

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any]) -> None:
        """Set the solver's learn rate from the schedule."""
        assert self.trainer is not None
        solver = self.trainer.solver
        if not hasattr(solver, "learn_rate"):
            raise TypeError(f"LearningRateScheduler: {type(solver).__name__} has no learn_rate")
        lr = self.schedule(epoch, float(solver.learn_rate))
        try:
            solver.learn_rate = float(lr)
        except (TypeError, ValueError) as e:
            raise ValueError(
                f"LearningRateScheduler: the schedule gave {lr!r} for epoch {epoch}: {e}"
            ) from None
        if self.verbose:
            print(f"epoch {epoch + 1}: learn rate {solver.learn_rate:.4g}")

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        """Log the learn rate as ``lr``."""
        assert self.trainer is not None
        logs["lr"] = float(self.trainer.solver.learn_rate)


def _fmt_logs(logs: Mapping[str, float]) -> str:
    return " - ".join(f"{k}: {v:.4f}" if k != "lr" else f"lr: {v:.3g}" for k, v in logs.items())


class ProgressBar(Callback):
    """A progress bar per epoch (``tqdm.auto``: terminal or notebook), with running loss and
    metrics, redrawn every ``every`` batches (default: about 50 updates per epoch). The bar
    goes away at the end of the epoch unless ``leave=True`` (pair it with :class:`EpochLogger`).

    Example:
        >>> ProgressBar(every=10).every  # doctest: +SKIP
        10
    """

    light = True  # runs no machine in on_batch_end

    def __init__(self, every: int | None = None, leave: bool = False) -> None:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            raise ImportError(
                "ProgressBar needs tqdm, an optional extra: pip install 'golgi-dl[progress]'"
            ) from None
        self._tqdm = tqdm
        self.every = every
        self.leave = leave
        self._bar: Any = None
        self._count = 0
        self._step = 1

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any]) -> None:
        """Open the epoch's bar."""
        steps = int(self.params.get("steps", 0))
        self._step = self.every or max(1, steps // 50)
        self._count = 0
        self._bar = self._tqdm(
            total=steps,
            desc=f"epoch {epoch + 1}/{self.params.get('epochs', '?')}",
            unit="batch",
            leave=self.leave,
            dynamic_ncols=True,
        )

    def on_batch_end(self, batch: int, logs: dict[str, float]) -> None:
        """Advance the bar; redraw the running logs every ``every`` batches."""
        self._count += 1
        if self._count >= self._step:
            bar = self._bar
            bar.set_postfix_str(
                _fmt_logs({k: v for k, v in logs.items() if k != "size"}), refresh=False
            )
            bar.update(self._count)
            self._count = 0

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        """Close the epoch's bar."""
        self._close(logs)

    def on_train_end(self, logs: dict[str, Any]) -> None:
        """Close a bar left open (an interrupted epoch)."""
        self._close(None)

    def _close(self, logs: Mapping[str, float] | None) -> None:
        if self._bar is not None:
            if self._count:
                self._bar.update(self._count)
                self._count = 0
            if logs is not None and self.leave:
                self._bar.set_postfix_str(_fmt_logs(logs), refresh=False)
            self._bar.close()
            self._bar = None


class EpochLogger(Callback):
    """Print one line per epoch: ``epoch 3/20 - 1.9s - loss: 0.0712 - accuracy: 0.9785 - ...``.

    Example:
        >>> log = EpochLogger(); log.params = {"epochs": 2}
        >>> log.on_epoch_begin(0, {}); log.on_epoch_end(0, {"loss": 0.5})  # doctest: +ELLIPSIS
        epoch 1/2 - ...s - loss: 0.5000
    """

    light = True

    def __init__(self, print_fn: Callable[[str], Any] = print) -> None:
        self.print_fn = print_fn
        self._t0 = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any]) -> None:
        """Start the epoch's clock."""
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        """Print the epoch's line."""
        dt = time.perf_counter() - self._t0
        head = f"epoch {epoch + 1}/{self.params.get('epochs', '?')} - {dt:.1f}s"
        self.print_fn(f"{head} - {_fmt_logs(logs)}" if logs else head)


def _default_progress(progress: bool | str) -> list[Callback]:
    if progress is False or progress is None:
        return []
    if progress not in (True, "bar", "epoch"):
        raise ValueError(f"progress must be True, False, 'bar' or 'epoch', got {progress!r}")
    out: list[Callback] = []
    if progress == "bar" or (progress is True and _bar_wanted()):
        out.append(ProgressBar())
    out.append(EpochLogger())
    return out


def _bar_wanted() -> bool:
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    if "ipykernel" in sys.modules:  # a notebook: tqdm.auto draws a widget
        return True
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


# ----- Ctrl-C ---------------------------------------------------------------------------------


class _StopOnInterrupt:
    """While active, the first Ctrl-C only sets ``requested``; the loop stops after the batch."""

    def __init__(self) -> None:
        self.requested = False
        self._prev: Any = None
        self._installed = False

    def _handler(self, signum: int, frame: Any) -> None:
        if self.requested:  # a second Ctrl-C: stop right now
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> _StopOnInterrupt:
        if threading.current_thread() is threading.main_thread():
            try:
                self._prev = signal.signal(signal.SIGINT, self._handler)
                self._installed = True
            except (ValueError, OSError):  # e.g. embedded interpreters
                self._installed = False
        return self

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            prev = self._prev if self._prev is not None else signal.default_int_handler
            signal.signal(signal.SIGINT, prev)
            self._installed = False


# ----- model input/output -------------------------------------------------------------------------

_free_inputs: weakref.WeakKeyDictionary[Any, gc.Node] = weakref.WeakKeyDictionary()


def _unique_name(g: gc.Graph, stem: str) -> str:
    name, i = stem, 0
    while True:
        try:
            g.by_name(name)
        except KeyError:
            return name
        i += 1
        name = f"{stem}_{i}"


def _new_input(g: gc.Graph, dtype: gc.Dtype, shape: tuple[int | None, ...], stem: str) -> gc.Node:
    return gc.NewTensor(
        g, dtype, len(shape), gc.WithShape(*shape), gc.WithName(_unique_name(g, stem))
    )


def _cached_free(key: Any, make: Callable[[], gc.Node]) -> gc.Node:
    try:
        node = _free_inputs.get(key)
    except TypeError:  # unhashable or not weakly referable: no caching
        return make()
    if node is None:
        node = _free_inputs[key] = make()
    return node


def _is_built(model: Any) -> bool:
    built = getattr(model, "built", True)
    return bool(built) and bool(model.layers)


def _model_input(
    model: Any,
    input: gc.Node | Sequence[int | None] | None,
    sample_shape: tuple[int, ...] | None,
    dtype: gc.Dtype | None,
) -> gc.Node:
    """The model's input node with a free batch dimension (made when needed)."""
    if isinstance(input, gc.Node):
        node: gc.Node | None = input
    elif input is not None and _is_built(model):
        raise TypeError(
            "input: this model is built already, so it has an input; leave input out (or "
            "pass an input node of its graph)"
        )
    else:
        node = getattr(model, "input", None) if input is None else None
    if node is not None:
        if node.shape and node.shape[0] is None:
            return node
        if not node.shape:
            raise gc.ShapeError(f"the model input {node.describe()} has no batch dimension")
        fixed = node
        return _cached_free(
            model,
            lambda: _new_input(fixed.graph, fixed.dtype, (None, *fixed.shape[1:]), fixed.name),
        )
    if _is_built(model):
        first = model.layers[0]
        return _cached_free(
            model,
            lambda: _new_input(first.graph, first.input_dtype, (None, *first.input_shape[1:]), "x"),
        )
    # an unbuilt model: a new graph, shaped from ``input`` or from the data
    if input is not None:
        shape = tuple(input)
        if shape and shape[0] is None:
            shape = shape[1:]
    elif sample_shape is not None:
        shape = tuple(sample_shape)
    else:
        raise gc.GraphError(
            "the model is not built yet (it has no input): give it one with "
            "ComposeSeq(x, ...), pass input=(None, features) or train it with fit first"
        )
    if any(d is None for d in shape):
        raise gc.ShapeError(f"input shape {shape} may leave only the batch size free")
    g = gc.NewGraph()
    return _new_input(g, dtype or gc.Float32, (None, *shape), "x")


def _output(model: Any, x: gc.Node) -> gc.Node:
    out = model.fwd(x)
    if not isinstance(out, gc.Node):
        raise TypeError(f"the model's fwd returned {type(out).__name__}, not a graph node")
    if not out.shape or out.shape[0] is not None:
        raise gc.ShapeError(
            f"the model's output {out.describe()} must keep the free batch dimension of its "
            f"input {x.describe()} (dimension 0 = None)"
        )
    return out


def _data_dtype(a: np.ndarray) -> gc.Dtype:
    return gc.Float64 if a.dtype == np.float64 else gc.Float32


def _as_data(a: Any, node: gc.Node, what: str) -> np.ndarray:
    """``a`` as a C-contiguous array of the node's dtype, checked against its shape (one copy
    at most, made once per fit, never per batch)."""
    arr = np.asarray(a)
    if arr.dtype == object:
        raise TypeError(f"{what}: cannot use an object array; give a numeric numpy array")
    want = node.shape
    if arr.ndim != len(want) or any(
        d is not None and d != s for d, s in zip(want, arr.shape, strict=True)
    ):
        sample = tuple(want[1:])
        raise gc.ShapeError(
            f"{what} has samples of shape {tuple(arr.shape[1:])} (array {arr.shape}), but "
            f"{node.name!r} takes samples of shape {sample}"
            + (
                "; reshape the data first (x.reshape(len(x), -1))"
                if arr.ndim > 1 and int(np.prod(arr.shape[1:])) == int(np.prod(sample or (1,)))
                else ""
            )
        )
    dt = node.dtype.np
    if arr.dtype != dt:
        if not np.can_cast(arr.dtype, dt, casting="same_kind") or (
            arr.dtype.kind == "f" and dt.kind in "iub"
        ):
            raise gc.DtypeError(f"{what}: cannot use {arr.dtype} data for {node.describe()}")
    return np.ascontiguousarray(arr, dtype=dt)


def _owned(node: gc.Node) -> np.ndarray | None:
    """The node's value when it is the graph's own buffer (not an array lent to it)."""
    if not node.has_value or node.is_lent:
        return None
    return node.value


def _gather(node: gc.Node, data: np.ndarray, idx: np.ndarray) -> None:
    """Copy rows ``idx`` of ``data`` into the node's input buffer (no allocation when sized)."""
    cur = _owned(node)
    if cur is not None and cur.shape[0] == idx.shape[0] and cur.flags.writeable:
        np.take(data, idx, axis=0, out=cur, mode="clip")  # "clip": unbuffered; idx is valid
    else:
        gc.Let(node, np.take(data, idx, axis=0))


def _put(node: gc.Node, rows: np.ndarray) -> None:
    cur = _owned(node)
    if cur is not None and cur.shape == rows.shape and cur.flags.writeable:
        np.copyto(cur, rows)
    else:
        gc.Let(node, rows)


def _check_batch_size(who: str, batch_size: Any) -> int:
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, (int, np.integer))
        or (batch_size < 1)
    ):
        raise ValueError(f"{who}: batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)


# ----- prediction ---------------------------------------------------------------------------------


class _Predictor:
    """An eval-mode machine on the model's output, run in batches of any size."""

    def __init__(self, x: gc.Node, out: gc.Node) -> None:
        self.x, self.out = x, out
        self.vm = gc.NewTapeMachine(x.graph.subgraph_roots(out), gc.EvalMode())

    def __call__(self, data: np.ndarray, batch_size: int) -> np.ndarray:
        x, out, vm = self.x, self.out, self.vm
        n = len(data)
        result: np.ndarray | None = None
        if n and None not in out.shape[1:]:  # the result's shape is known: fill it in place
            result = np.empty((n, *out.shape[1:]), out.dtype.np)
        for s in range(0, n, batch_size):
            rows = data[s : s + batch_size]
            # lent, not copied: a machine whose input only feeds products reads it in place
            gc.Let(x, rows, copy=False)
            if result is not None:  # the last step writes the rows straight into the result
                vm.run_all(into={out: result[s : s + len(rows)]})
                continue
            vm.run_all()
            if s == 0:  # another machine on this graph may have published its buffers since
                vm.publish()
                result = np.empty((n, *out.value.shape[1:]), out.value.dtype)
            result[s : s + len(rows)] = out.value
        if result is None:
            result = np.empty((0, *(d or 0 for d in out.shape[1:])), out.dtype.np)
        return result


_predictors: weakref.WeakKeyDictionary[Any, _Predictor] = weakref.WeakKeyDictionary()


def predict(
    model: Any,
    x: Any,
    batch_size: int = 256,
    input: gc.Node | Sequence[int | None] | None = None,
) -> np.ndarray:
    """The model's outputs for ``x`` (eval mode: no dropout, batch norm running statistics).

    Works at any batch size and for any number of samples: the model's input batch
    dimension is freed if it was fixed. Returns a new numpy array (n, ...).

    Example:
        >>> import numpy as np, graphcore as gc, golgi as G
        >>> g = gc.NewGraph()
        >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(100, 3), gc.WithName("x"))
        >>> fc = G.ComposeSeq(x, G.L(G.ConsFC(G.WithShape(2))))
        >>> G.predict(fc, np.ones((7, 3)), batch_size=3).shape
        (7, 2)
    """
    bs = _check_batch_size("predict", batch_size)
    if not _is_built(model):
        raise gc.GraphError(
            "predict: the model is not built yet (no layers have weights); give ComposeSeq its "
            "input node or train it with fit first"
        )
    try:
        pred = _predictors.get(model) if input is None else None
    except TypeError:
        pred = None
    if pred is None:
        xn = _model_input(model, input, None, None)
        pred = _Predictor(xn, _output(model, xn))
        if input is None:
            try:
                _predictors[model] = pred
            except TypeError:
                pass
    return pred(_as_data(x, pred.x, "predict: x"), bs)


# ----- the trainer --------------------------------------------------------------------------------


def _loss_fn(loss: Any) -> LossFn:
    if isinstance(loss, str):
        from . import losses

        ce, bce = losses.CrossEntropy, losses.BinaryCrossEntropy
        table = {
            "cross_entropy": ce,
            "crossentropy": ce,
            "binary_cross_entropy": bce,
            "bce": bce,
            "mse": losses.MSE,
        }
        fn = table.get(loss.lower())
        if fn is None:
            raise ValueError(f"unknown loss {loss!r}; use one of {', '.join(table)} or a function")
        return fn
    if not callable(loss):
        raise TypeError(
            f"loss must be a function (output node, target node) -> scalar node such as "
            f"golgi.CrossEntropy, got {loss!r}"
        )
    return loss


def _metric_fns(metrics: Any) -> dict[str, MetricFn]:
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
                if m.lower() not in ("accuracy", "acc"):
                    raise ValueError(f"unknown metric {m!r}; use 'accuracy' or a function")
                items.append(("accuracy", Accuracy))
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


class _TrainAccuracy:
    """``Accuracy`` of (n, classes) scores on training batches, with no per-batch allocation:
    the labels are found once per fit and gathered by the batch's indices."""

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


def _scorer(fn: MetricFn, Y: np.ndarray, out: gc.Node) -> Callable[..., float]:
    """A per-batch scorer ``(pred, truth, idx) -> float`` for metric ``fn`` on targets ``Y``."""
    classes = out.shape[-1] if out.ndim == 2 else None
    if fn is Accuracy and classes is not None and classes > 1:
        if Y.shape == (len(Y), classes):  # one-hot (or soft) rows: Accuracy takes their argmax
            return _TrainAccuracy(Y.argmax(axis=1))
        if Y.ndim == 1 and Y.dtype.kind in "iu":
            return _TrainAccuracy(Y.astype(np.intp))
    return lambda pred, truth, idx: fn(pred, truth)


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
        self.loss = _loss_fn(loss)
        self.solver = solver
        self.input_spec = input
        self.metrics = _metric_fns(metrics)
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
        self._predictor: _Predictor | None = None
        self._vgs: list[Any] = []

    # ----- building -----------------------------------------------------------------------------
    def _ensure_io(self, data: np.ndarray | None = None, seed: int | None = None) -> None:
        if self.x is not None:
            return
        if not _is_built(self.model) and seed is not None:
            gc.SetSeed(seed)  # the layers fit builds draw their initial weights from it
        sample = None if data is None else tuple(np.shape(data)[1:])
        dtype = self.dtype or (None if data is None else _data_dtype(np.asarray(data)))
        x = _model_input(self.model, self.input_spec, sample, dtype)
        self.out = _output(self.model, x)
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
        target = _new_input(g, dt, (None, *y.shape[1:]), "y")
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
        bs = _check_batch_size("fit", batch_size)
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(f"fit: epochs must be a non-negative integer, got {epochs!r}")
        if not 0 <= initial_epoch <= max(epochs, 0):
            raise ValueError(f"fit: initial_epoch={initial_epoch} must be in [0, epochs={epochs}]")
        vbs = _check_batch_size("fit", validation_batch_size or bs)
        self._ensure_io(x, seed)
        assert self.x is not None
        X = _as_data(x, self.x, "fit: x")
        self._ensure_train(np.asarray(y))
        assert self.target is not None and self._train_vm is not None
        Y = _as_data(y, self.target, "fit: y")
        if len(X) != len(Y):
            raise ValueError(f"fit: x has {len(X)} samples but y has {len(Y)}")
        if len(X) == 0:
            raise ValueError("fit: no training samples (x is empty)")
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise TypeError("fit: validation_data must be a pair (x_val, y_val)")
            xv = _as_data(validation_data[0], self.x, "fit: validation x")
            yv = _as_data(validation_data[1], self.target, "fit: validation y")
            if len(xv) != len(yv) or len(xv) == 0:
                raise ValueError(
                    f"fit: validation x and y must hold the same, non-zero number of samples "
                    f"(got {len(xv)} and {len(yv)})"
                )
            val = (xv, yv)
        self._claim_grads()
        names = ["loss", *self.metrics]
        names += [f"val_{k}" for k in names] if val is not None else []
        cbs = [*callbacks, *_default_progress(progress)]
        for cb in cbs:
            if not isinstance(cb, Callback):
                raise TypeError(f"fit: callbacks must be golgi Callback objects, got {cb!r}")
        steps = -(-len(X) // bs)
        params = {
            "epochs": epochs,
            "steps": steps,
            "batch_size": bs,
            "samples": len(X),
            "metrics": names,
        }
        for cb in cbs:
            cb.trainer, cb.params = self, params
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % (2**63))  # type: ignore[operator]
        history = History()
        history.trainer = self
        self.stop_training = False
        try:
            with _StopOnInterrupt() as sigint:
                for cb in cbs:
                    cb.on_train_begin({})
                for epoch in range(initial_epoch, epochs):
                    for cb in cbs:
                        cb.on_epoch_begin(epoch, {})
                    t0 = time.perf_counter()
                    logs = self._train_epoch(X, Y, bs, epoch, seed, shuffle, cbs, sigint)
                    if sigint.requested:
                        raise KeyboardInterrupt
                    if val is not None:
                        ev = self._evaluate(val[0], val[1], vbs)
                        logs.update({f"val_{k}": v for k, v in ev.items()})
                    for cb in cbs:
                        cb.on_epoch_end(epoch, logs)
                    history.record(epoch, logs, time.perf_counter() - t0)
                    if self.stop_training:
                        history.stopped_early = True
                        break
        except KeyboardInterrupt:
            for w in self.learnables:  # a batch cut short leaves partial gradients
                w.grad.fill(0)
            history.interrupted = True
            if progress:
                done = len(history)
                print(
                    f"golgi: interrupted (Ctrl-C); stopping with {done} epoch"
                    f"{'s' if done != 1 else ''} done this run",
                    file=sys.stderr,
                )
        except BaseException:
            for cb in cbs:
                if isinstance(cb, ProgressBar):
                    cb._close(None)
            raise
        for cb in cbs:
            cb.on_train_end({"interrupted": history.interrupted})
        return history

    def _train_epoch(
        self,
        X: np.ndarray,
        Y: np.ndarray,
        bs: int,
        epoch: int,
        seed: int,
        shuffle: bool,
        cbs: list[Callback],
        sigint: _StopOnInterrupt,
    ) -> dict[str, float]:
        x, t, cost, out = self.x, self.target, self.cost, self.out
        vm, step, vgs = self._train_vm, self.solver.step, self._vgs
        assert x is not None and t is not None and cost is not None and out is not None
        assert vm is not None
        n = len(X)
        perm = np.random.default_rng((seed, epoch)).permutation(n) if shuffle else np.arange(n)
        vm.rng = np.random.default_rng((seed, epoch, 1))  # dropout masks, per epoch
        metrics = [(name, _scorer(fn, Y, out)) for name, fn in self.metrics.items()]
        sums = [0.0] * len(metrics)
        batch_cbs = [cb for cb in cbs if type(cb).on_batch_end is not Callback.on_batch_end]
        republish = any(not getattr(cb, "light", False) for cb in batch_cbs)
        blogs: dict[str, float] = {}
        loss_sum, seen = 0.0, 0
        vm.publish()  # an eval run since the last epoch pointed values elsewhere
        for bi, s in enumerate(range(0, n, bs)):
            idx = perm[s : s + bs]
            b = idx.shape[0]
            _gather(x, X, idx)
            _gather(t, Y, idx)
            vm.run_all()
            step(vgs)
            seen += b
            loss_sum += float(cost.value) * b
            if metrics:
                pred, truth = out.value, t.value
                for j, (_, score) in enumerate(metrics):
                    sums[j] += score(pred, truth, idx) * b
            if batch_cbs:
                blogs["loss"] = loss_sum / seen
                for j, (name, _) in enumerate(metrics):
                    blogs[name] = sums[j] / seen
                blogs["size"] = b
                for cb in batch_cbs:
                    cb.on_batch_end(bi, blogs)
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
            _put(x, rows)
            _put(t, Y[s : s + b])
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
        bs = _check_batch_size("evaluate", batch_size)
        self._ensure_io(x)
        assert self.x is not None
        X = _as_data(x, self.x, "evaluate: x")
        self._ensure_train(np.asarray(y))
        assert self.target is not None
        Y = _as_data(y, self.target, "evaluate: y")
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
        bs = _check_batch_size("predict", batch_size)
        self._ensure_io(x)
        assert self.x is not None and self.out is not None
        if self._predictor is None:
            self._predictor = _Predictor(self.x, self.out)
        return self._predictor(_as_data(x, self.x, "predict: x"), bs)

    def __repr__(self) -> str:
        loss = getattr(self.loss, "__name__", repr(self.loss))
        return (
            f"Trainer({type(self.model).__name__}, loss={loss}, "
            f"solver={type(self.solver).__name__}, metrics={list(self.metrics)})"
        )


def fit(
    model: Any,
    x: Any,
    y: Any,
    *,
    loss: LossFn | str,
    solver: Any,
    input: gc.Node | Sequence[int | None] | None = None,
    metrics: Any = None,
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
    """Train ``model`` on ``(x, y)``; a :class:`Trainer` in one call. Returns the History.

    ``loss`` takes (output node, target node) and returns a scalar node (``golgi.CrossEntropy``
    from logits, ``golgi.BinaryCrossEntropy``, ``golgi.MSE``, or your own). ``solver`` is a
    graphcore solver. The rest is as :meth:`Trainer.fit`. Calling ``fit`` again on the same
    model with the same loss continues training with the graph and machines already built
    (``history.trainer`` is that Trainer: ``evaluate``, ``predict``).

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
    """
    lf = _loss_fn(loss)
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
        trainer.metrics = _metric_fns(metrics)
    return trainer.fit(
        x,
        y,
        epochs=epochs,
        batch_size=batch_size,
        validation_data=validation_data,
        callbacks=callbacks,
        seed=seed,
        shuffle=shuffle,
        progress=progress,
        initial_epoch=initial_epoch,
        validation_batch_size=validation_batch_size,
    )
