"""Whether an MPI launcher (``mpiexec``, ``mpirun``, ``srun``) started this process with
others, read from the environment it sets, without starting MPI.

Example:
    >>> launched_by_mpi({"PMI_SIZE": "4"}), launched_by_mpi({})
    (4, 0)
"""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["launched_by_mpi", "LAUNCHER_VARIABLES"]

#: The number of processes as launchers announce it: MPICH and Intel MPI (hydra, and Slurm's
#: PMI), Open MPI, MVAPICH, and PMIx-based launchers.
LAUNCHER_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "PMIX_SIZE")


def launched_by_mpi(environ: Mapping[str, str] | None = None) -> int:
    """The number of processes the MPI launcher started (this one among them), or 0 when
    none did (a plain ``python`` or ``golgi`` command).

    Example:
        >>> launched_by_mpi({"OMPI_COMM_WORLD_SIZE": "2"})
        2
    """
    env = os.environ if environ is None else environ
    for name in LAUNCHER_VARIABLES:
        value = env.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return 0
