"""Golgi's remaining terms: ConsSkip/WithConst, K, Trace, Redefine, by_name, FLOPs (and the
summary column), AsBatched, WithWB, NewFC and MakeFC."""

from __future__ import annotations

import logging

import numpy as np
import pytest

import golgi as G
import graphcore as gc
from golgi.summary import summarize
from tests.layer_harness import check_layer


def _x(shape, dt=gc.Float64, name="x"):
    g = gc.NewGraph()
    return g, gc.NewTensor(g, dt, len(shape), gc.WithShape(*shape), gc.WithName(name))


# ----- Skip and K ---------------------------------------------------------------------------


@pytest.mark.parametrize("const", [2.5, np.array([1.0, -2.0, 0.5])])
def test_skip_passes_the_shared_layer_test(tmp_path, const):
    layer = check_layer(
        G.ConsSkip,
        (4, 3),
        G.WithConst(const),
        expect_out_shape=(None, 3),
        n_learnables=0,
        learnable_shapes=[],
        tmp_path=tmp_path,
    )
    assert layer.flops() == 3


def test_skip_adds_a_node_and_refuses_what_does_not_fit():
    g, x = _x((None, 3))
    c = gc.NewMatrix(g, gc.Float64, gc.WithShape(1, 3), gc.WithName("c"))
    skip = G.ConsSkip(x, G.WithConst(c), G.WithName("s"))
    y = skip.fwd(x)
    gc.Let(c, [[1.0, 2.0, 3.0]])
    gc.Let(x, np.ones((2, 3)))
    gc.NewTapeMachine(g, gc.WithWatchlist(y)).run_all()
    assert y.value.tolist() == [[2.0, 3.0, 4.0]] * 2
    assert skip.config() == {"name": "s", "const": "node 'c' (1, 3)"}
    with pytest.raises(ValueError, match=r"ConsSkip.*give the constant to add with WithConst"):
        G.ConsSkip(x)
    with pytest.raises(gc.ShapeError, match="does not broadcast"):
        G.ConsSkip(x, G.WithConst(np.zeros(4)))
    with pytest.raises(TypeError, match="ConsFC does not take WithConst"):
        G.ConsFC(x, G.WithShape(2), G.WithConst(1.0))


def test_k_ignores_its_input_and_joins_add_it():
    g, x = _x((None, 2))
    net = G.ComposeSeq(x, G.Add(G.I, G.K(np.array([[10.0, 20.0]]))))
    gc.Let(x, np.array([[1.0, 2.0], [3.0, 4.0]]))
    gc.NewTapeMachine(g, gc.WithWatchlist(net.out)).run_all()
    assert net.out.value.tolist() == [[11.0, 22.0], [13.0, 24.0]]
    assert "(K)" in net.summary(print_fn=None)
    k = G.K(x)
    assert k.fwd(gc.NewConstant(1.0)) is x and net.model() == []


# ----- Trace --------------------------------------------------------------------------------


def test_trace_logs_each_run_and_passes_values_and_gradients_through(caplog):
    g, x = _x((None, 2))
    net = G.ComposeSeq(
        x,
        G.L(G.ConsFC(G.WithShape(2), G.WithInit(gc.Ones()), G.WithName("h"))),
        G.Trace("h out", grads=True),
    )
    cost = gc.Sum(net.out)
    (dw,) = gc.Grad(cost, net.by_name("h/W"))
    vm = gc.NewTapeMachine(g, gc.WithWatchlist(net.out, dw))
    gc.Let(x, np.array([[1.0, 2.0], [3.0, np.nan]]))
    with caplog.at_level(logging.INFO, logger="golgi.trace"):
        vm.run_all()
        vm.run_all()
    msgs = [r.getMessage() for r in caplog.records if r.name == "golgi.trace"]
    assert msgs == [
        "trace 'h out' run 1: (2, 2) float64 min 3 max 3 mean 3 std 0 (2 NaN/inf)",
        "trace \"h out'\" run 1: (2, 2) float64 min 1 max 1 mean 1 std 0",
        "trace 'h out' run 2: (2, 2) float64 min 3 max 3 mean 3 std 0 (2 NaN/inf)",
        "trace \"h out'\" run 2: (2, 2) float64 min 1 max 1 mean 1 std 0",
    ]
    assert net.out.value[0].tolist() == [3.0, 3.0]
    assert dw.value[0].tolist() == [4.0, 4.0] and np.isnan(dw.value[1]).all()
    assert "h out (Trace)" in net.summary(print_fn=None)
    caplog.clear()
    vm.run_all()  # below the level: no record
    assert not [r for r in caplog.records if r.name == "golgi.trace"]


