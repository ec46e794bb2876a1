"""All ops, one module per family; each public op is re-exported here and from ``graphcore``.

Importing the package also gives graph nodes their Python operators
(``graphcore.operators``) and registers the build-time rewrites of :mod:`graphcore.rewrite`.
"""

import sys

from .. import operators
from .. import rewrite as _rewrite  # noqa: F401 - registers the rewrites with apply_op
from ..graph import Node
from .activation import LogSoftMax, LogSoftmax, SoftMax, Softmax, Sparsemax
from .assign import Set
from .base import ExecContext, Op, TypeInfo, apply_op
from .broadcast import (
    Auto,
    Broadcast,
    BroadcastAdd,
    BroadcastEq,
    BroadcastGt,
    BroadcastGte,
    BroadcastHadamardDiv,
    BroadcastHadamardProd,
    BroadcastLt,
    BroadcastLte,
    BroadcastNe,
    BroadcastPattern,
    BroadcastPow,
    BroadcastSub,
    NewBroadcastPattern,
)
from .cast import ConvType
from .conv import Conv1d, Conv2d
from .ctc import CTCLoss
from .diag import DiagFlat
from .dropout import Dropout
from .elementwise import (
    Abs,
    Add,
    Ceil,
    Cos,
    Cube,
    Div,
    Elu,
    Eq,
    Exp,
    Expm1,
    Floor,
    Gelu,
    Gt,
    Gte,
    HadamardDiv,
    HadamardProd,
    Inverse,
    InverseSqrt,
    LeakyRelu,
    Log,
    Log1p,
    Log2,
    Lt,
    Lte,
    MaxBetween,
    Maximum,
    MinBetween,
    Minimum,
    Mish,
    Ne,
    Neg,
    Pow,
    Rectify,
    ReLU,
    Relu,
    Sigmoid,
    Sign,
    Sin,
    Softplus,
    Sqrt,
    Square,
    Sub,
    Tanh,
)
from .fold import KeepDims, ReduceAdd, ReduceMul
from .im2col import Im2Col
from .indexing import At, ByIndices, S, Slice
from .linalg import BatchedMatMul, MatMul, Mul, OuterProd, Tensordot, Transpose
from .loss import BinaryXent, SigmoidBinaryCrossEntropy, SoftmaxCrossEntropy
from .norm import BatchNorm, GroupNorm
from .pool import (
    AveragePool1D,
    AveragePool2D,
    AvgPool1D,
    AvgPool2D,
    GlobalAveragePool2D,
    MaxPool1D,
    MaxPool2D,
)
from .random import BinomialRandomNode, GaussianRandomNode, OneHotVector, UniformRandomNode
from .reduce import Mean, Sum
from .reduce_nonlinear import LogSumExp, Max, Min, Norm
from .shape import Concat, Ravel, Reshape, Unconcat, Unstack
from .sizes import SizeOf
from .unbroadcast import BroadcastTo, SumTo
from .upsample import Upsample2D

__all__ = [
    "Op", "TypeInfo", "ExecContext", "apply_op",
    "Add", "Sub", "HadamardProd", "HadamardDiv", "Div", "Pow", "Maximum", "Minimum",
    "SumTo", "BroadcastTo", "Mul", "MatMul", "Transpose", "Sum", "Mean", "Reshape",
    "OuterProd", "SoftMax", "Softmax", "LogSoftMax", "LogSoftmax",
    "Abs", "Cos", "Cube", "Elu", "Exp", "Expm1", "Gelu", "Inverse", "InverseSqrt",
    "LeakyRelu", "Log", "Log1p", "Log2", "Mish", "Neg", "Rectify", "Relu", "ReLU",
    "Sigmoid", "Sign", "Sin", "Softplus", "Sqrt", "Square", "Tanh",
    "Conv2d", "MaxPool2D", "AvgPool2D", "AveragePool2D", "Dropout", "BatchNorm",
    "BatchedMatMul", "Tensordot", "Ravel", "S", "Slice", "Concat", "Unconcat", "Unstack",
    "ByIndices",
    "Max", "Min", "LogSumExp", "Norm", "Lt", "Gt", "Lte", "Gte", "Eq", "Ne",
    "BroadcastAdd", "BroadcastSub", "BroadcastHadamardProd", "BroadcastHadamardDiv",
    "BroadcastPow", "BroadcastLt", "BroadcastGt", "BroadcastLte", "BroadcastGte",
    "BroadcastEq", "BroadcastNe", "SoftmaxCrossEntropy", "SigmoidBinaryCrossEntropy",
    "UniformRandomNode", "GaussianRandomNode", "BinomialRandomNode", "OneHotVector",
    "Conv1d", "Im2Col", "MaxPool1D", "AveragePool1D", "AvgPool1D", "GlobalAveragePool2D",
    "Upsample2D", "Sparsemax", "BinaryXent", "GroupNorm",
    "CTCLoss",
    "Ceil", "Floor", "MaxBetween", "MinBetween", "ConvType", "KeepDims", "ReduceAdd",
    "ReduceMul", "At", "SizeOf", "DiagFlat", "Auto", "Broadcast", "NewBroadcastPattern",
    "BroadcastPattern", "Set",
]

operators.install(Node, sys.modules[__name__])
