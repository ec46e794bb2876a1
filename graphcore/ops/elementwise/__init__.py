"""Elementwise ops in three tables, one module each: unary math and activations
(:mod:`~graphcore.ops.elementwise.unary`, its kernel factories in
:mod:`~graphcore.ops.elementwise.unary_kernels`), binary arithmetic
(:mod:`~graphcore.ops.elementwise.binary`) and comparisons
(:mod:`~graphcore.ops.elementwise.compare`).

Each row gives an op's forward kernel and its derivative side by side, as HIPS autograd's
``defvjp`` does:

- a **unary** row: the forward kernel factory, the derivative ``g * f'(x)`` written with graph
  ops (so it can be differentiated again), which of ``x`` and ``y = f(x)`` it reads, and
  optionally a fused kernel computing that derivative in one ``<Name>Grad`` node. First-order
  gradients use the fused node for speed; ``Grad`` differentiates through the graph-op form
  when a gradient must pass through it (``UnaryGradOp.expand``);
- a **binary** row: the numpy ufunc and the gradient for each operand, written with graph ops
  on ``(g, a, b, y)`` and ignoring broadcasting (``Grad`` sums a gradient back to its
  operand's shape);
- a **comparison** row: the numpy ufunc. Comparisons are not differentiable (as in Gorgonia);
  inside a derivative, a comparison used as a 0/1 factor is a :func:`mask`, whose gradient is
  zero, which is what makes second derivatives of ReLU, Abs or Maximum exact.

Each table's public functions sit in its module, below it; this package gathers them.

Example:
    >>> import graphcore as gc
    >>> g = gc.NewGraph(); x = gc.NewVector(g, gc.Float64, gc.WithShape(3), gc.WithName("x"))
    >>> y = gc.Tanh(x); (dy,) = y.op.grad(y, gc.NewConstant([1.0, 1.0, 1.0]), [True])
    >>> dy.op.name, [c.name for c in dy.children] == [y.name, dy.children[1].name]
    ('TanhGrad', True)
"""

from .binary import (
    BINARY,
    Add,
    BinaryOp,
    Div,
    HadamardDiv,
    HadamardProd,
    MaxBetween,
    Maximum,
    MinBetween,
    Minimum,
    Pow,
    Sub,
)
from .compare import COMPARISONS, CompareOp, Eq, Gt, Gte, Lt, Lte, MaskOp, Ne, mask
from .unary import (
    UNARY,
    Abs,
    Ceil,
    Cos,
    Cube,
    Elu,
    Exp,
    Expm1,
    Floor,
    Gelu,
    Inverse,
    InverseSqrt,
    LeakyRelu,
    Log,
    Log1p,
    Log2,
    Mish,
    Neg,
    NormalCdf,
    Rectify,
    ReLU,
    Relu,
    Sigmoid,
    Sign,
    Sin,
    Softplus,
    Sqrt,
    Square,
    Tanh,
    UnaryGradOp,
    UnaryOp,
)

__all__ = [
    "Exp", "Log", "Log2", "Log1p", "Expm1", "Sqrt", "Square", "Cube", "Inverse", "InverseSqrt",
    "Sin", "Cos", "Tanh", "Sigmoid", "Softplus", "Neg", "Abs", "Sign", "Rectify", "LeakyRelu",
    "Elu", "Gelu", "Mish", "Relu", "ReLU", "Ceil", "Floor", "Add", "Sub", "HadamardProd",
    "HadamardDiv", "Div", "Pow", "Maximum", "Minimum", "MaxBetween", "MinBetween", "Lt", "Gt",
    "Lte", "Gte", "Eq", "Ne", "mask", "NormalCdf",
    "UNARY", "BINARY", "COMPARISONS", "UnaryOp", "UnaryGradOp", "BinaryOp", "CompareOp", "MaskOp",
]
