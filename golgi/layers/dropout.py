"""Dropout layer: inverted dropout in training runs, the identity in eval runs.

The drop probability defaults to 0.5 (PyTorch's default and the classic rate for hidden
units). Golgi's default is 0, which silently makes the layer a no-op; ``WithProbability(0)``
still gives that.

Example:
    >>> import graphcore as gc, golgi as G
    >>> g = gc.NewGraph()
    >>> x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 100), gc.WithName("x"))
    >>> G.ConsDropout(x, G.WithProbability(0.2)).fwd(x).op
    Dropout(p=0.2)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

import graphcore as gc
from graphcore.rng import spawn_rng

from ..layer import Layer, per_sample
from ..options import LayerOpt
from ..term import Thunk

__all__ = ["Dropout", "ConsDropout"]


class Dropout(Layer):
    """Zero each element with probability p and scale the rest by 1/(1-p) while training.

    The mode is the machine's: ``gc.NewTapeMachine(g, gc.EvalMode())`` or ``vm.training =
    False`` makes it the identity. Masks come from the layer's own generator, spawned from
    graphcore's seeded one when the layer is built (so ``gc.SetSeed`` reproduces them) and
    shared by every node the layer builds; ``state()`` holds its state (key ``"<name>/rng"``,
    6 uint64 words), so ``golgi.save`` / ``golgi.load`` resume with the same masks.

    Example:
        >>> Dropout.kind, Dropout.defaults
        ('Dropout', {'probability': 0.5})
    """

    kind = "Dropout"
    prefix = "dropout"
    options = ("name", "probability")
    defaults = {"probability": 0.5}

    def check_input(self, x: gc.Node) -> None:
        """Also require a float input."""
        if not x.dtype.is_float:
            raise self.error(f"{x.describe()} must be Float32 or Float64", gc.DtypeError)
        super().check_input(x)

    def build(self, x: gc.Node) -> None:
        """Spawn the layer's own mask generator from graphcore's seeded one."""
        self.rng: np.random.Generator = spawn_rng()

    def forward(self, x: gc.Node) -> gc.Node:
        """``gc.Dropout`` of ``x`` with the layer's probability and generator."""
        return gc.Dropout(x, self.opts["probability"], rng=self.rng)

    def state(self) -> dict[str, np.ndarray]:
        """The base state plus the mask generator's state, key ``"<name>/rng"``."""
        out = super().state()
        out[f"{self.name}/rng"] = _pack(self.rng)
        return out

    def load_state(self, d: dict[str, np.ndarray]) -> None:
        """Restore the mask generator from ``"<name>/rng"`` (or ``"rng"``), then the rest."""
        key = f"{self.name}/rng"
        rest = {k: v for k, v in d.items() if k not in (key, "rng")}
        packed = d.get(key, d.get("rng"))
        if packed is not None:
            _unpack(self.rng, packed, self.name)
        super().load_state(rest)

    def output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        """The input shape."""
        return tuple(input_shape)

    def flops(self, batch: int = 1) -> int:
        """One per value: the mask product (training runs).

        Example:
            >>> import graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 4), gc.WithName("x"))
            >>> G.ConsDropout(x).flops()
            4
        """
        return batch * per_sample(self.input_shape) * 1

    def config(self) -> dict[str, Any]:
        """Name and ``probability``."""
        return {"name": self.name, "probability": self.opts["probability"]}


_MASK64 = (1 << 64) - 1


def _pack(rng: np.random.Generator) -> np.ndarray:
    """A PCG64 generator's state as 6 uint64 words: state and increment (128 bits each, high
    word first), has_uint32, uinteger; plain numbers, so the checkpoint needs no pickle."""
    st = rng.bit_generator.state
    if st.get("bit_generator") != "PCG64":
        raise TypeError(f"Dropout: cannot save a {st.get('bit_generator')} generator (PCG64 only)")
    s, inc = int(st["state"]["state"]), int(st["state"]["inc"])
    words = [s >> 64, s & _MASK64, inc >> 64, inc & _MASK64, st["has_uint32"], st["uinteger"]]
    return np.array(words, dtype=np.uint64)


def _unpack(rng: np.random.Generator, packed: np.ndarray, layer: str) -> None:
    a = np.asarray(packed)
    if a.shape != (6,) or a.dtype != np.uint64:
        raise ValueError(
            f"Dropout layer {layer!r}: saved generator state must be 6 uint64 words, got "
            f"{a.dtype} {a.shape}"
        )
    w = [int(v) for v in a]
    rng.bit_generator.state = {
        "bit_generator": "PCG64",
        "state": {"state": (w[0] << 64) | w[1], "inc": (w[2] << 64) | w[3]},
        "has_uint32": w[4],
        "uinteger": w[5],
    }


def ConsDropout(x: gc.Node | LayerOpt | None = None, *opts: LayerOpt) -> Dropout | Thunk:
    """A dropout layer. Options: ``WithProbability(p)`` (drop probability, default 0.5),
    ``WithName``.

    Example:
        >>> import golgi as G
        >>> G.ConsDropout(G.WithProbability(0.25))
        L(ConsDropout(WithProbability(0.25)))
    """
    return Dropout.cons(x, *opts)
