"""The ends of a model: its input and output nodes, their names, and the form data takes.

A model made with ``ComposeSeq`` (or any term) has one input and one output: data is one
array. A ``golgi.Model`` names several: data is a dict keyed by those names, or a list in
their order, and ``predict`` answers in the form the model's outputs were given in.

Example:
    >>> import numpy as np, graphcore as gc, golgi as G
    >>> net = G.ComposeSeq(G.L(G.ConsFC(G.WithShape(2))))
    >>> ends = model_ends(net, None, (3,), gc.Float64)
    >>> [n.shape for n in ends.inputs], ends.output_names, ends.single
    ([(None, 3)], ['output'], True)
    >>> arrays_for("x", {"x": np.ones((2, 3))}, ends.input_names, ends.input_form)[0].shape
    (2, 3)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import graphcore as gc

from .data import as_data, check_finite, model_input, model_output

__all__ = [
    "Ends",
    "model_ends",
    "arrays_for",
    "shaped_like",
    "is_multi",
    "data_arrays",
    "target_arrays",
    "raw_targets",
]


@dataclass
class Ends:
    """A model's input and output nodes in order, their names, and the forms ("node", "list",
    "dict") its data and results take.

    Example:
        >>> import graphcore as gc
        >>> x = gc.NewMatrix(gc.NewGraph(), gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
        >>> Ends([x], ["x"], "node", [x], ["output"], "node").single
        True
    """

    inputs: list[gc.Node]
    input_names: list[str]
    input_form: str
    outputs: list[gc.Node]
    output_names: list[str]
    output_form: str

    @property
    def single(self) -> bool:
        """One input and one output (data is one array each way)."""
        return len(self.inputs) == 1 and len(self.outputs) == 1


def is_multi(model: Any) -> bool:
    """Whether ``model`` names its inputs and outputs (a ``golgi.Model``).

    Example:
        >>> import golgi as G
        >>> is_multi(G.ComposeSeq(G.L(G.ConsFC(G.WithShape(2)))))
        False
    """
    return isinstance(getattr(model, "inputs", None), Mapping) and isinstance(
        getattr(model, "outputs", None), Mapping
    )


def model_ends(
    model: Any,
    input: gc.Node | Sequence[int | None] | None,
    sample_shape: tuple[int, ...] | None,
    dtype: gc.Dtype | None,
    shape_ok: bool = False,
) -> Ends:
    """The model's ends: a ``golgi.Model``'s named nodes, or for any other model its input
    (see :func:`~golgi.training.data.model_input`) and ``model.fwd`` of it.

    Example:
        >>> import graphcore as gc, golgi as G
        >>> g = gc.NewGraph()
        >>> x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 4), gc.WithName("x"))
        >>> e = model_ends(G.ComposeSeq(x, G.L(G.ConsFC(G.WithShape(2)))), None, None, None)
        >>> e.inputs[0] is x, e.outputs[0].shape
        (True, (None, 2))
    """
    if is_multi(model):
        if input is not None:
            raise TypeError(
                "input: a golgi.Model is built on its input nodes already; leave input out"
            )
        ins, outs = model.inputs, model.outputs
        return Ends(
            list(ins.values()),
            list(ins),
            model.input_form,
            list(outs.values()),
            list(outs),
            model.output_form,
        )
    x = model_input(model, input, sample_shape, dtype, shape_ok)
    return Ends([x], [x.name], "node", [model_output(model, x)], ["output"], "node")


def arrays_for(what: str, data: Any, names: Sequence[str], form: str) -> list[Any]:
    """``data`` as one entry per name, in order: a dict keyed by the names, a list or tuple in
    their order, or (one name, form "node") the data itself. Errors start with ``what``.

    Example:
        >>> arrays_for("fit: x", [1, 2], ["a", "b"], "list")
        [1, 2]
        >>> arrays_for("fit: x", {"a": 1}, ["a", "b"], "dict")
        Traceback (most recent call last):
        ...
        ValueError: fit: x has no entry for 'b'; give one array per name: a, b
    """
    if isinstance(data, Mapping):
        unknown = [k for k in data if k not in names]
        if unknown:
            raise ValueError(
                f"{what} has an entry {unknown[0]!r} that the model does not name; the names "
                f"are {', '.join(names)}"
            )
        for k in names:
            if k not in data:
                raise ValueError(
                    f"{what} has no entry for {k!r}; give one array per name: {', '.join(names)}"
                )
        return [data[k] for k in names]
    if len(names) == 1 and form == "node":
        return [data]
    if isinstance(data, (list, tuple)):
        if len(data) != len(names):
            raise ValueError(
                f"{what}: the model has {len(names)} ({', '.join(names)}), got a "
                f"{type(data).__name__} of {len(data)}; give one array per name, in order, or "
                f"a dict"
            )
        return list(data)
    raise TypeError(
        f"{what}: the model has {len(names)} ({', '.join(names)}); give a dict name -> array "
        f"or a list in that order, not a {type(data).__name__}"
    )


def shaped_like(form: str, names: Sequence[str], values: list[Any]) -> Any:
    """``values`` in the form the model's ends were given in: one value, a list, a dict.

    Example:
        >>> shaped_like("dict", ["a", "b"], [1, 2]), shaped_like("node", ["y"], [3])
        ({'a': 1, 'b': 2}, 3)
    """
    if form == "node":
        return values[0]
    if form == "list":
        return list(values)
    return dict(zip(names, values, strict=True))


def data_arrays(
    what: str, data: Any, nodes: Sequence[gc.Node], names: Sequence[str], form: str,
    check: bool,
) -> list[np.ndarray]:
    """``data`` as one checked array per node (see :func:`arrays_for` and
    :func:`~golgi.training.data.as_data`); ``check`` also refuses NaN and infinity.

    Example:
        >>> import numpy as np, graphcore as gc
        >>> x = gc.NewMatrix(gc.NewGraph(), gc.Float32, gc.WithShape(None, 2), gc.WithName("x"))
        >>> data_arrays("fit: x", [[1, 2]], [x], ["x"], "node", True)[0].dtype
        dtype('float32')
    """
    out = []
    for a, node, name in zip(arrays_for(what, data, names, form), nodes, names, strict=True):
        label = what if len(names) == 1 else f"{what}[{name!r}]"
        if a is None:
            raise ValueError(f"{label}: no data given")
        arr = as_data(a, node, label)
        if check:
            check_finite(label, arr)
        out.append(arr)
    return out


def target_arrays(
    what: str, ends: Ends | None, tg: Any, y: Any, check: bool
) -> list[np.ndarray]:
    """The targets of the outputs that have a loss (``tg.trained``), as checked arrays for
    their target nodes; ``y`` is one array, a dict by output name, or a list of one per
    output (None for an output without a loss)."""
    assert ends is not None and tg is not None
    names = [ends.output_names[i] for i in tg.trained]
    if isinstance(y, (list, tuple)) and len(ends.outputs) > 1:
        if len(y) != len(ends.outputs):
            raise ValueError(
                f"{what}: the model has {len(ends.outputs)} outputs "
                f"({', '.join(ends.output_names)}), got {len(y)} targets; give one per "
                f"output (None for an output without a loss) or a dict"
            )
        y = [y[i] for i in tg.trained]
    elif isinstance(y, Mapping):
        y = {k: v for k, v in y.items() if k in names or k not in ends.output_names}
    if isinstance(y, (list, tuple)) and len(names) > 1:
        form = "list"
    else:
        form = "dict" if len(names) > 1 else "node"
    return data_arrays(what, y, tg.targets, names, form, check)


def raw_targets(y: Any, ends: Ends | None) -> list[Any]:
    """The targets as given, one per output (None where missing), to size target nodes.

    Example:
        >>> from golgi.training.structure import Ends
        >>> e = Ends([], [], "dict", [None, None], ["a", "b"], "dict")
        >>> raw_targets({"b": 1}, e)
        [None, 1]
    """
    assert ends is not None
    if y is None:
        return [None] * len(ends.outputs)
    if isinstance(y, Mapping):
        return [y.get(k) for k in ends.output_names]
    if isinstance(y, (list, tuple)) and len(ends.outputs) > 1:
        return list(y) + [None] * (len(ends.outputs) - len(y))
    return [y] + [None] * (len(ends.outputs) - 1)
