"""Graphs and nodes: constructors, options, Let, names, repr, operators, constants."""

import numpy as np
import pytest

import graphcore as gc


@pytest.fixture
def g():
    return gc.NewGraph("t")


# ----- constructors and options ---------------------------------------------------------------


def test_constructors_ranks_shapes_and_dtypes(g):
    s = gc.NewScalar(g, gc.Float64, gc.WithName("s"))
    v = gc.NewVector(g, gc.Float32, gc.WithShape(5), gc.WithName("v"))
    m = gc.NewMatrix(g, "float32", gc.WithShape(None, 784), gc.WithName("m"))
    t = gc.NewTensor(g, np.float64, 4, gc.WithShape(None, 1, 28, 28), gc.WithName("t"))
    t2 = gc.NewTensor(g, gc.Int64, gc.WithShape(2, 3), gc.WithName("t2"))  # dims omitted
    assert (s.shape, v.shape, m.shape, t.shape, t2.shape) == (
        (),
        (5,),
        (None, 784),
        (None, 1, 28, 28),
        (2, 3),
    )
    assert (s.dtype, v.dtype, m.dtype, t.dtype, t2.dtype) == (
        gc.Float64,
        gc.Float32,
        gc.Float32,
        gc.Float64,
        gc.Int64,
    )
    assert all(n.is_input and not n.is_constant for n in (s, v, m, t, t2))
    assert g.nodes == [s, v, m, t, t2] and g.inputs() == [s, v, m, t, t2]
    assert m.ndim == 2 and not m.has_value and m.graph is g


def test_constructor_errors_name_the_node_and_shape(g):
    with pytest.raises(gc.ShapeError, match=r"NewMatrix\(q\).*2 dimension.*\(3,\).*NewTensor"):
        gc.NewMatrix(g, gc.Float32, gc.WithShape(3), gc.WithName("q"))
    with pytest.raises(gc.ShapeError, match=r"NewVector.*WithShape"):
        gc.NewVector(g, gc.Float32, gc.WithName("noshape"))
    with pytest.raises(gc.ShapeError, match=r"NewTensor\(t\).*3 dimension.*\(2, 2\)"):
        gc.NewTensor(g, gc.Float32, 3, gc.WithShape(2, 2), gc.WithName("t"))
    with pytest.raises(TypeError, match=r"NewMatrix: 'oops' is not a node option"):
        gc.NewMatrix(g, gc.Float32, "oops")
    with pytest.raises(TypeError, match=r"first argument must be a Graph"):
        gc.NewMatrix("g", gc.Float32, gc.WithShape(2, 2))
    with pytest.raises(TypeError, match=r"float16 is not supported.*Float32"):
        gc.NewScalar(g, np.float16, gc.WithName("h"))
    with pytest.raises(gc.ShapeError, match=r"dimensions must be >= 0"):
        gc.NewVector(g, gc.Float32, gc.WithShape(-1), gc.WithName("neg"))
    with pytest.raises(gc.ShapeError, match=r"dimensions must be ints or None"):
        gc.NewVector(g, gc.Float32, gc.WithShape(2.5), gc.WithName("frac"))
    with pytest.raises(TypeError, match=r"WithName expects a non-empty string"):
        gc.WithName("")
    with pytest.raises(TypeError, match=r"WithInit expects an initializer"):
        gc.WithInit(3)


