"""Where a training step's time goes in the tape machine, per workload and kernel backend.

From outside the library: the runner of ``bench/graphcore_runner.py`` or
``bench/conv_runners.py`` is built and run once (the plan compiles), then every kernel of
``vm.plan.steps`` is wrapped in a timer. Steps alternate between the wrapped tape and the
original one: the wrapped steps give each kernel's time, the original ones the true
``run_all`` time, so ``run_all`` minus the sum of its kernels is the machine's own cost per
run (the Python loop over the steps, binding inputs, publishing values). Around ``run_all``
the batch gather and ``solver.step`` are timed too. Medians over the steps (a shared
machine's slow moments would dominate means). The clock is this thread's CPU time
(``--clock cpu``, the default: BLAS is limited to one thread, so all the work is on it, and
other processes on a shared machine barely disturb it) or the wall clock (``--clock wall``).

Kernels are named from their closures' ``__qualname__`` (an accumulation into ``w.grad``
by the kernel it wraps) and grouped: GEMM (``gemm_into`` and the convolution products, which
include the copy of the (Cout, N, P) product into NCHW), im2col/col2im, the convolutions a
plan runs without columns (direct loops or Winograd: staging, forward and both gradients),
elementwise (bias,
ReLU and its gradient, dropout, and the plan's fused steps: bias and activation, the ReLU
gradient with the bias gradient), pooling, loss (value and gradient), gradient copies.

Then kernel-alone measurements at the same shapes, to size the changes ``bench/SPEED-PLAN.md``
proposes: the GEMMs alone; a bias add and ReLU as two numpy passes against one fused numba
loop; RMSProp as numpy passes over one flat arena against one numba loop; the convolution's
GEMM plus NCHW copy against a batched GEMM writing NCHW directly; and PyTorch's own step.

    .venv/bin/python bench/profile_steps.py                  # everything, writes bench/PROFILE.md
    .venv/bin/python bench/profile_steps.py --arch mlp --steps 200 --no-write

Example:
    >>> from bench.profile_steps import category
    >>> category("gemm_into.<locals>.run_cblas (100x784 @ 784x250)")
    'GEMM'
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import graphcore as gc  # noqa: E402
from bench.common import (  # noqa: E402
    EPS,
    LEARN_RATE,
    RHO,
    ConvArch,
    epoch_order,
    gemm_operands,
    gemm_shapes,
    get_arch,
    init_weights,
    load_data,
)

WORKLOADS = {"mlp": 100, "ae": 100, "convnet": 32, "resnet": 32}  # name -> batch
CATEGORIES = (
    "GEMM",
    "bias grad (GEMV)",
    "im2col/col2im",
    "conv, no columns",
    "elementwise",
    "pooling",
    "loss",
    "grad copies",
    "other",
)
# cpu: this thread's CPU time, which a shared machine's other processes barely disturb (every
# library runs on this one thread: BLAS limited to one, numba serial, torch set to one thread)
CLOCKS = {"cpu": time.thread_time, "wall": time.perf_counter}
_clock = time.perf_counter


def category(name: str) -> str:
    """The group of a kernel, from its closure's qualified name (see the module docs).

    Example:
        >>> category("Im2ColOp.kernel.<locals>.run"), category("_d_relu.<locals>.<lambda>")
        ('im2col/col2im', 'elementwise')
    """
    if "gemm_into" in name and ("(1x" in name or "x1)" in name):
        return "bias grad (GEMV)"
    rules = (
        ("GEMM", ("gemm_into", "Conv2dOp", "Conv2dColsGradOp", "Conv2dFilterGradOp")),
        ("im2col/col2im", ("Im2ColOp", "Col2ImOp", "ConvOutToColsOp")),
        ("conv, no columns", ("fused_conv_", "stage_input", "stage_grad", "stage_filter")),
        ("loss", ("CrossEntropy",)),
        ("pooling", ("Pool2D",)),
        ("grad copies", ("accumulate.",)),
        ("elementwise", ("BinaryOp", "_relu", "_d_relu", "Dropout", "Unary", "_sigmoid",
                         "fused_", "bias_add")),
    )
    for cat, keys in rules:
        if any(k in name for k in keys):
            return cat
    return "other"


def kernel_name(fn: Callable[[], Any]) -> str:
    """A step's name: its qualified name, or for an accumulation into ``w.grad``
    (``Slot.into_grad``) that of the kernel it runs, marked ``-> w.grad``; a BLAS product
    with its shapes, ``(m x k @ k x n)``."""
    name = getattr(fn, "__qualname__", type(fn).__name__)
    if name.startswith("Slot.into_grad") and fn.__closure__:
        inner = [c.cell_contents for c in fn.__closure__ if callable(c.cell_contents)]
        if inner:
            return kernel_name(inner[0]) + " -> w.grad"
    keep = getattr(fn, "keep", None)  # gemm_into's closure keeps its operands (a, b, c)
    if isinstance(keep, tuple) and len(keep) == 3:
        (m, k), n = keep[0].shape, keep[1].shape[1]
        name += f" ({m}x{k} @ {k}x{n})"
    return name


def _short(name: str) -> str:
    return name.replace(".<locals>", "").replace(".kernel", "")


# ---------------------------------------------------------------------------------------------
# the step profile


def _runner(arch_name: str, numba: bool) -> Any:
    arch = get_arch(arch_name)
    gc.accel.set_enabled(numba)  # a plan keeps the backend it was compiled with
    w = init_weights(arch, np.float32)
    if isinstance(arch, ConvArch):
        from bench.conv_runners import GraphcoreConvRunner

        return GraphcoreConvRunner(arch, np.float32, w)
    from bench.graphcore_runner import GraphcoreRunner

    return GraphcoreRunner(arch, np.float32, w)


def profile(arch_name: str, numba: bool, steps: int, x: np.ndarray, y: np.ndarray) -> dict:
    """Per-kernel, gather, ``run_all``, machine and solver times (median seconds per step)
    of the tape-machine runner on ``arch_name``; see the module docs."""
    batch = WORKLOADS[arch_name]
    r = _runner(arch_name, numba)
    n = (len(x) // batch) * batch
    r.train_epoch(x, y, epoch_order(len(x), 0)[:batch], batch)  # compile the plan
    plan = r.vm.plan
    original = list(plan.steps)
    names = [kernel_name(fn) for fn in original]
    per_kernel = np.zeros(len(original))

    def timed(i: int, fn: Callable[[], Any]) -> Callable[[], None]:
        def run() -> None:
            t = _clock()
            fn()
            per_kernel[i] += _clock() - t

        return run

    wrapped = [timed(i, fn) for i, fn in enumerate(original)]
    xv = r.x.value.reshape(batch, -1)
    tv, xv_own = r.t.value, r.x.value
    order = epoch_order(len(x), 1)
    kernels: list[np.ndarray] = []
    rows: dict[str, list[float]] = {"gather": [], "run_all": [], "solver": [], "step": []}
    warm = 10
    with np.errstate(over="ignore"):
        for s in range(2 * steps + warm):
            idx = order[(s * batch) % n : (s * batch) % n + batch]
            use_wrapped = s % 2 == 1
            plan.steps[:] = wrapped if use_wrapped else original
            per_kernel[:] = 0.0
            t0 = _clock()
            np.take(x, idx, axis=0, out=xv, mode="clip")
            if y is x:  # the autoencoder: its targets copied from the gathered inputs
                np.copyto(tv, xv_own)
            else:
                np.take(y, idx, axis=0, out=tv, mode="clip")
            t1 = _clock()
            r.vm.run_all()
            t2 = _clock()
            r.solver.step(r.vgs)
            t3 = _clock()
            if s < warm:
                continue
            if use_wrapped:
                kernels.append(per_kernel.copy())
            else:
                rows["gather"].append(t1 - t0)
                rows["run_all"].append(t2 - t1)
                rows["solver"].append(t3 - t2)
                rows["step"].append(t3 - t0)
    plan.steps[:] = original
    k = np.median(np.array(kernels), axis=0)
    med = {key: statistics.median(v) for key, v in rows.items()}
    cats = dict.fromkeys(CATEGORIES, 0.0)
    for name, t in zip(names, k, strict=True):
        cats[category(name)] += float(t)
    med["kernels"] = float(k.sum())
    med["machine"] = med["run_all"] - med["kernels"]
    return {
        "arch": arch_name,
        "numba": numba,
        "n_steps": len(original),
        "names": names,
        "kernel": [float(t) for t in k],
        "cats": cats,
        **med,
    }


# ---------------------------------------------------------------------------------------------
# kernel-alone measurements


def _median_time(fn: Callable[[], Any], repeats: int = 200, warm: int = 5) -> float:
    for _ in range(warm):
        fn()
    ts = []
    for _ in range(repeats):
        t = _clock()
        fn()
        ts.append(_clock() - t)
    return statistics.median(ts)


def gemms_alone(arch_name: str, repeats: int) -> float:
    """Median seconds of one step's GEMMs alone (``gemm_shapes``, training's layouts)."""
    rng = np.random.default_rng(0)
    calls = [
        gemm_operands(role, shape, np.float32, rng)
        for role, shape in gemm_shapes(get_arch(arch_name), WORKLOADS[arch_name])
    ]

    def run() -> None:
        for a, b, c in calls:
            np.matmul(a, b, out=c)

    return _median_time(run, repeats)


def _numba() -> Any:
    try:
        import numba
    except ImportError:
        return None
    return numba


def epilogue(repeats: int) -> dict[str, float]:
    """Bias add and ReLU on the MLP's first layer (100, 250): two numpy passes, one fused
    numba loop, and the GEMM they follow, in microseconds."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((100, 784)).astype(np.float32)
    w = rng.standard_normal((784, 250)).astype(np.float32)
    b = rng.standard_normal((1, 250)).astype(np.float32)
    z = np.empty((100, 250), np.float32)

    def two_passes() -> None:
        np.add(z, b, out=z)
        np.maximum(z, 0, out=z)

    out = {
        "gemm (100x784 @ 784x250)": _median_time(lambda: np.matmul(a, w, out=z), repeats),
        "bias + ReLU, numpy, 2 passes": _median_time(two_passes, repeats),
    }
    nb = _numba()
    if nb is not None:

        @nb.njit(error_model="numpy")
        def bias_relu(z: np.ndarray, b: np.ndarray) -> None:  # pragma: no cover - numba
            m, n = z.shape
            for i in range(m):
                for j in range(n):
                    v = z[i, j] + b[0, j]
                    z[i, j] = v if v > 0 else 0.0

        out["bias + ReLU, numba, 1 loop"] = _median_time(lambda: bias_relu(z, b), repeats)
    return {k: v * 1e6 for k, v in out.items()}


