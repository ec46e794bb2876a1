"""Data-parallel training over MPI for your own training loop: sum the gradients of every
rank in one message, start every rank from the same values.

Every rank (process) holds the whole model, computes the gradients of its share of each
batch, then :class:`AllreduceGrads` sums them across the ranks (``average=True`` divides by
the number of ranks), so every rank steps its solver with the same gradients and the
weights stay identical. The gradients travel as one flat buffer per dtype: a tape machine
built with ``BindDualValues`` lays them out side by side in one array, which is reduced in
place; gradients elsewhere are packed into one buffer first.

mpi4py is imported only when a communicator over MPI is made (``pip install
'golgi-dl[mpi]'``); :meth:`Communicator.local` runs the same code in one process without
MPI. Run the script with ``mpiexec -n 2 python train.py``.

Example (one process here; under ``mpiexec`` each rank adds its gradients to the others'):
    >>> import numpy as np, graphcore as gc
    >>> g = gc.NewGraph()
    >>> w = gc.NewVector(g, gc.Float64, gc.WithShape(2), gc.WithName("w"),
    ...                  gc.WithValue([1.0, 2.0]))
    >>> cost = gc.Sum(gc.Square(w)); _ = gc.Grad(cost, w)
    >>> vm = gc.NewTapeMachine(g, gc.BindDualValues(w))
    >>> comm = gc.Communicator.local()  # gc.Communicator() is MPI.COMM_WORLD
    >>> gc.BroadcastValues([w], comm)  # every rank starts from rank 0's weights
    >>> allreduce = gc.AllreduceGrads([w], comm, average=True)
    >>> vm.run_all(); allreduce(); gc.NewVanillaSolver(gc.WithLearnRate(0.25)).step([w])
    >>> w.value.tolist(), allreduce.messages
    ([0.5, 1.0], 1)
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .kernels.segments import flat_span
from .solvers.base import _as_list, _check_distinct, _value_grad

__all__ = ["Communicator", "AllreduceGrads", "BroadcastValues", "mpi"]

#: seconds a rank waits after flushing its output before ``MPI_Abort`` ends the job
_ABORT_GRACE_S = 0.2

_INSTALL = "pip install 'golgi-dl[mpi]' (mpi4py, and MPICH from PyPI)"


def mpi() -> Any:
    """The ``mpi4py.MPI`` module, imported now (which starts MPI), or ``ImportError`` saying
    what to install.

    Example:
        >>> mpi().COMM_WORLD.Get_size()  # doctest: +SKIP
        1
    """
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise ImportError(
            f"distributed training needs mpi4py and an MPI library: {_INSTALL} ({e})"
        ) from None
    except RuntimeError as e:  # mpi4py is there but finds no MPI library to load
        msg = " ".join(str(e).split())
        raise ImportError(
            f"distributed training: mpi4py found no MPI library ({msg}); {_INSTALL}, or point "
            f"MPI4PY_LIBMPI at your cluster's libmpi.so"
        ) from None
    return MPI


class _Done:
    """The request of a collective that had nothing to do (one process)."""

    def Wait(self) -> None:  # noqa: N802 - mpi4py's name, so both requests read alike
        pass


_DONE = _Done()


class Communicator:
    """The collectives data-parallel training needs, over an mpi4py communicator, or over
    one process without MPI (:meth:`local`). Buffers are numpy arrays, reduced in place.

    ``comm``: an mpi4py communicator, or None for ``MPI.COMM_WORLD`` (all the processes
    ``mpiexec`` started). ``rank`` is this process's number (0 .. ``size`` - 1).

    Example:
        >>> import numpy as np
        >>> c = Communicator.local(); buf = np.array([1.0, 2.0]); c.allreduce_sum(buf)
        >>> c.rank, c.size, buf.tolist(), c.allgather("hello")
        (0, 1, [1.0, 2.0], ['hello'])
    """

    def __init__(self, comm: Any = None) -> None:
        mod = mpi()
        if comm is None:
            comm = mod.COMM_WORLD
        if not isinstance(comm, mod.Comm):
            raise TypeError(
                f"Communicator: expected an mpi4py communicator (MPI.COMM_WORLD, or one made "
                f"with comm.Split), got {type(comm).__name__}"
            )
        self.comm: Any = comm
        self._mpi: Any = mod
        self.rank: int = comm.Get_rank()
        self.size: int = comm.Get_size()

    @classmethod
    def local(cls) -> Communicator:
        """A communicator of this process alone, without MPI: sums and broadcasts leave the
        buffers as they are. For running and testing MPI code in one process.

        Example:
            >>> Communicator.local().size
            1
        """
        c = cls.__new__(cls)
        c.comm, c._mpi, c.rank, c.size = None, None, 0, 1
        return c

    @property
    def is_local(self) -> bool:
        """True for :meth:`local` (no MPI).

        Example:
            >>> Communicator.local().is_local
            True
        """
        return self.comm is None

    def allreduce_sum(self, buf: np.ndarray) -> None:
        """Replace ``buf`` (contiguous) on every rank by the sum of all ranks' ``buf``.

        Example:
            >>> import numpy as np
            >>> b = np.ones(3); Communicator.local().allreduce_sum(b); b.tolist()
            [1.0, 1.0, 1.0]
        """
        if self.comm is not None:
            self.comm.Allreduce(self._mpi.IN_PLACE, buf, op=self._mpi.SUM)

    def iallreduce_sum(self, buf: np.ndarray) -> Any:
        """Start :meth:`allreduce_sum` without waiting; ``.Wait()`` the returned request
        before reading or writing ``buf``.

        Example:
            >>> import numpy as np
            >>> b = np.ones(2); Communicator.local().iallreduce_sum(b).Wait(); b.tolist()
            [1.0, 1.0]
        """
        if self.comm is None:
            return _DONE
        return self.comm.Iallreduce(self._mpi.IN_PLACE, buf, op=self._mpi.SUM)

    def broadcast(self, buf: np.ndarray, root: int = 0) -> None:
        """Copy rank ``root``'s ``buf`` into every rank's ``buf`` (in place).

        Example:
            >>> import numpy as np
            >>> b = np.arange(3); Communicator.local().broadcast(b); b.tolist()
            [0, 1, 2]
        """
        if self.comm is not None:
            self.comm.Bcast(buf, root=root)

    def allgather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` (any picklable value), in rank order, on every rank. For small
        values (a few per call): it pickles them.

        Example:
            >>> Communicator.local().allgather({"n": 3})
            [{'n': 3}]
        """
        if self.comm is None:
            return [obj]
        return list(self.comm.allgather(obj))

    def allgather_rows(self, local: np.ndarray, out: np.ndarray, counts: Sequence[int]) -> None:
        """Fill ``out`` with every rank's ``local`` rows, stacked in rank order: rank ``r``
        gives ``counts[r]`` rows (``local`` and ``out`` contiguous, of one dtype).

        Example:
            >>> import numpy as np
            >>> out = np.empty((2, 2)); Communicator.local().allgather_rows(np.eye(2), out, [2])
            >>> out.tolist()
            [[1.0, 0.0], [0.0, 1.0]]
        """
        row = math.prod(out.shape[1:])
        if len(counts) != self.size or sum(counts) != len(out) or len(local) != counts[self.rank]:
            raise ValueError(
                f"allgather_rows: {len(local)} local rows, counts {list(counts)} and {len(out)} "
                f"rows out do not fit {self.size} ranks"
            )
        if self.comm is None:
            np.copyto(out, local)
            return
        sizes = [c * row for c in counts]
        displs = [sum(sizes[:r]) for r in range(self.size)]
        self.comm.Allgatherv(local.reshape(-1), [out.reshape(-1), (sizes, displs)])

    def barrier(self) -> None:
        """Wait until every rank gets here.

        Example:
            >>> Communicator.local().barrier()
        """
        if self.comm is not None:
            self.comm.Barrier()

    def abort(self, code: int = 1) -> None:
        """End every rank of the job now with exit code ``code`` (``MPI_Abort``): what ends
        a job in which one rank failed while the others wait in a collective.

        Example:
            >>> Communicator.local().abort  # doctest: +ELLIPSIS
            <bound method Communicator.abort of Communicator(local)>
        """
        sys.stdout.flush()
        sys.stderr.flush()
        if self.comm is None:
            os._exit(code)
        # mpiexec reads the ranks' output pipes on its own schedule and MPI_Abort kills them
        # at once: on a busy machine the last lines (the reason for the abort) were lost
        time.sleep(_ABORT_GRACE_S)
        self.comm.Abort(code)

    def __repr__(self) -> str:
        if self.comm is None:
            return "Communicator(local)"
        return f"Communicator(rank {self.rank} of {self.size})"


