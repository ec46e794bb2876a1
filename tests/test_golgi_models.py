"""golgi.models: the talk's MLP and autoencoder, as the CLI, the bench and the examples use them."""

from __future__ import annotations

import numpy as np
import pytest

import golgi as G
import graphcore as gc
from golgi import models

from .test_golgi_compose import AE_SHAPES

MLP_SHAPES = [
    ("fc1/W", (784, 250)),
    ("fc1/b", (1, 250)),
    ("fc2/W", (250, 100)),
    ("fc2/b", (1, 100)),
    ("out/W", (100, 10)),
    ("out/b", (1, 10)),
]


def _activations(net):
    return [la.config()["activation"] for la in net.layers]


def test_the_talks_mlp_and_autoencoder():
    gc.SetSeed(0)
    mlp = models.MLP()
    assert [(n.name, n.shape) for n in mlp.model()] == MLP_SHAPES
    assert mlp.input.graph.name == "mlp" and mlp.input.name == "x"
    assert mlp.input.shape == (None, 784) and mlp.input.dtype == gc.Float32
    assert _activations(mlp) == ["Rectify", "Rectify", "None"]  # logits for CrossEntropy
    assert {la.config()["init"] for la in mlp.layers} == {"GlorotN(gain=1.0)"}
    ae = models.Autoencoder()
    assert [(n.name, n.shape) for n in ae.model()] == AE_SHAPES
    assert ae.input.graph.name == "autoencoder" and ae.out.shape == (None, 784)
    assert _activations(ae) == ["Rectify", "Rectify", "Rectify", "None"]
    assert _activations(models.Autoencoder(sigmoid=True))[-1] == "Sigmoid"
    assert _activations(models.MLP(softmax=True))[-1] == "SoftMax"


def test_the_seed_fixes_the_initial_weights():
    gc.SetSeed(3)
    a = models.MLP(sizes=(6, 5, 3))
    gc.SetSeed(3)
    b = models.MLP(sizes=(6, 5, 3))
    c = models.MLP(sizes=(6, 5, 3))
    assert all(np.array_equal(p.value, q.value) for p, q in zip(a.model(), b.model()))
    assert not np.array_equal(a.model()[0].value, c.model()[0].value)


def test_on_a_given_input_and_other_sizes():
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 6), gc.WithName("pixels"))
    ae = models.Autoencoder(x, sizes=(6, 4, 2, 4, 6), init=gc.Zeroes())
    assert ae.input is x and ae.out.dtype == gc.Float64
    assert [la.name for la in ae.layers] == ["e1", "e2", "d1", "d2"]
    assert not any(n.value.any() for n in ae.model())
    assert [la.name for la in models.Autoencoder(sizes=(4, 3)).layers] == ["d1"]
    y = G.predict(models.MLP(sizes=(4, 8, 8, 2)), np.ones((5, 4), np.float32))
    assert y.shape == (5, 2)


def test_bad_sizes_and_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="MLP: sizes must be"):
        models.MLP(sizes=(784,))
    with pytest.raises(ValueError, match="positive ints"):
        models.Autoencoder(sizes=(4, 0, 4))
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 5), gc.WithName("x"))
    with pytest.raises(gc.ShapeError, match=r"MLP: the input .* must be \(batch, 784\)"):
        models.MLP(x)
    with pytest.raises(TypeError, match="input node"):
        models.MLP(np.zeros((2, 784)))


def test_the_bench_golgi_runner_matches_the_graphcore_runner():
    from bench.common import Arch, epoch_order, init_weights
    from bench.graphcore_runner import GolgiFitRunner, GraphcoreRunner

    rng = np.random.default_rng(0)
    for arch in (
        Arch("tiny_mlp", (6, 5, 4, 3), "softmax_ce"),
        Arch("tiny_ae", (6, 5, 2, 5, 6), "sigmoid_bce"),
    ):
        x = rng.random((40, 6))
        if arch.head == "softmax_ce":
            y = np.eye(3)[rng.integers(0, 3, 40)]
        else:
            y = (rng.random((40, 6)) > 0.5).astype(np.float64)
        w = init_weights(arch, np.float64)
        ref, fit = GraphcoreRunner(arch, np.float64, w), GolgiFitRunner(arch, np.float64, w)
        for epoch in range(2):
            order = epoch_order(40, epoch)
            assert fit.train_epoch(x, y, order, 10) == pytest.approx(
                ref.train_epoch(x, y, order, 10), rel=1e-12
            )
        for p, q in zip(fit.weights(), ref.weights(), strict=True):
            np.testing.assert_allclose(p, q, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(fit.predict(x, 7), ref.predict(x, 7), rtol=1e-10, atol=1e-12)
