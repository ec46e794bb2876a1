"""``LearningRateScheduler``: set the solver's learn rate before each epoch from a schedule.

Example:
    >>> sched = LearningRateScheduler(lambda epoch, lr: 0.1 * 0.5**epoch)
    >>> [sched.schedule(e, 0.1) for e in range(3)]
    [0.1, 0.05, 0.025]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .callbacks import Callback

__all__ = ["LearningRateScheduler"]


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
        if solver is None or not hasattr(solver, "learn_rate"):
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
        solver = self.trainer.solver
        assert solver is not None  # on_epoch_begin checked it has a learn_rate
        logs["lr"] = float(solver.learn_rate)

