"""What the convolution kernel and fusion tests share: a parameter node with random values,
and the Winograd kernels' shapes (the compiled and the numpy kernel run the same cases)."""

from __future__ import annotations

from typing import Any

import numpy as np

import graphcore as gc

#: n, c, co, h, w, pad: odd sizes and channel counts, 7x7 and 14x14 planes, one pixel out,
#: mixed paddings
WINOGRAD_SHAPES = [
    (1, 2, 4, 5, 7, (1, 1)),
    (3, 3, 5, 9, 6, (1, 1)),
    (2, 2, 2, 6, 6, (0, 0)),
    (2, 3, 4, 5, 8, (2, 2)),
    (2, 5, 3, 7, 7, (1, 1)),
    (2, 4, 6, 14, 14, (1, 1)),
    (1, 6, 2, 3, 3, (0, 0)),
    (2, 1, 3, 4, 5, (0, 2)),
    (1, 2, 2, 1, 1, (1, 1)),
    (3, 5, 7, 6, 9, (2, 1)),
]


def param(
    g: gc.Graph, name: str, shape: tuple[int, ...], dtype: Any, rng: np.random.Generator,
    scale: float = 0.3,
) -> gc.Node:
    """A tensor node named ``name`` holding standard normal values times ``scale``."""
    dt = gc.as_dtype(np.dtype(dtype))
    v = (rng.standard_normal(shape) * scale).astype(dtype)
    return gc.NewTensor(g, dt, len(shape), gc.WithName(name), gc.WithValue(v))
