"""The numba kernels: :mod:`graphcore.kernels.reference`'s names and signatures, each fusing
its numpy passes into one compiled loop (imported only when :mod:`graphcore.accel` is on).

A numpy pass reads and writes its arrays once, so RMSProp over the talk's 222k parameters
moves ~13 MB per step in numpy where one fused loop moves ~4 MB. The loops index their
arrays flat, so they take C-contiguous float32 or float64 arrays; a ``<kernel>_scratch``
made for other arrays (strided views) says so, and the kernel then runs the reference one.
Kernels that gain nothing from a loop (``relu``, the elementwise ``sigmoid_bce``) are the
reference ones.

Solver loops do, per element, exactly the reference passes in the same order (the gradient
regularised as ``clip((g + l1*sign(w) + l2*w) / batch)``, then the solver's formula), so the
backends agree to float rounding. Scalars arrive in the arrays' dtype, so float32 parameters
are updated in float32 arithmetic, as numpy does. Each solver has three loops: the gradient
as it is, divided by the batch size (a division per element costs RMSProp a fifth of its
time), and regularised and clipped, since branches inside a loop keep LLVM from vectorising
it (7x slower).

The sigmoid and the sigmoid cross-entropy compute ``exp`` and ``log`` with polynomials: LLVM
can only vectorise a loop without calls, and numpy's own float32 ``exp`` is not vectorised on
every build (1.4-2.5 ns per element here, against ~0.3 for the whole fused loss).

numba compiles each loop on first use (one to three seconds per loop and dtype) and keeps it
on disk in the user's cache directory (:mod:`graphcore.kernels.jit`).

Example:
    >>> import numpy as np
    >>> y, g, out = np.array([0.0, 2.0]), np.array([5.0, 5.0]), np.empty(2)
    >>> relu_grad(y, g, out, relu_grad_scratch(y, g, out)); out.tolist()
    [0.0, 5.0]
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numba
import numpy as np

from . import reference
from .jit import jit as _jit
from .jit import vectorised as _vec
from .segments import Reg, Segment

__all__ = list(reference.__all__)


# ----- choosing the loop or the reference kernel, once per binding -----------------------------


class _Ref(NamedTuple):
    """The scratch of a kernel bound to arrays its loop cannot take: run the reference."""

    scratch: Any


def _flat(*arrays: np.ndarray) -> list[np.ndarray] | None:
    """1-D views of ``arrays`` when they are all C-contiguous, of one shape and one float
    dtype (float32 or float64), as the loops index them; else None."""
    a0 = arrays[0]
    if a0.dtype.type not in (np.float32, np.float64):
        return None
    for a in arrays:
        if a.dtype != a0.dtype or a.shape != a0.shape or not a.flags.c_contiguous:
            return None
    return [a.reshape(-1) for a in arrays]


# ----- activations -----------------------------------------------------------------------------

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
    flat = _flat(y, g, out)
    if flat is None:
        return _Ref(reference.relu_grad_scratch(y, g, out))
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
    if type(scratch) is _Ref:
        reference.relu_grad(y, g, out, scratch.scratch)
        return
    _relu_grad(*scratch)


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
    exp_c = [t(1 / math.factorial(i)) for i in range(p["degree"], -1, -1)]
    log_c = [t(2 / (2 * j + 1)) for j in range(p["log_terms"] - 1, -1, -1)]
    return consts, _halves(exp_c), _halves(log_c)


def _halves(coeffs: list) -> tuple[tuple, tuple]:
    # numba unrolls a loop over a tuple of up to ~12 items; longer ones (float64) become a
    # switch inside the loop, which LLVM does not vectorise (40x slower). Two halves it is.
    h = len(coeffs) // 2
    return tuple(coeffs[:h]), tuple(coeffs[h:])


def _bits_dtype(dtype: np.dtype) -> np.dtype:
    """The integer dtype of the scratch the loops build ``2**k`` in."""
    return np.dtype(np.int32 if np.dtype(dtype) == np.float32 else np.int64)


@_vec
def _horner(x, coeffs, zero):  # pragma: no cover
    q = zero
    for cj in numba.literal_unroll(coeffs[0]):  # unrolled: a loop would block vectorising
        q = q * x + cj
    for cj in numba.literal_unroll(coeffs[1]):
        q = q * x + cj
    return q


@_vec
def _exp_parts(z, p, bits, c, ec):  # pragma: no cover
    # p = exp(r) and bits = 2**(k+shift) as an integer bit pattern, for a = -|z|
    lo, l2e, ln2hi, ln2lo, half, bias, scale = c[0], c[1], c[2], c[3], c[4], c[5], c[6]
    for i in range(z.size):
        a = -abs(z[i])
        a = lo if a < lo else a  # not max(): NaN must stay NaN
        k = np.floor(a * l2e + half)
        r = (a - k * ln2hi) - k * ln2lo
        p[i] = _horner(r, ec, c[10])
        bits[i] = k * scale + bias


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
    """out = sigmoid(x), 1-D contiguous, out may be x; p and bits: scratch of _BLOCK."""
    pow2 = bits.view(p.dtype)
    for start in range(0, x.size, _BLOCK):
        stop = min(start + _BLOCK, x.size)
        k = stop - start
        _exp_parts(x[start:stop], p[:k], bits[:k], c, ec)
        _sigmoid_block(x[start:stop], out[start:stop], p[:k], pow2[:k], c)


def sigmoid_scratch(x: np.ndarray, out: np.ndarray) -> Any:
    """Scratch for :func:`sigmoid`: flat views, a block of scratch and the constants.

    Example:
        >>> x = np.zeros(3, np.float32); len(sigmoid_scratch(x, x))
        6
    """
    flat = _flat(x, out)
    if flat is None:
        return _Ref(reference.sigmoid_scratch(x, out))
    dt = x.dtype
    consts, exp_c, _ = bce_constants(dt)
    return (*flat, np.empty(_BLOCK, dt), np.empty(_BLOCK, _bits_dtype(dt)), consts, exp_c)


def sigmoid(x: np.ndarray, out: np.ndarray, scratch: Any) -> None:
    """``out = 1 / (1 + exp(-x))`` in one vectorised pass, within 3 ulps of the exact result
    (denormal results included, where the reference flushes to 0); ``out`` may be ``x``.

    Example:
        >>> x = np.array([-1000.0, 0.0, 40.0]); out = np.empty(3)
        >>> sigmoid(x, out, sigmoid_scratch(x, out)); out.tolist()
        [0.0, 0.5, 1.0]
    """
    if type(scratch) is _Ref:
        reference.sigmoid(x, out, scratch.scratch)
        return
    _sigmoid(*scratch)


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
        q = _horner(s * s, lc, zero)
        m = one if x >= zero else e
        sig[i] = m / d
        acc += max(x, zero) - x * t[i] + s * q
    return acc


@_vec
def _bce_sum(z, t, sig, bits, c, ec, lc):  # pragma: no cover
    """sum(max(z, 0) - z*t + log(1 + exp(-|z|))) as a float; sig = sigmoid(z). 1-D,
    contiguous. Blocks are summed in the arrays' dtype (vectorised), blocks in float64."""
    _exp_parts(z, sig, bits, c, ec)
    pow2 = bits.view(sig.dtype)
    total = 0.0
    for start in range(0, z.size, _BLOCK):
        # a function per block: LLVM does not vectorise the loop when written inline here
        b = slice(start, min(start + _BLOCK, z.size))
        total += _bce_block(z[b], t[b], sig[b], pow2[b], c, lc)
    return total


