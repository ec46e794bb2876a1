"""Prototype: a numba direct convolution for thin 3x3 layers, against the im2col path and PyTorch.

The question (SPEED-PLAN section 6): at 16-32 channels the im2col products are thin and their
column buffers come from memory; does a compiled direct convolution get near oneDNN's?

Layout trick. With stride 1, output pixel (y, x) of a 3x3 convolution over a zero-padded
plane of width ``wp`` reads the padded pixels ``q + i*wp + j`` where ``q = y*wp + x``. So the
whole image is one flat loop over ``q`` (``wp - wo`` wasted columns a row: 7% at 28x28, 12% at
14x14), which LLVM vectorises over ``q`` with no row tails. Each loop step loads the nine
shifted inputs once and feeds them to a block of ``CB`` output channels whose 9*CB weights
stay in registers (broadcasts), accumulating into a per-block scratch that stays in L1.

- forward: the padded input ``xp`` and the weights as (Cin, Cout, 9) -> ``out`` (NCHW);
- input gradient: the same loop over the padded upstream gradient with the filter flipped and
  its channel axes swapped (a "full" convolution, stride 1);
- filter gradient: per (input channel, block of output channels), 9*CB dot products over
  ``q`` (reductions LLVM vectorises with reassociation), reading the forward's padded input
  and the upstream gradient on the padded-width grid (zeros in the wasted columns).

The kernels are now the library's (``graphcore/kernels/compiled/direct_conv.py``, written out
tap by tap so that numba's disk cache keeps them), and plans run them for thin layers
(``graphcore/machines/conv_fusion.py``); this script measures them alone. Stride 1, 3x3,
padding 0 to 2.

Run (CPU time, one thread, medians)::

    PYTHONPATH=$PWD /tmp/benchvenv/bin/python bench/direct_conv.py [--reps 20] [--dtype float32]

It checks the three products against im2col (float64 and float32) and prints, for each layer
of the resnet and the convnet (batch 32): PyTorch's forward + backward, graphcore's current
``Conv2d`` forward + backward (a one-layer graph on the tape machine, numba kernels), and the
direct kernels' forward, input gradient and filter gradient (with their padding copies).

Results (2026-12-03 16:32 UTC, load 11-12 on the 2 cores, float32, CPU us, medians of 20;
the first layer needs no input gradient)::

    layer           torch  graphcore (im2col)  direct         direct: fwd   dx    dw
  1->16  28x28  2072  826(0.40x)  407(0.20x)  176  -  231
  16->16  28x28  8779  17064(1.94x)  5898(0.67x)  1986  1975  1938
  16->16  28x28  8932  16975(1.90x)  5905(0.66x)  2011  1966  1928
  16->32  14x14  2088  4821(2.31x)  3086(1.48x)  1052  1051  982
  32->32  14x14  3627  9493(2.62x)  5392(1.49x)  1787  1828  1777
  32->32  14x14  3764  8818(2.34x)  5539(1.47x)  1879  1828  1832
    convnet 1->32   28x28    2353    1732       898
    convnet 32->64  14x14    6549   13858     12750
  convnet 64->128  7x7  6349  9984  15224  (direct loses: keep im2col)

The resnet's six layers: 26.2 ms direct against 58.0 through im2col (forward + backward, the
same load); in the step profile (``bench/profile_steps.py --arch resnet``, same load) the
convolutions' kernels take 54.6 of 59.5 ms against PyTorch's 25.8 ms step, so with the direct
kernels the step would be ~31 ms, ~1.2x PyTorch's (2.3x now). Float64: direct 0.39-0.66x
PyTorch's time per layer, 0.41-0.70x im2col's. The 16->16 forward runs 18 FMAs per 8-lane
step at ~80% of the AVX2 FMA rate; 512-bit vectors (``NUMBA_CPU_FEATURES`` without
``prefer-256-bit``) measured no faster. The 14x14 layers stay ~1.5x PyTorch: 12.5% wasted
columns and planes of 28 vector steps, where per-plane set-up (18 weight loads, the block's
zeroing and copy) weighs more.

What did not work: a register block of 7 pixels x 8 or 16 channels as scalar accumulators
(LLVM does not vectorise them across the loop's phi nodes: 10x PyTorch's forward), and with
reassociation on, LLVM vectorised the channel loop as a strided reduction (15x). Channel
blocks: forward 2 (4: +0-3%, 8: +12%), filter gradient 2 (1: +55%, 4: +27%).

Wired in since: plans replace ``Conv2d``'s column steps with these kernels at compile time
where the columns are read by the product and the filter gradient alone (the graph, the ONNX
export and second derivatives unchanged); see ``graphcore/machines/conv_fusion.py``.

Winograd (2026-12-03, later): the direct loops run at ~80% of the core's 256-bit FMA rate on
every shape (60-75 GFLOP/s), so they cannot catch oneDNN (~135 GFLOP/s here, AVX-512) by
better set-up. What was measured before settling on Winograd's F(2x2, 3x3)
(``graphcore/kernels/compiled/winograd_conv.py``), forward + backward, float32, batch 32:

- the batch inside the flat loop (input staged (C, N, Hp, Wp), one loop per channel pair
  over all images' planes, groups of 1-16 images): forward and input gradient 0-10% slower,
  the filter gradient 5% faster at 14x14 and 24% at 7x7; nothing near the columns at 64-128
  channels (64 -> 128 at 7x7: 11.8 ms against the columns' 7.3);
- 512-bit vectors for the direct loops (``NUMBA_CPU_FEATURES`` with ``-prefer-256-bit``):
  forward 1.37x slower at 28x28 (the shifted loads split cache lines);
- nine shifted products through BLAS (each image plane one flat row, a shared zero row and
  column between rows and images, ``W_t @ X[:, off_t:]``): 32 -> 64 at 14x14 8.4 ms, 64 -> 128
  at 7x7 7.5 (the columns: 8.0, 6.4; K = Cin products are thin, and 31% of the grid is
  padding at 7x7);
- F(4x4, 3x3) (36 products of 6x6 tiles): its products 25-40% faster than F(2x2, 3x3)'s, but
  its transforms read and write 36 streams and ran slower, and in whole epochs it measured
  at par (convnet 1.013x F(2x2, 3x3), resnet 0.997x with its 16 -> 16 layers too), with
  ~10x the float32 rounding (constants 1/6, 1/12, 1/24): not kept. The F(2x2, 3x3)
  transforms are memory-bound (vectorising them measured slower); blocking them with the
  products over chunks of tiles would keep the products in L2, at 6x more BLAS calls.

Results with Winograd (2026-12-03 18:58 UTC, load 1.5-1.8, float32, CPU us, medians of 10
over three rounds taking turns; the first layers need no input gradient; parts: staging and
forward, input gradient with its staging, filter gradient with its staging)::

    layer          torch   columns       direct        winograd     | direct parts   | winograd's
    resnet 1->16 28 1456    701 0.48x    343 0.24x   1557 1.07x | 143 - 200      | 757 - 800
    16->16 28x28   3454  10007 2.90x   4612 1.34x   6482 1.88x | 1608 1563 1442 | 2070 2553 1859
    16->32 14x14   1702   3070 1.80x   2463 1.45x   2155 1.27x | 834 826 802    | 691 833 631
    32->32 14x14   2855   6221 2.18x   5031 1.76x   4094 1.43x | 1655 1693 1683 | 1328 1528 1237
    convnet 1->32  1411   1324 0.94x    729 0.52x   3134 2.22x | 305 - 424      | 1478 - 1656
    32->64 14x14   5355   8905 1.66x  10241 1.91x   6667 1.24x | 3375 3372 3495 | 2056 2527 2083
    64->128 7x7    4844   7080 1.46x  13324 2.75x   6442 1.33x | 3954 4000 5370 | 2024 2524 1894

(Winograd's input-gradient and filter-gradient parts each include the upstream gradient's
transform, which a plan runs once.) Float64 the same picture: Winograd 0.68-0.76x the direct
loops from 16 -> 32 up, 0.75 (32 -> 64) and 0.87 (64 -> 128) of the columns; 16 -> 16 at 28x28
1.22x the direct loops. Hence the plans' rule: Winograd from 512 channel pairs up
(``conv_fusion.WINOGRAD_MIN_PAIRS``), the direct loops below.

The numpy backend (``--numpy``; no numba imported): Winograd's F(2x2, 3x3) in numpy
(``graphcore/kernels/reference/winograd_conv.py``) against the same backend's columns, alone
and in a one-layer plan (2026-12-03 19:42 UTC, load 0.1-1.2, float32, CPU us, medians of 10
over three rounds taking turns)::

    GRAPHCORE_NUMBA=0 PYTHONPATH=$PWD python bench/direct_conv.py --numpy --reps 10

    layer          columns  winograd      plan          | parts: fwd, dw, dx
    resnet 1->16 28   610   2308 3.78x   2356 3.86x   | 1236 1072 -
    16->16 28x28    10105   6770 0.67x   7243 0.72x   | 2544 1697 2528
    16->32 14x14     3315   3074 0.93x   3316 1.00x   | 1153  861 1060
    32->32 14x14     6671   4571 0.69x   5156 0.77x   | 1649 1290 1633
    convnet 1->32    1236   4122 3.34x   4540 3.67x   | 2107 2016 -
    32->64 14x14     8972   7996 0.89x   8357 0.93x   | 2681 2740 2575
    64->128 7x7      7776   8370 1.08x   9267 1.19x   | 2937 2609 2824

What it took: the transforms as numpy passes over the tiles' own strided views (rows of
``tw`` elements two apart) ran at 50 ns a row, 1.5-1.8x the columns' time for the whole
layer; on the planes' polyphase parts, where every pass is over long contiguous runs (one
operand shifted by a row or an element), 0.8-1.1x; in blocks whose tile matrices take
~1 MiB (channels for the input's transform, images for the products with the transforms
after them), 0.65-0.95x. numpy 2 sets up a 32 KiB buffer per operand for every ufunc call
over operands that do not fold into one run: the kernel calls them with ``np.setbufsize(16)``
(no allocation, and no slower). In whole epochs (plans taking turns in one process, 640
samples, medians of 4-6): the resnet 0.923 s against 1.173 with the columns (0.79x; plan
memory 80.2 -> 55.9 MB), but the convnet with its 32 -> 64 layer by Winograd 1.03-1.05x
the columns' epoch (cache pressure or noise: that layer's steps summed to ~0.96x of the
columns' in the same plan). At small batches its ~100 numpy calls a step weigh more: a
forward-only plan at batch 1 took 1.3-1.4x the columns' time (2.5x for 16 -> 32 at 14x14),
from 8 images of 14x14 or 28x28 up 0.8-0.9x. Hence the numpy rule
(``conv_fusion.NUMPY_WINOGRAD_*``): from 256 channel pairs up to 32 channels either way,
outputs of 14x14 and up, 4096 output pixels over the batch; the convnet keeps its columns.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import graphcore as gc
from graphcore.machines import conv_fusion, fusion

# numba's kernels are imported where they are used: ``--numpy`` runs without numba

LAYERS = {
    # (in channels, out channels, side) of each 3x3 pad-1 convolution, batch 32
    "resnet": [(1, 16, 28), (16, 16, 28), (16, 16, 28), (16, 32, 14), (32, 32, 14), (32, 32, 14)],
    "convnet": [(1, 32, 28), (32, 64, 14), (64, 128, 7)],
}


class DirectConv:
    """Forward and both gradients of a 3x3 stride-1 convolution with padding ``pad`` on
    (N, C, H, W) inputs, with every buffer made once (as a tape machine's plan does): the
    library's :class:`~graphcore.kernels.compiled.direct_conv.DirectConv3x3` with outputs.

    Example:
        >>> x = np.ones((1, 2, 4, 4)); w = np.ones((2, 2, 3, 3))
        >>> dc = DirectConv(x.shape, w.shape, 1, x.dtype); dc.forward(x, w)[0, 0, 0].tolist()
        [8.0, 12.0, 12.0, 8.0]
    """

    def __init__(self, xshape: tuple[int, ...], wshape: tuple[int, ...], pad: int, dtype: Any):
        from graphcore.kernels.compiled.direct_conv import BLOCK, DirectConv3x3

        self.block = BLOCK
        n, c, h, w = xshape
        co = wshape[0]
        if wshape[1:] != (c, 3, 3) or co % BLOCK:
            raise ValueError(f"DirectConv: 3x3 filters, an even number of them, got {wshape}")
        self.c = c
        self.dc = DirectConv3x3(xshape, wshape, (pad, pad), dtype, input_grad=c % BLOCK == 0)
        self.out = np.empty((n, co, self.dc.ho, self.dc.wo), dtype)
        self.dx = np.empty((n, c, h, w), dtype)
        self.dw = np.empty((co, c, 3, 3), dtype)

    def forward(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        self.dc.stage_input(x)
        self.dc.forward(w, self.out.reshape(-1))
        return self.out

    def input_grad(self, g: np.ndarray, w: np.ndarray) -> np.ndarray:
        if self.c % self.block:
            raise ValueError(f"DirectConv: the input gradient needs even channels, got {self.c}")
        self.dc.stage_grad(g, for_filter=False)
        self.dc.stage_filter(w)
        self.dc.input_grad(self.dx.reshape(-1))
        return self.dx

    def filter_grad(self, g: np.ndarray) -> np.ndarray:
        self.dc.stage_grad(g, for_input=False)
        self.dc.filter_grad(self.dw.reshape(-1))
        return self.dw


def _cpu_us(fn: Callable[[], Any], reps: int) -> float:
    """Median CPU time of ``fn`` in microseconds (one warm-up call)."""
    fn()
    times = []
    for _ in range(reps):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return float(np.median(times)) * 1e6


def _graphcore_layer(x: np.ndarray, w: np.ndarray, wants_x: bool) -> Callable[[], None]:
    """graphcore's Conv2d forward + backward for one layer through the columns (cost: the sum
    of the output)."""
    dt = gc.as_dtype(x.dtype)
    g = gc.NewGraph()
    xn = gc.NewTensor(g, dt, 4, gc.WithShape(*x.shape), gc.WithName("x"), gc.WithValue(x))
    wn = gc.NewTensor(g, dt, 4, gc.WithName("w"), gc.WithValue(w))
    cost = gc.Sum(gc.Conv2d(xn, wn, pad=(1, 1)))
    gc.Grad(cost, *([xn, wn] if wants_x else [wn]))
    vm = gc.NewTapeMachine(g)
    fusion.enabled = False  # the plan compiled now keeps the columns' steps
    try:
        vm.run_all()
    finally:
        fusion.enabled = True
    return vm.run_all


def _torch_layer(x: np.ndarray, w: np.ndarray, wants_x: bool) -> Callable[[], None] | None:
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    xt = torch.from_numpy(x).requires_grad_(wants_x)
    wt = torch.from_numpy(w).requires_grad_(True)

    def step() -> None:
        wt.grad = None
        xt.grad = None
        torch.nn.functional.conv2d(xt, wt, padding=1).sum().backward()

    return step


def check(dtype: Any) -> float:
    """The largest relative difference of the three direct products from the reference
    im2col path (odd sizes, both paddings used)."""
    from graphcore.kernels.compiled.direct_conv import BLOCK

    rng = np.random.default_rng(1)
    worst = 0.0
    for n, c, co, h, w, pad in [
        (1, 1, 4, 5, 7, 1),
        (3, 4, 6, 9, 6, 1),
        (2, 2, 2, 6, 6, 0),
        (2, 2, 4, 5, 8, 2),
    ]:
        x = rng.standard_normal((n, c, h, w)).astype(dtype)
        wt = rng.standard_normal((co, c, 3, 3)).astype(dtype)
        dc = DirectConv(x.shape, wt.shape, pad, dtype)
        y = dc.forward(x, wt)
        gy = rng.standard_normal(y.shape).astype(dtype)
        ref = _reference(x, wt, gy, pad)
        got = [y, dc.input_grad(gy, wt) if c % BLOCK == 0 else ref[1], dc.filter_grad(gy)]
        for a, b in zip(got, ref, strict=True):
            worst = max(worst, float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30)))
    return worst


def _reference(
    x: np.ndarray, w: np.ndarray, gy: np.ndarray, pad: int | tuple[int, int]
) -> list[np.ndarray]:
    """y, dx, dw by graphcore's numpy (im2col) path."""
    pad = (pad, pad) if isinstance(pad, int) else pad
    dt = gc.as_dtype(x.dtype)
    g = gc.NewGraph()
    xn = gc.NewTensor(g, dt, 4, gc.WithName("x"), gc.WithValue(x))
    wn = gc.NewTensor(g, dt, 4, gc.WithName("w"), gc.WithValue(w))
    gn = gc.NewTensor(g, dt, 4, gc.WithName("g"), gc.WithValue(gy))
    y = gc.Conv2d(xn, wn, pad=pad)
    cost = gc.Sum(gc.HadamardProd(y, gn))
    dx, dw = gc.Grad(cost, xn, wn)
    with gc.accel.disabled():
        gc.NewTapeMachine(g, gc.WithWatchlist(y)).run_all()
    return [y.value.copy(), dx.value.copy(), dw.value.copy()]


