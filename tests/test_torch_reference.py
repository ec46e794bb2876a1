"""The new Gorgonia ops and ``Backpropagate`` against PyTorch, where torch has the same thing:
values, gradients and Hessian-vector products in float64. Skipped without torch."""

import numpy as np
import pytest

import graphcore as gc

torch = pytest.importorskip("torch")

rng = np.random.default_rng(17)


def r(*shape):
    return rng.standard_normal(shape)


def compare(ours, theirs, inputs, second=True, rtol=1e-10):
    """Values, the gradient of sum(out * R) and (``second``) its product with V, from
    graphcore and from torch."""
    g = gc.NewGraph()
    nodes = [gc.NodeFromAny(g, a, gc.WithName(f"in{i}")) for i, a in enumerate(inputs)]
    out = ours(*nodes)
    R = r(*out.shape)
    V = [r(*a.shape) for a in inputs]
    cost = gc.Sum(out * gc.NewConstant(R))
    grads = gc.Grad(cost, *nodes)
    watch = [out, *grads]
    if second:
        hv = gc.Grad(gc.ReduceAdd([gc.Sum(d * gc.NewConstant(v)) for d, v in zip(grads, V)]),
                     *nodes)
        watch += hv
    gc.NewTapeMachine(g, gc.WithWatchlist(*watch)).run_all()

    ts = [torch.tensor(a, requires_grad=True) for a in inputs]
    tout = theirs(*ts)
    tgrads = torch.autograd.grad((tout * torch.tensor(R)).sum(), ts, create_graph=second,
                                 allow_unused=True)
    tgrads = [torch.zeros_like(t) if d is None else d for t, d in zip(ts, tgrads)]
    np.testing.assert_allclose(out.value, tout.detach().numpy(), rtol=rtol, atol=1e-12)
    for d, td in zip(grads, tgrads):
        np.testing.assert_allclose(d.value, td.detach().numpy(), rtol=rtol, atol=1e-12)
    if second:
        gv = sum((d * torch.tensor(v)).sum() for d, v in zip(tgrads, V))
        thv = torch.autograd.grad(gv, ts, allow_unused=True)
        for h, th in zip(hv, thv):
            want = np.zeros(h.shape) if th is None else th.numpy()
            np.testing.assert_allclose(h.value, want, rtol=rtol, atol=1e-12)


@pytest.mark.parametrize("ours, theirs", [(gc.Ceil, torch.ceil), (gc.Floor, torch.floor)])
def test_ceil_floor(ours, theirs):
    compare(lambda x: ours(x) * gc.Sin(x), lambda x: theirs(x) * torch.sin(x), [r(3, 4) * 3])


@pytest.mark.parametrize("ours, theirs", [(gc.MaxBetween, torch.maximum),
                                          (gc.MinBetween, torch.minimum)])
def test_min_max_between(ours, theirs):
    compare(lambda a, b: ours(a, b) * a, lambda a, b: theirs(a, b) * a, [r(3, 4), r(3, 4)])


def test_conv_type():
    compare(lambda x: gc.ConvType(gc.Square(gc.ConvType(x, gc.Float32)), gc.Float64) * x,
            lambda x: torch.square(x.to(torch.float32)).to(torch.float64) * x,
            [r(5)], rtol=1e-6)


def test_keep_dims_and_size_of_write_a_softmax_and_a_mean():
    def ours(x):
        e = gc.Exp(x - gc.KeepDims(x, False, lambda t: gc.Max(t, 1)))
        sm = e / gc.KeepDims(e, False, lambda t: gc.Sum(t, 1))
        return gc.Sum(sm * x, 0) / gc.SizeOf(0, x)

    compare(ours, lambda x: (torch.softmax(x, 1) * x).mean(0), [r(4, 5)])


def test_reduce_add_mul():
    compare(lambda a, b, c: gc.ReduceAdd([a, b, c]) * gc.ReduceMul([a, b, c]),
            lambda a, b, c: (a + b + c) * (a * b * c), [r(2, 3), r(2, 3), r(2, 3)])


def test_at():
    compare(lambda x: gc.At(x, 1, 2) * gc.At(x, -1, 0) * x,
            lambda x: x[1, 2] * x[-1, 0] * x, [r(3, 4)])


def test_diag_flat():
    compare(lambda x, w: gc.Tanh(gc.Mul(gc.DiagFlat(gc.Square(x)), w)),
            lambda x, w: torch.tanh(torch.diagflat(torch.square(x)) @ w), [r(2, 2), r(4, 3)])


def test_auto_and_broadcast():
    def ours(a, b):
        p, q = gc.Broadcast(a, b, gc.NewBroadcastPattern([1], [0]))
        return gc.Auto(gc.BroadcastHadamardProd, gc.Sin(p), q) + gc.Auto(gc.Pow, p * p, q)

    compare(ours, lambda a, b: torch.sin(a[:, None]) * b[None] + (a[:, None] ** 2) ** b[None],
            [r(3), r(4)])


def test_backpropagate_is_torchs_vector_jacobian_product():
    A = r(5, 4)
    g = gc.NewGraph()
    x = gc.NodeFromAny(g, r(4), gc.WithName("x"))
    v = gc.NewVector(g, gc.Float64, gc.WithShape(5), gc.WithName("v"))
    y = gc.Tanh(gc.Mul(gc.NewConstant(A), x)) * gc.Sum(gc.Square(x))
    (vjp,) = gc.Backpropagate(y, v, x)
    vm = gc.NewTapeMachine(g)
    tx = torch.tensor(x.value, requires_grad=True)
    ty = torch.tanh(torch.tensor(A) @ tx) * (tx**2).sum()
    for _ in range(3):
        v0 = r(5)
        gc.Let(v, v0)
        vm.run_all()
        (want,) = torch.autograd.grad(ty, tx, grad_outputs=torch.tensor(v0), retain_graph=True)
        np.testing.assert_allclose(vjp.value, want.numpy(), rtol=1e-10)


def test_mlp_hessian_vector_product():
    X, Y = r(8, 4), np.eye(3)[rng.integers(0, 3, 8)]

    def ours(w1, w2):
        logits = gc.Tanh(gc.NewConstant(X) @ w1) @ w2
        return gc.SoftmaxCrossEntropy(logits, gc.NewConstant(Y))

    def theirs(w1, w2):
        logits = torch.tanh(torch.tensor(X) @ w1) @ w2
        return torch.nn.functional.cross_entropy(logits, torch.tensor(Y))

    compare(ours, theirs, [r(4, 5), r(5, 3)])
