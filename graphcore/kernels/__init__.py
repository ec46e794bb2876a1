"""Kernels: the array functions ops and solvers run, one set of names in two backends.

- :mod:`graphcore.kernels.reference`: numpy, always there;
- :mod:`graphcore.kernels.compiled`: the same names and signatures as numba loops (the
  ``fast`` extra), each fusing several numpy passes into one; imported only when used.
  Both are packages with one module per concern, the same in each: ``activations``,
  ``losses``, ``columns`` (a convolution's im2col and col2im), ``pooling`` and ``solvers``;
- :mod:`graphcore.kernels.blas`: GEMM with ``beta``, GEMV routing and axpby, which both use;
- :mod:`graphcore.kernels.windows`: sliding-window views of images, for the numpy kernels;
- :mod:`graphcore.kernels.segments`: the arrays a solver kernel runs over.

:func:`backend` says which of the two to use now (:mod:`graphcore.accel` switches). A tape or
Lisp machine asks once, when it compiles a plan or is built, and keeps the answer in its
``ExecContext.kernels``, where ops' kernels find it; solvers ask at every step. Both backends
give the same results to float rounding.

Example:
    >>> import numpy as np, graphcore as gc
    >>> with gc.accel.disabled():
    ...     k = backend()
    >>> k.__name__
    'graphcore.kernels.reference'
    >>> x, out = np.array([-1.0, 2.0]), np.empty(2)
    >>> k.relu(x, out, k.relu_scratch(x, out)); out.tolist()
    [0.0, 2.0]
"""

from __future__ import annotations

from types import ModuleType

from .. import accel
from . import reference
from .constants import filled

__all__ = ["backend", "filled", "reference"]


def backend() -> ModuleType:
    """The kernel module to use now: :mod:`~graphcore.kernels.compiled` while
    :func:`graphcore.accel.enabled`, else :mod:`~graphcore.kernels.reference`.

    Example:
        >>> import graphcore as gc
        >>> with gc.accel.disabled():
        ...     backend() is reference
        True
    """
    return accel.kernels() or reference
