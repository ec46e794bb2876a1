"""Shape, indexing and contraction ops: Slice/S, Ravel, Reshape, Concat/Unconcat, Unstack,
SlicesGrad, ByIndices,
BatchedMatMul, Tensordot (gradient checks, free batch, float32 forward, errors)."""

import numpy as np
import pytest

import graphcore as gc
from tests.gradcheck import check_op

rng = np.random.default_rng(1)


def r(*shape):
    return rng.standard_normal(shape)


def inp(shape, name="x", dt=gc.Float64, g=None):
    g = g or gc.NewGraph()
    return gc.NewTensor(g, dt, len(shape), gc.WithShape(*shape), gc.WithName(name))


def run(*nodes, inputs):
    """Forward on the tape machine with ``nodes`` watched; returns their values (copied)."""
    for n, v in inputs.items():
        gc.Let(n, v)
    vm = gc.NewTapeMachine(nodes[0].graph, gc.WithWatchlist(*nodes))
    vm.run_all()
    return [np.array(n.value, copy=True) for n in nodes]


# ----- Slice -----------------------------------------------------------------------------------

SLICES = {
    "rows": lambda x: x[1:3],
    "strided": lambda x: x[1:, ::2],
    "reversed": lambda x: x[::-1, -2],
    "int_int": lambda x: x[2, 3],
    "ellipsis": lambda x: x[..., 1:4],
    "gorgonia_S": lambda x: gc.Slice(x, gc.S(1, 4), gc.S(2)),
    "gorgonia_nil": lambda x: gc.Slice(x, None, gc.S(0, 5, 2)),
    "python_slice": lambda x: gc.Slice(x, slice(-3, None)),
    "of_transpose": lambda x: gc.Transpose(x)[1:4, 0],
}


@pytest.mark.parametrize("name", sorted(SLICES))
def test_slice_grad(name):
    check_op(SLICES[name], [r(4, 5)])


@pytest.mark.parametrize("build", [lambda x: x[:, 1:3], lambda x: x[:, -1], lambda x: x[1:3, 2:]])
def test_slice_free_batch_grad(build):
    x = r(5, 4)
    if build(inp((None, 4))).shape[0] is not None:
        # a concrete result size on the free axis: the harness's random direction takes the
        # batch size, so pad the result back up to it
        check_op(lambda a: gc.Sum(gc.Square(build(a)), 0), [x], free_batch=True)
    else:
        check_op(build, [x], free_batch=True)


def test_slice_used_twice_and_3d():
    check_op(lambda x: x[0] * x[1], [r(2, 3, 4)])
    check_op(lambda x: gc.Sum(x[:, 1:, ::2] * x[:, :-1, 1::2]), [r(3, 4, 4)])


@pytest.mark.parametrize(
    "index,shape",
    [
        ((slice(None), 1), (None,)),
        ((slice(2, 5),), (3, 6)),
        ((slice(-3, None),), (3, 6)),
        ((slice(-4, -1),), (3, 6)),
        ((slice(1, None),), (None, 6)),
        ((slice(None, -1),), (None, 6)),
        ((slice(None, None, -1),), (None, 6)),
        ((slice(3, None, -1),), (4, 6)),
        ((slice(0, 7, 3),), (3, 6)),
        ((slice(5, 2),), (0, 6)),
        ((0,), (6,)),
    ],
)
def test_slice_shape_on_free_axis(index, shape):
    x = inp((None, 6))
    y = x[index]
    assert y.shape == shape
    xv = np.arange(48.0).reshape(8, 6) + 1
    (v,) = run(y * 1.0, inputs={x: xv})
    np.testing.assert_array_equal(v, xv[index])


def test_slice_values_follow_new_inputs_and_batch_sizes():
    x = inp((None, 3))
    views = [x[1:], x.T[1], gc.Transpose(x)[:, 0], x[0, 2]]
    outs = [gc.Exp(v) for v in views]  # consumers read the views after later writes
    total = gc.Sum(gc.Concat(0, outs[1], outs[2]))
    for xv in (r(4, 3), r(4, 3), r(7, 3)):
        gc.Let(x, xv)
        vm = gc.NewTapeMachine(x.graph, gc.WithWatchlist(*views, *outs))
        for _ in range(2):
            vm.run_all()
            for v, o, want in zip(
                views, outs, [xv[1:], xv.T[1], xv.T[:, 0], xv[0, 2]], strict=True
            ):
                np.testing.assert_allclose(v.value, want)
                np.testing.assert_allclose(o.value, np.exp(want))
            np.testing.assert_allclose(total.value, np.exp(xv[:, 1]).sum() + np.exp(xv[0]).sum())


