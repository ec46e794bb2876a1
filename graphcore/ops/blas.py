"""BLAS GEMM through scipy with transpose flags and ``beta``, for C-ordered numpy arrays.

``gemm_into(a, b, c, beta)`` returns a closure computing ``c = a @ b + beta * c`` in place,
without temporaries: numpy's ``matmul`` cannot accumulate (``beta``), which the tape machine
uses to add a weight gradient straight into ``w.grad``. Transposed views are passed to BLAS
with transpose flags rather than copied.

Example:
    >>> import numpy as np
    >>> a, b = np.ones((2, 3)), np.ones((3, 4)); c = np.ones((2, 4))
    >>> gemm_into(a, b, c, 1.0)(); float(c[0, 0])
    4.0
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.linalg import blas

__all__ = ["gemm_into", "can_gemm"]


def _as_fortran_operand(m: np.ndarray) -> tuple[np.ndarray, int] | None:
    """``(arr, trans)`` with ``arr`` Fortran-ordered and ``op(arr) == m.T``, or None."""
    t = m.T
    if t.flags.f_contiguous:
        return t, 0
    if m.flags.f_contiguous:
        return m, 1
    return None


def can_gemm(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> bool:
    """Whether ``gemm_into`` can run on these arrays without copying.

    Example:
        >>> can_gemm(np.ones((2, 3)), np.ones((3, 4)), np.ones((2, 4)))
        True
    """
    return (
        a.ndim == 2 and b.ndim == 2 and c.ndim == 2
        and a.dtype == b.dtype == c.dtype
        and c.dtype in (np.float32, np.float64)
        and c.flags.c_contiguous
        and _as_fortran_operand(a) is not None
        and _as_fortran_operand(b) is not None
    )


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
    f = blas.sgemm if c.dtype == np.float32 else blas.dgemm
    bt, tb = _as_fortran_operand(b)  # op(bt) = b.T
    at, ta = _as_fortran_operand(a)  # op(at) = a.T
    ct = c.T
    beta = float(beta)

    def run() -> None:
        f(1.0, bt, at, beta, ct, tb, ta, 1)

    return run
