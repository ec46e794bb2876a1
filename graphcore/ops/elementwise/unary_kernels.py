"""The kernel factories the unary table's rows call (:data:`~graphcore.ops.elementwise.UNARY`).

A factory is called once per plan with the arrays and returns the kernel: a forward factory is
``fwd(x, out, **params)`` (``out`` may be ``x``: the op runs in place, so a kernel reads ``x``
only before or in the pass that writes ``out``), a fused derivative factory is
``fused(x, y, g, out, **params)`` (``x``/``y`` None when the row does not read them). Scratch
buffers are made in the factory, never per run. The rows that call the plan's named kernels
(:mod:`graphcore.kernels`: the numpy reference or the compiled set, same names) take that
kernel module as ``k``.

Example:
    >>> x = np.array([-1.0, 2.0]); out = np.empty(2)
    >>> run = _leaky(x, out, 0.5); run(); out.tolist()
    [-0.5, 2.0]
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..base import Kernel

# The factories are private to the elementwise package: the unary table is their one caller.
__all__ = ["Factory"]

#: ``fwd(x, out, **params)`` or ``fused(x, y, g, out, **params)`` -> the kernel
Factory = Callable[..., Kernel]

_SQRT2 = math.sqrt(2.0)
_INV_SQRT2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _special(name: str) -> Callable[..., Any]:
    """The ufunc ``scipy.special.<name>``, imported when a kernel first needs it: scipy.special
    costs ~25 MiB of memory, and only Gelu, Mish's derivative and NormalCdf use it."""
    from scipy import special  # late import: an optional extra of three kernels

    return getattr(special, name)


def _special_ufunc(name: str) -> Factory:
    """A forward factory for ``scipy.special.<name>``, imported when a kernel is built."""
    return lambda x, out: _ufunc(_special(name))(x, out)


def _ufunc(f: Callable[..., Any]) -> Factory:
    """A forward factory for a numpy ufunc: ``out = f(x)``."""
    return lambda x, out: lambda: f(x, out=out)


def _times_g(dfdx: Callable[[Any, Any, np.ndarray], Any]) -> Factory:
    """A fused derivative factory from ``dfdx(x, y, out)``, which writes ``f'(x)`` into
    ``out``; the kernel then multiplies by ``g``."""

    def make(x: Any, y: Any, g: np.ndarray, out: np.ndarray) -> Kernel:
        def run() -> None:
            dfdx(x, y, out)
            np.multiply(out, g, out=out)

        return run

    return make


def _inv_sqrt(x: np.ndarray, out: np.ndarray) -> Kernel:
    def run() -> None:
        np.sqrt(x, out=out)
        np.reciprocal(out, out=out)

    return run


def _d_sqrt(x: Any, y: np.ndarray, g: np.ndarray, out: np.ndarray) -> Kernel:
    def run() -> None:  # g / y * 0.5, with y = sqrt(x)
        np.divide(g, y, out=out)
        np.multiply(out, 0.5, out=out)

    return run


def _softplus_into(x: np.ndarray, out: np.ndarray, tmp: np.ndarray) -> None:
    # log(1+e^x) = max(x,0) + log1p(e^-|x|): stable for any x; x is read before out is written
    np.abs(x, out=tmp)
    np.negative(tmp, out=tmp)
    np.exp(tmp, out=tmp)
    np.log1p(tmp, out=tmp)
    np.maximum(x, 0, out=out)
    np.add(out, tmp, out=out)


def _softplus(x: np.ndarray, out: np.ndarray, k: Any) -> Kernel:
    tmp = np.empty_like(out)
    return lambda: _softplus_into(x, out, tmp)


def _d_softplus(x: np.ndarray, y: Any, g: np.ndarray, out: np.ndarray, k: Any) -> Kernel:
    scratch = k.sigmoid_scratch(x, out)

    def run() -> None:
        k.sigmoid(x, out, scratch)
        np.multiply(out, g, out=out)

    return run


# Rows marked ``backend=True`` take the plan's kernel module ``k`` (graphcore.kernels: the
# numpy reference or the compiled set, same names) and call its named kernels.


def _sigmoid(x: np.ndarray, out: np.ndarray, k: Any) -> Kernel:
    scratch = k.sigmoid_scratch(x, out)
    return lambda: k.sigmoid(x, out, scratch)


def _relu(x: np.ndarray, out: np.ndarray, k: Any) -> Kernel:
    scratch = k.relu_scratch(x, out)
    return lambda: k.relu(x, out, scratch)


def _d_relu(x: Any, y: np.ndarray, g: np.ndarray, out: np.ndarray, k: Any) -> Kernel:
    scratch = k.relu_grad_scratch(y, g, out)
    return lambda: k.relu_grad(y, g, out, scratch)


