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
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

import graphcore as gc

__all__ = [
    "model_input",
    "model_output",
    "graph_of",
    "new_input",
    "is_built",
    "data_dtype",
    "as_data",
    "gather_rows",
    "gather_feeds",
    "put_rows",
    "check_batch_size",
    "check_finite",
    "all_finite",
    "first_where",
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


def graph_of(node: gc.Node, what: str) -> gc.Graph:
    """The graph ``node`` belongs to; a ``GraphError`` naming ``what`` for a node of no graph
    (a constant), which has no graph to build a machine or new inputs in.

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph(); x = gc.NewScalar(g, gc.Float64, gc.WithName("x"))
        >>> graph_of(x, "fit") is g
        True
    """
    g = node.graph
    if g is None:
        raise gc.GraphError(
            f"{what}: {node.describe()} belongs to no graph; build the model on nodes of a "
            f"graph (gc.NewGraph()), not on constants"
        )
    return g


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


def _input_of_shape(model: Any, input: Sequence[int | None]) -> gc.Node:
    """A new input node of the built model's graph for samples of shape ``input`` (a leading
    None is the batch), made once per model and shape: the model applied to it shares its
    weights (predicting a part of a bigger model, built on an intermediate node)."""
    shape = tuple(input)
    if shape and shape[0] is None:
        shape = shape[1:]
    first = model.layers[0]
    want = tuple(first.input_shape[1:])
    if len(shape) != len(want) or any(w is not None and w != d for w, d in zip(want, shape)):
        raise gc.ShapeError(
            f"input={tuple(input)}: the model takes samples of shape {want} (its first layer "
            f"{first.name!r} was built for {first.input_shape})"
        )
    try:
        table = _shaped_inputs.get(model)
        if table is None:
            table = _shaped_inputs[model] = {}
    except TypeError:
        table = {}
    node = table.get(shape)
    if node is None:
        node = table[shape] = new_input(first.graph, first.input_dtype, (None, *shape), "input")
    return node


_shaped_inputs: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], gc.Node]] = (
    weakref.WeakKeyDictionary()
)


def is_built(model: Any) -> bool:
    """Whether ``model`` has its layers (a composition of thunks has none before its first use).

    Example:
        >>> import golgi as G
        >>> is_built(G.ComposeSeq(G.L(G.ConsFC(G.WithShape(2)))))
        False
    """
    if isinstance(getattr(model, "outputs", None), Mapping):
        return True  # a golgi.Model is made of built nodes
    built = getattr(model, "built", True)
    return bool(built) and bool(model.layers)


