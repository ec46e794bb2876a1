"""``golgi.train``: the training names, kept importable from their first home (deprecated).

The code lives in :mod:`golgi.training` (and every name is in ``golgi`` itself);
``from golgi.train import fit, predict`` keeps working, with a ``DeprecationWarning``.

Example:
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", DeprecationWarning)
    ...     import golgi.train, golgi.training
    >>> golgi.train.fit is golgi.training.fit
    True
"""

import warnings

warnings.warn(
    "golgi.train is deprecated: import the same names from golgi (G.fit) or golgi.training",
    DeprecationWarning,
    stacklevel=2,
)

from .training import (  # noqa: E402
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
