"""The talk's MLP, written exactly as the talk wrote it, learns synthetic digits.

The data: 10 class prototypes in [0, 1]^784 (sparse blobs of "ink") plus pixel noise, 3000
samples, one-hot labels. Chance is 10%; the MLP must do far better within a few epochs.
"""

import numpy as np
import pytest

import graphcore as gc

pytestmark = pytest.mark.skipif(
    not all(
        hasattr(gc, n)
        for n in ("NewRMSPropSolver", "WithBatchSize", "NodesToValueGrads", "GlorotN", "Ones")
    ),
    reason="graphcore.solvers / graphcore.init not available yet",
)


def synthetic_digits(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    protos = (rng.random((10, 784)) < 0.15).astype(np.float32)  # ~120 inked pixels each
    labels = rng.integers(0, 10, n)
    x = protos[labels] * rng.uniform(0.6, 1.0, (n, 784)).astype(np.float32)
    x += rng.normal(0.0, 0.3, (n, 784)).astype(np.float32)  # heavy noise
    x = np.clip(x, 0.0, 1.0, out=x)
    flip = rng.random((n, 784)) < 0.05  # and 5% of pixels flipped
    x[flip] = 1.0 - x[flip]
    y = np.eye(10, dtype=np.float32)[labels]
    return x, y, labels


def test_talk_mlp_learns():
    gc.SetSeed(0)
    X, Y, labels = synthetic_digits()
    rng = np.random.default_rng(1)

    # ---- the talk's program, line by line ----
    # fmt: off
    bs = 100
    g = gc.NewGraph()
    dt = gc.Float32
    x = gc.NewMatrix(g, dt, gc.WithShape(bs, 784), gc.WithName("x"))
    y = gc.NewMatrix(g, dt, gc.WithShape(bs, 10), gc.WithName("y"))
    w1 = gc.NewMatrix(g, dt, gc.WithShape(784, 250), gc.WithName("w1"), gc.WithInit(gc.GlorotN(1.0)))  # noqa: E501
    b1 = gc.NewMatrix(g, dt, gc.WithShape(1, 250), gc.WithName("b1"), gc.WithInit(gc.GlorotN(1.0)))
    w2 = gc.NewMatrix(g, dt, gc.WithShape(250, 100), gc.WithName("w2"), gc.WithInit(gc.GlorotN(1.0)))  # noqa: E501
    b2 = gc.NewMatrix(g, dt, gc.WithShape(1, 100), gc.WithName("b2"), gc.WithInit(gc.GlorotN(1.0)))
    w3 = gc.NewMatrix(g, dt, gc.WithShape(100, 10), gc.WithName("w3"), gc.WithInit(gc.GlorotN(1.0)))
    b3 = gc.NewMatrix(g, dt, gc.WithShape(1, 10), gc.WithName("b3"), gc.WithInit(gc.GlorotN(1.0)))
    ones = gc.NewMatrix(g, dt, gc.WithShape(bs, 1), gc.WithName("ones"), gc.WithInit(gc.Ones()))
    l1 = gc.Rectify(gc.Add(gc.Mul(x, w1), gc.Mul(ones, b1)))
    l2 = gc.Rectify(gc.Add(gc.Mul(l1, w2), gc.Mul(ones, b2)))
    out = gc.SoftMax(gc.Add(gc.Mul(l2, w3), gc.Mul(ones, b3)))
    cost = gc.Neg(gc.Mean(gc.Sum(gc.HadamardProd(y, gc.Log(out)), 1)))
    learnables = [w1, b1, w2, b2, w3, b3]
    gc.Grad(cost, *learnables)
    vm = gc.NewTapeMachine(g, gc.BindDualValues(*learnables))
    solver = gc.NewRMSPropSolver(gc.WithBatchSize(bs))
    # fmt: on
    # -------------------------------------------

    epochs = 3
    losses: list[list[float]] = []
    correct = 0
    for epoch in range(epochs):
        perm = rng.permutation(len(X))
        losses.append([])
        batches = ((X[perm[i : i + bs]], Y[perm[i : i + bs]]) for i in range(0, len(X), bs))
        for xb, yb in batches:
            gc.Let(x, xb)
            gc.Let(y, yb)  # noqa: E702 - as in the talk
            vm.run_all()
            solver.step(gc.NodesToValueGrads(learnables))
            vm.reset()
            losses[-1].append(float(cost.value))
            if epoch == epochs - 1:  # training accuracy, before each batch's update
                correct += int((out.value.argmax(1) == yb.argmax(1)).sum())
    first, last = losses[0][0], float(np.mean(losses[-1]))
    assert np.isfinite(losses).all()
    assert first > 1.5  # about ln(10) at the start
    assert last < 0.25 * first, f"loss went from {first:.3f} to {last:.3f} only"
    accuracy = correct / len(X)
    assert accuracy > 0.8, f"training accuracy {accuracy:.3f} (chance is 0.1)"
