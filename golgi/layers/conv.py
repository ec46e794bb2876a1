"""2-D convolution layer on NCHW images: ``act(Conv2d(x, W) + b)``, optional trailing dropout.

Defaults (chosen to keep the spatial size, as most convnets do; Golgi's are kernel (5, 5),
pad (1, 1), ReLU, no bias): kernel (3, 3), pad (1, 1), stride (1, 1), dilation (1, 1), a bias
of shape (1, C, 1, 1) broadcast over batch and pixels, no activation. Weights ``GlorotN(1.0)``
(as Golgi).

Example:
    >>> import graphcore as gc, golgi as G
    >>> g = gc.NewGraph()
    >>> x = gc.NewTensor(g, gc.Float32, 4, gc.WithShape(None, 1, 28, 28), gc.WithName("x"))
    >>> conv = G.ConsConv(x, G.WithShape(32), G.WithName("c1"), G.WithActivation(gc.Rectify))
    >>> [n.shape for n in conv.model()], conv.fwd(x).shape
    ([(32, 1, 3, 3), (1, 32, 1, 1)], (None, 32, 28, 28))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import graphcore as gc
from graphcore.shapes import fmt_shape

from ..layer import Layer, per_sample, sample_sizes
from ..options import LayerOpt, fn_name
from ..term import Thunk

__all__ = ["Conv", "ConsConv", "check_image"]


def check_image(layer: Layer, x: gc.Node) -> None:
    """Raise (naming the layer) unless ``x`` is a float NCHW image batch with known C, H, W.

    Example:
        >>> import graphcore as gc, golgi as G
        >>> g = gc.NewGraph()
        >>> x = gc.NewTensor(g, gc.Float32, 4, gc.WithShape(None, 1, 28, 28), gc.WithName("x"))
        >>> conv = G.ConsConv(x, G.WithShape(8), G.WithName("c1"))
        >>> check_image(conv, x)  # an NCHW batch: passes silently
        >>> flat = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 784), gc.WithName("flat"))
        >>> check_image(conv, flat)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        graphcore.errors.ShapeError: ConsConv (layer 'c1'): input 'flat' (None, 784) ... is 2-D; ...
    """
    if x.ndim != 4:
        raise layer.error(
            f"{x.describe()} is {x.ndim}-D; {layer.kind} takes NCHW images (batch, channels, "
            f"height, width): reshape first, e.g. L(ConsReshape(ToShape(None, 1, 28, 28)))"
        )
    if not x.dtype.is_float:
        raise layer.error(f"{x.describe()} must be Float32 or Float64", gc.DtypeError)
    if None in x.shape[1:]:
        raise layer.error(
            f"{x.describe()} must have known channels, height and width; only the batch "
            f"dimension may be None"
        )


class Conv(Layer):
    """A 2-D convolution layer; build it with :func:`ConsConv`.

    Learnables: ``<name>/W`` (out, in, kh, kw) and ``<name>/b`` (1, out, 1, 1).

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph()
        >>> x = gc.NewTensor(g, gc.Float64, 4, gc.WithShape(None, 3, 8, 8), gc.WithName("x"))
        >>> Conv(x, LayerOpt("shape", (4,))).param_count()
        112
    """

    kind = "Conv"
    prefix = "conv"
    options = (
        "name", "shape", "kernel", "pad", "stride", "dilation", "bias", "activation", "init",
        "weights", "probability", "batched",
    )  # fmt: skip
    # no "kernel" default here: given weights fix it when WithKernelShape is absent
    defaults = {
        "pad": (1, 1),
        "stride": (1, 1),
        "dilation": (1, 1),
        "bias": True,
        "activation": None,
        "probability": 0.0,
    }

    def check_input(self, x: gc.Node) -> None:
        """Also require a float NCHW image input with known channels and sizes."""
        check_image(self, x)
        super().check_input(x)

    def build(self, x: gc.Node) -> None:
        """Create ``W`` (out, in, kh, kw) and the bias ``b`` (1, out, 1, 1); check the sizes."""
        o = self.opts
        c_in = x.shape[1]
        w = o.get("weights")
        if "shape" in o:
            dims = o["shape"]
            if len(dims) not in (1, 2):
                raise self.error(
                    f"WithShape takes the number of output channels (or Golgi's "
                    f"WithSize(out, in)), got {dims}",
                    ValueError,
                )
            if len(dims) == 2 and dims[1] != c_in:
                raise self.error(
                    f"WithSize{tuple(dims)} says {dims[1]} input channels, but the input "
                    f"{x.describe()} has {c_in}"
                )
            c_out = dims[0]
        elif w is not None and len(w.shape) == 4 and w.shape[0] is not None:
            c_out = w.shape[0]
        else:
            raise self.error("give the number of output channels with WithShape(n)", ValueError)
        self.out_channels: int = int(c_out)
        if "kernel" in o:
            kh, kw = o["kernel"]
        elif w is not None and len(w.shape) == 4:
            kh, kw = w.shape[2], w.shape[3]
        else:
            kh, kw = 3, 3
        self.kernel_shape: tuple[int, int] = (int(kh), int(kw))
        shape = (self.out_channels, c_in, *self.kernel_shape)
        if isinstance(w, gc.Node):
            self.adopt("W", w, shape)
        elif w is not None:
            self.learnable("W", shape, value=w)
        else:
            self.learnable("W", shape, init=o.get("init") or gc.GlorotN(1.0))
        if o["bias"]:
            self.learnable("b", (1, self.out_channels, 1, 1), init=gc.Zeroes())
        self.output_shape(x.shape)  # a too-small input fails here, naming the layer

    def forward(self, x: gc.Node) -> gc.Node:
        """``Conv2d``, plus bias, activation and dropout when set."""
        o = self.opts
        try:
            h = gc.Conv2d(
                x, self.params["W"], pad=o["pad"], stride=o["stride"], dilation=o["dilation"]
            )
        except gc.ShapeError as e:
            raise self.error(str(e)) from None
        if "b" in self.params:
            h = gc.Add(h, self.params["b"])
        if o["activation"] is not None:
            h = o["activation"](h)
        if o["probability"] > 0:
            h = gc.Dropout(h, o["probability"])
        return h

    def output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        """``(batch, out, h', w')`` from kernel, padding, stride and dilation."""
        if len(input_shape) != 4:
            raise self.error(f"takes NCHW shapes, got {fmt_shape(tuple(input_shape))}")
        (kh, kw), o = self.kernel_shape, self.opts
        sizes = []
        for size, k, p, s, d, what in zip(
            input_shape[2:],
            (kh, kw),
            o["pad"],
            o["stride"],
            o["dilation"],
            ("height", "width"),
            strict=True,
        ):
            span = d * (k - 1) + 1
            if size + 2 * p < span:
                raise self.error(
                    f"the input's {what} {size} (padded by {p} on each side) is smaller than "
                    f"the kernel's reach {span}; use a smaller kernel or more padding"
                )
            sizes.append((size + 2 * p - span) // s + 1)
        return (input_shape[0], self.out_channels, *sizes)

    def flops(self, batch: int = 1) -> int:
        """Per output value: ``2 * in * kh * kw - 1`` for the window's dot product, plus one
        each for the bias, the activation and the dropout when set.

        Example:
            >>> import graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewTensor(g, gc.Float64, 4, gc.WithShape(None, 1, 4, 4), gc.WithName("x"))
            >>> G.ConsConv(x, G.WithShape(2), G.WithBias(False)).flops()  # 2*4*4 outputs
            544
        """
        out = self.output_shape(self.input_shape)
        c_in = sample_sizes(self, self.input_shape)[0]
        per = 2 * c_in * self.kernel_shape[0] * self.kernel_shape[1] - 1
        o = self.opts
        per += ("b" in self.params) + (o["activation"] is not None) + (o["probability"] > 0)
        return batch * per_sample(out) * per

    def config(self) -> dict[str, Any]:
        """Name, channels, kernel, pad, stride, dilation, activation, bias (and the rest set)."""
        o = self.opts
        out: dict[str, Any] = {
            "name": self.name,
            "out_channels": self.out_channels,
            "kernel": list(self.kernel_shape),
            "pad": list(o["pad"]),
            "stride": list(o["stride"]),
            "dilation": list(o["dilation"]),
            "activation": fn_name(o["activation"]),
            "bias": bool(o["bias"]),
        }
        if o["probability"] > 0:
            out["probability"] = o["probability"]
        if "init" in o:
            out["init"] = fn_name(o["init"])
        if "weights" in o:
            out["weights"] = "given"
        return out


def ConsConv(x: gc.Node | LayerOpt | None = None, *opts: LayerOpt) -> Conv | Thunk:
    """A 2-D convolution layer for NCHW input ``x``; without ``x``, a thunk for ``L``.

    Options: ``WithShape(out_channels)`` (also Golgi's ``WithSize(out, in)``), ``WithName``,
    ``WithKernelShape(kh, kw)`` (default (3, 3)), ``WithPad`` (default (1, 1)), ``WithStride``
    (default (1, 1)), ``WithDilation`` (default (1, 1)), ``WithBias(bool)`` (default on, shape
    (1, out, 1, 1)), ``WithActivation(fn)`` (default none), ``WithInit`` (default
    ``GlorotN(1.0)``), ``WithWeights(array or node)`` (out, in, kh, kw), ``WithProbability(p)``
    (dropout after the activation, as Golgi; default 0: none).

    Example:
        >>> import graphcore as gc, golgi as G
        >>> g = gc.NewGraph()
        >>> x = gc.NewTensor(g, gc.Float32, 4, gc.WithShape(None, 3, 32, 32), gc.WithName("x"))
        >>> G.ConsConv(x, G.WithShape(16), G.WithKernelShape(5, 5), G.WithPad(0)).fwd(x).shape
        (None, 16, 28, 28)
        >>> G.ConsConv(G.WithSize(16, 3))
        L(ConsConv(WithShape(16, 3)))
    """
    return Conv.cons(x, *opts)
