"""Kernels: every kernel on both backends (numpy reference and numba), float32 and float64,
contiguous and strided inputs, against each other and against float64 references; the shared
constant buffers, the numpy helpers, BLAS routing, and the backend switch and cache."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from scipy import special

import graphcore as gc
import graphcore.kernels.blas as blas_mod
from graphcore import kernels
from graphcore.kernels import filled, reference
from graphcore.kernels.blas import Axpby, gemm_into
from graphcore.kernels.reference import LogSum, log_sum
from graphcore.kernels.segments import Part, Reg, Segment
from tests.test_ops_loss import bce_ref

F32, F64 = np.float32, np.float64
HAVE_NUMBA = gc.accel.available()
needs_numba = pytest.mark.skipif(not HAVE_NUMBA, reason="numba (the fast extra) absent")
BACKENDS = ["reference", pytest.param("compiled", marks=needs_numba)]
TOL = {F32: 2e-6, F64: 1e-13}  # between the backends (the machine-level tests' tolerances)


def rng(seed=0):
    return np.random.default_rng(seed)


def backend(name: str):
    if name == "compiled":
        from graphcore.kernels import compiled

        return compiled
    return reference


@pytest.fixture(params=BACKENDS)
def k(request):
    return backend(request.param)


def laid_out(a: np.ndarray, layout: str) -> np.ndarray:
    """``a``'s values as a C-contiguous array or as a strided view (every other column)."""
    if layout == "contiguous":
        return np.ascontiguousarray(a)
    big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    v = big[..., ::2]
    v[...] = a
    assert not v.flags.c_contiguous
    return v


# ----- the two backends have one interface -------------------------------------------------------


@needs_numba
def test_compiled_has_every_reference_kernel_with_its_signature():
    from graphcore.kernels import compiled

    assert compiled.__all__ == reference.__all__
    for name in reference.__all__:
        ref, comp = getattr(reference, name), getattr(compiled, name)
        assert list(inspect.signature(ref).parameters) == list(
            inspect.signature(comp).parameters
        ), name
    # module by module too: each concern's kernels live in the same-named module of both
    parts = ("activations", "losses", "columns", "pooling", "solvers")
    assert [n for m in parts for n in getattr(reference, m).__all__] == reference.__all__
    for m in parts:
        ref_mod, comp_mod = getattr(reference, m), getattr(compiled, m)
        assert comp_mod.__all__ == ref_mod.__all__, m
        for name in ref_mod.__all__:
            assert getattr(compiled, name) is getattr(comp_mod, name), (m, name)
            assert getattr(reference, name) is getattr(ref_mod, name), (m, name)


def test_backend_follows_the_switch(accel_state):
    with gc.accel.disabled():
        assert kernels.backend() is reference
    gc.accel.set_enabled(True)
    if HAVE_NUMBA:
        assert kernels.backend().__name__ == "graphcore.kernels.compiled"
        assert gc.accel.kernels() is kernels.backend()
    else:
        assert kernels.backend() is reference and gc.accel.kernels() is None


@pytest.fixture
def accel_state():
    was = gc.accel._state["on"]
    try:
        yield
    finally:
        gc.accel.set_enabled(was)


def _python(code: str, **env: str) -> str:
    root = Path(__file__).resolve().parent.parent
    e = {**os.environ, "PYTHONPATH": str(root), **env}
    return subprocess.run([sys.executable, "-c", code], env=e, check=True, capture_output=True,
                          text=True).stdout.strip()


def test_import_graphcore_does_not_import_numba():
    assert _python("import sys, graphcore; print('numba' in sys.modules)") == "False"


def test_with_graphcore_numba_0_numba_is_never_imported():
    code = (
        "import sys, numpy as np, graphcore as gc\n"
        "g = gc.NewGraph()\n"
        "x = gc.NewMatrix(g, gc.Float32, gc.WithShape(4, 3), gc.WithName('x'),"
        " gc.WithValue(np.ones((4, 3), np.float32)))\n"
        "c = gc.Mean(gc.Sigmoid(gc.Rectify(x))); gc.Grad(c, x)\n"
        "gc.NewTapeMachine(g, gc.BindDualValues(x)).run_all()\n"
        "gc.NewRMSPropSolver().step([x])\n"
        "print(gc.accel.enabled(), 'numba' in sys.modules)"
    )
    assert _python(code, GRAPHCORE_NUMBA="0") == "False False"


@needs_numba
def test_numba_cache_lives_in_the_user_cache_directory(tmp_path):
    code = (
        "from graphcore.kernels import jit\n"
        "from graphcore.kernels.compiled import activations as c\n"
        "print(jit.cache_dir()); print(c._relu_grad._cache.cache_path)"
    )
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
             "XDG_CACHE_HOME": str(tmp_path / "xdg")},
        check=True, capture_output=True, text=True,
    ).stdout.split()
    want = str(tmp_path / "xdg" / "graphcore" / "numba")
    assert out[0] == want and out[1].startswith(want)
    package = str(Path(gc.__file__).resolve().parent)
    assert not out[1].startswith(package)
    # the user's NUMBA_CACHE_DIR wins
    out = _python(code, NUMBA_CACHE_DIR=str(tmp_path / "mine")).split()
    assert out[0] == str(tmp_path / "mine") and out[1].startswith(out[0])


# ----- every kernel, both backends, against each other and float64 ------------------------------
# A case builds its inputs for a dtype and layout, runs one backend, and returns its outputs;
# ``check`` compares one backend's outputs with a float64 reference.

WIDE = np.concatenate(
    [
        [-1000.0, -700.0, -100.0, -36.0, -30.0, -20.0, -1.0, -1e-8, -0.0, 0.0, 1e-8],
        [1.0, 20.0, 30.0, 36.0, 37.0, 100.0, 700.0, 1000.0],
        np.linspace(-50, 50, 101),
    ]
)


def expit64(x):
    return special.expit(np.asarray(x, F64))


def _relu(k, dt, layout):
    x = laid_out(np.concatenate([WIDE, [np.nan, np.inf, -np.inf]]).reshape(3, 41).astype(dt),
                 layout)
    out = np.empty(x.shape, dt)
    k.relu(x, out, k.relu_scratch(x, out))
    return {"out": out, "x": x}


def _relu_check(o, dt):
    x = o["x"]
    np.testing.assert_array_equal(o["out"], np.where(np.isnan(x), np.nan, np.maximum(x, 0)))


