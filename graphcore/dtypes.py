"""Element types of nodes: ``Float64``, ``Float32``, ``Int64``, ``Int32``, ``Bool``.

A :class:`Dtype` is a thin, named wrapper over a numpy dtype so that graph printouts
read like Gorgonia (``Float32``) while kernels use plain numpy.

Example:
    >>> import graphcore as gc
    >>> gc.Float32.np
    dtype('float32')
    >>> gc.as_dtype("float64") is gc.Float64
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Dtype", "Float64", "Float32", "Int64", "Int32", "Bool", "as_dtype", "DtypeLike"]


@dataclass(frozen=True)
class Dtype:
    """A node's element type.

    Example:
        >>> Float32.is_float, Int64.is_float
        (True, False)
    """

    name: str
    np: np.dtype

    @property
    def is_float(self) -> bool:
        """True for the differentiable types ``Float32`` and ``Float64``.

        Example:
            >>> [d.name for d in (Float64, Float32, Int64, Int32, Bool) if d.is_float]
            ['Float64', 'Float32']
        """
        return self.np.kind == "f"

    @property
    def itemsize(self) -> int:
        """Bytes per element.

        Example:
            >>> Float32.itemsize, Float64.itemsize, Bool.itemsize
            (4, 8, 1)
        """
        return self.np.itemsize

    def __repr__(self) -> str:
        return self.name

    __str__ = __repr__


Float64 = Dtype("Float64", np.dtype(np.float64))
Float32 = Dtype("Float32", np.dtype(np.float32))
Int64 = Dtype("Int64", np.dtype(np.int64))
Int32 = Dtype("Int32", np.dtype(np.int32))
Bool = Dtype("Bool", np.dtype(np.bool_))

_ALL = (Float64, Float32, Int64, Int32, Bool)
_BY_NP = {d.np: d for d in _ALL}

DtypeLike = Any  # Dtype, numpy dtype, numpy scalar type, or a string such as "float32"


def as_dtype(dt: DtypeLike) -> Dtype:
    """Turn a :class:`Dtype`, numpy dtype or string into one of graphcore's dtypes.

    Raises ``TypeError`` for types graphcore does not support (float16, complex, ...).

    Example:
        >>> as_dtype(np.float32)
        Float32
    """
    if isinstance(dt, Dtype):
        return dt
    try:
        npdt = np.dtype(dt)
    except TypeError as e:
        names = ", ".join(d.name for d in _ALL)
        raise TypeError(f"{dt!r} is not a dtype; use one of {names}") from e
    if npdt not in _BY_NP:
        raise TypeError(
            f"dtype {npdt} is not supported; use one of {', '.join(d.name for d in _ALL)}"
        )
    return _BY_NP[npdt]
