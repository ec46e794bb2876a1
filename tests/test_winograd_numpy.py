"""The numpy backend's Winograd F(2x2, 3x3) (graphcore.kernels.reference.winograd_conv): the
same results as the im2col path on odd shapes, paddings 0 to 2, one or many blocks, both
float dtypes, without allocating per step; and plans on the numpy backend running it in
place of the column steps (graphcore.machines.conv_fusion): the same values and gradients,
finite differences, ``into=``, prediction plans, the rule, and numba never imported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import graphcore as gc
from graphcore.kernels.reference import winograd_conv
from graphcore.kernels.reference.winograd_conv import WinogradConv3x3
from graphcore.machines import conv_fusion, fusion
from tests.allocations import peak_growth
from tests.conv_cases import WINOGRAD_SHAPES
from tests.conv_cases import param as _param


@pytest.fixture
def numpy_backend():
    with gc.accel.disabled():
        yield


def _columns(x, w, gy, pad):
    """y, dx, dw through the numpy backend's columns."""
    dt = gc.as_dtype(x.dtype)
    g = gc.NewGraph()
    xn = gc.NewTensor(g, dt, 4, gc.WithName("x"), gc.WithValue(x))
    wn = gc.NewTensor(g, dt, 4, gc.WithName("w"), gc.WithValue(w))
    gn = gc.NewTensor(g, dt, 4, gc.WithName("g"), gc.WithValue(gy))
    y = gc.Conv2d(xn, wn, pad=pad)
    dx, dw = gc.Grad(gc.Sum(gc.HadamardProd(y, gn)), xn, wn)
    fusion.enabled = False
    try:
        with gc.accel.disabled():
            gc.NewTapeMachine(g, gc.WithWatchlist(y)).run_all()
    finally:
        fusion.enabled = True
    return [y.value.copy(), dx.value.copy(), dw.value.copy()]


def _all_steps(wc, x, w, gy, y, dx, dw):
    wc.stage_input(x)
    wc.forward(w, y.reshape(-1))
    wc.stage_grad(gy)
    wc.filter_grad(dw.reshape(-1))
    wc.stage_filter(w)
    wc.input_grad(dx.reshape(-1))


@pytest.mark.parametrize(
    ("block_bytes", "images"),
    [(winograd_conv.BLOCK_BYTES, None), (64, None), (3000, 2)],  # one block, one per channel
    # and image, several channels and two images (the last block smaller)
)
@pytest.mark.parametrize(("dtype", "tol"), [(np.float64, 1e-12), (np.float32, 1e-4)])
@pytest.mark.parametrize("shape", WINOGRAD_SHAPES)
def test_numpy_winograd_matches_im2col(shape, dtype, tol, block_bytes, images, monkeypatch):
    monkeypatch.setattr(winograd_conv, "BLOCK_BYTES", block_bytes)
    if images is not None:
        monkeypatch.setattr(winograd_conv, "_images_per_block", lambda *a: images)
    n, c, co, h, w, pad = shape
    rng = np.random.default_rng(11)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((co, c, 3, 3)).astype(dtype)
    wc = WinogradConv3x3(x.shape, wt.shape, pad, dtype)
    y = np.empty((n, co, wc.ho, wc.wo), dtype)
    gy = rng.standard_normal(y.shape).astype(dtype)
    dx, dw = np.empty_like(x), np.empty_like(wt)
    for _ in range(2):  # the second run reuses the buffers: nothing left from the first
        _all_steps(wc, x, wt, gy, y, dx, dw)
    want = _columns(x, wt, gy, pad)
    for name, a, b in zip(["output", "input gradient", "filter gradient"], [y, dx, dw], want,
                          strict=True):  # fmt: skip
        assert a.shape == b.shape, name
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * np.abs(b).max(), err_msg=name)


