"""Batches: a last batch of one sample that batch norm cannot train on is found before any
weight changes; drop_last leaves it out."""

from __future__ import annotations

import numpy as np
import pytest

import golgi as G
import graphcore as gc
from golgi.training import fit


def bn_net(conv=False):
    gc.SetSeed(0)
    g = gc.NewGraph()
    if conv:
        x = gc.NewTensor(g, gc.Float64, 4, gc.WithShape(None, 2, 3, 3), gc.WithName("x"))
        terms = [G.L(G.ConsBatchNorm(G.WithName("bn"))), G.L(G.ConsFlatten()),
                 G.L(G.ConsFC(G.WithShape(2)))]
    else:
        x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 4), gc.WithName("x"))
        terms = [G.L(G.ConsFC(G.WithShape(8))), G.L(G.ConsBatchNorm(G.WithName("bn"))),
                 G.L(G.ConsFC(G.WithShape(2)))]
    return G.ComposeSeq(x, *terms)


def weights(net):
    return {k: n.value.copy() for k, n in net.named_learnables().items()}


def test_a_last_batch_of_one_sample_is_refused_before_any_weight_changes():
    net = bn_net()
    x, y = np.random.default_rng(0).normal(size=(33, 4)), np.zeros((33, 2))
    before = weights(net)
    state = {k: np.array(v) for k, v in net.state().items()}
    with pytest.raises(ValueError, match=r"last batch of each epoch holds 1 sample \(33 samples, "
                       r"batch_size=8\).*drop_last=True"):
        fit(net, x, y, loss="mse", solver="adam", batch_size=8, progress=False)
    assert all(np.array_equal(before[k], v) for k, v in weights(net).items())
    assert all(np.array_equal(state[k], v) for k, v in net.state().items())
    with pytest.raises(ValueError, match=r"the batch holds 1 sample"):
        fit(net, x[:1], y[:1], loss="mse", solver="adam", progress=False)


def test_drop_last_trains_on_full_batches_only():
    net = bn_net()
    x, y = np.random.default_rng(0).normal(size=(33, 4)), np.zeros((33, 2))

    class Sizes(G.Callback):
        def __init__(self):
            self.sizes = []

        def on_batch_end(self, batch, logs):
            self.sizes.append(logs["size"])

    cb = Sizes()
    h = fit(net, x, y, loss="mse", solver="adam", batch_size=8, drop_last=True, epochs=2,
            callbacks=[cb], progress=False, seed=0)
    assert cb.sizes == [8] * 8 and len(h) == 2
    with pytest.raises(ValueError, match="leaves no batch"):
        fit(net, x[:5], y[:5], loss="mse", solver="adam", batch_size=8, drop_last=True,
            progress=False)


def test_images_have_enough_values_per_channel_in_a_batch_of_one():
    net = bn_net(conv=True)
    x, y = np.random.default_rng(0).normal(size=(9, 2, 3, 3)), np.zeros((9, 2))
    h = fit(net, x, y, loss="mse", solver="adam", batch_size=4, progress=False, seed=0)
    assert np.isfinite(h["loss"][0])


def _autoencoder():
    gc.SetSeed(0)
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 6), gc.WithName("x"))
    return G.ComposeSeq(x, G.L(G.ConsFC(G.WithShape(3))), G.L(G.ConsFC(G.WithShape(6))))


def test_targets_that_are_the_inputs_train_like_a_copy_of_them():
    # the same array as inputs and targets is gathered once and copied: same training
    x = np.random.default_rng(1).normal(size=(40, 6))
    runs = []
    for y in (x, x.copy()):
        net = _autoencoder()
        h = fit(net, x, y, loss="mse", solver="adam", batch_size=8, epochs=2, seed=3,
                progress=False)
        runs.append((h.history["loss"], weights(net)))
    (loss_a, w_a), (loss_b, w_b) = runs
    assert loss_a == loss_b
    assert all(np.array_equal(w_a[k], w_b[k]) for k in w_b)