def solver_arena(arch_name: str, repeats: int) -> dict[str, float]:
    """RMSProp over all of the workload's parameters: the library's ``solver.step`` on
    graph nodes, numpy passes over one flat arena (hand numpy's), one numba loop over it;
    microseconds."""
    arch = get_arch(arch_name)
    ws = init_weights(arch, np.float32)
    total = sum(w.size for w in ws)
    rng = np.random.default_rng(0)
    p = rng.standard_normal(total).astype(np.float32)
    g = rng.standard_normal(total).astype(np.float32) * 1e-3
    c = np.zeros(total, np.float32)
    t = np.empty(total, np.float32)
    one = np.float32

    def numpy_passes() -> None:  # hand numpy's nine passes
        np.multiply(g, g, out=t)
        np.multiply(t, one(1 - RHO), out=t)
        np.multiply(c, one(RHO), out=c)
        np.add(c, t, out=c)
        np.add(c, one(EPS), out=t)
        np.sqrt(t, out=t)
        np.divide(g, t, out=t)
        np.multiply(t, one(LEARN_RATE), out=t)
        np.subtract(p, t, out=p)

    out = {"numpy passes, one flat arena": _median_time(numpy_passes, repeats)}
    nb = _numba()
    if nb is not None:

        @nb.njit(error_model="numpy")  # no zero-division checks: SIMD
        def rmsprop(p: np.ndarray, g: np.ndarray, c: np.ndarray) -> None:  # pragma: no cover
            for i in range(p.size):
                gi = g[i]
                ci = np.float32(RHO) * c[i] + np.float32(1 - RHO) * gi * gi
                c[i] = ci
                p[i] -= np.float32(LEARN_RATE) * gi / np.sqrt(ci + np.float32(EPS))

        out["numba, one loop over the arena"] = _median_time(lambda: rmsprop(p, g, c), repeats)
    return {k: v * 1e6 for k, v in out.items()} | {"parameters": float(total)}