def test_numpy_winograd_takes_strided_operands_and_new_views():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 10, 8)).transpose(0, 1, 3, 2)  # not C-contiguous
    w = rng.standard_normal((4, 3, 3, 3))
    wc = WinogradConv3x3(x.shape, w.shape, (1, 1), np.float64)
    y, dx, dw = np.empty((2, 4, 8, 10)), np.empty(x.shape), np.empty(w.shape)
    gy = rng.standard_normal((2, 4, 10, 8)).transpose(0, 1, 3, 2)
    _all_steps(wc, x, w, gy, y, dx, dw)
    made = {k: v[1] for k, v in wc._made.items()}
    _all_steps(wc, x, w, gy, y, dx, dw)  # new reshape views of the same arrays: same calls
    assert all(wc._made[k][1] is v for k, v in made.items())
    want = _columns(np.ascontiguousarray(x), w, np.ascontiguousarray(gy), (1, 1))
    for a, b in zip([y, dx, dw], want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * np.abs(b).max())
    other = np.empty_like(y)  # another output array: its own calls, the same values
    wc.stage_input(x)
    wc.forward(w, other.reshape(-1))
    np.testing.assert_allclose(other, y, rtol=1e-12)


@pytest.mark.parametrize("block_bytes", [winograd_conv.BLOCK_BYTES, 4096])
def test_numpy_winograd_steps_allocate_nothing(block_bytes, monkeypatch):
    monkeypatch.setattr(winograd_conv, "BLOCK_BYTES", block_bytes)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 8, 12, 12)).astype(np.float32)
    w = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)
    gy = rng.standard_normal((4, 8, 12, 12)).astype(np.float32)
    y, dx, dw = np.empty_like(gy), np.empty_like(x), np.empty_like(w)
    wc = WinogradConv3x3(x.shape, w.shape, (1, 1), np.float32)
    yf, dxf, dwf = y.reshape(-1), dx.reshape(-1), dw.reshape(-1)

    def step():
        wc.stage_input(x)
        wc.forward(w, yf)
        wc.stage_grad(gy)
        wc.filter_grad(dwf)
        wc.stage_filter(w)
        wc.input_grad(dxf)

    growth = peak_growth(step, 10, warmup=2)
    assert growth < 4096, f"peak traced growth {growth} bytes over 10 steps"


def test_numpy_winograd_made_without_a_gradient_refuses_it():
    wc = WinogradConv3x3((1, 2, 4, 4), (2, 2, 3, 3), (1, 1), np.float64, False, False)
    with pytest.raises(ValueError, match="filter_grad=False"):
        wc.filter_grad(np.empty(36))
    with pytest.raises(ValueError, match="input_grad=False"):
        wc.input_grad(np.empty(32))
    with pytest.raises(ValueError, match="padding 0 to 2"):
        WinogradConv3x3((1, 2, 4, 4), (2, 2, 3, 3), (3, 3), np.float64)
    with pytest.raises(ValueError, match="scratch"):
        WinogradConv3x3((1, 2, 4, 4), (2, 2, 3, 3), (1, 1), np.float64, scratch=np.zeros(3))


# -- plans on the numpy backend --------------------------------------------------------------


@pytest.fixture
def every_layer(monkeypatch):
    """The numpy rule opened to the tests' small layers."""
    monkeypatch.setattr(conv_fusion, "NUMPY_WINOGRAD_MIN_PAIRS", 1)
    monkeypatch.setattr(conv_fusion, "NUMPY_WINOGRAD_MIN_SIDE", 1)
    monkeypatch.setattr(conv_fusion, "NUMPY_WINOGRAD_MIN_PIXELS", 1)


def _block(dtype, c=4, n=3, h=9, w=7):
    """A stem (one input channel), then conv-relu-conv with a skip."""
    rng = np.random.default_rng(0)
    g = gc.NewGraph()
    dt = gc.as_dtype(np.dtype(dtype))
    x = gc.NewTensor(g, dt, 4, gc.WithShape(None, 1, h, w), gc.WithName("x"))
    ws = [_param(g, "w0", (c, 1, 3, 3), dtype, rng), _param(g, "w1", (c, c, 3, 3), dtype, rng),
          _param(g, "w2", (c, c, 3, 3), dtype, rng)]  # fmt: skip
    a = gc.Rectify(gc.Conv2d(x, ws[0], pad=1))
    y = gc.Rectify(gc.Add(a, gc.Conv2d(gc.Rectify(gc.Conv2d(a, ws[1], pad=(2, 1))), ws[2],
                                       pad=(0, 1))))  # fmt: skip
    return g, x, ws, a, gc.Sum(gc.Square(y)), (n, 1, h, w)


