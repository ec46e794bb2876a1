"""Solvers by name: ``fit(solver="adam")`` as in Keras, or any graphcore solver object.

Example:
    >>> resolve_solver("rmsprop")  # doctest: +ELLIPSIS
    RMSPropSolver(learn_rate=0.001, rho=0.999, eps=1e-08, ...)
    >>> resolve_solver("sgd").learn_rate
    0.01
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import graphcore as gc

__all__ = ["SOLVERS", "resolve_solver"]

#: Solver names ``fit`` takes, each with the learn rate it starts from: graphcore's default
#: (0.001) for the adaptive ones, 0.01 for plain and momentum SGD (as Keras).
SOLVERS: dict[str, tuple[Callable[..., Any], float]] = {
    "adam": (gc.NewAdamSolver, 0.001),
    "adamw": (gc.NewAdamW, 0.001),
    "rmsprop": (gc.NewRMSPropSolver, 0.001),
    "adagrad": (gc.NewAdaGradSolver, 0.001),
    "sgd": (gc.NewVanillaSolver, 0.01),
    "momentum": (gc.NewMomentum, 0.01),
}


def resolve_solver(solver: Any) -> Any:
    """A solver object for ``solver``: a name from :data:`SOLVERS` (a new solver with its
    default settings) or a solver object (anything with ``step``), returned as it is.

    Example:
        >>> import graphcore as gc
        >>> s = gc.NewAdamSolver(); resolve_solver(s) is s
        True
        >>> resolve_solver("adamm")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: unknown solver 'adamm'; use one of adam, adamw, rmsprop, adagrad, sgd, ...
    """
    if isinstance(solver, str):
        entry = SOLVERS.get(solver.lower())
        if entry is None:
            raise ValueError(
                f"unknown solver {solver!r}; use one of {', '.join(SOLVERS)}, or a solver object "
                f"such as gc.NewAdamSolver(gc.WithLearnRate(0.01))"
            )
        make, rate = entry
        return make(gc.WithLearnRate(rate))
    if not callable(getattr(solver, "step", None)):
        raise TypeError(
            f"solver must be a graphcore solver (gc.NewAdamSolver()...) or one of the names "
            f"{', '.join(SOLVERS)}; got {solver!r}"
        )
    return solver
