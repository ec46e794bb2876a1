"""The numpy max-pooling kernels: the maximum of each window of NCHW images, and its gradient
routed to each window's first maximum.

:mod:`graphcore.kernels.compiled.pooling` has each under the same name and signature. Both
take ``arg``, an integer array shaped like the pooled output for the position of each window's
maximum (row-major within the window; :func:`arg_dtype`'s largest value where the window's
maximum is NaN, whose gradient goes nowhere). The compiled loop fills it in the forward pass
and the gradient scatters through it; numpy finds the maximum again from ``x`` and ``y``
instead (a comparison per window offset costs fewer passes in numpy than keeping an index),
so here ``arg`` is left as it is.

Windows that run past the border see -inf (it never wins over a finite value); ties go to
the first maximum in row-major window order.

Example:
    >>> import numpy as np
    >>> x = np.array([[[[1.0, 3.0], [3.0, 0.0]]]]); y = np.empty((1, 1, 1, 1))
    >>> arg = np.empty(y.shape, arg_dtype((2, 2)))
    >>> geo = ((2, 2), (0, 0), (2, 2))
    >>> max_pool2d(x, y, arg, max_pool2d_scratch(x, y, arg, *geo)); y.ravel().tolist()
    [3.0]
    >>> g, dx = np.ones_like(y), np.empty_like(x)
    >>> max_pool2d_grad(x, y, arg, g, dx, max_pool2d_grad_scratch(x, y, arg, g, dx, *geo))
    >>> dx.ravel().tolist()
    [0.0, 1.0, 0.0, 0.0]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..windows import padded, window_slices

__all__ = ["max_pool2d", "max_pool2d_scratch", "max_pool2d_grad", "max_pool2d_grad_scratch"]

Pair = tuple[int, int]


def arg_dtype(kernel: Pair) -> type:
    """The integer dtype of ``arg`` for windows of ``kernel``: uint8 up to 254 positions (its
    largest value marks a NaN window), else int32.

    Example:
        >>> arg_dtype((2, 2)).__name__, arg_dtype((16, 16)).__name__
        ('uint8', 'int32')
    """
    return np.uint8 if kernel[0] * kernel[1] < 255 else np.int32


def _slices(src: np.ndarray, kernel: Pair, stride: Pair, y: np.ndarray) -> list[np.ndarray]:
    return window_slices(src, kernel, stride, (1, 1), y.shape[2:])


def max_pool2d_scratch(
    x: np.ndarray, out: np.ndarray, arg: np.ndarray, kernel: Pair, pad: Pair, stride: Pair
) -> Any:
    """Scratch for :func:`max_pool2d`: the -inf-padded copy of ``x`` (when padded) and the
    window views.

    Example:
        >>> x, y = np.ones((1, 1, 4, 4)), np.empty((1, 1, 2, 2))
        >>> len(max_pool2d_scratch(x, y, y.astype(np.uint8), (2, 2), (0, 0), (2, 2))[1])
        4
    """
    src, refresh = padded(x, pad, -np.inf)
    return refresh, _slices(src, kernel, stride, out)


def max_pool2d(x: np.ndarray, out: np.ndarray, arg: np.ndarray, scratch: Any) -> None:
    """``out`` = the maximum of each window of ``x`` (NaN where a window holds one).

    Example:
        >>> x, y = np.arange(16.0).reshape(1, 1, 4, 4), np.empty((1, 1, 2, 2))
        >>> a = y.astype(np.uint8)
        >>> max_pool2d(x, y, a, max_pool2d_scratch(x, y, a, (2, 2), (0, 0), (2, 2)))
        >>> y.ravel().tolist()
        [5.0, 7.0, 13.0, 15.0]
    """
    refresh, (first, *rest) = scratch
    if refresh is not None:
        refresh()
    np.copyto(out, first)
    for s in rest:
        np.maximum(out, s, out=out)


def max_pool2d_grad_scratch(
    x: np.ndarray,
    y: np.ndarray,
    arg: np.ndarray,
    g: np.ndarray,
    dx: np.ndarray,
    kernel: Pair,
    pad: Pair,
    stride: Pair,
) -> Any:
    """Scratch for :func:`max_pool2d_grad`: padded copies, window views and two buffers.

    Example:
        >>> x, y = np.ones((1, 1, 4, 4)), np.ones((1, 1, 2, 2))
        >>> s = max_pool2d_grad_scratch(x, y, y.astype(np.uint8), y, x, (2, 2), (0, 0), (2, 2))
        >>> s[2]  # the windows tile x: each writes its share straight into dx
        True
    """
    src, refresh = padded(x, pad, -np.inf)
    ph, pw = pad
    has_pad = bool(ph or pw)
    acc = np.empty(src.shape, dx.dtype) if has_pad else dx
    inner = acc[:, :, ph : ph + x.shape[2], pw : pw + x.shape[3]] if has_pad else None
    pairs = list(
        zip(_slices(src, kernel, stride, y), _slices(acc, kernel, stride, y), strict=True)
    )
    (kh, kw), (sh, sw) = kernel, stride
    # windows that never overlap (stride >= kernel, the usual 2x2/2) own their pixels: each
    # offset's share goes straight into dx instead of being accumulated
    disjoint = not has_pad and sh >= kh and sw >= kw
    covered = disjoint and (sh, sw) == (kh, kw)
    covered = covered and y.shape[2] * kh == x.shape[2] and y.shape[3] * kw == x.shape[3]
    # ``left``: gradient not yet routed (zero once a window's maximum is found)
    return refresh, pairs, covered, disjoint, acc, inner, np.empty_like(g), np.empty_like(g)


def max_pool2d_grad(
    x: np.ndarray, y: np.ndarray, arg: np.ndarray, g: np.ndarray, dx: np.ndarray, scratch: Any
) -> None:
    """``dx`` = ``g`` routed to each window's first maximum (summed where windows overlap);
    ``y`` is the pooled ``x``.

    Example:
        >>> x = np.array([[[[1.0, 2.0, 2.0]]]]); y = np.array([[[[2.0, 2.0]]]])
        >>> a, g, dx = y.astype(np.uint8), np.ones_like(y), np.empty_like(x)
        >>> s = max_pool2d_grad_scratch(x, y, a, g, dx, (1, 2), (0, 0), (1, 1))
        >>> max_pool2d_grad(x, y, a, g, dx, s); dx.ravel().tolist()
        [0.0, 2.0, 0.0]
    """
    refresh, pairs, covered, disjoint, acc, inner, left, hit = scratch
    if refresh is not None:
        refresh()
    if not covered:
        acc.fill(0)
    np.copyto(left, g)
    last = len(pairs) - 1
    for k, (xs_k, dst) in enumerate(pairs):
        # contiguous scratch first: ufuncs writing strided outputs are slow
        np.equal(xs_k, y, out=hit)
        np.multiply(hit, left, out=hit)
        if disjoint:
            np.copyto(dst, hit)
        else:
            np.add(dst, hit, out=dst)
        if k != last:
            np.subtract(left, hit, out=left)
    if inner is not None:
        np.copyto(dx, inner)