def _relu_grad(k, dt, layout):
    r = rng(1)
    y = np.maximum(r.standard_normal((6, 9)), 0)
    y[0, :3] = [np.nan, np.inf, 1e-30]
    y, g = laid_out(y.astype(dt), layout), laid_out(r.standard_normal((6, 9)).astype(dt), layout)
    out = np.empty(y.shape, dt)
    k.relu_grad(y, g, out, k.relu_grad_scratch(y, g, out))
    return {"out": out, "y": y, "g": g}


def _relu_grad_check(o, dt):
    y, g = o["y"], o["g"]
    want = np.where(np.isnan(y), np.nan, np.where(y > 0, g, 0))
    np.testing.assert_array_equal(o["out"], want.astype(dt))


def _sigmoid(k, dt, layout, in_place=False):
    x = laid_out(WIDE.reshape(10, 12).astype(dt), layout)
    xin = x.copy() if in_place else x
    out = xin if in_place else np.empty(x.shape, dt)
    k.sigmoid(xin, out, k.sigmoid_scratch(xin, out))
    return {"out": out, "x": x}


def _sigmoid_check(o, dt):
    ref = expit64(o["x"])
    if dt == F32:  # below ~1e-38 float32 results are subnormal: absolute precision only
        np.testing.assert_allclose(o["out"], ref, rtol=1e-6, atol=1e-37)
    else:
        np.testing.assert_allclose(o["out"], ref, rtol=1e-12, atol=0)


def _bce_inputs(dt, layout, shape=(7, 30)):
    r = rng(2)
    z = r.standard_normal(shape) * 6
    z.flat[:4] = [1000.0, -1000.0, 0.0, -30.0]
    t = r.random(shape)
    return laid_out(z.astype(dt), layout), laid_out(t.astype(dt), layout)


def _bce_sum(k, dt, layout):
    z, t = _bce_inputs(dt, layout)
    sig, out = np.empty(z.shape, dt), np.empty((), dt)
    sc = k.sigmoid_bce_sum_scratch(z, t, sig, out)
    k.sigmoid_bce_sum(z, t, 0.5, sig, out, sc)
    first = out.copy()
    k.sigmoid_bce_sum(z, t, 0.5, sig, out, sc)  # again on the same scratch: the same
    assert out == first
    return {"out": out, "sig": sig, "z": z, "t": t}


def _bce_sum_check(o, dt):
    rv, _ = bce_ref(o["z"], o["t"], "sum")
    assert float(o["out"]) == pytest.approx(0.5 * rv, rel=10 * TOL[dt])
    np.testing.assert_allclose(o["sig"], expit64(o["z"]), rtol=1e-6 if dt == F32 else 1e-12,
                               atol=1e-37 if dt == F32 else 0)


def _bce_none(k, dt, layout):
    z, t = _bce_inputs(dt, layout)
    sig, out = np.empty(z.shape, dt), np.empty(z.shape, dt)
    k.sigmoid_bce(z, t, sig, out, k.sigmoid_bce_scratch(z, t, sig, out))
    return {"out": out, "sig": sig, "z": z, "t": t}


def _bce_none_check(o, dt):
    rv, _ = bce_ref(o["z"], o["t"], "none")
    np.testing.assert_allclose(o["out"], rv, rtol=1e-5 if dt == F32 else 1e-12, atol=1e-6)
    np.testing.assert_allclose(o["sig"], expit64(o["z"]), rtol=1e-6 if dt == F32 else 1e-12,
                               atol=1e-37 if dt == F32 else 0)


def _bce_grad(k, dt, layout, per_element=False):
    z, t = _bce_inputs(dt, layout)
    sig = laid_out(expit64(z).astype(dt), layout)
    c = laid_out(np.full(z.shape, 1.5, dt), layout) if per_element else np.array(0.25, dt)
    out = np.empty(z.shape, dt)
    k.sigmoid_bce_grad(sig, t, c, out, k.sigmoid_bce_grad_scratch(sig, t, c, out))
    return {"out": out, "z": z, "t": t, "c": np.asarray(c, F64)}


def _bce_grad_check(o, dt):
    _, rg = bce_ref(o["z"], o["t"], "none")
    atol = 4 * np.finfo(dt).eps  # sigmoid(z) - t cancels near t
    np.testing.assert_allclose(o["out"], rg * o["c"], rtol=1e-5 if dt == F32 else 1e-12,
                               atol=atol)


def _softmax_inputs(dt, layout, shape=(7, 10)):
    r = rng(3)
    z = r.standard_normal(shape) * 5
    z[0, 0] = 80.0  # exp(80) overflows float32: the max is subtracted first
    t = r.random(shape)  # soft targets: rows do not sum to 1
    return laid_out(z.astype(dt), layout), laid_out(t.astype(dt), layout)


def _softmax_fwd(k, dt, z, t, scale):
    n = z.shape[0]
    e, s, st = np.empty(z.shape, dt), np.empty((n, 1), dt), np.empty((n, 1), dt)
    out = np.empty((), dt)
    k.softmax_ce_sum(z, t, scale, e, s, st, out, k.softmax_ce_sum_scratch(z, t, e, s, st, out))
    return e, s, st, out


def _softmax_sum(k, dt, layout):
    z, t = _softmax_inputs(dt, layout)
    e, s, st, out = _softmax_fwd(k, dt, z, t, 1.0 / z.shape[0])
    return {"out": out, "e": e, "s": s, "st": st, "z": z, "t": t}


def _softmax_ref(z, t):
    z64, t64 = z.astype(F64), t.astype(F64)
    lsm = z64 - z64.max(1, keepdims=True)
    lsm -= np.log(np.exp(lsm).sum(1, keepdims=True))
    return lsm, t64


def _softmax_sum_check(o, dt):
    lsm, t64 = _softmax_ref(o["z"], o["t"])
    assert float(o["out"]) == pytest.approx(-(t64 * lsm).sum(1).mean(), rel=10 * TOL[dt])
    np.testing.assert_allclose(o["e"] / o["s"], np.exp(lsm), rtol=1e-5 if dt == F32 else 1e-12,
                               atol=1e-37)
    np.testing.assert_allclose(o["st"][:, 0], t64.sum(1), rtol=1e-6 if dt == F32 else 1e-13)


