"""golgi's image layers: ConsConv, ConsMaxPool, ConsAvgPool, ConsDropout, ConsBatchNorm."""

from __future__ import annotations

import numpy as np
import pytest

import golgi as G
import graphcore as gc
from tests.layer_harness import check_layer


def _input(shape, dt=gc.Float64, name="x"):
    g = gc.NewGraph()
    return g, gc.NewTensor(g, dt, len(shape), gc.WithShape(*shape), gc.WithName(name))


def _run(g, out, x, data, *opts):
    gc.Let(x, data)
    vm = gc.NewTapeMachine(g, gc.WithWatchlist(out), *opts)
    vm.run_all()
    return vm


# ----- the shared layer checks -------------------------------------------------------------------


@pytest.mark.parametrize(
    "opts,out_shape,shapes",
    [
        ((G.WithShape(4),), (None, 4, 6, 6), [(4, 2, 3, 3), (1, 4, 1, 1)]),
        (
            (G.WithSize(3, 2), G.WithKernelShape(2, 3), G.WithPad(0), G.WithStride(2, 1),
             G.WithDilation(1, 2), G.WithActivation(gc.Tanh), G.WithBias(False)),
            (None, 3, 3, 2),
            [(3, 2, 2, 3)],
        ),
    ],
)  # fmt: skip
def test_conv_shared(tmp_path, opts, out_shape, shapes):
    check_layer(
        G.ConsConv,
        (3, 2, 6, 6),
        *opts,
        expect_out_shape=out_shape,
        n_learnables=len(shapes),
        learnable_shapes=shapes,
        tmp_path=tmp_path,
    )


@pytest.mark.parametrize("cons", [G.ConsMaxPool, G.ConsAvgPool])
def test_pool_shared(tmp_path, cons):
    check_layer(cons, (2, 3, 7, 6), expect_out_shape=(None, 3, 3, 3), n_learnables=0,
                learnable_shapes=[], tmp_path=tmp_path)  # fmt: skip
    check_layer(cons, (2, 3, 7, 6), G.WithKernelShape(3, 3), G.WithPad(1), G.WithStride(1),
                expect_out_shape=(None, 3, 7, 6), n_learnables=0, learnable_shapes=[])  # fmt: skip


def test_dropout_shared_in_eval_mode(tmp_path):
    check_layer(G.ConsDropout, (4, 5), G.WithProbability(0.3), expect_out_shape=(None, 5),
                n_learnables=0, learnable_shapes=[], tmp_path=tmp_path,
                machine_opts=(gc.EvalMode(),))  # fmt: skip


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 2, 2)])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_batchnorm_shared(tmp_path, shape, mode):
    check_layer(
        G.ConsBatchNorm,
        shape,
        G.WithMomentum(0.2),
        expect_out_shape=(None, *shape[1:]),
        n_learnables=2,
        learnable_shapes=[(3,), (3,)],
        tmp_path=tmp_path,
        machine_opts=(gc.EvalMode(),) if mode == "eval" else (),
        rowwise=mode == "eval",  # training statistics depend on the whole batch
    )


# ----- Conv ---------------------------------------------------------------------------------------


def test_conv_defaults_and_repr():
    gc.SetSeed(3)
    g, x = _input((None, 3, 10, 10))
    conv = G.ConsConv(x, G.WithShape(8), G.WithName("c1"))
    w, b = conv.model()
    assert (w.name, w.shape, b.shape) == ("c1/W", (8, 3, 3, 3), (1, 8, 1, 1))
    assert conv.fwd(x).shape == (None, 8, 10, 10)
    std = np.sqrt(2.0 / ((8 + 3) * 9))  # GlorotN(1.0)
    assert 0.7 * std < w.value.std() < 1.3 * std
    assert not b.value.any()
    assert repr(conv) == (
        "Conv(name='c1', out_channels=8, kernel=(3, 3), pad=(1, 1), stride=(1, 1), "
        "dilation=(1, 1), activation=None, bias=True)"
    )


