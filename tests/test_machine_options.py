"""Machine options: every option against every machine either works or raises a clear error;
forward-only and backward-only runs; gradients of fed inputs; logging; compiled functions."""

from __future__ import annotations

import logging

import numpy as np
import pytest

import graphcore as gc
from graphcore.machines.options import SUPPORTED


def _mlp(batch=None, seed=0):
    """A tanh MLP with softmax cross-entropy; x and y are fed, w1/w2 learnables."""
    rng = np.random.default_rng(seed)
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(batch, 4), gc.WithName("x"))
    y = gc.NewMatrix(g, gc.Float64, gc.WithShape(batch, 3), gc.WithName("y"))
    w1 = gc.NewMatrix(g, gc.Float64, gc.WithShape(4, 5), gc.WithName("w1"),
                      gc.WithValue(rng.normal(size=(4, 5))))
    w2 = gc.NewMatrix(g, gc.Float64, gc.WithShape(5, 3), gc.WithName("w2"),
                      gc.WithValue(rng.normal(size=(5, 3))))
    h = gc.Tanh(x @ w1)
    out = h @ w2
    cost = gc.SoftmaxCrossEntropy(out, y)
    return g, x, y, w1, w2, out, cost


def _data(n, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)), np.eye(3)[rng.integers(0, 3, n)]


# ----- every option with every machine -----------------------------------------------------------

def _option_cases():
    """(option kind, factory of (option list, graph, check after run) or None)."""

    def bind():
        g, x, y, w1, w2, out, cost = _mlp()
        gc.Grad(cost, w1, w2)
        X, Y = _data(6)
        gc.Let(x, X)
        gc.Let(y, Y)
        return [gc.BindDualValues(w1, w2)], g, lambda: w1.grad.any() and w2.grad.shape == (5, 3)

    def watch():
        g, x, y, w1, w2, out, cost = _mlp()
        gc.Grad(cost, w1)
        h = out.children[0]
        gc.Let(x, _data(6)[0])
        gc.Let(y, _data(6)[1])
        return [gc.WithWatchlist(h)], g, lambda: h.value.shape == (6, 5)

    def nan():
        g = gc.NewGraph()
        x = gc.NewVector(g, gc.Float64, gc.WithShape(2), gc.WithName("x"))
        gc.Sum(gc.Log(x))
        gc.Let(x, [-1.0, 1.0])
        return [gc.WithNaNWatch()], g, gc.NonFiniteError

    def inf():
        g = gc.NewGraph()
        x = gc.NewVector(g, gc.Float64, gc.WithShape(2), gc.WithName("x"))
        gc.Sum(gc.Log(x))
        gc.Let(x, [0.0, 1.0])
        return [gc.WithInfWatch()], g, gc.NonFiniteError

    def training():
        g = gc.NewGraph()
        x = gc.NewMatrix(g, gc.Float64, gc.WithShape(4, 50), gc.WithName("x"))
        d = gc.Dropout(x, 0.5)
        gc.Sum(d)
        gc.Let(x, np.ones((4, 50)))
        return [gc.EvalMode()], g, lambda: np.array_equal(d.value, np.ones((4, 50)))

    def fwdonly():
        g, x, y, w1, w2, out, cost = _mlp()
        (d1,) = gc.Grad(cost, w1)
        gc.Let(x, _data(6)[0])
        gc.Let(y, _data(6)[1])
        return [gc.ExecuteFwdOnly()], g, lambda: cost.has_value and not d1.has_value

    def bwdonly():
        g, x, y, w1, w2, out, cost = _mlp()
        gc.Grad(cost, w1)
        gc.Let(x, _data(6)[0])
        gc.Let(y, _data(6)[1])
        gc.NewLispMachine(g, gc.ExecuteFwdOnly()).run_all()  # the forward values to start from
        return [gc.ExecuteBwdOnly(), gc.BindDualValues(w1)], g, lambda: w1.grad.any()

    def noreuse():
        g = gc.NewGraph()
        x = gc.NewVector(g, gc.Float64, gc.WithShape(3), gc.WithName("x"))
        a = gc.Exp(x)
        gc.Sum(gc.Neg(gc.Exp(a)))
        gc.Let(x, [0.0, 1.0, 2.0])
        return [gc.WithNoBufferReuse()], g, lambda: np.allclose(a.value, np.exp([0, 1, 2]))

    def trace():
        g = gc.NewGraph()
        x = gc.NewVector(g, gc.Float64, gc.WithShape(3), gc.WithName("x"))
        a = gc.Exp(x)
        gc.Sum(gc.Neg(gc.Exp(a)))
        gc.Let(x, [0.0, 1.0, 2.0])
        return [gc.TraceExec()], g, lambda: np.allclose(a.value, np.exp([0, 1, 2]))

    def manualgrad():
        g = gc.NewGraph()
        w = gc.NewVector(g, gc.Float64, gc.WithShape(2), gc.WithName("w"),
                         gc.WithValue([1.0, 2.0]))
        gc.Square(w)
        return [gc.WithManualGradient([3.0, 5.0])], g, lambda: w.grad.tolist() == [6.0, 20.0]

    def logger():
        g = gc.NewGraph()
        x = gc.NewVector(g, gc.Float64, gc.WithShape(3), gc.WithName("x"))
        gc.Sum(gc.Exp(x))
        gc.Let(x, [0.0, 1.0, 2.0])
        return [gc.WithLogger(logging.getLogger("test.machines"))], g, "logs"

    def logdir():
        g = gc.NewGraph()
        x = gc.NewVector(g, gc.Float64, gc.WithShape(3), gc.WithName("x"))
        gc.Sum(gc.Exp(x))
        gc.Let(x, [0.0, 1.0, 2.0])
        return [gc.LogFwd()], g, "logs"

    def precompiled():
        g, x, y, w1, w2, out, cost = _mlp()
        gc.Grad(cost, w1)
        gc.Let(x, _data(6)[0])
        prog = gc.CompileFunction(g, [x], [out])
        return [gc.WithPrecompiled(prog)], g, lambda: out.value.shape == (6, 3)

    return {
        "bind": bind, "watch": watch, "nan": nan, "inf": inf, "training": training,
        "fwdonly": fwdonly, "bwdonly": bwdonly, "noreuse": noreuse, "trace": trace,
        "manualgrad": manualgrad, "logger": logger, "logdir": logdir,
        "precompiled": precompiled,
    }


