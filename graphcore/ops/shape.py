"""Shape ops: ``Reshape``, ``Ravel``, ``Concat`` with its inverse ``Unconcat``, and
``Unstack`` (indexing, ``Slice`` and ``ByIndices``, is in :mod:`graphcore.ops.indexing`).

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
from ..errors import ShapeError
from ..graph import Node
from ..shapes import Shape, as_shape, fmt_shape, size_of
from ..values import as_node
from .base import ExecContext, Kernel, Op, TypeInfo, apply_op, describe, same_dtype
from .indexing import Slice

__all__ = ["Reshape", "Ravel", "Concat", "Unconcat", "Unstack", "ReshapeOp", "ConcatOp"]


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

        def run() -> None:
            np.concatenate(xs, axis=axis, out=out)

        return run

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

    Each part is a view of ``x``; their gradients are written into one buffer shaped like
    ``x`` (``Grad`` joins the pieces), so splitting into many parts costs no more.

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


def Unstack(x: Any, axis: int = 0) -> list[Node]:
    """Split ``x`` along ``axis`` into its ``x.shape[axis]`` slices, that axis dropped: the
    time steps (batch, features) of a sequence (batch, time, features) with ``axis=1``.

    Each step is a view of ``x`` (``x[:, t]``), so the split copies nothing. Their gradients
    are written into one buffer shaped like ``x`` (``Grad`` joins the ``SliceGrad`` pieces
    into one ``SlicesGrad`` node), so the backward pass of T steps moves O(T) steps' worth of
    data, not T arrays the size of ``x``; and that node is differentiable again.

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph()
        >>> seq = gc.NewTensor(g, gc.Float64, 3, gc.WithShape(None, 4, 3), gc.WithName("seq"))
        >>> steps = gc.Unstack(seq, 1)
        >>> len(steps), steps[0].shape
        (4, (None, 3))
        >>> (d,) = gc.Grad(gc.Sum(steps[0] * steps[3]), seq)
        >>> d.op.name, d.shape
        ('SlicesGrad', (None, 4, 3))
    """
    if isinstance(axis, (Node, bool, np.bool_)) or not hasattr(axis, "__index__"):
        raise TypeError(f"Unstack: the axis must be an int, got {type(axis).__name__}")
    xn = as_node(x)
    if not -xn.ndim <= axis < xn.ndim:
        raise ShapeError(
            f"Unstack: axis {axis} is out of range for {xn.describe()}"
            + ("; a scalar has no axis to split" if xn.ndim == 0 else "")
        )
    axis = int(axis) % xn.ndim
    size = xn.shape[axis]
    if size is None:
        raise ShapeError(
            f"Unstack: axis {axis} of {xn.describe()} is free (None), so the number of parts "
            f"is unknown when the graph is built; unstack along an axis of known size"
        )
    lead = (slice(None),) * axis
    return [Slice(xn, (*lead, t)) for t in range(size)]
