"""A small transformer learns to sort: given 10 digits, it writes them in increasing order.

Not in Gorgonia's examples; it shows golgi's attention layers in a whole model:

    digits (batch, 10) ints -> Embedding 64 + positions (sinusoids)
      -> 2 x [ x + Attention(LayerNorm(x)),  x + FC(GELU FC(LayerNorm(x))) ]    (pre-norm)
      -> LayerNorm -> FC 10 at every position (logits: which digit goes there)

- A block is ``ComposeSeq`` of two residual joins, ``G.Add(G.I, ...)``, each around a
  ``ConsLayerNorm`` and a sublayer: ``ConsMultiHeadAttention`` (4 heads, not causal: every
  output position sees the whole input) or two positionwise ``ConsFC``.
- The positions are a constant added with ``ConsSkip(WithConst(table))``; without them the
  model could not tell output places apart (attention alone ignores order).
- Every position is a 10-way classification: the loss is ``gc.SoftmaxCrossEntropy`` along the
  last axis of the (batch, 10, 10) logits, and ``fit`` gets it as a function of the output
  and target nodes. Adam's learn rate (0.001) is halved each epoch from the third on.

Sorting is a good first task for attention: each output place has to find the digit of its
rank, which means comparing every digit with every other one, the all-pairs view attention
gives. The training data is drawn at random (10^10 possible inputs; the test inputs are drawn
apart from the training ones).

Flags: ``--epochs`` (5), ``--length`` (10), ``--train`` (40,000 sequences), ``--width`` (64),
``--heads`` (4), ``--blocks`` (2), ``--batchsize`` (100), ``--seed`` (0), ``--quick`` (5 digits,
6,000 sequences, two epochs). The last line is ``result: sequence_accuracy=<share of test
sequences sorted entirely right>``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import golgi as G
import graphcore as gc


def positions(length: int, width: int) -> np.ndarray:
    """The transformer's sinusoidal position table, (1, length, width)."""
    pos = np.arange(length)[:, None]
    rate = 1.0 / 10000 ** (np.arange(0, width, 2) / width)
    table = np.zeros((length, width))
    table[:, 0::2], table[:, 1::2] = np.sin(pos * rate), np.cos(pos * rate)
    return table[None].astype(np.float32)


def block(width: int, heads: int) -> G.Composition:
    """A pre-norm transformer encoder block: attention, then a feed-forward net, each in a
    residual join."""
    return G.ComposeSeq(
        G.Add(G.I, G.ComposeSeq(
            G.L(G.ConsLayerNorm()),
            G.L(G.ConsMultiHeadAttention(G.WithHeads(heads))),
        )),
        G.Add(G.I, G.ComposeSeq(
            G.L(G.ConsLayerNorm()),
            G.L(G.ConsFC(G.WithShape(4 * width), G.AsPositionwise(),
                         G.WithActivation(gc.Gelu))),
            G.L(G.ConsFC(G.WithShape(width), G.AsPositionwise())),
        )),
    )  # fmt: skip


def sorter(digits: gc.Node, width: int, heads: int, blocks: int) -> G.Composition:
    length = digits.shape[1]
    return G.ComposeSeq(
        digits,
        G.L(G.ConsEmbedding(G.WithClasses(10), G.WithShape(width), G.WithName("embed"))),
        G.L(G.ConsSkip(G.WithConst(positions(length, width)), G.WithName("positions"))),
        *[block(width, heads) for _ in range(blocks)],
        G.L(G.ConsLayerNorm(G.WithName("final_norm"))),
        G.L(G.ConsFC(G.WithShape(10), G.AsPositionwise(), G.WithName("logits"))),
    )


def per_position_loss(logits: gc.Node, targets: gc.Node) -> gc.Node:
    """Mean cross-entropy over every position: logits (batch, T, 10), targets (batch, T)."""
    return gc.SoftmaxCrossEntropy(logits, targets, axis=2)


def sequence_accuracy(logits: np.ndarray, targets: np.ndarray) -> float:
    """The share of sequences with every position right."""
    return float((logits.argmax(axis=-1) == targets).all(axis=-1).mean())


def digit_accuracy(logits: np.ndarray, targets: np.ndarray) -> float:
    """The share of positions right."""
    return float((logits.argmax(axis=-1) == targets).mean())


def data(n: int, length: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.integers(0, 10, size=(n, length))
    return x, np.sort(x, axis=1)


def main(argv: list[str] | None = None) -> float:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=5, help="passes over the training set")
    ap.add_argument("--length", type=int, default=10, help="digits per sequence")
    ap.add_argument("--train", type=int, default=40_000, help="training sequences")
    ap.add_argument("--width", type=int, default=64, help="model width")
    ap.add_argument("--heads", type=int, default=4, help="attention heads")
    ap.add_argument("--blocks", type=int, default=2, help="transformer blocks")
    ap.add_argument("--batchsize", type=int, default=100, help="batch size")
    ap.add_argument("--seed", type=int, default=0, help="data, weights and shuffling")
    ap.add_argument("--quick", action="store_true", help="5 digits, 6,000 sequences, 2 epochs")
    args = ap.parse_args(argv)
    if args.quick:
        args.length, args.train, args.epochs = 5, 6_000, 2

    rng = np.random.default_rng(args.seed)
    x_train, y_train = data(args.train, args.length, rng)
    x_test, y_test = data(5_000, args.length, np.random.default_rng(args.seed + 1))
    seen = {row.tobytes() for row in x_train}
    fresh = np.array([row.tobytes() not in seen for row in x_test])
    x_test, y_test = x_test[fresh], y_test[fresh]  # only inputs it never trained on
    print(f"{len(x_train):,} training and {len(x_test):,} test sequences of {args.length} digits")

    gc.SetSeed(args.seed)
    g = gc.NewGraph()
    digits = gc.NewMatrix(g, gc.Int64, gc.WithShape(None, args.length), gc.WithName("digits"))
    net = sorter(digits, args.width, args.heads, args.blocks)
    net.summary()

    t0 = time.perf_counter()
    history = G.fit(
        net, x_train, y_train,
        loss=per_position_loss,
        solver=gc.NewAdamSolver(gc.WithLearnRate(0.001)),
        metrics=[digit_accuracy],
        # halved every epoch after the second: once the loss is tiny, Adam at full rate makes
        # it jump now and then (a step scaled for the small gradients it has been seeing)
        callbacks=[G.LearningRateScheduler(lambda epoch, lr: lr * 0.5 if epoch >= 2 else lr)],
        epochs=args.epochs,
        batch_size=args.batchsize,
        validation_data=(x_test, y_test),
        seed=args.seed,
        progress="epoch",
    )
    print(f"trained {len(history)} epochs in {time.perf_counter() - t0:.0f} s")

    logits = G.predict(net, x_test)
    guess = logits.argmax(axis=-1)
    for i in range(5):
        mark = "ok" if (guess[i] == y_test[i]).all() else "wrong"
        print(f"  {x_test[i].tolist()} -> {guess[i].tolist()}  {mark}")
    result = sequence_accuracy(logits, y_test)
    print(f"digits right: {digit_accuracy(logits, y_test):.4f}")
    print(f"result: sequence_accuracy={result:.4f}")
    return result


if __name__ == "__main__":
    main()