def test_slice_of_scalar_index_is_0d():
    x = inp((2, 3))
    y = x[1, 2]
    assert y.shape == ()
    (v,) = run(y, inputs={x: np.arange(6.0).reshape(2, 3)})
    assert v.shape == () and float(v) == 5.0


def test_slice_whole_is_identity():
    x = inp((2, 3))
    assert x[:] is x and x[...] is x and gc.Slice(x, None, slice(None)) is x


def test_slice_second_order():
    # d/dx sum((x[1:]**2)) = 2 x[1:] scattered; its gradient along v is 2 v[1:]: check via Grad
    g = gc.NewGraph()
    x = gc.NewVector(g, gc.Float64, gc.WithShape(4), gc.WithName("x"), gc.WithValue(r(4)))
    (dx,) = gc.Grad(gc.Sum(gc.Square(x[1:])), x)
    gc.NewTapeMachine(g).run_all()
    np.testing.assert_allclose(dx.value, np.r_[0.0, 2 * x.value[1:]])
    check_op(
        lambda a: gc.apply_op(
            gc.ops.indexing.SliceGradOp((slice(1, 3),)), a, gc.NewConstant(np.zeros(5))
        ),
        [r(2)],
    )


def test_S():
    assert gc.S(2).index() == 2
    assert gc.S(1, 4).index() == slice(1, 4, 1)
    assert repr(gc.S(0, 6, 2)) == "S(0, 6, 2)"
    with pytest.raises(ValueError, match="step needs an end"):
        gc.S(1, None, 2)
    with pytest.raises(TypeError, match="start must be an int"):
        gc.S(1.5)


@pytest.mark.parametrize(
    "index,exc,match",
    [
        ((3, 0), gc.ShapeError, "index 3 is out of range for axis 0"),
        ((0, -6), gc.ShapeError, "index -6 is out of range for axis 1"),
        ((slice(0, 4),), gc.ShapeError, "bound 4 of 0:4 is out of range for axis 0"),
        ((slice(None), slice(-7, None)), gc.ShapeError, "bound -7"),
        ((0, 0, 0), gc.ShapeError, "3 indices for a node with 2 dimensions"),
        ((..., 0, ...), gc.ShapeError, "only one Ellipsis"),
        ((None, 0), gc.ShapeError, "newaxis"),
        (([0, 1],), TypeError, "ByIndices"),
        ((1.0,), TypeError, "is not an int"),
        ((slice(0, 2, 0),), ValueError, "step cannot be zero"),
    ],
)
def test_slice_errors(index, exc, match):
    x = inp((3, 5))
    with pytest.raises(exc, match=match):
        x[index]


def test_slice_error_names_node():
    x = inp((3, 5), name="img")
    with pytest.raises(gc.ShapeError, match=r"'img' \(3, 5\) Float64"):
        x[7]


def test_slice_out_of_range_on_free_axis_caught_when_planned():
    x = inp((None, 2))
    y = x[4]
    gc.Let(x, np.ones((3, 2)))
    with pytest.raises(gc.ShapeError, match=r"x \(3, 2\).*index 4 is out of range"):
        gc.NewTapeMachine(x.graph, gc.WithWatchlist(y)).run_all()


def test_slice_int_node_index_rejected():
    x = inp((3, 5))
    i = gc.NewConstant(1)
    with pytest.raises(TypeError, match="ByIndices"):
        gc.Slice(x, i)


# ----- Ravel / Reshape -------------------------------------------------------------------------


def test_ravel_grad_and_values():
    check_op(gc.Ravel, [r(3, 4)])
    check_op(lambda x: gc.Ravel(x.T) * gc.Ravel(x), [r(3, 4)])  # a strided operand
    check_op(lambda x: gc.Ravel(x[:, 1:]), [r(3, 4, 2)])


def test_ravel_free_batch_error_points_to_reshape():
    with pytest.raises(gc.ShapeError, match=r"Reshape\(x, \(None, -1\)\)"):
        gc.Ravel(inp((None, 3, 2)))


