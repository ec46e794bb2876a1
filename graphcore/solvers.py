"""Solvers: update parameters in place from their gradients, Gorgonia style, bugs fixed.

A solver's ``step(vgs)`` takes "ValueGrads": objects with a ``.value`` array (updated in place,
never rebound) and a ``.grad`` array of the same shape (zeroed in place after the update), such
as graph nodes whose gradients a machine bound with ``BindDualValues``. Per-parameter state
(caches, moments) is kept by position, so pass the same parameters in the same order each step.

One rule for every solver: the raw gradient ``g`` first becomes

    g' = clip((g + λ1·sign(w) + λ2·w) / batch, -c, c)

(each term only when its option is set: ``WithL1Reg``, ``WithL2Reg``, ``WithBatchSize``,
``WithClip``), and the solver's own formula then uses ``g'`` everywhere, its caches included.
(Gorgonia's RMSProp and AdaGrad instead subtracted ``λ2·w`` from the weights after the adaptive
step, its Momentum regularised with the velocity instead of the weights, and its AdaGrad ignored
every option; Barzilai-Borwein uses no gradient clip, since there ``WithClip`` bounds the step
size.) All defaults follow Gorgonia: learn rate 0.001, eps 1e-8, RMSProp decay 0.999, Adam
betas 0.9/0.999, momentum 0.9, AdamW weight decay 0.01.

Steps run with no array allocation in steady state: per-parameter buffers are made on the first
step, in the parameter's dtype, and every pass is a numpy ufunc with ``out=``.

Example:
    >>> import numpy as np, graphcore as gc
    >>> class P:  # anything with .value and .grad works; graph nodes do
    ...     def __init__(self, w, g): self.value, self.grad, self.name = w, g, "w"
    >>> p = P(np.array([1.0, 2.0]), np.array([2.0, -2.0]))
    >>> solver = gc.NewVanillaSolver(gc.WithLearnRate(0.5))  # exact in binary: no rounding
    >>> solver.step([p])
    >>> p.value.tolist(), p.grad.tolist()
    ([0.0, 3.0], [0.0, 0.0])
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np

from . import accel
from .errors import DtypeError, ShapeError, ValueNotAvailableError
from .ops.blas import Axpby

__all__ = [
    "ValueGrad",
    "NodesToValueGrads",
    "SolverOpt",
    "Solver",
    "VanillaSolver",
    "Momentum",
    "AdaGradSolver",
    "RMSPropSolver",
    "AdamSolver",
    "AdamW",
    "BarzilaiBorweinSolver",
    "NewVanillaSolver",
    "NewMomentum",
    "NewAdaGradSolver",
    "NewRMSPropSolver",
    "NewAdamSolver",
    "NewAdamW",
    "NewBarzilaiBorweinSolver",
    "WithLearnRate",
    "WithL1Reg",
    "WithL2Reg",
    "WithBatchSize",
    "WithEps",
    "WithClip",
    "WithBeta1",
    "WithBeta2",
    "WithRho",
    "WithMomentum",
    "WithWeightDecay",
]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


# ----- the ValueGrad protocol --------------------------------------------------------------------
class ValueGrad(Protocol):
    """What solvers update: a ``value`` array and a same-shaped ``grad`` array (``name`` optional).

    Graph nodes satisfy it; so does any small object.

    Example:
        >>> import numpy as np
        >>> class P:
        ...     value = np.zeros(2); grad = np.ones(2); name = "p"
        >>> len(NodesToValueGrads([P()]))
        1
    """

    @property
    def value(self) -> np.ndarray:
        """The parameter's array (float32 or float64); ``step`` updates it in place.

        Example:
            >>> import numpy as np
            >>> class P:
            ...     value = np.ones(2); grad = np.full(2, 0.5)
            >>> p = P(); before = p.value
            >>> NewVanillaSolver(WithLearnRate(1.0)).step([p])
            >>> p.value, p.value is before
            (array([0.5, 0.5]), True)
        """
        ...

    @property
    def grad(self) -> np.ndarray:
        """The cost's gradient for ``value``, same shape; ``step`` reads it, then zeroes it.

        For a graph node it is bound by ``Grad(cost, node)`` and a machine built with
        ``BindDualValues(node)``, and filled by each run.

        Example:
            >>> import numpy as np
            >>> class P:
            ...     value = np.ones(2); grad = np.array([1.0, -1.0])
            >>> p = P(); NewVanillaSolver(WithLearnRate(0.1)).step([p])
            >>> p.value, p.grad
            (array([0.9, 1.1]), array([0., 0.]))
        """
        ...


def _label(vg: Any, i: int) -> str:
    name = getattr(vg, "name", None)
    return f"parameter {i} ({name!r})" if name else f"parameter {i}"


def _value_grad(vg: Any, i: int, where: str) -> tuple[np.ndarray, np.ndarray]:
    """The checked ``(value, grad)`` arrays of one ValueGrad."""
    try:
        w = vg.value
    except AttributeError as e:
        raise TypeError(
            f"{where}: {_label(vg, i)} ({type(vg).__name__}) has no .value; pass graph nodes "
            f"(or objects with .value and .grad arrays)"
        ) from e
    if not isinstance(w, np.ndarray):
        raise TypeError(
            f"{where}: the value of {_label(vg, i)} is a {type(w).__name__}, not a numpy array"
        )
    if w.dtype not in _FLOATS:
        raise DtypeError(
            f"{where}: {_label(vg, i)} has dtype {w.dtype}; solvers update float32 or float64 "
            f"values only"
        )
    try:
        g = vg.grad
    except AttributeError as e:
        raise TypeError(
            f"{where}: {_label(vg, i)} ({type(vg).__name__}) has no .grad; pass graph nodes "
            f"(or objects with .value and .grad arrays)"
        ) from e
    if g is None:
        raise ValueNotAvailableError(
            f"{where}: {_label(vg, i)} has no gradient: call Grad(cost, ...) with it and build "
            f"the machine with BindDualValues(...) so that its gradient is bound"
        )
    if not isinstance(g, np.ndarray):
        raise TypeError(
            f"{where}: the gradient of {_label(vg, i)} is a {type(g).__name__}, not a numpy array"
        )
    if g.shape != w.shape:
        raise ShapeError(
            f"{where}: {_label(vg, i)} has value shape {w.shape} but gradient shape {g.shape}"
        )
    if g.dtype != w.dtype:
        raise DtypeError(f"{where}: {_label(vg, i)} has a {w.dtype} value but a {g.dtype} gradient")
    if not (w.flags.writeable and g.flags.writeable):
        raise ValueError(
            f"{where}: the value or gradient of {_label(vg, i)} is read-only; solvers update "
            f"both in place"
        )
    return w, g


def _check_distinct(
    pairs: Sequence[tuple[np.ndarray, np.ndarray]], vgs: Sequence[Any], where: str
) -> None:
    seen: dict[int, int] = {}
    for i, (w, _) in enumerate(pairs):
        j = seen.setdefault(id(w), i)
        if j != i:
            raise ValueError(
                f"{where}: {_label(vgs[i], i)} and {_label(vgs[j], j)} share one value array, "
                f"so it would be updated twice; list each parameter once"
            )


def _as_list(vgs: Any, where: str) -> list[Any]:
    if isinstance(vgs, (list, tuple)):
        return vgs if isinstance(vgs, list) else list(vgs)
    if isinstance(vgs, (str, bytes, np.ndarray)) or not isinstance(vgs, Iterable):
        raise TypeError(
            f"{where} expects a list of parameters (graph nodes or ValueGrads), got "
            f"{type(vgs).__name__}"
        )
    return list(vgs)


def NodesToValueGrads(nodes: Iterable[Any]) -> list[Any]:
    """Check that each node has a float value and a bound gradient of its shape; return them.

    The result, in the same order, is what ``solver.step`` takes. Errors name the node.

    Example:
        >>> import numpy as np, graphcore as gc
        >>> g = gc.NewGraph()
        >>> w = gc.NewVector(g, gc.Float64, gc.WithShape(2), gc.WithName("w"),
        ...                  gc.WithValue([1.0, 2.0]))
        >>> _ = gc.Grad(gc.Sum(gc.Square(w)), w)
        >>> gc.NewTapeMachine(g, gc.BindDualValues(w)).run_all()
        >>> vgs = gc.NodesToValueGrads([w]); vgs[0] is w
        True
    """
    where = "NodesToValueGrads"
    items = list(_as_list(nodes, where))
    pairs = [_value_grad(n, i, where) for i, n in enumerate(items)]
    _check_distinct(pairs, items, where)
    return items


# ----- options -----------------------------------------------------------------------------------
# attribute -> (option name, what the value must be)
_OPTIONS: dict[str, tuple[str, str]] = {
    "learn_rate": ("WithLearnRate", "a finite number > 0"),
    "momentum": ("WithMomentum", "in [0, 1)"),
    "rho": ("WithRho", "in [0, 1)"),
    "beta1": ("WithBeta1", "in [0, 1)"),
    "beta2": ("WithBeta2", "in [0, 1)"),
    "weight_decay": ("WithWeightDecay", "a finite number >= 0"),
    "eps": ("WithEps", "a finite number >= 0"),
    "l1_reg": ("WithL1Reg", "a finite number >= 0"),
    "l2_reg": ("WithL2Reg", "a finite number >= 0"),
    "batch_size": ("WithBatchSize", "a finite number > 0"),
    "clip": ("WithClip", "a finite number > 0"),
}
_OPTION_ATTR = {opt: attr for attr, (opt, _) in _OPTIONS.items()}


def _check_hp(attr: str, v: Any) -> Any:
    """Validate a hyperparameter value; return it normalised (float, int batch, None clip)."""
    opt, rule = _OPTIONS[attr]
    if attr == "clip" and v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{opt}({v!r}): {attr} must be {rule}, got a {type(v).__name__}")
    f = float(v)
    ok = math.isfinite(f)
    if attr in ("learn_rate", "batch_size", "clip"):
        ok = ok and f > 0
    elif attr in ("momentum", "rho", "beta1", "beta2"):
        ok = ok and 0.0 <= f < 1.0
    else:
        ok = ok and f >= 0
    if not ok:
        raise ValueError(f"{opt}({v!r}): {attr} must be {rule}")
    if attr == "batch_size" and f.is_integer():
        return int(f)
    return f


@dataclass(frozen=True)
class SolverOpt:
    """One solver option, made by ``WithLearnRate``, ``WithRho``, ...; applied in order.

    Example:
        >>> WithLearnRate(0.01)
        WithLearnRate(0.01)
    """

    attr: str
    value: Any

    @property
    def name(self) -> str:
        """The option function's name, e.g. ``"WithRho"``.

        Example:
            >>> WithRho(0.9).name
            'WithRho'
        """
        return _OPTIONS[self.attr][0]

    def __repr__(self) -> str:
        return f"{self.name}({self.value!r})"


def _opt(attr: str, v: Any) -> SolverOpt:
    return SolverOpt(attr, _check_hp(attr, v))


def WithLearnRate(eta: float) -> SolverOpt:
    """The learning rate η (> 0; default 0.001). Barzilai-Borwein uses it for its first step.

    Example:
        >>> NewAdamSolver(WithLearnRate(0.01)).learn_rate
        0.01
    """
    return _opt("learn_rate", eta)


def WithL1Reg(l1: float) -> SolverOpt:
    """L1 regularisation λ1 (>= 0): adds ``λ1·sign(w)`` to the gradient. Default 0 (off).

    Example:
        >>> NewVanillaSolver(WithL1Reg(1e-4)).l1_reg
        0.0001
    """
    return _opt("l1_reg", l1)


def WithL2Reg(l2: float) -> SolverOpt:
    """L2 regularisation λ2 (>= 0): adds ``λ2·w`` to the gradient. Default 0 (off).

    Example:
        >>> NewRMSPropSolver(WithL2Reg(1e-4)).l2_reg
        0.0001
    """
    return _opt("l2_reg", l2)


def WithBatchSize(batch: float) -> SolverOpt:
    """Divide the (regularised) gradient by the batch size before the update. Default 1.

    Use it when the cost is a sum over the batch; with a mean cost the gradient is already
    averaged. Every solver honours it (Gorgonia's RMSProp and AdaGrad ignored it; see
    :func:`NewRMSPropSolver` for what that changes).

    Example:
        >>> NewRMSPropSolver(WithBatchSize(100)).batch_size
        100
    """
    return _opt("batch_size", batch)


def WithEps(eps: float) -> SolverOpt:
    """The smoothing term ε (>= 0) of AdaGrad, RMSProp, Adam and AdamW. Default 1e-8.

    Example:
        >>> NewAdamSolver(WithEps(1e-7)).eps
        1e-07
    """
    return _opt("eps", eps)


def WithClip(clip: float) -> SolverOpt:
    """Clip each gradient element to ``[-clip, clip]`` (> 0). Default: no clipping.

    For Barzilai-Borwein it bounds the magnitude of the computed step size instead.

    Example:
        >>> NewVanillaSolver(WithClip(5)).clip
        5.0
    """
    return _opt("clip", clip)


def WithBeta1(beta1: float) -> SolverOpt:
    """Adam's and AdamW's first-moment decay β1, in [0, 1). Default 0.9.

    Example:
        >>> NewAdamSolver(WithBeta1(0.8)).beta1
        0.8
    """
    return _opt("beta1", beta1)


def WithBeta2(beta2: float) -> SolverOpt:
    """Adam's and AdamW's second-moment decay β2, in [0, 1). Default 0.999.

    Example:
        >>> NewAdamW(WithBeta2(0.99)).beta2
        0.99
    """
    return _opt("beta2", beta2)


def WithRho(rho: float) -> SolverOpt:
    """RMSProp's cache decay ρ, in [0, 1). Default 0.999.

    (Gorgonia also let it set AdamW's weight decay; here AdamW takes ``WithWeightDecay``.)

    Example:
        >>> NewRMSPropSolver(WithRho(0.9)).rho
        0.9
    """
    return _opt("rho", rho)


def WithMomentum(momentum: float) -> SolverOpt:
    """The momentum μ of :func:`NewMomentum`, in [0, 1). Default 0.9.

    Example:
        >>> NewMomentum(WithMomentum(0.5)).momentum
        0.5
    """
    return _opt("momentum", momentum)


def WithWeightDecay(decay: float) -> SolverOpt:
    """AdamW's decoupled weight decay λ (>= 0): ``w ← (1 − η·λ)·w`` each step. Default 0.01.

    Example:
        >>> NewAdamW(WithWeightDecay(0.1)).weight_decay
        0.1
    """
    return _opt("weight_decay", decay)



# ----- segments: the arrays one pass of a step runs over -----------------------------------------
def _flat_span(grads: Sequence[np.ndarray]) -> np.ndarray | None:
    """The 1-D span of one buffer that ``grads`` tile in order, or None if they do not."""
    if not grads:
        return None
    base = grads[0].base
    if not isinstance(base, np.ndarray) or base.ndim != 1 or not base.flags.c_contiguous:
        return None
    isz, start = base.itemsize, base.ctypes.data
    lo = pos = (grads[0].ctypes.data - start) // isz
    for g in grads:
        if (
            g.base is not base
            or not g.flags.c_contiguous
            or g.dtype != base.dtype
            or g.ctypes.data - start != pos * isz
        ):
            return None
        pos += g.size
    return base[lo:pos]


def _axpy_into(x: np.ndarray, y: np.ndarray) -> Any:
    """A callable ``f(alpha, beta=1.0)`` doing ``y = alpha * x + beta * y`` (BLAS when both
    are contiguous; numpy otherwise, which may scale ``x`` in place)."""
    if x.flags.c_contiguous and y.flags.c_contiguous and x.dtype == y.dtype:
        return Axpby(x.reshape(-1), y.reshape(-1))

    def run(alpha: float, beta: float = 1.0) -> None:
        if beta != 1.0:
            np.multiply(y, beta, out=y)
        if alpha != 1.0:
            np.multiply(x, alpha, out=x)
        np.add(y, x, out=y)

    return run


class _Part:
    """One parameter inside a segment: its value, gradient, scratch and state views."""

    __slots__ = ("w", "g", "s", "bufs", "flat", "_ax")

    def __init__(self, w: np.ndarray, g: np.ndarray, s: np.ndarray,
                 bufs: dict[str, np.ndarray]) -> None:
        self.w, self.g, self.s, self.bufs = w, g, s, bufs
        self._ax: dict[str, Any] = {}
        # 1-D views for the compiled kernels: value, gradient, then the state buffers
        arrays = [w, g, *bufs.values()]
        self.flat = (
            [a.reshape(-1) for a in arrays] if all(a.flags.c_contiguous for a in arrays) else None
        )

    def add_to_value(self, src: str, alpha: float) -> None:
        """``w += alpha * x`` with ``x`` the gradient ("g"), scratch ("s") or a state buffer;
        "g" and "s" may be scaled in place."""
        ax = self._ax.get(src)
        if ax is None:
            x = self.g if src == "g" else self.s if src == "s" else self.bufs[src]
            ax = self._ax[src] = _axpy_into(x, self.w)
        ax(alpha)


class _Segment:
    """Gradient, scratch and state arrays a step's passes run over: every parameter's at once
    (flat) or one parameter's, with the parameters they cover."""

    __slots__ = ("g", "s", "bufs", "parts", "_ax")

    def __init__(self, g: np.ndarray, s: np.ndarray, bufs: dict[str, np.ndarray],
                 parts: list[_Part]) -> None:
        self.g, self.s, self.bufs, self.parts = g, s, bufs, parts
        self._ax: dict[tuple[str, str], Any] = {}

    def axpby(self, src: str, dst: str, alpha: float, beta: float) -> None:
        """``dst = alpha * src + beta * dst`` over the segment (names as in ``_Part``); one
        BLAS pass."""
        ax = self._ax.get((src, dst))
        if ax is None:
            pick = {"g": self.g, "s": self.s, **self.bufs}
            ax = self._ax[(src, dst)] = _axpy_into(pick[src], pick[dst])
        ax(alpha, beta)

    def add_to_values(self, src: str, alpha: float) -> None:
        """``w += alpha * src`` for every parameter of the segment."""
        for p in self.parts:
            p.add_to_value(src, alpha)

    def compiled(self) -> Any:
        """The compiled kernels when they are on and every part has 1-D views, else None."""
        k = accel.kernels()
        if k is None or any(p.flat is None for p in self.parts):
            return None
        return k


# ----- the solver base ---------------------------------------------------------------------------
class _HP:
    """A hyperparameter attribute: reads the solver's value, validates assignments."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.attr = name

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        if obj is None:
            return self
        try:
            return obj._hp[self.attr]
        except KeyError:
            raise AttributeError(
                f"{type(obj).__name__} has no {self.attr}; it has {', '.join(obj._takes)}"
            ) from None

    def __set__(self, obj: Any, v: Any) -> None:
        if self.attr not in obj._hp:
            raise AttributeError(
                f"{type(obj).__name__} has no {self.attr}; it has {', '.join(obj._takes)}"
            )
        obj._hp[self.attr] = _check_hp(self.attr, v)


_WRONG_OPTION_HINTS = {
    ("AdamW", "rho"): " (Gorgonia's WithRho set AdamW's weight decay; use WithWeightDecay)",
    ("*", "momentum"): " (use NewMomentum for momentum SGD)",
    ("*", "beta1"): " (only Adam and AdamW take it)",
    ("*", "beta2"): " (only Adam and AdamW take it)",
    ("*", "rho"): " (only RMSProp takes it)",
    ("*", "weight_decay"): " (only AdamW takes it; other solvers take WithL2Reg)",
    ("*", "eps"): " (only AdaGrad, RMSProp, Adam and AdamW take it)",
}


class Solver:
    """Base of all solvers: options, validation, ``step``, ``state_dict``/``load_state_dict``.

    Hyperparameters are attributes (``learn_rate``, ``rho``, ...); assigning one validates it,
    so a learning-rate schedule can set ``solver.learn_rate`` between steps.

    Example:
        >>> s = NewRMSPropSolver(); s.learn_rate = 0.01; s.learn_rate
        0.01
    """

    _ctor: ClassVar[str]
    _takes: ClassVar[tuple[str, ...]]
    _defaults: ClassVar[dict[str, Any]] = {}
    _buffers: ClassVar[tuple[str, ...]] = ()  # per-parameter state, saved as "name/i"
    _flat_ok: ClassVar[bool] = True  # elementwise: one pass may cover every parameter

    learn_rate = _HP()
    momentum = _HP()
    rho = _HP()
    beta1 = _HP()
    beta2 = _HP()
    weight_decay = _HP()
    eps = _HP()
    l1_reg = _HP()
    l2_reg = _HP()
    batch_size = _HP()
    clip = _HP()

    def __init__(self, *opts: SolverOpt) -> None:
        common = {"learn_rate": 0.001, "l1_reg": 0.0, "l2_reg": 0.0, "batch_size": 1, "clip": None}
        defaults = {**common, **self._defaults}
        self._hp: dict[str, Any] = {a: defaults[a] for a in self._takes}
        for o in opts:
            if not isinstance(o, SolverOpt):
                raise TypeError(
                    f"{self._ctor} takes options such as WithLearnRate(0.01), got {o!r}"
                )
            if o.attr not in self._hp:
                hint = _WRONG_OPTION_HINTS.get(
                    (type(self).__name__, o.attr), _WRONG_OPTION_HINTS.get(("*", o.attr), "")
                )
                raise TypeError(
                    f"{self._ctor} does not take {o!r}{hint}; it takes "
                    f"{', '.join(_OPTIONS[a][0] for a in self._takes)}"
                )
            self._hp[o.attr] = o.value
        self._t = 0
        self._layout: list[tuple[tuple[int, ...], np.dtype]] | None = None
        self._bufs: dict[str, list[np.ndarray]] = {b: [] for b in self._buffers}
        self._scratch: list[np.ndarray] = []
        self._flat_bufs: dict[str, np.ndarray] | None = None
        self._flat_scratch: np.ndarray | None = None
        self._seg_cache: tuple[list[tuple[np.ndarray, np.ndarray]], list[_Segment]] | None = None

    # ----- public ------------------------------------------------------------------------------
    @property
    def num_steps(self) -> int:
        """How many steps this solver has taken (restored by ``load_state_dict``).

        Example:
            >>> NewAdamSolver().num_steps
            0
        """
        return self._t

    def step(self, vgs: Sequence[ValueGrad]) -> None:
        """Update every value in place from its gradient, then zero the gradient in place.

        ``vgs`` holds the same parameters, in the same order, at every step.

        Example:
            >>> import numpy as np
            >>> class P:
            ...     value = np.array([1.0]); grad = np.array([2.0])
            >>> p = P(); NewVanillaSolver(WithLearnRate(0.5)).step([p]); p.value.tolist()
            [0.0]
        """
        pairs = self._check_step(vgs)
        self._t += 1
        self._update(pairs)
        for vg, (_, g) in zip(vgs, pairs):
            zero = getattr(vg, "zero_grad", None)
            if callable(zero):
                zero()  # graph nodes zero lazily: the next run overwrites the stale buffer
            else:
                g.fill(0)

    def state_dict(self) -> dict[str, np.ndarray]:
        """A flat copy of the solver's state, ready for ``np.savez`` (no pickling needed).

        Keys: ``"solver"`` (its type), ``"step"``, ``"num_params"``, one 0-d array per
        hyperparameter (``clip`` is ``inf`` when off), and per-parameter buffers as
        ``"<buffer>/<position>"`` (e.g. ``"cache/0"``, ``"m/0"``, ``"v/0"``).

        Example:
            >>> d = NewRMSPropSolver().state_dict()
            >>> str(d["solver"]), int(d["step"]), float(d["rho"])
            ('RMSPropSolver', 0, 0.999)
        """
        d: dict[str, np.ndarray] = {
            "solver": np.array(type(self).__name__),
            "step": np.array(self._t, dtype=np.int64),
            "num_params": np.array(len(self._layout or ()), dtype=np.int64),
        }
        for a in self._takes:
            v = self._hp[a]
            d[a] = np.array(math.inf if v is None else v, dtype=np.float64)
        d.update(self._extra_state())
        for b in self._buffers:
            for i, arr in enumerate(self._bufs[b]):
                d[f"{b}/{i}"] = arr.copy()
        return d

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a state made by ``state_dict`` (hyperparameters included).

        Strict: missing or unexpected keys, wrong shapes or dtypes, or invalid values raise one
        ``ValueError`` listing every problem, and leave the solver unchanged. Continuing after
        a restore gives bit-identical results to never stopping.

        Example:
            >>> a = NewAdamSolver(WithLearnRate(0.01)); b = NewAdamSolver()
            >>> b.load_state_dict(a.state_dict()); b.learn_rate
            0.01
        """
        try:
            keys = list(state.keys())
        except AttributeError:
            raise TypeError(
                f"{type(self).__name__}.load_state_dict expects a mapping such as the result of "
                f"state_dict() or np.load(path), got {type(state).__name__}"
            ) from None
        problems: list[str] = []
        fixed = ["solver", "step", "num_params", *self._takes, *self._extra_keys()]
        missing = [k for k in fixed if k not in keys]
        per: dict[str, dict[int, str]] = {b: {} for b in self._buffers}
        unexpected: list[str] = []
        for k in keys:
            if k in fixed:
                continue
            head, sep, tail = str(k).partition("/")
            if sep and head in per and tail.isdigit() and str(int(tail)) == tail:
                per[head][int(tail)] = k
            else:
                unexpected.append(str(k))
        t = self._int_key(state, keys, "step", self._t, problems)
        declared = self._int_key(state, keys, "num_params", None, problems)
        found = max((i + 1 for idx in per.values() for i in idx), default=0)
        if not self._buffers:
            n = 0
        elif self._layout is not None:
            n = len(self._layout)
            if declared is not None and declared != n:
                problems.append(f"the state is for {declared} parameters, this solver has {n}")
        else:
            n = found if declared is None else declared
        for b in self._buffers:
            missing += [f"{b}/{i}" for i in range(min(n, found + 1)) if i not in per[b]]
            if n > found + 1:
                missing.append(f"{b}/{found + 1}..{b}/{n - 1}")
            unexpected += [k for i, k in per[b].items() if i >= n]
        if missing:
            problems.append(f"missing keys: {', '.join(missing)}")
        if unexpected:
            problems.append(f"unexpected keys: {', '.join(sorted(unexpected))}")

        if "solver" in keys:
            kind = str(np.asarray(state["solver"]))
            if kind != type(self).__name__:
                problems.append(f"the state is a {kind}'s, not a {type(self).__name__}'s")
        hp: dict[str, Any] = {}
        for attr in self._takes:
            if attr not in keys:
                continue
            a = np.asarray(state[attr])
            if a.shape != () or a.dtype.kind not in "fiu":
                problems.append(f"{attr!r} must be a 0-d number, got {a!r}")
                continue
            v = a.item()
            try:
                hp[attr] = _check_hp(attr, None if attr == "clip" and v == math.inf else v)
            except (TypeError, ValueError) as e:
                problems.append(str(e))
        extra = self._check_extra(state, keys, problems)

        arrays: dict[str, list[np.ndarray]] = {b: [] for b in self._buffers}
        layout: list[tuple[tuple[int, ...], np.dtype]] = []
        for i in range(min(n, found)):
            group = [(b, np.asarray(state[per[b][i]])) for b in self._buffers if i in per[b]]
            if not group:
                continue
            if self._layout is not None:
                shape, dtype = self._layout[i]
            else:
                shape, dtype = group[0][1].shape, group[0][1].dtype
            for b, arr in group:
                if arr.dtype not in _FLOATS:
                    problems.append(f"'{b}/{i}' has dtype {arr.dtype}; want float32/float64")
                elif arr.shape != shape or arr.dtype != dtype:
                    problems.append(
                        f"'{b}/{i}' is {arr.dtype} {arr.shape}, but parameter {i} is "
                        f"{dtype} {shape}"
                    )
                arrays[b].append(arr)
            layout.append((shape, dtype))
        if problems:
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: the state does not fit this solver:\n  - "
                + "\n  - ".join(problems)
            )

        self._hp.update(hp)
        self._t = t
        self._load_extra(extra)
        if self._buffers:
            if self._layout is not None:
                for b in self._buffers:
                    for dst, src in zip(self._bufs[b], arrays[b], strict=True):
                        np.copyto(dst, src)
            elif n > 0:
                self._set_layout(layout)
                for b in self._buffers:
                    for dst, src in zip(self._bufs[b], arrays[b], strict=True):
                        np.copyto(dst, src)

    def __repr__(self) -> str:
        args = ", ".join(f"{a}={self._hp[a]!r}" for a in self._takes)
        return f"{type(self).__name__}({args})"

    # ----- internals ---------------------------------------------------------------------------
    @staticmethod
    def _int_key(
        state: Mapping[str, Any], keys: list[str], key: str, default: Any, problems: list[str]
    ) -> Any:
        if key not in keys:
            return default
        a = np.asarray(state[key])
        if a.shape != () or a.dtype.kind not in "iu" or int(a) < 0:
            problems.append(f"{key!r} must be a 0-d integer >= 0, got {a!r}")
            return default
        return int(a)

    def _extra_keys(self) -> tuple[str, ...]:
        return ()

    def _extra_state(self) -> dict[str, np.ndarray]:
        return {}

    def _check_extra(self, state: Mapping[str, Any], keys: list[str], problems: list[str]) -> Any:
        return None

    def _load_extra(self, extra: Any) -> None:
        pass

    def _set_layout(self, layout: list[tuple[tuple[int, ...], np.dtype]]) -> None:
        """Make the per-parameter state (zeros) and scratch for these shapes and dtypes.

        With one dtype, each buffer is one flat array and the per-parameter arrays are views
        of it, so a step can run each pass once over every parameter (see ``_segments``).
        """
        self._layout = layout
        self._seg_cache = None
        sizes = [math.prod(shape) for shape, _ in layout]
        one = len({d for _, d in layout}) == 1

        def alloc() -> tuple[np.ndarray | None, list[np.ndarray]]:
            if one:
                flat = np.zeros(sum(sizes), layout[0][1])
                views, lo = [], 0
                for (shape, _), n in zip(layout, sizes, strict=True):
                    views.append(flat[lo : lo + n].reshape(shape))
                    lo += n
                return flat, views
            return None, [np.zeros(shape, d) for shape, d in layout]

        self._flat_bufs = {} if one else None
        for b in self._buffers:
            flat, self._bufs[b] = alloc()
            if self._flat_bufs is not None and flat is not None:
                self._flat_bufs[b] = flat
        self._flat_scratch, self._scratch = alloc()

    def _segments(self, pairs: list[tuple[np.ndarray, np.ndarray]]) -> list[_Segment]:
        """The step's work as segments: one over all parameters when their gradients lie in
        one flat buffer in order (as a tape machine's ``BindDualValues`` allocates them),
        else one per parameter. Rebuilt only when a value or gradient array changes.
        """
        cached = self._seg_cache
        if cached is not None and len(cached[0]) == len(pairs):
            if all(w is a and g is b for (w, g), (a, b) in zip(pairs, cached[0])):
                return cached[1]
        segs = self._build_segments(pairs)
        self._seg_cache = (list(pairs), segs)
        return segs

    def _build_segments(self, pairs: list[tuple[np.ndarray, np.ndarray]]) -> list[_Segment]:
        grads = [g for _, g in pairs]
        flat_g = _flat_span(grads) if self._flat_ok and self._flat_bufs is not None else None
        if flat_g is not None and self._flat_scratch is not None and self._flat_bufs is not None:
            parts = [_Part(w, g, self._scratch[i], self._part_bufs(i))
                     for i, (w, g) in enumerate(pairs)]
            return [_Segment(flat_g, self._flat_scratch, dict(self._flat_bufs), parts)]
        segs = []
        for i, (w, g) in enumerate(pairs):
            bufs = self._part_bufs(i)
            segs.append(_Segment(g, self._scratch[i], bufs, [_Part(w, g, self._scratch[i], bufs)]))
        return segs

    def _part_bufs(self, i: int) -> dict[str, np.ndarray]:
        return {b: self._bufs[b][i] for b in self._buffers}

    def _check_step(self, vgs: Any) -> list[tuple[np.ndarray, np.ndarray]]:
        where = f"{type(self).__name__}.step"
        items = _as_list(vgs, where)
        pairs = [_value_grad(vg, i, where) for i, vg in enumerate(items)]
        layout = self._layout
        if layout is None:
            _check_distinct(pairs, items, where)
            self._set_layout([(w.shape, w.dtype) for w, _ in pairs])
            return pairs
        if len(pairs) != len(layout):
            raise ValueError(
                f"{where}: got {len(pairs)} parameters, but this solver's earlier steps had "
                f"{len(layout)}; pass the same parameters in the same order every step (state "
                f"is kept by position), or make a new solver"
            )
        for i, (w, _) in enumerate(pairs):
            shape, dtype = layout[i]
            if w.shape != shape:
                raise ShapeError(
                    f"{where}: {_label(items[i], i)} has shape {w.shape}, but it was {shape} "
                    f"in earlier steps; pass the same parameters in the same order every step"
                )
            if w.dtype != dtype:
                raise DtypeError(
                    f"{where}: {_label(items[i], i)} has dtype {w.dtype}, but it was {dtype} "
                    f"in earlier steps"
                )
        return pairs

    def _reg_args(self, dtype: np.dtype) -> tuple[Any, ...]:
        """``(l1, l2, batch, clip, use_clip)`` in ``dtype`` for the compiled kernels."""
        hp, t = self._hp, dtype.type
        c = hp["clip"]
        return (t(hp["l1_reg"]), t(hp["l2_reg"]), t(hp["batch_size"]),
                t(0 if c is None else c), c is not None)

    def _regularise(self, seg: _Segment, clip: bool = True) -> None:
        """g ← clip((g + λ1·sign(w) + λ2·w) / batch), in place, skipping terms that are off."""
        hp = self._hp
        l1, l2, batch = hp["l1_reg"], hp["l2_reg"], hp["batch_size"]
        for p in seg.parts if (l1 or l2) else ():
            s = p.s
            if l1:
                np.sign(p.w, out=s)
                np.multiply(s, l1, out=s)
                np.add(p.g, s, out=p.g)
            if l2:
                np.multiply(p.w, l2, out=s)
                np.add(p.g, s, out=p.g)
        g = seg.g
        if batch != 1:
            np.divide(g, batch, out=g)
        c = hp["clip"]
        if clip and c is not None:
            np.clip(g, -c, c, out=g)

    def _update(self, pairs: list[tuple[np.ndarray, np.ndarray]]) -> None:  # pragma: no cover
        raise NotImplementedError


