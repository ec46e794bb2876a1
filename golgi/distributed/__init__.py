"""Data-parallel training over MPI: ``fit(..., distributed=MPIDataParallel())``.

- ``strategy``: :class:`MPIDataParallel` (what ``fit``, ``evaluate`` and ``predict`` do on
  several ranks, and how a failing rank ends the job), :class:`RankFailedError`;
- ``loop``: the data-parallel epoch (each rank's share of every batch, one allreduce);
- ``launch``: :func:`launched_by_mpi`, whether an MPI launcher started this process.

Nothing here imports mpi4py until an ``MPIDataParallel`` is made (``pip install
'golgi-dl[mpi]'``); graphcore's :mod:`graphcore.distributed` holds the collectives, for
training loops of your own. Run scripts with ``mpiexec -n N python script.py``.

Example:
    >>> import graphcore as gc, golgi as G
    >>> G.MPIDataParallel(gc.Communicator.local()).size
    1
"""

from .launch import launched_by_mpi
from .strategy import MPIDataParallel, RankFailedError

__all__ = ["MPIDataParallel", "RankFailedError", "launched_by_mpi"]
