"""NN ops: Conv2d, MaxPool2D, AvgPool2D, Dropout, BatchNorm (values, gradients, modes, errors)."""

import tracemalloc

import numpy as np
import pytest

import graphcore as gc
from graphcore.ops.base import ExecContext
from tests.gradcheck import check_op

rng = np.random.default_rng(0)


def r(*shape):
    return rng.standard_normal(shape)


def image(shape, dt=gc.Float64, name="x", free=True):
    g = gc.NewGraph()
    s = (None, *shape[1:]) if free else shape
    return g, gc.NewTensor(g, dt, len(shape), gc.WithShape(*s), gc.WithName(name))


def run(g, *opts):
    vm = gc.NewTapeMachine(g, *opts)
    vm.run_all()
    return vm


# ----- references (slow, obvious loops) --------------------------------------------------------


def ref_conv(x, w, pad, stride, dil):
    (ph, pw), (sh, sw), (dh, dw) = pad, stride, dil
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    co, _, kh, kw = w.shape
    ho = (x.shape[2] + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (x.shape[3] + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((x.shape[0], co, ho, wo))
    for i in range(ho):
        for j in range(wo):
            patch = xp[
                :,
                :,
                i * sh : i * sh + dh * (kh - 1) + 1 : dh,
                j * sw : j * sw + dw * (kw - 1) + 1 : dw,
            ]
            out[:, :, i, j] = np.einsum("nchw,ochw->no", patch, w)
    return out


def ref_pool(x, k, p, s, mode):
    fill = -np.inf if mode == "max" else 0.0
    xp = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])), constant_values=fill)
    ho = (x.shape[2] + 2 * p[0] - k[0]) // s[0] + 1
    wo = (x.shape[3] + 2 * p[1] - k[1]) // s[1] + 1
    out = np.zeros(x.shape[:2] + (ho, wo))
    for i in range(ho):
        for j in range(wo):
            win = xp[:, :, i * s[0] : i * s[0] + k[0], j * s[1] : j * s[1] + k[1]]
            out[:, :, i, j] = win.max(axis=(2, 3)) if mode == "max" else win.mean(axis=(2, 3))
    return out


# ----- Conv2d ----------------------------------------------------------------------------------

CONV_CASES = [
    ((2, 3, 7, 8), (4, 3, 3, 2), (0, 0), (1, 1), (1, 1)),
    ((2, 3, 7, 8), (4, 3, 3, 3), (1, 1), (1, 1), (1, 1)),
    ((3, 2, 9, 7), (5, 2, 3, 2), (1, 2), (2, 1), (1, 2)),
    ((2, 1, 8, 8), (2, 1, 2, 2), (2, 1), (3, 2), (2, 1)),
]


@pytest.mark.parametrize("xs,ws,pad,stride,dil", CONV_CASES)
def test_conv2d_matches_reference(xs, ws, pad, stride, dil):
    x, w = r(*xs), r(*ws)
    g, xn = image(xs)
    y = gc.Conv2d(xn, gc.NewConstant(w), pad=pad, stride=stride, dilation=dil)
    gc.Let(xn, x)
    run(g)
    np.testing.assert_allclose(y.value, ref_conv(x, w, pad, stride, dil), rtol=1e-12, atol=1e-12)
    assert y.shape == (None, *y.value.shape[1:])


@pytest.mark.parametrize("xs,ws,pad,stride,dil", CONV_CASES)
def test_conv2d_grad(xs, ws, pad, stride, dil):
    def conv(x, w):
        return gc.Conv2d(x, w, pad=pad, stride=stride, dilation=dil)

    check_op(conv, [r(*xs), r(*ws)])


def test_conv2d_grad_free_batch():
    w = r(4, 3, 3, 3)
    check_op(
        lambda x: gc.Conv2d(x, gc.NewConstant(w, dtype=x.dtype), pad=1),
        [r(3, 3, 6, 5)],
        free_batch=True,
    )


def test_conv2d_with_a_strided_filter_view():
    # the filter is a transposed view (not contiguous): the kernel must read it every run
    def conv(x, w_t):
        return gc.Conv2d(x, gc.Transpose(w_t, (1, 0, 2, 3)), pad=1)

    check_op(conv, [r(2, 3, 5, 5), r(3, 4, 3, 3)])


