"""Speed paths through the machines and solvers: SumTo as GEMV, flat gradient arenas, solvers
over flat segments, the kernel backend chosen once per plan, the losses' saved intermediates,
lent inputs and results written in place. Each is checked against plain float64 references.
(The kernels themselves, on both backends: test_kernels.py.)"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special

import graphcore as gc
import graphcore.kernels.blas as blas_mod
import graphcore.kernels.segments as segments_mod
from graphcore.kernels import reference
from graphcore.kernels.segments import Part, Segment
from graphcore.machines.grads import bind_grads
from graphcore.ops.base import ExecContext
from graphcore.ops.loss import SigmoidBinaryCrossEntropyGradOp, SigmoidBinaryCrossEntropyOp
from graphcore.ops.unbroadcast import SumToOp
from tests.test_ops_loss import bce_ref

F32, F64 = np.float32, np.float64


def rng(seed=0):
    return np.random.default_rng(seed)


@pytest.fixture
def accel_state():
    was = gc.accel._state["on"]
    try:
        yield
    finally:
        gc.accel.set_enabled(was)


# ----- SumTo as GEMV ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "gshape,oshape,rows",
    [
        ((8, 3), (1, 3), 8),
        ((8, 3), (3,), 8),
        ((2, 4, 3), (3,), 8),
        ((2, 4, 3), (4, 3), 2),
        ((2, 4, 3), (1, 1, 3), 8),
        ((1, 3), (3,), 1),
    ],
)
@pytest.mark.parametrize("dtype", [F32, F64])
def test_sumto_gemv_operands_leading_axes(gshape, oshape, rows, dtype):
    g = rng(8).standard_normal(gshape).astype(dtype)
    out = np.empty(oshape, dtype)
    ops = SumToOp.gemv_operands(g, out)
    assert ops is not None
    ones, g2, out2 = ops
    cols = g.size // rows
    assert ones.shape == (1, rows) and g2.shape == (rows, cols) and out2.shape == (1, cols)
    assert np.all(ones == 1) and ones.dtype == dtype
    assert np.shares_memory(g2, g) and np.shares_memory(out2, out)
    lead = (
        len(gshape)
        - len(oshape)
        + sum(1 for d, s in zip(oshape, gshape[len(gshape) - len(oshape) :]) if d == 1 and s != 1)
    )
    want = g.astype(F64).sum(axis=tuple(range(lead))).reshape(oshape)
    SumToOp().kernel([g, np.empty(oshape, dtype)], out, ExecContext())()
    np.testing.assert_allclose(out, want, rtol=1e-5 if dtype == F32 else 1e-13)


@pytest.mark.parametrize(
    "g,oshape",
    [
        (np.ones((3, 8)), (3, 1)),  # a trailing axis
        (np.ones((2, 4, 3)), (2, 1, 3)),  # a middle axis
        (np.ones((8, 3)), (8, 3)),  # nothing to sum
        (np.ones((3, 8)).T, (1, 3)),  # leading, but g is not C-contiguous
        (np.ones((8, 3), np.int64), (1, 3)),  # not a float
        (np.ones((0, 3)), (1, 3)),  # empty
    ],
)
def test_sumto_gemv_operands_none(g, oshape):
    out = np.zeros(oshape, g.dtype)
    assert SumToOp.gemv_operands(g, out) is None
    if g.dtype.kind == "f":  # the kernel still sums, without GEMV
        g = g * np.arange(1, g.shape[-1] + 1)
        axes = tuple(i for i, (s, d) in enumerate(zip(g.shape, oshape)) if d == 1 and s != 1)
        SumToOp().kernel([g, out], out, ExecContext())()
        np.testing.assert_allclose(out, g.sum(axis=axes, keepdims=True).reshape(oshape))


def _bias_graph(bshape):
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
    bval = np.array([0.5, -1.0, 2.0]).reshape(bshape)
    b = gc.NodeFromAny(g, bval, gc.WithName("b"))
    cost = gc.Sum(gc.Square(gc.Add(x, b)))
    gc.Grad(cost, b)
    return g, x, b


def _bias_grad(x, b):
    # d/db sum((x + b)^2) = column sums of the upstream gradient 2 (x + b)
    return (2 * (x + b.reshape(1, 3))).sum(axis=0).reshape(b.shape)


@pytest.mark.parametrize("bshape", [(1, 3), (3,)])
def test_bias_gradient_through_sumto_gemv(bshape):
    g, x, b = _bias_graph(bshape)
    vm = gc.NewTapeMachine(g, gc.BindDualValues(b))
    r = rng(9)
    for batch in (1, 7):
        X = r.standard_normal((batch, 3))
        gc.Let(x, X)
        vm.run_all()
        want = _bias_grad(X, b.value)
        np.testing.assert_allclose(b.grad, want, rtol=1e-13)
        vm.run_all()  # no zeroing: accumulates (beta 1)
        np.testing.assert_allclose(b.grad, 2 * want, rtol=1e-13)
        # a solver step zeroes lazily; the next run overwrites the stale buffer (beta 0)
        gc.NewVanillaSolver(gc.WithLearnRate(0.01)).step([b])
        vm.run_all()
        np.testing.assert_allclose(b.grad, _bias_grad(X, b.value), rtol=1e-13)
        b.grad[...] = 0.0


# ----- grads.bind_grads --------------------------------------------------------------------------


def _learnable(g, name, dt, shape, grad=None):
    v = np.arange(1, int(np.prod(shape)) + 1, dtype=dt.np).reshape(shape)
    opts = [gc.WithShape(*shape), gc.WithName(name), gc.WithValue(v)]
    if grad is not None:
        opts.append(gc.WithGrad(grad))
    return gc.NewTensor(g, dt, len(shape), *opts)


def _assert_tiles(nodes):
    """The nodes' grads are consecutive, C-ordered views of one flat buffer, in order."""
    base = nodes[0].grad.base
    assert isinstance(base, np.ndarray) and base.ndim == 1
    pos = base.ctypes.data
    for n in nodes:
        gr = n.grad
        assert gr.base is base and gr.shape == n.value.shape and gr.dtype == n.value.dtype
        assert gr.flags.c_contiguous and gr.ctypes.data == pos
        pos += gr.nbytes
    assert pos == base.ctypes.data + base.nbytes
    return base


