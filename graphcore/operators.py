"""Python operators on nodes: ``a + b``, ``a @ w``, ``-x``, ``x[0]``, ``x.T`` ...

They build graph ops with numpy's semantics (``*`` is elementwise, ``@`` the matrix product,
broadcasting as numpy does). The ops package installs them on :class:`~graphcore.graph.Node`
when it is imported (``install``), so the graph module never imports the ops it would build.

Example:
    >>> import graphcore as gc
    >>> g = gc.NewGraph()
    >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
    >>> w = gc.NewMatrix(g, gc.Float64, gc.WithShape(3, 2), gc.WithName("w"))
    >>> y = (x @ w) * 2.0 - 1.0
    >>> y.op.name, y.shape, (-y).op.name, x.T.shape, x[0].shape
    ('Sub', (None, 2), 'Neg', (3, None), (3,))
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

__all__ = ["install"]

# operator -> (op function name, whether the node is the right operand)
_BINARY = {
    "__add__": ("Add", False), "__radd__": ("Add", True),
    "__sub__": ("Sub", False), "__rsub__": ("Sub", True),
    "__mul__": ("HadamardProd", False), "__rmul__": ("HadamardProd", True),
    "__truediv__": ("HadamardDiv", False), "__rtruediv__": ("HadamardDiv", True),
    "__matmul__": ("MatMul", False), "__rmatmul__": ("MatMul", True),
    "__pow__": ("Pow", False), "__rpow__": ("Pow", True),
}


def _binary(fn: Any, reflected: bool) -> Any:
    if reflected:
        return lambda self, other: fn(other, self)
    return lambda self, other: fn(self, other)


def install(node_cls: type, ops: ModuleType) -> None:
    """Give ``node_cls`` its Python operators, built from the op functions in ``ops``.

    Example:
        >>> import graphcore as gc
        >>> callable(gc.Node.__add__), callable(gc.Node.__neg__)
        (True, True)
    """
    for name, (op_name, reflected) in _BINARY.items():
        method = _binary(getattr(ops, op_name), reflected)
        method.__name__ = name
        method.__doc__ = f"``{op_name}`` of the operands (numpy broadcasting)."
        setattr(node_cls, name, method)
    neg, slice_, transpose = ops.Neg, ops.Slice, ops.Transpose

    def __neg__(self: Any) -> Any:
        """``Neg(self)``."""
        return neg(self)

    def __pos__(self: Any) -> Any:
        """The node itself."""
        return self

    def __getitem__(self: Any, index: Any) -> Any:
        """``Slice(self, index)``: integers, slices and ``S(...)`` per axis, as numpy."""
        return slice_(self, index if isinstance(index, tuple) else (index,))

    def T(self: Any) -> Any:  # noqa: N802 - numpy's name
        """The transpose (reversed axes), as a view.

        Example:
            >>> import graphcore as gc
            >>> gc.NewConstant([[1.0, 2.0]]).T.shape
            (2, 1)
        """
        return transpose(self)

    # setattr, not attribute assignment: ``node_cls`` is any class, so the checker cannot see
    # these names on it.
    for name, attr in (("__neg__", __neg__), ("__pos__", __pos__),
                       ("__getitem__", __getitem__), ("T", property(T))):
        setattr(node_cls, name, attr)
