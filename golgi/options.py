"""Layer construction options, Golgi style: ``ConsFC(x, WithShape(250), WithName("e1"))``.

Each option is a small value (:class:`LayerOpt`) naming its kind and carrying plain data.
Layers declare the kinds they accept (``Layer.options``); a layer given an option it does not
take raises a ``TypeError`` that names the layer and the option. Values that need the layer to
be judged (is this an activation? does this weight fit?) are checked by the layer, so the
message can name it.

Example:
    >>> import graphcore as gc
    >>> WithShape(250), WithActivation(gc.Rectify)
    (WithShape(250), WithActivation(Rectify))
    >>> WithSize(10).kind == WithShape(10).kind
    True
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

import graphcore as gc
from graphcore import as_dtype
from graphcore.options import Option
from graphcore.shapes import fmt_shape

__all__ = [
    "LayerOpt",
    "WithShape",
    "WithSize",
    "WithName",
    "WithActivation",
    "WithBias",
    "WithInit",
    "WithWeights",
    "WithKernelShape",
    "WithPad",
    "WithStride",
    "WithDilation",
    "WithProbability",
    "WithEps",
    "WithMomentum",
    "ToShape",
    "WithClasses",
    "WithOneHotInput",
    "Of",
    "WithReturnSequences",
    "WithConst",
    "WithWB",
    "AsBatched",
    "AsPositionwise",
    "WithHeads",
    "WithCausal",
    "OPTION_NAMES",
    "fn_name",
    "is_activation_like",
    "check_option_value",
]

# kind -> the builder users write; used in repr and in "it takes ..." messages
OPTION_NAMES: dict[str, str] = {
    "shape": "WithShape",
    "name": "WithName",
    "activation": "WithActivation",
    "bias": "WithBias",
    "init": "WithInit",
    "weights": "WithWeights",
    "kernel": "WithKernelShape",
    "pad": "WithPad",
    "stride": "WithStride",
    "dilation": "WithDilation",
    "probability": "WithProbability",
    "eps": "WithEps",
    "momentum": "WithMomentum",
    "to_shape": "ToShape",
    "classes": "WithClasses",
    "onehot": "WithOneHotInput",
    "dtype": "Of",
    "return_sequences": "WithReturnSequences",
    "const": "WithConst",
    "wb": "WithWB",
    "batched": "AsBatched",
    "positionwise": "AsPositionwise",
    "heads": "WithHeads",
    "causal": "WithCausal",
}


def fn_name(fn: Any) -> str:
    """A short readable name for a function, partial or initializer (for reprs).

    Example:
        >>> import graphcore as gc
        >>> fn_name(gc.Rectify), fn_name(None)
        ('Rectify', 'None')
    """
    if fn is None:
        return "None"
    if isinstance(fn, functools.partial):
        args = [repr(a) for a in fn.args] + [f"{k}={v!r}" for k, v in fn.keywords.items()]
        return f"{fn_name(fn.func)}({', '.join(args)})"
    name = getattr(fn, "__name__", None)
    if isinstance(name, str):
        return name
    return repr(fn)


def _short(v: Any) -> str:
    """An array or node in an option's repr: small arrays by value, others by shape."""
    if v is None:
        return "None"
    if isinstance(v, gc.Node):
        return f"<node {v.name!r} of shape {v.shape}>"
    arr = np.asarray(v)
    if arr.size <= 4:
        return repr(arr.tolist())
    return f"<{type(v).__name__} of shape {arr.shape}>"


class LayerOpt(Option):
    """One layer option; build it with ``WithShape``, ``WithName``, ``WithActivation``, ...

    A graphcore :class:`~graphcore.options.Option`: immutable, with a ``kind`` and a ``value``,
    compared by both; its repr is the call that builds it.

    Example:
        >>> WithName("e1")
        WithName('e1')
        >>> WithName("e1").kind, WithName("e1").value
        ('name', 'e1')
        >>> WithName("e1") == WithName("e1"), WithShape(3) == WithShape(4)
        (True, False)
    """

    __slots__ = ()
    builders = OPTION_NAMES

    def __repr__(self) -> str:
        builder = self.builder
        v = self.value
        if self.kind == "activation" or self.kind == "init":
            return f"{builder}({fn_name(v)})"
        if self.kind == "onehot":
            return f"{builder}()"
        if self.kind == "weights":
            shape = getattr(v, "shape", None)
            return f"{builder}(<{type(v).__name__} of shape {shape}>)"
        if self.kind == "wb":
            return f"{builder}({_short(v[0])}, {_short(v[1])})"
        if self.kind == "const" and not isinstance(v, (int, float)):
            return f"{builder}({_short(v)})"
        if isinstance(v, tuple):
            return f"{builder}({', '.join(repr(d) for d in v)})"
        return f"{builder}({v!r})"


