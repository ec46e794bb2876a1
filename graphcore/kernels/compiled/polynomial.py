"""``exp`` and ``log`` as polynomials, for the sigmoid and the sigmoid cross-entropy loops:
LLVM can only vectorise a loop without calls, and numpy's own float32 ``exp`` is not
vectorised on every build (1.4-2.5 ns per element here, against ~0.3 for the whole fused
loss). The loops work in blocks of :data:`BLOCK` elements.

Example:
    >>> import numpy as np
    >>> c, e, l = bce_constants(np.dtype(np.float32)); len(e[0] + e[1]), len(l[0] + l[1])
    (8, 7)
    >>> bits_dtype(np.float64)
    dtype('int64')
"""

from __future__ import annotations

import math

import numba
import numpy as np

from ..jit import vectorised as _vec

__all__ = ["BLOCK", "bce_constants", "bits_dtype", "horner", "exp_parts"]


# exp(a) for a <= 0: a = k*ln2 + r with |r| <= ln2/2, exp(r) by its Taylor polynomial (degree 7
# is within 1 ulp in float32, 13 in float64), 2**k built from its bit pattern. k is offset by
# SHIFT so that 2**(k+SHIFT) stays a normal number down to the smallest denormal result;
# multiplying by 2**-SHIFT afterwards rounds once, as exp would.
_EXP = {
    np.float32: dict(lo=-104.0, shift=24, mant=23, bias=127, degree=7, log_terms=7),
    np.float64: dict(lo=-746.0, shift=54, mant=52, bias=1023, degree=13, log_terms=17),
}
# ln 2 split so that k * LN2_HI is exact for the k that occur (Cody and Waite).
_LN2_HI = {np.float32: 0.693359375, np.float64: 0.6931471803691238}
_LN2_LO = {np.float32: -2.12194440e-4, np.float64: 1.9082149292705877e-10}
BLOCK = 1024  # elements summed in the arrays' dtype before joining the float64 total


def bce_constants(dtype: np.dtype) -> tuple[tuple, tuple, tuple]:
    """The scalars (in ``dtype``) the sigmoid loops take: range reduction, exp's Taylor
    coefficients (highest first) and log's ``2/(2j+1)`` series (highest first).

    Example:
        >>> c, e, l = bce_constants(np.dtype(np.float32)); len(e[0] + e[1]), len(l[0] + l[1])
        (8, 7)
        >>> c[0].dtype
        dtype('float32')
    """
    t = np.dtype(dtype).type
    p = _EXP[t]
    scale = float(2 ** p["mant"])
    consts = (t(p["lo"]), t(1 / math.log(2)), t(_LN2_HI[t]), t(_LN2_LO[t]), t(0.5),
              t((p["bias"] + p["shift"]) * scale), t(scale), t(2.0 ** -p["shift"]), t(1.0),
              t(2.0), t(0.0))
    exp_c = [t(1 / math.factorial(i)) for i in range(int(p["degree"]), -1, -1)]
    log_c = [t(2 / (2 * j + 1)) for j in range(int(p["log_terms"]) - 1, -1, -1)]
    return consts, _halves(exp_c), _halves(log_c)


def _halves(coeffs: list) -> tuple[tuple, tuple]:
    # numba unrolls a loop over a tuple of up to ~12 items; longer ones (float64) become a
    # switch inside the loop, which LLVM does not vectorise (40x slower). Two halves it is.
    h = len(coeffs) // 2
    return tuple(coeffs[:h]), tuple(coeffs[h:])


def bits_dtype(dtype: np.dtype) -> np.dtype:
    """The integer dtype of the scratch the loops build ``2**k`` in."""
    return np.dtype(np.int32 if np.dtype(dtype) == np.float32 else np.int64)


@_vec
def horner(x, coeffs, zero):  # pragma: no cover
    q = zero
    for cj in numba.literal_unroll(coeffs[0]):  # unrolled: a loop would block vectorising
        q = q * x + cj
    for cj in numba.literal_unroll(coeffs[1]):
        q = q * x + cj
    return q


@_vec
def exp_parts(z, p, bits, c, ec):  # pragma: no cover
    # p = exp(r) and bits = 2**(k+shift) as an integer bit pattern, for a = -|z|
    lo, l2e, ln2hi, ln2lo, half, bias, scale = c[0], c[1], c[2], c[3], c[4], c[5], c[6]
    for i in range(z.size):
        a = -abs(z[i])
        a = lo if a < lo else a  # not max(): NaN must stay NaN
        k = np.floor(a * l2e + half)
        r = (a - k * ln2hi) - k * ln2lo
        p[i] = horner(r, ec, c[10])
        bits[i] = k * scale + bias