def test_reshape_none_minus_one():
    check_op(lambda x: gc.Reshape(x, (None, -1)), [r(4, 3, 2)], free_batch=True)
    check_op(lambda x: gc.Reshape(x, (None, 3, 2)), [r(4, 6)], free_batch=True)
    x = inp((None, 2, 3))
    y = gc.Reshape(x, (None, -1))
    assert y.shape == (None, 6)
    vm = gc.NewTapeMachine(x.graph, gc.WithWatchlist(y))
    for n in (1, 5):
        gc.Let(x, np.arange(n * 6.0).reshape(n, 2, 3))
        vm.run_all()
        np.testing.assert_array_equal(y.value, np.arange(n * 6.0).reshape(n, 6))


def test_reshape_of_strided_view_stays_fresh():
    x = inp((2, 3))
    y = gc.Reshape(gc.Transpose(x), (6,)) * 1.0
    vm = gc.NewTapeMachine(x.graph)
    for xv in (np.arange(6.0).reshape(2, 3), np.ones((2, 3))):
        gc.Let(x, xv)
        vm.run_all()
        np.testing.assert_array_equal(y.value, xv.T.ravel())


@pytest.mark.parametrize(
    "shape,target,match",
    [
        ((None, 6), (-1,), "cannot absorb a free"),
        ((None, 6), (4, None), "only dimension 0 may be None"),
        ((3, 5), (4, -1), "do not divide"),
    ],
)
def test_reshape_errors(shape, target, match):
    with pytest.raises(gc.ShapeError, match=match):
        gc.Reshape(inp(shape), target)


# ----- Concat / Unconcat -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "axis,shapes",
    [
        (0, [(2, 3), (4, 3)]),
        (1, [(2, 3), (2, 1), (2, 4)]),
        (-1, [(2, 3, 1), (2, 3, 2)]),
        (1, [(2, 3, 2), (2, 1, 2)]),
    ],
)
def test_concat_grad(axis, shapes):
    arrays = [r(*s) for s in shapes]
    check_op(lambda *xs: gc.Concat(axis, *xs), arrays)
    got = check_values(lambda *xs: gc.Concat(axis, list(xs)), arrays)
    np.testing.assert_array_equal(got, np.concatenate(arrays, axis=axis))


def check_values(build, arrays):
    g = gc.NewGraph()
    nodes = [gc.NodeFromAny(g, a, gc.WithName(f"a{i}")) for i, a in enumerate(arrays)]
    out = build(*nodes)
    gc.NewTapeMachine(g, gc.WithWatchlist(out)).run_all()
    return out.value


def test_concat_free_batch():
    check_op(lambda a, b: gc.Concat(1, a, b), [r(4, 2), r(4, 3)], free_batch=True)
    # along the free axis the result size is known only at run time
    check_op(
        lambda a, b: gc.Sum(gc.Square(gc.Concat(0, a, gc.Exp(b))), 0),
        [r(4, 3), r(2, 3)],
        free_batch=True,
    )
    a, b = inp((None, 3), "a"), gc.NewConstant(np.ones((2, 3)))
    assert gc.Concat(0, a, b).shape == (None, 3)


def test_concat_same_node_twice():
    check_op(lambda x: gc.Concat(0, x, gc.Square(x), x), [r(2, 3)])


def test_concat_single_is_identity():
    x = inp((2, 3))
    assert gc.Concat(0, x) is x and gc.Concat(1, [x]) is x


def test_concat_shape_mismatch_names_both():
    g = gc.NewGraph()
    a = gc.NewMatrix(g, gc.Float64, gc.WithShape(2, 3), gc.WithName("a"))
    b = gc.NewMatrix(g, gc.Float64, gc.WithShape(2, 4), gc.WithName("b"))
    with pytest.raises(gc.ShapeError, match=r"'a' \(2, 3\) Float64 and 'b' \(2, 4\) Float64"):
        gc.Concat(0, a, b)


def test_concat_other_errors():
    g = gc.NewGraph()
    a = gc.NewMatrix(g, gc.Float64, gc.WithShape(2, 3), gc.WithName("a"))
    b = gc.NewMatrix(g, gc.Float32, gc.WithShape(2, 3), gc.WithName("b"))
    v = gc.NewVector(g, gc.Float64, gc.WithShape(3), gc.WithName("v"))
    with pytest.raises(gc.DtypeError, match="different dtypes"):
        gc.Concat(0, a, b)
    with pytest.raises(gc.ShapeError, match="different ranks"):
        gc.Concat(0, a, v)
    with pytest.raises(gc.ShapeError, match="axis 2 is out of range"):
        gc.Concat(2, a, a)
    with pytest.raises(TypeError, match=r"Concat\(axis, a, b"):
        gc.Concat(a, a)
    with pytest.raises(gc.ShapeError, match="at least one"):
        gc.Concat(0)


