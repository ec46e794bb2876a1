"""A small residual network on MNIST, the golgi way: residual blocks are ``G.Add(G.I, block)``.

Counterpart of Gorgonia's ``examples/resnet``, which takes its convnet and adds a shortcut
around two of the convolutions with ``G.Add``. The model here:

    conv 3x3 32, ReLU -> max-pool 2x2                                  28x28 -> 14x14
    residual block: x + conv 3x3 32 (ReLU) -> conv 3x3 32              14x14
    max-pool 2x2 -> conv 3x3 64, ReLU                                  7x7
    residual block: x + conv 3x3 64 (ReLU) -> conv 3x3 64              7x7
    max-pool 2x2 -> flatten (576) -> dropout 0.3 -> FC 128, ReLU -> dropout 0.2 -> FC 10

``G.Add(G.I, G.ComposeSeq(conv, conv))`` applies both terms to the same input and adds the
outputs: ``I`` is the identity, so the block computes ``x + F(x)``, and its gradient reaches
``x`` both through ``F`` and straight along the shortcut. A block keeps the shape of its
input (3x3 convolutions with padding 1, as many channels out as in), which an identity
shortcut needs.

What differs from Gorgonia's program, and why:
- Gorgonia's shortcut is not an identity: it flattens the pooled activations and multiplies
  them by a dense matrix back to the convolution's shape (``w1r`` 3136x12544 and ``w2r``
  6272x25088: 197 million weights, far beyond its 0.1 million convolution weights), then adds
  the convolution's output before its ReLU. Here the shortcuts are identities, as in He et
  al.'s ResNet, and the network has 0.2 million weights in all.
- Gorgonia trains with RMSProp for 100 epochs and prints no accuracy; here Adam (learn rate
  0.001) runs 5 epochs (``--epochs``) and the test set is scored after each.
- As in ``convnet.py``: float32 (``--dtype float64`` is there), pixels in [0, 1], logits with
  ``G.CrossEntropy``, biases in the convolutions, inverted dropout, shuffled batches.

Flags: ``--epochs`` (5), ``--batchsize`` (100), ``--dtype`` (float32), ``--seed`` (1337),
``--quick`` (1,000 training and 1,000 test images, one epoch). The last line is
``result: test_accuracy=<share>``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import golgi as G
import graphcore as gc
from golgi.datasets import DatasetError, mnist


def load(quick: bool, dtype: type) -> tuple[np.ndarray, ...]:
    n = 1000 if quick else None
    try:
        (x, y), (xt, yt) = mnist(
            flatten=False, dtype=dtype, n_train=n, n_test=n, download=not quick
        )
    except DatasetError as e:
        raise SystemExit(f"MNIST is not available: {e}") from None
    return x, y, xt, yt


def conv(n: int, relu: bool = True) -> G.Term:
    """3x3 convolution to ``n`` channels, padding 1 (golgi's defaults): the size is kept."""
    act = G.WithActivation(gc.Rectify if relu else None)
    return G.L(G.ConsConv(G.WithShape(n), act))


def residual(n: int) -> G.Term:
    """``x + conv(ReLU(conv(x)))``: the Add join of the identity and two convolutions."""
    return G.Add(G.I, G.ComposeSeq(conv(n), conv(n, relu=False)))


def resnet(x: gc.Node) -> G.Composition:
    pool = G.L(G.ConsMaxPool())
    return G.ComposeSeq(
        x,
        conv(32), pool,             # 28x28 -> 14x14
        residual(32), pool,         # 14x14 -> 7x7
        conv(64),
        residual(64), pool,         # 7x7 -> 3x3
        G.L(G.ConsFlatten()),       # 64 * 3 * 3 = 576
        G.L(G.ConsDropout(G.WithProbability(0.3))),
        G.L(G.ConsFC(G.WithShape(128), G.WithActivation(gc.Rectify))),
        G.L(G.ConsDropout(G.WithProbability(0.2))),
        G.L(G.ConsFC(G.WithShape(10), G.WithName("out"))),  # logits
    )  # fmt: skip


def main(argv: list[str] | None = None) -> float:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=5, help="passes over the training set")
    ap.add_argument("--batchsize", type=int, default=100, help="batch size")
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--seed", type=int, default=1337, help="weights, dropout and shuffling")
    ap.add_argument("--quick", action="store_true", help="1,000 images, one epoch")
    args = ap.parse_args(argv)
    epochs = 1 if args.quick else args.epochs
    dt = gc.Float32 if args.dtype == "float32" else gc.Float64

    x_train, y_train, x_test, y_test = load(args.quick, dt.np)
    gc.SetSeed(args.seed)
    g = gc.NewGraph()
    x = gc.NewTensor(g, dt, 4, gc.WithShape(None, 1, 28, 28), gc.WithName("x"))
    net = resnet(x)
    net.summary()
    print(net)  # the composition as code-like text: the Add joins show the shortcuts

    t0 = time.perf_counter()
    history = G.fit(
        net, x_train, y_train,
        loss=G.CrossEntropy,
        solver=gc.NewAdamSolver(),
        metrics=["accuracy"],
        epochs=epochs,
        batch_size=args.batchsize,
        validation_data=(x_test, y_test),
        seed=args.seed,
        progress="epoch",
    )
    print(f"trained {len(history)} epochs in {time.perf_counter() - t0:.0f} s")
    result = history["val_accuracy"][-1]
    print(f"result: test_accuracy={result:.4f}")
    return result


if __name__ == "__main__":
    main()
