"""What the ONNX exporter and importer share: the optional ``onnx`` package (imported only
when a conversion runs), the error they raise, the opsets they write and the dtype map.

``import graphcore`` never imports ``onnx``: :func:`require_onnx` does, inside
``ToONNX``/``FromONNX``, and says which extra to install when it is missing.

Example:
    >>> DEFAULT_OPSET, MIN_OPSET
    (17, 13)
    >>> issubclass(ONNXError, GraphError)
    True
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from ..dtypes import Dtype, as_dtype
from ..errors import GraphError

__all__ = [
    "DEFAULT_OPSET", "MIN_OPSET", "INSTALL_HINT", "ONNXError", "require_onnx", "max_opset",
    "onnx_elem_type", "dtype_of_elem",
]

#: The ai.onnx opset ``ToONNX`` writes unless told otherwise: 17 (IR version 8), read by
#: onnxruntime 1.12 and later and by every onnx release since 1.12, the opset PyTorch's
#: exporter long defaulted to. Newer opsets only change how Gelu and Mish are written.
DEFAULT_OPSET = 17
#: The oldest opset ``ToONNX`` writes: 13 is where Softmax became per-axis and ReduceSum,
#: Squeeze and Unsqueeze took their axes as inputs. ``FromONNX`` reads older models too.
MIN_OPSET = 13
INSTALL_HINT = "pip install 'golgi-dl[onnx]'"


class ONNXError(GraphError):
    """A graph or model that cannot be converted: the message names the node, its op and why.

    Example:
        >>> raise ONNXError("ToONNX: node 'y' (op Foo) has no ONNX equivalent")
        Traceback (most recent call last):
        graphcore.onnx.common.ONNXError: ToONNX: node 'y' (op Foo) has no ONNX equivalent
    """


def require_onnx(who: str) -> ModuleType:
    """The ``onnx`` package, or an ``ImportError`` naming the extra that installs it.

    Example:
        >>> try:
        ...     ok = require_onnx("ToONNX").__name__ == "onnx"
        ... except ImportError as e:  # the message names the extra to install
        ...     ok = "golgi-dl[onnx]" in str(e)
        >>> ok
        True
    """
    try:
        import onnx
    except ImportError as e:
        raise ImportError(
            f"{who} needs the optional 'onnx' package, which is not installed; install the "
            f"extra with: {INSTALL_HINT}"
        ) from e
    return onnx


def max_opset(onnx: ModuleType) -> int:
    """The newest ai.onnx opset the installed ``onnx`` package knows."""
    return int(onnx.defs.onnx_opset_version())


def onnx_elem_type(onnx: ModuleType, dt: Dtype) -> int:
    """The ``TensorProto`` element type of a graphcore dtype."""
    return int(onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dt.np)))


def dtype_of_elem(onnx: ModuleType, elem: int, who: str) -> Dtype:
    """The graphcore dtype of a ``TensorProto`` element type; ``ONNXError`` naming ``who``
    for types graphcore does not have (float16, bfloat16, strings, ...)."""
    try:
        np_dt: Any = onnx.helper.tensor_dtype_to_np_dtype(elem)
        return as_dtype(np_dt)
    except (TypeError, KeyError, ValueError):
        name = onnx.TensorProto.DataType.Name(elem) if elem else "undefined"
        raise ONNXError(
            f"{who} has element type {name}, which graphcore does not support; graphcore "
            f"takes float32, float64, int32, int64 and bool tensors (convert the model first)"
        ) from None
