"""Grad: its errors, how gradients are summed and reduced, and deep graphs."""

import numpy as np
import pytest

import graphcore as gc


def test_grad_values_and_deriv_links():
    g = gc.NewGraph()
    w = gc.NewVector(
        g, gc.Float64, gc.WithShape(3), gc.WithName("w"), gc.WithValue([1.0, -2.0, 3.0])
    )
    cost = gc.Sum(gc.Square(w))
    (dw,) = gc.Grad(cost, w)
    assert w.deriv is dw and dw.deriv_of is w
    assert dw.name == f"d{cost.name}/dw" and dw.shape == w.shape and dw.dtype == w.dtype
    gc.NewTapeMachine(g).run_all()
    np.testing.assert_allclose(dw.value, [2.0, -4.0, 6.0])
    np.testing.assert_allclose(w.grad, [2.0, -4.0, 6.0])  # the deriv's value, unbound


def test_grad_accepts_a_list():
    g = gc.NewGraph()
    a = gc.NewScalar(g, gc.Float64, gc.WithName("a"), gc.WithValue(2.0))
    b = gc.NewScalar(g, gc.Float64, gc.WithName("b"), gc.WithValue(3.0))
    da, db = gc.Grad(a * b, [a, b])
    gc.NewTapeMachine(g).run_all()
    assert (float(da.value), float(db.value)) == (3.0, 2.0)


def test_node_read_twice_sums_its_gradients():
    g = gc.NewGraph()
    x = gc.NewScalar(g, gc.Float64, gc.WithName("x"), gc.WithValue(3.0))
    y = x * x + gc.Exp(x) + x  # x read four times
    (dx,) = gc.Grad(y, x)
    gc.NewTapeMachine(g).run_all()
    assert float(dx.value) == pytest.approx(2 * 3.0 + np.exp(3.0) + 1.0)


def test_broadcast_gradients_reduce_to_operand_shape():
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
    b = gc.NewMatrix(
        g, gc.Float64, gc.WithShape(1, 3), gc.WithName("b"), gc.WithValue([[1.0, 2.0, 3.0]])
    )
    s = gc.NewScalar(g, gc.Float64, gc.WithName("s"), gc.WithValue(2.0))
    cost = gc.Sum((x + b) * s)
    db, ds = gc.Grad(cost, b, s)
    assert db.shape == (1, 3) and ds.shape == ()
    X = np.arange(12.0).reshape(4, 3)
    gc.Let(x, X)
    gc.NewTapeMachine(g).run_all()
    np.testing.assert_allclose(db.value, [[8.0, 8.0, 8.0]])
    assert float(ds.value) == pytest.approx((X + [1.0, 2.0, 3.0]).sum())


def test_grad_of_non_scalar_cost():
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
    y = gc.Exp(x)
    with pytest.raises(
        gc.GradError,
        match=rf"the cost Exp '{y.name}' \(None, 3\) Float64 is not "
        r"a scalar.*Mean\(...\) or Sum\(...\)",
    ):
        gc.Grad(y, x)


def test_grad_of_int_cost_and_wrt():
    g = gc.NewGraph()
    i = gc.NewVector(g, gc.Int64, gc.WithShape(3), gc.WithName("i"))
    c = gc.Sum(i)
    with pytest.raises(
        gc.GradError,
        match=rf"the cost Sum\(axes=None, keepdims=False\) '{c.name}' \(\) Int64 "
        r"must be Float32 or Float64",
    ):
        gc.Grad(c, i)
    x = gc.NewVector(g, gc.Float64, gc.WithShape(3), gc.WithName("x"))
    with pytest.raises(gc.GradError, match=r"input 'i' \(3,\) Int64: it is not a float node"):
        gc.Grad(gc.Sum(x), i)


def test_grad_wrt_unreachable_node():
    g = gc.NewGraph()
    x = gc.NewVector(g, gc.Float64, gc.WithShape(3), gc.WithName("x"))
    w = gc.NewVector(g, gc.Float64, gc.WithShape(3), gc.WithName("w"))
    cost = gc.Sum(x)
    with pytest.raises(
        gc.GradError,
        match=rf"the cost '{cost.name}' does not depend on input 'w' "
        r"\(3,\) Float64",
    ):
        gc.Grad(cost, x, w)
    with pytest.raises(gc.GradError, match=r"at least one node"):
        gc.Grad(cost)
    with pytest.raises(TypeError, match=r"wrt must be nodes"):
        gc.Grad(cost, "x")


def test_grad_through_non_differentiable_op():
    g = gc.NewGraph()
    x = gc.NewVector(g, gc.Float64, gc.WithShape(3), gc.WithName("x"))
    s = gc.Sign(x)
    cost = gc.Sum(s * x)
    with pytest.raises(
        gc.GradError,
        match=rf"Sign '{s.name}' \(3,\) Float64 uses Sign, which is "
        rf"not differentiable.*from 'x' to the cost "
        rf"'{cost.name}'",
    ):
        gc.Grad(cost, x)


def test_non_differentiable_op_off_the_path_is_fine():
    g = gc.NewGraph()
    x = gc.NewVector(
        g, gc.Float64, gc.WithShape(3), gc.WithName("x"), gc.WithValue([1.0, -2.0, 3.0])
    )
    k = gc.NewVector(
        g, gc.Float64, gc.WithShape(3), gc.WithName("k"), gc.WithValue([-1.0, 1.0, 0.0])
    )
    cost = gc.Sum(gc.Sign(k) * x)  # the gradient path to x does not cross Sign
    (dx,) = gc.Grad(cost, x)
    gc.NewTapeMachine(g).run_all()
    np.testing.assert_array_equal(dx.value, [-1.0, 1.0, 0.0])


