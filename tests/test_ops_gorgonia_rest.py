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
    check_hvp(lambda v: fn(v) * gc.Cube(v), [a + 0.05])


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


# ----- ConvType ---------------------------------------------------------------------------------


def test_conv_type_values():
    x = gc.NewConstant([1.9, -1.9, 0.0])
    ctx = gc.ExecContext()
    f = np.array([1.9, -1.9, 0.0])
    assert gc.ConvType(x, gc.Int64).op.compute([f], ctx).tolist() == [1, -1, 0]
    assert gc.ConvType(x, gc.Bool).op.compute([f], ctx).tolist() == [True, True, False]
    assert gc.ConvType(x, gc.Float32).op.compute([f], ctx).dtype == np.float32
    i = gc.NewConstant(np.array([1, 2]))
    assert gc.ConvType(i, gc.Float64).dtype == gc.Float64
    assert gc.ConvType(x, gc.Float64) is x  # to its own dtype: nothing to do
    assert gc.ConvType(x, gc.Float64, "float32").dtype == gc.Float32  # Gorgonia's (x, from, to)


def test_conv_type_errors():
    x = gc.NewConstant([1.0])
    with pytest.raises(gc.DtypeError, match=r"'from' is Float32, but the operand .* is Float64"):
        gc.ConvType(x, gc.Float32, gc.Int64)
    with pytest.raises(gc.DtypeError, match=r"ConvType: .*not supported"):
        gc.ConvType(x, np.float16)


def test_conv_type_gradient_goes_back_to_the_operand_dtype_to_second_order():
    g = gc.NewGraph()
    x = gc.NodeFromAny(g, np.array([1.5, -2.0], np.float32), gc.WithName("x"))
    x64 = gc.ConvType(x, gc.Float64)
    cost = gc.Sum(gc.Cube(x64))
    (dx,) = gc.Grad(cost, x)
    (ddx,) = gc.Grad(gc.Sum(dx), x)  # the diagonal of the Hessian: 6x
    run(g, x64)
    assert cost.dtype == gc.Float64 and dx.dtype == ddx.dtype == gc.Float32
    np.testing.assert_allclose(dx.value, 3 * x.value.astype(np.float64) ** 2, rtol=1e-6)
    np.testing.assert_allclose(ddx.value, 6 * x.value, rtol=1e-6)


def test_conv_type_to_an_integer_carries_no_gradient():
    g = gc.NewGraph()
    x = gc.NodeFromAny(g, np.array([1.5, 2.5]), gc.WithName("x"))
    cost = gc.Sum(x * gc.ConvType(gc.ConvType(x, gc.Int64), gc.Float64))  # x * trunc(x)
    (dx,) = gc.Grad(cost, x)
    run(g)
    assert dx.value.tolist() == [1.0, 2.0]


# ----- KeepDims ---------------------------------------------------------------------------------


def test_keep_dims_pads_left_or_right_as_gorgonia():
    x = gc.NewConstant(np.zeros((3, 4)))
    assert gc.KeepDims(x, False, lambda t: gc.Sum(t, 1)).shape == (3, 1)
    assert gc.KeepDims(x, True, lambda t: gc.Sum(t, 1)).shape == (1, 3)
    assert gc.KeepDims(x, True, lambda t: gc.Sum(t, 0)).shape == (1, 4)
    assert gc.KeepDims(x, False, gc.Sum).shape == (1, 1)  # a scalar result works too
    same = gc.KeepDims(x, False, gc.Exp)
    assert same.op.name == "Exp"  # the shape is kept already: no reshape


def test_keep_dims_free_batch():
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 4), gc.WithName("x"))
    m = gc.KeepDims(x, False, lambda t: gc.Max(t, 1))
    assert m.shape == (None, 1)
    centred = x - m  # broadcasts over the features
    gc.Let(x, np.arange(8.0).reshape(2, 4))
    run(g, centred)
    assert centred.value.tolist() == [[-3, -2, -1, 0], [-3, -2, -1, 0]]
    with pytest.raises(gc.ShapeError, match=r"free \(None\) dimension away from axis 0"):
        gc.KeepDims(x, True, lambda t: gc.Sum(t, 1))


def test_keep_dims_errors():
    x = gc.NewConstant(np.zeros(3))
    with pytest.raises(gc.ShapeError, match="more dimensions than the operand"):
        gc.KeepDims(x, False, lambda t: gc.Reshape(t, (3, 1)))
    with pytest.raises(TypeError, match="fn must be a function of one node"):
        gc.KeepDims(x, False, 1)


def test_keep_dims_gradients():
    def softmax_by_hand(x):
        e = gc.Exp(x - gc.KeepDims(x, False, lambda t: gc.Max(t, 1)))
        return e / gc.KeepDims(e, False, lambda t: gc.Sum(t, 1))

    check_op(softmax_by_hand, [r(3, 5)], free_batch=True)
    check_hvp(softmax_by_hand, [r(3, 5)])
    check_hvp(lambda x: x * gc.KeepDims(x, True, lambda t: gc.Sum(gc.Square(t), 0)), [r(3, 4)])


