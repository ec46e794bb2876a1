"""Runners for the library itself: (a) graphcore's tape machine, (b) golgi's ``fit``.

Both follow the ``Runner`` protocol of ``bench/common.py``: same initial weights, same data
order, Gorgonia's RMSProp (lr 0.001, rho 0.999, eps 1e-8 inside the root, no batch division).
"""

from __future__ import annotations

from typing import Any

import numpy as np

import graphcore as gc

from .common import Arch, epoch_order

__all__ = ["GraphcoreRunner", "GraphcoreNumpyRunner", "GolgiFitRunner"]


def _head(arch: Arch, z: gc.Node, t: gc.Node) -> tuple[gc.Node, gc.Node]:
    if arch.head == "softmax_ce":
        return gc.SoftmaxCrossEntropy(z, t), gc.SoftMax(z)
    return gc.SigmoidBinaryCrossEntropy(z, t), gc.Sigmoid(z)


class GraphcoreRunner:
    """The MLP or autoencoder written with graphcore and run by the tape machine.

    Example:
        >>> from bench.common import ARCHS, init_weights
        >>> r = GraphcoreRunner(ARCHS["mlp"], np.float32, init_weights(ARCHS["mlp"], np.float32))
        >>> r.name
        'graphcore'
    """

    name = "graphcore"

    def __init__(self, arch: Arch, dtype: Any, weights: list[np.ndarray]) -> None:
        self.arch, self.dtype = arch, np.dtype(dtype)
        dt = gc.as_dtype(self.dtype)
        g = self.graph = gc.NewGraph(arch.name)
        self.x = gc.NewMatrix(g, dt, gc.WithShape(None, arch.sizes[0]), gc.WithName("x"))
        self.t = gc.NewMatrix(g, dt, gc.WithShape(None, arch.sizes[-1]), gc.WithName("t"))
        self.params: list[gc.Node] = []
        h = self.x
        for i in range(arch.n_layers):
            w = gc.NewMatrix(g, dt, gc.WithName(f"w{i}"), gc.WithValue(weights[2 * i]))
            b = gc.NewMatrix(g, dt, gc.WithName(f"b{i}"), gc.WithValue(weights[2 * i + 1]))
            self.params += [w, b]
            h = gc.Add(gc.Mul(h, w), b)
            if i < arch.n_layers - 1:
                h = gc.Rectify(h)
        self.cost, self.out = _head(arch, h, self.t)
        gc.Grad(self.cost, *self.params)
        self.vm = gc.NewTapeMachine(g.subgraph_roots(self.cost), gc.BindDualValues(*self.params))
        self.pred_vm = gc.NewTapeMachine(g.subgraph_roots(self.out), gc.EvalMode())
        self.pred_fn = self.pred_vm.function(self.x, self.out)
        self.solver = gc.NewRMSPropSolver()
        self.vgs = gc.NodesToValueGrads(self.params)

    def train_epoch(self, x: np.ndarray, y: np.ndarray, order: np.ndarray, batch: int) -> float:
        """One epoch of full batches in ``order``; the mean of the batch losses."""
        xn, tn, vm, step, vgs, cost = self.x, self.t, self.vm, self.solver.step, self.vgs, self.cost
        steps = len(order) // batch
        same = y is x  # autoencoder: the targets are the input rows, gathered once
        gc.Let(xn, x[order[:batch]])
        gc.Let(tn, y[order[:batch]])
        total = 0.0
        for s in range(steps):
            idx = order[s * batch : (s + 1) * batch]
            np.take(x, idx, axis=0, out=xn.value, mode="clip")
            if same:  # a contiguous copy of the gathered rows: a third of a second gather
                np.copyto(tn.value, xn.value)
            else:
                np.take(y, idx, axis=0, out=tn.value, mode="clip")
            vm.run_all()
            step(vgs)
            total += float(cost.value)
        return total / steps

    def predict(self, x: np.ndarray, batch: int) -> np.ndarray:
        """Softmax or sigmoid outputs, ``(n, out)``."""
        res = np.empty((x.shape[0], self.arch.sizes[-1]), self.dtype)
        f = self.pred_fn  # Let(x, rows, copy=False), then run_all(into={out: res rows})
        for s in range(0, x.shape[0], batch):
            f(x[s : s + batch], out=res[s : s + batch])
        return res

    def weights(self) -> list[np.ndarray]:
        """Copies of the weights, in the init order."""
        return [p.value.copy() for p in self.params]