def _softmax_grad(k, dt, layout):
    z, t = _softmax_inputs(dt, layout)
    e, s, st, _ = _softmax_fwd(reference, dt, z, t, 1.0)  # the same saved arrays for both
    c = np.array(0.5, dt)
    out = np.empty(z.shape, dt)
    k.softmax_ce_grad(e, s, st, t, c, out, k.softmax_ce_grad_scratch(e, s, st, t, c, out))
    return {"out": out, "z": z, "t": t}


def _softmax_grad_check(o, dt):
    lsm, t64 = _softmax_ref(o["z"], o["t"])
    gref = (np.exp(lsm) * t64.sum(1, keepdims=True) - t64) * 0.5
    np.testing.assert_allclose(o["out"], gref, rtol=1e-5 if dt == F32 else 1e-12, atol=1e-6)


CASES: dict[str, tuple[Callable, Callable]] = {
    "relu": (_relu, _relu_check),
    "relu_grad": (_relu_grad, _relu_grad_check),
    "sigmoid": (_sigmoid, _sigmoid_check),
    "sigmoid_in_place": (lambda k, dt, lay: _sigmoid(k, dt, lay, in_place=True), _sigmoid_check),
    "sigmoid_bce_sum": (_bce_sum, _bce_sum_check),
    "sigmoid_bce": (_bce_none, _bce_none_check),
    "sigmoid_bce_grad": (_bce_grad, _bce_grad_check),
    "sigmoid_bce_grad_per_element": (
        lambda k, dt, lay: _bce_grad(k, dt, lay, per_element=True), _bce_grad_check
    ),
    "softmax_ce_sum": (_softmax_sum, _softmax_sum_check),
    "softmax_ce_grad": (_softmax_grad, _softmax_grad_check),
}


def _agree(a: np.ndarray, b: np.ndarray, dt, what: str) -> None:
    # atol: numba's sigmoid keeps the denormal results numpy's 4-pass one flushes to 0
    np.testing.assert_allclose(a, b, rtol=TOL[dt], atol=1e-37, err_msg=what)


@pytest.mark.parametrize("layout", ["contiguous", "strided"])
@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("case", CASES)
def test_kernel_on_both_backends(case, dtype, layout):
    run, check = CASES[case]
    outs = {}
    for name in ("reference", "compiled") if HAVE_NUMBA else ("reference",):
        o = run(backend(name), dtype, layout)
        for key, v in o.items():
            assert v.dtype == dtype or key == "c", (name, key)
        check(o, dtype)
        outs[name] = o
    if "compiled" in outs:
        a, b = outs["reference"], outs["compiled"]
        for key in a:
            _agree(b[key], a[key], dtype, f"{case}: {key}")


# ----- solver kernels ----------------------------------------------------------------------------

SOLVER_BUFS = {
    "sgd": (), "momentum": ("velocity",), "adagrad": ("cache",), "rmsprop": ("cache",),
    "adam": ("m", "v"), "adamw": ("m", "v"), "regularise": (),
}
SOLVER_ARGS = {
    "sgd": (0.01,), "momentum": (0.01, 0.9), "adagrad": (0.01, 1e-8),
    "rmsprop": (0.01, 0.9, 1e-8), "adam": (0.9, 0.999, 1e-8, 0.01, 1.0),
    "adamw": (0.9, 0.999, 1e-8, 0.01, 0.999), "regularise": (),
}
REGS = {
    "plain": Reg(0.0, 0.0, 1, None),
    "batch": Reg(0.0, 0.0, 4, None),
    "general": Reg(0.01, 0.02, 4, 0.05),
}
SHAPES = [(4, 3), (5,), (2, 2, 2)]


def _segment(dtype, layout, names, seed=11, shapes=SHAPES):
    """A segment of parameters whose gradients, scratch and state tile flat buffers (as a
    solver lays them out), or, strided, of one Fortran-ordered parameter."""
    r = rng(seed)
    if layout == "strided":
        w = np.asfortranarray(r.standard_normal((4, 3)).astype(dtype))
        g = np.asfortranarray(np.zeros((4, 3), dtype))
        bufs = {b: np.asfortranarray(np.zeros((4, 3), dtype)) for b in names}
        seg = Segment.single(w, g, np.empty((4, 3), dtype, order="F"), bufs)
        assert seg.flat_parts is None
        return seg
    sizes = [int(np.prod(s)) for s in shapes]
    n = sum(sizes)
    g, s = np.zeros(n, dtype), np.empty(n, dtype)
    bufs = {b: np.zeros(n, dtype) for b in names}
    parts, lo = [], 0
    for shape, m in zip(shapes, sizes):
        def view(a, lo=lo, m=m, shape=shape):
            return a[lo : lo + m].reshape(shape)

        w = r.standard_normal(shape).astype(dtype)
        parts.append(Part(w, view(g), view(s), {b: view(a) for b, a in bufs.items()}))
        lo += m
    seg = Segment(g, s, bufs, parts)
    assert seg.flat_parts is not None
    return seg


def _run_solver(k, name, reg, dtype, layout, steps=4):
    seg = _segment(dtype, layout, SOLVER_BUFS[name])
    r = rng(12)
    fn = getattr(k, "adam" if name == "adamw" else name)
    for _ in range(steps):
        for p in seg.parts:
            p.g[...] = (r.standard_normal(p.g.shape) * 0.2).astype(dtype)
        if name == "regularise":
            fn(seg, reg)
        else:
            fn(seg, reg, *SOLVER_ARGS[name])
    state = {b: a.copy() for b, a in seg.bufs.items()}
    if name == "regularise":
        state["g"] = seg.g.copy()
    return [p.w.copy() for p in seg.parts], state


@pytest.mark.parametrize("layout", ["contiguous", "strided"])
@pytest.mark.parametrize("dtype,rtol", [(F32, 1e-6), (F64, 1e-12)])
@pytest.mark.parametrize("reg", REGS)
@pytest.mark.parametrize("name", SOLVER_BUFS)
def test_solver_kernel_on_both_backends(name, reg, dtype, rtol, layout):
    ref_w, ref_state = _run_solver(reference, name, REGS[reg], dtype, layout)
    # float64 reference: the same steps in float64 arithmetic
    w64, _ = _run_solver(reference, name, REGS[reg], F64, layout)
    start = _segment(dtype, layout, ())
    for w, w_ref64, p0 in zip(ref_w, w64, start.parts):
        assert w.dtype == dtype
        np.testing.assert_allclose(w, w_ref64, rtol=1e-5 if dtype == F32 else 1e-12, atol=1e-6)
        if name != "regularise":
            assert not np.array_equal(w, p0.w)  # the update moved the values
    if not HAVE_NUMBA:
        return
    from graphcore.kernels import compiled

    got_w, got_state = _run_solver(compiled, name, REGS[reg], dtype, layout)
    for a, b in zip(got_w, ref_w):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * 1e-2)
    for key, v in ref_state.items():
        np.testing.assert_allclose(got_state[key], v, rtol=rtol * 10, atol=1e-12, err_msg=key)


