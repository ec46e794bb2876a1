"""The compiled activation kernels: :mod:`graphcore.kernels.reference.activations`' names and
signatures; ``relu_grad`` and ``sigmoid`` as one loop each, and a dense layer's fused steps
(bias add and activation; the ReLU gradient with the bias gradient) as one pass each.

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

__all__ = [
    "relu", "relu_scratch", "relu_grad", "relu_grad_scratch", "sigmoid", "sigmoid_scratch",
    "bias_add", "bias_add_scratch", "bias_relu", "bias_relu_scratch", "bias_sigmoid",
    "bias_sigmoid_scratch", "relu_grad_bias", "relu_grad_bias_scratch",
]


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


# ----- a dense layer's fused steps: one pass over the product's rows -----------------------------


def _rows_of(b: np.ndarray, *arrays: np.ndarray) -> list[np.ndarray] | None:
    """Flat views of ``b`` and ``arrays`` when the arrays are C-contiguous ``(..., n)`` of one
    shape and float dtype and ``b`` holds ``n`` contiguous elements of that dtype; else None."""
    flat = flat_views(*arrays)
    a0 = arrays[0]
    if (
        flat is None
        or a0.ndim < 1
        or a0.size == 0
        or b.dtype != a0.dtype
        or b.size != a0.shape[-1]
        or not b.flags.c_contiguous
    ):
        return None
    return [b.reshape(-1), *flat]


@_vec
def _bias_add(b, x, out):  # pragma: no cover (compiled)
    n = b.size
    for r in range(x.size // n):
        base = r * n
        for j in range(n):
            out[base + j] = x[base + j] + b[j]


def bias_add_scratch(x: np.ndarray, b: np.ndarray, out: np.ndarray) -> Any:
    """Scratch for :func:`bias_add`: flat views, or the reference's.

    Example:
        >>> x = np.ones((2, 3)); len(bias_add_scratch(x, np.ones(3), x))
        3
    """
    flat = _rows_of(b, x, out)
    if flat is None:
        return Ref(reference.bias_add_scratch(x, b, out))  # type: ignore[func-returns-value]
    return flat


def bias_add(x: np.ndarray, b: np.ndarray, out: np.ndarray, scratch: Any) -> None:
    """``out = x + b`` in one loop (numpy's broadcasting add takes an iterator buffer per
    call); as :func:`reference.bias_add`.

    Example:
        >>> x = np.array([[1.0, -3.0]]); b = np.array([1.0, 1.0])
        >>> bias_add(x, b, x, bias_add_scratch(x, b, x)); x.tolist()
        [[2.0, -2.0]]
    """
    if type(scratch) is Ref:
        reference.bias_add(x, b, out, scratch.scratch)
        return
    _bias_add(*scratch)


@_vec
def _bias_relu(b, x, out, zero):  # pragma: no cover (compiled)
    n = b.size
    for r in range(x.size // n):
        base = r * n
        for j in range(n):
            v = x[base + j] + b[j]
            out[base + j] = zero if v < zero else v  # NaN stays NaN, as numpy's maximum


#: Above this many bytes of output, :func:`bias_relu` runs the reference's two numpy passes.
#: The loop is the faster pass on its own at any size, but on a 10,000-row batch of the
#: 784-250-100-10 MLP (10 MB and 4 MB layers) the product right after it ran 10-40% slower
#: than after numpy's passes over the same buffers (the same BLAS call; not the loop's vector
#: width, measured with an AVX2-only build too): ~2% of the prediction, more than the loop
#: saves. Below it (the batches a model trains on, 100 rows: 100 kB) the loop wins; sizes
#: between 100 kB and 4 MB were not measured.
BIAS_RELU_LOOP_MAX = 1 << 20


def bias_relu_scratch(x: np.ndarray, b: np.ndarray, out: np.ndarray) -> Any:
    """Scratch for :func:`bias_relu`: flat views and the constant 0, or the reference's
    (arrays the loop cannot take, or outputs of more than ``BIAS_RELU_LOOP_MAX`` bytes).

    Example:
        >>> x = np.ones((2, 3)); len(bias_relu_scratch(x, np.ones(3), x))
        4
    """
    flat = _rows_of(b, x, out) if out.nbytes <= BIAS_RELU_LOOP_MAX else None
    if flat is None:
        return Ref(reference.bias_relu_scratch(x, b, out))
    return (*flat, x.dtype.type(0))


def bias_relu(x: np.ndarray, b: np.ndarray, out: np.ndarray, scratch: Any) -> None:
    """``out = max(x + b, 0)`` in one pass; as :func:`reference.bias_relu`.

    Example:
        >>> x, b = np.array([[1.0, -3.0]]), np.array([1.0, 1.0]); out = np.empty((1, 2))
        >>> bias_relu(x, b, out, bias_relu_scratch(x, b, out)); out.tolist()
        [[2.0, 0.0]]
    """
    if type(scratch) is Ref:
        reference.bias_relu(x, b, out, scratch.scratch)
        return
    _bias_relu(*scratch)


@_vec
def _bias_sigmoid(b, x, out, p, bits, c, ec):  # pragma: no cover (compiled)
    n = b.size
    for r in range(x.size // n):
        row = out[r * n : (r + 1) * n]
        for j in range(n):
            row[j] = x[r * n + j] + b[j]
        _sigmoid(row, row, p, bits, c, ec)  # the row is still in cache


def bias_sigmoid_scratch(x: np.ndarray, b: np.ndarray, out: np.ndarray) -> Any:
    """Scratch for :func:`bias_sigmoid`: :func:`sigmoid_scratch`'s, or the reference's.

    Example:
        >>> x = np.zeros((2, 3), np.float32)
        >>> len(bias_sigmoid_scratch(x, np.zeros(3, np.float32), x))
        7
    """
    flat = _rows_of(b, x, out)
    if flat is None:
        return Ref(reference.bias_sigmoid_scratch(x, b, out))  # type: ignore[func-returns-value]
    return (*flat, *sigmoid_scratch(out, out)[2:])


def bias_sigmoid(x: np.ndarray, b: np.ndarray, out: np.ndarray, scratch: Any) -> None:
    """``out = sigmoid(x + b)``, row by row in cache; as :func:`reference.bias_sigmoid`
    (the sigmoid as :func:`sigmoid`'s).

    Example:
        >>> x = np.array([[-1.0, 0.0]]); out = np.empty((1, 2)); b = np.array([1.0, 0.0])
        >>> bias_sigmoid(x, b, out, bias_sigmoid_scratch(x, b, out)); out.tolist()
        [[0.5, 0.5]]
    """
    if type(scratch) is Ref:
        reference.bias_sigmoid(x, b, out, scratch.scratch)
        return
    _bias_sigmoid(*scratch)


@_vec
def _relu_grad_bias(db, y, g, out, add, s, one):  # pragma: no cover (compiled)
    n = db.size
    for j in range(n):
        s[j] = 0
    for r in range(y.size // n):
        base = r * n
        for j in range(n):
            yi = y[base + j]
            m = one if yi > one else yi  # ceil(min(y, 1)), as relu_grad
            out[base + j] = np.ceil(m) * g[base + j]
        for j in range(n):  # a loop of its own: each of the two vectorises (the row is in L1)
            s[j] += out[base + j]
    if add:
        for j in range(n):
            db[j] += s[j]
    else:
        for j in range(n):
            db[j] = s[j]


def relu_grad_bias_scratch(y: np.ndarray, g: np.ndarray, out: np.ndarray, db: np.ndarray) -> Any:
    """Scratch for :func:`relu_grad_bias`: flat views, a row of sums and the constant 1, or
    the reference's.

    Example:
        >>> a = np.ones((2, 3)); type(relu_grad_bias_scratch(a, a, a, np.ones(3))).__name__
        'tuple'
    """
    flat = _rows_of(db, y, g, out)
    if flat is None or not db.flags.writeable:
        return Ref(reference.relu_grad_bias_scratch(y, g, out, db))
    return (flat, np.empty(db.size, db.dtype), y.dtype.type(1))


def relu_grad_bias(
    y: np.ndarray, g: np.ndarray, out: np.ndarray, db: np.ndarray, add: bool, scratch: Any
) -> None:
    """``out = g * (y > 0)`` and ``db`` (``add``: ``+=``) the sum of ``out``'s rows, in one
    pass; as :func:`reference.relu_grad_bias`.

    Example:
        >>> y, g = np.array([[0.0, 1.0], [2.0, 3.0]]), np.ones((2, 2))
        >>> out, db = np.empty((2, 2)), np.full(2, 10.0)
        >>> relu_grad_bias(y, g, out, db, True, relu_grad_bias_scratch(y, g, out, db))
        >>> out.tolist(), db.tolist()
        ([[0.0, 1.0], [1.0, 1.0]], [11.0, 12.0])
    """
    if type(scratch) is Ref:
        reference.relu_grad_bias(y, g, out, db, add, scratch.scratch)
        return
    (d, yy, gg, oo), s, one = scratch
    _relu_grad_bias(d, yy, gg, oo, add, s, one)
