"""One seed for every random draw: initializers, dropout masks, random nodes.

``SetSeed(n)`` makes a whole run reproducible, bit for bit on the same machine.

Example:
    >>> import graphcore as gc
    >>> gc.SetSeed(7); a = gc.GlorotN(1.0)(gc.Float32, (3, 2))
    >>> gc.SetSeed(7); b = gc.GlorotN(1.0)(gc.Float32, (3, 2))
    >>> bool((a == b).all())
    True
"""

from __future__ import annotations

import numpy as np

__all__ = ["SetSeed", "get_rng", "spawn_rng"]

_rng: np.random.Generator = np.random.default_rng()


def SetSeed(seed: int | None) -> None:
    """Seed every random draw graphcore and golgi make (``None`` draws a fresh seed).

    Example:
        >>> SetSeed(0)
    """
    global _rng
    _rng = np.random.default_rng(seed)


def get_rng() -> np.random.Generator:
    """The shared generator; initializers draw from it.

    Example:
        >>> get_rng().standard_normal(2).shape
        (2,)
    """
    return _rng


def spawn_rng() -> np.random.Generator:
    """An independent generator derived from the shared one (for a machine's dropout masks).

    Example:
        >>> isinstance(spawn_rng(), np.random.Generator)
        True
    """
    return np.random.default_rng(_rng.integers(0, 2**63 - 1))