def _layer_line(c: int, co: int, h: int, wants_x: bool, dtype: Any, reps: int) -> str:
    """One layer (batch 32, pad 1): torch, graphcore's columns, the direct loops and Winograd,
    forward + backward; the candidates take turns over three rounds (medians)."""
    from graphcore.kernels.compiled.direct_conv import DirectConv3x3
    from graphcore.kernels.compiled.winograd_conv import WinogradConv3x3

    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, c, h, h)).astype(dtype)
    w = (rng.standard_normal((co, c, 3, 3)) / 3).astype(dtype)
    gy = np.ones((32, co, h, h), dtype)
    out, dx, dw = np.empty((32, co, h, h), dtype), np.empty_like(x), np.empty_like(w)

    def parts(k: Any) -> list[Callable[[], Any]]:
        fs: list[Callable[[], Any]] = [lambda: (k.stage_input(x), k.forward(w, out.reshape(-1)))]
        if wants_x:
            fs.append(lambda: (k.stage_grad(gy, for_filter=False), k.stage_filter(w),
                               k.input_grad(dx.reshape(-1))))  # fmt: skip
        fs.append(lambda: (k.stage_grad(gy, for_input=False), k.filter_grad(dw.reshape(-1))))
        return fs

    dc = DirectConv3x3(x.shape, w.shape, (1, 1), dtype, input_grad=wants_x)
    wc = WinogradConv3x3(x.shape, w.shape, (1, 1), dtype, input_grad=wants_x)
    cands: dict[str, list[Callable[[], Any]]] = {
        "direct": parts(dc),
        "winograd": parts(wc),
        "graphcore": [_graphcore_layer(x, w, wants_x)],
    }
    tl = _torch_layer(x, w, wants_x)
    if tl is not None:
        cands["torch"] = [tl]
    times: dict[str, list[list[float]]] = {k: [] for k in cands}
    for _ in range(3):
        for k, fs in cands.items():
            times[k].append([_cpu_us(f, reps) for f in fs])
    med = {k: np.median(np.array(v), axis=0) for k, v in times.items()}
    tt = float(med["torch"].sum()) if "torch" in med else float("nan")
    gct, dct, wct = (float(med[k].sum()) for k in ("graphcore", "direct", "winograd"))

    def split(v: np.ndarray) -> str:
        return " ".join(f"{t:5.0f}" for t in (v if wants_x else [v[0], 0.0, v[1]]))

    return (
        f"{c:>3}->{co:<3} {h:>2}x{h:<2} | torch {tt:6.0f}  columns {gct:6.0f} ({gct / tt:4.2f}x)"
        f"  direct {dct:6.0f} ({dct / tt:4.2f}x)  winograd {wct:6.0f} ({wct / tt:4.2f}x)"
        f" | {split(med['direct'])} | {split(med['winograd'])}"
    )


