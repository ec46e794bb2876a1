"""Prediction: the model's outputs in eval mode, in batches of any size.

Example:
    >>> import numpy as np, graphcore as gc, golgi as G
    >>> g = gc.NewGraph()
    >>> x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 4), gc.WithName("x"))
    >>> net = G.ComposeSeq(x, G.L(G.ConsFC(G.WithShape(3))))
    >>> predict(net, np.ones((10, 4), np.float32), batch_size=4).shape
    (10, 3)
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np

import graphcore as gc

from .data import as_data, check_batch_size, is_built, model_input, model_output

__all__ = ["Predictor", "predict"]


class Predictor:
    """An eval-mode machine on the model's output ``out`` for input ``x``, run in batches of
    any size; calling it returns the outputs for every row of ``data``.

    Example:
        >>> import numpy as np, graphcore as gc, golgi as G
        >>> g = gc.NewGraph()
        >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
        >>> fc = G.ConsFC(x, G.WithShape(2))
        >>> Predictor(x, fc.fwd(x))(np.ones((5, 3)), batch_size=2).shape
        (5, 2)
    """

    def __init__(self, x: gc.Node, out: gc.Node) -> None:
        self.x, self.out = x, out
        self.vm = gc.NewTapeMachine(x.graph.subgraph_roots(out), gc.EvalMode())

    def __call__(self, data: np.ndarray, batch_size: int) -> np.ndarray:
        x, out, vm = self.x, self.out, self.vm
        n = len(data)
        result: np.ndarray | None = None
        if n and None not in out.shape[1:]:  # the result's shape is known: fill it in place
            result = np.empty((n, *out.shape[1:]), out.dtype.np)
        for s in range(0, n, batch_size):
            rows = data[s : s + batch_size]
            # lent, not copied: a machine whose input only feeds products reads it in place
            gc.Let(x, rows, copy=False)
            if result is not None:  # the last step writes the rows straight into the result
                vm.run_all(into={out: result[s : s + len(rows)]})
                continue
            vm.run_all()
            if s == 0:  # another machine on this graph may have published its buffers since
                vm.publish()
                result = np.empty((n, *out.value.shape[1:]), out.value.dtype)
            result[s : s + len(rows)] = out.value
        if result is None:
            result = np.empty((0, *(d or 0 for d in out.shape[1:])), out.dtype.np)
        return result


_predictors: weakref.WeakKeyDictionary[Any, Predictor] = weakref.WeakKeyDictionary()


def predict(
    model: Any,
    x: Any,
    batch_size: int = 256,
    input: gc.Node | Sequence[int | None] | None = None,
) -> np.ndarray:
    """The model's outputs for ``x`` (eval mode: no dropout, batch norm running statistics).

    Works at any batch size and for any number of samples: the model's input batch
    dimension is freed if it was fixed. Returns a new numpy array (n, ...).

    Example:
        >>> import numpy as np, graphcore as gc, golgi as G
        >>> g = gc.NewGraph()
        >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(100, 3), gc.WithName("x"))
        >>> fc = G.ComposeSeq(x, G.L(G.ConsFC(G.WithShape(2))))
        >>> G.predict(fc, np.ones((7, 3)), batch_size=3).shape
        (7, 2)
    """
    bs = check_batch_size("predict", batch_size)
    if not is_built(model):
        raise gc.GraphError(
            "predict: the model is not built yet (no layers have weights); give ComposeSeq its "
            "input node or train it with fit first"
        )
    try:
        pred = _predictors.get(model) if input is None else None
    except TypeError:
        pred = None
    if pred is None:
        xn = model_input(model, input, None, None)
        pred = Predictor(xn, model_output(model, xn))
        if input is None:
            try:
                _predictors[model] = pred
            except TypeError:
                pass
    return pred(as_data(x, pred.x, "predict: x"), bs)
