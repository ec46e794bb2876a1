"""``UseNonStable()`` / ``UseStabilization()``: Gorgonia's switches for the build-time
rewrites, as calls and as context managers."""

import numpy as np
import pytest

import graphcore as gc
from graphcore.rewrite import stabilizing


@pytest.fixture(autouse=True)
def _stabilizing_again():
    yield
    gc.UseStabilization()  # a failing test must not leave the rewrites off for the others


def test_log_softmax_is_not_rewritten_while_off():
    x = gc.NewConstant([[1.0, 2.0, 3.0]])
    gc.UseNonStable()
    plain = gc.Log(gc.SoftMax(x))
    gc.UseStabilization()
    stable = gc.Log(gc.SoftMax(x))
    assert (plain.op.name, plain.children[0].op.name) == ("Log", "SoftMax")
    assert stable.op.name == "LogSoftMax"


@pytest.mark.parametrize(
    "build, plain, stable",
    [
        (lambda x: gc.Log(1.0 + x), "Log", "Log1p"),
        (lambda x: gc.Log(gc.Sigmoid(x)), "Log", "Neg"),
        (lambda x: gc.Neg(gc.Neg(x)), "Neg", None),  # None: x itself
        (lambda x: gc.Transpose(gc.Transpose(x)), "Transpose", None),
    ],
)
def test_every_rewrite_is_switched(build, plain, stable):
    x = gc.NewConstant(np.full((2, 2), 0.5))
    with gc.UseNonStable():
        assert build(x).op.name == plain
    y = build(x)
    assert (y is x) if stable is None else (y.op.name == stable)


def test_context_manager_restores_the_setting_before():
    assert stabilizing()
    with gc.UseNonStable() as s:
        assert not stabilizing() and repr(s) == "UseNonStable()"
        with gc.UseStabilization():
            assert stabilizing()
        assert not stabilizing()
    assert stabilizing()
    with pytest.raises(RuntimeError), gc.UseNonStable():
        raise RuntimeError("restored even when the block fails")
    assert stabilizing()


def test_plain_graph_computes_the_same_where_both_are_finite():
    g = gc.NewGraph()
    z = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 4), gc.WithName("z"))
    with gc.UseNonStable():
        plain = gc.Log(gc.SoftMax(z))
    stable = gc.Log(gc.SoftMax(z))
    gc.Let(z, np.random.default_rng(0).standard_normal((3, 4)))
    gc.NewTapeMachine(g).run_all()
    np.testing.assert_allclose(plain.value, stable.value, rtol=1e-12)
    gc.Let(z, np.array([[0.0, -800.0, 0.0, 0.0]]))
    with np.errstate(divide="ignore"):  # the plain form takes log(0)
        gc.NewTapeMachine(g).run_all()
    assert np.isneginf(plain.value[0, 1]) and np.isfinite(stable.value).all()


def test_gradients_built_while_off_keep_plain_ops():
    g = gc.NewGraph()
    w = gc.NewVector(g, gc.Float64, gc.WithShape(3), gc.WithName("w"), gc.WithValue([1.0, 2, 3]))
    with gc.UseNonStable():
        cost = gc.Sum(gc.Log(gc.SoftMax(w)))
        (dw,) = gc.Grad(cost, w)
    gc.NewTapeMachine(g).run_all()
    s = np.exp([1.0, 2, 3]) / np.exp([1.0, 2, 3]).sum()
    np.testing.assert_allclose(dw.value, 1 - 3 * s)