def _fused_layer(x: np.ndarray, w: np.ndarray, wants_x: bool) -> Callable[[], None]:
    """graphcore's Conv2d forward + backward for one layer in a plan that runs it by the
    numpy Winograd (the numpy rule opened to every layer for the compile)."""
    dt = gc.as_dtype(x.dtype)
    g = gc.NewGraph()
    xn = gc.NewTensor(g, dt, 4, gc.WithShape(*x.shape), gc.WithName("x"), gc.WithValue(x))
    wn = gc.NewTensor(g, dt, 4, gc.WithName("w"), gc.WithValue(w))
    gc.Grad(gc.Sum(gc.Conv2d(xn, wn, pad=(1, 1))), *([xn, wn] if wants_x else [wn]))
    vm = gc.NewTapeMachine(g)
    names = ("MIN_PAIRS", "MAX_CHANNELS", "MIN_SIDE", "MIN_PIXELS")
    rule = {k: getattr(conv_fusion, "NUMPY_WINOGRAD_" + k) for k in names}
    for k in names:
        setattr(conv_fusion, "NUMPY_WINOGRAD_" + k, 10**9 if k == "MAX_CHANNELS" else 1)
    try:
        vm.run_all()
    finally:
        for k, v in rule.items():
            setattr(conv_fusion, "NUMPY_WINOGRAD_" + k, v)
    assert vm.plan is not None and vm.plan._folded, "the layer was not fused"
    return vm.run_all


