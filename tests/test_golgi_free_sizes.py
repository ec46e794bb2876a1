"""FLOPs and summaries of layers whose input has a free size besides the batch (a sequence of
any length): they count per position instead of failing."""

import pytest

import golgi as G
import graphcore as gc


def _sequence(g: gc.Graph) -> gc.Node:
    return gc.NewTensor(g, gc.Float64, 3, gc.WithShape(None, None, 4), gc.WithName("x"))


def test_layernorm_and_dropout_flops_count_a_free_length_as_one_position():
    x = _sequence(gc.NewGraph())
    assert G.ConsLayerNorm(x).flops() == 4 * 8
    assert G.ConsDropout(x).flops(batch=3) == 3 * 4


def test_summary_of_a_model_on_a_free_length():
    x = _sequence(gc.NewGraph())
    net = G.ComposeSeq(x, G.L(G.ConsLayerNorm(G.WithName("ln"))), G.L(G.ConsDropout()))
    text = net.summary(print_fn=None, flops=True)
    assert "ln (LayerNorm)" in text
    assert "FLOPs per sample: 36" in text


def test_a_free_size_where_a_layer_needs_it_known_is_the_layers_shape_error():
    g = gc.NewGraph()
    x = gc.NewTensor(g, gc.Float64, 3, gc.WithShape(None, 2, 4), gc.WithName("x"))
    flat = G.ConsFlatten(x, G.WithName("flat"))
    assert flat.output_shape((None, 2, 4)) == (None, 8)
    with pytest.raises(gc.ShapeError, match=r"flat.*\(None, None, 4\).*only the batch"):
        flat.output_shape((None, None, 4))