CASES = _option_cases()
MACHINES = {"NewTapeMachine": gc.NewTapeMachine, "NewLispMachine": gc.NewLispMachine}


def test_every_option_kind_has_a_case_and_a_rule_for_every_machine():
    for who, table in SUPPORTED.items():
        assert set(table) == set(CASES), who


@pytest.mark.parametrize("machine", sorted(MACHINES))
@pytest.mark.parametrize("kind", sorted(CASES))
def test_option_works_or_is_refused_clearly(machine, kind, caplog):
    opts, g, check = CASES[kind]()
    why = SUPPORTED[machine][kind]
    if why is not None:
        with pytest.raises(gc.GraphError, match=rf"{machine} does not take {opts[0].builder}"):
            MACHINES[machine](g, *opts)
        return
    vm = MACHINES[machine](g, *opts)
    if isinstance(check, type):
        with pytest.raises(check):
            vm.run_all()
        return
    with caplog.at_level(logging.DEBUG):
        vm.run_all()
    if check == "logs":
        assert any("fwd " in r.getMessage() and "Exp" in r.getMessage() for r in caplog.records)
    else:
        assert check(), f"{kind} on {machine}"


@pytest.mark.parametrize("machine", sorted(MACHINES))
@pytest.mark.parametrize(
    "opts, words",
    [
        ((gc.ExecuteFwdOnly(), gc.ExecuteBwdOnly()), "contradict"),
        ((gc.ExecuteFwdOnly(), gc.BindDualValues()), "nothing to bind"),
    ],
)
def test_contradicting_options_are_refused(machine, opts, words):
    g = gc.NewGraph()
    gc.NewScalar(g, gc.Float64, gc.WithValue(1.0))
    with pytest.raises(gc.GraphError, match=words):
        MACHINES[machine](g, *opts)


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_non_options_are_refused_naming_the_choices(machine):
    with pytest.raises(TypeError, match="not a machine option; use one of .*BindDualValues"):
        MACHINES[machine](gc.NewGraph(), "fast")


