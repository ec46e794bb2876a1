"""``ModelCheckpoint``: save the model and the solver's state after each epoch.

Example:
    >>> cb = ModelCheckpoint("ckpt-{epoch:02d}.npz", monitor="loss")
    >>> cb.path, cb.save_best_only
    ('ckpt-{epoch:02d}.npz', False)
"""

from __future__ import annotations

import math
from typing import Any

from ..io import save
from .callbacks import Callback, monitor_better, require_logged
from .safety import weights_finite

__all__ = ["ModelCheckpoint"]


class ModelCheckpoint(Callback):
    """Save the model (and the solver's state) with ``golgi.save`` after each epoch.

    ``path`` may hold ``{epoch}`` and log names (``"ckpt-{epoch:02d}-{val_loss:.3f}.npz"``).
    ``save_best_only``: save only when ``monitor`` improves (``mode`` "min", "max" or "auto":
    max for accuracies). The write is atomic, so Ctrl-C never leaves a broken file; the file's
    ``extra`` holds ``epoch`` (epochs completed, for ``fit(initial_epoch=...)``) and the logs.
    Weights that are not finite are never saved. ``last_saved`` and ``last_epoch`` name the
    last file written (None before the first).

    Example:
        >>> cb = ModelCheckpoint("best.npz", monitor="val_accuracy", save_best_only=True)
        >>> cb.best is None
        True
    """

    on_every_rank = False  # rank 0 writes the checkpoints

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
        self._better = monitor_better(mode, monitor)
        self.verbose = verbose
        self.best: float | None = None
        self.last_saved: str | None = None
        self.last_epoch: int | None = None

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        """With ``save_best_only``, check that ``monitor`` is logged."""
        if self.save_best_only:
            require_logged("ModelCheckpoint", self.monitor, self.params)

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        """Save (if ``monitor`` improved, with ``save_best_only``) to ``path``."""
        value = logs.get(self.monitor)
        if self.save_best_only:
            if value is None or math.isnan(value):
                return
            if self.best is not None and not self._better(value, self.best):
                return
            self.best = value
        assert self.trainer is not None
        path = self.path.format(epoch=epoch + 1, **logs) if "{" in self.path else self.path
        extra = {"epoch": epoch + 1, "logs": dict(logs), "monitor": self.monitor}
        model = self.trainer.model
        if not weights_finite(model.model()):  # fit stops before this; a callback may not
            raise ValueError(
                f"ModelCheckpoint: the weights are not finite (NaN or infinite) after epoch "
                f"{epoch + 1}; not saving {path}"
            )
        save(model, path, solver=self.trainer.solver, extra=extra)
        self.last_saved, self.last_epoch = path, epoch + 1
        if self.verbose:
            print(f"epoch {epoch + 1}: saved {path}")