def test_trace_with_its_own_logger_format_and_level():
    seen = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append((record.levelno, record.getMessage()))

    log = logging.getLogger("tests.trace")
    log.setLevel(logging.DEBUG)
    handler = Keep()
    log.addHandler(handler)
    try:
        g, x = _x((None, 3))
        y = G.Trace("x", fmt="{name}:{shape}:{max:g}", logger=log, level=logging.DEBUG).fwd(x)
        gc.Let(x, np.arange(6.0).reshape(2, 3))
        gc.NewLispMachine(g, gc.ExecuteFwdOnly()).run_all()  # the Lisp machine runs the same kernel
        assert seen == [(logging.DEBUG, "x:(2, 3):5")]
        assert y.value.tolist() == np.arange(6.0).reshape(2, 3).tolist()
    finally:
        log.removeHandler(handler)
    with pytest.raises(TypeError, match="non-empty name"):
        G.Trace("")


# ----- Redefine and by_name -----------------------------------------------------------------


def test_redefine_gives_a_delayed_layer_with_the_options_on_top():
    g, x = _x((None, 4))
    fc = G.ConsFC(x, G.WithShape(3), G.WithName("h"))
    t = G.Redefine(fc, G.WithActivation(gc.Tanh), G.WithName("h2"))
    assert t == G.L(
        G.ConsFC(G.WithShape(3), G.WithName("h"), G.WithActivation(gc.Tanh), G.WithName("h2"))
    )
    h2 = t.build(x)
    assert (h2.name, h2.size, h2.opts["activation"]) == ("h2", 3, gc.Tanh)
    assert h2.params["W"] is not fc.params["W"]  # a new layer; fc is unchanged
    with pytest.raises(gc.GraphError, match="already has a layer named 'h'"):
        G.Redefine(fc, G.WithBias(False)).build(x)
    lazy = G.Redefine(G.ConsFC(G.WithShape(2)), G.WithShape(5))
    assert lazy.fwd(x).shape == (None, 5)
    with pytest.raises(TypeError, match=r"ConsFC.* does not take WithKernelShape"):
        G.Redefine(fc, G.WithKernelShape(3))
    with pytest.raises(TypeError, match="Redefine takes a layer"):
        G.Redefine(G.I)


def test_by_name_finds_layers_and_learnables_in_nested_terms():
    g, x = _x((None, 4))
    net = G.ComposeSeq(
        x,
        G.Add(G.I, G.ComposeSeq(G.L(G.ConsFC(G.WithShape(4), G.WithName("inner"))))),
        G.L(G.ConsFC(G.WithShape(2), G.WithName("out"))),
    )
    assert net.by_name("inner") is net.layers[0]
    assert net.by_name("out/b") is net.layers[1].params["b"]
    with pytest.raises(KeyError, match=r"no layer or learnable named 'nope'.*\['inner', 'out'\]"):
        net.by_name("nope")
    with pytest.raises(KeyError, match="has no layers"):
        G.ComposeSeq(G.L(G.ConsFC(G.WithShape(2)))).by_name("x")


# ----- FLOPs --------------------------------------------------------------------------------


def test_flops_per_layer_in_total_and_in_the_summary():
    g, x = _x((None, 1, 8, 8), gc.Float32)
    net = G.ComposeSeq(
        x,
        G.L(G.ConsConv(G.WithShape(4), G.WithName("c"), G.WithActivation(gc.Rectify))),
        G.L(G.ConsMaxPool(G.WithName("p"))),
        G.L(G.ConsBatchNorm(G.WithName("bn"))),
        G.L(G.ConsFlatten(G.WithName("f"))),
        G.L(G.ConsDropout(G.WithName("d"))),
        G.L(G.ConsFC(G.WithShape(10), G.WithName("fc"))),
        G.L(G.ConsLayerNorm(G.WithName("ln"))),
    )
    want = {
        "c": 4 * 8 * 8 * (2 * 9 - 1 + 2),  # 3x3 windows, bias, ReLU
        "p": 4 * 4 * 4 * 4,
        "bn": 5 * 64,
        "f": 0,
        "d": 64,
        "fc": (2 * 64 - 1) * 10 + 10,
        "ln": 8 * 10,
    }
    assert {la.name: la.flops() for la in net.layers} == want
    assert net.flops() == sum(want.values()) and net.flops(batch=3) == 3 * net.flops()
    plain = net.summary(print_fn=None)
    assert "FLOPs" not in plain  # the column is asked for
    text = net.summary(print_fn=None, flops=True)
    lines = text.splitlines()
    assert lines[2].split()[-1] == "FLOPs"
    rows = {ln.split()[0]: int(ln.split()[-1].replace(",", "")) for ln in lines[4:11]}
    assert rows == want
    assert lines[-1] == f"FLOPs per sample: {sum(want.values()):,}"
    assert summarize(net, flops=True) == text


