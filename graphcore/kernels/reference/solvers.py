"""The numpy solver kernels: one update per solver over a
:class:`~graphcore.kernels.segments.Segment`, the gradient regularised first.

Each runs one pass per step of its formula over the whole segment (every parameter at once
when their gradients share a buffer), with the value updates as BLAS axpy calls.
:mod:`graphcore.kernels.compiled.solvers` has each under the same name and signature.

Example:
    >>> import numpy as np
    >>> from graphcore.kernels.segments import Segment
    >>> seg = Segment.single(np.array([1.0]), np.array([2.0]), np.empty(1), {})
    >>> sgd(seg, Reg(0.0, 0.0, 1, None), 0.25); seg.parts[0].w.tolist()
    [0.5]
"""

from __future__ import annotations

import numpy as np

from ..segments import Reg, Segment

__all__ = ["regularise", "sgd", "momentum", "adagrad", "rmsprop", "adam"]


def regularise(seg: Segment, reg: Reg) -> None:
    """``g ← clip((g + l1·sign(w) + l2·w) / batch, -clip, clip)`` in place, skipping the
    terms that are off.

    Example:
        >>> from graphcore.kernels.segments import Segment
        >>> seg = Segment.single(np.array([2.0]), np.array([4.0]), np.empty(1), {})
        >>> regularise(seg, Reg(0.0, 0.5, 2, 1.5)); seg.g.tolist()
        [1.5]
    """
    l1, l2, batch, clip = reg
    for p in seg.parts if (l1 or l2) else ():
        s = p.s
        if l1:
            np.sign(p.w, out=s)
            np.multiply(s, l1, out=s)
            np.add(p.g, s, out=p.g)
        if l2:
            np.multiply(p.w, l2, out=s)
            np.add(p.g, s, out=p.g)
    g = seg.g
    if batch != 1:
        np.divide(g, batch, out=g)
    if clip is not None:
        # not np.clip: its Python wrapper keeps a small allocation per call (numpy 2.4)
        np.minimum(g, clip, out=g)
        np.maximum(g, -clip, out=g)


def sgd(seg: Segment, reg: Reg, eta: float) -> None:
    """Plain SGD: ``w ← w − η·g'``.

    Example:
        >>> from graphcore.kernels.segments import Segment
        >>> seg = Segment.single(np.array([1.0]), np.array([2.0]), np.empty(1), {})
        >>> sgd(seg, Reg(0.0, 0.0, 1, None), 0.25); seg.parts[0].w.tolist()
        [0.5]
    """
    regularise(seg, reg)
    seg.add_to_values("g", -eta)


def momentum(seg: Segment, reg: Reg, eta: float, mu: float) -> None:
    """Momentum SGD: ``v ← μ·v − η·g'``; ``w ← w + v`` (buffer ``"velocity"``).

    Example:
        >>> from graphcore.kernels.segments import Segment
        >>> seg = Segment.single(np.array([1.0]), np.array([2.0]), np.empty(1),
        ...                      {"velocity": np.array([1.0])})
        >>> momentum(seg, Reg(0.0, 0.0, 1, None), 0.25, 0.5); seg.parts[0].w.tolist()
        [1.0]
    """
    regularise(seg, reg)
    seg.axpby("g", "velocity", -eta, mu)
    seg.add_to_values("velocity", 1.0)


def _rms_step(seg: Segment, eta: float, eps: float) -> None:
    """``w -= eta * g / sqrt(cache + eps)`` for the segment's parameters (AdaGrad, RMSProp)."""
    s = seg.s
    np.add(seg.bufs["cache"], eps, out=s)
    np.sqrt(s, out=s)
    np.divide(seg.g, s, out=s)
    seg.add_to_values("s", -eta)


def adagrad(seg: Segment, reg: Reg, eta: float, eps: float) -> None:
    """AdaGrad: ``c ← c + g'²``; ``w ← w − η·g'/√(c + ε)`` (buffer ``"cache"``).

    Example:
        >>> from graphcore.kernels.segments import Segment
        >>> seg = Segment.single(np.array([1.0]), np.array([2.0]), np.empty(1),
        ...                      {"cache": np.array([0.0])})
        >>> adagrad(seg, Reg(0.0, 0.0, 1, None), 0.5, 0.0); seg.parts[0].w.tolist()
        [0.5]
    """
    for b in seg.blocks():
        regularise(b, reg)
        g, c, s = b.g, b.bufs["cache"], b.s
        np.multiply(g, g, out=s)
        np.add(c, s, out=c)
        _rms_step(b, eta, eps)


def rmsprop(seg: Segment, reg: Reg, eta: float, rho: float, eps: float) -> None:
    """RMSProp: ``c ← ρ·c + (1 − ρ)·g'²``; ``w ← w − η·g'/√(c + ε)`` (buffer ``"cache"``).

    Example:
        >>> from graphcore.kernels.segments import Segment
        >>> seg = Segment.single(np.array([1.0]), np.array([2.0]), np.empty(1),
        ...                      {"cache": np.array([0.0])})
        >>> rmsprop(seg, Reg(0.0, 0.0, 1, None), 0.5, 0.75, 0.0); seg.parts[0].w.tolist()
        [0.0]
    """
    for b in seg.blocks():  # every pass over a block while it is in cache
        regularise(b, reg)
        np.multiply(b.g, b.g, out=b.s)
        b.axpby("s", "cache", 1.0 - rho, rho)  # one BLAS pass for the decaying cache
        _rms_step(b, eta, eps)


def adam(seg: Segment, reg: Reg, b1: float, b2: float, eps_hat: float, step: float,
         decay: float) -> None:
    """Adam with the bias corrections folded into ``step`` and ``eps_hat``:
    ``m ← β1·m + (1−β1)·g'``, ``v ← β2·v + (1−β2)·g'²``,
    ``w ← decay·w − step·m/(√v + eps_hat)`` (buffers ``"m"`` and ``"v"``; ``decay`` is
    AdamW's ``1 − η·λ``, 1 for Adam).

    Example:
        >>> from graphcore.kernels.segments import Segment
        >>> seg = Segment.single(np.array([1.0]), np.array([2.0]), np.empty(1),
        ...                      {"m": np.array([0.0]), "v": np.array([0.0])})
        >>> adam(seg, Reg(0.0, 0.0, 1, None), 0.5, 0.75, 0.0, 0.5, 1.0); seg.parts[0].w.tolist()
        [0.5]
    """
    for blk in seg.blocks():  # every pass over a block while it is in cache
        regularise(blk, reg)
        g, m, v, s = blk.g, blk.bufs["m"], blk.bufs["v"], blk.s
        # square g before the moment update: axpby's numpy fallback may scale g in place
        np.multiply(g, g, out=s)
        blk.axpby("s", "v", 1.0 - b2, b2)
        blk.axpby("g", "m", 1.0 - b1, b1)
        np.sqrt(v, out=s)
        np.add(s, eps_hat, out=s)
        np.divide(m, s, out=s)
        if decay != 1.0:
            for p in blk.parts:
                np.multiply(p.w, decay, out=p.w)
        blk.add_to_values("s", -step)
