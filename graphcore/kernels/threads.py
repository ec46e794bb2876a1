"""Threads for the work around the matrix products: the library's thread count and a small
persistent pool that runs a kernel's shares at once.

The matrix products run on numpy's OpenBLAS threads; everything else a training step does
(the solver update, elementwise passes, losses) runs on the calling thread. With more than
one thread allowed (:func:`SetNumThreads`, or ``GRAPHCORE_NUM_THREADS``), kernels whose work
is large enough cut it into shares, one per thread, and :func:`run` runs them at once: the
caller runs the first share, the pool's threads the others. The compiled kernels (numba,
``nogil``) and numpy's ufuncs on large arrays release Python's GIL, so the shares run in
parallel; a share stops being worth its handoff below :data:`MIN_SHARE_BYTES`.

Every share is elementwise work on its own slice, so results do not depend on the thread
count. With one thread nothing here runs: no pool thread is ever started.

Example:
    >>> import numpy as np
    >>> was = NumThreads(); SetNumThreads(2)
    >>> a = np.arange(8.0)
    >>> run(lambda part, k: np.multiply(part, k, out=part), [a[:4], a[4:]], 2.0)
    >>> a.tolist()
    [0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0]
    >>> SetNumThreads(was)
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["SetNumThreads", "NumThreads", "run", "shares_for", "row_slices", "MIN_SHARE_BYTES"]

#: bytes of gradient below which a share is not worth a thread: handing a share to a pool
#: thread and waiting for it costs ~10-25 us on a two-core machine (a futex wake each way,
#: and the GIL for the thread's few Python calls), about what the compiled RMSProp takes
#: over 256 KiB of float32 gradient
MIN_SHARE_BYTES = 256 * 1024

_ENV = "GRAPHCORE_NUM_THREADS"
_state: dict[str, Any] = {"n": None}


def _env_threads() -> int | None:
    """The thread count ``GRAPHCORE_NUM_THREADS`` asks for, or None."""
    raw = os.environ.get(_ENV, "").strip()
    if not raw:
        return None
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n >= 1:
        return n
    warnings.warn(
        f"{_ENV}={raw!r} is not a thread count >= 1; ignored", RuntimeWarning, stacklevel=3
    )
    return None


def NumThreads() -> int:
    """How many threads graphcore's kernels may use (1: everything on the calling thread).

    Set by :func:`SetNumThreads`; until then ``GRAPHCORE_NUM_THREADS``, else 1. One by
    default, measured: on a two-core machine the solver's update in two shares made the
    talk's MLP and autoencoder epochs 3-13% slower, because OpenBLAS's threads keep spinning
    on the other core for a while after each product (the second share waits for a core).

    Example:
        >>> NumThreads() >= 1
        True
    """
    n = _state["n"]
    if n is None:
        n = _state["n"] = _env_threads() or 1
    return n


def SetNumThreads(n: int) -> None:
    """Let graphcore's kernels use up to ``n`` threads in this process (1: only the calling
    thread), for the work the matrix products leave: solver updates and, where large enough,
    elementwise passes. The products' own threads are numpy's OpenBLAS's: set them with
    ``OPENBLAS_NUM_THREADS`` (or threadpoolctl).

    Results are the same with any thread count. The pool's threads start on first use and
    wait, without spinning, between uses.

    Example:
        >>> import graphcore as gc
        >>> was = gc.NumThreads()
        >>> gc.SetNumThreads(2); gc.NumThreads()
        2
        >>> gc.SetNumThreads(was)
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"SetNumThreads takes a thread count >= 1, got {n!r}")
    _state["n"] = n