def test_join_flops_count_the_combining_and_an_unbuilt_model_still_summarises():
    g, x = _x((None, 3))
    res = G.ComposeSeq(x, G.Add(G.I, G.L(G.ConsFC(G.WithShape(3)))))
    assert res.flops() == (2 * 3 - 1) * 3 + 3 + 3
    lazy = G.ComposeSeq(G.L(G.ConsFC(G.WithShape(2))), G.L(G.ConsGRU(G.WithShape(2))))
    assert lazy.flops() == 0  # nothing built, nothing counted
    text = lazy.summary(input_shape=(None, 3), print_fn=None, flops=True)
    gru = (2 * 2 - 1) * 6 * 2 + 6 * 2 + 10 * 2
    assert f"FLOPs per sample: {(2 * 3 - 1) * 2 + 2 + gru}" in text
    assert not lazy.built


# ----- AsBatched, WithWB, NewFC, MakeFC -----------------------------------------------------


def test_as_batched_is_accepted_and_changes_nothing():
    g, x = _x((None, 3))
    a = G.ConsFC(x, G.WithShape(2), G.AsBatched(False))
    b = G.ConsFC(x, G.WithShape(2), G.AsBatched(True))
    assert [n.shape for n in a.model()] == [n.shape for n in b.model()] == [(3, 2), (1, 2)]
    assert repr(a) == f"FC(name='{a.name}', size=2, activation=None, bias=True)"
    _, img = _x((None, 1, 6, 6))
    G.ConsConv(img, G.WithShape(2), G.AsBatched(True))
    G.ConsReshape(img, G.ToShape(None, 36), G.AsBatched(True))
    G.ConsLSTM(x, G.WithShape(2), G.AsBatched(True))
    with pytest.raises(TypeError, match="ConsDropout does not take AsBatched"):
        G.ConsDropout(x, G.AsBatched(True))


def test_with_wb_arrays_nodes_and_no_bias():
    g, x = _x((None, 2))
    w, b = np.arange(6.0).reshape(2, 3), np.array([[1.0, 0.0, -1.0]])
    fc = G.ConsFC(x, G.WithWB(w, b), G.WithName("wb"))
    assert fc.size == 3 and np.array_equal(fc.params["W"].value, w)
    assert np.array_equal(fc.params["b"].value, b) and fc.config()["weights"] == "given"
    wn = gc.NewMatrix(g, gc.Float64, gc.WithShape(2, 3), gc.WithName("wn"), gc.WithValue(w))
    tied = G.ConsFC(x, G.WithWB(wn))
    assert tied.model() == [wn] and tied.config()["bias"] is False
    y = tied.fwd(x)
    gc.Let(x, np.array([[1.0, 1.0]]))
    gc.NewTapeMachine(g, gc.WithWatchlist(y)).run_all()
    assert y.value.tolist() == [[3.0, 5.0, 7.0]]
    with pytest.raises(ValueError, match="WithWeights or WithWB, not both"):
        G.ConsFC(x, G.WithWB(w), G.WithWeights(w))
    with pytest.raises(gc.ShapeError, match="W must have shape"):
        G.ConsFC(x, G.WithWB(np.zeros((3, 3))))
    with pytest.raises(TypeError, match="WithWB needs the weights"):
        G.WithWB(None)


def test_new_fc_builds_once_and_shares_its_weights():
    g, x = _x((None, 4))
    x2 = gc.NewMatrix(g, gc.Float64, gc.WithShape(7, 4), gc.WithName("x2"))
    fc = G.NewFC(G.WithShape(3), G.WithActivation(gc.Tanh), G.WithName("enc"))
    assert repr(fc) == "NewFC(WithShape(3), WithActivation(Tanh), WithName('enc'))"
    with pytest.raises(gc.GraphError, match="not built yet"):
        fc.model()
    a = G.ComposeSeq(x, fc, G.L(G.ConsFC(G.WithShape(1))))
    b = G.ComposeSeq(x2, fc)
    assert a.layers[0] is b.layers[0] is fc.layer
    assert fc.model() == a.model()[:2] and fc.flops() == (7 * 3 + 3 + 3)
    assert fc.name == "enc" and repr(fc).startswith("FC(name='enc'")  # acts as its layer
    assert "enc (FC)" in a.summary(print_fn=None)


def test_make_fc_uses_the_given_nodes():
    g, x = _x((None, 2))
    w = gc.NewMatrix(g, gc.Float64, gc.WithShape(2, 2), gc.WithName("w"), gc.WithInit(gc.Ones()))
    b = gc.NewMatrix(g, gc.Float64, gc.WithShape(1, 2), gc.WithName("b"), gc.WithInit(gc.Ones()))
    fc = G.MakeFC(w, b, gc.Rectify, "made", batched=False)
    y = fc.fwd(x)
    assert fc.model() == [w, b] and fc.layer.name == "made"
    gc.Let(x, np.array([[1.0, -3.0]]))
    gc.NewTapeMachine(g, gc.WithWatchlist(y)).run_all()
    assert y.value.tolist() == [[0.0, 0.0]]
