"""The data side of training: the model's input and output nodes, checked arrays, batches.

``fit``, ``evaluate`` and ``predict`` resolve the model's input (freeing a fixed batch
dimension, or building an unbuilt model from the data's shape), check the arrays against
the nodes once per call, and copy each batch into the input buffers without allocating.

Example:
    >>> import numpy as np, graphcore as gc, golgi as G
    >>> net = G.ComposeSeq(G.L(G.ConsFC(G.WithShape(3))))
    >>> x = model_input(net, None, (4,), gc.Float64)  # unbuilt: a new graph, sized from data
    >>> x.shape, model_output(net, x).shape, is_built(net)
    ((None, 4), (None, 3), True)
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import graphcore as gc

__all__ = [
    "model_input",
    "model_output",
    "new_input",
    "is_built",
    "data_dtype",
    "as_data",
    "gather_rows",
    "put_rows",
    "check_batch_size",
]

# A model with a fixed batch dimension gets one free input node, kept as long as the model.
_free_inputs: weakref.WeakKeyDictionary[Any, gc.Node] = weakref.WeakKeyDictionary()


def _unique_name(g: gc.Graph, stem: str) -> str:
    name, i = stem, 0
    while True:
        try:
            g.by_name(name)
        except KeyError:
            return name
        i += 1
        name = f"{stem}_{i}"


def new_input(g: gc.Graph, dtype: gc.Dtype, shape: tuple[int | None, ...], stem: str) -> gc.Node:
    """A new input node of ``g`` named ``stem`` (or ``stem_1``, ... when that name is taken).

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph(); a = new_input(g, gc.Float32, (None, 3), "y")
        >>> b = new_input(g, gc.Float32, (None, 3), "y"); a.name, b.name, b.shape
        ('y', 'y_1', (None, 3))
    """
    return gc.NewTensor(
        g, dtype, len(shape), gc.WithShape(*shape), gc.WithName(_unique_name(g, stem))
    )


def _cached_free(key: Any, make: Callable[[], gc.Node]) -> gc.Node:
    try:
        node = _free_inputs.get(key)
    except TypeError:  # unhashable or not weakly referable: no caching
        return make()
    if node is None:
        node = _free_inputs[key] = make()
    return node


def is_built(model: Any) -> bool:
    """Whether ``model`` has its layers (a composition of thunks has none before its first use).

    Example:
        >>> import golgi as G
        >>> is_built(G.ComposeSeq(G.L(G.ConsFC(G.WithShape(2)))))
        False
    """
    built = getattr(model, "built", True)
    return bool(built) and bool(model.layers)


def model_input(
    model: Any,
    input: gc.Node | Sequence[int | None] | None,
    sample_shape: tuple[int, ...] | None,
    dtype: gc.Dtype | None,
) -> gc.Node:
    """The model's input node with a free batch dimension (made when needed).

    ``input`` is the node or sample shape the user gave (or None); an unbuilt model gets a
    new graph whose input is shaped from ``input`` or else from ``sample_shape`` (the data's).
    A fixed batch dimension is freed with a new input node of the same graph, once per model.

    Example:
        >>> import graphcore as gc, golgi as G
        >>> g = gc.NewGraph()
        >>> x = gc.NewMatrix(g, gc.Float32, gc.WithShape(100, 4), gc.WithName("x"))
        >>> net = G.ComposeSeq(x, G.L(G.ConsFC(G.WithShape(2))))
        >>> free = model_input(net, None, None, None)
        >>> free.name, free.shape, free is model_input(net, None, None, None)
        ('x_1', (None, 4), True)
    """
    if isinstance(input, gc.Node):
        node: gc.Node | None = input
    elif input is not None and is_built(model):
        raise TypeError(
            "input: this model is built already, so it has an input; leave input out (or "
            "pass an input node of its graph)"
        )
    else:
        node = getattr(model, "input", None) if input is None else None
    if node is not None:
        if node.shape and node.shape[0] is None:
            return node
        if not node.shape:
            raise gc.ShapeError(f"the model input {node.describe()} has no batch dimension")
        fixed = node
        return _cached_free(
            model,
            lambda: new_input(fixed.graph, fixed.dtype, (None, *fixed.shape[1:]), fixed.name),
        )
    if is_built(model):
        first = model.layers[0]
        return _cached_free(
            model,
            lambda: new_input(first.graph, first.input_dtype, (None, *first.input_shape[1:]), "x"),
        )
    # an unbuilt model: a new graph, shaped from ``input`` or from the data
    if input is not None:
        shape = tuple(input)
        if shape and shape[0] is None:
            shape = shape[1:]
    elif sample_shape is not None:
        shape = tuple(sample_shape)
    else:
        raise gc.GraphError(
            "the model is not built yet (it has no input): give it one with "
            "ComposeSeq(x, ...), pass input=(None, features) or train it with fit first"
        )
    if any(d is None for d in shape):
        raise gc.ShapeError(f"input shape {shape} may leave only the batch size free")
    g = gc.NewGraph()
    return new_input(g, dtype or gc.Float32, (None, *shape), "x")


def model_output(model: Any, x: gc.Node) -> gc.Node:
    """``model.fwd(x)``, checked: a node that keeps the free batch dimension.

    Example:
        >>> import graphcore as gc, golgi as G
        >>> g = gc.NewGraph()
        >>> x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 4), gc.WithName("x"))
        >>> model_output(G.ComposeSeq(G.L(G.ConsFC(G.WithShape(2)))), x).shape
        (None, 2)
    """
    out = model.fwd(x)
    if not isinstance(out, gc.Node):
        raise TypeError(f"the model's fwd returned {type(out).__name__}, not a graph node")
    if not out.shape or out.shape[0] is not None:
        raise gc.ShapeError(
            f"the model's output {out.describe()} must keep the free batch dimension of its "
            f"input {x.describe()} (dimension 0 = None)"
        )
    return out


def data_dtype(a: np.ndarray) -> gc.Dtype:
    """The input dtype for an unbuilt model trained on ``a``: Float64 for float64 data, else
    Float32.

    Example:
        >>> import numpy as np
        >>> data_dtype(np.zeros(2)), data_dtype(np.zeros(2, np.uint8))
        (Float64, Float32)
    """
    return gc.Float64 if a.dtype == np.float64 else gc.Float32


def as_data(a: Any, node: gc.Node, what: str) -> np.ndarray:
    """``a`` as a C-contiguous array of the node's dtype, checked against its shape (one copy
    at most, made once per fit, never per batch); errors start with ``what``.

    Example:
        >>> import numpy as np, graphcore as gc
        >>> x = gc.NewMatrix(gc.NewGraph(), gc.Float32, gc.WithShape(None, 2), gc.WithName("x"))
        >>> as_data([[1, 2], [3, 4]], x, "fit: x").dtype
        dtype('float32')
        >>> as_data(np.zeros((3, 4)), x, "fit: x")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        graphcore.errors.ShapeError: fit: x has samples of shape (4,) (array (3, 4)), but ...
    """
    arr = np.asarray(a)
    if arr.dtype == object:
        raise TypeError(f"{what}: cannot use an object array; give a numeric numpy array")
    want = node.shape
    if arr.ndim != len(want) or any(
        d is not None and d != s for d, s in zip(want, arr.shape, strict=True)
    ):
        sample = tuple(want[1:])
        raise gc.ShapeError(
            f"{what} has samples of shape {tuple(arr.shape[1:])} (array {arr.shape}), but "
            f"{node.name!r} takes samples of shape {sample}"
            + (
                "; reshape the data first (x.reshape(len(x), -1))"
                if arr.ndim > 1 and int(np.prod(arr.shape[1:])) == int(np.prod(sample or (1,)))
                else ""
            )
        )
    dt = node.dtype.np
    if arr.dtype != dt:
        if not np.can_cast(arr.dtype, dt, casting="same_kind") or (
            arr.dtype.kind == "f" and dt.kind in "iub"
        ):
            raise gc.DtypeError(f"{what}: cannot use {arr.dtype} data for {node.describe()}")
    return np.ascontiguousarray(arr, dtype=dt)


def _owned(node: gc.Node) -> np.ndarray | None:
    """The node's value when it is the graph's own buffer (not an array lent to it)."""
    if not node.has_value or node.is_lent:
        return None
    return node.value


def gather_rows(node: gc.Node, data: np.ndarray, idx: np.ndarray) -> None:
    """Copy rows ``idx`` of ``data`` into the node's input buffer (no allocation when sized).

    Example:
        >>> import numpy as np, graphcore as gc
        >>> x = gc.NewMatrix(gc.NewGraph(), gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
        >>> data = np.arange(8.0).reshape(4, 2)
        >>> gather_rows(x, data, np.array([3, 0])); x.value
        array([[6., 7.],
               [0., 1.]])
    """
    cur = _owned(node)
    if cur is not None and cur.shape[0] == idx.shape[0] and cur.flags.writeable:
        np.take(data, idx, axis=0, out=cur, mode="clip")  # "clip": unbuffered; idx is valid
    else:
        gc.Let(node, np.take(data, idx, axis=0))


def put_rows(node: gc.Node, rows: np.ndarray) -> None:
    """Copy ``rows`` into the node's input buffer (no allocation when it has their shape).

    Example:
        >>> import numpy as np, graphcore as gc
        >>> x = gc.NewMatrix(gc.NewGraph(), gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
        >>> put_rows(x, np.ones((1, 2))); x.value
        array([[1., 1.]])
    """
    cur = _owned(node)
    if cur is not None and cur.shape == rows.shape and cur.flags.writeable:
        np.copyto(cur, rows)
    else:
        gc.Let(node, rows)


def check_batch_size(who: str, batch_size: Any) -> int:
    """``batch_size`` as an int, or ``ValueError`` naming ``who`` unless it is positive.

    Example:
        >>> check_batch_size("fit", 0)
        Traceback (most recent call last):
        ...
        ValueError: fit: batch_size must be a positive integer, got 0
    """
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, (int, np.integer))
        or (batch_size < 1)
    ):
        raise ValueError(f"{who}: batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)

