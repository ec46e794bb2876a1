"""The talk's MNIST MLP (784-250-100-10, ReLU), the golgi way: ``ComposeSeq`` and ``fit``.

Golgi-way twin of ``examples/talk_mlp.py``, which writes the same network with graphcore alone,
line by line as in the talk: every weight a node, the bias added through a column of ones,
the softmax and the log written out, and a hand-written loop. Here:

- ``G.ComposeSeq(x, L(ConsFC(...)), ...)`` makes the layers; each sizes its weights from the
  layer before it, so only the output widths are written.
- The last layer gives logits and ``G.CrossEntropy`` puts the softmax inside the loss
  (the talk's ``Log(SoftMax(...))`` is rewritten to the same stable ``LogSoftMax``).
- ``G.fit`` builds the gradients and the machines, shuffles, batches, steps the solver and
  scores the test set each epoch in eval mode.

Kept from the talk: ``GlorotN(1.0)`` weights (golgi's FC default is ``GlorotU``), batch 100,
and its solver ``NewRMSPropSolver(WithBatchSize(100))``, which in graphcore only raises
RMSProp's epsilon (the gradient is averaged once more) and trains a little more smoothly than
plain RMSProp. Changed: the biases start at zero (golgi's FC; the talk draws them from
``GlorotN`` too). This is the model ``golgi train mlp`` trains.

Differences from Gorgonia: the 784-250-100-10 MLP is not in Gorgonia's examples folder (the
talk's program builds on Gorgonia's MNIST loader); Gorgonia's version of it trains for 100
epochs and prints no accuracy. 30 epochs reach the plateau (about 98.2%).

Flags: ``--epochs`` (30), ``--batchsize`` (100), ``--seed`` (0), ``--quick`` (2,000 training and
1,000 test images, two epochs). The last line is ``result: test_accuracy=<share>``.
"""

from __future__ import annotations

import argparse
import time

import golgi as G
import graphcore as gc
from golgi.datasets import DatasetError, mnist


def main(argv: list[str] | None = None) -> float:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=30, help="passes over the training set")
    ap.add_argument("--batchsize", type=int, default=100, help="batch size")
    ap.add_argument("--seed", type=int, default=0, help="weights and shuffling")
    ap.add_argument("--quick", action="store_true", help="2,000 images, two epochs")
    args = ap.parse_args(argv)
    epochs = 2 if args.quick else args.epochs

    try:
        (x_train, y_train), (x_test, y_test) = mnist(
            one_hot=True,
            n_train=2000 if args.quick else None,
            n_test=1000 if args.quick else None,
            download=not args.quick,
        )
    except DatasetError as e:
        raise SystemExit(f"MNIST is not available: {e}") from None

    gc.SetSeed(args.seed)
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 784), gc.WithName("x"))
    glorot = G.WithInit(gc.GlorotN(1.0))
    relu = G.WithActivation(gc.Rectify)
    mlp = G.ComposeSeq(
        x,
        G.L(G.ConsFC(G.WithShape(250), G.WithName("fc1"), relu, glorot)),
        G.L(G.ConsFC(G.WithShape(100), G.WithName("fc2"), relu, glorot)),
        G.L(G.ConsFC(G.WithShape(10), G.WithName("out"), glorot)),  # logits
    )
    mlp.summary()

    t0 = time.perf_counter()
    history = G.fit(
        mlp, x_train, y_train,
        loss=G.CrossEntropy,
        solver=gc.NewRMSPropSolver(gc.WithBatchSize(args.batchsize)),  # as the talk wrote it
        metrics=["accuracy"],
        epochs=epochs,
        batch_size=args.batchsize,
        validation_data=(x_test, y_test),
        seed=args.seed,
        progress="epoch",
    )
    print(f"trained {len(history)} epochs in {time.perf_counter() - t0:.1f} s")
    result = history["val_accuracy"][-1]
    print(f"result: test_accuracy={result:.4f}")
    return result


if __name__ == "__main__":
    main()
