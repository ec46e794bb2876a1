"""The convolutional workloads (``bench.common.CONV_ARCHS``): graphcore's tape machine against
PyTorch eager, float32, batch 32, the same RMSProp.

- :class:`GraphcoreConvRunner`: the network in graphcore ops (``Conv2d`` = im2col + one GEMM,
  ``MaxPool2D``, ``Dropout``, ``AvgPool2D``), run by the tape machine, stepped by
  ``NewRMSPropSolver``, with the compiled kernels on; :class:`GraphcoreConvNumpyRunner` with
  them off (the default install).
- :class:`TorchConvRunner`: ``F.conv2d`` (padding 1), ``F.max_pool2d``, ``F.dropout``,
  ``F.avg_pool2d``, ``torch.mm``, ``F.cross_entropy`` with probability targets, autograd, and
  Gorgonia's RMSProp in place.

Both follow the ``Runner`` protocol of ``bench/common.py``: images arrive as ``(n, 784)``
rows and are seen as ``(n, 1, 28, 28)``; weights are those of ``init_weights`` (filters
``(out, in, 3, 3)``, FC ``(in, out)``, no biases). Dropout masks are each library's own, so
runs with dropout cannot agree number for number; the agreement check trains
``arch.without_dropout()`` (``bench.common.check_arch``).

Example:
    >>> from bench.common import CONV_ARCHS, init_weights
    >>> arch = CONV_ARCHS["resnet"]
    >>> r = GraphcoreConvRunner(arch, np.float32, init_weights(arch, np.float32))
    >>> r.predict(np.zeros((2, 784), np.float32), 2).shape
    (2, 10)
"""

from __future__ import annotations

from typing import Any

import numpy as np

import graphcore as gc

from .common import EPS, LEARN_RATE, RHO, ConvArch

__all__ = ["GraphcoreConvRunner", "GraphcoreConvNumpyRunner", "TorchConvRunner"]

IMAGE = (1, 28, 28)


def _check(who: str, arch: Any, dtype: np.dtype, weights: list[np.ndarray]) -> None:
    if not isinstance(arch, ConvArch):
        raise TypeError(f"{who}: needs a ConvArch (convnet, resnet), got {arch!r}")
    shapes = [tuple(np.shape(w)) for w in weights]
    if shapes != arch.weight_shapes():
        raise ValueError(f"{who}: {arch.name} weights must be {arch.weight_shapes()}, got {shapes}")
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"{who}: dtype must be float32 or float64, got {dtype}")


# ---------------------------------------------------------------------------------------------
# graphcore


class GraphcoreConvRunner:
    """The convnet or resnet in graphcore ops on the tape machine (compiled kernels on).

    Example:
        >>> GraphcoreConvRunner.name
        'graphcore'
    """

    name = "graphcore"

    def __init__(self, arch: ConvArch, dtype: Any, weights: list[np.ndarray]) -> None:
        self.arch, self.dtype = arch, np.dtype(dtype)
        _check("GraphcoreConvRunner", arch, self.dtype, weights)
        dt = gc.as_dtype(self.dtype)
        g = self.graph = gc.NewGraph(arch.name)
        self.x = gc.NewTensor(g, dt, 4, gc.WithShape(None, *IMAGE), gc.WithName("x"))
        self.t = gc.NewMatrix(g, dt, gc.WithShape(None, 10), gc.WithName("t"))
        self.params = [
            gc.NewTensor(g, dt, w.ndim, gc.WithName(f"w{i}"), gc.WithValue(w))
            for i, w in enumerate(weights)
        ]
        z = self._convnet() if arch.kind == "convnet" else self._resnet()
        self.cost, self.out = gc.SoftmaxCrossEntropy(z, self.t), gc.SoftMax(z)
        gc.Grad(self.cost, *self.params)
        self.vm = gc.NewTapeMachine(g.subgraph_roots(self.cost), gc.BindDualValues(*self.params))
        self.pred_vm = gc.NewTapeMachine(g.subgraph_roots(self.out), gc.EvalMode())
        self.solver = gc.NewRMSPropSolver()
        self.vgs = gc.NodesToValueGrads(self.params)

    def _convnet(self) -> gc.Node:
        w, p = self.params, self.arch.dropout
        h = self.x
        for i in range(3):
            h = gc.Rectify(gc.Conv2d(h, w[i], pad=(1, 1)))
            h = gc.Dropout(gc.MaxPool2D(h, (2, 2)), p[i])
        h = gc.Dropout(gc.Reshape(h, (None, 128 * 3 * 3)), p[2])
        h = gc.Dropout(gc.Rectify(gc.Mul(h, w[3])), p[3])
        return gc.Mul(h, w[4])

    def _resnet(self) -> gc.Node:
        w = self.params

        def conv(h: gc.Node, k: int) -> gc.Node:
            return gc.Conv2d(h, w[k], pad=(1, 1))

        def block(a: gc.Node, k: int) -> gc.Node:
            return gc.Rectify(gc.Add(a, conv(gc.Rectify(conv(a, k)), k + 1)))

        h = block(gc.Rectify(conv(self.x, 0)), 1)
        h = gc.MaxPool2D(h, (2, 2))
        h = block(gc.Rectify(conv(h, 3)), 4)
        h = gc.AvgPool2D(gc.MaxPool2D(h, (2, 2)), (7, 7), stride=(7, 7))
        return gc.Mul(gc.Reshape(h, (None, 32)), w[6])

    def train_epoch(self, x: np.ndarray, y: np.ndarray, order: np.ndarray, batch: int) -> float:
        """One epoch of full batches in ``order``; the mean of the batch losses."""
        vm, step, vgs, cost = self.vm, self.solver.step, self.vgs, self.cost
        steps = len(order) // batch
        gc.Let(self.x, x[order[:batch]].reshape(batch, *IMAGE))
        gc.Let(self.t, y[order[:batch]])
        total = 0.0
        for s in range(steps):
            idx = order[s * batch : (s + 1) * batch]
            xv = self.x.value.reshape(batch, -1)  # the plan's input buffer, as rows
            np.take(x, idx, axis=0, out=xv, mode="clip")
            np.take(y, idx, axis=0, out=self.t.value, mode="clip")
            vm.run_all()
            step(vgs)
            total += float(cost.value)
        return total / steps

    def predict(self, x: np.ndarray, batch: int) -> np.ndarray:
        """Softmax outputs, ``(n, 10)`` (dropout off: the machine runs in eval mode)."""
        res = np.empty((x.shape[0], 10), self.dtype)
        for s in range(0, x.shape[0], batch):
            xb = x[s : s + batch]
            gc.Let(self.x, xb.reshape(len(xb), *IMAGE), copy=False)
            self.pred_vm.run_all(into={self.out: res[s : s + batch]})
        return res

    def weights(self) -> list[np.ndarray]:
        """Copies of the weights, in the init order."""
        return [p.value.copy() for p in self.params]


