"""Fused, numerically stable losses on logits: ``SoftmaxCrossEntropy`` and
``SigmoidBinaryCrossEntropy``; and Gorgonia's ``BinaryXent`` on probabilities, with its logs
floored at -100.

Each loss is one node whose gradient is one fused node, computed in a few passes over memory
with scratch buffers made once per plan; the gradient nodes state the same computation with
graph ops (``expand``), through which second derivatives go. Both losses stay finite and
exact for logits of any size (±1000 included): softmax is shifted by the row maximum, and
the sigmoid loss uses ``max(z, 0) - z*t + log1p(exp(-|z|))``. The sigmoid loss and the
common softmax case ((batch, classes) logits, float targets, reduced to a scalar) run named
kernels of the machine's backend (:mod:`graphcore.kernels`): numpy, or one compiled loop
with numba.

One module per loss, each fused gradient right under its forward op:
:mod:`~graphcore.ops.loss.softmax_xent`, :mod:`~graphcore.ops.loss.sigmoid_xent` and
:mod:`~graphcore.ops.loss.binary_xent`; :mod:`~graphcore.ops.loss.reduction` holds what they
share.

Example:
    >>> import numpy as np, graphcore as gc
    >>> g = gc.NewGraph()
    >>> z = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("z"))
    >>> y = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("y"))
    >>> cost = gc.SoftmaxCrossEntropy(z, y)
    >>> gc.Let(z, [[1000.0, -1000.0, 0.0]]); gc.Let(y, [[0.0, 1.0, 0.0]])
    >>> gc.NewTapeMachine(g).run_all(); float(cost.value)
    2000.0
"""

from .binary_xent import BinaryXent, BinaryXentGradOp, BinaryXentOp
from .sigmoid_xent import (
    SigmoidBinaryCrossEntropy,
    SigmoidBinaryCrossEntropyGradOp,
    SigmoidBinaryCrossEntropyOp,
    SigmoidBinaryCrossEntropyTargetGradOp,
)
from .softmax_xent import (
    SoftmaxCrossEntropy,
    SoftmaxCrossEntropyGradOp,
    SoftmaxCrossEntropyOp,
    SoftmaxCrossEntropyTargetGradOp,
)

__all__ = [
    "SoftmaxCrossEntropy",
    "SigmoidBinaryCrossEntropy",
    "SoftmaxCrossEntropyOp",
    "SoftmaxCrossEntropyGradOp",
    "SoftmaxCrossEntropyTargetGradOp",
    "SigmoidBinaryCrossEntropyOp",
    "SigmoidBinaryCrossEntropyGradOp",
    "SigmoidBinaryCrossEntropyTargetGradOp",
    "BinaryXent",
    "BinaryXentOp",
    "BinaryXentGradOp",
]
