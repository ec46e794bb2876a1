"""The talk's two models, declared once: the MNIST classifier and the autoencoder.

- :func:`MLP`: 784-250-100-10, ReLU hidden layers ``fc1``, ``fc2`` and a linear ``out`` layer
  (logits: ``golgi.CrossEntropy`` fuses the softmax);
- :func:`Autoencoder`: 784-250-50-250-784, ReLU layers ``e1``, ``e2``, ``d1`` and a last layer
  ``d2`` giving logits (``golgi.BinaryCrossEntropy`` fuses the sigmoid) or, with
  ``sigmoid=True``, the sigmoid output the talk writes.

Weights start from ``GlorotN(1.0)``, as in the talk; ``gc.SetSeed`` first makes them
reproducible. ``golgi train mlp`` and ``golgi train autoencoder`` train exactly these.

Example:
    >>> import graphcore as gc
    >>> gc.SetSeed(0)
    >>> net = MLP()
    >>> [(n.name, n.shape) for n in net.model()][:2], net.param_count()
    ([('fc1/W', (784, 250)), ('fc1/b', (1, 250))], 222360)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import graphcore as gc

from .compose import ComposeSeq, Composition, L
from .layers.fc import ConsFC
from .options import WithActivation, WithInit, WithName, WithShape

__all__ = ["MLP", "Autoencoder", "MLP_SIZES", "AUTOENCODER_SIZES"]

#: Input size, then each layer's units: the talk's classifier and autoencoder.
MLP_SIZES: tuple[int, ...] = (784, 250, 100, 10)
AUTOENCODER_SIZES: tuple[int, ...] = (784, 250, 50, 250, 784)


def _input(
    who: str, x: gc.Node | None, sizes: Sequence[int], dtype: gc.Dtype, graph_name: str
) -> gc.Node:
    if len(sizes) < 2 or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in sizes):
        raise ValueError(
            f"{who}: sizes must be the input size and at least one layer size, all positive "
            f"ints, e.g. {MLP_SIZES}; got {tuple(sizes)!r}"
        )
    if x is None:
        g = gc.NewGraph(graph_name)
        return gc.NewMatrix(g, dtype, gc.WithShape(None, sizes[0]), gc.WithName("x"))
    if not isinstance(x, gc.Node):
        raise TypeError(f"{who}: x must be the input node (or None for a new graph), got {x!r}")
    if x.ndim != 2 or x.shape[1] != sizes[0]:
        raise gc.ShapeError(
            f"{who}: the input {x.describe()} must be (batch, {sizes[0]}) for sizes "
            f"{tuple(sizes)}; pass sizes=({x.shape[-1] if x.shape else '?'}, ...)"
        )
    return x


def _dense(
    x: gc.Node,
    sizes: Sequence[int],
    names: Sequence[str],
    last: Callable[..., Any] | None,
    init: Any,
) -> Composition:
    acts = [gc.Rectify] * (len(names) - 1) + [last]
    terms = [
        L(ConsFC(WithShape(n), WithName(name), WithActivation(act), WithInit(init)))
        for n, name, act in zip(sizes[1:], names, acts, strict=True)
    ]
    return ComposeSeq(x, *terms)


def MLP(
    x: gc.Node | None = None,
    *,
    sizes: Sequence[int] = MLP_SIZES,
    dtype: gc.Dtype = gc.Float32,
    softmax: bool = False,
    init: Any = None,
) -> Composition:
    """The talk's MNIST classifier: ReLU layers ``fc1``, ``fc2``, ... and an ``out`` layer.

    ``x``: the input node (batch, sizes[0]); None builds a new graph ``"mlp"`` with an input
    ``x`` of shape (None, sizes[0]) and ``dtype``. ``sizes``: the input size, then each
    layer's units (default 784-250-100-10). ``softmax=False`` (default) leaves ``out`` as
    logits, for ``golgi.CrossEntropy``; True puts ``gc.SoftMax`` on it. ``init``: the weights'
    initializer (default ``gc.GlorotN(1.0)``, the talk's). Returns the built composition
    (``net.input``, ``net.out``, ``net.model()``).

    Example:
        >>> import graphcore as gc
        >>> net = MLP(sizes=(6, 5, 3))
        >>> [la.name for la in net.layers], net.input.shape, net.out.shape
        (['fc1', 'out'], (None, 6), (None, 3))
        >>> net.layers[-1]
        FC(name='out', size=3, activation=None, bias=True, init=GlorotN(gain=1.0))
    """
    xn = _input("MLP", x, sizes, dtype, "mlp")
    names = [f"fc{i}" for i in range(1, len(sizes) - 1)] + ["out"]
    last = gc.SoftMax if softmax else None
    return _dense(xn, sizes, names, last, init if init is not None else gc.GlorotN(1.0))


def Autoencoder(
    x: gc.Node | None = None,
    *,
    sizes: Sequence[int] = AUTOENCODER_SIZES,
    dtype: gc.Dtype = gc.Float32,
    sigmoid: bool = False,
    init: Any = None,
) -> Composition:
    """The talk's autoencoder: ReLU encoder layers ``e1``, ``e2``, ... then decoder layers
    ``d1``, ``d2``, ... (the first half of the layers encode), the last giving the image.

    ``x``: the input node (batch, sizes[0]); None builds a new graph ``"autoencoder"`` with an
    input ``x`` of shape (None, sizes[0]) and ``dtype``. ``sizes``: the input size, then each
    layer's units (default 784-250-50-250-784). ``sigmoid=False`` (default) leaves the last
    layer as logits, for ``golgi.BinaryCrossEntropy`` (which fuses the sigmoid; apply
    ``scipy.special.expit`` to predictions); True puts ``gc.Sigmoid`` on it, as the talk
    writes it. ``init``: the weights' initializer (default ``gc.GlorotN(1.0)``).

    Example:
        >>> import graphcore as gc
        >>> ae = Autoencoder(sizes=(8, 4, 2, 4, 8), dtype=gc.Float64, sigmoid=True)
        >>> [la.name for la in ae.layers], ae.out.shape, ae.out.dtype
        (['e1', 'e2', 'd1', 'd2'], (None, 8), Float64)
        >>> ae.layers[-1].config()["activation"]
        'Sigmoid'
    """
    xn = _input("Autoencoder", x, sizes, dtype, "autoencoder")
    n = len(sizes) - 1
    names = [f"e{i}" for i in range(1, n // 2 + 1)] + [f"d{i}" for i in range(1, n - n // 2 + 1)]
    last = gc.Sigmoid if sigmoid else None
    return _dense(xn, sizes, names, last, init if init is not None else gc.GlorotN(1.0))
