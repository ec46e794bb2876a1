"""Prediction: the model's outputs in eval mode, in batches of any size, from any thread.

Each thread predicts with its own machine on its own copy of the model's graph, sharing
the weights and the layers' state (see :mod:`golgi.training.copies`): any number of threads
may predict with one model at once, and while ``fit`` trains it in another.

Example:
    >>> import numpy as np, graphcore as gc, golgi as G
    >>> g = gc.NewGraph()
    >>> x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 4), gc.WithName("x"))
    >>> net = G.ComposeSeq(x, G.L(G.ConsFC(G.WithShape(3))))
    >>> predict(net, np.ones((10, 4), np.float32), batch_size=4).shape
    (10, 3)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

import graphcore as gc

from .copies import BUILD_LOCK, EvalCopy, per_thread
from .data import as_data, check_batch_size, is_built
from .distribution import check_distributed
from .structure import Ends, arrays_for, model_ends, shaped_like

__all__ = ["Predictor", "predict"]


class Predictor:
    """An eval-mode machine computing ``out`` from ``x`` (or several outputs from several
    inputs), on a copy of the graph that shares the model's weights; calling it returns the
    outputs for every row of ``data``, in batches of ``batch_size``.

    One Predictor serves one thread (``predict`` keeps one per thread and model).

    Example:
        >>> import numpy as np, graphcore as gc, golgi as G
        >>> g = gc.NewGraph()
        >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
        >>> fc = G.ConsFC(x, G.WithShape(2))
        >>> Predictor(x, fc.fwd(x))(np.ones((5, 3)), batch_size=2).shape
        (5, 2)
    """

    def __init__(self, x: gc.Node | Sequence[gc.Node], out: gc.Node | Sequence[gc.Node]) -> None:
        self.sources = [x] if isinstance(x, gc.Node) else list(x)
        outs = [out] if isinstance(out, gc.Node) else list(out)
        self.many = not isinstance(out, gc.Node)
        self.copy = EvalCopy(self.sources, outs)
        self.inputs, self.outputs = self.copy.inputs, self.copy.outputs
        self.x, self.out = self.inputs[0], self.outputs[0]
        self.vm = self.copy.vm
        # the usual case, one input and one output, runs as the machine's function: the
        # nodes checked once, not per batch
        self._fn: gc.TapeFunction | None = None
        if len(self.inputs) == 1 and len(self.outputs) == 1:
            try:
                self._fn = self.vm.function(self.x, self.out)
            except gc.GraphError:  # an input the output does not need: the general loop
                self._fn = None

    def __call__(self, data: Any, batch_size: int) -> Any:
        """The outputs for ``data`` (one array per input, or a list of them)."""
        arrays = data if isinstance(data, list) else [data]
        if len(arrays) != len(self.inputs):
            raise ValueError(f"predict: the model has {len(self.inputs)} inputs, got {len(arrays)}")
        n = len(arrays[0])
        for a in arrays[1:]:
            if len(a) != n:
                raise ValueError(
                    f"predict: the inputs hold different numbers of samples ({n} and {len(a)})"
                )
        self.copy.sync()
        outs = self.outputs
        results: list[np.ndarray | None] = [
            np.empty((n, *o.shape[1:]), o.dtype.np) if n and None not in o.shape[1:] else None
            for o in outs
        ]
        known = all(r is not None for r in results)
        vm, inputs = self.vm, self.inputs
        fn = self._fn
        if known and fn is not None:  # the usual case, lean per batch
            data, result = arrays[0], results[0]
            assert result is not None
            for s in range(0, n, batch_size):
                fn(data[s : s + batch_size], out=result[s : s + batch_size])
            return [result] if self.many else result
        for s in range(0, n, batch_size):
            b = min(batch_size, n - s)
            for node, a in zip(inputs, arrays):
                # lent, not copied: a machine whose input only feeds products reads it in place
                gc.Let(node, a[s : s + b], copy=False)
            if known:  # the last step writes the rows straight into the results
                vm.run_all(into={o: r[s : s + b] for o, r in zip(outs, results)})  # type: ignore[index]
                continue
            vm.run_all()
            for j, o in enumerate(outs):
                if results[j] is None:
                    results[j] = np.empty((n, *o.value.shape[1:]), o.value.dtype)
                results[j][s : s + b] = o.value  # type: ignore[index]
        final = [
            r if r is not None else np.empty((0, *(d or 0 for d in o.shape[1:])), o.dtype.np)
            for r, o in zip(results, outs)
        ]
        return final if self.many else final[0]


class _ModelPredictor:
    """A model's ends and this thread's Predictor for them."""

    def __init__(self, model: Any, input: Any) -> None:
        with BUILD_LOCK:
            self.ends: Ends = model_ends(model, input, None, None, shape_ok=True)
            self.predictor = Predictor(self.ends.inputs, self.ends.outputs)

    def __call__(self, x: Any, batch_size: int) -> Any:
        outs = self.predictor(self.arrays(x), batch_size)
        return shaped_like(self.ends.output_form, self.ends.output_names, outs)

    def arrays(self, x: Any) -> list[np.ndarray]:
        """``x`` as one checked array per input."""
        ends = self.ends
        arrays = arrays_for("predict: x", x, ends.input_names, ends.input_form)
        return [
            as_data(a, node, f"predict: x[{name!r}]" if not ends.single else "predict: x")
            for a, node, name in zip(arrays, ends.inputs, ends.input_names)
        ]


def predict(
    model: Any,
    x: Any,
    batch_size: int = 256,
    input: gc.Node | Sequence[int | None] | None = None,
    distributed: Any = None,
) -> Any:
    """The model's outputs for ``x`` (eval mode: no dropout, batch norm running statistics).

    Works at any batch size and for any number of samples: the model's input batch
    dimension is freed if it was fixed. Returns a new numpy array (n, ...); for a
    ``golgi.Model`` with several outputs, a dict (or list) of them, as its outputs were given.
    ``x`` is an array, or for several inputs a dict keyed by their names (or a list).
    ``input``: a node, or a sample shape such as ``(None, 50)`` to run a part of a bigger
    model (built on an intermediate node) on an input of its own.

    Safe from any number of threads at once (each has its own machine on its own copy of
    the graph, on the same weights), also while ``fit`` trains the model in another thread.
    ``distributed=golgi.MPIDataParallel()``: every rank predicts its block of the rows, and
    every rank gets the outputs for all of them.

    Example:
        >>> import numpy as np, graphcore as gc, golgi as G
        >>> g = gc.NewGraph()
        >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(100, 3), gc.WithName("x"))
        >>> fc = G.ComposeSeq(x, G.L(G.ConsFC(G.WithShape(2))))
        >>> G.predict(fc, np.ones((7, 3)), batch_size=3).shape
        (7, 2)
    """
    if check_distributed(distributed) is None:
        bs = check_batch_size("predict", batch_size)
        return _predictor(model, input)(x, bs)
    with distributed.together("predict") as agree:
        bs = check_batch_size("predict", batch_size)
        pred = _predictor(model, input)
        data = pred.arrays(x)
        agree.same("samples", len(data[0]))
    outs = distributed.predict_rows(pred.predictor, data, bs)
    return shaped_like(pred.ends.output_form, pred.ends.output_names, outs)


def _predictor(model: Any, input: Any) -> _ModelPredictor:
    """This thread's predictor for ``model`` on ``input``."""
    if not is_built(model):
        raise gc.GraphError(
            "predict: the model is not built yet (no layers have weights); give ComposeSeq its "
            "input node or train it with fit first"
        )
    spec = id(input) if isinstance(input, gc.Node) else None if input is None else tuple(input)
    key = ("predict", spec)
    return per_thread(model, key, lambda: _ModelPredictor(model, input))
