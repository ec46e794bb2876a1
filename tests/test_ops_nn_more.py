"""Gorgonia's other NN ops: Conv1d, Im2Col, MaxPool1D, AveragePool1D, GlobalAveragePool2D,
Upsample2D, GroupNorm, Sparsemax, BinaryXent, CTCLoss: values against direct numpy
references, first and second derivatives (float64), free batch sizes and build-time errors.
PyTorch comparisons are in test_ops_nn_torch.py."""

import itertools
import tracemalloc

import numpy as np
import pytest

import graphcore as gc
from tests.gradcheck import check_hvp, check_op

rng = np.random.default_rng(11)


def r(*shape, lo=None):
    a = rng.standard_normal(shape)
    return a if lo is None else np.abs(a) + lo


def value(build, *arrays):
    """``build`` applied to input nodes holding ``arrays``, run once on a tape machine."""
    g = gc.NewGraph()
    nodes = [gc.NodeFromAny(g, a, gc.WithName(f"in{i}")) for i, a in enumerate(arrays)]
    y = build(*nodes)
    gc.NewTapeMachine(g, gc.WithWatchlist(y)).run_all()
    return y.value.copy()


def signal(shape, dt=gc.Float64, name="x"):
    g = gc.NewGraph()
    return g, gc.NewTensor(g, dt, len(shape), gc.WithShape(None, *shape[1:]), gc.WithName(name))


# ----- Conv1d ----------------------------------------------------------------------------------


def ref_conv1d(x, w, pad, stride, dil):
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad)))
    co, _, k = w.shape
    lo = (x.shape[2] + 2 * pad - dil * (k - 1) - 1) // stride + 1
    out = np.zeros((x.shape[0], co, lo))
    for i in range(lo):
        patch = xp[:, :, i * stride : i * stride + dil * (k - 1) + 1 : dil]
        out[:, :, i] = np.einsum("ncl,ocl->no", patch, w)
    return out


CONV1D_CASES = [(0, 1, 1), (1, 2, 1), (2, 1, 2), (0, 3, 2)]


@pytest.mark.parametrize("pad,stride,dil", CONV1D_CASES)
def test_conv1d_values_and_gradients(pad, stride, dil):
    x, w = r(2, 3, 11), r(4, 3, 3)
    got = value(lambda a, b: gc.Conv1d(a, b, pad=pad, stride=stride, dilation=dil), x, w)
    np.testing.assert_allclose(got, ref_conv1d(x, w, pad, stride, dil), rtol=1e-12, atol=1e-12)
    conv = lambda a, b: gc.Conv1d(a, b, 3, pad, stride, dil)  # noqa: E731 (Gorgonia's order)
    check_op(conv, [x, w])
    check_hvp(lambda a, b: gc.Tanh(conv(a, b)), [x, w * 0.5])


def test_conv1d_free_batch_and_shape():
    w = r(4, 3, 3)
    check_op(lambda a: gc.Conv1d(a, gc.NewConstant(w, dtype=a.dtype), pad=1), [r(3, 3, 8)],
             free_batch=True)
    g, x = signal((1, 3, 8))
    assert gc.Conv1d(x, gc.NewConstant(w), pad=1, stride=2).shape == (None, 4, 4)


def test_conv1d_errors_name_the_op_shapes_and_fix():
    g, x = signal((1, 3, 8))
    w = gc.NewTensor(g, gc.Float64, 3, gc.WithShape(5, 2, 3), gc.WithName("filt"))
    with pytest.raises(gc.ShapeError, match=r"Conv1d: input 'x' \(None, 3, 8\).*3 channels.*"
                                             r"'filt' \(5, 2, 3\)"):
        gc.Conv1d(x, w)
    img = gc.NewTensor(g, gc.Float64, 4, gc.WithShape(None, 3, 1, 8), gc.WithName("img"))
    w3 = gc.NewTensor(g, gc.Float64, 3, gc.WithShape(5, 3, 3), gc.WithName("w3"))
    with pytest.raises(gc.ShapeError, match=r"Conv1d: input 'img' \(None, 3, 1, 8\).*3-D NCL"):
        gc.Conv1d(img, w3)
    with pytest.raises(gc.ShapeError, match=r"Conv1d: kernel=5 does not match.*'w3'"):
        gc.Conv1d(x, w3, kernel=5)
    with pytest.raises(gc.ShapeError, match=r"Conv1d: the length of 'x'.*smaller than the "
                                             r"kernel's reach \(9\)"):
        gc.Conv1d(x, w3, dilation=4)
    with pytest.raises(ValueError, match="Conv1d: stride must be an int >= 1"):
        gc.Conv1d(x, w3, stride=0)
    w32 = gc.NewTensor(g, gc.Float32, 3, gc.WithShape(5, 3, 3), gc.WithName("w32"))
    with pytest.raises(gc.DtypeError, match="Conv1d"):
        gc.Conv1d(x, w32)