def test_bind_grads_one_flat_buffer_per_dtype():
    g = gc.NewGraph()
    a = _learnable(g, "a", gc.Float64, (2,))
    b = _learnable(g, "b", gc.Float64, (1, 3))
    c = _learnable(g, "c", gc.Float32, (2, 2))
    d = _learnable(g, "d", gc.Float64, (2, 2, 2))
    e = _learnable(g, "e", gc.Float32, (3,))
    bind_grads([a, b, c, a, d, e])  # a repeated: bound once
    base64 = _assert_tiles([a, b, d])
    base32 = _assert_tiles([c, e])
    assert base64.size == 2 + 3 + 8 and base64.dtype == F64
    assert base32.size == 4 + 3 and base32.dtype == F32
    assert not np.shares_memory(base64, base32)
    assert not base64.any() and not base32.any()


def test_bind_grads_keeps_existing_buffers():
    g = gc.NewGraph()
    had = np.full((2, 3), 7.0)
    a = _learnable(g, "a", gc.Float64, (3,))
    w = _learnable(g, "w", gc.Float64, (2, 3), grad=had)
    b = _learnable(g, "b", gc.Float64, (4,))
    kept = w.grad
    bind_grads([a, w, b])
    assert w.grad is kept and np.all(w.grad == 7.0)
    base = _assert_tiles([a, b])
    assert base.size == 7 and not np.shares_memory(base, kept)
    first = a.grad
    bind_grads([a, w, b])  # a second binding changes nothing
    assert a.grad is first and w.grad is kept


def test_tape_machine_binds_grads_side_by_side():
    g = gc.NewGraph()
    r = rng(10)

    def param(name, *shape):
        return gc.NewMatrix(
            g,
            gc.Float64,
            gc.WithShape(*shape),
            gc.WithName(name),
            gc.WithValue(r.standard_normal(shape)),
        )

    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 4), gc.WithName("x"))
    w1, b1, w2 = param("w1", 4, 5), param("b1", 1, 5), param("w2", 5, 3)
    h = gc.Rectify(gc.Add(gc.Mul(x, w1), b1))
    cost = gc.Sum(gc.Square(gc.Mul(h, w2)))
    gc.Grad(cost, w1, b1, w2)
    vm = gc.NewTapeMachine(g, gc.BindDualValues(w1, b1, w2))
    base = _assert_tiles([w1, b1, w2])
    assert base.size == 20 + 5 + 15
    X = r.standard_normal((6, 4))
    gc.Let(x, X)
    vm.run_all()
    a = X @ w1.value + b1.value
    hv = np.maximum(a, 0)
    dz = 2 * (hv @ w2.value)
    da = (dz @ w2.value.T) * (a > 0)
    np.testing.assert_allclose(w2.grad, hv.T @ dz, rtol=1e-12)
    np.testing.assert_allclose(b1.grad, da.sum(0, keepdims=True), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(w1.grad, X.T @ da, rtol=1e-12, atol=1e-12)
    _assert_tiles([w1, b1, w2])  # still the same layout after running
    # and a solver sees them as one flat segment
    s = gc.NewAdamSolver()
    s.step([w1, b1, w2])
    assert len(s._seg_cache[1]) == 1


# ----- solvers over flat segments ----------------------------------------------------------------

SHAPES = [(4, 3), (1, 3), (5,), (2, 2, 2)]
CTOR_NAMES = ["vanilla", "momentum", "adagrad", "rmsprop", "adam", "adamw", "bb"]
CTORS = {
    "vanilla": gc.NewVanillaSolver,
    "momentum": gc.NewMomentum,
    "adagrad": gc.NewAdaGradSolver,
    "rmsprop": gc.NewRMSPropSolver,
    "adam": gc.NewAdamSolver,
    "adamw": gc.NewAdamW,
    "bb": gc.NewBarzilaiBorweinSolver,
}


class P:
    """A minimal ValueGrad."""

    def __init__(self, value, grad, name=""):
        self.value, self.grad, self.name = value, grad, name


def _opts(name, with_options):
    opts = [gc.WithLearnRate(0.01)]
    if with_options:
        opts += [gc.WithL1Reg(0.01), gc.WithL2Reg(0.02), gc.WithBatchSize(4), gc.WithClip(0.05)]
    return opts


def _params(layout, dtype=F64, seed=11):
    """Parameters with the same starting values; grads separate, flat in order, or flat in
    reverse order (not a tiling in order: per-parameter segments again)."""
    r = rng(seed)
    values = [r.standard_normal(s).astype(dtype) for s in SHAPES]
    sizes = [int(np.prod(s)) for s in SHAPES]
    if layout == "separate":
        grads = [np.zeros(s, dtype) for s in SHAPES]
    else:
        flat = np.zeros(sum(sizes), dtype)
        order = range(len(SHAPES)) if layout == "flat" else reversed(range(len(SHAPES)))
        grads = [None] * len(SHAPES)
        lo = 0
        for i in order:
            grads[i] = flat[lo : lo + sizes[i]].reshape(SHAPES[i])
            lo += sizes[i]
    return [P(v, gr, f"p{i}") for i, (v, gr) in enumerate(zip(values, grads))]


def _grad_seq(steps, dtype=F64, seed=12):
    r = rng(seed)
    return [[(r.standard_normal(s) * 0.2).astype(dtype) for s in SHAPES] for _ in range(steps)]


def _run(solver, ps, grads):
    for step in grads:
        for p, gr in zip(ps, step):
            p.grad[...] = gr
        solver.step(ps)


@pytest.mark.parametrize("accel", ["numpy", "default"])
@pytest.mark.parametrize("with_options", [False, True])
@pytest.mark.parametrize("name", CTOR_NAMES)
def test_solver_flat_and_separate_layouts_agree(name, with_options, accel, accel_state):
    if accel == "numpy":
        gc.accel.set_enabled(False)
    grads = _grad_seq(10)
    results = {}
    for layout in ("separate", "flat", "reversed"):
        ps = _params(layout)
        s = CTORS[name](*_opts(name, with_options))
        _run(s, ps, grads)
        segs = s._seg_cache[1]
        flat = layout == "flat" and name != "bb"  # BB needs per-parameter dot products
        assert len(segs) == (1 if flat else len(SHAPES)), layout
        for p in ps:
            assert not p.grad.any()  # zeroed after each step
        results[layout] = ([p.value.copy() for p in ps], s.state_dict())
    ref_vals, ref_state = results["separate"]
    for layout in ("flat", "reversed"):
        vals, state = results[layout]
        for a, b in zip(vals, ref_vals):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14, err_msg=layout)
        assert state.keys() == ref_state.keys()
        for k in ref_state:
            if ref_state[k].dtype.kind == "f":
                np.testing.assert_allclose(
                    state[k], ref_state[k], rtol=1e-12, atol=1e-14, err_msg=f"{layout} {k}"
                )
            else:
                assert state[k] == ref_state[k], k
    # the solver actually moved the values
    assert not np.allclose(ref_vals[0], _params("separate")[0].value)


