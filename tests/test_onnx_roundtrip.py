"""Whole models out to ONNX and back: the talk's MLP and autoencoder, a convnet with batch norm
and dropout, and unrolled LSTM and GRU graphs. Each exported model matches graphcore in
onnxruntime at several batch sizes (the batch axis stays dynamic), and reads back with
FromONNX to a graph computing the same values."""

from __future__ import annotations

import numpy as np
import pytest

import golgi as G
import graphcore as gc
from tests.test_onnx_export import TOL, check, gc_run, maxdiff, ops_of, ort_run, rand, weight

onnx = pytest.importorskip("onnx")


def round_trip(model, x: gc.Node, outs: list[gc.Node], batches=(1, 7)) -> tuple[float, float]:
    """Compare onnxruntime and the model read back with graphcore (eval mode) at each batch
    size; return the largest differences (onnxruntime, read back)."""
    onnx.checker.check_model(model, full_check=True)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch"
    g2, (x2,), outs2 = gc.FromONNX(model)
    assert x2.shape == x.shape and [o.shape for o in outs2] == [o.shape for o in outs]
    d_ort = d_back = 0.0
    for i, n in enumerate(batches):
        data = rand(n, *x.shape[1:], lo=0.0, hi=1.0, seed=i)
        want = gc_run(outs, {x: data})
        got = ort_run(model, {x.name: data})
        back = gc_run(outs2, {x2: data})
        for w, o, b in zip(want, got, back, strict=True):
            np.testing.assert_allclose(o, w, **TOL)
            np.testing.assert_allclose(b, w, **TOL)
        d_ort, d_back = max(d_ort, maxdiff(got, want)), max(d_back, maxdiff(back, want))
    return d_ort, d_back


def test_talk_mlp():
    gc.SetSeed(0)
    net = G.models.MLP(sizes=(784, 50, 20, 10), softmax=True)
    model = G.export_onnx(net, None)
    assert ops_of(model) == ["MatMul", "Add", "Relu"] * 2 + ["MatMul", "Add", "Softmax"]
    assert [i.name for i in model.graph.initializer] == [n.name for n in net.model()]
    round_trip(model, net.input, [net.out])


def test_talk_autoencoder():
    gc.SetSeed(0)
    ae = G.models.Autoencoder(sizes=(64, 32, 8, 32, 64), sigmoid=True)
    round_trip(G.export_onnx(ae, None), ae.input, [ae.out])


def convnet():
    """Reshape, Conv, MaxPool, Conv with dropout, BatchNorm, Dropout, Flatten, FC, softmax."""
    gc.SetSeed(0)
    g = gc.NewGraph("convnet")
    x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 144), gc.WithName("x"))
    net = G.ComposeSeq(
        x,
        G.L(G.ConsReshape(G.ToShape(None, 1, 12, 12))),
        G.L(G.ConsConv(G.WithShape(4), G.WithName("c1"), G.WithActivation(gc.Rectify))),
        G.L(G.ConsMaxPool()),
        G.L(G.ConsConv(G.WithShape(8), G.WithName("c2"), G.WithPad(0, 0),
                       G.WithProbability(0.2))),
        G.L(G.ConsBatchNorm(G.WithName("bn"))),
        G.L(G.ConsDropout(G.WithProbability(0.3))),
        G.L(G.ConsFlatten()),
        G.L(G.ConsFC(G.WithShape(10), G.WithName("out"), G.WithActivation(gc.SoftMax))),
    )
    # training runs give the batch norm running statistics of its own
    vm = gc.NewTapeMachine(g)
    for i in range(3):
        gc.Let(x, rand(16, 144, lo=0.0, hi=3.0, seed=10 + i))
        vm.run_all()
    return net


def test_convnet_with_batchnorm_and_dropout_in_eval_mode():
    net = convnet()
    bn = net.layers[4]
    assert not np.allclose(bn.running_mean, 0) and not np.allclose(bn.running_var, 1)
    model = G.export_onnx(net, None)
    assert ops_of(model) == [
        "Reshape", "Conv", "Add", "Relu", "MaxPool", "Conv", "Add", "Dropout",
        "BatchNormalization", "Dropout", "Reshape", "MatMul", "Add", "Softmax",
    ]
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    np.testing.assert_array_equal(inits["bn/running_mean"], bn.running_mean)
    round_trip(model, net.input, [net.out])


def lstm_graph(steps=4, n_in=3, size=5):
    """An LSTM unrolled from graphcore ops, as golgi's recurrent layers build it: the gate
    weights joined side by side, one product of [x_t, h] per step, the gates sliced out."""
    g = gc.NewGraph("lstm")
    x = gc.NewTensor(g, gc.Float32, 3, gc.WithShape(None, steps, n_in), gc.WithName("x"))
    wx, wh, b = (
        gc.Concat(1, *(weight(g, f"lstm/{stem}_{k}", rand(*shape, lo=-0.5, hi=0.5, seed=i))
                       for i, k in enumerate("ifoc")))
        for stem, shape in (("Wx", (n_in, size)), ("Wh", (size, size)), ("b", (1, size)))
    )
    w = gc.Concat(0, wx, wh)
    zero = gc.NewConstant(np.zeros((1, size), np.float32), name="lstm/zero")
    h = c = zero
    hs = []
    for t in range(steps):
        xt = x[:, t]
        z = gc.MatMul(xt, wx) + (gc.MatMul(zero, wh) + b) if t == 0 else (
            gc.MatMul(gc.Concat(1, xt, h), w) + b)
        i, f, o = (gc.Sigmoid(z[:, k * size:(k + 1) * size]) for k in range(3))
        cand = gc.Tanh(z[:, 3 * size:])
        c = f * c + i * cand
        h = o * gc.Tanh(c)
        hs.append(h)
    seq = gc.Reshape(gc.Concat(1, *hs), (None, steps, size))
    return x, [seq, h, c]


