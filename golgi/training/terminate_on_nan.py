"""``TerminateOnNaN``: end training quietly when a logged value stops being finite.

Example:
    >>> TerminateOnNaN().stops_on_nonfinite
    True
"""

from __future__ import annotations

import math

from .callbacks import Callback

__all__ = ["TerminateOnNaN"]


class TerminateOnNaN(Callback):
    """End training, as a normal stop, when the loss or any value logged at the end of an
    epoch (``val_loss``...) is NaN or infinite.

    ``fit`` always stops on a non-finite training loss (or weight), putting back the weights,
    layer state and solver state of the last finite epoch; without this callback it then
    raises ``NonFiniteLossError``, with it ``fit`` returns the history
    (``history.diverged`` is True). It also stops, after the epoch, when a validation value
    is not finite (the weights are then finite and kept).

    Example:
        >>> import numpy as np, graphcore as gc, golgi as G
        >>> net = G.ComposeSeq(G.L(G.ConsFC(G.WithShape(1))))
        >>> X = np.ones((8, 2)); Y = np.full((8, 1), np.inf)
        >>> h = G.fit(net, X, Y, loss="mse", solver="sgd", epochs=3, check_data=False,
        ...           callbacks=[TerminateOnNaN()], progress=False, seed=0)
        >>> h.diverged, len(h)
        (True, 0)
    """

    reads_node_values = False
    stops_on_nonfinite = True

    def __init__(self) -> None:
        self.stopped_epoch: int | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        """Stop after this epoch when a logged value is not finite."""
        bad = [k for k, v in logs.items() if isinstance(v, float) and not math.isfinite(v)]
        if bad and self.trainer is not None:
            self.stopped_epoch = epoch
            self.trainer.stop_training = True