@pytest.mark.parametrize("with_options", [False, True])
@pytest.mark.parametrize("name", ["adagrad", "rmsprop", "adam", "adamw"])
def test_numpy_solvers_in_blocks_agree_with_one_pass(name, with_options, accel_state, monkeypatch):
    # blocks of 3 float64 elements: every parameter is cut, and blocks straddle parameters
    gc.accel.set_enabled(False)
    grads = _grad_seq(6)
    results = []
    for nbytes in (1 << 30, 24):
        monkeypatch.setattr(segments_mod, "BLOCK_BYTES", nbytes)
        ps = _params("flat")
        s = CTORS[name](*_opts(name, with_options))
        _run(s, ps, grads)
        (seg,) = s._seg_cache[1]
        assert len(seg.blocks()) == (1 if nbytes > 24 else -(-seg.g.size // 3))
        results.append(([p.value.copy() for p in ps], s.state_dict()))
    (vals, state), (bvals, bstate) = results
    for a, b in zip(vals, bvals):
        np.testing.assert_allclose(b, a, rtol=1e-13, atol=1e-15)
    for k, v in state.items():
        if v.dtype.kind == "f":
            np.testing.assert_allclose(bstate[k], v, rtol=1e-13, atol=1e-15, err_msg=k)


def test_segment_blocks_cut_parts_in_order():
    g, s, c = np.arange(7.0), np.empty(7), np.zeros(7)
    ws = [np.ones((2, 2)), np.ones(3)]
    parts = [Part(ws[0], g[:4].reshape(2, 2), s[:4].reshape(2, 2), {"c": c[:4].reshape(2, 2)}),
             Part(ws[1], g[4:], s[4:], {"c": c[4:]})]
    seg = Segment(g, s, {"c": c}, parts)
    blocks = seg.blocks(3 * 8)
    assert blocks is seg.blocks()  # kept
    assert [[p.g.tolist() for p in b.parts] for b in blocks] == [
        [[0.0, 1.0, 2.0]], [[3.0], [4.0, 5.0]], [[6.0]]
    ]
    for b in blocks:
        b.axpby("g", "c", 1.0, 1.0)
        b.add_to_values("g", 1.0)
    np.testing.assert_array_equal(c, g)
    np.testing.assert_array_equal(ws[0].ravel(), 1 + g[:4])
    np.testing.assert_array_equal(ws[1], 1 + g[4:])
    # parts that do not tile the gradient in order: one block, the segment itself
    rev = Segment(g, s, {"c": c}, parts[::-1])
    assert rev.blocks(8) == [rev]


@pytest.mark.parametrize("with_options", [False, True])
@pytest.mark.parametrize("name", CTOR_NAMES)
def test_solver_state_round_trip_across_layouts(name, with_options):
    grads = _grad_seq(10)
    full = {}
    for layout in ("separate", "flat"):
        ps = _params(layout)
        _run(CTORS[name](*_opts(name, with_options)), ps, grads)
        full[layout] = [p.value.copy() for p in ps]
    for src, dst in [("separate", "flat"), ("flat", "separate"), ("flat", "flat")]:
        ps = _params(src)
        s = CTORS[name](*_opts(name, with_options))
        _run(s, ps, grads[:5])
        state = s.state_dict()
        fresh = CTORS[name]()  # hyperparameters come from the state
        fresh.load_state_dict(state)
        qs = _params(dst)
        for q, p in zip(qs, ps):
            q.value[...] = p.value
        _run(fresh, qs, grads[5:])
        assert fresh.num_steps == 10
        for a, b in zip(qs, full[dst]):
            np.testing.assert_allclose(a.value, b, rtol=1e-12, atol=1e-14, err_msg=f"{src}>{dst}")


@pytest.mark.parametrize("cause", ["fortran_grads", "no_openblas"])
@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_adam_numpy_fallback_matches_blas(name, cause, accel_state, monkeypatch):
    gc.accel.set_enabled(False)
    grads = _grad_seq(3)
    ps = _params("separate")
    _run(CTORS[name](gc.WithLearnRate(0.01)), ps, grads)
    qs = _params("separate")
    if cause == "no_openblas":
        monkeypatch.setattr(blas_mod, "_CBLAS", None)
    else:
        for q in qs:
            q.grad = np.asfortranarray(q.grad)
        assert not qs[0].grad.flags.c_contiguous
    _run(CTORS[name](gc.WithLearnRate(0.01)), qs, grads)
    for p, q in zip(ps, qs):
        np.testing.assert_allclose(q.value, p.value, rtol=1e-12)


# ----- numba kernels against numpy, through the solvers -------------------------------------------


@pytest.mark.parametrize("dtype,rtol", [(F32, 1e-6), (F64, 1e-12)])
@pytest.mark.parametrize("layout", ["separate", "flat"])
@pytest.mark.parametrize("with_options", [False, True])
@pytest.mark.parametrize("name", ["vanilla", "momentum", "adagrad", "rmsprop", "adam", "adamw"])
def test_accel_kernels_match_numpy(name, with_options, layout, dtype, rtol, accel_state):
    pytest.importorskip("numba")
    assert gc.accel.available()
    grads = _grad_seq(10, dtype)
    out = {}
    for mode in ("numba", "numpy"):
        ps = _params(layout, dtype)
        s = CTORS[name](*_opts(name, with_options))
        if mode == "numba":
            gc.accel.set_enabled(True)
            assert gc.accel.enabled() and gc.accel.kernels() is not None
            _run(s, ps, grads)
        else:
            with gc.accel.disabled():
                assert gc.accel.kernels() is None
                _run(s, ps, grads)
        assert all(p.value.dtype == dtype for p in ps)
        out[mode] = ([p.value for p in ps], s.state_dict())
    for a, b in zip(out["numba"][0], out["numpy"][0]):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * 1e-2)
    for k, v in out["numpy"][1].items():
        if v.dtype.kind == "f" and v.ndim:
            np.testing.assert_allclose(out["numba"][1][k], v, rtol=rtol * 10, atol=1e-12, err_msg=k)


# ----- SigmoidBinaryCrossEntropy: the saved sigmoid ---------------------------------------------

LOGITS = np.array([[1000.0, -1000.0, 0.0, 3.0], [-30.0, 30.0, -0.5, 1e-3], [7.0, -7.0, 0.0, 2.0]])
TARGETS = np.array([[1.0, 0.0, 0.5, 0.0], [1.0, 0.0, 0.25, 1.0], [0.0, 1.0, 1.0, 0.3]])


def _bce_graph(z, t, reduction, dt=gc.Float64, transpose=False):
    g = gc.NewGraph()
    zn = gc.NodeFromAny(g, np.asarray(z.T if transpose else z, dt.np), gc.WithName("z"))
    tn = gc.NodeFromAny(g, np.asarray(t, dt.np), gc.WithName("t"))
    logits = gc.Transpose(zn) if transpose else zn
    loss = gc.SigmoidBinaryCrossEntropy(logits, tn, reduction=reduction)
    cost = loss if loss.shape == () else gc.Sum(loss)
    gc.Grad(cost, zn)
    return g, zn, loss


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_tape_and_lisp_agree(reduction):
    got = {}
    for make in (gc.NewTapeMachine, gc.NewLispMachine):
        g, zn, loss = _bce_graph(LOGITS, TARGETS, reduction)
        opts = (gc.WithWatchlist(loss),) if make is gc.NewTapeMachine else ()
        vm = make(g, gc.BindDualValues(zn), *opts)
        vm.run_all()
        got[make] = (np.array(loss.value), zn.grad.copy())
        assert np.all(np.isfinite(got[make][0])) and np.all(np.isfinite(got[make][1]))
    (lt, gt), (ll, gl) = got[gc.NewTapeMachine], got[gc.NewLispMachine]
    np.testing.assert_allclose(lt, ll, rtol=1e-14)
    np.testing.assert_allclose(gt, gl, rtol=1e-14, atol=1e-300)
    rv, rg = bce_ref(LOGITS, TARGETS, reduction)
    np.testing.assert_allclose(lt, rv, rtol=1e-12)
    np.testing.assert_allclose(gt, rg, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", [F32, F64])
def test_bce_grad_op_without_saved_sigmoid(reduction, dtype):
    z, t = LOGITS.astype(dtype), TARGETS.astype(dtype)
    up = np.full(z.shape, 1.5, dtype) if reduction == "none" else np.array(1.5, dtype)
    cost = np.empty(() if reduction != "none" else z.shape, dtype)  # ordering operand only
    out = np.empty_like(z)
    op = SigmoidBinaryCrossEntropyGradOp(reduction, source=None)
    op.kernel([z, t, up, cost], out, ExecContext())()
    _, rg = bce_ref(z, t, reduction)
    np.testing.assert_allclose(out, rg * 1.5, rtol=1e-6 if dtype == F32 else 1e-12, atol=1e-30)
    assert out.dtype == dtype


def test_bce_grad_op_uses_saved_sigmoid_only_when_it_fits():
    z, t = LOGITS.copy(), TARGETS
    ctx = ExecContext()
    fwd = SigmoidBinaryCrossEntropyOp("sum")
    loss = np.empty(())
    fwd.kernel([z, t], loss, ctx)()
    assert loss == pytest.approx(bce_ref(z, t, "sum")[0], rel=1e-12)
    up, out = np.array(1.0), np.empty_like(z)
    grad = SigmoidBinaryCrossEntropyGradOp("sum", source=fwd)
    grad.kernel([z, t, up, loss], out, ctx)()
    np.testing.assert_allclose(out, bce_ref(z, t, "sum")[1], rtol=1e-12)
    # it reads the forward kernel's sigmoid rather than recomputing: new logits without a
    # forward run leave the gradient on the old ones
    z2 = z * 0.5
    grad.kernel([z2, t, up, loss], out, ctx)()
    np.testing.assert_allclose(out, bce_ref(z, t, "sum")[1], rtol=1e-12)
    # a saved entry for another shape is not used
    zs = LOGITS[:2, :3].copy()
    outs = np.empty_like(zs)
    grad.kernel([zs, TARGETS[:2, :3], up, loss], outs, ctx)()
    np.testing.assert_allclose(outs, bce_ref(zs, TARGETS[:2, :3], "sum")[1], rtol=1e-12)


BCE_SHAPES = [(1, 1), (3, 7), (100, 784), (5,)]


@pytest.mark.parametrize("dtype,rtol", [(F32, 1e-5), (F64, 1e-12)])
@pytest.mark.parametrize("shape", BCE_SHAPES + ["transposed"])
def test_bce_value_against_reference(shape, dtype, rtol):
    r = rng(13)
    transpose = shape == "transposed"
    shp = (3, 7) if transpose else shape
    z = r.standard_normal(shp) * 4
    z.flat[0] = 1000.0 if z.size > 1 else -1000.0
    if z.size > 2:
        z.flat[1], z.flat[2] = -1000.0, 0.0
    t = (r.random(shp) < 0.5).astype(F64)
    if z.size > 3:
        t.flat[3] = 0.3  # soft targets are allowed
    z = z.astype(dtype).astype(F64)  # the reference sees exactly the float32 inputs
    g, zn, loss = _bce_graph(
        z, t, "mean", dt=gc.Float32 if dtype == F32 else gc.Float64, transpose=transpose
    )
    gc.NewTapeMachine(g, gc.BindDualValues(zn), gc.WithWatchlist(loss)).run_all()
    rv, rg = bce_ref(z, t, "mean")
    assert loss.value.dtype == dtype
    assert float(loss.value) == pytest.approx(rv, rel=rtol)
    want_grad = rg.T if transpose else rg
    # sigmoid(z) - t cancels near t: absolute precision of one rounding of the sigmoid, / N
    atol = 4 * np.finfo(dtype).eps / z.size
    np.testing.assert_allclose(zn.grad, want_grad, rtol=rtol * 10, atol=atol)
    # the op on a non-contiguous logits array directly (the dot falls back to a multiply-sum)
    if transpose:
        zt = np.ascontiguousarray(z.T).astype(dtype).T
        assert not zt.flags.c_contiguous
        out = np.empty((), dtype)
        SigmoidBinaryCrossEntropyOp("mean").kernel([zt, t.astype(dtype)], out, ExecContext())()
        assert float(out) == pytest.approx(rv, rel=rtol)


# ----- inputs lent with Let(..., copy=False) --------------------------------------------------


def _lend_model(rng):
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 4), gc.WithName("x"))
    w = gc.NewMatrix(g, gc.Float64, gc.WithName("w"), gc.WithValue(rng.standard_normal((4, 3))))
    b = gc.NewMatrix(g, gc.Float64, gc.WithName("b"), gc.WithValue(rng.standard_normal((1, 3))))
    y = gc.Add(gc.Mul(x, w), b)
    cost = gc.Sum(gc.Square(y))
    gc.Grad(cost, w, b)
    return g, x, w, b, y


