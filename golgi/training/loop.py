"""The epochs ``fit`` runs: the default loop (gather, run, check the loss, step), and the
frame around every epoch loop (callbacks, Ctrl-C, the snapshot put back on a non-finite
value).

The default loop allocates nothing per batch: each batch's rows are gathered into the
input buffers, the machine runs, the loss is read and checked (a comparison, no call), the
solver steps. Everything the epochs need is prepared once per fit in a :class:`Plan`.

Example:
    >>> Diverged(2, 5, float("nan"), "loss").where()
    'epoch 3, batch 6'
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import graphcore as gc

from ..metrics import MetricFn, batch_scorer
from .callbacks import Callback, CallbackList
from .data import gather_feeds
from .history import History
from .progress import StopOnInterrupt, progress_callbacks
from .safety import NonFiniteLossError, Snapshot, weights_finite

__all__ = [
    "Plan",
    "Diverged",
    "train_epoch",
    "epoch_order",
    "run_epochs",
    "diverged_error",
]


class Diverged(Exception):
    """Raised inside an epoch when a logged value is not finite (the trainer restores the
    last finite epoch and turns it into ``NonFiniteLossError``)."""

    def __init__(self, epoch: int, batch: int | None, value: float | None, name: str) -> None:
        super().__init__(name)
        self.epoch, self.batch, self.value, self.name = epoch, batch, value, name

    def where(self) -> str:
        """``epoch E, batch B`` (1-based, as the progress output counts)."""
        if self.batch is None:
            return f"the end of epoch {self.epoch + 1}"
        return f"epoch {self.epoch + 1}, batch {self.batch + 1}"


@dataclass
class Plan:
    """What every epoch of one ``fit`` needs, prepared once.

    ``feeds`` pairs each input node of the training graph (inputs, targets, the sample
    weights) with the array its batches are gathered from; ``metrics`` holds per-batch
    metrics as (log name, function, output node, target node, targets), ``epoch_metrics``
    those computed on the whole epoch's predictions, with the buffer that collects them.
    """

    n: int
    batch_size: int
    seed: int
    shuffle: bool
    feeds: list[tuple[gc.Node, np.ndarray]] = field(default_factory=list)
    vm: Any = None
    step: Callable[[Any], None] | None = None
    vgs: Any = None
    cost: gc.Node | None = None
    parts: list[tuple[str, gc.Node]] = field(default_factory=list)
    metrics: list[tuple[str, MetricFn, gc.Node, gc.Node, np.ndarray]] = field(
        default_factory=list
    )
    epoch_metrics: list[tuple[str, MetricFn, gc.Node, np.ndarray, np.ndarray]] = field(
        default_factory=list
    )
    total: int = 0


def epoch_order(plan: Plan, epoch: int) -> np.ndarray:
    """The epoch's sample order: a seeded permutation, or 0..n-1 without shuffling."""
    total = plan.total or plan.n
    if plan.shuffle:
        return np.random.default_rng((plan.seed, epoch)).permutation(total)
    return np.arange(total)


def train_epoch(
    plan: Plan, epoch: int, cbs: CallbackList, sigint: StopOnInterrupt, trainer: Any
) -> dict[str, float]:
    """One epoch of the default step; returns its logs (means over the samples seen)."""
    vm, step, vgs, cost = plan.vm, plan.step, plan.vgs, plan.cost
    assert vm is not None and step is not None and cost is not None
    n, bs, feeds = plan.n, plan.batch_size, plan.feeds
    perm = epoch_order(plan, epoch)
    vm.rng = np.random.default_rng((plan.seed, epoch, 1))  # dropout masks, per epoch
    metrics = [
        (name, batch_scorer(fn, Y, out.shape), out, t)
        for name, fn, out, t, Y in plan.metrics
    ]
    sums = [0.0] * len(metrics)
    parts = plan.parts
    part_sums = [0.0] * len(parts)
    collect = [(buf, out) for _, _, out, _, buf in plan.epoch_metrics]
    batch_end = cbs.batch_end
    republish = cbs.reads_node_values
    blogs: dict[str, float] = {}
    loss_sum, seen = 0.0, 0
    inf = math.inf
    vm.publish()  # a run of another machine since the last epoch pointed values elsewhere
    for bi, s in enumerate(range(0, n, bs)):
        idx = perm[s : s + bs]
        b = idx.shape[0]
        gather_feeds(feeds, idx)
        vm.run_all()
        loss = float(cost.value)
        if not -inf < loss < inf:  # NaN fails both comparisons
            raise Diverged(epoch, bi, loss, "loss")
        step(vgs)
        seen += b
        loss_sum += loss * b
        if parts:
            for j, (_, node) in enumerate(parts):
                part_sums[j] += float(node.value) * b
        if metrics:
            for j, (_, score, out, t) in enumerate(metrics):
                sums[j] += score(out.value, t.value, idx) * b
        if collect:
            for buf, out in collect:
                buf[s : s + b] = out.value
        if batch_end is not None:
            blogs["loss"] = loss_sum / seen
            for j, (name, _) in enumerate(parts):
                blogs[name] = part_sums[j] / seen
            for j, (name, _, _, _) in enumerate(metrics):
                blogs[name] = sums[j] / seen
            blogs["size"] = b
            batch_end(bi, blogs)
            if republish:
                vm.publish()
        if sigint.requested or trainer.stop_training:
            break
    logs = {"loss": loss_sum / seen}
    for j, (name, _) in enumerate(parts):
        logs[name] = part_sums[j] / seen
    for j, (name, _, _, _) in enumerate(metrics):
        logs[name] = sums[j] / seen
    if plan.epoch_metrics and seen == n:
        order = perm[:n]
        for name, fn, _, Y, buf in plan.epoch_metrics:
            logs[name] = float(fn(buf, Y[order]))
    return logs


