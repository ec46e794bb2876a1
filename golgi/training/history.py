"""``History``: the per-epoch logs ``fit`` returns, recorded by a callback.

Example:
    >>> h = History(); h.record(0, {"loss": 0.5, "accuracy": 0.75}, 1.5)
    >>> h["accuracy"], h.keys(), h
    ([0.75], ['loss', 'accuracy'], History(1 epochs: loss=0.5, accuracy=0.75))
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .callbacks import Callback

if TYPE_CHECKING:  # annotations only: the trainer imports this module
    from .trainer import Trainer

__all__ = ["History"]


class History(Callback):
    """What ``fit`` returns: per-epoch logs as a dict of lists, Keras style.

    ``history["loss"]``, ``history["val_accuracy"]``... (``history.history`` is the dict);
    ``epoch`` (0-based epoch numbers), ``times`` (seconds per epoch, validation included),
    ``interrupted`` (Ctrl-C), ``stopped_early`` (a callback set ``trainer.stop_training``),
    ``diverged`` (the loss became NaN or infinite; the model is back at the last finite
    epoch),
    ``trainer`` (the :class:`~golgi.training.trainer.Trainer` that trained).

    It is itself a callback, the last of each ``fit``: it records each epoch's logs after
    the other callbacks have added theirs.

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
        self.diverged = False
        self.trainer: Trainer | None = None
        self._t0 = 0.0

    reads_node_values = False

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any]) -> None:
        """Start the epoch's clock."""
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        """Record the epoch's logs and time; note an early stop."""
        self.record(epoch, logs, time.perf_counter() - self._t0)
        if self.trainer is not None and self.trainer.stop_training:
            self.stopped_early = True

    def on_train_end(self, logs: dict[str, Any]) -> None:
        """Note a Ctrl-C (``logs["interrupted"]``)."""
        self.interrupted = bool(logs.get("interrupted", False))

    def record(self, epoch: int, logs: Mapping[str, float], seconds: float) -> None:
        """Append one epoch's logs (keys missing on either side are padded with NaN).

        ``on_epoch_end`` calls it, after the other callbacks' ``on_epoch_end``.

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
        flags = " interrupted" if self.interrupted else " diverged" if self.diverged else ""
        return f"History({len(self)} epochs{': ' + last if last else ''}{flags})"
