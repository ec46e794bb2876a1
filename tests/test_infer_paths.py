"""Prediction's per-call paths: lent inputs copied below ``Plan.copy_below`` bytes or read in
place above it, ``run_all(into=...)`` copied or redirected, the plan of the last run reused,
and ``import graphcore, golgi`` without scipy."""

import subprocess
import sys

import numpy as np
import pytest

import graphcore as gc
from graphcore.kernels.blas import blas_backend
from graphcore.machines.plan import Plan
from graphcore.ops.elementwise.unary import NormalCdf

SMALL = 4  # rows: well under copy_below
BIG = 2500  # rows of 64 float64: 1.3 MB, over copy_below


@pytest.fixture(autouse=True, params=["copy_below as shipped", "copy_below 0"])
def _copy_below(request, monkeypatch):
    """Every test twice: as shipped, and with every lent array read and every destination
    written in place (what big batches do)."""
    if request.param == "copy_below 0":
        monkeypatch.setattr(Plan, "copy_below", 0)


def _mlp(rng):
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 64), gc.WithName("x"))
    w1 = gc.NewMatrix(g, gc.Float64, gc.WithName("w1"),
                      gc.WithValue(rng.standard_normal((64, 8)) / 8))
    w2 = gc.NewMatrix(g, gc.Float64, gc.WithName("w2"), gc.WithValue(rng.standard_normal((8, 3))))
    out = gc.SoftMax(gc.Mul(gc.Rectify(gc.Mul(x, w1)), w2))
    vm = gc.NewTapeMachine(g)
    return x, w1, w2, out, vm


def _ref(X, w1, w2):
    z = np.maximum(X @ w1.value, 0) @ w2.value
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_copy_below_sits_between_a_few_rows_and_a_big_batch():
    assert Plan.copy_below == 0 or SMALL * 64 * 8 <= Plan.copy_below < BIG * 64 * 8


@pytest.mark.parametrize("rows", [SMALL, BIG])
def test_lent_inputs_of_one_shape_each_give_their_own_result(rows):
    rng = np.random.default_rng(0)
    x, w1, w2, out, vm = _mlp(rng)
    data = rng.standard_normal((3 * rows, 64))
    kept = data.copy()
    for s in (0, rows, 2 * rows, 0):  # different arrays (views) at one shape, then the first
        X = data[s : s + rows]
        gc.Let(x, X, copy=False)
        vm.run_all()
        np.testing.assert_allclose(out.value, _ref(kept[s : s + rows], w1, w2), rtol=1e-12)
        assert x.value is X  # lent: the node's value is the caller's array
        assert (id(x) in vm.plan._in_place) == (X.nbytes > Plan.copy_below)  # else copied
    np.testing.assert_array_equal(data, kept)  # a lent array is only read


