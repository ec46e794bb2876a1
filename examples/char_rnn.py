"""Gorgonia's charRNN, the golgi way: a character-level LSTM learns a text, then writes more.

Twin of Gorgonia's ``examples/charRNN``. The model reads characters and predicts the next one
at every position:

    characters (batch, T) ints -> Embedding 32 -> LSTM 256, every step -> FC (vocabulary)

and a loop samples from it one character at a time, feeding each back in. The corpus is
``examples/data/shakespeare.txt`` (Hamlet and Macbeth, public domain; ``--text`` takes any
plain-text file). The last tenth of the text is held out; the program prints a sample after
each epoch and a longer one at the end.

How it is built:
- ``ComposeSeq`` of ``ConsEmbedding``, ``ConsLSTM(WithReturnSequences(True))`` and a
  positionwise ``ConsFC``: the LSTM is unrolled over the T steps of a window, and the FC
  gives logits at every position, (batch, T, vocabulary).
- The loss is ``gc.SoftmaxCrossEntropy(logits, targets, axis=2)``, the mean over every
  position of every window; ``fit`` trains on windows of T characters whose targets are the
  same windows shifted by one.
- Sampling builds, in the same graph, one LSTM step on a batch of one (``lstm.step(x, h, c)``
  with the trained weights) and runs it with a small forward-only tape machine, carrying the
  state ``(h, c)`` from run to run.

What differs from Gorgonia's program, and why:
- Gorgonia unrolls a new graph per sentence, one sentence per update, from a START marker to
  an END marker (its corpus is a list of sentences), with an LSTM of 100 and an embedding of
  10, and runs a Lisp machine on it. Here the text is cut into fixed windows of ``--seqlen``
  (64) characters and trained in batches of 64 on one compiled graph: much faster per
  character, and a play is not a list of sentences.
- Gorgonia's solver is RMSProp (learn rate 0.01, L2 1e-6, gradients clipped at 5); here Adam
  (learn rate 0.003, clipped at 5), which gets further in the same number of epochs.
- The held-out text gives the metric: the perplexity per character, ``exp`` of the mean
  cross-entropy (Gorgonia prints a base-2 perplexity of the training sentence).

Flags: ``--epochs`` (20), ``--seqlen`` (64), ``--batchsize`` (64), ``--hidden`` (256),
``--temperature`` (0.8), ``--length`` (600 characters in the last sample), ``--text``,
``--seed`` (0), ``--quick`` (the first 30,000 characters, a 64-unit LSTM, three epochs). The
last line is ``result: val_perplexity=<exp of the held-out loss per character>``.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np

import golgi as G
import graphcore as gc

CORPUS = Path(__file__).resolve().parent / "data" / "shakespeare.txt"


class Vocabulary:
    """The characters of a text, numbered in sorted order."""

    def __init__(self, text: str) -> None:
        self.chars = sorted(set(text))
        self.index = {c: i for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        return np.array([self.index[c] for c in text], dtype=np.int64)

    def decode(self, ids: list[int]) -> str:
        return "".join(self.chars[i] for i in ids)


def windows(ids: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping windows of ``t`` characters and the same windows one character on."""
    n = (len(ids) - 1) // t
    return ids[: n * t].reshape(n, t), ids[1 : n * t + 1].reshape(n, t)


def char_lstm(chars: gc.Node, vocab: int, hidden: int) -> G.Composition:
    """Embedding -> LSTM (every step) -> positionwise FC to one logit per character."""
    return G.ComposeSeq(
        chars,
        G.L(G.ConsEmbedding(G.WithClasses(vocab), G.WithShape(32), G.WithName("embed"))),
        G.L(G.ConsLSTM(G.WithShape(hidden), G.WithReturnSequences(True), G.WithName("lstm"))),
        G.L(G.ConsFC(G.WithShape(vocab), G.AsPositionwise(), G.WithName("logits"))),
    )


def sequence_loss(logits: gc.Node, targets: gc.Node) -> gc.Node:
    """Mean cross-entropy over every position: logits (batch, T, V), targets (batch, T)."""
    return gc.SoftmaxCrossEntropy(logits, targets, axis=2)