# ----- the solvers -------------------------------------------------------------------------------
class VanillaSolver(Solver):
    """Plain SGD: ``w ← w − η·g'``. Build it with :func:`NewVanillaSolver`.

    Example:
        >>> NewVanillaSolver()
        VanillaSolver(learn_rate=0.001, l1_reg=0.0, l2_reg=0.0, batch_size=1, clip=None)
    """

    _ctor = "NewVanillaSolver"
    _takes = ("learn_rate", "l1_reg", "l2_reg", "batch_size", "clip")

    def _update(self, pairs: list[tuple[np.ndarray, np.ndarray]]) -> None:
        eta = self._hp["learn_rate"]
        for seg in self._segments(pairs):
            self._regularise(seg)
            seg.add_to_values("g", -eta)


class Momentum(Solver):
    """SGD with momentum: ``v ← μ·v − η·g'``; ``w ← w + v``. Build it with :func:`NewMomentum`.

    Example:
        >>> NewMomentum().momentum
        0.9
    """

    _ctor = "NewMomentum"
    _takes = ("learn_rate", "momentum", "l1_reg", "l2_reg", "batch_size", "clip")
    _defaults = {"momentum": 0.9}
    _buffers = ("velocity",)

    def _update(self, pairs: list[tuple[np.ndarray, np.ndarray]]) -> None:
        eta, mu = self._hp["learn_rate"], self._hp["momentum"]
        for seg in self._segments(pairs):
            self._regularise(seg)
            seg.axpby("g", "velocity", -eta, mu)
            seg.add_to_values("velocity", 1.0)


