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

from . import datasets, models
from . import train as train  # the training names' first home, kept as an alias module
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
from .layer import Layer
from .layers.batchnorm import BatchNorm, ConsBatchNorm
from .layers.conv import ConsConv, Conv
from .layers.dropout import ConsDropout, Dropout
from .layers.embedding import ConsEmbedding, Embedding
from .layers.fc import FC, ConsFC
from .layers.norm import ConsLayerNorm, LayerNorm
from .layers.pool import AvgPool, ConsAvgPool, ConsMaxPool, MaxPool
from .layers.reshape import ConsFlatten, ConsReshape, Flatten, Reshape
from .losses import MSE, RMS, BinaryCrossEntropy, CrossEntropy
from .metrics import Accuracy
from .onnx import export_onnx  # onnx itself is imported only when it runs
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
from .term import Term, Thunk, layer_names
from .training import (
    Callback,
    CallbackList,
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
from .version import __version__

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
    "Conv",
    "ConsConv",
    "MaxPool",
    "ConsMaxPool",
    "AvgPool",
    "ConsAvgPool",
    "Dropout",
    "ConsDropout",
    "BatchNorm",
    "ConsBatchNorm",
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
    "export_onnx",
    # training
    "fit",
    "predict",
    "Trainer",
    "History",
    "Callback",
    "CallbackList",
    "ModelCheckpoint",
    "EarlyStopping",
    "LearningRateScheduler",
    "ProgressBar",
    "EpochLogger",
    # modules
    "datasets",
    "models",
]
