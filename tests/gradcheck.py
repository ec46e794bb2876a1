"""Shared harness for op tests: gradient check, tape vs lisp, float32 forward, free batch, and
the second-order check.

``check_op(build, inputs)`` builds ``build(*nodes)`` in float64 from the ``inputs`` arrays and

1. compares the tape machine's gradient of ``sum(out * R)`` (``R`` a random direction) with a
   central finite difference along a random direction for every float input
   (relative error < 1e-6, plus the finite difference's rounding noise);
2. checks the Lisp machine gives the same value and gradients;
3. with ``free_batch=True``, declares dimension 0 of every input ``None`` and checks again;
4. runs the forward pass in float32 and compares with float64.

``check_hvp(build, inputs)`` checks second derivatives the same way, in float64: with ``G`` the
gradient of ``f = sum(out * R)`` for all float inputs together and ``V`` a random direction,
``Grad(<G, V>)`` is the Hessian-vector product ``H V``; its projection on another random
direction ``U`` must match the central finite difference of ``<G, V>`` along ``U``. It also
checks that every fused node in the graph has the value of its graph-op expansion (what the
second derivative differentiates), and that the Lisp machine computes the same ``H V``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import graphcore as gc
from graphcore.graph import ancestors
from graphcore.ops.base import building_in

Build = Callable[..., gc.Node]


def _graph(build: Build, arrays: Sequence[np.ndarray], dtype: Any, free_batch: bool,
           seed: int) -> tuple[gc.Graph, list[gc.Node], gc.Node, gc.Node]:
    g = gc.NewGraph()
    nodes = []
    for i, a in enumerate(arrays):
        a = np.asarray(a)
        dt = dtype if a.dtype.kind == "f" else a.dtype
        shape = a.shape
        if free_batch and a.ndim > 0:
            shape = (None, *a.shape[1:])
        n = gc.NewTensor(g, dt, a.ndim, gc.WithShape(*shape), gc.WithName(f"in{i}"))
        gc.Let(n, a.astype(gc.as_dtype(dt).np))
        nodes.append(n)
    out = build(*nodes)
    rng = np.random.default_rng(seed)
    r = rng.standard_normal(tuple(arrays[0].shape[0] if d is None else d for d in out.shape))
    cost = gc.Sum(gc.HadamardProd(out, gc.NewConstant(r, dtype=out.dtype)))
    return g, nodes, out, cost


def _eval(g: gc.Graph, out: gc.Node) -> np.ndarray:
    vm = gc.NewTapeMachine(g, gc.WithWatchlist(out))
    vm.run_all()
    return np.array(out.value, copy=True)


def check_op(build: Build, inputs: Sequence[Any], *, free_batch: bool = False,
             rtol: float = 1e-6, eps: float = 1e-6, seed: int = 0, check_f32: bool = True,
             f32_tol: float = 1e-4, differentiable: bool = True) -> None:
    arrays = [np.asarray(a) for a in inputs]
    g, nodes, out, cost = _graph(build, arrays, gc.Float64, free_batch, seed)
    value64 = _eval(g, out)
    if check_f32:
        g32, _, out32, _ = _graph(build, arrays, gc.Float32, free_batch, seed)
        assert out32.dtype == gc.Float32 or not out32.dtype.is_float
        value32 = _eval(g32, out32)
        np.testing.assert_allclose(value32, value64, rtol=f32_tol, atol=f32_tol)
    if not differentiable:
        return
    wrt = [n for n in nodes if n.dtype.is_float]
    grads = gc.Grad(cost, *wrt)
    vm = gc.NewTapeMachine(g, gc.WithWatchlist(out))
    vm.run_all()
    analytic = [np.array(d.value, copy=True) for d in grads]
    c0 = float(cost.value)
    rng = np.random.default_rng(seed + 1)
    for n, a in zip(wrt, analytic):
        base = np.array(n.value, copy=True)
        v = rng.standard_normal(base.shape)
        gc.Let(n, base + eps * v)
        vm.run_all()
        fp = float(cost.value)
        gc.Let(n, base - eps * v)
        vm.run_all()
        fm = float(cost.value)
        gc.Let(n, base)
        num = (fp - fm) / (2 * eps)
        ana = float(np.sum(a * v))
        # plus the finite difference's own rounding: fp and fm carry ~1 ulp of the cost each,
        # so num cannot resolve better than ~eps_mach * |cost| / eps (1e-10 for a cost of 1);
        # a gradient that small (BatchNorm's, with a small random gamma) would fail on noise
        noise = 4 * np.finfo(np.float64).eps * max(abs(fp), abs(fm)) / eps
        err = abs(num - ana) / max(abs(num), abs(ana), 1e-8)
        assert abs(num - ana) <= rtol * max(abs(num), abs(ana)) + noise or err < rtol, (
            f"gradient of {n.name}: analytic {ana}, numeric {num}, rel err {err} "
            f"(finite-difference noise {noise:.1e})"
        )
    vm.run_all()
    assert abs(float(cost.value) - c0) <= 1e-12 * max(1.0, abs(c0))
    # the interpreting machine agrees with the compiled one
    for n in wrt:
        n.unbind_grad()
    lm = gc.NewLispMachine(g, gc.BindDualValues(*wrt))
    lm.run_all()
    np.testing.assert_allclose(out.value, value64, rtol=1e-12, atol=1e-12)
    for n, a in zip(wrt, analytic):
        np.testing.assert_allclose(n.grad, a, rtol=1e-10, atol=1e-12)


def _inner(grads: Sequence[gc.Node], directions: Sequence[np.ndarray]) -> gc.Node:
    """``sum_i <grads[i], directions[i]>`` as a scalar node."""
    terms = [gc.Sum(gc.HadamardProd(d, gc.NewConstant(v, dtype=d.dtype)))
             for d, v in zip(grads, directions, strict=True)]
    total = terms[0]
    for t in terms[1:]:
        total = gc.Add(total, t)
    return total


def _check_expansions(g: gc.Graph, opts: Sequence[Any]) -> int:
    """Every fused node of ``g`` equals its graph-op expansion; returns how many were checked."""
    pairs = []
    for n in ancestors(list(g.nodes)):
        if n.op is None:
            continue
        with building_in(g):
            e = n.op.expand(n)
        if e is not None:
            pairs.append((n, e))
    if not pairs:
        return 0
    vm = gc.NewTapeMachine(g, gc.WithWatchlist(*(m for p in pairs for m in p)), *opts)
    vm.run_all()
    for n, e in pairs:
        np.testing.assert_allclose(
            e.value, n.value, rtol=1e-9, atol=1e-12,
            err_msg=f"{n.op} and its expansion {e.op} differ",
        )
    return len(pairs)


def check_hvp(build: Build, inputs: Sequence[Any], *, rtol: float = 1e-6, eps: float = 1e-5,
              seed: int = 0, training: bool = True, expansions: bool = True) -> np.ndarray:
    """The second-order check (see the module docs); returns ``H V`` for all float inputs,
    concatenated, so a test can also assert on it (an exact zero, say)."""
    arrays = [np.asarray(a) for a in inputs]
    g, nodes, out, cost = _graph(build, arrays, gc.Float64, False, seed)
    wrt = [n for n in nodes if n.dtype.is_float]
    grads = gc.Grad(cost, *wrt)
    rng = np.random.default_rng(seed + 2)
    vs = [rng.standard_normal(n.shape) for n in wrt]
    us = [rng.standard_normal(n.shape) for n in wrt]
    s = _inner(grads, vs)
    hv = gc.Grad(s, *wrt)
    assert [d.shape for d in hv] == [n.shape for n in wrt]
    opts = [] if training else [gc.EvalMode()]
    vm = gc.NewTapeMachine(g, gc.WithWatchlist(s, *hv), *opts)
    vm.run_all()
    analytic = [np.array(d.value, copy=True) for d in hv]
    bases = [np.array(n.value, copy=True) for n in wrt]

    def s_at(t: float) -> float:
        for n, base, u in zip(wrt, bases, us, strict=True):
            gc.Let(n, base + t * u)
        vm.run_all()
        return float(s.value)

    fp, fm = s_at(eps), s_at(-eps)
    s_at(0.0)
    num = (fp - fm) / (2 * eps)
    ana = float(sum(np.sum(a * u) for a, u in zip(analytic, us, strict=True)))
    # the difference of two runs of <G, V> carries ~1 ulp of each (and of the terms summed)
    noise = 64 * np.finfo(np.float64).eps * max(abs(fp), abs(fm), 1.0) / eps
    assert abs(num - ana) <= rtol * max(abs(num), abs(ana)) + noise, (
        f"Hessian-vector product along U: analytic {ana}, numeric {num} "
        f"(finite-difference noise {noise:.1e})"
    )
    # the interpreting machine agrees
    lm = gc.NewLispMachine(g, *opts)
    lm.run_all()
    for d, a in zip(hv, analytic, strict=True):
        np.testing.assert_allclose(d.value, a, rtol=1e-9, atol=1e-12)
    if expansions:  # last: the expansions become extra roots of the graph
        _check_expansions(g, opts)
    return np.concatenate([a.ravel() for a in analytic])
