"""``MPIDataParallel``: what ``fit``, ``evaluate`` and ``predict`` do differently on several
ranks, and how a failure on one rank ends the job instead of hanging it.

Failures come in two kinds. Before training starts (checking the data, building the
graph), every rank reaches one agreement point, failed or not, and learns whether any rank
failed: then every rank raises (its own error, or :class:`RankFailedError` naming the
ranks that failed), and a script can catch it. Once training runs, the ranks meet in a
collective at every batch, and a rank that raised would leave the others waiting there
forever: so it prints its traceback and a line naming itself, and ends the whole job with
``MPI_Abort`` (exit code 1). Errors every rank raises at the same point (a non-finite
loss: each rank checks the loss of the whole batch) are raised as usual.

Example:
    >>> import graphcore as gc
    >>> dp = MPIDataParallel(gc.Communicator.local())
    >>> dp.rank, dp.size, dp.is_root, dp.rows(10)
    (0, 1, True, (0, 10))
"""

from __future__ import annotations

import contextlib
import sys
import traceback
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal, NoReturn

import numpy as np

import graphcore as gc

from ..training.callbacks import Callback
from ..training.loop import Plan
from ..training.safety import NonFiniteLossError
from .loop import AgreedInterrupt, data_parallel_epoch

__all__ = ["MPIDataParallel", "RankFailedError", "FitSession", "Agreement"]


class RankFailedError(RuntimeError):
    """Another rank failed before the collective work began (checking the data, loading a
    checkpoint...); raised on the ranks that did not fail themselves.

    ``failed`` maps each failed rank to its error, as ``"Type: message"``.

    Example:
        >>> e = RankFailedError("fit", {1: "ValueError: bad data"}, 2); e.failed
        {1: 'ValueError: bad data'}
        >>> str(e)
        'fit: rank 1 of 2 failed: ValueError: bad data'
    """

    def __init__(self, what: str, failed: Mapping[int, str], size: int) -> None:
        self.failed = dict(failed)
        parts = "; ".join(f"rank {r} of {size} failed: {m}" for r, m in sorted(failed.items()))
        super().__init__(f"{what}: {parts}")


