"""Gorgonia's explicit Broadcast* ops: axis semantics, gradients, comparisons and errors."""

import numpy as np
import pytest

import graphcore as gc
from tests.gradcheck import check_op

rng = np.random.default_rng(2)


def r(*shape, lo=None):
    a = rng.standard_normal(shape)
    return a if lo is None else np.abs(a) + lo


def evaluate(build, *arrays):
    """Value of ``build(*inputs)`` computed by the tape machine, inputs holding ``arrays``."""
    g = gc.NewGraph()
    ins = [gc.NodeFromAny(g, a, gc.WithName(f"in{i}")) for i, a in enumerate(arrays)]
    out = build(*ins)
    gc.NewTapeMachine(g, gc.WithWatchlist(out)).run_all()
    return out, out.value


ARITH = {
    "BroadcastAdd": np.add,
    "BroadcastSub": np.subtract,
    "BroadcastHadamardProd": np.multiply,
    "BroadcastHadamardDiv": np.divide,
    "BroadcastPow": np.power,
}

# (shape of a, shape of b, leftAxes, rightAxes, how numpy must see a and b)
CASES = [
    ((3, 4), (4,), None, [0], lambda a, b: (a, b[None, :])),  # bias on every row
    ((3, 4), (3,), None, [1], lambda a, b: (a, b[:, None])),  # one value per row
    ((3,), (4,), [1], [0], lambda a, b: (a[:, None], b[None, :])),  # outer
    ((3, 1), (1, 4), [1], [0], lambda a, b: (a, b)),  # full rank, size-1 axes
    ((3,), (3, 4), [1], None, lambda a, b: (a[:, None], b)),  # left operand repeated
    ((2, 3, 4), (3,), None, [0, 2], lambda a, b: (a, b[None, :, None])),
    ((2, 3, 4), (2, 4), None, [1], lambda a, b: (a, b[:, None, :])),
]


@pytest.mark.parametrize("name", sorted(ARITH))
@pytest.mark.parametrize("case", range(len(CASES)))
def test_broadcast_arith_values_and_grads(name, case):
    sa, sb, left, right, view = CASES[case]
    a, b = r(*sa, lo=0.5), r(*sb, lo=0.5)
    fn = getattr(gc, name)
    _, got = evaluate(lambda x, y: fn(x, y, left, right), a, b)
    np.testing.assert_allclose(got, ARITH[name](*view(a, b)), rtol=1e-12)
    check_op(lambda x, y: fn(x, y, left, right), [a, b])


def test_broadcast_add_free_batch_bias():
    bias = r(4)
    check_op(
        lambda x: gc.BroadcastAdd(x, gc.NewConstant(bias, dtype=x.dtype), None, [0]),
        [r(5, 4)],
        free_batch=True,
    )
    # a per-sample column scale: the vector takes the free batch axis
    check_op(
        lambda x, s: gc.BroadcastHadamardProd(x, s, None, [1]), [r(5, 4), r(5)], free_batch=True
    )


def test_bias_gradient_is_the_column_sum():
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
    b = gc.NewVector(g, gc.Float64, gc.WithShape(3), gc.WithName("b"), gc.WithValue([1.0, 2, 3]))
    y = gc.BroadcastAdd(x, b, None, [0])
    assert y.shape == (None, 3)
    (db,) = gc.Grad(gc.Sum(y), b)
    vm = gc.NewTapeMachine(g, gc.WithWatchlist(y))
    for n in (2, 5):
        gc.Let(x, np.ones((n, 3)))
        vm.run_all()
        np.testing.assert_array_equal(y.value, np.ones((n, 3)) + [1.0, 2, 3])
        np.testing.assert_array_equal(db.value, [n, n, n])


def test_equal_shapes_skip_broadcast_and_scalars_pass():
    a, b = gc.NewConstant(r(2, 3)), gc.NewConstant(r(2, 3))
    out = gc.BroadcastAdd(a, b, [0], [1])  # as in Golgi: axes unused when shapes match
    assert out.op.name == "Add" and out.children == (a, b)
    s = gc.BroadcastHadamardProd(a, 2.0)
    assert s.shape == (2, 3) and s.op.name == "HadamardProd"


