"""Solvers: update parameters in place from their gradients, Gorgonia style, bugs fixed.

A solver's ``step(vgs)`` takes "ValueGrads": objects with a ``.value`` array (updated in place,
never rebound) and a ``.grad`` array of the same shape (zeroed in place after the update), such
as graph nodes whose gradients a machine bound with ``BindDualValues``. Per-parameter state
(caches, moments) is kept by position, so pass the same parameters in the same order each step.

One rule for every solver: the raw gradient ``g`` first becomes

    g' = clip((g + λ1·sign(w) + λ2·w) / batch, -c, c)

(each term only when its option is set: ``WithL1Reg``, ``WithL2Reg``, ``WithBatchSize``,
``WithClip``), and the solver's own formula then uses ``g'`` everywhere, its caches included.
(Gorgonia's RMSProp and AdaGrad instead subtracted ``λ2·w`` from the weights after the adaptive
step, its Momentum regularised with the velocity instead of the weights, and its AdaGrad ignored
every option; Barzilai-Borwein uses no gradient clip, since there ``WithClip`` bounds the step
size.) All defaults follow Gorgonia: learn rate 0.001, eps 1e-8, RMSProp decay 0.999, Adam
betas 0.9/0.999, momentum 0.9, AdamW weight decay 0.01.

Steps run with no array allocation in steady state: per-parameter buffers are made on the first
step, in the parameter's dtype, and every pass is a kernel writing in place (numpy ufuncs with
``out=``, or one compiled loop per parameter with numba: :mod:`graphcore.accel`).

The package: :mod:`~graphcore.solvers.options` (``SolverOpt`` and the ``With*`` builders),
:mod:`~graphcore.solvers.base` (``Solver``: options, state, the layout its kernels run over)
and :mod:`~graphcore.solvers.rules` (one class per solver, and the ``New*`` constructors).

Example:
    >>> import numpy as np, graphcore as gc
    >>> class P:  # anything with .value and .grad works; graph nodes do
    ...     def __init__(self, w, g): self.value, self.grad, self.name = w, g, "w"
    >>> p = P(np.array([1.0, 2.0]), np.array([2.0, -2.0]))
    >>> solver = gc.NewVanillaSolver(gc.WithLearnRate(0.5))  # exact in binary: no rounding
    >>> solver.step([p])
    >>> p.value.tolist(), p.grad.tolist()
    ([0.0, 3.0], [0.0, 0.0])
"""

from __future__ import annotations

from .base import NodesToValueGrads, Solver, ValueGrad
from .options import (
    SolverOpt,
    WithBatchSize,
    WithBeta1,
    WithBeta2,
    WithClip,
    WithEps,
    WithL1Reg,
    WithL2Reg,
    WithLearnRate,
    WithMomentum,
    WithRho,
    WithWeightDecay,
)
from .rules import (
    AdaGradSolver,
    AdamSolver,
    AdamW,
    BarzilaiBorweinSolver,
    Momentum,
    NewAdaGradSolver,
    NewAdamSolver,
    NewAdamW,
    NewBarzilaiBorweinSolver,
    NewMomentum,
    NewRMSPropSolver,
    NewVanillaSolver,
    RMSPropSolver,
    VanillaSolver,
)

__all__ = [
    "ValueGrad",
    "NodesToValueGrads",
    "SolverOpt",
    "Solver",
    "VanillaSolver",
    "Momentum",
    "AdaGradSolver",
    "RMSPropSolver",
    "AdamSolver",
    "AdamW",
    "BarzilaiBorweinSolver",
    "NewVanillaSolver",
    "NewMomentum",
    "NewAdaGradSolver",
    "NewRMSPropSolver",
    "NewAdamSolver",
    "NewAdamW",
    "NewBarzilaiBorweinSolver",
    "WithLearnRate",
    "WithL1Reg",
    "WithL2Reg",
    "WithBatchSize",
    "WithEps",
    "WithClip",
    "WithBeta1",
    "WithBeta2",
    "WithRho",
    "WithMomentum",
    "WithWeightDecay",
]
