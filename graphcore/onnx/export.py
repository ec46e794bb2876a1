"""Export a graph to ONNX: ``ToONNX(outputs, path, inputs=None, opset=None)``.

The exporter walks back from the outputs through the nodes they need and writes each op node
with its row of the export table (:data:`graphcore.onnx.table.EXPORTS`): most rows write one
ONNX node, some a short composition, and a few read through a helper node (``Conv2d`` reads
the image behind its ``Im2Col`` node, ``Dropout`` and ``BatchNorm`` skip their mask and
statistics nodes). Learnables (input nodes given a value with ``WithValue``/``WithInit``)
become initializers, constants become ``Constant`` nodes, and the other input nodes become
the graph's inputs, a free (``None``) dimension becoming the named dimension ``batch``.

The model is what an eval-mode run computes: ``Dropout`` is written as an ONNX ``Dropout``
(the identity at inference) and ``BatchNorm`` as ``BatchNormalization`` with the running
statistics.

Example:
    >>> import numpy as np, graphcore as gc
    >>> g = gc.NewGraph()
    >>> x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 3), gc.WithName("x"))
    >>> w = gc.NewMatrix(g, gc.Float32, gc.WithShape(3, 2), gc.WithName("w"),
    ...                  gc.WithValue(np.ones((3, 2))))
    >>> y = gc.Rectify(gc.Mul(x, w))
    >>> m = gc.ToONNX(y, None)
    >>> [n.op_type for n in m.graph.node], [i.name for i in m.graph.initializer]
    (['MatMul', 'Relu'], ['w'])
    >>> [d.dim_param or d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim]
    ['batch', 3]
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..dtypes import Dtype
from ..graph import Node, ancestors
from .common import (
    DEFAULT_OPSET,
    MIN_OPSET,
    ONNXError,
    max_opset,
    onnx_elem_type,
    require_onnx,
)
from .export_table import EXPORTS, ExportRow

__all__ = ["ToONNX", "Exporter", "BATCH"]

#: The name of the ONNX dimension a free (``None``) dimension becomes.
BATCH = "batch"


def _is_learnable(n: Node) -> bool:
    """An input node given its value when built (a weight), not data bound later with Let."""
    return n.op is None and not n.is_constant and n.has_value and (n.preset or n.init is not None)


class Exporter:
    """The ONNX graph being written; the export table's rows call its methods.

    ``value(node)`` is the ONNX name of a node already written, ``add`` writes an ONNX node,
    ``const``/``ints`` write constants and ``initializer`` a named tensor.

    Example:
        >>> e = Exporter(require_onnx("Exporter"), 17)
        >>> e.add("Relu", [e.const(np.float32([1, -2]))]), [n.op_type for n in e.nodes]
        ('Relu', ['Constant', 'Relu'])
    """

    def __init__(self, onnx: Any, opset: int) -> None:
        self.onnx = onnx
        self.helper = onnx.helper
        self.opset = opset
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.names: dict[int, str] = {}
        self._taken: set[str] = set()
        self._count = 0
        self._consts: dict[tuple[Any, ...], str] = {}
        self._arrays: dict[int, str] = {}

    # ----- names ---------------------------------------------------------------------------------
    def fresh(self, stem: str) -> str:
        """A value name not used yet, ``stem`` itself when free."""
        name = stem or "v"
        while name in self._taken:
            self._count += 1
            name = f"{stem}_{self._count}"
        self._taken.add(name)
        return name

    def value(self, node: Node) -> str:
        """The ONNX name of ``node``'s value (written before the nodes that read it)."""
        try:
            return self.names[id(node)]
        except KeyError:
            raise ONNXError(
                f"ToONNX: {node.describe()} was not written before a node that reads it "
                f"(an export row reads an operand it did not list)"
            ) from None

    # ----- writing -------------------------------------------------------------------------------
    def add(
        self,
        op_type: str,
        inputs: Sequence[str],
        node: Node | None = None,
        n_out: int = 1,
        **attrs: Any,
    ) -> str:
        """Write an ONNX node; return its (first) output name.

        With ``node``, the output is named after it and stands for its value; otherwise it
        gets a fresh name after ``op_type``. The ONNX node takes its output's name (unique).
        Attributes that are None are left out.
        """
        out = self.fresh(node.name if node is not None else op_type)
        outs = [out] + [self.fresh(f"{out}_{i}") for i in range(1, n_out)]
        kw = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(self.helper.make_node(op_type, list(inputs), outs, name=out, **kw))
        if node is not None:
            self.names[id(node)] = out
        return out

    def const(self, value: Any, dtype: Dtype | np.dtype | None = None) -> str:
        """A ``Constant`` node holding ``value`` (cast to ``dtype``); equal constants are
        written once."""
        arr = np.asarray(value, dtype=dtype.np if isinstance(dtype, Dtype) else dtype)
        key = (arr.dtype.str, arr.shape, arr.tobytes())
        hit = self._consts.get(key)
        if hit is not None:
            return hit
        name = self.fresh("const")
        tensor = self.onnx.numpy_helper.from_array(np.array(arr, order="C"), name)
        self.nodes.append(self.helper.make_node("Constant", [], [name], name=name, value=tensor))
        self._consts[key] = name
        return name

    def ints(self, values: Sequence[int]) -> str:
        """A 1-D int64 constant (shapes, axes, slice bounds)."""
        return self.const(np.asarray(list(values), dtype=np.int64))

    def initializer(self, array: np.ndarray, stem: str) -> str:
        """An initializer holding ``array`` (one per array object), named after ``stem``."""
        hit = self._arrays.get(id(array))
        if hit is not None:
            return hit
        name = self.fresh(stem)
        self.initializers.append(
            self.onnx.numpy_helper.from_array(np.array(array, order="C"), name)
        )
        self._arrays[id(array)] = name
        return name

    def tensor_info(self, name: str, node: Node) -> Any:
        """A ``ValueInfoProto`` for ``node``'s value: dtype and shape, None as ``batch``."""
        dims = [BATCH if d is None else int(d) for d in node.shape]
        return self.helper.make_tensor_value_info(name, onnx_elem_type(self.onnx, node.dtype), dims)