def as_communicator(comm: Any) -> Communicator:
    """``comm`` as a :class:`Communicator`: one already, an mpi4py communicator, or None
    (``MPI.COMM_WORLD``).

    Example:
        >>> c = Communicator.local(); as_communicator(c) is c
        True
    """
    return comm if isinstance(comm, Communicator) else Communicator(comm)


class _Group:
    """The gradients of one dtype and the contiguous buffer they are reduced in: the span of
    the machine's own flat array they tile, or a buffer they are packed into."""

    def __init__(self, grads: list[np.ndarray]) -> None:
        self.grads = grads
        span = flat_span(grads)
        self.packed = span is None
        if span is None:
            self.buf = np.empty(sum(g.size for g in grads), grads[0].dtype)
            self.views, lo = [], 0
            for g in grads:
                self.views.append(self.buf[lo : lo + g.size].reshape(g.shape))
                lo += g.size
        else:
            self.buf, self.views = span, []

    def load(self, scale: float | None) -> None:
        """This rank's gradients (times ``scale``) into the buffer."""
        if not self.packed:
            if scale is not None and scale != 1.0:
                np.multiply(self.buf, scale, out=self.buf)
            return
        for g, v in zip(self.grads, self.views):
            if scale is None or scale == 1.0:
                np.copyto(v, g)
            else:
                np.multiply(g, scale, out=v)

    def store(self, divide: int) -> None:
        """The sum back into the gradients (divided by ``divide`` unless it is 1)."""
        if divide != 1:
            np.divide(self.buf, divide, out=self.buf)
        for g, v in zip(self.grads, self.views):
            np.copyto(g, v)


