"""Exceptions graphcore raises. Each message names the node, the shapes or dtypes, and the fix.

Example:
    >>> import graphcore as gc
    >>> issubclass(gc.ShapeError, ValueError)
    True
"""

from __future__ import annotations

__all__ = [
    "GraphError",
    "ShapeError",
    "DtypeError",
    "GradError",
    "ValueNotAvailableError",
    "NonFiniteError",
    "MachineBusyError",
]


class GraphError(ValueError):
    """A graph was built or used wrongly (duplicate name, missing value, mixed graphs).

    Example:
        >>> raise GraphError("input node 'x' has no value")
        Traceback (most recent call last):
        graphcore.errors.GraphError: input node 'x' has no value
    """


class ShapeError(GraphError):
    """Shapes of a node's operands do not fit its op (raised when the node is built).

    Example:
        >>> isinstance(ShapeError("x"), ValueError)
        True
    """


class DtypeError(GraphError, TypeError):
    """Dtypes of a node's operands do not fit its op, or a value has the wrong dtype.

    Example:
        >>> isinstance(DtypeError("x"), TypeError)
        True
    """


class GradError(GraphError):
    """``Grad`` cannot differentiate: non-scalar cost, unreachable ``wrt``, non-differentiable op.

    Example:
        >>> isinstance(GradError("x"), GraphError)
        True
    """


class ValueNotAvailableError(GraphError):
    """A node's value was never computed, or its buffer was reused by the tape machine.

    Example:
        >>> isinstance(ValueNotAvailableError("x"), GraphError)
        True
    """


class NonFiniteError(FloatingPointError):
    """A watched machine saw NaN or Inf; the message names the first node that produced it.

    Example:
        >>> issubclass(NonFiniteError, ArithmeticError)
        True
    """


class MachineBusyError(RuntimeError):
    """A machine was asked to run while it is running in another thread.

    A machine owns one set of buffers, so it runs one thread at a time; give each thread a
    machine of its own (on its own copy of the graph: ``g.clone(share=learnables)``).

    Example:
        >>> issubclass(MachineBusyError, RuntimeError)
        True
    """
