"""Every op pickles, and its copy behaves as the original.

For each op class reachable from the public op functions (their gradient ops, and the ops of
second derivatives, included): a node's op goes through pickle, a node is built with the copy
on the same operands, and the two give the same values on a tape machine and gradient rules
whose outputs have the same shapes. A last test checks that no op class was missed.
"""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil
from collections.abc import Callable

import numpy as np
import pytest

import graphcore as gc
from graphcore.extend import Op, apply_op, building_in

F64 = np.float64
# how far from the public functions' nodes the gradient rules are followed: 1 reaches the
# gradient ops, 2 the ops of second derivatives (masks, TrainingOnly, ...)
DEPTH = 2


class Inputs:
    """The operands every case builds on, as input nodes of one graph (all Float64)."""

    def __init__(self, g: gc.Graph) -> None:
        r = np.random.default_rng(0)
        self.g = g

        def node(name: str, value: np.ndarray) -> gc.Node:
            return gc.NodeFromAny(g, value, gc.WithName(name))

        self.a = node("a", r.uniform(0.5, 1.5, (3, 4)))  # positive: logs, roots, powers
        self.b = node("b", r.normal(size=(3, 4)))
        self.row = node("row", r.normal(size=(1, 4)))
        self.w = node("w", r.normal(size=(4, 2)))
        self.v = node("v", r.normal(size=4))
        self.u = node("u", r.normal(size=3))
        self.t3 = node("t3", r.normal(size=(2, 3, 4)))
        self.t3b = node("t3b", r.normal(size=(2, 4, 5)))
        self.img = node("img", r.normal(size=(2, 3, 6, 6)))
        self.filt = node("filt", r.normal(size=(4, 3, 3, 3)))
        self.sig = node("sig", r.normal(size=(2, 3, 8)))
        self.filt1 = node("filt1", r.normal(size=(4, 3, 3)))
        self.ch = node("ch", r.uniform(0.5, 1.5, 3))
        self.p = node("p", r.uniform(0.05, 0.95, (3, 4)))
        self.bits = node("bits", (r.random((3, 4)) < 0.5).astype(F64))
        self.onehot = node("onehot", np.eye(4)[[0, 2, 3]])
        self.labels = gc.NewConstant(np.array([0, 2, 3], np.int64))
        lp = r.normal(size=(6, 2, 4))
        self.log_probs = node("log_probs", lp - np.log(np.exp(lp).sum(-1, keepdims=True)))
        self.ctc_targets = gc.NewConstant(np.array([[1, 2, 1], [3, 1, 0]], np.int64))
        self.ctc_in = gc.NewConstant(np.array([6, 5], np.int64))
        self.ctc_out = gc.NewConstant(np.array([3, 2], np.int64))


def _on(name: str, *operands: str, **kw: object) -> Callable[[Inputs], gc.Node]:
    """``gc.<name>`` applied to the named shared operands."""
    return lambda i: getattr(gc, name)(*(getattr(i, o) for o in operands), **kw)


def _both_ways(name: str) -> Callable[[Inputs], list[gc.Node]]:
    """A comparison with a Bool result and with ``retSame``."""
    return lambda i: [getattr(gc, name)(i.a, i.b), getattr(gc, name)(i.a, i.b, True)]


POSITIVE = {"Log", "Log2", "Log1p", "Sqrt", "InverseSqrt"}
UNARY = [
    "Exp", "Log", "Log2", "Log1p", "Expm1", "Sqrt", "Square", "Cube", "Inverse", "InverseSqrt",
    "Sin", "Cos", "Tanh", "Sigmoid", "Softplus", "Neg", "Abs", "Sign", "Ceil", "Floor",
    "Rectify", "Relu", "ReLU", "Gelu", "Mish",
]

