"""Training: ``fit``, ``predict``, ``Trainer``, ``History`` and callbacks, Keras style.

- ``trainer``: :class:`Trainer` (one model, its losses, its graph and machines), :func:`fit`
  and :func:`evaluate`;
- ``fitting``: ``Trainer.fit`` (its arguments, data, validation and plan) and the default
  ``train_step``;
- ``build``: the training graph (targets, losses, weighted cost, gradients, machine);
- ``loop``: the default epoch loop, and the frame around every epoch (callbacks, Ctrl-C,
  the snapshot put back on a non-finite loss);
- ``custom``, ``steps``: custom ``train_step`` functions and the :class:`Batch` they get;
- ``evaluation``: loss and metrics in eval mode;
- ``predict``: :func:`predict`, the model's outputs in eval mode at any batch size;
- ``copies``: each thread's copy of the graph for predicting and evaluating;
- ``structure``: a model's named inputs and outputs, and the forms data takes;
- ``data``: the model's input and output nodes, checked arrays, batches;
- ``safety``: snapshots, :class:`NonFiniteLossError`, batch norm batch checks;
- ``weights``: ``sample_weight`` and ``class_weight``; ``solvers``: solvers by name;
- ``callbacks``: the :class:`Callback` protocol and the :class:`CallbackList` the loop calls;
- ``history``, ``model_checkpoint``, ``early_stopping``, ``lr_schedule``, ``reduce_lr``,
  ``csv_logger``, ``terminate_on_nan``: one callback each;
- ``progress``: the progress bar, the epoch logger and the Ctrl-C guard.

Example:
    >>> import numpy as np, graphcore as gc, golgi as G
    >>> from golgi.training import EarlyStopping, fit
    >>> g = gc.NewGraph()
    >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
    >>> net = G.ComposeSeq(x, G.L(G.ConsFC(G.WithShape(1))))
    >>> X = np.random.default_rng(0).normal(size=(32, 2)); Y = X.sum(1, keepdims=True)
    >>> h = fit(net, X, Y, loss=G.MSE, solver=gc.NewAdamSolver(gc.WithLearnRate(0.1)),
    ...         epochs=5, callbacks=[EarlyStopping("loss", patience=2)], seed=0, progress=False)
    >>> len(h) <= 5, h.keys()
    (True, ['loss'])
"""

from .callbacks import Callback, CallbackList
from .csv_logger import CSVLogger
from .early_stopping import EarlyStopping
from .history import History
from .lr_schedule import LearningRateScheduler
from .model_checkpoint import ModelCheckpoint
from .predict import predict
from .progress import EpochLogger, ProgressBar
from .reduce_lr import ReduceLROnPlateau
from .safety import NonFiniteLossError
from .steps import Batch
from .terminate_on_nan import TerminateOnNaN
from .trainer import Trainer, evaluate, fit

__all__ = [
    "History",
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
    "Trainer",
    "Batch",
    "NonFiniteLossError",
    "fit",
    "evaluate",
    "predict",
]