# ----- Im2Col ----------------------------------------------------------------------------------


def ref_im2col(x, k, p, s, d):
    xp = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])))
    ho = (x.shape[2] + 2 * p[0] - d[0] * (k[0] - 1) - 1) // s[0] + 1
    wo = (x.shape[3] + 2 * p[1] - d[1] * (k[1] - 1) - 1) // s[1] + 1
    out = np.zeros((x.shape[0], ho, wo, x.shape[1] * k[0] * k[1]))
    for i in range(ho):
        for j in range(wo):
            patch = xp[:, :, i * s[0] : i * s[0] + d[0] * (k[0] - 1) + 1 : d[0],
                       j * s[1] : j * s[1] + d[1] * (k[1] - 1) + 1 : d[1]]
            out[:, i, j] = patch.reshape(x.shape[0], -1)
    return out


IM2COL_CASES = [((2, 2), (0, 0), (1, 1), (1, 1)), ((3, 2), (1, 0), (2, 1), (1, 2)),
                ((2, 3), (1, 2), (3, 2), (2, 1))]


@pytest.mark.parametrize("k,p,s,d", IM2COL_CASES)
def test_im2col_values_and_gradients(k, p, s, d):
    x = r(2, 3, 7, 8)
    got = value(lambda a: gc.Im2Col(a, k, p, s, d), x)
    np.testing.assert_array_equal(got, ref_im2col(x, k, p, s, d))
    check_op(lambda a: gc.Im2Col(a, k, p, s, d), [x], free_batch=True)
    hv = check_hvp(lambda a: gc.Im2Col(a, k, p, s, d), [x])
    assert not hv.any()  # linear
    check_hvp(lambda a: gc.Square(gc.Im2Col(a, k, p, s, d)), [x])


def test_im2col_gradient_counts_each_pixels_patches():
    g = gc.NewGraph()
    x = gc.NodeFromAny(g, np.zeros((1, 1, 3, 3)), gc.WithName("x"))
    (dx,) = gc.Grad(gc.Sum(gc.Im2Col(x, 2)), x)
    gc.NewTapeMachine(g).run_all()
    np.testing.assert_array_equal(dx.value[0, 0], [[1, 2, 1], [2, 4, 2], [1, 2, 1]])


def test_im2col_errors():
    g, x = signal((1, 3, 8))
    with pytest.raises(gc.ShapeError, match=r"Im2Col: input 'x' \(None, 3, 8\).*4-D NCHW"):
        gc.Im2Col(x, 2)
    img = gc.NewTensor(g, gc.Float64, 4, gc.WithShape(None, 1, 4, 4), gc.WithName("img"))
    with pytest.raises(gc.ShapeError, match="Im2Col: the height of 'img'.*smaller than the kernel"):
        gc.Im2Col(img, 5)
    with pytest.raises(ValueError, match="Im2Col: kernel must be"):
        gc.Im2Col(img, 0)


# ----- 1-D pooling -----------------------------------------------------------------------------


def ref_pool1d(x, k, p, s, mode):
    xp = np.pad(x, ((0, 0), (0, 0), (p, p)), constant_values=-np.inf if mode == "max" else 0.0)
    lo = (x.shape[2] + 2 * p - k) // s + 1
    wins = np.stack([xp[:, :, i * s : i * s + k] for i in range(lo)], axis=2)
    return wins.max(axis=3) if mode == "max" else wins.mean(axis=3)


POOL1D_CASES = [(2, 0, 2), (3, 1, 2), (3, 2, 1), (2, 1, 3)]