def _train(dtype, fused, **kw):
    fusion.enabled = fused
    try:
        g, x, ws, a, cost, shape = _block(dtype, **kw)
        grads = gc.Grad(cost, a, *ws)
        vm = gc.NewTapeMachine(g)
        rng = np.random.default_rng(5)
        out = []
        for _ in range(2):
            gc.Let(x, rng.standard_normal(shape).astype(dtype))
            vm.run_all()
            out.append([float(cost.value)] + [d.value.copy() for d in grads])
        return out, len(vm.plan._folded)
    finally:
        fusion.enabled = True


@pytest.mark.parametrize(("dtype", "tol"), [(np.float64, 1e-12), (np.float32, 1e-4)])
def test_numpy_plans_run_winograd_with_the_columns_results(numpy_backend, every_layer, dtype,
                                                            tol):  # fmt: skip
    fused, folded = _train(dtype, True)
    assert folded == 2 + 3 + 3  # the stem (no input gradient) and the block's two
    unfused, none = _train(dtype, False)
    assert none == 0
    for ra, rb in zip(fused, unfused, strict=True):
        for u, v in zip(ra, rb, strict=True):
            u, v = np.asarray(u), np.asarray(v)
            np.testing.assert_allclose(u, v, rtol=tol, atol=tol * np.abs(v).max())


def test_numpy_winograd_gradients_match_finite_differences(numpy_backend, every_layer):
    rng = np.random.default_rng(2)
    g = gc.NewGraph()
    x = _param(g, "x", (2, 2, 5, 6), np.float64, rng, 1.0)
    w = _param(g, "w", (4, 2, 3, 3), np.float64, rng, 1.0)
    cost = gc.Sum(gc.Square(gc.Conv2d(x, w, pad=(2, 1))))
    dx, dw = gc.Grad(cost, x, w)
    vm = gc.NewTapeMachine(g)
    vm.run_all()
    assert len(vm.plan._folded) == 3  # columns, gt, column gradient
    for node, grad in ((x, dx.value.copy()), (w, dw.value.copy())):
        v = node.value.copy()
        for i in [(0, 0, 0, 0), (1, 1, 2, 3), (0, 1, 4, 5), (1, 0, 2, 2)]:
            i = tuple(j % s for j, s in zip(i, v.shape, strict=True))
            e, vals = 1e-6, []
            for s in (e, -e):
                p = v.copy()
                p[i] += s
                gc.Let(node, p)
                vm.run_all()
                vals.append(float(cost.value))
            gc.Let(node, v)
            assert (vals[0] - vals[1]) / (2 * e) == pytest.approx(grad[i], rel=1e-6, abs=1e-6)


def test_numpy_winograd_runs_into_the_callers_arrays(numpy_backend, every_layer):
    rng = np.random.default_rng(7)
    g = gc.NewGraph()
    x = _param(g, "x", (2, 2, 6, 6), np.float64, rng, 1.0)
    w = _param(g, "w", (4, 2, 3, 3), np.float64, rng)
    y = gc.Conv2d(x, w, pad=1)
    dx, dw = gc.Grad(gc.Sum(gc.Square(y)), x, w)
    vm = gc.NewTapeMachine(g)
    vm.run_all()
    assert len(vm.plan._folded) == 3
    want = [y.value.copy(), dx.value.copy(), dw.value.copy()]
    dests = [np.full(a.shape, np.nan) for a in want]
    vm.run_all(into=dict(zip([y, dx, dw], dests, strict=True)))
    for d, a, n in zip(dests, want, [y, dx, dw], strict=True):
        np.testing.assert_allclose(d, a, rtol=1e-12)
        assert n.value is d
    vm.run_all()  # and back to the plan's own buffers
    for a, n in zip(want, [y, dx, dw], strict=True):
        np.testing.assert_allclose(n.value, a, rtol=1e-12)


