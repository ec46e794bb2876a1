"""``EarlyStopping``: stop when a logged quantity stops improving; optionally restore the best.

Example:
    >>> es = EarlyStopping("val_accuracy", patience=2, restore_best=True)
    >>> es.monitor, es.patience, es.best
    ('val_accuracy', 2, None)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import graphcore as gc

from .callbacks import Callback, monitor_better, require_logged

__all__ = ["EarlyStopping"]


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
        better = monitor_better(mode, monitor)
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
        require_logged("EarlyStopping", self.monitor, self.params)
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

