"""The hooks through which ``fit``, ``evaluate`` and ``predict`` train on several processes.

Training runs on one process unless given a distribution strategy
(``golgi.MPIDataParallel()``, see :mod:`golgi.distributed`); the single-process loop is
left as it is. A strategy provides, for the trainer:

- ``fit_session(trainer)``: a context manager around one ``fit`` with ``start(plan,
  learnables, facts)`` (before the first epoch: every rank agrees, takes rank 0's seed and
  weights), ``train_epoch(...)`` (instead of the default epoch), ``callbacks(...)`` (the
  ones this rank runs), and for the epoch frame ``interrupts``, ``agree_stop`` and
  ``check_interrupted``;
- ``together(what)`` and ``guard(what)``: blocks that fail on every rank or end the job;
- ``rows(n)``, ``sum_values``, ``gather_rows`` and ``predict_rows``: each rank's block of
  rows for ``evaluate`` and ``predict``, and the results of all of them.

Example:
    >>> check_distributed(None) is None
    True
"""

from __future__ import annotations

from typing import Any

__all__ = ["check_distributed"]


def check_distributed(distributed: Any) -> Any:
    """``distributed`` if it is a distribution strategy (``golgi.MPIDataParallel()``) or
    None, else ``TypeError``.

    Example:
        >>> check_distributed("mpi")
        Traceback (most recent call last):
        ...
        TypeError: distributed: expected golgi.MPIDataParallel() or None, got 'mpi'
    """
    if distributed is None or callable(getattr(distributed, "fit_session", None)):
        return distributed
    raise TypeError(f"distributed: expected golgi.MPIDataParallel() or None, got {distributed!r}")
