"""Tape and Lisp machines: gradients, batch sizes, watches, buffer reuse, modes, allocations."""

import numpy as np
import pytest

import graphcore as gc
from graphcore.graph import ancestors
from graphcore.ops.base import Op, apply_op
from tests.allocations import peak_growth

RNG = np.random.default_rng(7)


def small_mlp(dt=gc.Float64, batch=None, seed=0):
    """x (batch, 4) -> 5 -> 3 softmax, cross-entropy cost; biases broadcast from (1, n)."""
    rng = np.random.default_rng(seed)
    g = gc.NewGraph("mlp")

    def param(name, *shape):
        v = (rng.standard_normal(shape) * 0.5).astype(dt.np)
        return gc.NewMatrix(g, dt, gc.WithShape(*shape), gc.WithName(name), gc.WithValue(v))

    x = gc.NewMatrix(g, dt, gc.WithShape(batch, 4), gc.WithName("x"))
    y = gc.NewMatrix(g, dt, gc.WithShape(batch, 3), gc.WithName("y"))
    w1, b1, w2, b2 = param("w1", 4, 5), param("b1", 1, 5), param("w2", 5, 3), param("b2", 1, 3)
    h = gc.Rectify(gc.Add(gc.Mul(x, w1), b1))
    out = gc.SoftMax(gc.Add(gc.Mul(h, w2), b2))
    cost = gc.Neg(gc.Mean(gc.Sum(gc.HadamardProd(y, gc.Log(out)), 1)))
    return g, dict(
        x=x, y=y, w1=w1, b1=b1, w2=w2, b2=b2, h=h, out=out, cost=cost, learnables=[w1, b1, w2, b2]
    )


def numpy_mlp(n, X, Y):
    """Forward pass and gradients of ``small_mlp`` by hand."""
    W1, B1, W2, B2 = (n[k].value.astype(np.float64) for k in ("w1", "b1", "w2", "b2"))
    a1 = X @ W1 + B1
    h = np.maximum(a1, 0)
    z = h @ W2 + B2
    e = np.exp(z - z.max(1, keepdims=True))
    p = e / e.sum(1, keepdims=True)
    cost = -np.mean(np.sum(Y * np.log(p), 1))
    dz = (p * Y.sum(1, keepdims=True) - Y) / len(X)
    dW2, dB2 = h.T @ dz, dz.sum(0, keepdims=True)
    da1 = (dz @ W2.T) * (a1 > 0)
    dW1, dB1 = X.T @ da1, da1.sum(0, keepdims=True)
    return dict(h=h, out=p, cost=cost, w1=dW1, b1=dB1, w2=dW2, b2=dB2)


