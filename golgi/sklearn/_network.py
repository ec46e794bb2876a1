"""The graph side of a fitted estimator: the golgi model on its input node, training through
:class:`golgi.Trainer`, eval machines per thread, and the weights as checkpoint bytes.

scikit-learn never sees this object: the estimators keep it in a private attribute, drop it
when pickled (keeping the checkpoint bytes) and rebuild it when unpickled.

Example:
    >>> import numpy as np, graphcore as gc, golgi as G
    >>> g = gc.NewGraph()
    >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
    >>> net = G.ComposeSeq(x, G.L(G.ConsFC(G.WithShape(2), G.WithName("out"))))
    >>> nw = Network(net, x, {"out": (x, net.out)})
    >>> nw.run("out", np.ones((4, 3))).shape
    (4, 2)
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

import graphcore as gc

from ..io import load, save
from ..training import Trainer

__all__ = ["Network", "weighted_mse"]

# Rows per run when predicting: bounds the activations' memory for large inputs.
CHUNK = 4096


def weighted_mse(out: gc.Node, target: gc.Node) -> gc.Node:
    """Mean squared error with a weight per sample: ``target`` holds the wanted outputs and,
    in its last column, each sample's weight (weights that average 1 give the plain MSE).

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph()
        >>> p = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("p"))
        >>> t = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("t"))
        >>> weighted_mse(p, t).shape
        ()
    """
    d = out.shape[1]
    err = gc.Square(gc.Sub(out, target[:, :d]))
    return gc.Mean(gc.HadamardProd(err, target[:, d:]))


class _Runner:
    """One eval machine from ``x`` to ``out`` (nodes of ``g``), run in chunks; results in a
    new array."""

    def __init__(self, g: gc.Graph, x: gc.Node, out: gc.Node) -> None:
        self.x, self.out = x, out
        self.vm = gc.NewTapeMachine(g.subgraph_roots(out), gc.EvalMode())

    def __call__(self, data: np.ndarray) -> np.ndarray:
        x, out = self.x, self.out
        result = np.empty((len(data), *out.shape[1:]), out.dtype.np)
        for s in range(0, len(data), CHUNK):
            rows = data[s : s + CHUNK]
            gc.Let(x, rows, copy=False)  # lent: the machine reads the caller's rows in place
            self.vm.run_all(into={out: result[s : s + len(rows)]})
        return result


class Network:
    """A built golgi ``model`` on input node ``x``, with named ``outputs``: name -> (input
    node, output node) of its graph (the model's result, an encoder's code...).

    ``run`` is safe from many threads at once: each thread runs its own copy of the graph
    (``Graph.clone(share=...)``: its own inputs and activations, the weights shared), made on
    its first call and again after each training run. ``train`` must not overlap a ``run``.

    Example:
        >>> import numpy as np, graphcore as gc, golgi as G
        >>> g = gc.NewGraph()
        >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
        >>> net = G.ComposeSeq(x, G.L(G.ConsFC(G.WithShape(1))))
        >>> nw = Network(net, x, {"out": (x, net.out)})
        >>> X = np.random.default_rng(0).normal(size=(32, 2)); Y = X.sum(1, keepdims=True)
        >>> losses = nw.train(X, Y, G.MSE, gc.NewAdamSolver(gc.WithLearnRate(0.1)),
        ...                   epochs=20, batch_size=8, seed=0)
        >>> len(losses), losses[-1] < losses[0]
        (20, True)
    """

    def __init__(
        self, model: Any, x: gc.Node, outputs: dict[str, tuple[gc.Node, gc.Node]]
    ) -> None:
        if x.graph is None:
            raise gc.GraphError(
                f"Network: {x.describe()} belongs to no graph; give the input node of a graph "
                f"(gc.NewMatrix(g, ...))"
            )
        self.model = model
        self.x = x
        self.graph: gc.Graph = x.graph
        self.outputs = outputs
        self.trainer: Trainer | None = None
        self.solver: Any = None
        self.generation = 0  # bumped by training: threads then copy the graph again
        self._local = threading.local()

    # ----- prediction ---------------------------------------------------------------------------
    def _runners(self) -> dict[str, _Runner]:
        mine = getattr(self._local, "runners", None)
        if mine is not None and mine[0] == self.generation:
            return mine[1]
        own = {id(i) for i, _ in self.outputs.values()}
        g = self.graph
        # weights and layer state are shared; the inputs each thread fills are its own
        shared = [n for n in g.inputs() if n.has_value and id(n) not in own]
        memo: dict[int, gc.Node] = {}
        copy = g.clone(memo, share=shared)
        runners = {
            name: _Runner(copy, memo[id(i)], memo[id(o)])
            for name, (i, o) in self.outputs.items()
        }
        self._local.runners = (self.generation, runners)
        return runners

    def run(self, name: str, data: np.ndarray) -> np.ndarray:
        """Output ``name`` for every row of ``data`` (eval mode), as float64.

        Example:
            >>> import numpy as np, graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 3), gc.WithName("x"))
            >>> net = G.ComposeSeq(x, G.L(G.ConsFC(G.WithShape(2))))
            >>> Network(net, x, {"out": (x, net.out)}).run("out", np.ones((2, 3))).dtype
            dtype('float64')
        """
        runner = self._runners()[name]
        data = np.ascontiguousarray(data, dtype=runner.x.dtype.np)
        return runner(data).astype(np.float64, copy=False)

    # ----- training -----------------------------------------------------------------------------
    def train(
        self,
        X: np.ndarray,
        T: np.ndarray,
        loss: Callable[[gc.Node, gc.Node], gc.Node],
        solver: Any,
        *,
        epochs: int,
        batch_size: int,
        seed: int,
        initial_epoch: int = 0,
        shuffle: bool = True,
        progress: bool | str = False,
    ) -> list[float]:
        """Train on inputs ``X`` and targets ``T`` for epochs ``initial_epoch .. epochs-1``
        with ``solver``; returns each epoch's mean loss.

        The Trainer (its graph nodes and compiled plans) is made on the first call and kept.
        """
        if self.trainer is None:
            self.trainer = Trainer(self.model, loss, solver, input=self.x)
        self.trainer.solver = self.solver = solver
        self.generation += 1
        history = self.trainer.fit(
            X,
            T,
            epochs=epochs,
            initial_epoch=initial_epoch,
            batch_size=batch_size,
            seed=seed,
            shuffle=shuffle,
            progress=progress,
        )
        return [float(v) for v in history["loss"]]

    # ----- checkpoint bytes ---------------------------------------------------------------------
    def to_bytes(self) -> tuple[bytes, bool]:
        """The model's weights and state (and the solver's, once trained) as the bytes of a
        golgi checkpoint, and whether the solver's state is in it.

        Example:
            >>> import numpy as np, graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
            >>> net = G.ComposeSeq(x, G.L(G.ConsFC(G.WithShape(2))))
            >>> raw, with_solver = Network(net, x, {}).to_bytes()
            >>> raw[:2], with_solver  # a zip file: an .npz checkpoint
            (b'PK', False)
        """
        solver = self.solver  # set once there is solver state: by training, or loaded
        with tempfile.TemporaryDirectory(prefix="golgi-sklearn-") as tmp:
            path = os.path.join(tmp, "model.npz")
            save(self.model, path, solver=solver)
            with open(path, "rb") as f:
                return f.read(), solver is not None

    def load_bytes(self, raw: bytes, solver: Any = None) -> None:
        """Load weights, state and (given a ``solver``) its state from ``to_bytes``' bytes."""
        with tempfile.TemporaryDirectory(prefix="golgi-sklearn-") as tmp:
            path = os.path.join(tmp, "model.npz")
            with open(path, "wb") as f:
                f.write(raw)
            load(self.model, path, solver=solver)
        self.solver = solver
        self.generation += 1
