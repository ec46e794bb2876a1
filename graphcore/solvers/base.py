"""The solver base: ValueGrads, options and validation, per-parameter state and its layout,
``step``, ``state_dict`` and ``load_state_dict``. The update rules are in
:mod:`graphcore.solvers.rules`.

A step checks its parameters, lays out their state once (one flat buffer per state when the
parameters share a dtype), builds the segments its kernels run over (one for every parameter
when their gradients tile one buffer) and calls the solver's update with the kernel backend
of the moment (:func:`graphcore.kernels.backend`).

Example:
    >>> import numpy as np, graphcore as gc
    >>> class P:
    ...     value = np.array([1.0]); grad = np.array([4.0])
    >>> s = gc.NewVanillaSolver(gc.WithLearnRate(0.25)); s.step([P()]); s.num_steps
    1
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from types import ModuleType
from typing import Any, ClassVar, Protocol

import numpy as np

from .. import kernels
from ..errors import DtypeError, ShapeError, ValueNotAvailableError
from ..graph import Node
from ..kernels.segments import Part, Reg, Segment, flat_span
from ..storage import Slot
from .options import _OPTIONS, SolverOpt, _check_hp

__all__ = ["ValueGrad", "NodesToValueGrads", "Solver"]

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
            >>> import numpy as np, graphcore as gc
            >>> class P:
            ...     value = np.ones(2); grad = np.full(2, 0.5)
            >>> p = P(); before = p.value
            >>> gc.NewVanillaSolver(gc.WithLearnRate(1.0)).step([p])
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
            >>> import numpy as np, graphcore as gc
            >>> class P:
            ...     value = np.ones(2); grad = np.array([1.0, -1.0])
            >>> p = P(); gc.NewVanillaSolver(gc.WithLearnRate(0.1)).step([p])
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


class _Bound:
    """The graph nodes a step last updated, their slots, value and gradient arrays, and the
    segments built for them: a step given the same nodes, with the same arrays bound and no
    lazy zeroing pending, needs none of the per-parameter checks again.

    Example:
        >>> import graphcore as gc
        >>> g = gc.NewGraph(); w = gc.NewVector(g, gc.Float64, gc.WithShape(1), gc.WithName("w"),
        ...     gc.WithValue([1.0]), gc.WithGrad([2.0]))
        >>> b = _Bound.of([w], [(w.value, w.grad)], []); b.holds([w]), b.holds([])
        (True, False)
        >>> w.zero_grad(); b.holds([w])  # a pending zeroing: the slow path reads a real zero
        False
    """

    __slots__ = ("items", "slots", "values", "grads", "segs")

    def __init__(self, items: tuple[Node, ...], segs: list[Segment]) -> None:
        self.items = items
        self.slots: tuple[Slot, ...] = tuple(n.slot for n in items)
        self.values = tuple(s.value for s in self.slots)
        self.grads = tuple(s.grad for s in self.slots)
        self.segs = segs

    @classmethod
    def of(cls, vgs: Sequence[Any], pairs: list[tuple[np.ndarray, np.ndarray]],
           segs: list[Segment]) -> _Bound | None:
        """A record for these checked parameters when every one is a graph node whose slot
        holds exactly the arrays the step used, else None."""
        for vg, (w, g) in zip(vgs, pairs, strict=True):
            if not isinstance(vg, Node) or vg.slot.value is not w or vg.slot.grad is not g:
                return None
        return cls(tuple(vgs), segs)

    def holds(self, vgs: Sequence[Any]) -> bool:
        """Whether ``vgs`` are these nodes, in order, with the same arrays bound and their
        gradients current (not lazily zeroed)."""
        if len(vgs) != len(self.items):
            return False
        for vg, item, slot, w, g in zip(vgs, self.items, self.slots, self.values, self.grads):
            if vg is not item or slot.value is not w or slot.grad is not g or slot.grad_stale:
                return False
        return True


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
        >>> import graphcore as gc
        >>> s = gc.NewRMSPropSolver(); s.learn_rate = 0.01; s.learn_rate
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
        self._seg_cache: tuple[list[tuple[np.ndarray, np.ndarray]], list[Segment]] | None = None
        self._bound: _Bound | None = None

    # ----- public ------------------------------------------------------------------------------
    @property
    def num_steps(self) -> int:
        """How many steps this solver has taken (restored by ``load_state_dict``).

        Example:
            >>> import graphcore as gc
            >>> gc.NewAdamSolver().num_steps
            0
        """
        return self._t

    def step(self, vgs: Sequence[ValueGrad]) -> None:
        """Update every value in place from its gradient, then zero the gradient in place.

        ``vgs`` holds the same parameters, in the same order, at every step.

        Example:
            >>> import numpy as np, graphcore as gc
            >>> class P:
            ...     value = np.array([1.0]); grad = np.array([2.0])
            >>> p = P(); gc.NewVanillaSolver(gc.WithLearnRate(0.5)).step([p]); p.value.tolist()
            [0.0]
        """
        bound = self._bound
        if bound is not None and isinstance(vgs, (list, tuple)) and bound.holds(vgs):
            # the graph nodes of the last step, their arrays unchanged: nothing to check again
            self._t += 1
            self._update(kernels.backend(), bound.segs)
            for slot in bound.slots:
                slot.zero_grad()
            return
        pairs = self._check_step(vgs)
        self._t += 1
        # the backend is picked at every step, so accel.disabled() around a step works
        segs = self._segments(pairs)
        self._update(kernels.backend(), segs)
        self._bound = _Bound.of(vgs, pairs, segs)
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
            >>> import graphcore as gc
            >>> d = gc.NewRMSPropSolver().state_dict()
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
            >>> import graphcore as gc
            >>> a = gc.NewAdamSolver(gc.WithLearnRate(0.01)); b = gc.NewAdamSolver()
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
        self._bound = None
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

    def _segments(self, pairs: list[tuple[np.ndarray, np.ndarray]]) -> list[Segment]:
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

    def _build_segments(self, pairs: list[tuple[np.ndarray, np.ndarray]]) -> list[Segment]:
        grads = [g for _, g in pairs]
        flat_g = flat_span(grads) if self._flat_ok and self._flat_bufs is not None else None
        if flat_g is not None and self._flat_scratch is not None and self._flat_bufs is not None:
            parts = [Part(w, g, self._scratch[i], self._part_bufs(i))
                     for i, (w, g) in enumerate(pairs)]
            return [Segment(flat_g, self._flat_scratch, dict(self._flat_bufs), parts)]
        segs = []
        for i, (w, g) in enumerate(pairs):
            bufs = self._part_bufs(i)
            segs.append(Segment.single(w, g, self._scratch[i], bufs))
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

    def _reg(self, clip: bool = True) -> Reg:
        """The gradient rule of this solver's options (without the clip when ``clip`` is
        False)."""
        hp = self._hp
        return Reg(hp["l1_reg"], hp["l2_reg"], hp["batch_size"], hp["clip"] if clip else None)

    def _update(self, k: ModuleType, segs: list[Segment]) -> None:  # pragma: no cover
        """One step's update of every segment, with the kernels ``k``."""
        raise NotImplementedError
