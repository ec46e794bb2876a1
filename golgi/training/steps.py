"""Custom training steps: what ``fit(train_step=...)`` gives the step each batch.

``fit`` runs the default step (feed the batch, run the training machine, step the solver)
for any model and loss it can express. For the others (a GAN's two players, a VAE with an
extra term, a loss on several nodes, two solvers) write the step yourself: ``fit`` still
shuffles (seeded), batches, calls the callbacks, records the history, stops on Ctrl-C and
on a non-finite value, and the step does the rest with your own machines and solvers.

A step is a function ``step(batch) -> {"name": value, ...}``; the values are averaged over
each epoch into the history. ``batch`` is a :class:`Batch`.

Example:
    >>> b = Batch(); b.size, b.epoch
    (0, 0)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # annotations only: the trainer imports this module
    from .trainer import Trainer

__all__ = ["Batch", "TrainStep", "take_rows"]


class Batch:
    """One batch for a custom training step (one object per ``fit``, updated each batch).

    - ``x``, ``y``: this batch's rows of the data given to ``fit``, in the same form (an
      array, or a dict or list of arrays); ``y`` is None when ``fit`` got none;
    - ``size``: the number of samples; ``rows``: their indices in the data;
    - ``epoch``, ``index``: the epoch and the batch's number in it (0-based);
    - ``rng``: a generator for the step's own random draws (noise for a GAN), seeded from
      ``fit``'s seed and the epoch, so seeded runs repeat exactly;
    - ``trainer``: the :class:`~golgi.training.trainer.Trainer` (``trainer.model``,
      ``trainer.solver``, and ``trainer.machine``, the default training machine when ``fit``
      was given a loss).

    Example:
        >>> b = Batch(); b.x is None and b.y is None
        True
    """

    __slots__ = ("x", "y", "size", "rows", "epoch", "index", "rng", "trainer")

    def __init__(self) -> None:
        self.x: Any = None
        self.y: Any = None
        self.size = 0
        self.rows: np.ndarray = np.zeros(0, np.intp)
        self.epoch = 0
        self.index = 0
        self.rng: np.random.Generator = np.random.default_rng(0)
        self.trainer: Trainer | None = None

    def __repr__(self) -> str:
        return f"Batch(epoch={self.epoch}, index={self.index}, size={self.size})"


#: A custom training step: the batch in, the values to log out.
TrainStep = Callable[[Batch], Mapping[str, float]]


def take_rows(data: Any, rows: np.ndarray) -> Any:
    """Rows ``rows`` of ``data``: an array, or a dict or list of arrays (None stays None).

    Example:
        >>> import numpy as np
        >>> take_rows({"a": np.arange(4)}, np.array([3, 1]))
        {'a': array([3, 1])}
    """
    if data is None:
        return None
    if isinstance(data, Mapping):
        return {k: np.take(v, rows, axis=0) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [np.take(v, rows, axis=0) for v in data]
    return np.take(data, rows, axis=0)
