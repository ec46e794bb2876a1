"""Errors name the layer, the option or the node, the shapes, and what to do.

Checkpoint errors (another architecture, truncated file, pickled data) are in test_golgi_io.py.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

import golgi as G
import graphcore as gc


@pytest.fixture
def g():
    return gc.NewGraph("net")


def _x(g, shape, name="x", dt=gc.Float32):
    return gc.NewTensor(g, dt, len(shape), gc.WithShape(*shape), gc.WithName(name))


def test_fc_on_a_vector_explains_the_matrix_it_needs(g):
    v = _x(g, (784,), "v")
    with pytest.raises(
        gc.ShapeError,
        match=r"ConsFC: input 'v' \(784,\) Float32 is a vector; "
        r"FC takes a matrix \(batch, features\)",
    ) as e:
        G.ConsFC(v, G.WithShape(3))
    assert "(None, 784)" in str(e.value)


def test_fc_on_images_suggests_flatten(g):
    img = _x(g, (None, 1, 28, 28), "img")
    with pytest.raises(
        gc.ShapeError,
        match=r"ConsFC \(layer 'h'\): input 'img' "
        r"\(None, 1, 28, 28\) Float32 is 4-D.*ConsFlatten",
    ):
        G.ConsFC(img, G.WithShape(3), G.WithName("h"))
    with pytest.raises(gc.ShapeError, match="4-D.*ConsFlatten"):  # also when composed
        G.ComposeSeq(img, G.L(G.ConsFC, G.WithShape(3)))


def test_two_layers_with_one_name_names_both(g):
    x = _x(g, (None, 4))
    G.ConsFC(x, G.WithShape(3), G.WithName("e1"))
    with pytest.raises(
        gc.GraphError,
        match=r"graph 'net' already has a layer named 'e1': "
        r"FC\(name='e1', size=3.*give the new FC layer "
        r"another name",
    ):
        G.ComposeSeq(x, G.L(G.ConsFC, G.WithShape(5), G.WithName("e1")))
    assert G.ConsFC(x, G.WithShape(3)).name == "fc_1"  # the failed layer freed nothing it took


@pytest.mark.parametrize(
    "bad,why",
    [
        ("relu", "'relu' \\(str\\) is not a function"),
        (np.tanh, "numpy's tanh works on arrays"),
        (gc.Sum, "changes the shape"),
        (functools.partial(gc.Reshape, shape=(3, 2)), "changes the shape"),
        (gc.Rectify(gc.NewConstant(1.0)), "is not a function"),
    ],
)
def test_with_activation_rejects_what_is_not_an_activation(bad, why):
    with pytest.raises(
        TypeError,
        match=r"ConsFC \(layer 'h'\): WithActivation needs a "
        r"graphcore activation.*" + why,
    ):
        G.ConsFC(G.WithShape(2), G.WithName("h"), G.WithActivation(bad))


def test_option_a_layer_does_not_take_names_layer_and_option(g):
    with pytest.raises(
        TypeError,
        match="ConsFC does not take WithKernelShape; it takes "
        "WithName, WithShape, WithActivation, WithBias, "
        "WithInit, WithWeights",
    ):
        G.L(G.ConsFC, G.WithShape(3), G.WithKernelShape(3, 3))
    with pytest.raises(TypeError, match=r"ConsLayerNorm \(layer 'ln'\) does not take WithShape"):
        G.ConsLayerNorm(_x(g, (None, 4)), G.WithName("ln"), G.WithShape(4))
    with pytest.raises(TypeError, match="not graphcore's"):
        G.ConsFC(G.WithShape(3), gc.WithName("x"))
    with pytest.raises(TypeError, match="250 is not a layer option"):
        G.ConsFC(_x(g, (None, 4), "x2"), 250)


def test_misplaced_terms_in_compose_seq(g):
    x = _x(g, (None, 4))
    with pytest.raises(TypeError, match="option WithShape\\(3\\) on its own"):
        G.ComposeSeq(x, G.WithShape(3))
    with pytest.raises(TypeError, match="only the first argument of ComposeSeq may be the input"):
        G.ComposeSeq(x, G.L(G.ConsFC, G.WithShape(3)), x)
    with pytest.raises(TypeError, match="leave the node out"):
        G.L(G.ConsFC, x, G.WithShape(3))
    with pytest.raises(TypeError, match="at least one term"):
        G.ComposeSeq(x)


def test_fwd_on_an_input_that_does_not_fit(g):
    x = _x(g, (None, 4))
    fc = G.ConsFC(x, G.WithShape(3), G.WithName("h"))
    with pytest.raises(
        gc.ShapeError,
        match=r"ConsFC \(layer 'h'\): was built for inputs of "
        r"shape \(None, 4\), got input 'x5' \(None, 5\)",
    ):
        fc.fwd(_x(g, (None, 5), "x5"))
    with pytest.raises(gc.DtypeError, match="built for Float32 inputs"):
        fc.fwd(_x(g, (None, 4), "x64", gc.Float64))
    other = gc.NewGraph("other")
    with pytest.raises(gc.GraphError, match="belongs to another graph"):
        fc.fwd(_x(other, (None, 4)))
    with pytest.raises(TypeError, match="fwd takes a graph node, got ndarray"):
        fc.fwd(np.zeros((2, 4)))


def test_reshape_that_would_fix_the_batch(g):
    img = _x(g, (None, 1, 28, 28), "img")
    with pytest.raises(gc.ShapeError, match=r"write ToShape\(None, \.\.\.\)"):
        G.ConsReshape(img, G.ToShape(100, 784))
    with pytest.raises(gc.ShapeError, match="784 elements.*do not fit 700"):
        G.ConsReshape(img, G.ToShape(None, 700))
    with pytest.raises(ValueError, match="ToShape"):
        G.ConsReshape(img)


def test_embedding_input_kinds(g):
    with pytest.raises(gc.DtypeError, match="integer indices.*WithOneHotInput"):
        G.ConsEmbedding(_x(g, (None, 4)), G.WithClasses(4), G.WithShape(2))
    with pytest.raises(gc.ShapeError, match="WithClasses\\(5\\) differs"):
        G.ConsEmbedding(
            _x(g, (None, 4), "oh"), G.WithOneHotInput(), G.WithClasses(5), G.WithShape(2)
        )


def test_bad_option_values_fail_where_written():
    with pytest.raises(ValueError, match="WithShape takes positive sizes"):
        G.WithShape(0)
    with pytest.raises(TypeError, match="WithBias takes True or False"):
        G.WithBias(1)
    with pytest.raises(ValueError, match="WithProbability"):
        G.WithProbability(1.0)
    with pytest.raises(TypeError, match="WithName"):
        G.WithName("a/b")
    with pytest.raises(ValueError, match="one -1"):
        G.ToShape(-1, -1)


def test_weights_of_the_wrong_shape(g):
    x = _x(g, (None, 4))
    with pytest.raises(
        gc.ShapeError,
        match=r"W must have shape \(4, 3\), got an array of "
        r"shape \(3, 3\)",
    ):
        G.ConsFC(x, G.WithShape(3), G.WithWeights(np.zeros((3, 3))))