def test_unconcat():
    parts_fn = lambda x: gc.Unconcat(x, 1, 3)  # noqa: E731
    check_op(lambda x: parts_fn(x)[0] * parts_fn(x)[2] + parts_fn(x)[1], [r(2, 6)])
    xv = r(2, 6)
    got = [check_values(lambda x, i=i: parts_fn(x)[i], [xv]) for i in range(3)]
    for a, b in zip(got, np.split(xv, 3, axis=1), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(gc.ShapeError, match="into 4 equal parts"):
        gc.Unconcat(inp((2, 6)), 1, 4)
    with pytest.raises(gc.ShapeError, match="free"):
        gc.Unconcat(inp((None, 6)), 0, 2)


# ----- Unstack and the one gradient of many slices --------------------------------------------


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_unstack_values_and_grad(axis):
    xv = r(3, 4, 2)
    parts = lambda x: gc.Unstack(x, axis)  # noqa: E731
    # every part in one expression, one part twice: the gradients of a part add
    check_op(lambda x: gc.Concat(0, *(gc.Ravel(p) for p in parts(x))) * 2.0, [xv])
    check_op(lambda x: parts(x)[0] * parts(x)[-1] + parts(x)[0], [xv])
    got = [check_values(lambda x, i=i: parts(x)[i], [xv]) for i in range(xv.shape[axis])]
    for i, a in enumerate(got):
        np.testing.assert_array_equal(a, np.take(xv, i, axis=axis))


def test_unstack_free_batch_grad():
    check_op(lambda x: gc.Concat(1, *gc.Unstack(x, 1)), [r(4, 3, 2)], free_batch=True)


def test_unstack_gradient_is_one_buffer_the_size_of_the_operand():
    g = gc.NewGraph()
    x = gc.NewTensor(g, gc.Float64, 3, gc.WithShape(None, 16, 3), gc.WithName("seq"))
    steps = gc.Unstack(x, 1)
    cost = gc.Sum(steps[0])
    for s in steps[1:]:
        cost = cost + gc.Sum(gc.Square(s))
    (dx,) = gc.Grad(cost, x)
    assert dx.op.name == "SlicesGrad" and len(dx.children) == 17
    # one node of the sequence's size: the backward pass is linear in the number of steps
    assert [n for n in g.nodes if n.op is not None and n.ndim == 3] == [dx]
    xv = r(2, 16, 3)
    gc.Let(x, xv)
    gc.NewTapeMachine(g).run_all()
    want = 2 * xv
    want[:, 0] = 1.0
    np.testing.assert_allclose(dx.value, want, rtol=1e-12)


def test_unstack_errors():
    with pytest.raises(gc.ShapeError, match=r"axis 0 of input 'x' \(None, 3\) Float64 is free"):
        gc.Unstack(inp((None, 3)), 0)
    with pytest.raises(gc.ShapeError, match="axis 2 is out of range"):
        gc.Unstack(inp((2, 3)), 2)
    with pytest.raises(gc.ShapeError, match="a scalar has no axis"):
        gc.Unstack(gc.NewConstant(1.0), 0)
    with pytest.raises(TypeError, match="the axis must be an int"):
        gc.Unstack(inp((2, 3)), 1.0)


def test_slices_grad_adds_overlapping_windows_and_is_differentiable():
    whole = slice(None)
    op = gc.ops.indexing.SlicesGradOp([(slice(0, 2), whole), (slice(1, 3), whole), (3, whole)])
    build = lambda a, b, c: gc.apply_op(op, a, b, c, gc.NewConstant(np.zeros((4, 2))))  # noqa: E731
    a, b, c = r(2, 2), r(2, 2), r(2)
    check_op(build, [a, b, c])
    want = np.zeros((4, 2))
    want[0:2] += a
    want[1:3] += b
    want[3] += c
    np.testing.assert_array_equal(check_values(build, [a, b, c]), want)
    with pytest.raises(gc.ShapeError, match=r"SlicesGrad: 'b' \(3, 2\) Float64 does not fit"):
        build(a, inp((3, 2), "b"), c)
    with pytest.raises(gc.ShapeError, match="3 window"):
        gc.apply_op(op, a, b, gc.NewConstant(np.zeros((4, 2))))


# ----- ByIndices -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "xshape,idx,axis",
    [
        ((5, 3), [0, 4, 4, 1], 0),
        ((5, 3), [2], 0),
        ((3, 5), [[0, 4], [4, -1]], 1),
        ((2, 3, 4), [3, 0, 3], -1),
    ],
)
def test_byindices_grad(xshape, idx, axis):
    ix = np.asarray(idx, dtype=np.int64)
    check_op(lambda x, i: gc.ByIndices(x, i, axis), [r(*xshape), ix])
    xv = r(*xshape)
    np.testing.assert_array_equal(
        check_values(lambda x: gc.ByIndices(x, ix, axis), [xv]), np.take(xv, ix, axis=axis)
    )


