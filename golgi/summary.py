"""The summary table: Keras-like rows of layers, output shapes (None batch) and parameter counts.

Terms fill a :class:`SummaryTable` (each describes itself with ``Term.summary_rows``); the
table counts every array once and renders the text. ``Term.summary`` puts the two together.

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
from graphcore.shapes import fmt_shape

__all__ = ["SummaryTable", "summarize"]


def _bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.2f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


class SummaryTable:
    """The rows of a summary and the arrays they count, each array once (by identity).

    ``rows`` holds (label, output shape, parameter count) triples; ``scratch`` is the graph
    that terms not built yet build their throwaway layers in (one per summary, so automatic
    layer names count up as they would in the model).

    Example:
        >>> t = SummaryTable(); t.add_row("(Add join)", (None, 3))
        >>> print(t.render("x", (None, 3), "Float32"))  # doctest: +NORMALIZE_WHITESPACE
        Input 'x': (None, 3) Float32
        =======================================
        Layer (type)    Output Shape    Param #
        =======================================
        (Add join)      (None, 3)             0
        =======================================
        Total params: 0 (0 B)
        Trainable params: 0 (0 B)
        Non-trainable params: 0 (0 B)
    """

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, int]] = []
        #: FLOPs per sample of each row (a column of its own, so ``rows`` keep their form)
        self.flops: list[int] = []
        self.learnables: dict[int, gc.Node] = {}
        self.fixed: dict[int, np.ndarray] = {}
        self.scratch: gc.Graph | None = None

    def add_row(
        self, label: str, shape: Sequence[int | None], params: int = 0, flops: int = 0
    ) -> None:
        """Append a row that owns no arrays (a join, a layer described by hand).

        Example:
            >>> t = SummaryTable(); t.add_row("(HadamardProd join)", (None, 2)); t.rows
            [('(HadamardProd join)', '(None, 2)', 0)]
        """
        self.rows.append((label, fmt_shape(tuple(shape)), int(params)))
        self.flops.append(int(flops))

    def add_layer(self, layer: Any, shape: Sequence[int | None]) -> None:
        """Append ``layer``'s row (``name (kind)``, output ``shape``, its parameters, batch
        norm statistics included) and remember its arrays for the totals.

        Example:
            >>> import graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
            >>> t = SummaryTable(); t.add_layer(G.ConsBatchNorm(x, G.WithName("bn")), (None, 2))
            >>> t.rows, len(t.learnables), len(t.fixed)
            ([('bn (BatchNorm)', '(None, 2)', 8)], 2, 2)
        """
        for n in layer.named_learnables().values():
            self.learnables.setdefault(id(n), n)
        fixed = layer.non_trainable()
        for v in fixed.values():
            self.fixed.setdefault(id(v), v)
        count = layer.param_count() + sum(int(v.size) for v in fixed.values())
        self.add_row(f"{layer.name} ({layer.kind})", shape, count, flops=layer.flops())

    def render(
        self, input_name: str, shape: Sequence[int | None], dtype: Any, flops: bool = False
    ) -> str:
        """The table as text: the input line, the rows, then the totals (each array once;
        bytes follow each array's dtype). ``flops=True`` adds a FLOPs column (per sample)
        and a total FLOPs line.

        Example:
            >>> SummaryTable().render("x", (None, 2), "Float64").splitlines()[0]
            "Input 'x': (None, 2) Float64"
            >>> t = SummaryTable(); t.add_row("(Add join)", (None, 3), flops=3)
            >>> print(t.render("x", (None, 3), "Float32", flops=True))
            Input 'x': (None, 3) Float32
            ================================================
            Layer (type)    Output Shape    Param #    FLOPs
            ================================================
            (Add join)      (None, 3)             0        3
            ================================================
            Total params: 0 (0 B)
            Trainable params: 0 (0 B)
            Non-trainable params: 0 (0 B)
            FLOPs per sample: 3
        """
        rows = self.rows
        w0 = max([len("Layer (type)")] + [len(r[0]) for r in rows]) + 4
        w1 = max([len("Output Shape")] + [len(r[1]) for r in rows]) + 4
        w2 = max([len("Param #")] + [len(f"{r[2]:,}") for r in rows])
        w3 = max([len("FLOPs")] + [len(f"{f:,}") for f in self.flops]) + 4 if flops else 0
        rule = "=" * (w0 + w1 + w2 + w3)
        head = f"{'Layer (type)':<{w0}}{'Output Shape':<{w1}}{'Param #':>{w2}}"
        lines = [
            f"Input {input_name!r}: {fmt_shape(tuple(shape))} {dtype}".rstrip(),
            rule,
            head + (f"{'FLOPs':>{w3}}" if flops else ""),
            rule,
        ]
        for (a, b, c), f in zip(rows, self.flops, strict=True):
            lines.append(f"{a:<{w0}}{b:<{w1}}{c:>{w2},}" + (f"{f:>{w3},}" if flops else ""))
        learn = self.learnables.values()
        n_train = sum(int(np.prod(n.shape)) for n in learn)
        b_train = sum(int(np.prod(n.shape)) * n.dtype.itemsize for n in learn)
        n_fixed = sum(int(v.size) for v in self.fixed.values())
        b_fixed = sum(int(v.nbytes) for v in self.fixed.values())
        lines += [
            rule,
            f"Total params: {n_train + n_fixed:,} ({_bytes(b_train + b_fixed)})",
            f"Trainable params: {n_train:,} ({_bytes(b_train)})",
            f"Non-trainable params: {n_fixed:,} ({_bytes(b_fixed)})",
        ]
        if flops:
            lines.append(f"FLOPs per sample: {sum(self.flops):,}")
        return "\n".join(lines)


def summarize(
    term: Any,
    input_shape: Sequence[int | None] | None = None,
    dtype: gc.Dtype | None = None,
    flops: bool = False,
) -> str:
    """The summary table of ``term`` as text, without printing it (``term.summary`` prints).

    The batch dimension is shown as None. Each row counts its layer's parameters, trainable
    (learnables) and non-trainable (batch norm running statistics), as Keras does; the totals
    count each array once. A model not built yet needs ``input_shape`` (and ``dtype``,
    default Float32); it is described from throwaway layers and stays unbuilt. ``flops=True``
    adds each row's FLOPs per sample and their total.

    Example:
        >>> import golgi as G
        >>> text = summarize(G.ComposeSeq(G.L(G.ConsFC(G.WithShape(2)))), (None, 3))
        >>> text.splitlines()[-3]
        'Total params: 8 (32 B)'
    """
    return str(term.summary(input_shape, print_fn=None, dtype=dtype, flops=flops))
