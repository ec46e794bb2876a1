"""``TapeMachine.function``: a machine called like a function, its errors and node values; and
the publishing a run skips when no other machine touched the nodes since."""


import numpy as np
import pytest

import graphcore as gc
from graphcore.machines.plan import Plan
from tests.allocations import peak_growth


@pytest.fixture(autouse=True, params=["copy_below as shipped", "copy_below 0"])
def _copy_below(request, monkeypatch):
    """Every test twice: small arrays copied (as shipped), and every lent input read and every
    destination written in place (what big batches do)."""
    if request.param == "copy_below 0":
        monkeypatch.setattr(Plan, "copy_below", 0)


def _net(rng=None):
    rng = rng or np.random.default_rng(0)
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 6), gc.WithName("x"))
    w = gc.NewMatrix(g, gc.Float64, gc.WithName("w"), gc.WithValue(rng.standard_normal((6, 4))))
    b = gc.NewMatrix(g, gc.Float64, gc.WithName("b"), gc.WithValue(rng.standard_normal((1, 4))))
    w2 = gc.NewMatrix(g, gc.Float64, gc.WithName("w2"),
                      gc.WithValue(rng.standard_normal((4, 3))))
    h = gc.Rectify(gc.Add(gc.Mul(x, w), b))
    out = gc.SoftMax(gc.Mul(h, w2))
    return g, x, (w, b, w2), h, out


def _ref(X, w, b, w2):
    z = np.maximum(X @ w.value + b.value, 0) @ w2.value
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


@pytest.mark.parametrize("rows", [1, 5, 300])
def test_function_gives_what_let_and_run_all_give(rows):
    rng = np.random.default_rng(1)
    g, x, ws, h, out = _net()
    f = gc.NewTapeMachine(g.subgraph_roots(out), gc.EvalMode()).function(x, out)
    for _ in range(3):  # the same plan again, new data each time
        X = rng.standard_normal((rows, 6))
        kept = X.copy()
        got = f(X)
        np.testing.assert_allclose(got, _ref(kept, *ws), rtol=1e-12)
        res = np.full((rows, 3), np.nan)
        assert f(X, out=res) is res
        np.testing.assert_allclose(res, got, rtol=1e-12)
        np.testing.assert_array_equal(X, kept)  # a lent input is only read


def test_function_node_values_follow_let_and_into():
    g, x, ws, h, out = _net()
    vm = gc.NewTapeMachine(g.subgraph_roots(out))
    f = vm.function(x, out)
    X = np.ones((2, 6))
    res = np.empty((2, 3))
    f(X, out=res)
    assert x.value is X and out.value is res  # as Let(copy=False) and run_all(into=) leave them
    first = res.copy()
    got = f(2 * X)  # without out: a new array; res stays as it was
    assert got is not res and out.value is not res and out.value is not got
    np.testing.assert_array_equal(res, first)
    again = f(3 * X)
    np.testing.assert_allclose(got, _ref(2 * X, *ws), rtol=1e-12)  # a copy, not a buffer
    np.testing.assert_allclose(again, _ref(3 * X, *ws), rtol=1e-12)


def test_function_with_several_inputs_and_outputs_returns_a_list():
    g = gc.NewGraph()
    a = gc.NewVector(g, gc.Float32, gc.WithShape(None), gc.WithName("a"))
    b = gc.NewVector(g, gc.Float32, gc.WithShape(None), gc.WithName("b"))
    s, p = gc.Add(a, b), gc.HadamardProd(a, b)
    f = gc.NewTapeMachine(g).function([a, b], [s, p])
    A, B = np.array([1, 2], np.float32), np.array([3, 4], np.float32)
    got = f(A, B)
    assert isinstance(got, list) and [r.tolist() for r in got] == [[4, 6], [3, 8]]
    outs = [np.empty(2, np.float32), np.empty(2, np.float32)]
    assert f(A, B, out=outs) is outs
    assert [r.tolist() for r in outs] == [[4, 6], [3, 8]]
    assert s.value is outs[0] and p.value is outs[1]
    with pytest.raises(ValueError, match=r"sequence of 2 arrays, one for each of \['Add"):
        f(A, B, out=outs[0])
    with pytest.raises(ValueError, match="sequence of 2 arrays"):
        f(A, B, out=outs[:1])
    assert "['a', 'b'] -> " in repr(f)


