"""Max, Min, LogSumExp, Norm (values, gradients, ties, edge cases) and the comparison ops."""

import numpy as np
import pytest
from scipy import special

import graphcore as gc
from tests.gradcheck import check_op

rng = np.random.default_rng(1)


def r(*shape):
    return rng.standard_normal(shape)


def run(*nodes, graph=None):
    g = graph or next(n.graph for n in nodes if n.graph is not None)
    vm = gc.NewTapeMachine(g, gc.WithWatchlist(*nodes))
    vm.run_all()
    return [np.array(n.value, copy=True) for n in nodes]


# ----- Max / Min ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", [gc.Max, gc.Min])
@pytest.mark.parametrize(
    "axes,keep", [((), False), ((0,), False), ((1,), True), ((0, 2), False), ((-1,), True)]
)
def test_extremum_grad(fn, axes, keep):
    check_op(lambda x: fn(x, *axes, keepdims=keep), [r(3, 4, 2)])


@pytest.mark.parametrize("fn", [gc.Max, gc.Min])
def test_extremum_free_batch(fn):
    check_op(lambda x: fn(x, 1), [r(5, 3)], free_batch=True)
    check_op(lambda x: fn(x, axis=0), [r(5, 3)], free_batch=True)


def test_extremum_values_and_shapes():
    x = r(3, 4)
    g = gc.NewGraph()
    xn = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 4), gc.WithName("x"))
    outs = [gc.Max(xn), gc.Min(xn, 1), gc.Max(xn, axis=0, keepdims=True), gc.Min(xn, [0, 1])]
    assert [o.shape for o in outs] == [(), (None,), (1, 4), ()]
    gc.Let(xn, x)
    got = run(*outs)
    want = [x.max(), x.min(1), x.max(0, keepdims=True), x.min()]
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)


def test_axes_as_a_list_same_as_separate_ints():
    x = r(3, 4)
    g = gc.NewGraph()
    xn = gc.NewMatrix(g, gc.Float64, gc.WithShape(3, 4), gc.WithName("x"))
    pairs = [(gc.Max(xn, [0, 1]), gc.Max(xn, 0, 1)), (gc.LogSumExp(xn, [0, 1]),
             gc.LogSumExp(xn, 0, 1)), (gc.Min(xn, (1,)), gc.Min(xn, 1))]
    gc.Let(xn, x)
    got = run(*[n for p in pairs for n in p])
    for a, b in zip(got[::2], got[1::2], strict=True):
        np.testing.assert_array_equal(a, b)
    assert got[2].shape == () and abs(float(got[2]) - special.logsumexp(x)) < 1e-12


