"""The import half of the ONNX op table: how each ONNX op is read as graphcore ops, one row
per op, keyed by the ONNX op type (:data:`IMPORTS`). The rows of the shape and indexing ops
build in :mod:`graphcore.onnx.import_shape`; what every row reads of a node's operands is in
:mod:`graphcore.onnx.import_operands`.

A row says what the op becomes (``graphcore``, for the docs) and ``build(ld, p, a)``, which
returns the outputs of ONNX node ``p`` (attributes ``a``, a dict) built with the
:class:`~graphcore.onnx.importer.Loader` ``ld``: graph nodes, or numpy arrays for values
known while loading (shape arithmetic), which later rows read as constants or parameters.
Outputs a row does not return (MaxPool's Indices, Dropout's mask) are unsupported, and an
error names them if the model reads them.

Example:
    >>> IMPORTS["Gemm"].graphcore, IMPORTS["Relu"].graphcore
    ('MatMul, Add (Transpose for transA/transB)', 'Rectify')
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..graph import Node
from ..ops import (
    Abs,
    Add,
    AvgPool2D,
    BatchedMatMul,
    BatchNorm,
    Conv2d,
    Cos,
    Dropout,
    Elu,
    Eq,
    Exp,
    Gelu,
    Gt,
    Gte,
    HadamardDiv,
    HadamardProd,
    Inverse,
    InverseSqrt,
    LeakyRelu,
    Log,
    LogSoftMax,
    LogSumExp,
    Lt,
    Lte,
    MatMul,
    Max,
    Maximum,
    MaxPool2D,
    Mean,
    Min,
    Minimum,
    Mish,
    Ne,
    Neg,
    Norm,
    Pow,
    Rectify,
    Reshape,
    Sigmoid,
    Sign,
    Sin,
    SoftMax,
    SoftmaxCrossEntropy,
    Softplus,
    Sqrt,
    Square,
    Sub,
    Sum,
    Tanh,
    Tensordot,
    Transpose,
)
from ..ops.base import apply_op
from ..ops.elementwise import CompareOp, NormalCdf
from ..shapes import size_of
from .import_operands import Build, Value, _all_static, _arg, _axes, _ints, _x
from .import_shape import (
    _concat,
    _constant,
    _constant_of_shape,
    _flatten,
    _gather,
    _identity,
    _reshape,
    _shape,
    _slice,
    _squeeze,
    _transpose,
    _unsqueeze,
)

if TYPE_CHECKING:  # pragma: no cover
    from .importer import Loader

__all__ = ["ImportRow", "IMPORTS"]


@dataclass(frozen=True)
class ImportRow:
    """How an ONNX op is read as graphcore ops.

    Example:
        >>> IMPORTS["Conv"].graphcore
        'Conv2d (+ Add of the bias)'
    """

    #: the graphcore ops it becomes, as the docs list them
    graphcore: str
    #: ``build(ld, p, a)``: the node's outputs, built from its inputs
    build: Build


# ----- elementwise -------------------------------------------------------------------------------


def _unary(fn: Callable[[Any], Node], name: str) -> ImportRow:
    return ImportRow(name, lambda ld, p, a: [fn(_x(ld, p))])


_FOLD: dict[str, Callable[..., Any]] = {
    "Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Pow": np.power,
    "Max": np.maximum, "Min": np.minimum, "Sum": np.add,
}


def _fold_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.dtype.kind in "iu" and np.asarray(b).dtype.kind in "iu":
        return np.trunc(np.true_divide(a, b)).astype(a.dtype)  # ONNX truncates integer division
    return np.divide(a, b)


def _binary(onnx_op: str, fn: Callable[[Any, Any], Node], name: str) -> ImportRow:
    def build(ld: Loader, p: Any, a: dict[str, Any]) -> list[Value]:
        known = _all_static(ld, p)
        if known is not None:  # shape arithmetic, done now
            f = _fold_div if onnx_op == "Div" else _FOLD[onnx_op]
            out = known[0]
            for k in known[1:]:
                out = f(out, k)
            return [np.asarray(out)]
        args = [_arg(ld, n) for n in p.input]
        res = args[0]
        for b in args[1:]:
            res = fn(res, b)
        return [res if isinstance(res, Node) else ld.node(p.input[0])]

    return ImportRow(name, build)


def _compare(fn: Callable[..., Node], name: str) -> ImportRow:
    return ImportRow(name, lambda ld, p, a: [fn(_arg(ld, p.input[0]), _arg(ld, p.input[1]))])


def _not(ld: Loader, p: Any, a: dict[str, Any]) -> list[Value]:
    x = _x(ld, p)
    if x.op is not None and x.op.name == "Eq" and not x.op.params():
        lhs, rhs = x.children
        return [Ne(lhs, rhs)]
    raise ld.error(p, "graphcore has no logical Not; only Not(Equal(a, b)) is read (as Ne)")


def _cast(ld: Loader, p: Any, a: dict[str, Any]) -> list[Value]:
    to = np.dtype(ld.onnx.helper.tensor_dtype_to_np_dtype(int(a["to"])))
    arr = ld.static(p.input[0])
    if arr is not None and p.input[0] not in ld.nodes:
        return [arr.astype(to)]
    x = _x(ld, p)
    if x.dtype.np == to:
        return [x]
    if isinstance(x.op, CompareOp) and not x.op.params() and x.children[0].dtype.np == to:
        # a comparison cast to its operands' type is graphcore's retSame
        return [apply_op(CompareOp(x.op.name, True), *x.children)]
    raise ld.error(p, f"cannot cast {x.describe()} to {to}: graphcore does not cast inside a "
                      f"graph (give the input the dtype the model needs)")


def _erf(ld: Loader, p: Any, a: dict[str, Any]) -> list[Value]:
    # erf(y) = 2 * Phi(y * sqrt 2) - 1, Phi the standard normal CDF
    return [NormalCdf(_x(ld, p) * math.sqrt(2.0)) * 2.0 - 1.0]


def _gelu(ld: Loader, p: Any, a: dict[str, Any]) -> list[Value]:
    if a.get("approximate", "none") != "none":
        raise ld.error(p, "only the exact Gelu (approximate='none') is supported")
    return [Gelu(_x(ld, p))]


# ----- linear algebra ----------------------------------------------------------------------------


def _matmul(ld: Loader, p: Any, a: dict[str, Any]) -> list[Value]:
    known = _all_static(ld, p)
    if known is not None:
        return [np.matmul(*known)]
    x, w = _x(ld, p, 0), _x(ld, p, 1)
    if x.ndim <= 2 and w.ndim <= 2:
        return [MatMul(x, w)]
    if x.ndim >= 3 and w.ndim == 2:  # a linear layer on a sequence: contract the last axis
        return [Tensordot(x, w, ([x.ndim - 1], [0]))]
    if x.ndim == w.ndim:
        return [BatchedMatMul(x, w)]
    raise ld.error(p, f"MatMul of {x.describe()} and {w.describe()} is not supported "
                      f"(ranks must be equal, or the second operand a matrix)")


def _gemm(ld: Loader, p: Any, a: dict[str, Any]) -> list[Value]:
    x, w = _x(ld, p, 0), _x(ld, p, 1)
    if a.get("transA", 0):
        x = Transpose(x)
    if a.get("transB", 0):
        w = Transpose(w)
    y = MatMul(x, w)
    alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
    if alpha != 1.0:
        y = y * alpha
    if ld.has(p, 2) and beta != 0.0:
        c = ld.node(p.input[2])
        y = y + (c * beta if beta != 1.0 else c)
    return [y]


def _einsum(ld: Loader, p: Any, a: dict[str, Any]) -> list[Value]:
    eq = str(a["equation"]).replace(" ", "")
    m = re.fullmatch(r"([a-z]+),([a-z]+)->([a-z]*)", eq)
    if m is None or len(p.input) != 2:
        raise ld.error(p, f"only two-operand contractions are supported, got {eq!r}")
    la, lb, lo = m.groups()
    shared = [c for c in la if c in lb]
    free = [c for c in la if c not in shared] + [c for c in lb if c not in shared]
    if len(set(la)) != len(la) or len(set(lb)) != len(lb) or list(lo) != free:
        raise ld.error(p, f"{eq!r} is not a tensordot (a's free axes, then b's, in order)")
    axes = ([la.index(c) for c in shared], [lb.index(c) for c in shared])
    return [Tensordot(_x(ld, p, 0), _x(ld, p, 1), axes)]


# ----- neural network ----------------------------------------------------------------------------


def _image(ld: Loader, p: Any) -> Node:
    x = _x(ld, p)
    if x.ndim != 4:
        raise ld.error(p, f"only 2-D ops on NCHW images are supported, got {x.describe()}")
    return x


def _pads(ld: Loader, p: Any, a: dict[str, Any], x: Node, k: tuple[int, int],
          s: tuple[int, int], d: tuple[int, int]) -> tuple[int, int]:
    auto = a.get("auto_pad", "NOTSET") or "NOTSET"
    if auto == "VALID":
        return (0, 0)
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        out = []
        for size, kk, ss, dd in zip(x.shape[2:], k, s, d, strict=True):
            total = max((math.ceil(size / ss) - 1) * ss + (kk - 1) * dd + 1 - size, 0)
            if total % 2:
                raise ld.error(p, f"auto_pad={auto} pads {total} in all, unevenly; graphcore "
                                  f"pads each side equally")
            out.append(total // 2)
        return (out[0], out[1])
    t, left, b, r = _ints(a.get("pads", [0, 0, 0, 0]))
    if (t, left) != (b, r):
        raise ld.error(p, f"pads {[t, left, b, r]} differ between the two sides of an axis; "
                          f"graphcore pads each side equally")
    return (t, left)


def _window(ld: Loader, p: Any, a: dict[str, Any], x: Node, k: tuple[int, int]) -> tuple:
    s = tuple(_ints(a.get("strides", [1, 1])))
    d = tuple(_ints(a.get("dilations", [1, 1])))
    pad = _pads(ld, p, a, x, k, s, d)  # type: ignore[arg-type]
    if a.get("ceil_mode", 0):
        for size, kk, ss, dd, pp in zip(x.shape[2:], k, s, d, pad, strict=True):
            if (size + 2 * pp - (kk - 1) * dd - 1) % ss:
                raise ld.error(p, "ceil_mode=1 gives a larger output than graphcore's floor "
                                  "rounding for this input size")
    return pad, s, d


def _conv(ld: Loader, p: Any, a: dict[str, Any]) -> list[Value]:
    x, w = _image(ld, p), _x(ld, p, 1)
    if int(a.get("group", 1)) != 1:
        raise ld.error(p, f"group={a['group']} (grouped or depthwise convolution) is not "
                          f"supported; graphcore's Conv2d has one group")
    k = (int(w.shape[2]), int(w.shape[3]))
    pad, s, d = _window(ld, p, a, x, k)
    y = Conv2d(x, w, pad=pad, stride=s, dilation=d)
    if ld.has(p, 2):
        y = y + Reshape(ld.node(p.input[2]), (1, w.shape[0], 1, 1))
    return [y]


def _pool(fn: Callable[..., Node], include_pad: bool) -> Build:
    def build(ld: Loader, p: Any, a: dict[str, Any]) -> list[Value]:
        x = _image(ld, p)
        k = tuple(_ints(a["kernel_shape"]))
        pad, s, d = _window(ld, p, a, x, k)  # type: ignore[arg-type]
        if d != (1, 1):
            raise ld.error(p, f"dilations {list(d)} are not supported for pooling")
        if include_pad and any(pad) and not a.get("count_include_pad", 0):
            raise ld.error(p, "count_include_pad=0 with padding: graphcore's average pooling "
                              "counts the padding in the divisor (count_include_pad=1)")
        return [fn(x, kernel=k, pad=pad, stride=s)]

    return build


def _global(fn: Callable[..., Node]) -> Build:
    def build(ld: Loader, p: Any, a: dict[str, Any]) -> list[Value]:
        x = _image(ld, p)
        hw = (int(x.shape[2]), int(x.shape[3]))
        return [fn(x, kernel=hw, stride=hw)]

    return build


def _batchnorm(ld: Loader, p: Any, a: dict[str, Any]) -> list[Value]:
    x = _x(ld, p)
    dt = x.dtype.np
    mean = np.array(ld.need_static(p, 3, "running mean"), dtype=dt)
    var = np.array(ld.need_static(p, 4, "running variance"), dtype=dt)
    momentum = 1.0 - float(a.get("momentum", 0.9))  # ONNX weighs the running value
    eps = float(a.get("epsilon", 1e-5))
    return [BatchNorm(x, ld.node(p.input[1]), ld.node(p.input[2]), mean, var, momentum, eps)]


def _dropout(ld: Loader, p: Any, a: dict[str, Any]) -> list[Value]:
    if ld.opset < 12:
        ratio = float(a.get("ratio", 0.5))
    else:
        ratio = float(ld.need_static(p, 1, "ratio")) if ld.has(p, 1) else 0.5
    x = _x(ld, p)
    return [Dropout(x, ratio) if ratio > 0 else x]


def _layernorm(ld: Loader, p: Any, a: dict[str, Any]) -> list[Value]:
    x = _x(ld, p)
    axis = int(a.get("axis", -1)) % x.ndim
    axes = tuple(range(axis, x.ndim))
    d = x - Mean(x, axis=axes, keepdims=True)
    var = Mean(Square(d), axis=axes, keepdims=True)
    y = d * InverseSqrt(var + float(a.get("epsilon", 1e-5))) * ld.node(p.input[1])
    return [y + ld.node(p.input[2]) if ld.has(p, 2) else y]


def _softmax(fn: Callable[..., Node]) -> Build:
    def build(ld: Loader, p: Any, a: dict[str, Any]) -> list[Value]:
        x = _x(ld, p)
        if ld.opset >= 13:
            return [fn(x, int(a.get("axis", -1)))]
        # before opset 13: softmax of the input flattened to 2-D at `axis` (default 1)
        axis = int(a.get("axis", 1)) % x.ndim
        if axis == x.ndim - 1:
            return [fn(x, -1)]
        lead, trail = x.shape[:axis], x.shape[axis:]
        if None in trail or (None in lead and lead != (None,)):
            raise ld.error(p, f"cannot flatten {x.describe()} at axis {axis} for the "
                              f"opset-{ld.opset} softmax")
        rows = None if None in lead else size_of(lead)
        flat = fn(Reshape(x, (rows, size_of(trail))), -1)
        return [Reshape(flat, x.shape)]

    return build


def _sce_loss(ld: Loader, p: Any, a: dict[str, Any]) -> list[Value]:
    if ld.has(p, 2) or "ignore_index" in a:
        raise ld.error(p, "class weights and ignore_index are not supported")
    z, t = _x(ld, p, 0), _x(ld, p, 1)
    return [SoftmaxCrossEntropy(z, t, axis=1, reduction=str(a.get("reduction", "mean")))]


# ----- reductions --------------------------------------------------------------------------------


def _reduce(fn: Callable[..., Node], since: int, **extra: Any) -> Build:
    def build(ld: Loader, p: Any, a: dict[str, Any]) -> list[Value]:
        axes = _axes(ld, p, a, since)
        x = _x(ld, p)
        if not axes:
            if a.get("noop_with_empty_axes", 0):
                return [x]
            axes = None
        return [fn(x, axis=None if axes is None else tuple(axes),
                   keepdims=bool(a.get("keepdims", 1)), **extra)]

    return build


def _sum_of(x: Any, axis: Any, keepdims: bool) -> Node:
    return Sum(x, axis=axis, keepdims=keepdims)


# fmt: off
IMPORTS: dict[str, ImportRow] = {
    # elementwise
    "Relu": _unary(Rectify, "Rectify"), "Sigmoid": _unary(Sigmoid, "Sigmoid"),
    "Tanh": _unary(Tanh, "Tanh"), "Exp": _unary(Exp, "Exp"), "Log": _unary(Log, "Log"),
    "Sqrt": _unary(Sqrt, "Sqrt"), "Neg": _unary(Neg, "Neg"), "Abs": _unary(Abs, "Abs"),
    "Sign": _unary(Sign, "Sign"), "Sin": _unary(Sin, "Sin"), "Cos": _unary(Cos, "Cos"),
    "Reciprocal": _unary(Inverse, "Inverse"), "Softplus": _unary(Softplus, "Softplus"),
    "Mish": _unary(Mish, "Mish"),
    "LeakyRelu": ImportRow("LeakyRelu", lambda ld, p, a: [
        LeakyRelu(_x(ld, p), float(a.get("alpha", 0.01)))]),
    "Elu": ImportRow("Elu", lambda ld, p, a: [Elu(_x(ld, p), float(a.get("alpha", 1.0)))]),
    "Gelu": ImportRow("Gelu", _gelu),
    "Erf": ImportRow("2 * NormalCdf(x * sqrt 2) - 1", _erf),
    "Add": _binary("Add", Add, "Add"), "Sub": _binary("Sub", Sub, "Sub"),
    "Mul": _binary("Mul", HadamardProd, "HadamardProd"),
    "Div": _binary("Div", HadamardDiv, "HadamardDiv"), "Pow": _binary("Pow", Pow, "Pow"),
    "Max": _binary("Max", Maximum, "Maximum"), "Min": _binary("Min", Minimum, "Minimum"),
    "Sum": _binary("Sum", Add, "Add"),
    "Less": _compare(Lt, "Lt"), "Greater": _compare(Gt, "Gt"),
    "LessOrEqual": _compare(Lte, "Lte"), "GreaterOrEqual": _compare(Gte, "Gte"),
    "Equal": _compare(Eq, "Eq"), "Not": ImportRow("Ne (of an Equal)", _not),
    "Cast": ImportRow("the same node (or a comparison with retSame)", _cast),
    "Identity": ImportRow("the same node", _identity),
    # linear algebra
    "MatMul": ImportRow("MatMul, Tensordot or BatchedMatMul", _matmul),
    "Gemm": ImportRow("MatMul, Add (Transpose for transA/transB)", _gemm),
    "Einsum": ImportRow("Tensordot", _einsum),
    "Transpose": ImportRow("Transpose", _transpose),
    # neural network
    "Conv": ImportRow("Conv2d (+ Add of the bias)", _conv),
    "MaxPool": ImportRow("MaxPool2D", _pool(MaxPool2D, False)),
    "AveragePool": ImportRow("AvgPool2D", _pool(AvgPool2D, True)),
    "GlobalAveragePool": ImportRow("AvgPool2D over the whole image", _global(AvgPool2D)),
    "GlobalMaxPool": ImportRow("MaxPool2D over the whole image", _global(MaxPool2D)),
    "BatchNormalization": ImportRow("BatchNorm", _batchnorm),
    "Dropout": ImportRow("Dropout", _dropout),
    "LayerNormalization": ImportRow("Mean, Sub, Square, InverseSqrt, HadamardProd, Add",
                                    _layernorm),
    "Softmax": ImportRow("SoftMax", _softmax(SoftMax)),
    "LogSoftmax": ImportRow("LogSoftMax", _softmax(LogSoftMax)),
    "SoftmaxCrossEntropyLoss": ImportRow("SoftmaxCrossEntropy", _sce_loss),
    # shape and indexing
    "Reshape": ImportRow("Reshape", _reshape), "Flatten": ImportRow("Reshape", _flatten),
    "Squeeze": ImportRow("Reshape", _squeeze), "Unsqueeze": ImportRow("Reshape", _unsqueeze),
    "Concat": ImportRow("Concat", _concat),
    "Gather": ImportRow("Slice (scalar index) or ByIndices", _gather),
    "Slice": ImportRow("Slice", _slice),
    "Shape": ImportRow("(computed while loading)", _shape),
    "Constant": ImportRow("a constant", _constant),
    "ConstantOfShape": ImportRow("a constant", _constant_of_shape),
    # reductions
    "ReduceSum": ImportRow("Sum", _reduce(_sum_of, 13)),
    "ReduceMean": ImportRow("Mean", _reduce(Mean, 18)),
    "ReduceMax": ImportRow("Max", _reduce(Max, 18)),
    "ReduceMin": ImportRow("Min", _reduce(Min, 18)),
    "ReduceLogSumExp": ImportRow("LogSumExp", _reduce(LogSumExp, 18)),
    "ReduceL1": ImportRow("Norm (p=1)", _reduce(Norm, 18, p=1)),
    "ReduceL2": ImportRow("Norm (p=2)", _reduce(Norm, 18, p=2)),
}
# fmt: on