# name -> the public function applied to the shared operands (a node or a list of nodes)
CASES: dict[str, Callable[[Inputs], object]] = {
    **{n: _on(n, "a" if n in POSITIVE else "b") for n in UNARY},
    "LeakyRelu": lambda i: gc.LeakyRelu(i.b, 0.1),
    "Elu": lambda i: gc.Elu(i.b, 0.5),
    **{n: _on(n, "a", "b")
       for n in ("Add", "Sub", "HadamardProd", "Maximum", "Minimum", "MaxBetween", "MinBetween")},
    "HadamardDiv": lambda i: gc.HadamardDiv(i.b, i.a),
    "Div": lambda i: gc.Div(i.b, i.a),
    "Pow": lambda i: gc.Pow(i.a, i.b),
    "Add/broadcast": lambda i: gc.Add(i.b, i.row),
    **{n: _both_ways(n) for n in ("Lt", "Gt", "Lte", "Gte", "Eq", "Ne")},
    "SumTo": lambda i: gc.SumTo(i.b, i.row),
    "BroadcastTo": lambda i: gc.BroadcastTo(i.row, i.b),
    "Mul": lambda i: [gc.Mul(i.b, i.w), gc.Mul(i.b, i.v)],
    "MatMul": lambda i: gc.MatMul(i.b, i.w),
    "Transpose": lambda i: gc.Transpose(i.b),
    "OuterProd": lambda i: gc.OuterProd(i.u, i.v),
    "BatchedMatMul": lambda i: gc.BatchedMatMul(i.t3, i.t3b),
    "Tensordot": lambda i: gc.Tensordot(i.t3, i.w, axes=([2], [0])),
    "Sum": lambda i: [gc.Sum(i.b, 1), gc.Sum(i.b)],
    "Mean": lambda i: gc.Mean(i.b, 0, keepdims=True),
    "Max": lambda i: gc.Max(i.b, 1),
    "Min": lambda i: gc.Min(i.b),
    "LogSumExp": lambda i: gc.LogSumExp(i.b, 1),
    "Norm": lambda i: [gc.Norm(i.b, 1), gc.Norm(i.b, axis=0, p=1)],
    "Reshape": lambda i: [gc.Reshape(i.b, (4, 3)), gc.Reshape(gc.Transpose(i.b), (12,))],
    "Ravel": lambda i: gc.Ravel(i.b),
    "Slice": lambda i: [gc.Slice(i.b, gc.S(1), gc.S(0, 3)), i.b[:, 1:3]],
    "At": lambda i: gc.At(i.b, 1, 2),
    "Concat": lambda i: gc.Concat(1, i.a, i.b),
    "Unconcat": lambda i: gc.Unconcat(i.b, 1, 2),
    # the gradient of several slices of one node is one SlicesGrad node
    "Unstack": lambda i: [*gc.Unstack(i.b, 1),
                          *gc.Grad(gc.Sum(gc.Concat(0, *gc.Unstack(i.b, 0))), i.b)],
    "ByIndices": lambda i: gc.ByIndices(i.b, gc.NewConstant(np.array([2, 0, 2], np.int64))),
    "SoftMax": lambda i: [gc.SoftMax(i.b), gc.Softmax(i.b, 0)],
    "LogSoftMax": lambda i: [gc.LogSoftMax(i.b), gc.LogSoftmax(i.b, 0)],
    "Sparsemax": lambda i: gc.Sparsemax(i.b),
    "Conv2d": lambda i: gc.Conv2d(i.img, i.filt, pad=1, stride=2),
    "Conv1d": lambda i: gc.Conv1d(i.sig, i.filt1, pad=1),
    "Im2Col": lambda i: gc.Im2Col(i.img, (3, 3), pad=1),
    "MaxPool2D": lambda i: gc.MaxPool2D(i.img),
    "AvgPool2D": lambda i: [gc.AvgPool2D(i.img), gc.AveragePool2D(i.img, 3, 1, 3)],
    "MaxPool1D": lambda i: gc.MaxPool1D(i.sig),
    "AveragePool1D": lambda i: [gc.AveragePool1D(i.sig), gc.AvgPool1D(i.sig, 3, 0, 1)],
    "GlobalAveragePool2D": lambda i: gc.GlobalAveragePool2D(i.img),
    "Upsample2D": lambda i: gc.Upsample2D(i.img, 2),
    "Dropout": lambda i: [gc.Dropout(i.b, 0.5), gc.Dropout(i.b, 0.3, np.random.default_rng(1))],
    "BatchNorm": lambda i: [gc.BatchNorm(i.t3, i.ch, i.ch), gc.BatchNorm(i.img, i.ch, i.ch)],
    "GroupNorm": lambda i: gc.GroupNorm(i.img, i.ch, i.ch, 3),
    "SoftmaxCrossEntropy": lambda i: [
        gc.SoftmaxCrossEntropy(i.b, i.onehot),
        gc.SoftmaxCrossEntropy(i.b, i.labels, reduction="sum"),
        gc.SoftmaxCrossEntropy(i.b, i.onehot, axis=0, reduction="none"),
    ],
    "SigmoidBinaryCrossEntropy": lambda i: [
        gc.SigmoidBinaryCrossEntropy(i.b, i.bits),
        gc.SigmoidBinaryCrossEntropy(i.b, i.p, reduction="none"),
    ],
    "BinaryXent": lambda i: [gc.BinaryXent(i.p, i.bits), gc.BinaryXent(i.p, i.bits, "mean")],
    "CTCLoss": lambda i: [
        gc.CTCLoss(i.log_probs, i.ctc_targets, i.ctc_in, i.ctc_out),
        gc.CTCLoss(i.log_probs, i.ctc_targets, i.ctc_in, i.ctc_out, reduction="none"),
    ],
    "UniformRandomNode": lambda i: gc.UniformRandomNode(i.g, gc.Float64, -1.0, 1.0, 3, 4),
    "GaussianRandomNode": lambda i: gc.GaussianRandomNode(i.g, gc.Float64, 0.0, 2.0, 3, 4),
    "BinomialRandomNode": lambda i: gc.BinomialRandomNode(i.g, gc.Float64, 3, 0.5, 3, 4),
    "OneHotVector": lambda i: gc.OneHotVector(2, 5),
    "ConvType": lambda i: gc.ConvType(i.b, gc.Float32),
    "KeepDims": lambda i: gc.KeepDims(i.b, False, lambda t: gc.Sum(t, 1)),
    "ReduceAdd": lambda i: gc.ReduceAdd([i.a, i.b, i.b]),
    "ReduceMul": lambda i: gc.ReduceMul([i.a, i.b]),
    "SizeOf": lambda i: gc.SizeOf(1, i.b),
    "DiagFlat": lambda i: gc.DiagFlat(i.v),
    **{n: _on(n, "b", "v", rightAxes=[0])
       for n in ("BroadcastAdd", "BroadcastSub", "BroadcastHadamardProd",
                 "BroadcastHadamardDiv", "BroadcastLt", "BroadcastGt", "BroadcastLte",
                 "BroadcastGte", "BroadcastEq", "BroadcastNe")},
    "BroadcastPow": lambda i: gc.BroadcastPow(i.a, i.v, rightAxes=[0]),
    "Broadcast": lambda i: list(gc.Broadcast(i.b, i.v, gc.NewBroadcastPattern(None, [0]))),
    "Auto": lambda i: gc.Auto(gc.BroadcastHadamardProd, i.b, i.row),
    "Set": lambda i: gc.Set(i.a, i.b),
}