class AdaGradSolver(Solver):
    """AdaGrad: ``c ← c + g'²``; ``w ← w − η·g'/√(c + ε)``. See :func:`NewAdaGradSolver`.

    Example:
        >>> NewAdaGradSolver().eps
        1e-08
    """

    _ctor = "NewAdaGradSolver"
    _takes = ("learn_rate", "eps", "l1_reg", "l2_reg", "batch_size", "clip")
    _defaults = {"eps": 1e-8}
    _buffers = ("cache",)

    def _update(self, pairs: list[tuple[np.ndarray, np.ndarray]]) -> None:
        eta, eps = self._hp["learn_rate"], self._hp["eps"]
        for seg in self._segments(pairs):
            self._regularise(seg)
            g, c, s = seg.g, seg.bufs["cache"], seg.s
            np.multiply(g, g, out=s)
            np.add(c, s, out=c)
            _rms_step(seg, eta, eps)


def _rms_step(seg: _Segment, eta: float, eps: float) -> None:
    """``w -= eta * g / sqrt(cache + eps)`` for the segment's parameters (AdaGrad, RMSProp)."""
    s = seg.s
    np.add(seg.bufs["cache"], eps, out=s)
    np.sqrt(s, out=s)
    np.divide(seg.g, s, out=s)
    seg.add_to_values("s", -eta)


