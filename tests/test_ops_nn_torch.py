"""The NN ops against PyTorch (optional: skipped without torch), in float64 and float32:
values, and gradients for the same upstream gradient."""

import numpy as np
import pytest

import graphcore as gc

torch = pytest.importorskip("torch")
F = torch.nn.functional

rng = np.random.default_rng(5)
TOL = {gc.Float64: 1e-10, gc.Float32: 2e-5}
DTYPES = [gc.Float64, gc.Float32]


def r(*shape):
    return rng.standard_normal(shape)


def ours(build, arrays, dt, ints=()):
    """Value of ``build`` on input nodes of ``arrays`` (float ones in ``dt``, the positions in
    ``ints`` kept as integers) and the gradients of ``sum(y * up)`` for the float inputs."""
    g = gc.NewGraph()
    nodes = []
    for i, a in enumerate(arrays):
        a = np.asarray(a) if i in ints else np.asarray(a, dt.np)
        nodes.append(gc.NodeFromAny(g, a, gc.WithName(f"in{i}")))
    y = build(*nodes)
    up = np.random.default_rng(1).standard_normal(y.shape)
    cost = gc.Sum(y * gc.NewConstant(up, dtype=y.dtype))
    wrt = [n for i, n in enumerate(nodes) if i not in ints]
    grads = gc.Grad(cost, *wrt)
    gc.NewTapeMachine(g, gc.WithWatchlist(y)).run_all()
    return y.value.copy(), [d.value.copy() for d in grads], up


def theirs(fn, arrays, up, dt, ints=()):
    """``fn`` on torch tensors of ``arrays`` and the gradients of ``sum(y * up)``."""
    ts = []
    for i, a in enumerate(arrays):
        if i in ints:
            ts.append(torch.tensor(np.asarray(a)))
        else:
            ts.append(torch.tensor(np.asarray(a, dt.np), requires_grad=True))
    y = fn(*ts)
    (y * torch.tensor(up, dtype=y.dtype)).sum().backward()
    return y.detach().numpy(), [t.grad.numpy() for i, t in enumerate(ts) if i not in ints]


def compare(build, fn, arrays, dt, ints=(), tol=None):
    tol = TOL[dt] if tol is None else tol
    y, grads, up = ours(build, arrays, dt, ints)
    ty, tgrads = theirs(fn, arrays, up, dt, ints)
    np.testing.assert_allclose(y, ty, rtol=tol, atol=tol)
    for a, b in zip(grads, tgrads, strict=True):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("pad,stride,dil", [(0, 1, 1), (1, 2, 1), (2, 1, 2), (0, 3, 2)])
def test_conv1d(dt, pad, stride, dil):
    compare(lambda x, w: gc.Conv1d(x, w, pad=pad, stride=stride, dilation=dil),
            lambda x, w: F.conv1d(x, w, padding=pad, stride=stride, dilation=dil),
            [r(2, 3, 11), r(4, 3, 3)], dt)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("k,p,s,d", [((2, 2), (0, 0), (1, 1), (1, 1)),
                                     ((3, 2), (1, 0), (2, 1), (1, 2)),
                                     ((2, 3), (1, 2), (3, 2), (2, 1))])
def test_im2col_is_unfold(dt, k, p, s, d):
    def unfold(x):  # (N, C*kh*kw, L) -> our (N, Ho, Wo, C*kh*kw)
        cols = F.unfold(x, k, dilation=d, padding=p, stride=s)
        ho = (x.shape[2] + 2 * p[0] - d[0] * (k[0] - 1) - 1) // s[0] + 1
        return cols.transpose(1, 2).reshape(x.shape[0], ho, -1, cols.shape[1])

    compare(lambda x: gc.Im2Col(x, k, p, s, d), unfold, [r(2, 3, 7, 8)], dt)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("k,p,s", [(2, 0, 2), (3, 1, 2), (3, 1, 1), (2, 1, 3)])
def test_pool1d(dt, k, p, s):
    x = rng.permutation(2 * 3 * 9).reshape(2, 3, 9) / 7.0  # no ties
    compare(lambda a: gc.MaxPool1D(a, k, p, s), lambda a: F.max_pool1d(a, k, s, p), [x], dt)
    compare(lambda a: gc.AveragePool1D(a, k, p, s), lambda a: F.avg_pool1d(a, k, s, p), [x], dt)


@pytest.mark.parametrize("dt", DTYPES)
def test_global_average_pool_is_adaptive_avg_pool_to_1(dt):
    compare(gc.GlobalAveragePool2D, lambda a: F.adaptive_avg_pool2d(a, 1), [r(2, 3, 4, 5)], dt)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("scale", [2, 3, (2, 3)])
def test_upsample_is_interpolate_nearest(dt, scale):
    factor = scale if isinstance(scale, int) else tuple(float(v) for v in scale)
    compare(lambda a: gc.Upsample2D(a, scale),
            lambda a: F.interpolate(a, scale_factor=factor, mode="nearest"), [r(2, 3, 3, 4)], dt)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_binary_xent_is_binary_cross_entropy(dt, reduction):
    p, t = rng.uniform(0.02, 0.98, (5, 3)), rng.random((5, 3))
    compare(lambda a, b: gc.BinaryXent(a, b, reduction),
            lambda a, b: F.binary_cross_entropy(a, b, reduction=reduction), [p, t], dt)


def test_binary_xent_at_0_and_1_is_binary_cross_entropy_in_float64():
    # both floor each log at -100; the gradients differ there (ours is the floored loss's)
    p, t = np.array([0.0, 0.0, 1.0, 1.0]), np.array([1.0, 0.3, 0.0, 0.6])
    y, _, _ = ours(gc.BinaryXent, [p, t], gc.Float64)
    want = F.binary_cross_entropy(torch.tensor(p), torch.tensor(t), reduction="none")
    np.testing.assert_allclose(y, want.numpy(), rtol=1e-12)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("shape,groups", [((3, 6), 3), ((2, 6, 5), 2), ((2, 4, 3, 3), 2),
                                          ((2, 4, 3, 3), 1), ((2, 4, 2, 2), 4)])
def test_group_norm(dt, shape, groups):
    c = shape[1]
    compare(lambda x, s, b: gc.GroupNorm(x, s, b, groups, 1e-5),
            lambda x, s, b: F.group_norm(x, groups, s, b, 1e-5),
            [r(*shape) * 2 + 1, r(c), r(c)], dt, tol=1e-10 if dt == gc.Float64 else 1e-4)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_ctc_loss_through_log_softmax(dt, reduction):
    # through a log-softmax, since torch's gradient for the log-probs themselves differs from
    # the true one by exp(log_probs), which the log-softmax's gradient removes
    t_len, n, c, s = 12, 5, 6, 4
    targets = rng.integers(1, c, (n, s))
    targets[0, :2] = 3  # a repeat: needs a blank between
    il, tl = np.array([12, 10, 12, 7, 9]), np.array([4, 3, 0, 2, 4])
    compare(lambda z, *a: gc.CTCLoss(gc.LogSoftMax(z), *a, reduction=reduction),
            lambda z, *a: F.ctc_loss(F.log_softmax(z, -1), *a, blank=0, reduction=reduction),
            [r(t_len, n, c), targets, il, tl], dt, ints=(1, 2, 3),
            tol=1e-10 if dt == gc.Float64 else 1e-4)