def conv_extras(repeats: int) -> dict[str, float]:
    """The convnet's first pooling and dropout, (32, 32, 28, 28) -> (32, 32, 14, 14): a 2x2
    max-pool forward that keeps the argmax and its backward as two numba loops; the dropout
    mask of the pooled map drawn as float32 and compared; a copy of the second layer's
    columns (7.2 MB, what one memory pass of im2col or col2im costs); microseconds."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 32, 28, 28)).astype(np.float32)
    y = np.empty((32, 32, 14, 14), np.float32)
    arg = np.empty((32, 32, 14, 14), np.uint8)
    gy = rng.standard_normal(y.shape).astype(np.float32)
    gx = np.empty_like(x)
    u = np.empty(y.shape, np.float32)
    mask = np.empty(y.shape, np.float32)
    gen = np.random.default_rng(1)
    cols = rng.standard_normal((288, 32 * 196)).astype(np.float32)
    dst = np.empty_like(cols)

    def dropout_mask() -> None:
        gen.random(dtype=np.float32, out=u)
        np.greater_equal(u, np.float32(0.2), out=mask)

    out = {
        "dropout mask, float32 draw + compare (32x32x14x14)": _median_time(dropout_mask, repeats),
        "copy of 7.2 MB (one memory pass over conv2's columns)": _median_time(
            lambda: np.copyto(dst, cols), repeats
        ),
    }
    nb = _numba()
    if nb is not None:

        @nb.njit(error_model="numpy")
        def pool_fwd(x: np.ndarray, y: np.ndarray, arg: np.ndarray) -> None:  # pragma: no cover
            n, c, h, w = y.shape
            for a in range(n):
                for b in range(c):
                    for i in range(h):
                        for j in range(w):
                            best, k = x[a, b, 2 * i, 2 * j], 0
                            for t in range(1, 4):
                                v = x[a, b, 2 * i + t // 2, 2 * j + t % 2]
                                if v > best:
                                    best, k = v, t
                            y[a, b, i, j] = best
                            arg[a, b, i, j] = k

        @nb.njit(error_model="numpy")
        def pool_bwd(gy: np.ndarray, arg: np.ndarray, gx: np.ndarray) -> None:  # pragma: no cover
            n, c, h, w = gy.shape
            for a in range(n):
                for b in range(c):
                    for i in range(h):
                        for j in range(w):
                            k = arg[a, b, i, j]
                            for t in range(4):
                                gx[a, b, 2 * i + t // 2, 2 * j + t % 2] = (
                                    gy[a, b, i, j] if t == k else 0.0
                                )

        out["2x2 max-pool forward with argmax, numba"] = _median_time(
            lambda: pool_fwd(x, y, arg), repeats
        )
        out["2x2 max-pool backward from argmax, numba"] = _median_time(
            lambda: pool_bwd(gy, arg, gx), repeats
        )
    return {k: v * 1e6 for k, v in out.items()}


def predict_batch1(calls: int) -> dict[str, float]:
    """The MLP's ``predict`` at batch 1, microseconds per call: the runner's (the input lent
    with ``Let(copy=False)``, the output written by ``run_all(into=...)``), the same with the
    input copied by ``Let`` and the output read from the node, and hand numpy's."""
    from bench.baselines import NumpyRunner
    from bench.graphcore_runner import GraphcoreRunner

    arch = get_arch("mlp")
    w = init_weights(arch, np.float32)
    r = GraphcoreRunner(arch, np.float32, w)
    h = NumpyRunner(arch, np.float32, w)
    x = np.random.default_rng(0).random((calls, 784)).astype(np.float32)
    res = np.empty((calls, 10), np.float32)

    def copying() -> None:
        for s in range(calls):
            gc.Let(r.x, x[s : s + 1])
            r.pred_vm.run_all()
            res[s] = r.out.value[0]

    out = {
        "graphcore predict (lent input, into=)": _median_time(lambda: r.predict(x, 1), 5, 1),
        "graphcore, Let copies, value read": _median_time(copying, 5, 1),
        "hand numpy predict": _median_time(lambda: h.predict(x, 1), 5, 1),
    }
    return {k: v / calls * 1e6 for k, v in out.items()}


