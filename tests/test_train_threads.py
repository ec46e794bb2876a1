"""Threads: predict and evaluate from many threads on one model, and while fit trains it."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import golgi as G
import graphcore as gc
from golgi.training import Trainer, fit, predict


def bn_model(seed=0):
    """An MLP with batch norm and dropout: layer state that every thread must share."""
    gc.SetSeed(seed)
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 6), gc.WithName("x"))
    return G.ComposeSeq(
        x,
        G.L(G.ConsFC(G.WithShape(32), G.WithName("h"), G.WithActivation(gc.Rectify))),
        G.L(G.ConsBatchNorm(G.WithName("bn"))),
        G.L(G.ConsDropout(G.WithProbability(0.3))),
        G.L(G.ConsFC(G.WithShape(3), G.WithName("out"))),
    )


def data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    x = rng.normal(size=(n, 6)) + labels[:, None]
    return x, np.eye(3)[labels]


def run_threads(n_threads, work):
    start = threading.Barrier(n_threads)
    errors: list[BaseException] = []

    def body(k):
        start.wait()
        try:
            work(k)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=body, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, f"{len(errors)} threads failed, first: {errors[0]!r}"


def test_eight_threads_predicting_agree_with_one_thread():
    x, y = data()
    net = bn_model()
    fit(net, x, y, loss=G.CrossEntropy, solver="adam", epochs=2, seed=0, progress=False)
    sizes = [1, 7, 33, 64, 300]
    want = {s: predict(net, x[:s], batch_size=16) for s in sizes}
    got: dict[int, list[tuple[int, np.ndarray]]] = {}

    def work(k):
        rng = np.random.default_rng(k)
        out = got[k] = []
        for _ in range(100):
            s = sizes[rng.integers(len(sizes))]
            out.append((s, predict(net, x[:s], batch_size=16)))

    run_threads(8, work)
    assert sum(len(v) for v in got.values()) == 800
    for results in got.values():
        for s, p in results:
            np.testing.assert_allclose(p, want[s], rtol=1e-12, atol=1e-12)


def test_threads_evaluate_and_predict_through_one_trainer():
    x, y = data()
    net = bn_model()
    t = Trainer(net, G.CrossEntropy, gc.NewAdamSolver(), metrics=["accuracy"])
    t.fit(x, y, epochs=1, seed=0, progress=False)
    want_ev, want_p = t.evaluate(x, y, batch_size=50), t.predict(x[:40])
    results = []

    def work(k):
        for _ in range(20):
            results.append((t.evaluate(x, y, batch_size=50), t.predict(x[:40])))

    run_threads(6, work)
    for ev, p in results:
        assert ev.keys() == want_ev.keys()
        for k in ev:
            assert ev[k] == pytest.approx(want_ev[k], rel=1e-12, abs=1e-12)
        np.testing.assert_allclose(p, want_p, rtol=1e-12, atol=1e-12)
    ev = G.evaluate(net, x, y, loss=G.CrossEntropy, metrics=["accuracy"])
    assert ev["accuracy"] == pytest.approx(want_ev["accuracy"])


def train(predicting: bool):
    x, y = data(seed=1)
    net = bn_model(seed=3)
    done, warm = threading.Event(), threading.Event()
    errors: list[BaseException] = []
    calls = [0]

    def predictor():
        try:
            while not done.is_set():
                for s in (1, 5, 50):
                    p = predict(net, x[:s])
                    assert p.shape == (s, 3)
                    G.evaluate(net, x[:20], y[:20], loss=G.CrossEntropy)
                    calls[0] += 1
                    warm.set()
        except BaseException as e:  # noqa: BLE001 - reported by the test
            errors.append(e)
            warm.set()

    thread = threading.Thread(target=predictor)
    if predicting:
        thread.start()
        assert warm.wait(60)  # it predicts before fit starts, and goes on while fit runs
    try:
        h = fit(net, x, y, loss=G.CrossEntropy, solver="adam", epochs=4, batch_size=16,
                validation_data=(x[:60], y[:60]), seed=7, progress=False)
    finally:
        done.set()
        if predicting:
            thread.join()
    assert not errors, f"the predicting thread failed: {errors[0]!r}"
    if predicting:
        assert calls[0] > 0
    state = {k: np.array(v) for k, v in net.state().items() if not k.endswith("/rng")}
    weights = {k: n.value.copy() for k, n in net.named_learnables().items()}
    return h, weights, state


def test_predicting_while_fit_trains_leaves_the_training_as_without_it():
    h1, w1, s1 = train(predicting=False)
    h2, w2, s2 = train(predicting=True)
    for k in w1:
        np.testing.assert_allclose(w2[k], w1[k], rtol=1e-9, atol=1e-12, err_msg=k)
    for k in s1:
        np.testing.assert_allclose(s2[k], s1[k], rtol=1e-9, atol=1e-12, err_msg=k)
    for k in h1.history:
        np.testing.assert_allclose(h2[k], h1[k], rtol=1e-9, err_msg=k)


def test_a_model_whose_weights_are_rebound_is_followed_by_the_thread_copies():
    x, _ = data()
    net = bn_model()
    before = predict(net, x[:4])
    w = net.named_learnables()["out/b"]
    gc.Let(w, np.full((1, 3), 5.0), copy=False)  # a new array, not an in-place change
    after = predict(net, x[:4])
    np.testing.assert_allclose(after - before, 5.0 - 0.0, rtol=1e-12)


def test_a_second_fit_of_one_model_in_another_thread_is_refused():
    x, y = data()
    net = bn_model()
    started, release = threading.Event(), threading.Event()

    class Hold(G.Callback):
        def on_epoch_end(self, epoch, logs):
            started.set()
            release.wait(30)

    errors = []

    def first():
        fit(net, x, y, loss=G.CrossEntropy, solver="adam", epochs=1, callbacks=[Hold()],
            progress=False)

    t = threading.Thread(target=first)
    t.start()
    assert started.wait(30)
    try:
        fit(net, x, y, loss=G.CrossEntropy, solver="adam", progress=False)
    except gc.MachineBusyError as e:
        errors.append(e)
    finally:
        release.set()
        t.join()
    assert errors and "another fit" in str(errors[0])
    fit(net, x, y, loss=G.CrossEntropy, solver="adam", progress=False)  # free again


def test_a_deep_copy_trains_on_its_own():
    import copy

    x, y = data()
    net = bn_model()
    twin = copy.deepcopy(net)
    np.testing.assert_allclose(predict(twin, x), predict(net, x), rtol=1e-12)
    fit(twin, x, y, loss=G.CrossEntropy, solver="adam", progress=False, seed=0)
    assert not np.allclose(predict(twin, x), predict(net, x))


def test_building_in_one_thread_leaves_other_threads_graphs_alone():
    # a building_in block (the Lisp machine's, a random node's) is per thread: nodes another
    # thread builds meanwhile stay in their operands' graph
    from graphcore.extend import building_in

    g1, g2 = gc.NewGraph("one"), gc.NewGraph("two")
    entered, built = threading.Event(), threading.Event()

    def hold():
        with building_in(g1):
            entered.set()
            built.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    try:
        assert entered.wait(10)
        x = gc.NewMatrix(g2, gc.Float64, gc.WithShape(2, 2), gc.WithName("x"))
        assert gc.Neg(x).graph is g2
    finally:
        built.set()
        t.join()
