"""The compiled solver kernels: :mod:`graphcore.kernels.reference.solvers`' names and
signatures, one loop per parameter.

Solver loops do, per element, exactly the reference passes in the same order (the gradient
regularised as ``clip((g + l1*sign(w) + l2*w) / batch)``, then the solver's formula), so the
backends agree to float rounding. Scalars arrive in the arrays' dtype, so float32 parameters
are updated in float32 arithmetic, as numpy does. Each solver has three loops: the gradient
as it is, divided by the batch size (a division per element costs RMSProp a fifth of its
time), and regularised and clipped, since branches inside a loop keep LLVM from vectorising
it (7x slower).

Example:
    >>> import numpy as np
    >>> from graphcore.kernels.segments import Segment
    >>> seg = Segment.single(np.array([1.0]), np.array([2.0]), np.empty(1), {})
    >>> sgd(seg, Reg(0.0, 0.0, 1, None), 0.25); seg.parts[0].w.tolist()
    [0.5]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import reference
from ..jit import jit as _jit
from ..segments import Reg, Segment

__all__ = ["regularise", "sgd", "momentum", "adagrad", "rmsprop", "adam"]


# ----- solver updates: one loop per parameter ---------------------------------------------------
# Three loops per solver: the gradient as it is, divided by the batch size, or regularised
# and clipped (with branches: not vectorised). Each solver's loops take ``(w, g, buffers...)``,
# then the gradient rule's scalars (none, the batch size, or five), then the solver's.


@_jit
def _regularised(g, w, i, l1, l2, batch, clip, use_clip):  # pragma: no cover
    gi = g[i]
    if l1 != 0:
        gi = gi + l1 * np.sign(w[i])
    if l2 != 0:
        gi = gi + l2 * w[i]
    if batch != 1:
        gi = gi / batch
    if use_clip:
        if gi > clip:
            gi = clip
        elif gi < -clip:
            gi = -clip
    return gi


@_jit
def _regularise(w, g, l1, l2, batch, clip, use_clip):  # pragma: no cover
    for i in range(w.size):
        g[i] = _regularised(g, w, i, l1, l2, batch, clip, use_clip)


@_jit
def _sgd_plain(w, g, eta):  # pragma: no cover
    for i in range(w.size):
        w[i] = w[i] - eta * g[i]


@_jit
def _sgd_batch(w, g, batch, eta):  # pragma: no cover
    for i in range(w.size):
        w[i] = w[i] - eta * (g[i] / batch)


@_jit
def _sgd_general(w, g, l1, l2, batch, clip, use_clip, eta):  # pragma: no cover
    for i in range(w.size):
        w[i] = w[i] - eta * _regularised(g, w, i, l1, l2, batch, clip, use_clip)


@_jit
def _momentum_plain(w, g, v, eta, mu):  # pragma: no cover
    for i in range(w.size):
        vi = mu * v[i] - eta * g[i]
        v[i] = vi
        w[i] = w[i] + vi


@_jit
def _momentum_batch(w, g, v, batch, eta, mu):  # pragma: no cover
    for i in range(w.size):
        vi = mu * v[i] - eta * (g[i] / batch)
        v[i] = vi
        w[i] = w[i] + vi


@_jit
def _momentum_general(w, g, v, l1, l2, batch, clip, use_clip, eta, mu):  # pragma: no cover
    for i in range(w.size):
        vi = mu * v[i] - eta * _regularised(g, w, i, l1, l2, batch, clip, use_clip)
        v[i] = vi
        w[i] = w[i] + vi


@_jit
def _adagrad_plain(w, g, c, eps, eta):  # pragma: no cover
    for i in range(w.size):
        gi = g[i]
        ci = c[i] + gi * gi
        c[i] = ci
        w[i] = w[i] - eta * (gi / np.sqrt(ci + eps))


@_jit
def _adagrad_batch(w, g, c, batch, eps, eta):  # pragma: no cover
    for i in range(w.size):
        gi = g[i] / batch
        ci = c[i] + gi * gi
        c[i] = ci
        w[i] = w[i] - eta * (gi / np.sqrt(ci + eps))


@_jit
def _adagrad_general(w, g, c, l1, l2, batch, clip, use_clip, eps, eta):  # pragma: no cover
    for i in range(w.size):
        gi = _regularised(g, w, i, l1, l2, batch, clip, use_clip)
        ci = c[i] + gi * gi
        c[i] = ci
        w[i] = w[i] - eta * (gi / np.sqrt(ci + eps))


@_jit
def _rms_plain(w, g, c, rho, omr, eps, eta):  # pragma: no cover
    for i in range(w.size):
        gi = g[i]
        ci = omr * (gi * gi) + rho * c[i]
        c[i] = ci
        w[i] = w[i] - eta * (gi / np.sqrt(ci + eps))


@_jit
def _rms_batch(w, g, c, batch, rho, omr, eps, eta):  # pragma: no cover
    for i in range(w.size):
        gi = g[i] / batch
        ci = omr * (gi * gi) + rho * c[i]
        c[i] = ci
        w[i] = w[i] - eta * (gi / np.sqrt(ci + eps))


@_jit
def _rms_general(w, g, c, l1, l2, batch, clip, use_clip, rho, omr, eps, eta):  # pragma: no cover
    for i in range(w.size):
        gi = _regularised(g, w, i, l1, l2, batch, clip, use_clip)
        ci = omr * (gi * gi) + rho * c[i]
        c[i] = ci
        w[i] = w[i] - eta * (gi / np.sqrt(ci + eps))


@_jit
def _adam_plain(w, g, m, v, b1, omb1, b2, omb2, eps_hat, step, decay):  # pragma: no cover
    for i in range(w.size):
        gi = g[i]
        mi = omb1 * gi + b1 * m[i]
        vi = omb2 * (gi * gi) + b2 * v[i]
        m[i] = mi
        v[i] = vi
        w[i] = w[i] * decay - step * (mi / (np.sqrt(vi) + eps_hat))


@_jit
def _adam_batch(w, g, m, v, batch, b1, omb1, b2, omb2, eps_hat, step,
                decay):  # pragma: no cover
    for i in range(w.size):
        gi = g[i] / batch
        mi = omb1 * gi + b1 * m[i]
        vi = omb2 * (gi * gi) + b2 * v[i]
        m[i] = mi
        v[i] = vi
        w[i] = w[i] * decay - step * (mi / (np.sqrt(vi) + eps_hat))


@_jit
def _adam_general(w, g, m, v, l1, l2, batch, clip, use_clip, b1, omb1, b2, omb2, eps_hat,
                  step, decay):  # pragma: no cover
    for i in range(w.size):
        gi = _regularised(g, w, i, l1, l2, batch, clip, use_clip)
        mi = omb1 * gi + b1 * m[i]
        vi = omb2 * (gi * gi) + b2 * v[i]
        m[i] = mi
        v[i] = vi
        w[i] = w[i] * decay - step * (mi / (np.sqrt(vi) + eps_hat))


Loops = tuple[Callable, Callable, Callable]


def _loop(reg: Reg, t: type, loops: Loops) -> tuple[Callable, tuple[Any, ...]]:
    """The loop of ``loops`` (plain, batch, general) for the gradient rule ``reg``, and the
    rule's scalars it takes, in the arrays' dtype ``t``."""
    plain, batch, general = loops
    l1, l2, b, clip = reg
    if l1 == 0 and l2 == 0 and clip is None:
        return (plain, ()) if b == 1 else (batch, (t(b),))
    return general, (t(l1), t(l2), t(b), t(0 if clip is None else clip), clip is not None)


def regularise(seg: Segment, reg: Reg) -> None:
    """As :func:`reference.regularise`, one pass per parameter.

    Example:
        >>> from graphcore.kernels.segments import Segment
        >>> seg = Segment.single(np.array([2.0]), np.array([4.0]), np.empty(1), {})
        >>> regularise(seg, Reg(0.0, 0.5, 2, 1.5)); seg.g.tolist()
        [1.5]
    """
    flats = seg.flat_parts
    if flats is None:
        reference.regularise(seg, reg)
        return
    if reg.plain:
        return
    l1, l2, b, clip = reg
    t = seg.g.dtype.type
    args = (t(l1), t(l2), t(b), t(0 if clip is None else clip), clip is not None)
    for f in flats:
        _regularise(f["w"], f["g"], *args)


def sgd(seg: Segment, reg: Reg, eta: float) -> None:
    """As :func:`reference.sgd`, one loop per parameter.

    Example:
        >>> from graphcore.kernels.segments import Segment
        >>> seg = Segment.single(np.array([1.0]), np.array([2.0]), np.empty(1), {})
        >>> sgd(seg, Reg(0.0, 0.0, 1, None), 0.25); seg.parts[0].w.tolist()
        [0.5]
    """
    flats = seg.flat_parts
    if flats is None:
        reference.sgd(seg, reg, eta)
        return
    t = seg.g.dtype.type
    loop, rule = _loop(reg, t, (_sgd_plain, _sgd_batch, _sgd_general))
    for f in flats:
        loop(f["w"], f["g"], *rule, t(eta))


def momentum(seg: Segment, reg: Reg, eta: float, mu: float) -> None:
    """As :func:`reference.momentum`, one loop per parameter.

    Example:
        >>> from graphcore.kernels.segments import Segment
        >>> seg = Segment.single(np.array([1.0]), np.array([2.0]), np.empty(1),
        ...                      {"velocity": np.array([1.0])})
        >>> momentum(seg, Reg(0.0, 0.0, 1, None), 0.25, 0.5); seg.parts[0].w.tolist()
        [1.0]
    """
    flats = seg.flat_parts
    if flats is None:
        reference.momentum(seg, reg, eta, mu)
        return
    t = seg.g.dtype.type
    loop, rule = _loop(reg, t, (_momentum_plain, _momentum_batch, _momentum_general))
    hp = (t(eta), t(mu))
    for f in flats:
        loop(f["w"], f["g"], f["velocity"], *rule, *hp)


def adagrad(seg: Segment, reg: Reg, eta: float, eps: float) -> None:
    """As :func:`reference.adagrad`, one loop per parameter.

    Example:
        >>> from graphcore.kernels.segments import Segment
        >>> seg = Segment.single(np.array([1.0]), np.array([2.0]), np.empty(1),
        ...                      {"cache": np.array([0.0])})
        >>> adagrad(seg, Reg(0.0, 0.0, 1, None), 0.5, 0.0); seg.parts[0].w.tolist()
        [0.5]
    """
    flats = seg.flat_parts
    if flats is None:
        reference.adagrad(seg, reg, eta, eps)
        return
    t = seg.g.dtype.type
    loop, rule = _loop(reg, t, (_adagrad_plain, _adagrad_batch, _adagrad_general))
    hp = (t(eps), t(eta))
    for f in flats:
        loop(f["w"], f["g"], f["cache"], *rule, *hp)


def rmsprop(seg: Segment, reg: Reg, eta: float, rho: float, eps: float) -> None:
    """As :func:`reference.rmsprop`, one loop per parameter.

    Example:
        >>> from graphcore.kernels.segments import Segment
        >>> seg = Segment.single(np.array([1.0]), np.array([2.0]), np.empty(1),
        ...                      {"cache": np.array([0.0])})
        >>> rmsprop(seg, Reg(0.0, 0.0, 1, None), 0.5, 0.75, 0.0); seg.parts[0].w.tolist()
        [0.0]
    """
    flats = seg.flat_parts
    if flats is None:
        reference.rmsprop(seg, reg, eta, rho, eps)
        return
    t = seg.g.dtype.type
    loop, rule = _loop(reg, t, (_rms_plain, _rms_batch, _rms_general))
    hp = (t(rho), t(1.0 - rho), t(eps), t(eta))
    for f in flats:
        loop(f["w"], f["g"], f["cache"], *rule, *hp)


def adam(seg: Segment, reg: Reg, b1: float, b2: float, eps_hat: float, step: float,
         decay: float) -> None:
    """As :func:`reference.adam`, one loop per parameter.

    Example:
        >>> from graphcore.kernels.segments import Segment
        >>> seg = Segment.single(np.array([1.0]), np.array([2.0]), np.empty(1),
        ...                      {"m": np.array([0.0]), "v": np.array([0.0])})
        >>> adam(seg, Reg(0.0, 0.0, 1, None), 0.5, 0.75, 0.0, 0.5, 1.0); seg.parts[0].w.tolist()
        [0.5]
    """
    flats = seg.flat_parts
    if flats is None:
        reference.adam(seg, reg, b1, b2, eps_hat, step, decay)
        return
    t = seg.g.dtype.type
    loop, rule = _loop(reg, t, (_adam_plain, _adam_batch, _adam_general))
    hp = (t(b1), t(1.0 - b1), t(b2), t(1.0 - b2), t(eps_hat), t(step), t(decay))
    for f in flats:
        loop(f["w"], f["g"], f["m"], f["v"], *rule, *hp)