def sigmoid_bce_sum_scratch(z: np.ndarray, t: np.ndarray, sig: np.ndarray,
                            out: np.ndarray) -> Any:
    """Scratch for :func:`sigmoid_bce_sum`: flat views, the ``2**k`` scratch, the constants.

    Example:
        >>> a = np.zeros(3); len(sigmoid_bce_sum_scratch(a, a, a.copy(), np.empty(())))
        7
    """
    flat = _flat(z, t, sig)
    if flat is None:
        return _Ref(reference.sigmoid_bce_sum_scratch(z, t, sig, out))
    return (*flat, np.empty(z.size, _bits_dtype(z.dtype)), *bce_constants(z.dtype))


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
    if type(scratch) is _Ref:
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
    flat = _flat(sig, t, out) if c.ndim == 0 else None
    if flat is None:
        return _Ref(reference.sigmoid_bce_grad_scratch(sig, t, c, out))
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
    if type(scratch) is _Ref:
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


# ----- solver updates: one loop per parameter ---------------------------------------------------
# Three loops per solver: the gradient as it is, divided by the batch size, or regularised
# and clipped (with branches: not vectorised). Each solver's loops take ``(w, g, buffers...)``,
# then the gradient rule's scalars (none, the batch size, or five), then the solver's.


@_jit
def _regularised(g, w, i, l1, l2, batch, clip, use_clip):  # pragma: no cover
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


