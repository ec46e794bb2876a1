"""ConsLSTM and ConsGRU: the shared layer test, a numpy reference, the one-step forms,
PyTorch's nn.LSTM / nn.GRU with copied weights (optional), and a toy task learnt."""

from __future__ import annotations

import numpy as np
import pytest

import golgi as G
import graphcore as gc
from tests.layer_harness import check_layer


def _lstm_shapes(n_in, h):
    return [s for _ in "ifoc" for s in ((n_in, h), (h, h), (1, h))]


def _gru_shapes(n_in, h):
    return [(n_in, h)] * 3 + [(h, h)] * 3 + [(1, h)] * 6


def _sig(v):
    return 1.0 / (1.0 + np.exp(-v))


def _np_lstm(p, x, h=None, c=None):
    """Reference LSTM over x (batch, time, in) from the layer's learnables; all h."""
    b, t, _ = x.shape
    n = p["b_i"].shape[1]
    h = np.zeros((b, n)) if h is None else h
    c = np.zeros((b, n)) if c is None else c
    hs = []
    for s in range(t):
        xs = x[:, s]

        def pre(k, xs=xs, h=h):
            return xs @ p[f"Wx_{k}"] + h @ p[f"Wh_{k}"] + p[f"b_{k}"]

        i, f, o, cand = _sig(pre("i")), _sig(pre("f")), _sig(pre("o")), np.tanh(pre("c"))
        c = f * c + i * cand
        h = o * np.tanh(c)
        hs.append(h)
    return np.stack(hs, 1), c


def _np_gru(p, x):
    b, t, _ = x.shape
    h = np.zeros((b, p["bx_r"].shape[1]))
    hs = []
    for s in range(t):
        xs = x[:, s]
        r = _sig(xs @ p["Wx_r"] + p["bx_r"] + h @ p["Wh_r"] + p["bh_r"])
        z = _sig(xs @ p["Wx_z"] + p["bx_z"] + h @ p["Wh_z"] + p["bh_z"])
        n = np.tanh(xs @ p["Wx_n"] + p["bx_n"] + r * (h @ p["Wh_n"] + p["bh_n"]))
        h = (1 - z) * n + z * h
        hs.append(h)
    return np.stack(hs, 1)


def _params(layer, seed=0):
    """Give every learnable (biases too) a random value; return them by short key."""
    rng = np.random.default_rng(seed)
    out = {}
    for k, node in layer.params.items():
        v = rng.uniform(-0.5, 0.5, node.shape)
        gc.Let(node, v)
        out[k] = v
    return out


def _run(g, x, data, *nodes):
    gc.Let(x, data)
    gc.NewTapeMachine(g, gc.WithWatchlist(*nodes)).run_all()
    return [np.array(n.value, copy=True) for n in nodes]


def _seq(shape, dt=gc.Float64, name="x"):
    g = gc.NewGraph()
    return g, gc.NewTensor(g, dt, len(shape), gc.WithShape(*shape), gc.WithName(name))


# ----- the shared layer test ----------------------------------------------------------------


@pytest.mark.parametrize(
    "cons, shapes", [(G.ConsLSTM, _lstm_shapes), (G.ConsGRU, _gru_shapes)], ids=["LSTM", "GRU"]
)
@pytest.mark.parametrize("form", ["last", "sequences", "one-step"])
def test_recurrent_layers_pass_the_shared_layer_test(tmp_path, cons, shapes, form):
    n_in, h = 3, 4
    opts = [G.WithShape(h)]
    if form == "one-step":
        in_shape, out_shape = (5, n_in), (None, h)
    elif form == "last":
        in_shape, out_shape = (5, 6, n_in), (None, h)
    else:
        in_shape, out_shape = (5, 6, n_in), (None, 6, h)
        opts.append(G.WithReturnSequences(True))
    check_layer(
        cons,
        in_shape,
        *opts,
        expect_out_shape=out_shape,
        n_learnables=12,
        learnable_shapes=shapes(n_in, h),
        tmp_path=tmp_path,
    )


# ----- against a numpy reference ------------------------------------------------------------


