"""Input nodes and their values: the node constructors, ``Let``, and the one safe-cast rule.

``NewScalar``/``NewVector``/``NewMatrix``/``NewTensor`` make input nodes (data, learnables);
``NewConstant`` makes constants; ``Let`` binds a value to an input. Every value that enters a
graph passes :func:`safe_cast`: no silent loss (floats into an int node, integers that do not
fit, float64 values that overflow a float32 node are refused with a clear error).

Example:
    >>> import numpy as np, graphcore as gc
    >>> g = gc.NewGraph()
    >>> x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 2), gc.WithName("x"))
    >>> gc.Let(x, np.ones((3, 2))); x.value.dtype, x.value.shape
    (dtype('float32'), (3, 2))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .dtypes import Dtype, DtypeLike, as_dtype
from .errors import DtypeError, GraphError, ShapeError
from .graph import Graph, Node
from .options import NodeOpt
from .shapes import as_shape, fmt_shape, is_concrete

__all__ = [
    "NewScalar",
    "NewVector",
    "NewMatrix",
    "NewTensor",
    "NewConstant",
    "NodeFromAny",
    "Let",
    "UnsafeLet",
    "as_array",
    "as_node",
    "safe_cast",
]


def safe_cast(value: Any, dt: Dtype, who: str, what: str = "node") -> np.ndarray:
    """``value`` as an array of ``dt`` (maybe ``value`` itself), or a ``DtypeError`` when the
    cast would lose information.

    Allowed: same-kind casts (float64 data into a float32 node, int64 into int32) as long as
    every value survives: floats must not overflow to inf, integers must fit. Refused: floats
    into an int or bool node, anything numpy cannot cast same-kind. ``who`` starts messages,
    ``what`` names the destination (``"node 'x'"``).

    Example:
        >>> import graphcore as gc
        >>> safe_cast([1.5, 2.0], gc.Float32, "Let(x)").dtype
        dtype('float32')
        >>> safe_cast([2**40], gc.Int32, "Let(n)")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        graphcore.errors.DtypeError: Let(n): values of the int64 array do not fit the Int32 node ...
    """
    arr = _as_array(value, who)
    want = dt.np
    if arr.dtype == want:
        return arr
    if not np.can_cast(arr.dtype, want, casting="same_kind") or (
        arr.dtype.kind == "f" and want.kind in "iub"
    ):
        raise DtypeError(
            f"{who}: {what} is {dt}, got a {arr.dtype} array; casting would lose "
            f"information, so convert it first (arr.astype(np.{want}))"
        )
    if arr.dtype.kind == "f" and want.kind == "f" and arr.dtype.itemsize > want.itemsize:
        with np.errstate(over="ignore"):
            cast = arr.astype(want)
        if not np.isfinite(cast).all() and np.isfinite(arr).all():
            raise DtypeError(
                f"{who}: values of the {arr.dtype} array overflow the {dt} {what} "
                f"(largest magnitude {float(np.abs(arr).max()):.3g}); rescale the data or use "
                f"a Float64 node"
            )
        return cast
    if arr.dtype.kind in "iu" and want.kind in "iu" and arr.size:
        info = np.iinfo(want)
        lo, hi = arr.min(), arr.max()
        if lo < info.min or hi > info.max:
            raise DtypeError(
                f"{who}: values of the {arr.dtype} array do not fit the {dt} {what} (range "
                f"[{lo}, {hi}], the node holds [{info.min}, {info.max}]); use a wider dtype"
            )
    return arr.astype(want)


def _parse_opts(opts: Sequence[NodeOpt], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for o in opts:
        if not isinstance(o, NodeOpt):
            raise TypeError(
                f"{where}: {o!r} is not a node option; use WithShape, WithName, WithInit, "
                f"WithValue or WithGrad"
            )
        out[o.kind] = o.arg
    return out


def _new_input(
    g: Graph, dt: DtypeLike, ndim: int | None, opts: Sequence[NodeOpt], ctor: str
) -> Node:
    if not isinstance(g, Graph):
        raise TypeError(f"{ctor}: the first argument must be a Graph (NewGraph()), got {g!r}")
    dtype = as_dtype(dt)
    o = _parse_opts(opts, ctor)
    value = o.get("value")
    if "shape" in o:
        shape = as_shape(o["shape"])
    elif value is not None:
        shape = np.shape(value)
    elif ndim == 0:
        shape = ()
    else:
        raise ShapeError(f"{ctor}: give the node a shape with WithShape(...)")
    name = o.get("name")
    if ndim is not None and len(shape) != ndim:
        raise ShapeError(
            f"{ctor}({name or ''}): a {ctor[3:].lower()} has {ndim} dimension(s), but the shape "
            f"given is {fmt_shape(shape)}; use NewTensor for other ranks"
        )
    node = Node(g, None, (), shape, dtype, name)
    if value is not None:
        Let(node, value)
        node.preset = True
    if "init" in o:
        if not is_concrete(shape):
            raise ShapeError(
                f"{ctor}({node.name}): cannot initialise a node of shape {fmt_shape(shape)} "
                f"with a free (None) dimension; learnables need a fixed shape"
            )
        node.init = o["init"]
        arr = o["init"](dtype, shape)
        Let(node, arr)
    if "grad" in o:
        if not node.has_value:
            raise GraphError(f"{ctor}({node.name}): WithGrad needs a value (WithValue/WithInit)")
        grad = np.array(
            safe_cast(o["grad"], dtype, f"WithGrad for {node.name!r}", f"node {node.name!r}"),
            order="C",
        )
        if grad.shape != node.value.shape:
            raise ShapeError(
                f"WithGrad for {node.name!r}: gradient shape {fmt_shape(grad.shape)} differs "
                f"from the value's {fmt_shape(node.value.shape)}"
            )
        node.slot.bind_grad(grad)
    return node


def NewScalar(g: Graph, dt: DtypeLike, *opts: NodeOpt) -> Node:
    """A scalar input node.

    Example:
        >>> import graphcore as gc
        >>> gc.NewScalar(gc.NewGraph(), gc.Float32, gc.WithName("lr")).shape
        ()
    """
    return _new_input(g, dt, 0, opts, "NewScalar")


def NewVector(g: Graph, dt: DtypeLike, *opts: NodeOpt) -> Node:
    """A 1-D input node.

    Example:
        >>> import graphcore as gc
        >>> gc.NewVector(gc.NewGraph(), gc.Float32, gc.WithShape(5), gc.WithName("v")).shape
        (5,)
    """
    return _new_input(g, dt, 1, opts, "NewVector")


def NewMatrix(g: Graph, dt: DtypeLike, *opts: NodeOpt) -> Node:
    """A 2-D input node; ``WithShape(None, n)`` leaves the batch size free.

    Example:
        >>> import graphcore as gc
        >>> gc.NewMatrix(gc.NewGraph(), gc.Float32, gc.WithShape(None, 784), gc.WithName("x")).shape
        (None, 784)
    """
    return _new_input(g, dt, 2, opts, "NewMatrix")


def NewTensor(g: Graph, dt: DtypeLike, dims: int | None = None, *opts: NodeOpt) -> Node:
    """An input node of any rank (``dims`` checks the rank when given).

    Example:
        >>> import graphcore as gc
        >>> gc.NewTensor(gc.NewGraph(), gc.Float32, 4, gc.WithShape(None, 1, 28, 28),
        ...              gc.WithName("img")).ndim
        4
    """
    if isinstance(dims, NodeOpt):
        opts = (dims, *opts)
        dims = None
    return _new_input(g, dt, dims, opts, "NewTensor")


def NewConstant(value: Any, name: str | None = None, dtype: DtypeLike | None = None) -> Node:
    """A constant node; it belongs to no graph until an op uses it.

    Python floats become Float64 unless ``dtype`` is given; ops cast constants to their
    other operand's float type.

    Example:
        >>> import graphcore as gc
        >>> gc.NewConstant(2.0).value
        array(2.)
    """
    arr = np.asarray(value)
    if dtype is not None:
        dt = as_dtype(dtype)
    elif arr.dtype.kind == "f":
        dt = as_dtype(arr.dtype) if arr.dtype in (np.float32, np.float64) else as_dtype("float64")
    elif arr.dtype.kind in "iu":
        dt = as_dtype("int64") if arr.dtype != np.int32 else as_dtype("int32")
    elif arr.dtype.kind == "b":
        dt = as_dtype("bool")
    else:
        raise DtypeError(f"NewConstant: unsupported value {value!r} of dtype {arr.dtype}")
    if name is None:
        name = str(value) if arr.ndim == 0 else f"const{arr.shape}"
    node = Node(None, None, (), arr.shape, dt, name, constant=True)
    value_ = np.array(arr, dtype=dt.np, copy=True)
    value_.flags.writeable = False
    node.slot.bind(value_)
    return node


def NodeFromAny(g: Graph, value: Any, *opts: NodeOpt) -> Node:
    """An input node of ``value``'s shape and dtype, holding a copy of it.

    Example:
        >>> import numpy as np, graphcore as gc
        >>> n = gc.NodeFromAny(gc.NewGraph(), np.zeros((2, 2), np.float32), gc.WithName("z"))
        >>> n.dtype, n.shape
        (Float32, (2, 2))
    """
    arr = np.asarray(value)
    return _new_input(g, arr.dtype, None, (*opts, NodeOpt("value", arr)), "NodeFromAny")


def as_node(x: Any, like: Node | None = None) -> Node:
    """``x`` if it is a node, else a constant (float constants take ``like``'s float dtype).

    Example:
        >>> as_node(3.0).is_constant
        True
    """
    if isinstance(x, Node):
        return x
    if like is not None and like.dtype.is_float and np.asarray(x).dtype.kind in "fiub":
        return NewConstant(x, dtype=like.dtype)
    return NewConstant(x)


def Let(node: Node, value: Any, copy: bool = True) -> None:
    """Bind a value to an input node, checking its shape and dtype.

    A ``None`` dimension accepts any size. Safe casts only (float64 data into a float32 node
    is allowed as numpy's ``same_kind`` cast; floats into an int node are not). The node keeps
    its own copy, so later changes to ``value`` do not leak into the graph.

    ``copy=False`` lends the array instead when it already has the node's dtype and is
    C-contiguous (else it is copied as usual): a tape machine whose only readers of the
    node are matrix products reads it in place, skipping a copy of the whole batch (10% of
    predicting at batch 10,000; batches of at most ``Plan.copy_below`` bytes, 1 MiB, are
    copied by the machine, which is faster there). Do not change the array until the
    machine has run.

    Example:
        >>> import numpy as np, graphcore as gc
        >>> g = gc.NewGraph()
        >>> x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 2), gc.WithName("x"))
        >>> gc.Let(x, np.ones((5, 2))); x.value.shape
        (5, 2)
        >>> data = np.zeros((3, 2), np.float32); gc.Let(x, data, copy=False); x.value is data
        True
    """
    if type(node) is not Node and not isinstance(node, Node):
        raise TypeError(f"Let: the first argument must be a node, got {type(node).__name__}")
    if node.op is not None or node.is_constant:
        raise GraphError(
            f"Let: {node.describe()} is not an input node; only inputs made with "
            f"NewScalar/NewVector/NewMatrix/NewTensor take values"
        )
    if not copy and type(value) is np.ndarray and value.dtype == node.dtype.np:
        flags = value.flags
        if flags.c_contiguous and flags.aligned and _fits(node.shape, value.shape):
            # lending an array as it is, as a prediction loop does per batch: nothing to redo
            node.slot.bind(value, lent=True)
            return
    who = f"Let({node.name})"
    arr = _as_array(value, who)
    if not _fits(node.shape, arr.shape):
        raise ShapeError(
            f"Let({node.name}): node {node.name!r} expects shape {fmt_shape(node.shape)}, "
            f"got an array of shape {fmt_shape(arr.shape)}"
            + ("; None dimensions take any size" if None in node.shape else "")
        )
    arr = safe_cast(arr, node.dtype, who, f"node {node.name!r}")
    slot = node.slot
    if not copy and arr.flags.c_contiguous and arr.flags.aligned:
        slot.bind(arr, lent=True)
        return
    # Copy into the existing buffer so machines that bound it keep seeing the new data (never
    # into a lent array: that is the caller's).
    cur = slot.owned_value()
    if cur is not None and cur.shape == arr.shape:
        np.copyto(cur, arr, casting="same_kind")
        slot.bind(cur)
    else:
        slot.bind(np.array(arr, copy=True, order="C"))


def _fits(want: tuple[int | None, ...], got: tuple[int, ...]) -> bool:
    """Whether an array of shape ``got`` fits a node of shape ``want`` (None: any size)."""
    if len(want) != len(got):
        return False
    for d, a in zip(want, got):
        if d is not None and d != a:
            return False
    return True


def UnsafeLet(node: Node, value: Any) -> None:
    """Bind a value to any node, op nodes included (``Let`` takes inputs only).

    The value is checked against the node's shape and dtype as ``Let`` checks it, and stands
    until a machine computes the node again. Use it to start a program made by
    ``CompileFunction`` from an intermediate node, or to try a value for a node by hand.
    (Gorgonia's UnsafeLet could also change a slice op's range; slice a node with ``Slice``
    and feed the range through an input instead.)

    Example:
        >>> import numpy as np, graphcore as gc
        >>> g = gc.NewGraph(); x = gc.NewVector(g, gc.Float64, gc.WithShape(2))
        >>> h = gc.Exp(x); gc.UnsafeLet(h, [1.0, 2.0]); h.value.tolist()
        [1.0, 2.0]
    """
    if not isinstance(node, Node):
        raise TypeError(f"UnsafeLet: the first argument must be a node, got {type(node).__name__}")
    if node.is_constant:
        raise GraphError(f"UnsafeLet: {node.describe()} is a constant; constants do not change")
    if node.op is None:
        Let(node, value)
        return
    who = f"UnsafeLet({node.name})"
    arr = _as_array(value, who)
    if len(arr.shape) != len(node.shape) or any(
        d is not None and d != a for d, a in zip(node.shape, arr.shape)
    ):
        raise ShapeError(
            f"{who}: node {node.name!r} has shape {fmt_shape(node.shape)}, got an array of "
            f"shape {fmt_shape(arr.shape)}"
        )
    arr = safe_cast(arr, node.dtype, who, f"node {node.name!r}")
    node.slot.publish(np.array(arr, copy=True, order="C"))


def as_array(value: Any) -> np.ndarray:
    """``value`` as a numpy array, without a copy where none is needed: numpy arrays (read-only
    and non-contiguous ones as they are), anything with ``__array__`` (pandas DataFrames,
    PyTorch CPU tensors, JAX arrays), objects that only speak DLPack (``__dlpack__``), lists
    and numbers. ``Let`` and golgi's ``fit``/``predict`` take their data through it.

    Example:
        >>> import numpy as np
        >>> a = np.arange(6.0).reshape(2, 3)[:, ::2]; as_array(a) is a
        True
        >>> class OnlyDLPack:  # e.g. a tensor from a library without __array__
        ...     def __init__(self, a): self.a = a
        ...     def __dlpack__(self, **kw): return self.a.__dlpack__(**kw)
        ...     def __dlpack_device__(self): return self.a.__dlpack_device__()
        >>> as_array(OnlyDLPack(np.ones(2))).tolist()
        [1.0, 1.0]
    """
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "__dlpack__") and not hasattr(value, "__array__"):
        return np.from_dlpack(value)
    return np.asarray(value)


def _as_array(value: Any, who: str) -> np.ndarray:
    try:
        arr = as_array(value)
    except Exception as e:  # noqa: BLE001 - numpy raises many types for bad input
        raise TypeError(f"{who}: cannot turn {type(value).__name__} into an array") from e
    if arr.dtype == object:
        raise TypeError(f"{who}: cannot bind an object array; give a numeric array")
    return arr
