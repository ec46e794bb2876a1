"""A Keras-like text summary of a term: layers, output shapes (None batch), parameter counts.

Example:
    >>> import graphcore as gc, golgi as G
    >>> g = gc.NewGraph()
    >>> x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 4), gc.WithName("x"))
    >>> net = G.ComposeSeq(x, G.L(G.ConsFC(G.WithShape(3), G.WithName("h"))))
    >>> print(summarize(net))
    Input 'x': (None, 4) Float32
    =======================================
    Layer (type)    Output Shape    Param #
    =======================================
    h (FC)          (None, 3)            15
    =======================================
    Total params: 15 (60 B)
    Trainable params: 15 (60 B)
    Non-trainable params: 0 (0 B)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

import graphcore as gc
from graphcore.rng import get_rng
from graphcore.shapes import broadcast_shapes, fmt_shape

__all__ = ["summarize"]


def _bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.2f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


class _Walk:
    """Rows of the table, and each learnable and non-trainable array once (by identity).

    Unbuilt layers (thunks) are built into a throwaway graph on a placeholder input; the
    model keeps its thunks, and graphcore's generator is put back as it was afterwards.
    """

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, int]] = []
        self.learn: dict[int, gc.Node] = {}
        self.fixed: dict[int, np.ndarray] = {}
        self.scratch: gc.Graph | None = None

    def layer(self, layer: Any, shape: tuple[Any, ...], dtype: gc.Dtype) -> gc.Dtype:
        for n in layer.named_learnables().values():
            self.learn.setdefault(id(n), n)
        fixed = layer.non_trainable()
        for v in fixed.values():
            self.fixed.setdefault(id(v), v)
        count = layer.param_count() + sum(int(v.size) for v in fixed.values())
        self.rows.append((f"{layer.name} ({layer.kind})", fmt_shape(shape), count))
        return dtype

    def term(self, term: Any, shape: tuple[Any, ...], dtype: gc.Dtype) -> tuple[Any, gc.Dtype]:
        from .compose import Composition, Identity, Join
        from .layer import Layer, Thunk

        if isinstance(term, Layer):
            out = tuple(term.output_shape(shape))
            return out, self.layer(term, out, _out_dtype(term, dtype))
        if isinstance(term, Thunk):
            if self.scratch is None:
                self.scratch = gc.NewGraph("summary")
            x = gc.NewTensor(self.scratch, dtype, len(shape), gc.WithShape(*shape))
            built = term.build(x)
            y = built.fwd(x)
            return tuple(y.shape), self.layer(built, tuple(y.shape), y.dtype)
        if isinstance(term, Composition):
            for t in term.terms:
                shape, dtype = self.term(t, shape, dtype)
            return shape, dtype
        if isinstance(term, Join):
            a, dt = self.term(term.branches[0], shape, dtype)
            b, _ = self.term(term.branches[1], shape, dtype)
            try:
                out = broadcast_shapes(a, b)
            except ValueError:
                raise gc.ShapeError(
                    f"{term.kind} join: branch outputs {fmt_shape(a)} and {fmt_shape(b)} differ"
                ) from None
            self.rows.append((f"({term.kind} join)", fmt_shape(out), 0))
            return out, dt
        if isinstance(term, Identity):
            return shape, dtype
        raise TypeError(f"summary: cannot describe {term!r}")


def _out_dtype(layer: Any, dtype: gc.Dtype) -> gc.Dtype:
    for _, out in layer._cache.values():  # any node it built says (an embedding changes it)
        return out.dtype
    return dtype


def _input_of(term: Any) -> tuple[str, tuple[Any, ...], gc.Dtype] | None:
    from .compose import Composition
    from .layer import Layer

    if isinstance(term, Composition) and term.input is not None:
        n = term.input
        return n.name, tuple(n.shape), n.dtype
    if isinstance(term, Layer):
        return "input", term.input_shape, term.input_dtype
    layers = term.layers
    if layers:
        return "input", layers[0].input_shape, layers[0].input_dtype
    return None


def summarize(
    term: Any,
    input_shape: Sequence[int | None] | None = None,
    dtype: gc.Dtype | None = None,
) -> str:
    """The summary table of ``term`` for ``input_shape`` (default: the input it was built on).

    The batch dimension is shown as None. Each row counts its layer's parameters, trainable
    (learnables) and non-trainable (batch norm running statistics), as Keras does; the totals
    count each array once. Parameter bytes follow each array's dtype. A model not built yet
    needs ``input_shape`` (and ``dtype``, default Float32); it is described from throwaway
    layers and stays unbuilt.
    """
    info = _input_of(term)
    if input_shape is None:
        if info is None:
            raise gc.GraphError(
                "summary: the model is not built yet; apply it to an input (net.fwd(x)) or "
                "pass input_shape=(None, ...)"
            )
        name, shape, in_dt = info
    else:
        name, shape = "input", tuple(input_shape)
        in_dt = info[2] if info else gc.Float32
    in_dt = dtype if dtype is not None else in_dt
    shape = (None, *shape[1:]) if shape else shape
    walk = _Walk()
    rng = get_rng()
    saved = rng.bit_generator.state
    try:
        walk.term(term, shape, in_dt)
    finally:
        rng.bit_generator.state = saved  # throwaway layers drew initial weights from it
    rows = walk.rows
    w0 = max([len("Layer (type)")] + [len(r[0]) for r in rows]) + 4
    w1 = max([len("Output Shape")] + [len(r[1]) for r in rows]) + 4
    w2 = max([len("Param #")] + [len(f"{r[2]:,}") for r in rows])
    rule = "=" * (w0 + w1 + w2)
    lines = [
        f"Input {name!r}: {fmt_shape(shape)} {in_dt}".rstrip(),
        rule,
        f"{'Layer (type)':<{w0}}{'Output Shape':<{w1}}{'Param #':>{w2}}",
        rule,
    ]
    lines += [f"{a:<{w0}}{b:<{w1}}{c:>{w2},}" for a, b, c in rows]
    learn = walk.learn.values()
    n_train = sum(int(np.prod(n.shape)) for n in learn)
    b_train = sum(int(np.prod(n.shape)) * n.dtype.itemsize for n in learn)
    n_fixed = sum(int(v.size) for v in walk.fixed.values())
    b_fixed = sum(int(v.nbytes) for v in walk.fixed.values())
    lines += [
        rule,
        f"Total params: {n_train + n_fixed:,} ({_bytes(b_train + b_fixed)})",
        f"Trainable params: {n_train:,} ({_bytes(b_train)})",
        f"Non-trainable params: {n_fixed:,} ({_bytes(b_fixed)})",
    ]
    return "\n".join(lines)