def model_input(
    model: Any,
    input: gc.Node | Sequence[int | None] | None,
    sample_shape: tuple[int, ...] | None,
    dtype: gc.Dtype | None,
    shape_ok: bool = False,
) -> gc.Node:
    """The model's input node with a free batch dimension (made when needed).

    ``input`` is the node or sample shape the user gave (or None); an unbuilt model gets a
    new graph whose input is shaped from ``input`` or else from ``sample_shape`` (the data's).
    A fixed batch dimension is freed with a new input node of the same graph, once per model.
    ``shape_ok``: a built model given a sample shape gets a new input node of that shape in
    its graph (``predict`` on a part of a bigger model); otherwise that is refused.

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
        if not shape_ok:
            raise TypeError(
                "input: this model is built already, so it has an input; leave input out (or "
                "pass an input node of its graph)"
            )
        return _input_of_shape(model, input)
    else:
        node = getattr(model, "input", None) if input is None else None
    if node is not None:
        if node.op is not None and input is None:
            first = model.layers[0]
            raise gc.GraphError(
                f"the model's input {node.describe()} is computed by the graph: this model is "
                f"a part of a bigger one, built on an intermediate node; pass "
                f"input={(None, *first.input_shape[1:])} to run it on an input of its own "
                f"(same weights), or use the whole model"
            )
        if node.shape and node.shape[0] is None:
            return node
        if not node.shape:
            raise gc.ShapeError(f"the model input {node.describe()} has no batch dimension")
        fixed, g = node, graph_of(node, "model input")
        return _cached_free(
            model, lambda: new_input(g, fixed.dtype, (None, *fixed.shape[1:]), fixed.name)
        )
    if is_built(model):
        first = model.layers[0]
        return _cached_free(
            model,
            lambda: new_input(first.graph, first.input_dtype, (None, *first.input_shape[1:]), "x"),
        )
    # an unbuilt model: a new graph, shaped from ``input`` (a shape: a node returned above)
    # or from the data
    if input is not None and not isinstance(input, gc.Node):
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
    try:
        arr = gc.as_array(a)
    except Exception as e:  # noqa: BLE001 - numpy raises many types for bad input
        raise TypeError(f"{what}: cannot turn {type(a).__name__} into an array") from e
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
        return _narrow(arr, dt, what, node)
    return np.ascontiguousarray(arr)


def _narrow(arr: np.ndarray, dt: np.dtype, what: str, node: gc.Node) -> np.ndarray:
    """``arr`` cast to ``dt``, refused (as ``gc.Let`` refuses it) where a value does not
    survive: a float that overflows to inf, an integer out of range."""
    if arr.dtype.kind == "f" and dt.kind == "f" and arr.dtype.itemsize > dt.itemsize:
        with np.errstate(over="ignore"):
            out = np.ascontiguousarray(arr, dtype=dt)
        if not all_finite(out):
            big = np.finfo(dt).max
            pos = first_where(arr, lambda a: np.isfinite(a) & (np.abs(a) > big))
            if pos is not None:
                row, col, count = pos
                raise gc.DtypeError(
                    f"{what}: {_at(row, col, arr)} holds {arr[(row,) + tuple(col)]:.4g}, which "
                    f"overflows {node.describe()} (largest {float(big):.3g}; {count} such "
                    f"value{'s' if count != 1 else ''}); rescale the data or use a Float64 model"
                )
        return out
    if arr.dtype.kind in "iu" and dt.kind in "iu" and arr.size:
        info = np.iinfo(dt)
        if arr.min() < info.min or arr.max() > info.max:
            pos = first_where(arr, lambda a: (a < info.min) | (a > info.max))
            assert pos is not None
            row, col, count = pos
            raise gc.DtypeError(
                f"{what}: {_at(row, col, arr)} holds {arr[(row,) + tuple(col)]}, which does "
                "not fit "
                f"{node.describe()} (range [{info.min}, {info.max}]; {count} such value"
                f"{'s' if count != 1 else ''}); use a wider dtype"
            )
    return np.ascontiguousarray(arr, dtype=dt)


def all_finite(a: np.ndarray) -> bool:
    """Whether every value of ``a`` is finite (integers always are): one pass, no temporary
    array of the data's size (a sum is finite exactly when no value is NaN or infinite,
    unless it overflows: then the values are looked at one by one).

    Example:
        >>> import numpy as np
        >>> all_finite(np.ones(3)), all_finite(np.array([1.0, np.nan])), all_finite(np.arange(3))
        (True, False, True)
        >>> all_finite(np.array([3e38, 3e38], np.float32))  # the sum overflows; values do not
        True
    """
    if a.dtype.kind not in "fc" or a.size == 0:
        return True
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(a.sum()):
            return True
    return first_where(a, lambda c: ~np.isfinite(c)) is None


def first_where(
    a: np.ndarray, test: Callable[[np.ndarray], np.ndarray]
) -> tuple[int, tuple[int, ...], int] | None:
    """The first (row, position in the sample, number of such values) where the elementwise
    ``test`` holds, or None; rows are tested in blocks, so no temporary is as large as ``a``.

    Example:
        >>> import numpy as np
        >>> first_where(np.array([[1.0, 2.0], [np.inf, np.nan]]), lambda c: ~np.isfinite(c))
        (1, (0,), 2)
    """
    if a.ndim == 0:
        a = a.reshape(1)
    flat = a.reshape(len(a), -1)
    step = max(1, (1 << 20) // max(1, flat.shape[1]))
    found: tuple[int, int] | None = None
    count = 0
    with np.errstate(invalid="ignore", over="ignore"):
        for s in range(0, len(flat), step):
            hit = test(flat[s : s + step])
            n = int(np.count_nonzero(hit))
            if n and found is None:
                r, c = np.argwhere(hit)[0]
                found = (s + int(r), int(c))
            count += n
    if found is None:
        return None
    col = tuple(int(i) for i in np.unravel_index(found[1], a.shape[1:])) if a.ndim > 1 else ()
    return found[0], col, count


def _at(row: int, col: tuple[int, ...], arr: np.ndarray) -> str:
    if arr.ndim <= 1:
        return f"row {row}"
    if arr.ndim == 2:
        return f"row {row}, column {col[0]}"
    return f"row {row}, position {col}"


def check_finite(what: str, arr: np.ndarray) -> None:
    """Raise ``ValueError`` naming ``what`` and the first row and column holding NaN or
    infinity (once per fit, vectorised: the training loop itself checks nothing).

    Example:
        >>> import numpy as np
        >>> check_finite("fit: x", np.array([[0.0, 1.0], [2.0, np.nan]]))
        Traceback (most recent call last):
        ...
        ValueError: fit: x holds nan at row 1, column 1 (1 non-finite value in all); ...
    """
    if all_finite(arr):
        return
    pos = first_where(arr, lambda c: ~np.isfinite(c))
    assert pos is not None
    row, col, count = pos
    raise ValueError(
        f"{what} holds {arr[(row,) + tuple(col)]} at {_at(row, col, arr)} ({count} non-finite "
        f"value{'s' if count != 1 else ''} in all); training on it would make the weights "
        f"NaN. Clean the data (drop those rows, np.nan_to_num), or pass check_data=False "
        f"to fit to train on it anyway"
    )


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


def gather_feeds(feeds: list[tuple[gc.Node, np.ndarray]], idx: np.ndarray) -> None:
    """:func:`gather_rows` for every ``(node, data)`` pair; a node fed the same array as an
    earlier one (an autoencoder's targets are its inputs) gets a copy of that node's
    contiguous rows instead of a second gather.

    Example:
        >>> import numpy as np, graphcore as gc
        >>> g = gc.NewGraph(); data = np.arange(8.0).reshape(4, 2)
        >>> x, t = (gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName(n))
        ...         for n in "xt")
        >>> gather_feeds([(x, data), (t, data)], np.array([3, 0])); t.value.tolist()
        [[6.0, 7.0], [0.0, 1.0]]
    """
    for i, (node, data) in enumerate(feeds):
        for j in range(i):
            first, seen = feeds[j]
            if seen is data:
                put_rows(node, first.value)
                break
        else:
            gather_rows(node, data, idx)


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