def data(batch, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((batch, 4))
    Y = np.eye(3)[rng.integers(0, 3, batch)]
    return X, Y


# ----- BindDualValues ---------------------------------------------------------------------------


def test_bind_dual_values_accumulates_until_zeroed():
    g, n = small_mlp()
    ls = n["learnables"]
    gc.Grad(n["cost"], *ls)
    vm = gc.NewTapeMachine(g, gc.BindDualValues(*ls))
    X, Y = data(8)
    gc.Let(n["x"], X)
    gc.Let(n["y"], Y)
    ref = numpy_mlp(n, X, Y)
    vm.run_all()
    for w in ls:
        np.testing.assert_allclose(w.grad, ref[w.name], rtol=1e-10, atol=1e-12)
    vm.run_all()
    vm.run_all()
    for w in ls:
        np.testing.assert_allclose(w.grad, 3 * ref[w.name], rtol=1e-10, atol=1e-12)
    for w in ls:
        w.grad[...] = 0.0  # what a solver does after its step
    vm.reset()
    vm.run_all()
    for w in ls:
        np.testing.assert_allclose(w.grad, ref[w.name], rtol=1e-10, atol=1e-12)
    assert float(n["cost"].value) == pytest.approx(ref["cost"], rel=1e-12)


def test_bind_dual_values_without_grad_is_an_error():
    g, n = small_mlp()
    with pytest.raises(
        gc.GraphError,
        match=r"BindDualValues: input 'w1' \(4, 5\) Float64 has no "
        r"gradient node.*Grad\(cost, w1",
    ):
        gc.NewTapeMachine(g, gc.BindDualValues(n["w1"]))
    with pytest.raises(TypeError, match=r"BindDualValues takes nodes, got str"):
        gc.BindDualValues("w1")
    with pytest.raises(TypeError, match=r"NewTapeMachine: 'fast' is not a machine option"):
        gc.NewTapeMachine(g, "fast")


# ----- batch sizes ------------------------------------------------------------------------------


def test_compiled_at_100_runs_at_1_and_1000_and_reuses_the_plan():
    g, n = small_mlp(batch=None)
    ls = n["learnables"]
    gc.Grad(n["cost"], *ls)
    vm = gc.NewTapeMachine(g, gc.BindDualValues(*ls))
    plans = {}
    for bs in (100, 1, 1000, 100):
        X, Y = data(bs, seed=bs)
        gc.Let(n["x"], X)
        gc.Let(n["y"], Y)
        for w in ls:
            w.grad[...] = 0.0
        vm.run_all()
        ref = numpy_mlp(n, X, Y)
        assert n["out"].value.shape == (bs, 3)
        np.testing.assert_allclose(n["out"].value, ref["out"], rtol=1e-10, atol=1e-12)
        assert float(n["cost"].value) == pytest.approx(ref["cost"], rel=1e-10)
        for w in ls:
            np.testing.assert_allclose(w.grad, ref[w.name], rtol=1e-9, atol=1e-12)
        if bs in plans:
            assert vm.plan is plans[bs]  # cached, not recompiled
        plans[bs] = vm.plan
    assert len(vm._plans) == 3
    assert "3 plan(s)" in repr(vm)


def test_plan_cache_keeps_the_most_recently_run_plans(monkeypatch):
    g, n = small_mlp(batch=None)
    ls = n["learnables"]
    gc.Grad(n["cost"], *ls)
    vm = gc.NewTapeMachine(g, gc.BindDualValues(*ls))
    monkeypatch.setattr(vm, "max_plans", 3)
    seen = {}
    for bs in (1, 2, 3, 1, 4, 5, 1, 2):  # 1 stays recent; 2 and 3 are dropped along the way
        X, Y = data(bs, seed=bs)
        gc.Let(n["x"], X)
        gc.Let(n["y"], Y)
        for w in ls:
            w.grad[...] = 0.0
        vm.run_all()
        ref = numpy_mlp(n, X, Y)
        np.testing.assert_allclose(n["out"].value, ref["out"], rtol=1e-10, atol=1e-12)
        for w in ls:
            np.testing.assert_allclose(w.grad, ref[w.name], rtol=1e-9, atol=1e-12)
        seen.setdefault(bs, []).append(vm.plan)
        assert len(vm._plans) <= 3
    assert seen[1][0] is seen[1][1] is seen[1][2]  # run every few batches: never dropped
    assert seen[2][0] is not seen[2][1]  # dropped after 3 others ran, then rebuilt
    assert [k[0][0] for k in vm._plans] == [5, 1, 2]
    # lowering the bound shrinks the cache at the next new plan; 0 keeps the current one
    for bound, bs, left in ((1, 6, [6]), (0, 7, [7]), (0, 7, [7])):
        monkeypatch.setattr(vm, "max_plans", bound)
        X, Y = data(bs, seed=bs)
        gc.Let(n["x"], X)
        gc.Let(n["y"], Y)
        vm.run_all()
        assert [k[0][0] for k in vm._plans] == left
        np.testing.assert_allclose(n["out"].value, numpy_mlp(n, X, Y)["out"], rtol=1e-10)


def test_fixed_batch_graph_rejects_another_batch_size():
    g, n = small_mlp(batch=100)
    with pytest.raises(gc.ShapeError, match=r"'x' expects shape \(100, 4\).*\(7, 4\)"):
        gc.Let(n["x"], np.zeros((7, 4)))


def test_free_batch_dimensions_that_disagree_fail_at_plan_time():
    g = gc.NewGraph()
    a = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("a"))
    b = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("b"))
    c = a + b
    gc.Let(a, np.zeros((2, 3)))
    gc.Let(b, np.zeros((5, 3)))
    with pytest.raises(gc.ShapeError, match=rf"a \(2, 3\), b \(5, 3\).*node '{c.name}' fails"):
        gc.NewTapeMachine(g).run_all()


# ----- watches ----------------------------------------------------------------------------------


