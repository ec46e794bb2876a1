"""BLAS kernels: GEMM with transpose flags and ``beta`` (routed to GEMV for vector shapes) and
``axpby``, for C-ordered numpy arrays.

``gemm_into(a, b, c, beta)`` returns a closure computing ``c = a @ b + beta * c`` in place,
without temporaries: numpy's ``matmul`` cannot accumulate (``beta``), which the tape machine
uses to add a weight gradient straight into ``w.grad``. Transposed views are passed to BLAS
with transpose flags rather than copied.

The BLAS is numpy's own OpenBLAS, called through its CBLAS interface with ``ctypes``: one
thread pool for every product in the process (alternating numpy's and scipy's OpenBLAS
pools makes their idle threads spin against each other), and, measured on the talk's MLP
shapes, 1.5x faster than the OpenBLAS bundled with scipy. Where numpy's library cannot be
found, scipy's BLAS wrappers are used instead, imported then rather than with this module
(scipy's BLAS costs ~30 MiB that a default install otherwise never needs).
``Axpby(x, y)(alpha, beta)`` computes ``y = alpha * x + beta * y`` in one pass (the
solvers' moment updates).

Example:
    >>> import numpy as np
    >>> a, b = np.ones((2, 3)), np.ones((3, 4)); c = np.ones((2, 4))
    >>> gemm_into(a, b, c, 1.0)(); float(c[0, 0])
    4.0
"""

from __future__ import annotations

import ctypes
import glob
import os
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["gemm_into", "can_gemm", "blas_backend", "Axpby"]

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112


def _load_numpy_cblas() -> dict[tuple[str, np.dtype], Any] | None:
    """numpy's bundled OpenBLAS ``cblas_{s,d}{gemm,gemv,axpy,axpby}`` by ``(kind, dtype)``, or
    None when it cannot be found."""
    libdir = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs")
    for path in sorted(glob.glob(os.path.join(libdir, "libscipy_openblas*.so*"))):
        try:
            lib = ctypes.CDLL(path)  # already loaded by numpy: the same library and pool
        except OSError:
            continue
        for suffix, idx in (("64_", ctypes.c_int64), ("", ctypes.c_int)):
            try:
                fs = {
                    (kind, np.dtype(dt)): getattr(lib, f"scipy_cblas_{p}{kind}{suffix}")
                    for kind in ("gemm", "gemv", "axpy", "axpby")
                    for p, dt in (("s", np.float32), ("d", np.float64))
                }
            except AttributeError:
                continue
            e, ptr = ctypes.c_int, ctypes.c_void_p
            for (kind, dt), f in fs.items():
                r = ctypes.c_float if dt == np.float32 else ctypes.c_double
                f.argtypes = {
                    "gemm": [e, e, e, idx, idx, idx, r, ptr, idx, ptr, idx, r, ptr, idx],
                    # order, trans, M, N, alpha, A, lda, x, incx, beta, y, incy
                    "gemv": [e, e, idx, idx, r, ptr, idx, ptr, idx, r, ptr, idx],
                    "axpy": [idx, r, ptr, idx, ptr, idx],  # n, alpha, x, incx, y, incy
                    "axpby": [idx, r, ptr, idx, r, ptr, idx],  # ... beta before y
                }[kind]
                f.restype = None
            return fs
    return None


_CBLAS = _load_numpy_cblas()