def _row(node: Node) -> ExportRow:
    assert node.op is not None
    row = EXPORTS.get("Identity" if node.op.identity else node.op.name)
    if row is None:
        raise ONNXError(
            f"ToONNX: node {node.name!r} (op {node.op}) has no ONNX equivalent, so the graph "
            f"cannot be exported; export a graph built from the ops ToONNX supports (listed "
            f"in docs/interop.md), e.g. the forward graph without its gradient nodes"
        )
    return row


def _needed(outputs: list[Node], e: Exporter) -> list[Node]:
    """The nodes the outputs need, in topological order; a row reading through a helper
    node (Conv2d's Im2Col) needs what lies behind it instead."""
    order = ancestors(outputs)
    keep: set[int] = set()
    stack = list(outputs)
    while stack:
        n = stack.pop()
        if id(n) in keep:
            continue
        keep.add(id(n))
        if n.op is not None:
            stack.extend(_row(n).operands(e, n))
    return [n for n in order if id(n) in keep]


def _check_opset(onnx: Any, opset: int | None) -> int:
    top = max_opset(onnx)
    if opset is None:
        return DEFAULT_OPSET
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)):
        raise TypeError(f"ToONNX: opset must be an int, got {opset!r}")
    if not MIN_OPSET <= int(opset) <= top:
        raise ValueError(
            f"ToONNX: opset {opset} is not supported; give an ai.onnx opset from {MIN_OPSET} "
            f"to {top} (the newest the installed onnx package knows), or leave it out for "
            f"{DEFAULT_OPSET}"
        )
    return int(opset)


def _as_nodes(v: Any, what: str) -> list[Node]:
    items = [v] if isinstance(v, Node) else list(v)
    for n in items:
        if not isinstance(n, Node):
            raise TypeError(f"ToONNX: {what} must be graph nodes, got {type(n).__name__}")
    return items


