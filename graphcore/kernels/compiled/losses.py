"""The compiled loss kernels: :mod:`graphcore.kernels.reference.losses`' names and
signatures; the summed sigmoid cross-entropy, its gradient and the softmax cross-entropy as one
loop each (the elementwise ``sigmoid_bce`` is the reference one: off the hot path).

Example:
    >>> import numpy as np
    >>> z, t, sig, out = np.zeros(2), np.ones(2), np.empty(2), np.empty(())
    >>> sigmoid_bce_sum(z, t, 0.5, sig, out, sigmoid_bce_sum_scratch(z, t, sig, out))
    >>> round(float(out), 4), sig.tolist()
    (0.6931, [0.5, 0.5])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import reference
from ..jit import jit as _jit
from ..jit import vectorised as _vec
from .layout import Ref, flat_views
from .polynomial import BLOCK, bce_constants, bits_dtype, exp_parts, horner

__all__ = [
    "sigmoid_bce", "sigmoid_bce_scratch", "sigmoid_bce_sum", "sigmoid_bce_sum_scratch",
    "sigmoid_bce_grad", "sigmoid_bce_grad_scratch", "softmax_ce_sum", "softmax_ce_sum_scratch",
    "softmax_ce_grad", "softmax_ce_grad_scratch",
]


# ----- sigmoid binary cross-entropy ------------------------------------------------------------

sigmoid_bce = reference.sigmoid_bce  # the per-element loss ("none"): numpy, off the hot path
sigmoid_bce_scratch = reference.sigmoid_bce_scratch


@_vec
def _bce_block(z, t, sig, pow2, c, lc):  # pragma: no cover
    unscale, one, two, zero = c[7], c[8], c[9], c[10]
    acc = zero
    for i in range(z.size):
        x = z[i]
        e = (sig[i] * pow2[i]) * unscale  # exp(-|x|), in (0, 1]
        d = one + e
        s = e / (two + e)  # log(1 + e) = 2 atanh(s), s in [0, 1/3]
        q = horner(s * s, lc, zero)
        m = one if x >= zero else e
        sig[i] = m / d
        acc += max(x, zero) - x * t[i] + s * q
    return acc


@_vec
def _bce_sum(z, t, sig, bits, c, ec, lc):  # pragma: no cover
    """sum(max(z, 0) - z*t + log(1 + exp(-|z|))) as a float; sig = sigmoid(z). 1-D,
    contiguous. Blocks are summed in the arrays' dtype (vectorised), blocks in float64."""
    exp_parts(z, sig, bits, c, ec)
    pow2 = bits.view(sig.dtype)
    total = 0.0
    for start in range(0, z.size, BLOCK):
        # a function per block: LLVM does not vectorise the loop when written inline here
        b = slice(start, min(start + BLOCK, z.size))
        total += _bce_block(z[b], t[b], sig[b], pow2[b], c, lc)
    return total


def sigmoid_bce_sum_scratch(z: np.ndarray, t: np.ndarray, sig: np.ndarray,
                            out: np.ndarray) -> Any:
    """Scratch for :func:`sigmoid_bce_sum`: flat views, the ``2**k`` scratch, the constants.

    Example:
        >>> a = np.zeros(3); len(sigmoid_bce_sum_scratch(a, a, a.copy(), np.empty(())))
        7
    """
    flat = flat_views(z, t, sig)
    if flat is None:
        return Ref(reference.sigmoid_bce_sum_scratch(z, t, sig, out))
    return (*flat, np.empty(z.size, bits_dtype(z.dtype)), *bce_constants(z.dtype))


def sigmoid_bce_sum(z: np.ndarray, t: np.ndarray, scale: float, sig: np.ndarray,
                    out: np.ndarray, scratch: Any) -> None:
    """As :func:`reference.sigmoid_bce_sum`, in one vectorised loop (a dozen numpy passes),
    summed in float64 across blocks.

    Example:
        >>> z, t, sig, out = np.zeros(2), np.ones(2), np.empty(2), np.empty(())
        >>> sigmoid_bce_sum(z, t, 0.5, sig, out, sigmoid_bce_sum_scratch(z, t, sig, out))
        >>> round(float(out), 4), sig.tolist()
        (0.6931, [0.5, 0.5])
    """
    if type(scratch) is Ref:
        reference.sigmoid_bce_sum(z, t, scale, sig, out, scratch.scratch)
        return
    out[...] = _bce_sum(*scratch) * scale


@_vec
def _bce_grad(sig, t, scale, out):  # pragma: no cover
    for i in range(sig.size):
        out[i] = (sig[i] - t[i]) * scale


