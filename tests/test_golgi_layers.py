"""Each golgi layer passes the shared layer test (tests/layer_harness.py), plus its own details."""

from __future__ import annotations

import functools

import numpy as np
import pytest

import golgi as G
import graphcore as gc
from tests.layer_harness import check_layer


def _input(shape, dt=gc.Float64, name="x"):
    g = gc.NewGraph()
    return g, gc.NewTensor(g, dt, len(shape), gc.WithShape(*shape), gc.WithName(name))


# ----- FC ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "act", [None, gc.Tanh, gc.Sigmoid, gc.SoftMax, functools.partial(gc.LeakyRelu, alpha=0.2)]
)
def test_fc_shared(tmp_path, act):
    check_layer(
        G.ConsFC,
        (4, 5),
        G.WithShape(3),
        G.WithActivation(act),
        expect_out_shape=(None, 3),
        n_learnables=2,
        learnable_shapes=[(5, 3), (1, 3)],
        tmp_path=tmp_path,
    )


def test_fc_no_bias_shared(tmp_path):
    layer = check_layer(
        G.ConsFC,
        (4, 5),
        G.WithSize(2),
        G.WithBias(False),
        expect_out_shape=(None, 2),
        n_learnables=1,
        learnable_shapes=[(5, 2)],
        tmp_path=tmp_path,
    )
    assert [n.name for n in layer.model()] == [f"{layer.name}/W"]


def test_fc_defaults_glorot_u_weights_zero_bias_relu_value():
    gc.SetSeed(1)
    g, x = _input((None, 30))
    fc = G.ConsFC(x, G.WithShape(20), G.WithActivation(gc.Rectify), G.WithName("h"))
    w, b = fc.model()
    assert (w.name, b.name, b.shape) == ("h/W", "h/b", (1, 20))
    limit = np.sqrt(6.0 / (30 + 20))
    assert np.abs(w.value).max() <= limit and np.abs(w.value).max() > 0.8 * limit
    assert not b.value.any()
    out = fc.fwd(x)
    data = np.random.default_rng(0).standard_normal((3, 30))
    gc.Let(x, data)
    gc.NewTapeMachine(g).run_all()
    np.testing.assert_allclose(out.value, np.maximum(data @ w.value, 0.0), rtol=1e-12)


def test_fc_with_init_and_with_weights():
    gc.SetSeed(2)
    g, x = _input((None, 3))
    a = G.ConsFC(x, G.WithShape(2), G.WithInit(gc.Ones()))
    assert np.array_equal(a.model()[0].value, np.ones((3, 2)))
    assert a.config()["init"].startswith("Ones")
    w = np.arange(6.0).reshape(3, 2)
    b = G.ConsFC(x, G.WithWeights(w))  # size taken from the weights
    assert b.size == 2 and np.array_equal(b.model()[0].value, w)
    # a node is shared, not copied: tied weights appear once in a composition's model
    c = G.ConsFC(x, G.WithWeights(b.model()[0]), G.WithBias(False))
    assert c.model()[0] is b.model()[0]
    assert [n.name for n in G.Add(b, c).model()] == [f"{b.name}/W", f"{b.name}/b"]


def test_fc_bias_broadcasts_over_any_batch():
    g, x = _input((None, 2))
    fc = G.ConsFC(x, G.WithShape(3), G.WithInit(gc.Zeroes()))
    gc.Let(fc.model()[1], np.array([[1.0, 2.0, 3.0]]))
    out = fc.fwd(x)
    vm = gc.NewTapeMachine(g)
    for n in (1, 5):
        gc.Let(x, np.zeros((n, 2)))
        vm.run_all()
        assert np.array_equal(out.value, np.tile([1.0, 2.0, 3.0], (n, 1)))


# ----- Reshape / Flatten ------------------------------------------------------------------------


def test_reshape_shared(tmp_path):
    check_layer(
        G.ConsReshape,
        (4, 6),
        G.ToShape(None, 2, 3),
        expect_out_shape=(None, 2, 3),
        n_learnables=0,
        learnable_shapes=[],
        tmp_path=tmp_path,
    )


def test_reshape_infers_minus_one():
    check_layer(
        G.ConsReshape,
        (2, 2, 6),
        G.ToShape(None, -1),
        expect_out_shape=(None, 12),
        n_learnables=0,
        learnable_shapes=[],
    )


