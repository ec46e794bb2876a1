"""``golgi.train``: the training names, kept importable from their first home.

The code lives in :mod:`golgi.training`; ``from golgi.train import fit, predict`` keeps working.

Example:
    >>> import golgi.train, golgi.training
    >>> golgi.train.fit is golgi.training.fit
    True
"""

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

__all__ = [
    "History",
    "Callback",
    "CallbackList",
    "ModelCheckpoint",
    "EarlyStopping",
    "LearningRateScheduler",
    "ProgressBar",
    "EpochLogger",
    "Trainer",
    "fit",
    "predict",
]
