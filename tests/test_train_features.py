"""fit for real models: several inputs and outputs, loss dicts and weights, sample and class
weights, validation_split, verbose, solver names, evaluate, custom training steps."""

from __future__ import annotations

import csv

import numpy as np
import pytest

import golgi as G
import graphcore as gc
from golgi.training import (
    CSVLogger,
    NonFiniteLossError,
    ReduceLROnPlateau,
    Trainer,
    evaluate,
    fit,
    predict,
)


def two_heads(seed=0):
    """Inputs a (4) and b (3); a class head (3 classes) and a regression head (1)."""
    gc.SetSeed(seed)
    g = gc.NewGraph()
    a = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 4), gc.WithName("a"))
    b = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("b"))
    ha = G.ConsFC(a, G.WithShape(8), G.WithName("fa"), G.WithActivation(gc.Tanh)).fwd(a)
    hb = G.ConsFC(b, G.WithShape(8), G.WithName("fb"), G.WithActivation(gc.Tanh)).fwd(b)
    h = gc.Add(ha, hb)
    cls = G.ConsFC(h, G.WithShape(3), G.WithName("cls")).fwd(h)
    reg = G.ConsFC(h, G.WithShape(1), G.WithName("reg")).fwd(h)
    return G.Model(inputs={"a": a, "b": b}, outputs={"cls": cls, "reg": reg})


def two_head_data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    xa = rng.normal(size=(n, 4)) + labels[:, None]
    xb = rng.normal(size=(n, 3))
    return {"a": xa, "b": xb}, {"cls": labels, "reg": xb.sum(1, keepdims=True)}


def weights(net):
    return {k: n.value.copy() for k, n in net.named_learnables().items()}


def test_a_model_with_two_inputs_and_two_outputs_trains_from_dicts():
    m = two_heads()
    x, y = two_head_data()
    h = fit(m, x, y, loss={"cls": G.CrossEntropy, "reg": G.MSE},
            solver=gc.NewAdamSolver(gc.WithLearnRate(0.03)),
            metrics={"cls": ["accuracy"], "reg": ["mae"]}, epochs=30, batch_size=16,
            validation_split=0.25, seed=0, progress=False)
    assert h.keys() == ["loss", "cls_loss", "reg_loss", "cls_accuracy", "reg_mae",
                        "val_loss", "val_cls_loss", "val_reg_loss", "val_cls_accuracy",
                        "val_reg_mae"]
    assert h["cls_accuracy"][-1] > 0.7 and h["reg_loss"][-1] < h["reg_loss"][0] / 2
    # the total is the sum of the parts (weights 1)
    assert h["loss"][-1] == pytest.approx(h["cls_loss"][-1] + h["reg_loss"][-1], rel=1e-9)
    p = predict(m, x)
    assert set(p) == {"cls", "reg"} and p["cls"].shape == (96, 3) and p["reg"].shape == (96, 1)
    # lists in order work too, and predict answers in the form the outputs were given
    p2 = predict(m, [x["a"], x["b"]])
    np.testing.assert_allclose(p2["cls"], p["cls"], rtol=1e-12)
    ev = evaluate(m, x, y)
    assert {"loss", "cls_loss", "reg_loss", "cls_accuracy", "reg_mae"} <= set(ev)


def test_loss_weights_weigh_the_outputs_and_an_output_without_a_loss_is_not_trained():
    x, y = two_head_data()
    m = two_heads()
    t = Trainer(m, {"cls": G.CrossEntropy, "reg": G.MSE}, "sgd")
    h = t.fit(x, y, epochs=1, batch_size=96, loss_weights={"cls": 0.25, "reg": 2.0},
              shuffle=False, progress=False)
    assert h["loss"][0] == pytest.approx(0.25 * h["cls_loss"][0] + 2.0 * h["reg_loss"][0])
    ev = t.evaluate(x, y)  # the weights stay until the next fit changes them
    assert ev["loss"] == pytest.approx(0.25 * ev["cls_loss"] + 2.0 * ev["reg_loss"])
    with pytest.raises(ValueError, match="not an output with a loss"):
        t.fit(x, y, loss_weights={"box": 1.0}, progress=False)
    # only cls has a loss: reg's own layer never changes, and y needs no "reg"
    m2 = two_heads(seed=1)
    before = weights(m2)
    fit(m2, x, {"cls": y["cls"]}, loss={"cls": G.CrossEntropy}, solver="adam", epochs=2,
        progress=False, seed=0)
    after = weights(m2)
    assert np.array_equal(after["reg/W"], before["reg/W"])
    assert not np.array_equal(after["cls/W"], before["cls/W"])