def test_lent_input_read_in_place_through_products_and_switching_back():
    rng = np.random.default_rng(0)
    g, x, w, b, y = _lend_model(rng)
    vm = gc.NewTapeMachine(g, gc.BindDualValues(w, b))
    W, B = w.value.copy(), b.value.copy()
    for mode in ["own", "lent", "lent", "own", "lent", "own"]:
        X = rng.standard_normal((5, 4))
        kept = X.copy()
        w.zero_grad()
        b.zero_grad()
        gc.Let(x, X, copy=mode == "own")
        vm.run_all()
        Y = kept @ W + B
        np.testing.assert_allclose(y.value, Y, rtol=1e-12)
        np.testing.assert_allclose(w.grad, kept.T @ (2 * Y), rtol=1e-12)
        np.testing.assert_allclose(b.grad, (2 * Y).sum(0, keepdims=True), rtol=1e-12)
        np.testing.assert_array_equal(X, kept)  # the lent array is only read
        assert (x.value is X) == (mode == "lent")
        assert bool(vm.plan._lent) == (mode == "lent")


def test_let_copy_false_copies_when_it_must_and_never_writes_into_a_lent_array():
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 2), gc.WithName("x"))
    f64 = np.ones((3, 2))
    gc.Let(x, f64, copy=False)  # needs a cast: copied
    assert x.value is not f64 and x.value.dtype == np.float32
    fortran = np.asfortranarray(np.ones((3, 2), np.float32))
    gc.Let(x, fortran, copy=False)  # not C-contiguous: copied
    assert x.value is not fortran
    lent = np.zeros((3, 2), np.float32)
    gc.Let(x, lent, copy=False)
    assert x.value is lent
    gc.Let(x, np.full((3, 2), 7.0, np.float32))  # same shape: must not copy into `lent`
    np.testing.assert_array_equal(lent, 0.0)
    assert x.value is not lent and float(x.value[0, 0]) == 7.0