@_jit
def _regularise(w, g, l1, l2, batch, clip, use_clip):  # pragma: no cover
    for i in range(w.size):
        g[i] = _regularised(g, w, i, l1, l2, batch, clip, use_clip)


@_jit
def _sgd_plain(w, g, eta):  # pragma: no cover
    for i in range(w.size):
        w[i] = w[i] - eta * g[i]


@_jit
def _sgd_batch(w, g, batch, eta):  # pragma: no cover
    for i in range(w.size):
        w[i] = w[i] - eta * (g[i] / batch)


@_jit
def _sgd_general(w, g, l1, l2, batch, clip, use_clip, eta):  # pragma: no cover
    for i in range(w.size):
        w[i] = w[i] - eta * _regularised(g, w, i, l1, l2, batch, clip, use_clip)


@_jit
def _momentum_plain(w, g, v, eta, mu):  # pragma: no cover
    for i in range(w.size):
        vi = mu * v[i] - eta * g[i]
        v[i] = vi
        w[i] = w[i] + vi


@_jit
def _momentum_batch(w, g, v, batch, eta, mu):  # pragma: no cover
    for i in range(w.size):
        vi = mu * v[i] - eta * (g[i] / batch)
        v[i] = vi
        w[i] = w[i] + vi


@_jit
def _momentum_general(w, g, v, l1, l2, batch, clip, use_clip, eta, mu):  # pragma: no cover
    for i in range(w.size):
        vi = mu * v[i] - eta * _regularised(g, w, i, l1, l2, batch, clip, use_clip)
        v[i] = vi
        w[i] = w[i] + vi


@_jit
def _adagrad_plain(w, g, c, eps, eta):  # pragma: no cover
    for i in range(w.size):
        gi = g[i]
        ci = c[i] + gi * gi
        c[i] = ci
        w[i] = w[i] - eta * (gi / np.sqrt(ci + eps))


@_jit
def _adagrad_batch(w, g, c, batch, eps, eta):  # pragma: no cover
    for i in range(w.size):
        gi = g[i] / batch
        ci = c[i] + gi * gi
        c[i] = ci
        w[i] = w[i] - eta * (gi / np.sqrt(ci + eps))


@_jit
def _adagrad_general(w, g, c, l1, l2, batch, clip, use_clip, eps, eta):  # pragma: no cover
    for i in range(w.size):
        gi = _regularised(g, w, i, l1, l2, batch, clip, use_clip)
        ci = c[i] + gi * gi
        c[i] = ci
        w[i] = w[i] - eta * (gi / np.sqrt(ci + eps))


@_jit
def _rms_plain(w, g, c, rho, omr, eps, eta):  # pragma: no cover
    for i in range(w.size):
        gi = g[i]
        ci = omr * (gi * gi) + rho * c[i]
        c[i] = ci
        w[i] = w[i] - eta * (gi / np.sqrt(ci + eps))


@_jit
def _rms_batch(w, g, c, batch, rho, omr, eps, eta):  # pragma: no cover
    for i in range(w.size):
        gi = g[i] / batch
        ci = omr * (gi * gi) + rho * c[i]
        c[i] = ci
        w[i] = w[i] - eta * (gi / np.sqrt(ci + eps))


