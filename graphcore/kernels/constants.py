"""Shared read-only constant buffers (zeros, ones) that kernels compare and multiply against.

numpy's ``maximum`` against an array of zeros is 4x faster than against the scalar 0, and a
float mask beats a bool one, so kernels keep constant arrays of their operands' shape. One
buffer per value and dtype serves every kernel: :func:`filled` hands out views of it.

Example:
    >>> import numpy as np
    >>> filled(0.0, (2, 2), np.float32).tolist()
    [[0.0, 0.0], [0.0, 0.0]]
"""

from __future__ import annotations

import weakref

import numpy as np

__all__ = ["filled"]

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