def test_input_with_an_elementwise_reader_is_copied_not_lent():
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
    y = gc.Sum(gc.Square(x))
    vm = gc.NewTapeMachine(g)
    X = np.array([[1.0, 2.0]])
    gc.Let(x, X, copy=False)
    vm.run_all()
    assert float(y.value) == 5.0
    assert not vm.plan._lent and x.value is not X
    gc.Let(x, np.array([[3.0, 4.0]]))  # a plan compiled on a lent array never writes into it
    vm.run_all()
    assert float(y.value) == 25.0
    np.testing.assert_array_equal(X, [[1.0, 2.0]])


def test_golgi_predict_lends_and_fit_afterwards_leaves_user_data_alone():
    import golgi as G

    rng = np.random.default_rng(1)
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 5), gc.WithName("x"))
    model = G.ComposeSeq(x, G.L(G.ConsFC(G.WithShape(3), G.WithName("fc"))))
    data = rng.standard_normal((20, 5))
    kept = data.copy()
    out = G.predict(model, data, batch_size=20)
    w, b = (p.value for p in model.model())
    np.testing.assert_allclose(out, kept @ w + b, rtol=1e-12)
    y = rng.standard_normal((20, 3))
    G.fit(
        model,
        data,
        y,
        loss="mse",
        solver=gc.NewVanillaSolver(),
        epochs=1,
        batch_size=20,
        progress=False,
    )
    G.predict(model, data, batch_size=7)
    np.testing.assert_array_equal(data, kept)


