"""The numpy loss kernels: the sigmoid binary cross-entropy (elementwise, or summed) and the
softmax cross-entropy of (batch, classes) logits, each with its gradient, and their helpers
(:func:`sigmoid_parts`, :class:`LogSum`).

:mod:`graphcore.kernels.compiled.losses` has each kernel under the same name and signature.

Example:
    >>> import numpy as np
    >>> z, t, sig, out = np.array([0.0, 0.0]), np.ones(2), np.empty(2), np.empty(())
    >>> sigmoid_bce_sum(z, t, 0.5, sig, out, sigmoid_bce_sum_scratch(z, t, sig, out))
    >>> round(float(out), 4), sig.tolist()
    (0.6931, [0.5, 0.5])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..blas import can_gemm, gemm_into
from ..constants import filled

__all__ = [
    "sigmoid_bce", "sigmoid_bce_scratch", "sigmoid_bce_sum", "sigmoid_bce_sum_scratch",
    "sigmoid_bce_grad", "sigmoid_bce_grad_scratch", "softmax_ce_sum", "softmax_ce_sum_scratch",
    "softmax_ce_grad", "softmax_ce_grad_scratch",
]

Pass = Callable[[], Any]


# ----- the sigmoid and what a cross-entropy needs besides it, from one exp --------------------


def sigmoid_parts(
    x: np.ndarray, out: np.ndarray, tmp: np.ndarray, relu_sum: np.ndarray | None = None
) -> None:
    """``out = sigmoid(x)``, also leaving ``tmp = 1 + exp(-|x|)`` (in ``[1, 2]``) and, if
    given, the 0-d ``relu_sum = sum(max(x, 0))``: what a binary cross-entropy needs besides
    the sigmoid, from one ``exp``. ``out`` may be ``x``; ``tmp`` must not overlap either. (A
    helper of the numpy cross-entropy kernels, not a kernel of both backends.)

    With ``e = exp(-|x|)`` (never overflows), ``sigmoid(x) = m / (1 + e)`` where ``m`` is 1
    for ``x >= 0`` and ``e`` below: small results keep full relative precision (sigmoid(-30)
    is 9.4e-14, not 0). ``m = max(e, ceil(min(max(x, 0), 1)))`` needs no bool mask.

    Example:
        >>> out, tmp = np.empty(2), np.empty(2)
        >>> sigmoid_parts(np.array([-30.0, 30.0]), out, tmp); float(out[0]) > 0
        True
    """
    total = None if relu_sum is None else (lambda: np.sum(out, out=relu_sum))
    _sigmoid_parts(x, out, tmp, filled(0.0, x.shape, x.dtype), filled(1.0, x.shape, x.dtype),
                   total)


def _sigmoid_parts(x: np.ndarray, out: np.ndarray, tmp: np.ndarray, zeros: np.ndarray,
                   ones: np.ndarray, sum_relu: Pass | None) -> None:
    """:func:`sigmoid_parts` with its constants given, and ``sum_relu`` run while ``out``
    holds ``max(x, 0)``."""
    np.abs(x, out=tmp)
    np.negative(tmp, out=tmp)
    np.exp(tmp, out=tmp)
    np.maximum(x, zeros, out=out)  # x is not read after this: out may be x
    if sum_relu is not None:
        sum_relu()
    np.minimum(out, ones, out=out)
    np.ceil(out, out=out)
    np.maximum(out, tmp, out=out)
    np.add(tmp, ones, out=tmp)
    np.divide(out, tmp, out=out)


# ----- sigmoid binary cross-entropy ----------------------------------------------------------


class _BceScratch:
    """What the numpy cross-entropy kernels need besides their arrays."""

    def __init__(self, z: np.ndarray, t: np.ndarray) -> None:
        self.d = np.empty(z.shape, z.dtype)  # 1 + e^-|z|, in [1, 2]; then scratch
        self.zeros = filled(0.0, z.shape, z.dtype)
        self.ones = filled(1.0, z.shape, z.dtype)


def sigmoid_bce_scratch(z: np.ndarray, t: np.ndarray, sig: np.ndarray,
                        out: np.ndarray) -> _BceScratch:
    """Scratch for :func:`sigmoid_bce`, made for these arrays.

    Example:
        >>> sigmoid_bce_scratch(*[np.ones(2)] * 4).d.shape
        (2,)
    """
    return _BceScratch(z, t)


def sigmoid_bce(z: np.ndarray, t: np.ndarray, sig: np.ndarray, out: np.ndarray,
                scratch: _BceScratch) -> None:
    """Elementwise ``out = max(z, 0) - z*t + log1p(exp(-|z|))`` (stable for any ``z``), and
    ``sig = sigmoid(z)`` from the same ``exp``, for the gradient.

    Example:
        >>> z, t = np.array([0.0, 1000.0]), np.array([1.0, 1.0])
        >>> sig, out = np.empty(2), np.empty(2)
        >>> sigmoid_bce(z, t, sig, out, sigmoid_bce_scratch(z, t, sig, out))
        >>> np.round(out, 4).tolist(), sig.tolist()
        ([0.6931, 0.0], [0.5, 1.0])
    """
    d = scratch.d
    _sigmoid_parts(z, sig, d, scratch.zeros, scratch.ones, None)
    np.log(d, out=out)
    np.maximum(z, scratch.zeros, out=d)
    np.add(out, d, out=out)
    np.multiply(z, t, out=d)
    np.subtract(out, d, out=out)


# products of this many factors in [1, 2] stay finite: 2**100 < float32 max (2**128)
_CHUNK = {np.dtype(np.float32): 100, np.dtype(np.float64): 1000}


class LogSum:
    """``sum(log(u))`` over a fixed-size array with values in ``[1, 2]``, prebuilt scratch.

    Multiplies ``k`` rows of a ``(k, n // k)`` view together (one vectorised pass), takes the
    ``n // k`` logs, and sums: one ``log`` per hundred elements, and the result differs from
    summing every log by float rounding.

    Example:
        >>> u = np.full(250, 1.5); round(float(LogSum(250, u.dtype)(u)), 6)
        101.366277
    """

    def __init__(self, n: int, dtype: np.dtype) -> None:
        self.k = k = _CHUNK.get(np.dtype(dtype), 100)
        self.m = (n // k) * k
        self.prod = np.empty(max(n // k, 1), dtype)
        self.rest = np.empty(n - self.m, dtype)
        self.acc = np.empty((), dtype)
        self.acc_rest = np.empty((), dtype)

    def __call__(self, u: np.ndarray) -> np.ndarray:
        u = u.reshape(-1)
        k, m, prod = self.k, self.m, self.prod
        total = self.acc
        if m:
            np.multiply.reduce(u[:m].reshape(k, m // k), axis=0, out=prod)
            np.log(prod, out=prod)
            np.sum(prod, out=total)
        else:
            total[...] = 0
        if self.rest.size:
            np.log(u[m:], out=self.rest)
            np.sum(self.rest, out=self.acc_rest)
            np.add(total, self.acc_rest, out=total)
        return total


def log_sum(u: np.ndarray) -> float:
    """``sum(log(u))`` for ``u`` in ``[1, 2]`` (allocates its scratch: kernels use
    :class:`LogSum`).

    Example:
        >>> round(log_sum(np.full(1000, 2.0)), 4), round(1000 * float(np.log(2.0)), 4)
        (693.1472, 693.1472)
    """
    return float(LogSum(u.size, u.dtype)(u))


class _BceSumScratch(_BceScratch):
    """What the numpy :func:`sigmoid_bce_sum` needs besides its arrays."""

    def __init__(self, z: np.ndarray, t: np.ndarray, sig: np.ndarray) -> None:
        super().__init__(z, t)
        self.pos, self.zt = np.empty((), z.dtype), np.empty((), z.dtype)
        self.log_sum = LogSum(z.size, z.dtype)
        self.sum_pos = _total(sig, self.pos)
        if z.flags.c_contiguous and t.flags.c_contiguous and z.ndim:
            z1, t1, zt = z.reshape(-1), t.reshape(-1), self.zt

            def dot_zt() -> None:  # BLAS dot: one pass, no temporary
                np.dot(z1, t1, out=zt)
        else:
            d, zt = self.d, self.zt

            def dot_zt() -> None:
                np.multiply(z, t, out=d)
                np.sum(d, out=zt)

        self.dot_zt = dot_zt


def _total(a: np.ndarray, out: np.ndarray) -> Pass:
    """``out = sum(a)`` into a 0-d array: a BLAS dot with a ones vector when ``a`` is
    C-contiguous (a fifth of the time of numpy's pairwise sum on the autoencoder's
    (100, 784)), else numpy's sum."""
    if a.flags.c_contiguous and a.size:
        a1, ones = a.reshape(-1), filled(1.0, (a.size,), a.dtype)
        return lambda: np.dot(a1, ones, out=out)
    return lambda: np.sum(a, out=out)


def sigmoid_bce_sum_scratch(z: np.ndarray, t: np.ndarray, sig: np.ndarray,
                            out: np.ndarray) -> _BceSumScratch:
    """Scratch for :func:`sigmoid_bce_sum`, made for these arrays.

    Example:
        >>> sigmoid_bce_sum_scratch(np.ones(3), np.ones(3), np.ones(3), np.ones(())).d.shape
        (3,)
    """
    return _BceSumScratch(z, t, sig)


def sigmoid_bce_sum(z: np.ndarray, t: np.ndarray, scale: float, sig: np.ndarray,
                    out: np.ndarray, scratch: _BceSumScratch) -> None:
    """The 0-d ``out = scale * sum(max(z, 0) - z*t + log1p(exp(-|z|)))``, and
    ``sig = sigmoid(z)`` for the gradient, from one ``exp`` and one ``log`` per hundred
    elements (:class:`LogSum`).

    Example:
        >>> z, t, sig, out = np.array([0.0, 0.0]), np.ones(2), np.empty(2), np.empty(())
        >>> sigmoid_bce_sum(z, t, 0.5, sig, out, sigmoid_bce_sum_scratch(z, t, sig, out))
        >>> round(float(out), 4), sig.tolist()
        (0.6931, [0.5, 0.5])
    """
    sc = scratch
    _sigmoid_parts(z, sig, sc.d, sc.zeros, sc.ones, sc.sum_pos)
    np.add(sc.pos, sc.log_sum(sc.d), out=out)
    sc.dot_zt()  # after log_sum: may use d as scratch
    np.subtract(out, sc.zt, out=out)
    np.multiply(out, scale, out=out)


def sigmoid_bce_grad_scratch(sig: np.ndarray, t: np.ndarray, c: np.ndarray,
                             out: np.ndarray) -> None:
    """Scratch for :func:`sigmoid_bce_grad`: none in numpy.

    Example:
        >>> sigmoid_bce_grad_scratch(*[np.ones(2)] * 4) is None
        True
    """
    return None


def sigmoid_bce_grad(sig: np.ndarray, t: np.ndarray, c: np.ndarray, out: np.ndarray,
                     scratch: None) -> None:
    """``out = (sig - t) * c``, the cross-entropy's gradient for the logits from the saved
    sigmoid; ``c`` is 0-d (a mean's or sum's factor) or of ``out``'s shape.

    Example:
        >>> out = np.empty(2)
        >>> sigmoid_bce_grad(np.array([0.5, 1.0]), np.ones(2), np.array(2.0), out, None)
        >>> out.tolist()
        [-1.0, 0.0]
    """
    np.subtract(sig, t, out=out)
    np.multiply(out, c, out=out)


# ----- softmax cross-entropy, (batch, classes) logits and float targets ----------------------


class _SoftmaxSumScratch:
    """What the numpy :func:`softmax_ce_sum` needs besides its arrays: row maxima and logs,
    and the row sums and the two contractions as BLAS calls where the layouts allow."""

    def __init__(self, z: np.ndarray, t: np.ndarray, e: np.ndarray, s: np.ndarray,
                 st: np.ndarray) -> None:
        dt = z.dtype
        self.m, self.ls = np.empty(s.shape, dt), np.empty(s.shape, dt)
        self.td, self.sl = np.empty((), dt), np.empty((), dt)
        self.sum_e = _row_sums(e, s)
        self.sum_t = _row_sums(t, st)
        self.dot_td = _contract(t, e, self.td, z.shape)
        self.dot_sl = _contract(st, self.ls, self.sl, s.shape)


def _row_sums(a: np.ndarray, out: np.ndarray) -> Pass:
    """``out = a.sum(1, keepdims=True)``: a GEMV with a ones vector when BLAS takes the
    arrays (half the time of numpy's reduction on (100, 10))."""
    ones = filled(1.0, (a.shape[1], 1), a.dtype)
    if a.size and can_gemm(a, ones, out):
        return gemm_into(a, ones, out, 0.0)
    return lambda: np.sum(a, axis=1, keepdims=True, out=out)


def _contract(a: np.ndarray, b: np.ndarray, out: np.ndarray, shape: tuple[int, ...]) -> Pass:
    """``out = sum(a * b)`` into a 0-d array: a BLAS dot over flat views when both are
    C-contiguous, else a multiply into a scratch array and a sum."""
    if a.flags.c_contiguous and b.flags.c_contiguous:
        a1, b1 = a.reshape(-1), b.reshape(-1)
        return lambda: np.dot(a1, b1, out=out)
    tmp = np.empty(shape, out.dtype)

    def run() -> None:
        np.multiply(a, b, out=tmp)
        np.sum(tmp, out=out)

    return run


def softmax_ce_sum_scratch(z: np.ndarray, t: np.ndarray, e: np.ndarray, s: np.ndarray,
                           st: np.ndarray, out: np.ndarray) -> _SoftmaxSumScratch:
    """Scratch for :func:`softmax_ce_sum`, made for these arrays.

    Example:
        >>> z = np.ones((2, 3)); k = np.ones((2, 1))
        >>> softmax_ce_sum_scratch(z, z, z, k, k, np.empty(())).m.shape
        (2, 1)
    """
    return _SoftmaxSumScratch(z, t, e, s, st)


def softmax_ce_sum(z: np.ndarray, t: np.ndarray, scale: float, e: np.ndarray, s: np.ndarray,
                   st: np.ndarray, out: np.ndarray, scratch: _SoftmaxSumScratch) -> None:
    """The 0-d ``out = scale * sum_r(-sum_j t_rj * log_softmax(z_r)_j)`` for (batch, classes)
    logits ``z`` and float targets ``t``, leaving for the gradient ``e = exp(z - max)``, and
    the row sums ``s`` of ``e`` and ``st`` of ``t`` (shape (batch, 1)).

    Computed as ``sum_r st_r * log(s_r) - sum(t * (z - max))``: totals, not per-row losses.

    Example:
        >>> z, t = np.array([[1000.0, -1000.0]]), np.array([[0.0, 1.0]])
        >>> e, s, st, out = np.empty((1, 2)), np.empty((1, 1)), np.empty((1, 1)), np.empty(())
        >>> softmax_ce_sum(z, t, 1.0, e, s, st, out,
        ...                softmax_ce_sum_scratch(z, t, e, s, st, out)); float(out)
        2000.0
    """
    sc = scratch
    np.max(z, axis=1, keepdims=True, out=sc.m)
    np.subtract(z, sc.m, out=e)
    sc.dot_td()
    np.exp(e, out=e)
    sc.sum_e()
    np.log(s, out=sc.ls)
    sc.sum_t()
    sc.dot_sl()
    np.subtract(sc.sl, sc.td, out=out)
    np.multiply(out, scale, out=out)


def softmax_ce_grad_scratch(e: np.ndarray, s: np.ndarray, st: np.ndarray, t: np.ndarray,
                            c: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Scratch for :func:`softmax_ce_grad`: one array of ``s``'s shape.

    Example:
        >>> k = np.ones((2, 1)); z = np.ones((2, 3))
        >>> softmax_ce_grad_scratch(z, k, k, z, np.array(1.0), z).shape
        (2, 1)
    """
    return np.empty(s.shape, e.dtype)


def softmax_ce_grad(e: np.ndarray, s: np.ndarray, st: np.ndarray, t: np.ndarray,
                    c: np.ndarray, out: np.ndarray, scratch: np.ndarray) -> None:
    """``out = (softmax(z) * st - t) * c``, the gradient of :func:`softmax_ce_sum` for the
    logits from its saved ``e``, ``s`` and ``st``; ``c`` is the 0-d factor.

    Example:
        >>> e, s, st = np.array([[1.0, 1.0]]), np.array([[2.0]]), np.array([[1.0]])
        >>> t, out = np.array([[1.0, 0.0]]), np.empty((1, 2))
        >>> softmax_ce_grad(e, s, st, t, np.array(1.0), out,
        ...                 softmax_ce_grad_scratch(e, s, st, t, None, out)); out.tolist()
        [[-0.5, 0.5]]
    """
    np.divide(st, s, out=scratch)
    np.multiply(e, scratch, out=out)
    np.subtract(out, t, out=out)
    np.multiply(out, c, out=out)
