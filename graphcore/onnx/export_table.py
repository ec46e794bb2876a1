"""The export half of the ONNX op table: how each graphcore op is written in ONNX, one row
per op, keyed by the graphcore op name (:data:`EXPORTS`).

A row says what the op becomes (``onnx``, for the docs), which nodes it reads (``operands``,
by default the node's operands; a row reading through a helper node, such as ``Conv2d``
through ``Im2Col``, lists what lies behind it) and ``emit(e, node)``, which writes the ONNX
nodes with the :class:`~graphcore.onnx.export.Exporter` ``e``, naming the last after
``node``.

Example:
    >>> EXPORTS["Rectify"].onnx, EXPORTS["Conv2d"].onnx
    ('Relu', 'Conv')
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..graph import Node
from ..ops.indexing import SliceOp
from ..ops.norm.batch import BatchNormStatsOp
from ..shapes import norm_axes

if TYPE_CHECKING:  # pragma: no cover
    from .export import Exporter

__all__ = ["ExportRow", "EXPORTS", "INT64_MAX", "INT64_MIN"]

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)


def _children(e: Exporter, n: Node) -> Sequence[Node]:
    return n.children


def _params(n: Node) -> dict[str, Any]:
    """The parameters of the op that made ``n`` (rows are looked up by op, so there is one)."""
    if n.op is None:
        raise ValueError(f"node {n.name!r} is an input, not made by an op; it has no parameters")
    return n.op.params()


@dataclass(frozen=True)
class ExportRow:
    """How a graphcore op is written in ONNX.

    Example:
        >>> EXPORTS["HadamardProd"].onnx
        'Mul'
    """

    #: the ONNX op (or composition) it becomes, as the docs list it
    onnx: str
    #: ``emit(e, node)``: write the ONNX nodes; the last is named after ``node``
    emit: Callable[[Exporter, Node], None]
    #: ``operands(e, node)``: the nodes ``emit`` reads (written first)
    operands: Callable[[Exporter, Node], Sequence[Node]] = _children


# ----- export helpers ----------------------------------------------------------------------------


def _same(onnx_op: str, **attrs_of: str) -> ExportRow:
    """A row writing one ONNX op on the same operands; ``attrs_of`` maps ONNX attribute
    names to the op's parameter names."""

    def emit(e: Exporter, n: Node) -> None:
        p = n.op.params() if n.op is not None else {}
        attrs = {k: p[v] for k, v in attrs_of.items()}
        e.add(onnx_op, [e.value(c) for c in n.children], node=n, **attrs)

    return ExportRow(onnx_op, emit)


def _chain(text: str, build: Callable[[Exporter, Node, str], str]) -> ExportRow:
    """A unary row written as a composition: ``build(e, node, x)`` returns the value name of
    the result from intermediate ONNX nodes; an Identity names it after the node."""

    def emit(e: Exporter, n: Node) -> None:
        out = build(e, n, e.value(n.children[0]))
        e.add("Identity", [out], node=n)

    return ExportRow(text, emit)


def _c(e: Exporter, n: Node, v: float) -> str:
    """A scalar constant in ``n``'s dtype."""
    return e.const(v, n.dtype)


def _erf_cdf(e: Exporter, n: Node, x: str) -> str:
    """Phi(x) = (1 + erf(x / sqrt 2)) / 2."""
    t = e.add("Erf", [e.add("Div", [x, _c(e, n, math.sqrt(2.0))])])
    return e.add("Mul", [e.add("Add", [t, _c(e, n, 1.0)]), _c(e, n, 0.5)])


def _gelu(e: Exporter, n: Node) -> None:
    x = e.value(n.children[0])
    if e.opset >= 20:
        e.add("Gelu", [x], node=n)
    else:
        e.add("Mul", [x, _erf_cdf(e, n, x)], node=n)


def _mish(e: Exporter, n: Node) -> None:
    x = e.value(n.children[0])
    if e.opset >= 18:
        e.add("Mish", [x], node=n)
    else:
        e.add("Mul", [x, e.add("Tanh", [e.add("Softplus", [x])])], node=n)


