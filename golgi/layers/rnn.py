"""Recurrent layers: ``ConsLSTM`` and ``ConsGRU``, one step or unrolled over a sequence.

The input's rank picks the form:

- (batch, features): **one step** from a zero state; ``fwd(x)`` gives the new hidden state.
  ``layer.step(x, h, c)`` (LSTM) or ``layer.step(x, h)`` (GRU) takes the state explicitly
  and returns the new one, so a loop of your own (a decoder feeding back its output) can
  carry it; ``fwd([x, h, c])`` is the same as ``step(x, h, c)`` (Golgi's input form).
- (batch, time, features): the layer is **unrolled** over the (known) time steps from a
  zero state; ``fwd(x)`` gives the last hidden state (batch, size), or with
  ``WithReturnSequences(True)`` every step's (batch, time, size). This form composes:
  ``ComposeSeq(x, L(ConsLSTM(...)), L(ConsFC(...)))``.

Unrolling builds a copy of the step per time step (about 15 forward nodes per LSTM step),
and every copy reads the same learnables. Each gate keeps its own named learnables
(``<name>/Wx_i``...), but a step computes all gates with one matrix product: the layer joins
its learnables once per graph (``Concat``), so the product per step is one
``[x_t, h] @ W`` of shape (in + size, 4 * size) and the gradients flow back through the join.

Example:
    >>> import graphcore as gc, golgi as G
    >>> g = gc.NewGraph()
    >>> seq = gc.NewTensor(g, gc.Float64, 3, gc.WithShape(None, 20, 8), gc.WithName("seq"))
    >>> lstm = G.ConsLSTM(seq, G.WithShape(16), G.WithName("lstm"))
    >>> lstm.fwd(seq).shape, [n.name for n in lstm.model()][:3]
    ((None, 16), ['lstm/Wx_i', 'lstm/Wh_i', 'lstm/b_i'])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np

import graphcore as gc
from graphcore.shapes import fmt_shape

from ..layer import Layer, sample_sizes
from ..options import LayerOpt, fn_name
from ..term import Thunk

__all__ = ["LSTM", "GRU", "ConsLSTM", "ConsGRU"]


# sequences a recurrent layer built from its steps' nodes, kept with the graph: a layer
# reading one takes those nodes as its steps, and the sequence's join and reshape drop out of
# the backward pass
_STEPS = "golgi.rnn.steps"


def _split_steps(x: gc.Node) -> list[gc.Node]:
    """The time steps of a sequence (batch, time, features), each (batch, features)."""
    if x.graph is not None:
        known = x.graph.registry(_STEPS).get(x.name)
        if known is not None and known[0] is x:
            return list(known[1])
    # views of x; their gradients are written into one buffer the size of x (not one each:
    # that would make the backward pass O(time**2))
    return gc.Unstack(x, 1)


class _Recurrent(Layer):
    """What LSTM and GRU share: options, input checks, unrolling, shapes and FLOPs."""

    options = ("name", "shape", "init", "return_sequences", "batched")
    defaults = {"return_sequences": False}
    #: the gate letters, in the order the joined (fused) learnables put them
    gates: ClassVar[str] = ""
    #: ``step(x, *states)``: one step; LSTM and GRU each define it, with their own states
    step: Callable[..., Any]

    def check_input(self, x: gc.Node) -> None:
        """Also require a float (batch, features) step or (batch, time, features) sequence,
        its time and feature sizes known."""
        if x.ndim not in (2, 3):
            raise self.error(
                f"{x.describe()} is {x.ndim}-D; {self.kind} takes one step (batch, features) "
                f"or a sequence (batch, time, features)"
            )
        if not x.dtype.is_float:
            raise self.error(f"{x.describe()} must be Float32 or Float64", gc.DtypeError)
        if None in x.shape[1:]:
            raise self.error(
                f"{x.describe()}: only the batch dimension may be None (the layer is unrolled "
                f"over a known number of time steps)"
            )
        super().check_input(x)

    def build(self, x: gc.Node) -> None:
        """Create the gates' learnables (weights from ``WithInit``, biases zeros)."""
        o = self.opts
        if "shape" not in o or len(o["shape"]) != 1:
            raise self.error(
                "give the hidden size with WithShape(n) (one size)"
                + (f", got WithShape{o['shape']}" if "shape" in o else ""),
                ValueError,
            )
        if o["return_sequences"] and x.ndim == 2:
            raise self.error(
                f"WithReturnSequences(True) needs a sequence (batch, time, features), got "
                f"{x.describe()}",
                ValueError,
            )
        self.size: int = int(o["shape"][0])
        self.n_in: int = int(x.shape[-1])
        init = o.get("init") or gc.GlorotU(1.0)
        for key, shape in self._learnable_shapes():
            self.learnable(key, shape, init=gc.Zeroes() if key.startswith("b") else init)
        self._joined: dict[str, gc.Node] = {}
        self._step_cache: dict[tuple[int, ...], tuple[tuple[Any, ...], Any]] = {}

    def _learnable_shapes(self) -> list[tuple[str, tuple[int, int]]]:
        raise NotImplementedError

    def _join(self, stem: str) -> gc.Node:
        """The learnables ``<stem>_<gate>`` side by side (axis 1), joined once per layer."""
        node = self._joined.get(stem)
        if node is None:
            node = gc.Concat(1, *(self.params[f"{stem}_{g}"] for g in self.gates))
            self._joined[stem] = node
        return node

    def _zero(self) -> gc.Node:
        """The zero state: a constant row (1, size) that broadcasts over any batch."""
        node = self._joined.get("zero")
        if node is None:
            node = gc.NewConstant(np.zeros((1, self.size), self.dtype.np), name=f"{self.name}/zero")
            self._joined["zero"] = node
        return node

    def _cached_step(self, args: tuple[Any, ...], state: Any) -> Any:
        """``_cell(args[0], state)``, built once per tuple of argument nodes."""
        key = tuple(id(a) for a in args)
        hit = self._step_cache.get(key)
        if hit is not None and all(a is b for a, b in zip(hit[0], args, strict=True)):
            return hit[1]
        out = self._cell(args[0], state)
        self._step_cache[key] = (args, out)
        return out

    def _check_state(self, what: str, x: gc.Node, s: gc.Node | None) -> None:
        if s is None:
            return
        if not isinstance(s, gc.Node):
            raise self.error(f"the {what} state must be a graph node, got {s!r}", TypeError)
        batch = x.shape[0]
        if (
            s.ndim != 2
            or s.shape[1] != self.size
            or (None not in (batch, s.shape[0]) and batch != s.shape[0])
        ):
            raise self.error(
                f"the {what} state must be (batch, {self.size}) like the input "
                f"{x.describe()}, got {s.describe()}"
            )
        if s.dtype != x.dtype:
            raise self.error(
                f"the {what} state {s.describe()} must have the input's dtype {x.dtype}",
                gc.DtypeError,
            )

    def _check_step_input(self, x: gc.Node) -> None:
        if not isinstance(x, gc.Node):
            raise self.error(f"step takes graph nodes, got {type(x).__name__}", TypeError)
        if x.ndim != 2 or x.shape[1] != self.n_in or x.dtype != self.dtype:
            raise self.error(
                f"a step takes ({self.dtype}) inputs of shape (batch, {self.n_in}), got "
                f"{x.describe()}"
            )

    def forward(self, x: gc.Node) -> gc.Node:
        """One step from a zero state (2-D input), or the unrolled sequence (3-D)."""
        if x.ndim == 2:
            return self._first(self._cell(x, None))
        steps = x.shape[1]
        h: Any = None
        outs = []
        for x_t in _split_steps(x):
            h = self._cell(x_t, h)
            outs.append(self._first(h))
        if not self.opts["return_sequences"]:
            return outs[-1]
        # one join and one reshape, not a reshape per step
        seq = gc.Reshape(gc.Concat(1, *outs), (x.shape[0], steps, self.size))
        if seq.graph is not None:
            seq.graph.registry(_STEPS)[seq.name] = (seq, outs)
        return seq

    @staticmethod
    def _first(state: Any) -> gc.Node:
        return state[0] if isinstance(state, tuple) else state

    def _cell(self, x: gc.Node, state: Any) -> Any:
        raise NotImplementedError

    def output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        """(batch, size), or (batch, time, size) with ``WithReturnSequences(True)``."""
        shape = tuple(input_shape)
        if len(shape) not in (2, 3):
            raise self.error(f"takes (batch, [time,] features), got {fmt_shape(shape)}")
        if len(shape) == 3 and self.opts["return_sequences"]:
            return (shape[0], shape[1], self.size)
        return (shape[0], self.size)

    def _steps(self) -> int:
        return sample_sizes(self, self.input_shape)[0] if len(self.input_shape) == 3 else 1

    def config(self) -> dict[str, Any]:
        """Name, ``size``, ``return_sequences`` (and init when given)."""
        out: dict[str, Any] = {
            "name": self.name,
            "size": self.size,
            "return_sequences": bool(self.opts["return_sequences"]),
        }
        if "init" in self.opts:
            out["init"] = fn_name(self.opts["init"])
        return out