@pytest.mark.parametrize("mode,fn", [("max", gc.MaxPool1D), ("avg", gc.AveragePool1D)])
@pytest.mark.parametrize("k,p,s", POOL1D_CASES)
def test_pool1d_values_and_gradients(mode, fn, k, p, s):
    x = rng.permutation(2 * 3 * 9).reshape(2, 3, 9) / 7.0  # no ties: finite differences hold
    got = value(lambda a: fn(a, k, p, s), x)
    np.testing.assert_allclose(got, ref_pool1d(x, k, p, s, mode), rtol=1e-12, atol=1e-12)
    check_op(lambda a: fn(a, k, p, s), [x], free_batch=True)
    hv = check_hvp(lambda a: fn(a, k, p, s), [x])
    assert not hv.any()  # piecewise linear
    check_hvp(lambda a: gc.Square(fn(a, k, p, s)), [x])


def test_pool1d_names_defaults_and_errors():
    assert gc.AvgPool1D is gc.AveragePool1D
    g, x = signal((1, 2, 9))
    assert gc.MaxPool1D(x).shape == (None, 2, 4)  # kernel 2, stride 2, floor
    with pytest.raises(ValueError, match="MaxPool1D: pad 2 must be smaller than the kernel 2"):
        gc.MaxPool1D(x, kernel=2, pad=2)
    with pytest.raises(gc.ShapeError, match=r"AveragePool1D: the length of 'x' \(None, 2, 9\)"):
        gc.AveragePool1D(x, kernel=12, pad=1)
    img = gc.NewTensor(g, gc.Float64, 4, gc.WithShape(None, 2, 3, 3), gc.WithName("img"))
    with pytest.raises(gc.ShapeError, match=r"MaxPool1D: input 'img' .* 3-D NCL"):
        gc.MaxPool1D(img)
    with pytest.raises(ValueError, match="MaxPool1D: stride must be an int >= 1, got 0"):
        gc.MaxPool1D(x, stride=0)


# ----- GlobalAveragePool2D ---------------------------------------------------------------------


def test_global_average_pool_values_and_gradients():
    x = r(2, 3, 4, 5)
    got = value(gc.GlobalAveragePool2D, x)
    np.testing.assert_allclose(got, x.mean(axis=(2, 3), keepdims=True), rtol=1e-12)
    check_op(gc.GlobalAveragePool2D, [x], free_batch=True)
    assert not check_hvp(gc.GlobalAveragePool2D, [x]).any()  # linear
    check_hvp(lambda a: gc.Square(gc.GlobalAveragePool2D(a)), [x])


def test_global_average_pool_errors():
    g, x = signal((1, 3, 8))
    with pytest.raises(gc.ShapeError, match=r"GlobalAveragePool2D: input 'x' \(None, 3, 8\).*4-D"):
        gc.GlobalAveragePool2D(x)
    with pytest.raises(gc.ShapeError, match="empty H x W plane"):
        gc.GlobalAveragePool2D(gc.NewConstant(np.zeros((1, 2, 0, 3))))


# ----- Upsample2D ------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [1, 2, (3, 2)])
def test_upsample_values_and_gradients(scale):
    x = r(2, 3, 3, 4)
    sh, sw = (scale, scale) if isinstance(scale, int) else scale
    got = value(lambda a: gc.Upsample2D(a, scale), x)
    np.testing.assert_array_equal(got, x.repeat(sh, axis=2).repeat(sw, axis=3))
    check_op(lambda a: gc.Upsample2D(a, scale), [x], free_batch=True)
    assert not check_hvp(lambda a: gc.Upsample2D(a, scale), [x]).any()  # linear
    check_hvp(lambda a: gc.Square(gc.Upsample2D(a, scale)), [x])


def test_upsample_gradient_sums_each_block_of_a_strided_gradient():
    g = gc.NewGraph()
    x = gc.NodeFromAny(g, np.zeros((1, 1, 2, 2)), gc.WithName("x"))
    w = gc.NewConstant(np.arange(16.0).reshape(1, 1, 4, 4))
    # the upstream gradient of a transposed upsampling reaches the op as a strided view
    y = gc.Transpose(gc.Upsample2D(x, 2), (0, 1, 3, 2))
    (dx,) = gc.Grad(gc.Sum(y * w), x)
    gc.NewTapeMachine(g).run_all()
    wt = np.arange(16.0).reshape(4, 4).T
    np.testing.assert_array_equal(dx.value[0, 0], wt.reshape(2, 2, 2, 2).sum(axis=(1, 3)))


