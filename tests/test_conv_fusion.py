"""Thin 3x3 convolutions run directly in plans (graphcore.machines.conv_fusion): the same
values and gradients as the column steps, on a residual block and a convnet's first layers;
what stays unfused; second derivatives, results written into the caller's arrays, watched
and logged plans; the numpy backend unchanged."""

import functools
import logging

import numpy as np
import pytest

import graphcore as gc
from graphcore.machines import conv_fusion, fusion
from tests.allocations import peak_growth
from tests.conv_cases import param as _param

NUMBA = pytest.mark.skipif(not gc.accel.available(), reason="numba absent")
TOL = {np.float32: 1e-4, np.float64: 1e-12}
OFF = 10**9  # conv_fusion.WINOGRAD_MIN_PAIRS that keeps Winograd off


@pytest.fixture
def numba_on():
    was = gc.accel._state["on"]
    gc.accel.set_enabled(True)
    try:
        yield
    finally:
        gc.accel.set_enabled(was)


def _resnet_block(dtype, n=3, h=9, w=7, c=4):
    """A stem convolution (one input channel), then conv-relu-conv with a skip; the cost, and
    the nodes whose gradients are wanted besides the filters' (the block's input: its
    convolution's input gradient)."""
    rng = np.random.default_rng(0)
    g = gc.NewGraph()
    dt = gc.as_dtype(np.dtype(dtype))
    x = gc.NewTensor(g, dt, 4, gc.WithShape(None, 1, h, w), gc.WithName("x"))
    ws = [
        _param(g, "w0", (c, 1, 3, 3), dtype, rng),
        _param(g, "w1", (c, c, 3, 3), dtype, rng),
        _param(g, "w2", (c, c, 3, 3), dtype, rng),
    ]
    a = gc.Rectify(gc.Conv2d(x, ws[0], pad=1))
    y = gc.Rectify(gc.Add(a, gc.Conv2d(gc.Rectify(gc.Conv2d(a, ws[1], pad=1)), ws[2], pad=1)))
    cost = gc.Sum(gc.Square(y))
    return g, x, ws, [a, y], cost, (n, 1, h, w), [a]


def _convnet_head(dtype, n=2, side=12):
    """The convnet's first layers: 1 -> 32 and 32 -> 64 (direct), 64 -> 128 (columns: too
    many filters), each with ReLU and 2x2 max-pooling."""
    rng = np.random.default_rng(1)
    g = gc.NewGraph()
    dt = gc.as_dtype(np.dtype(dtype))
    x = gc.NewTensor(g, dt, 4, gc.WithShape(None, 1, side, side), gc.WithName("x"))
    ws = [
        _param(g, "w0", (32, 1, 3, 3), dtype, rng),
        _param(g, "w1", (64, 32, 3, 3), dtype, rng, 0.1),
        _param(g, "w2", (128, 64, 3, 3), dtype, rng, 0.05),
    ]
    h, hidden = x, []
    for w in ws:
        h = gc.MaxPool2D(gc.Rectify(gc.Conv2d(h, w, pad=(1, 1))), (2, 2))
        hidden.append(h)
    cost = gc.Sum(gc.Square(h))
    return g, x, ws, hidden, cost, (n, 1, side, side), hidden[:1]


def _run(build, dtype, fused, runs=2, extra=()):
    """Values of the watched nodes, the cost and the gradients over ``runs`` inputs; and the
    Im2Col nodes the plan ran directly."""
    fusion.enabled = fused
    try:
        g, x, ws, watched, cost, shape, wrt = build(dtype)
        grads = gc.Grad(cost, *wrt, *ws)
        vm = gc.NewTapeMachine(g, gc.WithWatchlist(*watched), *extra)
        rng = np.random.default_rng(5)
        out = []
        for _ in range(runs):
            gc.Let(x, rng.standard_normal(shape).astype(dtype))
            vm.run_all()
            out.append([float(cost.value)] + [n.value.copy() for n in [*watched, *grads]])
        direct = [n for n in g.nodes if n.op is not None and n.op.name == "Im2Col"
                  and id(n) in vm.plan._folded]  # fmt: skip
        return out, direct
    finally:
        fusion.enabled = True


