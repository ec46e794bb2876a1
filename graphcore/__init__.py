"""graphcore: a define-then-run graph with symbolic autodiff, compiled and interpreted
machines, solvers and initializers, in the style of Go's Gorgonia, on numpy.

Example:
    >>> import numpy as np, graphcore as gc
    >>> g = gc.NewGraph()
    >>> x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
    >>> w = gc.NewMatrix(g, gc.Float64, gc.WithShape(2, 1), gc.WithName("w"),
    ...                  gc.WithValue([[1.0], [2.0]]))
    >>> cost = gc.Mean(gc.Square(gc.Mul(x, w)))
    >>> _ = gc.Grad(cost, w)
    >>> vm = gc.NewTapeMachine(g, gc.BindDualValues(w))
    >>> gc.Let(x, np.array([[1.0, 1.0]])); vm.run_all(); float(cost.value)
    9.0
"""

from . import accel  # optional compiled kernels (numba): gc.accel.enabled(), ...
from .autodiff import Grad
from .dot import ToDot
from .dtypes import Bool, Dtype, Float32, Float64, Int32, Int64, as_dtype
from .errors import (
    DtypeError,
    GradError,
    GraphError,
    NonFiniteError,
    ShapeError,
    ValueNotAvailableError,
)
from .graph import (
    Graph,
    Let,
    NewConstant,
    NewGraph,
    NewMatrix,
    NewScalar,
    NewTensor,
    NewVector,
    Node,
    NodeFromAny,
)
from .machines import (
    BindDualValues,
    EvalMode,
    ExecuteFwdOnly,
    LispMachine,
    NewLispMachine,
    NewTapeMachine,
    TapeMachine,
    TrainMode,
    WithInfWatch,
    WithNaNWatch,
    WithNoBufferReuse,
    WithWatchlist,
)
from .ops import *  # noqa: F403 - the ops are the public API
from .ops import __all__ as _ops_all
from .options import WithGrad, WithInit, WithName, WithShape, WithValue
from .rng import SetSeed

__version__ = "0.1.0"

__all__ = [
    "Grad", "ToDot", "Dtype", "Float64", "Float32", "Int64", "Int32", "Bool", "as_dtype",
    "GraphError", "ShapeError", "DtypeError", "GradError", "ValueNotAvailableError",
    "NonFiniteError", "Graph", "Node", "NewGraph", "NewScalar", "NewVector", "NewMatrix",
    "NewTensor", "NewConstant", "NodeFromAny", "Let", "NewTapeMachine", "TapeMachine",
    "NewLispMachine", "LispMachine", "BindDualValues", "WithWatchlist", "WithNaNWatch",
    "WithInfWatch", "EvalMode", "TrainMode", "ExecuteFwdOnly", "WithNoBufferReuse",
    "WithShape", "WithName", "WithInit", "WithValue", "WithGrad", "SetSeed", "accel",
    "__version__",
    *_ops_all,
]

try:  # solvers and initializers (separate modules, re-exported)
    from .init import *  # noqa: F403
    from .init import __all__ as _init_all
    from .solvers import *  # noqa: F403
    from .solvers import __all__ as _solvers_all

    __all__ += [*_init_all, *_solvers_all]
except ImportError:  # pragma: no cover - during bootstrap only
    pass
