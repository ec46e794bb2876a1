"""``CSVLogger``: one row per epoch in a CSV file.

Example:
    >>> CSVLogger("train.csv").separator
    ','
"""

from __future__ import annotations

import csv
import os
from typing import IO, Any

from .callbacks import Callback

__all__ = ["CSVLogger"]


class CSVLogger(Callback):
    """Write ``epoch`` and each epoch's logs (loss, metrics, ``val_...``, ``lr``) as a CSV
    row, flushed after every epoch, so the file is readable while training runs.

    The columns are those of the first epoch; ``append=True`` adds to an existing file
    (without repeating the header), for resumed runs.

    Example:
        >>> import csv, os, tempfile, numpy as np, golgi as G
        >>> path = os.path.join(tempfile.mkdtemp(), "log.csv")
        >>> net = G.ComposeSeq(G.L(G.ConsFC(G.WithShape(1))))
        >>> h = G.fit(net, np.ones((8, 2)), np.ones((8, 1)), loss="mse", solver="sgd",
        ...           epochs=2, callbacks=[CSVLogger(path)], progress=False, seed=0)
        >>> rows = list(csv.DictReader(open(path))); [r["epoch"] for r in rows], list(rows[0])
        (['0', '1'], ['epoch', 'loss'])
    """

    reads_node_values = False
    on_every_rank = False  # rank 0 writes the file

    def __init__(self, path: str | os.PathLike[str], separator: str = ",",
                 append: bool = False) -> None:
        self.path = os.fspath(path)
        self.separator = separator
        self.append = append
        self.columns: list[str] | None = None
        self._file: IO[str] | None = None
        self._writer: Any = None

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        """Open the file (truncated, unless ``append``)."""
        exists = os.path.exists(self.path) and os.path.getsize(self.path) > 0
        self._file = open(self.path, "a" if self.append else "w", newline="")  # noqa: SIM115
        self.columns = None
        self._header_written = self.append and exists

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        """Write the epoch's row (the header first, once)."""
        if self._file is None:
            return
        if self.columns is None:
            self.columns = ["epoch", *logs]
            self._writer = csv.DictWriter(
                self._file, fieldnames=self.columns, delimiter=self.separator,
                extrasaction="ignore",
            )
            if not self._header_written:
                self._writer.writeheader()
        self._writer.writerow({"epoch": epoch, **logs})
        self._file.flush()

    def on_train_end(self, logs: dict[str, Any]) -> None:
        """Close the file."""
        self._close()

    def on_train_error(self, error: BaseException) -> None:
        """Close the file."""
        self._close()

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
