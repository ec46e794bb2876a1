"""Logistic regression with graphcore, the update rule written into the graph.

Twin of Gorgonia's ``examples/logisticregression``: 26,733 rows of 10 features uniform in
[0, 1); ``w`` (10,) starts uniform in [0, 1) and the bias ``b`` at 0. The graph holds the
prediction ``sigmoid(x @ w + b)``, the decision ``prob > 0.5``, the binary cross-entropy
written out term by term, an L2 penalty ``0.01 * sum(w^2)``, the gradients, and the update
``w - 0.1 * dcost/dw`` itself: each of the 500 full-batch iterations runs the graph and copies
the updated values back into ``w`` and ``b`` (Gorgonia's ``machine.Set``). No solver object.
As in Gorgonia, the training machine covers only the nodes the updates and the decision need
(``CompileFunction`` there, ``g.subgraph_roots`` here) and a second, forward-only machine
predicts at the end.

Differences from Gorgonia's program:
- Labels. Gorgonia draws ``y`` at random, independent of ``x``, so its training accuracy
  hovers around 50% and shows nothing. Here ``y`` is drawn from a hidden logistic model,
  ``P(y = 1) = sigmoid(4 * (x - 0.5) @ w_true)``, so there is something to learn, and the
  program prints the accuracy of the hidden model itself (the best one can expect) next to
  the fitted one. ``--random-labels`` gives Gorgonia's data (about 0.5 accuracy).
- The loss is written as in Gorgonia. graphcore rewrites ``Log(Sigmoid(z))`` into a stable
  form when the node is built, but not ``Log(1 - Sigmoid(z))`` (write ``Sigmoid(Neg(z))``
  for ``1 - Sigmoid(z)``, or use ``gc.SigmoidBinaryCrossEntropy`` on the logits, when the
  logits can be large; here they stay small).
- No ``--static`` data files, no CPU/memory profiling flags; progress every 50 iterations.

Flags: ``--iter`` (500), ``--seed`` (1337), ``--random-labels``; ``--quick`` changes nothing (the
run takes about a second). The last line is ``result: train_accuracy=<share>``.
"""

from __future__ import annotations

import argparse

import numpy as np

import graphcore as gc

N = 26_733  # rows
FEATS = 10  # features


def make_data(rng: np.random.Generator, random_labels: bool) -> tuple[np.ndarray, ...]:
    x = rng.random((N, FEATS))
    w_true = rng.normal(0.0, 1.0, FEATS)
    p_true = 1.0 / (1.0 + np.exp(-4.0 * (x - 0.5) @ w_true))
    y = rng.random(N) < (0.5 if random_labels else p_true)
    best = np.mean((p_true > 0.5) == y)  # accuracy of the hidden model on these labels
    return x, y.astype(np.float64), float(best)


def main(argv: list[str] | None = None) -> float:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iter", type=int, default=500, help="training iterations (full batch)")
    ap.add_argument("--seed", type=int, default=1337, help="seeds the data and w's start")
    ap.add_argument("--random-labels", action="store_true", help="Gorgonia's labels: coin flips")
    ap.add_argument("--quick", action="store_true", help="(no effect: already about 1 s)")
    args = ap.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    xs, ys, best = make_data(rng, args.random_labels)

    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(N, FEATS), gc.WithName("x"))
    y = gc.NewVector(g, gc.Float64, gc.WithShape(N), gc.WithName("y"))
    w = gc.NewVector(g, gc.Float64, gc.WithShape(FEATS), gc.WithName("w"))
    b = gc.NewScalar(g, gc.Float64, gc.WithName("bias"))

    # prediction: sigmoid(x @ w + b), and the decision prob > 0.5 as booleans
    prob = gc.Sigmoid(gc.Add(gc.Mul(x, w), b))
    pred = gc.Gt(prob, 0.5)

    # binary cross-entropy, -y log(p) - (1 - y) log(1 - p), term by term
    first = gc.HadamardProd(gc.Neg(y), gc.Log(prob))
    second = gc.HadamardProd(gc.Sub(1.0, y), gc.Log(gc.Sub(1.0, prob)))
    loss = gc.Mean(gc.Sub(first, second))
    cost = gc.Add(loss, gc.Mul(0.01, gc.Sum(gc.Square(w))))  # + L2 penalty against overfitting

    # The gradients are nodes, so the gradient-descent step can be nodes too.
    dw, db = gc.Grad(cost, w, b)
    learn_rate = 0.1
    w_upd = gc.Sub(w, gc.Mul(learn_rate, dw))
    b_upd = gc.Sub(b, gc.Mul(learn_rate, db))

    # Train on the subgraph that computes the updates, the decision and the cost (to print
    # it: the gradients do not need the cost's value, so it would be left out otherwise).
    train = gc.NewTapeMachine(g.subgraph_roots(w_upd, b_upd, pred, cost))
    gc.Let(w, rng.random(FEATS))
    gc.Let(b, 0.0)
    gc.Let(x, xs)  # the inputs never change: bind them once
    gc.Let(y, ys)
    for i in range(args.iter):
        train.run_all()
        accuracy = float(np.mean(pred.value == ys.astype(bool)))  # before this update
        gc.Let(w, w_upd.value)  # Gorgonia's machine.Set(w, wUpd)
        gc.Let(b, b_upd.value)
        train.reset()
        if i % 50 == 0 or i == args.iter - 1:
            print(f"iter {i:3d}  cost {float(cost.value):.4f}  training accuracy {accuracy:.4f}")
    print(f"final model: w = {np.array2string(w.value, precision=3)}, b = {float(b.value):.3f}")

    # A forward-only program from x to the decision, with the trained w and b.
    predict = gc.NewTapeMachine(g.subgraph_roots(pred), gc.ExecuteFwdOnly())
    predict.run_all()
    result = float(np.mean(pred.value == ys.astype(bool)))
    print(f"the hidden model's own accuracy on these labels: {best:.4f}")
    print(f"result: train_accuracy={result:.4f}")
    return result


if __name__ == "__main__":
    main()
