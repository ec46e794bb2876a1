"""Which arrays the compiled loops take, chosen once per binding: C-contiguous arrays of one
shape and one float dtype, as flat views (:func:`flat_views`). A ``<kernel>_scratch`` made for
other arrays (strided views) is a :class:`Ref`, and the kernel then runs the reference one.

Example:
    >>> import numpy as np
    >>> [v.shape for v in flat_views(np.ones((2, 3)), np.zeros((2, 3)))]
    [(6,), (6,)]
    >>> flat_views(np.ones((2, 3))[:, ::2]) is None
    True
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

__all__ = ["Ref", "flat_views"]


class Ref(NamedTuple):
    """The scratch of a kernel bound to arrays its loop cannot take: run the reference."""

    scratch: Any


def flat_views(*arrays: np.ndarray) -> list[np.ndarray] | None:
    """1-D views of ``arrays`` when they are all C-contiguous, of one shape and one float
    dtype (float32 or float64), as the loops index them; else None."""
    a0 = arrays[0]
    if a0.dtype.type not in (np.float32, np.float64):
        return None
    for a in arrays:
        if a.dtype != a0.dtype or a.shape != a0.shape or not a.flags.c_contiguous:
            return None
    return [a.reshape(-1) for a in arrays]