class Axpby:
    """``y = alpha * x + beta * y`` in one BLAS pass, for fixed contiguous ``x`` and ``y``.

    ``x`` and ``y`` are bound once (their pointers are taken at construction); ``alpha`` and
    ``beta`` are given per call, so a learning-rate schedule costs nothing. Without numpy's
    OpenBLAS it falls back to numpy in up to three passes and overwrites ``x``, so pass a
    scratch array as ``x``.

    Example:
        >>> x, y = np.array([1.0, 2.0]), np.array([10.0, 10.0])
        >>> Axpby(x, y)(0.5, 2.0); y.tolist()
        [20.5, 21.0]
    """

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        if (
            x.dtype != y.dtype
            or x.dtype not in (np.float32, np.float64)
            or x.size != y.size
            or not (x.flags.c_contiguous and y.flags.c_contiguous)
        ):
            raise ValueError("Axpby: x and y must be C-contiguous float arrays of one size/dtype")
        self.x, self.y = x, y
        fs = _CBLAS or {}
        self._axpy = fs.get(("axpy", x.dtype))
        self._axpby = fs.get(("axpby", x.dtype))
        self._args = (x.size, x.ctypes.data, y.ctypes.data)

    def __call__(self, alpha: float, beta: float = 1.0) -> None:
        n, xp, yp = self._args
        if n == 0:
            return
        if beta == 1.0 and self._axpy is not None:
            self._axpy(n, alpha, xp, 1, yp, 1)
        elif self._axpby is not None:
            self._axpby(n, alpha, xp, 1, beta, yp, 1)
        else:
            x, y = self.x, self.y
            if beta != 1.0:
                np.multiply(y, beta, out=y)
            np.multiply(x, alpha, out=x)
            np.add(y, x.reshape(y.shape), out=y)


