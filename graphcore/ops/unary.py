"""Elementwise unary ops: math and activations, each defined by one row of a table.

A row gives the forward kernel ``fwd(x, out, tmp)``, the derivative kernel
``deriv(x, y, g, out, tmp)`` (``y`` is the forward output) and which of ``x``/``y`` the
derivative reads, so the tape machine frees the other early. The symbolic gradient of every
row is one fused ``<Name>Grad`` node.

Example:
    >>> import graphcore as gc
    >>> g = gc.NewGraph(); x = gc.NewVector(g, gc.Float64, gc.WithShape(3), gc.WithName("x"))
    >>> gc.Sigmoid(x).shape
    (3,)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from ..dtypes import Dtype
from ..errors import DtypeError
from ..graph import Node
from ..shapes import Shape
from .base import ExecContext, Kernel, Op, TypeInfo, apply_op, describe, same_dtype

__all__ = [
    "Exp", "Log", "Log2", "Log1p", "Expm1", "Sqrt", "Square", "Cube", "Inverse", "InverseSqrt",
    "Sin", "Cos", "Tanh", "Sigmoid", "Softplus", "Neg", "Abs", "Sign", "Rectify", "LeakyRelu",
    "Elu", "Gelu", "Mish", "Relu", "ReLU", "UnaryOp", "UnaryGradOp",
]

Fwd = Callable[..., Any]


@dataclass(frozen=True)
class Row:
    name: str
    fwd: Fwd  # fwd(x, out, tmp, p) -> None
    deriv: Fwd | None  # deriv(x, y, g, out, tmp, p) -> None ; None: not differentiable
    uses: str = "x"  # which of x ("x"), y ("y") or both ("xy") deriv reads
    float_only: bool = True
    # fwd/deriv are kernel factories: called once per plan with the context's kernel module
    # as a last argument, they return the kernel
    factory: str = ""  # which of fwd ("f"), deriv ("d") or both ("fd")


def _sigmoid(x: np.ndarray, out: np.ndarray, tmp: np.ndarray, p: dict, k: Any) -> Kernel:
    scratch = k.sigmoid_scratch(x, out)
    return lambda: k.sigmoid(x, out, scratch)


def _softplus(x: np.ndarray, out: np.ndarray, tmp: np.ndarray, p: dict) -> None:
    # log(1+e^x) = max(x,0) + log1p(e^-|x|): stable for any x
    np.abs(x, out=tmp)
    np.negative(tmp, out=tmp)
    np.exp(tmp, out=tmp)
    np.log1p(tmp, out=tmp)
    np.maximum(x, 0, out=out)
    out += tmp


def _d_softplus(x, y, g, out, tmp, p, k):
    scratch = k.sigmoid_scratch(x, out)

    def run() -> None:
        k.sigmoid(x, out, scratch)
        np.multiply(out, g, out=out)

    return run


def _d_tanh(x, y, g, out, tmp, p):
    np.multiply(y, y, out=out)
    np.subtract(1, out, out=out)
    out *= g


def _d_sigmoid(x, y, g, out, tmp, p):
    np.subtract(1, y, out=out)
    out *= y
    out *= g


def _relu(x, out, tmp, p, k):
    scratch = k.relu_scratch(x, out)
    return lambda: k.relu(x, out, scratch)


def _d_relu(x, y, g, out, tmp, p, k):
    # y > 0 exactly where x > 0; reading y lets x's buffer be reused early
    scratch = k.relu_grad_scratch(y, g, out)
    return lambda: k.relu_grad(y, g, out, scratch)


def _leaky(x, out, tmp, p):
    np.multiply(x, p["alpha"], out=tmp)
    np.maximum(x, tmp, out=out) if p["alpha"] <= 1 else np.minimum(x, tmp, out=out)


def _d_leaky(x, y, g, out, tmp, p):
    np.greater(x, 0, out=tmp)
    # tmp in {0,1} -> slope in {alpha, 1}
    tmp *= 1 - p["alpha"]
    tmp += p["alpha"]
    np.multiply(g, tmp, out=out)


def _elu(x, out, tmp, p):
    np.minimum(x, 0, out=tmp)
    np.expm1(tmp, out=tmp)
    tmp *= p["alpha"]
    # for x <= 0, max(x, 0) is 0 and tmp holds alpha*(e^x-1); for x > 0, tmp is 0
    np.maximum(x, 0, out=out)
    out += tmp


def _d_elu(x, y, g, out, tmp, p):
    # x > 0: 1 ; x <= 0: y + alpha
    np.minimum(y, 0, out=tmp)
    tmp += p["alpha"]
    np.copyto(tmp, 1, where=x > 0)
    np.multiply(g, tmp, out=out)


_SQRT2 = math.sqrt(2.0)
_INV_SQRT2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _gelu(x, out, tmp, p):
    np.divide(x, _SQRT2, out=tmp)
    special.erf(tmp, out=tmp)
    tmp += 1
    tmp *= 0.5
    np.multiply(x, tmp, out=out)


def _d_gelu(x, y, g, out, tmp, p):
    # d/dx x*Phi(x) = Phi(x) + x*phi(x)
    np.multiply(x, x, out=out)
    out *= -0.5
    np.exp(out, out=out)
    out *= _INV_SQRT2PI
    out *= x
    np.divide(x, _SQRT2, out=tmp)
    special.erf(tmp, out=tmp)
    tmp += 1
    tmp *= 0.5
    out += tmp
    out *= g


def _mish(x, out, tmp, p):
    _softplus(x, out, tmp, p)
    np.tanh(out, out=out)
    out *= x


def _d_mish(x, y, g, out, tmp, p):
    # mish' = tanh(sp) + x * sech^2(sp) * sigmoid(x)
    t1, t2 = tmp
    _softplus(x, out, t1, p)
    np.tanh(out, out=out)
    np.multiply(out, out, out=t1)
    np.subtract(1, t1, out=t1)  # sech^2(softplus(x))
    t1 *= x
    special.expit(x, out=t2)
    t1 *= t2
    out += t1
    out *= g


def _u(f: Callable[..., Any]) -> Fwd:
    return lambda x, out, tmp, p: f(x, out=out)


def _mul_g(f: Callable[[Any, Any, Any, Any], None]) -> Fwd:
    def deriv(x, y, g, out, tmp, p):
        f(x, y, out, tmp)
        out *= g

    return deriv


_LN2 = math.log(2.0)

ROWS: dict[str, Row] = {
    r.name: r
    for r in [
        Row("Exp", _u(np.exp), lambda x, y, g, out, tmp, p: np.multiply(g, y, out=out), "y"),
        Row("Log", _u(np.log), lambda x, y, g, out, tmp, p: np.divide(g, x, out=out)),
        Row("Log2", _u(np.log2), _mul_g(lambda x, y, out, tmp: np.divide(1 / _LN2, x, out=out))),
        Row("Log1p", _u(np.log1p),
            _mul_g(lambda x, y, out, tmp: (np.add(x, 1, out=out), np.reciprocal(out, out=out)))),
        Row("Expm1", _u(np.expm1), _mul_g(lambda x, y, out, tmp: np.add(y, 1, out=out)), "y"),
        Row("Sqrt", _u(np.sqrt),
            lambda x, y, g, out, tmp, p: (np.divide(g, y, out=out), np.multiply(out, 0.5, out=out)),
            "y"),
        Row("Square", _u(np.square), _mul_g(lambda x, y, out, tmp: np.multiply(x, 2, out=out))),
        Row("Cube", lambda x, out, tmp, p: np.power(x, 3, out=out),
            _mul_g(lambda x, y, out, tmp: (np.square(x, out=out), np.multiply(out, 3, out=out)))),
        Row("Inverse", _u(np.reciprocal),
            _mul_g(lambda x, y, out, tmp: (np.square(y, out=out), np.negative(out, out=out))), "y"),
        Row("InverseSqrt",
            lambda x, out, tmp, p: (np.sqrt(x, out=out), np.reciprocal(out, out=out)),
            _mul_g(lambda x, y, out, tmp: (np.power(y, 3, out=out),
                                            np.multiply(out, -0.5, out=out))), "y"),
        Row("Sin", _u(np.sin), _mul_g(lambda x, y, out, tmp: np.cos(x, out=out))),
        Row("Cos", _u(np.cos),
            _mul_g(lambda x, y, out, tmp: (np.sin(x, out=out), np.negative(out, out=out)))),
        Row("Tanh", _u(np.tanh), _d_tanh, "y"),
        Row("Sigmoid", _sigmoid, _d_sigmoid, "y", factory="f"),
        Row("Softplus", _softplus, _d_softplus, factory="d"),
        Row("Neg", _u(np.negative), lambda x, y, g, out, tmp, p: np.negative(g, out=out), "",
            float_only=False),
        Row("Abs", _u(np.abs), _mul_g(lambda x, y, out, tmp: np.sign(x, out=out)),
            float_only=False),
        Row("Sign", _u(np.sign), None, float_only=False),
        Row("Rectify", _relu, _d_relu, "y", factory="fd"),
        Row("LeakyRelu", _leaky, _d_leaky),
        Row("Elu", _elu, _d_elu, "xy"),
        Row("Gelu", _gelu, _d_gelu),
        Row("Mish", _mish, _d_mish),
    ]
}

_NEEDS_TMP = {"Softplus", "LeakyRelu", "Elu", "Gelu", "Mish"}
_GRAD_NEEDS_TMP = {"LeakyRelu", "Elu", "Gelu", "Mish"}


class UnaryOp(Op):
    """An elementwise op from the table (``Exp``, ``Rectify``, ``LeakyRelu(alpha)``, ...).

    Example:
        >>> UnaryOp("Exp").name
        'Exp'
    """

    arity = 1
    inplace = True
    rebuildable = True

    def __init__(self, name: str, **params: Any) -> None:
        self.row = ROWS[name]
        self.name = name  # type: ignore[misc]
        self._p = params

    @property
    def differentiable(self) -> bool:  # type: ignore[override]
        return self.row.deriv is not None

    def params(self) -> dict[str, Any]:
        return dict(self._p)

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        (x,) = ins
        if self.row.float_only and not x.dtype.is_float:
            raise DtypeError(
                f"{self.name} needs a Float32 or Float64 operand, got {describe(x)}; "
                f"convert the input to a float dtype"
            )
        return x.shape, x.dtype

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        x = xs[0]
        tmp = np.empty_like(out) if self.name in _NEEDS_TMP else None
        fwd, p = self.row.fwd, self._p
        # in-place runs (out is x) must not use tmp-then-x orderings that read x after writing
        if tmp is not None and np.shares_memory(x, out):
            xcopy = np.empty_like(x)
            inner = fwd(xcopy, out, tmp, p, ctx.kernels) if "f" in self.row.factory else None

            def run() -> None:
                np.copyto(xcopy, x)
                if inner is not None:
                    inner()
                else:
                    fwd(xcopy, out, tmp, p)

            return run
        if "f" in self.row.factory:
            return fwd(x, out, tmp, p, ctx.kernels)
        return lambda: fwd(x, out, tmp, p)

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        (x,) = node.children
        uses = self.row.uses
        operands = ([x] if "x" in uses else []) + ([node] if "y" in uses else [])
        return [apply_op(UnaryGradOp(self), *operands, g)]


class UnaryGradOp(Op):
    """The fused derivative of a table op: ``g * f'(x)`` in one node.

    Its operands are ``x`` and/or ``y`` (as the row says) and then ``g``. Second-order
    derivatives through it are not supported.

    Example:
        >>> UnaryGradOp(UnaryOp("Tanh")).name
        'TanhGrad'
    """

    differentiable = False
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

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        uses = self.fwd.row.uses
        g = xs[-1]
        x = xs[0] if "x" in uses else None
        y = xs[-2] if "y" in uses else None
        name = self.fwd.name
        tmp = None
        if name == "Mish":
            tmp = np.empty((2, *out.shape), out.dtype)
        elif name in _GRAD_NEEDS_TMP:
            tmp = np.empty(out.shape, out.dtype)
        d, p = self.fwd.row.deriv, self.fwd._p
        if "d" in self.fwd.row.factory:
            return d(x, y, g, out, tmp, p, ctx.kernels)
        return lambda: d(x, y, g, out, tmp, p)


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
    ``Log(Sigmoid(z))`` becomes ``-Softplus(-z)``, so the talk's cost never sees ``log(0)``.

    Example:
        >>> import graphcore as gc
        >>> z = gc.NewConstant([[1.0, 2.0]])
        >>> gc.Log(gc.SoftMax(z)).op.name
        'LogSoftMax'
    """
    from .stabilize import stabilize_log

    if isinstance(x, Node):
        rewritten = stabilize_log(x)
        if rewritten is not None:
            return rewritten
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
    if isinstance(x, Node) and isinstance(x.op, UnaryOp) and x.op.name == "Neg":
        return x.children[0]
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
    """Mish: x * tanh(softplus(x)).

    Example:
        >>> import graphcore as gc; gc.Mish(gc.NewConstant([1.0])).op.name
        'Mish'
    """
    return _unary("Mish", x)
