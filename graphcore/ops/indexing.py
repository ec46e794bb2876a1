"""Indexing ops: ``Slice`` (with Gorgonia's ``S`` ranges, and ``node[...]``), ``At`` and
``ByIndices`` (a gather along one axis, as an embedding lookup), each with its gradient.

Example:
    >>> import graphcore as gc
    >>> x = gc.NewConstant([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    >>> gc.Slice(x, gc.S(1), gc.S(0, 2)).shape, gc.ByIndices(x, [1, 1, 0]).shape
    ((2,), (3, 3))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np

from ..dtypes import Dtype
from ..errors import DtypeError, ShapeError
from ..graph import Node
from ..shapes import Shape
from ..values import NewConstant, as_node
from .base import ExecContext, Kernel, Op, TypeInfo, apply_op, describe, same_dtype

__all__ = [
    "S", "Slice", "At", "ByIndices", "SliceOp", "SliceGradOp", "SlicesGradOp", "ByIndicesOp",
    "ByIndicesGradOp",
]


# ----- Slice -----------------------------------------------------------------------------------


class S:
    """Gorgonia's slice range ``S(start, end=None, step=1)``, for :func:`Slice`.

    ``S(i)`` picks index ``i`` and drops the axis, like ``x[i]``; ``S(i, j)`` and
    ``S(i, j, k)`` keep the axis, like ``x[i:j:k]`` (Gorgonia also drops a ranged axis of
    size 1; graphcore keeps it, as numpy does). For "from ``i`` to the end" use
    ``slice(i, None)`` or ``x[i:]``.

    Example:
        >>> S(1, 3), S(2).index()
        (S(1, 3), 2)
    """

    __slots__ = ("start", "end", "step")

    def __init__(self, start: int, end: int | None = None, step: int = 1) -> None:
        for what, v in (("start", start), ("end", end), ("step", step)):
            if v is not None and (isinstance(v, bool) or not hasattr(v, "__index__")):
                raise TypeError(f"S: {what} must be an int, got {v!r}")
        if end is None and int(step) != 1:
            raise ValueError(
                f"S({start}, None, {step}): a step needs an end; use slice({start}, None, "
                f"{step}) to run to the end of the axis"
            )
        self.start = int(start)
        self.end = None if end is None else int(end)
        self.step = int(step)

    def index(self) -> int | slice:
        """The equivalent numpy index: an int for ``S(i)``, else a ``slice``.

        Example:
            >>> S(0, 4, 2).index()
            slice(0, 4, 2)
        """
        if self.end is None:
            return self.start
        return slice(self.start, self.end, self.step)

    def __repr__(self) -> str:
        if self.end is None:
            return f"S({self.start})"
        if self.step == 1:
            return f"S({self.start}, {self.end})"
        return f"S({self.start}, {self.end}, {self.step})"


Index = tuple  # tuple[int | slice, ...], one entry per axis


def _as_int(v: Any, what: str) -> int:
    if isinstance(v, (bool, np.bool_)) or not hasattr(v, "__index__"):
        raise TypeError(f"{what}: {v!r} is not an int")
    return int(v)


def _norm_slice(sl: slice, what: str) -> slice:
    start = None if sl.start is None else _as_int(sl.start, what)
    stop = None if sl.stop is None else _as_int(sl.stop, what)
    step = 1 if sl.step is None else _as_int(sl.step, what)
    if step == 0:
        raise ValueError(f"{what}: slice step cannot be zero")
    return slice(start, stop, None if step == 1 else step)


def _norm_index(items: Sequence[Any], ndim: int, numpy_style: bool, who: str) -> Index:
    """One ``int`` or ``slice`` per axis, from ints, slices, ``S`` ranges and one Ellipsis."""
    out: list[int | slice] = []
    ellipsis_at: int | None = None
    for it in items:
        if it is Ellipsis:
            if ellipsis_at is not None:
                raise ShapeError(f"{who}: an index can have only one Ellipsis (...)")
            ellipsis_at = len(out)
            continue
        if it is None:
            if numpy_style:
                raise ShapeError(
                    f"{who}: None (numpy's newaxis) is not supported in an index; add axes "
                    f"with Reshape"
                )
            out.append(slice(None))  # Gorgonia's nil: the whole axis
            continue
        if isinstance(it, S):
            it = it.index()
        if isinstance(it, slice):
            out.append(_norm_slice(it, who))
        elif isinstance(it, Node) or (
            isinstance(it, (list, tuple, np.ndarray)) and np.ndim(it) != 0
        ):
            raise TypeError(
                f"{who}: only basic indexing (ints, slices, S(...), ...) is supported, got "
                f"{type(it).__name__}; gather with an index node using ByIndices(x, indices, "
                f"axis)"
            )
        else:
            out.append(_as_int(it, who))
    if len(out) > ndim:
        raise ShapeError(f"{who}: {len(out)} indices for a node with {ndim} dimensions")
    fill = [slice(None)] * (ndim - len(out))
    if ellipsis_at is None:
        out += fill
    else:
        out[ellipsis_at:ellipsis_at] = fill
    return tuple(out)


def _fmt_index(index: Index) -> str:
    def one(it: int | slice) -> str:
        if isinstance(it, int):
            return str(it)
        s = ("" if it.start is None else str(it.start)) + ":"
        s += "" if it.stop is None else str(it.stop)
        return s if it.step is None else f"{s}:{it.step}"

    return "[" + ", ".join(one(it) for it in index) + "]"


def _anchored(b: int) -> tuple[str, int]:
    # a bound counted from the beginning ("b") or from the end ("e") of an axis of unknown size
    return ("b", b) if b >= 0 else ("e", b)


def _slice_len(sl: slice, n: int | None, axis: int, x: TypeInfo) -> int | None:
    """Length of ``sl`` on an axis of size ``n``; on a free axis, when the bounds fix it."""
    step = 1 if sl.step is None else sl.step
    if n is not None:
        lo, hi = (-n, n) if step > 0 else (-n, n - 1)
        for b in (sl.start, sl.stop):
            if b is not None and not lo <= b <= hi:
                raise ShapeError(
                    f"Slice: bound {b} of {_fmt_index((sl,))[1:-1]} is out of range for axis "
                    f"{axis} of {describe(x)} (size {n}); graphcore does not clip slices"
                )
        return len(range(*sl.indices(n)))
    if step > 0:
        s = ("b", 0) if sl.start is None else _anchored(sl.start)
        e = ("e", 0) if sl.stop is None else _anchored(sl.stop)
        d = e[1] - s[1]
    else:
        s = ("e", -1) if sl.start is None else _anchored(sl.start)
        e = ("b", -1) if sl.stop is None else _anchored(sl.stop)
        d = s[1] - e[1]
    if s[0] != e[0]:
        return None  # depends on the run-time size
    return max(0, -(-d // abs(step)))


def _sliced_shape(index: Index, x: TypeInfo) -> Shape:
    if len(index) != len(x.shape):
        raise ShapeError(f"Slice: index {_fmt_index(index)} does not fit {describe(x)}")
    shape: list[int | None] = []
    for axis, (it, n) in enumerate(zip(index, x.shape, strict=True)):
        if isinstance(it, int):
            if n is not None and not -n <= it < n:
                raise ShapeError(
                    f"Slice: index {it} is out of range for axis {axis} of {describe(x)} (size {n})"
                )
            continue
        shape.append(_slice_len(it, n, axis, x))
    return tuple(shape)


class SliceOp(Op):
    """Basic indexing: one int or slice per axis; the result is a view of the operand.

    Example:
        >>> SliceOp((0, slice(1, 3))).params()
        {'index': '[0, 1:3]'}
    """

    name = "Slice"
    arity = 1
    view = True
    part_key = "slice"

    def __init__(self, index: Index) -> None:
        self.index = tuple(index)

    def params(self) -> dict[str, Any]:
        return {"index": _fmt_index(self.index)}

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        (x,) = ins
        return _sliced_shape(self.index, x), x.dtype

    def view_of(self, xs: list[np.ndarray]) -> np.ndarray:
        # the trailing Ellipsis makes an all-int index give a 0-d view, not a numpy scalar
        return xs[0][tuple(self.index) + (Ellipsis,)]

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        v = self.view_of(xs)
        return lambda: np.copyto(out, v)

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        return [apply_op(SliceGradOp(self.index), g, node.children[0])]

    def join_part_grads(self, parts: Sequence[tuple[Node, Node]]) -> Node:
        x = parts[0][0].children[0]
        indices = [cast(SliceOp, n.op).index for n, _ in parts]
        if len(parts) == 1:
            return apply_op(SliceGradOp(indices[0]), parts[0][1], x)
        return apply_op(SlicesGradOp(indices), *(g for _, g in parts), x)


def _check_window(index: Index, g: TypeInfo, x: TypeInfo, who: str) -> None:
    want = _sliced_shape(index, x)
    if len(want) != len(g.shape) or not all(
        a is None or b is None or a == b for a, b in zip(want, g.shape, strict=True)
    ):
        raise ShapeError(f"{who}: {describe(g)} does not fit {_fmt_index(index)} of {describe(x)}")


class SliceGradOp(Op):
    """Scatter ``g`` into zeros shaped like ``x`` (operand 1, read for its shape only).

    Example:
        >>> SliceGradOp((slice(1, 3),)).shape_only
        (1,)
    """

    name = "SliceGrad"
    arity = 2
    shape_only = (1,)

    def __init__(self, index: Index) -> None:
        self.index = tuple(index)

    def params(self) -> dict[str, Any]:
        return {"index": _fmt_index(self.index)}

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        g, x = ins
        _check_window(self.index, g, x, "SliceGrad")
        return x.shape, g.dtype

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        g = xs[0]
        window = out[tuple(self.index) + (Ellipsis,)]

        def run() -> None:
            out.fill(0)
            np.copyto(window, g)

        return run

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        return [apply_op(SliceOp(self.index), g), None]


class SlicesGradOp(Op):
    """The sum of several slices' gradients: operand ``i`` added into the window
    ``indices[i]`` of zeros shaped like the last operand ``x`` (read for its shape only).

    ``Grad`` builds it for a node read through several slices, so the gradient of a sequence
    cut into its T steps is one buffer written once, not T buffers the size of the sequence
    added up. Windows may overlap (their gradients add).

    Example:
        >>> op = SlicesGradOp([(0,), (slice(1, 3),)])
        >>> op.shape_only, op.params()
        ((2,), {'indices': ['[0]', '[1:3]']})
    """

    name = "SlicesGrad"

    def __init__(self, indices: Sequence[Index]) -> None:
        self.indices = tuple(tuple(index) for index in indices)
        self.shape_only = (len(self.indices),)  # type: ignore[misc]

    def params(self) -> dict[str, Any]:
        return {"indices": [_fmt_index(index) for index in self.indices]}

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        if len(ins) != len(self.indices) + 1:
            raise ShapeError(
                f"SlicesGrad: {len(self.indices)} window(s) take {len(self.indices) + 1} "
                f"operands (one gradient per window, then x), got {len(ins)}"
            )
        *gs, x = ins
        for index, g in zip(self.indices, gs, strict=True):
            _check_window(index, g, x, "SlicesGrad")
        return x.shape, same_dtype(self.name, gs)

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        pairs = [
            (out[index + (Ellipsis,)], g) for index, g in zip(self.indices, xs, strict=False)
        ]

        def run() -> None:
            out.fill(0)
            for window, g in pairs:
                np.add(window, g, out=window)

        return run

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        parts: list[Node | None] = [
            apply_op(SliceOp(index), g) if want else None
            for index, want in zip(self.indices, wants, strict=False)
        ]
        return [*parts, None]


def Slice(x: Any, *slices: Any) -> Node:
    """Basic indexing, Gorgonia style: one entry per leading axis, a view of ``x``.

    Each entry is an int (drops the axis), a Python ``slice``, an ``S(start, end, step)``
    range, ``None`` (Gorgonia's ``nil``: the whole axis) or one ``...``. ``node[...]`` calls
    ``Slice`` with the tuple numpy builds (there ``None`` is not allowed). Bounds out of range
    raise ``ShapeError`` (no clipping). On a free (None) axis the result size is concrete when
    both bounds count from the same end (``x[2:5]``, ``x[-3:]``), else None.

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph()
        >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 6), gc.WithName("x"))
        >>> gc.Slice(x, None, S(1, 4)).shape, x[:, 0].shape, x[2:5].shape
        ((None, 3), (None,), (3, 6))
    """
    n = as_node(x)
    if len(slices) == 1 and isinstance(slices[0], tuple):
        index = _norm_index(slices[0], n.ndim, True, f"Slice of {n.name!r}")
    else:
        index = _norm_index(slices, n.ndim, False, f"Slice of {n.name!r}")
    if all(isinstance(it, slice) and it == slice(None) for it in index):
        return n
    return apply_op(SliceOp(index), n)


def At(x: Any, *coords: int) -> Node:
    """The element of ``x`` at ``coords`` (one int per dimension) as a scalar node.

    A view of ``x`` like ``x[i, j]``, and differentiable (its gradient scatters into zeros
    shaped like ``x``), unlike Gorgonia's. Negative indices count from the end. For a
    scalar ``x``, ``At(x)`` (or all-zero coordinates) is ``x`` itself.

    Example:
        >>> import graphcore as gc
        >>> x = gc.NewConstant([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
        >>> a = gc.At(x, 1, 2); a.shape, a.op
        ((), Slice(index='[1, 2]'))
    """
    n = as_node(x)
    idx = [_as_int(c, "At coordinate") for c in coords]
    if n.ndim == 0:
        if any(idx):
            raise ShapeError(
                f"At: {n.describe()} is a scalar; its only coordinates are all zeros, got "
                f"{tuple(idx)}"
            )
        return n
    if len(idx) != n.ndim:
        raise ShapeError(
            f"At: {n.describe()} has {n.ndim} dimensions, got {len(idx)} coordinate(s) "
            f"{tuple(idx)}; give one index per dimension (Slice takes fewer, for a sub-tensor)"
        )
    for axis, (i, size) in enumerate(zip(idx, n.shape, strict=True)):
        if size is not None and not -size <= i < size:
            raise ShapeError(
                f"At: coordinate {i} is out of range for axis {axis} of {n.describe()} "
                f"(size {size}); valid coordinates are {-size} to {size - 1}"
            )
    return apply_op(SliceOp(tuple(idx)), n)


# ----- ByIndices -------------------------------------------------------------------------------


def _check_indices(idx: TypeInfo, who: str) -> None:
    if idx.dtype.np.kind not in "iu":
        raise DtypeError(
            f"{who}: indices {describe(idx)} must be Int64 or Int32; make the index node "
            f"with an integer dtype (e.g. NewConstant(np.asarray(ix, dtype=np.int64)))"
        )


class ByIndicesOp(Op):
    """Gather along ``axis`` with an integer index node, like ``np.take``.

    Example:
        >>> ByIndicesOp(0).params()
        {'axis': 0}
    """

    name = "ByIndices"
    arity = 2

    def __init__(self, axis: int) -> None:
        self.axis = axis
        # set by ByIndices once the node exists: run-time errors name the node and operands
        self._where = "(node not known)"

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        x, idx = ins
        _check_indices(idx, "ByIndices")
        if not -len(x.shape) <= self.axis < len(x.shape):
            raise ShapeError(f"ByIndices: axis {self.axis} is out of range for {describe(x)}")
        a = self.axis % len(x.shape)
        return x.shape[:a] + idx.shape + x.shape[a + 1 :], x.dtype

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        x, idx = xs
        axis = self.axis % x.ndim
        n = x.shape[axis]

        def run() -> None:
            if idx.size and (idx.min() < -n or idx.max() >= n):
                raise IndexError(
                    f"ByIndices {self._where}: an index is out of range for axis {axis} of "
                    f"size {n} (operand shape {x.shape}): valid indices are {-n} to {n - 1}, "
                    f"got indices from {idx.min()} to {idx.max()}; check the index data (a "
                    f"class or token id >= the table size?)"
                )
            # "wrap" after the range check: numpy buffers `out` in its default "raise" mode
            np.take(x, idx, axis=axis, out=out, mode="wrap")

        return run

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        x, idx = node.children
        return [apply_op(ByIndicesGradOp(self.axis), g, x, idx), None]


class ByIndicesGradOp(Op):
    """Scatter-add ``g`` into zeros shaped like ``x`` (operand 1, shape only) at ``indices``.

    Example:
        >>> ByIndicesGradOp(0).shape_only
        (1,)
    """

    name = "ByIndicesGrad"
    arity = 3
    shape_only = (1,)

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        g, x, idx = ins
        _check_indices(idx, "ByIndicesGrad")
        return x.shape, g.dtype

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        g, _, idx = xs
        where = (slice(None),) * (self.axis % out.ndim) + (idx,)

        def run() -> None:
            out.fill(0)
            np.add.at(out, where, g)  # type: ignore[arg-type]  # stubs: no tuple index; repeats add

        return run

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        _, _, idx = node.children
        return [apply_op(ByIndicesOp(self.axis), g, idx), None, None]


def ByIndices(x: Any, indices: Any, axis: int = 0) -> Node:
    """Gather entries of ``x`` along ``axis`` at integer ``indices`` (``np.take``).

    ``indices`` is an Int64/Int32 node (or an int array, made a constant) of any shape; the
    result has shape ``x.shape[:axis] + indices.shape + x.shape[axis+1:]``. Out-of-range
    indices raise ``IndexError`` when the graph runs. The gradient adds up over repeated
    indices; the indices themselves are not differentiable.

    Example:
        >>> import graphcore as gc
        >>> emb = gc.NewConstant([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])
        >>> gc.ByIndices(emb, [2, 0, 2]).shape
        (3, 2)
    """
    xn = as_node(x)
    idx = indices if isinstance(indices, Node) else NewConstant(np.asarray(indices))
    op = ByIndicesOp(_as_int(axis, "ByIndices axis"))
    node = apply_op(op, xn, idx)
    op._where = f"node {node.name!r} (gathering from {xn.name!r} at indices {idx.name!r})"
    return node