class AllreduceGrads:
    """Sums the gradients of ``vgs`` across the ranks of ``comm``, in place, with one
    allreduce per dtype (one in all for a model of one dtype): call it after each run of
    the training machine and before ``solver.step(vgs)``.

    - ``vgs``: graph nodes with bound gradients (or ValueGrads), in the same order as the
      solver gets them;
    - ``comm``: a :class:`Communicator`, an mpi4py communicator, or None (``MPI.COMM_WORLD``);
    - ``average``: divide the sum by the number of ranks (each rank's cost a mean over its
      share of an evenly split batch: the mean over the whole batch).

    Calling it with ``scale=s`` multiplies this rank's gradients by ``s`` before the sum:
    ``s = rows here / rows in the whole batch`` turns per-rank means over uneven shares into
    the mean over the batch. :meth:`start` and :meth:`wait` split a call in two, to do other
    work while the sum travels. A machine's flat gradient array is reduced in place; other
    gradients are packed into one buffer and copied back (``packed`` says which).

    Example:
        >>> import numpy as np, graphcore as gc
        >>> class P:
        ...     value = np.zeros(3); grad = np.array([2.0, 4.0, 6.0])
        >>> p = P(); ar = AllreduceGrads([p], Communicator.local())
        >>> ar(scale=0.5); p.grad.tolist(), ar.packed, ar.nbytes
        ([1.0, 2.0, 3.0], [True], 24)
    """

    def __init__(self, vgs: Iterable[Any], comm: Any = None, *, average: bool = False) -> None:
        where = "AllreduceGrads"
        self.vgs = list(_as_list(vgs, where))
        if not self.vgs:
            raise ValueError(f"{where}: no parameters given")
        _check_distinct([_value_grad(vg, i, where) for i, vg in enumerate(self.vgs)], self.vgs,
                        where)
        self.comm = as_communicator(comm)
        self.average = bool(average)
        self._grads: list[np.ndarray] = []
        self._groups: list[_Group] = []
        self._requests: list[Any] = []
        self._layout([vg.grad for vg in self.vgs])

    def _layout(self, grads: list[np.ndarray]) -> None:
        by_dtype: dict[np.dtype, list[np.ndarray]] = {}
        for g in grads:
            by_dtype.setdefault(g.dtype, []).append(g)
        self._grads = grads
        self._groups = [_Group(gs) for gs in by_dtype.values()]

    def _current(self) -> list[_Group]:
        # reading .grad zeroes a gradient a solver zeroed lazily and no run has written since
        grads = [vg.grad for vg in self.vgs]
        if any(a is not b for a, b in zip(grads, self._grads)):
            self._layout(grads)  # a machine rebound the gradients
        return self._groups

    @property
    def messages(self) -> int:
        """Allreduce calls per step: one per dtype of the gradients.

        Example:
            >>> import numpy as np
            >>> class P:
            ...     value = np.zeros(2); grad = np.ones(2)
            >>> AllreduceGrads([P()], Communicator.local()).messages
            1
        """
        return len(self._groups)

    @property
    def nbytes(self) -> int:
        """Bytes each rank sends into the sum per step (all gradients).

        Example:
            >>> import numpy as np
            >>> class P:
            ...     value = np.zeros(4, np.float32); grad = np.ones(4, np.float32)
            >>> AllreduceGrads([P()], Communicator.local()).nbytes
            16
        """
        return sum(gr.buf.nbytes for gr in self._groups)

    @property
    def packed(self) -> list[bool]:
        """Per dtype: True when the gradients are copied into a buffer of their own, False
        when their flat array is reduced in place.

        Example:
            >>> import numpy as np
            >>> class P:
            ...     value = np.zeros(2); grad = np.ones(2)
            >>> AllreduceGrads([P()], Communicator.local()).packed
            [True]
        """
        return [gr.packed for gr in self._groups]

    def __call__(self, scale: float | None = None) -> None:
        """Sum (or average) the gradients across the ranks; every rank gets the result."""
        groups = self._current()
        divide = self.comm.size if self.average else 1
        for gr in groups:
            gr.load(scale)
            self.comm.allreduce_sum(gr.buf)
            gr.store(divide)

    def start(self, scale: float | None = None) -> None:
        """Start the sum without waiting for it; call :meth:`wait` before reading the
        gradients (or stepping the solver).

        Example:
            >>> import numpy as np
            >>> class P:
            ...     value = np.zeros(2); grad = np.ones(2)
            >>> ar = AllreduceGrads([P()], Communicator.local()); ar.start(); ar.wait()
        """
        if self._requests:
            raise RuntimeError("AllreduceGrads.start: the last start() was not wait()ed for")
        for gr in self._current():
            gr.load(scale)
            self._requests.append(self.comm.iallreduce_sum(gr.buf))

    def wait(self) -> None:
        """Finish the sum :meth:`start` began.

        Example:
            >>> import numpy as np, graphcore as gc
            >>> class P:
            ...     value, grad = np.zeros(2), np.array([1.0, 2.0])
            >>> p = P(); ar = gc.AllreduceGrads([p], gc.Communicator.local())
            >>> ar.start(); ar.wait(); p.grad.tolist()  # one process: the sum is the gradient
            [1.0, 2.0]
        """
        if not self._requests:
            raise RuntimeError("AllreduceGrads.wait: nothing started; call start() first")
        divide = self.comm.size if self.average else 1
        for req, gr in zip(self._requests, self._groups):
            req.Wait()
            gr.store(divide)
        self._requests.clear()

    def __repr__(self) -> str:
        return (
            f"AllreduceGrads({len(self.vgs)} parameters, {self.nbytes:,} bytes in "
            f"{self.messages} message{'s' if self.messages != 1 else ''}, "
            f"average={self.average}, {self.comm!r})"
        )


