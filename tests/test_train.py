"""golgi.training: fit, predict, Trainer, History and callbacks, on tiny synthetic data."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

import golgi as G
import graphcore as gc
from golgi.training import (
    Callback,
    EarlyStopping,
    History,
    LearningRateScheduler,
    ModelCheckpoint,
    Trainer,
    fit,
    predict,
)


def blobs(n=250, d=6, classes=3, seed=0, dtype=np.float32):
    """Well separated classes: a linear classifier gets them all right."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    centers = rng.normal(0.0, 3.0, (classes, d))
    x = (centers[labels] + rng.normal(0.0, 0.5, (n, d))).astype(dtype)
    return x, np.eye(classes, dtype=dtype)[labels], labels


def mlp(d=6, classes=3, dtype=gc.Float32, batch=None, seed=0):
    gc.SetSeed(seed)
    g = gc.NewGraph()
    x = gc.NewMatrix(g, dtype, gc.WithShape(batch, d), gc.WithName("x"))
    net = G.ComposeSeq(
        x,
        G.L(G.ConsFC(G.WithShape(16), G.WithName("h"), G.WithActivation(gc.Rectify))),
        G.L(G.ConsFC(G.WithShape(classes), G.WithName("out"))),
    )
    return net


def weights(net):
    return {k: n.value.copy() for k, n in net.named_learnables().items()}


class Recorder(Callback):
    def __init__(self):
        self.events, self.sizes = [], []

    def on_train_begin(self, logs):
        self.events.append("train_begin")

    def on_epoch_begin(self, epoch, logs):
        self.events.append(f"epoch_begin {epoch}")

    def on_batch_end(self, batch, logs):
        self.sizes.append(logs["size"])

    def on_epoch_end(self, epoch, logs):
        self.events.append(f"epoch_end {epoch} {sorted(logs)}")

    def on_train_end(self, logs):
        self.events.append("train_end")


def adam(lr=0.01):
    return gc.NewAdamSolver(gc.WithLearnRate(lr))


def test_fit_learns_and_history_has_every_epoch():
    x, y, labels = blobs()
    net = mlp()
    h = fit(
        net,
        x,
        y,
        loss=G.CrossEntropy,
        solver=adam(),
        metrics=["accuracy"],
        epochs=8,
        batch_size=32,
        validation_data=(x[:60], y[:60]),
        seed=0,
        progress=False,
    )
    assert isinstance(h, History) and len(h) == 8 and h.epoch == list(range(8))
    assert h.keys() == ["loss", "accuracy", "val_loss", "val_accuracy"]
    assert all(len(h[k]) == 8 for k in h.keys()) and len(h.times) == 8
    assert h["loss"][-1] < 0.5 * h["loss"][0]
    assert h["accuracy"][-1] > 0.95 and h["val_accuracy"][-1] > 0.95
    assert not h.interrupted and not h.stopped_early
    # validation is the eval-mode loss over the validation set, each epoch
    ev = h.trainer.evaluate(x[:60], y[:60], batch_size=7)
    assert ev["loss"] == pytest.approx(h["val_loss"][-1], rel=1e-5)
    assert ev["accuracy"] == h["val_accuracy"][-1]
    pred = h.trainer.predict(x)
    assert np.mean(pred.argmax(1) == labels) > 0.95


def test_last_partial_batch_is_trained():
    x, y, _ = blobs(n=250)
    rec = Recorder()
    fit(
        mlp(),
        x,
        y,
        loss=G.CrossEntropy,
        solver=adam(),
        epochs=2,
        batch_size=100,
        callbacks=[rec],
        progress=False,
    )
    assert rec.sizes == [100, 100, 50, 100, 100, 50]
    assert rec.params["steps"] == 3 and rec.params["samples"] == 250
    assert rec.events[0] == "train_begin" and rec.events[-1] == "train_end"
    assert rec.events[1:3] == ["epoch_begin 0", "epoch_end 0 ['loss']"]