def test_structured_data_errors_name_what_is_missing():
    m = two_heads()
    x, y = two_head_data()
    kw = dict(loss={"cls": G.CrossEntropy, "reg": G.MSE}, solver="adam", progress=False)
    with pytest.raises(ValueError, match="no entry for 'b'"):
        fit(m, {"a": x["a"]}, y, **kw)
    with pytest.raises(ValueError, match="does not name"):
        fit(m, {**x, "c": x["a"]}, y, **kw)
    with pytest.raises(TypeError, match="dict name -> array"):
        fit(m, x["a"], y, **kw)
    with pytest.raises(ValueError, match="no targets for output 'reg'"):
        fit(two_heads(), x, {"cls": y["cls"]}, **kw)
    with pytest.raises(ValueError, match="has no output 'box'"):
        fit(m, x, y, loss={"box": G.MSE}, solver="adam")


def linear(seed=0, dtype=gc.Float64):
    gc.SetSeed(seed)
    g = gc.NewGraph()
    x = gc.NewMatrix(g, dtype, gc.WithShape(None, 3), gc.WithName("x"))
    return G.ComposeSeq(x, G.L(G.ConsFC(G.WithShape(3), G.WithName("out"))))


def cls_data(n=30, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    return rng.normal(size=(n, 3)) + labels[:, None], labels


def one_sgd_step(x, y, lr, **kw):
    net = linear()
    fit(net, x, y, loss=G.CrossEntropy, solver=gc.NewVanillaSolver(gc.WithLearnRate(lr)),
        epochs=1, batch_size=len(x), shuffle=False, progress=False, **kw)
    return weights(net)


def test_sample_weight_scales_each_samples_loss_as_keras():
    x, labels = cls_data()
    keep = np.arange(30) < 12  # weight 1 for 12 samples, 0 for the rest
    got = one_sgd_step(x, labels, 0.5, sample_weight=keep.astype(float))
    # the mean over all 30 with zeros is the mean over 12 scaled by 12/30
    want = one_sgd_step(x[keep], labels[keep], 0.5 * 12 / 30)
    for k in got:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-10, atol=1e-12, err_msg=k)
    with pytest.raises(ValueError, match="one weight per sample"):
        one_sgd_step(x, labels, 0.5, sample_weight=np.ones(5))


def test_class_weight_is_the_sample_weight_of_each_class():
    x, labels = cls_data()
    cw = {0: 2.0, 2: 0.5}  # class 1 weighs 1
    a = one_sgd_step(x, labels, 0.3, class_weight=cw)
    b = one_sgd_step(x, labels, 0.3, sample_weight=np.array([cw.get(c, 1.0) for c in labels]))
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-12, err_msg=k)
    onehot = one_sgd_step(x, np.eye(3)[labels], 0.3, class_weight=cw)
    for k in a:
        np.testing.assert_allclose(onehot[k], a[k], rtol=1e-12, err_msg=k)


def test_validation_split_holds_out_the_last_samples():
    x, labels = cls_data(40)
    kw = dict(loss=G.CrossEntropy, solver="adam", epochs=3, batch_size=8, seed=2,
              progress=False, metrics=["accuracy"])
    h1 = fit(linear(), x, labels, validation_split=0.25, **kw)
    h2 = fit(linear(), x[:30], labels[:30], validation_data=(x[30:], labels[30:]), **kw)
    assert h1.history == h2.history and "val_accuracy" in h1
    with pytest.raises(ValueError, match="not both"):
        fit(linear(), x, labels, validation_split=0.2, validation_data=(x, labels), **kw)
    with pytest.raises(ValueError, match="validation_split"):
        fit(linear(), x, labels, validation_split=1.0, **kw)