def test_with_value_init_and_grad(g):
    w = gc.NewMatrix(
        g, gc.Float32, gc.WithName("w"), gc.WithValue([[1.0, 2.0]]), gc.WithGrad([[0.5, 0.5]])
    )
    assert w.shape == (1, 2) and w.value.dtype == np.float32  # shape taken from the value
    np.testing.assert_array_equal(w.grad, [[0.5, 0.5]])
    calls = []

    def init(dt, shape):
        calls.append((dt, shape))
        return np.full(shape, 3.0, dt.np)

    b = gc.NewMatrix(g, gc.Float64, gc.WithShape(2, 3), gc.WithName("b"), gc.WithInit(init))
    assert calls == [(gc.Float64, (2, 3))] and b.init is init
    np.testing.assert_array_equal(b.value, np.full((2, 3), 3.0))
    with pytest.raises(gc.ShapeError, match=r"NewMatrix\(free\).*\(None, 3\).*free"):
        gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("free"), gc.WithInit(init))
    with pytest.raises(gc.GraphError, match=r"WithGrad needs a value"):
        gc.NewVector(g, gc.Float64, gc.WithShape(2), gc.WithName("ng"), gc.WithGrad([1.0, 1.0]))
    with pytest.raises(gc.ShapeError, match=r"WithGrad for 'gs'.*\(3,\).*\(2,\)"):
        gc.NewVector(
            g, gc.Float64, gc.WithName("gs"), gc.WithValue([1.0, 2.0]), gc.WithGrad([1.0, 2.0, 3.0])
        )


def test_duplicate_input_name_is_a_graph_error(g):
    gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 3), gc.WithName("x"))
    with pytest.raises(
        gc.GraphError,
        match=r"graph 't' already has an input node named 'x' "
        r"\(shape \(None, 3\), Float32\)",
    ):
        gc.NewMatrix(g, gc.Float32, gc.WithShape(3, 3), gc.WithName("x"))
    # the same name in another graph is fine
    gc.NewMatrix(gc.NewGraph(), gc.Float32, gc.WithShape(3, 3), gc.WithName("x"))


def test_by_name_roots_and_subgraph(g):
    x = gc.NewVector(g, gc.Float64, gc.WithShape(3), gc.WithName("x"))
    y = gc.Exp(x)
    z = gc.Sum(y)
    w = gc.Neg(x)
    assert g.by_name("x") is x and g.by_name(y.name) is y
    assert g.roots() == [z, w]
    with pytest.raises(KeyError, match=r"no node named 'nope'"):
        g.by_name("nope")
    sub = g.subgraph_roots(z)
    assert sub.nodes == [x, y, z]
    gc.Let(x, [0.0, 0.0, 0.0])
    gc.NewTapeMachine(sub).run_all()
    assert float(z.value) == 3.0 and not w.has_value


# ----- Let --------------------------------------------------------------------------------------


def test_let_free_dimension_takes_any_size(g):
    x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 3), gc.WithName("x"))
    for n in (1, 7, 1000):
        gc.Let(x, np.ones((n, 3), np.float32))
        assert x.value.shape == (n, 3)


def test_let_wrong_shape_names_node_expected_and_given(g):
    x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 3), gc.WithName("x"))
    with pytest.raises(
        gc.ShapeError,
        match=r"node 'x' expects shape \(None, 3\), got an array "
        r"of shape \(2, 4\); None dimensions take any size",
    ):
        gc.Let(x, np.ones((2, 4)))
    v = gc.NewVector(g, gc.Float64, gc.WithShape(4), gc.WithName("v"))
    with pytest.raises(gc.ShapeError, match=r"Let\(v\).*'v' expects shape \(4,\).*\(2, 2\)"):
        gc.Let(v, np.ones((2, 2)))
    with pytest.raises(gc.ShapeError, match=r"expects shape \(4,\).*shape \(\)"):
        gc.Let(v, 1.0)


def test_let_dtype_rules(g):
    i = gc.NewMatrix(g, gc.Int64, gc.WithShape(2, 2), gc.WithName("i"))
    with pytest.raises(gc.DtypeError, match=r"Let\(i\): node 'i' is Int64, got a float64 array"):
        gc.Let(i, np.ones((2, 2)))
    gc.Let(i, np.ones((2, 2), np.int32))  # safe widening
    assert i.value.dtype == np.int64
    f = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 2), gc.WithName("f"))
    gc.Let(f, np.full((3, 2), 0.1, np.float64))  # float64 data into a Float32 node is accepted
    assert f.value.dtype == np.float32 and f.value[0, 0] == np.float32(0.1)
    gc.Let(f, [[1, 2]])  # python ints
    assert f.value.dtype == np.float32
    with pytest.raises(TypeError, match=r"Let\(f\): cannot bind an object array"):
        gc.Let(f, np.array([[object(), object()]]))
    assert issubclass(gc.DtypeError, TypeError)