def test_loss_is_the_sample_mean_over_uneven_batches():
    # Zero learn rate: the epoch loss must equal the full-data loss, however it is batched.
    x, y, _ = blobs(n=250)
    net = mlp()
    sgd = gc.NewVanillaSolver(gc.WithLearnRate(1e-30))
    t = Trainer(net, G.CrossEntropy, sgd)
    h = t.fit(x, y, epochs=1, batch_size=100, progress=False)
    assert h["loss"][0] == pytest.approx(t.evaluate(x, y, batch_size=250)["loss"], rel=1e-5)


def test_predict_any_batch_size_matches_full_batch():
    x, _, _ = blobs(n=1000, dtype=np.float64)
    net = mlp(dtype=gc.Float64)
    full = predict(net, x, batch_size=1000)
    assert full.shape == (1000, 3) and full.dtype == np.float64
    for bs in (1, 7, 1000, 4096):
        np.testing.assert_allclose(predict(net, x, batch_size=bs), full, rtol=1e-12, atol=1e-12)
    assert predict(net, x[:0]).shape == (0, 3)


def test_predict_frees_a_fixed_batch_input():
    x, y, _ = blobs(n=250)
    net = mlp(batch=100)  # the talk's style: the input node is (100, 6)
    assert predict(net, x[:7]).shape == (7, 3)
    h = fit(net, x, y, loss=G.CrossEntropy, solver=adam(), epochs=1, batch_size=100, progress=False)
    assert len(h) == 1 and h.trainer.x.shape == (None, 6)


def test_unbuilt_model_is_built_from_the_data():
    x, y, _ = blobs()
    net = G.ComposeSeq(G.L(G.ConsFC(G.WithShape(3), G.WithName("only"))))
    h = fit(
        net,
        x,
        y,
        loss="cross_entropy",
        solver=adam(),
        epochs=2,
        batch_size=50,
        seed=1,
        progress=False,
    )
    assert len(h) == 2 and [n.shape for n in net.model()] == [(6, 3), (1, 3)]
    assert predict(net, x).shape == (250, 3)
    # or from an input shape given up front
    net2 = G.ComposeSeq(G.L(G.ConsFC(G.WithShape(3), G.WithName("other"))))
    t = Trainer(net2, G.CrossEntropy, adam(), input=(None, 6), dtype=gc.Float64)
    assert t.predict(x).dtype == np.float64


def test_fit_again_continues_with_the_same_graph():
    x, y, _ = blobs()
    net = mlp()
    h1 = fit(
        net,
        x,
        y,
        loss=G.CrossEntropy,
        solver=adam(),
        epochs=2,
        batch_size=50,
        seed=0,
        progress=False,
    )
    n_nodes = len(h1.trainer.x.graph)
    h2 = fit(
        net,
        x,
        y,
        loss=G.CrossEntropy,
        solver=adam(),
        epochs=2,
        batch_size=50,
        seed=0,
        progress=False,
    )
    assert h2.trainer is h1.trainer and len(h1.trainer.x.graph) == n_nodes
    assert h2["loss"][-1] < h1["loss"][0]


def run_seeded(seed):
    x, y, _ = blobs()
    net = mlp(seed=0)
    h = fit(
        net,
        x,
        y,
        loss=G.CrossEntropy,
        solver=adam(),
        metrics=["accuracy"],
        epochs=3,
        batch_size=32,
        seed=seed,
        progress=False,
    )
    return h, weights(net)


def test_seed_makes_runs_bit_identical():
    (h1, w1), (h2, w2), (_, w3) = run_seeded(5), run_seeded(5), run_seeded(6)
    assert h1.history == h2.history
    assert all(np.array_equal(w1[k], w2[k]) for k in w1)
    assert any(not np.array_equal(w1[k], w3[k]) for k in w1)


def test_seeded_dropout_is_reproducible_and_off_in_eval():
    pytest.importorskip("golgi.layers.dropout")
    from golgi.layers.dropout import ConsDropout

    def run():
        gc.SetSeed(0)
        g = gc.NewGraph()
        xn = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 6), gc.WithName("x"))
        net = G.ComposeSeq(
            xn,
            G.L(G.ConsFC(G.WithShape(16), G.WithActivation(gc.Rectify))),
            G.L(ConsDropout(G.WithProbability(0.5))),
            G.L(G.ConsFC(G.WithShape(3))),
        )
        x, y, _ = blobs()
        h = fit(
            net,
            x,
            y,
            loss=G.CrossEntropy,
            solver=adam(),
            epochs=2,
            batch_size=32,
            seed=3,
            progress=False,
        )
        return h, net, x

    (h1, n1, x), (h2, n2, _) = run(), run()
    assert h1.history == h2.history
    p = predict(n1, x)
    np.testing.assert_array_equal(p, predict(n1, x))  # eval mode: no random masks
    np.testing.assert_array_equal(p, predict(n2, x))


