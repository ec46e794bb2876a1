"""ToONNX op by op: each exported graph passes onnx.checker (full check), onnxruntime computes
what graphcore computes (float32, to 1e-5), and FromONNX reads it back to the same values.

The helpers here (``check``, ``ort_run``, ``gc_run``) serve the other ONNX tests too.
"""

from __future__ import annotations

import numpy as np
import pytest

import graphcore as gc

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
ort.set_default_logger_severity(3)

TOL = {"rtol": 1e-5, "atol": 1e-5}


def ort_run(model, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The model's outputs in onnxruntime, inputs given by name."""
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def gc_run(outs: list[gc.Node], feeds: dict[gc.Node, np.ndarray], training: bool = False):
    """The outputs' values after one run (eval mode unless ``training``)."""
    for n, v in feeds.items():
        gc.Let(n, v)
    g = outs[0].graph
    mode = gc.TrainMode() if training else gc.EvalMode()
    vm = gc.NewTapeMachine(g.exact_subgraph_roots(*outs), mode, gc.WithWatchlist(*outs))
    vm.run_all()
    return [np.array(n.value) for n in outs]


def check(outputs, feeds: dict[gc.Node, np.ndarray], opset=None, inputs=None, tol=TOL):
    """Export ``outputs``; compare onnxruntime and the model read back with graphcore's own
    values for ``feeds``; return the model and the largest differences (ort, read back)."""
    outs = [outputs] if isinstance(outputs, gc.Node) else list(outputs)
    model = gc.ToONNX(outs, None, inputs=inputs, opset=opset)
    onnx.checker.check_model(model, full_check=True)
    want = gc_run(outs, feeds)
    got = ort_run(model, {n.name: v for n, v in feeds.items()})
    for w, o in zip(want, got, strict=True):
        assert o.shape == w.shape and o.dtype == w.dtype
        np.testing.assert_allclose(o, w, **tol)
    g2, ins2, outs2 = gc.FromONNX(model)
    by_name = {n.name: v for n, v in feeds.items()}
    back = gc_run(outs2, {n: by_name[n.name] for n in ins2})
    for w, b in zip(want, back, strict=True):
        np.testing.assert_allclose(b, w, **tol)
    return model, maxdiff(got, want), maxdiff(back, want)


def maxdiff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """The largest absolute difference between two lists of arrays."""
    return max(
        float(np.abs(np.float64(x) - np.float64(y)).max(initial=0))
        for x, y in zip(a, b, strict=True)
    )


def ops_of(model) -> list[str]:
    return [n.op_type for n in model.graph.node if n.op_type != "Constant"]


def rand(*shape, lo=-2.0, hi=2.0, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(lo, hi, shape).astype(np.float32)


def matrix(g, name, *shape, dt=gc.Float32):
    return gc.NewTensor(g, dt, len(shape), gc.WithShape(*shape), gc.WithName(name))


def weight(g, name, arr):
    return gc.NewTensor(g, gc.as_dtype(arr.dtype), arr.ndim, gc.WithShape(*arr.shape),
                        gc.WithName(name), gc.WithValue(arr))


# ----- elementwise -------------------------------------------------------------------------------

POSITIVE = {"Log", "Sqrt", "Log2", "Log1p", "InverseSqrt", "Inverse"}
UNARY = [
    "Exp", "Log", "Log2", "Log1p", "Expm1", "Sqrt", "Square", "Cube", "Inverse", "InverseSqrt",
    "Sin", "Cos", "Tanh", "Sigmoid", "Softplus", "Neg", "Abs", "Sign", "Rectify", "Gelu", "Mish",
]


@pytest.mark.parametrize("opset", [13, 17, 20])
@pytest.mark.parametrize("name", UNARY)
def test_unary(name, opset):
    g = gc.NewGraph()
    x = matrix(g, "x", None, 5)
    lo = 0.5 if name in POSITIVE else -2.0
    check(getattr(gc, name)(x), {x: rand(3, 5, lo=lo)}, opset=opset)


def test_unary_with_parameters():
    g = gc.NewGraph()
    x = matrix(g, "x", None, 5)
    a, b = gc.LeakyRelu(x, 0.2), gc.Elu(x, 0.7)
    model, _, _ = check([a, b], {x: rand(4, 5)})
    alphas = [at.f for n in model.graph.node for at in n.attribute if at.name == "alpha"]
    assert np.allclose(alphas, [0.2, 0.7])


def test_gelu_and_mish_use_the_native_ops_when_the_opset_has_them():
    g = gc.NewGraph()
    x = matrix(g, "x", None, 3)
    outs = [gc.Gelu(x), gc.Mish(x)]
    assert {"Gelu", "Mish"} <= set(ops_of(gc.ToONNX(outs, None, opset=20)))
    assert not {"Gelu", "Mish"} & set(ops_of(gc.ToONNX(outs, None, opset=17)))


@pytest.mark.parametrize("name", ["Add", "Sub", "HadamardProd", "HadamardDiv", "Maximum",
                                  "Minimum", "Pow"])
def test_binary_broadcasting(name):
    g = gc.NewGraph()
    x = matrix(g, "x", None, 4)
    b = weight(g, "b", rand(1, 4, lo=0.5, seed=1))
    lo = 0.5 if name == "Pow" else -2.0
    check(getattr(gc, name)(x, b), {x: rand(3, 4, lo=lo)})


@pytest.mark.parametrize("name", ["Lt", "Gt", "Lte", "Gte", "Eq", "Ne"])
@pytest.mark.parametrize("ret_same", [False, True])
def test_comparisons(name, ret_same):
    g = gc.NewGraph()
    x = matrix(g, "x", None, 4)
    y = matrix(g, "y", None, 4)
    xs = np.float32([[1, 2, 3, 4], [0, 0, 1, 1]])
    ys = np.float32([[1, 3, 2, 4], [0, 1, 0, 1]])
    node = getattr(gc, name)(x, y, ret_same)
    assert node.dtype == (gc.Float32 if ret_same else gc.Bool)
    check(node, {x: xs, y: ys})


def test_constants_become_constant_nodes_and_learnables_initializers():
    g = gc.NewGraph()
    x = matrix(g, "x", None, 3)
    w = weight(g, "w", rand(3, 3))
    y = (1.0 - gc.Sigmoid(x)) * 2.0 @ w
    model, _, _ = check(y, {x: rand(2, 3)})
    assert [i.name for i in model.graph.initializer] == ["w"]
    g2, (x2,), _ = gc.FromONNX(model)
    assert [n.name for n in g2.inputs()] == ["x", "w"]  # constants stay constants


# ----- linear algebra, reductions, softmax -------------------------------------------------------


def test_matmul_vector_and_transpose():
    g = gc.NewGraph()
    x = matrix(g, "x", 3, 4)
    v = weight(g, "v", rand(4, seed=2))
    check([gc.MatMul(x, v), gc.Transpose(x), gc.MatMul(gc.Transpose(x), x)], {x: rand(3, 4)})


def test_batched_matmul_tensordot_outer():
    g = gc.NewGraph()
    a = matrix(g, "a", None, 2, 3)
    b = weight(g, "b", rand(4, 3, 5, seed=1))
    c = weight(g, "c", rand(4, 2, 3, seed=2))
    u = weight(g, "u", rand(3, seed=3))
    outs = [
        gc.BatchedMatMul(c, b),
        gc.BatchedMatMul(c, c, transB=True),
        gc.BatchedMatMul(c, c, transA=True),
        gc.Tensordot(a, b, ([2], [1])),
        gc.OuterProd(u, u),
    ]
    model, _, _ = check(outs, {a: rand(2, 2, 3)})
    assert "Einsum" in ops_of(model)


@pytest.mark.parametrize("name", ["Sum", "Mean", "Max", "Min", "LogSumExp"])
@pytest.mark.parametrize("opset", [13, 18])
def test_reductions(name, opset):
    g = gc.NewGraph()
    x = matrix(g, "x", None, 3, 4)
    f = getattr(gc, name)
    outs = [f(x), f(x, 1), f(x, 1, 2, keepdims=True), f(x, axis=-1)]
    check(outs, {x: rand(2, 3, 4)}, opset=opset)


def test_norms():
    g = gc.NewGraph()
    x = matrix(g, "x", None, 4)
    check([gc.Norm(x), gc.Norm(x, 1, p=1), gc.Norm(x, 1, keepdims=True)], {x: rand(3, 4)})


def test_softmax_axes():
    g = gc.NewGraph()
    x = matrix(g, "x", None, 3, 4)
    outs = [gc.SoftMax(x), gc.SoftMax(x, 1), gc.LogSoftMax(x, 0), gc.LogSoftMax(x)]
    check(outs, {x: rand(2, 3, 4)})


# ----- shape and indexing ------------------------------------------------------------------------


def test_reshape_keeps_the_batch_free():
    g = gc.NewGraph()
    x = matrix(g, "x", None, 2, 6)
    y = gc.Reshape(x, (None, 12))
    model, _, _ = check([y, gc.Reshape(y, (None, 3, 4))], {x: rand(5, 2, 6)})
    out = model.graph.output[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in out] == ["batch", 12]


def test_slices():
    g = gc.NewGraph()
    x = matrix(g, "x", None, 6, 5)
    outs = [
        x[:, 1], x[:, -1], x[:, 1:4], x[:, ::-1], x[:, 4:0:-2, -2:], x[1:3], x[:, :, 0],
        gc.Slice(x, None, gc.S(0, 6, 2)),
    ]
    check(outs, {x: rand(4, 6, 5)})


def test_concat_and_gather():
    g = gc.NewGraph()
    x = matrix(g, "x", None, 3)
    emb = weight(g, "emb", rand(5, 3))
    ids = gc.NewVector(g, gc.Int64, gc.WithShape(None), gc.WithName("ids"))
    outs = [gc.Concat(1, x, x * 2.0), gc.Concat(0, x, x), gc.ByIndices(emb, ids)]
    check(outs, {x: rand(2, 3), ids: np.array([4, 0, 2, 2])})


# ----- neural network ----------------------------------------------------------------------------


def test_conv_pool_dropout_batchnorm():
    gc.SetSeed(0)
    g = gc.NewGraph()
    x = matrix(g, "x", None, 2, 9, 9)
    w = weight(g, "w", rand(3, 2, 3, 3, seed=1))
    h = gc.Conv2d(x, w, pad=(2, 1), stride=2, dilation=(2, 1))
    rm, rv = rand(3, seed=2), rand(3, lo=0.5, seed=3)
    bn = gc.BatchNorm(h, rand(3, seed=4), rand(3, seed=5), rm, rv, momentum=0.2, eps=1e-3)
    y = gc.Dropout(gc.MaxPool2D(bn, kernel=3, pad=1, stride=2), 0.3)
    z = gc.AvgPool2D(x, kernel=3, pad=1, stride=1)
    model, _, _ = check([y, z], {x: rand(2, 2, 9, 9)})
    assert ops_of(model) == ["Conv", "BatchNormalization", "MaxPool", "Dropout", "AveragePool"]
    bn_node = next(n for n in model.graph.node if n.op_type == "BatchNormalization")
    attrs = {a.name: a.f for a in bn_node.attribute}
    assert np.isclose(attrs["momentum"], 0.8) and np.isclose(attrs["epsilon"], 1e-3)


def test_batchnorm_gamma_shaped_to_broadcast():
    g = gc.NewGraph()
    x = matrix(g, "x", None, 3)
    gamma = weight(g, "gamma", rand(1, 3, seed=1))
    beta = weight(g, "beta", rand(1, 3, seed=2))
    y = gc.BatchNorm(x, gamma, beta, rand(3, seed=3), rand(3, lo=0.5, seed=4))
    check(y, {x: rand(4, 3)})


# ----- losses ------------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_softmax_cross_entropy(reduction):
    g = gc.NewGraph()
    z = matrix(g, "z", None, 4)
    t = matrix(g, "t", None, 4)
    k = gc.NewVector(g, gc.Int64, gc.WithShape(None), gc.WithName("k"))
    z3 = matrix(g, "z3", None, 4, 3)  # classes on axis 1
    k3 = gc.NewTensor(g, gc.Int64, 2, gc.WithShape(None, 3), gc.WithName("k3"))
    z4 = matrix(g, "z4", None, 3, 4)  # classes last
    labels = np.array([0, 3, 1])
    outs = [
        gc.SoftmaxCrossEntropy(z, t, reduction=reduction),
        gc.SoftmaxCrossEntropy(z, k, reduction=reduction),
        gc.SoftmaxCrossEntropy(z3, k3, axis=1, reduction=reduction),
        gc.SoftmaxCrossEntropy(z4, k3, axis=-1, reduction=reduction),
        gc.SoftmaxCrossEntropy(z4, gc.SoftMax(z4), reduction=reduction),
    ]
    feeds = {
        z: rand(3, 4), t: np.eye(4, dtype=np.float32)[labels], k: labels,
        z3: rand(3, 4, 3, seed=1), k3: np.array([[0, 1, 3], [2, 2, 0], [3, 1, 1]]),
        z4: rand(3, 3, 4, seed=2),
    }
    model, _, _ = check(outs, feeds)
    assert ops_of(model).count("SoftmaxCrossEntropyLoss") == 3


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_sigmoid_binary_cross_entropy(reduction):
    g = gc.NewGraph()
    z = matrix(g, "z", None, 3)
    t = matrix(g, "t", None, 3)
    y = gc.SigmoidBinaryCrossEntropy(z, t, reduction=reduction)
    check(y, {z: rand(4, 3, lo=-30, hi=30), t: rand(4, 3, lo=0, hi=1, seed=1)})


# ----- inputs, outputs, errors -------------------------------------------------------------------


def test_inputs_given_explicitly_and_bound_data_as_initializer():
    g = gc.NewGraph()
    x = matrix(g, "x", None, 2)
    s = matrix(g, "s", 1, 2)
    gc.Let(s, np.float32([[2, 3]]))
    y = x * s
    model = gc.ToONNX(y, None, inputs=[x])
    assert [i.name for i in model.graph.input] == ["x"]
    assert [i.name for i in model.graph.initializer] == ["s"]
    assert [i.name for i in gc.ToONNX(y, None).graph.input] == ["x", "s"]
    with pytest.raises(ValueError, match="do not depend on input"):
        gc.ToONNX(x * 2.0, None, inputs=[s])


def test_an_input_without_value_must_be_listed():
    g = gc.NewGraph()
    x = matrix(g, "x", None, 2)
    y = matrix(g, "y", None, 2)
    with pytest.raises(ValueError, match="'y'.*not in inputs"):
        gc.ToONNX(x + y, None, inputs=[x])


def test_outputs_that_are_inputs_or_repeated_get_identities():
    g = gc.NewGraph()
    x = matrix(g, "x", None, 2)
    y = gc.Exp(x)
    model, _, _ = check([y, x, y], {x: rand(2, 2)})
    assert len({o.name for o in model.graph.output}) == 3


def test_unsupported_op_names_the_node_and_op():
    g = gc.NewGraph()
    x = matrix(g, "x", None, 3)
    cost = gc.Sum(gc.Tanh(x))
    (dx,) = gc.Grad(cost, x)
    with pytest.raises(gc.onnx.ONNXError, match=rf"node '{dx.name}' \(op TanhGrad\).*no ONNX"):
        gc.ToONNX(dx, None)
    r = gc.UniformRandomNode(g, gc.Float32, 0.0, 1.0, 2, 3)
    with pytest.raises(gc.onnx.ONNXError, match=r"\(op Random"):
        gc.ToONNX(r, None)


def test_opset_range():
    g = gc.NewGraph()
    x = matrix(g, "x", None, 2)
    assert gc.ToONNX(gc.Exp(x), None).opset_import[0].version == gc.onnx.DEFAULT_OPSET
    with pytest.raises(ValueError, match="opset 12 is not supported.*from 13"):
        gc.ToONNX(gc.Exp(x), None, opset=12)
    with pytest.raises(ValueError, match="opset 99"):
        gc.ToONNX(gc.Exp(x), None, opset=99)


def test_writes_the_file(tmp_path):
    g = gc.NewGraph()
    x = matrix(g, "x", None, 2)
    path = tmp_path / "exp.onnx"
    model = gc.ToONNX(gc.Exp(x), path)
    assert onnx.load(str(path)) == model
    g2, _, (y2,) = gc.FromONNX(path)
    assert y2.op.name == "Exp"


def test_float64_graphs_stay_double():
    g = gc.NewGraph()
    x = matrix(g, "x", None, 3, dt=gc.Float64)
    w = weight(g, "w", rand(3, 2).astype(np.float64))
    y = gc.SoftMax(gc.Rectify(gc.Mul(x, w)))
    model, _, _ = check(y, {x: rand(4, 3).astype(np.float64)}, tol={"rtol": 1e-12, "atol": 1e-12})
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
