"""Where a node's value and gradient live: the one owner of that state.

Every node has a :class:`Slot`. ``Let`` binds an input's value into it (a copy, or the
caller's array lent with ``copy=False``); a machine publishes the arrays its plan computed
into it, or marks a value it overwrote to save memory; ``BindDualValues`` gives it a gradient
buffer that runs accumulate into; solvers zero that gradient lazily. All of these go through
the slot's methods, so a node never carries machine or solver state of its own, and the rules
(what a clobbered value says, when a lazily zeroed gradient is really zero) live here once.

Example:
    >>> import numpy as np
    >>> s = Slot(); s.bind(np.ones(2)); s.value.tolist(), s.lent
    ([1.0, 1.0], False)
    >>> s.clobber("'h2' (Add)"); s.value is None, s.clobbered_by
    (True, "'h2' (Add)")
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np

__all__ = ["Slot", "publish_stamp"]

Kernel = Callable[[], None]

# Every Slot.publish (any slot, any machine, UnsafeLet, clearing) takes a new stamp from this
# counter (next() is atomic, so threads never share one). A machine that published its results
# and finds the latest stamp still its own knows every node still holds what it published, and
# skips publishing them again before its next run (prediction at batch 1 runs ~25 us a call).
_stamps = itertools.count(1)
_latest = 0


def publish_stamp() -> int:
    """The stamp of the latest ``Slot.publish`` anywhere: unchanged means no node's published
    value changed since it was read.

    Example:
        >>> a = publish_stamp(); _ = Slot().publish(None); publish_stamp() > a
        True
    """
    return _latest


class Slot:
    """A node's value and gradient storage.

    - ``value``: the array, or None (nothing bound, computed, or it was clobbered);
    - ``lent``: ``value`` is the caller's array (``Let(..., copy=False)``): never written;
    - ``clobbered_by``: when a machine reused the value's buffer, a description of the node
      that overwrote it (for the error that reading the value raises);
    - ``grad``: the bound gradient buffer (``BindDualValues``), or None;
    - ``grad_stale``: set by a lazy zeroing; the buffer holds an old gradient that counts as
      zero, so the next accumulation overwrites it instead of adding (solvers skip a pass over
      every weight this way).

    Example:
        >>> s = Slot(); s.bind_grad(np.array([3.0])); s.zero_grad(); s.grad_stale
        True
        >>> s.read_grad().tolist(), s.grad_stale
        ([0.0], False)
    """

    __slots__ = ("value", "lent", "clobbered_by", "grad", "grad_stale")

    def __init__(self) -> None:
        self.value: np.ndarray | None = None
        self.lent = False
        self.clobbered_by: str | None = None
        self.grad: np.ndarray | None = None
        self.grad_stale = False

    # ----- values ---------------------------------------------------------------------------
    def bind(self, array: np.ndarray, lent: bool = False) -> None:
        """Hold ``array`` as the value (``lent``: it is the caller's, never to be written).

        Example:
            >>> s = Slot(); a = np.zeros(2); s.bind(a, lent=True); s.value is a, s.lent
            (True, True)
        """
        self.value = array
        self.lent = lent
        self.clobbered_by = None

    def publish(self, array: np.ndarray | None, clobbered_by: str | None = None) -> int:
        """A machine's result: ``array``, or (``clobbered_by`` given) a value that is gone.
        Returns the publish's stamp: while ``publish_stamp()`` still equals it, nothing was
        published since.

        Example:
            >>> s = Slot(); stamp = s.publish(None, "'y' (Exp)"); s.clobbered_by
            "'y' (Exp)"
            >>> stamp == publish_stamp()
            True
        """
        global _latest
        self.value = array
        self.lent = False
        self.clobbered_by = clobbered_by
        _latest = stamp = next(_stamps)
        return stamp

    def clobber(self, by: str) -> None:
        """Mark the value as overwritten by ``by`` (a machine reused its buffer).

        Example:
            >>> s = Slot(); s.bind(np.ones(1)); s.clobber("'z'"); s.value is None
            True
        """
        self.publish(None, by)

    def clear(self) -> None:
        """Forget the value (a closed machine's results, an unbound input).

        Example:
            >>> s = Slot(); s.bind(np.ones(1)); s.clear(); s.value is None
            True
        """
        self.publish(None)

    def owned_value(self) -> np.ndarray | None:
        """The value when it is this slot's own, writeable buffer (not lent), else None.

        Example:
            >>> s = Slot(); s.bind(np.ones(2), lent=True); s.owned_value() is None
            True
        """
        v = self.value
        if v is None or self.lent or not v.flags.writeable:
            return None
        return v

    # ----- gradients ------------------------------------------------------------------------
    def bind_grad(self, array: np.ndarray | None) -> None:
        """Use ``array`` as the gradient buffer (None: unbind it).

        Example:
            >>> s = Slot(); s.bind_grad(np.zeros(3)); s.grad.shape
            (3,)
        """
        self.grad = array
        self.grad_stale = False

    def zero_grad(self) -> None:
        """Zero the gradient lazily: the next accumulation overwrites instead of adding.

        Example:
            >>> s = Slot(); s.bind_grad(np.ones(2)); s.zero_grad(); s.read_grad().tolist()
            [0.0, 0.0]
        """
        if self.grad is not None:
            self.grad_stale = True

    def read_grad(self) -> np.ndarray | None:
        """The gradient buffer, really zeroed first if a lazy zeroing is pending.

        Example:
            >>> Slot().read_grad() is None
            True
        """
        g = self.grad
        if g is not None and self.grad_stale:
            g.fill(0)
            self.grad_stale = False
        return g

    def into_grad(self, write: Kernel, add: Kernel) -> Kernel:
        """A kernel that runs ``write`` (``grad = ...``) after a lazy zeroing, else ``add``
        (``grad += ...``): how machines accumulate a gradient across runs.

        Example:
            >>> s = Slot(); g = np.ones(2); s.bind_grad(g)
            >>> run = s.into_grad(lambda: g.fill(5), lambda: np.add(g, 1, out=g))
            >>> run(); g.tolist()
            [2.0, 2.0]
            >>> s.zero_grad(); run(); g.tolist()
            [5.0, 5.0]
        """

        def run() -> None:
            if self.grad_stale:
                write()
                self.grad_stale = False
            else:
                add()

        return run
