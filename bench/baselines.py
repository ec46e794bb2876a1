"""The baselines golgi is measured against: hand-written numpy, PyTorch CPU eager, GEMMs alone.

- :class:`NumpyRunner`: manual backprop in plain numpy, written the way a competent person would
  for speed: buffers allocated once per batch size, ``out=`` everywhere, transposes as views,
  in-place ReLU and RMSProp on one flat parameter vector. No scipy BLAS calls, no threads of its
  own (numpy's BLAS threads as it always does). This is the floor a person would write.
- :class:`TorchRunner`: the same model in PyTorch eager (autograd), with Gorgonia's RMSProp
  written with in-place ops under ``torch.no_grad()`` (``torch.optim.RMSprop`` puts eps outside
  the square root, so it is not used). Needs ``pip install torch==2.13.0``.
- :func:`time_gemms`: only the matrix products of one epoch's forward and backward passes, at the
  same shapes and memory layouts as :class:`NumpyRunner` uses: the floor under every runner.

Example:
    >>> from bench.common import ARCHS, init_weights, epoch_order, load_data
    >>> arch = ARCHS["mlp"]
    >>> d = load_data(600)  # doctest: +SKIP
    >>> r = NumpyRunner(arch, np.float32, init_weights(arch, np.float32))
    >>> r.train_epoch(d.x_train, d.y_train, epoch_order(600, 0), 100)  # doctest: +SKIP
    2.02...
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from bench.common import (
    EPS,
    LEARN_RATE,
    RHO,
    Arch,
    ConvArch,
    gemm_operands,
    gemm_shapes,
    median,
)

__all__ = [
    "CONV_RUNNERS",
    "RUNNERS",
    "NumpyRunner",
    "TorchRunner",
    "gemm_epoch_times",
    "runner_spec",
    "time_gemms",
    "torch_available",
]

# name -> "module:factory", for the harness's subprocess workers: the fully connected
# workloads (mlp, ae), then the convolutional ones (convnet, resnet). "gemm" (the GEMMs-alone
# floor) runs every workload and needs no entry.
RUNNERS: dict[str, str] = {
    "numpy": "bench.baselines:NumpyRunner",
    "torch": "bench.baselines:TorchRunner",
    "jax": "bench.jax_runner:JaxScanRunner",
    "graphcore": "bench.graphcore_runner:GraphcoreRunner",
    "graphcore-np": "bench.graphcore_runner:GraphcoreNumpyRunner",
    "golgi-fit": "bench.graphcore_runner:GolgiFitRunner",
}
CONV_RUNNERS: dict[str, str] = {
    "torch": "bench.conv_runners:TorchConvRunner",
    "graphcore": "bench.conv_runners:GraphcoreConvRunner",
    "graphcore-np": "bench.conv_runners:GraphcoreConvNumpyRunner",
}


def runner_spec(impl: str, arch: Any) -> str | None:
    """The worker spec of ``impl`` on workload ``arch`` (``"gemm"`` for the floor), or None
    where that implementation has no runner for it (hand numpy and JAX: no convnets).

    Example:
        >>> from bench.common import ARCHS, CONV_ARCHS
        >>> runner_spec("torch", CONV_ARCHS["resnet"]), runner_spec("jax", CONV_ARCHS["resnet"])
        ('bench.conv_runners:TorchConvRunner', None)
        >>> runner_spec("gemm", ARCHS["mlp"])
        'gemm'
    """
    if impl == "gemm":
        return "gemm"
    table = CONV_RUNNERS if isinstance(arch, ConvArch) else RUNNERS
    return table.get(impl)


def _check_weights(who: str, arch: Arch, dtype: np.dtype, weights: list[np.ndarray]) -> None:
    expected = []
    for fi, fo in zip(arch.sizes[:-1], arch.sizes[1:], strict=True):
        expected += [(fi, fo), (1, fo)]
    shapes = [tuple(np.shape(w)) for w in weights]
    if shapes != expected:
        raise ValueError(
            f"{who}: weights for {arch.name} {arch.sizes} must have shapes {expected} "
            f"(W (in, out), b (1, out)), got {shapes}"
        )
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"{who}: dtype must be float32 or float64, got {dtype}")


def _check_batch(who: str, x: np.ndarray, y: np.ndarray | None, arch: Arch, dtype: Any) -> None:
    if x.ndim != 2 or x.shape[1] != arch.sizes[0]:
        raise ValueError(f"{who}: x must be (n, {arch.sizes[0]}), got {x.shape}")
    if x.dtype != dtype:
        raise TypeError(f"{who}: x is {x.dtype} but the runner is {np.dtype(dtype)}; cast it first")
    if y is not None and (y.shape != (x.shape[0], arch.sizes[-1]) or y.dtype != dtype):
        raise ValueError(
            f"{who}: y must be ({x.shape[0]}, {arch.sizes[-1]}) {np.dtype(dtype)}, "
            f"got {y.shape} {y.dtype}"
        )


# ---------------------------------------------------------------------------------------------
# (c) hand-written numpy


class _Buffers:
    """Every array one step at one batch size needs, allocated once.

    Training buffers hold activations, gradients, ReLU masks and head scratch; inference ones
    (``train=False``) only the hidden activations, since the output goes straight to the result.
    """

    def __init__(self, arch: Arch, dtype: np.dtype, batch: int, train: bool = True) -> None:
        widths = arch.sizes[1:]
        self.acts = [np.empty((batch, w), dtype) for w in (widths if train else widths[:-1])]
        self.col = np.empty((batch, 1), dtype)
        if not train:
            return
        self.x = np.empty((batch, arch.sizes[0]), dtype)
        self.y = np.empty((batch, arch.sizes[-1]), dtype)
        self.grads = [np.empty((batch, w), dtype) for w in widths]  # dL/dz per layer
        self.masks = [np.empty((batch, w), bool) for w in widths[:-1]]
        self.ones = np.ones((1, batch), dtype)  # bias gradient as ones @ dz (a GEMV)
        self.h1 = np.empty((batch, widths[-1]), dtype)  # head scratch
        self.col2 = np.empty((batch, 1), dtype)


class NumpyRunner:
    """Hand-written numpy MLP/autoencoder with manual backprop and Gorgonia's RMSProp.

    Parameters live in one flat vector (W and b are views into it), and so do their gradients
    and the RMSProp cache, so the solver step is a handful of numpy calls per step.

    Example:
        >>> from bench.common import ARCHS, init_weights
        >>> arch = ARCHS["mlp"]
        >>> r = NumpyRunner(arch, np.float64, init_weights(arch, np.float64))
        >>> r.predict(np.zeros((3, 784)), 100).sum(axis=1).round(6).tolist()
        [1.0, 1.0, 1.0]
    """

    name = "numpy"

    def __init__(self, arch: Arch, dtype: np.dtype | type, weights: list[np.ndarray]) -> None:
        self.arch = arch
        self.dtype = np.dtype(dtype)
        _check_weights("NumpyRunner", arch, self.dtype, weights)
        total = sum(int(np.size(w)) for w in weights)
        self._flat = np.empty(total, self.dtype)
        self._gflat = np.zeros(total, self.dtype)
        self._cache = np.zeros(total, self.dtype)
        self._tmp = np.empty(total, self.dtype)
        self._params: list[np.ndarray] = []
        self._grads: list[np.ndarray] = []
        pos = 0
        for w in weights:
            n = int(np.size(w))
            view = self._flat[pos : pos + n].reshape(np.shape(w))
            view[...] = w
            self._params.append(view)
            self._grads.append(self._gflat[pos : pos + n].reshape(np.shape(w)))
            pos += n
        self.W = self._params[0::2]
        self.b = self._params[1::2]
        self.gW = self._grads[0::2]
        self.gb = self._grads[1::2]
        self._bufs: dict[int, _Buffers] = {}
        self._infer_bufs: dict[int, _Buffers] = {}
        one = self.dtype.type
        self._lr, self._rho, self._eps = one(LEARN_RATE), one(RHO), one(EPS)
        self._one_minus_rho = one(1.0 - RHO)

    def _buffers(self, batch: int) -> _Buffers:
        bufs = self._bufs.get(batch)
        if bufs is None:
            bufs = self._bufs[batch] = _Buffers(self.arch, self.dtype, batch)
        return bufs

    # -- forward and backward ------------------------------------------------------------------

    def _forward(self, bufs: _Buffers, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        a = x
        last = self.arch.n_layers - 1
        outs = bufs.acts if out is None else [*bufs.acts, out]
        for i, (w, b, z) in enumerate(zip(self.W, self.b, outs, strict=True)):
            np.matmul(a, w, out=z)
            z += b
            if i < last:
                np.maximum(z, 0, out=z)
            a = z
        return a  # logits

    def _head_softmax_ce(self, bufs: _Buffers, z: np.ndarray, y: np.ndarray) -> float:
        # loss = -mean_i sum_k y_ik (z_ik - lse_i); dz = (softmax(z) * sum_k y_ik - y) / batch.
        dz, sh, m, lse = bufs.grads[-1], bufs.h1, bufs.col, bufs.col2
        batch = z.shape[0]
        np.max(z, axis=1, keepdims=True, out=m)
        np.subtract(z, m, out=sh)
        np.exp(sh, out=dz)
        np.sum(dz, axis=1, keepdims=True, out=lse)
        dz /= lse  # softmax
        np.log(lse, out=lse)
        np.sum(y, axis=1, keepdims=True, out=m)  # row sums of y (1 for one-hot)
        loss = (float(np.vdot(m, lse)) - float(np.vdot(y, sh))) / batch
        dz *= m
        dz -= y
        dz *= self.dtype.type(1.0 / batch)
        return loss

    def _head_sigmoid_bce(self, bufs: _Buffers, z: np.ndarray, t: np.ndarray) -> float:
        # Per element: softplus(z) - t*z, with softplus(z) = max(z, 0) - log(sigmoid(|z|)) and
        # sigmoid(|z|) = max(s, 1 - s), s = sigmoid(z): one exp and one log per element, no
        # overflow past a harmless inf in exp(-z) (the caller silences it). dz = (s - t) / size.
        dz, u = bufs.grads[-1], bufs.h1
        size = z.size
        np.negative(z, out=dz)
        np.exp(dz, out=dz)
        dz += 1
        np.reciprocal(dz, out=dz)  # s
        np.subtract(1, dz, out=u)
        np.maximum(u, dz, out=u)
        np.log(u, out=u)
        log_sig_abs = float(u.sum())
        np.maximum(z, 0, out=u)
        loss = (float(u.sum()) - log_sig_abs - float(np.vdot(z, t))) / size
        dz -= t
        dz *= self.dtype.type(1.0 / size)
        return loss

    def loss_and_grads(self, x: np.ndarray, y: np.ndarray) -> tuple[float, list[np.ndarray]]:
        """Batch loss and gradients ``[dW1, db1, ...]`` at the current weights (no update).

        The gradient arrays are the runner's own buffers: copy them to keep them.

        Example:
            >>> loss, grads = runner.loss_and_grads(xb, yb)  # doctest: +SKIP
        """
        _check_batch("NumpyRunner.loss_and_grads", x, y, self.arch, self.dtype)
        bufs = self._buffers(x.shape[0])
        np.copyto(bufs.x, x)
        np.copyto(bufs.y, y)
        with np.errstate(over="ignore"):
            loss = self._step_grads(bufs, bufs.x, bufs.y)
        return loss, self._grads

    def _step_grads(self, bufs: _Buffers, x: np.ndarray, y: np.ndarray) -> float:
        z = self._forward(bufs, x)
        if self.arch.head == "softmax_ce":
            loss = self._head_softmax_ce(bufs, z, y)
        else:
            loss = self._head_sigmoid_bce(bufs, z, y)
        for i in range(self.arch.n_layers - 1, -1, -1):
            dz = bufs.grads[i]
            a_prev = x if i == 0 else bufs.acts[i - 1]
            np.matmul(a_prev.T, dz, out=self.gW[i])
            np.matmul(bufs.ones, dz, out=self.gb[i])
            if i > 0:
                d_prev = bufs.grads[i - 1]
                np.matmul(dz, self.W[i].T, out=d_prev)
                mask = bufs.masks[i - 1]
                np.greater(a_prev, 0, out=mask)
                np.multiply(d_prev, mask, out=d_prev)
        return loss

    def _rmsprop(self) -> None:
        g, c, t = self._gflat, self._cache, self._tmp
        np.multiply(g, g, out=t)
        t *= self._one_minus_rho
        c *= self._rho
        c += t
        np.add(c, self._eps, out=t)
        np.sqrt(t, out=t)
        np.divide(g, t, out=t)
        t *= self._lr
        self._flat -= t

    # -- Runner API ----------------------------------------------------------------------------

    def train_epoch(self, x: np.ndarray, y: np.ndarray, order: np.ndarray, batch: int) -> float:
        """One epoch of RMSProp steps over ``x[order]`` in full batches; the mean batch loss."""
        same = y is x  # autoencoder: gather once
        _check_batch("NumpyRunner.train_epoch", x, None if same else y, self.arch, self.dtype)
        bufs = self._buffers(batch)
        steps = len(order) // batch
        if steps == 0:
            raise ValueError(f"NumpyRunner.train_epoch: {len(order)} samples < one batch ({batch})")
        order = np.asarray(order)
        if order.size and (order.min() < 0 or order.max() >= len(x)):
            raise ValueError(
                f"NumpyRunner.train_epoch: order holds indices outside 0..{len(x) - 1}"
            )
        total = 0.0
        with np.errstate(over="ignore"):
            for s in range(steps):
                idx = order[s * batch : (s + 1) * batch]
                # mode="clip" skips take's buffered bounds check; the order was checked above.
                np.take(x, idx, axis=0, out=bufs.x, mode="clip")
                if same:
                    yb = bufs.x
                else:
                    np.take(y, idx, axis=0, out=bufs.y, mode="clip")
                    yb = bufs.y
                total += self._step_grads(bufs, bufs.x, yb)
                self._rmsprop()
        return total / steps

    def predict(self, x: np.ndarray, batch: int) -> np.ndarray:
        """Softmax probabilities (MLP) or sigmoid outputs (autoencoder), ``(n, out)``."""
        _check_batch("NumpyRunner.predict", x, None, self.arch, self.dtype)
        out = np.empty((x.shape[0], self.arch.sizes[-1]), self.dtype)
        with np.errstate(over="ignore"):
            for s in range(0, x.shape[0], batch):
                xb = x[s : s + batch]
                bufs = self._infer_bufs.get(xb.shape[0])
                if bufs is None:
                    bufs = _Buffers(self.arch, self.dtype, xb.shape[0], train=False)
                    self._infer_bufs[xb.shape[0]] = bufs
                o = self._forward(bufs, xb, out[s : s + batch])  # logits, in place
                if self.arch.head == "softmax_ce":
                    np.max(o, axis=1, keepdims=True, out=bufs.col)
                    o -= bufs.col
                    np.exp(o, out=o)
                    np.sum(o, axis=1, keepdims=True, out=bufs.col)
                    o /= bufs.col
                else:
                    np.negative(o, out=o)
                    np.exp(o, out=o)
                    o += 1
                    np.reciprocal(o, out=o)
        return out

    def weights(self) -> list[np.ndarray]:
        """Copies of ``[W1, b1, W2, b2, ...]``."""
        return [p.copy() for p in self._params]


# ---------------------------------------------------------------------------------------------
# (d) PyTorch CPU eager


def torch_available() -> bool:
    """True when ``import torch`` works (the torch baseline is optional)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _import_torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise ImportError(
            "the PyTorch baseline needs torch: `.venv/bin/pip install torch==2.13.0` "
            "(pinned: an unpinned install pulls a multi-GB CUDA build)"
        ) from exc
    return torch