def test_upsample_errors():
    g, x = signal((1, 3, 8))
    with pytest.raises(gc.ShapeError, match=r"Upsample2D: input 'x' \(None, 3, 8\).*4-D NCHW"):
        gc.Upsample2D(x, 2)
    img = gc.NewTensor(g, gc.Float64, 4, gc.WithShape(None, 1, 4, 4), gc.WithName("img"))
    with pytest.raises(ValueError, match="Upsample2D: scale must be an int or a pair of ints >= 1"):
        gc.Upsample2D(img, 0)


# ----- Sparsemax -------------------------------------------------------------------------------


def ref_sparsemax(x, axis=-1):
    """The projection onto the simplex by bisection on tau: sum(max(z - tau, 0)) = 1."""
    z = np.moveaxis(np.asarray(x, float), axis, -1)
    lo, hi = z.min(axis=-1, keepdims=True) - 1.0, z.max(axis=-1, keepdims=True)
    for _ in range(200):
        mid = (lo + hi) / 2
        big = np.maximum(z - mid, 0).sum(axis=-1, keepdims=True) > 1
        lo, hi = np.where(big, mid, lo), np.where(big, hi, mid)
    return np.moveaxis(np.maximum(z - (lo + hi) / 2, 0), -1, axis)


def away_from_kinks(x, axis, gap=1e-3):
    """``x``, checked to have every entry at least ``gap`` from its slice's threshold tau
    (finite differences that straddle a change of support are wrong)."""
    support = ref_sparsemax(x, axis) > 0
    tau = ((x * support).sum(axis, keepdims=True) - 1) / support.sum(axis, keepdims=True)
    assert np.abs(x - tau).min() > gap
    return x


@pytest.mark.parametrize("shape,axis", [((4, 5), -1), ((4, 5), 0), ((2, 3, 4), 1), ((6,), 0)])
def test_sparsemax_matches_the_projection(shape, axis):
    x = r(*shape) * 2
    got = value(lambda a: gc.Sparsemax(a, axis), x)
    np.testing.assert_allclose(got, ref_sparsemax(x, axis), atol=1e-12)
    np.testing.assert_allclose(got.sum(axis=axis), 1.0, rtol=1e-12)
    assert (got == 0).any()  # sparse, unlike softmax


def test_sparsemax_ties_large_values_and_float32():
    x = np.array([[1.0, 1.0, 1.0], [1e6, 1e6 - 0.5, -1e6], [3.0, 0.0, 0.0]])
    got = value(gc.Sparsemax, x)
    np.testing.assert_allclose(got, [[1 / 3] * 3, [0.75, 0.25, 0.0], [1.0, 0.0, 0.0]])
    got32 = value(gc.Sparsemax, x.astype(np.float32))
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, got, atol=1e-6)


@pytest.mark.parametrize("shape,axis", [((4, 5), -1), ((2, 3, 4), 1)])
def test_sparsemax_gradients(shape, axis):
    x = away_from_kinks(np.random.default_rng(3).standard_normal(shape), axis)
    check_op(lambda a: gc.Sparsemax(a, axis), [x], free_batch=axis != 0)
    assert not check_hvp(lambda a: gc.Sparsemax(a, axis), [x]).any()  # piecewise linear
    check_hvp(lambda a: gc.Square(gc.Sparsemax(a, axis)), [x])


def test_sparsemax_errors():
    g, x = signal((1, 3, 8))
    with pytest.raises(gc.ShapeError, match=r"Sparsemax: axis 0 of 'x' \(None, 3, 8\).*free"):
        gc.Sparsemax(x, 0)
    with pytest.raises(gc.ShapeError, match="Sparsemax axis"):
        gc.Sparsemax(x, 3)
    with pytest.raises(gc.DtypeError, match="Sparsemax needs a Float32 or Float64"):
        gc.Sparsemax(gc.NewConstant(np.arange(3)))


# ----- BinaryXent ------------------------------------------------------------------------------