def is_activation_like(fn: Any) -> str | None:
    """Why ``fn`` is not usable as an activation, or None when it is.

    An activation maps a node to a node of the same shape (``gc.Rectify``, ``gc.SoftMax``,
    ``functools.partial(gc.LeakyRelu, alpha=0.2)``, or your own function of graphcore ops).

    Example:
        >>> import graphcore as gc, numpy as np
        >>> is_activation_like(gc.Tanh) is None, is_activation_like(np.tanh) is None
        (True, False)
    """
    if fn is None:
        return None
    if isinstance(fn, type) or not callable(fn):
        return f"{fn!r} ({type(fn).__name__}) is not a function"
    if isinstance(fn, np.ufunc):
        return f"numpy's {fn.__name__} works on arrays, not graph nodes; use the graphcore op"
    probe = gc.NewConstant(np.linspace(-1.0, 1.0, 6).reshape(2, 3), name="probe")
    try:
        out = fn(probe)  # graph-less constant in, graph-less node out: the graph is untouched
    except Exception as e:  # noqa: BLE001 - any failure means "not an activation"
        return f"calling it on a node fails ({type(e).__name__}: {e})"
    if not isinstance(out, gc.Node):
        return f"it returns {type(out).__name__}, not a graph node"
    if out.shape != probe.shape:
        return f"it changes the shape {fmt_shape(probe.shape)} to {fmt_shape(out.shape)}"
    return None


def check_option_value(who: str, kind: str, v: Any) -> Any:
    """Check a layer option's value where only a layer can judge it; return the value to keep.

    ``who`` starts the message (``"ConsFC (layer 'h')"``). An activation must map a node to a
    node of the same shape; weights must be a node or a numeric array (kept as an array).

    Example:
        >>> import numpy as np
        >>> check_option_value("ConsFC", "weights", [[1, 2]])
        array([[1, 2]])
        >>> check_option_value("ConsFC", "activation", np.tanh)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        TypeError: ConsFC: WithActivation needs a graphcore activation (...) or None, but ...
    """
    if kind == "activation":
        why = is_activation_like(v)
        if why is not None:
            raise TypeError(
                f"{who}: WithActivation needs a graphcore activation (gc.Rectify, gc.Sigmoid, "
                f"gc.Tanh, gc.SoftMax, gc.LeakyRelu, ...) or None, but {why}"
            )
    elif kind == "weights" and not isinstance(v, gc.Node):
        arr = np.asarray(v)
        if arr.dtype.kind not in "fiu":
            raise TypeError(f"{who}: WithWeights takes a numeric array or a node, got {v!r}")
        return arr
    elif kind == "wb":
        return tuple(None if a is None else check_option_value(who, "weights", a) for a in v)
    elif kind == "const" and not isinstance(v, gc.Node):
        arr = np.asarray(v)
        if arr.dtype.kind not in "fiu":
            raise TypeError(
                f"{who}: WithConst takes a number, a numeric array or a node, got {v!r}"
            )
        return arr
    return v


def _dims(what: str, dims: tuple[Any, ...], allow_none: bool = False) -> tuple[Any, ...]:
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    for d in dims:
        if d is None and allow_none:
            continue
        if isinstance(d, bool) or not isinstance(d, int):
            raise TypeError(f"{what} takes ints{' or None' if allow_none else ''}, got {dims!r}")
    return tuple(dims)


def _pair(what: str, args: tuple[Any, ...], minimum: int) -> tuple[int, int]:
    dims = _dims(what, args)
    if len(dims) == 1:
        dims = (dims[0], dims[0])
    if len(dims) != 2 or any(d < minimum for d in dims):
        raise ValueError(f"{what} takes one or two ints >= {minimum}, got {args!r}")
    return (int(dims[0]), int(dims[1]))


def WithShape(*dims: int) -> LayerOpt:
    """The layer's output size, e.g. the number of units of an FC layer (``WithSize`` alias).

    Example:
        >>> WithShape(250).value
        (250,)
    """
    d = _dims("WithShape", dims)
    if not d or any(x <= 0 for x in d):
        raise ValueError(f"WithShape takes positive sizes, got {dims!r}")
    return LayerOpt("shape", d)