@_jit
def _rms_general(w, g, c, l1, l2, batch, clip, use_clip, rho, omr, eps, eta):  # pragma: no cover
    for i in range(w.size):
        gi = _regularised(g, w, i, l1, l2, batch, clip, use_clip)
        ci = omr * (gi * gi) + rho * c[i]
        c[i] = ci
        w[i] = w[i] - eta * (gi / np.sqrt(ci + eps))


@_jit
def _adam_plain(w, g, m, v, b1, omb1, b2, omb2, eps_hat, step, decay):  # pragma: no cover
    for i in range(w.size):
        gi = g[i]
        mi = omb1 * gi + b1 * m[i]
        vi = omb2 * (gi * gi) + b2 * v[i]
        m[i] = mi
        v[i] = vi
        w[i] = w[i] * decay - step * (mi / (np.sqrt(vi) + eps_hat))


@_jit
def _adam_batch(w, g, m, v, batch, b1, omb1, b2, omb2, eps_hat, step,
                decay):  # pragma: no cover
    for i in range(w.size):
        gi = g[i] / batch
        mi = omb1 * gi + b1 * m[i]
        vi = omb2 * (gi * gi) + b2 * v[i]
        m[i] = mi
        v[i] = vi
        w[i] = w[i] * decay - step * (mi / (np.sqrt(vi) + eps_hat))


@_jit
def _adam_general(w, g, m, v, l1, l2, batch, clip, use_clip, b1, omb1, b2, omb2, eps_hat,
                  step, decay):  # pragma: no cover
    for i in range(w.size):
        gi = _regularised(g, w, i, l1, l2, batch, clip, use_clip)
        mi = omb1 * gi + b1 * m[i]
        vi = omb2 * (gi * gi) + b2 * v[i]
        m[i] = mi
        v[i] = vi
        w[i] = w[i] * decay - step * (mi / (np.sqrt(vi) + eps_hat))


Loops = tuple[Callable, Callable, Callable]


def _loop(reg: Reg, t: type, loops: Loops) -> tuple[Callable, tuple[Any, ...]]:
    """The loop of ``loops`` (plain, batch, general) for the gradient rule ``reg``, and the
    rule's scalars it takes, in the arrays' dtype ``t``."""
    plain, batch, general = loops
    l1, l2, b, clip = reg
    if l1 == 0 and l2 == 0 and clip is None:
        return (plain, ()) if b == 1 else (batch, (t(b),))
    return general, (t(l1), t(l2), t(b), t(0 if clip is None else clip), clip is not None)


def regularise(seg: Segment, reg: Reg) -> None:
    """As :func:`reference.regularise`, one pass per parameter.

    Example:
        >>> from graphcore.kernels.segments import Segment
        >>> seg = Segment.single(np.array([2.0]), np.array([4.0]), np.empty(1), {})
        >>> regularise(seg, Reg(0.0, 0.5, 2, 1.5)); seg.g.tolist()
        [1.5]
    """
    flats = seg.flat_parts
    if flats is None:
        reference.regularise(seg, reg)
        return
    if reg.plain:
        return
    l1, l2, b, clip = reg
    t = seg.g.dtype.type
    args = (t(l1), t(l2), t(b), t(0 if clip is None else clip), clip is not None)
    for f in flats:
        _regularise(f["w"], f["g"], *args)


def sgd(seg: Segment, reg: Reg, eta: float) -> None:
    """As :func:`reference.sgd`, one loop per parameter.

    Example:
        >>> from graphcore.kernels.segments import Segment
        >>> seg = Segment.single(np.array([1.0]), np.array([2.0]), np.empty(1), {})
        >>> sgd(seg, Reg(0.0, 0.0, 1, None), 0.25); seg.parts[0].w.tolist()
        [0.5]
    """
    flats = seg.flat_parts
    if flats is None:
        reference.sgd(seg, reg, eta)
        return
    t = seg.g.dtype.type
    loop, rule = _loop(reg, t, (_sgd_plain, _sgd_batch, _sgd_general))
    for f in flats:
        loop(f["w"], f["g"], *rule, t(eta))


