"""Shared test harness for golgi layers: one call checks what every layer must do.

``check_layer(cons, input_shape, *opts, expect_out_shape=..., n_learnables=...,
learnable_shapes=...)`` builds ``cons(x, *opts)`` on an input with a free batch dimension and
checks, in order:

1. output shape (``None`` batch) from ``fwd`` and from ``output_shape``; learnable count,
   shapes and ``"<layer>/..."`` names; the thunk forms ``L(cons(opts))`` and ``L(cons, opts)``
   build the same shapes;
2. gradients in float64 w.r.t. every learnable and the (float) input: central differences
   along a random direction of ``sum(out * R)``, relative error < ``rtol`` (1e-6);
3. the float32 forward (same weights) matches float64;
4. (``rowwise``) the same layer on a batch of one gives row 0 of the batch output;
5. ``golgi.save``/``golgi.load`` round trip into a freshly built layer: weights and state are
   bit-identical, outputs equal;
6. (``train``) one SGD step on ``0.5 * mean((out - target)**2)`` lowers it.

Options depending on the dtype (``Of(dtype)`` for an embedding by index) come from
``dtype_opts(dtype)``; integer inputs from ``int_input=(low, high)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import golgi as G
import graphcore as gc


def _build(
    cons: Callable[..., Any],
    input_shape: Sequence[int],
    opts: Sequence[Any],
    dtype: gc.Dtype,
    seed: int,
    int_input: tuple[int, int] | None,
    dtype_opts: Callable[[gc.Dtype], Sequence[Any]] | None,
) -> tuple[gc.Graph, gc.Node, G.Layer, gc.Node]:
    gc.SetSeed(seed)
    g = gc.NewGraph("harness")
    in_dt = gc.Int64 if int_input is not None else dtype
    shape = (None, *input_shape[1:])
    x = gc.NewTensor(g, in_dt, len(shape), gc.WithShape(*shape), gc.WithName("x"))
    extra = tuple(dtype_opts(dtype)) if dtype_opts is not None else ()
    layer = cons(x, *opts, *extra)
    assert isinstance(layer, G.Layer), f"{cons.__name__}(x, ...) returned {layer!r}"
    return g, x, layer, layer.fwd(x)


def _data(input_shape: Sequence[int], int_input: tuple[int, int] | None, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 100)
    if int_input is not None:
        return rng.integers(int_input[0], int_input[1], size=tuple(input_shape))
    return rng.standard_normal(tuple(input_shape))


def _forward(
    g: gc.Graph, x: gc.Node, out: gc.Node, data: np.ndarray, machine_opts: Sequence[Any]
) -> np.ndarray:
    gc.Let(x, data.astype(x.dtype.np))
    vm = gc.NewTapeMachine(g, gc.WithWatchlist(out), *machine_opts)
    vm.run_all()
    return np.array(out.value, copy=True)


def _copy_weights(src: G.Layer, dst: G.Layer) -> None:
    for (k, a), (k2, b) in zip(
        src.named_learnables().items(), dst.named_learnables().items(), strict=True
    ):
        assert k == k2
        gc.Let(b, a.value.astype(b.dtype.np))


def check_layer(
    cons: Callable[..., Any],
    input_shape: Sequence[int],
    *opts: Any,
    expect_out_shape: tuple[int | None, ...],
    n_learnables: int,
    learnable_shapes: Sequence[tuple[int, ...]],
    tmp_path: Path | None = None,
    int_input: tuple[int, int] | None = None,
    dtype_opts: Callable[[gc.Dtype], Sequence[Any]] | None = None,
    machine_opts: Sequence[Any] = (),
    rtol: float = 1e-6,
    eps: float = 1e-6,
    f32_tol: float = 1e-4,
    rowwise: bool = True,
    train: bool = True,
    check_grad: bool = True,
    seed: int = 0,
) -> G.Layer:
    """Run the shared checks (see the module docs); returns the float64 layer."""
    args = (input_shape, opts, gc.Float64, seed, int_input, dtype_opts)
    g, x, layer, out = _build(cons, *args)

    # 1. shapes and learnables
    assert out.shape == tuple(expect_out_shape), f"output shape {out.shape}"
    assert layer.output_shape(x.shape) == tuple(expect_out_shape)
    learn = layer.model()
    assert len(learn) == n_learnables, [n.name for n in learn]
    assert [tuple(n.shape) for n in learn] == [tuple(s) for s in learnable_shapes]
    assert all(k.startswith(layer.name + "/") for k in layer.named_learnables())
    assert layer.fwd(x) is out, "fwd on the same input node must return the same node"
    assert layer.param_count() == sum(int(np.prod(s)) for s in learnable_shapes)
    extra = tuple(dtype_opts(gc.Float64)) if dtype_opts is not None else ()
    for thunk in (G.L(cons(*opts, *extra)), G.L(cons, *opts, *extra)):
        g2 = gc.NewGraph()
        x2 = gc.NewTensor(g2, x.dtype, x.ndim, gc.WithShape(*x.shape), gc.WithName("x"))
        c = G.ComposeSeq(x2, thunk)
        assert c.out.shape == out.shape
        assert [n.shape for n in c.model()] == [n.shape for n in learn]

    data = _data(input_shape, int_input, seed)
    value64 = _forward(g, x, out, data, machine_opts)
    assert value64.shape == tuple(input_shape[:1]) + tuple(expect_out_shape[1:])

    # 2. gradients in float64
    if check_grad:
        _gradcheck(g, x, out, learn, data, machine_opts, rtol, eps, seed)

    # 3. float32 forward with the same weights
    g32, x32, layer32, out32 = _build(
        cons, input_shape, opts, gc.Float32, seed, int_input, dtype_opts
    )
    assert all(n.dtype == gc.Float32 for n in layer32.model())
    _copy_weights(layer, layer32)
    value32 = _forward(g32, x32, out32, data, machine_opts)
    assert value32.dtype == np.float32
    np.testing.assert_allclose(value32, value64, rtol=f32_tol, atol=f32_tol)

    # 4. row independence and the free batch: a batch of one gives row 0
    if rowwise:
        one = _forward(g, x, out, data[:1], machine_opts)
        np.testing.assert_allclose(one[0], value64[0], rtol=1e-12, atol=1e-12)

    # 5. save and load into a layer built from another seed
    if tmp_path is not None:
        path = tmp_path / f"{layer.name}.npz"
        G.save(layer, path)
        g3, x3, layer3, out3 = _build(
            cons, input_shape, opts, gc.Float64, seed + 7, int_input, dtype_opts
        )
        G.load(layer3, path)
        for a, b in zip(layer.model(), layer3.model(), strict=True):
            assert np.array_equal(a.value, b.value) and a.value.dtype == b.value.dtype
        for k, v in layer.state().items():
            assert np.array_equal(v, layer3.state()[k])
        np.testing.assert_array_equal(_forward(g3, x3, out3, data, machine_opts), value64)

    # 6. one SGD step lowers a simple loss
    if train and learn:
        _train_step(cons, input_shape, opts, seed, int_input, dtype_opts, machine_opts, data)
    return layer


def _gradcheck(
    g: gc.Graph,
    x: gc.Node,
    out: gc.Node,
    learn: list[gc.Node],
    data: np.ndarray,
    machine_opts: Sequence[Any],
    rtol: float,
    eps: float,
    seed: int,
) -> None:
    rng = np.random.default_rng(seed + 1)
    r = rng.standard_normal(tuple(data.shape[:1]) + tuple(out.shape[1:]))
    cost = gc.Sum(gc.HadamardProd(out, gc.NewConstant(r, dtype=out.dtype)))
    wrt = list(learn) + ([x] if x.dtype.is_float else [])
    grads = gc.Grad(cost, *wrt)
    gc.Let(x, data.astype(x.dtype.np))
    vm = gc.NewTapeMachine(g, *machine_opts)
    vm.run_all()
    analytic = [np.array(d.value, copy=True) for d in grads]
    for n, a in zip(wrt, analytic, strict=True):
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
        err = abs(num - ana) / max(abs(num), abs(ana), 1e-8)
        assert err < rtol, f"gradient of {n.name}: analytic {ana}, numeric {num}, rel err {err}"


def _train_step(
    cons: Callable[..., Any],
    input_shape: Sequence[int],
    opts: Sequence[Any],
    seed: int,
    int_input: tuple[int, int] | None,
    dtype_opts: Callable[[gc.Dtype], Sequence[Any]] | None,
    machine_opts: Sequence[Any],
    data: np.ndarray,
) -> None:
    g, x, layer, out = _build(cons, input_shape, opts, gc.Float64, seed, int_input, dtype_opts)
    target = np.random.default_rng(seed + 2).standard_normal(
        tuple(input_shape[:1]) + tuple(out.shape[1:])
    )
    t = gc.NewTensor(g, gc.Float64, out.ndim, gc.WithShape(*out.shape), gc.WithName("target"))
    loss = gc.HadamardProd(G.MSE(out, t), 0.5)
    learn = layer.model()
    gc.Grad(loss, *learn)
    vm = gc.NewTapeMachine(g, gc.BindDualValues(*learn), *machine_opts)
    gc.Let(x, data.astype(x.dtype.np))
    gc.Let(t, target)
    vm.run_all()
    before = float(loss.value)
    solver = gc.NewVanillaSolver(gc.WithLearnRate(1e-3))
    solver.step(gc.NodesToValueGrads(learn))
    vm.run_all()
    after = float(loss.value)
    assert after < before, f"one SGD step did not lower the loss: {before} -> {after}"