def BroadcastValues(items: Iterable[Any], comm: Any = None, root: int = 0) -> None:
    """Copy rank ``root``'s values into every rank's, in place: graph nodes (their
    ``value``) or numpy arrays, packed into one message per dtype. Call it once before
    training so every rank starts from the same weights.

    Example:
        >>> import numpy as np
        >>> a = np.arange(3.0); BroadcastValues([a], Communicator.local()); a.tolist()
        [0.0, 1.0, 2.0]
    """
    c = as_communicator(comm)
    arrays = [it if isinstance(it, np.ndarray) else it.value for it in items]
    for a in arrays:
        if not isinstance(a, np.ndarray) or not a.flags.writeable:
            raise TypeError(
                f"BroadcastValues: expected graph nodes with values or writeable numpy arrays, "
                f"got {type(a).__name__}"
            )
    by_dtype: dict[np.dtype, list[np.ndarray]] = {}
    for a in arrays:
        by_dtype.setdefault(a.dtype, []).append(a)
    for dtype, group in by_dtype.items():
        buf = np.concatenate([a.reshape(-1) for a in group]) if c.rank == root else np.empty(
            sum(a.size for a in group), dtype
        )
        c.broadcast(buf, root)
        lo = 0
        for a in group:
            np.copyto(a, buf[lo : lo + a.size].reshape(a.shape))
            lo += a.size