def probs(*shape):
    return rng.uniform(0.05, 0.95, shape)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_binary_xent_values_and_gradients(reduction):
    p, t = probs(4, 3), rng.random((4, 3))
    want = -(t * np.log(p) + (1 - t) * np.log(1 - p))
    want = {"none": want, "mean": want.mean(), "sum": want.sum()}[reduction]
    got = value(lambda a, b: gc.BinaryXent(a, b, reduction), p, t)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    check_op(lambda a, b: gc.BinaryXent(a, b, reduction), [p, t], free_batch=True)
    check_hvp(lambda a, b: gc.BinaryXent(a, b, reduction), [p, t])


@pytest.mark.parametrize("dt", [np.float64, np.float32])
def test_binary_xent_is_finite_at_0_and_1(dt):
    # Gorgonia's log(1 + 1e-16 - p) rounds to log(0) = -inf here; the logs are floored
    p = np.array([0.0, 0.0, 1.0, 1.0, 0.5], dt)
    t = np.array([1.0, 0.0, 0.0, 1.0, 0.5], dt)
    g = gc.NewGraph()
    pn = gc.NodeFromAny(g, p, gc.WithName("p"))
    tn = gc.NodeFromAny(g, t, gc.WithName("t"))
    loss = gc.BinaryXent(pn, tn)
    dp, dt_ = gc.Grad(gc.Sum(loss), pn, tn)
    gc.NewTapeMachine(g, gc.WithWatchlist(loss)).run_all()
    cap = 100.0 if dt == np.float64 else -np.log(np.finfo(np.float32).tiny)  # 87.3
    np.testing.assert_allclose(loss.value, [cap, 0.0, cap, 0.0, np.log(2)], rtol=1e-6)
    # the floored loss is flat where a log is floored; elsewhere -t/p + (1-t)/(1-p)
    np.testing.assert_allclose(dp.value, [0.0, 1.0, 0.0, -1.0, 0.0], atol=1e-6)
    assert np.isfinite(dt_.value).all()


def test_binary_xent_errors():
    g = gc.NewGraph()
    p = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("p"))
    t = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("t"))
    with pytest.raises(gc.ShapeError, match=r"BinaryXent: probabilities 'p' \(None, 3\).*"
                                             r"targets 't' \(None, 2\)"):
        gc.BinaryXent(p, t)
    t32 = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 3), gc.WithName("t32"))
    with pytest.raises(gc.DtypeError, match="BinaryXent.*'t32'.*convert the targets"):
        gc.BinaryXent(p, t32)
    with pytest.raises(ValueError, match="BinaryXent: reduction must be one of"):
        gc.BinaryXent(p, p, "avg")


# ----- GroupNorm -------------------------------------------------------------------------------


def ref_group_norm(x, scale, bias, groups, eps):
    n, c = x.shape[:2]
    xg = x.reshape(n, groups, -1)
    xhat = (xg - xg.mean(axis=2, keepdims=True)) / np.sqrt(xg.var(axis=2, keepdims=True) + eps)
    tail = (1,) * (x.ndim - 2)
    return xhat.reshape(x.shape) * scale.reshape((1, c) + tail) + bias.reshape((1, c) + tail)


GN_CASES = [((3, 6), 3), ((2, 6, 5), 2), ((2, 4, 3, 3), 2), ((2, 4, 3, 3), 1), ((2, 4, 2, 2), 4)]


@pytest.mark.parametrize("shape,groups", GN_CASES)
def test_group_norm_values_and_gradients(shape, groups):
    c = shape[1]
    x, scale, bias = r(*shape) * 2 + 1, r(c, lo=0.5), r(c)
    got = value(lambda a, s, b: gc.GroupNorm(a, s, b, groups, 1e-5), x, scale, bias)
    np.testing.assert_allclose(got, ref_group_norm(x, scale, bias, groups, 1e-5), atol=1e-12)
    check_op(lambda a, s, b: gc.GroupNorm(a, s, b, groups), [x, scale, bias])
    check_hvp(lambda a, s, b: gc.Tanh(gc.GroupNorm(a, s, b, groups)), [x, scale, bias],
              rtol=1e-5)


def test_group_norm_free_batch_broadcast_parameters_and_float32():
    scale, bias = r(1, 4, 1, 1, lo=0.5), r(1, 4, 1, 1)
    check_op(lambda a: gc.GroupNorm(a, gc.NewConstant(scale, dtype=a.dtype),
                                    gc.NewConstant(bias, dtype=a.dtype), 2),
             [r(3, 4, 2, 3)], free_batch=True)
    check_op(lambda a, s, b: gc.GroupNorm(a, s, b, 2), [r(2, 4, 2, 3), scale, bias])


