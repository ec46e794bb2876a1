"""The numpy activation kernels: ReLU and its gradient, the sigmoid, and the fused forms a
tape machine's plan runs for a dense layer (bias add and activation; the ReLU gradient and
the bias gradient).

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

from collections.abc import Callable
from typing import Any

import numpy as np

from ..blas import gemm_into
from ..constants import filled

__all__ = [
    "relu", "relu_scratch", "relu_grad", "relu_grad_scratch", "sigmoid", "sigmoid_scratch",
    "bias_add", "bias_add_scratch", "bias_relu", "bias_relu_scratch", "bias_sigmoid",
    "bias_sigmoid_scratch", "relu_grad_bias", "relu_grad_bias_scratch",
]


#: Above this many bytes :func:`relu` compares with a scalar 0, below it with an array of
#: zeros: numpy's ``maximum`` of two contiguous arrays is vectorised, with a scalar it is
#: not, so the array is 2x faster up to a few MB (float32, 250 columns: 2.8 us vs 5.5 at 100
#: rows, 173 vs 214 at 4,000), while over ~5 MB reading the zeros costs more than it saves
#: (448 vs 344 us at 6,000 rows, 668 vs 523 at 10,000).
RELU_SCALAR_ABOVE = 4 << 20


def relu_scratch(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Scratch for :func:`relu`: zeros of ``x``'s shape (a shared read-only buffer), or a
    scalar zero for arrays of more than ``RELU_SCALAR_ABOVE`` bytes.

    Example:
        >>> relu_scratch(np.ones(2), np.ones(2)).tolist()
        [0.0, 0.0]
    """
    if x.nbytes > RELU_SCALAR_ABOVE:
        return np.zeros((), x.dtype)
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


# ----- a dense layer's fused steps ---------------------------------------------------------------
# A tape machine's plan runs these in place of two steps (see graphcore.machines.fusion): here
# they are the same numpy passes as the two steps, so both backends give the same results.


def bias_add_scratch(x: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """Scratch for :func:`bias_add`: none in numpy.

    Example:
        >>> bias_add_scratch(np.ones((1, 1)), np.ones(1), np.ones((1, 1))) is None
        True
    """
    return None


def bias_add(x: np.ndarray, b: np.ndarray, out: np.ndarray, scratch: None) -> None:
    """``out = x + b``: ``x`` is ``(rows, n)``, ``b`` has ``n`` elements (shape ``(n,)`` or
    ``(1, n)``); ``out`` may be ``x``.

    Example:
        >>> x = np.array([[1.0, -3.0]]); bias_add(x, np.array([1.0, 1.0]), x, None); x.tolist()
        [[2.0, -2.0]]
    """
    np.add(x, b, out=out)


def bias_relu_scratch(x: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Scratch for :func:`bias_relu`: :func:`relu_scratch`'s.

    Example:
        >>> bias_relu_scratch(np.ones((2, 1)), np.ones(1), np.ones((2, 1))).shape
        (2, 1)
    """
    return relu_scratch(out, out)


def bias_relu(x: np.ndarray, b: np.ndarray, out: np.ndarray, scratch: np.ndarray) -> None:
    """``out = max(x + b, 0)``: ``x`` is ``(rows, n)``, ``b`` has ``n`` elements (shape
    ``(n,)`` or ``(1, n)``); ``out`` may be ``x``.

    Example:
        >>> x, b = np.array([[1.0, -3.0]]), np.array([1.0, 1.0]); out = np.empty((1, 2))
        >>> bias_relu(x, b, out, bias_relu_scratch(x, b, out)); out.tolist()
        [[2.0, 0.0]]
    """
    np.add(x, b, out=out)
    np.maximum(out, scratch, out=out)


def bias_sigmoid_scratch(x: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """Scratch for :func:`bias_sigmoid`: none in numpy.

    Example:
        >>> bias_sigmoid_scratch(np.ones((1, 1)), np.ones(1), np.ones((1, 1))) is None
        True
    """
    return None


def bias_sigmoid(x: np.ndarray, b: np.ndarray, out: np.ndarray, scratch: None) -> None:
    """``out = sigmoid(x + b)``, shapes as :func:`bias_relu`; ``out`` may be ``x``.

    Example:
        >>> x = np.array([[-1.0, 0.0]]); out = np.empty((1, 2))
        >>> bias_sigmoid(x, np.array([1.0, 0.0]), out, None); out.tolist()
        [[0.5, 0.5]]
    """
    np.add(x, b, out=out)
    sigmoid(out, out, None)


def relu_grad_bias_scratch(
    y: np.ndarray, g: np.ndarray, out: np.ndarray, db: np.ndarray
) -> tuple[np.ndarray, Callable[[], None], Callable[[], None]]:
    """Scratch for :func:`relu_grad_bias`: :func:`relu_grad_scratch`'s, and the column sum
    of ``out`` written into and added to ``db`` as two BLAS calls.

    Example:
        >>> a = np.ones((2, 3)); len(relu_grad_bias_scratch(a, a, a, np.ones(3)))
        3
    """
    ones = filled(1.0, (1, out.shape[0]), out.dtype)
    d2 = db.reshape(1, -1)
    mask = relu_grad_scratch(y, g, out)
    return mask, gemm_into(ones, out, d2, 0.0), gemm_into(ones, out, d2, 1.0)


def relu_grad_bias(
    y: np.ndarray, g: np.ndarray, out: np.ndarray, db: np.ndarray, add: bool, scratch: Any
) -> None:
    """``out = g * (y > 0)`` as :func:`relu_grad`, and the sum of ``out``'s rows written into
    ``db`` (``add``: added to it): a dense layer's input and bias gradients. ``y``, ``g`` and
    ``out`` are ``(rows, n)`` and C-contiguous, ``db`` has ``n`` elements.

    Example:
        >>> y, g = np.array([[0.0, 1.0], [2.0, 3.0]]), np.ones((2, 2))
        >>> out, db = np.empty((2, 2)), np.full(2, 10.0)
        >>> relu_grad_bias(y, g, out, db, True, relu_grad_bias_scratch(y, g, out, db))
        >>> out.tolist(), db.tolist()
        ([[0.0, 1.0], [1.0, 1.0]], [11.0, 12.0])
    """
    mask, write, add_to = scratch
    relu_grad(y, g, out, mask)
    if add:
        add_to()
    else:
        write()
