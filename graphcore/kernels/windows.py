"""Sliding-window views of NCHW images, shared by the numpy pooling and column kernels and by
the ops that build on them: a padded copy of an image and the strided view each kernel offset
reads.

Example:
    >>> import numpy as np
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> [s[0, 0].tolist() for s in window_slices(x, (1, 2), (2, 2), (1, 1), (2, 2))]
    [[[0.0, 2.0], [8.0, 10.0]], [[1.0, 3.0], [9.0, 11.0]]]
    >>> xp, refresh = padded(x, (1, 0), -np.inf); xp.shape, refresh is None
    ((1, 1, 6, 4), False)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

__all__ = ["padded", "window_slices", "strided_windows"]

Pair = tuple[int, int]


def padded(x: np.ndarray, pad: Pair, fill: float) -> tuple[np.ndarray, Callable[[], Any] | None]:
    """A padded copy of ``x`` (border set once to ``fill``), refreshed by the returned
    function; ``x`` itself and None without padding.

    Example:
        >>> padded(np.ones((1, 1, 2, 2)), (0, 0), 0.0)[1] is None
        True
    """
    ph, pw = pad
    if ph == 0 and pw == 0:
        return x, None
    n, c, h, w = x.shape
    xp = np.full((n, c, h + 2 * ph, w + 2 * pw), fill, x.dtype)
    inner = xp[:, :, ph : ph + h, pw : pw + w]
    return xp, lambda: np.copyto(inner, x)


def window_slices(
    a: np.ndarray, kernel: Pair, stride: Pair, dilation: Pair, out_hw: Pair
) -> list[np.ndarray]:
    """For each kernel offset (row-major), the strided (N, C, Ho, Wo) view of ``a`` it reads.

    Example:
        >>> len(window_slices(np.ones((1, 1, 4, 4)), (2, 2), (2, 2), (1, 1), (2, 2)))
        4
    """
    (kh, kw), (sh, sw), (dh, dw), (ho, wo) = kernel, stride, dilation, out_hw
    return [
        a[:, :, i * dh : i * dh + sh * (ho - 1) + 1 : sh, j * dw : j * dw + sw * (wo - 1) + 1 : sw]
        for i in range(kh)
        for j in range(kw)
    ]


def strided_windows(
    x: np.ndarray, kernel: Pair, pad: Pair, stride: Pair, dilation: Pair, out_hw: Pair
) -> tuple[Callable[[], Any] | None, np.ndarray]:
    """Every window of ``x`` as one read-only strided view, shape (N, C, kh, kw, Ho, Wo):
    ``[n, c, i, j, y, x]`` is the padded image at row ``y*sh + i*dh``, column
    ``x*sw + j*dw``; with the function that refreshes the padded copy (None without padding),
    to call before each read. Callers transpose the view into their column layout.

    Example:
        >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
        >>> refresh, w = strided_windows(x, (2, 2), (0, 0), (1, 1), (1, 1), (2, 2))
        >>> refresh is None, w.shape, w[0, 0, :, :, 1, 1].tolist()
        (True, (1, 1, 2, 2, 2, 2), [[4.0, 5.0], [7.0, 8.0]])
    """
    n, c = x.shape[:2]
    (kh, kw), (sh, sw), (dh, dw), (ho, wo) = kernel, stride, dilation, out_hw
    src, refresh = padded(x, pad, 0.0)
    s_n, s_c, s_h, s_w = src.strides
    windows = as_strided(
        src,
        shape=(n, c, kh, kw, ho, wo),
        strides=(s_n, s_c, s_h * dh, s_w * dw, s_h * sh, s_w * sw),
        writeable=False,
    )
    return refresh, windows
