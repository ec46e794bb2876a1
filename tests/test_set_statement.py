"""``Set(a, b)``: an assignment statement. Machines run it after every other node that reads
``a`` in the same run; an SGD step written in the graph trains without a solver."""

import numpy as np
import pytest

import graphcore as gc

rng = np.random.default_rng(5)
X = rng.standard_normal((32, 3))
Y = X @ np.array([[1.0], [-2.0], [0.5]]) + 0.3


def regression(lr=0.1):
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
    y = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 1), gc.WithName("y"))
    w = gc.NewMatrix(g, gc.Float64, gc.WithShape(3, 1), gc.WithName("w"), gc.WithInit(gc.Zeroes()))
    b = gc.NewMatrix(g, gc.Float64, gc.WithShape(1, 1), gc.WithName("b"), gc.WithInit(gc.Zeroes()))
    cost = gc.Mean(gc.Square(x @ w + b - y))
    dw, db = gc.Grad(cost, w, b)
    steps = [gc.Set(w, w - lr * dw), gc.Set(b, b - lr * db)]
    return g, x, y, w, b, cost, steps


def numpy_sgd(n, lr=0.1):
    w, b, costs = np.zeros((3, 1)), np.zeros((1, 1)), []
    for _ in range(n):
        err = X @ w + b - Y
        costs.append(float(np.mean(err**2)))
        w, b = w - lr * 2 * X.T @ err / len(X), b - lr * 2 * err.mean(keepdims=True)
    return w, b, costs


@pytest.mark.parametrize("machine", [gc.NewTapeMachine, gc.NewLispMachine])
def test_in_graph_sgd_step_trains(machine):
    g, x, y, w, b, cost, _ = regression()
    gc.Let(x, X)
    gc.Let(y, Y)
    vm = machine(g)
    costs = []
    for _ in range(40):
        vm.run_all()
        costs.append(float(cost.value))
    w_np, b_np, costs_np = numpy_sgd(40)
    np.testing.assert_allclose(costs, costs_np, rtol=1e-10)
    np.testing.assert_allclose(w.value, w_np, rtol=1e-10)
    np.testing.assert_allclose(b.value, b_np, rtol=1e-10)
    assert costs[-1] < 0.05 * costs[0]


def test_readers_built_after_the_statement_see_the_old_value():
    g = gc.NewGraph()
    w = gc.NewVector(g, gc.Float64, gc.WithShape(3), gc.WithName("w"), gc.WithValue([1.0, 2, 3]))
    step = gc.Set(w, w * 2.0)
    norm = gc.Sum(gc.Square(w))  # built after the Set, but reads w before it runs
    row = gc.Reshape(w, (1, 3))  # a view of w: its readers count as readers of w
    total = gc.Sum(row * 10.0)
    vm = gc.NewTapeMachine(g, gc.WithWatchlist(row))
    vm.run_all()
    assert float(norm.value) == 14.0 and float(total.value) == 60.0
    assert w.value.tolist() == [2.0, 4.0, 6.0] and step.value.tolist() == [2.0, 4.0, 6.0]
    order = [n.name for n in vm.order]
    readers = (norm.children[0], row, total.children[0])  # Square(w), the view, row * 10
    assert order.index(step.name) > max(order.index(n.name) for n in readers)
    vm.run_all()
    assert float(norm.value) == 56.0 and w.value.tolist() == [4.0, 8.0, 12.0]


def test_statements_on_the_talk_free_graph_keep_its_order():
    g, *_ = regression()
    before = [n.name for n in gc.graph.ancestors(g.nodes)]
    vm = gc.NewTapeMachine(g)
    assert [n.name for n in vm.order] == before  # the Sets were built last already


def test_a_counter_and_subgraph_roots():
    g = gc.NewGraph()
    x = gc.NewVector(g, gc.Float64, gc.WithShape(None), gc.WithName("x"))
    t = gc.NewScalar(g, gc.Float64, gc.WithName("t"), gc.WithValue(0.0))
    t1 = t + 1.0
    out = gc.Sum(x) * t1
    tick = gc.Set(t, t1)  # reads only nodes out needs: subgraph_roots(out) includes it
    other = gc.Exp(x)  # not needed for out
    sub = g.subgraph_roots(out)
    assert tick in sub.nodes and other not in sub.nodes
    vm = gc.NewTapeMachine(sub)
    seen = []
    for n in (1, 3, 2):
        gc.Let(x, np.ones(n))
        vm.run_all()
        seen.append(float(out.value))
    assert seen == [1.0, 6.0, 6.0] and float(t.value) == 3.0


