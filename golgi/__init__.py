"""golgi: declarative deep learning on numpy, in the style of Go's Golgi, on ``graphcore``.

Example (the talk's autoencoder):
    >>> import graphcore as gc, golgi as G
    >>> g = gc.NewGraph()
    >>> x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 784), gc.WithName("x"))
    >>> ae = G.ComposeSeq(
    ...     x,
    ...     G.L(G.ConsFC(G.WithShape(250), G.WithName("e1"), G.WithActivation(gc.Rectify))),
    ...     G.L(G.ConsFC(G.WithShape(784), G.WithName("d1"), G.WithActivation(gc.Sigmoid))),
    ... )
    >>> ae.fwd(x).shape, len(ae.model())
    ((None, 784), 4)
"""

from .compose import (
    Add,
    Apply,
    Compose,
    ComposeSeq,
    Composition,
    HadamardProd,
    I,
    Identity,
    Join,
    L,
)
from .io import CheckpointError, load, save
from .layer import Layer, Term, Thunk, layer_names
from .layers.embedding import ConsEmbedding, Embedding
from .layers.fc import FC, ConsFC
from .layers.norm import ConsLayerNorm, LayerNorm
from .layers.reshape import ConsFlatten, ConsReshape, Flatten, Reshape
from .losses import MSE, RMS, BinaryCrossEntropy, CrossEntropy
from .metrics import Accuracy
from .options import (
    LayerOpt,
    Of,
    ToShape,
    WithActivation,
    WithBias,
    WithClasses,
    WithDilation,
    WithEps,
    WithInit,
    WithKernelShape,
    WithMomentum,
    WithName,
    WithOneHotInput,
    WithPad,
    WithProbability,
    WithShape,
    WithSize,
    WithStride,
    WithWeights,
)

__version__ = "0.1.0"

__all__ = [
    "__version__",
    # terms and combinators
    "Term",
    "Layer",
    "Thunk",
    "Composition",
    "Join",
    "Identity",
    "I",
    "ComposeSeq",
    "Compose",
    "L",
    "Apply",
    "Add",
    "HadamardProd",
    "layer_names",
    # options
    "LayerOpt",
    "WithShape",
    "WithSize",
    "WithName",
    "WithActivation",
    "WithBias",
    "WithInit",
    "WithWeights",
    "WithKernelShape",
    "WithPad",
    "WithStride",
    "WithDilation",
    "WithProbability",
    "WithEps",
    "WithMomentum",
    "ToShape",
    "WithClasses",
    "WithOneHotInput",
    "Of",
    # layers
    "FC",
    "ConsFC",
    "Reshape",
    "ConsReshape",
    "Flatten",
    "ConsFlatten",
    "Embedding",
    "ConsEmbedding",
    "LayerNorm",
    "ConsLayerNorm",
    # losses, metrics, saving
    "CrossEntropy",
    "BinaryCrossEntropy",
    "MSE",
    "RMS",
    "Accuracy",
    "save",
    "load",
    "CheckpointError",
]

# ----- conv/pool/dropout/batchnorm layers, the training loop, datasets -------------------------
from . import datasets  # noqa: E402
from .layers.batchnorm import BatchNorm, ConsBatchNorm  # noqa: E402
from .layers.conv import ConsConv, Conv  # noqa: E402
from .layers.dropout import ConsDropout, Dropout  # noqa: E402
from .layers.pool import AvgPool, ConsAvgPool, ConsMaxPool, MaxPool  # noqa: E402
from .train import (  # noqa: E402
    Callback,
    EarlyStopping,
    EpochLogger,
    History,
    LearningRateScheduler,
    ModelCheckpoint,
    ProgressBar,
    Trainer,
    fit,
    predict,
)

__all__ += [
    "Conv", "ConsConv", "MaxPool", "ConsMaxPool", "AvgPool", "ConsAvgPool",
    "Dropout", "ConsDropout", "BatchNorm", "ConsBatchNorm",
    "fit", "predict", "Trainer", "History", "Callback", "ModelCheckpoint", "EarlyStopping",
    "LearningRateScheduler", "ProgressBar", "EpochLogger", "datasets",
]  # fmt: skip
