"""ConsMultiHeadAttention and FC's AsPositionwise: the shared layer test, a numpy reference,
the causal mask, and a transformer block written with ComposeSeq, Add and ConsLayerNorm."""

from __future__ import annotations

import numpy as np
import pytest

import golgi as G
import graphcore as gc
from tests.layer_harness import check_layer


def _seq(shape, dt=gc.Float64, name="x"):
    g = gc.NewGraph()
    return g, gc.NewTensor(g, dt, len(shape), gc.WithShape(*shape), gc.WithName(name))


def _np_attention(p, x, heads, causal):
    b, t, d = x.shape
    dh = d // heads

    def split(y):
        return y.reshape(b, t, heads, dh).transpose(0, 2, 1, 3)

    q, k, v = (split(x @ p[f"W{n}"] + p.get(f"b{n}", 0.0)) for n in "qkv")
    s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(dh)
    if causal:
        s = np.where(np.triu(np.ones((t, t), bool), 1), -np.inf, s)
    a = np.exp(s - s.max(-1, keepdims=True))
    a /= a.sum(-1, keepdims=True)
    ctx = (a @ v).transpose(0, 2, 1, 3).reshape(b, t, d)
    return ctx @ p["Wo"] + p["bo"]


@pytest.mark.parametrize("heads, causal", [(1, False), (2, True), (4, False)])
def test_attention_passes_the_shared_layer_test(tmp_path, heads, causal):
    d = 8
    check_layer(
        G.ConsMultiHeadAttention,
        (3, 5, d),
        G.WithHeads(heads),
        G.WithCausal(causal),
        expect_out_shape=(None, 5, d),
        n_learnables=7,
        learnable_shapes=[(d, d), (1, d), (d, d), (d, d), (1, d), (d, d), (1, d)],
        tmp_path=tmp_path,
    )


def test_attention_without_bias_passes_the_shared_layer_test(tmp_path):
    check_layer(
        G.ConsMultiHeadAttention,
        (2, 4, 6),
        G.WithHeads(3),
        G.WithBias(False),
        expect_out_shape=(None, 4, 6),
        n_learnables=4,
        learnable_shapes=[(6, 6)] * 4,
        tmp_path=tmp_path,
    )


@pytest.mark.parametrize("causal", [False, True])
def test_attention_matches_a_numpy_reference(causal):
    g, x = _seq((None, 6, 8))
    att = G.ConsMultiHeadAttention(x, G.WithHeads(2), G.WithCausal(causal))
    rng = np.random.default_rng(0)
    p = {}
    for k, n in att.params.items():
        p[k] = rng.uniform(-0.5, 0.5, n.shape)
        gc.Let(n, p[k])
    y = att.fwd(x)
    data = rng.standard_normal((3, 6, 8))
    gc.Let(x, data)
    gc.NewTapeMachine(g, gc.WithWatchlist(y)).run_all()
    np.testing.assert_allclose(y.value, _np_attention(p, data, 2, causal), rtol=1e-12, atol=1e-12)


def test_causal_attention_does_not_look_ahead():
    g, x = _seq((None, 5, 4))
    y = G.ConsMultiHeadAttention(x, G.WithHeads(2), G.WithCausal()).fwd(x)
    (dx,) = gc.Grad(gc.Sum(y[:, 2]), x)  # output at position 2
    gc.Let(x, np.random.default_rng(1).standard_normal((2, 5, 4)))
    gc.NewTapeMachine(g, gc.WithWatchlist(dx)).run_all()
    assert np.abs(dx.value[:, :3]).sum() > 0
    assert not dx.value[:, 3:].any()  # positions after 2 do not reach it