def test_conv2d_one_machine_many_batch_sizes():
    w = r(4, 2, 3, 3)
    g, xn = image((1, 2, 5, 5))
    y = gc.Conv2d(xn, gc.NewConstant(w), pad=(1, 1))
    vm = gc.NewTapeMachine(g)
    for n in (3, 1, 5):
        x = r(n, 2, 5, 5)
        gc.Let(xn, x)
        vm.run_all()
        np.testing.assert_allclose(y.value, ref_conv(x, w, (1, 1), (1, 1), (1, 1)), atol=1e-12)


def test_conv2d_accepts_gorgonia_kernel_argument_and_int_options():
    g, xn = image((1, 3, 8, 8))
    w = gc.NewTensor(g, gc.Float64, 4, gc.WithShape(5, 3, 3, 3), gc.WithName("w"))
    assert gc.Conv2d(xn, w, (3, 3), (1, 1), (1, 1), (1, 1)).shape == (None, 5, 8, 8)
    assert gc.Conv2d(xn, w, pad=1, stride=2).shape == (None, 5, 4, 4)


def test_conv2d_errors_name_nodes_and_shapes():
    g, xn = image((1, 3, 8, 8))
    w = gc.NewTensor(g, gc.Float64, 4, gc.WithShape(5, 2, 3, 3), gc.WithName("filt"))
    with pytest.raises(gc.ShapeError, match=r"'x' \(None, 3, 8, 8\).*3 channels.*'filt'"):
        gc.Conv2d(xn, w)
    flat = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 64), gc.WithName("flat"))
    w3 = gc.NewTensor(g, gc.Float64, 4, gc.WithShape(5, 3, 3, 3), gc.WithName("w3"))
    with pytest.raises(gc.ShapeError, match=r"'flat' \(None, 64\).*4-D NCHW"):
        gc.Conv2d(flat, w3)
    with pytest.raises(gc.ShapeError, match="kernel=.*does not match"):
        gc.Conv2d(xn, w3, kernel=(5, 5))
    with pytest.raises(gc.ShapeError, match="smaller than the kernel"):
        gc.Conv2d(xn, gc.NewConstant(np.zeros((1, 3, 9, 9))))
    with pytest.raises(ValueError, match="stride"):
        gc.Conv2d(xn, w3, stride=0)
    wf32 = gc.NewTensor(g, gc.Float32, 4, gc.WithShape(5, 3, 3, 3), gc.WithName("w32"))
    with pytest.raises(gc.DtypeError):
        gc.Conv2d(xn, wf32)


# ----- pooling ---------------------------------------------------------------------------------

POOL_CASES = [
    ((2, 3, 7, 6), (2, 2), (0, 0), (2, 2)),  # disjoint windows, a row left over
    ((2, 3, 8, 6), (2, 2), (0, 0), (2, 2)),  # disjoint windows tiling the image
    ((2, 3, 8, 7), (2, 2), (0, 0), (3, 3)),  # gaps between windows
    ((2, 3, 7, 6), (3, 3), (1, 1), (1, 1)),  # overlapping, padded
    ((2, 3, 7, 6), (3, 2), (1, 0), (2, 1)),
]


@pytest.mark.parametrize("mode,fn", [("max", gc.MaxPool2D), ("avg", gc.AvgPool2D)])
@pytest.mark.parametrize("shape,k,p,s", POOL_CASES)
def test_pool_values_and_grads(mode, fn, shape, k, p, s):
    x = r(*shape)
    g, xn = image(x.shape)
    y = fn(xn, k, p, s)
    gc.Let(xn, x)
    run(g)
    np.testing.assert_allclose(y.value, ref_pool(x, k, p, s, mode), rtol=1e-12, atol=1e-12)
    check_op(lambda a: fn(a, k, p, s), [x], free_batch=True)