def test_model_checkpoint_writes_files_with_solver_state(tmp_path):
    x, y, _ = blobs()
    net = mlp()
    every = ModelCheckpoint(str(tmp_path / "ep{epoch:02d}.npz"), monitor="loss")
    best = ModelCheckpoint(str(tmp_path / "best.npz"), monitor="val_accuracy", save_best_only=True)
    solver = adam()
    h = fit(
        net,
        x,
        y,
        loss=G.CrossEntropy,
        solver=solver,
        metrics=["accuracy"],
        epochs=3,
        batch_size=50,
        validation_data=(x, y),
        callbacks=[every, best],
        progress=False,
    )
    assert sorted(os.listdir(tmp_path)) == ["best.npz", "ep01.npz", "ep02.npz", "ep03.npz"]
    assert best.best == max(h["val_accuracy"])
    # the last checkpoint restores the final weights and the solver, in a fresh model
    other, other_solver = mlp(seed=9), adam()
    meta = G.load(other, tmp_path / "ep03.npz", solver=other_solver)
    assert meta["extra"]["epoch"] == 3
    assert all(np.array_equal(weights(other)[k], v) for k, v in weights(net).items())
    assert other_solver.num_steps == solver.num_steps == 15


def test_checkpoint_on_a_missing_monitor_is_a_clear_error():
    x, y, _ = blobs()
    cb = ModelCheckpoint("unused.npz", monitor="val_loss", save_best_only=True)
    with pytest.raises(ValueError, match="val_loss.*validation_data"):
        fit(mlp(), x, y, loss=G.CrossEntropy, solver=adam(), callbacks=[cb], progress=False)


def test_early_stopping_stops_and_restores_the_best_weights():
    x, y, _ = blobs()
    net = mlp()
    snapshots = []

    class Snap(Callback):
        def on_epoch_end(self, epoch, logs):
            snapshots.append(weights(net))

    # "max" on a falling loss: epoch 0 is the best, no later epoch improves
    es = EarlyStopping(monitor="loss", mode="max", patience=2, restore_best=True)
    h = fit(
        net,
        x,
        y,
        loss=G.CrossEntropy,
        solver=adam(),
        epochs=20,
        batch_size=50,
        callbacks=[Snap(), es],
        progress=False,
    )
    assert len(h) == 3 and h.stopped_early and es.stopped_epoch == 2 and es.best_epoch == 0
    assert all(np.array_equal(weights(net)[k], v) for k, v in snapshots[0].items())


def test_early_stopping_waits_while_improving():
    x, y, _ = blobs()
    es = EarlyStopping(monitor="loss", patience=0)
    h = fit(
        mlp(),
        x,
        y,
        loss=G.CrossEntropy,
        solver=adam(0.003),
        epochs=4,
        batch_size=50,
        callbacks=[es],
        progress=False,
    )
    assert len(h) == 4 and es.stopped_epoch is None and not h.stopped_early


def test_learning_rate_scheduler_sets_the_solver_rate():
    x, y, _ = blobs()
    solver = adam(0.01)
    seen = []

    class Watch(Callback):
        def on_batch_end(self, batch, logs):
            seen.append(self.trainer.solver.learn_rate)

    sched = LearningRateScheduler(lambda epoch, lr: 0.01 * 0.5**epoch)
    h = fit(
        mlp(),
        x,
        y,
        loss=G.CrossEntropy,
        solver=solver,
        epochs=3,
        batch_size=125,
        callbacks=[sched, Watch()],
        progress=False,
    )
    assert h["lr"] == [0.01, 0.005, 0.0025] and solver.learn_rate == 0.0025
    assert seen == [0.01, 0.01, 0.005, 0.005, 0.0025, 0.0025]
    bad = LearningRateScheduler(lambda epoch, lr: -1.0)
    with pytest.raises(ValueError, match="LearningRateScheduler"):
        fit(mlp(), x, y, loss=G.CrossEntropy, solver=adam(), callbacks=[bad], progress=False)