# ----- ReduceAdd, ReduceMul ---------------------------------------------------------------------


def test_reduce_add_and_mul_fold_left():
    a, b, c = r(2, 3), r(2, 3), r(1, 3)
    g = gc.NewGraph()
    na, nb, nc = (gc.NodeFromAny(g, v, gc.WithName(k)) for k, v in zip("abc", (a, b, c)))
    s, p = gc.ReduceAdd([na, nb, nc]), gc.ReduceMul((na, nb, nc))
    one = gc.ReduceAdd([na])
    run(g, s, p)
    np.testing.assert_allclose(s.value, a + b + c)
    np.testing.assert_allclose(p.value, a * b * c)
    assert one is na and gc.ReduceMul([na, 2.0]).children[1].is_constant
    check_op(lambda x, y, z: gc.ReduceAdd([x, y, z]), [a, b, c])
    check_op(lambda x, y, z: gc.ReduceMul([x, y, z]), [a, b, c])
    check_hvp(lambda x, y, z: gc.ReduceMul([x, y, z, x]), [a, b, c])
    check_hvp(lambda x, y, z: gc.ReduceAdd([x * x, y, gc.Sin(z) * y]), [a, b, c])


def test_reduce_errors():
    with pytest.raises(gc.GraphError, match="ReduceAdd needs at least one node"):
        gc.ReduceAdd([])
    with pytest.raises(TypeError, match=r"ReduceMul takes a list of nodes"):
        gc.ReduceMul(gc.NewConstant(1.0))


# ----- At ---------------------------------------------------------------------------------------


def test_at_picks_one_element_as_a_scalar():
    a = r(3, 4)
    g = gc.NewGraph()
    x = gc.NodeFromAny(g, a, gc.WithName("x"))
    e, last = gc.At(x, 1, 2), gc.At(x, -1, -1)
    run(g, e, last)
    assert e.shape == () and float(e.value) == a[1, 2] and float(last.value) == a[-1, -1]
    s = gc.NewConstant(2.0)
    assert gc.At(s) is s and gc.At(s, 0) is s
    check_op(lambda v: gc.At(v, 2, 1) * gc.At(v, 0, 3), [a])
    check_op(lambda v: gc.At(v, 1, 1) * v, [a], free_batch=True)
    check_hvp(lambda v: gc.Square(gc.At(v, 2, 1)) * gc.At(v, 0, 0), [a])


def test_at_errors():
    x = gc.NewConstant(np.zeros((3, 4)), name="x")
    with pytest.raises(gc.ShapeError, match=r"At: constant 'x' \(3, 4\).* 2 dimensions, got 1"):
        gc.At(x, 1)
    with pytest.raises(gc.ShapeError, match=r"coordinate 4 is out of range for axis 1.*-4 to 3"):
        gc.At(x, 0, 4)
    with pytest.raises(gc.ShapeError, match="is a scalar"):
        gc.At(gc.NewConstant(1.0), 1)
    with pytest.raises(TypeError, match="not an int"):
        gc.At(x, 0, 1.5)


# ----- SizeOf -----------------------------------------------------------------------------------


def test_size_of_reads_the_run_time_batch_size():
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 3), gc.WithName("x"))
    n, k = gc.SizeOf(0, x), gc.SizeOf(-1, x)
    mean = gc.Sum(x, 0) / n  # Gorgonia's Mean
    vm = gc.NewTapeMachine(g, gc.WithWatchlist(n, k))
    for rows in (3, 5, 1):
        data = r(rows, 3).astype(np.float32)
        gc.Let(x, data)
        vm.run_all()
        assert (float(n.value), float(k.value)) == (rows, 3)
        np.testing.assert_allclose(mean.value, data.mean(0), rtol=1e-6)
    assert n.dtype == gc.Float32 and n.shape == () and n.op.shape_only == (0,)


def test_size_of_dtypes_and_errors():
    assert gc.SizeOf(0, gc.NewConstant(np.zeros(3, np.int32))).dtype == gc.Int32
    assert gc.SizeOf(0, gc.NewConstant(np.zeros(3, bool))).dtype == gc.Int64
    with pytest.raises(gc.ShapeError, match=r"SizeOf: axis 2 is out of range for .*axes 0 to 1"):
        gc.SizeOf(2, gc.NewConstant(np.zeros((2, 2))))
    with pytest.raises(TypeError, match=r"the first argument is the axis"):
        gc.SizeOf(gc.NewConstant(np.zeros(2)), 0)


def test_size_of_differentiates_like_a_mean():
    check_op(lambda x: gc.Sum(gc.Square(x), 0) / gc.SizeOf(0, x), [r(4, 3)], free_batch=True)
    check_hvp(lambda x: gc.Sum(gc.Cube(x), 0) / gc.SizeOf(0, x), [r(4, 3)])
    # and matches Mean at run time, for any batch size
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
    ours, theirs = gc.Sum(x) / (gc.SizeOf(0, x) * gc.SizeOf(1, x)), gc.Mean(x)
    (d1,), (d2,) = gc.Grad(ours, x), gc.Grad(theirs, x)
    gc.Let(x, r(6, 3))
    run(g, ours, theirs)
    np.testing.assert_allclose(ours.value, theirs.value)
    np.testing.assert_allclose(d1.value, d2.value)