@pytest.mark.parametrize("shape,k,p,s", POOL_CASES)
def test_maxpool_grad_matches_a_reference(shape, k, p, s):
    x = np.round(r(*shape), 1)  # many ties: each window's gradient goes to its first maximum
    g, xn = image(x.shape, free=False)
    y = gc.MaxPool2D(xn, k, p, s)
    up = r(*y.shape)
    (dx,) = gc.Grad(gc.Sum(gc.HadamardProd(y, gc.NewConstant(up))), xn)
    gc.Let(xn, x)
    run(g)
    xp = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])), constant_values=-np.inf)
    want = np.zeros_like(xp)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            for i in range(y.shape[2]):
                for j in range(y.shape[3]):
                    win = xp[n, c, i * s[0] : i * s[0] + k[0], j * s[1] : j * s[1] + k[1]]
                    a, b = np.unravel_index(np.argmax(win), win.shape)  # the first maximum
                    want[n, c, i * s[0] + a, j * s[1] + b] += up[n, c, i, j]
    np.testing.assert_allclose(
        dx.value, want[:, :, p[0] : p[0] + x.shape[2], p[1] : p[1] + x.shape[3]]
    )


def test_pool_names_and_defaults():
    assert gc.AveragePool2D is gc.AvgPool2D
    g, xn = image((1, 2, 9, 9))
    assert gc.MaxPool2D(xn).shape == (None, 2, 4, 4)  # floor, like Gorgonia
    assert gc.MaxPool2D(xn).op.params() == {"kernel_shape": (2, 2), "pad": (0, 0), "stride": (2, 2)}


def test_maxpool_ties_go_to_the_first_maximum():
    x = np.zeros((1, 1, 2, 2))
    g, xn = image(x.shape, free=False)
    y = gc.MaxPool2D(xn)
    (dx,) = gc.Grad(gc.Sum(y), xn)
    gc.Let(xn, x)
    run(g)
    np.testing.assert_array_equal(dx.value[0, 0], [[1.0, 0.0], [0.0, 0.0]])


def test_avgpool_padding_counts_as_zeros():
    x = np.ones((1, 1, 2, 2))
    g, xn = image(x.shape, free=False)
    y = gc.AvgPool2D(xn, kernel=2, pad=1, stride=2)
    gc.Let(xn, x)
    run(g)
    np.testing.assert_allclose(y.value[0, 0], np.full((2, 2), 0.25))


def test_pool_errors():
    g, xn = image((1, 2, 8, 8))
    with pytest.raises(ValueError, match="pad .* smaller than the kernel"):
        gc.MaxPool2D(xn, kernel=2, pad=2)
    v = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 8), gc.WithName("v"))
    with pytest.raises(gc.ShapeError, match=r"MaxPool2D.*'v' \(None, 8\).*4-D"):
        gc.MaxPool2D(v)


# ----- Dropout ---------------------------------------------------------------------------------


class _SameEveryRun:
    """Stands in for the machine's generator: the same draws on every run (a fixed mask)."""

    def random(self, out, dtype):
        out[...] = np.random.default_rng(123).random(out.shape)  # same mask in float32 and 64


@pytest.fixture
def fixed_mask(monkeypatch):
    monkeypatch.setattr(ExecContext, "generator", lambda self: _SameEveryRun())


def test_dropout_training_zeroes_and_rescales():
    p = 0.3
    g, xn = image((1, 100_000), name="x")
    y = gc.Dropout(xn, p)
    gc.Let(xn, np.ones((1, 100_000)))
    run(g)
    vals = np.unique(y.value)
    np.testing.assert_allclose(vals, [0.0, 1 / (1 - p)])
    dropped = float(np.mean(y.value == 0))
    assert abs(dropped - p) < 0.01  # ~7 standard deviations
    assert abs(float(y.value.mean()) - 1.0) < 0.02  # the expected value is preserved


def test_dropout_eval_mode_is_identity_and_mode_switches_without_recompiling():
    x = r(4, 5)
    g, xn = image(x.shape)
    y = gc.Dropout(xn, 0.5)
    (dx,) = gc.Grad(gc.Sum(y), xn)
    gc.Let(xn, x)
    vm = run(g, gc.EvalMode(), gc.WithWatchlist(y))
    np.testing.assert_array_equal(y.value, x)
    np.testing.assert_array_equal(dx.value, np.ones_like(x))
    vm.training = True
    vm.run_all()
    assert np.any(y.value == 0)


