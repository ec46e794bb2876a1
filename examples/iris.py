"""Multivariate linear regression on Fisher's iris data with graphcore, checked against the
normal equation.

Twin of Gorgonia's ``examples/iris``: the four measurements plus a column of ones form ``X``
(150, 5); the species, coded 1, 2, 3 in order of first appearance (setosa, versicolor,
virginica), is the target ``y``. ``theta`` (5,) starts from N(0, 1); the cost is the mean
squared error of ``X @ theta``; a vanilla solver (learn rate 0.001) takes 10,000 full-batch
steps. "Accuracy" is Gorgonia's: the share of flowers whose prediction rounds to their code.
Its companion ``cmd/main.go`` reads the saved ``theta`` and classifies a typed-in flower by
rounding ``x @ theta``; here ``--save`` writes ``theta`` and the end of the run classifies
three flowers the same way, in a second small graph.

Differences from Gorgonia's program:
- Data: ``examples/data/iris.csv`` is the public-domain copy that scikit-learn ships (Fisher's
  published table, as in R). Gorgonia's copy is the UCI file, which differs in two rows
  (35 and 38); the fit barely changes.
- No dataframe library: the CSV is read with numpy. Progress is printed every 1,000 steps
  rather than at every step, and ``theta`` is saved with ``numpy.save`` (``--save``), not gob.
- Gorgonia's ``cmd`` names code 2 "virginica" and 3 "versicolor"; the codes follow the file
  order, so here 2 is versicolor and 3 virginica.

Flags: ``--iter`` (10000), ``--lr`` (0.001), ``--seed``, ``--save PATH``; ``--quick`` changes
nothing (the run takes well under a second). The last line is ``result: train_accuracy=<share>``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import graphcore as gc

DATA = Path(__file__).resolve().parent / "data" / "iris.csv"


def load_iris() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``X`` (150, 5) with a bias column, ``y`` (150,) species codes 1..3, the species names."""
    rows = np.loadtxt(DATA, delimiter=",", skiprows=1, dtype=str)
    species = list(dict.fromkeys(rows[:, 4]))  # in order of first appearance
    y = np.array([species.index(s) + 1 for s in rows[:, 4]], dtype=np.float64)
    x = np.hstack([rows[:, :4].astype(np.float64), np.ones((len(rows), 1))])
    return x, y, species


def accuracy(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.round(pred - y) == 0))


def main(argv: list[str] | None = None) -> float:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iter", type=int, default=10_000, help="gradient steps (full batch)")
    ap.add_argument("--lr", type=float, default=0.001, help="learn rate")
    ap.add_argument("--seed", type=int, default=0, help="seeds theta's start")
    ap.add_argument("--save", type=Path, help="write the fitted theta here (.npy)")
    ap.add_argument("--quick", action="store_true", help="(no effect: already takes < 1 s)")
    args = ap.parse_args(argv)
    iters = args.iter

    xs, ys, species = load_iris()
    # The exact least-squares answer, for comparison: theta = (X^T X)^-1 X^T y.
    exact = np.linalg.solve(xs.T @ xs, xs.T @ ys)
    print("normal equation theta:", np.array2string(exact, precision=3),
          f" accuracy {accuracy(xs @ exact, ys):.3f}")

    gc.SetSeed(args.seed)
    g = gc.NewGraph()
    x = gc.NodeFromAny(g, xs, gc.WithName("x"))  # a node holding the data as its value
    y = gc.NodeFromAny(g, ys, gc.WithName("y"))
    theta = gc.NewVector(
        g, gc.Float64, gc.WithShape(5), gc.WithName("theta"), gc.WithInit(gc.Gaussian(0, 1))
    )
    pred = gc.Mul(x, theta)  # matrix @ vector: one prediction per flower
    cost = gc.Mean(gc.Square(gc.Sub(pred, y)))
    gc.Grad(cost, theta)

    # The machine may reuse `pred`'s buffer for later steps; the watchlist keeps it readable,
    # as Gorgonia's Read(pred, &predicted) does.
    machine = gc.NewTapeMachine(g, gc.BindDualValues(theta), gc.WithWatchlist(pred))
    solver = gc.NewVanillaSolver(gc.WithLearnRate(args.lr))
    for i in range(iters):
        machine.run_all()
        if i % 1000 == 0 or i == iters - 1:
            print(f"iter {i:5d}  cost {float(cost.value):.4f}  "
                  f"accuracy {accuracy(pred.value, ys):.3f}")
        solver.step([theta])
        machine.reset()
    fitted = theta.value.copy()
    print("gradient descent theta:", np.array2string(fitted, precision=3))
    if args.save:
        np.save(args.save, fitted)

    # Gorgonia's cmd/main.go: a graph that maps one flower to its code with the saved theta.
    g2 = gc.NewGraph()
    flower = gc.NewVector(g2, gc.Float64, gc.WithShape(5), gc.WithName("flower"))
    code = gc.Mul(flower, gc.NodeFromAny(g2, fitted, gc.WithName("theta")))  # a dot product
    classify = gc.NewTapeMachine(g2)
    for row in (0, 60, 120):
        gc.Let(flower, xs[row])
        classify.run_all()
        k = int(np.round(float(code.value)))
        guess = species[k - 1] if 1 <= k <= 3 else "unknown iris"
        print(f"flower {row:3d} {xs[row, :4]}: {guess} (is {species[int(ys[row]) - 1]})")

    machine.run_all()  # predictions with the final theta
    result = accuracy(pred.value, ys)
    print(f"result: train_accuracy={result:.4f}")
    return result


if __name__ == "__main__":
    main()
