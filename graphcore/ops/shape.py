"""Shape and indexing ops: ``Reshape``, ``Ravel``, ``Slice`` (with ``S``), ``At``, ``Concat``,
``Unconcat`` and ``ByIndices``.

Example:
    >>> import graphcore as gc
    >>> gc.Reshape(gc.NewConstant([1.0, 2.0, 3.0, 4.0]), (2, 2)).shape
    (2, 2)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..dtypes import Dtype
from ..errors import DtypeError, ShapeError
from ..graph import Node
from ..shapes import Shape, as_shape, fmt_shape, size_of
from ..values import NewConstant, as_node
from .base import ExecContext, Kernel, Op, TypeInfo, apply_op, describe, same_dtype

__all__ = [
    "Reshape",
    "Ravel",
    "S",
    "Slice",
    "At",
    "Concat",
    "Unconcat",
    "ByIndices",
    "ReshapeOp",
    "SliceOp",
    "SliceGradOp",
    "ConcatOp",
    "ByIndicesOp",
    "ByIndicesGradOp",
]


class ReshapeOp(Op):
    """Reshape to ``shape``; a ``None`` entry keeps the operand's free dimension 0 (a view).

    Example:
        >>> ReshapeOp((None, 4)).params()
        {'shape': (None, 4)}
    """

    name = "Reshape"
    arity = 1
    view = True

    def __init__(self, shape: Shape) -> None:
        self.shape = shape

    def _target(self, src: Shape) -> Shape:
        tgt = list(self.shape)
        if None in tgt:
            if tgt.index(None) != 0 or tgt.count(None) > 1:
                raise ShapeError(
                    f"Reshape to {self.shape}: only dimension 0 may be None (the free batch "
                    f"dimension, which keeps the operand's dimension 0)"
                )
            if not src or None in src[1:]:
                raise ShapeError(
                    f"Reshape of a {len(src)}-D operand of shape {fmt_shape(src)} to "
                    f"{self.shape}: a None target keeps the operand's dimension 0, so the "
                    f"operand's free dimension must be its dimension 0"
                )
            # bound at run time: None then stands for the operand's concrete dimension 0
            tgt[0] = src[0]
        if -1 in tgt:
            if tgt.count(-1) > 1:
                raise ShapeError(f"Reshape: at most one -1 in {self.shape}")
            src_free = sum(d is None for d in src)
            if src_free != sum(d is None for d in tgt):
                raise ShapeError(
                    f"Reshape of {fmt_shape(src)} to {self.shape}: -1 cannot absorb a free "
                    f"(None) dimension; keep it with None, e.g. Reshape(x, (None, -1))"
                )
            known = size_of(tuple(d for d in tgt if d not in (-1, None)))
            have = size_of(tuple(d for d in src if d is not None))
            if known == 0 or have % known:
                raise ShapeError(
                    f"Reshape: cannot reshape {fmt_shape(src)} to {self.shape}: "
                    f"{have} elements do not divide into parts of {known}"
                )
            tgt[tgt.index(-1)] = have // known
        return tuple(tgt)

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        (x,) = ins
        tgt = self._target(x.shape)
        src_free = [d for d in x.shape if d is None]
        tgt_free = [d for d in tgt if d is None]
        ok = len(src_free) == len(tgt_free)
        if ok and not src_free:
            ok = size_of(x.shape) == size_of(tgt)
        elif ok:
            ok = size_of(tuple(d for d in x.shape if d is not None)) == size_of(
                tuple(d for d in tgt if d is not None)
            )
        if not ok:
            raise ShapeError(
                f"Reshape: cannot reshape {describe(x)} to {tgt}: the number of elements "
                f"differs (a None dimension must stay None)"
            )
        return tgt, x.dtype

    def view_of(self, xs: list[np.ndarray]) -> np.ndarray:
        x = xs[0]
        return x.reshape(self._target(x.shape))

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        x = xs[0]
        o = out.reshape(x.shape)  # out is a fresh C-ordered buffer, so this is a view
        return lambda: np.copyto(o, x)

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        x = node.children[0]
        return [Reshape(g, x.shape)]


class _ReshapeCopyOp(ReshapeOp):
    """Reshape that copies: numpy cannot reshape a strided view (a transpose, a slice) in place,
    and a copy made once when a machine plans would go stale on the next run."""

    view = False


def Reshape(x: Any, shape: Sequence[int | None] | int) -> Node:
    """Reshape; ``None`` keeps the free batch dimension, one ``-1`` is inferred.

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph(); x = gc.NewTensor(g, gc.Float32, 4, gc.WithShape(None, 1, 28, 28),
        ...                                     gc.WithName("img"))
        >>> gc.Reshape(x, (None, 784)).shape
        (None, 784)
    """
    if isinstance(shape, int):
        shape = (shape,)
    tgt = tuple(-1 if d == -1 else d for d in shape)
    as_shape([d for d in tgt if d != -1], "Reshape target")
    if isinstance(x, Node) and x.shape == tgt:
        return x
    strided = isinstance(x, Node) and x.op is not None and x.op.view
    return apply_op(_ReshapeCopyOp(tgt) if strided else ReshapeOp(tgt), x)


# ----- Ravel -----------------------------------------------------------------------------------


def Ravel(x: Any) -> Node:
    """Flatten to 1-D (a view where numpy allows one).

    A node with a free (None) dimension cannot be flattened without mixing the batch into the
    features; keep the batch with ``Reshape(x, (None, -1))`` instead.

    Example:
        >>> import graphcore as gc
        >>> gc.Ravel(gc.NewConstant([[1.0, 2.0], [3.0, 4.0]])).shape
        (4,)
    """
    n = as_node(x)
    if None in n.shape:
        raise ShapeError(
            f"Ravel: {n.describe()} has a free (None) dimension, so its size is unknown when "
            f"the graph is built; flatten all but the batch with Reshape({n.name}, (None, -1))"
        )
    return Reshape(n, (-1,))


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

    def __init__(self, index: Index) -> None:
        self.index = tuple(index)

    def params(self) -> dict[str, Any]:
        return {"index": _fmt_index(self.index)}

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        (x,) = ins
        return _sliced_shape(self.index, x), x.dtype

    def view_of(self, xs: list[np.ndarray]) -> np.ndarray:
        # the trailing Ellipsis makes an all-int index give a 0-d view, not a numpy scalar
        return xs[0][(*self.index, Ellipsis)]

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        v = self.view_of(xs)
        return lambda: np.copyto(out, v)

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        return [apply_op(SliceGradOp(self.index), g, node.children[0])]


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
        want = _sliced_shape(self.index, x)
        if len(want) != len(g.shape) or not all(
            a is None or b is None or a == b for a, b in zip(want, g.shape, strict=True)
        ):
            raise ShapeError(
                f"SliceGrad: {describe(g)} does not fit {_fmt_index(self.index)} of {describe(x)}"
            )
        return x.shape, g.dtype

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        g = xs[0]
        window = out[(*self.index, Ellipsis)]

        def run() -> None:
            out.fill(0)
            np.copyto(window, g)

        return run

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        return [apply_op(SliceOp(self.index), g), None]


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


# ----- Concat ----------------------------------------------------------------------------------


def _concat_shape(axis: int, ins: Sequence[TypeInfo], who: str) -> Shape:
    first = ins[0]
    nd = len(first.shape)
    for t in ins[1:]:
        if len(t.shape) != nd:
            raise ShapeError(
                f"{who}: operands have different ranks: {describe(first)} and {describe(t)}"
            )
    if not -nd <= axis < nd:
        raise ShapeError(f"{who}: axis {axis} is out of range for {describe(first)}")
    axis %= nd
    shape: list[int | None] = []
    for d in range(nd):
        dims = [t.shape[d] for t in ins]
        if d == axis:
            shape.append(None if None in dims else sum(dims))
            continue
        known = [(t, t.shape[d]) for t in ins if t.shape[d] is not None]
        for t, v in known[1:]:
            if v != known[0][1]:
                raise ShapeError(
                    f"{who} along axis {axis}: {describe(known[0][0])} and {describe(t)} "
                    f"differ in dimension {d} ({known[0][1]} != {v}); all dimensions but the "
                    f"concatenation axis must match"
                )
        shape.append(known[0][1] if known else None)
    return tuple(shape)


class ConcatOp(Op):
    """Join operands along ``axis``.

    Example:
        >>> ConcatOp(1).params()
        {'axis': 1}
    """

    name = "Concat"

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        if not ins:
            raise ShapeError("Concat needs at least one operand")
        dt = same_dtype(self.name, ins)
        return _concat_shape(self.axis, ins, "Concat"), dt

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        axis = self.axis % out.ndim
        return lambda: np.concatenate(xs, axis=axis, out=out)

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        parts = node.children
        k = len(parts)
        return [
            apply_op(_ConcatPartOp(self.axis, i, k), g, *parts) if want else None
            for i, want in enumerate(wants)
        ]


class _ConcatWindow(Op):
    """Where operand ``i`` of a concatenation sits, from the parts' run-time shapes."""

    def __init__(self, axis: int, i: int, k: int) -> None:
        self.axis = axis
        self.i = i
        self._k = k
        self.shape_only = tuple(range(1, k + 1))  # type: ignore[misc]

    def params(self) -> dict[str, Any]:
        return {"axis": self.axis, "part": self.i}

    def _window(self, whole: np.ndarray, parts: list[np.ndarray]) -> np.ndarray:
        axis = self.axis % whole.ndim
        start = sum(p.shape[axis] for p in parts[: self.i])
        stop = start + parts[self.i].shape[axis]
        return whole[(slice(None),) * axis + (slice(start, stop), Ellipsis)]


