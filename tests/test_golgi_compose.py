"""Combinators: the talk's autoencoder, weight sharing, joins, names, repr and summary."""

from __future__ import annotations

import numpy as np
import pytest

import golgi as G
import graphcore as gc
from graphcore.rng import get_rng


def _talk_autoencoder(golgi_form: bool):
    """The talk's autoencoder, as written (``golgi_form`` picks ``L(ConsFC, opts...)``)."""
    bs = 100
    g = gc.NewGraph()
    dt = gc.Float32
    x = gc.NewMatrix(g, dt, gc.WithShape(bs, 784), gc.WithName("x"))
    sizes = [
        ("e1", 250, gc.Rectify),
        ("e2", 50, gc.Rectify),
        ("d1", 250, gc.Rectify),
        ("d2", 784, gc.Sigmoid),
    ]
    if golgi_form:
        terms = [
            G.L(G.ConsFC, G.WithShape(n), G.WithName(k), G.WithActivation(a)) for k, n, a in sizes
        ]
        autoencoder = G.ComposeSeq(x, *terms)
    else:
        autoencoder = G.ComposeSeq(
            x,
            G.L(G.ConsFC(G.WithShape(250), G.WithName("e1"), G.WithActivation(gc.Rectify))),
            G.L(G.ConsFC(G.WithShape(50), G.WithName("e2"), G.WithActivation(gc.Rectify))),
            G.L(G.ConsFC(G.WithShape(250), G.WithName("d1"), G.WithActivation(gc.Rectify))),
            G.L(G.ConsFC(G.WithShape(784), G.WithName("d2"), G.WithActivation(gc.Sigmoid))),
        )
    out = autoencoder.fwd(x)
    learnables = autoencoder.model()
    return g, x, autoencoder, out, learnables


AE_SHAPES = [
    ("e1/W", (784, 250)),
    ("e1/b", (1, 250)),
    ("e2/W", (250, 50)),
    ("e2/b", (1, 50)),
    ("d1/W", (50, 250)),
    ("d1/b", (1, 250)),
    ("d2/W", (250, 784)),
    ("d2/b", (1, 784)),
]


@pytest.mark.parametrize("golgi_form", [False, True])
def test_talk_autoencoder_runs_as_written_and_on_another_batch_size(golgi_form):
    gc.SetSeed(0)
    g, x, ae, out, learnables = _talk_autoencoder(golgi_form)
    assert [(n.name, n.shape) for n in learnables] == AE_SHAPES
    assert out.shape == (100, 784) and out.dtype == gc.Float32
    assert out is ae.out and ae.fwd(x) is out
    n_nodes = len(g.inputs())
    x7 = gc.NewMatrix(g, gc.Float32, gc.WithShape(7, 784), gc.WithName("x7"))
    out7 = ae.fwd(x7)
    assert out7.shape == (7, 784)
    assert len(g.inputs()) == n_nodes + 1 and ae.model() == learnables  # same weights
    data = np.random.default_rng(0).random((100, 784), dtype=np.float32)
    gc.Let(x, data)
    gc.Let(x7, data[:7])
    gc.NewTapeMachine(g, gc.WithWatchlist(out, out7)).run_all()
    np.testing.assert_allclose(out7.value, out.value[:7], rtol=1e-5, atol=1e-6)


def test_both_l_forms_build_the_same_tree():
    gc.SetSeed(0)
    a = _talk_autoencoder(False)[2]
    gc.SetSeed(0)
    b = _talk_autoencoder(True)[2]
    assert repr(a) == repr(b)
    for p, q in zip(a.model(), b.model(), strict=True):
        assert np.array_equal(p.value, q.value)