def conv_orientations(repeats: int) -> dict[str, float]:
    """The resnet's 16 -> 16 convolution at 28x28, batch 32, forward: the product as the
    tape runs it (``W @ cols``), with the long dimension first (``cols.T @ W.T``, NHWC-like),
    batched per image, and PyTorch's ``conv2d`` forward and forward+backward (one thread);
    microseconds, warm caches."""
    rng = np.random.default_rng(0)
    n, cin, cout, side = 32, 16, 16, 28
    k, p = cin * 9, side * side
    w = rng.standard_normal((cout, k)).astype(np.float32)
    cols = rng.standard_normal((k, n * p)).astype(np.float32)
    out = np.empty((cout, n * p), np.float32)
    cols_t = np.ascontiguousarray(cols.T)
    out_t = np.empty((n * p, cout), np.float32)
    bcols = rng.standard_normal((n, k, p)).astype(np.float32)
    bout = np.empty((n, cout, p), np.float32)
    res = {
        "W @ cols (16x144 @ 144x25088)": _median_time(lambda: np.matmul(w, cols, out=out),
                                                      repeats),
        "cols.T @ W.T (25088x144 @ 144x16)": _median_time(
            lambda: np.matmul(cols_t, w.T, out=out_t), repeats
        ),
        "batched W @ cols[n] (32 x 16x144 @ 144x784)": _median_time(
            lambda: np.matmul(w, bcols, out=bout), repeats
        ),
    }
    try:
        import torch
    except ImportError:
        return {key: v * 1e6 for key, v in res.items()}
    torch.set_num_threads(1)
    x = torch.randn(n, cin, side, side)
    wt = torch.randn(cout, cin, 3, 3)
    xg, wg = x.clone().requires_grad_(True), wt.clone().requires_grad_(True)

    def fwd_bwd() -> None:
        y = torch.nn.functional.conv2d(xg, wg, padding=1)
        y.backward(torch.ones_like(y))

    res["PyTorch conv2d forward"] = _median_time(
        lambda: torch.nn.functional.conv2d(x, wt, padding=1), repeats
    )
    res["PyTorch conv2d forward + backward"] = _median_time(fwd_bwd, repeats)
    return {key: v * 1e6 for key, v in res.items()}