def run_epochs(
trainer: Any,
    run_epoch: Callable[[int, CallbackList, StopOnInterrupt], dict[str, float]],
    epochs: int,
    initial_epoch: int,
    callbacks: Iterable[Callback],
    progress: bool | str,
    params: dict[str, Any],
    learnables: Sequence[gc.Node],
    dist: Any = None,
) -> History:
    """The epochs of one ``fit`` around ``run_epoch``: the callbacks, Ctrl-C, and the
    non-finite guard (a snapshot per epoch, put back when the loss or a weight goes bad).

    ``dist``: a distributed fit's session (see :mod:`golgi.distributed`), which makes Ctrl-C
    and ``stop_training`` stop every rank at the same batch."""
    history = History()  # last: it records the logs the other callbacks extended
    cbs = CallbackList(
        [*callbacks, *progress_callbacks(progress), history], trainer=trainer, params=params
    )
    snapshot = Snapshot(trainer.model, learnables, trainer.solver)
    trainer.stop_training = False
    interrupted = False
    try:
        with StopOnInterrupt() as guard:
            sigint = guard if dist is None else dist.interrupts(guard)
            cbs.on_train_begin({})
            for epoch in range(initial_epoch, epochs):
                snapshot.take()
                cbs.on_epoch_begin(epoch, {})
                logs = run_epoch(epoch, cbs, sigint)
                if not weights_finite(learnables):
                    raise Diverged(epoch, None, None, "weights")
                if sigint.requested:
                    raise KeyboardInterrupt
                cbs.on_epoch_end(epoch, logs)
                if dist is not None:
                    dist.agree_stop(trainer)
                if trainer.stop_training:
                    break
    except KeyboardInterrupt:
        if dist is not None:
            dist.check_interrupted(sigint)
        for w in learnables:  # a batch cut short leaves partial gradients
            if w.has_grad:
                w.zero_grad()
        interrupted = True
        if progress:
            done = len(history)
            print(
                f"golgi: interrupted (Ctrl-C); stopping with {done} epoch"
                f"{'s' if done != 1 else ''} done this run",
                file=sys.stderr,
            )
    except Diverged as bad:
        snapshot.restore()
        error = diverged_error(trainer, bad, initial_epoch)
        error.history = history
        history.diverged = True
        if cbs.terminate_on_nan:
            if progress:
                print(f"golgi: {error}", file=sys.stderr)
            cbs.on_train_end({"interrupted": False, "diverged": True})
            return history
        cbs.on_train_error(error)
        raise error from None
    except BaseException as error:
        cbs.on_train_error(error)
        raise
    cbs.on_train_end({"interrupted": interrupted})
    return history

def diverged_error(trainer: Any, bad: Diverged, initial_epoch: int) -> NonFiniteLossError:
    """The error that says where training went bad, what was put back and what to try."""
    back = (
        "where this fit started"
        if bad.epoch == initial_epoch
        else f"at the end of epoch {bad.epoch} (the last finite one)"
    )
    if bad.name == "weights":
        what = f"the weights stopped being finite (NaN or infinite) by {bad.where()}"
    else:
        what = f"the training {bad.name} became {bad.value} at {bad.where()}"
    rate = getattr(trainer.solver, "learn_rate", None)
    hint = f"lower the learn rate (it is {rate:g})" if rate is not None else "lower the rate"
    return NonFiniteLossError(
        f"fit: {what}; the weights, layer state and solver state are back as they were "
        f"{back}. To train on: {hint}, clip the gradients (gc.WithClip(5)), or look for "
        f"extreme values in the data",
        epoch=bad.epoch,
        batch=bad.batch,
        value=bad.value,
    )