class RMSPropSolver(Solver):
    """RMSProp: ``c ← ρ·c + (1 − ρ)·g'²``; ``w ← w − η·g'/√(c + ε)``. See :func:`NewRMSPropSolver`.

    Example:
        >>> NewRMSPropSolver().rho
        0.999
    """

    _ctor = "NewRMSPropSolver"
    _takes = ("learn_rate", "rho", "eps", "l1_reg", "l2_reg", "batch_size", "clip")
    _defaults = {"rho": 0.999, "eps": 1e-8}
    _buffers = ("cache",)

    def _update(self, pairs: list[tuple[np.ndarray, np.ndarray]]) -> None:
        hp = self._hp
        eta, rho, eps = hp["learn_rate"], hp["rho"], hp["eps"]
        for seg in self._segments(pairs):
            k = seg.compiled()
            if k is not None:  # one fused loop per parameter
                t = seg.g.dtype.type
                args = (*self._reg_args(seg.g.dtype), t(rho), t(1.0 - rho), t(eps), t(eta))
                for p in seg.parts:
                    w, g, c = p.flat  # type: ignore[misc]
                    k.rmsprop(w, g, c, *args)
                continue
            self._regularise(seg)
            np.multiply(seg.g, seg.g, out=seg.s)
            seg.axpby("s", "cache", 1.0 - rho, rho)  # one BLAS pass for the decaying cache
            _rms_step(seg, eta, eps)


