"""Linear regression with graphcore: fit ``y = m*x + c`` by gradient descent, in float32 and
float64.

Twin of Gorgonia's ``Example_linearRegression`` (``example_linearregression_test.go``): the data
is ``x = 1, 2, ..., 10000`` and ``y = 2x + u`` with ``u`` uniform in [0, 1); ``m`` and ``c`` are
scalar learnables, the cost is the mean squared error, and a vanilla solver with learn rate
0.001 and gradients clipped to [-5, 5] takes 500 full-batch steps. Gorgonia prints
``y = 2.001x + 2.001`` for both dtypes.

Why the intercept is nowhere near 0.5 (the mean of ``u``): ``x`` is not scaled, so the
gradients are far larger than 5 and get clipped. Gorgonia draws both starting values right after
reseeding its generator, so ``m`` and ``c`` start equal, and while ``m < 2`` both gradients are
clipped to -5: the two climb together by 0.005 a step. Once ``m`` reaches 2 it oscillates about
it by 0.005, and ``c`` only creeps down towards 0.5, by well under 0.005 a step; after 500 steps
it is still near 2. This program keeps all of that (``--seed`` seeds the one draw); scaling
``x`` (to [0, 1], say) is the usual cure.

Differences from Gorgonia's program: none in the model, data or solver; the noise comes from
numpy's generator, so the digits differ (``c`` ends near 1.8 here). Flags: ``--iter`` (500),
``--seed``. The last line is ``result: slope=<m in float64>``.
"""

from __future__ import annotations

import argparse

import numpy as np

import graphcore as gc


def linear_regression(dt: gc.Dtype, iters: int, seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    n = 10_000
    xs = np.arange(1, n + 1, dtype=dt.np)
    ys = (2 * xs + rng.random(n)).astype(dt.np)
    start = rng.random()  # one draw for both, as Gorgonia's reseeded rand gives

    g = gc.NewGraph()
    # Inputs that never change can carry their value from the start (WithValue).
    x = gc.NewVector(g, dt, gc.WithShape(n), gc.WithName("x"), gc.WithValue(xs))
    y = gc.NewVector(g, dt, gc.WithShape(n), gc.WithName("y"), gc.WithValue(ys))
    m = gc.NewScalar(g, dt, gc.WithName("m"), gc.WithValue(start))
    c = gc.NewScalar(g, dt, gc.WithName("c"), gc.WithValue(start))

    pred = gc.Add(gc.Mul(x, m), c)  # a vector times a scalar: scales every element
    cost = gc.Mean(gc.Square(gc.Sub(pred, y)))
    gc.Grad(cost, m, c)

    # BindDualValues(m, c): each run adds dcost/dm into m.grad (and c's), for the solver.
    machine = gc.NewTapeMachine(g, gc.BindDualValues(m, c))
    solver = gc.NewVanillaSolver(gc.WithLearnRate(0.001), gc.WithClip(5))  # clipping helps
    for _ in range(iters):
        machine.run_all()
        solver.step([m, c])  # w -= lr * clip(grad), then the gradients are zeroed
        machine.reset()
    return float(m.value), float(c.value)


def main(argv: list[str] | None = None) -> float:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iter", type=int, default=500, help="gradient steps (full batch)")
    ap.add_argument("--seed", type=int, default=13370, help="seeds the noise and the start")
    ap.add_argument("--quick", action="store_true", help="(no effect: already takes < 1 s)")
    args = ap.parse_args(argv)

    for dt in (gc.Float32, gc.Float64):
        m, c = linear_regression(dt, args.iter, args.seed)
        print(f"{dt.name.lower()}: y = {m:.3f}x + {c:.3f}")
    print(f"result: slope={m:.4f}")
    return m


if __name__ == "__main__":
    main()