def momentum(seg: Segment, reg: Reg, eta: float, mu: float) -> None:
    """As :func:`reference.momentum`, one loop per parameter.

    Example:
        >>> from graphcore.kernels.segments import Segment
        >>> seg = Segment.single(np.array([1.0]), np.array([2.0]), np.empty(1),
        ...                      {"velocity": np.array([1.0])})
        >>> momentum(seg, Reg(0.0, 0.0, 1, None), 0.25, 0.5); seg.parts[0].w.tolist()
        [1.0]
    """
    flats = seg.flat_parts
    if flats is None:
        reference.momentum(seg, reg, eta, mu)
        return
    t = seg.g.dtype.type
    loop, rule = _loop(reg, t, (_momentum_plain, _momentum_batch, _momentum_general))
    hp = (t(eta), t(mu))
    for f in flats:
        loop(f["w"], f["g"], f["velocity"], *rule, *hp)


def adagrad(seg: Segment, reg: Reg, eta: float, eps: float) -> None:
    """As :func:`reference.adagrad`, one loop per parameter.

    Example:
        >>> from graphcore.kernels.segments import Segment
        >>> seg = Segment.single(np.array([1.0]), np.array([2.0]), np.empty(1),
        ...                      {"cache": np.array([0.0])})
        >>> adagrad(seg, Reg(0.0, 0.0, 1, None), 0.5, 0.0); seg.parts[0].w.tolist()
        [0.5]
    """
    flats = seg.flat_parts
    if flats is None:
        reference.adagrad(seg, reg, eta, eps)
        return
    t = seg.g.dtype.type
    loop, rule = _loop(reg, t, (_adagrad_plain, _adagrad_batch, _adagrad_general))
    hp = (t(eps), t(eta))
    for f in flats:
        loop(f["w"], f["g"], f["cache"], *rule, *hp)


def rmsprop(seg: Segment, reg: Reg, eta: float, rho: float, eps: float) -> None:
    """As :func:`reference.rmsprop`, one loop per parameter.

    Example:
        >>> from graphcore.kernels.segments import Segment
        >>> seg = Segment.single(np.array([1.0]), np.array([2.0]), np.empty(1),
        ...                      {"cache": np.array([0.0])})
        >>> rmsprop(seg, Reg(0.0, 0.0, 1, None), 0.5, 0.75, 0.0); seg.parts[0].w.tolist()
        [0.0]
    """
    flats = seg.flat_parts
    if flats is None:
        reference.rmsprop(seg, reg, eta, rho, eps)
        return
    t = seg.g.dtype.type
    loop, rule = _loop(reg, t, (_rms_plain, _rms_batch, _rms_general))
    hp = (t(rho), t(1.0 - rho), t(eps), t(eta))
    for f in flats:
        loop(f["w"], f["g"], f["cache"], *rule, *hp)


def adam(seg: Segment, reg: Reg, b1: float, b2: float, eps_hat: float, step: float,
         decay: float) -> None:
    """As :func:`reference.adam`, one loop per parameter.

    Example:
        >>> from graphcore.kernels.segments import Segment
        >>> seg = Segment.single(np.array([1.0]), np.array([2.0]), np.empty(1),
        ...                      {"m": np.array([0.0]), "v": np.array([0.0])})
        >>> adam(seg, Reg(0.0, 0.0, 1, None), 0.5, 0.75, 0.0, 0.5, 1.0); seg.parts[0].w.tolist()
        [0.5]
    """
    flats = seg.flat_parts
    if flats is None:
        reference.adam(seg, reg, b1, b2, eps_hat, step, decay)
        return
    t = seg.g.dtype.type
    loop, rule = _loop(reg, t, (_adam_plain, _adam_batch, _adam_general))
    hp = (t(b1), t(1.0 - b1), t(b2), t(1.0 - b2), t(eps_hat), t(step), t(decay))
    for f in flats:
        loop(f["w"], f["g"], f["m"], f["v"], *rule, *hp)
