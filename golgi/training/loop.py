"""The epoch loops ``fit`` runs: the default one (gather, run, check the loss, step) and
the one for custom training steps.

The default loop allocates nothing per batch: each batch's rows are gathered into the
input buffers, the machine runs, the loss is read and checked (a comparison, no call), the
solver steps. Everything the epochs need is prepared once per fit in a :class:`Plan`.

Example:
    >>> Diverged(2, 5, float("nan"), "loss").where()
    'epoch 3, batch 6'
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import graphcore as gc

from ..metrics import MetricFn, batch_scorer
from .callbacks import CallbackList
from .data import gather_rows
from .progress import StopOnInterrupt
from .steps import Batch, TrainStep, take_rows

__all__ = ["Plan", "Diverged", "train_epoch", "custom_epoch", "epoch_order"]


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
        for node, data in feeds:
            gather_rows(node, data, idx)
        vm.run_all()
        loss = float(cost.value)
        if not -inf < loss < inf:  # NaN fails both comparisons
            raise Diverged(epoch, bi, loss, "loss")
        step(vgs)
        seen += b
        loss_sum += loss * b
        for j, (_, node) in enumerate(parts):
            part_sums[j] += float(node.value) * b
        if metrics:
            for j, (_, score, out, t) in enumerate(metrics):
                sums[j] += score(out.value, t.value, idx) * b
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