def test_lstm_matches_a_numpy_reference_every_step_and_the_last():
    g, x = _seq((None, 7, 3))
    every = G.ConsLSTM(x, G.WithShape(5), G.WithReturnSequences(True), G.WithName("a"))
    p = _params(every)
    last = G.ConsLSTM(x, G.WithShape(5), G.WithName("b"))
    for k, v in p.items():
        gc.Let(last.params[k], v)
    data = np.random.default_rng(1).standard_normal((4, 7, 3))
    hs, h = _run(g, x, data, every.fwd(x), last.fwd(x))
    want, _ = _np_lstm(p, data)
    np.testing.assert_allclose(hs, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(h, want[:, -1], rtol=1e-12, atol=1e-12)


def test_gru_matches_a_numpy_reference():
    g, x = _seq((None, 6, 2))
    gru = G.ConsGRU(x, G.WithShape(3), G.WithReturnSequences(True))
    p = _params(gru)
    data = np.random.default_rng(2).standard_normal((5, 6, 2))
    (hs,) = _run(g, x, data, gru.fwd(x))
    np.testing.assert_allclose(hs, _np_gru(p, data), rtol=1e-12, atol=1e-12)


def test_lstm_one_step_forms_carry_the_state():
    g, x = _seq((None, 3))
    h0 = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 4), gc.WithName("h0"))
    c0 = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 4), gc.WithName("c0"))
    cell = G.ConsLSTM([x, h0, c0], G.WithShape(4), G.WithName("cell"))
    p = _params(cell)
    h1, c1 = cell.fwd([x, h0, c0])
    assert cell.step(x, h0, c0) == (h1, c1)  # same nodes in, same nodes out
    h2, c2 = cell.step(x, h1, c1)  # two steps on the same input, weights shared
    zero = cell.fwd(x)  # from a zero state
    rng = np.random.default_rng(3)
    data, hv, cv = (
        rng.standard_normal((2, 3)),
        rng.standard_normal((2, 4)),
        rng.standard_normal((2, 4)),
    )
    gc.Let(h0, hv)
    gc.Let(c0, cv)
    got = _run(g, x, data, h1, c1, h2, c2, zero)
    twice = np.stack([data, data], 1)
    want_h, want_c = _np_lstm(p, twice, hv, cv)
    np.testing.assert_allclose(got[2], want_h[:, 1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got[3], want_c, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got[0], want_h[:, 0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got[4], _np_lstm(p, data[:, None])[0][:, 0], rtol=1e-12)
    assert len(cell.model()) == 12


def test_gru_one_step_form():
    g, x = _seq((None, 2))
    cell = G.ConsGRU(x, G.WithShape(3))
    p = _params(cell)
    h1 = cell.fwd(x)
    h2 = cell.fwd([x, h1])
    assert cell.step(x, h1) is h2
    data = np.random.default_rng(4).standard_normal((3, 2))
    got = _run(g, x, data, h2)[0]
    np.testing.assert_allclose(got, _np_gru(p, np.stack([data, data], 1))[:, 1], rtol=1e-12)


def test_recurrent_layer_errors_name_the_layer_and_the_fix():
    g, x = _seq((None, 3))
    with pytest.raises(ValueError, match=r"ConsLSTM.*WithShape\(n\)"):
        G.ConsLSTM(x)
    with pytest.raises(ValueError, match="WithReturnSequences.*needs a sequence"):
        G.ConsGRU(x, G.WithShape(2), G.WithReturnSequences(True))
    _, free_t = _seq((None, None, 3))
    with pytest.raises(gc.ShapeError, match="only the batch dimension may be None"):
        G.ConsLSTM(free_t, G.WithShape(2))
    _, img = _seq((None, 1, 4, 4))
    with pytest.raises(gc.ShapeError, match="4-D; LSTM takes one step"):
        G.ConsLSTM(img, G.WithShape(2))
    cell = G.ConsLSTM(x, G.WithShape(2), G.WithName("cell"))
    h = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 5), gc.WithName("h"))
    with pytest.raises(ValueError, match="both states"):
        cell.step(x, h)
    with pytest.raises(gc.ShapeError, match=r"ConsLSTM \(layer 'cell'\): the hidden state"):
        cell.step(x, h, h)
    with pytest.raises(TypeError, match=r"\[x\] or \[x, h, c\]"):
        G.ConsLSTM([x, h], G.WithShape(2))
    with pytest.raises(TypeError, match="does not take WithKernelShape"):
        G.ConsGRU(G.WithKernelShape(3))