def _log_graph():
    g = gc.NewGraph()
    x = gc.NewVector(g, gc.Float64, gc.WithShape(None), gc.WithName("x"))
    lg = gc.Log(x)
    return g, x, lg, gc.Sum(gc.Square(lg))


@pytest.mark.parametrize("make", [gc.NewTapeMachine, gc.NewLispMachine])
def test_nan_watch_names_the_node(make):
    g, x, lg, _ = _log_graph()
    gc.Let(x, [1.0, -1.0])
    opts = (gc.ExecuteFwdOnly(),) if make is gc.NewLispMachine else ()
    with np.errstate(all="ignore"):
        make(g, *opts).run_all()  # unwatched: NaN flows through silently
        with pytest.raises(
            gc.NonFiniteError,
            match=rf"NaN watch: Log '{lg.name}' \(None,\) "
            r"Float64 produced NaN",
        ):
            make(g, gc.WithNaNWatch(), *opts).run_all()
        gc.Let(x, [1.0, 0.0])  # log(0) = -inf is not NaN
        make(g, gc.WithNaNWatch(), *opts).run_all()
        with pytest.raises(gc.NonFiniteError, match=rf"Inf watch: Log '{lg.name}'.*produced Inf"):
            make(g, gc.WithInfWatch(), *opts).run_all()
    assert issubclass(gc.NonFiniteError, FloatingPointError)


def test_tape_nan_watch_names_operands():
    g, x, lg, _ = _log_graph()
    gc.Let(x, [-2.0])
    with (
        np.errstate(all="ignore"),
        pytest.raises(gc.NonFiniteError, match=r"from operands input 'x' \(None,\)"),
    ):
        gc.NewTapeMachine(g, gc.WithNaNWatch()).run_all()


# ----- buffer reuse and readable values -------------------------------------------------------


def _lisp_reference(g, n, X, Y):
    """Every node's value, gradient nodes included (Grad was called: the Lisp machine runs
    them as they are and differentiates nothing itself; ExecuteFwdOnly would skip them)."""
    gc.Let(n["x"], X)
    gc.Let(n["y"], Y)
    gc.NewLispMachine(g).run_all()
    return {id(m): np.array(m.value, copy=True) for m in ancestors(g.nodes)}


def test_clobbered_intermediate_raises_and_watchlist_keeps_it():
    g, n = small_mlp()
    ls = n["learnables"]
    gc.Grad(n["cost"], *ls)
    X, Y = data(6)
    ref = _lisp_reference(g, n, X, Y)
    vm = gc.NewTapeMachine(g, gc.BindDualValues(*ls))
    vm.run_all()
    clobbered = []
    for m in ancestors(g.nodes):
        try:
            _ = m.value
        except gc.ValueNotAvailableError as e:
            clobbered.append(m)
            msg = str(e)
            assert m.name in msg and "reused its buffer" in msg
            assert f"WithWatchlist({m.name})" in msg
    assert clobbered, "the tape machine reused no buffer at all in an MLP"
    # a forward intermediate the user might want: watch it and it stays readable and right
    fwd = [m for m in clobbered if m.deriv_of is None and id(m) in ref]
    assert fwd
    for m in ls:
        m.unbind_grad()
    vm2 = gc.NewTapeMachine(g, gc.BindDualValues(*ls), gc.WithWatchlist(*fwd))
    vm2.run_all()
    for m in fwd:
        np.testing.assert_allclose(m.value, ref[id(m)], rtol=1e-12, atol=1e-14)


def test_roots_inputs_learnables_and_grads_never_clobbered():
    g, n = small_mlp()
    ls = n["learnables"]
    derivs = gc.Grad(n["cost"], *ls)
    X, Y = data(6)
    ref = _lisp_reference(g, n, X, Y)
    grads = numpy_mlp(n, X, Y)
    before = {w.name: w.value.copy() for w in ls}
    for opts in [(), (gc.BindDualValues(*ls),)]:
        for w in ls:
            w.unbind_grad()
        vm = gc.NewTapeMachine(g, *opts)
        vm.run_all()
        vm.run_all()  # a second run must not disturb them either
        for m in g.roots():
            if m.deriv_of is None or not opts:
                assert m.has_value, m
        for m in (n["x"], n["y"]):
            np.testing.assert_array_equal(m.value, {"x": X, "y": Y}[m.name])
        for w in ls:
            np.testing.assert_array_equal(w.value, before[w.name])
            scale = 2.0 if opts else 1.0  # bound gradients accumulate over the two runs
            np.testing.assert_allclose(w.grad, scale * grads[w.name], rtol=1e-10, atol=1e-12)
        assert float(n["cost"].value) == pytest.approx(float(ref[id(n["cost"])]))
        # `out` (the SoftMax) is a root since Log(SoftMax) became LogSoftMax: still readable
        np.testing.assert_allclose(n["out"].value, ref[id(n["out"])], rtol=1e-12)
        if not opts:
            for d, w in zip(derivs, ls, strict=True):
                np.testing.assert_allclose(d.value, grads[w.name], rtol=1e-10, atol=1e-12)