@pytest.mark.parametrize("name", ["sgd", "rmsprop", "adam"])
def test_solver_kernels_on_a_plain_segment_allocate_nothing(name):
    import tracemalloc

    for k in [reference] + ([backend("compiled")] if HAVE_NUMBA else []):
        seg = _segment(F32, "contiguous", SOLVER_BUFS[name], shapes=[(100, 50), (50,)])
        args = SOLVER_ARGS[name]
        for _ in range(3):  # warm-up: BLAS closures, numba's first call
            getattr(k, name)(seg, REGS["batch"], *args)
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            for _ in range(20):
                getattr(k, name)(seg, REGS["batch"], *args)
            growth = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
        assert growth < seg.g.nbytes / 4, (k.__name__, growth)


# ----- the shared constant buffers ---------------------------------------------------------------


@pytest.mark.parametrize("dtype", [F32, F64])
def test_filled_values_read_only_and_shared(dtype):
    z = filled(0.0, (2, 3), dtype)
    o = filled(1.0, (4,), dtype)
    assert z.shape == (2, 3) and z.dtype == dtype and not z.any()
    assert o.dtype == dtype and o.tolist() == [1.0] * 4
    assert not z.flags.writeable and not o.flags.writeable
    with pytest.raises(ValueError):
        z[0, 0] = 5.0
    # a smaller request is a view of the same buffer as the larger one
    assert np.shares_memory(filled(0.0, (3,), dtype), filled(0.0, (2, 3), dtype))
    assert not np.shares_memory(z, o)
    assert filled(1.0, (), dtype).shape == () and float(filled(1.0, (), dtype)) == 1.0
    assert filled(0.0, (0, 3), dtype).shape == (0, 3)


def test_filled_separate_buffers_per_dtype_and_grows():
    a64, a32 = filled(3.25, (2,), F64), filled(3.25, (2,), F32)
    assert a64.dtype == F64 and a32.dtype == F32 and not np.shares_memory(a64, a32)
    small = filled(3.25, (3,), F64)
    big = filled(3.25, (7, 11), F64)  # larger than any earlier request: a new buffer
    assert big.shape == (7, 11) and np.all(big == 3.25)
    assert not np.shares_memory(small, big)  # grown: a new buffer
    assert np.all(small == 3.25)  # the old view stays valid
    again = filled(3.25, (5,), F64)
    assert np.shares_memory(again, big) and np.all(again == 3.25)


def test_filled_buffers_are_shared_and_freed_with_their_last_view():
    import gc as pygc

    from graphcore.kernels import constants

    a = filled(3.25, (1000, 7), F32)  # a value no kernel uses, so no plan holds it
    b = filled(3.25, (10, 7), F32)
    assert np.shares_memory(a, b) and not a.flags.writeable and (b == 3.25).all()
    key = (3.25, np.dtype(F32).str)
    assert constants._SHARED[key].size >= 7000
    del a, b
    pygc.collect()
    assert key not in constants._SHARED  # no kernel holds a view: the 28 kB went


# ----- relu ---------------------------------------------------------------------------------------

RELU_X = np.array([-2.0, -0.0, 0.0, 1e-30, 1.5, np.inf, -np.inf, np.nan, -1e-30])


@pytest.mark.parametrize("dtype", [F32, F64])
def test_relu_kernel(dtype, k):
    x = RELU_X.astype(dtype)
    out = np.empty_like(x)
    k.relu(x, out, k.relu_scratch(x, out))
    want = np.array([0, 0, 0, 1e-30, 1.5, np.inf, 0, np.nan, 0], dtype)
    np.testing.assert_array_equal(out, want)  # NaN stays NaN
    assert out.dtype == dtype
    x2 = x.reshape(3, 3).T  # non-contiguous input
    out2 = np.empty((3, 3), dtype)
    k.relu(x2, out2, k.relu_scratch(x2, out2))
    np.testing.assert_array_equal(out2, np.where(np.isnan(x2), np.nan, np.maximum(x2, 0)))


@pytest.mark.parametrize("dtype", [F32, F64])
def test_relu_grad_kernel_mask(dtype, k):
    y = np.maximum(RELU_X, 0).astype(dtype)  # keeps NaN
    y[6] = 0.0  # relu(-inf)
    g = np.arange(1.0, 10.0).astype(dtype)
    out = np.empty_like(y)
    scratch = k.relu_grad_scratch(y, g, out)
    k.relu_grad(y, g, out, scratch)
    # zero where y == 0, g where y > 0 (1e-30 and inf included), NaN where y is NaN
    want = np.array([0, 0, 0, 4, 5, 6, 0, np.nan, 0], dtype)
    np.testing.assert_array_equal(out, want)
    assert out.dtype == dtype
    # running again with new upstream values re-reads g (the scratch binds arrays, not values)
    g[:] = 2.0
    k.relu_grad(y, g, out, scratch)
    assert out[3] == 2.0 and out[0] == 0.0


# ----- sigmoid -----------------------------------------------------------------------------------


def _sigmoid_of(kind: str) -> Callable:
    """A maker of zero-argument runs: a backend's sigmoid, or the numpy loss helper that also
    leaves ``1 + exp(-|x|)`` (``parts``)."""
    if kind == "parts":
        return lambda x, out, tmp: (lambda: reference.sigmoid_parts(x, out, tmp))
    k = backend(kind)

    def make(x, out, tmp):
        scratch = k.sigmoid_scratch(x, out)
        return lambda: k.sigmoid(x, out, scratch)

    return make


SIGMOIDS = ["reference", pytest.param("compiled", marks=needs_numba), "parts"]