def test_verbose_as_keras(capsys):
    x, labels = cls_data()
    kw = dict(loss=G.CrossEntropy, solver="adam", epochs=2, seed=0)
    fit(linear(), x, labels, verbose=0, **kw)
    assert capsys.readouterr().out == ""
    fit(linear(), x, labels, verbose=2, **kw)
    out = capsys.readouterr().out
    assert out.count("\n") == 2 and out.startswith("epoch 1/2")
    with pytest.raises(ValueError, match="verbose"):
        fit(linear(), x, labels, verbose=3, **kw)
    with pytest.raises(TypeError, match="verbose or progress"):
        fit(linear(), x, labels, verbose=1, progress=False, **kw)


def test_solver_names_and_their_state_across_fits():
    x, labels = cls_data()
    net = linear()
    h = fit(net, x, labels, loss=G.CrossEntropy, solver="adam", epochs=1, batch_size=10,
            progress=False)
    solver = h.trainer.solver
    assert type(solver).__name__ == "AdamSolver" and solver.num_steps == 3
    h2 = fit(net, x, labels, loss=G.CrossEntropy, solver="adam", epochs=1, batch_size=10,
             progress=False)
    assert h2.trainer.solver is solver and solver.num_steps == 6  # same name: same state
    h3 = fit(net, x, labels, loss=G.CrossEntropy, solver="rmsprop", progress=False)
    assert type(h3.trainer.solver).__name__ == "RMSPropSolver"
    with pytest.raises(ValueError, match="unknown solver 'adamm'"):
        fit(net, x, labels, loss=G.CrossEntropy, solver="adamm")
    with pytest.raises(TypeError, match="give a solver"):
        Trainer(linear(), G.CrossEntropy).fit(x, labels, progress=False)


def test_evaluate_and_the_model_methods_use_the_same_functions():
    x, labels = cls_data()
    net = linear()
    h = net.fit(x, labels, loss=G.CrossEntropy, solver="adam", metrics=["accuracy", "f1"],
                epochs=2, seed=0, progress=False)
    ev = net.evaluate(x, labels)  # fit's loss and metrics
    assert sorted(ev) == ["accuracy", "f1", "loss"]
    assert ev == G.evaluate(net, x, labels)
    assert ev["accuracy"] == pytest.approx(G.Accuracy(net.predict(x), labels))
    assert sorted(G.evaluate(net, x, labels, metrics=["auc"])) == ["auc", "loss"]
    assert h.trainer is net._golgi_trainer
    with pytest.raises(TypeError, match="give a loss"):
        G.evaluate(linear(), x, labels)


def test_epoch_metrics_are_computed_on_the_whole_epoch():
    x, labels = cls_data(60)
    net = linear()
    frozen = gc.NewVanillaSolver(gc.WithLearnRate(1e-300))  # the weights stay put
    h = fit(net, x, labels, loss=G.CrossEntropy, solver=frozen,
            metrics=["f1", "auc", "top2_accuracy"], epochs=1, batch_size=7, seed=0,
            progress=False)
    p = net.predict(x)
    assert h["f1"][0] == pytest.approx(G.F1()(p, labels), abs=1e-12)
    assert h["auc"][0] == pytest.approx(G.AUC(p, labels), abs=1e-12)
    assert h["top2_accuracy"][0] == pytest.approx(G.TopKAccuracy(2)(p, labels), abs=1e-12)


