"""A stacked denoising autoencoder on MNIST, the golgi way: greedy layer-wise pretraining of
three sigmoid layers as denoising autoencoders, then fine-tuning the stack as a classifier.

Twin of Gorgonia's ``examples/stacked_autoencoder`` (after the classic Theano tutorial): three
hidden layers of 1,000 sigmoid units, corruption levels 0.1, 0.2 and 0.3, tied weights (each
autoencoder decodes with the transpose of its encoder's weights, plus a visible bias of its
own), binary cross-entropy of the reconstruction against the clean input, plain SGD; then a
softmax layer on top and the whole stack trained on the labels.

How it is built here:
- One ``ComposeSeq`` is the classifier, ``x -> h0 -> h1 -> h2 -> logits``. Its hidden layers are
  also the encoders of the three autoencoders: a built layer applied to another input node
  reads the same weights, so pretraining writes straight into the classifier.
- ``Corrupt`` is a three-line ``Term`` (masking noise: each input zeroed with probability p,
  in training only) and ``TiedDecoder`` a small ``Layer`` that adopts its encoder's ``W``.
- Layer ``i`` is pretrained on the outputs of the layers below it, computed once with
  ``G.predict`` (the lower layers do not change while it trains), and each stage is a
  ``G.fit`` with the input as its own target.

Differences from Gorgonia's program, and why:
- Gorgonia's corruption is ``BinomialRandomNode(..., 1, p)`` without a shape: one coin per
  batch that keeps the whole input with probability p (0.1 for the first layer). Here each
  pixel is zeroed with probability p, the denoising autoencoder's masking noise.
- Gorgonia steps its solver once per epoch, after the last batch, and fine-tunes only the
  autoencoders' weights, never the softmax layer's; here every batch steps, and fine-tuning
  trains every layer.
- Plain SGD as in Gorgonia, but on batches of 20 (Gorgonia: 1) with learn rates 10 for
  pretraining and 0.1 for fine-tuning (Gorgonia: 0.001 for both). The reconstruction loss is
  a mean over pixels as well as samples, so its gradients are far smaller than the
  classifier's; 10 is the rate at which the autoencoders make progress in a couple of
  epochs. The reconstruction loss is taken from logits (the sigmoid fused into the
  cross-entropy), and fine-tuning uses ``G.CrossEntropy`` rather than picking ``-log p`` of
  the right class by hand.
- Epochs: Gorgonia's defaults are 16 pretraining and 40 fine-tuning epochs (``-pt``, ``-ft``);
  here 2 and 6 (``--pt``, ``--ft``): with three layers of 1,000 units, an epoch of any stage
  takes a minute or two on 2 cores. More epochs give a better classifier.
- No filter images (``-viz``), gob saving (``-save``) or profiling; ``G.save`` would do.
- Pixels in [0, 1] (Gorgonia: [0.1, 1.0)); the test accuracy is measured on all 10,000 test
  images (Gorgonia prints one batch's predictions).

Flags: ``--pt`` (2), ``--ft`` (6), ``--bs`` (20), ``--lr-pt`` (10), ``--lr-ft`` (0.1),
``--hidden`` (1000 1000 1000), ``--seed`` (1337), ``--quick`` (2,000 training and 1,000 test
images, hidden layers of 100, one pretraining and three fine-tuning epochs). The last line
is ``result: test_accuracy=<share>``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import golgi as G
import graphcore as gc
from golgi.datasets import DatasetError, mnist

CORRUPTION = (0.1, 0.2, 0.3)


class Corrupt(G.Term):
    """Masking noise: zero each input with probability ``p`` in training; identity in eval."""

    def __init__(self, p: float) -> None:
        self.p = p

    def fwd(self, x: gc.Node) -> gc.Node:
        # Dropout zeroes with probability p and scales the rest by 1/(1-p); undo the scale.
        return gc.Dropout(x, self.p) * (1.0 - self.p)


class TiedDecoder(G.Layer):
    """Decoder logits ``h @ W.T + b`` with ``W`` shared with the encoder (tied weights)."""

    kind, prefix = "TiedDecoder", "decoder"

    def __init__(self, h: gc.Node, encoder: G.Layer) -> None:
        self.encoder = encoder  # needed by build, which the base constructor calls
        super().__init__(h)

    def build(self, h: gc.Node) -> None:
        w = self.encoder.params["W"]
        self.adopt("W", w, w.shape)  # the same node: model() lists it once
        self.learnable("b", (1, w.shape[0]), init=gc.Zeroes())  # the visible bias

    def forward(self, h: gc.Node) -> gc.Node:
        return gc.Mul(h, gc.Transpose(self.params["W"])) + self.params["b"]


def main(argv: list[str] | None = None) -> float:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pt", type=int, default=2, help="pretraining epochs per layer")
    ap.add_argument("--ft", type=int, default=6, help="fine-tuning epochs")
    ap.add_argument("--bs", type=int, default=20, help="batch size")
    ap.add_argument("--lr-pt", type=float, default=10.0, help="pretraining learn rate")
    ap.add_argument("--lr-ft", type=float, default=0.1, help="fine-tuning learn rate")
    ap.add_argument("--hidden", type=int, nargs=3, default=[1000, 1000, 1000],
                    help="sizes of the three hidden layers")
    ap.add_argument("--seed", type=int, default=1337, help="weights, noise and shuffling")
    ap.add_argument("--quick", action="store_true", help="small data and layers, one epoch each")
    args = ap.parse_args(argv)
    hidden = [100, 100, 100] if args.quick else args.hidden
    pt, ft = (1, 3) if args.quick else (args.pt, args.ft)

    try:
        (x_train, y_train), (x_test, y_test) = mnist(
            n_train=2000 if args.quick else None,
            n_test=1000 if args.quick else None,
            download=not args.quick,
        )
    except DatasetError as e:
        raise SystemExit(f"MNIST is not available: {e}") from None

    gc.SetSeed(args.seed)
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 784), gc.WithName("x"))
    sigmoid = G.WithActivation(gc.Sigmoid)
    layers = [G.L(G.ConsFC(G.WithShape(n), sigmoid, G.WithName(f"h{i}")))
              for i, n in enumerate(hidden)]
    layers.append(G.L(G.ConsFC(G.WithShape(10), G.WithName("out"))))  # logits
    clf = G.ComposeSeq(x, *layers)
    clf.summary()
    encoders = clf.layers[:-1]

    # ---- pretraining: one denoising autoencoder per hidden layer, bottom up ----
    t0 = time.perf_counter()
    features = x_train
    for i, (enc, p) in enumerate(zip(encoders, CORRUPTION)):
        u = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, features.shape[1]),
                         gc.WithName(f"u{i}"))
        noisy = Corrupt(p)
        h = enc.fwd(noisy.fwd(u))  # the encoder on a new input: same weights, new nodes
        dae = G.ComposeSeq(u, noisy, enc, TiedDecoder(h, enc))
        print(f"pretraining {enc.name}: corruption {p}, learnables "
              f"{[n.name for n in dae.model()]}")
        G.fit(dae, features, features,  # the clean input is the target
              loss=G.BinaryCrossEntropy, solver=gc.NewVanillaSolver(gc.WithLearnRate(args.lr_pt)),
              epochs=pt, batch_size=args.bs, seed=args.seed + i, progress="epoch")
        # The next autoencoder learns from this layer's clean outputs.
        features = G.predict(G.ComposeSeq(u, enc), features)
    print(f"pretrained in {time.perf_counter() - t0:.0f} s")

    # ---- fine-tuning: the whole stack as a classifier ----
    t0 = time.perf_counter()
    history = G.fit(
        clf, x_train, y_train,
        loss=G.CrossEntropy,
        solver=gc.NewVanillaSolver(gc.WithLearnRate(args.lr_ft)),
        metrics=["accuracy"],
        epochs=ft, batch_size=args.bs,
        validation_data=(x_test, y_test),
        seed=args.seed, progress="epoch",
    )
    print(f"fine-tuned in {time.perf_counter() - t0:.0f} s")
    result = history["val_accuracy"][-1]
    print(f"result: test_accuracy={result:.4f}")
    return float(np.float64(result))


if __name__ == "__main__":
    main()