def _op_nodes(outputs: object) -> list[gc.Node]:
    """Every op node the outputs were built from, operands first."""
    outs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    order: list[gc.Node] = []
    seen: set[int] = set()

    def visit(n: gc.Node) -> None:
        if id(n) in seen:
            return
        seen.add(id(n))
        for c in n.children:
            visit(c)
        if n.op is not None:
            order.append(n)

    for o in outs:
        visit(o)
    return order


def _run(g: gc.Graph, nodes: list[gc.Node], given: list[gc.Node]) -> list[np.ndarray]:
    """The values of ``nodes`` from one tape machine run that reads the op nodes ``given`` as
    they are, with the random stream seeded the same for every call."""
    prog = gc.CompileFunction(g, given, nodes)
    gc.SetSeed(5)
    vm = gc.NewTapeMachine(g, gc.WithPrecompiled(prog))
    vm.run_all()
    return [np.array(n.value, copy=True) for n in nodes]


def _pin_operands(g: gc.Graph, node: gc.Node) -> list[gc.Node]:
    """Compute ``node``'s op operands once and pin their values, so the original and the copy
    read the same arrays (a random operand would otherwise draw twice)."""
    kids = [c for c in dict.fromkeys(node.children) if c.op is not None]
    if kids:
        for c, value in zip(kids, _run(g, kids, []), strict=True):
            gc.UnsafeLet(c, value)
    return kids


