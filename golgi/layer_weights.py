"""A layer's learnables and state: how ``build`` makes them (``learnable``, ``adopt``,
``add_state``) and how they are read and restored (``named_learnables``, ``state``,
``non_trainable``, ``load_state``). :class:`~golgi.layer.Layer` has these methods.

Example:
    >>> import graphcore as gc, golgi as G
    >>> g = gc.NewGraph()
    >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
    >>> bn = G.ConsBatchNorm(x, G.WithName("bn"))
    >>> isinstance(bn, LayerWeights), list(bn.named_learnables()), sorted(bn.state())
    (True, ['bn/gamma', 'bn/beta'], ['bn/running_mean', 'bn/running_var'])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

import graphcore as gc
from graphcore.shapes import fmt_shape

__all__ = ["LayerWeights"]


class LayerWeights:
    """The learnables and state arrays of a layer (a mixin of :class:`~golgi.layer.Layer`,
    which sets the attributes below when it is built).

    Example:
        >>> import graphcore as gc, golgi as G
        >>> g = gc.NewGraph()
        >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
        >>> fc = G.ConsFC(x, G.WithShape(2), G.WithName("h"))
        >>> {k: n.shape for k, n in fc.params.items()}, list(fc.named_learnables())
        ({'W': (3, 2), 'b': (1, 2)}, ['h/W', 'h/b'])
    """

    name: str
    graph: gc.Graph
    dtype: gc.Dtype
    params: dict[str, gc.Node]
    _state: dict[str, np.ndarray]

    if TYPE_CHECKING:  # Layer's, which names the layer in the message

        def error(self, msg: str, cls: type[Exception] = gc.ShapeError) -> Exception: ...

    def learnable(
        self,
        key: str,
        shape: Sequence[int],
        init: Callable[..., Any] | None = None,
        value: Any = None,
        dtype: gc.Dtype | None = None,
    ) -> gc.Node:
        """Create a learnable node ``"<layer>/<key>"`` from an initializer or a value.

        Example:
            >>> import graphcore as gc, golgi as G
            >>> class Scale(G.Layer):
            ...     kind, prefix = "Scale", "scale"
            ...     def build(self, x):
            ...         self.learnable("s", (1, x.shape[1]), value=[[2.0, 3.0]])
            ...         self.learnable("t", (1, x.shape[1]), init=gc.Zeroes())
            ...     def forward(self, x):
            ...         return x * self.params["s"] + self.params["t"]
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
            >>> sc = Scale.cons(x, G.WithName("sc"))
            >>> [(n.name, n.shape) for n in sc.model()], sc.params["s"].value
            ([('sc/s', (1, 2)), ('sc/t', (1, 2))], array([[2., 3.]]))
        """
        dt = dtype or self.dtype
        opts = [gc.WithShape(*shape), gc.WithName(f"{self.name}/{key}")]
        if value is not None:
            arr = np.asarray(value)
            if arr.shape != tuple(shape):
                raise self.error(
                    f"{key} must have shape {fmt_shape(tuple(shape))}, got an array of shape "
                    f"{fmt_shape(arr.shape)}"
                )
            opts.append(gc.WithValue(arr.astype(dt.np)))
        elif init is not None:
            opts.append(gc.WithInit(init))
        else:
            raise self.error(f"learnable {key!r} needs an initializer or a value", TypeError)
        node = gc.NewTensor(self.graph, dt, len(shape), *opts)
        self.params[key] = node
        return node

    def adopt(self, key: str, node: gc.Node, shape: Sequence[int]) -> gc.Node:
        """Use an existing node as learnable ``key`` (weight sharing); checks its shape.

        Example:
            >>> import graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
            >>> enc = G.ConsFC(x, G.WithShape(2), G.WithName("enc"))
            >>> class Tied(G.Layer):
            ...     kind, prefix = "Tied", "tied"
            ...     def build(self, x):
            ...         self.adopt("W", enc.params["W"], (x.shape[1], 2))
            ...     def forward(self, x):
            ...         return x @ self.params["W"]
            >>> tied = Tied.cons(x, G.WithName("tied"))
            >>> tied.params["W"] is enc.params["W"], tied.params["W"].name, tied.fwd(x).shape
            (True, 'enc/W', (None, 2))
        """
        if tuple(node.shape) != tuple(shape):
            raise self.error(
                f"{key} must have shape {fmt_shape(tuple(shape))}, got {node.describe()}"
            )
        if node.dtype != self.dtype:
            raise self.error(f"{key} must be {self.dtype}, got {node.describe()}", gc.DtypeError)
        if node.graph is not self.graph:
            raise self.error(f"{key} {node.describe()} belongs to another graph", gc.GraphError)
        self.params[key] = node
        return node

    def add_state(self, key: str, array: np.ndarray) -> np.ndarray:
        """Register a non-learnable array saved as ``state/<layer>/<key>`` and restored in place.

        Example:
            >>> import numpy as np, graphcore as gc, golgi as G
            >>> class Center(G.Layer):
            ...     kind, prefix = "Center", "center"
            ...     def build(self, x):
            ...         self.mean = self.add_state("mean", np.zeros(x.shape[1]))
            ...     def forward(self, x):
            ...         return x - gc.NewConstant(self.mean)
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
            >>> c = Center.cons(x, G.WithName("c"))
            >>> c.state(), c.state()["c/mean"] is c.mean, c.model()
            ({'c/mean': array([0., 0., 0.])}, True, [])
        """
        self._state[key] = array
        return array

    def named_learnables(self) -> dict[str, gc.Node]:
        """This layer's ``self.params``, keyed ``"<layer>/<key>"``.

        Example:
            >>> import graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
            >>> list(G.ConsFC(x, G.WithShape(1), G.WithName("h")).named_learnables())
            ['h/W', 'h/b']
        """
        return {f"{self.name}/{k}": n for k, n in self.params.items()}

    def state(self) -> dict[str, np.ndarray]:
        """The arrays registered with ``add_state`` (not copies), keyed ``"<layer>/<key>"``.

        Example:
            >>> import graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
            >>> G.ConsBatchNorm(x, G.WithName("bn")).state()["bn/running_var"]
            array([1., 1.])
        """
        return {f"{self.name}/{k}": v for k, v in self._state.items()}

    def non_trainable(self) -> dict[str, np.ndarray]:
        """The ``add_state`` arrays, keyed like ``state()``; override to leave some out.

        Example:
            >>> import graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
            >>> sorted(G.ConsBatchNorm(x, G.WithName("bn")).non_trainable())
            ['bn/running_mean', 'bn/running_var']
        """
        return {f"{self.name}/{k}": v for k, v in self._state.items()}

    def load_state(self, d: dict[str, np.ndarray]) -> None:
        """Copy ``d``'s arrays into this layer's state arrays, in place.

        Keys may be full (``"bn/running_mean"``) or short (``"running_mean"``); an unknown key
        raises ``KeyError``. An override (for state that is not a plain array, such as a
        generator) handles its own keys and passes the rest to ``super().load_state``.

        Example:
            >>> import numpy as np, graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
            >>> bn = G.ConsBatchNorm(x, G.WithName("bn")); var = bn.running_var
            >>> bn.load_state({"running_var": np.array([4.0, 9.0])})
            >>> bn.running_var, bn.running_var is var
            (array([4., 9.]), True)
            >>> bn.load_state({"bn/nope": np.zeros(2)})
            Traceback (most recent call last):
            ...
            KeyError: "layer 'bn' has no state 'nope'"
        """
        for k, v in d.items():
            short = k[len(self.name) + 1 :] if k.startswith(self.name + "/") else k
            if short not in self._state:
                raise KeyError(f"layer {self.name!r} has no state {short!r}")
            np.copyto(self._state[short], v)  # in place: nodes built earlier keep reading it
