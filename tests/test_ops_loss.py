"""Fused losses: SoftmaxCrossEntropy and SigmoidBinaryCrossEntropy (gradients, stability at
±1000 against float64 references, integer targets, reductions, errors, no per-run arrays)."""


import numpy as np
import pytest
from scipy import special

import graphcore as gc
from tests.allocations import peak_growth
from tests.gradcheck import check_op

rng = np.random.default_rng(3)


def r(*shape):
    return rng.standard_normal(shape)


def probs(*shape):
    return special.softmax(r(*shape), axis=-1)


def onehot(labels, classes):
    return np.eye(classes)[labels]


def sce_ref(z, t, axis=-1, reduction="mean"):
    """Float64 reference: value and gradient for the logits (upstream gradient 1)."""
    z, t = np.asarray(z, np.float64), np.asarray(t, np.float64)
    logp = z - special.logsumexp(z, axis=axis, keepdims=True)
    rows = -np.sum(t * logp, axis=axis)
    grad = np.exp(logp) * np.sum(t, axis=axis, keepdims=True) - t
    if reduction == "none":
        return rows, grad
    if reduction == "sum":
        return rows.sum(), grad
    return rows.mean(), grad / rows.size


def bce_ref(z, t, reduction="mean"):
    z, t = np.asarray(z, np.float64), np.asarray(t, np.float64)
    ll = np.logaddexp(0.0, z) - z * t
    grad = special.expit(z) - t
    if reduction == "none":
        return ll, grad
    if reduction == "sum":
        return ll.sum(), grad
    return ll.mean(), grad / ll.size


def run_loss(loss_fn, z, t, dt=gc.Float64, **kw):
    """Value of the loss and its gradient for the logits, computed by the tape machine."""
    g = gc.NewGraph()
    zn = gc.NodeFromAny(g, np.asarray(z, dt.np), gc.WithName("z"))
    tn = gc.NodeFromAny(
        g, np.asarray(t, dt.np if np.asarray(t).dtype.kind == "f" else None), gc.WithName("t")
    )
    loss = loss_fn(zn, tn, **kw)
    cost = loss if loss.shape == () else gc.Sum(loss)
    (dz,) = gc.Grad(cost, zn)
    gc.NewTapeMachine(g, gc.WithWatchlist(loss)).run_all()
    return np.array(loss.value), np.array(dz.value), dz


# ----- SoftmaxCrossEntropy -----------------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("targets", ["probs", "onehot", "unnormalised"])
def test_sce_gradcheck_float_targets(reduction, targets):
    t = {
        "probs": probs(5, 4),
        "onehot": onehot(rng.integers(0, 4, 5), 4),
        "unnormalised": rng.random((5, 4)),
    }[targets]
    check_op(
        lambda z, y: gc.SoftmaxCrossEntropy(z, y, reduction=reduction),
        [r(5, 4), t],
        free_batch=True,
    )


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_sce_gradcheck_other_axes_and_ranks(reduction):
    check_op(lambda z, y: gc.SoftmaxCrossEntropy(z, y, 0, reduction), [r(3, 5), probs(5, 3).T])
    t3 = special.softmax(r(2, 4, 3), axis=1)
    check_op(lambda z, y: gc.SoftmaxCrossEntropy(z, y, 1, reduction), [r(2, 4, 3), t3])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_sce_integer_targets(reduction):
    labels = rng.integers(0, 4, 6)
    check_op(
        lambda z, y: gc.SoftmaxCrossEntropy(z, y, reduction=reduction),
        [r(6, 4), labels],
        free_batch=True,
    )
    z = r(6, 4)
    v_int, d_int, _ = run_loss(gc.SoftmaxCrossEntropy, z, labels, reduction=reduction)
    v_hot, d_hot, _ = run_loss(gc.SoftmaxCrossEntropy, z, onehot(labels, 4), reduction=reduction)
    np.testing.assert_allclose(v_int, v_hot, rtol=1e-13)
    np.testing.assert_allclose(d_int, d_hot, rtol=1e-13, atol=1e-15)


