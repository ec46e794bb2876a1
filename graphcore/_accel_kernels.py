"""The numba kernels behind :mod:`graphcore.accel` (imported only when numba is present).

Each kernel is one loop doing, per element, exactly the numpy path's passes in the same order
(the gradient regularised as ``clip((g + l1*sign(w) + l2*w) / batch)``, then the solver's
formula), so both paths agree to float rounding. Scalars arrive in the arrays' dtype, so
float32 parameters are updated in float32 arithmetic, as numpy does.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np


def build(numba: Any) -> SimpleNamespace:
    """Compile (or load from numba's cache) the kernels; ``rmsprop``/``adam`` pick a variant.

    Three variants of each loop: plain, dividing by the batch size, and general
    (regularisation and clipping). Branches inside the loop keep LLVM from vectorising it
    (7x slower), so the common cases get loops without them.
    """
    jit = numba.njit(cache=True, nogil=True, error_model="numpy")

    @jit
    def regularised(g, w, i, l1, l2, batch, clip, use_clip):  # pragma: no cover (compiled)
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

    @jit
    def rms_plain(w, g, c, rho, omr, eps, eta):  # pragma: no cover
        for i in range(w.size):
            gi = g[i]
            ci = omr * (gi * gi) + rho * c[i]
            c[i] = ci
            w[i] = w[i] - eta * (gi / np.sqrt(ci + eps))

    @jit
    def rms_batch(w, g, c, batch, rho, omr, eps, eta):  # pragma: no cover
        for i in range(w.size):
            gi = g[i] / batch
            ci = omr * (gi * gi) + rho * c[i]
            c[i] = ci
            w[i] = w[i] - eta * (gi / np.sqrt(ci + eps))

    @jit
    def rms_general(w, g, c, l1, l2, batch, clip, use_clip, rho, omr, eps, eta):  # pragma: no cover
        for i in range(w.size):
            gi = regularised(g, w, i, l1, l2, batch, clip, use_clip)
            ci = omr * (gi * gi) + rho * c[i]
            c[i] = ci
            w[i] = w[i] - eta * (gi / np.sqrt(ci + eps))

    @jit
    def adam_plain(w, g, m, v, b1, omb1, b2, omb2, eps_hat, step, decay):  # pragma: no cover
        for i in range(w.size):
            gi = g[i]
            mi = omb1 * gi + b1 * m[i]
            vi = omb2 * (gi * gi) + b2 * v[i]
            m[i] = mi
            v[i] = vi
            w[i] = w[i] * decay - step * (mi / (np.sqrt(vi) + eps_hat))

    @jit
    def adam_general(w, g, m, v, l1, l2, batch, clip, use_clip, b1, omb1, b2, omb2, eps_hat,
                     step, decay):  # pragma: no cover
        for i in range(w.size):
            gi = regularised(g, w, i, l1, l2, batch, clip, use_clip)
            mi = omb1 * gi + b1 * m[i]
            vi = omb2 * (gi * gi) + b2 * v[i]
            m[i] = mi
            v[i] = vi
            w[i] = w[i] * decay - step * (mi / (np.sqrt(vi) + eps_hat))

    def rmsprop(w, g, c, l1, l2, batch, clip, use_clip, rho, omr, eps, eta):
        if l1 == 0 and l2 == 0 and not use_clip:
            if batch == 1:
                rms_plain(w, g, c, rho, omr, eps, eta)
            else:
                rms_batch(w, g, c, batch, rho, omr, eps, eta)
        else:
            rms_general(w, g, c, l1, l2, batch, clip, use_clip, rho, omr, eps, eta)

    def adam(w, g, m, v, l1, l2, batch, clip, use_clip, b1, omb1, b2, omb2, eps_hat, step,
             decay):
        if l1 == 0 and l2 == 0 and batch == 1 and not use_clip:
            adam_plain(w, g, m, v, b1, omb1, b2, omb2, eps_hat, step, decay)
        else:
            adam_general(w, g, m, v, l1, l2, batch, clip, use_clip, b1, omb1, b2, omb2,
                         eps_hat, step, decay)

    return SimpleNamespace(rmsprop=rmsprop, adam=adam)