def test_function_casts_safely_and_names_what_is_wrong():
    g, x, ws, h, out = _net()
    f = gc.NewTapeMachine(g.subgraph_roots(out)).function(x, out)
    as_list = f([[0.0] * 6])  # anything Let takes, cast and copied as Let would
    np.testing.assert_allclose(as_list, _ref(np.zeros((1, 6)), *ws), rtol=1e-12)
    with pytest.raises(TypeError, match=r"takes 1 array\(s\), one for each of \['x'\], got 2"):
        f(np.ones((1, 6)), np.ones((1, 6)))
    with pytest.raises(gc.ShapeError, match=r"'x' expects shape \(None, 6\)"):
        f(np.ones((1, 5)))
    with pytest.raises(gc.DtypeError, match="overflow"):
        gi = gc.NewGraph()
        xi = gc.NewVector(gi, gc.Float32, gc.WithShape(None), gc.WithName("xi"))
        yi = gc.Neg(xi)
        gc.NewTapeMachine(gi).function(xi, yi)(np.array([1e300]))
    with pytest.raises(ValueError, match=r"shape \(2, 3\)"):
        f(np.ones((2, 6)), out=np.empty((3, 3)))
    with pytest.raises(ValueError, match="float64"):
        f(np.ones((2, 6)), out=np.empty((2, 3), np.float32))
    ro = np.empty((2, 3))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        f(np.ones((2, 6)), out=ro)


def test_function_refuses_nodes_it_cannot_feed_or_read():
    g, x, ws, h, out = _net()
    vm = gc.NewTapeMachine(g.subgraph_roots(out))
    with pytest.raises(gc.GraphError, match="'b' .*not an input node this machine reads|"
                                            "not an input node this machine reads"):
        vm.function(h, out)  # an op node
    other = gc.NewMatrix(gc.NewGraph(), gc.Float64, gc.WithShape(2, 2), gc.WithName("other"))
    with pytest.raises(gc.GraphError, match="'other'.*not an input node this machine reads"):
        vm.function(other, out)
    with pytest.raises(gc.GraphError, match=r"not run by this machine.*subgraph_roots\(other\)"):
        vm.function(x, other)
    with pytest.raises(gc.GraphError, match=r"may reuse the buffer.*WithWatchlist"):
        vm.function(x, h)  # an intermediate result the machine does not keep
    assert np.allclose(gc.NewTapeMachine(g, gc.WithWatchlist(h)).function(x, h)(np.ones((1, 6))),
                       np.maximum(np.ones((1, 6)) @ ws[0].value + ws[1].value, 0))
    with pytest.raises(gc.GraphError, match="listed twice"):
        vm.function([x, x], out)
    with pytest.raises(gc.GraphError, match="at least one output"):
        vm.function(x, [])
    with pytest.raises(TypeError, match="outputs must be nodes"):
        vm.function(x, [np.ones(2)])


def test_function_calls_allocate_no_arrays():
    g, x, ws, h, out = _net()
    f = gc.NewTapeMachine(g.subgraph_roots(out), gc.EvalMode()).function(x, out)
    X = np.random.default_rng(2).standard_normal((10_000, 6))
    # 240 kB: a copy of the result would show over numpy's own scratch of a broadcast or a
    # reduction (8,192 elements)
    res = np.empty((10_000, 3))
    for _ in range(5):
        f(X, out=res)
    growth = peak_growth(lambda: f(X, out=res), 50)
    assert growth < res.nbytes, f"peak traced growth {growth} bytes over 50 calls"


# ----- publishing: skipped when nothing touched the nodes, done when something did -------------


def test_two_machines_on_one_graph_each_publish_their_own_results():
    g, x, ws, h, out = _net()
    a = gc.NewTapeMachine(g, gc.EvalMode(), gc.WithWatchlist(h))
    b = gc.NewTapeMachine(g, gc.EvalMode(), gc.WithWatchlist(h))
    X, Y = np.ones((2, 6)), -np.ones((3, 6))
    gc.Let(x, X)
    a.run_all()
    gc.Let(x, Y)
    b.run_all()
    assert out.value.shape == (3, 3)
    gc.Let(x, X)
    a.run_all()  # the same plan as a's last run, but b pointed the nodes at its buffers
    assert out.value.shape == (2, 3) and h.value.shape == (2, 4)
    np.testing.assert_allclose(out.value, _ref(X, *ws), rtol=1e-12)
    b.publish()
    assert out.value.shape == (3, 3)


def test_a_value_set_by_hand_or_cleared_is_computed_again():
    g, x, ws, h, out = _net()
    vm = gc.NewTapeMachine(g, gc.WithWatchlist(h))
    gc.Let(x, np.ones((2, 6)))
    vm.run_all()
    computed = out.value
    gc.UnsafeLet(out, np.zeros((2, 3)))
    assert out.value is not computed
    vm.run_all()
    assert out.value is computed
    g.unbind_all_non_inputs()
    assert not out.has_value
    vm.run_all()
    assert out.value is computed
    res = np.empty((2, 3))
    vm.run_all(into={out: res})
    assert out.value is res
    vm.run_all()  # the result points back at the plan's buffer
    assert out.value is computed and h.has_value


