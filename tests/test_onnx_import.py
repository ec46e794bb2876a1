"""FromONNX: models exported by PyTorch (tests/data/onnx, made by make_models.py there) and
hand-built ones read as graphs that compute what onnxruntime computes, their initializers as
learnables that train; ops graphcore cannot express raise errors naming the node."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import graphcore as gc
from tests.test_onnx_export import TOL, gc_run, maxdiff, ort_run, rand

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

DATA = Path(__file__).parent / "data" / "onnx"
TORCH = {"mlp.onnx": (4,), "cnn.onnx": (1, 12, 12), "cnn_dynamo.onnx": (1, 12, 12)}


def compare(model, feeds: dict[str, np.ndarray]) -> float:
    """Read ``model``; run it in graphcore (eval mode) and onnxruntime on ``feeds``; check
    they agree and return the largest difference."""
    g, ins, outs = gc.FromONNX(model)
    got = gc_run(outs, {n: feeds[n.name] for n in ins})
    want = ort_run(model, feeds)
    for w, o in zip(want, got, strict=True):
        assert o.shape == w.shape
        np.testing.assert_allclose(o, w, **TOL)
    return maxdiff(got, want)


def make(nodes, inputs, outputs, inits=(), opset=17):
    """A model from ``onnx.helper`` parts; inputs and outputs are (name, elem, shape)."""
    graph = helper.make_graph(
        nodes, "test",
        [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
        [helper.make_tensor_value_info(n, t, s) for n, t, s in outputs],
        initializer=[numpy_helper.from_array(a, n) for n, a in inits],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = helper.find_min_ir_version_for(list(model.opset_import))
    onnx.checker.check_model(model, full_check=True)
    return model


F = TensorProto.FLOAT


# ----- PyTorch's models --------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TORCH))
def test_torch_models_match_onnxruntime(name):
    model = onnx.load(str(DATA / name))
    for batch in (1, 5):
        x = rand(batch, *TORCH[name], seed=batch)
        compare(model, {"x": x})
    g, (x,), (y,) = gc.FromONNX(DATA / name)
    assert x.shape == (None, *TORCH[name]) and y.shape[0] is None


def test_torch_mlp_reads_gemm_batchnorm_softmax():
    g, (x,), (y,) = gc.FromONNX(DATA / "mlp.onnx")
    ops = [n.op.name for n in g.nodes if n.op is not None]
    assert ops.count("MatMul") == 2 and "BatchNorm" in ops and ops[-1] == "SoftMax"
    learnables = [n for n in g.inputs() if n is not x]
    assert [n.name for n in learnables] == ["0.weight", "0.bias", "1.weight", "1.bias",
                                            "4.weight", "4.bias"]
    assert learnables[0].shape == (8, 4)  # torch's (out, in) layout, read through Transpose


def test_imported_torch_cnn_fine_tunes():
    gc.SetSeed(0)
    g, (x,), (logits,) = gc.FromONNX(DATA / "cnn.onnx")
    learnables = [n for n in g.inputs() if n is not x]
    labels = gc.NewVector(g, gc.Int64, gc.WithShape(None), gc.WithName("labels"))
    cost = gc.SoftmaxCrossEntropy(logits, labels)
    gc.Grad(cost, *learnables)
    vm = gc.NewTapeMachine(g, gc.BindDualValues(*learnables))
    solver = gc.NewAdamSolver(gc.WithLearnRate(0.01))
    rng = np.random.default_rng(0)
    data = rng.normal(size=(16, 1, 12, 12)).astype(np.float32)
    gc.Let(x, data)
    gc.Let(labels, rng.integers(0, 10, 16))
    losses = []
    for _ in range(15):
        vm.run_all()
        losses.append(float(cost.value))
        solver.step(gc.NodesToValueGrads(learnables))
    assert losses[-1] < 0.5 * losses[0]


def test_round_trip_of_a_torch_model_through_toonnx():
    src = onnx.load(str(DATA / "cnn.onnx"))
    g, (x,), (y,) = gc.FromONNX(src)
    again = gc.ToONNX(y, None)
    data = rand(3, 1, 12, 12)
    (want,) = ort_run(src, {"x": data})
    (got,) = ort_run(again, {"x": data})
    np.testing.assert_allclose(got, want, **TOL)
    assert {i.name for i in again.graph.initializer} >= {"0.weight", "8.bias"}


# ----- op by op ----------------------------------------------------------------------------------


def test_gemm_attributes():
    w = rand(3, 4, seed=1)
    c = rand(3, seed=2)
    nodes = [helper.make_node("Gemm", ["x", "w", "c"], ["y"], alpha=0.5, beta=2.0, transB=1),
             helper.make_node("Gemm", ["xt", "w"], ["z"], transA=1)]
    m = make(nodes, [("x", F, ["b", 4]), ("xt", F, [3, 2])], [("y", F, ["b", 3]), ("z", F, [2, 4])],
             [("w", w), ("c", c)])
    compare(m, {"x": rand(5, 4), "xt": rand(3, 2, seed=3)})


def test_matmul_of_a_sequence_and_einsum():
    w = rand(4, 3, seed=1)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"]),
             helper.make_node("Einsum", ["x", "w"], ["z"], equation="btk,kc->btc")]
    m = make(nodes, [("x", F, ["b", 2, 4])], [("y", F, ["b", 2, 3]), ("z", F, ["b", 2, 3])],
             [("w", w)])
    compare(m, {"x": rand(3, 2, 4)})


@pytest.mark.parametrize("opset", [11, 13])
def test_softmax_semantics_by_opset(opset):
    # before opset 13, Softmax(axis=1) of (N, 3, 4) is over the 12 values of each sample
    nodes = [helper.make_node("Softmax", ["x"], ["y"], axis=1),
             helper.make_node("LogSoftmax", ["x"], ["z"])]
    m = make(nodes, [("x", F, ["b", 3, 4])], [("y", F, ["b", 3, 4]), ("z", F, ["b", 3, 4])],
             opset=opset)
    compare(m, {"x": rand(2, 3, 4)})


def test_shape_arithmetic_reshape_keeps_the_batch():
    # x.view(x.size(0), -1), as torch's legacy exporter writes it
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Constant", [], ["i0"], value=numpy_helper.from_array(np.int64(0))),
        helper.make_node("Gather", ["s", "i0"], ["n"], axis=0),
        helper.make_node("Constant", [], ["ax"], value=numpy_helper.from_array(np.int64([0]))),
        helper.make_node("Unsqueeze", ["n", "ax"], ["n1"]),
        helper.make_node("Constant", [], ["m1"], value=numpy_helper.from_array(np.int64([-1]))),
        helper.make_node("Concat", ["n1", "m1"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["y"]),
    ]
    m = make(nodes, [("x", F, ["b", 2, 3])], [("y", F, ["b", 6])])
    g, _, (y,) = gc.FromONNX(m)
    assert y.shape == (None, 6)
    compare(m, {"x": rand(4, 2, 3)})


def test_reshape_minus_one_for_the_batch_and_zero_copies():
    nodes = [helper.make_node("Reshape", ["x", "s1"], ["y"]),
             helper.make_node("Reshape", ["x", "s2"], ["z"])]
    m = make(nodes, [("x", F, ["b", 2, 3])], [("y", F, ["b", 6]), ("z", F, ["b", 3, 2])],
             [("s1", np.int64([-1, 6])), ("s2", np.int64([0, 3, -1]))])
    compare(m, {"x": rand(4, 2, 3)})


def test_squeeze_unsqueeze_flatten_transpose_slice_gather():
    nodes = [
        helper.make_node("Unsqueeze", ["x", "a1"], ["u"]),
        helper.make_node("Squeeze", ["u", "a1"], ["s"]),
        helper.make_node("Flatten", ["u"], ["f"], axis=1),
        helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 1]),
        helper.make_node("Slice", ["x", "st", "en", "ax", "sp"], ["sl"]),
        helper.make_node("Gather", ["x", "i"], ["ga"], axis=2),
        helper.make_node("Gather", ["x", "iv"], ["gv"], axis=1),
    ]
    outs = [("s", F, ["b", 3, 4]), ("f", F, ["b", 12]), ("t", F, ["b", 4, 3]),
            ("sl", F, ["b", 3, 2]), ("ga", F, ["b", 3]), ("gv", F, ["b", 2, 4])]
    inits = [("a1", np.int64([1])), ("st", np.int64([0, -1])), ("en", np.int64([2**63 - 1, 0])),
             ("ax", np.int64([1, 2])), ("sp", np.int64([1, -2])), ("i", np.int64(-1)),
             ("iv", np.int64([2, 0]))]
    m = make(nodes, [("x", F, ["b", 3, 4])], outs, inits)
    compare(m, {"x": rand(2, 3, 4)})


def test_pools_layernorm_reductions_and_erf():
    nodes = [
        helper.make_node("GlobalAveragePool", ["x"], ["gap"]),
        helper.make_node("GlobalMaxPool", ["x"], ["gmp"]),
        helper.make_node("AveragePool", ["x"], ["ap"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("MaxPool", ["x"], ["mp"], kernel_shape=[3, 3], auto_pad="SAME_UPPER"),
        helper.make_node("LayerNormalization", ["x", "sc", "bi"], ["ln"], axis=-2),
        helper.make_node("ReduceMean", ["x"], ["rm"], axes=[2, 3], keepdims=0),
        helper.make_node("ReduceSum", ["x", "r"], ["rs"]),
        helper.make_node("Erf", ["x"], ["erf"]),
    ]
    outs = [("gap", F, ["b", 2, 1, 1]), ("gmp", F, ["b", 2, 1, 1]), ("ap", F, ["b", 2, 2, 2]),
            ("mp", F, ["b", 2, 4, 4]), ("ln", F, ["b", 2, 4, 4]), ("rm", F, ["b", 2]),
            ("rs", F, ["b", 1, 4, 4]), ("erf", F, ["b", 2, 4, 4])]
    inits = [("sc", rand(4, 4, seed=1)), ("bi", rand(4, 4, seed=2)), ("r", np.int64([1]))]
    m = make(nodes, [("x", F, ["b", 2, 4, 4])], outs, inits)
    compare(m, {"x": rand(3, 2, 4, 4)})


def test_comparison_cast_and_loss():
    nodes = [
        helper.make_node("Less", ["x", "y"], ["lt"]),
        helper.make_node("Cast", ["lt"], ["ltf"], to=F),
        helper.make_node("Equal", ["x", "y"], ["eq"]),
        helper.make_node("Not", ["eq"], ["ne"]),
        helper.make_node("SoftmaxCrossEntropyLoss", ["x", "k"], ["loss"], reduction="sum"),
    ]
    outs = [("ltf", F, ["b", 3]), ("ne", TensorProto.BOOL, ["b", 3]), ("loss", F, [])]
    m = make(nodes, [("x", F, ["b", 3]), ("y", F, ["b", 3]), ("k", TensorProto.INT64, ["b"])],
             outs)
    x = np.float32([[1, 2, 3], [3, 2, 1]])
    compare(m, {"x": x, "y": np.float32([[1, 3, 2], [3, 3, 3]]), "k": np.int64([2, 0])})


# ----- what FromONNX refuses ---------------------------------------------------------------------


def test_unsupported_op_names_the_node_and_op_type():
    m = make([helper.make_node("Hardmax", ["x"], ["y"], name="hm")], [("x", F, ["b", 3])],
             [("y", F, ["b", 3])])
    with pytest.raises(gc.onnx.ONNXError, match=r"node 'hm' \(op Hardmax\).*no equivalent"):
        gc.FromONNX(m)


def test_uneven_padding_and_grouped_conv_are_refused():
    w = rand(2, 1, 3, 3)
    pads = helper.make_node("Conv", ["x", "w"], ["y"], pads=[0, 0, 1, 1], name="c")
    m = make([pads], [("x", F, ["b", 1, 5, 5])], [("y", F, ["b", 2, 4, 4])], [("w", w)])
    with pytest.raises(gc.onnx.ONNXError, match=r"node 'c' \(op Conv\): pads"):
        gc.FromONNX(m)
    grouped = helper.make_node("Conv", ["x", "w"], ["y"], group=2, name="g")
    m = make([grouped], [("x", F, ["b", 2, 5, 5])], [("y", F, ["b", 2, 3, 3])], [("w", w)])
    with pytest.raises(gc.onnx.ONNXError, match="group=2"):
        gc.FromONNX(m)


def test_unsupported_output_is_named_when_read():
    nodes = [helper.make_node("MaxPool", ["x"], ["y", "idx"], kernel_shape=[2, 2], name="mp"),
             helper.make_node("Identity", ["idx"], ["z"])]
    m = make(nodes, [("x", F, ["b", 1, 4, 4])],
             [("y", F, ["b", 1, 3, 3]), ("z", TensorProto.INT64, ["b", 1, 3, 3])])
    with pytest.raises(gc.onnx.ONNXError, match=r"'idx' \(an output of node 'mp' \(op MaxPool"):
        gc.FromONNX(m)


def test_unsupported_dtype():
    m = make([helper.make_node("Relu", ["x"], ["y"])], [("x", TensorProto.FLOAT16, ["b", 3])],
             [("y", TensorProto.FLOAT16, ["b", 3])])
    with pytest.raises(gc.onnx.ONNXError, match="graph input 'x'.*FLOAT16"):
        gc.FromONNX(m)
