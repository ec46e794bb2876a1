"""Normalisation, one module per norm: batch normalisation
(:mod:`~graphcore.ops.norm.batch`: ``BatchNorm``, with running statistics and a train/eval
difference) and group normalisation (:mod:`~graphcore.ops.norm.group`: ``GroupNorm``, per
example, with neither). Both compute their statistics in a node of their own and their
backward pass in fused ops that expand into graph ops for second derivatives.

Example:
    >>> import numpy as np, graphcore as gc
    >>> g = gc.NewGraph()
    >>> x = gc.NewTensor(g, gc.Float32, 4, gc.WithShape(None, 8, 5, 5), gc.WithName("x"))
    >>> y = gc.BatchNorm(x, np.ones(8, np.float32), np.zeros(8, np.float32))
    >>> y.shape, y.children[1].op.name
    ((None, 8, 5, 5), 'BatchNormStats')
"""

from .batch import (
    BatchNorm,
    BatchNormGradOp,
    BatchNormOp,
    BatchNormStatsOp,
    BatchNormSumsOp,
    PickRowOp,
    TrainingOnlyOp,
    training_only,
)
from .group import GroupNorm, GroupNormGradOp, GroupNormOp, GroupNormStatsOp, GroupNormSumsOp

__all__ = [
    "BatchNorm", "BatchNormStatsOp", "TrainingOnlyOp", "training_only", "BatchNormOp",
    "BatchNormSumsOp", "BatchNormGradOp", "PickRowOp", "GroupNorm", "GroupNormStatsOp",
    "GroupNormOp", "GroupNormSumsOp", "GroupNormGradOp",
]
