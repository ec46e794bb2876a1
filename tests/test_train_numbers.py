"""Bad numbers: data that overflows or holds NaN/Inf is refused; a loss that becomes
non-finite stops fit with the last finite epoch's model and solver state."""

from __future__ import annotations

import numpy as np
import pytest

import golgi as G
import graphcore as gc
from golgi.training import NonFiniteLossError, TerminateOnNaN, fit, predict


def net32(seed=0, bn=False):
    gc.SetSeed(seed)
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 4), gc.WithName("x"))
    terms = [G.L(G.ConsFC(G.WithShape(8), G.WithName("h"), G.WithActivation(gc.Rectify)))]
    if bn:
        terms.append(G.L(G.ConsBatchNorm(G.WithName("bn"))))
    terms.append(G.L(G.ConsFC(G.WithShape(2), G.WithName("out"))))
    return G.ComposeSeq(x, *terms)


def xy(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)), rng.normal(size=(n, 2))


def weights(net):
    return {k: n.value.copy() for k, n in net.named_learnables().items()}


def test_float64_data_that_overflows_float32_is_refused_naming_row_and_column():
    x, y = xy()
    x[7, 2] = 1e39
    with pytest.raises(gc.DtypeError, match=r"fit: x: row 7, column 2 holds 1e\+39.*Float32"):
        fit(net32(), x, y, loss="mse", solver="adam", progress=False)
    with pytest.raises(gc.DtypeError, match=r"predict: x: row 7, column 2 holds 1e\+39"):
        predict(net32(), x)
    x, y = xy()
    y[3, 1] = -1e300
    with pytest.raises(gc.DtypeError, match=r"fit: y: row 3, column 1"):
        fit(net32(), x, y, loss="mse", solver="adam", progress=False)


@pytest.mark.parametrize("where", ["x", "y", "validation x", "validation y"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_in_the_data_is_refused_before_training(where, bad):
    x, y = xy()
    xv, yv = xy(10, seed=1)
    arr = {"x": x, "y": y, "validation x": xv, "validation y": yv}[where]
    arr[5, 1] = bad
    net = net32()
    before = weights(net)
    with pytest.raises(ValueError, match=rf"fit: {where} holds {bad} at row 5, column 1"):
        fit(net, x, y, loss="mse", solver="adam", validation_data=(xv, yv), progress=False)
    assert all(np.array_equal(before[k], v) for k, v in weights(net).items())


def test_check_data_false_trains_on_bad_data_for_the_brave():
    x, y = xy()
    x[0, 0] = np.nan
    with pytest.raises(NonFiniteLossError):
        fit(net32(), x, y, loss="mse", solver="adam", check_data=False, progress=False)


def test_a_diverging_fit_stops_with_the_last_finite_epoch_and_solver_state():
    x, y = xy(64)
    net = net32(bn=True)
    solver = gc.NewAdamSolver(gc.WithLearnRate(0.01))
    fit(net, x, y, loss="mse", solver=solver, epochs=2, batch_size=16, seed=0, progress=False)
    good_w = weights(net)
    good_state = {k: np.array(v) for k, v in net.state().items()}
    good_solver = solver.state_dict()
    solver.learn_rate = 1e30  # diverges within the next epoch
    with pytest.raises(NonFiniteLossError, match=r"became (nan|inf) at epoch 3, batch \d") as e:
        fit(net, x, y, loss="mse", solver=solver, epochs=5, initial_epoch=2, batch_size=16,
            seed=0, progress=False)
    assert e.value.epoch == 2 and "learn rate (it is 1e+30)" in str(e.value)
    assert e.value.history is not None and len(e.value.history) == 0
    for k, v in weights(net).items():
        np.testing.assert_array_equal(v, good_w[k], err_msg=k)
    for k, v in net.state().items():
        np.testing.assert_array_equal(v, good_state[k], err_msg=k)
    now = solver.state_dict()
    for k, v in good_solver.items():
        if k != "learn_rate":
            np.testing.assert_array_equal(now[k], v, err_msg=k)
    # and it trains on from there once the rate is sane
    solver.learn_rate = 0.01
    h = fit(net, x, y, loss="mse", solver=solver, epochs=3, initial_epoch=2, batch_size=16,
            seed=0, progress=False)
    assert np.isfinite(h["loss"]).all()


def test_divergence_in_the_first_epoch_restores_a_fresh_solver():
    x, y = xy(64)
    net = net32()
    start = weights(net)
    solver = gc.NewAdamSolver(gc.WithLearnRate(1e30))
    with pytest.raises(NonFiniteLossError, match="back as they were where this fit started"):
        fit(net, x, y, loss="mse", solver=solver, epochs=3, batch_size=16, progress=False)
    assert solver.num_steps == 0
    assert all(np.array_equal(start[k], v) for k, v in weights(net).items())
    assert all(not np.any(v) for k, v in solver.state_dict().items() if "/" in k)


def test_weights_that_go_bad_on_the_last_batch_are_caught_at_the_epoch_end():
    # one batch per epoch: the loss it reports is finite, the step that follows is not
    x, y = xy(16)
    net = net32()
    start = weights(net)
    with pytest.raises(NonFiniteLossError, match="weights stopped being finite"):
        fit(net, x, y, loss="mse", solver=gc.NewVanillaSolver(gc.WithLearnRate(1e300)),
            epochs=1, batch_size=16, progress=False)
    assert all(np.array_equal(start[k], v) for k, v in weights(net).items())


def test_terminate_on_nan_returns_the_history_instead():
    x, y = xy(64)
    net = net32()
    fit(net, x, y, loss="mse", solver="sgd", epochs=1, seed=0, progress=False)
    good = weights(net)
    cb = TerminateOnNaN()
    h = fit(net, x, y, loss="mse", solver=gc.NewVanillaSolver(gc.WithLearnRate(1e30)),
            epochs=4, callbacks=[cb], progress=False)
    assert h.diverged and len(h) == 0 and "diverged" in repr(h)
    assert all(np.array_equal(good[k], v) for k, v in weights(net).items())


def test_terminate_on_nan_also_stops_on_a_non_finite_validation_value():
    class Spoil(G.Callback):
        def on_epoch_end(self, epoch, logs):
            logs["val_loss"] = float("nan")

    x, y = xy(32)
    cb = TerminateOnNaN()
    h = fit(net32(), x, y, loss="mse", solver="sgd", epochs=5, validation_data=(x, y),
            callbacks=[Spoil(), cb], progress=False)
    assert len(h) == 1 and cb.stopped_epoch == 0 and not h.diverged
