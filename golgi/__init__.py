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
    K,
    L,
    Redefine,
)
from .distributed import MPIDataParallel, RankFailedError  # mpi4py: when one is made
from .functional import Model
from .io import CheckpointError, load, save
from .layer import Layer
from .layers.attention import ConsMultiHeadAttention, MultiHeadAttention
from .layers.batchnorm import BatchNorm, ConsBatchNorm
from .layers.conv import ConsConv, Conv
from .layers.dropout import ConsDropout, Dropout
from .layers.embedding import ConsEmbedding, Embedding
from .layers.fc import FC, ConsFC, MakeFC, NewFC
from .layers.lazy import LazyLayer
from .layers.norm import ConsLayerNorm, LayerNorm
from .layers.pool import AvgPool, ConsAvgPool, ConsMaxPool, MaxPool
from .layers.reshape import ConsFlatten, ConsReshape, Flatten, Reshape
from .layers.rnn import GRU, LSTM, ConsGRU, ConsLSTM
from .layers.skip import ConsSkip, Skip
from .losses import MSE, RMS, BinaryCrossEntropy, CrossEntropy
from .metrics import AUC, F1, MAE, Accuracy, Precision, Recall, TopKAccuracy
from .onnx import export_onnx  # onnx itself is imported only when it runs
from .options import (
    AsBatched,
    AsPositionwise,
    LayerOpt,
    Of,
    ToShape,
    WithActivation,
    WithBias,
    WithCausal,
    WithClasses,
    WithConst,
    WithDilation,
    WithEps,
    WithHeads,
    WithInit,
    WithKernelShape,
    WithMomentum,
    WithName,
    WithOneHotInput,
    WithPad,
    WithProbability,
    WithReturnSequences,
    WithShape,
    WithSize,
    WithStride,
    WithWB,
    WithWeights,
)
from .term import Term, Thunk, layer_names
from .trace import Trace
from .training import (
    Batch,
    Callback,
    CallbackList,
    CSVLogger,
    EarlyStopping,
    EpochLogger,
    History,
    LearningRateScheduler,
    ModelCheckpoint,
    NonFiniteLossError,
    ProgressBar,
    ReduceLROnPlateau,
    TerminateOnNaN,
    Trainer,
    evaluate,
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
    "Model",
    "layer_names",
    "K",
    "Redefine",
    "Trace",
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
    "WithReturnSequences",
    "WithConst",
    "WithWB",
    "AsBatched",
    "AsPositionwise",
    "WithHeads",
    "WithCausal",
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
    "LSTM",
    "ConsLSTM",
    "GRU",
    "ConsGRU",
    "MultiHeadAttention",
    "ConsMultiHeadAttention",
    "NewFC",
    "MakeFC",
    "LazyLayer",
    "Skip",
    "ConsSkip",
    # losses, metrics, saving
    "CrossEntropy",
    "BinaryCrossEntropy",
    "MSE",
    "RMS",
    "Accuracy",
    "TopKAccuracy",
    "Precision",
    "Recall",
    "F1",
    "MAE",
    "AUC",
    "save",
    "load",
    "CheckpointError",
    "export_onnx",
    # training
    "fit",
    "predict",
    "evaluate",
    "Trainer",
    "Batch",
    "History",
    "NonFiniteLossError",
    "Callback",
    "CallbackList",
    "ModelCheckpoint",
    "EarlyStopping",
    "LearningRateScheduler",
    "ReduceLROnPlateau",
    "CSVLogger",
    "TerminateOnNaN",
    "ProgressBar",
    "EpochLogger",
    # data-parallel training over MPI
    "MPIDataParallel",
    "RankFailedError",
    # modules
    "datasets",
    "models",
]