def test_conv_rejects_non_image_inputs_with_the_layer_name():
    g, x = _input((None, 784))
    with pytest.raises(gc.ShapeError, match=r"ConsConv \(layer 'c1'\).*2-D.*NCHW"):
        G.ConsConv(x, G.WithShape(8), G.WithName("c1"))
    g, img = _input((None, 3, 8, 8))
    with pytest.raises(gc.ShapeError, match=r"WithSize\(8, 1\).*1 input channels.*has 3"):
        G.ConsConv(img, G.WithSize(8, 1))
    with pytest.raises(gc.ShapeError, match="smaller than the kernel"):
        G.ConsConv(img, G.WithShape(2), G.WithKernelShape(11, 11))
    with pytest.raises(ValueError, match="WithShape"):
        G.ConsConv(img)
    with pytest.raises(TypeError, match="ConsConv does not take WithEps"):
        G.ConsConv(img, G.WithShape(2), G.WithEps(1e-3))


def test_conv_weight_sharing_and_given_weights():
    g, x = _input((None, 2, 5, 5))
    w = np.arange(3 * 2 * 5 * 5, dtype=float).reshape(3, 2, 5, 5)
    conv = G.ConsConv(x, G.WithWeights(w), G.WithPad(2), G.WithBias(False))
    assert conv.kernel_shape == (5, 5) and conv.model()[0].shape == (3, 2, 5, 5)
    x2 = gc.NewTensor(g, gc.Float64, 4, gc.WithShape(1, 2, 5, 5), gc.WithName("x2"))
    y, y2 = conv.fwd(x), conv.fwd(x2)
    assert y is not y2 and y2.children[1] is y.children[1]  # one W node
    data = np.random.default_rng(0).standard_normal((1, 2, 5, 5))
    gc.Let(x2, data)
    _run(g, y, x, data, gc.WithWatchlist(y2))
    np.testing.assert_array_equal(y.value, y2.value)


# ----- Dropout --------------------------------------------------------------------------------


def test_dropout_layer_eval_identity_and_training_scaling():
    g, x = _input((None, 1000))
    drop = G.ConsDropout(x)  # default p = 0.5
    assert drop.config() == {"name": drop.name, "probability": 0.5}
    y = drop.fwd(x)
    data = np.ones((20, 1000))
    vm = _run(g, y, x, data, gc.EvalMode())
    np.testing.assert_array_equal(y.value, data)
    vm.training = True
    vm.run_all()
    assert set(np.unique(y.value)) == {0.0, 2.0}
    assert abs(float(y.value.mean()) - 1.0) < 0.05  # 20000 draws: ~7 standard deviations
    g2, x2 = _input((None, 4))
    assert G.ConsDropout(x2, G.WithProbability(0)).fwd(x2) is x2


# ----- BatchNorm ------------------------------------------------------------------------------


def _bn_graph():
    g, x = _input((None, 2, 3, 3))
    bn = G.ConsBatchNorm(x, G.WithName("bn"), G.WithMomentum(0.5))
    return g, x, bn, bn.fwd(x)