# ----- run_all(into=...) ----------------------------------------------------------------------


def _out_model():
    rng = np.random.default_rng(3)
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 4), gc.WithName("x"))
    w = gc.NewMatrix(g, gc.Float64, gc.WithName("w"), gc.WithValue(rng.standard_normal((4, 3))))
    out = gc.Sigmoid(gc.Mul(x, w))
    return g, x, w, out


def test_run_all_into_writes_in_place_once_and_restores():
    g, x, w, out = _out_model()
    vm = gc.NewTapeMachine(g)
    X = np.arange(20.0).reshape(5, 4) / 10
    gc.Let(x, X)
    dest = np.full((5, 3), np.nan)
    vm.run_all(into={out: dest})
    np.testing.assert_allclose(dest, special.expit(X @ w.value), rtol=1e-12)
    assert out.value is dest  # until the next run
    vm.run_all()  # without into: the plan's own buffer again, dest untouched
    assert out.value is not dest
    before = dest.copy()
    gc.Let(x, X * 2)
    vm.run_all()
    np.testing.assert_array_equal(dest, before)
    np.testing.assert_allclose(out.value, special.expit(2 * X @ w.value), rtol=1e-12)


def test_run_all_into_copies_when_it_cannot_redirect():
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
    t = gc.Transpose(x)  # a view of an input: filled by a copy
    vm = gc.NewTapeMachine(g)
    gc.Let(x, np.array([[1.0, 2.0]]))
    dest = np.empty((2, 1))
    vm.run_all(into={t: dest})
    np.testing.assert_array_equal(dest, [[1.0], [2.0]])
    strided = np.empty((2, 2))[:, :1]  # not contiguous: copied too
    vm.run_all(into={t: strided})
    np.testing.assert_array_equal(strided, [[1.0], [2.0]])


def test_run_all_into_checks_shape_and_dtype():
    g, x, w, out = _out_model()
    vm = gc.NewTapeMachine(g)
    gc.Let(x, np.ones((5, 4)))
    with pytest.raises(ValueError, match=r"shape \(5, 3\)"):
        vm.run_all(into={out: np.empty((4, 3))})
    with pytest.raises(ValueError, match="float64"):
        vm.run_all(into={out: np.empty((5, 3), np.float32)})
    other = gc.NewScalar(gc.NewGraph(), gc.Float64, gc.WithName("elsewhere"))
    with pytest.raises(gc.GraphError, match="not a node this machine runs"):
        vm.run_all(into={other: np.empty(())})


