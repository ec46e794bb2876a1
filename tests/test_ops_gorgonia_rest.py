"""The rest of Gorgonia's graph API: Ceil, Floor, MinBetween, MaxBetween, ConvType, KeepDims,
ReduceAdd, ReduceMul, At, SizeOf, DiagFlat, Auto and Broadcast. Each differentiable one is
gradient-checked in float64, to second order too."""

import numpy as np
import pytest

import graphcore as gc
from tests.gradcheck import check_hvp, check_op

rng = np.random.default_rng(11)


def r(*shape):
    return rng.standard_normal(shape)


def run(g, *watch):
    gc.NewTapeMachine(g, gc.WithWatchlist(*watch)).run_all()


# ----- Ceil, Floor, MinBetween, MaxBetween ------------------------------------------------------


@pytest.mark.parametrize("fn, ref", [(gc.Ceil, np.ceil), (gc.Floor, np.floor)])
def test_ceil_floor_values_and_zero_gradient(fn, ref):
    g = gc.NewGraph()
    a = np.array([[-1.5, -0.2, 0.0], [0.3, 2.0, 2.7]])
    x = gc.NodeFromAny(g, a, gc.WithName("x"))
    y = fn(x)
    cost = gc.Sum(y * x)  # d/dx = step(x) + x * 0
    (dx,) = gc.Grad(cost, x)
    run(g, y)
    np.testing.assert_array_equal(y.value, ref(a))
    np.testing.assert_array_equal(dx.value, ref(a))
    check_op(lambda v: fn(v) * v, [a + 0.05])  # away from the steps


@pytest.mark.parametrize("fn", [gc.Ceil, gc.Floor])
def test_ceil_floor_alone_give_a_zero_gradient(fn):
    g = gc.NewGraph()
    x = gc.NodeFromAny(g, np.array([0.5, 1.5]), gc.WithName("x"))
    (dx,) = gc.Grad(gc.Sum(fn(x)), x)
    run(g)
    assert dx.value.tolist() == [0.0, 0.0]


def test_ceil_needs_a_float_operand():
    with pytest.raises(gc.DtypeError, match="Ceil needs a Float32 or Float64 operand"):
        gc.Ceil(gc.NewConstant(np.array([1, 2])))


@pytest.mark.parametrize("gorgonia, ours", [(gc.MaxBetween, np.maximum),
                                            (gc.MinBetween, np.minimum)])
def test_min_max_between(gorgonia, ours):
    a, b = r(3, 4), r(3, 4)
    g = gc.NewGraph()
    y = gorgonia(gc.NodeFromAny(g, a, gc.WithName("a")), gc.NodeFromAny(g, b, gc.WithName("b")))
    run(g)
    np.testing.assert_array_equal(y.value, ours(a, b))
    check_op(gorgonia, [a, b])
    check_hvp(lambda p, q: gorgonia(p, q) * p, [a, b])