def test_recurrent_layers_compose_summarise_and_count_flops():
    g, x = _seq((None, 10, 3), gc.Float32)
    net = G.ComposeSeq(
        x,
        G.L(G.ConsLSTM(G.WithShape(8), G.WithReturnSequences(True), G.WithName("enc"))),
        G.L(G.ConsGRU(G.WithShape(4), G.WithName("dec"), G.AsBatched(True))),
        G.L(G.ConsFC(G.WithShape(1), G.WithName("out"))),
    )
    assert net.out.shape == (None, 1)
    text = net.summary(print_fn=None)
    assert "enc (LSTM)" in text and "(None, 10, 8)" in text and "dec (GRU)" in text
    assert repr(net.layers[0]) == "LSTM(name='enc', size=8, return_sequences=True)"
    lstm = net.layers[0]
    assert lstm.flops() == 10 * ((2 * (3 + 8) - 1) * 32 + 32 + 9 * 8)
    assert lstm.flops(batch=4) == 4 * lstm.flops()


# ----- PyTorch with copied weights (optional) -----------------------------------------------


def _torch_case(kind):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    b, t, n_in, h = 3, 20, 4, 5
    mod = (torch.nn.LSTM if kind == "LSTM" else torch.nn.GRU)(n_in, h, batch_first=True)
    mod = mod.double()
    data = np.random.default_rng(5).standard_normal((b, t, n_in))
    r = np.random.default_rng(6).standard_normal((b, t, h))
    xt = torch.tensor(data, requires_grad=True)
    out, _ = mod(xt)
    (out * torch.tensor(r)).sum().backward()
    g, x = _seq((None, t, n_in))
    cons = G.ConsLSTM if kind == "LSTM" else G.ConsGRU
    layer = cons(x, G.WithShape(h), G.WithReturnSequences(True), G.WithName("rnn"))
    w_ih, w_hh = mod.weight_ih_l0.detach().numpy(), mod.weight_hh_l0.detach().numpy()
    b_ih, b_hh = mod.bias_ih_l0.detach().numpy(), mod.bias_hh_l0.detach().numpy()
    # torch stacks the gates as rows: LSTM i, f, g (our c), o; GRU r, z, n
    order = {"i": 0, "f": 1, "c": 2, "o": 3} if kind == "LSTM" else {"r": 0, "z": 1, "n": 2}
    grads = {}
    for gate, k in order.items():
        rows = slice(k * h, (k + 1) * h)
        grads[f"Wx_{gate}"] = mod.weight_ih_l0.grad.numpy()[rows].T
        grads[f"Wh_{gate}"] = mod.weight_hh_l0.grad.numpy()[rows].T
        gc.Let(layer.params[f"Wx_{gate}"], w_ih[rows].T)
        gc.Let(layer.params[f"Wh_{gate}"], w_hh[rows].T)
        if kind == "LSTM":
            gc.Let(layer.params[f"b_{gate}"], (b_ih[rows] + b_hh[rows])[None])
            grads[f"b_{gate}"] = mod.bias_ih_l0.grad.numpy()[rows][None]  # = d/d b_hh too
        else:
            gc.Let(layer.params[f"bx_{gate}"], b_ih[rows][None])
            gc.Let(layer.params[f"bh_{gate}"], b_hh[rows][None])
            grads[f"bx_{gate}"] = mod.bias_ih_l0.grad.numpy()[rows][None]
            grads[f"bh_{gate}"] = mod.bias_hh_l0.grad.numpy()[rows][None]
    y = layer.fwd(x)
    cost = gc.Sum(gc.HadamardProd(y, gc.NewConstant(r)))
    keys = list(layer.params)
    dnodes = gc.Grad(cost, *[layer.params[k] for k in keys], x)
    vals = _run(g, x, data, y, *dnodes)
    np.testing.assert_allclose(vals[0], out.detach().numpy(), rtol=0, atol=1e-10)
    for k, d in zip(keys, vals[1:-1], strict=True):
        np.testing.assert_allclose(d, grads[k], rtol=0, atol=1e-10, err_msg=k)
    np.testing.assert_allclose(vals[-1], xt.grad.numpy(), rtol=0, atol=1e-10)


