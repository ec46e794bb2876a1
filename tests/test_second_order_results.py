"""Second-order results on a whole model: a Hessian-vector product of a small MLP (tanh hidden
layer, softmax cross-entropy) against finite differences of its gradient, and a training
step with a gradient penalty (the cost contains its own gradient) that trains."""

import numpy as np
import pytest

import graphcore as gc

rng = np.random.default_rng(21)
X = rng.standard_normal((16, 4))
LABELS = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 0.5)
Y = np.eye(3)[LABELS]
SHAPES = {"w1": (4, 6), "b1": (1, 6), "w2": (6, 3), "b2": (1, 3)}


def softmax_xent_fused(logits, y):
    return gc.SoftmaxCrossEntropy(logits, y)


def softmax_xent_written_out(logits, y):
    # the talk's form; the Log(SoftMax) rewrite makes it LogSoftMax
    return gc.Neg(gc.Mean(gc.Sum(gc.HadamardProd(gc.Log(gc.SoftMax(logits)), y), 1)))


def mlp(xent):
    g = gc.NewGraph()
    x = gc.NodeFromAny(g, X, gc.WithName("x"))
    y = gc.NodeFromAny(g, Y, gc.WithName("y"))
    p = {k: gc.NewMatrix(g, gc.Float64, gc.WithShape(*s), gc.WithName(k),
                         gc.WithValue(rng.standard_normal(s) * 0.7)) for k, s in SHAPES.items()}
    logits = gc.Tanh(x @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"]
    return g, list(p.values()), xent(logits, y)


@pytest.mark.parametrize("xent", [softmax_xent_fused, softmax_xent_written_out])
def test_mlp_hessian_vector_product_matches_finite_differences_of_the_gradient(xent):
    g, params, loss = mlp(xent)
    grads = gc.Grad(loss, *params)
    # the direction v: input nodes fed with Let, so one graph gives H v for any v
    vs = [gc.NewMatrix(g, gc.Float64, gc.WithShape(*w.shape), gc.WithName(f"v_{w.name}"))
          for w in params]
    gv = gc.ReduceAdd([gc.Sum(d * v) for d, v in zip(grads, vs)])  # <grad, v>
    hv = gc.Grad(gv, *params)  # d<grad, v>/dparams = H v
    vm = gc.NewTapeMachine(g, gc.WithWatchlist(*grads, *hv))
    directions = [rng.standard_normal(w.shape) for w in params]
    for v, d in zip(vs, directions):
        gc.Let(v, d)
    vm.run_all()
    analytic = np.concatenate([h.value.ravel() for h in hv])

    base = [w.value.copy() for w in params]

    def gradient_at(t):
        for w, b, d in zip(params, base, directions):
            gc.Let(w, b + t * d)
        vm.run_all()
        return np.concatenate([d.value.ravel() for d in grads])

    eps = 1e-5
    numeric = (gradient_at(eps) - gradient_at(-eps)) / (2 * eps)
    gradient_at(0.0)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)
    assert np.abs(analytic).max() > 1e-2  # a real curvature, not zeros matching zeros


def test_gradient_penalty_training_step_trains():
    g, params, loss = mlp(softmax_xent_fused)
    gc.SetSeed(0)
    dloss = gc.Grad(loss, *params)
    penalty = gc.ReduceAdd([gc.Sum(gc.Square(d)) for d in dloss])  # |grad loss|^2
    total = loss + 0.5 * penalty
    dtotal = gc.Grad(total, *params)  # through the gradient nodes: second derivatives
    assert all(w.deriv is d for w, d in zip(params, dtotal))
    vm = gc.NewTapeMachine(g, gc.BindDualValues(*params), gc.WithWatchlist(loss, penalty))

    # the first gradient is right: a directional finite difference of the penalised cost
    vm.run_all()
    analytic = [w.grad.copy() for w in params]
    base = [w.value.copy() for w in params]
    u = [rng.standard_normal(w.shape) for w in params]
    check = gc.NewTapeMachine(g.subgraph_roots(total), gc.WithWatchlist(total))

    def total_at(t):
        for w, b, d in zip(params, base, u):
            gc.Let(w, b + t * d)
        check.run_all()
        return float(total.value)

    numeric = (total_at(1e-6) - total_at(-1e-6)) / 2e-6
    total_at(0.0)
    assert numeric == pytest.approx(sum(np.sum(a * d) for a, d in zip(analytic, u)), rel=1e-6)

    solver = gc.NewAdamSolver(gc.WithLearnRate(0.03))
    solver.step(params)
    costs, norms = [], []
    for _ in range(40):
        vm.run_all()
        costs.append(float(total.value))
        norms.append(float(np.sqrt(penalty.value)))
        solver.step(params)
    assert costs[-1] < 0.5 * costs[0]
    assert norms[-1] < 0.5 * norms[0]
    assert np.mean(costs[-10:]) < np.mean(costs[:10]) and np.mean(norms[-10:]) < np.mean(norms[:10])