def conv_layout(repeats: int) -> dict[str, float]:
    """The convnet's second convolution (32 -> 64 channels, 14x14, batch 32): the tape's
    GEMM on (K, N*P) columns plus the copy to NCHW, against a batched GEMM over (N, K, P)
    columns that writes NCHW directly; microseconds."""
    rng = np.random.default_rng(0)
    n, cin, cout, side = 32, 32, 64, 14
    k, p = cin * 9, side * side
    w = rng.standard_normal((cout, k)).astype(np.float32)
    cols = rng.standard_normal((k, n * p)).astype(np.float32)
    tmp = np.empty((cout, n * p), np.float32)
    out = np.empty((n, cout, side, side), np.float32)
    src = tmp.reshape(cout, n, p).transpose(1, 0, 2)
    dst = out.reshape(n, cout, p)
    bcols = rng.standard_normal((n, k, p)).astype(np.float32)

    def gemm_then_copy() -> None:
        np.matmul(w, cols, out=tmp)
        np.copyto(dst, src)

    res = {
        "GEMM alone (64x288 @ 288x6272)": _median_time(lambda: np.matmul(w, cols, out=tmp),
                                                       repeats),
        "GEMM + copy to NCHW (the tape's Conv2d)": _median_time(gemm_then_copy, repeats),
        "batched GEMM (N, K, P) -> NCHW": _median_time(lambda: np.matmul(w, bcols, out=dst),
                                                      repeats),
    }
    return {key: v * 1e6 for key, v in res.items()}