def test_lstm_matches_torch_forward_and_gradients():
    _torch_case("LSTM")


def test_gru_matches_torch_forward_and_gradients():
    _torch_case("GRU")


# ----- learning a toy sequence task ---------------------------------------------------------


def test_an_lstm_learns_the_parity_of_a_short_bit_sequence():
    """Parity of 4 bits: chance is log(2) cross entropy and 50% accuracy."""
    gc.SetSeed(0)
    t = 4
    bits = np.array([[(i >> k) & 1 for k in range(t)] for i in range(2**t)], dtype=np.float64)
    xs = bits[:, :, None] * 2.0 - 1.0
    ys = np.eye(2)[bits.sum(1).astype(int) % 2]
    g, x = _seq((None, t, 1))
    y = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("y"))
    net = G.ComposeSeq(
        x,
        G.L(G.ConsLSTM(G.WithShape(12), G.WithName("lstm"))),
        G.L(G.ConsFC(G.WithShape(2), G.WithName("out"))),
    )
    loss = G.CrossEntropy(net.out, y)
    learn = net.model()
    gc.Grad(loss, *learn)
    vm = gc.NewTapeMachine(g, gc.BindDualValues(*learn), gc.WithWatchlist(loss, net.out))
    solver = gc.NewAdamSolver(gc.WithLearnRate(0.03))
    gc.Let(x, xs)
    gc.Let(y, ys)
    first = None
    for _ in range(300):
        vm.run_all()
        first = float(loss.value) if first is None else first
        solver.step(gc.NodesToValueGrads(learn))
    vm.run_all()
    assert first > 0.5 * np.log(2)
    assert float(loss.value) < 0.1 * np.log(2)
    assert np.array_equal(net.out.value.argmax(1), ys.argmax(1))


@pytest.mark.parametrize("cons", [G.ConsLSTM, G.ConsGRU])
def test_the_gradient_of_a_sequence_is_one_buffer_not_one_per_step(cons):
    g, x = _seq((None, 12, 3))
    layer = cons(x, G.WithShape(4))
    (dx,) = gc.Grad(gc.Sum(gc.Square(layer.fwd(x))), x)
    # per step, a slice of the sequence's one gradient buffer: the backward pass is linear in
    # the number of steps (a buffer the size of the sequence per step would make it quadratic)
    assert dx.op.name == "SlicesGrad"
    assert [n for n in g.nodes if n.op is not None and n.op.name.endswith("Grad") and n.ndim == 3
            ] == [dx]


def test_stacked_layers_take_the_steps_nodes_not_slices_of_the_sequence():
    g, x = _seq((None, 5, 3))
    net = G.ComposeSeq(
        x,
        G.L(G.ConsLSTM(G.WithShape(4), G.WithReturnSequences(True), G.WithName("a"))),
        G.L(G.ConsGRU(G.WithShape(2), G.WithName("b"))),
    )
    a, b = net.layers
    pa, pb = _params(a, 1), _params(b, 2)
    gc.Grad(gc.Sum(net.out), *net.model())
    # slicing step t out of a sequence has a gradient the size of the whole sequence
    assert not [n for n in g.nodes if n.op is not None and n.op.name == "SliceGrad" and n.ndim == 3]
    data = np.random.default_rng(7).standard_normal((3, 5, 3))
    (got,) = _run(g, x, data, net.out)
    want = _np_gru(pb, _np_lstm(pa, data)[0])[:, -1]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
