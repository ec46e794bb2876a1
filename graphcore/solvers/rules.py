"""The update rules: one short class per solver, its formula written once against the
kernels (:mod:`graphcore.kernels`), and Gorgonia's constructors.

Example:
    >>> import numpy as np, graphcore as gc
    >>> class P:
    ...     value = np.array([1.0, 2.0]); grad = np.array([2.0, -2.0])
    >>> p = P(); gc.NewMomentum(gc.WithLearnRate(0.5), gc.WithMomentum(0.5)).step([p])
    >>> p.value.tolist()
    [0.0, 3.0]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import ModuleType
from typing import Any, ClassVar

import numpy as np

from ..kernels.segments import Segment
from .base import Solver
from .options import SolverOpt

__all__ = [
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
]

Segs = list[Segment]


class VanillaSolver(Solver):
    """Plain SGD: ``w ← w − η·g'``. Build it with :func:`NewVanillaSolver`.

    Example:
        >>> NewVanillaSolver()
        VanillaSolver(learn_rate=0.001, l1_reg=0.0, l2_reg=0.0, batch_size=1, clip=None)
    """

    _ctor = "NewVanillaSolver"
    _takes = ("learn_rate", "l1_reg", "l2_reg", "batch_size", "clip")

    def _update(self, k: ModuleType, segs: Segs) -> None:
        reg, eta = self._reg(), self._hp["learn_rate"]
        for seg in segs:
            k.sgd(seg, reg, eta)


class Momentum(Solver):
    """SGD with momentum: ``v ← μ·v − η·g'``; ``w ← w + v``. Build it with :func:`NewMomentum`.

    Example:
        >>> NewMomentum().momentum
        0.9
    """

    _ctor = "NewMomentum"
    _takes = ("learn_rate", "momentum", "l1_reg", "l2_reg", "batch_size", "clip")
    _defaults = {"momentum": 0.9}
    _buffers = ("velocity",)

    def _update(self, k: ModuleType, segs: Segs) -> None:
        reg, hp = self._reg(), self._hp
        for seg in segs:
            k.momentum(seg, reg, hp["learn_rate"], hp["momentum"])


class AdaGradSolver(Solver):
    """AdaGrad: ``c ← c + g'²``; ``w ← w − η·g'/√(c + ε)``. See :func:`NewAdaGradSolver`.

    Example:
        >>> NewAdaGradSolver().eps
        1e-08
    """

    _ctor = "NewAdaGradSolver"
    _takes = ("learn_rate", "eps", "l1_reg", "l2_reg", "batch_size", "clip")
    _defaults = {"eps": 1e-8}
    _buffers = ("cache",)

    def _update(self, k: ModuleType, segs: Segs) -> None:
        reg, hp = self._reg(), self._hp
        for seg in segs:
            k.adagrad(seg, reg, hp["learn_rate"], hp["eps"])


class RMSPropSolver(Solver):
    """RMSProp: ``c ← ρ·c + (1 − ρ)·g'²``; ``w ← w − η·g'/√(c + ε)``. See :func:`NewRMSPropSolver`.

    Example:
        >>> NewRMSPropSolver().rho
        0.999
    """

    _ctor = "NewRMSPropSolver"
    _takes = ("learn_rate", "rho", "eps", "l1_reg", "l2_reg", "batch_size", "clip")
    _defaults = {"rho": 0.999, "eps": 1e-8}
    _buffers = ("cache",)

    def _update(self, k: ModuleType, segs: Segs) -> None:
        reg, hp = self._reg(), self._hp
        for seg in segs:
            k.rmsprop(seg, reg, hp["learn_rate"], hp["rho"], hp["eps"])


class AdamSolver(Solver):
    """Adam with bias correction: ``w ← w − η·m̂/(√v̂ + ε)``. See :func:`NewAdamSolver`.

    Example:
        >>> NewAdamSolver().beta2
        0.999
    """

    _ctor = "NewAdamSolver"
    _takes: ClassVar[tuple[str, ...]] = (
        "learn_rate", "beta1", "beta2", "eps", "l1_reg", "l2_reg", "batch_size", "clip"
    )
    _defaults = {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8}
    _buffers = ("m", "v")

    def _update(self, k: ModuleType, segs: Segs) -> None:
        hp = self._hp
        eta, b1, b2, eps = hp["learn_rate"], hp["beta1"], hp["beta2"], hp["eps"]
        # m̂/(√v̂ + ε) = (√c2/c1)·m/(√v + ε·√c2): the corrections become two scalars.
        c1 = 1.0 - b1**self._t
        c2 = 1.0 - b2**self._t
        step = eta * math.sqrt(c2) / c1
        eps_hat = eps * math.sqrt(c2)
        decay = 1.0 - eta * hp.get("weight_decay", 0.0)  # AdamW's; 1 for Adam
        reg = self._reg()
        for seg in segs:
            k.adam(seg, reg, b1, b2, eps_hat, step, decay)


class AdamW(AdamSolver):
    """Adam with decoupled weight decay: ``w ← (1 − η·λ)·w``, then the Adam step.

    See :func:`NewAdamW`.

    Example:
        >>> NewAdamW().weight_decay
        0.01
    """

    _ctor = "NewAdamW"
    _takes = (
        "learn_rate",
        "weight_decay",
        "beta1",
        "beta2",
        "eps",
        "l1_reg",
        "l2_reg",
        "batch_size",
        "clip",
    )
    _defaults = {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.01}


class BarzilaiBorweinSolver(Solver):
    """Gradient descent with the Barzilai-Borwein step size. See :func:`NewBarzilaiBorweinSolver`.

    Example:
        >>> NewBarzilaiBorweinSolver().current_rate is None
        True
    """

    _ctor = "NewBarzilaiBorweinSolver"
    _takes = ("learn_rate", "l1_reg", "l2_reg", "batch_size", "clip")
    _buffers = ("prev_value", "prev_grad")
    _flat_ok = False  # its step size needs per-parameter dot products
    _threads_ok = False  # ... over every parameter: one thread

    def __init__(self, *opts: SolverOpt) -> None:
        super().__init__(*opts)
        self._rate = math.nan

    @property
    def current_rate(self) -> float | None:
        """The step size of the last step (``None`` before the first step).

        Example:
            >>> import numpy as np, graphcore as gc
            >>> class P:
            ...     value = np.array([1.0]); grad = np.array([2.0])
            >>> s = gc.NewBarzilaiBorweinSolver(gc.WithLearnRate(0.1)); s.step([P()])
            >>> s.current_rate
            0.1
        """
        return None if math.isnan(self._rate) else self._rate

    def _extra_keys(self) -> tuple[str, ...]:
        return ("rate",)

    def _extra_state(self) -> dict[str, np.ndarray]:
        return {"rate": np.array(self._rate, dtype=np.float64)}

    def _check_extra(self, state: Mapping[str, Any], keys: list[str], problems: list[str]) -> Any:
        if "rate" not in keys:
            return self._rate
        a = np.asarray(state["rate"])
        if a.shape != () or a.dtype.kind != "f" or math.isinf(float(a)):
            problems.append(f"'rate' must be a 0-d float (nan before the first step), got {a!r}")
            return self._rate
        return float(a)

    def _load_extra(self, extra: Any) -> None:
        self._rate = extra

    def _update(self, k: ModuleType, segs: Segs) -> None:
        # numpy only: the step size needs dot products over every parameter (one per segment)
        reg = self._reg(clip=False)  # WithClip bounds the step size instead
        for seg in segs:
            k.regularise(seg, reg)
        parts = [p for seg in segs for p in seg.parts]
        if self._t == 1:
            rate = self._hp["learn_rate"]
        else:
            num = den = 0.0
            for p in parts:
                pw, pg = p.bufs["prev_value"], p.bufs["prev_grad"]
                # prev - current = -Δ for both; the signs cancel in both products.
                np.subtract(pw, p.w, out=pw)
                np.subtract(pg, p.g, out=pg)
                num += float(np.vdot(pw, pg))
                den += float(np.vdot(pg, pg))
            rate = num / den if den > 0 else math.nan
            if not math.isfinite(rate):
                rate = self._rate  # the gradient did not change: keep the last step size
            c = self._hp["clip"]
            if c is not None and abs(rate) > c:
                rate = math.copysign(c, rate)
        self._rate = rate
        for p in parts:
            np.copyto(p.bufs["prev_value"], p.w)
            np.copyto(p.bufs["prev_grad"], p.g)
            np.multiply(p.g, rate, out=p.g)
            np.subtract(p.w, p.g, out=p.w)


# ----- constructors (Gorgonia's names) -----------------------------------------------------------


def NewVanillaSolver(*opts: SolverOpt) -> VanillaSolver:
    """Plain SGD: ``w ← w − η·g'``, with ``g'`` the regularised, batch-divided, clipped gradient.

    Takes ``WithLearnRate`` (0.001), ``WithL1Reg``, ``WithL2Reg``, ``WithBatchSize``, ``WithClip``.

    Example:
        >>> import graphcore as gc
        >>> gc.NewVanillaSolver(gc.WithLearnRate(0.1), gc.WithClip(1.0)).clip
        1.0
    """
    return VanillaSolver(*opts)


def NewMomentum(*opts: SolverOpt) -> Momentum:
    """Momentum SGD: ``v ← μ·v − η·g'``; ``w ← w + v`` (μ = 0.9, η = 0.001 by default).

    Takes ``WithLearnRate``, ``WithMomentum``, ``WithL1Reg``, ``WithL2Reg``, ``WithBatchSize``,
    ``WithClip``. Regularisation uses the weights (Gorgonia's used the velocity).

    Example:
        >>> import graphcore as gc
        >>> gc.NewMomentum(gc.WithMomentum(0.5))
        Momentum(learn_rate=0.001, momentum=0.5, l1_reg=0.0, l2_reg=0.0, batch_size=1, clip=None)
    """
    return Momentum(*opts)


def NewAdaGradSolver(*opts: SolverOpt) -> AdaGradSolver:
    """AdaGrad: ``c ← c + g'²``; ``w ← w − η·g'/√(c + ε)`` (η = 0.001, ε = 1e-8 by default).

    Takes ``WithLearnRate``, ``WithEps``, ``WithL1Reg``, ``WithL2Reg``, ``WithBatchSize``,
    ``WithClip``, all honoured (Gorgonia's AdaGrad ignored every option).

    Example:
        >>> import graphcore as gc
        >>> gc.NewAdaGradSolver(gc.WithLearnRate(0.1)).learn_rate
        0.1
    """
    return AdaGradSolver(*opts)


def NewRMSPropSolver(*opts: SolverOpt) -> RMSPropSolver:
    """RMSProp: ``c ← ρ·c + (1 − ρ)·g'²``; ``w ← w − η·g'/√(c + ε)``, ε inside the root.

    Defaults as Gorgonia: η = 0.001, ρ = 0.999, ε = 1e-8. Takes ``WithLearnRate``, ``WithRho``,
    ``WithEps``, ``WithL1Reg``, ``WithL2Reg``, ``WithBatchSize``, ``WithClip``.

    Differences from Gorgonia: regularisation and clipping act on ``g'`` before the cache update
    (Gorgonia cached the unclipped gradient and subtracted ``λ2·w`` after the step), and
    ``WithBatchSize(B)`` divides the gradient by ``B`` (Gorgonia ignored it). Because RMSProp
    divides by the running RMS of the gradient, scaling ``g`` by ``1/B`` only changes the
    effective epsilon: the result equals Gorgonia's update with ``ε·B²`` in place of ``ε``
    (as ε goes to 0 the update stops depending on ``B``). With the defaults and ``B = 100``
    that is ε = 1e-4 in Gorgonia's terms.

    Example:
        >>> import graphcore as gc
        >>> gc.NewRMSPropSolver(gc.WithBatchSize(100))
        RMSPropSolver(learn_rate=0.001, rho=0.999, eps=1e-08, l1_reg=0.0, l2_reg=0.0, batch_size=100, clip=None)
    """  # noqa: E501
    return RMSPropSolver(*opts)


def NewAdamSolver(*opts: SolverOpt) -> AdamSolver:
    """Adam: ``m ← β1·m + (1−β1)·g'``, ``v ← β2·v + (1−β2)·g'²``, ``w ← w − η·m̂/(√v̂ + ε)``.

    ``m̂ = m/(1 − β1ᵗ)``, ``v̂ = v/(1 − β2ᵗ)``, ``t`` counts steps (Gorgonia counted each
    parameter as a step). Defaults η = 0.001, β1 = 0.9, β2 = 0.999, ε = 1e-8. Takes
    ``WithLearnRate``, ``WithBeta1``, ``WithBeta2``, ``WithEps``, ``WithL1Reg``, ``WithL2Reg``,
    ``WithBatchSize``, ``WithClip``.

    Example:
        >>> import graphcore as gc
        >>> gc.NewAdamSolver(gc.WithBeta1(0.8)).beta1
        0.8
    """
    return AdamSolver(*opts)


def NewAdamW(*opts: SolverOpt) -> AdamW:
    """AdamW: ``w ← (1 − η·λ)·w``, then the Adam step (decoupled weight decay, λ = 0.01).

    The gradient term ``g'`` (with any ``WithL1Reg``/``WithL2Reg``) is computed from the weights
    before the decay. Takes Adam's options plus ``WithWeightDecay``; ``WithRho`` (Gorgonia's way
    to set λ) is refused.

    Example:
        >>> import graphcore as gc
        >>> gc.NewAdamW(gc.WithWeightDecay(0.1)).weight_decay
        0.1
    """
    return AdamW(*opts)


def NewBarzilaiBorweinSolver(*opts: SolverOpt) -> BarzilaiBorweinSolver:
    """Gradient descent ``w ← w − ηₜ·g'`` with the Barzilai-Borwein step size.

    The first step uses ``learn_rate``; later steps use
    ``ηₜ = ⟨Δw, Δg'⟩ / ‖Δg'‖²`` over all parameters together (Δ from the previous step). When
    ``‖Δg'‖² = 0`` the previous step size is kept. ``WithClip(c)`` bounds ``|ηₜ|`` by ``c`` (it
    does not clip the gradient). Also takes ``WithL1Reg``, ``WithL2Reg``, ``WithBatchSize``.
    Setting ``learn_rate`` after the first step has no effect.

    Example:
        >>> import graphcore as gc
        >>> gc.NewBarzilaiBorweinSolver(gc.WithClip(1.0)).clip
        1.0
    """
    return BarzilaiBorweinSolver(*opts)
