"""Export a golgi model to ONNX: ``export_onnx(model, path)``.

The model's graph is written with :func:`graphcore.ToONNX`: its input node becomes the ONNX
input (the batch dimension stays dynamic), its learnables become initializers, and dropout
and batch norm are written as they run in eval mode. To read an ONNX model back, use
``graphcore.FromONNX`` (it gives a graph, not golgi layers).

Example:
    >>> import graphcore as gc, golgi as G
    >>> net = G.models.MLP(sizes=(4, 8, 3), softmax=True)
    >>> model = G.export_onnx(net, None)
    >>> [n.op_type for n in model.graph.node]
    ['MatMul', 'Add', 'Relu', 'MatMul', 'Add', 'Softmax']
"""

from __future__ import annotations

import os
from typing import Any

import graphcore as gc

from .compose import Composition
from .term import Term

__all__ = ["export_onnx"]


def export_onnx(
    model: Term,
    path: str | os.PathLike[str] | None,
    x: gc.Node | None = None,
    opset: int | None = None,
) -> Any:
    """Write a built golgi model to an ONNX file at ``path``; return the ``onnx.ModelProto``.

    ``model``: a composition built on its input (``ComposeSeq(x, ...)``, the talk's
    ``models.MLP()``), or any term together with the input node ``x`` it is applied to
    (``model.fwd(x)`` gives the output written). ``opset``: the ai.onnx opset (default
    ``graphcore.onnx.DEFAULT_OPSET``, 17). ``path`` None only returns the model. Layers
    export as their graphcore ops (``ConsFC`` as MatMul and Add, ``ConsConv`` as Conv and
    Add, ``ConsDropout`` as an inference Dropout, ``ConsBatchNorm`` as BatchNormalization
    with the running statistics); an op without an ONNX equivalent raises
    ``graphcore.onnx.ONNXError`` naming it. Needs the ``onnx`` extra
    (``pip install 'golgi-dl[onnx]'``).

    Example:
        >>> import graphcore as gc, golgi as G
        >>> g = gc.NewGraph()
        >>> x = gc.NewTensor(g, gc.Float32, 4, gc.WithShape(None, 1, 8, 8), gc.WithName("x"))
        >>> net = G.ComposeSeq(x, G.L(G.ConsConv(G.WithShape(4), G.WithName("c1"))),
        ...                    G.L(G.ConsMaxPool()), G.L(G.ConsFlatten()),
        ...                    G.L(G.ConsFC(G.WithShape(10), G.WithName("out"))))
        >>> m = G.export_onnx(net, None)
        >>> [n.op_type for n in m.graph.node if n.op_type != "Constant"]
        ['Conv', 'Add', 'MaxPool', 'Reshape', 'MatMul', 'Add']
    """
    if not isinstance(model, Term):
        raise TypeError(
            f"export_onnx: model must be a golgi model (a composition or layer), got "
            f"{type(model).__name__}"
        )
    if x is None:
        if not isinstance(model, Composition) or model.input is None or model.out is None:
            raise gc.GraphError(
                "export_onnx: the model is not built on an input yet; build it with its input "
                "node (ComposeSeq(x, ...)) or pass the input: export_onnx(model, path, x=x)"
            )
        x, out = model.input, model.out
    else:
        out = model.fwd(x)
    return gc.ToONNX(out, path, inputs=[x], opset=opset)