def test_byindices_int32_and_free_batch():
    check_op(lambda x, i: gc.ByIndices(x, i, 1), [r(4, 5), np.array([1, 1, 3], np.int32)])
    # free batch of the data: gather columns
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 5), gc.WithName("x"))
    y = gc.ByIndices(x, np.array([4, 0]), axis=1)
    assert y.shape == (None, 2)
    check_op(lambda a: gc.ByIndices(a, np.array([4, 0, 0]), axis=1), [r(3, 5)], free_batch=True)
    # indices first, so the harness frees their length (an embedding lookup of a batch)
    check_op(lambda i, e: gc.ByIndices(e, i), [np.array([2, 0, 2]), r(3, 4)], free_batch=True)


def test_embedding_lookup_free_batch_indices():
    g = gc.NewGraph()
    ids = gc.NewVector(g, gc.Int64, gc.WithShape(None), gc.WithName("ids"))
    emb = gc.NewMatrix(
        g,
        gc.Float64,
        gc.WithShape(4, 2),
        gc.WithName("emb"),
        gc.WithValue(np.arange(8.0).reshape(4, 2)),
    )
    y = gc.ByIndices(emb, ids)
    cost = gc.Sum(y)
    assert y.shape == (None, 2)
    gc.Grad(cost, emb)
    vm = gc.NewTapeMachine(g, gc.BindDualValues(emb), gc.WithWatchlist(y))
    gc.Let(ids, np.array([3, 3, 0]))
    vm.run_all()
    np.testing.assert_array_equal(y.value, [[6, 7], [6, 7], [0, 1]])
    np.testing.assert_array_equal(emb.grad, [[1, 1], [0, 0], [0, 0], [2, 2]])


def test_byindices_errors():
    x = inp((4, 3))
    with pytest.raises(gc.DtypeError, match="must be Int64 or Int32"):
        gc.ByIndices(x, gc.NewConstant(np.array([0.0, 1.0])))
    with pytest.raises(gc.DtypeError, match="must be Int64 or Int32"):
        gc.ByIndices(x, [0.5])
    with pytest.raises(gc.ShapeError, match="axis 2 is out of range"):
        gc.ByIndices(x, [0], axis=2)
    y = gc.ByIndices(x, [0, 4])
    gc.Let(x, np.ones((4, 3)))
    for machine in (gc.NewTapeMachine, gc.NewLispMachine):
        with pytest.raises(IndexError) as e:
            machine(x.graph, gc.ExecuteFwdOnly()).run_all()
        msg = str(e.value)
        assert f"node {y.name!r}" in msg and "'x'" in msg
        assert "valid indices are -4 to 3" in msg and "got indices from 0 to 4" in msg
        assert "out of range for axis 0 of size 4" in msg


# ----- BatchedMatMul ---------------------------------------------------------------------------


@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
def test_batched_matmul_grad(ta, tb):
    a = r(3, 4, 2) if ta else r(3, 2, 4)
    b = r(3, 5, 4) if tb else r(3, 4, 5)
    check_op(lambda x, y: gc.BatchedMatMul(x, y, ta, tb), [a, b])
    want = np.matmul(a.swapaxes(-1, -2) if ta else a, b.swapaxes(-1, -2) if tb else b)
    np.testing.assert_allclose(
        check_values(lambda x, y: gc.BatchedMatMul(x, y, ta, tb), [a, b]), want
    )


def test_batched_matmul_4d_and_free_batch():
    check_op(lambda x, y: gc.BatchedMatMul(x, y), [r(2, 3, 2, 4), r(2, 3, 4, 3)])
    check_op(
        lambda x, y: gc.BatchedMatMul(x, y, transB=True), [r(4, 2, 3), r(4, 5, 3)], free_batch=True
    )
    a = inp((None, 2, 3), "a")
    b = inp((None, 3, 4), "b", g=a.graph)
    assert gc.BatchedMatMul(a, b).shape == (None, 2, 4)