class AdamSolver(Solver):
    """Adam with bias correction: ``w ← w − η·m̂/(√v̂ + ε)``. See :func:`NewAdamSolver`.

    Example:
        >>> NewAdamSolver().beta2
        0.999
    """

    _ctor = "NewAdamSolver"
    _takes = ("learn_rate", "beta1", "beta2", "eps", "l1_reg", "l2_reg", "batch_size", "clip")
    _defaults = {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8}
    _buffers = ("m", "v")

    def _decay(self, w: np.ndarray) -> None:
        pass

    def _update(self, pairs: list[tuple[np.ndarray, np.ndarray]]) -> None:
        hp = self._hp
        eta, b1, b2, eps = hp["learn_rate"], hp["beta1"], hp["beta2"], hp["eps"]
        # m̂/(√v̂ + ε) = (√c2/c1)·m/(√v + ε·√c2): the corrections become two scalars.
        c1 = 1.0 - b1**self._t
        c2 = 1.0 - b2**self._t
        step = eta * math.sqrt(c2) / c1
        eps_hat = eps * math.sqrt(c2)
        for seg in self._segments(pairs):
            k = seg.compiled()
            if k is not None:  # one fused loop per parameter
                t = seg.g.dtype.type
                wd = self._hp.get("weight_decay", 0.0)
                args = (*self._reg_args(seg.g.dtype), t(b1), t(1.0 - b1), t(b2), t(1.0 - b2),
                        t(eps_hat), t(step), t(1.0 - eta * wd))
                for p in seg.parts:
                    w, g, m, v = p.flat  # type: ignore[misc]
                    k.adam(w, g, m, v, *args)
                continue
            self._regularise(seg)
            g, m, v, s = seg.g, seg.bufs["m"], seg.bufs["v"], seg.s
            # square g before the moment update: axpby's numpy fallback may scale g in place
            np.multiply(g, g, out=s)
            seg.axpby("s", "v", 1.0 - b2, b2)
            seg.axpby("g", "m", 1.0 - b1, b1)
            np.sqrt(v, out=s)
            np.add(s, eps_hat, out=s)
            np.divide(m, s, out=s)
            for p in seg.parts:
                self._decay(p.w)
            seg.add_to_values("s", -step)