class LSTM(_Recurrent):
    """A long short-term memory layer; build it with :func:`ConsLSTM`.

    Per gate ``g`` in i (input), f (forget), o (output), c (cell candidate): ``Wx_g``
    (in, size) and ``Wh_g`` (size, size), ``GlorotU(1.0)`` unless ``WithInit``; ``b_g``
    (1, size) zeros. A step: ``i, f, o = sigmoid(x Wx + h Wh + b)``, ``c~ = tanh(...)``,
    ``c' = f*c + i*c~``, ``h' = o*tanh(c')``.

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph()
        >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
        >>> LSTM(x, LayerOpt("shape", (2,))).param_count()
        48
    """

    kind = "LSTM"
    prefix = "lstm"
    gates = "ifoc"

    def _learnable_shapes(self) -> list[tuple[str, tuple[int, int]]]:
        n, h = self.n_in, self.size
        out = []
        for g in self.gates:
            out += [(f"Wx_{g}", (n, h)), (f"Wh_{g}", (h, h)), (f"b_{g}", (1, h))]
        return out

    def _cell(self, x: gc.Node, state: tuple[gc.Node, gc.Node] | None) -> tuple[gc.Node, gc.Node]:
        n = self.size
        if state is None:
            # the zero state is one row (1, size), broadcast over the batch, so the first
            # step still reads Wh and the forget gate (their gradients are zero, not missing)
            zero = self._zero()
            zb = self._joined.get("zero_step")
            if zb is None:
                zb = self._joined["zero_step"] = gc.Add(
                    gc.MatMul(zero, self._join("Wh")), self._join("b")
                )
            z = gc.Add(gc.MatMul(x, self._join("Wx")), zb)
            state = (zero, zero)
        else:
            w = self._joined.get("W")
            if w is None:  # [Wx; Wh]: one product of [x, h] per step computes every gate
                w = self._joined["W"] = gc.Concat(0, self._join("Wx"), self._join("Wh"))
            z = gc.Add(gc.MatMul(gc.Concat(1, x, state[0]), w), self._join("b"))
        i = gc.Sigmoid(z[:, 0:n])
        o = gc.Sigmoid(z[:, 2 * n : 3 * n])
        cand = gc.Tanh(z[:, 3 * n : 4 * n])
        f = gc.Sigmoid(z[:, n : 2 * n])
        c = gc.Add(gc.HadamardProd(f, state[1]), gc.HadamardProd(i, cand))
        return gc.HadamardProd(o, gc.Tanh(c)), c

    def step(
        self, x: gc.Node, h: gc.Node | None = None, c: gc.Node | None = None
    ) -> tuple[gc.Node, gc.Node]:
        """One step from state ``(h, c)`` (both None: zeros): the new ``(h, c)`` nodes.

        Each is (batch, size). Steps share the layer's learnables; the same three nodes give
        the same two nodes back.

        Example:
            >>> import graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
            >>> cell = G.ConsLSTM(x, G.WithShape(4))
            >>> h1, c1 = cell.step(x)
            >>> h2, c2 = cell.step(x, h1, c1)
            >>> h2.shape, c2.shape, cell.step(x, h1, c1)[0] is h2
            ((None, 4), (None, 4), True)
        """
        self._check_step_input(x)
        if (h is None) != (c is None):
            raise self.error("give both states (h, c) or neither (a zero state)", ValueError)
        self._check_state("hidden", x, h)
        self._check_state("cell", x, c)
        out: tuple[gc.Node, gc.Node] = self._cached_step((x, h, c), None if h is None else (h, c))
        return out

    def fwd(self, x: Any) -> Any:
        """``fwd(x)``: the new hidden state (see the module docs); ``fwd([x, h, c])``: the
        tuple ``(h', c')``, as :meth:`step`.

        Example:
            >>> import graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
            >>> h = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 4), gc.WithName("h"))
            >>> c = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 4), gc.WithName("c"))
            >>> cell = G.ConsLSTM([x, h, c], G.WithShape(4))
            >>> [n.shape for n in cell.fwd([x, h, c])]
            [(None, 4), (None, 4)]
        """
        if isinstance(x, (list, tuple)):
            if len(x) not in (1, 3):
                raise self.error(
                    f"fwd takes a node, or a list [x] or [x, h, c]; got {len(x)} items",
                    TypeError,
                )
            return self.step(*x)
        return super().fwd(x)

    def flops(self, batch: int = 1) -> int:
        """Per step: one (in + size, 4 size) product, the bias and 9 elementwise ops per unit.

        Example:
            >>> import graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
            >>> G.ConsLSTM(x, G.WithShape(2)).flops()
            98
        """
        n, h = self.n_in, self.size
        per_step = (2 * (n + h) - 1) * 4 * h + 4 * h + 9 * h
        return batch * self._steps() * per_step