def _numpy_line(c: int, co: int, h: int, wants_x: bool, dtype: Any, reps: int) -> str:
    """One layer (batch 32, pad 1) on the numpy backend: the columns, the numpy Winograd's
    steps alone, and a plan running them; forward + backward, three rounds taking turns."""
    from graphcore.kernels.reference.winograd_conv import WinogradConv3x3

    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, c, h, h)).astype(dtype)
    w = (rng.standard_normal((co, c, 3, 3)) / 3).astype(dtype)
    gy = np.ones((32, co, h, h), dtype)
    out, dx, dw = np.empty((32, co, h, h), dtype), np.empty_like(x), np.empty_like(w)
    yf, dxf, dwf = out.reshape(-1), dx.reshape(-1), dw.reshape(-1)
    k = WinogradConv3x3(x.shape, w.shape, (1, 1), dtype, input_grad=wants_x)

    def forward() -> None:
        k.stage_input(x)
        k.forward(w, yf)

    def filter_grad() -> None:
        k.stage_grad(gy)
        k.filter_grad(dwf)

    def input_grad() -> None:
        k.stage_filter(w)
        k.input_grad(dxf)

    parts: list[Callable[[], Any]] = [forward, filter_grad] + ([input_grad] if wants_x else [])
    cands: dict[str, list[Callable[[], Any]]] = {
        "columns": [_graphcore_layer(x, w, wants_x)],
        "winograd": parts,
        "plan": [_fused_layer(x, w, wants_x)],
    }
    times: dict[str, list[list[float]]] = {name: [] for name in cands}
    for _ in range(3):
        for name, fs in cands.items():
            times[name].append([_cpu_us(f, reps) for f in fs])
    med = {name: np.median(np.array(v), axis=0) for name, v in times.items()}
    col, win, plan = (float(med[name].sum()) for name in ("columns", "winograd", "plan"))
    return (
        f"{c:>3}->{co:<3} {h:>2}x{h:<2} | columns {col:6.0f}  winograd {win:6.0f} "
        f"({win / col:4.2f}x)  plan {plan:6.0f} ({plan / col:4.2f}x) | "
        + " ".join(f"{t:5.0f}" for t in med["winograd"])
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--arch", default="resnet,convnet")
    ap.add_argument("--numpy", action="store_true",
                    help="the numpy backend: its columns against its Winograd (no numba)")
    args = ap.parse_args()
    dtype = np.dtype(args.dtype)
    if args.numpy:
        gc.accel.set_enabled(False)
        print("numpy backend, CPU us, median of", args.reps, "| fwd+bwd: the columns, the "
              "numpy Winograd's steps alone, a plan running them | Winograd's parts: "
              "staging+fwd, filter grad with the gradient's staging, input grad")  # fmt: skip
        for arch in args.arch.split(","):
            for i, (c, co, h) in enumerate(LAYERS[arch]):
                print(f"{arch:8s} {_numpy_line(c, co, h, i > 0, dtype, args.reps)}", flush=True)
        return
    f64, f32 = check(np.float64), check(np.float32)
    print(f"agreement with im2col: float64 {f64:.1e}, float32 {f32:.1e}")
    print(
        "CPU us, median of",
        args.reps,
        "| fwd+bwd: torch, graphcore's columns, direct, winograd "
        "| direct parts, winograd parts: staging+fwd, input grad, filter grad",
    )
    for arch in args.arch.split(","):
        for i, (c, co, h) in enumerate(LAYERS[arch]):
            print(f"{arch:8s} {_layer_line(c, co, h, i > 0, dtype, args.reps)}", flush=True)


if __name__ == "__main__":
    main()