def test_sce_integer_targets_middle_axis_and_int32():
    z = r(2, 5, 3)
    labels = rng.integers(0, 5, (2, 3)).astype(np.int32)
    t = np.moveaxis(onehot(labels, 5), -1, 1)
    check_op(lambda a, y: gc.SoftmaxCrossEntropy(a, y, axis=1, reduction="none"), [z, labels])
    v, d, _ = run_loss(gc.SoftmaxCrossEntropy, z, labels, axis=1)
    rv, rd = sce_ref(z, t, axis=1)
    np.testing.assert_allclose(v, rv, rtol=1e-13)
    np.testing.assert_allclose(d, rd, rtol=1e-12, atol=1e-15)


EXTREME = np.array(
    [
        [1000.0, -1000.0, 0.0, 999.0],
        [-1000.0, -1000.0, -1000.0, -1000.0],
        [1000.0, 1000.0, 1000.0, -1000.0],
    ]
)


@pytest.mark.parametrize("dt", [gc.Float64, gc.Float32])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("targets", ["onehot", "probs", "indices"])
def test_sce_stable_at_plus_minus_1000(dt, reduction, targets):
    labels = np.array([1, 2, 3])
    t = {"onehot": onehot(labels, 4), "probs": probs(3, 4), "indices": labels}[targets]
    tf = onehot(labels, 4) if targets == "indices" else t
    v, d, _ = run_loss(gc.SoftmaxCrossEntropy, EXTREME, t, dt, reduction=reduction)
    rv, rd = sce_ref(EXTREME, np.asarray(tf, dt.np), reduction=reduction)
    assert np.isfinite(v).all() and np.isfinite(d).all()
    tol = 1e-6 if dt == gc.Float32 else 1e-12
    np.testing.assert_allclose(v, rv, rtol=tol)
    np.testing.assert_allclose(d, rd, rtol=tol, atol=tol)


def test_sce_target_gradient_is_minus_log_softmax():
    z, t = EXTREME, probs(3, 4)
    g = gc.NewGraph()
    zn = gc.NodeFromAny(g, z, gc.WithName("z"))
    tn = gc.NodeFromAny(g, t, gc.WithName("t"))
    (dt,) = gc.Grad(gc.SoftmaxCrossEntropy(zn, tn, reduction="sum"), tn)
    gc.NewTapeMachine(g).run_all()
    want = -(z - special.logsumexp(z, axis=1, keepdims=True))
    assert np.isfinite(dt.value).all()
    np.testing.assert_allclose(dt.value, want, rtol=1e-12)


def test_sce_gradient_is_one_fused_node():
    # one fused node, which (unlike before second derivatives) is differentiable again
    _, _, dz = run_loss(gc.SoftmaxCrossEntropy, r(3, 4), probs(3, 4))
    assert dz.op.name == "SoftmaxCrossEntropyGrad" and dz.op.differentiable
    assert dz.op.expand(dz) is not None


def test_sce_errors():
    g = gc.NewGraph()
    z = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 10), gc.WithName("logits"))
    y5 = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 5), gc.WithName("y5"))
    y64 = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 10), gc.WithName("y64"))
    lab = gc.NewMatrix(g, gc.Int64, gc.WithShape(None, 1), gc.WithName("lab"))
    with pytest.raises(gc.ShapeError, match=r"'y5' \(None, 5\).*'logits' \(None, 10\)"):
        gc.SoftmaxCrossEntropy(z, y5)
    with pytest.raises(gc.ShapeError, match=r"'lab' \(None, 1\).*'logits'.*\(None,\)"):
        gc.SoftmaxCrossEntropy(z, lab)
    with pytest.raises(gc.DtypeError, match="'logits'.*'y64'"):
        gc.SoftmaxCrossEntropy(z, y64)
    with pytest.raises(gc.ShapeError, match="out of range"):
        gc.SoftmaxCrossEntropy(z, y5, axis=2)
    with pytest.raises(ValueError, match="reduction must be one of"):
        gc.SoftmaxCrossEntropy(z, y5, reduction="avg")
    with pytest.raises(gc.ShapeError, match="class axis"):
        gc.SoftmaxCrossEntropy(gc.NewConstant(1.0), gc.NewConstant(1.0))


def test_sce_batch_size_mismatch_found_at_run_time():
    g = gc.NewGraph()
    z = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("z"))
    y = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("y"))
    gc.SoftmaxCrossEntropy(z, y)
    gc.Let(z, r(4, 3))
    gc.Let(y, probs(5, 3))
    with pytest.raises(gc.ShapeError, match=r"'y' \(5, 3\).*'z' \(4, 3\)"):
        gc.NewTapeMachine(g).run_all()


