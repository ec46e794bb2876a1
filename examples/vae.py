"""A variational autoencoder on MNIST: an encoder to a mean and a log-variance, a sampled code,
a decoder back to pixels, trained on the evidence lower bound with ``fit``'s custom step.

Not in Gorgonia's examples; it shows what one loss on a model's output cannot express:

    x (784) -> FC 512 ReLU -> mu (d), log sigma^2 (d)           the encoder
    z = mu + exp(log sigma^2 / 2) * eps,  eps ~ N(0, I)          reparameterised noise
    z (d)   -> FC 512 ReLU -> FC 784 (logits)                    the decoder

- ``eps`` is ``gc.GaussianRandomNode(g, dt, 0, 1, like=mu)``: a node that draws anew at every
  run, shaped like ``mu`` whatever the batch size, so the gradient flows through ``mu`` and
  ``log sigma^2`` and not through the draw.
- The loss is the negative evidence lower bound per image, in nats: the reconstruction term,
  Bernoulli cross-entropy of the 784 pixels summed (``G.BinaryCrossEntropy`` from the logits,
  a mean, times 784), plus the KL divergence of N(mu, sigma^2) from N(0, I),
  ``-1/2 sum(1 + log sigma^2 - mu^2 - sigma^2)``.
- ``gc.Grad`` adds the backward pass, a tape machine runs it, and ``G.fit(..., train_step=step)``
  does the rest: shuffling, batches, the epoch log, Ctrl-C, stopping on a non-finite loss.
- The decoder is a composition on an input node of its own, ``z``, then applied to the
  sampled code: one set of weights, two uses. ``G.predict(decoder, codes)`` draws digits
  from codes, and ``G.predict`` of a ``G.Model`` from ``x`` to ``mu`` encodes.

With a 2-D code (``--latent 2``, the default) the code space can be drawn: it writes
``vae_samples.png`` (digits decoded from codes drawn from N(0, I)) and ``vae_latent.png`` (the
test digits' means coloured by label, and the decoded grid of codes) into ``--plots`` (the
current folder; matplotlib needed, ``--plots ''`` for none).

Flags: ``--epochs`` (30), ``--latent`` (2), ``--batchsize`` (100), ``--seed`` (0),
``--plots`` (.), ``--quick`` (2,000 training and 1,000 test images, two epochs). The last line is
``result: test_neg_elbo=<nats per test image>`` (lower is better; 784 ln 2 = 543 for a coin
toss per pixel).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import golgi as G
import graphcore as gc
from golgi.datasets import DatasetError, mnist


class VAE:
    """The graph: encoder, sampled code, decoder, the loss and its gradients."""

    def __init__(self, latent: int, hidden: int = 512) -> None:
        relu = G.WithActivation(gc.Rectify)
        g = self.g = gc.NewGraph()
        self.x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 784), gc.WithName("x"))
        encoder = G.ComposeSeq(self.x, G.L(G.ConsFC(G.WithShape(hidden), relu, G.WithName("enc"))))
        h = encoder.out
        mu_fc = G.ConsFC(h, G.WithShape(latent), G.WithName("mu"))
        logvar_fc = G.ConsFC(h, G.WithShape(latent), G.WithName("logvar"))
        self.mu, self.logvar = mu_fc.fwd(h), logvar_fc.fwd(h)

        eps = gc.GaussianRandomNode(g, gc.Float32, 0.0, 1.0, like=self.mu)
        z = self.mu + gc.HadamardProd(gc.Exp(0.5 * self.logvar), eps)

        self.code = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, latent), gc.WithName("z"))
        self.decoder = G.ComposeSeq(
            self.code,
            G.L(G.ConsFC(G.WithShape(hidden), relu, G.WithName("dec"))),
            G.L(G.ConsFC(G.WithShape(784), G.WithName("pixels"))),  # logits
        )
        logits = self.decoder.fwd(z)  # the same layers on the sampled code

        self.recon = 784.0 * G.BinaryCrossEntropy(logits, self.x)  # summed over the pixels
        per_unit = 1.0 + self.logvar - gc.Square(self.mu) - gc.Exp(self.logvar)
        self.kl = -0.5 * gc.Mean(gc.Sum(per_unit, axis=1))  # summed over the code, batch mean
        self.loss = self.recon + self.kl

        self.encoder = G.Model(inputs=self.x, outputs=self.mu)
        self.model = G.Model(inputs=self.x, outputs={"mu": self.mu, "logvar": self.logvar,
                                                     "logits": logits})
        self.learnables = self.model.model()
        gc.Grad(self.loss, *self.learnables)
        # only the loss's part of the graph: the decoder on its own input z is not run here
        loss_part = g.subgraph_roots(self.loss)
        terms = gc.WithWatchlist(self.recon, self.kl)  # read after each run: keep their values
        self.train_vm = gc.NewTapeMachine(loss_part, gc.BindDualValues(*self.learnables), terms)
        self.eval_vm = gc.NewTapeMachine(loss_part, terms)  # forward only

    def evaluate(self, images: np.ndarray, batch: int = 500) -> tuple[float, float]:
        """Mean reconstruction term and KL per image (one sampled code each)."""
        recon = kl = 0.0
        for i in range(0, len(images), batch):
            part = images[i : i + batch]
            gc.Let(self.x, part)
            self.eval_vm.run_all()
            recon += float(self.recon.value) * len(part)
            kl += float(self.kl.value) * len(part)
            self.eval_vm.reset()
        return recon / len(images), kl / len(images)


def plot(vae: VAE, x_test: np.ndarray, y_test: np.ndarray, folder: Path, seed: int) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no pictures (pip install matplotlib)")
        return
    folder.mkdir(parents=True, exist_ok=True)
    latent = vae.code.shape[1]

    def decode(codes: np.ndarray) -> np.ndarray:
        logits = G.predict(vae.decoder, codes.astype(np.float32))
        return (1.0 / (1.0 + np.exp(-logits))).reshape(-1, 28, 28)

    def mosaic(images: np.ndarray, n: int) -> np.ndarray:
        return images.reshape(n, n, 28, 28).transpose(0, 2, 1, 3).reshape(n * 28, n * 28)

    rng = np.random.default_rng(seed)
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.imshow(mosaic(decode(rng.normal(size=(100, latent))), 10), cmap="gray_r")
    ax.set_title("digits decoded from codes drawn from N(0, I)", fontsize=9)
    ax.axis("off")
    fig.savefig(folder / "vae_samples.png", dpi=80, bbox_inches="tight")
    plt.close(fig)

    mu = G.predict(vae.encoder, x_test)
    if latent > 2:  # the two directions of largest variance
        centred = mu - mu.mean(axis=0)
        mu = centred @ np.linalg.svd(centred, full_matrices=False)[2][:2].T
    fig, axes = plt.subplots(1, 2 if latent == 2 else 1, figsize=(10 if latent == 2 else 5, 5),
                             squeeze=False)
    ax = axes[0, 0]
    points = ax.scatter(mu[:, 0], mu[:, 1], c=y_test, cmap="tab10", s=3, alpha=0.6)
    fig.colorbar(points, ax=ax, ticks=range(10))
    ax.set(title="test digits' codes (mean), by label", xlabel="z1", ylabel="z2")
    if latent == 2:  # the decoded grid over the prior's 5%..95% quantiles
        from scipy.stats import norm

        n = 15
        q = norm.ppf(np.linspace(0.05, 0.95, n))
        grid = np.array([(a, b) for b in q[::-1] for a in q])
        axes[0, 1].imshow(mosaic(decode(grid), n), cmap="gray_r")
        axes[0, 1].set_title("decoded codes on a grid (N(0, I) quantiles)", fontsize=9)
        axes[0, 1].axis("off")
    fig.savefig(folder / "vae_latent.png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    print(f"wrote {folder / 'vae_samples.png'} and {folder / 'vae_latent.png'}")


def main(argv: list[str] | None = None) -> float:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=30, help="passes over the training set")
    ap.add_argument("--latent", type=int, default=2, help="size of the code")
    ap.add_argument("--batchsize", type=int, default=100, help="batch size")
    ap.add_argument("--seed", type=int, default=0, help="weights, noise and shuffling")
    ap.add_argument("--plots", default=".", help="folder for the PNGs ('' for none)")
    ap.add_argument("--quick", action="store_true", help="2,000 images, two epochs")
    args = ap.parse_args(argv)
    epochs = 2 if args.quick else args.epochs

    try:
        (x_train, _), (x_test, y_test) = mnist(
            n_train=2000 if args.quick else None,
            n_test=1000 if args.quick else None,
            download=not args.quick,
        )
    except DatasetError as e:
        raise SystemExit(f"MNIST is not available: {e}") from None

    gc.SetSeed(args.seed)  # the weights, then the noise eps at every run
    vae = VAE(args.latent)
    vae.model.summary()
    solver = gc.NewAdamSolver(gc.WithLearnRate(0.001))

    def step(batch: G.Batch) -> dict[str, float]:
        gc.Let(vae.x, batch.x)
        vae.train_vm.run_all()
        solver.step(vae.learnables)
        vae.train_vm.reset()
        return {"loss": float(vae.loss.value), "recon": float(vae.recon.value),
                "kl": float(vae.kl.value)}

    t0 = time.perf_counter()
    history = G.fit(vae.model, x_train, train_step=step, epochs=epochs,
                    batch_size=args.batchsize, seed=args.seed, progress="epoch")
    print(f"trained {len(history)} epochs in {time.perf_counter() - t0:.0f} s")

    recon, kl = vae.evaluate(x_test)
    print(f"test: reconstruction {recon:.1f} + KL {kl:.1f} nats per image")
    if args.plots:
        plot(vae, x_test, y_test, Path(args.plots), args.seed)
    print(f"result: test_neg_elbo={recon + kl:.2f}")
    return recon + kl


if __name__ == "__main__":
    main()
