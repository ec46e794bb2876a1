"""2-D pooling layers on NCHW images: ``ConsMaxPool`` and ``ConsAvgPool`` (no learnables).

Defaults (Golgi's MaxPool): kernel (2, 2), pad (0, 0); the stride defaults to the kernel shape
(so windows tile the image, as in Keras), which is (2, 2) for the default kernel. Max pooling
pads with -inf and sends the gradient to the first maximum of a window; average pooling pads
with zeros that count in the divisor.

Example:
    >>> import graphcore as gc, golgi as G
    >>> g = gc.NewGraph()
    >>> x = gc.NewTensor(g, gc.Float32, 4, gc.WithShape(None, 8, 28, 28), gc.WithName("x"))
    >>> G.ConsMaxPool(x).fwd(x).shape, G.ConsAvgPool(x, G.WithKernelShape(4, 4)).fwd(x).shape
    ((None, 8, 14, 14), (None, 8, 7, 7))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import graphcore as gc
from graphcore.shapes import fmt_shape

from ..layer import Layer, per_sample
from ..options import LayerOpt
from ..term import Thunk
from .conv import check_image

__all__ = ["MaxPool", "AvgPool", "ConsMaxPool", "ConsAvgPool"]


class _Pool(Layer):
    """Shared options and shape logic of the pooling layers."""

    options = ("name", "kernel", "pad", "stride", "probability")
    defaults = {"kernel": (2, 2), "pad": (0, 0), "probability": 0.0}
    op: ClassVar[Callable[..., gc.Node]]

    def check_input(self, x: gc.Node) -> None:
        """Also require a float NCHW image input with known channels and sizes."""
        check_image(self, x)
        super().check_input(x)

    def build(self, x: gc.Node) -> None:
        """Resolve the stride (default: the kernel) and check padding and sizes."""
        k, p = self.opts["kernel"], self.opts["pad"]
        self.stride: tuple[int, int] = tuple(self.opts.get("stride", k))
        if p[0] >= k[0] or p[1] >= k[1]:
            raise self.error(
                f"WithPad{tuple(p)} must be smaller than the kernel {tuple(k)}, so every window "
                f"holds at least one input value",
                ValueError,
            )
        self.output_shape(x.shape)

    def forward(self, x: gc.Node) -> gc.Node:
        """The pooling op, plus dropout when ``WithProbability`` is set."""
        o = self.opts
        h = type(self).op(x, o["kernel"], o["pad"], self.stride)
        if o["probability"] > 0:
            h = gc.Dropout(h, o["probability"])
        return h

    def output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        """``(batch, channels, h', w')`` from kernel, padding and stride."""
        if len(input_shape) != 4:
            raise self.error(f"takes NCHW shapes, got {fmt_shape(tuple(input_shape))}")
        o = self.opts
        sizes = []
        for size, k, p, s in zip(input_shape[2:], o["kernel"], o["pad"], self.stride, strict=True):
            if size + 2 * p < k:
                raise self.error(
                    f"the input {fmt_shape(tuple(input_shape))} is smaller than the window "
                    f"{tuple(o['kernel'])} (with padding {tuple(o['pad'])})"
                )
            sizes.append((size + 2 * p - k) // s + 1)
        return (input_shape[0], input_shape[1], *sizes)

    def flops(self, batch: int = 1) -> int:
        """Per output value: ``kh * kw`` (comparisons or sums and the division), plus one for
        the dropout when set.

        Example:
            >>> import graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewTensor(g, gc.Float64, 4, gc.WithShape(None, 3, 4, 4), gc.WithName("x"))
            >>> G.ConsMaxPool(x).flops()  # 3*2*2 windows of 2*2
            48
        """
        out = self.output_shape(self.input_shape)
        k = self.opts["kernel"]
        return batch * per_sample(out) * (k[0] * k[1] + (self.opts["probability"] > 0))

    def config(self) -> dict[str, Any]:
        """Name, kernel, pad, stride (and probability when set)."""
        o = self.opts
        out: dict[str, Any] = {
            "name": self.name,
            "kernel": list(o["kernel"]),
            "pad": list(o["pad"]),
            "stride": list(self.stride),
        }
        if o["probability"] > 0:
            out["probability"] = o["probability"]
        return out


class MaxPool(_Pool):
    """Max pooling; build it with :func:`ConsMaxPool`.

    Example:
        >>> MaxPool.kind, MaxPool.prefix
        ('MaxPool', 'maxpool')
    """

    kind = "MaxPool"
    prefix = "maxpool"
    op = staticmethod(gc.MaxPool2D)


class AvgPool(_Pool):
    """Average pooling; build it with :func:`ConsAvgPool`.

    Example:
        >>> AvgPool.kind, AvgPool.prefix
        ('AvgPool', 'avgpool')
    """

    kind = "AvgPool"
    prefix = "avgpool"
    op = staticmethod(gc.AvgPool2D)


def ConsMaxPool(x: gc.Node | LayerOpt | None = None, *opts: LayerOpt) -> MaxPool | Thunk:
    """Max pooling for NCHW input ``x``; without ``x``, a thunk for ``L``.

    Options: ``WithKernelShape`` (default (2, 2)), ``WithPad`` (default (0, 0); must be
    smaller than the kernel), ``WithStride`` (default: the kernel shape), ``WithName``,
    ``WithProbability(p)`` (dropout after pooling, as Golgi; default 0: none).

    Example:
        >>> import golgi as G
        >>> G.ConsMaxPool(G.WithKernelShape(3, 3), G.WithStride(2, 2))
        L(ConsMaxPool(WithKernelShape(3, 3), WithStride(2, 2)))
    """
    return MaxPool.cons(x, *opts)


def ConsAvgPool(x: gc.Node | LayerOpt | None = None, *opts: LayerOpt) -> AvgPool | Thunk:
    """Average pooling for NCHW input ``x``; options as :func:`ConsMaxPool`.

    Example:
        >>> import golgi as G
        >>> G.ConsAvgPool()
        L(ConsAvgPool())
    """
    return AvgPool.cons(x, *opts)
