"""Shared check for the hot paths' "no arrays allocated per step" tests.

``peak_growth(step, n, warmup)`` runs ``step`` ``warmup`` times untraced (plans, caches and
lazily made scratch come first), then ``n`` times under ``tracemalloc`` and returns how far
the traced peak rose above where it started, in bytes: an array allocated per step shows
as its size or more, however briefly it lived.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable

__all__ = ["peak_growth"]


def peak_growth(step: Callable[[], object], n: int, warmup: int = 0) -> int:
    """Bytes the traced peak rose over ``n`` calls of ``step`` after ``warmup`` calls."""
    for _ in range(warmup):
        step()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        for _ in range(n):
            step()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
