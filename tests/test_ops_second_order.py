"""Second derivatives of every differentiable op family: Hessian-vector products checked
against finite differences of the gradient (``check_hvp``), exact zeros where the first
derivative is piecewise constant, and costs that contain gradients."""

import numpy as np
import pytest

import graphcore as gc
from tests.gradcheck import check_hvp, check_op

rng = np.random.default_rng(7)


def r(*shape, lo=None):
    a = rng.standard_normal(shape)
    if lo is not None:
        a = np.abs(a) + lo
    return a


def off_kinks(a, at=(0.0,), gap=0.05):
    """``a`` moved away from the kinks ``at`` (finite differences straddling one are wrong)."""
    a = np.array(a, dtype=float)
    for k in at:
        a = np.where(np.abs(a - k) < gap, k + 0.3, a)
    return a


# ----- elementwise -------------------------------------------------------------------------------

UNARY = {
    "Exp": (gc.Exp, None), "Log": (gc.Log, 0.5), "Log2": (gc.Log2, 0.5),
    "Log1p": (gc.Log1p, 0.1), "Expm1": (gc.Expm1, None), "Sqrt": (gc.Sqrt, 0.5),
    "Square": (gc.Square, None), "Cube": (gc.Cube, None), "Inverse": (gc.Inverse, 0.5),
    "InverseSqrt": (gc.InverseSqrt, 0.5), "Sin": (gc.Sin, None), "Cos": (gc.Cos, None),
    "Tanh": (gc.Tanh, None), "Sigmoid": (gc.Sigmoid, None), "Softplus": (gc.Softplus, None),
    "Neg": (gc.Neg, None), "Abs": (gc.Abs, 0.1), "Rectify": (gc.Rectify, None),
    "LeakyRelu": (lambda x: gc.LeakyRelu(x, 0.1), None), "Elu": (gc.Elu, None),
    "Gelu": (gc.Gelu, None), "Mish": (gc.Mish, None),
}
PIECEWISE_LINEAR = ("Rectify", "LeakyRelu", "Abs", "Neg")


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_hvp(name):
    fn, lo = UNARY[name]
    x = off_kinks(r(3, 4, lo=lo))
    # f alone: H = diag(R f''(x)); inside a product: the fused gradient's g depends on x too
    hv = check_hvp(fn, [x])
    if name in PIECEWISE_LINEAR:
        assert not hv.any(), f"{name}'' is zero away from its kink, got {hv}"
    check_hvp(lambda a: fn(a) * gc.Tanh(a), [x])


def test_elu_second_derivative_is_alpha_exp_on_the_negative_side():
    x = off_kinks(r(6))
    hv = check_hvp(lambda a: gc.Elu(a, 0.7), [x])
    assert np.all(hv[x > 0] == 0) and np.all(hv[x < 0] != 0)


@pytest.mark.parametrize("fn", [gc.Add, gc.Sub, gc.HadamardProd, gc.HadamardDiv, gc.Pow])
@pytest.mark.parametrize("sa,sb", [((3, 4), (3, 4)), ((3, 4), (1, 4)), ((3, 1), (4,)),
                                   ((2, 3, 4), ()), ((3, 4), (3, 1))])
def test_binary_hvp(fn, sa, sb):
    check_hvp(lambda a, b: gc.Tanh(fn(a, b)), [r(*sa, lo=0.5), r(*sb, lo=0.5)])