def test_batchnorm_running_stats_train_eval_and_new_machines(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.standard_normal((8, 2, 3, 3)) * 2.0 + 3.0
    g, x, bn, y = _bn_graph()
    rm, rv = bn.running_mean, bn.running_var
    _run(g, y, x, data)  # training: batch statistics, running ones updated
    mean, var = data.mean(axis=(0, 2, 3)), data.var(axis=(0, 2, 3), ddof=1)
    np.testing.assert_allclose(rm, 0.5 * mean)
    np.testing.assert_allclose(rv, 0.5 + 0.5 * var)
    np.testing.assert_allclose(y.value.mean(axis=(0, 2, 3)), 0.0, atol=1e-12)
    saved = (rm.copy(), rv.copy())
    # a new machine, in eval mode: uses the running statistics, resets nothing
    _run(g, y, x, data, gc.EvalMode())
    assert np.array_equal(rm, saved[0]) and np.array_equal(rv, saved[1])
    expect = (data - rm[None, :, None, None]) / np.sqrt(rv[None, :, None, None] + 1e-5)
    np.testing.assert_allclose(y.value, expect)
    # building another training machine does not reset them either
    gc.NewTapeMachine(g)
    assert np.array_equal(rm, saved[0])
    # saved and loaded (in place, so the built nodes keep reading them)
    path = tmp_path / "bn.npz"
    G.save(bn, path)
    _run(g, y, x, data + 5.0)
    assert not np.array_equal(rm, saved[0])
    G.load(bn, path)
    assert bn.running_mean is rm and np.array_equal(rm, saved[0])
    _run(g, y, x, data, gc.EvalMode())
    np.testing.assert_allclose(y.value, expect)


def test_batchnorm_layer_errors_and_state_keys():
    g, x = _input((None, 2, 3, 3))
    bn = G.ConsBatchNorm(x, G.WithName("b1"), G.WithEps(1e-3))
    assert sorted(bn.state()) == ["b1/running_mean", "b1/running_var"]
    assert repr(bn) == "BatchNorm(name='b1', eps=0.001, momentum=0.1)"
    g, v = _input((None, 2, 3))
    with pytest.raises(gc.ShapeError, match=r"ConsBatchNorm.*3-D"):
        G.ConsBatchNorm(v)


# ----- a small convnet trains ---------------------------------------------------------------


def _prototype_images(protos, n, rng):
    """Noisy copies of ten random binary 12x12 class prototypes, with one-hot labels."""
    labels = rng.integers(0, 10, size=n)
    imgs = protos[labels] + 0.3 * rng.standard_normal((n, 1, 12, 12))
    return imgs.astype(np.float32), np.eye(10, dtype=np.float32)[labels]


def test_small_convnet_learns_prototype_images():
    gc.SetSeed(0)
    rng = np.random.default_rng(0)
    protos = rng.random((10, 1, 12, 12)) > 0.7
    xs, ys = _prototype_images(protos, 512, rng)
    g = gc.NewGraph()
    x = gc.NewTensor(g, gc.Float32, 4, gc.WithShape(None, 1, 12, 12), gc.WithName("x"))
    y = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 10), gc.WithName("y"))
    net = G.ComposeSeq(
        x,
        G.L(G.ConsConv(G.WithShape(8), G.WithActivation(gc.Rectify))),
        G.L(G.ConsBatchNorm()),
        G.L(G.ConsMaxPool()),
        G.L(G.ConsDropout(G.WithProbability(0.25))),
        G.L(G.ConsFlatten()),
        G.L(G.ConsFC(G.WithShape(10))),
    )
    logits = net.fwd(x)
    # cross-entropy from graphcore primitives (Log of SoftMax is rewritten to LogSoftMax)
    loss = gc.Neg(gc.Mean(gc.Sum(gc.HadamardProd(y, gc.Log(gc.SoftMax(logits))), 1)))
    learnables = net.model()
    gc.Grad(loss, *learnables)
    vm = gc.NewTapeMachine(g, gc.BindDualValues(*learnables), gc.WithWatchlist(logits))
    solver = gc.NewAdamSolver(gc.WithLearnRate(0.01))
    losses = []
    for _epoch in range(3):
        for i in range(0, 512, 64):
            gc.Let(x, xs[i : i + 64])
            gc.Let(y, ys[i : i + 64])
            vm.run_all()
            solver.step(gc.NodesToValueGrads(learnables))
            losses.append(float(loss.value))
    assert np.mean(losses[-4:]) < 0.1 * np.mean(losses[:4]), losses
    # evaluation: dropout off, running statistics on, another batch size, same machine
    vm.training = False
    test_x, test_y = _prototype_images(protos, 100, rng)  # unseen samples
    gc.Let(x, test_x)
    gc.Let(y, test_y)
    vm.run_all()
    assert float(loss.value) < 0.1 * losses[0]
    assert np.mean(logits.value.argmax(1) == test_y.argmax(1)) > 0.9