def _d_tanh(x: Any, y: np.ndarray, g: np.ndarray, out: np.ndarray) -> Kernel:
    def run() -> None:
        np.multiply(y, y, out=out)
        np.subtract(1, out, out=out)
        np.multiply(out, g, out=out)

    return run


def _d_sigmoid(x: Any, y: np.ndarray, g: np.ndarray, out: np.ndarray) -> Kernel:
    def run() -> None:
        np.subtract(1, y, out=out)
        np.multiply(out, y, out=out)
        np.multiply(out, g, out=out)

    return run


def _leaky(x: np.ndarray, out: np.ndarray, alpha: float) -> Kernel:
    tmp = np.empty_like(out)
    pick = np.maximum if alpha <= 1 else np.minimum

    def run() -> None:
        np.multiply(x, alpha, out=tmp)
        pick(x, tmp, out=out)

    return run


def _d_leaky(x: np.ndarray, y: Any, g: np.ndarray, out: np.ndarray, alpha: float) -> Kernel:
    slope = np.empty_like(out)

    def run() -> None:
        np.greater(x, 0, out=slope)  # {0, 1} -> slope in {alpha, 1}
        np.multiply(slope, 1 - alpha, out=slope)
        np.add(slope, alpha, out=slope)
        np.multiply(g, slope, out=out)

    return run


def _elu(x: np.ndarray, out: np.ndarray, alpha: float) -> Kernel:
    tmp = np.empty_like(out)

    def run() -> None:
        # for x <= 0, max(x, 0) is 0 and tmp holds alpha*(e^x-1); for x > 0, tmp is 0
        np.minimum(x, 0, out=tmp)
        np.expm1(tmp, out=tmp)
        np.multiply(tmp, alpha, out=tmp)
        np.maximum(x, 0, out=out)
        np.add(out, tmp, out=out)

    return run


def _d_elu(x: np.ndarray, y: np.ndarray, g: np.ndarray, out: np.ndarray, alpha: float) -> Kernel:
    slope = np.empty_like(out)
    pos = np.empty(out.shape, np.bool_)

    def run() -> None:
        # x > 0: 1 ; x <= 0: y + alpha
        np.minimum(y, 0, out=slope)
        np.add(slope, alpha, out=slope)
        np.greater(x, 0, out=pos)
        np.copyto(slope, 1, where=pos)
        np.multiply(g, slope, out=out)

    return run


def _phi_into(x: np.ndarray, out: np.ndarray, erf: Callable[..., Any]) -> None:
    """``out = Phi(x)``, the standard normal CDF, as 0.5 * (1 + erf(x / sqrt 2))."""
    np.divide(x, _SQRT2, out=out)
    erf(out, out=out)
    np.add(out, 1, out=out)
    np.multiply(out, 0.5, out=out)


def _gelu(x: np.ndarray, out: np.ndarray) -> Kernel:
    tmp, erf = np.empty_like(out), _special("erf")

    def run() -> None:
        _phi_into(x, tmp, erf)
        np.multiply(x, tmp, out=out)

    return run


def _d_gelu(x: np.ndarray, y: Any, g: np.ndarray, out: np.ndarray) -> Kernel:
    tmp, erf = np.empty_like(out), _special("erf")

    def run() -> None:
        # d/dx x*Phi(x) = Phi(x) + x*phi(x)
        np.multiply(x, x, out=out)
        np.multiply(out, -0.5, out=out)
        np.exp(out, out=out)
        np.multiply(out, _INV_SQRT2PI, out=out)
        np.multiply(out, x, out=out)
        _phi_into(x, tmp, erf)
        np.add(out, tmp, out=out)
        np.multiply(out, g, out=out)

    return run


def _mish(x: np.ndarray, out: np.ndarray) -> Kernel:
    sp, tmp = np.empty_like(out), np.empty_like(out)

    def run() -> None:
        _softplus_into(x, sp, tmp)
        np.tanh(sp, out=sp)
        np.multiply(x, sp, out=out)

    return run


def _d_mish(x: np.ndarray, y: Any, g: np.ndarray, out: np.ndarray) -> Kernel:
    t1, t2, expit = np.empty_like(out), np.empty_like(out), _special("expit")

    def run() -> None:
        # mish' = tanh(sp) + x * sech^2(sp) * _sigmoid(x), sp = _softplus(x)
        _softplus_into(x, out, t1)
        np.tanh(out, out=out)
        np.multiply(out, out, out=t1)
        np.subtract(1, t1, out=t1)
        np.multiply(t1, x, out=t1)
        expit(x, out=t2)
        np.multiply(t1, t2, out=t1)
        np.add(out, t1, out=out)
        np.multiply(out, g, out=out)

    return run

