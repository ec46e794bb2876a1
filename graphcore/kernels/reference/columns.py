"""The numpy column kernels of a convolution: ``im2col`` unfolds the windows of NCHW images
into a (C*kh*kw, N, Ho*Wo) column matrix (row ``(c, i, j)`` holds channel ``c`` shifted by
kernel offset ``(i, j)``), and ``col2im`` folds such columns back into an image, summing
where windows overlap (its adjoint). Padding reads as zeros; what falls on it is dropped.

:mod:`graphcore.kernels.compiled.columns` has each under the same name and signature.

Example:
    >>> import numpy as np
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3); cols = np.empty((4, 1, 4))
    >>> geo = ((2, 2), (0, 0), (1, 1), (1, 1))
    >>> im2col(x, cols, im2col_scratch(x, cols, *geo)); cols[:, 0, 0].tolist()
    [0.0, 1.0, 3.0, 4.0]
    >>> back = np.empty_like(x); col2im(cols, back, col2im_scratch(cols, back, *geo))
    >>> back[0, 0].tolist()  # each pixel times the number of windows holding it
    [[0.0, 2.0, 2.0], [6.0, 16.0, 10.0], [6.0, 14.0, 8.0]]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..windows import strided_windows, window_slices

__all__ = ["im2col", "im2col_scratch", "col2im", "col2im_scratch"]

Pair = tuple[int, int]


def out_hw(shape: tuple[int, ...], kernel: Pair, pad: Pair, stride: Pair, dilation: Pair) -> Pair:
    """The (Ho, Wo) of windows of ``kernel`` over an NCHW ``shape``.

    Example:
        >>> out_hw((1, 1, 28, 28), (3, 3), (1, 1), (1, 1), (1, 1))
        (28, 28)
    """
    (kh, kw), (ph, pw), (sh, sw), (dh, dw) = kernel, pad, stride, dilation
    return (
        (shape[2] + 2 * ph - dh * (kh - 1) - 1) // sh + 1,
        (shape[3] + 2 * pw - dw * (kw - 1) - 1) // sw + 1,
    )


def im2col_scratch(
    x: np.ndarray, out: np.ndarray, kernel: Pair, pad: Pair, stride: Pair, dilation: Pair
) -> Any:
    """Scratch for :func:`im2col`: the zero-padded copy of ``x`` (when padded) and the
    windows of it as one strided view shaped like ``out``'s six axes.

    Example:
        >>> x, cols = np.ones((1, 1, 3, 3)), np.empty((4, 1, 4))
        >>> im2col_scratch(x, cols, (2, 2), (0, 0), (1, 1), (1, 1))[1].shape
        (1, 2, 2, 1, 2, 2)
    """
    n, c = x.shape[:2]
    (kh, kw), hw = kernel, out_hw(x.shape, kernel, pad, stride, dilation)
    refresh, windows = strided_windows(x, kernel, pad, stride, dilation, hw)
    # (C, kh, kw, N, Ho, Wo): the column layout
    return refresh, windows.transpose(1, 2, 3, 0, 4, 5), out.reshape(c, kh, kw, n, *hw)


def im2col(x: np.ndarray, out: np.ndarray, scratch: Any) -> None:
    """``out`` (C*kh*kw, N, Ho*Wo) = the windows of ``x``: one copy from a strided view.

    Example:
        >>> x, cols = np.arange(4.0).reshape(1, 1, 2, 2), np.empty((1, 1, 4))
        >>> im2col(x, cols, im2col_scratch(x, cols, (1, 1), (0, 0), (1, 1), (1, 1)))
        >>> cols.ravel().tolist()
        [0.0, 1.0, 2.0, 3.0]
    """
    refresh, windows, out6 = scratch
    if refresh is not None:
        refresh()
    np.copyto(out6, windows)


def col2im_scratch(
    cols: np.ndarray, out: np.ndarray, kernel: Pair, pad: Pair, stride: Pair, dilation: Pair
) -> Any:
    """Scratch for :func:`col2im`: a padded accumulator (when padded) and, per kernel offset,
    its destination view next to its block of columns.

    Example:
        >>> cols, x = np.ones((4, 1, 4)), np.empty((1, 1, 3, 3))
        >>> len(col2im_scratch(cols, x, (2, 2), (0, 0), (1, 1), (1, 1))[1])
        4
    """
    n, c, h, w = out.shape
    (kh, kw), (ph, pw) = kernel, pad
    ho, wo = out_hw(out.shape, kernel, pad, stride, dilation)
    has_pad = bool(ph or pw)
    acc = np.empty((n, c, h + 2 * ph, w + 2 * pw), out.dtype) if has_pad else out
    cols6 = cols.reshape(c, kh, kw, n, ho, wo)
    dsts = window_slices(acc, kernel, stride, dilation, (ho, wo))
    # (C, N, Ho, Wo) destination views next to their column blocks; summing offset by offset
    # avoids np.add.at (within one offset the targets never overlap)
    offsets = [(i, j) for i in range(kh) for j in range(kw)]
    pairs = [
        (d.transpose(1, 0, 2, 3), cols6[:, i, j]) for d, (i, j) in zip(dsts, offsets, strict=True)
    ]
    inner = acc[:, :, ph : ph + h, pw : pw + w] if has_pad else None
    return acc, pairs, inner


def col2im(cols: np.ndarray, out: np.ndarray, scratch: Any) -> None:
    """``out`` = the columns folded back into an image, overlaps summed in kernel-offset
    order; ``cols`` must be C-contiguous (its six axes are views).

    Example:
        >>> cols, x = np.ones((1, 1, 4)), np.empty((1, 1, 2, 2))
        >>> col2im(cols, x, col2im_scratch(cols, x, (1, 1), (0, 0), (1, 1), (1, 1)))
        >>> x.ravel().tolist()
        [1.0, 1.0, 1.0, 1.0]
    """
    acc, pairs, inner = scratch
    acc.fill(0)
    for d, s in pairs:
        np.add(d, s, out=d)
    if inner is not None:
        np.copyto(out, inner)