@pytest.mark.parametrize("kind", SIGMOIDS)
def test_sigmoid_kernel_float64_against_expit(kind):
    x = WIDE.copy()
    out, tmp = np.empty_like(x), np.empty_like(x)
    _sigmoid_of(kind)(x, out, tmp)()
    np.testing.assert_allclose(out, expit64(x), rtol=1e-12, atol=0)
    assert np.all(np.isfinite(out))
    # relative precision kept far into the tail
    i = int(np.flatnonzero(x == -30.0)[0])
    assert out[i] == pytest.approx(9.357622968840175e-14, rel=1e-12)
    assert out[x == -1000.0][0] == 0.0 and out[x == 1000.0][0] == 1.0
    assert np.all(out[x == 0] == 0.5) and np.signbit(x[x == 0]).any()  # -0.0 and 0.0
    if kind == "parts":
        np.testing.assert_allclose(tmp, 1.0 + np.exp(-np.abs(x)), rtol=1e-15)
    np.testing.assert_array_equal(x, WIDE)  # x untouched when out is not x


@pytest.mark.parametrize("kind", SIGMOIDS)
def test_sigmoid_kernel_nan_and_in_place(kind):
    x = np.array([np.nan, -3.0, 0.0, 3.0])
    out, tmp = np.empty(4), np.empty(4)
    _sigmoid_of(kind)(x, out, tmp)()
    assert np.isnan(out[0])
    np.testing.assert_allclose(out[1:], expit64(x[1:]), rtol=1e-14)

    y = WIDE.copy()
    tmp = np.empty_like(y)
    _sigmoid_of(kind)(y, y, tmp)()  # out is x
    np.testing.assert_allclose(y, expit64(WIDE), rtol=1e-12, atol=0)
    if kind == "parts":
        np.testing.assert_allclose(tmp, 1.0 + np.exp(-np.abs(WIDE)), rtol=1e-15)


@pytest.mark.parametrize("in_place", [False, True])
def test_sigmoid_parts_kernel_relu_sum(in_place):
    x = rng(1).standard_normal((6, 5)) * 10
    x[0, 0], x[1, 1] = 1000.0, -1000.0
    ref_sum = np.maximum(x, 0).sum()
    ref = expit64(x)
    xx = x.copy()
    out = xx if in_place else np.empty_like(x)
    tmp, rs = np.empty_like(x), np.empty((), F64)

    def run():
        reference.sigmoid_parts(xx, out, tmp, relu_sum=rs)

    run()
    assert float(rs) == pytest.approx(ref_sum, rel=1e-14)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=0)
    if not in_place:  # a second run, after new values, recomputes both
        xx *= -1
        run()
        assert float(rs) == pytest.approx(np.maximum(-x, 0).sum(), rel=1e-14)
        np.testing.assert_allclose(out, expit64(-x), rtol=1e-12, atol=0)


@pytest.mark.parametrize("kind", SIGMOIDS)
def test_sigmoid_kernel_non_contiguous_input(kind):
    base = rng(2).standard_normal((5, 8)) * 20
    x = base.T  # (8, 5), not C-contiguous
    out, tmp = np.empty((8, 5)), np.empty((8, 5))
    _sigmoid_of(kind)(x, out, tmp)()
    np.testing.assert_allclose(out, expit64(x), rtol=1e-12, atol=0)


@pytest.mark.parametrize("kind", SIGMOIDS)
def test_sigmoid_kernel_float32(kind):
    x = WIDE.astype(F32)
    out, tmp = np.empty_like(x), np.empty_like(x)
    _sigmoid_of(kind)(x, out, tmp)()
    assert out.dtype == F32
    ref = expit64(x)  # the float32 inputs, in float64
    # below ~1e-38 float32 results are subnormal: absolute precision only
    np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-37)
    normal = ref > 1e-30
    np.testing.assert_allclose(out[normal], ref[normal], rtol=1e-6, atol=0)
    assert out[x == -30][0] == pytest.approx(9.357622968840175e-14, rel=1e-6)
    xn = np.array([np.nan, 0.0], F32)
    outn, tmpn = np.empty(2, F32), np.empty(2, F32)
    _sigmoid_of(kind)(xn, outn, tmpn)()
    assert np.isnan(outn[0]) and outn[1] == 0.5


@needs_numba
@pytest.mark.parametrize("dtype", [F32, F64])
def test_sigmoid_kernel_over_several_blocks(dtype):
    # 2 full blocks of the numba kernel and a partial one, in place and not; denormal results
    # too (numpy's 4-pass path flushes those to 0: test_sigmoid_kernel_float32 covers it)
    k = backend("compiled")
    x = (rng(31).standard_normal((3, 1000)) * 30).astype(dtype)
    ref = special.expit(x.astype(F64)).astype(dtype)
    tiny = np.finfo(dtype).smallest_subnormal
    for in_place in (False, True):
        xx = x.copy()
        out = xx if in_place else np.empty_like(x)
        k.sigmoid(xx, out, k.sigmoid_scratch(xx, out))
        np.testing.assert_allclose(out, ref, rtol=2 * np.finfo(dtype).eps, atol=2 * tiny)


# ----- LogSum ------------------------------------------------------------------------------------

SIZES = [1, 99, 100, 101, 1000, 12345]


@pytest.mark.parametrize("dtype,rtol", [(F32, 1e-6), (F64, 1e-12)])
@pytest.mark.parametrize("n", SIZES)
def test_log_sum_against_numpy(n, dtype, rtol):
    u = rng(n).uniform(1.0, 2.0, n)
    u[0] = 1.0
    u[-1] = 2.0  # the interval's ends
    u = u.astype(dtype)
    ref = np.log(u.astype(F64)).sum()
    ls = LogSum(n, dtype)
    got = ls(u)
    assert got.shape == () and got.dtype == dtype
    assert float(got) == pytest.approx(ref, rel=rtol)
    assert log_sum(u) == pytest.approx(ref, rel=rtol)
    # the scratch is reused: a second array through the same LogSum is right too
    v = np.full(n, 1.5, dtype)
    assert float(ls(v)) == pytest.approx(n * np.log(1.5), rel=rtol)
    # any shape of that size
    if n % 3 == 0:
        assert float(ls(u.reshape(3, -1))) == pytest.approx(ref, rel=rtol)


@pytest.mark.parametrize("dtype", [F32, F64])
def test_log_sum_does_not_overflow_and_empty(dtype):
    u = np.full(5000, 2.0, dtype)
    got = log_sum(u)
    assert np.isfinite(got)
    assert got == pytest.approx(5000 * np.log(2.0), rel=1e-6 if dtype == F32 else 1e-12)
    assert log_sum(np.empty(0, dtype)) == 0.0


# ----- the numba sigmoid cross-entropy loop ------------------------------------------------------


