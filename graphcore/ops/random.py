"""Random nodes, drawn afresh at every run: ``UniformRandomNode``, ``GaussianRandomNode``,
``BinomialRandomNode`` (Gorgonia's names), and ``OneHotVector``.

A random node draws from its machine's generator, which comes from ``SetSeed``'s seed, so a
seeded program draws the same numbers run after run of the program, and new numbers at each
machine run. Its shape is fixed (``*shape``) or follows another node (``like=node``): the
noise of a variational autoencoder then matches whatever batch size the machine runs.

Example:
    >>> import numpy as np, graphcore as gc
    >>> g = gc.NewGraph()
    >>> h = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("h"))
    >>> eps = gc.GaussianRandomNode(g, gc.Float64, 0.0, 1.0, like=h)
    >>> z = h + eps; gc.Let(h, np.zeros((5, 2))); vm = gc.NewTapeMachine(g); vm.run_all()
    >>> a = z.value.copy(); vm.run_all(); z.value.shape, bool((a != z.value).all())
    ((5, 2), True)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..dtypes import Dtype, DtypeLike, as_dtype
from ..errors import DtypeError, ShapeError
from ..graph import Graph, Node
from ..shapes import Shape, fmt_shape
from ..values import NewConstant
from .base import ExecContext, Kernel, Op, TypeInfo, apply_op, building_in

__all__ = [
    "UniformRandomNode",
    "GaussianRandomNode",
    "BinomialRandomNode",
    "OneHotVector",
    "RandomOp",
]


class RandomOp(Op):
    """Draws a fresh array from a distribution at every run (no operand, or one whose shape
    it takes: ``like``). Not differentiable with respect to ``like``: its values are not read.

    Example:
        >>> import graphcore as gc
        >>> RandomOp("uniform", (0.0, 1.0), (2, 3), gc.Float32).params()
        {'dist': 'uniform', 'args': (0.0, 1.0), 'shape': (2, 3)}
    """

    name = "Random"
    shape_only = (0,)  # the like-node, when there is one, is read for its shape only

    def __init__(self, dist: str, args: tuple[float, ...], shape: Shape | None, dt: Dtype) -> None:
        self.dist = dist
        self.args = args
        self.shape = shape
        self._dt = dt

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        shape = ins[0].shape if ins else self.shape
        assert shape is not None
        return tuple(shape), self._dt

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        dist, args = self.dist, self.args
        if dist == "uniform":
            low, high = args

            def run_uniform() -> None:
                ctx.generator().random(dtype=out.dtype, out=out)
                np.multiply(out, high - low, out=out)
                np.add(out, low, out=out)

            return run_uniform
        if dist == "gaussian":
            mean, std = args

            def run_gaussian() -> None:
                ctx.generator().standard_normal(dtype=out.dtype, out=out)
                np.multiply(out, std, out=out)
                np.add(out, mean, out=out)

            return run_gaussian
        trials, p = args

        def run_binomial() -> None:
            np.copyto(out, ctx.generator().binomial(int(trials), p, size=out.shape))

        return run_binomial

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        return [None] * len(node.children)  # the like-node's values are never read


def _random(
    g: Graph, dt: DtypeLike, dist: str, args: tuple[float, ...], shape: tuple[Any, ...],
    like: Node | None, who: str,
) -> Node:
    if not isinstance(g, Graph):
        raise TypeError(f"{who}: the first argument must be a Graph (NewGraph()), got {g!r}")
    dtype = as_dtype(dt)
    if not dtype.is_float:
        raise DtypeError(f"{who}: random nodes are Float32 or Float64, got {dtype}")
    if like is not None:
        if shape:
            raise ShapeError(f"{who}: give a shape or like=node, not both")
        if not isinstance(like, Node):
            raise TypeError(f"{who}: like must be a node, got {type(like).__name__}")
        with building_in(g):
            return apply_op(RandomOp(dist, args, None, dtype), like)
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    if not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 0
               for d in shape):
        raise ShapeError(
            f"{who}: the shape must be sizes >= 0, got {fmt_shape(shape)}; to follow a batch "
            f"size that is only known at run time, pass like=node"
        )
    with building_in(g):
        return apply_op(RandomOp(dist, args, tuple(int(d) for d in shape), dtype))


def UniformRandomNode(
    g: Graph, dt: DtypeLike, low: float, high: float, *shape: int, like: Node | None = None
) -> Node:
    """A node of values drawn uniformly from ``[low, high)`` afresh at every run.

    Its shape is ``shape``, or ``like``'s (free batch dimension included) when given.

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph(); u = gc.UniformRandomNode(g, gc.Float32, -1.0, 1.0, 2, 3)
        >>> gc.NewTapeMachine(g).run_all(); u.shape, bool((abs(u.value) <= 1).all())
        ((2, 3), True)
    """
    if not low < high:
        raise ValueError(f"UniformRandomNode: low must be below high, got {low} and {high}")
    return _random(g, dt, "uniform", (float(low), float(high)), shape, like, "UniformRandomNode")


def GaussianRandomNode(
    g: Graph, dt: DtypeLike, mean: float, std: float, *shape: int, like: Node | None = None
) -> Node:
    """A node of normal draws ``N(mean, std**2)``, afresh at every run (``like``: take its
    shape, e.g. the noise of a VAE at any batch size).

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph(); n = gc.GaussianRandomNode(g, gc.Float64, 0.0, 2.0, 1000)
        >>> gc.SetSeed(0); gc.NewTapeMachine(g).run_all(); 1.8 < float(n.value.std()) < 2.2
        True
    """
    if not std >= 0:
        raise ValueError(f"GaussianRandomNode: std must be >= 0, got {std}")
    return _random(g, dt, "gaussian", (float(mean), float(std)), shape, like,
                   "GaussianRandomNode")


def BinomialRandomNode(
    g: Graph, dt: DtypeLike, trials: int, p: float, *shape: int, like: Node | None = None
) -> Node:
    """A node of binomial draws (successes in ``trials`` tries of probability ``p``), as
    floats, afresh at every run; ``trials=1`` gives 0/1 masks.

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph(); b = gc.BinomialRandomNode(g, gc.Float32, 1, 0.5, 4)
        >>> gc.NewTapeMachine(g).run_all(); set(b.value.tolist()) <= {0.0, 1.0}
        True
    """
    if isinstance(trials, bool) or not isinstance(trials, (int, np.integer)) or trials < 0:
        raise ValueError(f"BinomialRandomNode: trials must be an integer >= 0, got {trials!r}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"BinomialRandomNode: p must be in [0, 1], got {p}")
    return _random(g, dt, "binomial", (int(trials), float(p)), shape, like,
                   "BinomialRandomNode")


def OneHotVector(id: int, classes: int, dt: DtypeLike = "float64") -> Node:  # noqa: A002
    """A constant vector of ``classes`` zeros with a one at ``id`` (Gorgonia's argument order).

    Example:
        >>> import graphcore as gc
        >>> gc.OneHotVector(2, 4, gc.Float32).value.tolist()
        [0.0, 0.0, 1.0, 0.0]
    """
    if isinstance(classes, bool) or not isinstance(classes, (int, np.integer)) or classes < 1:
        raise ValueError(f"OneHotVector: classes must be a positive integer, got {classes!r}")
    if isinstance(id, bool) or not isinstance(id, (int, np.integer)) or not 0 <= id < classes:
        raise ValueError(f"OneHotVector: id must be in [0, {classes}), got {id!r}")
    dtype = as_dtype(dt)
    v = np.zeros(classes, dtype.np)
    v[id] = 1
    return NewConstant(v, name=f"onehot({id}/{classes})", dtype=dtype)
