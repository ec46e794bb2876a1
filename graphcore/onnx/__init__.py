"""ONNX out and in: ``ToONNX(outputs, path)`` writes a graph as an ONNX model and
``FromONNX(path)`` reads one back as a graph, its initializers as learnables.

The op table has two halves, one row per op: :data:`EXPORTS` (graphcore op name -> how it is
written in ONNX, :mod:`graphcore.onnx.export_table`) and :data:`IMPORTS` (ONNX op type -> the
graphcore ops it becomes, :mod:`graphcore.onnx.import_table`). Both functions need the
optional ``onnx`` package (``pip install 'golgi-dl[onnx]'``), imported only when they run:
``import graphcore`` does not import it.

Example:
    >>> import graphcore as gc
    >>> gc.onnx.DEFAULT_OPSET, "Conv2d" in gc.onnx.EXPORTS, "Gemm" in gc.onnx.IMPORTS
    (17, True, True)
"""

from .common import DEFAULT_OPSET, MIN_OPSET, ONNXError
from .export import ToONNX
from .export_table import EXPORTS
from .import_table import IMPORTS
from .importer import FromONNX

__all__ = ["ToONNX", "FromONNX", "ONNXError", "DEFAULT_OPSET", "MIN_OPSET", "EXPORTS", "IMPORTS"]