def _close(a, b, dtype):
    for ra, rb in zip(a, b, strict=True):
        for u, v in zip(ra, rb, strict=True):
            u, v = np.asarray(u), np.asarray(v)
            assert u.dtype == v.dtype and u.shape == v.shape
            np.testing.assert_allclose(u, v, rtol=TOL[dtype], atol=TOL[dtype] * np.abs(v).max())


@NUMBA
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    ("build", "n_direct", "max_channels", "min_pairs"),
    [
        # min_pairs: Winograd off (the direct loops alone), as the plans choose, or for all
        (_resnet_block, 3, None, OFF),
        (_convnet_head, 1, None, OFF),
        (_convnet_head, 2, 64, OFF),
        (_convnet_head, 3, None, None),  # Winograd for 32 -> 64 and 64 -> 128
        (_resnet_block, 3, None, 1),
        (functools.partial(_resnet_block, c=32, h=7, w=6), 3, None, None),  # 32 -> 32
        (functools.partial(_convnet_head, side=10), 3, None, 1),  # 10x10, 5x5, 2x2 planes
    ],
)
def test_direct_steps_give_the_column_steps_results(
    numba_on, build, n_direct, max_channels, min_pairs, dtype, monkeypatch
):
    if max_channels is not None:  # the kernels themselves also take the wider layers
        monkeypatch.setattr(conv_fusion, "MAX_CHANNELS", max_channels)
    if min_pairs is not None:
        monkeypatch.setattr(conv_fusion, "WINOGRAD_MIN_PAIRS", min_pairs)
    fused, direct = _run(build, dtype, True)
    assert len(direct) == n_direct
    unfused, none = _run(build, dtype, False)
    assert none == []
    _close(fused, unfused, dtype)
    gc.accel.set_enabled(False)  # and the numpy backend's columns
    reference, none = _run(build, dtype, True)
    assert none == []
    _close(fused, reference, dtype)


@NUMBA
@pytest.mark.parametrize("min_pairs", [OFF, 1])  # the direct loops, Winograd
def test_direct_gradients_match_finite_differences(numba_on, min_pairs, monkeypatch):
    monkeypatch.setattr(conv_fusion, "WINOGRAD_MIN_PAIRS", min_pairs)
    rng = np.random.default_rng(2)
    g = gc.NewGraph()
    x = _param(g, "x", (2, 2, 5, 6), np.float64, rng, 1.0)
    w = _param(g, "w", (4, 2, 3, 3), np.float64, rng, 1.0)
    y = gc.Conv2d(x, w, pad=(2, 1))
    cost = gc.Sum(gc.Square(y))
    dx, dw = gc.Grad(cost, x, w)
    vm = gc.NewTapeMachine(g)
    vm.run_all()
    assert len(vm.plan._folded) == 3  # columns, gt, column gradient
    for node, grad in ((x, dx.value.copy()), (w, dw.value.copy())):
        v = node.value.copy()
        for i in [(0, 0, 0, 0), (1, 1, 2, 3), (0, 1, 4, 5)]:
            i = tuple(j % s for j, s in zip(i, v.shape, strict=True))
            e = 1e-6
            vals = []
            for s in (e, -e):
                p = v.copy()
                p[i] += s
                gc.Let(node, p)
                vm.run_all()
                vals.append(float(cost.value))
            gc.Let(node, v)
            assert (vals[0] - vals[1]) / (2 * e) == pytest.approx(grad[i], rel=1e-6, abs=1e-6)


def _one_conv(wshape, xshape, want_x=True, **kw):
    rng = np.random.default_rng(3)
    g = gc.NewGraph()
    x = _param(g, "x", xshape, np.float64, rng, 1.0)
    w = _param(g, "w", wshape, np.float64, rng)
    y = gc.Conv2d(x, w, **kw)
    cost = gc.Sum(gc.Square(y))
    grads = gc.Grad(cost, *([x, w] if want_x else [w]))
    return g, y, cost, grads


