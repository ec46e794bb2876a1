"""Static shapes with a free batch dimension: ``None`` stands for a size known only at run time.

Example:
    >>> broadcast_shapes((None, 10), (1, 10))
    (None, 10)
    >>> fmt_shape((None, 784))
    '(None, 784)'
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .errors import ShapeError

__all__ = [
    "Shape",
    "fmt_shape",
    "as_shape",
    "broadcast_shapes",
    "norm_axes",
    "reduced_shape",
    "size_of",
    "is_concrete",
]

Shape = tuple  # tuple[int | None, ...]


def fmt_shape(shape: Shape) -> str:
    """Print a shape the way numpy does, with ``None`` for free dimensions.

    Example:
        >>> fmt_shape(())
        '()'
    """
    if len(shape) == 1:
        return f"({shape[0]},)"
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def as_shape(dims: Iterable[int | None] | int | None, what: str = "shape") -> Shape:
    """Validate and normalise a shape: non-negative ints or ``None``.

    Example:
        >>> as_shape([2, None])
        (2, None)
    """
    if dims is None:
        return ()
    if isinstance(dims, int):
        dims = (dims,)
    out: list[int | None] = []
    for d in dims:
        if d is None:
            out.append(None)
            continue
        if isinstance(d, bool) or not hasattr(d, "__index__"):
            raise ShapeError(f"{what} {tuple(dims)!r}: dimensions must be ints or None")
        d = int(d)
        if d < 0:
            raise ShapeError(f"{what} {tuple(dims)!r}: dimensions must be >= 0")
        out.append(d)
    return tuple(out)


def is_concrete(shape: Shape) -> bool:
    """True when no dimension is ``None``.

    Example:
        >>> is_concrete((None, 3))
        False
    """
    return all(d is not None for d in shape)


def size_of(shape: Shape) -> int:
    """Number of elements of a concrete shape.

    Example:
        >>> size_of((2, 3))
        6
    """
    n = 1
    for d in shape:
        n *= d
    return n


def _bdim(a: int | None, b: int | None) -> int | None:
    if a == b:
        return a
    if a == 1:
        return b
    if b == 1:
        return a
    if a is None:
        return b
    if b is None:
        return a
    raise ValueError


def broadcast_shapes(*shapes: Shape) -> Shape:
    """numpy's broadcasting rule, extended to ``None`` (a free size matches 1, itself or n).

    Raises ``ValueError`` when the shapes do not broadcast; callers re-raise with node names.

    Example:
        >>> broadcast_shapes((3, 1), (4,))
        (3, 4)
    """
    ndim = max((len(s) for s in shapes), default=0)
    out: list[int | None] = [1] * ndim
    for s in shapes:
        padded = (1,) * (ndim - len(s)) + tuple(s)
        for i, d in enumerate(padded):
            try:
                out[i] = _bdim(out[i], d)
            except ValueError:
                raise ValueError(
                    "shapes " + " and ".join(fmt_shape(x) for x in shapes) + " do not broadcast"
                ) from None
    return tuple(out)


def norm_axes(axes: int | Sequence[int] | None, ndim: int, what: str = "axis") -> tuple[int, ...]:
    """Normalise an axis or axes (negative allowed, ``None`` means all) to sorted positives.

    Example:
        >>> norm_axes(-1, 3)
        (2,)
    """
    if axes is None:
        return tuple(range(ndim))
    if isinstance(axes, int):
        axes = (axes,)
    out = []
    for a in axes:
        a = int(a)
        if not -ndim <= a < ndim:
            raise ShapeError(f"{what} {a} is out of range for a tensor with {ndim} dimensions")
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ShapeError(f"repeated {what} in {tuple(axes)}")
    return tuple(sorted(out))


def reduced_shape(shape: Shape, axes: tuple[int, ...], keepdims: bool) -> Shape:
    """Shape after reducing ``axes``.

    Example:
        >>> reduced_shape((None, 10), (1,), False)
        (None,)
    """
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)
