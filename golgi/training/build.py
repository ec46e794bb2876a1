"""The training graph: targets and losses per output, their weighted total, the gradients and
the training machine.

``build_losses`` adds, once per trainer, a target node and a loss node for every output
that has a loss, and the cost: that loss alone for one output, else the sum of each loss
times its weight (an input node per output, so ``fit(loss_weights=...)`` changes them
without rebuilding). ``build_machine`` takes the gradients of that cost, or of the cost
weighted per sample (``sample_weight``, ``class_weight``), and compiles the machine.

Example:
    >>> import numpy as np, graphcore as gc, golgi as G
    >>> from golgi.training.structure import model_ends
    >>> net = G.ComposeSeq(G.L(G.ConsFC(G.WithShape(2))))
    >>> ends = model_ends(net, None, (3,), gc.Float64)
    >>> tg = build_losses(ends, G.MSE, [np.zeros((4, 2))])
    >>> tg.targets[0].shape, tg.cost.shape, tg.trained
    ((None, 2), (), [0])
    >>> build_machine(tg, net, weighted=True).weight.shape
    (None,)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import graphcore as gc

from ..losses import LossFn, per_sample_loss, resolve_loss
from .data import graph_of, new_input
from .structure import Ends, is_multi

__all__ = ["TrainGraph", "TrainMachine", "resolve_losses", "build_losses", "build_machine"]


def resolve_losses(loss: Any, model: Any) -> LossFn | dict[str, LossFn | None] | None:
    """The loss (see :func:`golgi.losses.resolve_loss`), or for a model with several
    outputs a dict output name -> loss (None: that output is not trained).

    Example:
        >>> import golgi as G
        >>> resolve_losses("mse", None) is G.MSE
        True
    """
    if loss is None:
        return None
    if not isinstance(loss, Mapping):
        return resolve_loss(loss)
    names = list(model.outputs) if is_multi(model) else []
    if not names:
        raise TypeError(
            "loss: a dict of losses is for a golgi.Model with several named outputs; this "
            "model has one output: give one loss"
        )
    for k in loss:
        if k not in names:
            raise ValueError(f"loss: the model has no output {k!r}; its outputs are {names}")
    return {k: None if v is None else resolve_loss(v) for k, v in loss.items()}


@dataclass
class TrainGraph:
    """The targets, per-output losses and total cost of a trainer's model (built once)."""

    ends: Ends
    trained: list[int]  # indices of the outputs that have a loss
    loss_fns: list[LossFn]
    targets: list[gc.Node]
    loss_nodes: list[gc.Node]
    cost: gc.Node
    loss_weight_nodes: list[gc.Node] = field(default_factory=list)

    def loss_weight_values(self, loss_weights: Any) -> list[float]:
        """One weight per trained output from ``fit(loss_weights=...)`` (default 1).

        Example:
            >>> import graphcore as gc
            >>> from golgi.training.structure import Ends
            >>> n = gc.NewConstant(0.0)
            >>> tg = TrainGraph(Ends([], [], "dict", [n, n], ["a", "b"], "dict"), [0, 1],
            ...                 [], [], [], n)
            >>> tg.loss_weight_values({"b": 0.5})
            [1.0, 0.5]
        """
        names = [self.ends.output_names[i] for i in self.trained]
        if loss_weights is None:
            return [1.0] * len(names)
        if len(names) == 1:
            raise ValueError(
                "fit: loss_weights weigh the losses of several outputs against each other; "
                "this model trains one output (scale its loss, or its learn rate, instead)"
            )
        if isinstance(loss_weights, Mapping):
            for k in loss_weights:
                if k not in names:
                    raise ValueError(
                        f"fit: loss_weights has {k!r}, which is not an output with a loss "
                        f"({', '.join(names)})"
                    )
            values = [loss_weights.get(k, 1.0) for k in names]
        else:
            values = list(loss_weights)
            if len(values) != len(names):
                raise ValueError(
                    f"fit: loss_weights has {len(values)} weights for {len(names)} outputs "
                    f"with a loss ({', '.join(names)})"
                )
        out = []
        for k, v in zip(names, values, strict=True):
            v = float(v)
            if not (v >= 0 and np.isfinite(v)):
                raise ValueError(f"fit: loss_weights[{k!r}] must be finite and >= 0, got {v}")
            out.append(v)
        return out


@dataclass
class TrainMachine:
    """A cost to train (plain or weighted per sample), its gradients and compiled machine."""

    cost: gc.Node
    loss_nodes: list[gc.Node]
    weight: gc.Node | None
    learnables: list[gc.Node]
    grads: list[gc.Node]
    vm: gc.TapeMachine
    vgs: list[Any]

    def claim_grads(self) -> None:
        """Point each learnable at this machine's gradient node. Another ``Grad`` on the same
        learnables (a second trainer, or the weighted cost) repoints ``w.deriv``; plans this
        machine compiles later must see its own gradient nodes."""
        for w, d in zip(self.learnables, self.grads, strict=True):
            if w.deriv is not d:
                w.deriv, d.deriv_of = d, w