@NUMBA
@pytest.mark.parametrize(
    ("wshape", "xshape", "kw", "want_x"),
    [
        ((3, 2, 3, 3), (2, 2, 6, 6), {"pad": 1}, True),  # an odd number of filters
        ((4, 3, 3, 3), (2, 3, 6, 6), {"pad": 1}, True),  # odd input channels, dx wanted
        ((4, 2, 5, 5), (2, 2, 8, 8), {"pad": 2}, True),  # 5x5
        ((4, 2, 3, 3), (2, 2, 8, 8), {"pad": 1, "stride": 2}, True),
        ((4, 2, 3, 3), (2, 2, 8, 8), {"pad": 2, "dilation": 2}, True),
        ((4, 2, 3, 3), (2, 2, 6, 6), {"pad": 3}, True),
        ((66, 2, 3, 3), (1, 2, 5, 5), {"pad": 1}, False),  # more than 64 filters
        ((2, 66, 3, 3), (1, 66, 5, 5), {"pad": 1}, False),  # more than 64 input channels
    ],
)
def test_shapes_outside_the_rule_keep_their_columns(numba_on, wshape, xshape, kw, want_x):
    g, y, cost, grads = _one_conv(wshape, xshape, want_x, **kw)
    vm = gc.NewTapeMachine(g)
    vm.run_all()
    assert vm.plan._folded == {}
    cols = y.children[0]
    assert cols.value is not None  # computed, readable


@NUMBA
def test_odd_input_channels_fuse_without_an_input_gradient(numba_on):
    g, y, cost, grads = _one_conv((4, 3, 3, 3), (2, 3, 6, 6), want_x=False, pad=1)
    vm = gc.NewTapeMachine(g)
    vm.run_all()
    assert len(vm.plan._folded) == 2  # columns and gt; no input gradient in the graph


@NUMBA
def test_watched_columns_are_computed(numba_on):
    g, y, cost, grads = _one_conv((4, 2, 3, 3), (2, 2, 6, 6), pad=1)
    cols = y.children[0]
    vm = gc.NewTapeMachine(g, gc.WithWatchlist(cols))
    vm.run_all()
    assert vm.plan._folded == {}
    ref = gc.NewTapeMachine(g)
    ref.run_all()
    assert len(ref.plan._folded) == 3
    with pytest.raises(gc.ValueNotAvailableError, match="direct convolution"):
        _ = cols.value
    vm.run_all()
    assert cols.value.shape == (18, 2, 36)


@NUMBA
def test_columns_read_elsewhere_are_computed(numba_on):
    rng = np.random.default_rng(4)
    g = gc.NewGraph()
    x = _param(g, "x", (2, 2, 5, 5), np.float64, rng, 1.0)
    w = _param(g, "w", (4, 2, 3, 3), np.float64, rng)
    y = gc.Conv2d(x, w, pad=1)
    cols = y.children[0]
    cost = gc.Add(gc.Sum(gc.Square(y)), gc.Sum(cols))
    gc.Grad(cost, x, w)
    vm = gc.NewTapeMachine(g)
    vm.run_all()
    assert vm.plan._folded == {}


def test_the_numpy_backend_keeps_its_columns():
    with gc.accel.disabled():
        g, y, cost, grads = _one_conv((4, 2, 3, 3), (2, 2, 6, 6), pad=1)
        vm = gc.NewTapeMachine(g)
        vm.run_all()
        assert vm.plan._folded == {}


def _second_order(dtype):
    rng = np.random.default_rng(6)
    g = gc.NewGraph()
    x = _param(g, "x", (2, 4, 6, 5), dtype, rng, 1.0)
    w1 = _param(g, "w1", (4, 4, 3, 3), dtype, rng)
    w2 = _param(g, "w2", (4, 4, 3, 3), dtype, rng)
    h = gc.Conv2d(gc.Tanh(gc.Conv2d(x, w1, pad=1)), w2, pad=1)
    cost = gc.Sum(gc.Square(h))
    dx, dw1 = gc.Grad(cost, x, w1)
    penalty = gc.Add(gc.Sum(gc.Square(dx)), gc.Sum(gc.Square(dw1)))
    return g, gc.Grad(penalty, x, w1, w2)