def _bce_logits(dtype, n=2000, seed=21):
    r = rng(seed)
    z = r.standard_normal(n) * 6
    lo = 104.0 if dtype == F32 else 745.0  # where exp(-|z|) leaves the denormals
    z[:14] = [1000, -1000, 0.0, -0.0, lo - 0.5, -(lo - 0.5), lo + 2, -(lo + 2), 30, -30,
              1e-30, -1e-30, 88.5, -88.5]
    return z.astype(dtype)


def _compiled_bce_sum(z, t, sig):
    k = backend("compiled")
    out = np.empty((), z.dtype)
    scratch = k.sigmoid_bce_sum_scratch(z, t, sig, out)
    assert type(scratch) is tuple  # contiguous: the loop, not the reference
    k.sigmoid_bce_sum(z, t, 1.0, sig, out, scratch)
    return float(out)


@needs_numba
@pytest.mark.parametrize("dtype", [F32, F64])
def test_numba_bce_kernel_against_reference(dtype):
    z = _bce_logits(dtype)
    t = rng(22).random(z.size).astype(dtype)
    sig = np.empty_like(z)
    total = _compiled_bce_sum(z, t, sig)
    z64, t64 = z.astype(F64), t.astype(F64)
    want = np.sum(np.maximum(z64, 0) - z64 * t64 + np.log1p(np.exp(-np.abs(z64))))
    assert total == pytest.approx(want, rel=1e-6 if dtype == F32 else 1e-13)
    # the sigmoid within 2 ulps of scipy's (float64, exactly rounded to the dtype), denormals
    # included: 2 units of the smallest denormal there
    ref = special.expit(z64).astype(dtype) if dtype == F32 else special.expit(z64)
    tiny = np.finfo(dtype).smallest_subnormal
    np.testing.assert_allclose(sig, ref, rtol=2 * np.finfo(dtype).eps, atol=2 * tiny)
    assert sig[6] == 1 and sig[7] == 0 and sig[5] > 0  # below -lo: 0; just above: denormal
    assert sig[2] == sig[3] == 0.5


@needs_numba
@pytest.mark.parametrize("dtype", [F32, F64])
def test_numba_bce_kernel_propagates_nan(dtype):
    z = np.array([0.5, np.nan, -2.0], dtype)
    t = np.array([1.0, 0.0, 0.0], dtype)
    sig = np.empty_like(z)
    total = _compiled_bce_sum(z, t, sig)
    assert np.isnan(total) and np.isnan(sig[1])
    assert sig[0] == pytest.approx(special.expit(0.5)) and sig[2] == pytest.approx(
        special.expit(-2.0)
    )


# ----- blas.gemm_into: GEMV routing -------------------------------------------------------------

GEMV_SHAPES = [(1, 5, 4), (4, 5, 1), (1, 5, 1), (1, 1, 3), (3, 1, 1), (1, 7, 7)]


def _operand(x: np.ndarray, layout: str) -> np.ndarray:
    """``x`` (values) laid out as C-ordered, transposed (F-ordered), or a strided view."""
    if layout == "c":
        return np.ascontiguousarray(x)
    if layout == "t":
        return x.T.copy().T
    r, c = x.shape
    if layout == "row_view":  # a (1, k) row with a k-element stride between elements
        assert r == 1
        big = np.zeros((c, c + 2), x.dtype)
        v = big.T[:1]
        v[...] = x
        return v
    if layout == "col_view":  # a (k, 1) column of a wider C-ordered array
        assert c == 1
        big = np.zeros((r, 4), x.dtype)
        v = big[:, 1:2]
        v[...] = x
        return v
    raise AssertionError(layout)


def _gemv_cases():
    for m, k, n in GEMV_SHAPES:
        a_lays = ["c", "t"] + (["row_view"] if m == 1 else [])
        b_lays = ["c", "t"] + (["col_view"] if n == 1 else [])
        for la in a_lays:
            for lb in b_lays:
                yield (m, k, n), la, lb


@pytest.mark.parametrize("dtype,rtol", [(F32, 2e-6), (F64, 1e-13)])
@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_gemm_into_vector_shapes(dtype, rtol, beta, monkeypatch):
    calls = []
    if blas_mod._CBLAS is not None:  # record which CBLAS routine each closure runs
        for kind in ("gemm", "gemv"):
            f = blas_mod._CBLAS[(kind, np.dtype(dtype))]
            monkeypatch.setitem(
                blas_mod._CBLAS,
                (kind, np.dtype(dtype)),
                lambda *args, _f=f, _k=kind: (calls.append(_k), _f(*args))[1],
            )
    r = rng(5)
    cases = [*_gemv_cases(), ((3, 4, 2), "c", "t"), ((2, 3, 2), "t", "c")]
    for (m, k, n), la, lb in cases:
        av = r.standard_normal((m, k)).astype(dtype)
        bv = r.standard_normal((k, n)).astype(dtype)
        cv = r.standard_normal((m, n)).astype(dtype)
        a, b = _operand(av, la), _operand(bv, lb)
        np.testing.assert_array_equal(a, av)
        c = cv.copy()
        if beta == 0.0:
            c[...] = np.nan  # beta 0 must overwrite, not scale, a stale buffer
        want = av.astype(F64) @ bv.astype(F64) + beta * cv.astype(F64)
        run = gemm_into(a, b, c, beta)
        run()
        np.testing.assert_allclose(
            c, want, rtol=rtol, atol=rtol, err_msg=f"{(m, k, n)} a={la} b={lb} beta={beta}"
        )
        if beta == 1.0:  # a closure accumulates again on each call
            run()
            np.testing.assert_allclose(c, want + av @ bv, rtol=rtol, atol=rtol * 4)
        np.testing.assert_array_equal(a, av)  # operands untouched
        np.testing.assert_array_equal(b, bv)
        if blas_mod._CBLAS is not None:
            assert set(calls) == {"gemv" if 1 in (m, n) else "gemm"}, (m, k, n, la, lb)
            calls.clear()


def test_gemm_into_refuses_non_contiguous_output():
    c = np.zeros((4, 6))[:, ::2]
    with pytest.raises(ValueError, match="gemm_into"):
        gemm_into(np.ones((4, 2)), np.ones((2, 3)), c, 0.0)