def torch_step(arch_name: str, x: np.ndarray, y: np.ndarray, steps: int) -> float | None:
    """Median seconds of one PyTorch eager training step on the workload, or None."""
    try:
        import torch
    except ImportError:
        return None
    arch = get_arch(arch_name)
    batch = WORKLOADS[arch_name]
    if isinstance(arch, ConvArch):
        from bench.conv_runners import TorchConvRunner as T
    else:
        from bench.baselines import TorchRunner as T
    if _clock is time.thread_time:
        torch.set_num_threads(1)  # its work on this thread, where the clock counts
    r = T(arch, np.float32, init_weights(arch, np.float32))
    order = epoch_order(len(x), 0)
    ts = []
    for s in range(steps + 5):
        idx = order[s * batch % (len(x) - batch) :][:batch]
        t = _clock()
        r.train_epoch(x, y, idx, batch)
        if s >= 5:
            ts.append(_clock() - t)
    return statistics.median(ts)


# ---------------------------------------------------------------------------------------------
# report


def _us(v: float) -> str:
    return f"{v * 1e6:.0f}"


def report(profiles: list[dict], extras: dict[str, Any]) -> str:
    """The markdown of ``bench/PROFILE.md``."""
    lines = [
        "| workload | backend | step | gather | run_all | kernels | machine | solver | "
        + " | ".join(CATEGORIES) + " | GEMMs alone | PyTorch step |",
        "|---" * (10 + len(CATEGORIES)) + "|",
    ]
    for p in profiles:
        alone = extras["gemms"].get(p["arch"])
        torch_t = extras["torch"].get(p["arch"])
        lines.append(
            f"| {p['arch']} | {'numba' if p['numba'] else 'numpy'} | {_us(p['step'])} | "
            f"{_us(p['gather'])} | {_us(p['run_all'])} | {_us(p['kernels'])} | "
            f"{_us(p['machine'])} ({p['n_steps']} steps) | {_us(p['solver'])} | "
            + " | ".join(_us(p["cats"][c]) for c in CATEGORIES)
            + f" | {'-' if alone is None else _us(alone)} | "
            f"{'-' if torch_t is None else _us(torch_t)} |"
        )
    out = ["## Per step, microseconds (medians)", "", *lines, ""]
    out += ["## Every kernel of the tape, microseconds (medians)", ""]
    for p in profiles:
        out.append(f"### {p['arch']}, {'numba' if p['numba'] else 'numpy only'}")
        out.append("")
        out.append("| # | kernel | group | us |")
        out.append("|---|---|---|---|")
        for i, (name, t) in enumerate(zip(p["names"], p["kernel"], strict=True)):
            out.append(f"| {i} | `{_short(name)}` | {category(name)} | {t * 1e6:.0f} |")
        out.append("")
    out += ["## Kernels alone, microseconds (medians)", ""]
    for title, vals in extras["alone"].items():
        out.append(f"{title}:")
        out.append("")
        for k, v in vals.items():
            out.append(f"- {k}: {v:.0f}")
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", default="mlp,ae,convnet,resnet")
    ap.add_argument("--steps", type=int, default=0, help="steps per profile (mlp/ae 300, conv 30)")
    ap.add_argument("--no-write", action="store_true", help="do not write bench/PROFILE.md")
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="cpu",
                    help="cpu: this thread's CPU time, BLAS on one thread (default); wall")
    args = ap.parse_args(argv)
    archs = [a.strip() for a in args.arch.split(",") if a.strip()]
    global _clock
    _clock = CLOCKS[args.clock]
    limits = None
    if args.clock == "cpu":
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            print("threadpoolctl missing: set OPENBLAS_NUM_THREADS=1 for --clock cpu",
                  file=sys.stderr)
        else:
            limits = threadpool_limits(1)  # kept for the whole run
    data = load_data(6000, np.float32)
    was = gc.accel.enabled()
    profiles, extras = [], {"gemms": {}, "torch": {}, "alone": {}}
    try:
        for a in archs:
            steps = args.steps or (30 if isinstance(get_arch(a), ConvArch) else 300)
            x, y = data.x_train, data.targets(get_arch(a))
            for numba in (True, False) if gc.accel.available() else (False,):
                profiles.append(profile(a, numba, steps, x, y))
                p = profiles[-1]
                print(
                    f"{a} {'numba' if numba else 'numpy'}: step {_us(p['step'])} us, run_all "
                    f"{_us(p['run_all'])}, kernels {_us(p['kernels'])}, solver "
                    f"{_us(p['solver'])}",
                    file=sys.stderr,
                )
            extras["gemms"][a] = gemms_alone(a, 50 if isinstance(get_arch(a), ConvArch) else 300)
            extras["torch"][a] = torch_step(a, x, y, steps)
        gc.accel.set_enabled(True)
        extras["alone"]["bias + ReLU after the MLP's first product"] = epilogue(1000)
        for a in archs:
            extras["alone"][f"RMSProp over the {a}'s parameters"] = solver_arena(a, 300)
        if any(isinstance(get_arch(a), ConvArch) for a in archs):
            extras["alone"]["the convnet's second convolution, forward"] = conv_layout(100)
            extras["alone"]["the convnet's first pooling and dropout"] = conv_extras(100)
            extras["alone"]["the resnet's 16 -> 16 convolution at 28x28"] = conv_orientations(30)
        extras["alone"]["the MLP's predict at batch 1, per call"] = predict_batch1(1000)
    finally:
        gc.accel.set_enabled(was)
    threads = "1" if limits is not None else os.environ.get("OPENBLAS_NUM_THREADS", "default")
    clock = "this thread's CPU time" if args.clock == "cpu" else "wall clock"
    text = (
        "# Where a training step's time goes\n\n"
        f"Written by `bench/profile_steps.py` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
        f"; float32; BLAS threads {threads}; {clock}). `machine`: `run_all` minus its kernels "
        "(the Python loop over the steps, input binding, publishing); `solver`: "
        "`solver.step`; `gather`: the batch copied into the input buffers. Groups: see the "
        "script's docstring. Medians of alternating steps, so the columns do not add up "
        "exactly.\n\n" + report(profiles, extras) + "\n"
    )
    print(text)
    if not args.no_write:
        (ROOT / "bench" / "PROFILE.md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