@NUMBA
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_second_derivatives(numba_on, dtype):
    out = []
    for fused in (True, False):
        fusion.enabled = fused
        try:
            g, second = _second_order(dtype)
            vm = gc.NewTapeMachine(g)
            vm.run_all()
            out.append([d.value.copy() for d in second])
        finally:
            fusion.enabled = True
    gc.accel.set_enabled(False)
    g, second = _second_order(dtype)
    gc.NewTapeMachine(g).run_all()
    out.append([d.value.copy() for d in second])
    _close([out[0]], [out[1]], dtype)
    _close([out[0]], [out[2]], dtype)


@NUMBA
@pytest.mark.parametrize("min_pairs", [OFF, 1])
def test_run_all_into_the_direct_results(numba_on, min_pairs, monkeypatch):
    monkeypatch.setattr(conv_fusion, "WINOGRAD_MIN_PAIRS", min_pairs)
    rng = np.random.default_rng(7)
    g = gc.NewGraph()
    x = _param(g, "x", (2, 2, 6, 6), np.float64, rng, 1.0)
    w0 = _param(g, "w0", (2, 2, 1, 1), np.float64, rng)
    w = gc.Reshape(gc.Tanh(gc.Reshape(w0, (2, 2, 1, 1))), (2, 2, 1, 1))  # a computed filter
    w3 = _param(g, "w3", (4, 2, 3, 3), np.float64, rng)
    y = gc.Conv2d(gc.Conv2d(x, w), w3, pad=1)
    cost = gc.Sum(gc.Square(y))
    dx, dw3 = gc.Grad(cost, x, w3)
    vm = gc.NewTapeMachine(g)
    vm.run_all()
    want = [y.value.copy(), dx.value.copy(), dw3.value.copy()]
    assert len(vm.plan._folded) == 3
    dests = [np.full(a.shape, np.nan) for a in want]
    gc.Let(x, x.value * 1.0)
    vm.run_all(into=dict(zip([y, dx, dw3], dests, strict=True)))
    for d, a, n in zip(dests, want, [y, dx, dw3], strict=True):
        np.testing.assert_allclose(d, a, rtol=1e-12)
        assert n.value is d
    vm.run_all()  # and back to the plan's own buffers
    for a, n in zip(want, [y, dx, dw3], strict=True):
        np.testing.assert_allclose(n.value, a, rtol=1e-12)


@NUMBA
def test_watched_and_logged_plans_run_the_columns(numba_on, caplog):
    fused, _ = _run(_resnet_block, np.float64, True)
    nan, direct = _run(_resnet_block, np.float64, True, extra=(gc.WithNaNWatch(),))
    assert direct == []
    _close(fused, nan, np.float64)
    logger = logging.getLogger("golgi.test.convfusion")
    with caplog.at_level(logging.DEBUG, logger=logger.name):
        logged, direct = _run(_resnet_block, np.float64, True, extra=(gc.WithLogger(logger),))
    assert direct == [] and "Im2Col" in caplog.text
    _close(fused, logged, np.float64)


@NUMBA
@pytest.mark.parametrize("min_pairs", [OFF, 1])
def test_direct_training_step_allocates_nothing(numba_on, min_pairs, monkeypatch):
    monkeypatch.setattr(conv_fusion, "WINOGRAD_MIN_PAIRS", min_pairs)
    g, x, ws, watched, cost, shape, _ = _resnet_block(np.float32, n=8, h=12, w=12, c=8)
    gc.Grad(cost, *ws)
    vm = gc.NewTapeMachine(g.subgraph_roots(cost), gc.BindDualValues(*ws))
    X = np.random.default_rng(0).standard_normal(shape).astype(np.float32)

    def step():
        gc.Let(x, X)
        vm.run_all()

    for _ in range(3):
        step()
    assert len(vm.plan._folded) == 8  # three convolutions; the stem has no input gradient
    growth = peak_growth(step, 20)
    assert growth < 4096, f"peak traced growth {growth} bytes over 20 steps"