class GraphcoreNumpyRunner(GraphcoreRunner):
    """:class:`GraphcoreRunner` with graphcore's optional numba kernels switched off: the pure
    numpy + scipy path (each runner runs in a worker process of its own).

    Example:
        >>> GraphcoreNumpyRunner.name
        'graphcore-np'
    """

    name = "graphcore-np"

    def __init__(self, arch: Arch, dtype: Any, weights: list[np.ndarray]) -> None:
        gc.accel.set_enabled(False)
        super().__init__(arch, dtype, weights)


class GolgiFitRunner:
    """The same model from ``golgi.models`` (``MLP`` or ``Autoencoder``: ``ComposeSeq`` of
    ``ConsFC``, as ``golgi train`` builds it) with the harness's weights, trained by ``fit``.

    Example:
        >>> GolgiFitRunner.name
        'golgi-fit'
    """

    name = "golgi-fit"

    def __init__(self, arch: Arch, dtype: Any, weights: list[np.ndarray]) -> None:
        # golgi is imported here, not at the top: the workers count each runner's imports in
        # its peak memory, and the tape-machine runners use graphcore alone
        import golgi as G
        from golgi import models

        self.arch, self.dtype = arch, np.dtype(dtype)
        build = models.MLP if arch.head == "softmax_ce" else models.Autoencoder
        self.model = build(sizes=arch.sizes, dtype=gc.as_dtype(self.dtype))
        for p, w in zip(self.model.model(), weights, strict=True):
            gc.Let(p, w)
        loss = "cross_entropy" if arch.head == "softmax_ce" else "bce"
        self.trainer = G.Trainer(self.model, loss, gc.NewRMSPropSolver())
        self.epoch = 0
        self.seed = 0

    def train_epoch(self, x: np.ndarray, y: np.ndarray, order: np.ndarray, batch: int) -> float:
        """One ``fit`` epoch; ``fit``'s own seeded shuffle must equal the harness's order."""
        n = (len(order) // batch) * batch
        if len(order) == len(x) == n and np.array_equal(
            order, epoch_order(len(x), self.epoch, self.seed)
        ):
            h = self.trainer.fit(x, y, epochs=self.epoch + 1, initial_epoch=self.epoch,
                                 batch_size=batch, seed=self.seed, progress=False)
        else:  # the agreement check's prefix of an order: hand fit the rows in that order
            idx = order[:n]
            yy = None if y is x else y[idx]
            xx = x[idx]
            h = self.trainer.fit(xx, xx if yy is None else yy, epochs=self.epoch + 1,
                                 initial_epoch=self.epoch, batch_size=batch, shuffle=False,
                                 progress=False)
        self.epoch += 1
        return float(h.history["loss"][-1])

    def predict(self, x: np.ndarray, batch: int) -> np.ndarray:
        """Softmax or sigmoid outputs, ``(n, out)``."""
        z = self.trainer.predict(x, batch_size=batch)
        if self.arch.head == "softmax_ce":
            z = z - z.max(axis=1, keepdims=True)
            e = np.exp(z)
            return (e / e.sum(axis=1, keepdims=True)).astype(self.dtype)
        return (1.0 / (1.0 + np.exp(-z))).astype(self.dtype)

    def weights(self) -> list[np.ndarray]:
        """Copies of the weights, in the init order."""
        return [p.value.copy() for p in self.model.model()]
