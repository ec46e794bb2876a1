"""Solver options, Gorgonia style: ``NewRMSPropSolver(WithLearnRate(0.01), WithRho(0.9))``.

Each ``With*`` builder checks its value and returns a :class:`SolverOpt`; a solver applies
its options in order and refuses the ones it does not take, naming the ones it does.

Example:
    >>> WithLearnRate(0.01), WithClip(5).value
    (WithLearnRate(0.01), 5.0)
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from ..options import Option

__all__ = [
    "SolverOpt",
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

# attribute -> (option name, what the value must be)
_OPTIONS: dict[str, tuple[str, str]] = {
    "learn_rate": ("WithLearnRate", "a finite number > 0"),
    "momentum": ("WithMomentum", "in [0, 1)"),
    "rho": ("WithRho", "in [0, 1)"),
    "beta1": ("WithBeta1", "in [0, 1)"),
    "beta2": ("WithBeta2", "in [0, 1)"),
    "weight_decay": ("WithWeightDecay", "a finite number >= 0"),
    "eps": ("WithEps", "a finite number > 0 (it keeps a zero gradient from giving 0/0)"),
    "l1_reg": ("WithL1Reg", "a finite number >= 0"),
    "l2_reg": ("WithL2Reg", "a finite number >= 0"),
    "batch_size": ("WithBatchSize", "a finite number > 0"),
    "clip": ("WithClip", "a finite number > 0"),
}


def _check_hp(attr: str, v: Any) -> Any:
    """Validate a hyperparameter value; return it normalised (float, int batch, None clip)."""
    opt, rule = _OPTIONS[attr]
    if attr == "clip" and v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{opt}({v!r}): {attr} must be {rule}, got a {type(v).__name__}")
    f = float(v)
    ok = math.isfinite(f)
    if attr in ("learn_rate", "batch_size", "clip", "eps"):
        ok = ok and f > 0
    elif attr in ("momentum", "rho", "beta1", "beta2"):
        ok = ok and 0.0 <= f < 1.0
    else:
        ok = ok and f >= 0
    if not ok:
        raise ValueError(f"{opt}({v!r}): {attr} must be {rule}")
    if attr == "batch_size" and f.is_integer():
        return int(f)
    return f


class SolverOpt(Option):
    """One solver option, made by ``WithLearnRate``, ``WithRho``, ...; applied in order.

    Its ``kind`` is the solver attribute it sets (also ``attr``), its ``value`` the checked
    value; its repr is the builder call.

    Example:
        >>> o = WithLearnRate(0.01); o, o.attr, o.value
        (WithLearnRate(0.01), 'learn_rate', 0.01)
    """

    __slots__ = ()
    builders = {attr: builder for attr, (builder, _) in _OPTIONS.items()}

    @property
    def attr(self) -> str:
        """The solver attribute the option sets, e.g. ``"rho"``.

        Example:
            >>> WithRho(0.9).attr
            'rho'
        """
        return self.kind

    @property
    def name(self) -> str:
        """The option function's name, e.g. ``"WithRho"``.

        Example:
            >>> WithRho(0.9).name
            'WithRho'
        """
        return self.builder


def _opt(attr: str, v: Any) -> SolverOpt:
    return SolverOpt(attr, _check_hp(attr, v))


def WithLearnRate(eta: float) -> SolverOpt:
    """The learning rate η (> 0; default 0.001). Barzilai-Borwein uses it for its first step.

    Example:
        >>> import graphcore as gc
        >>> gc.NewAdamSolver(gc.WithLearnRate(0.01)).learn_rate
        0.01
    """
    return _opt("learn_rate", eta)


def WithL1Reg(l1: float) -> SolverOpt:
    """L1 regularisation λ1 (>= 0): adds ``λ1·sign(w)`` to the gradient. Default 0 (off).

    Example:
        >>> import graphcore as gc
        >>> gc.NewVanillaSolver(gc.WithL1Reg(1e-4)).l1_reg
        0.0001
    """
    return _opt("l1_reg", l1)


def WithL2Reg(l2: float) -> SolverOpt:
    """L2 regularisation λ2 (>= 0): adds ``λ2·w`` to the gradient. Default 0 (off).

    Example:
        >>> import graphcore as gc
        >>> gc.NewRMSPropSolver(gc.WithL2Reg(1e-4)).l2_reg
        0.0001
    """
    return _opt("l2_reg", l2)


def WithBatchSize(batch: float) -> SolverOpt:
    """Divide the (regularised) gradient by the batch size before the update. Default 1.

    Use it when the cost is a sum over the batch; with a mean cost the gradient is already
    averaged. Every solver honours it (Gorgonia's RMSProp and AdaGrad ignored it; see
    :func:`NewRMSPropSolver` for what that changes).

    Example:
        >>> import graphcore as gc
        >>> gc.NewRMSPropSolver(gc.WithBatchSize(100)).batch_size
        100
    """
    return _opt("batch_size", batch)


def WithEps(eps: float) -> SolverOpt:
    """The smoothing term ε (> 0) of AdaGrad, RMSProp, Adam and AdamW. Default 1e-8.

    ε = 0 is refused: a parameter whose gradient is zero would get 0/0 = NaN.

    Example:
        >>> import graphcore as gc
        >>> gc.NewAdamSolver(gc.WithEps(1e-7)).eps
        1e-07
    """
    return _opt("eps", eps)


def WithClip(clip: float) -> SolverOpt:
    """Clip each gradient element to ``[-clip, clip]`` (> 0). Default: no clipping.

    For Barzilai-Borwein it bounds the magnitude of the computed step size instead.

    Example:
        >>> import graphcore as gc
        >>> gc.NewVanillaSolver(gc.WithClip(5)).clip
        5.0
    """
    return _opt("clip", clip)


def WithBeta1(beta1: float) -> SolverOpt:
    """Adam's and AdamW's first-moment decay β1, in [0, 1). Default 0.9.

    Example:
        >>> import graphcore as gc
        >>> gc.NewAdamSolver(gc.WithBeta1(0.8)).beta1
        0.8
    """
    return _opt("beta1", beta1)


def WithBeta2(beta2: float) -> SolverOpt:
    """Adam's and AdamW's second-moment decay β2, in [0, 1). Default 0.999.

    Example:
        >>> import graphcore as gc
        >>> gc.NewAdamW(gc.WithBeta2(0.99)).beta2
        0.99
    """
    return _opt("beta2", beta2)


def WithRho(rho: float) -> SolverOpt:
    """RMSProp's cache decay ρ, in [0, 1). Default 0.999.

    (Gorgonia also let it set AdamW's weight decay; here AdamW takes ``WithWeightDecay``.)

    Example:
        >>> import graphcore as gc
        >>> gc.NewRMSPropSolver(gc.WithRho(0.9)).rho
        0.9
    """
    return _opt("rho", rho)


def WithMomentum(momentum: float) -> SolverOpt:
    """The momentum μ of :func:`NewMomentum`, in [0, 1). Default 0.9.

    Example:
        >>> import graphcore as gc
        >>> gc.NewMomentum(gc.WithMomentum(0.5)).momentum
        0.5
    """
    return _opt("momentum", momentum)


def WithWeightDecay(decay: float) -> SolverOpt:
    """AdamW's decoupled weight decay λ (>= 0): ``w ← (1 − η·λ)·w`` each step. Default 0.01.

    Example:
        >>> import graphcore as gc
        >>> gc.NewAdamW(gc.WithWeightDecay(0.1)).weight_decay
        0.1
    """
    return _opt("weight_decay", decay)