class GRU(_Recurrent):
    """A gated recurrent unit layer (PyTorch's formulation); build it with :func:`ConsGRU`.

    Learnables ``Wx_r, Wx_z, Wx_n`` (in, size), ``Wh_r, Wh_z, Wh_n`` (size, size)
    (``GlorotU(1.0)`` unless ``WithInit``), ``bx_r, bx_z, bx_n, bh_r, bh_z, bh_n`` (1, size)
    zeros. A step: ``r = sigmoid(x Wx_r + bx_r + h Wh_r + bh_r)``, ``z`` likewise,
    ``n = tanh(x Wx_n + bx_n + r*(h Wh_n + bh_n))``, ``h' = (1-z)*n + z*h``.

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph()
        >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
        >>> GRU(x, LayerOpt("shape", (2,))).param_count()
        42
    """

    kind = "GRU"
    prefix = "gru"
    gates = "rzn"

    def _learnable_shapes(self) -> list[tuple[str, tuple[int, int]]]:
        n, h, g = self.n_in, self.size, self.gates
        return (
            [(f"Wx_{k}", (n, h)) for k in g]
            + [(f"Wh_{k}", (h, h)) for k in g]
            + [(f"bx_{k}", (1, h)) for k in g]
            + [(f"bh_{k}", (1, h)) for k in g]
        )

    def _cell(self, x: gc.Node, h: gc.Node | None) -> gc.Node:
        n = self.size
        xp = gc.Add(gc.MatMul(x, self._join("Wx")), self._join("bx"))
        if h is None:
            h = self._zero()  # one row (1, size), broadcast over the batch
        hp = gc.Add(gc.MatMul(h, self._join("Wh")), self._join("bh"))
        rz = gc.Sigmoid(gc.Add(xp[:, 0 : 2 * n], hp[:, 0 : 2 * n]))
        r, z = rz[:, 0:n], rz[:, n : 2 * n]
        cand = gc.Tanh(gc.Add(xp[:, 2 * n : 3 * n], gc.HadamardProd(r, hp[:, 2 * n : 3 * n])))
        return gc.Add(cand, gc.HadamardProd(z, gc.Sub(h, cand)))

    def step(self, x: gc.Node, h: gc.Node | None = None) -> gc.Node:
        """One step from state ``h`` (None: zeros): the new hidden state (batch, size).

        Example:
            >>> import graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
            >>> cell = G.ConsGRU(x, G.WithShape(4))
            >>> cell.step(x, cell.step(x)).shape
            (None, 4)
        """
        self._check_step_input(x)
        self._check_state("hidden", x, h)
        out: gc.Node = self._cached_step((x, h), h)
        return out

    def fwd(self, x: Any) -> Any:
        """``fwd(x)``: the new hidden state (see the module docs); ``fwd([x, h])``: as
        :meth:`step`.

        Example:
            >>> import graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
            >>> cell = G.ConsGRU(x, G.WithShape(4))
            >>> cell.fwd([x, cell.fwd(x)]).shape
            (None, 4)
        """
        if isinstance(x, (list, tuple)):
            if len(x) not in (1, 2):
                raise self.error(
                    f"fwd takes a node, or a list [x] or [x, h]; got {len(x)} items", TypeError
                )
            return self.step(*x)
        return super().fwd(x)

    def flops(self, batch: int = 1) -> int:
        """Per step: two (·, 3 size) products, their biases and 10 elementwise ops per unit.

        Example:
            >>> import graphcore as gc, golgi as G
            >>> g = gc.NewGraph()
            >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
            >>> G.ConsGRU(x, G.WithShape(2)).flops()
            80
        """
        n, h = self.n_in, self.size
        per_step = (2 * n - 1) * 3 * h + (2 * h - 1) * 3 * h + 6 * h + 10 * h
        return batch * self._steps() * per_step


