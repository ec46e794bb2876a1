"""Progress output and Ctrl-C: ``ProgressBar``, ``EpochLogger``, and the guard that turns the
first Ctrl-C into a stop after the current batch.

Example:
    >>> log = EpochLogger(print_fn=lambda s: print(s.split(" - ")[0]))
    >>> log.params = {"epochs": 3}
    >>> log.on_epoch_begin(0, {}); log.on_epoch_end(0, {"loss": 0.25})
    epoch 1/3
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from .callbacks import Callback

__all__ = [
    "ProgressBar",
    "EpochLogger",
    "progress_callbacks",
    "progress_from_verbose",
    "bar_wanted",
    "StopOnInterrupt",
]


def _fmt_logs(logs: Mapping[str, float]) -> str:
    return " - ".join(f"{k}: {v:.4f}" if k != "lr" else f"lr: {v:.3g}" for k, v in logs.items())


class ProgressBar(Callback):
    """A progress bar per epoch (``tqdm.auto``: terminal or notebook), with running loss and
    metrics, redrawn every ``every`` batches (default: about 50 updates per epoch). The bar
    goes away at the end of the epoch unless ``leave=True`` (pair it with :class:`EpochLogger`).

    Example:
        >>> ProgressBar(every=10).every  # doctest: +SKIP
        10
    """

    reads_node_values = False  # it shows logs only
    on_every_rank = False  # rank 0 alone draws it

    def __init__(self, every: int | None = None, leave: bool = False) -> None:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            raise ImportError(
                "ProgressBar needs tqdm, an optional extra: pip install 'golgi-dl[progress]'"
            ) from None
        self._tqdm = tqdm
        self.every = every
        self.leave = leave
        self._bar: Any = None
        self._count = 0
        self._step = 1

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any]) -> None:
        """Open the epoch's bar."""
        steps = int(self.params.get("steps", 0))
        self._step = self.every or max(1, steps // 50)
        self._count = 0
        self._bar = self._tqdm(
            total=steps,
            desc=f"epoch {epoch + 1}/{self.params.get('epochs', '?')}",
            unit="batch",
            leave=self.leave,
            dynamic_ncols=True,
        )

    def on_batch_end(self, batch: int, logs: dict[str, float]) -> None:
        """Advance the bar; redraw the running logs every ``every`` batches."""
        self._count += 1
        if self._count >= self._step:
            bar = self._bar
            bar.set_postfix_str(
                _fmt_logs({k: v for k, v in logs.items() if k != "size"}), refresh=False
            )
            bar.update(self._count)
            self._count = 0

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        """Close the epoch's bar."""
        self._close(logs)

    def on_train_end(self, logs: dict[str, Any]) -> None:
        """Close a bar left open (an interrupted epoch)."""
        self._close(None)

    def on_train_error(self, error: BaseException) -> None:
        """Close the bar, so the traceback is not drawn over it."""
        self._close(None)

    def _close(self, logs: Mapping[str, float] | None) -> None:
        if self._bar is not None:
            if self._count:
                self._bar.update(self._count)
                self._count = 0
            if logs is not None and self.leave:
                self._bar.set_postfix_str(_fmt_logs(logs), refresh=False)
            self._bar.close()
            self._bar = None


class EpochLogger(Callback):
    """Print one line per epoch: ``epoch 3/20 - 1.9s - loss: 0.0712 - accuracy: 0.9785 - ...``.

    Example:
        >>> log = EpochLogger(); log.params = {"epochs": 2}
        >>> log.on_epoch_begin(0, {}); log.on_epoch_end(0, {"loss": 0.5})  # doctest: +ELLIPSIS
        epoch 1/2 - ...s - loss: 0.5000
    """

    reads_node_values = False
    on_every_rank = False  # rank 0 alone prints

    def __init__(self, print_fn: Callable[[str], Any] = print) -> None:
        self.print_fn = print_fn
        self._t0 = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any]) -> None:
        """Start the epoch's clock."""
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        """Print the epoch's line."""
        dt = time.perf_counter() - self._t0
        head = f"epoch {epoch + 1}/{self.params.get('epochs', '?')} - {dt:.1f}s"
        self.print_fn(f"{head} - {_fmt_logs(logs)}" if logs else head)


def progress_callbacks(progress: bool | str) -> list[Callback]:
    """The callbacks for ``fit(progress=...)``: True (a bar where one can be drawn, and a line
    per epoch), "bar", "epoch" (lines only) or False (none).

    Example:
        >>> [type(cb).__name__ for cb in progress_callbacks("epoch")], progress_callbacks(False)
        (['EpochLogger'], [])
    """
    if progress is False or progress is None:
        return []
    if progress not in (True, "bar", "epoch"):
        raise ValueError(f"progress must be True, False, 'bar' or 'epoch', got {progress!r}")
    out: list[Callback] = []
    if progress == "bar" or (progress is True and bar_wanted()):
        out.append(ProgressBar())
    out.append(EpochLogger())
    return out


def progress_from_verbose(verbose: int | str) -> bool | str:
    """``fit(progress=...)`` for Keras's ``verbose``: 0 silent, 1 a progress bar (where one
    can be drawn) and a line per epoch, 2 a line per epoch; "auto" is 1.

    Example:
        >>> [progress_from_verbose(v) for v in (0, 1, 2, "auto")]
        [False, True, 'epoch', True]
    """
    table: dict[Any, bool | str] = {0: False, 1: True, 2: "epoch", "auto": True}
    if isinstance(verbose, bool) or verbose not in table:
        raise ValueError(f"verbose must be 0, 1, 2 or 'auto', got {verbose!r}")
    return table[verbose]


def bar_wanted() -> bool:
    """Whether a progress bar can be shown: tqdm is installed and stderr is a terminal, or
    this runs in a notebook.

    Example:
        >>> isinstance(bar_wanted(), bool)
        True
    """
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    if "ipykernel" in sys.modules:  # a notebook: tqdm.auto draws a widget
        return True
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


# ----- Ctrl-C ---------------------------------------------------------------------------------


class StopOnInterrupt:
    """While active, the first Ctrl-C only sets ``requested``; the loop stops after the batch.

    A second Ctrl-C raises ``KeyboardInterrupt`` at once. Outside the main thread (where no
    signal handler can be installed) it does nothing, and Ctrl-C interrupts as usual.

    Example:
        >>> import os, signal
        >>> with StopOnInterrupt() as guard:
        ...     os.kill(os.getpid(), signal.SIGINT)  # doctest: +SKIP
        >>> guard.requested  # doctest: +SKIP
        True
    """

    def __init__(self) -> None:
        self.requested = False
        self._prev: Any = None
        self._installed = False

    def _handler(self, signum: int, frame: Any) -> None:
        if self.requested:  # a second Ctrl-C: stop right now
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> StopOnInterrupt:
        if threading.current_thread() is threading.main_thread():
            try:
                self._prev = signal.signal(signal.SIGINT, self._handler)
                self._installed = True
            except (ValueError, OSError):  # e.g. embedded interpreters
                self._installed = False
        return self

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            prev = self._prev if self._prev is not None else signal.default_int_handler
            signal.signal(signal.SIGINT, prev)
            self._installed = False