def test_into_results_point_back_after_a_run_without_into():
    g, x, ws, h, out = _net()
    vm = gc.NewTapeMachine(g.subgraph_roots(out))
    f = vm.function(x, out)
    X = np.ones((2, 6))
    res = [np.empty((2, 3)) for _ in range(3)]
    for r in res:
        f(X, out=r)
        assert out.value is r
    gc.Let(x, X)
    vm.run_all()
    assert all(out.value is not r for r in res)
    np.testing.assert_allclose(out.value, res[0], rtol=1e-12)


def test_one_output_refuses_a_list_for_out():
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
    y = gc.Neg(x)
    vm = gc.NewTapeMachine(g, gc.WithWatchlist(y))
    f = vm.function(x, y)
    with pytest.raises(TypeError, match="out must be one array for"):
        f(np.ones((1, 2)), out=[np.empty((1, 2))])


# ----- the fast path of a prediction loop's calls, and every fallback it guards --------------


def _primed(rows=2):
    """A function called twice with ``out`` (the second call may take the fast path)."""
    g, x, ws, h, out = _net()
    vm = gc.NewTapeMachine(g.subgraph_roots(out), gc.EvalMode(), gc.WithWatchlist(h))
    f = vm.function(x, out)
    res = np.empty((rows, 3))
    for k in range(2):
        f(np.full((rows, 6), k + 1.0), out=res)
    return g, x, ws, h, out, vm, f, res


def test_repeated_calls_give_fresh_results_and_node_values():
    g, x, ws, h, out, vm, f, res = _primed()
    rng = np.random.default_rng(3)
    for _ in range(4):
        X = rng.standard_normal((2, 6))
        dest = np.empty((2, 3))
        assert f(X, out=dest) is dest
        np.testing.assert_allclose(dest, _ref(X, *ws), rtol=1e-12)
        assert x.value is X and out.value is dest  # as Let(copy=False) and into= leave them
    gc.Let(x, np.ones((2, 6)))
    vm.run_all()  # without into=: the result is the plan's buffer again
    assert out.value is not dest
    np.testing.assert_allclose(out.value, _ref(np.ones((2, 6)), *ws), rtol=1e-12)


def test_another_machine_or_unsafe_let_in_between_is_seen():
    g, x, ws, h, out, vm, f, res = _primed()
    other = gc.NewTapeMachine(g.subgraph_roots(out), gc.EvalMode(), gc.WithWatchlist(h))
    gc.Let(x, -np.ones((2, 6)))
    other.run_all()  # points out and h at its own buffers
    X = np.full((2, 6), 0.5)
    assert f(X, out=res) is res
    np.testing.assert_allclose(res, _ref(X, *ws), rtol=1e-12)
    assert out.value is res and x.value is X
    w, b, _ = ws
    np.testing.assert_allclose(h.value, np.maximum(X @ w.value + b.value, 0), rtol=1e-12)
    gc.UnsafeLet(out, np.zeros((2, 3)))
    f(2 * X, out=res)
    np.testing.assert_allclose(res, _ref(2 * X, *ws), rtol=1e-12)
    assert out.value is res


def test_new_weights_a_new_batch_size_and_odd_arrays_take_the_general_path():
    g, x, ws, h, out, vm, f, res = _primed()
    w = ws[0]
    W = np.ascontiguousarray(-w.value)
    gc.Let(w, W, copy=False)  # another array for a weight: the plan must read it
    X = np.ones((2, 6))
    f(X, out=res)
    np.testing.assert_allclose(res, _ref(X, *ws), rtol=1e-12)
    big = np.empty((5, 3))
    f(np.ones((5, 6)), out=big)  # another plan
    np.testing.assert_allclose(big, _ref(np.ones((5, 6)), *ws), rtol=1e-12)
    strided = np.ones((2, 12))[:, ::2]  # not contiguous: Let copies it
    f(strided, out=res)
    assert x.value is not strided
    np.testing.assert_allclose(res, _ref(np.ones((2, 6)), *ws), rtol=1e-12)
    f(np.ones((2, 6), np.float32), out=res)  # a safe cast, as Let makes it
    np.testing.assert_allclose(res, _ref(np.ones((2, 6)), *ws), rtol=1e-12)
    f([[1.0] * 6] * 2, out=res)  # a list
    np.testing.assert_allclose(res, _ref(np.ones((2, 6)), *ws), rtol=1e-12)