# ----- forward-only and backward-only ------------------------------------------------------------

def test_tape_forward_only_runs_no_gradient_step_and_keeps_the_output():
    g, x, y, w1, w2, out, cost = _mlp()
    grads = gc.Grad(cost, w1, w2)
    X, Y = _data(8)
    gc.Let(x, X)
    gc.Let(y, Y)
    full = gc.NewTapeMachine(g, gc.BindDualValues(w1, w2))
    full.run_all()
    want = float(cost.value)
    fwd = gc.NewTapeMachine(g, gc.ExecuteFwdOnly())
    fwd.run_all()
    assert float(cost.value) == pytest.approx(want, rel=1e-12)
    assert out.value.shape == (8, 3)
    assert fwd.plan.n_steps < full.plan.n_steps
    assert not any(d.has_value for d in grads)  # no gradient node ran
    assert all(n.deriv_of is None for n in fwd.order)


def test_forward_then_backward_only_equals_one_full_run():
    g, x, y, w1, w2, out, cost = _mlp()
    gc.Grad(cost, w1, w2)
    X, Y = _data(8)
    gc.Let(x, X)
    gc.Let(y, Y)
    gc.NewTapeMachine(g, gc.BindDualValues(w1, w2)).run_all()
    want = (w1.grad.copy(), w2.grad.copy())
    w1.unbind_grad()
    w2.unbind_grad()
    fwd = gc.NewTapeMachine(g, gc.ExecuteFwdOnly())
    bwd = gc.NewTapeMachine(g, gc.ExecuteBwdOnly(), gc.BindDualValues(w1, w2))
    fwd.run_all()
    bwd.run_all()
    np.testing.assert_allclose(w1.grad, want[0], rtol=1e-10)
    np.testing.assert_allclose(w2.grad, want[1], rtol=1e-10)
    assert all(id(n) not in {id(m) for m in fwd.order} or n.op is None or id(n) in bwd.given
               for n in bwd.order)


def test_backward_only_without_a_forward_run_says_to_run_it_first():
    g, x, y, w1, w2, out, cost = _mlp()
    gc.Grad(cost, w1)
    gc.Let(x, _data(4)[0])
    gc.Let(y, _data(4)[1])
    bwd = gc.NewTapeMachine(g, gc.ExecuteBwdOnly(), gc.BindDualValues(w1))
    with pytest.raises(gc.ValueNotAvailableError, match="run the forward pass first"):
        bwd.run_all()


def test_backward_only_needs_gradient_nodes():
    g = gc.NewGraph()
    gc.Exp(gc.NewScalar(g, gc.Float64, gc.WithValue(1.0)))
    with pytest.raises(gc.GraphError, match="no gradient nodes"):
        gc.NewTapeMachine(g, gc.ExecuteBwdOnly())


def test_lisp_backward_only_uses_the_forward_values_it_finds():
    g = gc.NewGraph()
    w = gc.NewVector(g, gc.Float64, gc.WithShape(2), gc.WithName("w"), gc.WithValue([1.0, 2.0]))
    cost = gc.Sum(gc.Square(w))
    gc.NewLispMachine(g, gc.ExecuteFwdOnly()).run_all()
    assert float(cost.value) == 5.0
    bwd = gc.NewLispMachine(g, gc.ExecuteBwdOnly())
    bwd.run_all()
    np.testing.assert_allclose(w.grad, [2.0, 4.0])