def test_group_norm_same_in_eval_and_errors():
    x = r(3, 4, 2, 2)
    g, xn = signal(x.shape)
    y = gc.GroupNorm(xn, np.ones(4), np.zeros(4), 2)
    gc.Let(xn, x)
    vm = gc.NewTapeMachine(g, gc.EvalMode(), gc.WithWatchlist(y))
    vm.run_all()
    np.testing.assert_allclose(y.value, ref_group_norm(x, np.ones(4), np.zeros(4), 2, 1e-5))
    with pytest.raises(gc.ShapeError, match=r"GroupNorm: 'x' \(None, 4, 2, 2\).*4 channels.*"
                                             r"3 groups; use a number of groups that divides 4"):
        gc.GroupNorm(xn, np.ones(4), np.zeros(4), 3)
    with pytest.raises(gc.ShapeError, match=r"GroupNorm: scale .* must have shape \(4,\) or "
                                             r"\(1, 4, 1, 1\)"):
        gc.GroupNorm(xn, np.ones(2), np.zeros(4), 2)
    with pytest.raises(ValueError, match="GroupNorm: groups must be an int >= 1"):
        gc.GroupNorm(xn, np.ones(4), np.zeros(4), 0)
    v = gc.NewVector(g, gc.Float64, gc.WithShape(None), gc.WithName("v"))
    with pytest.raises(gc.ShapeError, match=r"GroupNorm: input 'v' \(None,\)"):
        gc.GroupNorm(v, np.ones(4), np.zeros(4), 2)


# ----- CTCLoss ---------------------------------------------------------------------------------


def ref_ctc(lp, tg, il, tl):
    """Each example's CTC loss by enumerating every path of its steps (tiny T and C only)."""
    out = []
    for n in range(lp.shape[1]):
        want, total = list(tg[n, : tl[n]]), -np.inf
        for path in itertools.product(range(lp.shape[2]), repeat=int(il[n])):
            collapsed = [k for k, _ in itertools.groupby(path) if k != 0]
            if collapsed == want:
                total = np.logaddexp(total, sum(lp[t, n, k] for t, k in enumerate(path)))
        out.append(-total)
    return np.array(out)


def log_softmax(z):
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


# repeats (1, 1) need a blank between them; an empty target; inputs shorter than T
CTC_TARGETS = np.array([[1, 2, 1], [1, 1, 0], [2, 0, 0], [0, 0, 0]])
CTC_IN, CTC_TL = np.array([5, 4, 5, 3]), np.array([3, 2, 1, 0])


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_ctc_matches_enumerating_the_alignments(reduction):
    lp = log_softmax(r(5, 4, 3))
    per = ref_ctc(lp, CTC_TARGETS, CTC_IN, CTC_TL)
    want = {"none": per, "sum": per.sum(), "mean": (per / np.maximum(CTC_TL, 1)).mean()}
    got = value(lambda *a: gc.CTCLoss(*a, reduction=reduction), lp, CTC_TARGETS, CTC_IN, CTC_TL)
    np.testing.assert_allclose(got, want[reduction], rtol=1e-12)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_ctc_gradients(reduction):
    # the gradient is exact for any log-probs, normalised or not
    for lp in (r(5, 4, 3), log_softmax(r(5, 4, 3))):
        check_op(lambda *a: gc.CTCLoss(*a, reduction=reduction),
                 [lp, CTC_TARGETS, CTC_IN, CTC_TL])
    check_op(lambda z, *a: gc.CTCLoss(gc.LogSoftMax(z), *a, reduction=reduction),
             [r(6, 4, 5), rng.integers(1, 5, (4, 3)), np.array([6, 6, 5, 4]),
              np.array([3, 2, 0, 2])])


def test_ctc_gradient_kernel_runs_the_forward_itself_without_a_saved_one():
    lp = log_softmax(r(5, 4, 3))
    ins = [lp, CTC_TARGETS, CTC_IN, CTC_TL]
    g = gc.NewGraph()
    nodes = [gc.NodeFromAny(g, a, gc.WithName(f"in{i}")) for i, a in enumerate(ins)]
    (d,) = gc.Grad(gc.CTCLoss(*nodes), nodes[0])
    assert d.op.name == "CTCLossGrad"
    gc.NewTapeMachine(g).run_all()  # the gradient kernel reuses the forward's alphas
    loss_value = np.zeros(())
    alone = d.op.compute([*ins, np.array(1.0), loss_value], gc.ExecContext())  # nothing saved
    np.testing.assert_allclose(alone, d.value, rtol=1e-12)


