"""Custom training steps in ``fit``: the data as given, one ``step(batch)`` per batch.

``fit(train_step=step)`` (or a ``Trainer`` subclass overriding ``train_step``) runs this loop
instead of the default one: it checks the data (arrays, or dicts or lists of arrays), then
for every batch gathers its rows into a :class:`~golgi.training.steps.Batch` and calls the
step; the values the step returns are averaged over each epoch into the history.

Example:
    >>> import numpy as np, golgi as G
    >>> net = G.ComposeSeq(G.L(G.ConsFC(G.WithShape(1))))
    >>> h = G.fit(net, np.ones((6, 2)), train_step=lambda b: {"size": b.size}, batch_size=4,
    ...           progress=False)
    >>> h["size"]  # (4 * 4 + 2 * 2) / 6
    [3.3333333333333335]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

import graphcore as gc

from .callbacks import Callback, CallbackList
from .data import check_finite, is_built
from .evaluation import eval_arrays
from .history import History
from .loop import Diverged, Plan, epoch_order, run_epochs
from .progress import StopOnInterrupt
from .steps import Batch, TrainStep, take_rows
from .structure import data_arrays, raw_targets, target_arrays

__all__ = ["fit_custom", "custom_epoch"]


def fit_custom(
trainer: Any,
    step_fn: TrainStep,
    x: Any,
    y: Any,
    epochs: int,
    bs: int,
    vbs: int,
    validation_data: Any,
    validation_split: float,
    callbacks: Iterable[Callback],
    seed: int,
    shuffle: bool,
    progress: bool | str,
    initial_epoch: int,
    check_data: bool,
    drop_last: bool,
) -> History:
    """``Trainer.fit`` with a custom ``train_step``: check and batch the data as given
    (arrays, dicts or lists of arrays), build the default training graph when a loss and
    targets are given (for ``trainer.machine`` and validation), run the epochs."""
    if validation_split:
        raise ValueError("fit: validation_split needs the default step; give validation_data")
    arrays = [*_leaves(x), *_leaves(y)]
    if not arrays:
        raise ValueError("fit: no training data (x is empty)")
    n = len(arrays[0])
    n_x = len(_leaves(x))
    for k, a in enumerate(arrays):
        if len(a) != n:
            raise ValueError(f"fit: the arrays of x and y hold {n} and {len(a)} samples")
        if check_data and a.dtype.kind in "fc":
            check_finite("fit: x" if k < n_x else "fit: y", a)
    if n == 0:
        raise ValueError("fit: no training samples (x is empty)")
    if drop_last and n < bs:
        raise ValueError(
            f"fit: drop_last=True with {n} samples and batch_size={bs} leaves no batch"
        )
    if trainer.loss is not None and y is not None:
        trainer._ensure_io(x, seed)
        trainer._ensure_losses(raw_targets(y, trainer.ends))
        trainer._ensure_machine(False).claim_grads()
    val = None
    if validation_data is not None:
        if trainer.graph is None:
            raise ValueError(
                "fit: validation_data with a train_step needs the loss to evaluate it: "
                "give fit a loss too"
            )
        ends = trainer.ends
        assert ends is not None
        xv = data_arrays("fit: validation x", validation_data[0], ends.inputs,
                        ends.input_names, ends.input_form, check_data)
        yv = target_arrays(
            "fit: validation y", trainer.ends, trainer.graph, validation_data[1], check_data
        )
        val = (xv, yv)
    # a model the step builds itself has no weights to snapshot yet
    learnables = list(trainer.model.model()) if is_built(trainer.model) else []
    plan = Plan(n=n - n % bs if drop_last else n, batch_size=bs, seed=seed, shuffle=shuffle,
                total=n)
    batch = Batch()
    batch.trainer = trainer
    data = (_as_arrays(x), _as_arrays(y))
    params = {
        "epochs": epochs,
        "steps": -(-plan.n // bs),
        "batch_size": bs,
        "samples": plan.n,
        "metrics": None,  # whatever the step returns
    }

    def run_epoch(epoch: int, cbs: CallbackList, sigint: StopOnInterrupt) -> dict[str, float]:
        logs = custom_epoch(step_fn, batch, plan, data, epoch, cbs, sigint, trainer)
        if val is not None and not sigint.requested:
            ev = eval_arrays(trainer, val[0], val[1], vbs)
            logs.update({f"val_{k}": v for k, v in ev.items()})
        return logs

    return run_epochs(trainer, run_epoch, epochs, initial_epoch, callbacks, progress, params,
                      learnables)



def _leaves(data: Any) -> list[np.ndarray]:
    if data is None:
        return []
    if isinstance(data, Mapping):
        return [gc.as_array(v) for v in data.values()]
    if isinstance(data, (list, tuple)) and data and isinstance(data[0], np.ndarray):
        return [gc.as_array(v) for v in data]
    return [gc.as_array(data)]


def _as_arrays(data: Any) -> Any:
    if data is None:
        return None
    if isinstance(data, Mapping):
        return {k: gc.as_array(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)) and data and isinstance(data[0], np.ndarray):
        return [gc.as_array(v) for v in data]
    return gc.as_array(data)


def custom_epoch(
    step_fn: TrainStep,
    batch: Batch,
    plan: Plan,
    data: tuple[Any, Any],
    epoch: int,
    cbs: CallbackList,
    sigint: StopOnInterrupt,
    trainer: Any,
) -> dict[str, float]:
    """One epoch of a custom step: ``step_fn(batch)`` per batch; returns the means of the
    values it returned (weighted by batch size)."""
    n, bs = plan.n, plan.batch_size
    perm = epoch_order(plan, epoch)
    batch.epoch = epoch
    batch.rng = np.random.default_rng((plan.seed, epoch, 2))
    sums: dict[str, float] = {}
    seen = 0
    batch_end = cbs.batch_end
    x, y = data
    for bi, s in enumerate(range(0, n, bs)):
        idx = perm[s : s + bs]
        b = idx.shape[0]
        batch.rows, batch.index, batch.size = idx, bi, b
        batch.x, batch.y = take_rows(x, idx), take_rows(y, idx)
        got = step_fn(batch)
        if not isinstance(got, Mapping):
            raise TypeError(
                f"fit: the train step must return a dict name -> value (e.g. "
                f"{{'loss': float(cost.value)}}), got {type(got).__name__}"
            )
        seen += b
        for k, v in got.items():
            v = float(v)
            if not math.isfinite(v):
                raise Diverged(epoch, bi, v, str(k))
            sums[k] = sums.get(k, 0.0) + v * b
        if batch_end is not None:
            blogs = {k: t / seen for k, t in sums.items()}
            blogs["size"] = b
            batch_end(bi, blogs)
        if sigint.requested or trainer.stop_training:
            break
    return {k: t / max(seen, 1) for k, t in sums.items()}