def test_keyboard_interrupt_returns_the_history_so_far(tmp_path):
    x, y, _ = blobs()
    net = mlp()
    ckpt = tmp_path / "last.npz"

    class CtrlC(Callback):
        def on_batch_end(self, batch, logs):
            if self.epoch == 1 and batch == 1:
                raise KeyboardInterrupt

        def on_epoch_begin(self, epoch, logs):
            self.epoch = epoch

    h = fit(
        net,
        x,
        y,
        loss=G.CrossEntropy,
        solver=adam(),
        epochs=5,
        batch_size=50,
        callbacks=[ModelCheckpoint(str(ckpt), monitor="loss"), CtrlC()],
        progress=False,
    )
    assert h.interrupted and len(h) == 1
    assert all(not n.grad.any() for n in net.model())
    assert G.load(mlp(seed=3), ckpt)["extra"]["epoch"] == 1  # the last checkpoint is intact


def test_ctrl_c_signal_stops_after_the_current_batch():
    x, y, _ = blobs()
    rec = Recorder()

    class SendSigint(Callback):
        def on_batch_end(self, batch, logs):
            if batch == 2:
                os.kill(os.getpid(), signal.SIGINT)

    before = signal.getsignal(signal.SIGINT)
    h = fit(
        mlp(),
        x,
        y,
        loss=G.CrossEntropy,
        solver=adam(),
        epochs=5,
        batch_size=50,
        callbacks=[rec, SendSigint()],
        progress=False,
    )
    assert h.interrupted and len(h) == 0 and rec.sizes == [50, 50, 50]
    assert rec.events[-1] == "train_end"
    assert signal.getsignal(signal.SIGINT) is before


def test_bad_arguments_are_clear_errors():
    x, y, _ = blobs()
    net = mlp()
    kw = dict(loss=G.CrossEntropy, solver=adam(), progress=False)
    with pytest.raises(ValueError, match="250 samples but y has 10"):
        fit(net, x, y[:10], **kw)
    with pytest.raises(gc.ShapeError, match=r"samples of shape \(2, 3\)"):
        fit(net, x.reshape(250, 2, 3), y, **kw)
    with pytest.raises(ValueError, match="batch_size"):
        fit(net, x, y, batch_size=0, **kw)
    with pytest.raises(ValueError, match="epochs"):
        fit(net, x, y, epochs=-1, **kw)
    with pytest.raises(TypeError, match="loss must be a function"):
        fit(net, x, y, loss=3, solver=adam())
    with pytest.raises(ValueError, match="unknown metric"):
        fit(net, x, y, metrics=["recal"], **kw)  # "f1" is a metric now
    with pytest.raises(gc.ShapeError, match="scalar"):
        fit(net, x, y, loss=lambda out, t: out - t, solver=adam(), progress=False)
    with pytest.raises(TypeError, match="built already"):
        fit(net, x, y, input=(None, 6), **kw)
    with pytest.raises(gc.GraphError, match="not built"):
        predict(G.ComposeSeq(G.L(G.ConsFC(G.WithShape(2)))), x)


def test_progress_lines_and_bar(capsys):
    x, y, _ = blobs()
    fit(
        mlp(),
        x,
        y,
        loss=G.CrossEntropy,
        solver=adam(),
        metrics=["accuracy"],
        epochs=2,
        batch_size=50,
        progress="epoch",
    )
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[1].startswith("epoch 2/2 - ") and "accuracy: " in out[1]
    pytest.importorskip("tqdm")
    fit(mlp(), x, y, loss=G.CrossEntropy, solver=adam(), epochs=1, batch_size=50, progress="bar")
    cap = capsys.readouterr()
    assert cap.out.startswith("epoch 1/1") and "epoch 1/1" in cap.err  # bar on stderr


def test_history_plot():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    h = History()
    for e in range(3):
        h.record(e, {"loss": 1.0 / (e + 1), "accuracy": 0.5 + e / 10, "val_loss": 1.1}, 0.1)
    fig = h.plot()
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy"]
    assert "History(3 epochs" in repr(h)