def _rule(op: Op, node: gc.Node) -> tuple[str, list[gc.Node | None]]:
    """What ``op``'s gradient rule builds for ``node`` (its expansion, for a fused op): the
    nodes, or the type of the error it raises."""
    try:
        with building_in(node.graph):
            expanded = op.expand(node)
            if expanded is not None:
                return "builds", [expanded]
            ones = gc.NewConstant(np.ones(node.shape), dtype=node.dtype)
            wants = [c.dtype.is_float and i not in op.shape_only
                     for i, c in enumerate(node.children)]
            return "builds", list(op.grad(node, ones, wants))
    except Exception as e:  # noqa: BLE001 - the copy must fail the same way
        return f"raises {type(e).__name__}", []


def _check_round_trip(node: gc.Node) -> list[gc.Node]:
    """Pickle ``node``'s op, rebuild the node with the copy, compare; the nodes the original's
    gradient rule built (to follow further)."""
    g, op = node.graph, node.op
    copy = pickle.loads(pickle.dumps(op))
    assert type(copy) is type(op) and repr(copy) == repr(op), op
    given = _pin_operands(g, node)
    with building_in(g):
        twin = apply_op(copy, *node.children)
    assert (twin.shape, twin.dtype) == (node.shape, node.dtype), op
    (want,) = _run(g, [node], given)
    (got,) = _run(g, [twin], given)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0, equal_nan=True, err_msg=repr(op))
    if not op.differentiable or op.zero_gradient or node.dtype == gc.Bool:
        return []
    how, built = _rule(op, node)
    how2, built2 = _rule(copy, twin)
    assert how == how2, (op, how, how2)
    shapes = [None if b is None else b.shape for b in built]
    assert shapes == [None if b is None else b.shape for b in built2], op
    return [b for b in built if b is not None]


def _key(op: Op) -> tuple:
    return type(op), op.name, repr(op)


def _check_case(name: str, seen: dict[tuple, str]) -> None:
    gc.SetSeed(0)
    g = gc.NewGraph(name.replace("/", "_"))
    frontier = _op_nodes(CASES[name](Inputs(g)))
    for _ in range(DEPTH + 1):
        nxt: list[gc.Node] = []
        for n in frontier:
            if _key(n.op) in seen:
                continue
            seen[_key(n.op)] = name
            nxt += _op_nodes(_check_round_trip(n))
        frontier = nxt


@pytest.mark.parametrize("name", sorted(CASES))
def test_op_round_trips_through_pickle(name):
    _check_case(name, {})


def _op_classes() -> set[type]:
    """Every concrete op class of graphcore.ops (shared bases left out)."""
    out = set()
    for info in pkgutil.walk_packages(gc.ops.__path__, "graphcore.ops."):
        module = importlib.import_module(info.name)
        for cls in vars(module).values():
            if not (inspect.isclass(cls) and issubclass(cls, Op)) or cls is Op:
                continue
            if cls.kernel is Op.kernel and cls.view_of is Op.view_of:
                continue  # a shared base (_PoolOp, _ConcatWindow)
            out.add(cls)
    return out


# public names of graphcore.ops that build no node themselves, or that CASES calls under
# another case's name (aliases)
NOT_OP_FUNCTIONS = {"Op", "TypeInfo", "ExecContext", "apply_op", "S", "BroadcastPattern",
                    "NewBroadcastPattern"}
CALLED_IN_OTHER_CASES = {"Softmax", "LogSoftmax", "AveragePool2D", "AvgPool1D"}


def test_every_public_op_function_has_a_case():
    missing = set(gc.ops.__all__) - set(CASES) - NOT_OP_FUNCTIONS - CALLED_IN_OTHER_CASES
    assert not missing, f"add a case to CASES for {sorted(missing)}"


def test_every_op_class_is_reached():
    seen: dict[tuple, str] = {}
    for name in CASES:
        _check_case(name, seen)
    reached = {key[0] for key in seen}
    missed = sorted(c.__qualname__ for c in _op_classes() - reached)
    assert not missed, f"no case reaches {missed}; add one to CASES"
    # every row of the elementwise tables went through pickle
    names = {key[1] for key in seen}
    assert set(gc.ops.elementwise.UNARY) <= names
    assert set(gc.ops.elementwise.BINARY) <= names