def test_max_ties_split_gradient_evenly():
    g = gc.NewGraph()
    x = gc.NewMatrix(
        g,
        gc.Float64,
        gc.WithShape(2, 3),
        gc.WithName("x"),
        gc.WithValue([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]),
    )
    (dx,) = gc.Grad(gc.Sum(gc.Max(x, 1)), x)
    gc.NewTapeMachine(g).run_all()
    np.testing.assert_array_equal(dx.value, [[0.0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    # the Lisp machine agrees exactly
    x.unbind_grad()
    gc.NewLispMachine(g, gc.BindDualValues(x)).run_all()
    np.testing.assert_array_equal(x.grad, [[0.0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])


def test_min_ties_over_all_axes_with_upstream_scale():
    g = gc.NewGraph()
    x = gc.NewMatrix(
        g,
        gc.Float64,
        gc.WithShape(2, 2),
        gc.WithName("x"),
        gc.WithValue([[-1.0, 4.0], [-1.0, -1.0]]),
    )
    (dx,) = gc.Grad(gc.HadamardProd(gc.Min(x), 6.0), x)
    gc.NewTapeMachine(g).run_all()
    np.testing.assert_array_equal(dx.value, [[2.0, 0.0], [2.0, 2.0]])


def test_maximum_minimum_ties_split_evenly():
    g = gc.NewGraph()
    a = gc.NewVector(
        g, gc.Float64, gc.WithShape(3), gc.WithName("a"), gc.WithValue([1.0, 2.0, 5.0])
    )
    b = gc.NewVector(
        g, gc.Float64, gc.WithShape(3), gc.WithName("b"), gc.WithValue([1.0, 3.0, 4.0])
    )
    da, db = gc.Grad(gc.Sum(gc.Maximum(a, b)), a, b)
    gc.NewTapeMachine(g).run_all()
    np.testing.assert_array_equal(da.value, [0.5, 0.0, 1.0])
    np.testing.assert_array_equal(db.value, [0.5, 1.0, 0.0])


def test_max_of_integers_and_empty_axis():
    x = gc.NewConstant(np.array([[3, 1], [2, 7]]))
    assert gc.Max(x, 1).dtype == gc.Int64
    g = gc.NewGraph()
    e = gc.NewMatrix(g, gc.Float64, gc.WithShape(3, 0), gc.WithName("e"))
    with pytest.raises(gc.ShapeError, match="'e'.*size 0"):
        gc.Max(e, 1)
    with pytest.raises(gc.ShapeError, match="out of range"):
        gc.Min(e, 2)


# ----- LogSumExp ---------------------------------------------------------------------------------


@pytest.mark.parametrize("axes,keep", [((), False), ((0,), True), ((0, 1), False), ((1, 2), True)])
def test_logsumexp_grad(axes, keep):
    check_op(lambda x: gc.LogSumExp(x, *axes, keepdims=keep), [r(3, 4, 2)])


def test_logsumexp_free_batch_and_default_axis():
    check_op(gc.LogSumExp, [r(5, 3)], free_batch=True)
    assert gc.LogSumExp(gc.NewConstant(np.zeros((2, 3)))).shape == (2,)


@pytest.mark.parametrize("dt", [gc.Float64, gc.Float32])
def test_logsumexp_is_stable(dt):
    x = np.array([[1000.0, 1000.0, -5.0], [-1000.0, -1000.0, -1000.0], [0.0, 1.0, 2.0]])
    g = gc.NewGraph()
    xn = gc.NewMatrix(g, dt, gc.WithShape(3, 3), gc.WithName("x"), gc.WithValue(x))
    lse = gc.LogSumExp(xn, 1)
    (dx,) = gc.Grad(gc.Sum(lse), xn)
    v, d = run(lse, dx)
    tol = 1e-6 if dt == gc.Float32 else 1e-12
    assert np.isfinite(v).all() and np.isfinite(d).all()
    np.testing.assert_allclose(v, special.logsumexp(x, axis=1), rtol=tol)
    np.testing.assert_allclose(d, special.softmax(x, axis=1), rtol=tol, atol=tol)


def test_logsumexp_infinite_slice_gives_inf_not_nan():
    a = np.array([[np.inf, 0.0], [1.0, 2.0]])
    out = gc.LogSumExp(gc.NewConstant(a)).op.compute([a], gc.ExecContext())
    assert out[0] == np.inf and np.isclose(out[1], np.logaddexp(1.0, 2.0))


def test_logsumexp_needs_float():
    with pytest.raises(gc.DtypeError, match="LogSumExp needs a float"):
        gc.LogSumExp(gc.NewConstant(np.array([1, 2])))


# ----- Norm --------------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("axis,keep", [(None, False), (1, False), ((0, 2), True), (-1, True)])
def test_norm_grad(p, axis, keep):
    x = r(3, 4, 2)
    x = np.where(np.abs(x) < 0.05, 0.3, x)  # away from |x|'s kink for p=1
    check_op(lambda v: gc.Norm(v, axis, p, keepdims=keep), [x])


@pytest.mark.parametrize("p", [1, 2])
def test_norm_free_batch_and_values(p):
    check_op(lambda v: gc.Norm(v, 1, p), [r(5, 3) + 2.0], free_batch=True)
    x = r(4, 3)
    node = gc.Norm(gc.NewConstant(x), 1, p)
    out = node.op.compute([x], gc.ExecContext())
    np.testing.assert_allclose(out, np.linalg.norm(x, ord=p, axis=1), rtol=1e-12)


@pytest.mark.parametrize("p", [1, 2])
def test_norm_gradient_at_zero_is_zero(p):
    g = gc.NewGraph()
    val = np.array([[0.0, 0.0, 0.0], [3.0, 0.0, -4.0]])
    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(2, 3), gc.WithName("x"), gc.WithValue(val))
    n_rows, n_all = gc.Norm(x, 1, p), gc.Norm(gc.HadamardProd(x, 0.0), None, p)
    (dx,) = gc.Grad(gc.Add(gc.Sum(n_rows), n_all), x)
    v, d = run(n_rows, dx)
    assert np.isfinite(d).all()
    want = np.sign(val) if p == 1 else val / np.array([[1.0], [5.0]])
    np.testing.assert_allclose(d, want, rtol=1e-15)
    assert v.tolist() == ([0.0, 7.0] if p == 1 else [0.0, 5.0])


def test_norm_bad_p_and_dtype():
    x = gc.NewConstant([1.0, 2.0])
    with pytest.raises(ValueError, match="p must be 1 or 2"):
        gc.Norm(x, p=3)
    with pytest.raises(gc.DtypeError, match="Norm needs a float"):
        gc.Norm(gc.NewConstant(np.array([1, 2])))


@pytest.mark.parametrize(
    "build,op",
    [
        (lambda x: gc.Sum(x, 1.5), "Sum"),
        (lambda x: gc.Mean(x, axis=[0, "1"]), "Mean"),
        (lambda x: gc.Max(x, 0, 1.0), "Max"),
        (lambda x: gc.Min(x, True), "Min"),
        (lambda x: gc.LogSumExp(x, axis=0.0), "LogSumExp"),
        (lambda x: gc.Norm(x, 1.5), "Norm"),
        (lambda x: gc.Sum(x, axis={0}), "Sum"),
    ],
)
def test_axes_that_are_not_integers_are_a_clear_type_error(build, op):
    x = gc.NewConstant(np.ones((2, 3)))
    with pytest.raises(TypeError, match=rf"^{op}: axes must be integers") as e:
        build(x)
    assert "not iterable" not in str(e.value)


def test_numpy_integer_axes_still_work():
    x = gc.NewConstant(np.ones((2, 3)))
    assert gc.Sum(x, np.int64(1)).shape == (2,)
    assert gc.Mean(x, axis=(np.int32(0), 1)).shape == ()
    assert gc.Norm(x, [0, 1]).shape == ()


# ----- comparisons -------------------------------------------------------------------------------

CMP = {
    "Lt": np.less,
    "Gt": np.greater,
    "Lte": np.less_equal,
    "Gte": np.greater_equal,
    "Eq": np.equal,
    "Ne": np.not_equal,
}


@pytest.mark.parametrize("name", sorted(CMP))
@pytest.mark.parametrize(
    "sa,sb", [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 1), (1, 4)), ((3, 4), ())]
)
def test_compare_values_and_bool_dtype(name, sa, sb):
    a = rng.integers(-2, 3, sa).astype(float)
    b = rng.integers(-2, 3, sb).astype(float)
    node = getattr(gc, name)(gc.NewConstant(a), gc.NewConstant(b))
    assert node.dtype == gc.Bool and not node.op.differentiable
    got = node.op.compute([a, b], gc.ExecContext())
    assert got.dtype == np.bool_
    np.testing.assert_array_equal(got, CMP[name](a, b))


@pytest.mark.parametrize("name", sorted(CMP))
def test_compare_ret_same_tape_lisp_float32(name):
    a = rng.integers(-2, 3, (5, 4)).astype(float)
    b = rng.integers(-2, 3, (4,)).astype(float)
    fn = getattr(gc, name)
    check_op(lambda x, y: fn(x, y, True), [a, b], free_batch=True, differentiable=False)
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 4), gc.WithName("x"), gc.WithValue(a))
    y = gc.NewVector(g, gc.Float32, gc.WithShape(4), gc.WithName("y"), gc.WithValue(b))
    out = fn(x, y, ret_same=True)
    assert out.dtype == gc.Float32
    (v,) = run(out)
    assert v.dtype == np.float32
    np.testing.assert_array_equal(v, CMP[name](a, b).astype(np.float32))
    lm = gc.NewLispMachine(g, gc.ExecuteFwdOnly())
    lm.run_all()
    np.testing.assert_array_equal(out.value, v)