def test_repr_shows_the_tree_with_names_and_options():
    ae = _talk_autoencoder(False)[2]
    assert repr(ae) == (
        "ComposeSeq(\n"
        "    x,\n"
        "    FC(name='e1', size=250, activation=Rectify, bias=True),\n"
        "    FC(name='e2', size=50, activation=Rectify, bias=True),\n"
        "    FC(name='d1', size=250, activation=Rectify, bias=True),\n"
        "    FC(name='d2', size=784, activation=Sigmoid, bias=True),\n"
        ")"
    )
    lazy = G.ComposeSeq(
        G.L(G.ConsFlatten()), G.Add(G.I, G.L(G.ConsFC, G.WithShape(4), G.WithBias(False)))
    )
    assert repr(lazy) == (
        "ComposeSeq(\n"
        "    L(ConsFlatten()),\n"
        "    Add(\n"
        "        I,\n"
        "        L(ConsFC(WithShape(4), WithBias(False))),\n"
        "    ),\n"
        ")"
    )


def test_lazy_composition_builds_on_first_fwd_and_shares_weights_after():
    net = G.ComposeSeq(G.L(G.ConsFC, G.WithShape(3)), G.L(G.ConsFC, G.WithShape(2)))
    with pytest.raises(gc.GraphError, match="not built yet"):
        net.model()
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 5), gc.WithName("x"))
    y = gc.NewMatrix(g, gc.Float64, gc.WithShape(4, 5), gc.WithName("y"))
    out = net.fwd(x)
    learn = net.model()
    assert [n.name for n in learn] == ["fc_1/W", "fc_1/b", "fc_2/W", "fc_2/b"]
    assert net.fwd(y).shape == (4, 2) and net.model() == learn
    assert net.fwd(x) is out and net.input is x


def test_nested_compositions_flatten_and_compose_order():
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 6), gc.WithName("x"))
    inner = G.ComposeSeq(
        G.L(G.ConsFC, G.WithShape(4), G.WithName("a")),
        G.L(G.ConsFC, G.WithShape(3), G.WithName("b")),
    )
    net = G.ComposeSeq(x, inner, G.L(G.ConsFC, G.WithShape(2), G.WithName("c")))
    assert [la.name for la in net.layers] == ["a", "b", "c"]
    c = G.Compose(G.L(G.ConsFC, G.WithShape(5)), G.L(G.ConsFC, G.WithShape(1)))
    assert c.fwd(x).shape == (None, 1)  # second after first
    assert [la.size for la in c.layers] == [5, 1]


def test_a_nested_composition_is_a_sub_model_that_shares_its_weights():
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 784), gc.WithName("x"))
    x2 = gc.NewMatrix(g, gc.Float64, gc.WithShape(3, 784), gc.WithName("x2"))
    enc = G.ComposeSeq(G.L(G.ConsFC(G.WithShape(50), G.WithName("e1"))))
    dec = G.ComposeSeq(G.L(G.ConsFC(G.WithShape(784), G.WithName("d1"))))
    ae = G.ComposeSeq(x, enc, dec)
    assert [la.name for la in ae.layers] == ["e1", "d1"]
    assert [n.name for n in ae.model()] == ["e1/W", "e1/b", "d1/W", "d1/b"]
    assert [n.name for n in enc.model()] == ["e1/W", "e1/b"]
    assert [n.name for n in dec.model()] == ["d1/W", "d1/b"]
    assert enc.model() == ae.model()[:2]  # the very same nodes
    assert enc.input is x and enc.fwd(x) is enc.out
    code = enc.fwd(x2)  # the encoder alone on another input: e1's weights, no new layer
    assert code.shape == (3, 50) and set(G.layer_names(g)) == {"e1", "d1"}
    data = np.random.default_rng(0).standard_normal((3, 784))
    gc.Let(x, data)
    gc.Let(x2, data)
    gc.NewTapeMachine(g, gc.WithWatchlist(code, enc.out)).run_all()
    np.testing.assert_array_equal(code.value, enc.out.value)
    assert dec.input is enc.out and ae.out is dec.out
    assert repr(ae) == (  # shown flat, as if written in one ComposeSeq
        "ComposeSeq(\n"
        "    x,\n"
        "    FC(name='e1', size=50, activation=None, bias=True),\n"
        "    FC(name='d1', size=784, activation=None, bias=True),\n"
        ")"
    )


