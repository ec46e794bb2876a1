"""numba's ``njit`` for the compiled kernels, with their on-disk cache in the user's cache
directory (imported only with :mod:`graphcore.kernels.compiled`).

numba compiles a loop on first use (one to three seconds per loop and dtype) and, with
caching, keeps it on disk for the next process. Its own ``cache=True`` writes next to the
source file, that is inside the installed package (often read-only, and shared by every
user); changing numba's global settings instead would move the cache of every other library
in the process. So each kernel gets a cache of its own whose files go to
:func:`cache_dir`: ``$NUMBA_CACHE_DIR`` when the user set it, else ``graphcore/numba`` under
the user's cache directory.

Example:
    >>> import os
    >>> os.path.isabs(cache_dir())
    True
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numba

__all__ = ["cache_dir", "contracted", "jit", "vectorised"]


def cache_dir() -> str:
    """Where the compiled loops are cached: ``$NUMBA_CACHE_DIR`` when the user set it, else
    ``graphcore/numba`` under ``$XDG_CACHE_HOME`` (``%LOCALAPPDATA%`` on Windows, else
    ``~/.cache``).

    Example:
        >>> os.path.isabs(cache_dir())
        True
    """
    configured = getattr(numba.config, "CACHE_DIR", "")  # set from NUMBA_CACHE_DIR; not in stubs
    if configured:
        return os.path.abspath(configured)
    base = os.environ.get("XDG_CACHE_HOME") or (
        os.environ.get("LOCALAPPDATA") if os.name == "nt" else None
    )
    if not base:
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(os.path.abspath(base), "graphcore", "numba")


def _disk_cache() -> Callable[[Callable], Any] | None:
    """A factory of numba function caches that keep their files under :func:`cache_dir`, or
    None where numba's caching classes are not where this numba version is expected to
    have them (the loops are then compiled once per process)."""
    try:
        from numba.core import caching
    except ImportError:  # pragma: no cover - another numba layout
        return None

    class Locator(caching._SourceFileBackedLocatorMixin, caching._CacheLocator):
        def __init__(self, py_func: Callable, py_file: str) -> None:
            self._py_file = py_file
            self._lineno = py_func.__code__.co_firstlineno
            sub = self.get_suitable_cache_subpath(py_file)
            self._cache_path = os.path.join(cache_dir(), sub)

        def get_cache_path(self) -> str:
            return self._cache_path

    class Impl(caching.CompileResultCacheImpl):
        _locator_classes = [Locator]

    class Cache(caching.FunctionCache):
        _impl_class = Impl

    return Cache


_CACHE = _disk_cache()


def _compile(fastmath: Any = False) -> Callable[[Callable], Any]:
    """numba's ``njit`` for the kernels, with the disk cache above set on each function alone
    (``cache=True`` would write next to the source file, inside the installed package)."""

    def wrap(fn: Callable) -> Any:
        disp = numba.njit(nogil=True, error_model="numpy", fastmath=fastmath)(fn)
        if _CACHE is not None:
            try:
                disp._cache = _CACHE(disp.py_func)  # type: ignore[attr-defined]  # numba's own slot
            except Exception:  # noqa: BLE001 - no writable cache directory: compile per process
                pass
        return disp

    return wrap


#: ``njit`` for the kernels' loops (no fast-math: the results match numpy's passes)
jit = _compile()
#: ``njit`` with reassociation and contraction, for loops that sum (vectorised sums) and the
#: polynomial ``exp`` and ``log``
vectorised = _compile({"reassoc", "contract"})
#: ``njit`` with contraction alone (fused multiply-adds), for loops whose sums must stay in
#: their order: with reassociation LLVM may vectorise the wrong loop (the direct convolution's
#: channel loop, as a strided reduction: 15x slower than over its pixels)
contracted = _compile({"contract"})
