"""Losses (values, stability, gradients) and the Accuracy metric."""

from __future__ import annotations

import numpy as np
import pytest

import golgi as G
import graphcore as gc


def _run(build, *arrays, wrt=0):
    """Value of ``build(*nodes)`` and its gradient w.r.t. input ``wrt`` (float64 graph)."""
    g = gc.NewGraph()
    nodes = [
        gc.NewMatrix(g, gc.Float64, gc.WithShape(None, a.shape[1]), gc.WithName(f"in{i}"))
        for i, a in enumerate(arrays)
    ]
    loss = build(*nodes)
    assert loss.shape == ()
    (d,) = gc.Grad(loss, nodes[wrt])
    for n, a in zip(nodes, arrays, strict=True):
        gc.Let(n, a)
    gc.NewTapeMachine(g).run_all()
    return float(loss.value), np.array(d.value)


def _softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_cross_entropy_value_gradient_and_stability():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((5, 4))
    y = np.eye(4)[rng.integers(0, 4, 5)]
    v, dz = _run(G.CrossEntropy, z, y)
    np.testing.assert_allclose(v, -np.mean(np.sum(y * np.log(_softmax(z)), 1)), rtol=1e-12)
    np.testing.assert_allclose(dz, (_softmax(z) - y) / 5, rtol=1e-10, atol=1e-14)
    g = gc.NewGraph()
    zn = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 4), gc.WithName("z"))
    labels = gc.NewVector(g, gc.Int64, gc.WithShape(None), gc.WithName("labels"))
    by_index = G.CrossEntropy(zn, labels)
    gc.Let(zn, z)
    gc.Let(labels, y.argmax(1))
    gc.NewTapeMachine(g).run_all()
    np.testing.assert_allclose(float(by_index.value), v, rtol=1e-12)
    big = np.array([[1e4, -1e4, 0.0, 0.0]])
    v, dz = _run(G.CrossEntropy, big, np.array([[0.0, 1.0, 0.0, 0.0]]))
    assert v == pytest.approx(2e4) and np.isfinite(dz).all()


def test_binary_cross_entropy_from_logits_and_from_probabilities():
    rng = np.random.default_rng(1)
    z = rng.standard_normal((6, 2)) * 3
    y = (rng.random((6, 2)) > 0.5).astype(float)
    p = 1 / (1 + np.exp(-z))
    want = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    v, dz = _run(G.BinaryCrossEntropy, z, y)
    np.testing.assert_allclose(v, want, rtol=1e-12)
    np.testing.assert_allclose(dz, (p - y) / y.size, rtol=1e-9, atol=1e-14)
    v2, dp = _run(lambda a, b: G.BinaryCrossEntropy(a, b, from_logits=False), p, y)
    np.testing.assert_allclose(v2, want, rtol=1e-9)
    np.testing.assert_allclose(dp, (p - y) / (p * (1 - p)) / y.size, rtol=1e-6)
    # saturated probabilities stay finite thanks to the clip
    v3, _ = _run(
        lambda a, b: G.BinaryCrossEntropy(a, b, from_logits=False),
        np.array([[0.0, 1.0]]),
        np.array([[1.0, 0.0]]),
    )
    assert np.isfinite(v3) and v3 == pytest.approx(-np.log(1e-7), rel=1e-6)
    # logits far out stay finite without any clip
    v4, dz4 = _run(G.BinaryCrossEntropy, np.array([[800.0, -800.0]]), np.array([[0.0, 1.0]]))
    assert v4 == pytest.approx(800.0) and np.isfinite(dz4).all()


def test_mse_and_a_real_rms():
    a = np.array([[3.0, 0.0], [0.0, 4.0]])
    b = np.zeros((2, 2))
    assert _run(G.MSE, a, b)[0] == pytest.approx(25.0 / 4)
    assert _run(G.RMS, a, b)[0] == pytest.approx(2.5)
    _, da = _run(G.MSE, a, b)
    np.testing.assert_allclose(da, 2 * a / 4)


def test_loss_shape_errors():
    g = gc.NewGraph()
    a = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("a"))
    b = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("b"))
    with pytest.raises(gc.ShapeError, match="MSE: predictions input 'a' \\(None, 3\\)"):
        G.MSE(a, b)
    with pytest.raises(gc.ShapeError, match="BinaryCrossEntropy"):
        G.BinaryCrossEntropy(a, b)
    with pytest.raises(TypeError, match="graph nodes"):
        G.MSE(a, np.zeros((1, 3)))


def test_accuracy_with_int_onehot_and_binary_labels():
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.0, 0.1, 0.9], [0.3, 0.3, 0.4]])
    labels = np.array([1, 0, 1, 2])
    assert G.Accuracy(scores, labels) == 0.75
    assert G.Accuracy(scores, np.eye(3)[labels]) == 0.75
    assert G.Accuracy(np.array([0.9, 0.2, 0.6]), np.array([1, 0, 0])) == pytest.approx(2 / 3)
    assert G.Accuracy(np.array([[2.0], [-1.0]]), np.array([[1], [1]]), threshold=0.0) == 0.5
    with pytest.raises(ValueError, match="labels of shape \\(3,\\)"):
        G.Accuracy(scores, np.array([1, 0, 1]))
