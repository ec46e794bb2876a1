"""Shared harness for op tests: gradient check, tape vs lisp, float32 forward, free batch.

``check_op(build, inputs)`` builds ``build(*nodes)`` in float64 from the ``inputs`` arrays and

1. compares the tape machine's gradient of ``sum(out * R)`` (``R`` a random direction) with a
   central finite difference along a random direction for every float input
   (relative error < 1e-6, plus the finite difference's rounding noise);
2. checks the Lisp machine gives the same value and gradients;
3. with ``free_batch=True``, declares dimension 0 of every input ``None`` and checks again;
4. runs the forward pass in float32 and compares with float64.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import graphcore as gc

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