@NUMBA
def test_the_columns_get_no_buffers(numba_on):
    sizes = []
    for fused in (True, False):
        fusion.enabled = fused
        try:
            g, y, cost, grads = _one_conv((8, 8, 3, 3), (4, 8, 10, 10), pad=1)
            vm = gc.NewTapeMachine(g)
            vm.run_all()
            sizes.append(vm.plan.nbytes)
        finally:
            fusion.enabled = True
    cols_bytes = 72 * 4 * 100 * 8
    assert sizes[0] <= sizes[1] - cols_bytes, sizes  # the columns and their gradient gone


@NUMBA
@pytest.mark.parametrize("min_pairs", [OFF, 1])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_prediction_plan_runs_the_forward_alone(numba_on, dtype, min_pairs, monkeypatch):
    monkeypatch.setattr(conv_fusion, "WINOGRAD_MIN_PAIRS", min_pairs)
    out = []
    for fused in (True, False):
        fusion.enabled = fused
        try:
            rng = np.random.default_rng(8)
            g = gc.NewGraph()
            x = _param(g, "x", (3, 2, 7, 7), dtype, rng, 1.0)
            w = _param(g, "w", (6, 2, 3, 3), dtype, rng)
            y = gc.Rectify(gc.Conv2d(x, w, pad=0))
            vm = gc.NewTapeMachine(g)
            vm.run_all()
            assert len(vm.plan._folded) == (1 if fused else 0)
            out.append([y.value.copy()])
        finally:
            fusion.enabled = True
    _close([out[0]], [out[1]], dtype)


@NUMBA
def test_direct_kernels_made_without_a_gradient_refuse_it():
    from graphcore.kernels.compiled.direct_conv import DirectConv3x3

    dc = DirectConv3x3((1, 2, 4, 4), (2, 2, 3, 3), (1, 1), np.float64, False, False)
    with pytest.raises(ValueError, match="filter_grad=False"):
        dc.filter_grad(np.empty(36))
    with pytest.raises(ValueError, match="input_grad=False"):
        dc.input_grad(np.empty(32))


@NUMBA
def test_direct_kernels_refuse_an_input_gradient_over_odd_input_channels():
    # its loop runs over channel pairs and would write past the gradient's end
    from graphcore.kernels.compiled.direct_conv import DirectConv3x3

    with pytest.raises(ValueError, match="even number of input channels"):
        DirectConv3x3((1, 3, 4, 4), (2, 3, 3, 3), (1, 1), np.float64)
    dc = DirectConv3x3((1, 3, 4, 4), (2, 3, 3, 3), (1, 1), np.float64, input_grad=False)
    assert dc.c == 3


@NUMBA
def test_the_rule_picks_winograd_for_wide_layers(numba_on):
    # 32 -> 64 (2048 pairs): Winograd, with odd channel counts too; 8 -> 8: the direct loops
    for wshape, xshape, kind in [
        ((64, 32, 3, 3), (2, 32, 6, 6), "WinogradConv3x3"),
        ((33, 17, 3, 3), (2, 17, 5, 7), "WinogradConv3x3"),
        ((8, 8, 3, 3), (2, 8, 6, 6), "DirectConv3x3"),
    ]:
        g, y, cost, grads = _one_conv(wshape, xshape, pad=1)
        vm = gc.NewTapeMachine(g)
        vm.run_all()
        assert len(vm.plan._folded) == 3
        kernels = {
            type(c.cell_contents).__name__
            for fn in vm.plan.steps
            for c in getattr(fn, "__closure__", None) or ()
            if type(c.cell_contents).__name__.endswith("Conv3x3")
        }
        assert kernels == {kind}


@NUMBA
def test_winograd_kernels_made_without_a_gradient_refuse_it():
    from graphcore.kernels.compiled.winograd_conv import WinogradConv3x3

    wc = WinogradConv3x3((1, 2, 4, 4), (2, 2, 3, 3), (1, 1), np.float64, False, False)
    with pytest.raises(ValueError, match="filter_grad=False"):
        wc.filter_grad(np.empty(36))
    with pytest.raises(ValueError, match="input_grad=False"):
        wc.input_grad(np.empty(32))
    with pytest.raises(ValueError, match="padding 0 to 2"):
        WinogradConv3x3((1, 2, 4, 4), (2, 2, 3, 3), (3, 3), np.float64)
