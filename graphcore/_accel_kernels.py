"""The numba kernels behind :mod:`graphcore.accel` (imported only when numba is present).

Solver kernels are one loop doing, per element, exactly the numpy path's passes in the same
order (the gradient regularised as ``clip((g + l1*sign(w) + l2*w) / batch)``, then the
solver's formula), so both paths agree to float rounding. Scalars arrive in the arrays' dtype,
so float32 parameters are updated in float32 arithmetic, as numpy does.

The sigmoid binary cross-entropy kernel computes ``exp`` and ``log`` with polynomials instead:
LLVM can only vectorise a loop without calls, and numpy's own float32 ``exp`` is not
vectorised on every build (1.4-2.5 ns per element here, against ~0.3 for the whole fused loss).
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import numpy as np

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
_BLOCK = 1024  # elements summed in the arrays' dtype before joining the float64 total


def bce_constants(dtype: np.dtype) -> tuple[tuple, tuple, tuple]:
    """The scalars (in ``dtype``) the sigmoid cross-entropy kernel takes: range reduction,
    exp's Taylor coefficients (highest first) and log's ``2/(2j+1)`` series (highest first).

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
    exp_c = [t(1 / math.factorial(i)) for i in range(p["degree"], -1, -1)]
    log_c = [t(2 / (2 * j + 1)) for j in range(p["log_terms"] - 1, -1, -1)]
    return consts, _halves(exp_c), _halves(log_c)


def _halves(coeffs: list) -> tuple[tuple, tuple]:
    # numba unrolls a loop over a tuple of up to ~12 items; longer ones (float64) become a
    # switch inside the loop, which LLVM does not vectorise (40x slower). Two halves it is.
    h = len(coeffs) // 2
    return tuple(coeffs[:h]), tuple(coeffs[h:])


def sigmoid_args(x: np.ndarray, out: np.ndarray) -> tuple:
    """The arguments of the kernel ``sigmoid`` for these arrays: flat views, scratch of one
    block and the constants.

    Example:
        >>> x = np.zeros(3, np.float32); len(sigmoid_args(x, x))
        6
    """
    dt = x.dtype
    consts, exp_c, _ = bce_constants(dt)
    return (x.reshape(-1), out.reshape(-1), np.empty(_BLOCK, dt),
            np.empty(_BLOCK, bce_bits_dtype(dt)), consts, exp_c)


def bce_bits_dtype(dtype: np.dtype) -> np.dtype:
    """The integer dtype of the scratch array the kernel builds ``2**k`` in.

    Example:
        >>> bce_bits_dtype(np.dtype(np.float64))
        dtype('int64')
    """
    return np.dtype(np.int32 if np.dtype(dtype) == np.float32 else np.int64)