def test_dropout_grad_uses_the_same_mask_and_divides_by_keep_probability():
    p = 0.2
    x = np.abs(r(50, 40)) + 0.5
    g, xn = image(x.shape)
    y = gc.Dropout(xn, p)
    (dx,) = gc.Grad(gc.Sum(y), xn)
    gc.Let(xn, x)
    vm = run(g, gc.WithWatchlist(y))
    for _ in range(3):  # a fresh mask every run, and the gradient follows it
        kept = y.value != 0
        np.testing.assert_allclose(dx.value, np.where(kept, 1 / (1 - p), 0.0))
        first = kept.copy()
        vm.run_all()
    assert not np.array_equal(first, y.value != 0)


def test_dropout_lisp_machine_and_nan_watch_in_eval():
    x = np.abs(r(6, 5)) + 0.5
    g, xn = image(x.shape)
    y = gc.Dropout(xn, 0.5)
    cost = gc.Sum(y)
    gc.Let(xn, x)
    gc.NewLispMachine(g, gc.BindDualValues(xn)).run_all()  # differentiates privately
    np.testing.assert_allclose(xn.grad, np.where(y.value != 0, 2.0, 0.0))
    assert float(cost.value) == pytest.approx(float(y.value.sum()))
    vm = run(g, gc.EvalMode(), gc.WithNaNWatch(), gc.WithInfWatch(), gc.WithWatchlist(y))
    np.testing.assert_array_equal(y.value, x)
    vm.training = True
    vm.run_all()


def test_dropout_gradcheck_with_a_fixed_mask(fixed_mask):
    check_op(lambda x: gc.Dropout(x, 0.4), [r(6, 7)], free_batch=True)


def test_dropout_is_reproducible_with_setseed():
    def once():
        gc.SetSeed(42)
        g, xn = image((3, 8))
        y = gc.Dropout(xn, 0.5)
        gc.Let(xn, np.ones((3, 8)))
        run(g)
        return y.value.copy()

    np.testing.assert_array_equal(once(), once())


def test_dropout_float32_and_validation():
    g, xn = image((2, 6), dt=gc.Float32)
    y = gc.Dropout(xn, 0.5)
    gc.Let(xn, np.ones((2, 6), np.float32))
    run(g)
    assert y.value.dtype == np.float32
    assert gc.Dropout(xn, 0.0) is xn
    for bad in (1.0, -0.1):
        with pytest.raises(ValueError, match=r"\[0, 1\)"):
            gc.Dropout(xn, bad)
    with pytest.raises(TypeError):
        gc.Dropout(xn, "0.5")


# ----- BatchNorm -------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5, 5)])
@pytest.mark.parametrize("param_shape", ["flat", "broadcast"])
def test_batchnorm_grad_training(shape, param_shape):
    c = shape[1]
    ps = (c,) if param_shape == "flat" else (1, c) + (1,) * (len(shape) - 2)
    x = r(*shape) * 2 + 1
    check_op(lambda a, gm, bt: gc.BatchNorm(a, gm, bt), [x, r(*ps), r(*ps)])


def test_batchnorm_grad_free_batch():
    check_op(lambda a: gc.BatchNorm(a, np.ones(3), np.zeros(3)), [r(5, 3, 2, 2)], free_batch=True)


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 2, 3)])
def test_batchnorm_training_normalises_and_updates_running_stats(shape):
    x = r(*shape) * 3 + 2
    axes = (0,) + tuple(range(2, len(shape)))
    c = shape[1]
    rm, rv = np.full(c, 0.5), np.full(c, 2.0)
    g, xn = image(shape)
    y = gc.BatchNorm(xn, np.ones(c), np.zeros(c), rm, rv, momentum=0.25, eps=1e-5)
    gc.Let(xn, x)
    run(g)
    np.testing.assert_allclose(y.value.mean(axis=axes), 0, atol=1e-12)
    np.testing.assert_allclose(y.value.var(axis=axes), x.var(axis=axes) / (x.var(axis=axes) + 1e-5))
    np.testing.assert_allclose(rm, 0.75 * 0.5 + 0.25 * x.mean(axis=axes))
    np.testing.assert_allclose(rv, 0.75 * 2.0 + 0.25 * x.var(axis=axes, ddof=1))