class _ConcatPartOp(_ConcatWindow):
    """Part ``i`` of ``g`` (the gradient of a Concat), a view; operands ``(g, *parts)``."""

    name = "ConcatPart"
    view = True

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        g, parts = ins[0], ins[1:]
        whole = _concat_shape(self.axis, parts, "ConcatPart")
        if len(g.shape) != len(whole) or not all(
            a is None or b is None or a == b for a, b in zip(g.shape, whole, strict=True)
        ):
            raise ShapeError(f"ConcatPart: {describe(g)} is not shaped like the concatenation")
        return parts[self.i].shape, g.dtype

    def view_of(self, xs: list[np.ndarray]) -> np.ndarray:
        return self._window(xs[0], xs[1:])

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        v = self._window(xs[0], xs[1:])
        return lambda: np.copyto(out, v)

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        parts = node.children[1:]
        op = _ConcatPartGradOp(self.axis, self.i, self._k)
        return [apply_op(op, g, *parts), *([None] * len(parts))]


class _ConcatPartGradOp(_ConcatWindow):
    """Scatter ``g`` into part ``i`` of zeros shaped like the concatenation of the parts."""

    name = "ConcatPartGrad"

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        return _concat_shape(self.axis, ins[1:], "ConcatPartGrad"), ins[0].dtype

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        g, window = xs[0], self._window(out, xs[1:])

        def run() -> None:
            out.fill(0)
            np.copyto(window, g)

        return run

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        parts = node.children[1:]
        op = _ConcatPartOp(self.axis, self.i, self._k)
        return [apply_op(op, g, *parts), *([None] * len(parts))]