def ToONNX(
    outputs: Node | Sequence[Node],
    path: str | os.PathLike[str] | None,
    inputs: Sequence[Node] | None = None,
    opset: int | None = None,
) -> Any:
    """Write the graph computing ``outputs`` to an ONNX file at ``path``; return the model.

    ``outputs``: a node or a list of nodes (the model's outputs, in order). ``inputs``: the
    input nodes the model takes, in order; by default every input node the outputs depend
    on that was not given a value when built (learnables, made with ``WithValue`` or
    ``WithInit``, become initializers). An input not listed that has a value is written as
    an initializer. ``opset``: the ai.onnx opset, from 13 to the newest the installed onnx
    package knows; default :data:`DEFAULT_OPSET` (17). ``path`` None only returns the model.

    A free (``None``) dimension becomes the named dimension ``batch``, so the model takes
    any batch size. The model computes what an eval-mode run does (dropout off, batch norm
    with its running statistics). The model passes ``onnx.checker`` (full check) before it
    is written. A node whose op has no ONNX equivalent raises ``ONNXError`` naming it.
    Needs the ``onnx`` extra (``pip install 'golgi-dl[onnx]'``).

    Example:
        >>> import numpy as np, graphcore as gc
        >>> g = gc.NewGraph()
        >>> x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 4), gc.WithName("x"))
        >>> w = gc.NewMatrix(g, gc.Float32, gc.WithShape(4, 3), gc.WithName("w"),
        ...                  gc.WithInit(gc.GlorotU(1.0)))
        >>> probs = gc.SoftMax(gc.Mul(x, w))
        >>> model = gc.ToONNX(probs, None)
        >>> [n.op_type for n in model.graph.node], model.opset_import[0].version
        (['MatMul', 'Softmax'], 17)
    """
    onnx = require_onnx("ToONNX")
    opset = _check_opset(onnx, opset)
    outs = _as_nodes(outputs, "outputs")
    if not outs:
        raise ValueError("ToONNX: give at least one output node")
    e = Exporter(onnx, opset)
    needed = _needed(outs, e)
    given = None if inputs is None else _as_nodes(inputs, "inputs")
    graph_inputs = _graph_inputs(needed, given)
    input_ids = {id(n) for n in graph_inputs}
    for n in graph_inputs:
        e.names[id(n)] = e.fresh(n.name)
    for n in needed:
        if id(n) in e.names:
            continue
        if n.op is None:
            _write_input(e, n, input_ids)
        else:
            _row(n).emit(e, n)
    out_infos, seen = [], set()
    for n in outs:
        name = e.value(n)
        if name in seen or n.op is None:
            # an output must be a node's own output, and each output a value of its own
            name = e.add("Identity", [name])
        seen.add(name)
        out_infos.append(e.tensor_info(name, n))
    graph_name = next((n.graph.name for n in needed if n.graph is not None), "graph")
    graph = onnx.helper.make_graph(
        e.nodes,
        graph_name,
        [e.tensor_info(e.names[id(n)], n) for n in graph_inputs],
        out_infos,
        initializer=e.initializers,
    )
    opsets = [onnx.helper.make_opsetid("", opset)]
    model = onnx.helper.make_model(graph, opset_imports=opsets, producer_name="graphcore")
    model.ir_version = onnx.helper.find_min_ir_version_for(opsets)
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as err:  # a bug here, not in the user's graph
        raise ONNXError(f"ToONNX: the model written fails onnx.checker: {err}") from err
    if path is not None:
        onnx.save(model, os.fspath(path))
    return model


def _graph_inputs(needed: list[Node], given: list[Node] | None) -> list[Node]:
    leaves = [n for n in needed if n.op is None and not n.is_constant]
    if given is None:
        return [n for n in leaves if not _is_learnable(n)]
    ids = {id(n) for n in leaves}
    for n in given:
        if n.op is not None or n.is_constant:
            raise ValueError(f"ToONNX: inputs must be input nodes, got {n.describe()}")
        if id(n) not in ids:
            raise ValueError(f"ToONNX: the outputs do not depend on input {n.describe()}")
    listed = {id(n) for n in given}
    for n in leaves:
        if id(n) not in listed and not n.has_value:
            raise ValueError(
                f"ToONNX: the outputs depend on input {n.describe()}, which is not in inputs "
                f"and has no value to write as an initializer; add it to inputs=[...] or bind "
                f"a value"
            )
    return list(given)


def _write_input(e: Exporter, n: Node, input_ids: set[int]) -> None:
    if n.is_constant:
        e.names[id(n)] = e.const(n.value)
        return
    if not n.has_value:
        raise ValueError(f"ToONNX: {n.describe()} has no value to write as an initializer")
    name = e.fresh(n.name)
    e.initializers.append(e.onnx.numpy_helper.from_array(np.array(n.value, order="C"), name))
    e.names[id(n)] = name
