"""``golgi.train``: the training names, kept importable from their first home.

The code lives in :mod:`golgi.training`; ``from golgi.train import fit, predict`` keeps working.

Example:
    >>> import golgi.train, golgi.training
    >>> golgi.train.fit is golgi.training.fit
    True
"""

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
