"""The compiled column kernels: :mod:`graphcore.kernels.reference.columns`' names and
signatures, each one pass over memory. ``im2col`` writes the columns in order, reading the
image rows each one needs (no padded copy: padding is written as zeros); ``col2im`` sums one
image plane at a time while it stays in cache (numpy: a zeroing pass and one strided add per
kernel offset), in the same kernel-offset order as numpy, so the sums are the same.

Both take C-contiguous float32 or float64 arrays; for others the scratch says so and the
reference runs.

Example:
    >>> import numpy as np
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3); cols = np.empty((4, 1, 4))
    >>> geo = ((2, 2), (0, 0), (1, 1), (1, 1))
    >>> im2col(x, cols, im2col_scratch(x, cols, *geo)); cols[:, 0, 0].tolist()
    [0.0, 1.0, 3.0, 4.0]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import reference
from ..jit import jit as _jit
from ..reference.columns import Pair, out_hw
from .layout import Ref

__all__ = ["im2col", "im2col_scratch", "col2im", "col2im_scratch"]


@_jit
def _span(j, dw, pw, sw, w, wo):  # pragma: no cover (compiled)
    """The output columns q whose input column q*sw + j*dw - pw lies inside [0, w)."""
    off = j * dw - pw
    lo = 0 if off >= 0 else (-off + sw - 1) // sw
    hi = 0 if w - 1 - off < 0 else (w - 1 - off) // sw + 1
    hi = min(hi, wo)
    return min(lo, hi), hi


@_jit
def _fill(a, start, count, v):  # pragma: no cover (compiled)
    u = np.uint64
    s = u(start)
    for t in range(u(count)):
        a[s + t] = v


@_jit
def _im2col(x, out, n, c, h, w, ho, wo, kh, kw, ph, pw, sh, sw, dh, dw):  # pragma: no cover
    # Flat, unsigned indices: numba checks a signed index for wrap-around on every access
    # (twice the time of the copy), and a view per row of a few pixels costs more than the row.
    u = np.uint64
    zero = out.dtype.type(0)
    usw = u(sw)
    o = 0  # the columns are written in order
    for ch in range(c):
        for i in range(kh):
            for j in range(kw):
                lo, hi = _span(j, dw, pw, sw, w, wo)
                off = j * dw - pw
                for b in range(n):
                    plane = (b * c + ch) * h
                    for p in range(ho):
                        r = p * sh + i * dh - ph
                        if r < 0 or r >= h:
                            _fill(out, o, wo, zero)
                        else:
                            _fill(out, o, lo, zero)
                            src = u((plane + r) * w + off + lo * sw)
                            dst = u(o + lo)
                            for t in range(u(hi - lo)):
                                out[dst + t] = x[src + t * usw]
                            _fill(out, o + hi, wo - hi, zero)
                        o += wo


@_jit
def _col2im(cols, out, n, c, h, w, ho, wo, kh, kw, ph, pw, sh, sw, dh, dw):  # pragma: no cover
    u = np.uint64
    zero = out.dtype.type(0)
    usw = u(sw)
    per_offset = n * ho * wo  # the columns of one (c, i, j) row
    for b in range(n):
        for ch in range(c):
            plane = (b * c + ch) * h * w
            _fill(out, plane, h * w, zero)
            for i in range(kh):
                for j in range(kw):
                    lo, hi = _span(j, dw, pw, sw, w, wo)
                    off = j * dw - pw
                    src0 = ((ch * kh + i) * kw + j) * per_offset + b * ho * wo + lo
                    for p in range(ho):
                        r = p * sh + i * dh - ph
                        if r < 0 or r >= h:
                            continue
                        src = u(src0 + p * wo)
                        dst = u(plane + r * w + off + lo * sw)
                        for t in range(u(hi - lo)):
                            out[dst + t * usw] += cols[src + t]


def _fits(a: np.ndarray, b: np.ndarray) -> bool:
    return (
        a.dtype.type in (np.float32, np.float64)
        and a.dtype == b.dtype
        and a.flags.c_contiguous
        and b.flags.c_contiguous
    )


def _geometry(
    image: tuple[int, ...], kernel: Pair, pad: Pair, stride: Pair, dilation: Pair
) -> tuple[int, ...]:
    n, c, h, w = image
    return (n, c, h, w, *out_hw(image, kernel, pad, stride, dilation), *kernel, *pad, *stride,
            *dilation)


def im2col_scratch(
    x: np.ndarray, out: np.ndarray, kernel: Pair, pad: Pair, stride: Pair, dilation: Pair
) -> Any:
    """Scratch for :func:`im2col`: flat views and the geometry, or the
    reference's for arrays the loop does not take.

    Example:
        >>> x, cols = np.ones((1, 1, 3, 3)), np.empty((4, 1, 4))
        >>> im2col_scratch(x, cols, (2, 2), (0, 0), (1, 1), (1, 1))[2]
        (1, 1, 3, 3, 2, 2, 2, 2, 0, 0, 1, 1, 1, 1)
    """
    if not _fits(x, out):
        return Ref(reference.im2col_scratch(x, out, kernel, pad, stride, dilation))
    return x.reshape(-1), out.reshape(-1), _geometry(x.shape, kernel, pad, stride, dilation)


def im2col(x: np.ndarray, out: np.ndarray, scratch: Any) -> None:
    """``out`` (C*kh*kw, N, Ho*Wo) = the windows of ``x``, written in one pass; as
    :func:`reference.im2col`.

    Example:
        >>> x, cols = np.arange(4.0).reshape(1, 1, 2, 2), np.empty((4, 1, 1))
        >>> im2col(x, cols, im2col_scratch(x, cols, (2, 2), (0, 0), (1, 1), (1, 1)))
        >>> cols.ravel().tolist()
        [0.0, 1.0, 2.0, 3.0]
    """
    if type(scratch) is Ref:
        reference.im2col(x, out, scratch.scratch)
        return
    xf, outf, geo = scratch
    _im2col(xf, outf, *geo)


def col2im_scratch(
    cols: np.ndarray, out: np.ndarray, kernel: Pair, pad: Pair, stride: Pair, dilation: Pair
) -> Any:
    """Scratch for :func:`col2im`: flat views and the geometry, or the
    reference's for arrays the loop does not take.

    Example:
        >>> cols, x = np.ones((4, 1, 4)), np.empty((1, 1, 3, 3))
        >>> col2im_scratch(cols, x, (2, 2), (0, 0), (1, 1), (1, 1))[2]
        (1, 1, 3, 3, 2, 2, 2, 2, 0, 0, 1, 1, 1, 1)
    """
    if not _fits(cols, out):
        return Ref(reference.col2im_scratch(cols, out, kernel, pad, stride, dilation))
    return cols.reshape(-1), out.reshape(-1), _geometry(out.shape, kernel, pad, stride, dilation)


def col2im(cols: np.ndarray, out: np.ndarray, scratch: Any) -> None:
    """``out`` = the columns folded back into an image, overlaps summed in kernel-offset
    order, one image plane at a time; as :func:`reference.col2im`.

    Example:
        >>> cols, x = np.ones((4, 1, 4)), np.empty((1, 1, 3, 3))
        >>> col2im(cols, x, col2im_scratch(cols, x, (2, 2), (0, 0), (1, 1), (1, 1)))
        >>> x[0, 0].tolist()
        [[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]
    """
    if type(scratch) is Ref:
        reference.col2im(cols, out, scratch.scratch)
        return
    colsf, outf, geo = scratch
    _col2im(colsf, outf, *geo)