class AdamW(AdamSolver):
    """Adam with decoupled weight decay: ``w ← (1 − η·λ)·w``, then the Adam step.

    See :func:`NewAdamW`.

    Example:
        >>> NewAdamW().weight_decay
        0.01
    """

    _ctor = "NewAdamW"
    _takes = (
        "learn_rate",
        "weight_decay",
        "beta1",
        "beta2",
        "eps",
        "l1_reg",
        "l2_reg",
        "batch_size",
        "clip",
    )
    _defaults = {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.01}

    def _decay(self, w: np.ndarray) -> None:
        wd = self._hp["weight_decay"]
        if wd:
            np.multiply(w, 1.0 - self._hp["learn_rate"] * wd, out=w)


class BarzilaiBorweinSolver(Solver):
    """Gradient descent with the Barzilai-Borwein step size. See :func:`NewBarzilaiBorweinSolver`.

    Example:
        >>> NewBarzilaiBorweinSolver().current_rate is None
        True
    """

    _ctor = "NewBarzilaiBorweinSolver"
    _takes = ("learn_rate", "l1_reg", "l2_reg", "batch_size", "clip")
    _buffers = ("prev_value", "prev_grad")
    _flat_ok = False  # its step size needs per-parameter dot products

    def __init__(self, *opts: SolverOpt) -> None:
        super().__init__(*opts)
        self._rate = math.nan

    @property
    def current_rate(self) -> float | None:
        """The step size of the last step (``None`` before the first step).

        Example:
            >>> import numpy as np
            >>> class P:
            ...     value = np.array([1.0]); grad = np.array([2.0])
            >>> s = NewBarzilaiBorweinSolver(WithLearnRate(0.1)); s.step([P()]); s.current_rate
            0.1
        """
        return None if math.isnan(self._rate) else self._rate

    def _extra_keys(self) -> tuple[str, ...]:
        return ("rate",)

    def _extra_state(self) -> dict[str, np.ndarray]:
        return {"rate": np.array(self._rate, dtype=np.float64)}

    def _check_extra(self, state: Mapping[str, Any], keys: list[str], problems: list[str]) -> Any:
        if "rate" not in keys:
            return self._rate
        a = np.asarray(state["rate"])
        if a.shape != () or a.dtype.kind != "f" or math.isinf(float(a)):
            problems.append(f"'rate' must be a 0-d float (nan before the first step), got {a!r}")
            return self._rate
        return float(a)

    def _load_extra(self, extra: Any) -> None:
        self._rate = extra

    def _update(self, pairs: list[tuple[np.ndarray, np.ndarray]]) -> None:
        pw, pg = self._bufs["prev_value"], self._bufs["prev_grad"]
        for seg in self._segments(pairs):
            self._regularise(seg, clip=False)
        if self._t == 1:
            rate = self._hp["learn_rate"]
        else:
            num = den = 0.0
            for i, (w, g) in enumerate(pairs):
                # prev - current = -Δ for both; the signs cancel in both products.
                np.subtract(pw[i], w, out=pw[i])
                np.subtract(pg[i], g, out=pg[i])
                num += float(np.vdot(pw[i], pg[i]))
                den += float(np.vdot(pg[i], pg[i]))
            rate = num / den if den > 0 else math.nan
            if not math.isfinite(rate):
                rate = self._rate  # the gradient did not change: keep the last step size
            c = self._hp["clip"]
            if c is not None and abs(rate) > c:
                rate = math.copysign(c, rate)
        self._rate = rate
        for i, (w, g) in enumerate(pairs):
            np.copyto(pw[i], w)
            np.copyto(pg[i], g)
            np.multiply(g, rate, out=g)
            np.subtract(w, g, out=w)