def shares_for(nbytes: int) -> int:
    """How many shares work over ``nbytes`` of gradient (or of any array the work streams)
    is worth cutting into now: at most :func:`NumThreads`, at least
    :data:`MIN_SHARE_BYTES` each, and 1 when it does not pay.

    Example:
        >>> was = NumThreads(); SetNumThreads(4)
        >>> shares_for(1000), shares_for(3 * MIN_SHARE_BYTES), shares_for(100 * MIN_SHARE_BYTES)
        (1, 3, 4)
        >>> SetNumThreads(was)
    """
    n = _state["n"] or NumThreads()
    if n == 1:
        return 1
    return max(1, min(n, nbytes // MIN_SHARE_BYTES))


def row_slices(n: int, k: int) -> list[slice]:
    """``k`` slices of about equal length (none empty) covering ``range(n)``: the rows of a
    batch cut into shares for :func:`run`. Make them once per shape: a kernel that runs every
    step should not build them every step.

    Example:
        >>> import numpy as np
        >>> x, out = np.arange(10.0).reshape(5, 2), np.empty((5, 2))
        >>> rows = row_slices(len(x), 2); rows
        [slice(0, 3, None), slice(3, 5, None)]
        >>> run(lambda r, a, b: np.multiply(a[r], 2.0, out=b[r]), rows, x, out)
        >>> out[:, 0].tolist()
        [0.0, 4.0, 8.0, 12.0, 16.0]
    """
    k = max(1, min(k, n))
    q, extra = divmod(n, k)
    out, lo = [], 0
    for i in range(k if n else 0):
        hi = lo + q + (i < extra)  # the longer slices first
        out.append(slice(lo, hi))
        lo = hi
    return out


class _Pool:
    """The pool's threads (started as needed) and the job they share: ``run`` posts the
    shares, and the caller and the woken threads claim them one at a time until none is
    left. A thread the OS has not scheduled yet claims nothing, so on a loaded machine the
    caller runs the shares itself instead of waiting for it. One job at a time (``busy``);
    another thread calling meanwhile runs its shares itself."""

    def __init__(self) -> None:
        self.busy = threading.Lock()
        self.claim = threading.Lock()  # guards the job's fields below and each thread's idle
        self.done = threading.Lock()  # released by the thread that ends the last share
        self.done.acquire()
        self.fn: Callable[..., Any] | None = None
        self.shares: Sequence[Any] = ()
        self.args: tuple[Any, ...] = ()
        self.next = self.finished = 0
        self.waiting = False
        self.error: BaseException | None = None
        self.threads: list[_Thread] = []

    def grow(self, n: int) -> list[_Thread]:
        while len(self.threads) < n:
            self.threads.append(_Thread(self, len(self.threads) + 1))
        return self.threads

    def work(self) -> None:
        """Claim and run shares of the current job until none is left."""
        claim = self.claim
        while True:
            with claim:
                i = self.next
                if i >= len(self.shares):
                    return
                self.next = i + 1
                fn, share, args = self.fn, self.shares[i], self.args
            try:
                fn(share, *args)  # type: ignore[misc]
            except BaseException as e:  # noqa: BLE001 - raised again in the caller's thread
                if self.error is None:
                    self.error = e
            with claim:
                self.finished += 1
                if self.finished == len(self.shares) and self.waiting:
                    self.waiting = False
                    self.done.release()


class _Thread:
    """A pool thread: sleeps on ``go`` until a job is posted, then works on it."""

    __slots__ = ("go", "idle", "thread")

    def __init__(self, pool: _Pool, i: int) -> None:
        self.go = threading.Lock()
        self.go.acquire()
        self.idle = True  # waiting on go, or about to (changed under the pool's claim lock)
        self.thread = threading.Thread(target=self._loop, args=(pool,), name=f"graphcore-{i}",
                                       daemon=True)
        self.thread.start()

    def _loop(self, pool: _Pool) -> None:
        go = self.go
        while True:
            go.acquire()
            pool.work()
            with pool.claim:
                self.idle = True


_pool = _Pool()


def _after_fork() -> None:  # pragma: no cover - runs in a forked child
    global _pool
    _pool = _Pool()  # the parent's threads do not exist in the child


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def run(fn: Callable[..., Any], shares: Sequence[Any], *args: Any) -> None:
    """Call ``fn(share, *args)`` for every share, at once: this thread and the pool's claim
    them one at a time. Returns when all are done; an exception in any is raised here.
    While another thread uses the pool (or from a pool thread), the shares run one after the
    other on this thread.

    Example:
        >>> out = [0, 0, 0]
        >>> def put(i, v): out[i] = v
        >>> run(put, [0, 1, 2], 7); out
        [7, 7, 7]
    """
    n = len(shares)
    pool = _pool
    if n <= 1 or not pool.busy.acquire(blocking=False):
        for share in shares:
            fn(share, *args)
        return
    try:
        with pool.claim:
            pool.fn, pool.shares, pool.args = fn, shares, args
            pool.next = pool.finished = 0
            for t in pool.grow(n - 1)[: n - 1]:
                if t.idle:  # a thread still busy with the last job's end joins when it can
                    t.idle = False
                    t.go.release()
        pool.work()
        with pool.claim:
            wait = pool.finished < n
            pool.waiting = wait
        if wait:
            pool.done.acquire()
        with pool.claim:
            error, pool.error = pool.error, None
            pool.fn, pool.shares, pool.args = None, (), ()
        if error is not None:
            raise error
    finally:
        pool.busy.release()
