"""What keeps ``fit`` from training on silently when the numbers go bad.

- :class:`Snapshot`: the weights, layer state and solver state at the start of an epoch
  (buffers allocated once per fit), put back when the loss or the weights stop being finite;
- :class:`NonFiniteLossError`: what ``fit`` raises then (unless a ``TerminateOnNaN``
  callback asks it to return);
- :func:`batchnorm_batch_problem`: a last batch of one sample that batch norm cannot train on,
  found before any weight changes.

Example:
    >>> import numpy as np, graphcore as gc, golgi as G
    >>> g = gc.NewGraph()
    >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
    >>> net = G.ComposeSeq(x, G.L(G.ConsFC(G.WithShape(1), G.WithName("h"))))
    >>> snap = Snapshot(net, net.model(), None); snap.take()
    >>> w = net.model()[0]; w.value[:] = np.nan; snap.restore(); bool(np.isfinite(w.value).all())
    True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

import graphcore as gc

from .data import all_finite, graph_of

__all__ = ["NonFiniteLossError", "Snapshot", "weights_finite", "batchnorm_batch_problem"]


class NonFiniteLossError(FloatingPointError):
    """``fit`` stopped because the training loss (or a weight) became NaN or infinite.

    The model, its layer state and the solver are back as they were at the end of the last
    epoch that ended finite (or where this fit started). Attributes: ``epoch`` and ``batch``
    (0-based) where it happened, ``value`` (the loss, or None when a weight went bad),
    ``history`` (the epochs completed).

    Example:
        >>> e = NonFiniteLossError("the loss became nan", epoch=2, batch=7, value=float("nan"))
        >>> e.epoch, e.batch, str(e)
        (2, 7, 'the loss became nan')
    """

    def __init__(
        self, message: str, *, epoch: int, batch: int | None, value: float | None
    ) -> None:
        super().__init__(message)
        self.epoch = epoch
        self.batch = batch
        self.value = value
        self.history: Any = None


def weights_finite(nodes: Sequence[gc.Node]) -> bool:
    """Whether every value of every node is finite (one pass each, no temporaries).

    Example:
        >>> import numpy as np, graphcore as gc
        >>> w = gc.NewConstant(np.array([1.0, np.inf])); weights_finite([w])
        False
    """
    return all(all_finite(n.value) for n in nodes if n.has_value)


class Snapshot:
    """The model's weights and layer state, and the solver's state, as of :meth:`take`;
    :meth:`restore` puts them back in place (machines and copies of the graph keep their
    arrays). The weight buffers are allocated once; ``take`` copies into them.

    A solver is snapshotted through ``state_dict`` / ``load_state_dict`` when it has them.
    A solver that has not stepped yet is restored to fresh: no steps, zero moments.

    Example:
        >>> import numpy as np, graphcore as gc, golgi as G
        >>> g = gc.NewGraph()
        >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
        >>> bn = G.ComposeSeq(x, G.L(G.ConsBatchNorm(G.WithName("bn"))))
        >>> snap = Snapshot(bn, bn.model(), None); snap.take()
        >>> bn.layers[0].running_mean[:] = 5.0; snap.restore(); bn.layers[0].running_mean
        array([0., 0.])
    """

    def __init__(self, model: Any, learnables: Sequence[gc.Node], solver: Any) -> None:
        self.model = model
        self.solver = solver
        self.params = [(n, np.empty_like(n.value)) for n in learnables if n.has_value]
        self.state: dict[str, np.ndarray] = {}
        self.solver_state: dict[str, np.ndarray] | None = None
        self.solver_fresh = False

    def take(self) -> None:
        """Copy the current weights, layer state and solver state."""
        for n, saved in self.params:
            np.copyto(saved, n.value)
        state = self.model.state() if hasattr(self.model, "state") else {}
        for k, v in state.items():
            saved_v = self.state.get(k)
            if saved_v is None or saved_v.shape != np.shape(v):
                self.state[k] = np.array(v, copy=True)
            else:
                np.copyto(saved_v, v)
        if callable(getattr(self.solver, "state_dict", None)):
            self.solver_state = self.solver.state_dict()
            self.solver_fresh = int(self.solver_state.get("step", 1)) == 0

    def restore(self) -> None:
        """Put the weights, layer state and solver state back."""
        for n, saved in self.params:
            np.copyto(n.value, saved)
            if n.has_grad:
                n.zero_grad()  # a batch cut short leaves a partial gradient
        if self.state:
            self.model.load_state(self.state)
        if self.solver_state is not None:
            state = self.solver_state
            if self.solver_fresh:
                now = dict(self.solver.state_dict())
                if int(now.get("step", 0)) == 0:
                    return  # it has not stepped since: still fresh
                # its moments did not exist yet: fresh is zeros, no steps taken
                state = {k: np.zeros_like(v) if "/" in k else v for k, v in now.items()}
                state.update({k: v for k, v in self.solver_state.items() if "/" not in k})
                state["num_params"] = now["num_params"]
            self.solver.load_state_dict(state)


def batchnorm_batch_problem(
    roots: Sequence[gc.Node], n: int, batch_size: int, drop_last: bool
) -> str | None:
    """Why training on ``n`` samples in batches of ``batch_size`` would fail in batch norm,
    or None: a batch of one sample gives a batch norm over (batch, features) one value per
    channel, which cannot be normalised (checked before any weight changes).

    Example:
        >>> import graphcore as gc, golgi as G
        >>> g = gc.NewGraph()
        >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
        >>> out = G.ConsBatchNorm(x, G.WithName("bn")).fwd(x)
        >>> print(batchnorm_batch_problem([out], 9, 4, False))  # doctest: +ELLIPSIS
        the last batch of each epoch holds 1 sample (9 samples, batch_size=4), and batch norm ...
        >>> batchnorm_batch_problem([out], 9, 4, True) is None
        True
    """
    last = n % batch_size if n > batch_size else n
    if last != 1 or (drop_last and n >= batch_size):
        return None
    sub = graph_of(roots[0], "fit").exact_subgraph_roots(*roots)
    for node in sub.nodes:
        if node.op is not None and node.op.name == "BatchNormStats":
            x = node.children[0]
            if math.prod(d for d in x.shape[2:] if d is not None) == 1:
                where = "the batch" if n == 1 else "the last batch of each epoch"
                return (
                    f"{where} holds 1 sample ({n} samples, batch_size={batch_size}), and batch "
                    f"norm over {x.describe()} needs at least 2 per batch to train (one sample "
                    f"would normalise to 0); pass drop_last=True to leave that sample out of "
                    f"each epoch (a different one each epoch when shuffling), or choose a "
                    f"batch_size that leaves 2 or more"
                )
    return None
