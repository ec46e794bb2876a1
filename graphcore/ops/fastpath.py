"""Numpy kernels shared by several ops, written for the fewest and cheapest passes.

numpy's speed per element differs by an order of magnitude between ufuncs on this kind of
machine: ``maximum`` against a Python scalar takes 4x longer than against an array of zeros,
``sign`` is not vectorised where ``ceil`` and ``minimum`` are, ``exp`` and ``log`` cost 15x an
``add``, and a float-times-bool product allocates a cast buffer on every call. The helpers
here pick the fast forms once, so every op gets them:

- :func:`filled`: read-only views of shared constant buffers (zeros, ones) to compare against;
- :func:`relu_kernel` / :func:`relu_grad_kernel`: ``max(x, 0)`` and ``g * (y > 0)``;
- :func:`sigmoid_kernel`: the sigmoid in four passes (``scipy.special.expit`` is 3x slower
  here); :func:`sigmoid_parts_kernel` also leaves ``1 + exp(-|x|)`` for a loss that needs
  its log;
- :func:`log_sum`: ``sum(log(u))`` for ``u`` in ``[1, 2]`` with one ``log`` per hundred
  elements, by taking logs of chunked products that cannot overflow.

The ``*_kernel`` factories bind their constant buffers once and return a zero-argument
kernel, as ops' ``kernel`` methods do.

Example:
    >>> import numpy as np
    >>> x = np.array([-2.0, 0.0, 3.0]); out = np.empty(3); tmp = np.empty(3)
    >>> relu_kernel(x, out)(); out.tolist()
    [0.0, 0.0, 3.0]
    >>> sigmoid_kernel(x, out)(); np.round(out, 4).tolist()
    [0.1192, 0.5, 0.9526]
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import numpy as np

from .. import accel

__all__ = [
    "compiled_ok", "filled", "relu_kernel", "relu_grad_kernel", "sigmoid_kernel",
    "sigmoid_parts_kernel", "LogSum", "log_sum",
]

Kernel = Callable[[], None]

# weak: a buffer lives as long as some kernel holds a view of it (a dropped plan frees it)
_SHARED: weakref.WeakValueDictionary[tuple[float, str], np.ndarray] = (
    weakref.WeakValueDictionary()
)


def filled(value: float, shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
    """A read-only array of ``value`` with ``shape``: a view of one buffer shared per value.

    The buffer grows to the largest size asked for; earlier views keep the old one alive, and
    it is freed when no view of it is left.

    Example:
        >>> filled(0.0, (2, 3), np.float32).sum(), filled(1.0, (2,), np.float64).tolist()
        (np.float32(0.0), [1.0, 1.0])
    """
    dt = np.dtype(dtype)
    n = int(np.prod(shape, dtype=np.int64))
    key = (float(value), dt.str)
    buf = _SHARED.get(key)
    if buf is None or buf.size < n:
        # zeros come from calloc: a big zero buffer costs no memory until it is read
        buf = np.zeros(max(n, 1), dt) if value == 0 else np.full(max(n, 1), value, dt)
        buf.flags.writeable = False
        _SHARED[key] = buf
    return buf[:n].reshape(shape)


def compiled_ok(*arrays: np.ndarray) -> bool:
    """True when numba's kernels (:mod:`graphcore.accel`) are on and ``arrays`` suit them:
    one float dtype (float32 or float64), all C-contiguous, as the compiled loops index them
    flat. Kernels ask once, when a plan is built.

    Example:
        >>> a = np.zeros((2, 3), np.float32)
        >>> with accel.disabled():
        ...     compiled_ok(a)
        False
        >>> compiled_ok(a, a.T)  # a transposed view is not C-contiguous
        False
    """
    dt = arrays[0].dtype
    return (
        dt.type in (np.float32, np.float64)
        and all(a.dtype == dt and a.flags.c_contiguous for a in arrays)
        and accel.enabled()
    )


def relu_kernel(x: np.ndarray, out: np.ndarray) -> Kernel:
    """A kernel for ``out = max(x, 0)`` (NaN stays NaN).

    Example:
        >>> out = np.empty(2); relu_kernel(np.array([-1.0, 2.0]), out)(); out.tolist()
        [0.0, 2.0]
    """
    zeros = filled(0.0, x.shape, x.dtype)

    def run() -> None:
        np.maximum(x, zeros, out=out)

    return run


def relu_grad_kernel(y: np.ndarray, g: np.ndarray, out: np.ndarray) -> Kernel:
    """A kernel for ``out = g * (y > 0)`` where ``y = max(x, 0)``, the 0/1 mask made as
    ``ceil(min(y, 1))``; ``out`` must not overlap ``y`` or ``g``.

    Example:
        >>> out = np.empty(3)
        >>> relu_grad_kernel(np.array([0.0, 1e-30, 5.0]), np.array([2.0, 2.0, 2.0]), out)()
        >>> out.tolist()
        [0.0, 2.0, 2.0]
    """
    ones = filled(1.0, y.shape, y.dtype)
    flat = None
    if y.shape == g.shape == out.shape and compiled_ok(y, g, out):
        flat = (y.reshape(-1), g.reshape(-1), out.reshape(-1), y.dtype.type(1))

    def run() -> None:
        k = accel.kernels() if flat is not None else None
        if k is not None:  # one pass instead of three
            k.relu_grad(*flat)
            return
        np.minimum(y, ones, out=out)
        np.ceil(out, out=out)
        np.multiply(out, g, out=out)

    return run


def sigmoid_kernel(x: np.ndarray, out: np.ndarray) -> Kernel:
    """A kernel for ``out = 1 / (1 + exp(-x))`` in four passes; ``out`` may be ``x``.

    The plain formula is accurate in floating point everywhere: for ``x < 0``, ``1 + e^-x``
    keeps full relative precision (sigmoid(-30) = 9.36e-14), for ``x > 0`` the result is
    within an ulp of 1, and below about -88 (float32) ``e^-x`` overflows to inf, giving 0,
    with the overflow warning silenced. With numba on (:mod:`graphcore.accel`), contiguous
    arrays take one vectorised pass instead, within 3 ulps of the exact result.

    Example:
        >>> out = np.empty(3); sigmoid_kernel(np.array([-1000.0, 0.0, 40.0]), out)()
        >>> out.tolist()
        [0.0, 0.5, 1.0]
    """

    flat = None
    if x.shape == out.shape and compiled_ok(x, out):
        from .._accel_kernels import sigmoid_args

        flat = sigmoid_args(x, out)

    def run() -> None:
        k = accel.kernels() if flat is not None else None
        if k is not None:  # one vectorised pass (a polynomial exp), within 3 ulps
            k.sigmoid(*flat)
            return
        np.negative(x, out=out)
        with np.errstate(over="ignore"):
            np.exp(out, out=out)
        np.add(out, 1.0, out=out)
        np.reciprocal(out, out=out)

    return run


def sigmoid_parts_kernel(
    x: np.ndarray, out: np.ndarray, tmp: np.ndarray, relu_sum: np.ndarray | None = None
) -> Kernel:
    """A kernel for ``out = sigmoid(x)`` that also leaves ``tmp = 1 + exp(-|x|)`` (in
    ``[1, 2]``) and, if given, the 0-d ``relu_sum = sum(max(x, 0))``: what a binary
    cross-entropy needs besides the sigmoid, from one ``exp``. ``out`` may be ``x``; ``tmp``
    must not overlap either.

    With ``e = exp(-|x|)`` (never overflows), ``sigmoid(x) = m / (1 + e)`` where ``m`` is 1
    for ``x >= 0`` and ``e`` below: small results keep full relative precision (sigmoid(-30)
    is 9.4e-14, not 0). ``m = max(e, ceil(min(max(x, 0), 1)))`` needs no bool mask.

    Example:
        >>> out, tmp = np.empty(2), np.empty(2)
        >>> sigmoid_parts_kernel(np.array([-30.0, 30.0]), out, tmp)(); float(out[0]) > 0
        True
    """
    zeros = filled(0.0, x.shape, x.dtype)
    ones = filled(1.0, x.shape, x.dtype)

    def run() -> None:
        np.abs(x, out=tmp)
        np.negative(tmp, out=tmp)
        np.exp(tmp, out=tmp)
        np.maximum(x, zeros, out=out)  # x is not read after this: out may be x
        if relu_sum is not None:
            np.sum(out, out=relu_sum)
        np.minimum(out, ones, out=out)
        np.ceil(out, out=out)
        np.maximum(out, tmp, out=out)
        np.add(tmp, ones, out=tmp)
        np.divide(out, tmp, out=out)

    return run


# products of this many factors in [1, 2] stay finite: 2**100 < float32 max (2**128)
_CHUNK = {np.dtype(np.float32): 100, np.dtype(np.float64): 1000}


class LogSum:
    """``sum(log(u))`` over a fixed-size array with values in ``[1, 2]``, prebuilt scratch.

    Multiplies ``k`` rows of a ``(k, n // k)`` view together (one vectorised pass), takes the
    ``n // k`` logs, and sums: the result differs from summing every log by float rounding.

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
    """``sum(log(u))`` for ``u`` in ``[1, 2]`` (allocates its scratch: use :class:`LogSum`
    in kernels).

    Example:
        >>> round(log_sum(np.full(1000, 2.0)), 4), round(1000 * float(np.log(2.0)), 4)
        (693.1472, 693.1472)
    """
    return float(LogSum(u.size, u.dtype)(u))
