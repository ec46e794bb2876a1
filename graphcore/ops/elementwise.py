"""Elementwise ops in three tables: unary math and activations, binary arithmetic, comparisons.

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

Kernel factories are called once per plan with the arrays and return the kernel: a forward
factory is ``fwd(x, out, **params)`` (``out`` may be ``x``: the op runs in place, so a kernel
reads ``x`` only before or in the pass that writes ``out``), a fused derivative factory is
``fused(x, y, g, out, **params)`` (``x``/``y`` None when the row does not read them). Scratch
buffers are made in the factory, never per run.

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
from scipy import special

from ..dtypes import Bool, Dtype
from ..errors import DtypeError, ShapeError
from ..graph import Node
from ..shapes import Shape, broadcast_shapes
from .base import ExecContext, Kernel, Op, TypeInfo, apply_op, describe, same_dtype

__all__ = [
    "Exp", "Log", "Log2", "Log1p", "Expm1", "Sqrt", "Square", "Cube", "Inverse", "InverseSqrt",
    "Sin", "Cos", "Tanh", "Sigmoid", "Softplus", "Neg", "Abs", "Sign", "Rectify", "LeakyRelu",
    "Elu", "Gelu", "Mish", "Relu", "ReLU", "Ceil", "Floor", "Add", "Sub", "HadamardProd",
    "HadamardDiv", "Div", "Pow", "Maximum", "Minimum", "MaxBetween", "MinBetween", "Lt", "Gt",
    "Lte", "Gte", "Eq", "Ne", "mask", "NormalCdf",
    "UNARY", "BINARY", "COMPARISONS", "UnaryOp", "UnaryGradOp", "BinaryOp", "CompareOp", "MaskOp",
]

Factory = Callable[..., Kernel]

_LN2 = math.log(2.0)
_SQRT2 = math.sqrt(2.0)
_INV_SQRT2PI = 1.0 / math.sqrt(2.0 * math.pi)


# ----- unary kernels ---------------------------------------------------------------------------


def _ufunc(f: Callable[..., Any]) -> Factory:
    """A forward factory for a numpy ufunc: ``out = f(x)``."""
    return lambda x, out: lambda: f(x, out=out)


def _times_g(dfdx: Callable[[Any, Any, np.ndarray], Any]) -> Factory:
    """A fused derivative factory from ``dfdx(x, y, out)``, which writes ``f'(x)`` into
    ``out``; the kernel then multiplies by ``g``."""

    def make(x: Any, y: Any, g: np.ndarray, out: np.ndarray) -> Kernel:
        def run() -> None:
            dfdx(x, y, out)
            np.multiply(out, g, out=out)

        return run

    return make


def _softplus_into(x: np.ndarray, out: np.ndarray, tmp: np.ndarray) -> None:
    # log(1+e^x) = max(x,0) + log1p(e^-|x|): stable for any x; x is read before out is written
    np.abs(x, out=tmp)
    np.negative(tmp, out=tmp)
    np.exp(tmp, out=tmp)
    np.log1p(tmp, out=tmp)
    np.maximum(x, 0, out=out)
    np.add(out, tmp, out=out)


def _softplus(x: np.ndarray, out: np.ndarray, k: Any) -> Kernel:
    tmp = np.empty_like(out)
    return lambda: _softplus_into(x, out, tmp)


def _d_softplus(x: np.ndarray, y: Any, g: np.ndarray, out: np.ndarray, k: Any) -> Kernel:
    scratch = k.sigmoid_scratch(x, out)

    def run() -> None:
        k.sigmoid(x, out, scratch)
        np.multiply(out, g, out=out)

    return run


# Rows marked ``backend=True`` take the plan's kernel module ``k`` (graphcore.kernels: the
# numpy reference or the compiled set, same names) and call its named kernels.


def _sigmoid(x: np.ndarray, out: np.ndarray, k: Any) -> Kernel:
    scratch = k.sigmoid_scratch(x, out)
    return lambda: k.sigmoid(x, out, scratch)


def _relu(x: np.ndarray, out: np.ndarray, k: Any) -> Kernel:
    scratch = k.relu_scratch(x, out)
    return lambda: k.relu(x, out, scratch)


def _d_relu(x: Any, y: np.ndarray, g: np.ndarray, out: np.ndarray, k: Any) -> Kernel:
    scratch = k.relu_grad_scratch(y, g, out)
    return lambda: k.relu_grad(y, g, out, scratch)


def _d_tanh(x: Any, y: np.ndarray, g: np.ndarray, out: np.ndarray) -> Kernel:
    def run() -> None:
        np.multiply(y, y, out=out)
        np.subtract(1, out, out=out)
        np.multiply(out, g, out=out)

    return run


def _d_sigmoid(x: Any, y: np.ndarray, g: np.ndarray, out: np.ndarray) -> Kernel:
    def run() -> None:
        np.subtract(1, y, out=out)
        np.multiply(out, y, out=out)
        np.multiply(out, g, out=out)

    return run


def _leaky(x: np.ndarray, out: np.ndarray, alpha: float) -> Kernel:
    tmp = np.empty_like(out)
    pick = np.maximum if alpha <= 1 else np.minimum

    def run() -> None:
        np.multiply(x, alpha, out=tmp)
        pick(x, tmp, out=out)

    return run


def _d_leaky(x: np.ndarray, y: Any, g: np.ndarray, out: np.ndarray, alpha: float) -> Kernel:
    slope = np.empty_like(out)

    def run() -> None:
        np.greater(x, 0, out=slope)  # {0, 1} -> slope in {alpha, 1}
        np.multiply(slope, 1 - alpha, out=slope)
        np.add(slope, alpha, out=slope)
        np.multiply(g, slope, out=out)

    return run


def _elu(x: np.ndarray, out: np.ndarray, alpha: float) -> Kernel:
    tmp = np.empty_like(out)

    def run() -> None:
        # for x <= 0, max(x, 0) is 0 and tmp holds alpha*(e^x-1); for x > 0, tmp is 0
        np.minimum(x, 0, out=tmp)
        np.expm1(tmp, out=tmp)
        np.multiply(tmp, alpha, out=tmp)
        np.maximum(x, 0, out=out)
        np.add(out, tmp, out=out)

    return run


def _d_elu(x: np.ndarray, y: np.ndarray, g: np.ndarray, out: np.ndarray, alpha: float) -> Kernel:
    slope = np.empty_like(out)
    pos = np.empty(out.shape, np.bool_)

    def run() -> None:
        # x > 0: 1 ; x <= 0: y + alpha
        np.minimum(y, 0, out=slope)
        np.add(slope, alpha, out=slope)
        np.greater(x, 0, out=pos)
        np.copyto(slope, 1, where=pos)
        np.multiply(g, slope, out=out)

    return run


def _phi_into(x: np.ndarray, out: np.ndarray) -> None:
    """``out = Phi(x)``, the standard normal CDF, as 0.5 * (1 + erf(x / sqrt 2))."""
    np.divide(x, _SQRT2, out=out)
    special.erf(out, out=out)
    np.add(out, 1, out=out)
    np.multiply(out, 0.5, out=out)


def _gelu(x: np.ndarray, out: np.ndarray) -> Kernel:
    tmp = np.empty_like(out)

    def run() -> None:
        _phi_into(x, tmp)
        np.multiply(x, tmp, out=out)

    return run


def _d_gelu(x: np.ndarray, y: Any, g: np.ndarray, out: np.ndarray) -> Kernel:
    tmp = np.empty_like(out)

    def run() -> None:
        # d/dx x*Phi(x) = Phi(x) + x*phi(x)
        np.multiply(x, x, out=out)
        np.multiply(out, -0.5, out=out)
        np.exp(out, out=out)
        np.multiply(out, _INV_SQRT2PI, out=out)
        np.multiply(out, x, out=out)
        _phi_into(x, tmp)
        np.add(out, tmp, out=out)
        np.multiply(out, g, out=out)

    return run


def _mish(x: np.ndarray, out: np.ndarray) -> Kernel:
    sp, tmp = np.empty_like(out), np.empty_like(out)

    def run() -> None:
        _softplus_into(x, sp, tmp)
        np.tanh(sp, out=sp)
        np.multiply(x, sp, out=out)

    return run


def _d_mish(x: np.ndarray, y: Any, g: np.ndarray, out: np.ndarray) -> Kernel:
    t1, t2 = np.empty_like(out), np.empty_like(out)

    def run() -> None:
        # mish' = tanh(sp) + x * sech^2(sp) * sigmoid(x), sp = softplus(x)
        _softplus_into(x, out, t1)
        np.tanh(out, out=out)
        np.multiply(out, out, out=t1)
        np.subtract(1, t1, out=t1)
        np.multiply(t1, x, out=t1)
        special.expit(x, out=t2)
        np.multiply(t1, t2, out=t1)
        np.add(out, t1, out=out)
        np.multiply(out, g, out=out)

    return run


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
                  lambda x, y, g, o: lambda: (np.divide(g, y, out=o), np.multiply(o, 0.5, out=o))),
    "Square": Unary(_ufunc(np.square), lambda x, y, g: g * (x * 2.0), "x",
                    _times_g(lambda x, y, o: np.multiply(x, 2, out=o))),
    "Cube": Unary(lambda x, out: lambda: np.power(x, 3, out=out),
                  lambda x, y, g: g * (Square(x) * 3.0), "x",
                  _times_g(lambda x, y, o: (np.square(x, out=o), np.multiply(o, 3, out=o)))),
    "Inverse": Unary(_ufunc(np.reciprocal), lambda x, y, g: -(g * Square(y)), "y",
                     _times_g(lambda x, y, o: (np.square(y, out=o), np.negative(o, out=o)))),
    "InverseSqrt": Unary(
        lambda x, out: lambda: (np.sqrt(x, out=out), np.reciprocal(out, out=out)),
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
    "NormalCdf": Unary(_ufunc(special.ndtr), lambda x, y, g: g * _normal_pdf(x), "x"),
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

    Example:
        >>> UnaryOp("Exp").name, UnaryOp("LeakyRelu", alpha=0.1)
        ('Exp', LeakyRelu(alpha=0.1))
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


# ----- the binary table --------------------------------------------------------------------------


@dataclass(frozen=True)
class Binary:
    """One row of the binary table: the ufunc and the gradient for each operand.

    Example:
        >>> BINARY["HadamardProd"].fwd is np.multiply
        True
    """

    fwd: Callable[..., Any]
    #: ``da(g, a, b, y)`` and ``db(g, a, b, y)``: the gradients for ``a`` and ``b`` (``y`` is
    #: the result), written with graph ops, broadcasting ignored
    da: Callable[[Node, Node, Node, Node], Node]
    db: Callable[[Node, Node, Node, Node], Node]


def _share(a: Node, b: Node, y: Node) -> Node:
    """The share of ``a`` in ``y = max(a, b)`` (or min): 1, 0, or 1/2 on a tie."""
    ma, mb = mask("Eq", a, y), mask("Eq", b, y)
    return ma / (ma + mb)


# fmt: off
BINARY: dict[str, Binary] = {
    "Add": Binary(np.add, lambda g, a, b, y: g, lambda g, a, b, y: g),
    "Sub": Binary(np.subtract, lambda g, a, b, y: g, lambda g, a, b, y: -g),
    "HadamardProd": Binary(np.multiply, lambda g, a, b, y: g * b, lambda g, a, b, y: g * a),
    # d(a/b)/db = -a/b^2 = -y/b
    "HadamardDiv": Binary(np.divide, lambda g, a, b, y: g / b, lambda g, a, b, y: -(g * y / b)),
    "Pow": Binary(np.power, lambda g, a, b, y: g * (b * a ** (b - 1.0)),
                  lambda g, a, b, y: g * (y * Log(a))),
    # ties split evenly, like the Max/Min reductions
    "Maximum": Binary(np.maximum, lambda g, a, b, y: g * _share(a, b, y),
                      lambda g, a, b, y: g * _share(b, a, y)),
    "Minimum": Binary(np.minimum, lambda g, a, b, y: g * _share(a, b, y),
                      lambda g, a, b, y: g * _share(b, a, y)),
}
# fmt: on


def _broadcast(name: str, a: TypeInfo, b: TypeInfo) -> Shape:
    try:
        return broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ShapeError(
            f"{name}: shapes do not broadcast: {describe(a)} and {describe(b)}; "
            f"numpy broadcasting needs each dimension, from the right, to be equal or 1"
        ) from None


class BinaryOp(Op):
    """An elementwise op from the binary table, with numpy broadcasting.

    Example:
        >>> BinaryOp("Add").name
        'Add'
    """

    arity = 2
    inplace = True
    rebuildable = True

    def __init__(self, name: str) -> None:
        self.name = name  # type: ignore[misc]
        self.row = BINARY[name]

    def params(self) -> dict[str, Any]:
        return {}

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        dt = same_dtype(self.name, ins)
        return _broadcast(self.name, *ins), dt

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        a, b, f = xs[0], xs[1], self.row.fwd
        return lambda: f(a, b, out=out)

    def check_bound(self, ins: Sequence[TypeInfo], shapes: Sequence[tuple[int, ...]]) -> None:
        # The gradient of a broadcast is reduced by the operands' static shapes, so a free
        # dimension may not silently broadcast against another free dimension of size 1.
        a, b = ins
        nd = max(len(a.shape), len(b.shape))
        sa = (1,) * (nd - len(a.shape)) + tuple(a.shape)
        sb = (1,) * (nd - len(b.shape)) + tuple(b.shape)
        ca = (1,) * (nd - len(shapes[0])) + tuple(shapes[0])
        cb = (1,) * (nd - len(shapes[1])) + tuple(shapes[1])
        for i in range(nd):
            if sa[i] is None and sb[i] is None and ca[i] != cb[i]:
                raise ShapeError(
                    f"{self.name}: {a.name!r} and {b.name!r} both have a free dimension {i}, "
                    f"bound to different sizes {ca[i]} and {cb[i]}; free dimensions are one "
                    f"batch size. Declare the operand that broadcasts with size 1 (e.g. "
                    f"WithShape(1, ...))"
                )

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        a, b = node.children
        row = self.row
        return [
            row.da(g, a, b, node) if wants[0] else None,
            row.db(g, a, b, node) if wants[1] else None,
        ]


# ----- the comparison table ----------------------------------------------------------------------

#: comparisons have no derivative: Grad refuses them, and derivatives use masks instead
COMPARISONS: dict[str, Callable[..., Any]] = {
    "Lt": np.less,
    "Gt": np.greater,
    "Lte": np.less_equal,
    "Gte": np.greater_equal,
    "Eq": np.equal,
    "Ne": np.not_equal,
}


class CompareOp(Op):
    """``a <op> b`` elementwise; ``Bool`` output, or 0/1 in the operands' dtype (``ret_same``).

    Example:
        >>> CompareOp("Lt", True)
        Lt(ret_same=True)
    """

    arity = 2
    differentiable = False
    inplace = True  # only taken when the output has operand 0's dtype (ret_same)

    def __init__(self, name: str, ret_same: bool) -> None:
        if name not in COMPARISONS:
            raise ValueError(f"unknown comparison {name!r}; use one of {', '.join(COMPARISONS)}")
        self.name = name  # type: ignore[misc]
        self.ret_same = bool(ret_same)
        self._f = COMPARISONS[name]

    def params(self) -> dict[str, Any]:
        return {"ret_same": self.ret_same} if self.ret_same else {}

    def infer(self, ins: Sequence[TypeInfo]) -> tuple[Shape, Dtype]:
        dt = same_dtype(self.name, ins)
        return _broadcast(self.name, *ins), (dt if self.ret_same else Bool)

    def kernel(self, xs: list[np.ndarray], out: np.ndarray, ctx: ExecContext) -> Kernel:
        a, b, f = xs[0], xs[1], self._f
        # a ufunc casts its bool result into a float/int ``out`` chunk by chunk, no full temporary
        return lambda: f(a, b, out=out)


class MaskOp(CompareOp):
    """A comparison as a 0/1 factor inside a derivative (``x > 0`` in ReLU's): piecewise
    constant, so its gradient is zero and ``Grad`` sends none through it.

    Example:
        >>> MaskOp("Gt").name, MaskOp("Gt").zero_gradient
        ('GtMask', True)
    """

    differentiable = True
    zero_gradient = True

    def __init__(self, name: str) -> None:
        super().__init__(name, True)
        self.name = f"{name}Mask"  # type: ignore[misc]

    def params(self) -> dict[str, Any]:
        return {}

    def grad(self, node: Node, g: Node, wants: Sequence[bool]) -> list[Node | None]:
        return [None, None]


def mask(name: str, a: Any, b: Any) -> Node:
    """``a <name> b`` (a comparison of the table: "Gt", "Eq", ...) as 0/1 in the operands'
    dtype, with a zero gradient: the factor derivatives use for piecewise functions.

    Example:
        >>> import graphcore as gc
        >>> m = mask("Gt", gc.NewConstant([-1.0, 2.0]), 0.0); m.op.name, m.dtype
        ('GtMask', Float64)
    """
    return apply_op(MaskOp(name), a, b)


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
    """Mish: x * tanh(softplus(x)).

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


# ----- public functions: binary ------------------------------------------------------------------


def Add(a: Any, b: Any) -> Node:
    """Elementwise a + b with numpy broadcasting (``a + b`` on nodes).

    Example:
        >>> import graphcore as gc; gc.Add(gc.NewConstant([1.0, 2.0]), 1.0).shape
        (2,)
    """
    return apply_op(BinaryOp("Add"), a, b)


def Sub(a: Any, b: Any) -> Node:
    """Elementwise a - b with numpy broadcasting.

    Example:
        >>> import graphcore as gc
        >>> gc.Sub(gc.NewConstant([1.0]), gc.NewConstant([[1.0], [2.0]])).shape
        (2, 1)
    """
    return apply_op(BinaryOp("Sub"), a, b)


def HadamardProd(a: Any, b: Any) -> Node:
    """Elementwise a * b with numpy broadcasting (``a * b`` on nodes).

    Example:
        >>> import graphcore as gc; gc.HadamardProd(gc.NewConstant([1.0, 2.0]), 3.0).shape
        (2,)
    """
    return apply_op(BinaryOp("HadamardProd"), a, b)


def HadamardDiv(a: Any, b: Any) -> Node:
    """Elementwise a / b with numpy broadcasting (``a / b`` on nodes).

    Example:
        >>> import graphcore as gc; gc.HadamardDiv(gc.NewConstant([1.0, 2.0]), 2.0).shape
        (2,)
    """
    return apply_op(BinaryOp("HadamardDiv"), a, b)


def Div(a: Any, b: Any) -> Node:
    """Gorgonia's ``Div``: elementwise division, with numpy broadcasting here.

    Example:
        >>> import graphcore as gc; gc.Div(gc.NewConstant([4.0]), 2.0).op.name
        'HadamardDiv'
    """
    return HadamardDiv(a, b)


def Pow(a: Any, b: Any) -> Node:
    """Elementwise a ** b with numpy broadcasting (``a ** b`` on nodes).

    Example:
        >>> import graphcore as gc; gc.Pow(gc.NewConstant([2.0]), 3.0).op.name
        'Pow'
    """
    return apply_op(BinaryOp("Pow"), a, b)


def Maximum(a: Any, b: Any) -> Node:
    """Elementwise maximum (Gorgonia's ``MaxBetween``); ties split the gradient evenly.

    Example:
        >>> import graphcore as gc; gc.Maximum(gc.NewConstant([1.0]), 2.0).shape
        (1,)
    """
    return apply_op(BinaryOp("Maximum"), a, b)


def Minimum(a: Any, b: Any) -> Node:
    """Elementwise minimum (Gorgonia's ``MinBetween``); ties split the gradient evenly.

    Example:
        >>> import graphcore as gc; gc.Minimum(gc.NewConstant([1.0]), 2.0).shape
        (1,)
    """
    return apply_op(BinaryOp("Minimum"), a, b)


def MaxBetween(a: Any, b: Any) -> Node:
    """Gorgonia's name for :func:`Maximum`: the elementwise maximum of ``a`` and ``b``.

    Example:
        >>> import graphcore as gc; gc.MaxBetween(gc.NewConstant([1.0, 3.0]), 2.0).op.name
        'Maximum'
    """
    return Maximum(a, b)


def MinBetween(a: Any, b: Any) -> Node:
    """Gorgonia's name for :func:`Minimum`: the elementwise minimum of ``a`` and ``b``.

    Example:
        >>> import graphcore as gc; gc.MinBetween(gc.NewConstant([1.0, 3.0]), 2.0).op.name
        'Minimum'
    """
    return Minimum(a, b)


# ----- public functions: comparisons -------------------------------------------------------------


def _flag(name: str, retSame: Any, ret_same: Any) -> bool:
    if ret_same is not None:
        if retSame is not None and bool(retSame) != bool(ret_same):
            raise TypeError(f"{name}: retSame={retSame!r} and ret_same={ret_same!r} disagree")
        retSame = ret_same
    if retSame is None:
        return False
    if not isinstance(retSame, (bool, np.bool_)):
        raise TypeError(
            f"{name}: retSame must be True or False, got {retSame!r}; the call is "
            f"{name}(a, b, retSame) as in Gorgonia"
        )
    return bool(retSame)


def _compare(name: str, a: Any, b: Any, retSame: Any, ret_same: Any) -> Node:
    return apply_op(CompareOp(name, _flag(name, retSame, ret_same)), a, b)


def Lt(a: Any, b: Any, retSame: bool | None = None, *, ret_same: bool | None = None) -> Node:
    """``a < b`` elementwise (numpy broadcasting); ``retSame=True`` gives 0/1 in a's dtype.

    Example:
        >>> import graphcore as gc
        >>> gc.Lt(gc.NewConstant([1.0, 3.0]), 2.0).op.compute(
        ...     [np.array([1.0, 3.0]), np.array(2.0)], gc.ExecContext()).tolist()
        [True, False]
    """
    return _compare("Lt", a, b, retSame, ret_same)


def Gt(a: Any, b: Any, retSame: bool | None = None, *, ret_same: bool | None = None) -> Node:
    """``a > b`` elementwise (numpy broadcasting); ``retSame=True`` gives 0/1 in a's dtype.

    Example:
        >>> import graphcore as gc
        >>> gc.Gt(gc.NewConstant([1.0, 3.0]), 2.0, True).dtype
        Float64
    """
    return _compare("Gt", a, b, retSame, ret_same)


def Lte(a: Any, b: Any, retSame: bool | None = None, *, ret_same: bool | None = None) -> Node:
    """``a <= b`` elementwise (numpy broadcasting); ``retSame=True`` gives 0/1 in a's dtype.

    Example:
        >>> import graphcore as gc
        >>> gc.Lte(gc.NewConstant([[1.0], [2.0]]), gc.NewConstant([1.0, 2.0])).shape
        (2, 2)
    """
    return _compare("Lte", a, b, retSame, ret_same)


def Gte(a: Any, b: Any, retSame: bool | None = None, *, ret_same: bool | None = None) -> Node:
    """``a >= b`` elementwise (numpy broadcasting); ``retSame=True`` gives 0/1 in a's dtype.

    Example:
        >>> import graphcore as gc
        >>> gc.Gte(gc.NewConstant([1.0]), 1.0, ret_same=True).op
        Gte(ret_same=True)
    """
    return _compare("Gte", a, b, retSame, ret_same)


def Eq(a: Any, b: Any, retSame: bool | None = None, *, ret_same: bool | None = None) -> Node:
    """``a == b`` elementwise (numpy broadcasting); ``retSame=True`` gives 0/1 in a's dtype.

    Example:
        >>> import graphcore as gc
        >>> gc.Eq(gc.NewConstant([1.0, 2.0]), 2.0).dtype
        Bool
    """
    return _compare("Eq", a, b, retSame, ret_same)


def Ne(a: Any, b: Any, retSame: bool | None = None, *, ret_same: bool | None = None) -> Node:
    """``a != b`` elementwise (numpy broadcasting); ``retSame=True`` gives 0/1 in a's dtype.

    Example:
        >>> import graphcore as gc
        >>> gc.Ne(gc.NewConstant([1.0, 2.0]), 2.0).dtype
        Bool
    """
    return _compare("Ne", a, b, retSame, ret_same)