def test_compare_integer_operands():
    a, b = np.array([1, 5, 3]), np.array([2, 5, 1])
    lt = gc.Lt(gc.NewConstant(a), gc.NewConstant(b), True)
    assert lt.dtype == gc.Int64
    assert lt.op.compute([a, b], gc.ExecContext()).tolist() == [1, 0, 0]


def test_compare_flags():
    x = gc.NewConstant([1.0])
    assert gc.Eq(x, 1.0, ret_same=True).dtype == gc.Float64
    assert gc.Eq(x, 1.0, False).dtype == gc.Bool
    with pytest.raises(TypeError, match="disagree"):
        gc.Gt(x, 1.0, True, ret_same=False)
    with pytest.raises(TypeError, match="retSame must be True or False"):
        gc.Lt(x, 1.0, [0])


def test_compare_shape_and_dtype_errors():
    g = gc.NewGraph()
    a = gc.NewMatrix(g, gc.Float64, gc.WithShape(3, 4), gc.WithName("a"))
    b = gc.NewMatrix(g, gc.Float64, gc.WithShape(3, 5), gc.WithName("b"))
    c = gc.NewMatrix(g, gc.Float32, gc.WithShape(3, 4), gc.WithName("c"))
    with pytest.raises(gc.ShapeError, match=r"Lt.*'a' \(3, 4\).*'b' \(3, 5\)"):
        gc.Lt(a, b)
    with pytest.raises(gc.DtypeError, match="'a'.*'c'"):
        gc.Eq(a, c)


def test_grad_through_comparison_raises_naming_node():
    g = gc.NewGraph()
    x = gc.NewVector(g, gc.Float64, gc.WithShape(3), gc.WithName("x"), gc.WithValue([1.0, -1, 2]))
    mask = gc.Gt(x, 0.0, True)
    cost = gc.Sum(gc.HadamardProd(mask, x))
    with pytest.raises(gc.GradError, match=f"{mask.name}.*not differentiable"):
        gc.Grad(cost, x)
    # a comparison off the gradient path is fine
    g2 = gc.NewGraph()
    w = gc.NewVector(g2, gc.Float64, gc.WithShape(3), gc.WithName("w"), gc.WithValue([1.0, -1, 2]))
    d = gc.NewVector(g2, gc.Float64, gc.WithShape(3), gc.WithName("d"), gc.WithValue([1.0, 0, 1]))
    (dw,) = gc.Grad(gc.Sum(gc.HadamardProd(w, gc.Gt(d, 0.0, True))), w)
    gc.NewTapeMachine(g2).run_all()
    assert dw.value.tolist() == [1.0, 0.0, 1.0]