WithSize = WithShape


def WithName(name: str) -> LayerOpt:
    """The layer's name; its learnables are named ``<name>/W``, ``<name>/b``.

    Example:
        >>> WithName("e1").value
        'e1'
    """
    if not isinstance(name, str) or not name or "/" in name:
        raise TypeError(f"WithName takes a non-empty string without '/', got {name!r}")
    return LayerOpt("name", name)


def WithActivation(fn: Callable[..., Any] | None) -> LayerOpt:
    """The activation applied to the layer's output: ``gc.Rectify``, ``gc.Sigmoid``, ... or None.

    The layer checks the value when it is constructed (so the error can name the layer): it
    must map a node to a node of the same shape, as every graphcore activation does.

    Example:
        >>> import graphcore as gc
        >>> WithActivation(gc.Tanh)
        WithActivation(Tanh)
    """
    return LayerOpt("activation", fn)


def WithBias(on: bool) -> LayerOpt:
    """Whether the layer adds a learned bias (on by default for FC).

    Example:
        >>> WithBias(False).value
        False
    """
    if not isinstance(on, bool):
        raise TypeError(f"WithBias takes True or False, got {on!r}")
    return LayerOpt("bias", on)


def WithInit(initializer: Callable[..., Any]) -> LayerOpt:
    """The weights' initializer, e.g. ``gc.GlorotN(1.0)`` (FC's default is ``GlorotU(1.0)``).

    Example:
        >>> WithInit(lambda dt, shape: None).kind
        'init'
    """
    if not callable(initializer):
        raise TypeError(
            f"WithInit takes an initializer such as gc.GlorotN(1.0), got {initializer!r}"
        )
    return LayerOpt("init", initializer)


def WithWeights(weights: Any) -> LayerOpt:
    """Use these weights: an array (copied into a new learnable) or a node (shared, e.g. tied).

    Example:
        >>> import numpy as np
        >>> WithWeights(np.zeros((3, 2))).kind
        'weights'
    """
    return LayerOpt("weights", weights)


def WithKernelShape(*dims: int) -> LayerOpt:
    """Kernel (window) height and width of a convolution or pooling layer.

    Example:
        >>> WithKernelShape(3, 3).value
        (3, 3)
    """
    return LayerOpt("kernel", _pair("WithKernelShape", dims, 1))


def WithPad(*dims: int) -> LayerOpt:
    """Zero padding (height, width) of a convolution or pooling layer.

    Example:
        >>> WithPad(1).value
        (1, 1)
    """
    return LayerOpt("pad", _pair("WithPad", dims, 0))


def WithStride(*dims: int) -> LayerOpt:
    """Stride (height, width) of a convolution or pooling layer.

    Example:
        >>> WithStride(2, 2).value
        (2, 2)
    """
    return LayerOpt("stride", _pair("WithStride", dims, 1))


def WithDilation(*dims: int) -> LayerOpt:
    """Dilation (height, width) of a convolution layer.

    Example:
        >>> WithDilation(1, 1).value
        (1, 1)
    """
    return LayerOpt("dilation", _pair("WithDilation", dims, 1))


def WithProbability(p: float) -> LayerOpt:
    """Drop probability of a dropout layer, in [0, 1).

    Example:
        >>> WithProbability(0.5).value
        0.5
    """
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= float(p) < 1.0:
        raise ValueError(f"WithProbability takes a probability in [0, 1), got {p!r}")
    return LayerOpt("probability", float(p))


def WithEps(eps: float) -> LayerOpt:
    """The small constant normalisation layers add to the variance.

    Example:
        >>> WithEps(1e-3).value
        0.001
    """
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not float(eps) > 0.0:
        raise ValueError(f"WithEps takes a positive number, got {eps!r}")
    return LayerOpt("eps", float(eps))


def WithMomentum(m: float) -> LayerOpt:
    """Momentum of batch norm's running statistics, in [0, 1].

    Example:
        >>> WithMomentum(0.9).value
        0.9
    """
    if isinstance(m, bool) or not isinstance(m, (int, float)) or not 0.0 <= float(m) <= 1.0:
        raise ValueError(f"WithMomentum takes a number in [0, 1], got {m!r}")
    return LayerOpt("momentum", float(m))