@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_gemm_into_scipy_fallback(monkeypatch, beta):
    monkeypatch.setattr(blas_mod, "_CBLAS", None)
    assert blas_mod.blas_backend() == "scipy"
    r = rng(6)
    for m, k, n in GEMV_SHAPES:
        for la in ("c", "t"):
            for lb in ("c", "t"):
                av, bv = r.standard_normal((m, k)), r.standard_normal((k, n))
                cv = r.standard_normal((m, n))
                c = cv.copy()
                gemm_into(_operand(av, la), _operand(bv, lb), c, beta)()
                np.testing.assert_allclose(c, av @ bv + beta * cv, rtol=1e-13, atol=1e-13)


# ----- blas.Axpby -------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype,rtol", [(F32, 1e-6), (F64, 1e-14)])
@pytest.mark.parametrize("beta", [1.0, 0.75, 0.0])
@pytest.mark.parametrize("fallback", [False, True])
def test_axpby(monkeypatch, dtype, rtol, beta, fallback):
    if fallback:
        monkeypatch.setattr(blas_mod, "_CBLAS", None)  # before construction: Axpby binds it
    r = rng(7)
    x0 = r.standard_normal(6).astype(dtype)
    y0 = r.standard_normal((2, 3)).astype(dtype)  # any shapes of one size
    x, y = x0.copy(), y0.copy()
    ax = Axpby(x, y)
    ax(-0.5, beta)
    want = -0.5 * x0.astype(F64).reshape(2, 3) + beta * y0.astype(F64)
    np.testing.assert_allclose(y, want, rtol=rtol, atol=rtol)
    assert y.dtype == dtype
    if not fallback and blas_mod._CBLAS is not None:
        np.testing.assert_array_equal(x, x0)  # BLAS leaves x alone
    # a second call with other coefficients; refill x, which the fallback may have scaled
    x[...] = x0
    y[...] = y0
    ax(2.0, beta)
    want = 2.0 * x0.astype(F64).reshape(2, 3) + beta * y0.astype(F64)
    np.testing.assert_allclose(y, want, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("fallback", [False, True])
def test_axpby_size_zero(monkeypatch, fallback):
    if fallback:
        monkeypatch.setattr(blas_mod, "_CBLAS", None)
    x, y = np.empty(0), np.empty(0)
    Axpby(x, y)(3.0, 0.5)
    assert y.shape == (0,)


def test_axpby_refuses_bad_operands():
    f64 = np.zeros(4)
    with pytest.raises(ValueError, match="Axpby"):
        Axpby(np.zeros(4, F32), f64)  # dtypes differ
    with pytest.raises(ValueError, match="Axpby"):
        Axpby(np.zeros(3), f64)  # sizes differ
    with pytest.raises(ValueError, match="Axpby"):
        Axpby(np.zeros(8)[::2], f64)  # not contiguous
    with pytest.raises(ValueError, match="Axpby"):
        Axpby(f64, np.zeros(8)[::2])  # y not contiguous
    with pytest.raises(ValueError, match="Axpby"):
        Axpby(np.zeros(4, np.int64), np.zeros(4, np.int64))  # not float


# ----- max pooling: both backends against a per-window float64 scan ---------------------------

POOL_GEOS = [  # kernel, pad, stride, (H, W)
    ((2, 2), (0, 0), (2, 2), (6, 8)),  # the usual, tiling x
    ((2, 2), (0, 0), (2, 2), (7, 5)),  # odd sizes: the last row and column are never read
    ((3, 3), (1, 1), (2, 2), (7, 6)),  # padded, overlapping
    ((3, 2), (0, 1), (1, 3), (5, 7)),  # disjoint columns, overlapping rows
    ((1, 3), (0, 2), (1, 1), (1, 6)),  # a 1-D pool's window
]


def _pool_scan(x, kernel, pad, stride, g):
    """Per window: numpy's maximum (a scan of np.maximum, -inf padding) and the gradient routed
    to the first position equal to it (none for a NaN window)."""
    (kh, kw), (ph, pw), (sh, sw) = kernel, pad, stride
    n, c, h, w = x.shape
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    y, dx = np.empty((n, c, ho, wo), x.dtype), np.zeros(x.shape, F64)
    for b in range(n):
        for ch in range(c):
            for i in range(ho):
                for j in range(wo):
                    taps = [(i * sh - ph + a, j * sw - pw + e)
                            for a in range(kh) for e in range(kw)]
                    vals = [x[b, ch, r, s] if 0 <= r < h and 0 <= s < w else -np.inf
                            for r, s in taps]
                    m = vals[0]
                    for v in vals[1:]:
                        m = np.maximum(m, v)
                    y[b, ch, i, j] = m
                    first = next((t for t, v in enumerate(vals) if v == m), None)
                    if first is not None:
                        r, s = taps[first]
                        if 0 <= r < h and 0 <= s < w:
                            dx[b, ch, r, s] += g[b, ch, i, j]
    return y, dx


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("geo", POOL_GEOS)
def test_max_pool2d_kernels_on_both_backends(k, geo, dtype):
    from graphcore.kernels.reference.pooling import arg_dtype

    kernel, pad, stride, (h, w) = geo
    r = rng(5)
    # few distinct values: many ties; then NaN, -inf, and signed zeros in places
    x = r.integers(-2, 3, (2, 3, h, w)).astype(dtype)
    x[0, 0, 0, :3] = [np.nan, -np.inf, -0.0]
    x[1, 2] = -np.inf
    x[0, 1, 0, :4] = [0.0, -0.0, -0.0, 0.0]
    ho = (h + 2 * pad[0] - kernel[0]) // stride[0] + 1
    wo = (w + 2 * pad[1] - kernel[1]) // stride[1] + 1
    y = np.empty((2, 3, ho, wo), dtype)
    arg = np.empty(y.shape, arg_dtype(kernel))
    k.max_pool2d(x, y, arg, k.max_pool2d_scratch(x, y, arg, kernel, pad, stride))
    g = r.standard_normal(y.shape).astype(dtype)
    dx = np.full(x.shape, 7.0, dtype)  # stale values must not survive
    k.max_pool2d_grad(x, y, arg, g, dx, k.max_pool2d_grad_scratch(x, y, arg, g, dx, kernel,
                                                                  pad, stride))
    want_y, want_dx = _pool_scan(x, kernel, pad, stride, g)
    np.testing.assert_array_equal(y, want_y)
    assert (np.signbit(y) == np.signbit(want_y)).all()
    np.testing.assert_allclose(dx, want_dx, rtol=TOL[dtype], atol=0)


def test_max_pool2d_compiled_takes_strided_arrays_through_the_reference():
    if not HAVE_NUMBA:
        pytest.skip("numba (the fast extra) absent")
    from graphcore.kernels import compiled
    from graphcore.kernels.compiled.layout import Ref

    x = np.arange(32.0).reshape(1, 1, 4, 8)[..., ::2]
    y, arg = np.empty((1, 1, 2, 2)), np.empty((1, 1, 2, 2), np.uint8)
    s = compiled.max_pool2d_scratch(x, y, arg, (2, 2), (0, 0), (2, 2))
    assert type(s) is Ref
    compiled.max_pool2d(x, y, arg, s)
    assert y.ravel().tolist() == [10.0, 14.0, 26.0, 30.0]


@pytest.mark.parametrize("numba", [True, False])
def test_max_pool_gradient_from_the_saved_argmax_equals_the_one_found_again(numba, accel_state):
    """MaxPool2D's gradient reads the argmax its forward kernel saved; a MaxPool2DGrad node
    with no forward op to read from finds the maxima again, to the same result."""
    from graphcore.ops.base import apply_op
    from graphcore.ops.pool import MaxPool2DGradOp

    gc.accel.set_enabled(numba)
    x0 = rng(3).integers(-2, 3, (2, 3, 7, 6)).astype(F64)
    g = gc.NewGraph()
    x = gc.NodeFromAny(g, x0, gc.WithName("x"))
    y = gc.MaxPool2D(x, kernel=3, pad=1, stride=2)
    cost = gc.Sum(gc.HadamardProd(y, y))
    (dx,) = gc.Grad(cost, x)
    twice = gc.HadamardProd(y, gc.NewConstant(2.0))
    again = apply_op(MaxPool2DGradOp((3, 3), (1, 1), (2, 2)), x, y, twice)
    gc.NewTapeMachine(g).run_all()
    np.testing.assert_array_equal(dx.value, again.value)
    assert np.abs(dx.value).sum() > 0


# ----- im2col and col2im: both backends against per-position loops ----------------------------

COL_GEOS = [  # kernel, pad, stride, dilation, (H, W)
    ((3, 3), (1, 1), (1, 1), (1, 1), (6, 5)),  # the convnet's
    ((3, 3), (0, 0), (1, 1), (1, 1), (5, 7)),
    ((2, 3), (2, 1), (2, 3), (1, 1), (7, 8)),  # pad wider than a stride, odd sizes
    ((3, 2), (1, 2), (1, 2), (2, 3), (9, 8)),  # dilated
    ((1, 1), (0, 0), (2, 2), (1, 1), (5, 5)),  # strided 1x1 (a ResNet shortcut)
]


def _windows(shape, kernel, pad, stride, dilation):
    """For each column entry (c, i, j, n, p, q): the image index it reads, or None (padding)."""
    (kh, kw), (ph, pw), (sh, sw), (dh, dw) = kernel, pad, stride, dilation
    n, c, h, w = shape
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    for ch in range(c):
        for i in range(kh):
            for j in range(kw):
                for b in range(n):
                    for p in range(ho):
                        for q in range(wo):
                            r, s = p * sh + i * dh - ph, q * sw + j * dw - pw
                            ok = 0 <= r < h and 0 <= s < w
                            yield (ch, i, j, b, p, q), ((b, ch, r, s) if ok else None)
    return ho, wo


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("geo", COL_GEOS)
def test_im2col_and_col2im_kernels_on_both_backends(k, geo, dtype):
    kernel, pad, stride, dilation, (h, w) = geo
    (kh, kw), (ph, pw), (sh, sw), (dh, dw) = kernel, pad, stride, dilation
    shape = (2, 3, h, w)
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    r = rng(7)
    x = r.standard_normal(shape).astype(dtype)
    cols = np.full((3 * kh * kw, 2, ho * wo), 9.0, dtype)  # stale values must not survive
    k.im2col(x, cols, k.im2col_scratch(x, cols, kernel, pad, stride, dilation))
    want = np.zeros((3, kh, kw, 2, ho, wo), dtype)
    back = np.zeros(shape, F64)
    c = r.standard_normal(cols.shape).astype(dtype)
    c6 = c.reshape(want.shape)
    for at, src in _windows(shape, kernel, pad, stride, dilation):
        if src is not None:
            want[at] = x[src]
            back[src] += c6[at]
    np.testing.assert_array_equal(cols.reshape(want.shape), want)  # a copy: exact
    out = np.full(shape, 9.0, dtype)
    k.col2im(c, out, k.col2im_scratch(c, out, kernel, pad, stride, dilation))
    np.testing.assert_allclose(out, back, rtol=TOL[dtype], atol=TOL[dtype])


def test_col2im_sums_in_the_same_order_on_both_backends():
    if not HAVE_NUMBA:
        pytest.skip("numba (the fast extra) absent")
    from graphcore.kernels import compiled

    geo = ((3, 3), (1, 1), (1, 1), (1, 1))
    c = rng(8).standard_normal((27, 4, 36)).astype(F32)
    outs = []
    for kern in (reference, compiled):
        out = np.empty((4, 3, 6, 6), F32)
        kern.col2im(c, out, kern.col2im_scratch(c, out, *geo))
        outs.append(out)
    np.testing.assert_array_equal(outs[0], outs[1])


@pytest.mark.parametrize("hw", [8, 24])  # 64 and 576 output pixels: one product, and per image
def test_conv2d_forward_product_one_gemm_or_per_image_agree_with_einsum(hw):
    from graphcore.ops import conv

    assert 8 * 8 < conv._PER_IMAGE_P <= 24 * 24
    r = rng(9)
    x0, w0 = r.standard_normal((3, 2, hw, hw)), r.standard_normal((4, 2, 3, 3))
    g = gc.NewGraph()
    x = gc.NodeFromAny(g, x0, gc.WithName("x"))
    w = gc.NodeFromAny(g, w0, gc.WithName("w"))
    y = gc.Conv2d(x, w, pad=1)
    gc.NewTapeMachine(g).run_all()
    xp = np.pad(x0, ((0, 0), (0, 0), (1, 1), (1, 1)))
    want = sum(
        np.einsum("nchw,oc->nohw", xp[:, :, i : i + hw, j : j + hw], w0[:, :, i, j])
        for i in range(3) for j in range(3)
    )
    np.testing.assert_allclose(y.value, want, rtol=1e-12, atol=1e-12)