def _cons(cls: type[_Recurrent], x: Any, opts: tuple[LayerOpt, ...], n_state: int) -> Any:
    if isinstance(x, (list, tuple)):
        if len(x) not in (1, 1 + n_state) or not all(isinstance(n, gc.Node) for n in x):
            form = "[x, h, c]" if n_state == 2 else "[x, h]"
            raise TypeError(
                f"{cls.cons_name_of()}: a list input must be [x] or {form} of graph nodes, "
                f"got {x!r}"
            )
        layer = cls(x[0], *opts)
        if len(x) > 1:
            layer.step(*x)  # check the states now, where the user wrote them
        return layer
    return cls.cons(x, *opts)


def ConsLSTM(
    x: gc.Node | Sequence[gc.Node] | LayerOpt | None = None, *opts: LayerOpt
) -> LSTM | Thunk:
    """An LSTM layer for input ``x``; without ``x``, a thunk for ``L``.

    ``x`` is one step (batch, features), a sequence (batch, time, features), or Golgi's list
    ``[x, h, c]`` (the layer is sized from ``x``; use ``layer.step(x, h, c)`` or
    ``layer.fwd([x, h, c])`` for the new ``(h, c)``). See the module docs for the forms.

    Options: ``WithShape(n)`` (hidden size, required), ``WithReturnSequences(bool)``
    (default False: the last hidden state), ``WithInit`` (weights, default ``GlorotU(1.0)``;
    biases are zeros), ``WithName``, ``AsBatched`` (accepted, changes nothing).

    Example:
        >>> import graphcore as gc, golgi as G
        >>> g = gc.NewGraph()
        >>> seq = gc.NewTensor(g, gc.Float32, 3, gc.WithShape(None, 5, 3), gc.WithName("seq"))
        >>> net = G.ComposeSeq(seq, G.L(G.ConsLSTM(G.WithShape(8), G.WithReturnSequences(True))),
        ...                    G.L(G.ConsLSTM(G.WithShape(4))), G.L(G.ConsFC(G.WithShape(1))))
        >>> net.out.shape, [la.kind for la in net.layers]
        ((None, 1), ['LSTM', 'LSTM', 'FC'])
    """
    return _cons(LSTM, x, opts, 2)


def ConsGRU(
    x: gc.Node | Sequence[gc.Node] | LayerOpt | None = None, *opts: LayerOpt
) -> GRU | Thunk:
    """A GRU layer for input ``x`` (one step, a sequence, or ``[x, h]``); without ``x``, a
    thunk for ``L``. Same forms and options as :func:`ConsLSTM`.

    Example:
        >>> import graphcore as gc, golgi as G
        >>> g = gc.NewGraph()
        >>> seq = gc.NewTensor(g, gc.Float64, 3, gc.WithShape(None, 5, 3), gc.WithName("seq"))
        >>> gru = G.ConsGRU(seq, G.WithShape(6), G.WithReturnSequences(True))
        >>> gru.fwd(seq).shape, len(gru.model())
        ((None, 5, 6), 12)
    """
    return _cons(GRU, x, opts, 1)
