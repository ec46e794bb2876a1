"""Helpers for ops on NCHW images (convolution, pooling, batch normalisation): argument
pairs, input checks, the geometry of sliding windows, padding, the strided view of each window
offset, and contiguous operands for BLAS.

Example:
    >>> pair("MaxPool2D", "kernel", 3, 1), Geometry((3, 3), (1, 1), (2, 2)).concrete_out_hw(
    ...     (1, 1, 28, 28))
    ((3, 3), (14, 14))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import DtypeError, ShapeError
from ..kernels.blas import can_gemm, gemm_into
from ..kernels.windows import padded as padded
from ..kernels.windows import window_slices as window_slices
from .base import TypeInfo, describe

__all__ = [
    "Pair", "pair", "check_image", "contiguous", "matmul_into", "padded", "window_slices",
    "Geometry", "single", "check_signal", "out_length",
]

Pair = tuple[int, int]


def pair(op: str, what: str, v: Any, minimum: int) -> Pair:
    """``v`` as a pair of ints >= ``minimum`` (one int means the same for both)."""
    vals = (v, v) if isinstance(v, (int, np.integer)) and not isinstance(v, bool) else v
    try:
        a, b = vals
        ok = all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in (a, b))
    except (TypeError, ValueError):
        ok = False
    if not ok or min(a, b) < minimum:
        raise ValueError(f"{op}: {what} must be an int or a pair of ints >= {minimum}, got {v!r}")
    return int(a), int(b)


def single(op: str, what: str, v: Any, minimum: int) -> int:
    """``v`` as one int >= ``minimum`` (the 1-D ops' kernel, pad, stride, dilation)."""
    if isinstance(v, (list, tuple)) and len(v) == 1:
        v = v[0]
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
        raise ValueError(f"{op}: {what} must be an int >= {minimum}, got {v!r}")
    return int(v)


def check_signal(op: str, x: TypeInfo, role: str = "input") -> None:
    """``x`` is a float NCL batch of signals (batch, channels, length) with known C and L."""
    if not x.dtype.is_float:
        raise DtypeError(f"{op} needs a Float32 or Float64 {role}, got {describe(x)}")
    if len(x.shape) != 3:
        hint = (
            "; for (N, C, 1, L) images use the 2-D op with a (1, k) kernel"
            if len(x.shape) == 4 else ", e.g. Reshape(x, (None, 1, length))"
        )
        raise ShapeError(
            f"{op}: {role} {describe(x)} must be 3-D NCL (batch, channels, length){hint}"
        )
    if any(d is None for d in x.shape[1:]):
        raise ShapeError(
            f"{op}: {role} {describe(x)} must have known channels and length; only the batch "
            f"dimension may be None"
        )


def out_length(op: str, x: TypeInfo, k: int, p: int, s: int, d: int = 1) -> int:
    """Output length of a 1-D window op over NCL ``x`` (``k`` taps ``d`` apart, padding ``p``
    on each side, stride ``s``), or a ``ShapeError`` naming ``op`` when the window does not
    fit."""
    return _out_size(op, x, x.shape[2], k, p, s, d, "length")


def check_image(op: str, x: TypeInfo, role: str = "input") -> None:
    if not x.dtype.is_float:
        raise DtypeError(f"{op} needs a Float32 or Float64 {role}, got {describe(x)}")
    if len(x.shape) != 4:
        raise ShapeError(
            f"{op}: {role} {describe(x)} must be 4-D NCHW (batch, channels, height, width); "
            f"reshape it first, e.g. Reshape(x, (None, 1, 28, 28))"
        )
    if any(d is None for d in x.shape[1:]):
        raise ShapeError(
            f"{op}: {role} {describe(x)} must have known channels, height and width; only the "
            f"batch dimension may be None"
        )


def _out_size(op: str, x: TypeInfo, size: int, k: int, p: int, s: int, d: int, axis: str) -> int:
    span = d * (k - 1) + 1
    if size + 2 * p < span:
        raise ShapeError(
            f"{op}: the {axis} of {describe(x)} ({size}, padded by {p} on each side) is smaller "
            f"than the kernel's reach ({span}); use a smaller kernel or more padding"
        )
    return (size + 2 * p - span) // s + 1


def contiguous(
    a: np.ndarray, shape: tuple[int, ...]
) -> tuple[np.ndarray, Callable[[], Any] | None]:
    """``a`` reshaped as a view when it is contiguous, else a buffer plus a refresh function."""
    if a.flags.c_contiguous:
        return a.reshape(shape), None
    buf = np.empty(shape, a.dtype)
    return buf, lambda: np.copyto(buf.reshape(a.shape), a)


def matmul_into(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> Callable[[], Any]:
    # scipy's BLAS like MatMul, so the machine never alternates two OpenBLAS thread pools
    if can_gemm(a, b, out):
        return gemm_into(a, b, out, 0.0)
    return lambda: np.matmul(a, b, out=out)


class Geometry:
    """Kernel, padding, stride and dilation of a sliding-window op, with its output size."""

    def __init__(self, kernel: Pair, pad: Pair, stride: Pair, dilation: Pair = (1, 1)) -> None:
        self.kernel_shape = kernel
        self.pad = pad
        self.stride = stride
        self.dilation = dilation

    def out_hw(self, op: str, x: TypeInfo) -> Pair:
        (kh, kw), (ph, pw), (sh, sw), (dh, dw) = (
            self.kernel_shape,
            self.pad,
            self.stride,
            self.dilation,
        )
        return (
            _out_size(op, x, x.shape[2], kh, ph, sh, dh, "height"),
            _out_size(op, x, x.shape[3], kw, pw, sw, dw, "width"),
        )

    def concrete_out_hw(self, shape: tuple[int, ...]) -> Pair:
        """Output (height, width) for a concrete, already checked NCHW shape."""
        (kh, kw), (ph, pw), (sh, sw), (dh, dw) = (
            self.kernel_shape,
            self.pad,
            self.stride,
            self.dilation,
        )
        return (
            (shape[2] + 2 * ph - dh * (kh - 1) - 1) // sh + 1,
            (shape[3] + 2 * pw - dw * (kw - 1) - 1) // sw + 1,
        )
