"""What both backends' Winograd F(2x2, 3x3) convolutions share: which convolutions they take
(:func:`fits`) and the layout of their 16 matrices (:func:`sixteen`); see
:mod:`graphcore.kernels.reference.winograd_conv` and
:mod:`graphcore.kernels.compiled.winograd_conv`.

Example:
    >>> fits((2, 3, 8, 8), (5, 3, 3, 3), (1, 1))
    True
    >>> sixteen(2, 3, np.float64)[1].shape
    (16, 2, 3)
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["fits", "require_fit", "sixteen", "sixteen_size"]


def fits(xshape: tuple[int, ...], wshape: tuple[int, ...], pad: tuple[int, int]) -> bool:
    """Whether a ``WinogradConv3x3`` takes a convolution of ``xshape`` by filters
    ``wshape`` with padding ``pad``: 3x3 filters, padding 0 to 2, an output of at least one
    pixel (any channel counts).

    Example:
        >>> fits((2, 3, 8, 8), (5, 3, 3, 3), (1, 1)), fits((2, 3, 8, 8), (5, 3, 5, 5), (1, 1))
        (True, False)
    """
    if len(xshape) != 4 or len(wshape) != 4 or tuple(wshape[2:]) != (3, 3):
        return False
    n, c, h, w = xshape
    return (
        wshape[1] == c
        and all(0 <= p <= 2 for p in pad)
        and h + 2 * pad[0] >= 3
        and w + 2 * pad[1] >= 3
        and n > 0
        and wshape[0] > 0
        and c > 0
    )


def require_fit(xshape: tuple[int, ...], wshape: tuple[int, ...], pad: tuple[int, int]) -> None:
    """Raise ``ValueError`` naming the shapes unless :func:`fits` takes them.

    Example:
        >>> require_fit((2, 3, 8, 8), (5, 3, 3, 3), (1, 1))  # fits: nothing happens
    """
    if not fits(xshape, wshape, pad):
        raise ValueError(
            f"WinogradConv3x3: 3x3 filters over the input's channels, padding 0 to 2, an "
            f"output of at least one pixel; got input {tuple(xshape)}, filters "
            f"{tuple(wshape)}, padding {pad}"
        )


def sixteen(
    rows: int, cols: int, dtype: Any, most: int = 0, base: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """A (16, rows, cols) array whose 16 matrices start 64 bytes off a multiple of 4 KiB
    from each other: at the natural stride (rows * cols, often a multiple of 1024 elements)
    the transforms' 16 streams alias in the store buffer and ran 5-10x slower. ``most``:
    the rows to make room for (the buffer may be shared: ``base``). Returns the flat buffer
    and the view.

    Example:
        >>> buf, m = sixteen(2, 512, np.float64); m.strides[0] % 4096
        64
    """
    isz = np.dtype(dtype).itemsize
    stride = sixteen_size(max(rows, most) * cols, dtype) // 16
    if base is None:
        base = np.zeros(16 * stride, dtype)
    view = np.lib.stride_tricks.as_strided(
        base, (16, rows, cols), (stride * isz, cols * isz, isz), writeable=True
    )
    return base, view


def sixteen_size(per: int, dtype: Any) -> int:
    """Elements of :func:`sixteen`'s buffer for matrices of ``per`` elements.

    Example:
        >>> sixteen_size(512, np.float64)
        8320
    """
    isz = np.dtype(dtype).itemsize
    return 16 * ((per * isz + 4095) // 4096 * 4096 // isz + 64 // isz)