def test_attention_errors_and_flops():
    g, x = _seq((None, 5, 6))
    with pytest.raises(ValueError, match=r"width 6 .* does not divide into 4 heads"):
        G.ConsMultiHeadAttention(x, G.WithHeads(4))
    _, flat = _seq((None, 6))
    with pytest.raises(gc.ShapeError, match="must be a sequence"):
        G.ConsMultiHeadAttention(flat)
    att = G.ConsMultiHeadAttention(x, G.WithHeads(2))
    t, d, dh = 5, 6, 3
    want = 4 * t * (2 * d - 1) * d + 3 * t * d  # projections and biases (no key bias)
    want += 2 * t * t * (2 * dh - 1) + t * d + 5 * 2 * t * t + 2 * t * dh * (2 * t - 1)
    assert att.flops() == want and att.flops(3) == 3 * want


def test_fc_positionwise_passes_the_shared_layer_test_and_refuses_sequences_without_it(tmp_path):
    check_layer(
        G.ConsFC,
        (3, 4, 5),
        G.WithShape(2),
        G.AsPositionwise(),
        G.WithActivation(gc.Tanh),
        expect_out_shape=(None, 4, 2),
        n_learnables=2,
        learnable_shapes=[(5, 2), (1, 2)],
        tmp_path=tmp_path,
    )
    g, x = _seq((None, 4, 5))
    with pytest.raises(gc.ShapeError, match="3-D.*AsPositionwise"):
        G.ConsFC(x, G.WithShape(2))
    fc = G.ConsFC(x, G.WithShape(2), G.AsPositionwise())
    assert fc.flops() == 4 * ((2 * 5 - 1) * 2 + 2)
    assert (
        repr(fc) == f"FC(name='{fc.name}', size=2, activation=None, bias=True, positionwise=True)"
    )


def _block(d, heads, name):
    return G.ComposeSeq(
        G.Add(
            G.I,
            G.ComposeSeq(
                G.L(G.ConsLayerNorm(G.WithName(f"{name}_ln1"))),
                G.L(
                    G.ConsMultiHeadAttention(
                        G.WithHeads(heads), G.WithCausal(), G.WithName(f"{name}_att")
                    )
                ),
            ),
        ),
        G.Add(
            G.I,
            G.ComposeSeq(
                G.L(G.ConsLayerNorm(G.WithName(f"{name}_ln2"))),
                G.L(
                    G.ConsFC(
                        G.WithShape(4 * d),
                        G.AsPositionwise(),
                        G.WithActivation(gc.Gelu),
                        G.WithName(f"{name}_up"),
                    )
                ),
                G.L(G.ConsFC(G.WithShape(d), G.AsPositionwise(), G.WithName(f"{name}_down"))),
            ),
        ),
    )


def test_a_transformer_block_composes_trains_and_summarises():
    gc.SetSeed(0)
    t, d = 6, 8
    g, x = _seq((None, t, d))
    y = gc.NewTensor(g, gc.Float64, 3, gc.WithShape(None, t, d), gc.WithName("y"))
    net = G.ComposeSeq(x, _block(d, 2, "b1"), _block(d, 2, "b2"))
    assert net.out.shape == (None, t, d)
    kinds = [la.kind for la in net.layers]
    assert kinds == ["LayerNorm", "MultiHeadAttention", "LayerNorm", "FC", "FC"] * 2
    assert net.by_name("b2_att").heads == 2 and net.by_name("b1_up/W").shape == (d, 4 * d)
    text = net.summary(print_fn=None, flops=True)
    assert "b1_att (MultiHeadAttention)" in text and "(Add join)" in text
    assert f"FLOPs per sample: {net.flops():,}" in text
    # learn to copy a shifted sequence: the loss falls
    loss = G.MSE(net.out, y)
    learn = net.model()
    gc.Grad(loss, *learn)
    vm = gc.NewTapeMachine(g, gc.BindDualValues(*learn), gc.WithWatchlist(loss))
    rng = np.random.default_rng(0)
    data = rng.standard_normal((16, t, d))
    gc.Let(x, data)
    gc.Let(y, np.roll(data, 1, axis=1))
    solver = gc.NewAdamSolver(gc.WithLearnRate(0.01))
    losses = []
    for _ in range(40):
        vm.run_all()
        losses.append(float(loss.value))
        solver.step(gc.NodesToValueGrads(learn))
    assert losses[-1] < 0.5 * losses[0]
