"""Random nodes (drawn afresh each run, reproducible under SetSeed, shaped like another node),
OneHotVector, and per-thread seeds."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import graphcore as gc


def _draws(seed, runs=3):
    gc.SetSeed(seed)
    g = gc.NewGraph()
    n = gc.GaussianRandomNode(g, gc.Float64, 0.0, 1.0, 4)
    vm = gc.NewTapeMachine(g)
    out = []
    for _ in range(runs):
        vm.run_all()
        out.append(n.value.copy())
    return out


def test_fresh_draws_each_run_and_the_same_sequence_under_one_seed():
    a, b = _draws(5), _draws(5)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], a[1])
    assert not np.array_equal(_draws(6)[0], a[0])


@pytest.mark.parametrize("machine", [gc.NewTapeMachine, gc.NewLispMachine])
@pytest.mark.parametrize("batch", [1, 100])
def test_like_follows_the_batch_size_bound_at_run_time(machine, batch):
    g = gc.NewGraph()
    h = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 3), gc.WithName("h"))
    u = gc.UniformRandomNode(g, gc.Float32, 2.0, 3.0, like=h)
    s = gc.Sum(h + u)
    assert u.shape == (None, 3) and u.dtype == gc.Float32
    gc.Let(h, np.zeros((batch, 3), np.float32))
    vm = machine(g, gc.ExecuteFwdOnly()) if machine is gc.NewLispMachine else machine(g)
    vm.run_all()
    assert u.value.shape == (batch, 3) and u.value.dtype == np.float32
    assert ((u.value >= 2.0) & (u.value < 3.0)).all()
    assert 2.0 * 3 * batch <= float(s.value) <= 3.0 * 3 * batch


def test_distributions_have_their_moments():
    gc.SetSeed(0)
    g = gc.NewGraph()
    n = gc.GaussianRandomNode(g, gc.Float64, 3.0, 0.5, 20000)
    u = gc.UniformRandomNode(g, gc.Float64, -1.0, 1.0, 20000)
    b = gc.BinomialRandomNode(g, gc.Float64, 10, 0.3, 20000)
    gc.NewTapeMachine(g).run_all()
    assert abs(n.value.mean() - 3.0) < 0.02 and abs(n.value.std() - 0.5) < 0.02
    assert abs(u.value.mean()) < 0.03 and u.value.min() >= -1.0 and u.value.max() < 1.0
    assert abs(b.value.mean() - 3.0) < 0.05 and b.value.min() >= 0 and b.value.max() <= 10
    assert np.array_equal(b.value, np.round(b.value))


def test_reparameterised_noise_has_no_gradient_but_what_it_shapes_does():
    g = gc.NewGraph()
    mu = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("mu"))
    w = gc.NewMatrix(g, gc.Float64, gc.WithShape(2, 2), gc.WithName("w"),
                     gc.WithValue([[1.0, 2.0], [3.0, 4.0]]))
    h = mu @ w
    eps = gc.GaussianRandomNode(g, gc.Float64, 0.0, 1.0, like=h)
    cost = gc.Sum(gc.Square(h + eps))
    gc.Grad(cost, w)
    vm = gc.NewTapeMachine(g, gc.BindDualValues(w), gc.WithWatchlist(eps))
    X = np.array([[1.0, 0.0], [0.5, -1.0], [2.0, 1.0]])
    gc.Let(mu, X)
    vm.run_all()
    want = X.T @ (2 * (X @ w.value + eps.value))
    np.testing.assert_allclose(w.grad, want, rtol=1e-12)


@pytest.mark.parametrize(
    "make, err, words",
    [
        (lambda g: gc.GaussianRandomNode(g, gc.Float64, 0, 1, None, 3), gc.ShapeError, "like=node"),
        (lambda g: gc.GaussianRandomNode(g, gc.Int64, 0, 1, 3), gc.DtypeError, "Float32 or"),
        (lambda g: gc.UniformRandomNode(g, gc.Float64, 1, 0, 3), ValueError, "below high"),
        (lambda g: gc.BinomialRandomNode(g, gc.Float64, 2, 1.5, 3), ValueError, r"\[0, 1\]"),
        (lambda g: gc.BinomialRandomNode(g, gc.Float64, -1, 0.5, 3), ValueError, "trials"),
        (lambda g: gc.GaussianRandomNode(g, gc.Float64, 0, -1, 3), ValueError, "std"),
        (lambda g: gc.GaussianRandomNode("g", gc.Float64, 0, 1, 3), TypeError, "Graph"),
        (
            lambda g: gc.GaussianRandomNode(g, gc.Float64, 0, 1, 2,
                                            like=gc.NewScalar(g, gc.Float64)),
            gc.ShapeError,
            "not both",
        ),
    ],
)
def test_bad_random_nodes_are_refused(make, err, words):
    with pytest.raises(err, match=words):
        make(gc.NewGraph())


def test_one_hot_vector():
    v = gc.OneHotVector(1, 3)
    assert v.is_constant and v.dtype == gc.Float64 and v.value.tolist() == [0.0, 1.0, 0.0]
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        gc.OneHotVector(3, 3)
    with pytest.raises(ValueError, match="classes"):
        gc.OneHotVector(0, 0)


def test_seeded_building_in_two_threads_does_not_mix_streams():
    def build(seed, out, barrier):
        gc.SetSeed(seed)
        draws = []
        for _ in range(50):
            barrier.wait()  # interleave the two threads' draws step by step
            draws.append(gc.GlorotN(1.0)(gc.Float64, (4, 3)))
        out[seed] = draws

    out: dict[int, list[np.ndarray]] = {}
    barrier = threading.Barrier(2)
    threads = [threading.Thread(target=build, args=(s, out, barrier)) for s in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for seed in (1, 2):
        gc.SetSeed(seed)
        alone = [gc.GlorotN(1.0)(gc.Float64, (4, 3)) for _ in range(50)]
        for a, b in zip(alone, out[seed]):
            np.testing.assert_array_equal(a, b)


def test_set_seed_refuses_what_is_not_a_seed():
    with pytest.raises(TypeError, match="int or None"):
        gc.SetSeed(1.5)