def test_batchnorm_eval_uses_running_stats_and_leaves_them():
    x = r(5, 2)
    rm, rv = np.array([1.0, -1.0]), np.array([4.0, 0.25])
    gamma, beta = np.array([2.0, 1.0]), np.array([0.5, 0.0])
    g, xn = image(x.shape)
    y = gc.BatchNorm(xn, gamma, beta, rm, rv, eps=1e-3)
    gc.Let(xn, x)
    vm = run(g, gc.EvalMode())
    np.testing.assert_allclose(y.value, gamma * (x - rm) / np.sqrt(rv + 1e-3) + beta)
    np.testing.assert_array_equal(rm, [1.0, -1.0])
    vm.training = True
    vm.run_all()
    assert not np.allclose(rm, [1.0, -1.0])


def test_batchnorm_grad_eval_mode():
    x, gm, bt = r(5, 3, 2, 2), r(3), r(3)
    g = gc.NewGraph()
    nodes = [
        gc.NewTensor(g, gc.Float64, a.ndim, gc.WithShape(*a.shape), gc.WithName(n), gc.WithValue(a))
        for n, a in (("x", x), ("gm", gm), ("bt", bt))
    ]
    rm, rv = r(3), np.abs(r(3)) + 0.5
    y = gc.BatchNorm(*nodes, rm, rv)
    weights = r(*x.shape)
    cost = gc.Sum(gc.HadamardProd(y, gc.NewConstant(weights)))
    grads = gc.Grad(cost, *nodes)
    vm = run(g, gc.EvalMode())
    analytic = [d.value.copy() for d in grads]  # before any perturbation
    for n, a in zip(nodes, analytic, strict=True):
        base, v, eps = n.value.copy(), r(*n.shape), 1e-6
        ana = float(np.sum(a * v))
        vals = []
        for sgn in (1, -1):
            gc.Let(n, base + sgn * eps * v)
            vm.run_all()
            vals.append(float(cost.value))
        gc.Let(n, base)
        num = (vals[0] - vals[1]) / (2 * eps)
        assert abs(num - ana) <= 1e-6 * max(1.0, abs(num)), n.name


def test_batchnorm_default_running_stats_are_reachable_and_float32_works():
    g, xn = image((4, 3), dt=gc.Float32)
    y = gc.BatchNorm(xn, np.ones(3, np.float32), np.zeros(3, np.float32))
    stats_op = y.children[1].op
    assert stats_op.running_mean.dtype == np.float32 and stats_op.running_var.tolist() == [1] * 3
    gc.Let(xn, np.arange(12, dtype=np.float32).reshape(4, 3))
    run(g)
    assert y.value.dtype == np.float32
    np.testing.assert_allclose(stats_op.running_mean, [0.45, 0.55, 0.65], rtol=1e-6)


def test_batchnorm_errors():
    g, xn = image((4, 3))
    with pytest.raises(gc.ShapeError, match=r"gamma .* must have shape \(3,\) or \(1, 3\)"):
        gc.BatchNorm(xn, np.ones(4), np.zeros(3))
    with pytest.raises(gc.ShapeError, match="running_mean"):
        gc.BatchNorm(xn, np.ones(3), np.zeros(3), np.zeros(2), np.ones(3))
    v = gc.NewVector(g, gc.Float64, gc.WithShape(None), gc.WithName("v"))
    with pytest.raises(gc.ShapeError, match=r"'v'"):
        gc.BatchNorm(v, np.ones(3), np.zeros(3))
    with pytest.raises(ValueError, match="momentum"):
        gc.BatchNorm(xn, np.ones(3), np.zeros(3), momentum=2.0)


@pytest.mark.parametrize("shape", [(0, 3), (0, 2, 4, 4)])
def test_batchnorm_of_an_empty_batch_names_the_node(shape):
    g, xn = image(shape)
    y = gc.BatchNorm(xn, np.ones(shape[1]), np.zeros(shape[1]))
    gc.Let(xn, np.ones(shape))
    for machine in (gc.NewTapeMachine, gc.NewLispMachine):
        with pytest.raises(gc.ShapeError, match=r"no values per channel") as e:
            machine(g, gc.ExecuteFwdOnly(), gc.WithWatchlist(y)).run_all()
        assert "'x'" in str(e.value) and "BatchNormStats" in str(e.value)
    for static in ((0, 3), (2, 3, 0, 4)):  # known when the node is built: an error right away
        with pytest.raises(gc.ShapeError, match=r"no values per channel"):
            gc.BatchNorm(gc.NewConstant(np.ones(static)), np.ones(3), np.zeros(3))