def Concat(axis: int, *nodes: Any) -> Node:
    """Join nodes along ``axis`` (Gorgonia's order: the axis first); a list works too.

    All dimensions but ``axis`` must match; the gradient of each operand is its part of the
    incoming gradient.

    Example:
        >>> import graphcore as gc
        >>> a, b = gc.NewConstant([[1.0, 2.0]]), gc.NewConstant([[3.0, 4.0], [5.0, 6.0]])
        >>> gc.Concat(0, a, b).shape, gc.Concat(1, [b, b]).shape
        ((3, 2), (2, 4))
    """
    if isinstance(axis, (Node, bool, np.bool_)) or not hasattr(axis, "__index__"):
        raise TypeError(
            f"Concat: the first argument is the axis (an int), got {type(axis).__name__}; "
            f"call Concat(axis, a, b, ...)"
        )
    if len(nodes) == 1 and isinstance(nodes[0], (list, tuple)):
        nodes = tuple(nodes[0])
    if not nodes:
        raise ShapeError("Concat needs at least one node")
    if len(nodes) == 1:
        return as_node(nodes[0])
    return apply_op(ConcatOp(int(axis)), *nodes)


def Unconcat(x: Any, axis: int, n: int) -> list[Node]:
    """Split ``x`` into ``n`` equal parts along ``axis`` (the inverse of ``Concat``).

    Example:
        >>> import graphcore as gc
        >>> [p.shape for p in gc.Unconcat(gc.NewConstant([[1.0, 2.0, 3.0, 4.0]]), 1, 2)]
        [(1, 2), (1, 2)]
    """
    xn = as_node(x)
    if not -xn.ndim <= axis < xn.ndim:
        raise ShapeError(f"Unconcat: axis {axis} is out of range for {xn.describe()}")
    axis %= xn.ndim
    size = xn.shape[axis]
    if size is None or n <= 0 or size % n:
        raise ShapeError(
            f"Unconcat: cannot split axis {axis} of {xn.describe()} into {n} equal parts"
            + ("; the axis is free (None)" if size is None else "")
        )
    step = size // n
    lead = (slice(None),) * axis
    return [Slice(xn, (*lead, slice(i * step, (i + 1) * step))) for i in range(n)]


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
            np.add.at(out, where, g)  # repeated indices add up

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
