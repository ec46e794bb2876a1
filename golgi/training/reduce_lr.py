"""``ReduceLROnPlateau``: lower the learn rate when a logged quantity stops improving.

Example:
    >>> cb = ReduceLROnPlateau("val_loss", factor=0.5, patience=2)
    >>> cb.factor, cb.patience, cb.best
    (0.5, 2, None)
"""

from __future__ import annotations

import math
from typing import Any

from .callbacks import Callback, monitor_better, require_logged

__all__ = ["ReduceLROnPlateau"]


class ReduceLROnPlateau(Callback):
    """Multiply the solver's learn rate by ``factor`` after ``patience`` epochs in which
    ``monitor`` did not improve by more than ``min_delta``; then wait ``cooldown`` epochs
    before counting again, and never go below ``min_lr``. Logs ``lr`` (as Keras).

    Example:
        >>> import numpy as np, graphcore as gc, golgi as G
        >>> net = G.ComposeSeq(G.L(G.ConsFC(G.WithShape(1))))
        >>> X = np.ones((8, 2)); Y = np.ones((8, 1))
        >>> cb = ReduceLROnPlateau("loss", factor=0.5, patience=0, min_delta=10.0)
        >>> h = G.fit(net, X, Y, loss="mse", solver="sgd", epochs=3, callbacks=[cb],
        ...           progress=False, seed=0)
        >>> h["lr"]  # the rate each epoch trained with: epoch 2 did not improve by 10
        [0.01, 0.01, 0.005]
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
        mode: str = "auto",
        verbose: bool = False,
    ) -> None:
        if not 0.0 < factor < 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be in (0, 1), got {factor}")
        if patience < 0 or cooldown < 0:
            raise ValueError("ReduceLROnPlateau: patience and cooldown must be >= 0")
        if min_lr < 0:
            raise ValueError(f"ReduceLROnPlateau: min_lr must be >= 0, got {min_lr}")
        self.monitor = monitor
        self.factor = float(factor)
        self.patience = int(patience)
        self.min_delta = abs(float(min_delta))
        self.cooldown = int(cooldown)
        self.min_lr = float(min_lr)
        better = monitor_better(mode, monitor)
        sign = -1.0 if better(0.0, 1.0) else 1.0  # min mode: improve means drop by min_delta
        self._improved = lambda new, best: better(new, best + sign * self.min_delta)
        self.verbose = verbose
        self.best: float | None = None
        self.wait = 0
        self.cooldown_left = 0

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        """Check that ``monitor`` is logged and the solver has a learn rate; reset."""
        require_logged("ReduceLROnPlateau", self.monitor, self.params)
        assert self.trainer is not None
        if not hasattr(self.trainer.solver, "learn_rate"):
            raise TypeError(
                f"ReduceLROnPlateau: {type(self.trainer.solver).__name__} has no learn_rate"
            )
        self.best, self.wait, self.cooldown_left = None, 0, 0

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        """Track ``monitor``; lower the rate after ``patience`` epochs without improving."""
        assert self.trainer is not None
        solver = self.trainer.solver
        assert solver is not None  # on_train_begin checked it has a learn_rate
        logs["lr"] = float(solver.learn_rate)
        value = logs.get(self.monitor)
        if value is None or math.isnan(value):
            return
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
            self.wait = 0
        if self.best is None or self._improved(value, self.best):
            self.best, self.wait = value, 0
            return
        if self.cooldown_left > 0:
            return
        self.wait += 1
        if self.wait > self.patience:
            old = float(solver.learn_rate)
            new = max(old * self.factor, self.min_lr)
            if new < old:
                solver.learn_rate = new
                if self.verbose:
                    print(f"epoch {epoch + 1}: ReduceLROnPlateau: learn rate now {new:.4g}")
            self.cooldown_left, self.wait = self.cooldown, 0