@pytest.mark.parametrize("rows", [SMALL, BIG])
def test_a_lent_array_changed_between_runs_is_read_again(rows):
    rng = np.random.default_rng(1)
    x, w1, w2, out, vm = _mlp(rng)
    X = rng.standard_normal((rows, 64))
    gc.Let(x, X, copy=False)
    vm.run_all()
    X *= -2.0  # the same array, new contents
    gc.Let(x, X, copy=False)
    vm.run_all()
    np.testing.assert_allclose(out.value, _ref(X, w1, w2), rtol=1e-12)
    buf = rng.standard_normal((rows, 64))
    gc.Let(x, buf[:], copy=False)
    vm.run_all()
    steps = list(vm.plan.steps)
    buf[...] = rng.standard_normal((rows, 64))  # a new view object at the same address
    gc.Let(x, buf[:], copy=False)
    vm.run_all()
    np.testing.assert_allclose(out.value, _ref(buf, w1, w2), rtol=1e-12)
    assert vm.plan.steps == steps  # the same memory: nothing built again
    gc.Let(x, buf[::-1][::-1], copy=False)  # same address, shape and strides again
    vm.run_all()
    np.testing.assert_allclose(out.value, _ref(buf, w1, w2), rtol=1e-12)
    half = np.ascontiguousarray(buf[: rows // 2])
    gc.Let(x, half, copy=False)  # another shape: another plan
    vm.run_all()
    np.testing.assert_allclose(out.value, _ref(half, w1, w2), rtol=1e-12)
    two = np.concatenate([buf, buf])
    gc.Let(x, two[rows:], copy=False)  # the first shape again, other memory
    vm.run_all()
    np.testing.assert_allclose(out.value, _ref(buf, w1, w2), rtol=1e-12)
    two[rows:] *= 3
    gc.Let(x, two[rows:], copy=False)
    vm.run_all()
    np.testing.assert_allclose(out.value, _ref(3 * buf, w1, w2), rtol=1e-12)


def test_a_replaced_lent_array_is_never_read_after_it_is_gone():
    rng = np.random.default_rng(2)
    x, w1, w2, out, vm = _mlp(rng)
    for rows in (BIG, SMALL, BIG, BIG):
        X = rng.standard_normal((rows, 64))
        want = _ref(X, w1, w2)
        gc.Let(x, X, copy=False)
        del X  # the node (and maybe the plan) keep it alive while they read it
        vm.run_all()
        np.testing.assert_allclose(out.value, want, rtol=1e-12)
        gc.Let(x, np.zeros((rows, 64)))  # rebound: the earlier array may be freed now
        vm.run_all()
        np.testing.assert_allclose(out.value, _ref(np.zeros((rows, 64)), w1, w2), rtol=1e-12)


@pytest.mark.parametrize("rows", [SMALL, BIG])
def test_strided_and_non_contiguous_inputs_are_copied_and_right(rows):
    rng = np.random.default_rng(3)
    x, w1, w2, out, vm = _mlp(rng)
    wide = rng.standard_normal((rows, 128))
    for X in (wide[:, ::2], np.asfortranarray(wide[:, :64]), wide[::-1, 64:]):
        gc.Let(x, X, copy=False)
        vm.run_all()
        np.testing.assert_allclose(out.value, _ref(np.array(X), w1, w2), rtol=1e-12)


def test_changing_shapes_and_modes_between_runs():
    rng = np.random.default_rng(4)
    x, w1, w2, out, vm = _mlp(rng)
    for rows, how in [(1, "lent"), (BIG, "lent"), (1, "lent"), (SMALL, "own"), (BIG, "own"),
                      (BIG, "lent"), (BIG, "own"), (1, "lent"), (1, "own"), (SMALL, "lent")]:
        X = rng.standard_normal((rows, 64))
        kept = X.copy()
        gc.Let(x, X, copy=how == "own")
        res = np.full((rows, 3), np.nan)
        vm.run_all(into={out: res})
        np.testing.assert_allclose(res, _ref(kept, w1, w2), rtol=1e-12)
        assert out.value is res  # until the next run
        np.testing.assert_array_equal(X, kept)


@pytest.mark.parametrize("rows", [SMALL, BIG])
def test_into_leaves_earlier_destinations_alone(rows):
    rng = np.random.default_rng(5)
    x, w1, w2, out, vm = _mlp(rng)
    X = rng.standard_normal((rows, 64))
    gc.Let(x, X, copy=False)
    first = np.empty((rows, 3))
    vm.run_all(into={out: first})
    kept = first.copy()
    np.testing.assert_allclose(first, _ref(X, w1, w2), rtol=1e-12)
    gc.Let(x, -X, copy=False)
    second = np.empty((rows, 3))
    vm.run_all(into={out: second})
    vm.run_all()  # without into: the plan's own buffer again
    assert out.value is not second and out.value is not first
    np.testing.assert_array_equal(first, kept)
    np.testing.assert_allclose(second, _ref(-X, w1, w2), rtol=1e-12)
    np.testing.assert_allclose(out.value, second, rtol=1e-12)


def test_a_missing_value_is_named_on_a_rerun_of_the_same_plan():
    rng = np.random.default_rng(6)
    x, w1, w2, out, vm = _mlp(rng)
    gc.Let(x, np.ones((2, 64)))
    vm.run_all()
    x.graph.unbind_all()
    gc.Let(x, np.ones((2, 64)))  # the plan's shapes again, but w1 has no value now
    with pytest.raises(gc.ValueNotAvailableError, match="w1"):
        vm.run_all()


def test_golgi_predict_one_row_at_a_time_matches_one_batch():
    import golgi as G

    rng = np.random.default_rng(7)
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 20), gc.WithName("x"))
    model = G.ComposeSeq(
        x,
        G.L(G.ConsFC(G.WithShape(16), G.WithName("a"), G.WithActivation(gc.Rectify))),
        G.L(G.ConsFC(G.WithShape(4), G.WithName("b"))),
    )
    data = rng.standard_normal((300, 20)).astype(np.float32)
    kept = data.copy()
    whole = G.predict(model, data, batch_size=300)
    ones = G.predict(model, data, batch_size=1)
    np.testing.assert_allclose(ones, whole, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(data, kept)


# ----- import graphcore, golgi without scipy ---------------------------------------------------


@pytest.mark.skipif(
    blas_backend() != "numpy-openblas",
    reason="numpy's OpenBLAS was not found here, so graphcore takes its BLAS from scipy",
)
def test_import_graphcore_and_golgi_leaves_scipy_unimported():
    code = (
        "import sys, graphcore, golgi\n"
        "print(sorted(m for m in sys.modules if m == 'scipy' or m.startswith('scipy.')))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert res.stdout.strip() == "[]", res.stdout


def test_ops_on_scipy_special_still_work():
    from math import erf, exp, pi, sqrt

    xs = [-2.0, -0.5, 0.0, 0.75, 3.0]
    phi = [0.5 * (1 + erf(v / sqrt(2))) for v in xs]
    g = gc.NewGraph()
    x = gc.NewVector(g, gc.Float64, gc.WithShape(5), gc.WithName("x"), gc.WithValue(xs))
    cdf, gelu, mish = NormalCdf(x), gc.Gelu(x), gc.Mish(x)
    cost = gc.Sum(gelu) + gc.Sum(mish)
    (dx,) = gc.Grad(cost, x)
    gc.NewTapeMachine(g, gc.WithWatchlist(cdf, gelu)).run_all()
    np.testing.assert_allclose(cdf.value, phi, rtol=1e-12)
    np.testing.assert_allclose(gelu.value, [v * p for v, p in zip(xs, phi)], rtol=1e-12)

    def mish_of(v):
        return v * np.tanh(np.log1p(np.exp(v)))

    def d_gelu(v, p):
        return p + v * exp(-v * v / 2) / sqrt(2 * pi)

    h = 1e-6
    d_mish = [(mish_of(v + h) - mish_of(v - h)) / (2 * h) for v in xs]
    want = [d_gelu(v, p) + dm for v, p, dm in zip(xs, phi, d_mish)]
    np.testing.assert_allclose(dx.value, want, rtol=1e-6)


def test_into_an_input_copies_its_value_and_leaves_the_input_bound_as_it_was():
    rng = np.random.default_rng(8)
    x, w1, w2, out, vm = _mlp(rng)
    X = rng.standard_normal((SMALL, 64))
    gc.Let(x, X)
    got = np.empty((SMALL, 64))
    vm.run_all(into={x: got, out: np.empty((SMALL, 3))})
    np.testing.assert_array_equal(got, X)
    assert x.value is not got
    gc.Let(x, np.zeros((SMALL, 64)))  # must not write into `got`
    np.testing.assert_array_equal(got, X)
