"""Import an ONNX model as a graph: ``FromONNX(path) -> (graph, inputs, outputs)``.

The loader reads the model's nodes in order and builds each with its row of the import table
(:data:`graphcore.onnx.import_table.IMPORTS`). Float initializers become learnables (input
nodes holding the values, which ``Grad`` differentiates and solvers train); a
``BatchNormalization``'s running mean and variance become the running statistics of a
``BatchNorm`` node instead. Values known before anything runs (``Constant`` nodes, integer
initializers, and shape arithmetic on them, such as ``Shape`` -> ``Gather`` -> ``Concat`` ->
``Reshape``) are computed with numpy while loading, so they become constants or op
parameters. A named or unknown dimension of a graph input becomes a free (``None``) one.

Example:
    >>> import numpy as np, graphcore as gc
    >>> g = gc.NewGraph()
    >>> x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 2), gc.WithName("x"))
    >>> w = gc.NewMatrix(g, gc.Float32, gc.WithShape(2, 2), gc.WithName("w"),
    ...                  gc.WithValue(np.eye(2)))
    >>> g2, (x2,), (y2,) = gc.FromONNX(gc.ToONNX(gc.Tanh(gc.Mul(x, w)), None))
    >>> x2.shape, y2.op.name, [n.name for n in g2.inputs()]
    ((None, 2), 'Tanh', ['x', 'w'])
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..dtypes import Dtype
from ..errors import GraphError
from ..graph import Graph, NewGraph, Node
from ..options import WithName, WithShape, WithValue
from ..values import NewConstant, NewTensor
from .common import ONNXError, dtype_of_elem, require_onnx
from .import_table import IMPORTS

__all__ = ["FromONNX", "Loader"]

Value = Node | np.ndarray


class Loader:
    """The graph being built from an ONNX model; the import table's rows call its methods.

    ``node(name)`` is a value as a graph node, ``static(name)`` the numpy array of a value
    known while loading (else None), ``need_static`` the same or an error naming the node,
    ``opset`` the model's ai.onnx opset.

    Example:
        >>> ld = Loader(require_onnx("Loader"), 17, "g")
        >>> ld.put("c", np.float32([1.0, 2.0])); ld.node("c").is_constant, ld.static("c")
        (True, array([1., 2.], dtype=float32))
    """

    def __init__(self, onnx: Any, opset: int, name: str) -> None:
        self.onnx = onnx
        self.opset = opset
        self.graph: Graph = NewGraph(name or "onnx")
        self.nodes: dict[str, Node] = {}
        self.statics: dict[str, np.ndarray] = {}
        self.initializers: dict[str, np.ndarray] = {}
        self.producer: dict[str, str] = {}
        self.where = "FromONNX"

    def put(self, name: str, v: Value) -> None:
        """Record the value named ``name``: a node, or an array known while loading."""
        if isinstance(v, Node):
            self.nodes[name] = v
        else:
            self.statics[name] = np.asarray(v)

    def static(self, name: str) -> np.ndarray | None:
        """The array of a value known while loading (a constant or initializer), else None."""
        if name in self.statics:
            return self.statics[name]
        return self.initializers.get(name)

    def need_static(self, p: Any, i: int, what: str) -> np.ndarray:
        """Input ``i`` of ONNX node ``p`` as an array known while loading, or an error."""
        name = p.input[i]
        arr = self.static(name)
        if arr is None:
            raise self.error(
                p,
                f"its {what} (input {i}, {name!r}) is computed when the graph runs; graphcore "
                f"needs it known when the model is loaded (a constant or an initializer)",
            )
        return arr

    def has(self, p: Any, i: int) -> bool:
        """Whether ONNX node ``p`` has a non-empty input ``i`` (optional inputs may be absent)."""
        return len(p.input) > i and p.input[i] != ""

    def node(self, name: str) -> Node:
        """The value named ``name`` as a graph node: a float initializer becomes a learnable
        (made once), another known array a constant."""
        hit = self.nodes.get(name)
        if hit is not None:
            return hit
        init = self.initializers.get(name)
        if init is not None and init.dtype.kind == "f":
            arr = np.array(init, copy=True)
            n = NewTensor(self.graph, arr.dtype, arr.ndim, WithShape(*arr.shape), WithName(name),
                          WithValue(arr))
        elif name in self.statics or init is not None:
            known = self.static(name)
            if known is not None and known.dtype == object:
                raise ONNXError(
                    f"{self.where}: value {name!r} holds a shape with a free dimension "
                    f"({known.tolist()}); graphcore can use it only as the target of a Reshape"
                )
            n = NewConstant(known, name=name)
        else:
            made_by = self.producer.get(name)
            where = f" (an output of node {made_by})" if made_by else ""
            raise ONNXError(
                f"{self.where}: value {name!r}{where} is not supported: graphcore does not "
                f"compute this output of its node (e.g. MaxPool's Indices or Dropout's mask)"
            )
        self.nodes[name] = n
        return n

    def error(self, p: Any, msg: str) -> ONNXError:
        """An ``ONNXError`` naming ONNX node ``p`` and its op type."""
        return ONNXError(f"{self.where}: node {_label(p)}: {msg}")


def _label(p: Any) -> str:
    return f"{p.name or p.output[0]!r} (op {p.op_type})"


def _attrs(onnx: Any, p: Any) -> dict[str, Any]:
    out = {}
    for a in p.attribute:
        v = onnx.helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


def _load(source: Any, onnx: Any) -> Any:
    if isinstance(source, onnx.ModelProto):
        return source
    if isinstance(source, (bytes, bytearray)):
        return onnx.load_from_string(bytes(source))
    if isinstance(source, (str, os.PathLike)):
        return onnx.load(os.fspath(source))
    raise TypeError(
        f"FromONNX takes a path, the model's bytes or an onnx.ModelProto, got "
        f"{type(source).__name__}"
    )


def _opset(model: Any) -> int:
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            return int(o.version)
    raise ONNXError("FromONNX: the model imports no ai.onnx opset")


def _input_node(ld: Loader, vi: Any) -> Node:
    t = vi.type.tensor_type
    if not vi.type.HasField("tensor_type"):
        raise ONNXError(f"FromONNX: graph input {vi.name!r} is not a tensor")
    dt: Dtype = dtype_of_elem(ld.onnx, t.elem_type, f"FromONNX: graph input {vi.name!r}")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
    return NewTensor(ld.graph, dt, len(dims), WithShape(*dims), WithName(vi.name))


def FromONNX(source: str | os.PathLike[str] | bytes | Any) -> tuple[Graph, list[Node], list[Node]]:
    """Read an ONNX model (a path, its bytes or an ``onnx.ModelProto``) as a graph; return
    ``(graph, inputs, outputs)``: the input nodes to ``Let`` data into and the output
    nodes, in the model's order.

    Initializers become learnables: the graph's other input nodes,
    ``[n for n in graph.inputs() if n not in inputs]``, hold the trained values and train
    like any others (``Grad``, ``BindDualValues``, a solver). A named or unknown dimension
    (a dynamic batch) becomes ``None``. ``Dropout`` and ``BatchNormalization`` act as their
    graphcore ops do: run the machine in eval mode (``EvalMode()``) to compute what ONNX
    inference computes. An op graphcore cannot express raises ``ONNXError`` naming the node
    and its op type. Needs the ``onnx`` extra (``pip install 'golgi-dl[onnx]'``).

    Example:
        >>> import numpy as np, graphcore as gc
        >>> g = gc.NewGraph()
        >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
        >>> graph, (x2,), (y2,) = gc.FromONNX(gc.ToONNX(gc.SoftMax(x * 2.0), None))
        >>> gc.Let(x2, np.zeros((1, 3))); gc.NewTapeMachine(graph).run_all()
        >>> y2.value.round(3).tolist()
        [[0.333, 0.333, 0.333]]
    """
    onnx = require_onnx("FromONNX")
    model = _load(source, onnx)
    g = model.graph
    ld = Loader(onnx, _opset(model), g.name)
    for t in g.initializer:
        ld.initializers[t.name] = onnx.numpy_helper.to_array(t)
    inputs = [_input_node(ld, vi) for vi in g.input if vi.name not in ld.initializers]
    for n in inputs:
        ld.nodes[n.name] = n
    for p in g.node:
        if p.domain not in ("", "ai.onnx"):
            raise ld.error(p, f"ops of domain {p.domain!r} are not supported (only ai.onnx)")
        row = IMPORTS.get(p.op_type)
        if row is None:
            raise ld.error(
                p,
                "graphcore has no equivalent of this op; the ops FromONNX reads are listed in "
                "docs/interop.md",
            )
        for o in p.output:
            ld.producer[o] = _label(p)
        try:
            outs = row.build(ld, p, _attrs(onnx, p))
        except ONNXError:
            raise
        except (GraphError, ValueError, TypeError, IndexError) as e:
            raise ld.error(p, str(e)) from e
        for name, v in zip(p.output, outs, strict=False):
            if name:
                ld.put(name, v)
    outputs = []
    for vi in g.output:
        if vi.name in ld.nodes or vi.name in ld.statics or vi.name in ld.initializers:
            outputs.append(ld.node(vi.name))
        else:
            raise ONNXError(f"FromONNX: graph output {vi.name!r} is not computed by any node")
    return ld.graph, inputs, outputs
