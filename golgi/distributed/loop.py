"""The data-parallel epoch: every rank trains on its share of every global batch.

For each batch (the same seeded order on every rank), rank ``r`` of ``N`` takes the rows
``B*r//N .. B*(r+1)//N`` of the ``B`` in the batch, runs the training machine on them and
scales its gradients by its share ``b/B``: its cost is a mean over its ``b`` rows, so the
scaled gradients sum over the ranks to the gradient of the mean over the whole batch,
uneven shares included. One allreduce sums them (the machine's flat gradient array, in
place); a second, tiny one, started just before it, sums the batch's loss, metrics and
stop flags, so every rank sees the loss of the whole batch and takes the same decisions
(stop, a non-finite loss). Then every rank steps its solver identically.

A rank with no rows in a batch (a batch smaller than the number of ranks) only adds
zeros. Stop requests (Ctrl-C, ``trainer.stop_training``) made during batch ``k`` reach
every rank with batch ``k + 1``, whose gradients are then dropped: training stops after
batch ``k``, as on one process.

Example:
    >>> g = AgreedInterrupt(None); g.requested
    False
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import graphcore as gc

from ..metrics import batch_scorer
from ..training.callbacks import CallbackList
from ..training.data import gather_rows
from ..training.loop import Diverged, Plan, epoch_order

__all__ = ["AgreedInterrupt", "data_parallel_epoch", "average_state"]


class AgreedInterrupt:
    """The Ctrl-C flag of a distributed fit: ``requested`` turns True on every rank at the
    same batch (when any rank's ``guard`` saw a Ctrl-C), so every rank stops together.

    Example:
        >>> class Guard:
        ...     requested = True
        >>> a = AgreedInterrupt(Guard()); a.requested, a.local
        (False, True)
    """

    def __init__(self, guard: Any) -> None:
        self.guard = guard
        self.requested = False

    @property
    def local(self) -> bool:
        """Whether this rank saw a Ctrl-C (not yet agreed on)."""
        return bool(self.guard is not None and self.guard.requested)


def data_parallel_epoch(
    plan: Plan, epoch: int, cbs: CallbackList, sigint: AgreedInterrupt, trainer: Any,
    session: Any,
) -> dict[str, float]:
    """One epoch of the default step on this rank's share of every batch; returns the logs
    of the whole epoch (sums over all ranks), the same on every rank."""
    comm, allreduce = session.dp.comm, session.grads
    rank, size = comm.rank, comm.size
    vm, step, vgs, cost = plan.vm, plan.step, plan.vgs, plan.cost
    assert vm is not None and step is not None and cost is not None
    n, bs, feeds = plan.n, plan.batch_size, plan.feeds
    perm = epoch_order(plan, epoch)
    # dropout masks from the machine's generator: one stream per rank (as one process's
    # when there is one rank)
    vm.rng = np.random.default_rng((plan.seed, epoch, 1) if size == 1 else
                                   (plan.seed, epoch, 1, rank))
    metrics = [
        (name, batch_scorer(fn, Y, out.shape), out, t)
        for name, fn, out, t, Y in plan.metrics
    ]
    parts = plan.parts
    at_metric = 1 + len(parts)
    at_flags = at_metric + len(metrics)
    # per batch: loss, parts and metrics times rows, then Ctrl-C and stop flags
    batch = np.zeros(at_flags + 2)
    totals = np.zeros(at_flags)
    collect = [(buf, out) for _, _, out, _, buf in plan.epoch_metrics]
    for buf, _ in collect:
        buf.fill(0)  # each rank fills its rows; the sum over ranks is every row
    batch_end = cbs.batch_end
    republish = cbs.reads_node_values
    blogs: dict[str, float] = {}
    seen = 0
    inf = math.inf
    vm.publish()
    for bi, s in enumerate(range(0, n, bs)):
        idx = perm[s : s + bs]
        B = idx.shape[0]
        lo, hi = B * rank // size, B * (rank + 1) // size
        b = hi - lo
        session.where = f"fit (epoch {epoch + 1}, batch {bi + 1})"
        batch.fill(0.0)
        if b:
            mine = idx[lo:hi]
            for node, data in feeds:
                gather_rows(node, data, mine)
            vm.run_all()
            batch[0] = float(cost.value) * b
            for j, (_, node) in enumerate(parts):
                batch[1 + j] = float(node.value) * b
            for j, (_, score, out, t) in enumerate(metrics):
                batch[at_metric + j] = score(out.value, t.value, mine) * b
            for buf, out in collect:
                buf[s + lo : s + hi] = out.value
        if bi:  # requests made during the last batch (the first always trains)
            batch[at_flags] = sigint.local
            batch[at_flags + 1] = trainer.stop_training
        request = comm.iallreduce_sum(batch)
        allreduce(scale=b / B)  # a rank without rows sends zeros
        request.Wait()
        if batch[at_flags] or batch[at_flags + 1]:
            sigint.requested = sigint.requested or bool(batch[at_flags])
            trainer.stop_training = trainer.stop_training or bool(batch[at_flags + 1])
            for w in vgs:
                w.zero_grad()  # this batch is not trained on
            break
        loss = batch[0] / B
        if not -inf < loss < inf:  # NaN fails both comparisons
            raise Diverged(epoch, bi, float(loss), "loss")
        step(vgs)
        seen += B
        totals += batch[:at_flags]
        if batch_end is not None:
            blogs["loss"] = totals[0] / seen
            for j, (name, _) in enumerate(parts):
                blogs[name] = totals[1 + j] / seen
            for j, (name, _, _, _) in enumerate(metrics):
                blogs[name] = totals[at_metric + j] / seen
            blogs["size"] = B
            batch_end(bi, blogs)
            if republish:
                vm.publish()
    flags = np.array([sigint.local, trainer.stop_training], np.float64)
    comm.allreduce_sum(flags)
    sigint.requested = sigint.requested or bool(flags[0])
    trainer.stop_training = bool(flags[1])
    session.where = f"fit (end of epoch {epoch + 1})"
    logs = {"loss": float(totals[0] / seen)}
    for j, (name, _) in enumerate(parts):
        logs[name] = float(totals[1 + j] / seen)
    for j, (name, _, _, _) in enumerate(metrics):
        logs[name] = float(totals[at_metric + j] / seen)
    if plan.epoch_metrics and seen == n:
        order = perm[:n]
        for name, fn, _, Y, buf in plan.epoch_metrics:
            comm.allreduce_sum(buf)
            logs[name] = float(fn(buf, Y[order]))
    if size > 1:
        average_state(trainer.model, comm)
    return logs


def average_state(model: Any, comm: Any) -> None:
    """Make the model's layer state the same on every rank: float arrays (batch norm's
    running statistics, which each rank updates from its own rows) become their mean over
    the ranks, the rest (a dropout layer's generator) rank 0's.

    Example:
        >>> import graphcore as gc, golgi as G
        >>> net = G.ComposeSeq(G.L(G.ConsFC(G.WithShape(2))))
        >>> average_state(net, gc.Communicator.local())
    """
    state = model.state() if hasattr(model, "state") else {}
    if not state:
        return
    new = {k: np.array(v, copy=True) for k, v in state.items()}
    floats = [a for a in new.values() if a.dtype.kind == "f"]
    others = [a for a in new.values() if a.dtype.kind != "f"]
    by_dtype: dict[np.dtype, list[np.ndarray]] = {}
    for a in floats:
        by_dtype.setdefault(a.dtype, []).append(a)
    for dtype, group in by_dtype.items():
        buf = np.concatenate([a.reshape(-1) for a in group]).astype(dtype, copy=False)
        comm.allreduce_sum(buf)
        np.divide(buf, comm.size, out=buf)
        lo = 0
        for a in group:
            np.copyto(a, buf[lo : lo + a.size].reshape(a.shape))
            lo += a.size
    if others:
        gc.BroadcastValues(others, comm)
    model.load_state(new)