def test_reduce_lr_on_plateau_and_csv_logger(tmp_path):
    x, labels = cls_data()
    path = tmp_path / "log.csv"
    cb = ReduceLROnPlateau("val_loss", factor=0.5, patience=1, min_delta=100.0, min_lr=0.002)
    h = fit(linear(), x, labels, loss=G.CrossEntropy, solver=gc.NewVanillaSolver(
        gc.WithLearnRate(0.01)), epochs=6, validation_data=(x, labels),
        callbacks=[cb, CSVLogger(path)], seed=0, progress=False)
    assert h["lr"] == [0.01, 0.01, 0.01, 0.005, 0.005, 0.0025]
    rows = list(csv.DictReader(open(path)))
    assert [r["epoch"] for r in rows] == ["0", "1", "2", "3", "4", "5"]
    assert list(rows[0]) == ["epoch", "loss", "val_loss", "lr"]
    assert float(rows[3]["lr"]) == 0.005
    with pytest.raises(ValueError, match="not logged"):
        fit(linear(), x, labels, loss=G.CrossEntropy, solver="sgd",
            callbacks=[ReduceLROnPlateau("val_loss")], progress=False)


def test_predict_on_a_part_built_on_an_intermediate_node_says_to_pass_input():
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 4), gc.WithName("x"))
    enc = G.ComposeSeq(G.L(G.ConsFC(G.WithShape(2), G.WithName("e"))))
    dec = G.ComposeSeq(G.L(G.ConsFC(G.WithShape(4), G.WithName("d"))))
    ae = G.ComposeSeq(x, enc, dec)
    z = np.ones((3, 2), np.float32)
    with pytest.raises(gc.GraphError, match=r"pass input=\(None, 2\)"):
        predict(dec, z)
    out = predict(dec, z, input=(None, 2))
    w, b = dec.layers[0].params["W"].value, dec.layers[0].params["b"].value
    np.testing.assert_allclose(out, z @ w + b, rtol=1e-6)
    assert predict(ae, np.ones((2, 4), np.float32)).shape == (2, 4)


# ----- custom training steps ------------------------------------------------------------------


def test_a_custom_step_trains_a_loss_fit_cannot_express():
    """An L1 penalty on the weights, written by hand: fit batches, logs and stops."""
    net = linear()
    x, labels = cls_data(40)
    g = net.input.graph
    y = gc.NewVector(g, gc.Int64, gc.WithShape(None), gc.WithName("labels"))
    w = net.layers[0].params["W"]
    cost = G.CrossEntropy(net.out, y) + 0.01 * gc.Sum(gc.Abs(w))
    learnables = net.model()
    gc.Grad(cost, *learnables)
    vm = gc.NewTapeMachine(g.subgraph_roots(cost), gc.BindDualValues(*learnables))
    solver = gc.NewAdamSolver(gc.WithLearnRate(0.05))
    seen = []

    def step(batch):
        seen.append((batch.epoch, batch.index, batch.size, len(batch.rows)))
        gc.Let(net.input, batch.x)
        gc.Let(y, batch.y)
        vm.run_all()
        solver.step(learnables)
        return {"loss": float(cost.value), "l1": float(np.abs(w.value).sum())}

    h = fit(net, x, labels, train_step=step, epochs=3, batch_size=16, seed=0, progress=False)
    assert h.keys() == ["loss", "l1"] and len(h) == 3
    assert seen[:3] == [(0, 0, 16, 16), (0, 1, 16, 16), (0, 2, 8, 8)]
    assert h["loss"][-1] < h["loss"][0]