def test_numpy_winograd_prediction_plan_and_watched_columns(numpy_backend, every_layer):
    rng = np.random.default_rng(8)
    out = []
    for fused in (True, False):
        fusion.enabled = fused
        try:
            g = gc.NewGraph()
            x = _param(g, "x", (3, 2, 7, 7), np.float32, rng := np.random.default_rng(8), 1.0)
            w = _param(g, "w", (6, 2, 3, 3), np.float32, rng)
            y = gc.Rectify(gc.Conv2d(x, w, pad=0))
            vm = gc.NewTapeMachine(g)
            vm.run_all()
            assert len(vm.plan._folded) == (1 if fused else 0)
            out.append(y.value.copy())
        finally:
            fusion.enabled = True
    np.testing.assert_allclose(out[0], out[1], rtol=1e-4, atol=1e-4 * np.abs(out[1]).max())
    g = gc.NewGraph()
    x = _param(g, "x", (2, 2, 6, 6), np.float64, rng, 1.0)
    w = _param(g, "w", (4, 2, 3, 3), np.float64, rng)
    y = gc.Conv2d(x, w, pad=1)
    gc.Grad(gc.Sum(gc.Square(y)), x, w)
    vm = gc.NewTapeMachine(g, gc.WithWatchlist(y.children[0]))
    vm.run_all()
    assert vm.plan._folded == {}  # the columns are watched: computed


def test_numpy_training_step_allocates_nothing(numpy_backend, every_layer):
    g, x, ws, a, cost, shape = _block(np.float32, c=8, n=8, h=12, w=12)
    gc.Grad(cost, *ws)
    vm = gc.NewTapeMachine(g.subgraph_roots(cost), gc.BindDualValues(*ws))
    X = np.random.default_rng(0).standard_normal(shape).astype(np.float32)

    def step():
        gc.Let(x, X)
        vm.run_all()

    for _ in range(3):
        step()
    assert len(vm.plan._folded) == 8
    growth = peak_growth(step, 20)
    assert growth < 4096, f"peak traced growth {growth} bytes over 20 steps"


@pytest.mark.parametrize(
    ("wshape", "n", "side", "fused"),
    [
        ((16, 16, 3, 3), 8, 28, True),  # the resnet's 16 -> 16 at 28x28
        ((32, 32, 3, 3), 21, 14, True),
        ((16, 16, 3, 3), 1, 28, False),  # one image: too few pixels
        ((64, 32, 3, 3), 32, 14, False),  # 64 channels: the convnet's 32 -> 64 keeps its columns
        ((32, 32, 3, 3), 100, 7, False),  # 7x7: too small
        ((8, 8, 3, 3), 8, 28, False),  # 64 pairs: too few
    ],
)
def test_the_numpy_rule(numpy_backend, wshape, n, side, fused):
    rng = np.random.default_rng(9)
    g = gc.NewGraph()
    x = _param(g, "x", (n, wshape[1], side, side), np.float32, rng)
    w = _param(g, "w", wshape, np.float32, rng)
    gc.Grad(gc.Sum(gc.Square(gc.Conv2d(x, w, pad=1))), x, w)
    vm = gc.NewTapeMachine(g)
    vm.run_all()
    assert len(vm.plan._folded) == (3 if fused else 0)


def test_with_graphcore_numba_0_a_winograd_plan_never_imports_numba():
    code = (
        "import sys, numpy as np, graphcore as gc\n"
        "g = gc.NewGraph()\n"
        "x = gc.NewTensor(g, gc.Float32, 4, gc.WithName('x'),"
        " gc.WithValue(np.ones((21, 16, 14, 14), np.float32)))\n"
        "w = gc.NewTensor(g, gc.Float32, 4, gc.WithName('w'),"
        " gc.WithValue(np.ones((16, 16, 3, 3), np.float32)))\n"
        "gc.Grad(gc.Sum(gc.Conv2d(x, w, pad=1)), x, w)\n"
        "vm = gc.NewTapeMachine(g); vm.run_all()\n"
        "print(gc.accel.enabled(), len(vm.plan._folded), 'numba' in sys.modules)"
    )
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root), "GRAPHCORE_NUMBA": "0"}
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                         capture_output=True, text=True).stdout.strip()  # fmt: skip
    assert out == "False 3 False"