def _compare(onnx_op: str, negate: bool = False) -> ExportRow:
    def emit(e: Exporter, n: Node) -> None:
        a, b = (e.value(c) for c in n.children)
        ret_same = bool(n.op.params().get("ret_same", False)) if n.op is not None else False
        last = not negate and not ret_same
        out = e.add(onnx_op, [a, b], node=n if last else None)
        if negate:
            out = e.add("Not", [out], node=None if ret_same else n)
        if ret_same:
            to = e.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(n.dtype.np))
            e.add("Cast", [out], node=n, to=int(to))

    return ExportRow(f"{onnx_op}{' + Not' if negate else ''} (+ Cast for retSame)", emit)


def _axes_in(e: Exporter, op: str, x: str, axes: Sequence[int] | None, **attrs: Any) -> dict:
    """Reduction axes as ONNX wants them at this opset: an input (ReduceSum from 13, every
    reduction from 18) or an attribute."""
    if axes is None:
        return {"inputs": [x], "attrs": attrs}
    if op == "ReduceSum" or e.opset >= 18:
        return {"inputs": [x, e.ints(axes)], "attrs": attrs}
    return {"inputs": [x], "attrs": {**attrs, "axes": list(axes)}}


def _reduce_call(
    e: Exporter, op: str, x: str, axes: Sequence[int] | None, keep: bool, node: Node | None
) -> str:
    spec = _axes_in(e, op, x, axes, keepdims=int(keep))
    return e.add(op, spec["inputs"], node=node, **spec["attrs"])


def _reduce(onnx_op: str) -> ExportRow:
    def emit(e: Exporter, n: Node) -> None:
        x = n.children[0]
        p = _params(n)
        axes = None if p["axes"] is None else norm_axes(p["axes"], x.ndim)
        _reduce_call(e, onnx_op, e.value(x), axes, bool(p["keepdims"]), n)

    return ExportRow(onnx_op, emit)


def _norm(e: Exporter, n: Node) -> None:
    x = n.children[0]
    p = _params(n)
    axes = None if p["axes"] is None else norm_axes(p["axes"], x.ndim)
    _reduce_call(e, "ReduceL1" if p["p"] == 1 else "ReduceL2", e.value(x), axes,
                 bool(p["keepdims"]), n)


def _softmax(onnx_op: str) -> ExportRow:
    def emit(e: Exporter, n: Node) -> None:
        e.add(onnx_op, [e.value(n.children[0])], node=n, axis=int(_params(n)["axis"]))

    return ExportRow(onnx_op, emit)


def _reshape(e: Exporter, n: Node) -> None:
    # graphcore keeps a free dimension only at position 0, and the operand's there too:
    # ONNX's 0 ("copy the input's dimension") says exactly that
    shape = [0 if d is None else int(d) for d in n.shape]
    e.add("Reshape", [e.value(n.children[0]), e.ints(shape)], node=n)


def _slice(e: Exporter, n: Node) -> None:
    if not isinstance(n.op, SliceOp):
        raise ValueError(f"Slice node {n.name!r} was not made by a SliceOp")
    index = n.op.index
    starts, ends, axes, steps, drop = [], [], [], [], []
    for ax, it in enumerate(index):
        if isinstance(it, slice):
            if it == slice(None):
                continue
            step = 1 if it.step is None else int(it.step)
            start = it.start if it.start is not None else (0 if step > 0 else INT64_MAX)
            stop = it.stop if it.stop is not None else (INT64_MAX if step > 0 else INT64_MIN)
        else:
            step, start = 1, int(it)
            stop = start + 1 if start != -1 else INT64_MAX
            drop.append(ax)
        starts.append(int(start))
        ends.append(int(stop))
        axes.append(ax)
        steps.append(step)
    x = e.value(n.children[0])
    ins = [x, e.ints(starts), e.ints(ends), e.ints(axes), e.ints(steps)]
    out = e.add("Slice", ins, node=None if drop else n)
    if drop:
        e.add("Squeeze", [out, e.ints(drop)], node=n)


