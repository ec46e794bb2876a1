"""Multi-head scaled dot-product self-attention over sequences (batch, time, width).

``softmax(Q K^T / sqrt(d_head) [+ causal mask]) V`` per head, with ``Q, K, V = x Wq + bq,
x Wk, x Wv + bv`` split into heads, the heads joined and projected by ``Wo, bo``. (A key bias
would add the same number to every score of a query, which the softmax cancels: it could
never learn anything, so there is none.)
With ``ComposeSeq``, ``Add`` and ``ConsLayerNorm`` it makes a transformer block (pre-norm):

Example:
    >>> import graphcore as gc, golgi as G
    >>> g = gc.NewGraph()
    >>> x = gc.NewTensor(g, gc.Float32, 3, gc.WithShape(None, 10, 16), gc.WithName("x"))
    >>> block = G.ComposeSeq(
    ...     x,
    ...     G.Add(G.I, G.ComposeSeq(G.L(G.ConsLayerNorm()),
    ...                             G.L(G.ConsMultiHeadAttention(G.WithHeads(4), G.WithCausal())))),
    ...     G.Add(G.I, G.ComposeSeq(
    ...         G.L(G.ConsLayerNorm()),
    ...         G.L(G.ConsFC(G.WithShape(64), G.AsPositionwise(), G.WithActivation(gc.Gelu))),
    ...         G.L(G.ConsFC(G.WithShape(16), G.AsPositionwise())))),
    ... )
    >>> block.out.shape, [la.kind for la in block.layers]
    ((None, 10, 16), ['LayerNorm', 'MultiHeadAttention', 'LayerNorm', 'FC', 'FC'])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

import graphcore as gc
from graphcore.shapes import fmt_shape

from ..layer import Layer
from ..options import LayerOpt, fn_name
from ..term import Thunk

__all__ = ["MultiHeadAttention", "ConsMultiHeadAttention"]


class MultiHeadAttention(Layer):
    """Self-attention with ``WithHeads(h)`` heads; build it with :func:`ConsMultiHeadAttention`.

    Learnables, for a width D: ``Wq, Wk, Wv, Wo`` (D, D), ``GlorotU(1.0)`` unless
    ``WithInit``; ``bq, bv, bo`` (1, D) zeros unless ``WithBias(False)`` (no key bias: the
    softmax cancels it). The model order is ``Wq, bq, Wk, Wv, bv, Wo, bo``.

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph()
        >>> x = gc.NewTensor(g, gc.Float64, 3, gc.WithShape(None, 5, 8), gc.WithName("x"))
        >>> MultiHeadAttention(x, LayerOpt("heads", 2)).param_count()
        280
    """

    kind = "MultiHeadAttention"
    prefix = "attention"
    options = ("name", "heads", "causal", "bias", "init", "batched")
    defaults = {"heads": 1, "causal": False, "bias": True}

    def check_input(self, x: gc.Node) -> None:
        """Also require a float sequence (batch, time, width), time and width known."""
        if x.ndim != 3 or None in x.shape[1:]:
            raise self.error(
                f"{x.describe()} must be a sequence (batch, time, width) with known time and "
                f"width; for one vector per sample reshape it to (batch, 1, width)"
            )
        if not x.dtype.is_float:
            raise self.error(f"{x.describe()} must be Float32 or Float64", gc.DtypeError)
        super().check_input(x)

    def build(self, x: gc.Node) -> None:
        """Create the projections; check that the width divides into the heads."""
        width, heads = int(x.shape[2]), self.opts["heads"]
        if width % heads:
            raise self.error(
                f"the width {width} of {x.describe()} does not divide into {heads} heads; "
                f"choose WithHeads(n) with n dividing {width}",
                ValueError,
            )
        self.width, self.heads, self.steps = width, heads, int(x.shape[1])
        init = self.opts.get("init") or gc.GlorotU(1.0)
        for p in "qkvo":
            self.learnable(f"W{p}", (width, width), init=init)
            if self.opts["bias"] and p != "k":
                self.learnable(f"b{p}", (1, width), init=gc.Zeroes())
        mask = None
        if self.opts["causal"]:
            # a large negative number, not -inf: exp gives exactly 0 and no inf - inf appears
            upper = np.triu(np.ones((self.steps, self.steps), dtype=bool), k=1)
            mask = np.where(upper, -1e9, 0.0).astype(self.dtype.np)
        self._mask = mask

    def _project(self, x: gc.Node, p: str) -> gc.Node:
        y = gc.Tensordot(x, self.params[f"W{p}"], ([2], [0]))
        b = self.params.get(f"b{p}")
        return y if b is None else gc.Add(y, b)

    def _heads(self, y: gc.Node) -> gc.Node:
        """(batch, time, width) -> (batch, heads, time, width / heads)."""
        d = self.width // self.heads
        return gc.Transpose(gc.Reshape(y, (y.shape[0], self.steps, self.heads, d)), (0, 2, 1, 3))

    def forward(self, x: gc.Node) -> gc.Node:
        """Attention of every position to every (earlier, when causal) position."""
        scale = 1.0 / math.sqrt(self.width // self.heads)
        # scaling q (batch, time, width) is cheaper than the scores (batch, heads, time, time)
        q = self._heads(gc.HadamardProd(self._project(x, "q"), scale))
        k = self._heads(self._project(x, "k"))
        v = self._heads(self._project(x, "v"))
        scores = gc.BatchedMatMul(q, k, transB=True)
        if self._mask is not None:
            scores = gc.Add(scores, gc.NewConstant(self._mask, name=f"{self.name}/mask"))
        ctx = gc.BatchedMatMul(gc.SoftMax(scores, -1), v)
        joined = gc.Reshape(gc.Transpose(ctx, (0, 2, 1, 3)), (x.shape[0], self.steps, self.width))
        return self._project(joined, "o")

    def output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        """The input shape."""
        if len(input_shape) != 3:
            raise self.error(f"takes (batch, time, width), got {fmt_shape(tuple(input_shape))}")
        return tuple(input_shape)

    def flops(self, batch: int = 1) -> int:
        """Four (T, D) x (D, D) projections and three biases, the scaling, the scores, the
        mask, the softmax (about 5 operations per score) and the weighted sums.

        Example:
            >>> import graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewTensor(g, gc.Float64, 3, gc.WithShape(None, 4, 8), gc.WithName("x"))
            >>> G.ConsMultiHeadAttention(x, G.WithHeads(2)).flops()
            2656
        """
        t, d, h = self.steps, self.width, self.heads
        dh = d // h
        proj = 4 * t * (2 * d - 1) * d + (3 * t * d if self.opts["bias"] else 0)
        scores = h * t * t * (2 * dh - 1) + t * d
        soft = 5 * h * t * t + (h * t * t if self.opts["causal"] else 0)
        mix = h * t * dh * (2 * t - 1)
        return batch * (proj + scores + soft + mix)

    def config(self) -> dict[str, Any]:
        """Name, heads, causal, bias (and init when given)."""
        out: dict[str, Any] = {
            "name": self.name,
            "heads": self.heads,
            "causal": bool(self.opts["causal"]),
            "bias": bool(self.opts["bias"]),
        }
        if "init" in self.opts:
            out["init"] = fn_name(self.opts["init"])
        return out


def ConsMultiHeadAttention(
    x: gc.Node | LayerOpt | None = None, *opts: LayerOpt
) -> MultiHeadAttention | Thunk:
    """Self-attention over a sequence ``x`` (batch, time, width) -> the same shape; without
    ``x``, a thunk for ``L``.

    Options: ``WithHeads(h)`` (default 1; must divide the width), ``WithCausal(bool)``
    (default False; True lets position t attend to positions <= t only), ``WithBias(bool)``
    (default on), ``WithInit`` (default ``GlorotU(1.0)``), ``WithName``, ``AsBatched``
    (accepted, changes nothing). See the module docs for a transformer block.

    Example:
        >>> import graphcore as gc, golgi as G
        >>> g = gc.NewGraph()
        >>> x = gc.NewTensor(g, gc.Float64, 3, gc.WithShape(None, 6, 8), gc.WithName("x"))
        >>> att = G.ConsMultiHeadAttention(x, G.WithHeads(2), G.WithName("att"))
        >>> att, att.fwd(x).shape
        (MultiHeadAttention(name='att', heads=2, causal=False, bias=True), (None, 6, 8))
    """
    return MultiHeadAttention.cons(x, *opts)