def test_a_custom_step_with_two_solvers_gan_style():
    """Two players, one step: each trains its own weights with its own solver."""
    gc.SetSeed(0)
    g = gc.NewGraph()
    z = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("z"))
    real = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("real"))
    gen = G.ComposeSeq(z, G.L(G.ConsFC(G.WithShape(2), G.WithName("gen"))))
    disc = G.ConsFC(real, G.WithShape(1), G.WithName("disc"))
    fake_score, real_score = disc.fwd(gen.out), disc.fwd(real)
    ones = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 1), gc.WithName("ones"))
    zeros = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 1), gc.WithName("zeros"))
    d_cost = gc.Add(G.BinaryCrossEntropy(real_score, ones), G.BinaryCrossEntropy(fake_score, zeros))
    g_cost = G.BinaryCrossEntropy(fake_score, ones)
    d_w, g_w = disc.model(), gen.model()
    gc.Grad(d_cost, *d_w)
    d_vm = gc.NewTapeMachine(g.subgraph_roots(d_cost), gc.BindDualValues(*d_w))
    gc.Grad(g_cost, *g_w)
    g_vm = gc.NewTapeMachine(g.subgraph_roots(g_cost), gc.BindDualValues(*g_w))
    d_opt = gc.NewAdamSolver(gc.WithLearnRate(0.01))
    g_opt = gc.NewAdamSolver(gc.WithLearnRate(0.01))

    def step(batch):
        gc.Let(real, batch.x)
        gc.Let(z, batch.rng.normal(size=(batch.size, 2)))
        gc.Let(ones, np.ones((batch.size, 1)))
        gc.Let(zeros, np.zeros((batch.size, 1)))
        d_vm.run_all()
        d_opt.step(d_w)
        g_vm.run_all()
        g_opt.step(g_w)
        return {"d_loss": float(d_cost.value), "g_loss": float(g_cost.value)}

    data = np.random.default_rng(0).normal(3.0, 0.5, size=(64, 2))
    h1 = fit(gen, data, train_step=step, epochs=2, batch_size=16, seed=4, progress=False)
    assert h1.keys() == ["d_loss", "g_loss"] and np.isfinite(h1["d_loss"]).all()


def test_a_custom_step_that_returns_nan_stops_like_fit():
    net = linear()
    x, labels = cls_data()
    before = weights(net)

    def step(batch):
        net.layers[0].params["W"].value[:] += 1.0  # it changes the weights, then goes bad
        return {"loss": float("nan") if batch.index == 1 else 1.0}

    with pytest.raises(NonFiniteLossError, match="training loss became nan at epoch 1, batch 2"):
        fit(net, x, labels, train_step=step, batch_size=10, progress=False)
    assert all(np.array_equal(before[k], v) for k, v in weights(net).items())
    with pytest.raises(TypeError, match="dict name -> value"):
        fit(net, x, labels, train_step=lambda b: 1.0, progress=False)


def test_a_trainer_subclass_overrides_the_step_keras_style():
    class Doubled(Trainer):
        def train_step(self, batch):
            logs = super().train_step(batch)
            return {**logs, "twice": 2 * logs["loss"]}

    x, labels = cls_data()
    h = Doubled(linear(), G.CrossEntropy, "sgd").fit(x, labels, epochs=2, batch_size=10,
                                                      validation_data=(x, labels), seed=0,
                                                      progress=False)
    assert h.keys() == ["loss", "twice", "val_loss"]
    assert h["twice"] == pytest.approx([2 * v for v in h["loss"]])


def test_evaluate_with_another_loss_leaves_fits_trainer_alone():
    x, labels = cls_data()
    net = linear()
    h = fit(net, x, labels, loss=G.CrossEntropy, solver="adam", progress=False, seed=0)
    n_nodes = len(net.input.graph)
    onehot = np.eye(3)[labels]
    a = G.evaluate(net, x, onehot, loss=G.MSE)
    b = G.evaluate(net, x, onehot, loss=G.MSE)  # the aside trainer is reused: no new nodes
    assert a == b and len(net.input.graph) > n_nodes
    n_nodes = len(net.input.graph)
    G.evaluate(net, x, onehot, loss=G.MSE)
    assert len(net.input.graph) == n_nodes
    assert net._golgi_trainer is h.trainer
    h2 = fit(net, x, labels, loss=G.CrossEntropy, solver="adam", progress=False, seed=0)
    assert h2.trainer is h.trainer and h.trainer.solver.num_steps == 2


def test_metrics_for_every_output_skip_an_output_without_targets():
    x, y = two_head_data()
    h = fit(two_heads(), x, {"cls": y["cls"]}, loss={"cls": G.CrossEntropy}, solver="adam",
            metrics=["accuracy"], progress=False, seed=0)
    assert h.keys() == ["loss", "cls_accuracy"]
    with pytest.raises(ValueError, match="for output 'reg', which has no loss"):
        fit(two_heads(), x, {"cls": y["cls"]}, loss={"cls": G.CrossEntropy}, solver="adam",
            metrics={"reg": ["mae"]}, progress=False)