def _concat(e: Exporter, n: Node) -> None:
    e.add("Concat", [e.value(c) for c in n.children], node=n, axis=int(_params(n)["axis"]))


def _transpose(e: Exporter, n: Node) -> None:
    axes = _params(n)["axes"]
    perm = list(range(n.ndim))[::-1] if axes is None else [int(a) for a in axes]
    e.add("Transpose", [e.value(n.children[0])], node=n, perm=perm)


def _outer(e: Exporter, n: Node) -> None:
    a, b = n.children
    new_axes = list(range(a.ndim, a.ndim + b.ndim))
    ua = e.add("Unsqueeze", [e.value(a), e.ints(new_axes)]) if new_axes else e.value(a)
    e.add("Mul", [ua, e.value(b)], node=n)


def _batched(e: Exporter, n: Node) -> None:
    p = _params(n)
    names = []
    for c, t in zip(n.children, (p["transA"], p["transB"]), strict=True):
        v = e.value(c)
        if t:
            perm = list(range(c.ndim - 2)) + [c.ndim - 1, c.ndim - 2]
            v = e.add("Transpose", [v], perm=perm)
        names.append(v)
    e.add("MatMul", names, node=n)


def _tensordot(e: Exporter, n: Node) -> None:
    a, b = n.children
    p = _params(n)
    letters = iter("abcdefghijklmnopqrstuvwxyz")
    la = [next(letters) for _ in range(a.ndim)]
    lb = [next(letters) for _ in range(b.ndim)]
    for i, j in zip(p["a_axes"], p["b_axes"], strict=True):
        lb[j] = la[i]
    fa = [la[i] for i in range(a.ndim) if i not in p["a_axes"]]
    fb = [lb[j] for j in range(b.ndim) if j not in p["b_axes"]]
    eq = f"{''.join(la)},{''.join(lb)}->{''.join(fa + fb)}"
    e.add("Einsum", [e.value(a), e.value(b)], node=n, equation=eq)


def _gather(e: Exporter, n: Node) -> None:
    x, idx = n.children
    e.add("Gather", [e.value(x), e.value(idx)], node=n, axis=int(_params(n)["axis"]))


# ----- neural-network rows -----------------------------------------------------------------------


def _im2col(n: Node) -> Node:
    cols = n.children[0]
    if cols.op is None or cols.op.name != "Im2Col":
        raise ValueError(f"Conv2d node {n.name!r} does not read an Im2Col node")
    return cols


def _conv_operands(e: Exporter, n: Node) -> Sequence[Node]:
    return [_im2col(n).children[0], n.children[1]]


def _conv(e: Exporter, n: Node) -> None:
    cols = _im2col(n)
    p = _params(cols)
    (ph, pw), (kh, kw) = p["pad"], p["kernel_shape"]
    x, w = cols.children[0], n.children[1]
    e.add(
        "Conv",
        [e.value(x), e.value(w)],
        node=n,
        kernel_shape=[kh, kw],
        pads=[ph, pw, ph, pw],
        strides=list(p["stride"]),
        dilations=list(p["dilation"]),
        group=1,
    )


def _pool(onnx_op: str, **extra: Any) -> ExportRow:
    def emit(e: Exporter, n: Node) -> None:
        p = _params(n)
        (ph, pw) = p["pad"]
        e.add(
            onnx_op,
            [e.value(n.children[0])],
            node=n,
            kernel_shape=list(p["kernel_shape"]),
            pads=[ph, pw, ph, pw],
            strides=list(p["stride"]),
            **extra,
        )

    return ExportRow(onnx_op, emit)


def _first(e: Exporter, n: Node) -> Sequence[Node]:
    return n.children[:1]


