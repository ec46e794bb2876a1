"""Initializers: ``init(dtype, shape) -> new array``, Gorgonia's ``InitWFn``.

Pass one to a node constructor with ``WithInit(GlorotN(1.0))``, or call it directly. Random
initializers draw from :func:`graphcore.rng.get_rng` at call time, always in float64, then cast,
so ``SetSeed(n)`` makes a draw reproducible bit for bit, and a float32 draw equals the float64
draw of the same seed rounded to float32.

Differences from Gorgonia, on purpose: ``GlorotU`` is uniform in float32 too (Gorgonia's
float32 version drew from the normal one), ``HeN``/``HeU`` work for float32 and for 1-D shapes,
and every draw is seeded by ``SetSeed``.

Example:
    >>> import graphcore as gc
    >>> gc.SetSeed(0)
    >>> w = gc.GlorotN(1.0)(gc.Float32, (784, 250))
    >>> w.dtype, w.shape
    (dtype('float32'), (784, 250))
    >>> gc.Ones()(gc.Int64, (2,)).tolist()
    [1, 1]

Any function ``(dtype, shape) -> array`` is an initializer too (an :data:`InitWFn`):

    >>> def Eye(dt, shape):
    ...     return np.eye(*shape, dtype=gc.as_dtype(dt).np)
    >>> g = gc.NewGraph()
    >>> w = gc.NewMatrix(g, gc.Float64, gc.WithShape(2, 3), gc.WithInit(Eye), gc.WithName("w"))
    >>> w.value
    array([[1., 0., 0.],
           [0., 1., 0.]])
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .dtypes import Dtype, DtypeLike, as_dtype
from .errors import DtypeError, ShapeError
from .rng import get_rng

__all__ = [
    "InitWFn",
    "Initializer",
    "Zeroes",
    "Ones",
    "ValuesOf",
    "RangedFrom",
    "Gaussian",
    "Uniform",
    "GlorotN",
    "GlorotU",
    "HeN",
    "HeU",
]

# A typing alias cannot carry a __doc__, so the string below is its documentation (read by
# mkdocstrings); the same example runs as a doctest in the module docstring.
InitWFn = Callable[[DtypeLike, tuple[int, ...]], np.ndarray]
"""The type of an initializer: ``(dtype, shape) -> np.ndarray``.

Any function of that form works where graphcore takes an initializer (``WithInit``, golgi's
``WithInit``); it gets a graphcore ``Dtype`` and a tuple of ints, and returns a new array of
that dtype and shape. :class:`Initializer` subclasses (``GlorotN(1.0)``...) are such functions.

Example:
    >>> import numpy as np, graphcore as gc
    >>> def Eye(dt, shape):
    ...     return np.eye(*shape, dtype=gc.as_dtype(dt).np)
    >>> g = gc.NewGraph()
    >>> w = gc.NewMatrix(g, gc.Float64, gc.WithShape(2, 3), gc.WithInit(Eye), gc.WithName("w"))
    >>> w.value
    array([[1., 0., 0.],
           [0., 1., 0.]])
