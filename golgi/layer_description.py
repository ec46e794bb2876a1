"""How a layer describes itself: its FLOPs, output shape, summary row, config (the plain
values of ``repr``, ``summary`` and saved models) and the description ``golgi.save`` stores.
:class:`~golgi.layer.Layer` has these methods.

Example:
    >>> import graphcore as gc, golgi as G
    >>> g = gc.NewGraph()
    >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 4), gc.WithName("x"))
    >>> fc = G.ConsFC(x, G.WithShape(2), G.WithName("h"))
    >>> isinstance(fc, LayerDescription), fc.output_shape((None, 4)), fc.flops()
    (True, (None, 2), 16)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

import graphcore as gc
from graphcore.extend import building_in

from .options import fn_name
from .summary import SummaryTable

__all__ = ["LayerDescription"]


class LayerDescription:
    """What a layer says about itself (a mixin of :class:`~golgi.layer.Layer`, which sets the
    attributes below when it is built).

    Example:
        >>> import graphcore as gc, golgi as G
        >>> g = gc.NewGraph()
        >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 4), gc.WithName("x"))
        >>> G.ConsFC(x, G.WithShape(2), G.WithName("h")).describe_layer()["config"]
        {'name': 'h', 'size': 2, 'activation': 'None', 'bias': True}
    """

    kind: ClassVar[str]
    name: str
    opts: dict[str, Any]
    input_dtype: gc.Dtype
    params: dict[str, gc.Node]
    _cache: dict[int, tuple[gc.Node, gc.Node]]

    if TYPE_CHECKING:  # Layer's

        def forward(self, x: gc.Node) -> gc.Node: ...

        def state(self) -> dict[str, np.ndarray]: ...

    def flops(self, batch: int = 1) -> int:
        """Floating-point operations of one forward pass over ``batch`` samples (Golgi's
        ``FLOPs``); 0 unless the layer counts them (every golgi layer does; override it).

        Example:
            >>> import graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 4), gc.WithName("x"))
            >>> fc = G.ConsFC(x, G.WithShape(2))
            >>> LayerDescription.flops(fc), fc.flops()
            (0, 16)
        """
        return 0

    def output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        """The output shape for an input shape (``None`` for a free batch).

        The default traces ``forward`` on a detached placeholder (no node enters the graph).

        Example:
            >>> import graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
            >>> G.ConsFC(x, G.WithShape(5)).output_shape((None, 2))
            (None, 5)
        """
        probe = gc.Node(None, None, (), tuple(input_shape), self.input_dtype, name="probe")
        with building_in(None):
            return tuple(self.forward(probe).shape)

    def summary_rows(
        self, table: SummaryTable, shape: tuple[int | None, ...], dtype: gc.Dtype
    ) -> tuple[tuple[int | None, ...], gc.Dtype]:
        """This layer's row for an input of ``shape`` (see :meth:`Term.summary_rows`).

        Example:
            >>> import graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 4), gc.WithName("x"))
            >>> table = SummaryTable()
            >>> G.ConsFC(x, G.WithShape(2), G.WithName("h")).summary_rows(table, (None, 4), x.dtype)
            ((None, 2), Float64)
            >>> table.rows
            [('h (FC)', '(None, 2)', 10)]
        """
        out = tuple(self.output_shape(shape))
        table.add_layer(self, out)
        for _, node in self._cache.values():  # a node it built says (an embedding changes it)
            return out, node.dtype
        return out, dtype

    def config(self) -> dict[str, Any]:
        """Options as plain values (for repr, summary and the saved description).

        The default lists ``name`` and the options as given (``WithWeights`` left out,
        functions by name, tuples as lists). An override returns the settings that define the
        layer, resolved (``FC`` gives ``size`` rather than ``shape``), as plain values
        (str, int, float, bool, list, None), ``name`` first.

        Example:
            >>> import graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 4), gc.WithName("x"))
            >>> fc = G.ConsFC(x, G.WithShape(2), G.WithActivation(gc.Tanh), G.WithName("h"))
            >>> LayerDescription.config(fc)
            {'name': 'h', 'activation': 'Tanh', 'bias': True, 'shape': [2]}
            >>> fc.config()
            {'name': 'h', 'size': 2, 'activation': 'Tanh', 'bias': True}
        """
        out: dict[str, Any] = {"name": self.name}
        for k, v in self.opts.items():
            if k in ("name", "weights"):
                continue
            if k in ("activation", "init"):
                v = fn_name(v)
            elif isinstance(v, gc.Dtype):
                v = str(v)
            out[k] = list(v) if isinstance(v, tuple) else v
        return out

    def describe_layer(self) -> dict[str, Any]:
        """Kind, name, config and learnable/state shapes and dtypes, as plain values.

        One entry of ``Term.describe()``; built from ``config()``, so override that instead.

        Example:
            >>> import graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 4), gc.WithName("x"))
            >>> d = G.ConsBatchNorm(x, G.WithName("bn")).describe_layer()
            >>> d["kind"], d["learnables"]["gamma"], d["state"]["running_mean"]
            ('BatchNorm', [[4], 'Float64'], [[4], 'float64'])
        """
        return {
            "kind": self.kind,
            "name": self.name,
            "config": self.config(),
            "learnables": {k: [list(n.shape), str(n.dtype)] for k, n in self.params.items()},
            "state": {
                k[len(self.name) + 1 :]: [list(v.shape), str(v.dtype)]
                for k, v in self.state().items()
            },
        }
