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

import threading

import numpy as np

__all__ = ["SetSeed", "get_rng", "spawn_rng"]

# Each thread that calls SetSeed draws from its own generator, so two threads building seeded
# models at once never interleave their streams; threads that never seed share one.
_shared: np.random.Generator = np.random.default_rng()
_local = threading.local()


def SetSeed(seed: int | None) -> None:
    """Seed every random draw graphcore and golgi make in this thread (``None`` draws a fresh
    seed): initial weights, dropout masks, random nodes.

    The seed belongs to the calling thread: threads seeding themselves never mix their random
    streams, and a thread that never calls it draws from a shared unseeded generator.

    Example:
        >>> import threading
        >>> SetSeed(0); a = get_rng().random()
        >>> out = []
        >>> t = threading.Thread(target=lambda: (SetSeed(0), out.append(get_rng().random())))
        >>> t.start(); t.join(); out[0] == a
        True
    """
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise TypeError(f"SetSeed takes an int or None, got {seed!r}")
    _local.rng = np.random.default_rng(seed)


def get_rng() -> np.random.Generator:
    """This thread's generator (seeded by ``SetSeed``); initializers draw from it.

    Example:
        >>> get_rng().standard_normal(2).shape
        (2,)
    """
    rng = getattr(_local, "rng", None)
    return _shared if rng is None else rng


def spawn_rng() -> np.random.Generator:
    """An independent generator derived from this thread's (for a machine's dropout masks).

    Example:
        >>> isinstance(spawn_rng(), np.random.Generator)
        True
    """
    return np.random.default_rng(get_rng().integers(0, 2**63 - 1))