# ----- constructors (Gorgonia's names) -----------------------------------------------------------
def NewVanillaSolver(*opts: SolverOpt) -> VanillaSolver:
    """Plain SGD: ``w ← w − η·g'``, with ``g'`` the regularised, batch-divided, clipped gradient.

    Takes ``WithLearnRate`` (0.001), ``WithL1Reg``, ``WithL2Reg``, ``WithBatchSize``, ``WithClip``.

    Example:
        >>> NewVanillaSolver(WithLearnRate(0.1), WithClip(1.0)).clip
        1.0
    """
    return VanillaSolver(*opts)


def NewMomentum(*opts: SolverOpt) -> Momentum:
    """Momentum SGD: ``v ← μ·v − η·g'``; ``w ← w + v`` (μ = 0.9, η = 0.001 by default).

    Takes ``WithLearnRate``, ``WithMomentum``, ``WithL1Reg``, ``WithL2Reg``, ``WithBatchSize``,
    ``WithClip``. Regularisation uses the weights (Gorgonia's used the velocity).

    Example:
        >>> NewMomentum(WithMomentum(0.5))
        Momentum(learn_rate=0.001, momentum=0.5, l1_reg=0.0, l2_reg=0.0, batch_size=1, clip=None)
    """
    return Momentum(*opts)