def test_let_copies_and_reuses_buffer(g):
    x = gc.NewVector(g, gc.Float64, gc.WithShape(None), gc.WithName("x"))
    a = np.array([1.0, 2.0])
    gc.Let(x, a)
    a[0] = 99.0
    assert x.value[0] == 1.0  # the node holds its own copy
    buf = x.value
    gc.Let(x, [3.0, 4.0])
    assert x.value is buf and buf.tolist() == [3.0, 4.0]  # same size: copied in place
    gc.Let(x, [1.0, 2.0, 3.0])
    assert x.value.shape == (3,)


def test_let_rejects_op_and_constant_nodes(g):
    x = gc.NewVector(g, gc.Float64, gc.WithShape(2), gc.WithName("x"))
    y = gc.Exp(x)
    with pytest.raises(gc.GraphError, match=rf"Let: Exp '{y.name}' \(2,\) Float64 is not an input"):
        gc.Let(y, [1.0, 2.0])
    with pytest.raises(gc.GraphError, match=r"constant 'one' \(\) Float64 is not an input"):
        gc.Let(gc.NewConstant(1.0, name="one"), 2.0)
    with pytest.raises(TypeError, match=r"Let: the first argument must be a node"):
        gc.Let(np.zeros(2), [1.0, 2.0])


def test_value_before_run_explains(g):
    x = gc.NewVector(g, gc.Float64, gc.WithShape(2), gc.WithName("x"))
    y = gc.Exp(x)
    with pytest.raises(gc.ValueNotAvailableError, match=rf"{y.name}"):
        _ = y.value
    with pytest.raises(gc.ValueNotAvailableError, match=r"'x'.*no gradient.*Grad\(cost, x\)"):
        _ = x.grad


# ----- repr ---------------------------------------------------------------------------------------


def test_repr(g):
    x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 3), gc.WithName("x"))
    y = gc.Add(x, 1.0)
    assert repr(g) == "Graph('t', 2 nodes)"
    assert repr(x) == "<Input x (None, 3) Float32>"
    assert repr(y) == f"<{y.name} = Add(x, 1.0) (None, 3) Float32>"
    assert repr(gc.NewConstant(2.0)) == "<Constant 2.0 () Float64>"
    assert repr(gc.NewGraph()) == "Graph('graph', 0 nodes)"
    assert x.describe() == "input 'x' (None, 3) Float32"
    assert repr(gc.SoftMax(x, axis=1).op) == "SoftMax(axis=1)"
    assert repr(gc.WithShape(None, 3)) == "WithShape((None, 3))"


# ----- operators and broadcasting ---------------------------------------------------------------


def _run(g):
    gc.NewTapeMachine(g, gc.WithNoBufferReuse()).run_all()


def test_python_operators_build_ops_and_compute(g):
    a = gc.NewMatrix(g, gc.Float64, gc.WithShape(2, 3), gc.WithName("a"))
    b = gc.NewMatrix(g, gc.Float64, gc.WithShape(2, 3), gc.WithName("b"))
    m = gc.NewMatrix(g, gc.Float64, gc.WithShape(3, 2), gc.WithName("m"))
    exprs = {
        "add": (a + b, "Add"),
        "radd": (1.0 + a, "Add"),
        "sub": (a - b, "Sub"),
        "rsub": (1.0 - a, "Sub"),
        "mul": (a * b, "HadamardProd"),
        "rmul": (2.0 * a, "HadamardProd"),
        "div": (a / b, "HadamardDiv"),
        "rdiv": (1.0 / a, "HadamardDiv"),
        "pow": (a**2.0, "Pow"),
        "rpow": (2.0**a, "Pow"),
        "matmul": (a @ m, "MatMul"),
        "neg": (-a, "Neg"),
        "T": (a.T, "Transpose"),
        "ndarray_add": (np.ones((2, 3)) + a, "Add"),
    }
    for key, (node, opname) in exprs.items():
        assert node.op.name == opname, key
    assert +a is a
    A = np.arange(1.0, 7.0).reshape(2, 3)
    B = A[::-1] + 0.5
    M = np.arange(6.0).reshape(3, 2)
    gc.Let(a, A)
    gc.Let(b, B)
    gc.Let(m, M)
    _run(g)
    want = {
        "add": A + B,
        "radd": 1 + A,
        "sub": A - B,
        "rsub": 1 - A,
        "mul": A * B,
        "rmul": 2 * A,
        "div": A / B,
        "rdiv": 1 / A,
        "pow": A**2,
        "rpow": 2.0**A,
        "matmul": A @ M,
        "neg": -A,
        "T": A.T,
        "ndarray_add": 1 + A,
    }
    for key, (node, _) in exprs.items():
        np.testing.assert_allclose(node.value, want[key], rtol=1e-12, err_msg=key)


