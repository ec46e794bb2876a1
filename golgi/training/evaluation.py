"""Evaluation in eval mode on this thread's copy of the training graph: the loss (and each
output's), and metrics on all predictions at once.

Example:
    >>> import numpy as np, golgi as G
    >>> net = G.ComposeSeq(G.L(G.ConsFC(G.WithShape(1))))
    >>> h = net.fit(np.ones((4, 2)), np.zeros((4, 1)), loss="mse", solver="sgd", progress=False)
    >>> sorted(eval_arrays(h.trainer, [np.ones((4, 2))], [np.zeros((4, 1))], 2, ["mae"]))
    ['loss', 'mae']
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..metrics import resolve_metrics
from .copies import EvalCopy, per_thread
from .data import put_rows

__all__ = ["eval_arrays"]


def _copy(trainer: Any) -> EvalCopy:
    ends, tg = trainer.ends, trainer.graph
    return per_thread(
        trainer,
        "evaluate",
        lambda: EvalCopy([*ends.inputs, *tg.targets], ends.outputs, [tg.cost, *tg.loss_nodes]),
    )


def eval_arrays(
    trainer: Any, X: list[np.ndarray], Y: list[np.ndarray], bs: int, metrics: Any = None,
    split: Any = None,
) -> dict[str, float]:
    """Loss and metrics of ``trainer``'s model on checked arrays ``X`` (one per input) and
    ``Y`` (one per output with a loss), in batches of ``bs``; ``metrics`` (as ``fit`` takes
    them) instead of the trainer's. ``split``: a ``golgi.MPIDataParallel``; this rank
    evaluates its block of the rows, and the sums and predictions of all ranks are
    gathered (every rank gets the same result)."""
    ends, tg = trainer.ends, trainer.graph
    assert ends is not None and tg is not None
    copy = _copy(trainer)
    copy.sync()
    cost, parts = copy.extra[0], copy.extra[1:]
    outs = copy.outputs
    several = len(ends.outputs) > 1
    if metrics is None:
        chosen = trainer._metric_list()
    else:
        chosen = [
            (f"{ends.output_names[i]}_{name}" if several else name, fn, i)
            for i in tg.trained
            for name, fn in resolve_metrics(metrics).items()
        ]
    keep = sorted({i for _, _, i in chosen})
    n = len(X[0])
    lo, hi = (0, n) if split is None else split.rows(n)
    loss_sum = 0.0
    part_sums = [0.0] * len(parts)
    preds: dict[int, np.ndarray] = {}
    feeds = list(zip(copy.inputs, [*X, *Y], strict=True))
    for s in range(lo, hi, bs):
        b = min(bs, hi - s)
        for node, a in feeds:
            put_rows(node, a[s : s + b])
        copy.run()
        loss_sum += float(cost.value) * b
        for j, p in enumerate(parts):
            part_sums[j] += float(p.value) * b
        for i in keep:
            v = outs[i].value
            if i not in preds:
                preds[i] = np.empty((hi - lo, *v.shape[1:]), v.dtype)
            preds[i][s - lo : s - lo + b] = v
    if split is not None:
        loss_sum, *part_sums = split.sum_values([loss_sum, *part_sums])
        preds = {i: split.gather_rows(preds.get(i), n) for i in keep}
    res = {"loss": loss_sum / n}
    if len(tg.trained) > 1:
        for j, i in enumerate(tg.trained):
            res[f"{ends.output_names[i]}_loss"] = part_sums[j] / n
    for name, fn, i in chosen:
        res[name] = float(fn(preds[i], Y[tg.trained.index(i)]))
    return res