def gru_graph(steps=3, n_in=4, size=3):
    """A GRU unrolled from graphcore ops (torch's cell: the reset gate scales h's product)."""
    g = gc.NewGraph("gru")
    x = gc.NewTensor(g, gc.Float32, 3, gc.WithShape(None, steps, n_in), gc.WithName("x"))
    wx = weight(g, "gru/Wx", rand(n_in, 3 * size, lo=-0.5, hi=0.5, seed=1))
    wh = weight(g, "gru/Wh", rand(size, 3 * size, lo=-0.5, hi=0.5, seed=2))
    bx = weight(g, "gru/bx", rand(1, 3 * size, lo=-0.5, hi=0.5, seed=3))
    bh = weight(g, "gru/bh", rand(1, 3 * size, lo=-0.5, hi=0.5, seed=4))
    h = gc.NewConstant(np.zeros((1, size), np.float32), name="gru/zero")
    for t in range(steps):
        xp = gc.MatMul(x[:, t], wx) + bx
        hp = gc.MatMul(h, wh) + bh
        rz = gc.Sigmoid(xp[:, : 2 * size] + hp[:, : 2 * size])
        r, z = rz[:, :size], rz[:, size:]
        cand = gc.Tanh(xp[:, 2 * size:] + r * hp[:, 2 * size:])
        h = cand + z * (h - cand)
    return x, [h]


def test_unrolled_lstm():
    x, outs = lstm_graph()
    model = gc.ToONNX(outs, None)
    ops = set(ops_of(model))
    assert ops == {"MatMul", "Add", "Sigmoid", "Tanh", "Mul", "Slice", "Squeeze", "Concat",
                   "Reshape"}
    assert len(model.graph.initializer) == 12
    round_trip(model, x, outs)


def test_unrolled_gru():
    x, outs = gru_graph()
    model = gc.ToONNX(outs, None)
    assert "Sub" in ops_of(model)
    round_trip(model, x, outs)


def test_golgi_losses_export_as_compositions():
    g = gc.NewGraph()
    z = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 4), gc.WithName("z"))
    y = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 4), gc.WithName("y"))
    outs = [G.CrossEntropy(z, y), G.MSE(z, y), G.RMS(z, y), G.BinaryCrossEntropy(z, y)]
    model = gc.ToONNX(outs, None)
    feeds = {z: rand(5, 4), y: rand(5, 4, lo=0.0, hi=1.0, seed=1)}
    want = gc_run(outs, feeds)
    got = ort_run(model, {n.name: v for n, v in feeds.items()})
    for w, o in zip(want, got, strict=True):
        np.testing.assert_allclose(o, w, **TOL)


def test_export_onnx_needs_a_built_model_or_its_input(tmp_path):
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 3), gc.WithName("x"))
    block = G.ComposeSeq(G.L(G.ConsFC(G.WithShape(2), G.WithName("h"))))
    with pytest.raises(gc.GraphError, match="not built on an input.*x=x"):
        G.export_onnx(block, tmp_path / "m.onnx")
    model = G.export_onnx(block, tmp_path / "m.onnx", x=x)
    assert (tmp_path / "m.onnx").exists() and [i.name for i in model.graph.input] == ["x"]
    with pytest.raises(TypeError, match="golgi model"):
        G.export_onnx(x, None)


def test_embedding_layernorm_avgpool_layers():
    gc.SetSeed(0)
    g = gc.NewGraph()
    ids = gc.NewMatrix(g, gc.Int64, gc.WithShape(None, 4), gc.WithName("ids"))
    net = G.ComposeSeq(
        ids,
        G.L(G.ConsEmbedding(G.WithClasses(10), G.WithShape(6), G.WithName("emb"))),
        G.L(G.ConsLayerNorm(G.WithName("ln"))),
        G.L(G.ConsReshape(G.ToShape(None, 1, 4, 6))),
        G.L(G.ConsAvgPool(G.WithKernelShape(2, 2), G.WithPad(1, 1), G.WithStride(1, 1))),
        G.L(G.ConsFlatten()),
        G.L(G.ConsFC(G.WithShape(3), G.WithName("out"), G.WithActivation(gc.Tanh))),
    )
    model = G.export_onnx(net, None)
    assert {"Gather", "ReduceMean", "AveragePool"} <= set(ops_of(model))
    check(net.out, {ids: np.array([[0, 3, 9, 3], [5, 5, 1, 0]])})


def test_golgi_trace_exports_as_an_identity():
    gc.SetSeed(0)
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 6), gc.WithName("x"))
    net = G.ComposeSeq(
        x,
        G.L(G.ConsFC(G.WithShape(4), G.WithName("h"), G.WithActivation(gc.Tanh))),
        G.Trace("after h"),
        G.L(G.ConsFC(G.WithShape(2), G.WithName("out"))),
    )
    model = G.export_onnx(net, None)
    assert "Identity" in ops_of(model)
    round_trip(model, x, [net.fwd(x)])