def _c_args(fn: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """``args`` converted once to ``fn``'s ctypes argument types: ctypes then passes them as
    they are, instead of converting a dozen Python numbers on every call (~0.8 us, as much as
    a whole product at batch 1 costs)."""
    types = getattr(fn, "argtypes", None)
    if not types or len(types) != len(args):
        return args
    return tuple(t(v) for t, v in zip(types, args))


def blas_backend() -> str:
    """Which BLAS ``gemm_into`` calls: ``"numpy-openblas"`` or ``"scipy"``.

    Example:
        >>> blas_backend() in ("numpy-openblas", "scipy")
        True
    """
    return "numpy-openblas" if _CBLAS is not None else "scipy"


def _row_major(m: np.ndarray) -> tuple[int, int] | None:
    """``(trans flag, leading dimension)`` describing ``m`` to row-major CBLAS, or None."""
    isz = m.itemsize
    r, c = m.strides
    if c == isz and r >= isz * max(1, m.shape[1]) and r % isz == 0:
        return _NO_TRANS, r // isz
    if r == isz and c >= isz * max(1, m.shape[0]) and c % isz == 0:
        return _TRANS, c // isz
    return None


def _as_fortran_operand(m: np.ndarray) -> tuple[np.ndarray, int] | None:
    """``(arr, trans)`` with ``arr`` Fortran-ordered and ``op(arr) == m.T``, or None."""
    t = m.T
    if t.flags.f_contiguous:
        return t, 0
    if m.flags.f_contiguous:
        return m, 1
    return None


def _gemv_args(
    a: np.ndarray, b: np.ndarray, c: np.ndarray, ta: int, lda: int, tb: int, ldb: int,
    beta: float,
) -> tuple[Any, ...] | None:
    """CBLAS GEMV arguments computing ``c = a @ b + beta * c`` when ``a`` has one row
    (``c = b.T @ a[0]``) or ``b`` one column (``c = a @ b[:, 0]``); None when a vector
    stride is not a whole number of elements."""
    isz = c.itemsize
    m, k = a.shape
    n = b.shape[1]
    if m == 1:  # y(n) = op(b)^T x, x = a's row
        mat, ld, x, xs, y, ys = b, ldb, a, a.strides[1], c, c.strides[1]
        rows, cols, trans = (k, n, _TRANS) if tb == _NO_TRANS else (n, k, _NO_TRANS)
    else:  # y(m) = op(a) x, x = b's column
        mat, ld, x, xs, y, ys = a, lda, b, b.strides[0], c, c.strides[0]
        rows, cols, trans = (m, k, _NO_TRANS) if ta == _NO_TRANS else (k, m, _TRANS)
    if xs <= 0 or ys <= 0 or xs % isz or ys % isz:
        return None
    return (_ROW_MAJOR, trans, rows, cols, 1.0, mat.ctypes.data, ld, x.ctypes.data, xs // isz,
            beta, y.ctypes.data, ys // isz)


def can_gemm(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> bool:
    """Whether ``gemm_into`` can run on these arrays without copying.

    Example:
        >>> can_gemm(np.ones((2, 3)), np.ones((3, 4)), np.ones((2, 4)))
        True
    """
    ok = (
        a.ndim == 2 and b.ndim == 2 and c.ndim == 2
        and a.dtype == b.dtype == c.dtype
        and c.dtype in (np.float32, np.float64)
        and c.flags.c_contiguous
        and min(a.shape + b.shape) > 0
    )
    if not ok:
        return False
    if _CBLAS is not None:
        return _row_major(a) is not None and _row_major(b) is not None
    return _as_fortran_operand(a) is not None and _as_fortran_operand(b) is not None


def gemm_into(a: np.ndarray, b: np.ndarray, c: np.ndarray, beta: float) -> Callable[[], None]:
    """A closure for ``c[...] = a @ b + beta * c``; ``c`` must be C-contiguous.

    Works in the transposed (Fortran) view: ``c.T = b.T @ a.T``, so no array is copied.

    Example:
        >>> a = np.arange(6.0).reshape(2, 3); b = np.ones((3, 2)); c = np.zeros((2, 2))
        >>> gemm_into(a, b.T.copy().T, c, 0.0)(); c.tolist()
        [[3.0, 3.0], [12.0, 12.0]]
    """
    if not can_gemm(a, b, c):
        raise ValueError("gemm_into: operands are not BLAS-compatible without a copy")
    if _CBLAS is not None:
        (ta, lda), (tb, ldb) = _row_major(a), _row_major(b)  # type: ignore[misc]
        m, k = a.shape
        n = b.shape[1]
        gemv = _gemv_args(a, b, c, ta, lda, tb, ldb, float(beta)) if 1 in (m, n) else None
        if gemv is not None:  # a vector product: GEMV is 2x faster than GEMM with m or n 1
            args, fn = gemv, _CBLAS[("gemv", c.dtype)]
            where = (7, 5) if m == 1 else (5, 7)  # GEMV's (matrix, vector) hold (b, a) or (a, b)
        else:
            args = (_ROW_MAJOR, ta, tb, m, n, k, 1.0, a.ctypes.data, lda, b.ctypes.data, ldb,
                    float(beta), c.ctypes.data, c.strides[0] // c.itemsize)
            fn = _CBLAS[("gemm", c.dtype)]
            where = (7, 9)
        args = _c_args(fn, args)
        keep = (a, b, c)  # the closure keeps the arrays, so the pointers stay valid

        def run_cblas() -> None:
            fn(*args)

        run_cblas.keep = keep  # type: ignore[attr-defined]
        pointers = tuple(args[i] for i in where)
        if all(isinstance(p, ctypes.c_void_p) for p in pointers):
            # the addresses of a and b as the call passes them: a plan points them at another
            # array of the same shape and strides for a run (reading a batch where it lies
            # costs a pointer, copying it a pass over it), then back
            run_cblas.pointers = pointers  # type: ignore[attr-defined]
        return run_cblas
    # late import: only machines without numpy's OpenBLAS pay for scipy's (~30 MiB)
    from scipy.linalg import blas

    f = blas.sgemm if c.dtype == np.float32 else blas.dgemm
    # can_gemm checked that both have a Fortran layout
    bt, tb = _as_fortran_operand(b)  # type: ignore[misc]  # op(bt) = b.T
    at, ta = _as_fortran_operand(a)  # type: ignore[misc]  # op(at) = a.T
    ct = c.T
    beta = float(beta)

    def run() -> None:
        f(1.0, bt, at, beta, ct, tb, ta, 1)

    return run