"""

_SQRT3 = math.sqrt(3.0)


def _real(owner: str, arg: str, v: Any) -> float:
    """``v`` as a finite float, or a clear error naming the initializer and argument."""
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{owner}: {arg} must be a real number, got {v!r}")
    f = float(v)
    if not math.isfinite(f):
        raise ValueError(f"{owner}: {arg} must be finite, got {v!r}")
    return f


def _positive(owner: str, arg: str, v: Any) -> float:
    f = _real(owner, arg, v)
    if f <= 0:
        raise ValueError(f"{owner}: {arg} must be > 0, got {v!r}")
    return f


class Initializer:
    """Base of all initializers: call it as ``init(dtype, shape)`` to get a new C-contiguous array.

    ``shape`` is a tuple of non-negative ints (Gorgonia's variadic form ``init(dt, 3, 2)`` works
    too). Subclasses implement ``_make(dtype, shape)``.

    Example:
        >>> isinstance(Zeroes(), Initializer)
        True
        >>> Zeroes()("float64", 2, 3).shape
        (2, 3)
    """

    _float_only = False

    def __call__(self, dt: DtypeLike, shape: Any = (), *more: int) -> np.ndarray:
        dtype = as_dtype(dt)
        if self._float_only and not dtype.is_float:
            raise DtypeError(
                f"{self!r} draws random floats; it cannot initialise a {dtype} value. "
                f"Use Float32 or Float64 (or Zeroes/Ones/ValuesOf/RangedFrom for {dtype})"
            )
        dims = _as_shape(self, (shape, *more) if more else shape)
        out = self._make(dtype, dims)
        # Casts a float64 draw to float32; keeps 0-d arrays 0-d (ascontiguousarray would not).
        return np.asarray(out, dtype=dtype.np, order="C")

    def _make(self, dtype: Dtype, shape: tuple[int, ...]) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError


def _as_shape(init: Initializer, shape: Any) -> tuple[int, ...]:
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)):
        raise TypeError(f"{init!r}: shape must be a tuple of ints, got {shape!r}")
    dims = []
    for d in shape:
        if d is None:
            raise ShapeError(
                f"{init!r}: cannot initialise shape {tuple(shape)} with a free (None) dimension; "
                f"give every dimension a size"
            )
        if isinstance(d, bool) or not isinstance(d, numbers.Integral):
            raise TypeError(f"{init!r}: shape {tuple(shape)} has a non-integer dimension {d!r}")
        if d < 0:
            raise ShapeError(f"{init!r}: shape {tuple(shape)} has a negative dimension {d}")
        dims.append(int(d))
    return tuple(dims)


def _exact_cast(owner: Initializer, values: np.ndarray, dtype: Dtype) -> np.ndarray:
    """Cast to ``dtype``; for integer and bool dtypes refuse values that would change."""
    if dtype.is_float:
        return values.astype(dtype.np)
    with np.errstate(invalid="ignore", over="ignore"):
        cast = values.astype(dtype.np)
    if not np.array_equal(cast, values):
        raise DtypeError(
            f"{owner!r} gives values that {dtype} cannot hold exactly; use a float dtype or "
            f"values that fit {dtype}"
        )
    return cast


@dataclass(frozen=True, repr=False)
class Zeroes(Initializer):
    """All zeros, any dtype.

    Example:
        >>> Zeroes()("float32", (2,)).tolist()
        [0.0, 0.0]
    """

    def _make(self, dtype: Dtype, shape: tuple[int, ...]) -> np.ndarray:
        return np.zeros(shape, dtype.np)

    def __repr__(self) -> str:
        return "Zeroes()"


@dataclass(frozen=True, repr=False)
class Ones(Initializer):
    """All ones, any dtype (``True`` for ``Bool``).

    Example:
        >>> Ones()("int32", (2,)).tolist()
        [1, 1]
    """

    def _make(self, dtype: Dtype, shape: tuple[int, ...]) -> np.ndarray:
        return np.ones(shape, dtype.np)

    def __repr__(self) -> str:
        return "Ones()"


@dataclass(frozen=True, repr=False)
class ValuesOf(Initializer):
    """Every element set to the scalar ``v``; ``v`` must fit the dtype exactly for ints and bool.

    Example:
        >>> ValuesOf(3)("int64", (2,)).tolist()
        [3, 3]
        >>> ValuesOf(0.5)
        ValuesOf(0.5)
    """

    v: Any

    def __post_init__(self) -> None:
        v = self.v
        if isinstance(v, np.ndarray) and v.ndim == 0:
            v = v.item()
        if not isinstance(v, (numbers.Number, np.bool_)):
            raise TypeError(
                f"ValuesOf expects a scalar, got {v!r}; to set a whole array use WithValue(array)"
            )
        object.__setattr__(self, "v", v)

    def _make(self, dtype: Dtype, shape: tuple[int, ...]) -> np.ndarray:
        if isinstance(self.v, complex):
            raise DtypeError(f"{self!r}: complex values are not supported")
        one = _exact_cast(self, np.asarray(self.v), dtype)
        return np.full(shape, one, dtype.np)

    def __repr__(self) -> str:
        return f"ValuesOf({self.v!r})"


@dataclass(frozen=True, repr=False)
class RangedFrom(Initializer):
    """``start, start+step, start+2*step, ...`` in row-major order, reshaped to the shape.

    Computed as ``start + step * arange(n)`` in float64 (int64 for integer arguments), then cast;
    integer and bool dtypes refuse values they cannot hold exactly.

    Example:
        >>> RangedFrom(1)("int64", (2, 2)).tolist()
        [[1, 2], [3, 4]]
        >>> RangedFrom(0.0, 0.5)("float64", (3,)).tolist()
        [0.0, 0.5, 1.0]
    """

    start: float = 0
    step: float = 1

    def __post_init__(self) -> None:
        for arg in ("start", "step"):
            v = getattr(self, arg)
            if isinstance(v, bool) or not isinstance(v, numbers.Real):
                raise TypeError(f"RangedFrom: {arg} must be a real number, got {v!r}")
            if not math.isfinite(float(v)):
                raise ValueError(f"RangedFrom: {arg} must be finite, got {v!r}")

    def _make(self, dtype: Dtype, shape: tuple[int, ...]) -> np.ndarray:
        n = math.prod(shape)
        ints = all(isinstance(v, numbers.Integral) for v in (self.start, self.step))
        if ints and not dtype.is_float:
            vals: np.ndarray = np.arange(n, dtype=np.int64) * int(self.step) + int(self.start)
        else:
            vals = np.arange(n, dtype=np.float64) * float(self.step) + float(self.start)
        return _exact_cast(self, vals, dtype).reshape(shape)

    def __repr__(self) -> str:
        return f"RangedFrom(start={self.start!r}, step={self.step!r})"


@dataclass(frozen=True)
class Gaussian(Initializer):
    """Normal draws ``N(mean, std)``, float32/float64.

    Example:
        >>> Gaussian(0.0, 0.1)
        Gaussian(mean=0.0, std=0.1)
    """

    mean: float = 0.0
    std: float = 1.0
    _float_only = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", _real("Gaussian", "mean", self.mean))
        std = _real("Gaussian", "std", self.std)
        if std < 0:
            raise ValueError(f"Gaussian: std must be >= 0, got {self.std!r}")
        object.__setattr__(self, "std", std)

    def _make(self, dtype: Dtype, shape: tuple[int, ...]) -> np.ndarray:
        return get_rng().normal(self.mean, self.std, size=shape)


@dataclass(frozen=True)
class Uniform(Initializer):
    """Uniform draws in ``[low, high)`` (float64; a float32 cast may round up to ``high``).

    Example:
        >>> Uniform(-1, 1)
        Uniform(low=-1.0, high=1.0)
    """

    low: float = 0.0
    high: float = 1.0
    _float_only = True

    def __post_init__(self) -> None:
        low = _real("Uniform", "low", self.low)
        high = _real("Uniform", "high", self.high)
        if low > high:
            raise ValueError(f"Uniform: low must be <= high, got low={low!r}, high={high!r}")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    def _make(self, dtype: Dtype, shape: tuple[int, ...]) -> np.ndarray:
        return get_rng().uniform(self.low, self.high, size=shape)


def _glorot_fan(init: Initializer, shape: tuple[int, ...]) -> int:
    if len(shape) == 0:
        raise ShapeError(f"{init!r} needs at least one dimension, got a scalar shape ()")
    if len(shape) == 1:
        # Gorgonia treats a vector as a (1, n) matrix.
        return 1 + shape[0]
    return (shape[0] + shape[1]) * math.prod(shape[2:])


def _he_fan_in(init: Initializer, shape: tuple[int, ...]) -> int:
    if len(shape) == 0:
        raise ShapeError(f"{init!r} needs at least one dimension, got a scalar shape ()")
    if len(shape) <= 2:
        return shape[0]
    return math.prod(shape[1:])


def _std(gain: float, numerator: float, fan: int) -> float:
    # A zero fan only happens with a zero-sized dimension: nothing is drawn then.
    return gain * math.sqrt(numerator / fan) if fan > 0 else 0.0


@dataclass(frozen=True)
class GlorotN(Initializer):
    """Glorot (Xavier) normal: ``std = gain * sqrt(2 / ((s0 + s1) * prod(s[2:])))``.

    A 1-D shape ``(n,)`` uses ``1 + n`` as the fan, as Gorgonia does. Float32 and float64.

    Example:
        >>> round(GlorotN(1.0).std((784, 250)), 6)
        0.04398
    """

    gain: float = 1.0
    _float_only = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "gain", _positive(type(self).__name__, "gain", self.gain))

    def std(self, shape: tuple[int, ...]) -> float:
        """The standard deviation this initializer draws with for ``shape``.

        Example:
            >>> GlorotN(2.0).std((1, 1))
            2.0
        """
        return _std(self.gain, 2.0, _glorot_fan(self, _as_shape(self, shape)))

    def _make(self, dtype: Dtype, shape: tuple[int, ...]) -> np.ndarray:
        return get_rng().normal(0.0, self.std(shape), size=shape)


@dataclass(frozen=True)
class GlorotU(GlorotN):
    """Glorot (Xavier) uniform: ``U(-limit, limit)``, ``limit = sqrt(3) * std`` of ``GlorotN``.

    Uniform in float32 as well (Gorgonia's float32 version drew normals).

    Example:
        >>> round(GlorotU(1.0).limit((784, 250)), 6)
        0.076176
    """

    def limit(self, shape: tuple[int, ...]) -> float:
        """The half-width of the uniform interval for ``shape``.

        Example:
            >>> round(GlorotU(1.0).limit((1, 2)), 6)
            1.414214
        """
        return _SQRT3 * self.std(shape)

    def _make(self, dtype: Dtype, shape: tuple[int, ...]) -> np.ndarray:
        a = self.limit(shape)
        return get_rng().uniform(-a, a, size=shape)


@dataclass(frozen=True)
class HeN(Initializer):
    """He normal: ``std = gain * sqrt(1 / fan_in)``; pass ``gain=sqrt(2)`` for ReLU layers.

    ``fan_in`` is ``s0`` for 1-D and 2-D shapes and ``prod(s[1:])`` for 3-D and up (as
    Gorgonia). Float32 and float64.

    Example:
        >>> HeN(2.0).std((4, 10))
        1.0
    """

    gain: float = 1.0
    _float_only = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "gain", _positive(type(self).__name__, "gain", self.gain))

    def std(self, shape: tuple[int, ...]) -> float:
        """The standard deviation this initializer draws with for ``shape``.

        Example:
            >>> HeN(1.0).std((16, 1, 2, 2))
            0.5
        """
        return _std(self.gain, 1.0, _he_fan_in(self, _as_shape(self, shape)))

    def _make(self, dtype: Dtype, shape: tuple[int, ...]) -> np.ndarray:
        return get_rng().normal(0.0, self.std(shape), size=shape)


@dataclass(frozen=True)
class HeU(HeN):
    """He uniform: ``U(-limit, limit)``, ``limit = sqrt(3) * std`` of ``HeN``.

    Example:
        >>> round(HeU(1.0).limit((3, 5)), 6)
        1.0
    """

    def limit(self, shape: tuple[int, ...]) -> float:
        """The half-width of the uniform interval for ``shape``.

        Example:
            >>> round(HeU(1.0).limit((12, 5)), 6)
            0.5
        """
        return _SQRT3 * self.std(shape)

    def _make(self, dtype: Dtype, shape: tuple[int, ...]) -> np.ndarray:
        a = self.limit(shape)
        return get_rng().uniform(-a, a, size=shape)