def _summary(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class Agreement:
    """What :meth:`MPIDataParallel.together` yields: facts every rank must share, checked
    when the block ends (``same("samples", len(x))``).

    Example:
        >>> a = Agreement(); a.same("samples", 10); a.facts
        {'samples': 10}
    """

    def __init__(self) -> None:
        self.facts: dict[str, Any] = {}

    def same(self, label: str, value: Any) -> None:
        """Require every rank to have the same ``value`` (picklable) for ``label``."""
        self.facts[label] = value


_hook_installed = False


def _install_excepthook(comm: gc.Communicator) -> None:
    """After the traceback of an uncaught exception, end every rank (``MPI_Abort``), so a
    script that raised on one rank does not leave the others waiting in a collective."""
    global _hook_installed
    if _hook_installed:
        return
    previous = sys.excepthook

    def abort_job(kind: type[BaseException], error: BaseException, tb: Any) -> None:
        previous(kind, error, tb)
        sys.stderr.write(
            f"golgi: rank {comm.rank} of {comm.size} stopped on an uncaught {kind.__name__}; "
            f"ending all {comm.size} ranks (MPI_Abort)\n"
        )
        comm.abort(1)

    sys.excepthook = abort_job
    _hook_installed = True


class MPIDataParallel:
    """Data-parallel training over MPI: ``fit(..., distributed=MPIDataParallel())``.

    Start the script on N ranks (``mpiexec -n 4 python train.py``); every rank runs the
    same script with the same data. ``batch_size`` stays the global batch: every rank
    shuffles the same way (from ``seed``; rank 0's seed when none is given), computes the
    gradients of its share of every batch, the gradients are summed in one allreduce, and
    every rank steps its solver identically. N ranks train the same model as one process
    on the same batches, up to the order floats are summed in (batch norm normalises each
    rank's share; dropout masks are drawn per rank). ``fit`` starts from rank 0's weights.

    Rank 0 alone prints progress and runs the callbacks that write (``ModelCheckpoint``,
    ``CSVLogger``: those with ``on_every_rank = False``); every rank runs the others, with
    the logs of the whole batch, and returns the same History. ``evaluate`` and
    ``predict`` split the rows across the ranks and gather: every rank gets the full
    result. A rank that fails while training ends the job (see the module docs);
    ``abort_on_error`` also ends it on an exception nothing catches.

    - ``comm``: an mpi4py communicator or a :class:`graphcore.Communicator`; None is
      ``MPI.COMM_WORLD``. mpi4py is imported here, not before (``pip install
      'golgi-dl[mpi]'``).

    Example (one process; under ``mpiexec -n 2`` each rank trains on half of each batch):
        >>> import numpy as np, graphcore as gc, golgi as G
        >>> dp = MPIDataParallel(gc.Communicator.local())  # MPIDataParallel() under mpiexec
        >>> net = G.ComposeSeq(G.L(G.ConsFC(G.WithShape(1))))
        >>> X = np.random.default_rng(0).normal(size=(32, 2)); Y = X @ [[1.0], [-1.0]]
        >>> h = G.fit(net, X, Y, loss="mse", solver="adam", epochs=3, batch_size=8, seed=0,
        ...           progress=False, distributed=dp)
        >>> len(h), G.predict(net, X, distributed=dp).shape
        (3, (32, 1))
    """

    def __init__(self, comm: Any = None, *, abort_on_error: bool = True) -> None:
        self.comm: gc.Communicator = (
            comm if isinstance(comm, gc.Communicator) else gc.Communicator(comm)
        )
        self.abort_on_error = bool(abort_on_error)
        if self.abort_on_error and self.comm.size > 1:
            _install_excepthook(self.comm)

    @property
    def rank(self) -> int:
        """This process's rank, 0 .. size - 1.

        Example:
            >>> import graphcore as gc, golgi as G
            >>> dp = G.MPIDataParallel(gc.Communicator.local())  # one process
            >>> dp.rank, dp.size, dp.is_root
            (0, 1, True)
        """
        return self.comm.rank

    @property
    def size(self) -> int:
        """The number of ranks.

        Example:
            >>> import graphcore as gc, golgi as G
            >>> G.MPIDataParallel(gc.Communicator.local()).size
            1
        """
        return self.comm.size

    @property
    def is_root(self) -> bool:
        """Whether this is rank 0 (the one that prints and writes).

        Example:
            >>> import graphcore as gc, golgi as G
            >>> G.MPIDataParallel(gc.Communicator.local()).is_root
            True
        """
        return self.comm.rank == 0

    def rows(self, n: int) -> tuple[int, int]:
        """This rank's block ``[lo, hi)`` of ``n`` rows: contiguous, sizes differing by one
        at most (earlier ranks get fewer).

        Example:
            >>> import graphcore as gc
            >>> MPIDataParallel(gc.Communicator.local()).rows(5)
            (0, 5)
        """
        r, p = self.comm.rank, self.comm.size
        return n * r // p, n * (r + 1) // p

    def counts(self, n: int) -> list[int]:
        """Every rank's number of rows of ``n`` (see :meth:`rows`).

        Example:
            >>> import graphcore as gc
            >>> MPIDataParallel(gc.Communicator.local()).counts(5)
            [5]
        """
        p = self.comm.size
        return [n * (r + 1) // p - n * r // p for r in range(p)]

    # ----- failures ---------------------------------------------------------------------------
    def _agree(
        self, what: str, error: BaseException | None, facts: Mapping[str, Any], extra: Any = None
    ) -> list[Any]:
        """The agreement point: every rank's error (or None), facts and ``extra``. Raises on
        every rank if any failed or the facts differ; returns every rank's ``extra``."""
        mine = None if error is None else _summary(error)
        got = self.comm.allgather((mine, dict(facts), extra))
        failed = {r: m for r, (m, _, _) in enumerate(got) if m is not None}
        if failed:
            if error is not None:
                return []  # the caller raises its own error
            raise RankFailedError(what, failed, self.size)
        for key, value in got[0][1].items():
            for r, (_, f, _) in enumerate(got):
                if f.get(key) != value:
                    raise ValueError(
                        f"{what}: the ranks disagree on {key}: rank 0 has {value!r}, rank {r} "
                        f"has {f.get(key)!r}; every rank must run the same script on the same "
                        f"data"
                    )
        return [e for _, _, e in got]

    @contextlib.contextmanager
    def together(self, what: str) -> Iterator[Agreement]:
        """A block every rank runs that fails on every rank or on none: when it ends, the
        ranks compare notes (one small collective); if any rank raised, every rank raises
        (its own error, or :class:`RankFailedError`). ``same(label, value)`` on the yielded
        :class:`Agreement` also requires every rank to have that value.

        Example:
            >>> import graphcore as gc
            >>> dp = MPIDataParallel(gc.Communicator.local())
            >>> with dp.together("loading the data") as agree:
            ...     agree.same("samples", 100)
        """
        agreement = Agreement()
        try:
            yield agreement
        except BaseException as e:
            if self.size > 1:
                self._agree(what, e, {})
            raise
        self._agree(what, None, agreement.facts)

    @contextlib.contextmanager
    def guard(self, what: str) -> Iterator[None]:
        """A block of collective work: if this rank raises in it, print the traceback and a
        line naming the rank, then end every rank (``MPI_Abort``, exit code 1), since the
        others would wait for it forever. On one rank, errors propagate as usual.

        Example:
            >>> import graphcore as gc
            >>> with MPIDataParallel(gc.Communicator.local()).guard("predict"):
            ...     pass
        """
        try:
            yield
        except BaseException as e:
            if self.size > 1:
                self.fail(e, what)
            raise

    def fail(self, error: BaseException, what: str) -> NoReturn:
        """Print ``error`` with its traceback and this rank's number, then end the job.

        Every rank's process ends (``MPI_Abort``), so no rank waits in a collective for one
        that has failed. :meth:`guard` calls it; so can a training loop of your own.

        Example (not run: it ends the process):
            >>> dp = MPIDataParallel()  # doctest: +SKIP
            >>> try:  # doctest: +SKIP
            ...     step()
            ... except Exception as e:
            ...     dp.fail(e, "my loop")
        """
        tb = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        # one write: lines of two ranks sharing stderr would interleave otherwise
        sys.stderr.write(
            f"{tb}golgi: rank {self.rank} of {self.size} failed in {what}: {_summary(error)}; "
            f"ending all {self.size} ranks (MPI_Abort)\n"
        )
        self.comm.abort(1)
        raise SystemExit(1)  # not reached: Abort ends the process

    # ----- rows: evaluate, predict --------------------------------------------------------------
    def sum_values(self, values: Iterable[float]) -> list[float]:
        """The sum over the ranks of each value (one small allreduce).

        Example:
            >>> import graphcore as gc
            >>> MPIDataParallel(gc.Communicator.local()).sum_values([1.5, 2.0])
            [1.5, 2.0]
        """
        buf = np.array(list(values), np.float64)
        self.comm.allreduce_sum(buf)
        return [float(v) for v in buf]

    def gather_rows(self, local: np.ndarray | None, n: int) -> np.ndarray:
        """All ``n`` rows on every rank from each rank's block (:meth:`rows`); ``local`` is
        this rank's block, None when it holds no rows.

        Example:
            >>> import numpy as np, graphcore as gc
            >>> MPIDataParallel(gc.Communicator.local()).gather_rows(np.ones((2, 3)), 2).shape
            (2, 3)
        """
        shape = None if local is None else (tuple(local.shape[1:]), local.dtype.str)
        known = next((s for s in self.comm.allgather(shape) if s is not None), None)
        if known is None:
            raise ValueError(f"gather_rows: no rank holds any of the {n} rows")
        sample, dtype = known
        if local is None:
            local = np.empty((0, *sample), dtype)
        out = np.empty((n, *sample), dtype)
        self.comm.allgather_rows(np.ascontiguousarray(local), out, self.counts(n))
        return out

    def predict_rows(self, predictor: Any, arrays: list[np.ndarray], batch_size: int) -> Any:
        """``predictor(arrays, batch_size)`` on this rank's block of rows, gathered: every
        rank gets the outputs for all rows (an array, or a list for several outputs).

        Example:
            >>> import numpy as np, graphcore as gc, golgi as G
            >>> dp = G.MPIDataParallel(gc.Communicator.local())
            >>> dp.predict_rows(lambda arrays, bs: arrays[0] * 2, [np.arange(3.0)], 2).tolist()
            [0.0, 2.0, 4.0]
        """
        n = len(arrays[0])
        lo, hi = self.rows(n)
        with self.guard("predict"):
            outs = predictor([a[lo:hi] for a in arrays], batch_size)
            many = isinstance(outs, list)
            gathered = [self.gather_rows(o if hi > lo else None, n) for o in
                        (outs if many else [outs])]
        return gathered if many else gathered[0]

    # ----- fit -------------------------------------------------------------------------------
    def fit_session(self, trainer: Any) -> FitSession:
        """The hooks one ``Trainer.fit`` calls (see :class:`FitSession`).

        Example:
            >>> import graphcore as gc, golgi as G
            >>> dp = G.MPIDataParallel(gc.Communicator.local())
            >>> with dp.fit_session(trainer=None) as session:
            ...     session.is_root
            True
        """
        return FitSession(self, trainer)

    def __repr__(self) -> str:
        return f"MPIDataParallel(rank {self.rank} of {self.size})"


class FitSession:
    """One distributed ``fit``: a context manager around it (the agreement before training,
    the abort once it runs) and the hooks the trainer calls: :meth:`start` before the first
    epoch, :meth:`train_epoch` for each, :meth:`callbacks`, :meth:`interrupts`,
    :meth:`agree_stop` and :meth:`check_interrupted` in the epoch frame.

    Example:
        >>> import graphcore as gc
        >>> s = MPIDataParallel(gc.Communicator.local()).fit_session(None)
        >>> s.started, s.is_root
        (False, True)
    """

    def __init__(self, dp: MPIDataParallel, trainer: Any) -> None:
        self.dp = dp
        self.trainer = trainer
        self.started = False
        self.agreed = False
        self.where = "fit (before training)"
        self.grads: Any = None
        self.seed = 0

    @property
    def is_root(self) -> bool:
        """Whether this is rank 0."""
        return self.dp.is_root

    def __enter__(self) -> FitSession:
        return self

    def __exit__(self, kind: Any, error: BaseException | None, tb: Any) -> Literal[False]:
        if error is None or self.dp.size == 1:
            return False
        if not self.started:
            if not self.agreed:
                self.dp._agree("fit", error, {})
            return False
        if isinstance(error, NonFiniteLossError):
            return False  # every rank checks the same loss and weights: all raise it
        self.dp.fail(error, self.where)

    def callbacks(self, callbacks: Iterable[Callback]) -> list[Callback]:
        """The callbacks this rank runs: all on rank 0, those ``on_every_rank`` elsewhere."""
        cbs = list(callbacks)
        return cbs if self.is_root else [cb for cb in cbs if getattr(cb, "on_every_rank", True)]

    def start(self, plan: Plan, learnables: list[gc.Node], facts: Mapping[str, Any]) -> None:
        """The agreement point: every rank got here (or raise everywhere), with the same
        ``facts``; then take rank 0's seed, weights and layer state."""
        shapes = [(w.name, tuple(w.shape), str(w.dtype)) for w in learnables]
        try:
            seeds = self.dp._agree("fit", None, {**facts, "parameters": shapes}, plan.seed)
        finally:
            self.agreed = True  # an error raised by the agreement is every rank's already
        self.started = True
        self.where = "fit"
        with self.dp.guard("fit"):
            plan.seed = self.seed = int(seeds[0])
            model = self.trainer.model
            # all the weights, those of outputs without a loss too (predict reads them)
            weights = [w for w in model.model() if w.has_value] if hasattr(model, "model") else []
            gc.BroadcastValues(weights or learnables, self.dp.comm)
            state = model.state() if hasattr(model, "state") else {}
            if state and self.dp.size > 1:
                model.load_state(_broadcast_state(state, self.dp.comm))
            self.grads = gc.AllreduceGrads(plan.vgs, self.dp.comm)

    def train_epoch(
        self, plan: Plan, epoch: int, cbs: Any, sigint: AgreedInterrupt
    ) -> dict[str, float]:
        """One epoch, each rank on its share of every batch."""
        return data_parallel_epoch(plan, epoch, cbs, sigint, self.trainer, self)

    def interrupts(self, guard: Any) -> AgreedInterrupt:
        """The Ctrl-C flag the epoch frame reads: set on every rank at once."""
        return AgreedInterrupt(guard)

    def agree_stop(self, trainer: Any) -> None:
        """``trainer.stop_training`` set on any rank (by a callback) stops every rank."""
        flag = np.array([float(bool(trainer.stop_training))])
        self.dp.comm.allreduce_sum(flag)
        trainer.stop_training = bool(flag[0])

    def check_interrupted(self, sigint: AgreedInterrupt) -> None:
        """A ``KeyboardInterrupt`` the ranks did not agree on (a second Ctrl-C on one rank)
        cannot stop the others cleanly: it ends the job."""
        if self.dp.size > 1 and not sigint.requested:
            raise KeyboardInterrupt(f"Ctrl-C on rank {self.dp.rank} alone")


def _broadcast_state(state: Mapping[str, Any], comm: gc.Communicator) -> dict[str, np.ndarray]:
    copies = {k: np.array(v, copy=True) for k, v in state.items()}
    gc.BroadcastValues(list(copies.values()), comm)
    return copies