class TorchRunner:
    """The same model in PyTorch eager on the CPU: ``addmm``, ``relu``, autograd, fused losses.

    Losses are ``F.cross_entropy`` with probability targets (``-mean(sum(y*log_softmax(z), 1))``)
    and ``F.binary_cross_entropy_with_logits`` (mean over batch and outputs). RMSProp is
    Gorgonia's, eps inside the square root, in place under ``torch.no_grad()``. Threads are
    torch's default (one per core).

    Example:
        >>> from bench.common import ARCHS, init_weights
        >>> arch = ARCHS["ae"]
        >>> r = TorchRunner(arch, np.float32, init_weights(arch, np.float32))  # doctest: +SKIP
        >>> r.predict(np.zeros((2, 784), np.float32), 100).shape  # doctest: +SKIP
        (2, 784)
    """

    name = "torch"

    def __init__(self, arch: Arch, dtype: np.dtype | type, weights: list[np.ndarray]) -> None:
        torch = _import_torch()
        self._torch = torch
        self._F = torch.nn.functional
        self.arch = arch
        self.dtype = np.dtype(dtype)
        _check_weights("TorchRunner", arch, self.dtype, weights)
        self._params = [
            torch.tensor(np.asarray(w, self.dtype)).requires_grad_(True) for w in weights
        ]
        self._cache = [torch.zeros_like(p) for p in self._params]
        self._tmp = [torch.empty_like(p) for p in self._params]

    def _logits(self, x: Any) -> Any:
        torch = self._torch
        a = x
        last = self.arch.n_layers - 1
        for i in range(self.arch.n_layers):
            a = torch.addmm(self._params[2 * i + 1], a, self._params[2 * i])
            if i < last:
                a = torch.relu(a)
        return a

    def _loss(self, z: Any, t: Any) -> Any:
        if self.arch.head == "softmax_ce":
            return self._F.cross_entropy(z, t)
        return self._F.binary_cross_entropy_with_logits(z, t)

    def _rmsprop(self) -> None:
        for p, c, t in zip(self._params, self._cache, self._tmp, strict=True):
            g = p.grad
            c.mul_(RHO).addcmul_(g, g, value=1.0 - RHO)
            self._torch.add(c, EPS, out=t).sqrt_()
            p.addcdiv_(g, t, value=-LEARN_RATE)

    def train_epoch(self, x: np.ndarray, y: np.ndarray, order: np.ndarray, batch: int) -> float:
        """One epoch of RMSProp steps over ``x[order]`` in full batches; the mean batch loss."""
        torch = self._torch
        same = y is x
        _check_batch("TorchRunner.train_epoch", x, None if same else y, self.arch, self.dtype)
        steps = len(order) // batch
        if steps == 0:
            raise ValueError(f"TorchRunner.train_epoch: {len(order)} samples < one batch ({batch})")
        xt = torch.from_numpy(x)
        yt = xt if same else torch.from_numpy(y)
        idx = torch.from_numpy(np.ascontiguousarray(order, dtype=np.int64))
        total = torch.zeros((), dtype=torch.float64)
        for s in range(steps):
            i = idx[s * batch : (s + 1) * batch]
            xb = xt.index_select(0, i)
            yb = xb if same else yt.index_select(0, i)
            loss = self._loss(self._logits(xb), yb)
            for p in self._params:
                p.grad = None
            loss.backward()
            with torch.no_grad():
                self._rmsprop()
                total += loss
        return float(total.item()) / steps

    def predict(self, x: np.ndarray, batch: int) -> np.ndarray:
        """Softmax probabilities (MLP) or sigmoid outputs (autoencoder), ``(n, out)``."""
        torch = self._torch
        _check_batch("TorchRunner.predict", x, None, self.arch, self.dtype)
        xt = torch.from_numpy(x)
        out = torch.empty((x.shape[0], self.arch.sizes[-1]), dtype=xt.dtype)
        with torch.inference_mode():
            for s in range(0, x.shape[0], batch):
                z = self._logits(xt[s : s + batch])
                if self.arch.head == "softmax_ce":
                    torch.softmax(z, dim=1, out=out[s : s + batch])
                else:
                    torch.sigmoid(z, out=out[s : s + batch])
        return out.numpy()

    def weights(self) -> list[np.ndarray]:
        """Copies of ``[W1, b1, W2, b2, ...]`` as numpy arrays."""
        return [p.detach().numpy().copy() for p in self._params]