class GraphcoreConvNumpyRunner(GraphcoreConvRunner):
    """:class:`GraphcoreConvRunner` with the compiled kernels off: numpy and scipy only.

    Example:
        >>> GraphcoreConvNumpyRunner.name
        'graphcore-np'
    """

    name = "graphcore-np"

    def __init__(self, arch: ConvArch, dtype: Any, weights: list[np.ndarray]) -> None:
        gc.accel.set_enabled(False)
        super().__init__(arch, dtype, weights)


# ---------------------------------------------------------------------------------------------
# PyTorch eager


class TorchConvRunner:
    """The convnet or resnet in PyTorch eager on the CPU, Gorgonia's RMSProp in place.

    Example:
        >>> TorchConvRunner.name
        'torch'
    """

    name = "torch"

    def __init__(self, arch: ConvArch, dtype: Any, weights: list[np.ndarray]) -> None:
        from .baselines import _import_torch

        torch = self._torch = _import_torch()
        self._F = torch.nn.functional
        self.arch, self.dtype = arch, np.dtype(dtype)
        _check("TorchConvRunner", arch, self.dtype, weights)
        self._params = [
            torch.tensor(np.asarray(w, self.dtype)).requires_grad_(True) for w in weights
        ]
        self._cache = [torch.zeros_like(p) for p in self._params]
        self._tmp = [torch.empty_like(p) for p in self._params]

    def _logits(self, x: Any, training: bool) -> Any:
        F, w = self._F, self._params
        if self.arch.kind == "convnet":
            p = self.arch.dropout
            h = x
            for i in range(3):
                h = F.relu(F.conv2d(h, w[i], padding=1))
                h = F.dropout(F.max_pool2d(h, 2), p[i], training)
            h = F.dropout(h.reshape(h.shape[0], -1), p[2], training)
            h = F.dropout(F.relu(h.mm(w[3])), p[3], training)
            return h.mm(w[4])

        def block(a: Any, k: int) -> Any:
            return F.relu(a + F.conv2d(F.relu(F.conv2d(a, w[k], padding=1)), w[k + 1], padding=1))

        h = block(F.relu(F.conv2d(x, w[0], padding=1)), 1)
        h = F.max_pool2d(h, 2)
        h = block(F.relu(F.conv2d(h, w[3], padding=1)), 4)
        h = F.avg_pool2d(F.max_pool2d(h, 2), 7)
        return h.reshape(h.shape[0], -1).mm(w[6])

    def _rmsprop(self) -> None:
        for p, c, t in zip(self._params, self._cache, self._tmp, strict=True):
            g = p.grad
            c.mul_(RHO).addcmul_(g, g, value=1.0 - RHO)
            self._torch.add(c, EPS, out=t).sqrt_()
            p.addcdiv_(g, t, value=-LEARN_RATE)

    def train_epoch(self, x: np.ndarray, y: np.ndarray, order: np.ndarray, batch: int) -> float:
        """One epoch of RMSProp steps over ``x[order]`` in full batches; the mean batch loss."""
        torch = self._torch
        steps = len(order) // batch
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        idx = torch.from_numpy(np.ascontiguousarray(order, dtype=np.int64))
        total = torch.zeros((), dtype=torch.float64)
        for s in range(steps):
            i = idx[s * batch : (s + 1) * batch]
            xb = xt.index_select(0, i).reshape(batch, *IMAGE)
            loss = self._F.cross_entropy(self._logits(xb, True), yt.index_select(0, i))
            for p in self._params:
                p.grad = None
            loss.backward()
            with torch.no_grad():
                self._rmsprop()
                total += loss
        return float(total.item()) / steps

    def predict(self, x: np.ndarray, batch: int) -> np.ndarray:
        """Softmax outputs, ``(n, 10)``, dropout off."""
        torch = self._torch
        xt = torch.from_numpy(x)
        out = torch.empty((x.shape[0], 10), dtype=xt.dtype)
        with torch.inference_mode():
            for s in range(0, x.shape[0], batch):
                xb = xt[s : s + batch]
                z = self._logits(xb.reshape(xb.shape[0], *IMAGE), False)
                torch.softmax(z, dim=1, out=out[s : s + batch])
        return out.numpy()

    def weights(self) -> list[np.ndarray]:
        """Copies of the weights as numpy arrays."""
        return [p.detach().numpy().copy() for p in self._params]