@pytest.mark.parametrize("targets", ["one_hot", "labels"])
def test_training_accuracy_matches_the_metric(targets):
    # With a (nearly) zero learn rate the weights stay put, so the running training accuracy
    # over the epoch equals Accuracy on predictions for all samples.
    x, y, labels = blobs(n=250, seed=4)
    t = y if targets == "one_hot" else labels
    net = mlp(seed=2)
    sgd = gc.NewVanillaSolver(gc.WithLearnRate(1e-30))
    h = fit(
        net,
        x,
        t,
        loss=G.CrossEntropy,
        solver=sgd,
        metrics=["accuracy"],
        epochs=1,
        batch_size=64,
        validation_data=(x, t),
        progress=False,
    )
    expected = G.Accuracy(predict(net, x), labels)
    assert 0.0 < expected < 1.0
    assert h["accuracy"][0] == pytest.approx(expected, abs=1e-12)
    assert h["val_accuracy"][0] == pytest.approx(expected, abs=1e-12)


def test_fit_forwards_trainer_fit_options_and_shows_them():
    import inspect

    own = ["model", "x", "y", "loss", "solver", "input", "metrics"]
    forwarded = [
        name
        for name, p in inspect.signature(Trainer.fit).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    assert list(inspect.signature(fit).parameters) == own + forwarded
    assert "validation_batch_size" in forwarded
    x, y, _ = blobs()
    with pytest.raises(TypeError, match="unexpected keyword argument 'epoch'"):
        fit(mlp(), x, y, loss=G.CrossEntropy, solver=adam(), epoch=2)


def test_callback_list_calls_batch_hooks_only_where_wanted():
    from golgi.training import CallbackList

    class EpochOnly(Callback):
        reads_node_values = False

        def on_epoch_end(self, epoch, logs):
            pass

    class Batches(Callback):
        reads_node_values = False

        def __init__(self):
            self.batches = []

        def on_batch_end(self, batch, logs):
            self.batches.append(batch)

    quiet = CallbackList([EpochOnly()])
    assert not quiet.wants_batch_end and not quiet.reads_node_values and quiet.batch_end is None
    b = Batches()
    cbs = CallbackList([EpochOnly(), b], trainer=None, params={"epochs": 1})
    assert cbs.wants_batch_end and not cbs.reads_node_values and b.params == {"epochs": 1}
    cbs.batch_end(3, {})
    cbs.on_batch_end(4, {})
    assert b.batches == [3, 4]
    b2 = Batches()
    CallbackList([b, EpochOnly(), b2]).batch_end(5, {})
    assert b.batches == [3, 4, 5] and b2.batches == [5]
    assert CallbackList([Recorder()]).reads_node_values  # the safe default
    with pytest.raises(TypeError, match="Callback objects"):
        CallbackList([object()])


def test_a_failing_fit_calls_on_train_error_not_on_train_end():
    x, y, _ = blobs()
    rec = Recorder()
    errors = []

    class Boom(Callback):
        def on_epoch_end(self, epoch, logs):
            raise RuntimeError("boom")

    class Watch(Callback):
        def on_train_error(self, error):
            errors.append(error)

    with pytest.raises(RuntimeError, match="boom"):
        fit(mlp(), x, y, loss=G.CrossEntropy, solver=adam(), callbacks=[rec, Boom(), Watch()],
            progress=False)  # fmt: skip
    assert [str(e) for e in errors] == ["boom"] and "train_end" not in rec.events


def test_the_progress_bar_is_closed_when_fit_fails():
    pytest.importorskip("tqdm")
    from golgi.training import ProgressBar

    x, y, _ = blobs()
    bar = ProgressBar()

    class Boom(Callback):
        def on_batch_end(self, batch, logs):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fit(mlp(), x, y, loss=G.CrossEntropy, solver=adam(), callbacks=[bar, Boom()],
            progress=False)  # fmt: skip
    assert bar._bar is None


def test_golgi_train_is_an_alias_of_golgi_training():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # tests/test_library_manners.py
        import golgi.train
    import golgi.training

    assert golgi.train.__all__ == golgi.training.__all__
    for name in golgi.train.__all__:
        assert getattr(golgi.train, name) is getattr(golgi.training, name) is getattr(G, name)