def _target(g: gc.Graph, out: gc.Node, y: Any, stem: str) -> gc.Node:
    y = np.asarray(y)
    if y.ndim == 0:
        raise gc.ShapeError("fit: y must hold one target per sample, got a scalar")
    if y.dtype.kind in "iu":
        dt = gc.Int32 if y.dtype == np.int32 else gc.Int64
    elif y.dtype.kind in "fb":
        dt = out.dtype
    else:
        raise gc.DtypeError(f"fit: targets of dtype {y.dtype} are not supported")
    return new_input(g, dt, (None, *y.shape[1:]), stem)


def _scalar_loss(fn: LossFn, out: gc.Node, target: gc.Node) -> gc.Node:
    cost = fn(out, target)
    if not isinstance(cost, gc.Node) or cost.shape != ():
        raise gc.ShapeError(
            f"the loss must return a scalar node (shape ()), got "
            f"{cost.describe() if isinstance(cost, gc.Node) else type(cost).__name__}; "
            f"reduce it with gc.Mean"
        )
    return cost


def _total(parts: Sequence[gc.Node], weights: Sequence[gc.Node]) -> gc.Node:
    if len(parts) == 1:
        return parts[0]
    total = gc.HadamardProd(weights[0], parts[0])
    for w, p in zip(weights[1:], parts[1:], strict=True):
        total = gc.Add(total, gc.HadamardProd(w, p))
    return total


def build_losses(ends: Ends, loss: Any, ys: Sequence[Any | None]) -> TrainGraph:
    """Targets (shaped and typed from ``ys``, one per output) and losses for the outputs
    that have a loss, and their total cost."""
    names = ends.output_names
    if isinstance(loss, Mapping):
        trained = [i for i, k in enumerate(names) if loss.get(k) is not None]
        fns = [loss[names[i]] for i in trained]
    else:
        trained = list(range(len(names)))
        fns = [loss] * len(names)
    if not trained:
        raise ValueError("fit: no output has a loss; give at least one")
    g = graph_of(ends.outputs[0], "fit")
    several = len(ends.outputs) > 1
    targets, losses = [], []
    for i, fn in zip(trained, fns, strict=True):
        if ys[i] is None:
            raise ValueError(
                f"fit: no targets for output {names[i]!r}, which has a loss; give y as a dict "
                f"with one array per output ({', '.join(names[j] for j in trained)})"
            )
        out = ends.outputs[i]
        t = _target(g, out, ys[i], f"y_{names[i]}" if several else "y")
        targets.append(t)
        losses.append(_scalar_loss(fn, out, t))
    weights = [
        gc.NewScalar(g, losses[0].dtype, gc.WithName(f"loss_weight_{names[i]}"),
                     gc.WithValue(1.0))
        for i in trained
    ] if len(trained) > 1 else []
    return TrainGraph(ends, trained, fns, targets, losses, _total(losses, weights), weights)


def build_machine(tg: TrainGraph, model: Any, weighted: bool) -> TrainMachine:
    """The gradients of ``tg``'s cost (or, ``weighted``, of the mean of each sample's loss
    times its weight, fed through a new input ``sample_weight``) and a compiled machine."""
    g = graph_of(tg.cost, "fit")
    # the learnables the losses depend on (an output without a loss leaves its layers be)
    needed = {id(n) for n in g.exact_subgraph_roots(tg.cost).nodes}
    learnables = [w for w in model.model() if id(w) in needed]
    if not learnables:
        raise gc.GraphError("fit: the model has no learnables to train")
    weight = None
    cost, loss_nodes = tg.cost, tg.loss_nodes
    if weighted:
        weight = new_input(g, tg.loss_nodes[0].dtype, (None,), "sample_weight")
        loss_nodes = [
            gc.Mean(gc.HadamardProd(per_sample_loss(fn, tg.ends.outputs[i], t), weight))
            for i, fn, t in zip(tg.trained, tg.loss_fns, tg.targets, strict=True)
        ]
        cost = _total(loss_nodes, tg.loss_weight_nodes)
    grads = gc.Grad(cost, *learnables)
    outs = [tg.ends.outputs[i] for i in tg.trained]
    watch = [cost, *outs, *(loss_nodes if len(loss_nodes) > 1 else ())]
    vm = gc.NewTapeMachine(
        g.subgraph_roots(cost, *grads), gc.BindDualValues(*learnables), gc.WithWatchlist(*watch)
    )
    return TrainMachine(
        cost, loss_nodes, weight, learnables, grads, vm, gc.NodesToValueGrads(learnables)
    )