def test_lisp_backward_only_before_any_forward_run_says_so():
    g = gc.NewGraph()
    w = gc.NewVector(g, gc.Float64, gc.WithShape(2), gc.WithName("w"), gc.WithValue([1.0, 2.0]))
    gc.Sum(gc.Exp(w))
    with pytest.raises(gc.ValueNotAvailableError, match="run the forward pass first"):
        gc.NewLispMachine(g, gc.ExecuteBwdOnly()).run_all()


# ----- gradients with respect to fed inputs ------------------------------------------------------

@pytest.mark.parametrize("machine", sorted(MACHINES))
@pytest.mark.parametrize("batch", [1, 100])
def test_input_gradient_of_a_fed_batch_matches_finite_differences(machine, batch):
    g, x, y, w1, w2, out, cost = _mlp()
    if machine == "NewTapeMachine":
        gc.Grad(cost, x)
    vm = MACHINES[machine](g, gc.BindDualValues(x))  # x has no value yet: it is fed later
    X, Y = _data(batch, seed=batch)
    gc.Let(x, X)
    gc.Let(y, Y)
    vm.run_all()
    got = x.grad.copy()
    assert got.shape == (batch, 4)

    lisp = gc.NewLispMachine(g, gc.ExecuteFwdOnly())

    def f_at(Xv):
        gc.Let(x, Xv)
        lisp.run_all()
        return float(cost.value)

    num = np.zeros((min(batch, 3), 4))
    for i, j in np.ndindex(num.shape):
        hi, lo = X.copy(), X.copy()
        hi[i, j] += 1e-6
        lo[i, j] -= 1e-6
        num[i, j] = (f_at(hi) - f_at(lo)) / 2e-6
    np.testing.assert_allclose(got[: num.shape[0]], num, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_input_gradient_is_the_last_batchs_not_a_sum_and_follows_the_batch_size(machine):
    g, x, y, w1, w2, out, cost = _mlp()
    if machine == "NewTapeMachine":
        gc.Grad(cost, x)
    vm = MACHINES[machine](g, gc.BindDualValues(x))
    X, Y = _data(5)
    gc.Let(x, X)
    gc.Let(y, Y)
    vm.run_all()
    first = x.grad.copy()
    vm.run_all()
    np.testing.assert_allclose(x.grad, first, rtol=1e-12)  # overwritten, not accumulated
    gc.Let(x, X[:2])
    gc.Let(y, Y[:2])
    vm.run_all()
    assert x.grad.shape == (2, 4)
    gc.Let(x, X)
    gc.Let(y, Y)
    vm.run_all()
    np.testing.assert_allclose(x.grad, first, rtol=1e-12)


def test_learnable_gradients_still_accumulate_next_to_a_fed_input():
    g, x, y, w1, w2, out, cost = _mlp()
    gc.Grad(cost, x, w1)
    vm = gc.NewTapeMachine(g, gc.BindDualValues(x, w1))
    X, Y = _data(4)
    gc.Let(x, X)
    gc.Let(y, Y)
    vm.run_all()
    once = w1.grad.copy()
    vm.run_all()
    np.testing.assert_allclose(w1.grad, 2 * once, rtol=1e-12)


def test_binding_an_op_node_is_refused():
    g, x, y, w1, w2, out, cost = _mlp()
    (d,) = gc.Grad(cost, out)
    with pytest.raises(gc.GraphError, match="not an input node"):
        gc.NewTapeMachine(g, gc.BindDualValues(out))
    assert d.deriv_of is out


# ----- logging -----------------------------------------------------------------------------------

@pytest.mark.parametrize("machine", sorted(MACHINES))
@pytest.mark.parametrize(
    "opt, fwd, bwd",
    [(gc.LogFwd(), True, False), (gc.LogBwd(), False, True), (gc.LogBothDir(), True, True)],
)
def test_logging_directions(machine, opt, fwd, bwd, caplog):
    g = gc.NewGraph()
    w = gc.NewVector(g, gc.Float64, gc.WithShape(2), gc.WithName("w"), gc.WithValue([1.0, 2.0]))
    cost = gc.Sum(gc.Tanh(w))
    if machine == "NewTapeMachine":
        gc.Grad(cost, w)
    vm = MACHINES[machine](g, gc.WithLogger(logging.getLogger("test.dir")), opt,
                           gc.BindDualValues(w))
    with caplog.at_level(logging.DEBUG, logger="test.dir"):
        vm.run_all()
    msgs = [r.getMessage() for r in caplog.records if r.name == "test.dir"]
    assert any(m.startswith("fwd ") and "Tanh" in m for m in msgs) == fwd
    assert any(m.startswith("bwd ") for m in msgs) == bwd
    assert all("mean" in m for m in msgs)


def test_with_logger_refuses_what_is_not_a_logger():
    with pytest.raises(TypeError, match="logging.Logger"):
        gc.WithLogger("debug")


# ----- manual gradient ---------------------------------------------------------------------------

def test_manual_gradient_is_a_vector_jacobian_product_read_from_a_node_each_run():
    g = gc.NewGraph()
    w = gc.NewMatrix(g, gc.Float64, gc.WithShape(2, 3), gc.WithName("w"),
                     gc.WithValue(np.arange(6.0).reshape(2, 3)))
    a = np.array([[1.0, -1.0], [2.0, 0.5], [0.0, 3.0]])
    gc.Tanh(w @ gc.NewConstant(a))  # a (2, 2) root
    seed_graph = gc.NewGraph()
    v = gc.NewMatrix(seed_graph, gc.Float64, gc.WithShape(2, 2), gc.WithName("v"))
    gc.Let(v, [[1.0, 2.0], [3.0, 4.0]])
    m = gc.NewLispMachine(g, gc.WithManualGradient(v))
    m.run_all()
    t = np.tanh(np.arange(6.0).reshape(2, 3) @ a)
    want = ((1 - t**2) * v.value) @ a.T
    np.testing.assert_allclose(w.grad, want, rtol=1e-12)
    gc.Let(v, np.zeros((2, 2)))
    w.unbind_grad()
    m.run_all()
    np.testing.assert_allclose(w.grad, 0.0)


def test_manual_gradient_of_the_wrong_shape_names_the_option():
    g = gc.NewGraph()
    w = gc.NewVector(g, gc.Float64, gc.WithShape(2), gc.WithValue([1.0, 2.0]))
    gc.Square(w)
    with pytest.raises(gc.ShapeError, match="WithManualGradient"):
        gc.NewLispMachine(g, gc.WithManualGradient([1.0, 2.0, 3.0]))


# ----- compiled functions ------------------------------------------------------------------------

def test_compiled_function_runs_only_what_the_outputs_need():
    g, x, y, w1, w2, out, cost = _mlp()
    gc.Grad(cost, w1, w2)
    prog = gc.CompileFunction(g, [x], [out])
    assert not any(n.deriv_of is not None for n in prog.order)
    assert all(n is not y for n in prog.order)
    vm = gc.NewTapeMachine(g, gc.WithPrecompiled(prog))
    for n in (1, 7):
        X, _ = _data(n)
        gc.Let(x, X)
        vm.run_all()
        np.testing.assert_allclose(out.value, np.tanh(X @ w1.value) @ w2.value, rtol=1e-12)


def test_compiled_function_from_an_intermediate_node():
    g, x, y, w1, w2, out, cost = _mlp()
    h = out.children[0]
    prog = gc.CompileFunction(g, [h], [out])
    gc.UnsafeLet(h, np.ones((2, 5)))
    gc.NewTapeMachine(g, gc.WithPrecompiled(prog)).run_all()
    np.testing.assert_allclose(out.value, np.ones((2, 5)) @ w2.value, rtol=1e-12)


def test_compiled_function_names_a_forgotten_input():
    g, x, y, w1, w2, out, cost = _mlp()
    with pytest.raises(gc.GraphError, match=r"need the input\(s\) \['x'\]"):
        gc.CompileFunction(g, [], [out])
    with pytest.raises(TypeError, match="CompileFunction"):
        gc.WithPrecompiled([out])


# ----- failed constructors -----------------------------------------------------------------------

@pytest.mark.parametrize("cls", [gc.TapeMachine, gc.LispMachine])
def test_repr_of_a_machine_whose_constructor_raised(cls):
    obj = cls.__new__(cls)
    with pytest.raises(TypeError):
        obj.__init__("not a graph")
    assert repr(obj).startswith(cls.__name__)
    bare = cls.__new__(cls)
    assert cls.__name__ in repr(bare)


# ----- threads ------------------------------------------------------------------------------


def _slow_graph():
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 300), gc.WithName("x"))
    w = gc.NewMatrix(g, gc.Float64, gc.WithShape(300, 300), gc.WithName("w"),
                     gc.WithValue(np.eye(300) * 0.5))
    h = x
    for _ in range(30):
        h = gc.Tanh(h @ w)
    return g, x, w, h


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_one_machine_run_from_two_threads_refuses_instead_of_computing_garbage(machine):
    import threading

    g, x, w, h = _slow_graph()
    opts = (gc.ExecuteFwdOnly(),) if machine == "NewLispMachine" else ()
    vm = MACHINES[machine](g, *opts)
    gc.Let(x, np.ones((200, 300)))
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def run():
        start.wait()
        try:
            for _ in range(5):
                vm.run_all()
        except gc.MachineBusyError as e:
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors, "concurrent runs of one machine were not refused"
    assert "another thread" in str(errors[0]) and "clone" in str(errors[0])
    vm.run_all()  # the machine still works afterwards
    np.testing.assert_allclose(h.value[0, :3], h.value[-1, :3])