def ToShape(*dims: int | None) -> LayerOpt:
    """Target shape of a reshape, batch dimension included; ``None`` keeps the input's batch.

    One entry may be ``-1`` (inferred from the others).

    Example:
        >>> ToShape(None, 784).value
        (None, 784)
    """
    d = _dims("ToShape", dims, allow_none=True)
    if not d:
        raise ValueError("ToShape needs at least one dimension")
    if sum(1 for x in d if x == -1) > 1 or any(x is not None and x < -1 for x in d):
        raise ValueError(f"ToShape takes sizes >= 0, None and at most one -1, got {dims!r}")
    return LayerOpt("to_shape", d)


def WithClasses(n: int) -> LayerOpt:
    """Number of classes (rows of an embedding table).

    Example:
        >>> WithClasses(10).value
        10
    """
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise ValueError(f"WithClasses takes a positive int, got {n!r}")
    return LayerOpt("classes", n)


def WithOneHotInput() -> LayerOpt:
    """Embedding: the input is one-hot rows (batch, classes), multiplied by the table.

    Example:
        >>> WithOneHotInput().value
        True
    """
    return LayerOpt("onehot", True)


def Of(dtype: Any) -> LayerOpt:
    """The dtype of a layer's learnables where the input does not fix it (embedding by index).

    Example:
        >>> import graphcore as gc
        >>> Of(gc.Float64).value
        Float64
    """
    return LayerOpt("dtype", as_dtype(dtype))


def _flag(builder: str, on: Any) -> bool:
    if not isinstance(on, bool):
        raise TypeError(f"{builder} takes True or False, got {on!r}")
    return on


def WithReturnSequences(on: bool = True) -> LayerOpt:
    """Recurrent layers on a sequence (batch, time, features): return the hidden state of
    every step, (batch, time, size), instead of the last one, (batch, size).

    Example:
        >>> WithReturnSequences(True)
        WithReturnSequences(True)
    """
    return LayerOpt("return_sequences", _flag("WithReturnSequences", on))


def WithConst(c: Any) -> LayerOpt:
    """The constant a skip layer adds to its input (``ConsSkip``): a number, an array or a
    node (broadcast against the input).

    Example:
        >>> WithConst(1.5), WithConst([1.0, 2.0])
        (WithConst(1.5), WithConst([1.0, 2.0]))
    """
    if isinstance(c, bool):
        raise TypeError(f"WithConst takes a number, an array or a node, got {c!r}")
    return LayerOpt("const", c)


def WithWB(w: Any, b: Any = None) -> LayerOpt:
    """Golgi's ``WithWB``: an FC layer's weights ``w`` (in, size) and bias ``b`` (1, size),
    each a node (shared) or an array (copied into a new learnable); ``b=None``: no bias.

    Example:
        >>> import numpy as np
        >>> WithWB(np.zeros((3, 2)), np.zeros((1, 2)))
        WithWB(<ndarray of shape (3, 2)>, [[0.0, 0.0]])
    """
    if w is None:
        raise TypeError("WithWB needs the weights; for a bias alone use WithBias")
    return LayerOpt("wb", (w, b))


def AsBatched(on: bool = True) -> LayerOpt:
    """Golgi's ``AsBatched``: accepted for porting, and changes nothing. In golgi the batch
    dimension is always free (``None``) and a bias is always (1, size), broadcast over the
    batch; Golgi's unbatched form (one bias row per sample, tied to the batch size) does not
    exist here.

    Example:
        >>> AsBatched(True).value
        True
    """
    return LayerOpt("batched", _flag("AsBatched", on))


def AsPositionwise(on: bool = True) -> LayerOpt:
    """FC on a sequence: apply the same weights at every position, (batch, time, in) ->
    (batch, time, size) (a transformer's feed-forward part). Without it FC takes only
    matrices (batch, features).

    Example:
        >>> AsPositionwise()
        AsPositionwise(True)
    """
    return LayerOpt("positionwise", _flag("AsPositionwise", on))


def WithHeads(n: int) -> LayerOpt:
    """Number of attention heads; the model width must divide by it.

    Example:
        >>> WithHeads(4).value
        4
    """
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise ValueError(f"WithHeads takes a positive int, got {n!r}")
    return LayerOpt("heads", n)


def WithCausal(on: bool = True) -> LayerOpt:
    """Attention: position t attends only to positions <= t (a causal, decoder-style mask).

    Example:
        >>> WithCausal()
        WithCausal(True)
    """
    return LayerOpt("causal", _flag("WithCausal", on))