def test_operator_constants_take_the_node_dtype(g):
    x = gc.NewVector(g, gc.Float32, gc.WithShape(3), gc.WithName("x"))
    y = x * 2.0 + 1
    assert y.dtype == gc.Float32
    assert all(c.dtype == gc.Float32 for c in y.children)


@pytest.mark.parametrize(
    "sa,sb,sout",
    [
        ((None, 3), (1, 3), (None, 3)),
        ((None, 3), (3,), (None, 3)),
        ((4, 1), (1, 5), (4, 5)),
        ((2, 3, 4), (3, 1), (2, 3, 4)),
        ((None, 1), (None, 6), (None, 6)),
        ((3,), (), (3,)),
    ],
)
def test_broadcasting_shapes_and_values(g, sa, sb, sout):
    a = gc.NewTensor(g, gc.Float64, gc.WithShape(*sa), gc.WithName("a"))
    b = gc.NewTensor(g, gc.Float64, gc.WithShape(*sb), gc.WithName("b"))
    c = a * b + a
    assert c.shape == sout
    rng = np.random.default_rng(1)
    A = rng.standard_normal(tuple(5 if d is None else d for d in sa))
    B = rng.standard_normal(tuple(5 if d is None else d for d in sb))
    gc.Let(a, A)
    gc.Let(b, B)
    _run(g)
    np.testing.assert_allclose(c.value, A * B + A)


def test_broadcast_error_names_both_nodes(g):
    a = gc.NewMatrix(g, gc.Float64, gc.WithShape(3, 4), gc.WithName("a"))
    b = gc.NewMatrix(g, gc.Float64, gc.WithShape(5, 2), gc.WithName("b"))
    with pytest.raises(
        gc.ShapeError,
        match=r"Add: shapes do not broadcast: 'a' \(3, 4\) Float64 "
        r"and 'b' \(5, 2\) Float64",
    ):
        a + b


def test_mismatched_matmul_names_both_nodes_and_shapes(g):
    a = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 784), gc.WithName("x"))
    w = gc.NewMatrix(g, gc.Float32, gc.WithShape(250, 100), gc.WithName("w2"))
    pat = (
        r"Mul: inner dimensions do not match: 'x' \(None, 784\) Float32 times "
        r"'w2' \(250, 100\) Float32 \(784 != 250\)"
    )
    with pytest.raises(gc.ShapeError, match=pat):
        gc.Mul(a, w)
    with pytest.raises(gc.ShapeError, match=pat):
        a @ w
    t = gc.NewTensor(g, gc.Float32, gc.WithShape(2, 2, 2), gc.WithName("t3"))
    with pytest.raises(gc.ShapeError, match=r"vectors or matrices.*'t3' \(2, 2, 2\)"):
        gc.MatMul(t, w)


