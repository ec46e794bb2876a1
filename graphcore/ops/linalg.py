"""Matrix products and transposes: ``Mul`` (Gorgonia's overloaded product), ``MatMul``,
``OuterProd``, ``Transpose``, ``BatchedMatMul`` and ``Tensordot``.

Transposes are views: the tape machine hands BLAS the transposed layout instead of copying.

Example:
    >>> import graphcore as gc
    >>> g = gc.NewGraph()
    >>> x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 784), gc.WithName("x"))
    >>> w = gc.NewMatrix(g, gc.Float32, gc.WithShape(784, 250), gc.WithName("w"))
    >>> gc.Mul(x, w).shape
    (None, 250)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..dtypes import Dtype
from ..errors import ShapeError
from ..graph import Node
from ..kernels.blas import can_gemm, gemm_into
from ..shapes import Shape, norm_axes
from ..values import as_node
from .base import ExecContext, Kernel, Op, TypeInfo, apply_op, describe, same_dtype
from .elementwise import HadamardProd

__all__ = ["Mul", "MatMul", "Transpose", "OuterProd", "MatMulOp", "TransposeOp", "OuterProdOp"]


def _dims_match(a: int | None, b: int | None) -> bool:
    return a is None or b is None or a == b


class MatMulOp(Op):
    """numpy ``matmul`` for 1-D and 2-D operands (vector-vector gives a scalar).

    Example:
        >>> MatMulOp().name
        'MatMul'
    """

    name = "MatMul"
    arity = 2
    rebuildable = True
    reads_lent = True

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        a, b = ins
        dt = same_dtype("Mul", ins, float_only=True)
        if not (1 <= len(a.shape) <= 2 and 1 <= len(b.shape) <= 2):
            raise ShapeError(
                f"Mul: operands must be vectors or matrices, got {describe(a)} and {describe(b)};"
                f" use BatchedMatMul or Tensordot for higher ranks"
            )
        k1 = a.shape[-1]
        k2 = b.shape[0]
        if not _dims_match(k1, k2):
            raise ShapeError(
                f"Mul: inner dimensions do not match: {describe(a)} times {describe(b)} "
                f"({k1} != {k2}); the last dimension of {a.name!r} must equal the first of "
                f"{b.name!r}"
            )
        shape = a.shape[:-1] + b.shape[1:]
        return shape, dt

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        a, b = xs
        if out.ndim == 0:
            return lambda: np.copyto(out, np.dot(a, b))
        if can_gemm(a, b, out):
            # every product through one BLAS (numpy's OpenBLAS, see blas.py): alternating two
            # OpenBLAS pools makes their idle threads spin against each other
            return gemm_into(a, b, out, 0.0)

        def run() -> None:  # a def, not a lambda: a kernel returns None, not numpy's array
            np.matmul(a, b, out=out)

        return run

    def accumulate_kernel(
        self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext
    ) -> tuple[Kernel, Kernel] | None:
        a, b = xs
        if not can_gemm(a, b, out):
            return None
        return gemm_into(a, b, out, 0.0), gemm_into(a, b, out, 1.0)

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        a, b = node.children
        ga = gb = None
        if a.ndim == 2 and b.ndim == 2:
            ga = MatMul(g, Transpose(b)) if wants[0] else None
            gb = MatMul(Transpose(a), g) if wants[1] else None
        elif a.ndim == 2 and b.ndim == 1:  # (m,k)@(k,) -> (m,)
            ga = OuterProd(g, b) if wants[0] else None
            gb = MatMul(Transpose(a), g) if wants[1] else None
        elif a.ndim == 1 and b.ndim == 2:  # (k,)@(k,n) -> (n,)
            ga = MatMul(b, g) if wants[0] else None
            gb = OuterProd(a, g) if wants[1] else None
        else:  # dot product -> scalar
            ga = HadamardProd(g, b) if wants[0] else None
            gb = HadamardProd(g, a) if wants[1] else None
        return [ga, gb]


def MatMul(a: Any, b: Any) -> Node:
    """Matrix product of vectors/matrices, numpy's ``a @ b`` (``@`` on nodes).

    Example:
        >>> import graphcore as gc
        >>> gc.MatMul(gc.NewConstant([[1.0, 2.0]]), gc.NewConstant([[1.0], [1.0]])).shape
        (1, 1)
    """
    return apply_op(MatMulOp(), a, b)


def Mul(a: Any, b: Any) -> Node:
    """Gorgonia's ``Mul``: a matrix product for vectors and matrices, elementwise if a scalar.

    Example:
        >>> import graphcore as gc
        >>> gc.Mul(gc.NewConstant([[1.0, 2.0]]), 3.0).op.name
        'HadamardProd'
    """
    like = a if isinstance(a, Node) else b if isinstance(b, Node) else None
    na, nb = as_node(a, like), as_node(b, like)
    if na.ndim == 0 or nb.ndim == 0:
        return HadamardProd(na, nb)
    return MatMul(na, nb)


class OuterProdOp(Op):
    """Outer product of two vectors.

    Example:
        >>> OuterProdOp().name
        'OuterProd'
    """

    name = "OuterProd"
    arity = 2

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        a, b = ins
        dt = same_dtype(self.name, ins)
        if len(a.shape) != 1 or len(b.shape) != 1:
            raise ShapeError(f"OuterProd needs two vectors, got {describe(a)} and {describe(b)}")
        return (a.shape[0], b.shape[0]), dt

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        a, b = xs

        def run() -> None:  # a def, not a lambda: a kernel returns None, not numpy's array
            np.multiply.outer(a, b, out=out)

        return run

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        a, b = node.children
        return [MatMul(g, b) if wants[0] else None, MatMul(a, g) if wants[1] else None]


def OuterProd(a: Any, b: Any) -> Node:
    """Outer product of vectors: out[i, j] = a[i] * b[j].

    Example:
        >>> import graphcore as gc
        >>> gc.OuterProd(gc.NewConstant([1.0, 2.0]), gc.NewConstant([1.0, 2.0, 3.0])).shape
        (2, 3)
    """
    return apply_op(OuterProdOp(), a, b)


class TransposeOp(Op):
    """Permute axes (a view: no copy).

    Example:
        >>> TransposeOp((1, 0)).params()
        {'axes': (1, 0)}
    """

    name = "Transpose"
    arity = 1
    view = True

    def __init__(self, axes: tuple[int, ...] | None) -> None:
        self.axes = axes

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        (x,) = ins
        axes = self.axes if self.axes is not None else tuple(reversed(range(len(x.shape))))
        if sorted(norm_axes(axes, len(x.shape))) != list(range(len(x.shape))) or len(axes) != len(
            x.shape
        ):
            raise ShapeError(
                f"Transpose: axes {axes} are not a permutation of the {len(x.shape)} axes of "
                f"{describe(x)}"
            )
        return tuple(x.shape[a] for a in axes), x.dtype

    def view_of(self, xs: list[np.ndarray]) -> np.ndarray:
        return np.transpose(xs[0], self.axes)

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        x, axes = xs[0], self.axes
        return lambda: np.copyto(out, np.transpose(x, axes))

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        n = node.children[0].ndim
        axes = self.axes if self.axes is not None else tuple(reversed(range(n)))
        inv = tuple(np.argsort(axes).tolist())
        return [Transpose(g, inv)]


def Transpose(x: Any, axes: Sequence[int] | None = None) -> Node:
    """Permute axes (reverse them by default); ``Transpose(Transpose(x))`` is ``x`` (see
    :mod:`graphcore.rewrite`).

    Example:
        >>> import graphcore as gc
        >>> gc.Transpose(gc.NewConstant([[1.0, 2.0, 3.0]])).shape
        (3, 1)
    """
    ax = None if axes is None else tuple(int(a) for a in axes)
    if ax is not None and isinstance(x, Node):
        ax = tuple(a % x.ndim if -x.ndim <= a < x.ndim else a for a in ax)
    return apply_op(TransposeOp(ax), x)


# ----- batched products and tensor contractions ------------------------------------------------


class BatchedMatMulOp(Op):
    """Matrix products over leading batch axes: ``op(a)[i] @ op(b)[i]`` for each batch index.

    Example:
        >>> BatchedMatMulOp(False, True).params()
        {'transA': False, 'transB': True}
    """

    name = "BatchedMatMul"
    arity = 2

    def __init__(self, transA: bool, transB: bool) -> None:  # noqa: N803 - Gorgonia's names
        self.transA = transA
        self.transB = transB

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        a, b = ins
        dt = same_dtype(self.name, ins, float_only=True)
        if len(a.shape) < 3 or len(a.shape) != len(b.shape):
            raise ShapeError(
                f"BatchedMatMul needs two operands of the same rank, at least 3 (batch axes, "
                f"then a matrix), got {describe(a)} and {describe(b)}; use Mul for matrices"
            )
        lead: list[int | None] = []
        for i, (da, db) in enumerate(zip(a.shape[:-2], b.shape[:-2], strict=True)):
            if not _dims_match(da, db):
                raise ShapeError(
                    f"BatchedMatMul: batch dimension {i} differs: {describe(a)} and "
                    f"{describe(b)} ({da} != {db}); the batch axes must be equal"
                )
            lead.append(da if da is not None else db)
        m, k1 = a.shape[-2:][::-1] if self.transA else a.shape[-2:]
        k2, n = b.shape[-2:][::-1] if self.transB else b.shape[-2:]
        if not _dims_match(k1, k2):
            raise ShapeError(
                f"BatchedMatMul: inner dimensions do not match: {describe(a)}"
                f"{' transposed' if self.transA else ''} times {describe(b)}"
                f"{' transposed' if self.transB else ''} ({k1} != {k2})"
            )
        return (*lead, m, n), dt

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        a = np.swapaxes(xs[0], -1, -2) if self.transA else xs[0]
        b = np.swapaxes(xs[1], -1, -2) if self.transB else xs[1]

        def run() -> None:  # a def, not a lambda: a kernel returns None, not numpy's array
            np.matmul(a, b, out=out)

        return run

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        a, b = node.children
        ta, tb = self.transA, self.transB
        # C = op(a) @ op(b): d op(a) = g @ op(b)^T and d op(b) = op(a)^T @ g, transposed back
        # where the operand was transposed; each case stays one batched product
        if not ta and not tb:
            ga = (g, b, False, True)
            gb = (a, g, True, False)
        elif ta and not tb:
            ga = (b, g, False, True)
            gb = (a, g, False, False)
        elif not ta and tb:
            ga = (g, b, False, False)
            gb = (g, a, True, False)
        else:
            ga = (b, g, True, True)
            gb = (g, a, True, True)
        return [
            BatchedMatMul(*ga) if wants[0] else None,
            BatchedMatMul(*gb) if wants[1] else None,
        ]


def BatchedMatMul(a: Any, b: Any, transA: bool = False, transB: bool = False) -> Node:  # noqa: N803
    """Batched matrix product of rank-3+ operands with equal leading (batch) axes.

    ``out[..., i, j] = sum_k op(a)[..., i, k] * op(b)[..., k, j]`` where ``op`` swaps the last
    two axes when ``transA``/``transB`` is set (as a view, no copy). A free (None) batch
    dimension is allowed.

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph()
        >>> a = gc.NewTensor(g, gc.Float32, 3, gc.WithShape(None, 4, 5), gc.WithName("a"))
        >>> b = gc.NewTensor(g, gc.Float32, 3, gc.WithShape(None, 6, 5), gc.WithName("b"))
        >>> gc.BatchedMatMul(a, b, transB=True).shape
        (None, 4, 6)
    """
    return apply_op(BatchedMatMulOp(bool(transA), bool(transB)), a, b)


def _prod(dims: Sequence[int]) -> int:
    n = 1
    for d in dims:
        n *= d
    return n


def _as_matrix(x: np.ndarray, rows: int, cols: int) -> tuple[np.ndarray, Kernel | None]:
    """``x`` as a (rows, cols) matrix: a view when numpy can reshape in place, else a scratch
    buffer (made once, here) and the copy that refreshes it on each run."""
    m = x.reshape(rows, cols)
    if np.may_share_memory(m, x):
        return m, None
    scratch = np.empty((rows, cols), dtype=x.dtype)
    dst = scratch.reshape(x.shape)
    return scratch, lambda: np.copyto(dst, x)


class TensordotOp(Op):
    """Contract axes ``a_axes`` of ``a`` with ``b_axes`` of ``b`` (numpy's ``tensordot``).

    Example:
        >>> TensordotOp((1,), (0,)).params()
        {'a_axes': (1,), 'b_axes': (0,)}
    """

    name = "Tensordot"
    arity = 2

    def __init__(self, a_axes: tuple[int, ...], b_axes: tuple[int, ...]) -> None:
        self.a_axes = a_axes
        self.b_axes = b_axes

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        a, b = ins
        dt = same_dtype(self.name, ins, float_only=True)
        if len(self.a_axes) != len(self.b_axes):
            raise ShapeError(
                f"Tensordot: {len(self.a_axes)} axes {self.a_axes} of {describe(a)} but "
                f"{len(self.b_axes)} axes {self.b_axes} of {describe(b)}; pair them one to one"
            )
        for t, axes in ((a, self.a_axes), (b, self.b_axes)):
            if len(set(axes)) != len(axes) or not all(0 <= i < len(t.shape) for i in axes):
                raise ShapeError(
                    f"Tensordot: axes {axes} are out of range or repeated for {describe(t)}"
                )
        for i, j in zip(self.a_axes, self.b_axes, strict=True):
            if not _dims_match(a.shape[i], b.shape[j]):
                raise ShapeError(
                    f"Tensordot: axis {i} of {describe(a)} and axis {j} of {describe(b)} "
                    f"differ in size ({a.shape[i]} != {b.shape[j]})"
                )
        fa = [d for i, d in enumerate(a.shape) if i not in self.a_axes]
        fb = [d for i, d in enumerate(b.shape) if i not in self.b_axes]
        return (*fa, *fb), dt

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        a, b = xs
        fa = [i for i in range(a.ndim) if i not in self.a_axes]
        fb = [i for i in range(b.ndim) if i not in self.b_axes]
        m = _prod([a.shape[i] for i in fa])
        k = _prod([a.shape[i] for i in self.a_axes])
        n = _prod([b.shape[i] for i in fb])
        # permute to (free, contracted) @ (contracted, free) and run one matrix product
        a2, copy_a = _as_matrix(a.transpose(*fa, *self.a_axes), m, k)
        b2, copy_b = _as_matrix(b.transpose(*self.b_axes, *fb), k, n)
        o2 = out.reshape(m, n)  # out is a fresh C-ordered buffer, so this is a view
        mm: Kernel
        if m * n * k and can_gemm(a2, b2, o2):
            mm = gemm_into(a2, b2, o2, 0.0)
        else:

            def matmul() -> None:  # a def, not a lambda: a kernel returns None, not numpy's array
                np.matmul(a2, b2, out=o2)

            mm = matmul
        steps = [f for f in (copy_a, copy_b) if f is not None]
        if not steps:
            return mm

        def run() -> None:
            for f in steps:
                f()
            mm()

        return run

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        a, b = node.children
        aa, ba = list(self.a_axes), list(self.b_axes)
        fa = [i for i in range(a.ndim) if i not in aa]
        fb = [i for i in range(b.ndim) if i not in ba]
        g_fa = list(range(len(fa)))
        g_fb = list(range(len(fa), len(fa) + len(fb)))
        ga = gb = None
        if wants[0]:
            # sum over b's free axes; the result's axes are a's free axes, then a's contracted
            # axes in the order of their partners in b
            r = Tensordot(g, b, g_fb, fb)
            ga = _transpose_back(r, fa + [aa[ba.index(j)] for j in sorted(ba)])
        if wants[1]:
            r = Tensordot(a, g, fa, g_fa)
            gb = _transpose_back(r, [ba[aa.index(i)] for i in sorted(aa)] + fb)
        return [ga, gb]


def _transpose_back(r: Node, src_axes: list[int]) -> Node:
    """``r``'s axis ``j`` is operand axis ``src_axes[j]``: permute to the operand's order."""
    perm = [src_axes.index(i) for i in range(len(src_axes))]
    if perm == list(range(len(perm))):
        return r
    return Transpose(r, perm)


def _int_seq(v: Any) -> bool:
    return isinstance(v, (list, tuple)) and all(
        isinstance(i, int) and not isinstance(i, bool) for i in v
    )


def _axes_list(v: Any, ndim: int, who: str) -> tuple[int, ...]:
    items = [v] if isinstance(v, int) else list(v)
    out = []
    for i in items:
        if isinstance(i, bool) or not hasattr(i, "__index__"):
            raise TypeError(f"Tensordot: {who} axes must be ints, got {v!r}")
        i = int(i)
        if not -ndim <= i < ndim:
            raise ShapeError(
                f"Tensordot: axis {i} is out of range for {who} with {ndim} dimensions"
            )
        out.append(i % ndim)
    return tuple(out)


def Tensordot(*args: Any, axes: Any = None) -> Node:
    """Tensor contraction, in Gorgonia's or numpy's argument order.

    - Gorgonia: ``Tensordot(aAxes, bAxes, a, b)`` when the first two arguments are lists or
      tuples of ints;
    - numpy: ``Tensordot(a, b, axes=2)`` with ``axes`` an int ``N`` (the last ``N`` axes of
      ``a`` with the first ``N`` of ``b``) or a pair ``(aAxes, bAxes)``; and also
      ``Tensordot(a, b, aAxes, bAxes)``.

    The result has ``a``'s remaining axes, then ``b``'s. (Operands given as plain lists of
    ints would be read as Gorgonia's axes: make them constants first.)

    Example:
        >>> import graphcore as gc
        >>> a = gc.NewConstant(np.ones((2, 3, 4))); b = gc.NewConstant(np.ones((4, 3, 5)))
        >>> gc.Tensordot([1, 2], [1, 0], a, b).shape, gc.Tensordot(a, b, ([2], [0])).shape
        ((2, 5), (2, 3, 3, 5))
    """
    if len(args) == 4 and _int_seq(args[0]) and _int_seq(args[1]):
        a_ax, b_ax, a, b = args
    elif len(args) == 4:
        a, b, a_ax, b_ax = args
    elif len(args) in (2, 3):
        a, b = args[:2]
        spec = args[2] if len(args) == 3 else (2 if axes is None else axes)
        if len(args) == 3 and axes is not None:
            raise TypeError("Tensordot: give the axes once, positionally or as axes=")
        a_ax = b_ax = None
        if not isinstance(spec, int):
            if len(spec) != 2:
                raise TypeError(
                    f"Tensordot: axes must be an int or a pair (aAxes, bAxes), got {spec!r}"
                )
            a_ax, b_ax = spec
    else:
        raise TypeError(
            "Tensordot takes (aAxes, bAxes, a, b), (a, b, aAxes, bAxes) or (a, b, axes), "
            f"got {len(args)} arguments"
        )
    like = a if isinstance(a, Node) else b if isinstance(b, Node) else None
    na, nb = as_node(a, like), as_node(b, like)
    if a_ax is None:  # numpy's int form
        n = int(spec)
        if not 0 <= n <= min(na.ndim, nb.ndim):
            raise ShapeError(
                f"Tensordot: cannot contract {n} axes of {na.describe()} with {nb.describe()}"
            )
        a_ax, b_ax = tuple(range(na.ndim - n, na.ndim)), tuple(range(n))
    ta = _axes_list(a_ax, na.ndim, repr(na.name))
    tb = _axes_list(b_ax, nb.ndim, repr(nb.name))
    return apply_op(TensordotOp(ta, tb), na, nb)


__all__ += ["BatchedMatMul", "Tensordot", "BatchedMatMulOp", "TensordotOp"]