@pytest.mark.parametrize("fn", [gc.Maximum, gc.Minimum])
def test_maximum_minimum_hvp(fn):
    a, b = r(3, 4), r(3, 4)
    b = np.where(np.abs(a - b) < 0.05, b + 0.3, b)
    hv = check_hvp(fn, [a, b])
    assert not hv.any()  # piecewise linear
    check_hvp(lambda x, y: gc.Square(fn(x, y)), [a, b])

    # on a tie the gradient is split evenly, and differentiating it again is well defined
    g = gc.NewGraph()
    x = gc.NodeFromAny(g, np.ones(3), gc.WithName("x"))
    y = gc.NodeFromAny(g, np.array([1.0, 2.0, 0.0]), gc.WithName("y"))
    (dx,) = gc.Grad(gc.Sum(fn(x, y) * y), x)  # y * share of x
    ddx, ddy = gc.Grad(gc.Sum(dx), x, y)  # the share is piecewise constant
    gc.NewTapeMachine(g).run_all()
    share = [0.5, 0.0, 1.0] if fn is gc.Maximum else [0.5, 1.0, 0.0]
    np.testing.assert_array_equal(dx.value, np.array([1.0, 2.0, 0.0]) * share)
    np.testing.assert_array_equal(ddx.value, [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(ddy.value, share)


# ----- reductions --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [gc.Sum, gc.Mean])
@pytest.mark.parametrize("axes,keep", [((), False), ((0,), False), ((1,), True), ((0, 2), False)])
def test_sum_mean_hvp(kind, axes, keep):
    check_hvp(lambda x: gc.Square(kind(x, *axes, keepdims=keep)), [r(3, 4, 2)])


@pytest.mark.parametrize("kind", [gc.Max, gc.Min])
@pytest.mark.parametrize("axes,keep", [((), False), ((1,), False), ((0, 2), True)])
def test_max_min_hvp(kind, axes, keep):
    x = rng.permutation(24).reshape(3, 4, 2) / 5.0  # no ties
    check_hvp(lambda a: gc.Square(kind(a, *axes, keepdims=keep)) * 0.5, [x])


@pytest.mark.parametrize("axes,keep", [((1,), False), ((0, 1), True), ((-1,), True)])
def test_logsumexp_hvp(axes, keep):
    check_hvp(lambda x: gc.LogSumExp(x, *axes, keepdims=keep), [r(3, 4)])


@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("axis,keep", [(None, False), (1, False), (0, True)])
def test_norm_hvp(p, axis, keep):
    x = off_kinks(r(3, 4))
    check_hvp(lambda a: gc.Norm(a, axis, p, keep) * gc.Norm(a, axis, p, keep), [x])
    if p == 2:
        check_hvp(lambda a: gc.Norm(a, axis, p, keep), [x])


# ----- shape ops and products --------------------------------------------------------------------

SHAPE_OPS = {
    "Reshape": lambda x: gc.Reshape(x, (2, 6)),
    "Ravel": gc.Ravel,
    "Transpose": lambda x: gc.Transpose(x),
    "Slice": lambda x: x[1:, ::2],
    "Concat": lambda x: gc.Concat(0, x, gc.Tanh(x)),
    "Unconcat": lambda x: gc.Unconcat(x, 1, 2)[1],
    "Unstack": lambda x: gc.Concat(0, *gc.Unstack(x, 1)) * gc.Concat(0, *gc.Unstack(x, 1))[0],
    "ByIndices": lambda x: gc.ByIndices(x, np.array([2, 0, 2]), 0),
    "SumTo": lambda x: gc.SumTo(x, gc.NewConstant(np.zeros((1, 4)))),
    "BroadcastTo": lambda x: gc.BroadcastTo(x[0:1], x),
    "Broadcast*": lambda x: gc.BroadcastHadamardProd(x, x[0], None, [0]),
}


@pytest.mark.parametrize("name", sorted(SHAPE_OPS))
def test_shape_op_hvp(name):
    check_hvp(lambda x: gc.Square(SHAPE_OPS[name](x)), [r(3, 4)])


@pytest.mark.parametrize("sa,sb", [((3, 4), (4, 2)), ((3, 4), (4,)), ((4,), (4, 2)), ((4,), (4,))])
def test_matmul_hvp(sa, sb):
    check_hvp(lambda a, b: gc.Tanh(gc.Mul(a, b)), [r(*sa), r(*sb)])


def test_batched_matmul_tensordot_outer_hvp():
    check_hvp(lambda a, b: gc.Tanh(gc.BatchedMatMul(a, b, transB=True)), [r(2, 3, 4), r(2, 5, 4)])
    check_hvp(lambda a, b: gc.Tanh(gc.Tanh(a) @ b.T), [r(3, 4), r(2, 4)])
    check_hvp(lambda a, b: gc.Tanh(gc.Tensordot(a, b, [1, 2], [1, 0])), [r(2, 3, 4), r(4, 3, 5)])
    check_hvp(lambda a, b: gc.Tanh(gc.OuterProd(a, b)), [r(3), r(4)])


# ----- softmax family and losses -----------------------------------------------------------------


@pytest.mark.parametrize("fn", [gc.SoftMax, gc.LogSoftMax])
@pytest.mark.parametrize("axis", [-1, 0])
def test_softmax_hvp(fn, axis):
    check_hvp(lambda x: fn(x, axis), [r(3, 5)])
    check_hvp(lambda x: gc.Square(fn(x, axis)), [r(3, 5)])


def _probs(*shape):
    p = rng.random(shape) + 0.1
    return p / p.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("targets", ["probs", "indices"])
def test_softmax_cross_entropy_hvp(reduction, targets):
    t = _probs(4, 5) if targets == "probs" else np.array([1, 4, 0, 2])
    check_hvp(lambda z, y: gc.SoftmaxCrossEntropy(z, y, reduction=reduction), [r(4, 5), t])


def test_softmax_cross_entropy_hvp_other_axis():
    t = np.array([[1, 0, 2], [2, 2, 0]])  # classes along axis 1 of (2, 4, 3)
    check_hvp(lambda z, y: gc.SoftmaxCrossEntropy(z, y, axis=1, reduction="sum"), [r(2, 4, 3), t])
    check_hvp(lambda z, y: gc.SoftmaxCrossEntropy(z, y, axis=0), [r(3, 2), _probs(2, 3).T])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_sigmoid_cross_entropy_hvp(reduction):
    bce = lambda z, y: gc.SigmoidBinaryCrossEntropy(z, y, reduction)  # noqa: E731
    check_hvp(bce, [r(4, 3), rng.random((4, 3))])


# ----- convolution, pooling, batch norm, dropout -------------------------------------------------


@pytest.mark.parametrize("pad,stride,dilation", [(0, 1, 1), (1, 2, 1), (1, 1, 2)])
def test_conv2d_hvp(pad, stride, dilation):
    check_hvp(lambda x, w: gc.Tanh(gc.Conv2d(x, w, pad=pad, stride=stride, dilation=dilation)),
              [r(2, 2, 5, 5), r(3, 2, 3, 3) * 0.5])


@pytest.mark.parametrize("kernel,pad,stride", [(2, 0, 2), (3, 1, 2), (2, 1, 1)])
def test_max_pool_hvp_routes_like_the_forward(kernel, pad, stride):
    x = rng.permutation(2 * 3 * 5 * 5).reshape(2, 3, 5, 5) / 10.0  # no ties
    pool = lambda a: gc.MaxPool2D(a, kernel, pad, stride)  # noqa: E731
    assert not check_hvp(pool, [x]).any()  # piecewise linear: zero
    hv = check_hvp(lambda a: gc.Square(pool(a)) * 0.5, [x])
    # H = P^T P for the routing P: nonzero only at the pixels some window picks
    picked = np.zeros(x.shape, bool)
    g = gc.NewGraph()
    xn = gc.NodeFromAny(g, x, gc.WithName("x"))
    (dx,) = gc.Grad(gc.Sum(pool(xn)), xn)
    gc.NewTapeMachine(g).run_all()
    picked |= dx.value != 0
    assert np.all(hv.reshape(x.shape)[~picked] == 0)


@pytest.mark.parametrize("kernel,pad,stride", [(2, 0, 2), (3, 1, 2)])
def test_avg_pool_hvp(kernel, pad, stride):
    check_hvp(lambda a: gc.Square(gc.AvgPool2D(a, kernel, pad, stride)), [r(2, 3, 5, 5)])


@pytest.mark.parametrize("shape", [(6, 3), (4, 2, 3, 3)])
def test_batch_norm_hvp_in_training(shape):
    c = shape[1]
    check_hvp(lambda x, gm, bt: gc.Tanh(gc.BatchNorm(x, gm, bt)),
              [r(*shape), r(c, lo=0.5), r(c)], rtol=1e-5)


def test_batch_norm_hvp_in_eval():
    def build(x, gm, bt):
        rm, rv = np.array([0.1, -0.2, 0.3]), np.array([1.5, 0.5, 2.0])
        return gc.Tanh(gc.BatchNorm(x, gm, bt, rm, rv))

    check_hvp(build, [r(5, 3), r(3, lo=0.5), r(3)], training=False)


def test_dropout_hvp_in_eval():
    check_hvp(lambda x: gc.Square(gc.Dropout(x, 0.5)), [r(3, 4)], training=False)


def test_dropout_hvp_in_training_uses_the_runs_mask():
    # the mask of a run is shared by the forward pass and both backward passes
    g = gc.NewGraph()
    x = gc.NodeFromAny(g, r(50, 8), gc.WithName("x"))
    y = gc.Dropout(x, 0.5)
    (dx,) = gc.Grad(gc.Sum(gc.Square(y)), x)
    (hv,) = gc.Grad(gc.Sum(dx), x)  # H 1 = 2 * mask^2
    vm = gc.NewTapeMachine(g, gc.WithWatchlist(y.children[1], hv))
    vm.run_all()
    np.testing.assert_allclose(hv.value, 2 * y.children[1].value ** 2)


# ----- whole models ------------------------------------------------------------------------------


def test_tanh_mlp_softmax_cross_entropy_hvp():
    labels = np.array([0, 2, 1, 2, 0])

    def mlp(x, w1, b1, w2, b2, t):
        h = gc.Tanh(x @ w1 + b1)
        return gc.SoftmaxCrossEntropy(h @ w2 + b2, t)

    check_hvp(mlp, [r(5, 4), r(4, 6) * 0.5, r(1, 6), r(6, 3) * 0.5, r(1, 3), labels])
    onehot = np.eye(3)[labels]
    check_hvp(mlp, [r(5, 4), r(4, 6) * 0.5, r(1, 6), r(6, 3) * 0.5, r(1, 3), onehot])


def test_relu_mlp_hvp():
    def mlp(x, w1, b1, w2, t):
        return gc.SoftmaxCrossEntropy(gc.Rectify(x @ w1 + b1) @ w2, t)

    x, w1, b1 = r(5, 4), r(4, 6), r(1, 6)
    pre = x @ w1 + b1
    b1 = b1 + np.where(np.abs(pre) < 0.05, 0.3, 0.0).max(axis=0, keepdims=True)
    check_hvp(mlp, [x, w1, b1, r(6, 3), np.array([0, 2, 1, 2, 0])])


def test_gradient_penalty_differentiated_again():
    def penalty(x, w1, w2, t):
        loss = gc.SoftmaxCrossEntropy(gc.Tanh(x @ w1) @ w2, t)
        (dw1,) = gc.Grad(loss, w1)
        return gc.Sum(gc.Square(dw1))

    check_op(penalty, [r(5, 4), r(4, 6) * 0.5, r(6, 3) * 0.5, np.eye(3)[[0, 2, 1, 2, 0]]],
             check_f32=False, rtol=1e-5)


def test_gradient_penalty_through_conv_pool_and_batch_norm():
    def penalty(x, w, gm):
        h = gc.BatchNorm(gc.Conv2d(x, w, pad=1), gm, np.zeros(2))
        cost = gc.Mean(gc.Square(gc.MaxPool2D(gc.Tanh(h))))
        (dw,) = gc.Grad(cost, w)
        return gc.Sum(gc.Square(dw))

    x = rng.permutation(2 * 1 * 4 * 4).reshape(2, 1, 4, 4) / 8.0
    check_op(penalty, [x, r(2, 1, 3, 3), r(2, lo=0.5)], check_f32=False, rtol=1e-5)


def test_grad_of_relu_mask_only_is_zero():
    # d/dx of the ReLU gradient (a mask) is zero, not an error: the mask carries no gradient
    g = gc.NewGraph()
    x = gc.NodeFromAny(g, np.array([-1.0, 2.0, 3.0]), gc.WithName("x"))
    (dx,) = gc.Grad(gc.Sum(gc.Rectify(x)), x)
    (ddx,) = gc.Grad(gc.Sum(dx), x)
    gc.NewTapeMachine(g).run_all()
    assert dx.value.tolist() == [0.0, 1.0, 1.0]
    assert ddx.value.tolist() == [0.0, 0.0, 0.0]