def test_ctc_free_steps_and_batch_and_int32_lengths():
    g = gc.NewGraph()
    z = gc.NewTensor(g, gc.Float64, 3, gc.WithShape(None, None, 4), gc.WithName("z"))
    tg = gc.NewMatrix(g, gc.Int32, gc.WithShape(None, 2), gc.WithName("tg"))
    il = gc.NewVector(g, gc.Int32, gc.WithShape(None), gc.WithName("il"))
    tl = gc.NewVector(g, gc.Int32, gc.WithShape(None), gc.WithName("tl"))
    loss = gc.CTCLoss(gc.LogSoftMax(z), tg, il, tl, "none")
    assert loss.shape == (None,)
    (dz,) = gc.Grad(gc.Sum(loss), z)
    vm = gc.NewTapeMachine(g, gc.WithWatchlist(loss))
    for t_len, n in ((4, 3), (6, 2)):
        zv = r(t_len, n, 4)
        tgv, ilv = rng.integers(1, 4, (n, 2)).astype(np.int32), np.full(n, t_len, np.int32)
        tlv = np.full(n, 2, np.int32)
        for node, v in ((z, zv), (tg, tgv), (il, ilv), (tl, tlv)):
            gc.Let(node, v)
        vm.run_all()
        np.testing.assert_allclose(loss.value, ref_ctc(log_softmax(zv), tgv, ilv, tlv))
        assert dz.value.shape == (t_len, n, 4)


def test_ctc_impossible_alignment_is_infinite_with_a_zero_gradient():
    # two equal targets need 3 steps (1, blank, 1); 2 are given for example 0
    lp = log_softmax(r(3, 2, 3))
    g = gc.NewGraph()
    lpn = gc.NodeFromAny(g, lp, gc.WithName("lp"))
    args = [gc.NodeFromAny(g, np.array(a), gc.WithName(nm))
            for a, nm in (([[1, 1], [1, 2]], "tg"), ([2, 3], "il"), ([2, 2], "tl"))]
    loss = gc.CTCLoss(lpn, *args, reduction="none")
    (d,) = gc.Grad(gc.Sum(loss), lpn)
    gc.NewTapeMachine(g, gc.WithWatchlist(loss)).run_all()
    assert loss.value[0] == np.inf and np.isfinite(loss.value[1])
    assert np.isfinite(d.value).all() and not d.value[:, 0].any()


def test_ctc_build_errors_name_operands_and_fix():
    g = gc.NewGraph()
    lp = gc.NewTensor(g, gc.Float64, 3, gc.WithShape(10, 4, 5), gc.WithName("lp"))
    tg = gc.NewMatrix(g, gc.Int64, gc.WithShape(4, 3), gc.WithName("tg"))
    il = gc.NewVector(g, gc.Int64, gc.WithShape(4), gc.WithName("il"))
    tl = gc.NewVector(g, gc.Int64, gc.WithShape(4), gc.WithName("tl"))
    with pytest.raises(gc.ShapeError, match=r"CTCLoss: 'tg3' \(3, 3\) Int64 has 3 examples but "
                                             r"log_probs 'lp' \(10, 4, 5\) Float64 has 4"):
        gc.CTCLoss(lp, gc.NewMatrix(g, gc.Int64, gc.WithShape(3, 3), gc.WithName("tg3")), il, tl)
    ftg = gc.NewMatrix(g, gc.Float64, gc.WithShape(4, 3), gc.WithName("ftg"))
    with pytest.raises(gc.DtypeError, match=r"CTCLoss: targets 'ftg' .* must be integers"):
        gc.CTCLoss(lp, ftg, il, tl)
    with pytest.raises(gc.ShapeError, match=r"CTCLoss: log_probs 'lp2' .* \(T, N, C\)"):
        gc.CTCLoss(gc.NewTensor(g, gc.Float64, 2, gc.WithShape(4, 3), gc.WithName("lp2")),
                   tg, il, tl)
    with pytest.raises(gc.ShapeError, match=r"CTCLoss: input_lengths 'm' .* must be 1-D"):
        gc.CTCLoss(lp, tg, gc.NewMatrix(g, gc.Int64, gc.WithShape(4, 1), gc.WithName("m")), tl)
    with pytest.raises(ValueError, match="CTCLoss: reduction must be one of"):
        gc.CTCLoss(lp, tg, il, tl, "avg")