def sigmoid_bce_grad_scratch(sig: np.ndarray, t: np.ndarray, c: np.ndarray,
                             out: np.ndarray) -> Any:
    """Scratch for :func:`sigmoid_bce_grad`: flat views when ``c`` is 0-d.

    Example:
        >>> a = np.ones(2); len(sigmoid_bce_grad_scratch(a, a, np.array(1.0), a.copy()))
        4
    """
    flat = flat_views(sig, t, out) if c.ndim == 0 else None
    if flat is None:
        # the reference kernel's scratch is None; Ref marks it as the reference's
        return Ref(reference.sigmoid_bce_grad_scratch(sig, t, c, out))  # type: ignore[func-returns-value]
    return (*flat, c)


def sigmoid_bce_grad(sig: np.ndarray, t: np.ndarray, c: np.ndarray, out: np.ndarray,
                     scratch: Any) -> None:
    """As :func:`reference.sigmoid_bce_grad`, in one pass.

    Example:
        >>> sig, t, c, out = np.array([0.5, 1.0]), np.ones(2), np.array(2.0), np.empty(2)
        >>> sigmoid_bce_grad(sig, t, c, out, sigmoid_bce_grad_scratch(sig, t, c, out))
        >>> out.tolist()
        [-1.0, 0.0]
    """
    if type(scratch) is Ref:
        reference.sigmoid_bce_grad(sig, t, c, out, scratch.scratch)
        return
    s1, t1, o1, c0 = scratch
    _bce_grad(s1, t1, c0[()], o1)


# ----- softmax cross-entropy -------------------------------------------------------------------


@_jit
def _softmax_sum(z, t, e, s, st):  # pragma: no cover
    """Rows of (batch, classes) logits: e = exp(z - max), s and st the row sums of e and
    t; returns sum_r st_r * log(s_r) - sum(t * (z - max)) as a float."""
    total = 0.0
    for r in range(z.shape[0]):
        m = z[r, 0]
        for j in range(z.shape[1]):
            v = z[r, j]
            if v > m or v != v:  # NaN wins, as in numpy's max
                m = v
        se = z.dtype.type(0)
        tsum = z.dtype.type(0)
        td = 0.0
        for j in range(z.shape[1]):
            d = z[r, j] - m
            td += t[r, j] * d
            ej = np.exp(d)
            e[r, j] = ej
            se += ej
            tsum += t[r, j]
        s[r, 0] = se
        st[r, 0] = tsum
        total += tsum * np.log(se) - td
    return total


@_jit
def _softmax_grad(e, s, st, t, c, out):  # pragma: no cover
    # the reference's order: ratio = st / s; out = e * ratio; out -= t; out *= c
    for r in range(e.shape[0]):
        ratio = st[r, 0] / s[r, 0]
        for j in range(e.shape[1]):
            out[r, j] = (e[r, j] * ratio - t[r, j]) * c


def softmax_ce_sum_scratch(z: np.ndarray, t: np.ndarray, e: np.ndarray, s: np.ndarray,
                           st: np.ndarray, out: np.ndarray) -> None:
    """Scratch for :func:`softmax_ce_sum`: none (the loop takes any strides).

    Example:
        >>> softmax_ce_sum_scratch(*[None] * 6) is None
        True
    """
    return None


def softmax_ce_sum(z: np.ndarray, t: np.ndarray, scale: float, e: np.ndarray, s: np.ndarray,
                   st: np.ndarray, out: np.ndarray, scratch: None) -> None:
    """As :func:`reference.softmax_ce_sum`, in one loop over the rows ((100, 10) logits are
    all call overhead in numpy), summed in float64 across rows.

    Example:
        >>> z, t = np.array([[1000.0, -1000.0]]), np.array([[0.0, 1.0]])
        >>> e, s, st, out = np.empty((1, 2)), np.empty((1, 1)), np.empty((1, 1)), np.empty(())
        >>> softmax_ce_sum(z, t, 1.0, e, s, st, out, None); float(out)
        2000.0
    """
    out[...] = _softmax_sum(z, t, e, s, st) * scale


def softmax_ce_grad_scratch(e: np.ndarray, s: np.ndarray, st: np.ndarray, t: np.ndarray,
                            c: np.ndarray, out: np.ndarray) -> None:
    """Scratch for :func:`softmax_ce_grad`: none.

    Example:
        >>> softmax_ce_grad_scratch(*[None] * 6) is None
        True
    """
    return None


def softmax_ce_grad(e: np.ndarray, s: np.ndarray, st: np.ndarray, t: np.ndarray,
                    c: np.ndarray, out: np.ndarray, scratch: None) -> None:
    """As :func:`reference.softmax_ce_grad`, in one loop.

    Example:
        >>> e, s, st = np.array([[1.0, 1.0]]), np.array([[2.0]]), np.array([[1.0]])
        >>> t, out = np.array([[1.0, 0.0]]), np.empty((1, 2))
        >>> softmax_ce_grad(e, s, st, t, np.array(1.0), out, None); out.tolist()
        [[-0.5, 0.5]]
    """
    _softmax_grad(e, s, st, t, c[()], out)
