"""Pickling a model: architecture, weights and layer state; not its trainer or machines."""

from __future__ import annotations

import multiprocessing
import pickle

import numpy as np
import pytest

import golgi as G
import graphcore as gc
from graphcore.rng import get_rng


def residual_model():
    gc.SetSeed(0)
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 6), gc.WithName("x"))
    block = G.ComposeSeq(
        G.L(G.ConsFC(G.WithShape(8), G.WithName("b1"), G.WithActivation(gc.Tanh))),
        G.L(G.ConsFC(G.WithShape(8), G.WithName("b2"))),
    )
    return G.ComposeSeq(
        x,
        G.L(G.ConsFC(G.WithShape(8), G.WithName("in"), G.WithActivation(gc.Rectify))),
        G.Add(G.I, block),
        G.L(G.ConsBatchNorm(G.WithName("bn"))),
        G.L(G.ConsDropout(G.WithProbability(0.2), G.WithName("drop"))),
        G.L(G.ConsFC(G.WithShape(3), G.WithName("out"))),
    )


def data(n=64):
    rng = np.random.default_rng(0)
    labels = np.arange(n) % 3
    return (rng.normal(size=(n, 6)) + labels[:, None]).astype(np.float32), labels


def fitted():
    net = residual_model()
    x, labels = data()
    net.fit(x, labels, loss=G.CrossEntropy, solver="adam", epochs=3, batch_size=16, seed=0,
            progress=False)
    return net, x, labels


def test_a_fitted_model_round_trips_and_predicts_the_same():
    net, x, labels = fitted()
    rng_before = get_rng().bit_generator.state
    copy = pickle.loads(pickle.dumps(net))
    assert get_rng().bit_generator.state == rng_before  # unpickling leaves the seed stream
    np.testing.assert_allclose(copy.predict(x), net.predict(x), rtol=1e-6, atol=1e-6)
    assert [la.name for la in copy.layers] == [la.name for la in net.layers]
    for k, v in net.state().items():
        np.testing.assert_array_equal(copy.state()[k], v, err_msg=k)
    assert "_golgi_trainer" not in copy.__dict__  # no trainer, machines or caches
    assert len({id(la.graph) for la in copy.layers}) == 1 and copy.layers[0].graph is not \
        net.layers[0].graph
    # the copy trains on, like the original, with the same seed
    h1 = net.fit(x, labels, loss=G.CrossEntropy, solver="sgd", epochs=1, seed=1, progress=False)
    h2 = copy.fit(x, labels, loss=G.CrossEntropy, solver="sgd", epochs=1, seed=1, progress=False)
    assert h1["loss"] == pytest.approx(h2["loss"], rel=1e-5)


def test_a_layer_an_unbuilt_composition_and_the_talk_models_round_trip():
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
    fc = G.ConsFC(x, G.WithShape(2), G.WithName("h"))
    copy = pickle.loads(pickle.dumps(fc))
    np.testing.assert_array_equal(copy.params["W"].value, fc.params["W"].value)
    thunks = G.ComposeSeq(G.L(G.ConsFC(G.WithShape(2))))
    assert not pickle.loads(pickle.dumps(thunks)).built
    ae = G.models.Autoencoder()
    copy = pickle.loads(pickle.dumps(ae))
    z = np.random.default_rng(0).random((4, 784)).astype(np.float32)
    np.testing.assert_allclose(G.predict(copy, z), G.predict(ae, z), rtol=1e-6, atol=1e-6)
    assert pickle.loads(pickle.dumps(G.I)) is G.I


def _predict_in_child(model_and_x):
    model, x = model_and_x
    return G.predict(model, x)


def test_a_model_goes_to_another_process_and_predicts_the_same():
    net, x, _ = fitted()
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods()
                                      else "spawn")
    with ctx.Pool(1) as pool:
        got = pool.map(_predict_in_child, [(net, x[:10])])[0]
    np.testing.assert_allclose(got, net.predict(x[:10]), rtol=1e-6, atol=1e-6)


def test_a_graph_model_says_how_to_keep_it():
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
    m = G.Model(x, G.ConsFC(x, G.WithShape(2)).fwd(x))
    with pytest.raises(TypeError, match="golgi.save"):
        pickle.dumps(m)