def test_grad_of_cost_without_graph():
    c = gc.Sum(gc.NewConstant([1.0, 2.0]))
    with pytest.raises(gc.GradError, match=r"belongs to no graph"):
        gc.Grad(c, c.children[0])


def test_deep_chain_grad_is_iterative():
    # 5000 ops: far past Python's recursion limit (1000) if any walk were recursive
    n = 5000
    g = gc.NewGraph()
    x = gc.NewVector(g, gc.Float64, gc.WithShape(None), gc.WithName("x"))
    h = x
    for i in range(n):
        h = gc.Sin(h) if i % 2 else gc.Tanh(h)
    cost = gc.Sum(h)
    (dx,) = gc.Grad(cost, x)
    vm = gc.NewTapeMachine(g)
    X = np.array([0.3, -0.2])
    gc.Let(x, X)
    vm.run_all()
    # reference by hand: forward, then the chain rule backwards
    hs, v = [], X.copy()
    for i in range(n):
        hs.append(v)
        v = np.sin(v) if i % 2 else np.tanh(v)
    assert float(cost.value) == pytest.approx(v.sum(), rel=1e-12)
    gh = np.ones_like(X)
    for i in reversed(range(n)):
        gh = gh * (np.cos(hs[i]) if i % 2 else 1.0 - np.tanh(hs[i]) ** 2)
    np.testing.assert_allclose(dx.value, gh, rtol=1e-9)
    # another batch size through the same machine
    gc.Let(x, np.array([0.1]))
    vm.run_all()
    assert dx.value.shape == (1,)


def _added_by(g, run):
    """The nodes ``run()`` adds to graph ``g``, and its result."""
    before = {id(n) for n in g.nodes}
    out = run()
    return [n for n in g.nodes if id(n) not in before], out


def test_first_order_gradients_use_the_fused_nodes_only():
    # the graph-op expansions (masks and all) are built only for second derivatives
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
    w = gc.NewMatrix(g, gc.Float64, gc.WithShape(3, 2), gc.WithName("w"), gc.WithValue(
        np.ones((3, 2))))
    cost = gc.Mean(gc.Tanh(gc.Rectify(x @ w)))
    added, (dw,) = _added_by(g, lambda: gc.Grad(cost, w))
    names = {n.op.name for n in added}
    assert {"TanhGrad", "RectifyGrad"} <= names and not any("Mask" in n for n in names)
    needed = {id(n) for n in gc.graph.ancestors([dw])}
    assert all(id(n) in needed for n in added)  # nothing dangling


def test_second_derivative_adds_only_what_it_reads():
    g = gc.NewGraph()
    x = gc.NewVector(g, gc.Float64, gc.WithShape(3), gc.WithName("x"),
                     gc.WithValue([0.5, -1.0, 2.0]))
    (dx,) = gc.Grad(gc.Sum(gc.Tanh(x)), x)
    # TanhGrad is differentiated through its expansion g * (1 - y*y), built outside the graph:
    # only the gradient nodes enter it, so no part of the expansion is computed unread
    cost2 = gc.Sum(dx)
    added, (hx,) = _added_by(g, lambda: gc.Grad(cost2, x))
    needed = {id(n) for n in gc.graph.ancestors([hx])}
    assert added and all(id(n) in needed for n in added)
    gc.NewTapeMachine(g).run_all()
    t = np.tanh([0.5, -1.0, 2.0])
    np.testing.assert_allclose(hx.value, -2 * t * (1 - t**2), rtol=1e-12)


def test_grad_through_a_mask_only_is_zeros():
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
    (dx,) = gc.Grad(gc.Sum(gc.Abs(x)), x)  # sign(x): piecewise constant
    (ddx,) = gc.Grad(gc.Sum(dx), x)
    assert ddx.shape == (None, 2)
    gc.Let(x, np.array([[1.0, -2.0], [3.0, 0.5]]))
    gc.NewTapeMachine(g).run_all()
    np.testing.assert_array_equal(ddx.value, np.zeros((2, 2)))


def test_grad_wrt_a_node_and_its_input_sums_both_paths():
    # wrt nodes are not independent in Grad: x's gradient includes the path through h
    g = gc.NewGraph()
    x = gc.NewScalar(g, gc.Float64, gc.WithName("x"), gc.WithValue(0.5))
    h = gc.Tanh(x)
    dx, dh = gc.Grad(gc.Square(h) + x, x, h)
    gc.NewTapeMachine(g).run_all()
    t = np.tanh(0.5)
    assert float(dh.value) == pytest.approx(2 * t)
    assert float(dx.value) == pytest.approx(2 * t * (1 - t**2) + 1)


def test_non_differentiable_op_in_a_second_derivative_is_named():
    g = gc.NewGraph()
    x = gc.NewVector(g, gc.Float64, gc.WithShape(3), gc.WithName("x"))
    (dx,) = gc.Grad(gc.Sum(gc.Square(x)), x)
    s = gc.Sign(dx)
    with pytest.raises(gc.GradError, match=rf"Sign '{s.name}'.*not differentiable"):
        gc.Grad(gc.Sum(s * dx), x)