class Sampler:
    """One LSTM step of the trained model on a batch of one, run character by character."""

    def __init__(self, net: G.Composition, hidden: int) -> None:
        g = net.input.graph
        self.char = gc.NewVector(g, gc.Int64, gc.WithShape(1), gc.WithName("sample/char"))
        self.h = gc.NewMatrix(g, gc.Float32, gc.WithShape(1, hidden), gc.WithName("sample/h"))
        self.c = gc.NewMatrix(g, gc.Float32, gc.WithShape(1, hidden), gc.WithName("sample/c"))
        # A built layer takes only inputs of the shape it was built for (the batch aside), so
        # the embedding and the FC built for windows of T characters cannot take one character.
        # Two new layers on the same weight nodes can (WithWeights, WithWB share the nodes);
        # the LSTM has a one-step form of its own.
        embed = G.ConsEmbedding(self.char, G.WithWeights(net.by_name("embed/W")),
                                G.WithName("sample_embed"))
        self.h1, self.c1 = net.by_name("lstm").step(embed.fwd(self.char), self.h, self.c)
        wb = net.by_name("logits/W"), net.by_name("logits/b")
        self.out = G.ConsFC(self.h1, G.WithWB(*wb), G.WithName("sample_logits")).fwd(self.h1)
        # the new state is read after each run: keep its buffers (watchlist) from being reused
        self.vm = gc.NewTapeMachine(g.subgraph_roots(self.out, self.c1),
                                    gc.WithWatchlist(self.h1, self.c1))
        self.hidden = hidden

    def generate(
        self, vocab: Vocabulary, prime: str, length: int, temperature: float,
        rng: np.random.Generator,
    ) -> str:
        """``prime`` fed in, then ``length`` characters drawn from softmax(logits / T)."""
        h = np.zeros((1, self.hidden), np.float32)
        c = np.zeros((1, self.hidden), np.float32)
        ids = list(vocab.encode(prime))
        out: list[int] = []
        for k in range(len(ids) + length - 1):
            gc.Let(self.char, np.array([ids[k] if k < len(ids) else out[-1]]))
            gc.Let(self.h, h)
            gc.Let(self.c, c)
            self.vm.run_all()
            h, c = self.h1.value.copy(), self.c1.value.copy()
            if k >= len(ids) - 1:
                z = self.out.value[0].astype(np.float64) / temperature
                p = np.exp(z - z.max())
                out.append(int(rng.choice(len(p), p=p / p.sum())))
            self.vm.reset()
        return prime + vocab.decode(out)


class PrintSample(G.Callback):
    """A short sample after every epoch, to watch the model learn to write."""

    def __init__(self, sampler: Sampler, vocab: Vocabulary, prime: str, seed: int) -> None:
        self.sampler, self.vocab, self.prime = sampler, vocab, prime
        self.rng = np.random.default_rng(seed)

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        text = self.sampler.generate(self.vocab, self.prime, 120, 0.8, self.rng)
        print("   | " + text.replace("\n", "\n   | "))


def main(argv: list[str] | None = None) -> float:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=20, help="passes over the training text")
    ap.add_argument("--seqlen", type=int, default=64, help="characters per training window")
    ap.add_argument("--batchsize", type=int, default=64, help="windows per batch")
    ap.add_argument("--hidden", type=int, default=256, help="LSTM units")
    ap.add_argument("--temperature", type=float, default=0.8, help="sampling temperature")
    ap.add_argument("--length", type=int, default=600, help="characters in the final sample")
    ap.add_argument("--text", type=Path, default=CORPUS, help="a plain-text corpus")
    ap.add_argument("--seed", type=int, default=0, help="weights, shuffling and sampling")
    ap.add_argument("--quick", action="store_true", help="30,000 characters, small, 3 epochs")
    args = ap.parse_args(argv)
    if args.quick:
        args.epochs, args.hidden, args.seqlen, args.length = 3, 64, 32, 200

    text = args.text.read_text(encoding="utf-8")
    if args.quick:
        text = text[:30_000]
    vocab = Vocabulary(text)
    ids = vocab.encode(text)
    split = int(len(ids) * 0.9)
    x_train, y_train = windows(ids[:split], args.seqlen)
    x_val, y_val = windows(ids[split:], args.seqlen)
    print(f"{args.text.name}: {len(text):,} characters, {len(vocab)} distinct; "
          f"{len(x_train)} training and {len(x_val)} held-out windows of {args.seqlen}")

    gc.SetSeed(args.seed)
    g = gc.NewGraph()
    chars = gc.NewMatrix(g, gc.Int64, gc.WithShape(None, args.seqlen), gc.WithName("chars"))
    net = char_lstm(chars, len(vocab), args.hidden)
    net.summary()

    sampler = Sampler(net, args.hidden)
    prime = text[: text.index("\n") + 1]  # the title line
    t0 = time.perf_counter()
    history = G.fit(
        net, x_train, y_train,
        loss=sequence_loss,
        solver=gc.NewAdamSolver(gc.WithLearnRate(0.003), gc.WithClip(5.0)),
        epochs=args.epochs,
        batch_size=args.batchsize,
        validation_data=(x_val, y_val),
        callbacks=[PrintSample(sampler, vocab, prime, args.seed)],
        seed=args.seed,
        progress="epoch",
    )
    print(f"trained {len(history)} epochs in {time.perf_counter() - t0:.0f} s")

    rng = np.random.default_rng(args.seed)
    print(f"\nsample (temperature {args.temperature}):\n")
    print(sampler.generate(vocab, prime, args.length, args.temperature, rng))
    perplexity = math.exp(history["val_loss"][-1])
    print(f"\nresult: val_perplexity={perplexity:.3f}")
    return perplexity


if __name__ == "__main__":
    main()
