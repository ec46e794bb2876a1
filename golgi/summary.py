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
from graphcore.shapes import broadcast_shapes, fmt_shape

__all__ = ["summarize"]


def _bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.2f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def _rows(term: Any, shape: tuple[Any, ...], rows: list[tuple[str, str, int]]) -> tuple[Any, ...]:
    from .compose import Composition, Identity, Join
    from .layer import Layer, Thunk

    if isinstance(term, Layer):
        out = tuple(term.output_shape(shape))
        rows.append((f"{term.name} ({term.kind})", fmt_shape(out), term.param_count()))
        return out
    if isinstance(term, Composition):
        for t in term.terms:
            shape = _rows(t, shape, rows)
        return shape
    if isinstance(term, Join):
        a = _rows(term.branches[0], shape, rows)
        b = _rows(term.branches[1], shape, rows)
        try:
            out = broadcast_shapes(a, b)
        except ValueError:
            raise gc.ShapeError(
                f"{term.kind} join: branch outputs {fmt_shape(a)} and {fmt_shape(b)} differ"
            ) from None
        rows.append((f"({term.kind} join)", fmt_shape(out), 0))
        return out
    if isinstance(term, Identity):
        return shape
    if isinstance(term, Thunk):
        raise gc.GraphError(
            f"summary: {term!r} is not built yet; apply the model to an input first "
            f"(net.fwd(x)) or give the input to ComposeSeq(x, ...)"
        )
    raise TypeError(f"summary: cannot describe {term!r}")


def _input_of(term: Any) -> tuple[str, tuple[Any, ...], str] | None:
    from .compose import Composition
    from .layer import Layer

    if isinstance(term, Composition) and term.input is not None:
        n = term.input
        return n.name, tuple(n.shape), str(n.dtype)
    if isinstance(term, Layer):
        return "input", term.input_shape, str(term.input_dtype)
    layers = term.layers
    if layers:
        return "input", layers[0].input_shape, str(layers[0].input_dtype)
    return None


def summarize(term: Any, input_shape: Sequence[int | None] | None = None) -> str:
    """The summary table of ``term`` for ``input_shape`` (default: the input it was built on).

    The batch dimension is shown as None. Parameter bytes count each learnable's dtype;
    non-trainable parameters are the layers' saved state (e.g. batch norm running statistics).
    """
    info = _input_of(term)
    if input_shape is None:
        if info is None:
            raise gc.GraphError(
                "summary: the model is not built yet; apply it to an input (net.fwd(x)) or "
                "pass input_shape=(None, ...)"
            )
        name, shape, dtype = info
    else:
        name, shape, dtype = "input", tuple(input_shape), (info[2] if info else "")
    shape = (None, *shape[1:]) if shape else shape
    rows: list[tuple[str, str, int]] = []
    _rows(term, shape, rows)
    w0 = max([len("Layer (type)")] + [len(r[0]) for r in rows]) + 4
    w1 = max([len("Output Shape")] + [len(r[1]) for r in rows]) + 4
    w2 = max([len("Param #")] + [len(f"{r[2]:,}") for r in rows])
    rule = "=" * (w0 + w1 + w2)
    lines = [
        f"Input {name!r}: {fmt_shape(shape)} {dtype}".rstrip(),
        rule,
        f"{'Layer (type)':<{w0}}{'Output Shape':<{w1}}{'Param #':>{w2}}",
        rule,
    ]
    lines += [f"{a:<{w0}}{b:<{w1}}{c:>{w2},}" for a, b, c in rows]
    learn = term.model()
    n_train = sum(int(np.prod(n.shape)) for n in learn)
    b_train = sum(int(np.prod(n.shape)) * n.dtype.itemsize for n in learn)
    state = term.state()
    n_state = sum(int(v.size) for v in state.values())
    b_state = sum(int(v.nbytes) for v in state.values())
    lines += [
        rule,
        f"Total params: {n_train + n_state:,} ({_bytes(b_train + b_state)})",
        f"Trainable params: {n_train:,} ({_bytes(b_train)})",
        f"Non-trainable params: {n_state:,} ({_bytes(b_state)})",
    ]
    return "\n".join(lines)
