"""``Backpropagate(outputs, grad_outputs, wrt)``: vector-Jacobian products of non-scalar outputs,
built into the graph like ``Grad`` (which is its case of one scalar output seeded with 1)."""

import numpy as np
import pytest

import graphcore as gc
from tests.gradcheck import check_hvp, check_op

rng = np.random.default_rng(3)
A, B = rng.standard_normal((5, 4)), rng.standard_normal((5, 4))


def f_numpy(x):
    return np.tanh(A @ x) * (B @ x)


def jacobian_numpy(x):
    t = np.tanh(A @ x)
    return (1 - t**2)[:, None] * A * (B @ x)[:, None] + t[:, None] * B


def build():
    g = gc.NewGraph()
    x = gc.NewVector(g, gc.Float64, gc.WithShape(4), gc.WithName("x"))
    y = gc.Tanh(gc.Mul(gc.NewConstant(A), x)) * gc.Mul(gc.NewConstant(B), x)
    v = gc.NewVector(g, gc.Float64, gc.WithShape(5), gc.WithName("v"))
    return g, x, y, v


def test_vjp_matches_the_numpy_jacobian_for_every_fed_vector():
    g, x, y, v = build()
    (vjp,) = gc.Backpropagate(y, v, x)
    assert vjp.shape == (4,) and x.deriv is vjp and vjp.deriv_of is x
    vm = gc.NewTapeMachine(g)
    x0 = rng.standard_normal(4)
    gc.Let(x, x0)
    # the numpy Jacobian itself is right: central differences of the numpy function
    eps = 1e-6
    numeric = np.stack([(f_numpy(x0 + eps * e) - f_numpy(x0 - eps * e)) / (2 * eps)
                        for e in np.eye(4)], axis=1)
    np.testing.assert_allclose(jacobian_numpy(x0), numeric, rtol=1e-6, atol=1e-8)
    for e in [*np.eye(5), rng.standard_normal(5)]:  # every row of J, then a mix
        gc.Let(v, e)
        vm.run_all()
        np.testing.assert_allclose(y.value, f_numpy(x0), rtol=1e-12)
        np.testing.assert_allclose(vjp.value, jacobian_numpy(x0).T @ e, rtol=1e-10, atol=1e-12)


def test_several_outputs_add_up_and_outputs_may_depend_on_each_other():
    g, x, y, v = build()
    z = gc.Sum(gc.Square(y))  # depends on y, which is also an output
    (vjp,) = gc.Backpropagate([y, z], [v, gc.NewConstant(0.5)], [x])
    x0, v0 = rng.standard_normal(4), rng.standard_normal(5)
    gc.Let(x, x0)
    gc.Let(v, v0)
    gc.NewTapeMachine(g).run_all()
    J = jacobian_numpy(x0)
    want = J.T @ v0 + 0.5 * J.T @ (2 * f_numpy(x0))
    np.testing.assert_allclose(vjp.value, want, rtol=1e-10)


def test_grad_is_backpropagate_of_one():
    g, x, y, v = build()
    gc.Let(v, np.zeros(5))  # in the graph, unused here
    cost = gc.Sum(y)
    (dg,) = gc.Grad(cost, x)
    g2, x2, y2, v2 = build()
    gc.Let(v2, np.zeros(5))
    (db,) = gc.Backpropagate(y2, np.ones(5), x2)  # an array becomes a constant
    x0 = rng.standard_normal(4)
    for xx, gg in ((x, g), (x2, g2)):
        gc.Let(xx, x0)
        gc.NewTapeMachine(gg).run_all()
    np.testing.assert_allclose(db.value, dg.value, rtol=1e-12)
    (dl,) = gc.Backpropagate(y2, [1.0] * 5, [x2])  # one output: the list is its gradient
    gc.NewTapeMachine(g2).run_all()
    np.testing.assert_allclose(dl.value, dg.value, rtol=1e-12)
    assert dg.name == f"d{cost.name}/dx" and db.name == f"d{y2.name}/dx"


def test_free_batch_outputs_and_fed_inputs():
    # per-sample Jacobian products: x (None, 4) -> y (None, 5), v fed with the same batch
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 4), gc.WithName("x"))
    v = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 5), gc.WithName("v"))
    y = gc.Tanh(gc.Mul(x, gc.NewConstant(A.T))) * gc.Mul(x, gc.NewConstant(B.T))
    (vjp,) = gc.Backpropagate(y, v, x)
    vm = gc.NewTapeMachine(g, gc.BindDualValues(x))
    for n in (1, 7):
        X, V = rng.standard_normal((n, 4)), rng.standard_normal((n, 5))
        gc.Let(x, X)
        gc.Let(v, V)
        vm.run_all()
        want = np.stack([jacobian_numpy(X[i]).T @ V[i] for i in range(n)])
        np.testing.assert_allclose(x.grad, want, rtol=1e-10)


def test_lisp_machine_runs_the_same_products():
    g, x, y, v = build()
    (vjp,) = gc.Backpropagate(y, v, x)
    x0, v0 = rng.standard_normal(4), rng.standard_normal(5)
    gc.Let(x, x0)
    gc.Let(v, v0)
    gc.NewLispMachine(g, gc.BindDualValues(x)).run_all()
    np.testing.assert_allclose(x.grad, jacobian_numpy(x0).T @ v0, rtol=1e-10)


def test_vjp_is_differentiable_again():
    def vjp(x, v):
        y = gc.Tanh(gc.Mul(gc.NewConstant(A), x)) * gc.Mul(gc.NewConstant(B), x)
        return gc.Backpropagate(y, v, x)[0]

    check_op(vjp, [rng.standard_normal(4), rng.standard_normal(5)], check_f32=False)
    check_hvp(vjp, [rng.standard_normal(4), rng.standard_normal(5)])


def test_errors_name_the_outputs_and_the_fix():
    g, x, y, v = build()
    w = gc.NewVector(g, gc.Float64, gc.WithShape(4), gc.WithName("w"))
    with pytest.raises(gc.GradError, match=r"gradient input 'v' \(5,\).*shaped like the output"):
        gc.Backpropagate(gc.Sum(y), v, x)
    with pytest.raises(gc.GradError, match=r"2 output\(s\) but 1 grad_outputs"):
        gc.Backpropagate([y, y], [v], x)
    with pytest.raises(gc.GradError, match=r"dtype Float64"):
        gc.Backpropagate(y, gc.NewConstant(np.ones(5, np.float32)), x)
    with pytest.raises(gc.GradError, match=r"outputs '.*' do not depend on input 'w'"):
        gc.Backpropagate(y, v, w)
    with pytest.raises(gc.GradError, match=r"must be Float32 or Float64"):
        gc.Backpropagate(gc.Gt(y, 0.0), np.ones(5, bool), x)
    with pytest.raises(TypeError, match=r"outputs must be nodes"):
        gc.Backpropagate("y", v, x)