def test_golgi_predict_fills_its_result_in_place_and_matches_batches():
    import golgi as G

    rng = np.random.default_rng(4)
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 6), gc.WithName("x"))
    model = G.ComposeSeq(
        x,
        G.L(G.ConsFC(G.WithShape(5), G.WithName("a"), G.WithActivation(gc.Rectify))),
        G.L(G.ConsFC(G.WithShape(2), G.WithName("b"), G.WithActivation(gc.Sigmoid))),
    )
    data = rng.standard_normal((23, 6))
    whole = G.predict(model, data, batch_size=23)
    parts = G.predict(model, data, batch_size=5)
    np.testing.assert_allclose(parts, whole, rtol=1e-12)
    w1, b1, w2, b2 = (p.value for p in model.model())
    ref = special.expit(np.maximum(data @ w1 + b1, 0) @ w2 + b2)
    np.testing.assert_allclose(whole, ref, rtol=1e-12)


def test_run_all_into_a_bound_gradient_still_accumulates_it():
    g = gc.NewGraph()
    x = gc.NewVector(g, gc.Float64, gc.WithShape(3), gc.WithName("x"))
    w = gc.NewVector(g, gc.Float64, gc.WithShape(3), gc.WithName("w"), gc.WithValue([1.0, 2, 3]))
    y = gc.Sum(gc.Square(gc.HadamardProd(w, gc.Exp(x))))
    (gw,) = gc.Grad(y, w)
    vm = gc.NewTapeMachine(g, gc.BindDualValues(w))
    gc.Let(x, np.zeros(3))
    vm.run_all()
    w.zero_grad()
    gc.Let(x, np.ones(3))
    d = np.empty(3)
    vm.run_all(into={gw: d})
    expected = 2 * np.array([1.0, 2, 3]) * np.exp(2.0)
    np.testing.assert_allclose(d, expected, rtol=1e-12)
    np.testing.assert_allclose(w.grad, expected, rtol=1e-12)


def test_run_all_into_a_bad_entry_leaves_no_redirect_behind():
    g = gc.NewGraph()
    x = gc.NewVector(g, gc.Float64, gc.WithShape(None), gc.WithName("x"))
    e = gc.Exp(x)
    a, b = gc.Square(e), gc.Tanh(e)
    vm = gc.NewTapeMachine(g)
    gc.Let(x, np.zeros(2))
    vm.run_all()
    da = np.zeros(2)
    with pytest.raises(ValueError):
        vm.run_all(into={a: da, b: np.empty(5)})
    gc.Let(x, np.ones(2))
    vm.run_all()
    np.testing.assert_array_equal(da, 0.0)
    assert a.value is not da
    np.testing.assert_allclose(a.value, np.exp(2.0), rtol=1e-12)


# ----- the kernel backend: chosen once per plan, by solvers at every step -----------------------

needs_numba = pytest.mark.skipif(not gc.accel.available(), reason="numba (the fast extra) absent")


def _relu_graph():
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 4), gc.WithName("x"))
    w = gc.NewMatrix(g, gc.Float32, gc.WithShape(4, 3), gc.WithName("w"),
                     gc.WithValue(np.arange(12, dtype=F32).reshape(4, 3) / 10 - 0.5))
    cost = gc.Mean(gc.Sigmoid(gc.Rectify(gc.Mul(x, w))))
    gc.Grad(cost, w)
    return g, x, w, cost


@needs_numba
@pytest.mark.parametrize("make", [gc.NewTapeMachine, gc.NewLispMachine])
def test_machine_chooses_its_kernels_once_per_plan(make, accel_state, monkeypatch):
    from graphcore.kernels import compiled

    calls = []
    f = compiled.relu_grad
    monkeypatch.setattr(compiled, "relu_grad", lambda *a: calls.append(1) or f(*a))
    g, x, w, cost = _relu_graph()
    gc.accel.set_enabled(True)
    vm = make(g, gc.BindDualValues(w))
    gc.Let(x, np.ones((5, 4), F32))
    vm.run_all()
    assert vm.ctx.kernels is compiled and len(calls) == 1
    with gc.accel.disabled():  # switching off after the plan was built changes nothing in it
        w.zero_grad()
        vm.run_all()
        assert len(calls) == 2 and vm.ctx.kernels is compiled
        if make is gc.NewTapeMachine:  # a new batch size is a new plan: numpy's kernels
            gc.Let(x, np.ones((3, 4), F32))
            vm.run_all()
            assert len(calls) == 2 and vm.ctx.kernels is reference
        else:  # a Lisp machine built now uses numpy's
            make(g, gc.BindDualValues(w)).run_all()
            assert len(calls) == 2


@needs_numba
def test_solvers_pick_the_backend_at_every_step(accel_state, monkeypatch):
    from graphcore.kernels import compiled

    calls = []
    f = compiled.rmsprop
    monkeypatch.setattr(compiled, "rmsprop", lambda *a: calls.append(1) or f(*a))
    p = P(np.ones(3), np.ones(3), "p")
    s = gc.NewRMSPropSolver()
    gc.accel.set_enabled(True)
    s.step([p])
    with gc.accel.disabled():
        p.grad[...] = 1.0
        s.step([p])
    assert len(calls) == 1 and s.num_steps == 2