def test_add_and_hadamard_joins_compute_residual_and_gate():
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
    block = G.ConsFC(x, G.WithShape(3), G.WithActivation(gc.Tanh), G.WithName("blk"))
    res = G.ComposeSeq(x, G.Add(G.I, block))
    gate = G.HadamardProd(G.I, G.L(G.ConsFC, G.WithShape(3), G.WithActivation(gc.Sigmoid)))
    gated = gate.fwd(x)
    data = np.random.default_rng(1).standard_normal((4, 3))
    gc.Let(x, data)
    gc.NewTapeMachine(g, gc.WithWatchlist(res.out, gated)).run_all()
    w, b = (n.value for n in block.model())
    np.testing.assert_allclose(res.out.value, data + np.tanh(data @ w + b), rtol=1e-12)
    w2, b2 = (n.value for n in gate.model())
    np.testing.assert_allclose(gated.value, data / (1 + np.exp(-(data @ w2 + b2))), rtol=1e-12)
    with pytest.raises(gc.ShapeError, match="Add join"):
        G.Add(G.I, G.L(G.ConsFC, G.WithShape(2))).fwd(x)


def test_apply_and_identity():
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
    assert G.Apply(G.I, x) is x and G.I() is G.I
    assert G.Apply(G.L(G.ConsFC, G.WithShape(2)), x).shape == (None, 2)
    assert isinstance(G.Apply(G.L(G.ConsFC, G.WithShape(2)), G.I), G.Composition)