def _dropout(e: Exporter, n: Node) -> None:
    # the ratio is kept so a model read back trains with the same dropout; without a
    # training_mode input, ONNX Dropout is the identity, as an eval-mode run is
    ratio = e.const(float(_params(n)["p"]), n.dtype)
    e.add("Dropout", [e.value(n.children[0]), ratio], node=n)


def _bn_operands(e: Exporter, n: Node) -> Sequence[Node]:
    x, _, gamma, beta = n.children
    return [x, gamma, beta]


def _bn(e: Exporter, n: Node) -> None:
    x, stats, gamma, beta = n.children
    if not isinstance(stats.op, BatchNormStatsOp):
        raise ValueError(f"BatchNorm node {n.name!r} does not read a BatchNormStats node")
    sop = stats.op
    c = x.shape[1]
    stem = gamma.name[: -len("/gamma")] if gamma.name.endswith("/gamma") else n.name
    names = []
    for p in (gamma, beta):
        v = e.value(p)
        if p.shape != (c,):
            v = e.add("Reshape", [v, e.ints([c])])
        names.append(v)
    dt = np.dtype(x.dtype.np)
    mean = e.initializer(np.asarray(sop.running_mean, dtype=dt), f"{stem}/running_mean")
    var = e.initializer(np.asarray(sop.running_var, dtype=dt), f"{stem}/running_var")
    e.add(
        "BatchNormalization",
        [e.value(x), *names, mean, var],
        node=n,
        epsilon=float(sop.eps),
        momentum=1.0 - float(sop.momentum),  # ONNX weighs the running value, not the batch's
    )


def _softmax_ce(e: Exporter, n: Node) -> None:
    z, t = n.children
    p = _params(n)
    ax = norm_axes(p["axis"], z.ndim)[0]
    red = p["reduction"]
    if not t.dtype.is_float:
        if z.ndim < 2:
            raise ValueError("integer targets of a 1-D logits vector")
        zv = e.value(z)
        if ax != 1:  # ONNX puts the classes on axis 1
            perm = [0, ax] + [i for i in range(1, z.ndim) if i != ax] if ax else [1, 0]
            perm += [i for i in range(z.ndim) if i not in perm]
            zv = e.add("Transpose", [zv], perm=perm)
        e.add("SoftmaxCrossEntropyLoss", [zv, e.value(t)], node=n, reduction=red)
        return
    logp = e.add("LogSoftmax", [e.value(z)], axis=ax)
    prod = e.add("Mul", [e.value(t), logp])
    rows = e.add("Neg", [_reduce_call(e, "ReduceSum", prod, [ax], False, None)],
                 node=n if red == "none" else None)
    if red != "none":
        _reduce_call(e, "ReduceMean" if red == "mean" else "ReduceSum", rows, None, False, n)


def _sigmoid_bce(e: Exporter, n: Node) -> None:
    z, t = (e.value(c) for c in n.children)
    red = _params(n)["reduction"]
    # max(z, 0) - z*t + log(1 + e^-|z|): finite for any z
    tail = e.add("Softplus", [e.add("Neg", [e.add("Abs", [z])])])
    per = e.add("Add", [e.add("Sub", [e.add("Relu", [z]), e.add("Mul", [z, t])]), tail],
                node=n if red == "none" else None)
    if red != "none":
        _reduce_call(e, "ReduceMean" if red == "mean" else "ReduceSum", per, None, False, n)