# ----- the losses on both backends, through a machine --------------------------------------------


@needs_numba
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("dtype,rtol", [(F32, 2e-6), (F64, 1e-13)])
@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (100, 784), (5,)])
def test_bce_numba_and_numpy_paths_agree(shape, dtype, rtol, reduction, accel_state, monkeypatch):
    r = rng(23)
    z = (r.standard_normal(shape) * 5).astype(dtype)
    z.flat[0] = -1000.0
    t = r.random(shape).astype(dtype)
    got = {}
    calls = []
    for on in (True, False):
        gc.accel.set_enabled(on)
        if on:  # count the kernel's calls: the op must take the numba path when it is on
            k = gc.accel.kernels()
            for name in ("sigmoid_bce_sum", "sigmoid_bce_grad"):
                f = getattr(k, name)
                monkeypatch.setattr(k, name, lambda *a, _f=f, _n=name: calls.append(_n) or _f(*a))
        g, zn, loss = _bce_graph(z, t, reduction, dt=gc.Float32 if dtype == F32 else gc.Float64)
        vm = gc.NewTapeMachine(g, gc.BindDualValues(zn), gc.WithWatchlist(loss))
        vm.run_all()
        vm.run_all()  # a second step: the saved sigmoid is refreshed in place
        got[on] = (float(loss.value), zn.grad.copy())
        monkeypatch.undo()
    assert sorted(set(calls)) == ["sigmoid_bce_grad", "sigmoid_bce_sum"]
    (v1, g1), (v0, g0) = got[True], got[False]
    assert v1 == pytest.approx(v0, rel=rtol)
    scale = 1.0 / z.size if reduction == "mean" else 1.0
    np.testing.assert_allclose(g1, g0, rtol=rtol, atol=4 * np.finfo(dtype).eps * scale)
    rv, rg = bce_ref(z.astype(F64), t.astype(F64), reduction)
    assert v1 == pytest.approx(rv, rel=10 * rtol)


@needs_numba
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("dtype,rtol", [(F32, 2e-6), (F64, 1e-13)])
@pytest.mark.parametrize("shape", [(1, 1), (100, 10), (7, 3)])
def test_softmax_ce_numba_and_numpy_paths_agree(shape, dtype, rtol, reduction, accel_state,
                                                monkeypatch):
    r = rng(41)
    z = (r.standard_normal(shape) * 5).astype(dtype)
    z.flat[0] = 80.0  # exp(80) overflows float32: the max is subtracted first
    t = r.random(shape).astype(dtype)  # soft targets: rows do not sum to 1
    got, calls = {}, []
    for on in (True, False):
        gc.accel.set_enabled(on)
        if on:
            k = gc.accel.kernels()
            for name in ("softmax_ce_sum", "softmax_ce_grad"):
                f = getattr(k, name)
                monkeypatch.setattr(k, name, lambda *a, _f=f, _n=name: calls.append(_n) or _f(*a))
        g = gc.NewGraph()
        dt = gc.Float32 if dtype == F32 else gc.Float64
        zn = gc.NodeFromAny(g, z.copy(), gc.WithName("z"))
        tn = gc.NodeFromAny(g, t, gc.WithName("t"))
        loss = gc.SoftmaxCrossEntropy(zn, tn, reduction=reduction)
        assert loss.dtype == dt
        gc.Grad(loss, zn)
        vm = gc.NewTapeMachine(g, gc.BindDualValues(zn), gc.WithWatchlist(loss))
        vm.run_all()
        zn.grad[...] = 0
        vm.run_all()
        got[on] = (float(loss.value), zn.grad.copy())
        monkeypatch.undo()
    assert sorted(set(calls)) == ["softmax_ce_grad", "softmax_ce_sum"]
    (v1, g1), (v0, g0) = got[True], got[False]
    assert v1 == pytest.approx(v0, rel=rtol)
    np.testing.assert_allclose(g1, g0, rtol=rtol, atol=np.finfo(dtype).eps)
    # float64 reference
    z64, t64 = z.astype(F64), t.astype(F64)
    lsm = z64 - z64.max(1, keepdims=True)
    lsm -= np.log(np.exp(lsm).sum(1, keepdims=True))
    rows = -(t64 * lsm).sum(1)
    want = rows.mean() if reduction == "mean" else rows.sum()
    assert v1 == pytest.approx(want, rel=10 * rtol)
    sm = np.exp(lsm)
    gref = (sm * t64.sum(1, keepdims=True) - t64) / (shape[0] if reduction == "mean" else 1)
    np.testing.assert_allclose(g1, gref, rtol=1e-5 if dtype == F32 else 1e-12, atol=1e-6)


@needs_numba
def test_softmax_ce_numba_nan_row(accel_state):
    z = np.array([[1.0, np.nan, 2.0], [0.5, 0.25, -1.0]])
    t = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    g = gc.NewGraph()
    zn, tn = gc.NodeFromAny(g, z, gc.WithName("z")), gc.NodeFromAny(g, t, gc.WithName("t"))
    loss = gc.SoftmaxCrossEntropy(zn, tn)
    gc.NewTapeMachine(g, gc.WithWatchlist(loss)).run_all()
    assert np.isnan(float(loss.value))