CMP = {
    "BroadcastLt": np.less,
    "BroadcastGt": np.greater,
    "BroadcastLte": np.less_equal,
    "BroadcastGte": np.greater_equal,
    "BroadcastEq": np.equal,
    "BroadcastNe": np.not_equal,
}


@pytest.mark.parametrize("name", sorted(CMP))
def test_broadcast_compare(name):
    a = rng.integers(-2, 3, (3, 4)).astype(float)
    b = rng.integers(-2, 3, (4,)).astype(float)
    fn = getattr(gc, name)
    want = CMP[name](a, b[None, :])
    for build, dt in (
        (lambda x, y: fn(x, y, False, None, [0]), gc.Bool),
        (lambda x, y: fn(x, y, True, None, [0]), gc.Float64),
        (lambda x, y: fn(x, y, ret_same=True, rightAxes=[0]), gc.Float64),
    ):
        node, got = evaluate(build, a, b)
        assert node.dtype == dt and not node.op.differentiable
        assert got.dtype == dt.np
        np.testing.assert_array_equal(got, want.astype(dt.np))
    check_op(lambda x, y: fn(x, y, True, None, [0]), [a, b], differentiable=False)


def test_broadcast_compare_third_argument_is_ret_same():
    a, b = gc.NewConstant(r(3, 4)), gc.NewConstant(r(4))
    with pytest.raises(TypeError, match=r"retSame.*BroadcastGt\(a, b, retSame, leftAxes"):
        gc.BroadcastGt(a, b, None, [0])
    with pytest.raises(TypeError, match="retSame"):
        gc.BroadcastLt(a, b, [1], [0])
    with pytest.raises(TypeError, match="disagree"):
        gc.BroadcastEq(a, b, True, None, [0], ret_same=False)
    assert gc.BroadcastEq(a, b, False, None, [0], ret_same=True).dtype == gc.Float64


def graph_nodes():
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(3, 4), gc.WithName("x"))
    v5 = gc.NewVector(g, gc.Float64, gc.WithShape(5), gc.WithName("v5"))
    m24 = gc.NewMatrix(g, gc.Float64, gc.WithShape(2, 4), gc.WithName("m24"))
    return g, x, v5, m24


def test_errors_name_operands_and_axes():
    g, x, v5, m24 = graph_nodes()
    # v5 along axis 0 of x leaves axis 1: 4 vs 5
    with pytest.raises(gc.ShapeError, match=r"'x' \(3, 4\).*'v5' \(5,\).*axis 1 still differs"):
        gc.BroadcastAdd(x, v5, None, [0])
    # a full-rank operand must have size 1 along its broadcast axis
    with pytest.raises(gc.ShapeError, match=r"BroadcastSub.*'m24' \(2, 4\).*rightAxes \[0\]"):
        gc.BroadcastSub(x, m24, None, [0])
    with pytest.raises(gc.ShapeError, match="rightAxes \\[5\\]"):
        gc.BroadcastAdd(x, v5, None, [5])
    # no implicit broadcasting: every differing axis must be named
    with pytest.raises(gc.ShapeError, match="axis 0 still differs"):
        gc.BroadcastAdd(x, m24)
    with pytest.raises(gc.ShapeError, match=r"'v5' \(5,\) Float64 along rightAxes \[\]"):
        gc.BroadcastAdd(x, v5)


def test_axis_in_both_lists_and_bad_axes():
    a, b = gc.NewConstant(r(3, 1)), gc.NewConstant(r(1, 4))
    with pytest.raises(gc.ShapeError, match="axis 1 is in both"):
        gc.BroadcastAdd(a, b, [1], [0, 1])
    with pytest.raises(gc.ShapeError, match="repeats an axis"):
        gc.BroadcastAdd(a, b, [1, 1], [0])
    with pytest.raises(TypeError, match="leftAxes must be a list"):
        gc.BroadcastAdd(a, b, "x1", [0])


def test_free_dimension_cannot_move():
    g = gc.NewGraph()
    v = gc.NewVector(g, gc.Float64, gc.WithShape(None), gc.WithName("v"))
    m = gc.NewMatrix(g, gc.Float64, gc.WithShape(3, None), gc.WithName("m"))
    with pytest.raises(gc.ShapeError, match="'v'.*free"):
        gc.BroadcastAdd(m, v, None, [0])
