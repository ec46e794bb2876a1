"""The unary table: math functions and activations, each row an op's forward kernel and its
derivative side by side, as HIPS autograd's ``defvjp`` does; the public functions below it.

A row gives the forward kernel factory (:mod:`~graphcore.ops.elementwise.unary_kernels`), the
derivative ``g * f'(x)`` written with graph ops (so it can be differentiated again), which of
``x`` and ``y = f(x)`` it reads, and optionally a fused kernel computing that derivative in
one ``<Name>Grad`` node. First-order gradients use the fused node for speed; ``Grad``
differentiates through the graph-op form when a gradient must pass through it
(``UnaryGradOp.expand``). Inside a derivative, a comparison used as a 0/1 factor is a
:func:`~graphcore.ops.elementwise.compare.mask`, whose gradient is zero, which is what makes
second derivatives of ReLU or Abs exact.

Example:
    >>> import graphcore as gc
    >>> g = gc.NewGraph(); x = gc.NewVector(g, gc.Float64, gc.WithShape(3), gc.WithName("x"))
    >>> y = gc.Tanh(x); (dy,) = y.op.grad(y, gc.NewConstant([1.0, 1.0, 1.0]), [True])
    >>> dy.op.name, [c.name for c in dy.children] == [y.name, dy.children[1].name]
    ('TanhGrad', True)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...dtypes import Dtype
from ...errors import DtypeError
from ...graph import Node
from ...shapes import Shape
from ..base import ExecContext, Kernel, Op, TypeInfo, apply_op, describe, same_dtype
from .compare import mask
from .unary_kernels import (  # the rows' kernel factories
    _INV_SQRT2PI,
    Factory,
    _d_elu,
    _d_gelu,
    _d_leaky,
    _d_mish,
    _d_relu,
    _d_sigmoid,
    _d_softplus,
    _d_sqrt,
    _d_tanh,
    _elu,
    _gelu,
    _inv_sqrt,
    _leaky,
    _mish,
    _relu,
    _sigmoid,
    _softplus,
    _special_ufunc,
    _times_g,
    _ufunc,
)

__all__ = [
    "Exp", "Log", "Log2", "Log1p", "Expm1", "Sqrt", "Square", "Cube", "Inverse", "InverseSqrt",
    "Sin", "Cos", "Tanh", "Sigmoid", "Softplus", "Neg", "Abs", "Sign", "Rectify", "LeakyRelu",
    "Elu", "Gelu", "Mish", "Relu", "ReLU", "Ceil", "Floor", "NormalCdf",
    "UNARY", "Unary", "UnaryOp", "UnaryGradOp",
]

_LN2 = math.log(2.0)


# ----- the unary table ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Unary:
    """One row of the unary table: an op and its derivative, side by side.

    Example:
        >>> UNARY["Tanh"].reads, UNARY["Sign"].grad is None
        ('y', True)
    """

    #: ``fwd(x, out, **params)`` -> the kernel computing ``out = f(x)``
    fwd: Factory
    #: ``grad(x, y, g, **params)`` -> ``g * f'(x)`` written with graph ops (``y = f(x)``);
    #: None: not differentiable
    grad: Callable[..., Node] | None
    #: which of ``x`` and ``y`` the derivative reads ("x", "y", "xy" or ""): the other may be
    #: freed before the backward pass
    reads: str = "x"
    #: ``fused(x, y, g, out, **params)`` -> a kernel computing the derivative in one node; None:
    #: the gradient is the graph-op form itself (cheap enough already)
    fused: Factory | None = None
    #: also takes integer operands
    ints: bool = False
    #: the factories take the plan's kernel module as ``k=`` (graphcore.kernels)
    backend: bool = False
    #: the output is piecewise constant in ``x`` (Ceil, Floor): its gradient is zero, so
    #: ``Grad`` sends none through it (``Op.zero_gradient``)
    zero: bool = False


# fmt: off
UNARY: dict[str, Unary] = {
    "Exp": Unary(_ufunc(np.exp), lambda x, y, g: g * y, "y",
                 lambda x, y, g, out: lambda: np.multiply(g, y, out=out)),
    "Log": Unary(_ufunc(np.log), lambda x, y, g: g / x, "x",
                 lambda x, y, g, out: lambda: np.divide(g, x, out=out)),
    "Log2": Unary(_ufunc(np.log2), lambda x, y, g: g / x * (1 / _LN2), "x",
                  _times_g(lambda x, y, o: np.divide(1 / _LN2, x, out=o))),
    "Log1p": Unary(_ufunc(np.log1p), lambda x, y, g: g / (x + 1.0), "x",
                   _times_g(lambda x, y, o: (np.add(x, 1, out=o), np.reciprocal(o, out=o)))),
    "Expm1": Unary(_ufunc(np.expm1), lambda x, y, g: g * (y + 1.0), "y",
                   _times_g(lambda x, y, o: np.add(y, 1, out=o))),
    "Sqrt": Unary(_ufunc(np.sqrt), lambda x, y, g: g / y * 0.5, "y",
                  _d_sqrt),
    "Square": Unary(_ufunc(np.square), lambda x, y, g: g * (x * 2.0), "x",
                    _times_g(lambda x, y, o: np.multiply(x, 2, out=o))),
    "Cube": Unary(lambda x, out: lambda: np.power(x, 3, out=out),
                  lambda x, y, g: g * (Square(x) * 3.0), "x",
                  _times_g(lambda x, y, o: (np.square(x, out=o), np.multiply(o, 3, out=o)))),
    "Inverse": Unary(_ufunc(np.reciprocal), lambda x, y, g: -(g * Square(y)), "y",
                     _times_g(lambda x, y, o: (np.square(y, out=o), np.negative(o, out=o)))),
    "InverseSqrt": Unary(
        _inv_sqrt,
        lambda x, y, g: g * (Cube(y) * -0.5), "y",
        _times_g(lambda x, y, o: (np.power(y, 3, out=o), np.multiply(o, -0.5, out=o)))),
    "Sin": Unary(_ufunc(np.sin), lambda x, y, g: g * Cos(x), "x",
                 _times_g(lambda x, y, o: np.cos(x, out=o))),
    "Cos": Unary(_ufunc(np.cos), lambda x, y, g: -(g * Sin(x)), "x",
                 _times_g(lambda x, y, o: (np.sin(x, out=o), np.negative(o, out=o)))),
    "Tanh": Unary(_ufunc(np.tanh), lambda x, y, g: g * (1.0 - Square(y)), "y", _d_tanh),
    "Sigmoid": Unary(_sigmoid, lambda x, y, g: g * (y * (1.0 - y)), "y",
                     lambda x, y, g, out, k: _d_sigmoid(x, y, g, out), backend=True),
    "Softplus": Unary(_softplus, lambda x, y, g: g * Sigmoid(x), "x", _d_softplus,
                      backend=True),
    "Neg": Unary(_ufunc(np.negative), lambda x, y, g: -g, "", ints=True),
    "Abs": Unary(_ufunc(np.abs), lambda x, y, g: g * (mask("Gt", x, 0.0) - mask("Lt", x, 0.0)),
                 "x", _times_g(lambda x, y, o: np.sign(x, out=o)), ints=True),
    "Sign": Unary(_ufunc(np.sign), None, ints=True),
    # steps: the derivative is 0 almost everywhere, so no gradient flows through them
    "Ceil": Unary(_ufunc(np.ceil), None, zero=True),
    "Floor": Unary(_ufunc(np.floor), None, zero=True),
    # y > 0 exactly where x > 0; reading y lets x's buffer be reused early
    "Rectify": Unary(_relu, lambda x, y, g: g * mask("Gt", y, 0.0), "y", _d_relu,
                     backend=True),
    "LeakyRelu": Unary(_leaky,
                       lambda x, y, g, alpha: g * (alpha + (1 - alpha) * mask("Gt", x, 0.0)),
                       "x", _d_leaky),
    "Elu": Unary(_elu, lambda x, y, g, alpha: g * _elu_slope(x, y, alpha), "xy", _d_elu),
    "Gelu": Unary(_gelu, lambda x, y, g: g * (NormalCdf(x) + x * _normal_pdf(x)), "x", _d_gelu),
    "Mish": Unary(_mish, lambda x, y, g: g * _mish_slope(x), "x", _d_mish),
    # the standard normal CDF: only in Gelu's second derivative
    "NormalCdf": Unary(_special_ufunc("ndtr"), lambda x, y, g: g * _normal_pdf(x), "x"),
}
# fmt: on


def _elu_slope(x: Node, y: Node, alpha: float) -> Node:
    pos = mask("Gt", x, 0.0)  # 1 where x > 0, else y + alpha (= alpha * e^x)
    return pos + (1.0 - pos) * (y + alpha)


def _normal_pdf(x: Node) -> Node:
    return Exp(Square(x) * -0.5) * _INV_SQRT2PI


def _mish_slope(x: Node) -> Node:
    t = Tanh(Softplus(x))
    return t + x * (1.0 - Square(t)) * Sigmoid(x)


class UnaryOp(Op):
    """An elementwise op from the unary table (``Exp``, ``Rectify``, ``LeakyRelu(alpha)``, ...).

    It pickles as its row's name and parameters (a row holds lambdas).

    Example:
        >>> UnaryOp("Exp").name, UnaryOp("LeakyRelu", alpha=0.1)
        ('Exp', LeakyRelu(alpha=0.1))
        >>> import pickle; pickle.loads(pickle.dumps(UnaryOp("Elu", alpha=0.5)))
        Elu(alpha=0.5)
    """

    arity = 1
    inplace = True
    rebuildable = True

    def __init__(self, name: str, **params: Any) -> None:
        self.row = UNARY[name]
        self.name = name  # type: ignore[misc]
        self._p = params

    @property
    def differentiable(self) -> bool:  # type: ignore[override]
        return self.row.grad is not None or self.row.zero

    @property
    def zero_gradient(self) -> bool:  # type: ignore[override]
        return self.row.zero

    def params(self) -> dict[str, Any]:
        return dict(self._p)

    def __reduce__(self) -> tuple[Any, ...]:
        # a row holds lambdas, which pickle cannot store: an op pickles as its row's name and
        # parameters, and finds its row again when loaded
        return (_unary_op, (self.name, dict(self._p)))

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        (x,) = ins
        if not self.row.ints and not x.dtype.is_float:
            raise DtypeError(
                f"{self.name} needs a Float32 or Float64 operand, got {describe(x)}; "
                f"convert the input to a float dtype (ConvType(x, Float32))"
            )
        return x.shape, x.dtype

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        if self.row.backend:
            return self.row.fwd(xs[0], out, **self._p, k=ctx.kernels)
        return self.row.fwd(xs[0], out, **self._p)

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        (x,) = node.children
        row = self.row
        if row.zero:
            return [None]
        if row.fused is None:
            return [row.grad(x, node, g, **self._p)]  # type: ignore[misc]
        operands = ([x] if "x" in row.reads else []) + ([node] if "y" in row.reads else [])
        return [apply_op(UnaryGradOp(self), *operands, g)]


def _unary_op(name: str, params: dict[str, Any]) -> UnaryOp:
    """``UnaryOp(name, **params)``: what a pickled unary op is loaded with."""
    return UnaryOp(name, **params)


class UnaryGradOp(Op):
    """The fused derivative of a unary row, ``g * f'(x)`` in one node.

    Its operands are ``x`` and/or ``y`` (as the row reads them) and then ``g``. ``expand``
    gives the row's graph-op form, through which ``Grad`` differentiates it again.

    Example:
        >>> UnaryGradOp(UnaryOp("Tanh")).name
        'TanhGrad'
    """

    inplace = False

    def __init__(self, fwd: UnaryOp) -> None:
        self.fwd = fwd
        self.name = fwd.name + "Grad"  # type: ignore[misc]

    def params(self) -> dict[str, Any]:
        return self.fwd.params()

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        g = ins[-1]
        same_dtype(self.name, ins)
        return g.shape, g.dtype

    def _split(self, items: Sequence[Any]) -> tuple[Any, Any, Any]:
        """``(x, y, g)`` from the operands (None for what the row does not read)."""
        reads = self.fwd.row.reads
        x = items[0] if "x" in reads else None
        y = items[-2] if "y" in reads else None
        return x, y, items[-1]

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        fused, p = self.fwd.row.fused, self.fwd._p
        assert fused is not None
        if self.fwd.row.backend:
            return fused(*self._split(xs), out, **p, k=ctx.kernels)
        return fused(*self._split(xs), out, **p)

    def expand(self, node: Node) -> Node:
        return self.fwd.row.grad(*self._split(node.children), **self.fwd._p)  # type: ignore[misc]


# ----- public functions: unary -------------------------------------------------------------------


def _unary(name: str, x: Any, **params: Any) -> Node:
    return apply_op(UnaryOp(name, **params), x)


def Exp(x: Any) -> Node:
    """Elementwise e**x.

    Example:
        >>> import graphcore as gc; gc.Exp(gc.NewConstant([0.0])).op.name
        'Exp'
    """
    return _unary("Exp", x)


def Log(x: Any) -> Node:
    """Elementwise natural log, with Gorgonia's stabilising rewrites applied when built.

    ``Log(SoftMax(z))`` becomes ``LogSoftMax(z)``, ``Log(1 + z)`` becomes ``Log1p(z)`` and
    ``Log(Sigmoid(z))`` becomes ``-Softplus(-z)`` (see :mod:`graphcore.rewrite`), so the
    talk's cost never sees ``log(0)``.

    Example:
        >>> import graphcore as gc
        >>> z = gc.NewConstant([[1.0, 2.0]])
        >>> gc.Log(gc.SoftMax(z)).op.name
        'LogSoftMax'
    """
    return _unary("Log", x)


def Log2(x: Any) -> Node:
    """Elementwise base-2 log.

    Example:
        >>> import graphcore as gc; gc.Log2(gc.NewConstant([2.0])).op.name
        'Log2'
    """
    return _unary("Log2", x)


def Log1p(x: Any) -> Node:
    """Elementwise log(1 + x), accurate for small x.

    Example:
        >>> import graphcore as gc; gc.Log1p(gc.NewConstant([0.0])).op.name
        'Log1p'
    """
    return _unary("Log1p", x)


def Expm1(x: Any) -> Node:
    """Elementwise e**x - 1, accurate for small x.

    Example:
        >>> import graphcore as gc; gc.Expm1(gc.NewConstant([0.0])).op.name
        'Expm1'
    """
    return _unary("Expm1", x)


def Sqrt(x: Any) -> Node:
    """Elementwise square root.

    Example:
        >>> import graphcore as gc; gc.Sqrt(gc.NewConstant([4.0])).op.name
        'Sqrt'
    """
    return _unary("Sqrt", x)


def Square(x: Any) -> Node:
    """Elementwise x**2.

    Example:
        >>> import graphcore as gc; gc.Square(gc.NewConstant([3.0])).op.name
        'Square'
    """
    return _unary("Square", x)


def Cube(x: Any) -> Node:
    """Elementwise x**3.

    Example:
        >>> import graphcore as gc; gc.Cube(gc.NewConstant([3.0])).op.name
        'Cube'
    """
    return _unary("Cube", x)


def Inverse(x: Any) -> Node:
    """Elementwise 1/x.

    Example:
        >>> import graphcore as gc; gc.Inverse(gc.NewConstant([2.0])).op.name
        'Inverse'
    """
    return _unary("Inverse", x)


def InverseSqrt(x: Any) -> Node:
    """Elementwise 1/sqrt(x).

    Example:
        >>> import graphcore as gc; gc.InverseSqrt(gc.NewConstant([4.0])).op.name
        'InverseSqrt'
    """
    return _unary("InverseSqrt", x)


def Sin(x: Any) -> Node:
    """Elementwise sine.

    Example:
        >>> import graphcore as gc; gc.Sin(gc.NewConstant([0.0])).op.name
        'Sin'
    """
    return _unary("Sin", x)


def Cos(x: Any) -> Node:
    """Elementwise cosine.

    Example:
        >>> import graphcore as gc; gc.Cos(gc.NewConstant([0.0])).op.name
        'Cos'
    """
    return _unary("Cos", x)


def Tanh(x: Any) -> Node:
    """Elementwise hyperbolic tangent.

    Example:
        >>> import graphcore as gc; gc.Tanh(gc.NewConstant([0.0])).op.name
        'Tanh'
    """
    return _unary("Tanh", x)


def Sigmoid(x: Any) -> Node:
    """Elementwise logistic function 1/(1+e**-x), stable for large |x|.

    Example:
        >>> import graphcore as gc; gc.Sigmoid(gc.NewConstant([0.0])).op.name
        'Sigmoid'
    """
    return _unary("Sigmoid", x)


def Softplus(x: Any) -> Node:
    """Elementwise log(1 + e**x), stable for large |x|.

    Example:
        >>> import graphcore as gc; gc.Softplus(gc.NewConstant([0.0])).op.name
        'Softplus'
    """
    return _unary("Softplus", x)


def Neg(x: Any) -> Node:
    """Elementwise negation (also ``-node``); ``Neg(Neg(x))`` is ``x``.

    Example:
        >>> import graphcore as gc
        >>> a = gc.NewConstant([1.0]); gc.Neg(gc.Neg(a)) is a
        True
    """
    return _unary("Neg", x)


def Abs(x: Any) -> Node:
    """Elementwise absolute value (gradient sign(x), 0 at 0).

    Example:
        >>> import graphcore as gc; gc.Abs(gc.NewConstant([-1.0])).op.name
        'Abs'
    """
    return _unary("Abs", x)


def Sign(x: Any) -> Node:
    """Elementwise sign; not differentiable.

    Example:
        >>> import graphcore as gc; gc.Sign(gc.NewConstant([-2.0])).op.differentiable
        False
    """
    return _unary("Sign", x)


def Ceil(x: Any) -> Node:
    """Elementwise ceiling (the smallest integer >= x, as a float); its gradient is zero.

    Example:
        >>> import graphcore as gc
        >>> y = gc.Ceil(gc.NewConstant([-1.5, 0.2]))
        >>> y.op.compute([np.array([-1.5, 0.2])], gc.ExecContext()).tolist(), y.op.zero_gradient
        ([-1.0, 1.0], True)
    """
    return _unary("Ceil", x)


def Floor(x: Any) -> Node:
    """Elementwise floor (the largest integer <= x, as a float); its gradient is zero.

    Example:
        >>> import graphcore as gc
        >>> y = gc.Floor(gc.NewConstant([-1.5, 0.2]))
        >>> y.op.compute([np.array([-1.5, 0.2])], gc.ExecContext()).tolist()
        [-2.0, 0.0]
    """
    return _unary("Floor", x)


def Rectify(x: Any) -> Node:
    """ReLU: max(x, 0) (Gorgonia's name; ``Relu``/``ReLU`` are aliases).

    Example:
        >>> import graphcore as gc; gc.Rectify(gc.NewConstant([-1.0, 2.0])).op.name
        'Rectify'
    """
    return _unary("Rectify", x)


Relu = Rectify
ReLU = Rectify


def LeakyRelu(x: Any, alpha: float = 0.01) -> Node:
    """x for x > 0, alpha*x otherwise.

    Example:
        >>> import graphcore as gc; gc.LeakyRelu(gc.NewConstant([-1.0]), 0.1).op
        LeakyRelu(alpha=0.1)
    """
    return _unary("LeakyRelu", x, alpha=float(alpha))


def Elu(x: Any, alpha: float = 1.0) -> Node:
    """x for x > 0, alpha*(e**x - 1) otherwise.

    Example:
        >>> import graphcore as gc; gc.Elu(gc.NewConstant([-1.0])).op
        Elu(alpha=1.0)
    """
    return _unary("Elu", x, alpha=float(alpha))


def Gelu(x: Any) -> Node:
    """Gaussian error linear unit, exact form x * Phi(x) (PyTorch's default).

    Example:
        >>> import graphcore as gc; gc.Gelu(gc.NewConstant([1.0])).op.name
        'Gelu'
    """
    return _unary("Gelu", x)


def Mish(x: Any) -> Node:
    """Mish: x * tanh(_softplus(x)).

    Example:
        >>> import graphcore as gc; gc.Mish(gc.NewConstant([1.0])).op.name
        'Mish'
    """
    return _unary("Mish", x)


def NormalCdf(x: Any) -> Node:
    """Phi(x), the standard normal distribution function (in Gelu's derivative).

    Example:
        >>> import graphcore as gc
        >>> NormalCdf(gc.NewConstant([0.0])).op.compute([np.zeros(1)], gc.ExecContext())
        array([0.5])
    """
    return _unary("NormalCdf", x)