@pytest.mark.parametrize("shape", [(1, 3), (1, 2, 1, 1)])
def test_batchnorm_training_with_one_value_per_channel_is_an_error_naming_the_node(shape):
    g, xn = image(shape)
    rm, rv = np.zeros(shape[1]), np.ones(shape[1])
    y = gc.BatchNorm(xn, np.ones(shape[1]), np.zeros(shape[1]), rm, rv)
    gc.Let(xn, np.full(shape, 3.0))
    for machine in (gc.NewTapeMachine, gc.NewLispMachine):
        with pytest.raises(gc.ShapeError, match="more than 1 value per channel") as e:
            machine(g, gc.ExecuteFwdOnly()).run_all()
        assert f"{y.name!r}" in str(e.value) and "'x'" in str(e.value)
    assert rm.tolist() == [0.0] * shape[1] and rv.tolist() == [1.0] * shape[1]  # untouched
    vm = run(g, gc.EvalMode(), gc.WithWatchlist(y))  # eval needs no batch statistics
    np.testing.assert_allclose(y.value, np.full(shape, 3.0 / np.sqrt(1 + 1e-5)))
    vm.training = True
    with pytest.raises(gc.ShapeError, match="EvalMode"):
        vm.run_all()


def test_dropout_draws_from_its_own_generator_when_given_one():
    def masks(rng):
        g, xn = image((3, 8))
        y = gc.Dropout(xn, 0.5, rng=rng)
        gc.Let(xn, np.ones((3, 8)))
        vm = run(g, gc.WithWatchlist(y))
        first = y.value.copy()
        vm.run_all()
        return first, y.value.copy()

    a = masks(np.random.default_rng(5))
    b = masks(np.random.default_rng(5))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], a[1])
    ref = np.random.default_rng(5).random(24) >= 0.5
    np.testing.assert_array_equal(a[0].reshape(-1) != 0, ref)
    g, xn = image((3, 8))
    with pytest.raises(TypeError, match="numpy Generator"):
        gc.Dropout(xn, 0.5, rng=5)


# ----- machines ----------------------------------------------------------------------------------


def _convnet():
    g, xn = image((128, 2, 16, 16), dt=gc.Float32)
    w = gc.NewTensor(
        g,
        gc.Float32,
        4,
        gc.WithShape(8, 2, 3, 3),
        gc.WithName("w"),
        gc.WithValue(r(8, 2, 3, 3).astype(np.float32)),
    )
    h = gc.Conv2d(xn, w, pad=1)
    h = gc.BatchNorm(h, np.ones(8, np.float32), np.zeros(8, np.float32))
    h = gc.Dropout(gc.MaxPool2D(gc.Rectify(h)), 0.5)
    h = gc.AvgPool2D(h, kernel=3, pad=1, stride=1)
    cost = gc.Mean(gc.Square(h))
    gc.Grad(cost, w)
    gc.Let(xn, r(128, 2, 16, 16).astype(np.float32))
    return g, w, cost


def test_tape_runs_allocate_no_activation_sized_buffers():
    g, w, cost = _convnet()
    vm = gc.NewTapeMachine(g, gc.BindDualValues(w))
    vm.run_all()
    tracemalloc.start()
    vm.run_all()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # the smallest activation is 128*8*8*8*4 = 256 KiB; numpy's ufunc buffers are bounded
    # (8192 elements each, at most two at a time here) whatever the array sizes
    assert peak < 100_000, peak


def test_lisp_machine_agrees_with_tape_in_eval_mode():
    g, w, cost = _convnet()
    run(g, gc.EvalMode())
    tape_cost = float(cost.value)
    gc.NewLispMachine(g, gc.EvalMode(), gc.ExecuteFwdOnly()).run_all()
    np.testing.assert_allclose(float(cost.value), tape_cost, rtol=1e-6)
