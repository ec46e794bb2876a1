"""Optional compiled kernels (numba) for the passes numpy cannot fuse: the public switch.

A solver update is a chain of elementwise passes; numpy runs each over memory on its own, so
RMSProp over the talk's 222k parameters reads and writes ~13 MB per step where one fused loop
moves ~4 MB. With the ``fast`` extra installed (``pip install 'golgi-dl[fast]'``, which brings
numba), every solver update but Barzilai-Borwein's runs as one compiled loop per parameter,
and so do the sigmoid, the ReLU gradient and the sigmoid and softmax cross-entropies (value,
saved intermediates, gradient): :mod:`graphcore.kernels.compiled`, the same kernels as the
numpy ones in :mod:`graphcore.kernels.reference`. Without numba, or with the environment
variable ``GRAPHCORE_NUMBA=0``, everything runs in numpy, to the same results up to float
rounding.

Solvers check at every step. A machine picks its kernels once, when it compiles a plan (tape
machine) or is built (Lisp machine): switch before building the machine, or before its
first run at a new batch size. A process that starts with them off never imports numba.

Kernels are compiled on first use and cached on disk by numba, in the user's cache directory
(one to three seconds per kernel and dtype the first time a machine runs them, milliseconds
after). Loading numba and LLVM adds about 100 MiB to the process.

Example:
    >>> import graphcore as gc
    >>> gc.accel.available() in (True, False)
    True
    >>> with gc.accel.disabled():
    ...     gc.accel.enabled()
    False
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

__all__ = ["available", "enabled", "set_enabled", "disabled", "kernels"]

_state: dict[str, Any] = {"on": os.environ.get("GRAPHCORE_NUMBA", "1") != "0", "mod": None}


def available() -> bool:
    """True when numba can be imported (the ``fast`` extra is installed).

    Example:
        >>> available() in (True, False)
        True
    """
    return _import_numba() is not None


def enabled() -> bool:
    """True when the compiled kernels are used: numba is installed and not switched off.

    Example:
        >>> with disabled():
        ...     enabled()
        False
        >>> enabled() == available() or not _state["on"]
        True
    """
    return bool(_state["on"]) and _import_numba() is not None


def set_enabled(on: bool) -> None:
    """Switch the compiled kernels on or off for this process (``GRAPHCORE_NUMBA=0`` sets
    the default to off). Turning them on without numba installed is a no-op.

    Example:
        >>> was = enabled(); set_enabled(False); enabled()
        False
        >>> set_enabled(was)
    """
    _state["on"] = bool(on)


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Run a block with the pure numpy kernels (to compare, or to rule numba out).

    Example:
        >>> with disabled():
        ...     enabled()
        False
    """
    was = _state["on"]
    _state["on"] = False
    try:
        yield
    finally:
        _state["on"] = was


def _import_numba() -> Any:
    if "numba" not in _state:
        try:
            import numba

            _state["numba"] = numba
        except ImportError:
            _state["numba"] = None
    return _state["numba"]


def kernels() -> Any:
    """The compiled kernels (the module :mod:`graphcore.kernels.compiled`, with ``rmsprop``,
    ``adam``, ``sigmoid_bce_sum``, ``relu_grad``, ...), or None when they are off or numba is
    missing. :func:`graphcore.kernels.backend` gives the numpy ones instead of None.

    Example:
        >>> k = kernels(); k is None or callable(k.rmsprop)
        True
    """
    if not _state["on"]:
        return None
    if _state["mod"] is None:
        if _import_numba() is None:
            return None
        from .kernels import compiled

        _state["mod"] = compiled
    return _state["mod"]