def test_sce_class_index_out_of_range_names_targets():
    g = gc.NewGraph()
    z = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("z"))
    lab = gc.NewVector(g, gc.Int64, gc.WithShape(None), gc.WithName("labels"))
    cost = gc.SoftmaxCrossEntropy(z, lab)
    gc.Grad(cost, z)
    gc.Let(z, r(2, 3))
    vm = gc.NewTapeMachine(g)
    for bad in ([0, 3], [-1, 0]):
        gc.Let(lab, np.array(bad))
        with pytest.raises(ValueError, match=r"class index (3|-1) in targets 'labels'.*\[0, 3\)"):
            vm.run_all()


# ----- SigmoidBinaryCrossEntropy -----------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(5,), (5, 3), (2, 3, 2)])
def test_bce_gradcheck(reduction, shape):
    check_op(
        lambda z, y: gc.SigmoidBinaryCrossEntropy(z, y, reduction),
        [r(*shape), rng.random(shape)],
        free_batch=True,
    )


def test_bce_scalar_logit():
    check_op(gc.SigmoidBinaryCrossEntropy, [np.array(0.3), np.array(1.0)])


@pytest.mark.parametrize("dt", [gc.Float64, gc.Float32])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_stable_at_plus_minus_1000(dt, reduction):
    z = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 3.0]])
    t = np.array([[1.0, 0.0, 0.5], [1.0, 0.0, 0.25]])
    v, d, dz = run_loss(gc.SigmoidBinaryCrossEntropy, z, t, dt, reduction=reduction)
    rv, rd = bce_ref(z, t, reduction)
    assert np.isfinite(v).all() and np.isfinite(d).all()
    tol = 1e-6 if dt == gc.Float32 else 1e-12
    np.testing.assert_allclose(v, rv, rtol=tol)
    np.testing.assert_allclose(d, rd, rtol=tol, atol=tol)
    assert dz.op.name == "SigmoidBinaryCrossEntropyGrad"


def test_bce_errors():
    g = gc.NewGraph()
    z = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 1), gc.WithName("z"))
    y = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 2), gc.WithName("y"))
    y64 = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 1), gc.WithName("y64"))
    with pytest.raises(gc.ShapeError, match=r"'z' \(None, 1\).*'y' \(None, 2\)"):
        gc.SigmoidBinaryCrossEntropy(z, y)
    with pytest.raises(gc.DtypeError, match="'z'.*'y64'"):
        gc.SigmoidBinaryCrossEntropy(z, y64)
    with pytest.raises(ValueError, match="reduction"):
        gc.SigmoidBinaryCrossEntropy(z, y, reduction="mean_all")


# ----- no arrays allocated per run -------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sce-float", "sce-int", "sce-none", "bce", "bce-none"])
def test_loss_steps_allocate_no_arrays(kind):
    bs, classes = 400, 250  # one logits buffer: 800 kB
    g = gc.NewGraph()
    z = gc.NewMatrix(
        g, gc.Float64, gc.WithShape(bs, classes), gc.WithName("z"), gc.WithValue(r(bs, classes))
    )
    if kind == "sce-int":
        t = gc.NewVector(
            g,
            gc.Int64,
            gc.WithShape(bs),
            gc.WithName("t"),
            gc.WithValue(rng.integers(0, classes, bs)),
        )
    else:
        t = gc.NewMatrix(
            g,
            gc.Float64,
            gc.WithShape(bs, classes),
            gc.WithName("t"),
            gc.WithValue(rng.random((bs, classes))),
        )
    if kind.startswith("sce"):
        loss = gc.SoftmaxCrossEntropy(z, t, reduction="none" if kind == "sce-none" else "mean")
    else:
        loss = gc.SigmoidBinaryCrossEntropy(z, t, "none" if kind == "bce-none" else "mean")
    cost = loss if loss.shape == () else gc.Mean(loss)
    gc.Grad(cost, z, t) if t.dtype.is_float else gc.Grad(cost, z)
    vm = gc.NewTapeMachine(g, gc.BindDualValues(z))
    growth = peak_growth(vm.run_all, 20, warmup=3)
    # numpy's casting/broadcast buffers are at most 8192 elements (64 kB); a full temporary
    # would be 800 kB
    assert growth < 200_000, f"peak traced growth {growth} bytes over 20 runs"