def test_flatten_shared(tmp_path):
    check_layer(
        G.ConsFlatten,
        (4, 2, 3, 2),
        expect_out_shape=(None, 12),
        n_learnables=0,
        learnable_shapes=[],
        tmp_path=tmp_path,
    )


def test_flatten_then_fc_on_images_keeps_batch_free():
    g, img = _input((None, 1, 4, 4), gc.Float32, "img")
    net = G.ComposeSeq(img, G.L(G.ConsFlatten()), G.L(G.ConsFC, G.WithShape(3)))
    assert net.out.shape == (None, 3)
    gc.Let(img, np.ones((5, 1, 4, 4), np.float32))
    gc.NewTapeMachine(g).run_all()
    assert net.out.value.shape == (5, 3)


# ----- Embedding --------------------------------------------------------------------------------


def test_embedding_onehot_shared(tmp_path):
    check_layer(
        G.ConsEmbedding,
        (4, 6),
        G.WithOneHotInput(),
        G.WithShape(3),
        expect_out_shape=(None, 3),
        n_learnables=1,
        learnable_shapes=[(6, 3)],
        tmp_path=tmp_path,
    )


@pytest.mark.parametrize("shape,out", [((4,), (None, 3)), ((4, 5), (None, 5, 3))])
def test_embedding_by_index_shared(tmp_path, shape, out):
    check_layer(
        G.ConsEmbedding,
        shape,
        G.WithClasses(7),
        G.WithShape(3),
        expect_out_shape=out,
        n_learnables=1,
        learnable_shapes=[(7, 3)],
        int_input=(0, 7),
        dtype_opts=lambda dt: [G.Of(dt)],
        tmp_path=tmp_path,
    )


def test_embedding_index_equals_onehot_matmul():
    gc.SetSeed(3)
    g = gc.NewGraph()
    idx = gc.NewVector(g, gc.Int64, gc.WithShape(None), gc.WithName("idx"))
    emb = G.ConsEmbedding(idx, G.WithClasses(5), G.WithShape(2), G.Of(gc.Float64))
    assert emb.model()[0].dtype == gc.Float64
    out = emb.fwd(idx)
    labels = np.array([4, 0, 4, 2])
    gc.Let(idx, labels)
    gc.NewTapeMachine(g).run_all()
    np.testing.assert_array_equal(out.value, np.eye(5)[labels] @ emb.model()[0].value)


def test_embedding_defaults_float32_and_needs_classes():
    g, idx = _input((None,), gc.Int64, "idx")
    assert G.ConsEmbedding(idx, G.WithClasses(4), G.WithShape(2)).model()[0].dtype == gc.Float32
    with pytest.raises(ValueError, match="WithClasses"):
        G.ConsEmbedding(idx, G.WithShape(2))


# ----- LayerNorm --------------------------------------------------------------------------------


def test_layernorm_shared(tmp_path):
    check_layer(
        G.ConsLayerNorm,
        (4, 6),
        expect_out_shape=(None, 6),
        n_learnables=2,
        learnable_shapes=[(6,), (6,)],
        tmp_path=tmp_path,
    )


def test_layernorm_3d_input_and_eps():
    check_layer(
        G.ConsLayerNorm,
        (2, 3, 5),
        G.WithEps(1e-3),
        expect_out_shape=(None, 3, 5),
        n_learnables=2,
        learnable_shapes=[(5,), (5,)],
    )


def test_layernorm_normalises_each_row():
    g, x = _input((None, 8))
    ln = G.ConsLayerNorm(x, G.WithName("ln"))
    gc.Let(ln.model()[0], np.full(8, 2.0))
    gc.Let(ln.model()[1], np.full(8, 0.5))
    out = ln.fwd(x)
    data = np.random.default_rng(4).standard_normal((3, 8)) * 5 + 3
    gc.Let(x, data)
    gc.NewTapeMachine(g).run_all()
    mu, var = data.mean(-1, keepdims=True), data.var(-1, keepdims=True)
    np.testing.assert_allclose(out.value, 2.0 * (data - mu) / np.sqrt(var + 1e-5) + 0.5, rtol=1e-12)