@pytest.mark.parametrize("bad,match", [
    ({"tg": [[1, 5, 1]]}, r"target 5 \(example 0, position 1\) is not a class in \[1, 5\)"),
    ({"tg": [[0, 2, 1]]}, r"target 0 .* class 0 is the blank"),
    ({"il": [0]}, r"input lengths must lie in \[1, 6\]"),
    ({"il": [7]}, r"input lengths must lie in \[1, 6\]"),
    ({"tl": [4]}, r"target lengths must lie in \[0, 3\]"),
])
def test_ctc_run_errors_name_the_node(bad, match):
    vals = {"tg": [[1, 2, 9]], "il": [6], "tl": [2]}  # 9 lies past the target length: ignored
    vals.update(bad)
    g = gc.NewGraph()
    lp = gc.NodeFromAny(g, log_softmax(r(6, 1, 5)), gc.WithName("lp"))
    ins = [gc.NodeFromAny(g, np.array(vals[k]), gc.WithName(k)) for k in ("tg", "il", "tl")]
    loss = gc.CTCLoss(lp, *ins)
    with pytest.raises(ValueError, match=match) as e:
        gc.NewTapeMachine(g).run_all()
    assert f"CTCLoss node {loss.name!r} (targets 'tg')" in str(e.value)


def test_ctc_gradient_is_first_order_only():
    g = gc.NewGraph()
    lp = gc.NodeFromAny(g, log_softmax(r(4, 1, 3)), gc.WithName("lp"))
    args = [gc.NodeFromAny(g, np.array(a), gc.WithName(nm))
            for a, nm in (([[1, 2]], "tg"), ([4], "il"), ([2], "tl"))]
    (d,) = gc.Grad(gc.CTCLoss(lp, *args), lp)
    with pytest.raises(gc.GradError, match="CTCLossGrad.*not differentiable"):
        gc.Grad(gc.Sum(gc.Square(d)), lp)


# ----- machines ----------------------------------------------------------------------------------


def test_tape_runs_of_the_new_ops_allocate_no_activation_sized_buffers():
    f = np.float32
    g = gc.NewGraph()
    x = gc.NodeFromAny(g, r(64, 4, 256).astype(f), gc.WithName("x"))
    w = gc.NodeFromAny(g, (r(8, 4, 3) * 0.3).astype(f), gc.WithName("w"))
    h = gc.Conv1d(x, w, pad=1)  # (64, 8, 256) float32: 512 KiB, like every activation below
    h = gc.GroupNorm(h, np.ones(8, f), np.zeros(8, f), 4)
    h = gc.Sparsemax(gc.MaxPool1D(gc.Tanh(h), 2, 0, 1), 1)
    img = gc.Upsample2D(gc.Reshape(h, (64, 8, 15, 17)), 2)
    cost = gc.Mean(gc.Square(gc.Im2Col(img, 3, 1, 1)))
    half = gc.NewConstant(np.full((64, 8, 1, 1), 0.5, f))
    cost = cost + gc.BinaryXent(gc.Sigmoid(gc.GlobalAveragePool2D(img)), half, "mean")
    lp = gc.LogSoftMax(gc.Transpose(h[:, :, :128], (2, 0, 1)))  # (T, N, C) = (128, 64, 8)
    labels = [gc.NodeFromAny(g, a, gc.WithName(nm)) for a, nm in (
        (rng.integers(1, 8, (64, 6)), "tg"), (np.full(64, 128), "il"), (np.full(64, 6), "tl"))]
    cost = cost + gc.CTCLoss(lp, *labels)
    gc.Grad(cost, w)
    vm = gc.NewTapeMachine(g, gc.BindDualValues(w))
    vm.run_all()
    tracemalloc.start()
    vm.run_all()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # numpy's ufunc and copy buffers are bounded (8192 elements each) whatever the sizes
    assert peak < 200_000, peak