def test_no_buffer_reuse_keeps_every_value():
    g, n = small_mlp()
    gc.Grad(n["cost"], *n["learnables"])
    X, Y = data(5)
    ref = _lisp_reference(g, n, X, Y)
    gc.NewTapeMachine(g, gc.WithNoBufferReuse()).run_all()
    for m in ancestors(g.nodes):
        if id(m) in ref:
            np.testing.assert_allclose(m.value, ref[id(m)], rtol=1e-12, atol=1e-14)


def test_close_releases_values():
    g, n = small_mlp()
    X, Y = data(3)
    gc.Let(n["x"], X)
    gc.Let(n["y"], Y)
    with gc.NewTapeMachine(g) as vm:
        vm.run_all()
        assert n["cost"].has_value
    assert not n["cost"].has_value and n["x"].has_value
    with pytest.raises(gc.GraphError, match=r"closed"):
        vm.run_all()


# ----- tape vs lisp -----------------------------------------------------------------------------


@pytest.mark.parametrize("dt", [gc.Float64, gc.Float32])
def test_tape_and_lisp_agree_on_small_mlp(dt):
    g, n = small_mlp(dt=dt)
    ls = n["learnables"]
    gc.Grad(n["cost"], *ls)
    X, Y = data(9)
    gc.Let(n["x"], X.astype(dt.np))
    gc.Let(n["y"], Y.astype(dt.np))
    gc.NewTapeMachine(g, gc.BindDualValues(*ls), gc.WithWatchlist(n["h"])).run_all()
    tape = {w.name: w.grad.copy() for w in ls}
    tape_h, tape_cost = n["h"].value.copy(), float(n["cost"].value)
    for w in ls:
        w.unbind_grad()
    gc.NewLispMachine(g, gc.BindDualValues(*ls)).run_all()
    tol = 1e-12 if dt is gc.Float64 else 1e-5
    assert float(n["cost"].value) == pytest.approx(tape_cost, rel=tol)
    np.testing.assert_allclose(n["h"].value, tape_h, rtol=tol, atol=tol)
    for w in ls:
        assert w.grad.dtype == dt.np
        np.testing.assert_allclose(w.grad, tape[w.name], rtol=tol, atol=tol)


def test_lisp_without_grad_differentiates_privately():
    g, n = small_mlp()
    ls = n["learnables"]
    X, Y = data(7)
    gc.Let(n["x"], X)
    gc.Let(n["y"], Y)
    ref = numpy_mlp(n, X, Y)
    size = len(g)
    m = gc.NewLispMachine(g, gc.BindDualValues(*ls))
    m.run_all()
    assert len(g) == size and all(w.deriv is None for w in ls)  # the user's graph is untouched
    for w in ls:
        np.testing.assert_allclose(w.grad, ref[w.name], rtol=1e-10, atol=1e-12)
    m.run_all()
    for w in ls:
        np.testing.assert_allclose(w.grad, 2 * ref[w.name], rtol=1e-10, atol=1e-12)
    # with no BindDualValues every float input gets a gradient, data included
    for w in ls:
        w.unbind_grad()
    gc.NewLispMachine(g).run_all()
    assert n["x"].grad.shape == X.shape
    np.testing.assert_allclose(n["w1"].grad, ref["w1"], rtol=1e-10, atol=1e-12)


def test_lisp_fwd_only_and_cost_detection():
    g, n = small_mlp()
    X, Y = data(4)
    gc.Let(n["x"], X)
    gc.Let(n["y"], Y)
    gc.NewLispMachine(g, gc.ExecuteFwdOnly()).run_all()
    assert float(n["cost"].value) == pytest.approx(numpy_mlp(n, X, Y)["cost"])
    with pytest.raises(gc.ValueNotAvailableError, match=r"'w1'.*no gradient"):
        _ = n["w1"].grad
    gc.Sum(n["h"])  # a second scalar root: which one is the cost?
    with pytest.raises(gc.GraphError, match=r"exactly one scalar float root.*ExecuteFwdOnly"):
        gc.NewLispMachine(g)