def test_mixed_dtypes_and_graphs_are_rejected(g):
    a = gc.NewVector(g, gc.Float32, gc.WithShape(2), gc.WithName("a"))
    b = gc.NewVector(g, gc.Float64, gc.WithShape(2), gc.WithName("b"))
    with pytest.raises(
        gc.DtypeError,
        match=r"different dtypes: 'a' \(2,\) Float32, 'b' \(2,\) "
        r"Float64",
    ):
        a + b
    other = gc.NewGraph("other")
    c = gc.NewVector(other, gc.Float32, gc.WithShape(2), gc.WithName("c"))
    with pytest.raises(
        gc.GraphError, match=r"different graphs \('c' is in 'other', another operand in 't'\)"
    ):
        a + c


def test_truth_value_of_a_node_is_an_error(g):
    a = gc.NewScalar(g, gc.Float64, gc.WithName("a"))
    with pytest.raises(TypeError, match=r"truth value of node 'a'"):
        if a:
            pass


# ----- constants and NodeFromAny ----------------------------------------------------------------


def test_new_constant_dtypes_names_and_readonly():
    c = gc.NewConstant(2.0)
    assert (c.dtype, c.shape, c.name, c.graph) == (gc.Float64, (), "2.0", None)
    assert c.is_constant and c.is_input
    assert gc.NewConstant(np.float32(1.5)).dtype == gc.Float32
    assert gc.NewConstant(3).dtype == gc.Int64
    assert gc.NewConstant(np.int32(3)).dtype == gc.Int32
    assert gc.NewConstant(True).dtype == gc.Bool
    assert gc.NewConstant([1.0, 2.0], dtype=gc.Float32).dtype == gc.Float32
    v = gc.NewConstant([[1.0, 2.0]], name="row")
    assert v.name == "row" and v.shape == (1, 2)
    assert gc.NewConstant([1.0, 2.0]).name == "const(2,)"
    with pytest.raises(ValueError, match="read-only"):
        v.value[0, 0] = 5.0
    with pytest.raises(gc.DtypeError, match=r"NewConstant: unsupported value"):
        gc.NewConstant("text")


def test_constant_joins_the_graph_through_an_op(g):
    x = gc.NewVector(g, gc.Float64, gc.WithShape(2), gc.WithName("x"))
    k = gc.NewConstant([10.0, 20.0], name="k")
    y = x + k
    assert y.graph is g and k not in g.nodes  # constants are reached through their readers
    gc.Let(x, [1.0, 2.0])
    _run(g)
    assert y.value.tolist() == [11.0, 22.0]


def test_node_from_any(g):
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    n = gc.NodeFromAny(g, arr, gc.WithName("z"))
    assert (n.dtype, n.shape, n.name) == (gc.Float32, (2, 3), "z")
    np.testing.assert_array_equal(n.value, arr)
    arr[0, 0] = 100.0
    assert n.value[0, 0] == 0.0  # a copy
    i = gc.NodeFromAny(g, [1, 2, 3], gc.WithName("ints"))
    assert i.dtype == gc.Int64 and i.shape == (3,)
    s = gc.NodeFromAny(g, 2.5, gc.WithName("s"))
    assert s.shape == () and float(s.value) == 2.5
    with pytest.raises(gc.GraphError, match=r"already has an input node named 'z'"):
        gc.NodeFromAny(g, arr, gc.WithName("z"))


def test_as_dtype():
    assert gc.as_dtype("float32") is gc.Float32
    assert gc.as_dtype(np.float64) is gc.Float64
    assert gc.as_dtype(gc.Int32) is gc.Int32
    with pytest.raises(TypeError, match=r"complex128 is not supported"):
        gc.as_dtype(np.complex128)


def test_let_refuses_float64_values_that_overflow_a_float32_node():
    g = gc.NewGraph()
    x = gc.NewVector(g, gc.Float32, gc.WithShape(2), gc.WithName("x"))
    gc.Let(x, np.array([1.0, 2.0]))  # a narrowing cast that fits is fine
    assert x.value.dtype == np.float32
    with pytest.raises(gc.DtypeError, match="overflow the Float32 node 'x'"):
        gc.Let(x, np.array([1.0, 1e300]))
    assert x.value.tolist() == [1.0, 2.0]