# ----- DiagFlat ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(4,), (2, 3), ()])
def test_diag_flat_is_numpys(shape):
    a = np.asarray(r(*shape))
    g = gc.NewGraph()
    d = gc.DiagFlat(gc.NodeFromAny(g, a, gc.WithName("x")))
    run(g, d)
    np.testing.assert_array_equal(d.value, np.diagflat(a))


def test_diag_flat_gradients():
    m = r(6, 6)
    check_op(lambda x: gc.DiagFlat(x), [r(2, 3)])
    check_op(lambda x, w: gc.Mul(gc.DiagFlat(x), w), [r(6), r(6, 2)])
    check_hvp(lambda x, w: gc.Mul(gc.DiagFlat(gc.Square(x)), w) * gc.NewConstant(m[:, :2]),
              [r(2, 3), r(6, 2)])


def test_diag_flat_needs_known_sizes():
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
    with pytest.raises(gc.ShapeError, match=r"DiagFlat: 'x' \(None, 3\).*free \(None\)"):
        gc.DiagFlat(x)


# ----- Auto, Broadcast, NewBroadcastPattern -----------------------------------------------------


def test_auto_finds_the_axes():
    a, b = r(3, 1), r(1, 4)
    g = gc.NewGraph()
    na, nb = gc.NodeFromAny(g, a, gc.WithName("a")), gc.NodeFromAny(g, b, gc.WithName("b"))
    prod = gc.Auto(gc.BroadcastHadamardProd, na, nb)
    plain = gc.Auto(gc.Sub, na, nb)  # the plain op stands for BroadcastSub
    less = gc.Auto(gc.BroadcastLt, na, nb)
    run(g, prod, plain, less)
    np.testing.assert_allclose(prod.value, a * b)
    np.testing.assert_allclose(plain.value, a - b)
    np.testing.assert_array_equal(less.value, a < b)
    check_op(lambda p, q: gc.Auto(gc.BroadcastHadamardDiv, p, q), [a, np.abs(b) + 1])
    check_hvp(lambda p, q: gc.Auto(gc.BroadcastPow, gc.Square(p) + 1.0, q), [a, b])


def test_auto_with_a_free_batch():
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
    b = gc.NewMatrix(g, gc.Float64, gc.WithShape(1, 3), gc.WithName("b"), gc.WithValue(r(1, 3)))
    y = gc.Auto(gc.BroadcastAdd, x, b)
    assert y.shape == (None, 3)
    gc.Let(x, r(5, 3))
    run(g, y)
    np.testing.assert_allclose(y.value, x.value + b.value)


def test_auto_errors():
    with pytest.raises(gc.ShapeError, match="must have the same number of dimensions"):
        gc.Auto(gc.BroadcastAdd, gc.NewConstant(np.ones((3, 1))), gc.NewConstant(np.ones(3)))
    with pytest.raises(gc.ShapeError, match=r"BroadcastAdd: cannot broadcast"):
        gc.Auto(gc.BroadcastAdd, gc.NewConstant(np.ones((3, 2))), gc.NewConstant(np.ones((1, 4))))
    with pytest.raises(TypeError, match="op must be a Broadcast<Op> function"):
        gc.Auto(gc.Exp, gc.NewConstant(np.ones((3, 1))), gc.NewConstant(np.ones((1, 4))))


def test_broadcast_with_a_pattern():
    x, v = r(3, 4), r(4)
    g = gc.NewGraph()
    nx, nv = gc.NodeFromAny(g, x, gc.WithName("x")), gc.NodeFromAny(g, v, gc.WithName("v"))
    pattern = gc.NewBroadcastPattern(None, [0])
    assert pattern == gc.BroadcastPattern(left=(), right=(0,))
    a, b = gc.Broadcast(nx, nv, pattern)
    y = gc.HadamardDiv(a, b)
    run(g, y)
    np.testing.assert_allclose(y.value, x / v)
    # the pattern works for any axes (Gorgonia's byte allows four)
    p, q = gc.Broadcast(gc.NewConstant(np.ones((2, 3))), gc.NewConstant(np.ones(5)),
                        gc.NewBroadcastPattern([2], [0, 1]))
    assert (p.shape, q.shape) == ((2, 3, 1), (1, 1, 5))

    def through(u, w):
        uu, ww = gc.Broadcast(u, w, gc.NewBroadcastPattern([1], [0]))
        return gc.Sin(uu * ww)

    check_op(through, [r(3), r(4)])
    check_hvp(through, [r(3), r(4)])
    with pytest.raises(TypeError, match="a pattern made by NewBroadcastPattern"):
        gc.Broadcast(nx, nv, ([], [0]))