# ----- missing inputs, modes --------------------------------------------------------------------


@pytest.mark.parametrize("make", [gc.NewTapeMachine, gc.NewLispMachine])
def test_input_without_value_is_a_clear_error(make):
    g, n = small_mlp()
    gc.Let(n["x"], data(2)[0])
    opts = (gc.ExecuteFwdOnly(),) if make is gc.NewLispMachine else ()
    with pytest.raises(
        gc.ValueNotAvailableError,
        match=r"'y' \(None, 3\) Float64 has no value: "
        r"call Let\(y, array\)",
    ):
        make(g, *opts).run_all()


class _ModeProbe(Op):
    """Writes 1 in training mode, 0 in eval mode, read when it runs (like dropout would)."""

    name = "ModeProbe"
    arity = 1
    differentiable = False

    def infer(self, ins):
        return ins[0].shape, ins[0].dtype

    def kernel(self, xs, out, ctx):
        return lambda: out.fill(1.0 if ctx.training else 0.0)


@pytest.mark.parametrize("make", [gc.NewTapeMachine, gc.NewLispMachine])
def test_eval_mode_and_training_attribute(make):
    g = gc.NewGraph()
    x = gc.NewVector(g, gc.Float64, gc.WithShape(2), gc.WithName("x"), gc.WithValue([0.0, 0.0]))
    p = apply_op(_ModeProbe(), x)
    fwd = (gc.ExecuteFwdOnly(),) if make is gc.NewLispMachine else ()
    vm = make(g, *fwd)
    assert vm.training is True
    vm.run_all()
    assert p.value.tolist() == [1.0, 1.0]
    vm.training = False  # switched after compiling: kernels read the mode at run time
    vm.run_all()
    assert p.value.tolist() == [0.0, 0.0]
    ev = make(g, gc.EvalMode(), *fwd)
    assert ev.training is False
    ev.run_all()
    assert p.value.tolist() == [0.0, 0.0]
    assert make(g, gc.EvalMode(), gc.TrainMode(), *fwd).training is True


# ----- zero allocations per step ----------------------------------------------------------------


def _talk_mlp(bs=100):
    """The talk's MLP, float32, weights from a seeded generator."""
    rng = np.random.default_rng(0)
    g = gc.NewGraph()
    dt = gc.Float32

    def param(name, *shape):
        v = (rng.standard_normal(shape) * np.sqrt(2.0 / sum(shape))).astype(np.float32)
        return gc.NewMatrix(g, dt, gc.WithShape(*shape), gc.WithName(name), gc.WithValue(v))

    x = gc.NewMatrix(g, dt, gc.WithShape(bs, 784), gc.WithName("x"))
    y = gc.NewMatrix(g, dt, gc.WithShape(bs, 10), gc.WithName("y"))
    w1, b1 = param("w1", 784, 250), param("b1", 1, 250)
    w2, b2 = param("w2", 250, 100), param("b2", 1, 100)
    w3, b3 = param("w3", 100, 10), param("b3", 1, 10)
    ones = gc.NewMatrix(
        g, dt, gc.WithShape(bs, 1), gc.WithName("ones"), gc.WithValue(np.ones((bs, 1), np.float32))
    )
    l1 = gc.Rectify(gc.Add(gc.Mul(x, w1), gc.Mul(ones, b1)))
    l2 = gc.Rectify(gc.Add(gc.Mul(l1, w2), gc.Mul(ones, b2)))
    out = gc.SoftMax(gc.Add(gc.Mul(l2, w3), gc.Mul(ones, b3)))
    cost = gc.Neg(gc.Mean(gc.Sum(gc.HadamardProd(y, gc.Log(out)), 1)))
    learnables = [w1, b1, w2, b2, w3, b3]
    gc.Grad(cost, *learnables)
    vm = gc.NewTapeMachine(g, gc.BindDualValues(*learnables))
    X = rng.random((bs, 784), dtype=np.float32)
    Y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, bs)]
    return vm, x, y, learnables, X, Y