def build(numba: Any) -> SimpleNamespace:
    """Compile (or load from numba's cache) the kernels; ``rmsprop``/``adam`` pick a variant.

    Three variants of each loop: plain, dividing by the batch size, and general
    (regularisation and clipping). Branches inside the loop keep LLVM from vectorising it
    (7x slower), so the common cases get loops without them.
    """
    jit = numba.njit(cache=True, nogil=True, error_model="numpy")

    @jit
    def regularised(g, w, i, l1, l2, batch, clip, use_clip):  # pragma: no cover (compiled)
        gi = g[i]
        if l1 != 0:
            gi = gi + l1 * np.sign(w[i])
        if l2 != 0:
            gi = gi + l2 * w[i]
        if batch != 1:
            gi = gi / batch
        if use_clip:
            if gi > clip:
                gi = clip
            elif gi < -clip:
                gi = -clip
        return gi

    @jit
    def rms_plain(w, g, c, rho, omr, eps, eta):  # pragma: no cover
        for i in range(w.size):
            gi = g[i]
            ci = omr * (gi * gi) + rho * c[i]
            c[i] = ci
            w[i] = w[i] - eta * (gi / np.sqrt(ci + eps))

    @jit
    def rms_batch(w, g, c, batch, rho, omr, eps, eta):  # pragma: no cover
        for i in range(w.size):
            gi = g[i] / batch
            ci = omr * (gi * gi) + rho * c[i]
            c[i] = ci
            w[i] = w[i] - eta * (gi / np.sqrt(ci + eps))

    @jit
    def rms_general(w, g, c, l1, l2, batch, clip, use_clip, rho, omr, eps, eta):  # pragma: no cover
        for i in range(w.size):
            gi = regularised(g, w, i, l1, l2, batch, clip, use_clip)
            ci = omr * (gi * gi) + rho * c[i]
            c[i] = ci
            w[i] = w[i] - eta * (gi / np.sqrt(ci + eps))

    @jit
    def adam_plain(w, g, m, v, b1, omb1, b2, omb2, eps_hat, step, decay):  # pragma: no cover
        for i in range(w.size):
            gi = g[i]
            mi = omb1 * gi + b1 * m[i]
            vi = omb2 * (gi * gi) + b2 * v[i]
            m[i] = mi
            v[i] = vi
            w[i] = w[i] * decay - step * (mi / (np.sqrt(vi) + eps_hat))

    @jit
    def adam_general(w, g, m, v, l1, l2, batch, clip, use_clip, b1, omb1, b2, omb2, eps_hat,
                     step, decay):  # pragma: no cover
        for i in range(w.size):
            gi = regularised(g, w, i, l1, l2, batch, clip, use_clip)
            mi = omb1 * gi + b1 * m[i]
            vi = omb2 * (gi * gi) + b2 * v[i]
            m[i] = mi
            v[i] = vi
            w[i] = w[i] * decay - step * (mi / (np.sqrt(vi) + eps_hat))

    literal_unroll = numba.literal_unroll
    vec = numba.njit(cache=True, nogil=True, error_model="numpy",
                     fastmath={"reassoc", "contract"})  # reassoc: vectorised sums

    @vec
    def horner(x, coeffs, zero):  # pragma: no cover
        q = zero
        for cj in literal_unroll(coeffs[0]):  # unrolled: a loop here would block vectorising
            q = q * x + cj
        for cj in literal_unroll(coeffs[1]):
            q = q * x + cj
        return q

    @vec
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

    @vec
    def bce_block(z, t, sig, pow2, c, lc):  # pragma: no cover
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

    @vec
    def sigmoid_bce_sum(z, t, sig, bits, c, ec, lc):  # pragma: no cover
        """sum(max(z, 0) - z*t + log(1 + exp(-|z|))) as a float; sig = sigmoid(z). 1-D,
        contiguous. Blocks are summed in the arrays' dtype (vectorised), blocks in float64."""
        exp_parts(z, sig, bits, c, ec)
        pow2 = bits.view(sig.dtype)
        total = 0.0
        for start in range(0, z.size, _BLOCK):
            # a function per block: LLVM does not vectorise the loop when written inline here
            b = slice(start, min(start + _BLOCK, z.size))
            total += bce_block(z[b], t[b], sig[b], pow2[b], c, lc)
        return total

    @vec
    def sigmoid_block(x, out, p, pow2, c):  # pragma: no cover
        unscale, one, zero = c[7], c[8], c[10]
        for i in range(x.size):
            xi = x[i]
            e = (p[i] * pow2[i]) * unscale  # exp(-|x|)
            m = one if xi >= zero else e
            out[i] = m / (one + e)

    @vec
    def sigmoid(x, out, p, bits, c, ec):  # pragma: no cover
        """out = sigmoid(x), 1-D contiguous, out may be x; p and bits: scratch of _BLOCK."""
        pow2 = bits.view(p.dtype)
        for start in range(0, x.size, _BLOCK):
            stop = min(start + _BLOCK, x.size)
            k = stop - start
            exp_parts(x[start:stop], p[:k], bits[:k], c, ec)
            sigmoid_block(x[start:stop], out[start:stop], p[:k], pow2[:k], c)

    @vec
    def sigmoid_bce_grad(sig, t, scale, out):  # pragma: no cover
        for i in range(sig.size):
            out[i] = (sig[i] - t[i]) * scale

    @vec
    def relu_grad(y, g, out, one):  # pragma: no cover
        for i in range(y.size):
            yi = y[i]
            m = one if yi > one else yi  # ceil(min(y, 1)): 0, 1, or NaN as numpy's path
            out[i] = np.ceil(m) * g[i]

    @jit
    def softmax_ce_sum(z, t, e, s, st):  # pragma: no cover
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

    @jit
    def softmax_ce_grad(e, s, st, t, c, out):  # pragma: no cover
        # numpy's order: ratio = st / s; out = e * ratio; out -= t; out *= c
        for r in range(e.shape[0]):
            ratio = st[r, 0] / s[r, 0]
            for j in range(e.shape[1]):
                out[r, j] = (e[r, j] * ratio - t[r, j]) * c

    def rmsprop(w, g, c, l1, l2, batch, clip, use_clip, rho, omr, eps, eta):
        if l1 == 0 and l2 == 0 and not use_clip:
            if batch == 1:
                rms_plain(w, g, c, rho, omr, eps, eta)
            else:
                rms_batch(w, g, c, batch, rho, omr, eps, eta)
        else:
            rms_general(w, g, c, l1, l2, batch, clip, use_clip, rho, omr, eps, eta)

    def adam(w, g, m, v, l1, l2, batch, clip, use_clip, b1, omb1, b2, omb2, eps_hat, step,
             decay):
        if l1 == 0 and l2 == 0 and batch == 1 and not use_clip:
            adam_plain(w, g, m, v, b1, omb1, b2, omb2, eps_hat, step, decay)
        else:
            adam_general(w, g, m, v, l1, l2, batch, clip, use_clip, b1, omb1, b2, omb2,
                         eps_hat, step, decay)

    return SimpleNamespace(rmsprop=rmsprop, adam=adam, sigmoid_bce_sum=sigmoid_bce_sum,
                           sigmoid_bce_grad=sigmoid_bce_grad, relu_grad=relu_grad,
                           sigmoid=sigmoid, softmax_ce_sum=softmax_ce_sum,
                           softmax_ce_grad=softmax_ce_grad)
