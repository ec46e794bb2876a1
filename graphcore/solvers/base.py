"""The solver base: options and validation, per-parameter state and its layout, ``step``,
``state_dict`` and ``load_state_dict``. The update rules are in :mod:`graphcore.solvers.rules`;
what a step takes and checks, in :mod:`graphcore.solvers.params`.

A step checks its parameters, lays out their state once (one flat buffer per state when the
parameters share a dtype), builds the segments its kernels run over (one for every parameter
when their gradients tile one buffer) and calls the solver's update with the kernel backend
of the moment (:func:`graphcore.kernels.backend`): on the calling thread, or, when
:func:`graphcore.NumThreads` allows more and the parameters are large enough, in shares on
several threads at once (every update but Barzilai-Borwein's is elementwise, so the shares
give the results one thread does).

Example:
    >>> import numpy as np, graphcore as gc
    >>> class P:
    ...     value = np.array([1.0]); grad = np.array([4.0])
    >>> s = gc.NewVanillaSolver(gc.WithLearnRate(0.25)); s.step([P()]); s.num_steps
    1
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any, ClassVar

import numpy as np

from .. import kernels
from ..errors import DtypeError, ShapeError
from ..kernels import threads
from ..kernels.segments import Part, Reg, Segment, flat_span, share_out
from .options import _OPTIONS, SolverOpt, _check_hp
from .params import (
    _FLOATS,
    NodesToValueGrads,
    ValueGrad,
    _as_list,
    _Bound,
    _check_distinct,
    _label,
    _value_grad,
)

__all__ = ["ValueGrad", "NodesToValueGrads", "Solver"]


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
    _threads_ok: ClassVar[bool] = True  # elementwise: shares of the parameters may run at once

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
        # the segments last shared out, and their shares by thread count
        self._shares: tuple[list[Segment], dict[int, list[list[Segment]]]] | None = None

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
            self._apply(kernels.backend(), bound.segs)
            for slot in bound.slots:
                slot.zero_grad()
            return
        pairs = self._check_step(vgs)
        self._t += 1
        # the backend is picked at every step, so accel.disabled() around a step works
        segs = self._segments(pairs)
        self._apply(kernels.backend(), segs)
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

    def _apply(self, k: ModuleType, segs: list[Segment]) -> None:
        """Run the update over ``segs``: on this thread, or in shares on the pool's threads
        when the thread count and the parameters' size make it pay (the shares are kept, by
        thread count, while the segments stay the same)."""
        n = threads.NumThreads()
        cached = self._shares
        if cached is None or cached[0] is not segs:
            cached = self._shares = (segs, {})
        shares = cached[1].get(n)
        if shares is None:
            shares = [segs]
            if n > 1 and self._threads_ok:
                k_shares = threads.shares_for(sum(seg.g.nbytes for seg in segs))
                if k_shares > 1:
                    shares = share_out(segs, k_shares)
            cached[1][n] = shares
        if len(shares) == 1:
            self._update(k, segs)
        else:
            threads.run(self._update_share, shares, k)

    def _update_share(self, segs: list[Segment], k: ModuleType) -> None:
        self._update(k, segs)

    def _update(self, k: ModuleType, segs: list[Segment]) -> None:  # pragma: no cover
        """One step's update of every segment, with the kernels ``k``."""
        raise NotImplementedError