ACTIVATION_BYTES = 100 * 250 * 4  # one (100, 250) float32 buffer


def test_tape_machine_allocates_no_arrays_per_step():
    vm, x, y, learnables, X, Y = _talk_mlp()

    def step():
        gc.Let(x, X)
        gc.Let(y, Y)
        vm.run_all()
        vm.reset()

    growth = peak_growth(step, 50, warmup=5)
    assert growth < ACTIVATION_BYTES / 4, f"peak traced growth {growth} bytes over 50 steps"


@pytest.mark.skipif(not hasattr(gc, "NewRMSPropSolver"), reason="graphcore.solvers not there yet")
def test_training_step_with_solver_allocates_no_arrays():
    vm, x, y, learnables, X, Y = _talk_mlp()
    solver = gc.NewRMSPropSolver(gc.WithBatchSize(100))

    def step():
        gc.Let(x, X)
        gc.Let(y, Y)
        vm.run_all()
        solver.step(gc.NodesToValueGrads(learnables))
        vm.reset()

    growth = peak_growth(step, 50, warmup=5)
    assert growth < ACTIVATION_BYTES / 4, f"peak traced growth {growth} bytes over 50 steps"


def test_bound_gradient_through_a_view_is_accumulated():
    g = gc.NewGraph()
    w = gc.NewMatrix(g, gc.Float64, gc.WithShape(2, 2), gc.WithName("w"),
                     gc.WithValue(np.arange(4.0).reshape(2, 2)))
    c = gc.Sum(gc.Square(gc.Reshape(w, (4,))))
    gc.Grad(c, w)
    vm = gc.NewTapeMachine(g, gc.BindDualValues(w))
    vm.run_all()
    vm.run_all()
    np.testing.assert_array_equal(w.grad, 2 * 2 * np.arange(4.0).reshape(2, 2))


def test_two_free_dims_bound_to_different_sizes_are_refused():
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
    m = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("m"))
    cost = gc.Sum(gc.HadamardProd(x, m))
    gc.Grad(cost, x, m)
    gc.Let(x, np.ones((5, 3)))
    gc.Let(m, np.ones((1, 3)))
    for vm in (gc.NewTapeMachine(g), gc.NewLispMachine(g)):
        with pytest.raises(gc.ShapeError, match=r"'x' and 'm' both have a free dimension 0"):
            vm.run_all()


def test_subgraph_machine_runs_bound_gradients_and_skips_other_inputs():
    g = gc.NewGraph()
    w = gc.NewMatrix(g, gc.Float64, gc.WithShape(3, 1), gc.WithName("w"),
                     gc.WithValue(np.ones((3, 1))))
    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
    x_eval = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x_eval"))
    cost = gc.Mean(gc.Square(gc.Mul(x, w)))
    gc.Mul(x_eval, w)  # an evaluation branch sharing w, never given a value here
    gc.Grad(cost, w)
    with pytest.raises(gc.ValueNotAvailableError, match="subgraph_roots"):
        gc.NewTapeMachine(g, gc.BindDualValues(w)).run_all()
    vm = gc.NewTapeMachine(g.subgraph_roots(cost), gc.BindDualValues(w))
    gc.Let(x, np.ones((2, 3)))
    vm.run_all()
    np.testing.assert_allclose(w.grad, np.full((3, 1), 6.0))


def test_scalar_values_are_not_overwritten_by_the_next_run():
    g = gc.NewGraph()
    x = gc.NewVector(g, gc.Float64, gc.WithShape(2), gc.WithName("x"))
    c = gc.Sum(x)
    vm = gc.NewTapeMachine(g)
    seen = []
    for v in (1.0, 2.0, 3.0):
        gc.Let(x, np.full(2, v))
        vm.run_all()
        seen.append(c.value)
    assert [float(s) for s in seen] == [2.0, 4.0, 6.0]


def test_lisp_machine_errors_name_the_operands():
    g = gc.NewGraph()
    a = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("a"))
    b = gc.NewMatrix(g, gc.Float64, gc.WithShape(4, 3), gc.WithName("b"))
    gc.Add(a, b)
    gc.Let(a, np.ones((5, 3)))
    gc.Let(b, np.ones((4, 3)))
    with pytest.raises(gc.ShapeError, match="'a'"):
        gc.NewLispMachine(g, gc.ExecuteFwdOnly()).run_all()
