"""The compiled activation kernels: :mod:`graphcore.kernels.reference.activations`' names and
signatures; ``relu_grad`` and ``sigmoid`` as one loop each.

Example:
    >>> import numpy as np
    >>> y, g, out = np.array([0.0, 2.0]), np.array([5.0, 5.0]), np.empty(2)
    >>> relu_grad(y, g, out, relu_grad_scratch(y, g, out)); out.tolist()
    [0.0, 5.0]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import reference
from ..jit import vectorised as _vec
from .layout import Ref, flat_views
from .polynomial import BLOCK, bce_constants, bits_dtype, exp_parts

__all__ = ["relu", "relu_scratch", "relu_grad", "relu_grad_scratch", "sigmoid", "sigmoid_scratch"]


relu = reference.relu  # one numpy pass already
relu_scratch = reference.relu_scratch


@_vec
def _relu_grad(y, g, out, one):  # pragma: no cover (compiled)
    for i in range(y.size):
        yi = y[i]
        m = one if yi > one else yi  # ceil(min(y, 1)): 0, 1, or NaN as the reference
        out[i] = np.ceil(m) * g[i]


def relu_grad_scratch(y: np.ndarray, g: np.ndarray, out: np.ndarray) -> Any:
    """Scratch for :func:`relu_grad`: flat views and the constant 1, or the reference's.

    Example:
        >>> a = np.ones(3); type(relu_grad_scratch(a, a, a)).__name__
        'tuple'
    """
    flat = flat_views(y, g, out)
    if flat is None:
        return Ref(reference.relu_grad_scratch(y, g, out))
    return (*flat, y.dtype.type(1))


def relu_grad(y: np.ndarray, g: np.ndarray, out: np.ndarray, scratch: Any) -> None:
    """``out = g * (y > 0)`` in one pass (three in numpy); as :func:`reference.relu_grad`.

    Example:
        >>> y = np.array([0.0, 1.0]).reshape(2, 1)[::-1]  # strided: the reference runs
        >>> out = np.empty((2, 1)); relu_grad(y, np.ones((2, 1)), out,
        ...                                   relu_grad_scratch(y, np.ones((2, 1)), out))
        >>> out.ravel().tolist()
        [1.0, 0.0]
    """
    if type(scratch) is Ref:
        reference.relu_grad(y, g, out, scratch.scratch)
        return
    _relu_grad(*scratch)


@_vec
def _sigmoid_block(x, out, p, pow2, c):  # pragma: no cover
    unscale, one, zero = c[7], c[8], c[10]
    for i in range(x.size):
        xi = x[i]
        e = (p[i] * pow2[i]) * unscale  # exp(-|x|)
        m = one if xi >= zero else e
        out[i] = m / (one + e)


@_vec
def _sigmoid(x, out, p, bits, c, ec):  # pragma: no cover
    """out = sigmoid(x), 1-D contiguous, out may be x; p and bits: scratch of BLOCK."""
    pow2 = bits.view(p.dtype)
    for start in range(0, x.size, BLOCK):
        stop = min(start + BLOCK, x.size)
        k = stop - start
        exp_parts(x[start:stop], p[:k], bits[:k], c, ec)
        _sigmoid_block(x[start:stop], out[start:stop], p[:k], pow2[:k], c)


def sigmoid_scratch(x: np.ndarray, out: np.ndarray) -> Any:
    """Scratch for :func:`sigmoid`: flat views, a block of scratch and the constants.

    Example:
        >>> x = np.zeros(3, np.float32); len(sigmoid_scratch(x, x))
        6
    """
    flat = flat_views(x, out)
    if flat is None:
        # the reference kernel's scratch is None; Ref marks it as the reference's
        return Ref(reference.sigmoid_scratch(x, out))  # type: ignore[func-returns-value]
    dt = x.dtype
    consts, exp_c, _ = bce_constants(dt)
    return (*flat, np.empty(BLOCK, dt), np.empty(BLOCK, bits_dtype(dt)), consts, exp_c)


def sigmoid(x: np.ndarray, out: np.ndarray, scratch: Any) -> None:
    """``out = 1 / (1 + exp(-x))`` in one vectorised pass, within 3 ulps of the exact result
    (denormal results included, where the reference flushes to 0); ``out`` may be ``x``.

    Example:
        >>> x = np.array([-1000.0, 0.0, 40.0]); out = np.empty(3)
        >>> sigmoid(x, out, sigmoid_scratch(x, out)); out.tolist()
        [0.0, 0.5, 1.0]
    """
    if type(scratch) is Ref:
        reference.sigmoid(x, out, scratch.scratch)
        return
    _sigmoid(*scratch)