def NewAdaGradSolver(*opts: SolverOpt) -> AdaGradSolver:
    """AdaGrad: ``c ← c + g'²``; ``w ← w − η·g'/√(c + ε)`` (η = 0.001, ε = 1e-8 by default).

    Takes ``WithLearnRate``, ``WithEps``, ``WithL1Reg``, ``WithL2Reg``, ``WithBatchSize``,
    ``WithClip``, all honoured (Gorgonia's AdaGrad ignored every option).

    Example:
        >>> NewAdaGradSolver(WithLearnRate(0.1)).learn_rate
        0.1
    """
    return AdaGradSolver(*opts)


def NewRMSPropSolver(*opts: SolverOpt) -> RMSPropSolver:
    """RMSProp: ``c ← ρ·c + (1 − ρ)·g'²``; ``w ← w − η·g'/√(c + ε)``, ε inside the root.

    Defaults as Gorgonia: η = 0.001, ρ = 0.999, ε = 1e-8. Takes ``WithLearnRate``, ``WithRho``,
    ``WithEps``, ``WithL1Reg``, ``WithL2Reg``, ``WithBatchSize``, ``WithClip``.

    Differences from Gorgonia: regularisation and clipping act on ``g'`` before the cache update
    (Gorgonia cached the unclipped gradient and subtracted ``λ2·w`` after the step), and
    ``WithBatchSize(B)`` divides the gradient by ``B`` (Gorgonia ignored it). Because RMSProp
    divides by the running RMS of the gradient, scaling ``g`` by ``1/B`` only changes the
    effective epsilon: the result equals Gorgonia's update with ``ε·B²`` in place of ``ε``
    (with ε = 0 the update does not depend on ``B`` at all). With the defaults and ``B = 100``
    that is ε = 1e-4 in Gorgonia's terms.

    Example:
        >>> NewRMSPropSolver(WithBatchSize(100))
        RMSPropSolver(learn_rate=0.001, rho=0.999, eps=1e-08, l1_reg=0.0, l2_reg=0.0, batch_size=100, clip=None)
    """  # noqa: E501
    return RMSPropSolver(*opts)


def NewAdamSolver(*opts: SolverOpt) -> AdamSolver:
    """Adam: ``m ← β1·m + (1−β1)·g'``, ``v ← β2·v + (1−β2)·g'²``, ``w ← w − η·m̂/(√v̂ + ε)``.

    ``m̂ = m/(1 − β1ᵗ)``, ``v̂ = v/(1 − β2ᵗ)``, ``t`` counts steps (Gorgonia counted each
    parameter as a step). Defaults η = 0.001, β1 = 0.9, β2 = 0.999, ε = 1e-8. Takes
    ``WithLearnRate``, ``WithBeta1``, ``WithBeta2``, ``WithEps``, ``WithL1Reg``, ``WithL2Reg``,
    ``WithBatchSize``, ``WithClip``.

    Example:
        >>> NewAdamSolver(WithBeta1(0.8)).beta1
        0.8
    """
    return AdamSolver(*opts)


def NewAdamW(*opts: SolverOpt) -> AdamW:
    """AdamW: ``w ← (1 − η·λ)·w``, then the Adam step (decoupled weight decay, λ = 0.01).

    The gradient term ``g'`` (with any ``WithL1Reg``/``WithL2Reg``) is computed from the weights
    before the decay. Takes Adam's options plus ``WithWeightDecay``; ``WithRho`` (Gorgonia's way
    to set λ) is refused.

    Example:
        >>> NewAdamW(WithWeightDecay(0.1)).weight_decay
        0.1
    """
    return AdamW(*opts)


def NewBarzilaiBorweinSolver(*opts: SolverOpt) -> BarzilaiBorweinSolver:
    """Gradient descent ``w ← w − ηₜ·g'`` with the Barzilai-Borwein step size.

    The first step uses ``learn_rate``; later steps use
    ``ηₜ = ⟨Δw, Δg'⟩ / ‖Δg'‖²`` over all parameters together (Δ from the previous step). When
    ``‖Δg'‖² = 0`` the previous step size is kept. ``WithClip(c)`` bounds ``|ηₜ|`` by ``c`` (it
    does not clip the gradient). Also takes ``WithL1Reg``, ``WithL2Reg``, ``WithBatchSize``.
    Setting ``learn_rate`` after the first step has no effect.

    Example:
        >>> NewBarzilaiBorweinSolver(WithClip(1.0)).clip
        1.0
    """
    return BarzilaiBorweinSolver(*opts)
