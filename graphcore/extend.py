"""The extension API: what you need to write your own op or to build on graphcore.

An op subclasses :class:`Op` and gives ``infer`` (output shape and dtype, with errors that
name the operands), ``kernel`` (bind the arrays once, return a closure that computes into
``out``) and ``grad`` (the operand gradients, written with graph ops); :func:`apply_op` makes
a checked node of it. :func:`building_in` builds nodes into another graph (or none), as the
Lisp machine and golgi's throwaway summaries do.

Example:
    >>> import numpy as np, graphcore as gc
    >>> from graphcore.extend import Op, apply_op
    >>> class Twice(Op):
    ...     name = "Twice"
    ...     def infer(self, ins): return ins[0].shape, ins[0].dtype
    ...     def kernel(self, xs, out, ctx):
    ...         x = xs[0]
    ...         return lambda: np.multiply(x, 2.0, out=out)
    ...     def grad(self, node, g, wants): return [g * 2.0]
    >>> g = gc.NewGraph(); x = gc.NewVector(g, gc.Float64, gc.WithShape(2), gc.WithName("x"))
    >>> y = apply_op(Twice(), x); gc.Let(x, [1.0, 2.0]); gc.NewTapeMachine(g).run_all()
    >>> y.value.tolist()
    [2.0, 4.0]
"""

from .ops.base import ExecContext, Kernel, Op, TypeInfo, apply_op, building_in

__all__ = ["Op", "TypeInfo", "ExecContext", "Kernel", "apply_op", "building_in"]