def test_a_machine_per_thread_on_clones_sharing_the_weights_agree_with_one_thread():
    import threading

    g, x, w, h = _slow_graph()
    data = [np.random.default_rng(i).normal(size=(1 + 7 * i, 300)) for i in range(8)]
    vm = gc.NewTapeMachine(g)
    want = []
    for d in data:
        gc.Let(x, d)
        vm.run_all()
        want.append(h.value.copy())
    got: dict[int, list[np.ndarray]] = {}

    def worker(k):
        memo: dict[int, gc.Node] = {}
        g2 = g.clone(memo, share=[w])
        x2, h2 = memo[id(x)], memo[id(h)]
        vm2 = gc.NewTapeMachine(g2)
        out = []
        for i in range(len(data)):
            j = (i + k) % len(data)
            gc.Let(x2, data[j])
            vm2.run_all()
            out.append((j, h2.value.copy()))
        got[k] = out

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(4):
        for j, v in got[k]:
            np.testing.assert_allclose(v, want[j], rtol=1e-12, atol=1e-15)


def test_a_watched_node_the_machine_does_not_run_is_refused():
    g = gc.NewGraph()
    w = gc.NewVector(g, gc.Float64, gc.WithShape(3), gc.WithName("w"), gc.WithValue(np.ones(3)))
    cost = gc.Sum(gc.Square(w))
    (dw,) = gc.Grad(cost, w)
    upd = gc.Sub(w, gc.Mul(0.1, dw))
    # the update needs dw, and dw does not need the cost's value: the cost is not run
    with pytest.raises(gc.GraphError, match=rf"WithWatchlist: \['{cost.name}'\] are not run"):
        gc.NewTapeMachine(g.subgraph_roots(upd), gc.WithWatchlist(cost))
    vm = gc.NewTapeMachine(g.subgraph_roots(upd, cost), gc.WithWatchlist(cost))
    vm.run_all()
    assert float(cost.value) == 3.0