def test_batched_matmul_errors():
    g = gc.NewGraph()
    a = gc.NewTensor(g, gc.Float64, 3, gc.WithShape(2, 3, 4), gc.WithName("a"))
    b = gc.NewTensor(g, gc.Float64, 3, gc.WithShape(2, 5, 6), gc.WithName("b"))
    c = gc.NewTensor(g, gc.Float64, 3, gc.WithShape(3, 4, 6), gc.WithName("c"))
    m = gc.NewMatrix(g, gc.Float64, gc.WithShape(4, 6), gc.WithName("m"))
    with pytest.raises(gc.ShapeError, match=r"inner dimensions do not match.*'a'.*'b'.*4 != 5"):
        gc.BatchedMatMul(a, b)
    with pytest.raises(gc.ShapeError, match="batch dimension 0 differs"):
        gc.BatchedMatMul(a, c)
    with pytest.raises(gc.ShapeError, match="use Mul for matrices"):
        gc.BatchedMatMul(a, m)
    i = gc.NewTensor(g, gc.Int64, 3, gc.WithShape(2, 4, 6), gc.WithName("i"))
    with pytest.raises(gc.DtypeError):
        gc.BatchedMatMul(i, i)


# ----- Tensordot -------------------------------------------------------------------------------

TENSORDOTS = {
    "gorgonia": (
        (2, 3, 4),
        (4, 3, 5),
        lambda a, b: gc.Tensordot([1, 2], [1, 0], a, b),
        ([1, 2], [1, 0]),
    ),
    "numpy_int": ((2, 3, 4), (3, 4, 5), lambda a, b: gc.Tensordot(a, b), 2),
    "numpy_int1": ((2, 3), (3, 5), lambda a, b: gc.Tensordot(a, b, axes=1), 1),
    "numpy_pair": (
        (3, 2, 4),
        (4, 3),
        lambda a, b: gc.Tensordot(a, b, ([2, 0], [0, 1])),
        ([2, 0], [0, 1]),
    ),
    "four_args": ((2, 3), (5, 3), lambda a, b: gc.Tensordot(a, b, [1], [-1]), ([1], [1])),
    "outer": ((2, 3), (4,), lambda a, b: gc.Tensordot(a, b, 0), 0),
    "full": ((2, 3), (3, 2), lambda a, b: gc.Tensordot(a, b, [0, 1], [1, 0]), ([0, 1], [1, 0])),
}


@pytest.mark.parametrize("name", sorted(TENSORDOTS))
def test_tensordot(name):
    sa, sb, build, axes = TENSORDOTS[name]
    a, b = r(*sa), r(*sb)
    check_op(build, [a, b])
    np.testing.assert_allclose(check_values(build, [a, b]), np.tensordot(a, b, axes))


def test_tensordot_free_batch():
    # keep the batch; contract it away
    check_op(lambda a, b: gc.Tensordot(a, b, [2], [0]), [r(4, 3, 2), r(2, 5)], free_batch=True)
    check_op(
        lambda a, b: gc.Sum(gc.Square(gc.Tensordot(a, b, [0], [0])), 0),
        [r(6, 3), r(6, 5)],
        free_batch=True,
    )
    a = inp((None, 3), "a")
    assert gc.Tensordot(a, gc.NewConstant(np.ones((3, 2))), 1).shape == (None, 2)


def test_tensordot_errors():
    g = gc.NewGraph()
    a = gc.NewTensor(g, gc.Float64, 3, gc.WithShape(2, 3, 4), gc.WithName("a"))
    b = gc.NewMatrix(g, gc.Float64, gc.WithShape(5, 3), gc.WithName("b"))
    with pytest.raises(gc.ShapeError, match=r"axis 2 of 'a'.*axis 0 of 'b'.*4 != 5"):
        gc.Tensordot([2], [0], a, b)
    with pytest.raises(gc.ShapeError, match="pair them one to one"):
        gc.Tensordot(a, b, [1, 2], [1])
    with pytest.raises(gc.ShapeError, match="out of range"):
        gc.Tensordot(a, b, [3], [1])
    with pytest.raises(gc.ShapeError, match="out of range or repeated"):
        gc.Tensordot(a, gc.NewConstant(np.ones((3, 3))), [1, 1], [0, 1])
    with pytest.raises(TypeError, match="arguments"):
        gc.Tensordot(a)