# fmt: off
EXPORTS: dict[str, ExportRow] = {
    # ops that pass operand 0 through (Op.identity)
    "Identity": _same("Identity"),
    # elementwise, one to one
    "Exp": _same("Exp"), "Log": _same("Log"), "Sqrt": _same("Sqrt"), "Neg": _same("Neg"),
    "Abs": _same("Abs"), "Sign": _same("Sign"), "Sin": _same("Sin"), "Cos": _same("Cos"),
    "Tanh": _same("Tanh"), "Sigmoid": _same("Sigmoid"), "Softplus": _same("Softplus"),
    "Rectify": _same("Relu"), "Inverse": _same("Reciprocal"),
    "LeakyRelu": _same("LeakyRelu", alpha="alpha"), "Elu": _same("Elu", alpha="alpha"),
    "Add": _same("Add"), "Sub": _same("Sub"), "HadamardProd": _same("Mul"),
    "HadamardDiv": _same("Div"), "Pow": _same("Pow"), "Maximum": _same("Max"),
    "Minimum": _same("Min"),
    # elementwise, as compositions
    "Square": _chain("Mul(x, x)", lambda e, n, x: e.add("Mul", [x, x])),
    "Cube": _chain("Mul(Mul(x, x), x)", lambda e, n, x: e.add("Mul", [e.add("Mul", [x, x]), x])),
    "InverseSqrt": _chain("Reciprocal(Sqrt(x))",
                          lambda e, n, x: e.add("Reciprocal", [e.add("Sqrt", [x])])),
    "Log2": _chain("Div(Log(x), ln 2)",
                   lambda e, n, x: e.add("Div", [e.add("Log", [x]), _c(e, n, math.log(2.0))])),
    "Log1p": _chain("Log(Add(x, 1))",
                    lambda e, n, x: e.add("Log", [e.add("Add", [x, _c(e, n, 1.0)])])),
    "Expm1": _chain("Sub(Exp(x), 1)",
                    lambda e, n, x: e.add("Sub", [e.add("Exp", [x]), _c(e, n, 1.0)])),
    "NormalCdf": _chain("(1 + Erf(x / sqrt 2)) / 2", _erf_cdf),
    "Gelu": ExportRow("Gelu (opset 20+), else x * (1 + Erf(x / sqrt 2)) / 2", _gelu),
    "Mish": ExportRow("Mish (opset 18+), else x * Tanh(Softplus(x))", _mish),
    # comparisons
    "Lt": _compare("Less"), "Gt": _compare("Greater"), "Lte": _compare("LessOrEqual"),
    "Gte": _compare("GreaterOrEqual"), "Eq": _compare("Equal"), "Ne": _compare("Equal", True),
    # linear algebra
    "MatMul": _same("MatMul"),
    "BatchedMatMul": ExportRow("MatMul (+ Transpose for transA/transB)", _batched),
    "Tensordot": ExportRow("Einsum", _tensordot),
    "OuterProd": ExportRow("Mul(Unsqueeze(a), b)", _outer),
    "Transpose": ExportRow("Transpose", _transpose),
    # reductions and softmax
    "Sum": _reduce("ReduceSum"), "Mean": _reduce("ReduceMean"), "Max": _reduce("ReduceMax"),
    "Min": _reduce("ReduceMin"), "LogSumExp": _reduce("ReduceLogSumExp"),
    "Norm": ExportRow("ReduceL1 / ReduceL2", _norm),
    "SoftMax": _softmax("Softmax"), "LogSoftMax": _softmax("LogSoftmax"),
    # shape and indexing
    "Reshape": ExportRow("Reshape", _reshape),
    "Slice": ExportRow("Slice (+ Squeeze for int indices)", _slice),
    "Concat": ExportRow("Concat", _concat),
    "ByIndices": ExportRow("Gather", _gather),
    # neural network
    "Conv2d": ExportRow("Conv", _conv, _conv_operands),
    "MaxPool2D": _pool("MaxPool"),
    "AvgPool2D": _pool("AveragePool", count_include_pad=1),
    "Dropout": ExportRow("Dropout (the identity at inference)", _dropout, _first),
    "BatchNorm": ExportRow("BatchNormalization (running statistics)", _bn, _bn_operands),
    # losses
    "SoftmaxCrossEntropy": ExportRow(
        "SoftmaxCrossEntropyLoss (class-index targets), else -ReduceSum(t * LogSoftmax(z))",
        _softmax_ce),
    "SigmoidBinaryCrossEntropy": ExportRow(
        "Relu(z) - z * t + Softplus(-Abs(z)), reduced", _sigmoid_bce),
}
# fmt: on
