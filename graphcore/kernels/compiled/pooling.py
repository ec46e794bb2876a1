"""The compiled max-pooling kernels: :mod:`graphcore.kernels.reference.pooling`'s names and
signatures. The forward pass is one loop that writes each window's maximum and, into ``arg``,
its position; the gradient is one loop that scatters ``g`` through ``arg`` (numpy: four
passes forward and thirteen backward for a 2x2 window).

The loops take C-contiguous float32 or float64 images and keep numpy's results exactly:
the maximum is ``np.maximum``'s (NaN wins, and of two equal values the later one, which
only tells +0 from -0), the gradient goes to the first position equal to it, none for a NaN
window, and padding is -inf at its place in the window.

Example:
    >>> import numpy as np
    >>> x = np.array([[[[1.0, 3.0], [3.0, 0.0]]]]); y = np.empty((1, 1, 1, 1))
    >>> arg = np.empty(y.shape, np.uint8); geo = ((2, 2), (0, 0), (2, 2))
    >>> max_pool2d(x, y, arg, max_pool2d_scratch(x, y, arg, *geo))
    >>> y.ravel().tolist(), arg.ravel().tolist()
    ([3.0], [1])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import reference
from ..jit import jit as _jit
from ..reference.pooling import Pair
from .layout import Ref

__all__ = ["max_pool2d", "max_pool2d_scratch", "max_pool2d_grad", "max_pool2d_grad_scratch"]


@_jit
def _max_pool(x, out, arg, kh, kw, ph, pw, sh, sw, none):  # pragma: no cover (compiled)
    n, c, h, w = x.shape
    ho, wo = out.shape[2], out.shape[3]
    ninf = -np.inf
    two = kh == 2 and kw == 2 and sh == 2 and sw == 2 and ph == 0 and pw == 0
    for b in range(n):
        for ch in range(c):
            xp, op, ap = x[b, ch], out[b, ch], arg[b, ch]
            for i in range(ho):
                if two:  # the usual 2x2/2 window, unrolled over two rows of x
                    x0, x1, o, a = xp[2 * i], xp[2 * i + 1], op[i], ap[i]
                    for j in range(wo):
                        v0, v1, v2, v3 = x0[2 * j], x0[2 * j + 1], x1[2 * j], x1[2 * j + 1]
                        m, best, k = v0, v0, 0
                        if not (m > v1 or m != m):
                            m = v1
                        if v1 > best:
                            best, k = v1, 1
                        if not (m > v2 or m != m):
                            m = v2
                        if v2 > best:
                            best, k = v2, 2
                        if not (m > v3 or m != m):
                            m = v3
                        if v3 > best:
                            best, k = v3, 3
                        o[j] = m
                        a[j] = none if m != m else k
                    continue
                for j in range(wo):
                    m = best = ninf
                    k = 0
                    for ki in range(kh):
                        r = i * sh - ph + ki
                        for kj in range(kw):
                            s = j * sw - pw + kj
                            v = xp[r, s] if 0 <= r < h and 0 <= s < w else ninf
                            t = ki * kw + kj
                            if t == 0:
                                m = best = v
                            else:
                                if not (m > v or m != m):
                                    m = v
                                if v > best:
                                    best, k = v, t
                    op[i, j] = m
                    ap[i, j] = none if m != m else k


@_jit
def _max_pool_grad(arg, g, dx, kh, kw, ph, pw, sh, sw, covered, none):  # pragma: no cover
    n, c, h, w = dx.shape
    ho, wo = g.shape[2], g.shape[3]
    zero = dx.dtype.type(0)
    if not covered:
        dx[...] = zero
    two = covered and kh == 2 and kw == 2
    for b in range(n):
        for ch in range(c):
            dp = dx[b, ch]
            for i in range(ho):
                if two:  # the usual 2x2/2 window tiling dx, unrolled: two rows at a time
                    r0, r1 = dp[2 * i], dp[2 * i + 1]
                    for j in range(wo):
                        k = arg[b, ch, i, j]
                        gv = g[b, ch, i, j]
                        r0[2 * j] = gv if k == 0 else zero
                        r0[2 * j + 1] = gv if k == 1 else zero
                        r1[2 * j] = gv if k == 2 else zero
                        r1[2 * j + 1] = gv if k == 3 else zero
                    continue
                for j in range(wo):
                    k = arg[b, ch, i, j]
                    gv = g[b, ch, i, j]
                    if covered:  # the windows tile dx: write each pixel once
                        for ki in range(kh):
                            for kj in range(kw):
                                dp[i * kh + ki, j * kw + kj] = gv if ki * kw + kj == k else zero
                    elif k != none:
                        r = i * sh - ph + k // kw
                        s = j * sw - pw + k % kw
                        if 0 <= r < h and 0 <= s < w:
                            dp[r, s] += gv


def _fits(*arrays: np.ndarray) -> bool:
    dt = arrays[0].dtype
    return dt.type in (np.float32, np.float64) and all(
        a.dtype == dt and a.flags.c_contiguous for a in arrays
    )


def max_pool2d_scratch(
    x: np.ndarray, out: np.ndarray, arg: np.ndarray, kernel: Pair, pad: Pair, stride: Pair
) -> Any:
    """Scratch for :func:`max_pool2d`: the geometry, or the reference's for arrays the loop
    does not take (strided, or not float).

    Example:
        >>> x, y = np.ones((1, 1, 4, 4)), np.empty((1, 1, 2, 2))
        >>> max_pool2d_scratch(x, y, y.astype(np.uint8), (2, 2), (0, 0), (2, 2))
        (2, 2, 0, 0, 2, 2, 255)
    """
    if not _fits(x, out) or not arg.flags.c_contiguous:
        return Ref(reference.max_pool2d_scratch(x, out, arg, kernel, pad, stride))
    return (*kernel, *pad, *stride, int(np.iinfo(arg.dtype).max))


def max_pool2d(x: np.ndarray, out: np.ndarray, arg: np.ndarray, scratch: Any) -> None:
    """``out`` = each window's maximum and ``arg`` its position, in one loop; as
    :func:`reference.max_pool2d` (which leaves ``arg``).

    Example:
        >>> x, y = np.arange(16.0).reshape(1, 1, 4, 4), np.empty((1, 1, 2, 2))
        >>> a = np.empty(y.shape, np.uint8)
        >>> max_pool2d(x, y, a, max_pool2d_scratch(x, y, a, (2, 2), (0, 0), (2, 2)))
        >>> y.ravel().tolist(), a.ravel().tolist()
        ([5.0, 7.0, 13.0, 15.0], [3, 3, 3, 3])
    """
    if type(scratch) is Ref:
        reference.max_pool2d(x, out, arg, scratch.scratch)
        return
    _max_pool(x, out, arg, *scratch)


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
    """Scratch for :func:`max_pool2d_grad`: the geometry and whether the windows tile ``x``,
    or the reference's for arrays the loop does not take.

    Example:
        >>> x, y = np.ones((1, 1, 4, 4)), np.ones((1, 1, 2, 2))
        >>> max_pool2d_grad_scratch(x, y, y.astype(np.uint8), y, x, (2, 2), (0, 0), (2, 2))
        (2, 2, 0, 0, 2, 2, True, 255)
    """
    if not _fits(x, y, g, dx) or not arg.flags.c_contiguous:
        return Ref(reference.max_pool2d_grad_scratch(x, y, arg, g, dx, kernel, pad, stride))
    (kh, kw), (sh, sw) = kernel, stride
    covered = pad == (0, 0) and (sh, sw) == (kh, kw)
    covered = covered and y.shape[2] * kh == x.shape[2] and y.shape[3] * kw == x.shape[3]
    return (*kernel, *pad, *stride, covered, int(np.iinfo(arg.dtype).max))


def max_pool2d_grad(
    x: np.ndarray, y: np.ndarray, arg: np.ndarray, g: np.ndarray, dx: np.ndarray, scratch: Any
) -> None:
    """``dx`` = ``g`` at the positions ``arg`` holds (summed where windows overlap), in one
    loop that reads neither ``x`` nor ``y``; ``arg`` must come from :func:`max_pool2d` of the
    same ``x``. As :func:`reference.max_pool2d_grad`.

    Example:
        >>> x = np.array([[[[1.0, 2.0, 2.0]]]]); y = np.empty((1, 1, 1, 2))
        >>> a = np.empty(y.shape, np.uint8); geo = ((1, 2), (0, 0), (1, 1))
        >>> max_pool2d(x, y, a, max_pool2d_scratch(x, y, a, *geo))
        >>> g, dx = np.ones_like(y), np.empty_like(x)
        >>> max_pool2d_grad(x, y, a, g, dx, max_pool2d_grad_scratch(x, y, a, g, dx, *geo))
        >>> dx.ravel().tolist()
        [0.0, 2.0, 0.0]
    """
    if type(scratch) is Ref:
        reference.max_pool2d_grad(x, y, arg, g, dx, scratch.scratch)
        return
    _max_pool_grad(arg, g, dx, *scratch)