def test_fwd_only_runs_forward_statements_and_bwd_only_the_update():
    g, x, y, w, b, cost, _ = regression()
    t = gc.NewScalar(g, gc.Float64, gc.WithName("t"), gc.WithValue(0.0))
    gc.Set(t, t + 1.0)
    gc.Let(x, X)
    gc.Let(y, Y)
    fwd = gc.NewTapeMachine(g, gc.ExecuteFwdOnly())
    bwd = gc.NewTapeMachine(g, gc.ExecuteBwdOnly())
    fwd.run_all()
    assert float(t.value) == 1.0 and not w.value.any()  # the SGD step reads gradients
    bwd.run_all()
    assert float(t.value) == 1.0 and w.value.any()


def test_bound_gradients_still_accumulate():
    g, x, y, w, b, cost, _ = regression()
    gc.Let(x, X)
    gc.Let(y, Y)
    vm = gc.NewTapeMachine(g, gc.BindDualValues(w, b))
    vm.run_all()
    np.testing.assert_allclose(w.grad, -2 * X.T @ Y / len(X))  # at w = 0, before the step
    np.testing.assert_allclose(w.value, 0.1 * 2 * X.T @ Y / len(X))


def test_swapping_two_inputs_is_refused_with_the_fix():
    g = gc.NewGraph()
    a = gc.NewScalar(g, gc.Float64, gc.WithName("a"), gc.WithValue(1.0))
    b = gc.NewScalar(g, gc.Float64, gc.WithName("b"), gc.WithValue(2.0))
    gc.Set(a, b)
    gc.Set(b, a)
    with pytest.raises(gc.GraphError, match=r"cannot run in any order.*Set\(b, a \* 1.0\)"):
        gc.NewTapeMachine(g)
    g2 = gc.NewGraph()
    a = gc.NewScalar(g2, gc.Float64, gc.WithName("a"), gc.WithValue(1.0))
    b = gc.NewScalar(g2, gc.Float64, gc.WithName("b"), gc.WithValue(2.0))
    gc.Set(a, b)
    gc.Set(b, a * 1.0)  # the fix: a copy of a, made before a is written
    gc.NewTapeMachine(g2).run_all()
    assert (float(a.value), float(b.value)) == (2.0, 1.0)


def test_two_sets_of_one_input_run_in_build_order():
    g = gc.NewGraph()
    a = gc.NewScalar(g, gc.Float64, gc.WithName("a"), gc.WithValue(1.0))
    gc.Set(a, a + 1.0)
    gc.Set(a, a * 10.0)  # reads a before either Set: the last one wins
    gc.NewTapeMachine(g).run_all()
    assert float(a.value) == 10.0


def test_set_errors():
    g = gc.NewGraph()
    w = gc.NewMatrix(g, gc.Float64, gc.WithShape(2, 3), gc.WithName("w"),
                     gc.WithValue(np.ones((2, 3))))
    h = gc.Exp(w)
    with pytest.raises(gc.GraphError, match=r"Set: Exp 'Exp_\d+' \(2, 3\) .* is computed by Exp"):
        gc.Set(h, w)
    with pytest.raises(gc.GraphError, match=r"is a constant"):
        gc.Set(gc.NewConstant(1.0), 2.0)
    with pytest.raises(gc.ShapeError, match=r"Set: the new value .* \(3, 2\) .* does not fit 'w'"):
        gc.Set(w, gc.NewConstant(np.ones((3, 2))))
    with pytest.raises(gc.DtypeError, match="operands have different dtypes"):
        gc.Set(w, gc.NewConstant(np.ones((2, 3), np.float32)))
    zero = gc.Set(w, 0.0)  # a scalar broadcasts
    assert zero.shape == (2, 3)
    with pytest.raises(gc.GradError, match="not differentiable"):
        gc.Grad(gc.Sum(zero * w), w)


def test_forward_pass_keeps_what_the_backward_pass_reads_for_its_shape():
    # a backward-only machine takes every operand of the backward pass as given, the ones
    # read for their shape only too (a mean's gradient reads its operand's shape): the
    # forward-only machine must not reuse their buffers
    from graphcore.machines.program import backward_pass, forward_pass, whole_graph

    g, x, y, w, b, cost, _ = regression()
    p = whole_graph(g, ())
    _, kept = forward_pass(p)
    bwd = backward_pass(p)
    square = cost.children[0]
    assert id(square) in bwd.given and id(square) in kept