def test_the_fast_path_keeps_the_general_errors():
    g, x, ws, h, out, vm, f, res = _primed()
    with pytest.raises(gc.ShapeError, match=r"'x' expects shape \(None, 6\)"):
        f(np.ones((2, 5)), out=res)
    with pytest.raises(ValueError, match=r"shape \(2, 3\)"):
        f(np.ones((2, 6)), out=np.empty((2, 4)))
    with pytest.raises(ValueError, match="float64"):
        f(np.ones((2, 6)), out=np.empty((2, 3), np.float32))
    ro = np.empty((2, 3))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        f(np.ones((2, 6)), out=ro)
    vm._running.acquire()  # as if another thread were running the machine
    try:
        with pytest.raises(gc.MachineBusyError, match="already running"):
            f(np.ones((2, 6)), out=res)
    finally:
        vm._running.release()
    f(np.ones((2, 6)), out=res)  # still works after the errors
    np.testing.assert_allclose(res, _ref(np.ones((2, 6)), *ws), rtol=1e-12)
    vm.close()
    with pytest.raises(gc.GraphError, match="closed"):
        f(np.ones((2, 6)), out=res)


def test_switching_between_copying_and_reading_in_place(monkeypatch):
    g, x, ws, h, out, vm, f, res = _primed()
    for limit in (0, 1 << 20, 0, 1 << 20):
        monkeypatch.setattr(Plan, "copy_below", limit)
        X = np.random.default_rng(limit + 1).standard_normal((2, 6))
        f(X, out=res)
        np.testing.assert_allclose(res, _ref(X, *ws), rtol=1e-12)
        assert x.value is X and out.value is res


def test_an_input_read_by_more_than_products_is_the_plans_copy():
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
    y = gc.Exp(x)  # not a product: the plan copies x and x.value is its buffer
    f = gc.NewTapeMachine(g).function(x, y)
    res = np.empty((1, 2))
    values = []
    for k in range(3):
        X = np.full((1, 2), float(k))
        f(X, out=res)
        np.testing.assert_allclose(res, np.exp(X), rtol=1e-12)
        assert x.value is not X
        values.append(x.value)
    assert values[1] is values[2]


def test_a_primed_call_skips_let_and_run_all(monkeypatch):
    g, x, ws, h, out, vm, f, res = _primed()
    if Plan.copy_below < res.nbytes:  # arrays read and written in place: the general path
        return
    calls = []
    monkeypatch.setattr(gc.TapeMachine, "run_all", lambda self, into=None: calls.append(into))
    X = np.full((2, 6), 3.0)
    f(X, out=res)
    assert calls == []
    np.testing.assert_allclose(res, _ref(X, *ws), rtol=1e-12)
    f(X, out=np.empty((5, 3)))  # another batch size: the general path
    assert len(calls) == 1


def test_a_batch_read_where_it_lies_then_the_buffer_again():
    g, x, ws, h, out = _net()
    vm = gc.NewTapeMachine(g.subgraph_roots(out), gc.EvalMode())
    f = vm.function(x, out)
    rows = 3000  # 144 kB a batch: read in place by the product, where BLAS takes pointers
    data = np.random.default_rng(4).standard_normal((3 * rows, 6))
    res = np.empty((rows, 3))
    for k in range(3):
        X = data[k * rows : (k + 1) * rows]
        assert f(X, out=res) is res
        np.testing.assert_allclose(res, _ref(X, *ws), rtol=1e-12)
        assert x.value is X and out.value is res
    plan = vm.plan
    if Plan.copy_below >= X.nbytes and plan.lent_pointers(x) is not None:
        assert not np.array_equal(plan.arrays[id(x)], X)  # read where it lies, not copied
    del X, data  # the steps must not keep reading that memory
    Y = np.full((rows, 6), 0.25)
    gc.Let(x, Y)
    vm.run_all()
    np.testing.assert_allclose(out.value, _ref(Y, *ws), rtol=1e-12)
    Z = np.full((rows, 6), -0.5)
    f(Z, out=res)
    np.testing.assert_allclose(res, _ref(Z, *ws), rtol=1e-12)


def test_a_read_only_batch_is_read_in_place_too():
    g, x, ws, h, out = _net()
    f = gc.NewTapeMachine(g.subgraph_roots(out), gc.EvalMode()).function(x, out)
    res = np.empty((3000, 3))
    for k in range(3):
        X = np.full((3000, 6), k - 1.0)
        X.flags.writeable = False
        f(X, out=res)
        np.testing.assert_allclose(res, _ref(X, *ws), rtol=1e-12)
        assert x.value is X