def test_default_names_are_unique_per_graph():
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
    names = [G.ConsFC(x, G.WithShape(2)).name for _ in range(2)]
    names.append(G.ConsLayerNorm(x).name)
    assert names == ["fc_1", "fc_2", "layernorm_1"]
    assert set(G.layer_names(g)) == set(names)
    g2 = gc.NewGraph()
    x2 = gc.NewMatrix(g2, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
    assert G.ConsFC(x2, G.WithShape(2)).name == "fc_1"


def test_summary_table(capsys):
    gc.SetSeed(0)
    ae = _talk_autoencoder(False)[2]
    text = ae.summary()
    assert capsys.readouterr().out.strip() == text
    lines = text.splitlines()
    assert lines[0] == "Input 'x': (None, 784) Float32"
    rows = [ln.split() for ln in lines if ln.startswith(("e1", "e2", "d1", "d2"))]
    assert rows == [
        ["e1", "(FC)", "(None,", "250)", "196,250"],
        ["e2", "(FC)", "(None,", "50)", "12,550"],
        ["d1", "(FC)", "(None,", "250)", "12,750"],
        ["d2", "(FC)", "(None,", "784)", "196,784"],
    ]
    assert "Total params: 418,334 (1.60 MiB)" in text
    assert "Non-trainable params: 0 (0 B)" in text
    lazy = G.ComposeSeq(G.L(G.ConsFlatten()), G.L(G.ConsFC, G.WithShape(2)))
    with pytest.raises(gc.GraphError, match="not built"):
        lazy.summary(print_fn=None)


def test_summary_of_an_unbuilt_model_with_input_shape_leaves_it_and_the_seed_alone():
    lazy = G.ComposeSeq(
        G.L(G.ConsFlatten()),
        G.L(G.ConsFC, G.WithShape(4), G.WithName("h")),
        G.L(G.ConsDropout()),
        G.L(G.ConsFC, G.WithShape(2), G.WithName("out")),
    )
    gc.SetSeed(0)
    text = lazy.summary(input_shape=(None, 2, 3), print_fn=None)
    after = get_rng().random()
    gc.SetSeed(0)
    assert get_rng().random() == after  # building the throwaway layers drew nothing
    rows = [ln.split() for ln in text.splitlines()[4:-4]]
    assert rows == [
        ["flatten_1", "(Flatten)", "(None,", "6)", "0"],
        ["h", "(FC)", "(None,", "4)", "28"],
        ["dropout_1", "(Dropout)", "(None,", "4)", "0"],
        ["out", "(FC)", "(None,", "2)", "10"],
    ]
    assert "Total params: 38 (152 B)" in text and text.startswith("Input 'input': (None, 2, 3)")
    assert not lazy.built and lazy.input is None  # still unbuilt: nothing was kept
    with pytest.raises(gc.GraphError, match="not built"):
        lazy.model()
    g = gc.NewGraph()
    x = gc.NewTensor(g, gc.Float64, 3, gc.WithShape(None, 2, 3), gc.WithName("x"))
    assert lazy.fwd(x).shape == (None, 2)
    assert [la.name for la in lazy.layers] == ["flatten_1", "h", "dropout_1", "out"]
    text64 = lazy.summary(input_shape=(None, 2, 3), print_fn=None)
    assert "Total params: 38 (304 B)" in text64  # built: its own dtype


def test_summary_counts_batchnorm_statistics_as_non_trainable_in_rows_and_totals():
    g = gc.NewGraph()
    x = gc.NewTensor(g, gc.Float32, 4, gc.WithShape(None, 3, 5, 5), gc.WithName("x"))
    net = G.ComposeSeq(
        x,
        G.L(G.ConsConv, G.WithShape(4), G.WithName("c")),
        G.L(G.ConsBatchNorm, G.WithName("bn")),
        G.L(G.ConsDropout, G.WithName("d")),
    )
    text = net.summary(print_fn=None)
    rows = {ln.split()[0]: int(ln.split()[-1].replace(",", "")) for ln in text.splitlines()[4:7]}
    assert rows == {"c": 4 * 3 * 9 + 4, "bn": 4 * 4, "d": 0}  # like Keras: 4C for batch norm
    assert f"Total params: {sum(rows.values())} " in text
    assert "Trainable params: 120 (480 B)" in text
    assert "Non-trainable params: 8 (32 B)" in text  # running mean and variance, not the rng


def test_learnables_train_through_a_solver():
    gc.SetSeed(0)
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 4), gc.WithName("x"))
    net = G.ComposeSeq(
        x, G.L(G.ConsFC, G.WithShape(8), G.WithActivation(gc.Tanh)), G.L(G.ConsFC, G.WithShape(4))
    )
    loss = G.MSE(net.out, x)
    gc.Grad(loss, *net.model())
    vm = gc.NewTapeMachine(g, gc.BindDualValues(*net.model()))
    solver = gc.NewRMSPropSolver(gc.WithLearnRate(0.01))
    gc.Let(x, np.random.default_rng(0).standard_normal((16, 4)))
    costs = []
    for _ in range(30):
        vm.run_all()
        costs.append(float(loss.value))
        solver.step(gc.NodesToValueGrads(net.model()))
    assert costs[-1] < 0.5 * costs[0]


def test_the_repr_of_a_residual_model_shows_layers_not_internal_nodes():
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 4), gc.WithName("x"))
    block = G.ComposeSeq(G.L(G.ConsFC(G.WithShape(4), G.WithName("a"))),
                         G.L(G.ConsFC(G.WithShape(4), G.WithName("b"))))
    res = G.ComposeSeq(x, G.L(G.ConsFC(G.WithShape(4), G.WithName("stem"))), G.Add(G.I, block))
    text = repr(res)
    assert text.splitlines()[1].strip() == "x,"  # the user's input node is shown
    assert "name='a'" in text and "name='b'" in text
    internal = [n.name for n in g.nodes if n.op is not None]
    assert not any(f"{name}," in text for name in internal), text
    assert "Add_" not in repr(block)