# ---------------------------------------------------------------------------------------------
# GEMMs alone


def gemm_epoch_times(
    arch: Arch,
    dtype: np.dtype | type,
    n: int,
    batch: int = 100,
    *,
    repeats: int = 3,
    seed: int = 0,
) -> list[float]:
    """Seconds of each of ``repeats`` epochs of only the matrix products of training.

    Per step, :func:`bench.common.gemm_shapes`: ``a @ W`` per layer, ``a.T @ dz`` per layer and
    ``dz @ W.T`` for all layers but the first, with ``.T`` as views, as in training. ``n // batch``
    steps make an epoch. Nothing else (no bias, activation, loss, solver, gather). One untimed
    epoch first warms caches and BLAS threads.

    Example:
        >>> from bench.common import ARCHS
        >>> len(gemm_epoch_times(ARCHS["mlp"], np.float32, 1000, repeats=2))
        2
    """
    rng = np.random.default_rng(seed)
    calls = [gemm_operands(role, shape, dtype, rng) for role, shape in gemm_shapes(arch, batch)]
    steps = n // batch
    times = []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        for _ in range(steps):
            for a, b, c in calls:
                np.matmul(a, b, out=c)
        times.append(time.perf_counter() - t0)
    return times[1:]


def time_gemms(
    arch: Arch,
    dtype: np.dtype | type,
    n: int,
    batch: int = 100,
    *,
    repeats: int = 3,
    seed: int = 0,
) -> float:
    """Median of :func:`gemm_epoch_times`: seconds per epoch of the GEMMs alone (the floor).

    Example:
        >>> from bench.common import ARCHS
        >>> time_gemms(ARCHS["mlp"], np.float32, 60_000)  # doctest: +SKIP
        0.45
    """
    return median(gemm_epoch_times(arch, dtype, n, batch, repeats=repeats, seed=seed))
