"""Gradient checks for the core op families (arith, unary, linalg, reduce, softmax)."""

import numpy as np
import pytest

import graphcore as gc
from tests.gradcheck import check_op

rng = np.random.default_rng(0)


def r(*shape, lo=None):
    a = rng.standard_normal(shape)
    if lo is not None:
        a = np.abs(a) + lo
    return a


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


@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("shape", [(3,), (4, 5)])
def test_unary_grad(name, shape):
    fn, lo = UNARY[name]
    x = r(*shape, lo=lo)
    if name in ("Rectify", "LeakyRelu", "Elu", "Abs"):
        x = np.where(np.abs(x) < 0.05, 0.3, x)  # keep away from the kink
    check_op(fn, [x], free_batch=len(shape) == 2)


@pytest.mark.parametrize("fn", [gc.Add, gc.Sub, gc.HadamardProd, gc.HadamardDiv, gc.Pow])
@pytest.mark.parametrize("sa,sb", [((3, 4), (3, 4)), ((3, 4), (1, 4)), ((3, 4), (4,)),
                                   ((3, 1), (1, 4)), ((2, 3, 4), (3, 1)), ((3, 4), ())])
def test_binary_broadcast_grad(fn, sa, sb):
    a, b = r(*sa, lo=0.5), r(*sb, lo=0.5)
    check_op(fn, [a, b])


def test_binary_free_batch():
    check_op(lambda x, b: gc.Add(gc.HadamardProd(x, x), b), [r(5, 3), r(5, 3)], free_batch=True)


@pytest.mark.parametrize("sa,sb", [((3, 4), (4, 2)), ((3, 4), (4,)), ((4,), (4, 2)), ((4,), (4,))])
def test_matmul_grad(sa, sb):
    check_op(gc.Mul, [r(*sa), r(*sb)])


def test_mul_scalar_is_elementwise():
    check_op(gc.Mul, [r(3, 4), r()])


@pytest.mark.parametrize("kind", [gc.Sum, gc.Mean])
@pytest.mark.parametrize("axes,keep", [((), False), ((0,), False), ((1,), True), ((0, 2), False),
                                       ((-1,), False)])
def test_reduce_grad(kind, axes, keep):
    check_op(lambda x: kind(x, *axes, keepdims=keep), [r(3, 4, 2)])


def test_reduce_free_batch():
    check_op(lambda x: gc.Mean(x, 0), [r(6, 3)], free_batch=True)


@pytest.mark.parametrize("fn", [gc.SoftMax, gc.LogSoftMax])
@pytest.mark.parametrize("axis", [-1, 0])
def test_softmax_grad(fn, axis):
    check_op(lambda x: fn(x, axis), [r(3, 5)])


def test_transpose_grad():
    check_op(lambda x: gc.Mul(gc.Transpose(x), x), [r(3, 4)])


def test_reshape_grad():
    check_op(lambda x: gc.Reshape(x, (4, 3)) * 2.0, [r(3, 4)])


def test_python_operators():
    def f(a, b):
        return (a + b) * a - b / (a * a + 1.0) + (-a) ** 2.0 + gc.Sum(a @ b.T)

    check_op(f, [r(3, 4), r(3, 4)])


def test_log_softmax_rewrite_is_stable():
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 3), gc.WithName("x"))
    out = gc.SoftMax(x)
    lg = gc.Log(out)
    assert lg.op.name == "LogSoftMax"
    vm = gc.NewTapeMachine(g)
    gc.Let(x, np.array([[1000.0, -1000.0, 0.0]], np.float32))
    vm.run_all()
    assert np.isfinite(lg.value).all()
    assert lg.value[0, 1] == pytest.approx(-2000.0)


def test_log_sigmoid_and_log1p_rewrites():
    x = gc.NewConstant([0.5])
    assert gc.Log(gc.Sigmoid(x)).op.name == "Neg"
    assert gc.Log(1.0 + x).op.name == "Log1p"
    assert gc.Neg(gc.Neg(x)) is x


@pytest.mark.parametrize("name", sorted(set(gc.ops.elementwise.UNARY) - {"Sign"}))
def test_unary_kernels_run_in_place(name):
    # the tape machine may give a unary op its operand's buffer as output
    from graphcore.ops.elementwise import UnaryOp

    params = {"alpha": 0.2} if name in ("LeakyRelu", "Elu") else {}
    op = UnaryOp(name, **params)
    positive = name in ("Log", "Log2", "Log1p", "Sqrt", "InverseSqrt")
    x = np.abs(r(4, 5)) + 0.2 if positive else r(4, 5)
    want = np.empty_like(x)
    op.kernel([x], want, gc.ExecContext())()
    inplace = x.copy()
    op.kernel([inplace], inplace, gc.ExecContext())()
    np.testing.assert_array_equal(inplace, want)


def test_binary_rows_and_comparisons_are_tables():
    from graphcore.ops.elementwise import BINARY, COMPARISONS, UNARY

    assert set(BINARY) == {"Add", "Sub", "HadamardProd", "HadamardDiv", "Pow", "Maximum",
                           "Minimum"}
    assert set(COMPARISONS) == {"Lt", "Gt", "Lte", "Gte", "Eq", "Ne"}
    # every differentiable unary row but the cheapest has a fused first-order kernel
    assert {n for n, row in UNARY.items() if row.grad is not None and row.fused is None} == {
        "Neg", "NormalCdf"}


def test_every_op_has_a_gradient_or_says_why_not():
    # a gradient rule of its own, an expansion, or a declaration: not differentiable (Grad
    # refuses) or zero gradient (masks, random draws)
    import importlib
    import inspect
    import pkgutil

    from graphcore.ops.base import Op

    for info in pkgutil.walk_packages(gc.ops.__path__, "graphcore.ops."):
        module = importlib.import_module(info.name)
        for name, cls in vars(module).items():
            if not (inspect.isclass(cls) and issubclass(cls, Op)) or cls is Op:
                continue
            if cls.kernel is Op.kernel and cls.view_of is Op.view_of:
                continue  # a shared base (_PoolOp, _ConcatWindow)
            own = cls.grad is not Op.grad or cls.expand is not Op.expand
            declared = cls.zero_gradient or cls.differentiable is False
            assert own or declared, f"{info.name}.{name} has no gradient and does not say why"
