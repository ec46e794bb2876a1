"""Solvers: formulas against plain reference code, options, state round trips, no allocations."""

from __future__ import annotations

import io
import math
import tracemalloc

import numpy as np
import pytest

import graphcore as gc
from graphcore.errors import DtypeError, ShapeError, ValueNotAvailableError
from graphcore.solvers import (
    NewAdaGradSolver,
    NewAdamSolver,
    NewAdamW,
    NewBarzilaiBorweinSolver,
    NewMomentum,
    NewRMSPropSolver,
    NewVanillaSolver,
    NodesToValueGrads,
    WithBatchSize,
    WithBeta1,
    WithBeta2,
    WithClip,
    WithEps,
    WithL1Reg,
    WithL2Reg,
    WithLearnRate,
    WithMomentum,
    WithRho,
    WithWeightDecay,
)

CTORS = {
    "vanilla": NewVanillaSolver,
    "momentum": NewMomentum,
    "adagrad": NewAdaGradSolver,
    "rmsprop": NewRMSPropSolver,
    "adam": NewAdamSolver,
    "adamw": NewAdamW,
    "bb": NewBarzilaiBorweinSolver,
}
OPTS = {
    "learn_rate": WithLearnRate,
    "l1_reg": WithL1Reg,
    "l2_reg": WithL2Reg,
    "batch_size": WithBatchSize,
    "eps": WithEps,
    "clip": WithClip,
    "beta1": WithBeta1,
    "beta2": WithBeta2,
    "rho": WithRho,
    "momentum": WithMomentum,
    "weight_decay": WithWeightDecay,
}
COMMON = ("learn_rate", "l1_reg", "l2_reg", "batch_size", "clip")
TAKES = {
    "vanilla": COMMON,
    "momentum": (*COMMON, "momentum"),
    "adagrad": (*COMMON, "eps"),
    "rmsprop": (*COMMON, "eps", "rho"),
    "adam": (*COMMON, "eps", "beta1", "beta2"),
    "adamw": (*COMMON, "eps", "beta1", "beta2", "weight_decay"),
    "bb": COMMON,
}
DEFAULTS = {
    "learn_rate": 0.001,
    "l1_reg": 0.0,
    "l2_reg": 0.0,
    "batch_size": 1,
    "clip": None,
    "eps": 1e-8,
    "beta1": 0.9,
    "beta2": 0.999,
    "rho": 0.999,
    "momentum": 0.9,
    "weight_decay": 0.01,
}
# Non-default values, chosen so that each one visibly changes a few steps' result.
NONDEFAULT = {
    "learn_rate": 0.05,
    "l1_reg": 0.01,
    "l2_reg": 0.02,
    "batch_size": 4,
    "clip": 0.3,
    "eps": 0.5,
    "beta1": 0.5,
    "beta2": 0.9,
    "rho": 0.9,
    "momentum": 0.5,
    "weight_decay": 0.5,
}
SHAPES = [(3, 4), (5,), (2, 2, 2)]


def nondefault(kind: str, attr: str) -> float:
    if kind == "bb" and attr == "clip":
        return 1e-4  # bounds the BB step size, which is ~1e-3 here
    return NONDEFAULT[attr]


def all_on(kind: str) -> dict:
    return {a: nondefault(kind, a) for a in TAKES[kind]}


def make(kind: str, hp: dict):
    return CTORS[kind](*(OPTS[a](v) for a, v in hp.items()))


class P:
    """A minimal ValueGrad."""

    def __init__(self, value: np.ndarray, name: str = "p") -> None:
        self.value = value
        self.grad = np.zeros_like(value)
        self.name = name


def problem(dtype=np.float64, steps: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    ws = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    gseq = [[(2 * rng.standard_normal(s)).astype(dtype) for s in SHAPES] for _ in range(steps)]
    return ws, gseq


def run(solver, ws, gseq):
    params = [P(w.copy(), f"w{i}") for i, w in enumerate(ws)]
    for gs in gseq:
        for p, g in zip(params, gs, strict=True):
            p.grad[...] = g
        solver.step(params)
    return [p.value for p in params]


# ----- the reference: each formula written out plainly, in float64 -------------------------------
def reference(kind: str, hp: dict, ws, gseq, etas=None):
    h = {**DEFAULTS, **hp}
    ws = [np.asarray(w, np.float64).copy() for w in ws]
    state = [{} for _ in ws]
    prev = None
    rate = None

    def grad(w, g, clip=True):
        g = (g + h["l1_reg"] * np.sign(w) + h["l2_reg"] * w) / h["batch_size"]
        if clip and h["clip"] is not None:
            g = np.clip(g, -h["clip"], h["clip"])
        return g

    for t, gs in enumerate(gseq, 1):
        gs = [np.asarray(g, np.float64) for g in gs]
        eta = etas[t - 1] if etas else h["learn_rate"]
        if kind == "bb":
            gps = [grad(w, g, clip=False) for w, g in zip(ws, gs, strict=True)]
            if t == 1:
                rate = eta
            else:
                num = sum(
                    np.sum((w - pw) * (g - pg))
                    for w, g, (pw, pg) in zip(ws, gps, prev, strict=True)
                )
                den = sum(np.sum((g - pg) ** 2) for g, (_, pg) in zip(gps, prev, strict=True))
                if den > 0:
                    rate = num / den
                if h["clip"] is not None and abs(rate) > h["clip"]:
                    rate = math.copysign(h["clip"], rate)
            prev = [(w.copy(), g.copy()) for w, g in zip(ws, gps, strict=True)]
            ws = [w - rate * g for w, g in zip(ws, gps, strict=True)]
            continue
        for i, (w, g) in enumerate(zip(ws, gs, strict=True)):
            gp = grad(w, g)
            st = state[i]
            if kind == "vanilla":
                ws[i] = w - eta * gp
            elif kind == "momentum":
                st["v"] = h["momentum"] * st.get("v", 0.0) - eta * gp
                ws[i] = w + st["v"]
            elif kind == "adagrad":
                st["c"] = st.get("c", 0.0) + gp**2
                ws[i] = w - eta * gp / np.sqrt(st["c"] + h["eps"])
            elif kind == "rmsprop":
                st["c"] = h["rho"] * st.get("c", 0.0) + (1 - h["rho"]) * gp**2
                ws[i] = w - eta * gp / np.sqrt(st["c"] + h["eps"])
            else:  # adam, adamw
                st["m"] = h["beta1"] * st.get("m", 0.0) + (1 - h["beta1"]) * gp
                st["v"] = h["beta2"] * st.get("v", 0.0) + (1 - h["beta2"]) * gp**2
                m_hat = st["m"] / (1 - h["beta1"] ** t)
                v_hat = st["v"] / (1 - h["beta2"] ** t)
                if kind == "adamw":
                    w = w - eta * h["weight_decay"] * w
                ws[i] = w - eta * m_hat / (np.sqrt(v_hat) + h["eps"])
    return ws


def assert_close(got, want, rtol=1e-11, atol=1e-13):
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


# ----- formulas ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", CTORS)
@pytest.mark.parametrize("config", ["defaults", "all_on"])
def test_matches_reference(kind, config):
    hp = {} if config == "defaults" else all_on(kind)
    ws, gseq = problem()
    assert_close(run(make(kind, hp), ws, gseq), reference(kind, hp, ws, gseq))


@pytest.mark.parametrize(("kind", "attr"), [(k, a) for k, takes in TAKES.items() for a in takes])
def test_every_option_is_honoured(kind, attr):
    ws, gseq = problem()
    hp = {attr: nondefault(kind, attr)}
    got = run(make(kind, hp), ws, gseq)
    assert_close(got, reference(kind, hp, ws, gseq))
    default = run(make(kind, {}), ws, gseq)
    assert any(not np.allclose(a, b, rtol=1e-9, atol=0) for a, b in zip(got, default, strict=True))


@pytest.mark.parametrize("kind", CTORS)
def test_defaults(kind):
    s = make(kind, {})
    for attr in TAKES[kind]:
        assert getattr(s, attr) == DEFAULTS[attr], attr
    assert s.num_steps == 0


@pytest.mark.parametrize("kind", CTORS)
def test_float32_stays_float32_and_matches(kind):
    hp = all_on(kind)
    ws, gseq = problem(np.float32)
    solver = make(kind, hp)
    got = run(solver, ws, gseq)
    assert all(w.dtype == np.float32 for w in got)
    for k, v in solver.state_dict().items():
        if "/" in k:
            assert v.dtype == np.float32, k
    assert_close(got, reference(kind, hp, ws, gseq), rtol=2e-4, atol=1e-5)


@pytest.mark.parametrize("kind", CTORS)
def test_regularisation_is_folded_into_the_gradient(kind):
    """The documented rule: WithL2Reg(λ) on g is the same as feeding g + λ·w."""
    lam = 0.3
    ws, gseq = problem()
    with_reg = run(make(kind, {"l2_reg": lam}), ws, gseq)
    params = [P(w.copy()) for w in ws]
    solver = make(kind, {})
    for gs in gseq:
        for p, g in zip(params, gs, strict=True):
            p.grad[...] = g + lam * p.value
        solver.step(params)
    assert_close([p.value for p in params], with_reg, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("kind", CTORS)
def test_updates_in_place_and_zeroes_grad(kind):
    ws, gseq = problem(steps=1)
    params = [P(w.copy()) for w in ws]
    values = [p.value for p in params]
    grads = [p.grad for p in params]
    for p, g in zip(params, gseq[0], strict=True):
        p.grad[...] = g
    make(kind, {}).step(params)
    for p, v, g, w0 in zip(params, values, grads, ws, strict=True):
        assert p.value is v and p.grad is g
        assert not np.array_equal(p.value, w0)
        assert not p.grad.any()


def test_learn_rate_schedule_between_steps():
    ws, gseq = problem(steps=3)
    etas = [0.1, 0.01, 0.001]
    for kind in ("vanilla", "rmsprop", "adam"):
        solver = make(kind, {})
        params = [P(w.copy()) for w in ws]
        for eta, gs in zip(etas, gseq, strict=True):
            solver.learn_rate = eta
            for p, g in zip(params, gs, strict=True):
                p.grad[...] = g
            solver.step(params)
        assert_close([p.value for p in params], reference(kind, {}, ws, gseq, etas=etas))


def test_hyperparameter_assignment_is_validated():
    s = NewRMSPropSolver()
    with pytest.raises(ValueError, match="learn_rate"):
        s.learn_rate = 0
    with pytest.raises(ValueError, match="WithRho"):
        s.rho = 1.0
    with pytest.raises(AttributeError, match="momentum"):
        s.momentum = 0.5
    with pytest.raises(AttributeError, match="beta1"):
        _ = s.beta1
    assert s.learn_rate == 0.001


# ----- solver specifics --------------------------------------------------------------------------
def test_rmsprop_batch_size_only_rescales_eps():
    ws, gseq = problem()
    b = 100
    # eps must be > 0 (0 gives 0/0 on a zero gradient); this small it does not show
    plain = run(make("rmsprop", {"eps": 1e-300}), ws, gseq)
    batched = run(make("rmsprop", {"eps": 1e-300, "batch_size": b}), ws, gseq)
    assert_close(batched, plain, rtol=1e-12)
    eps = 1e-6
    batched = run(make("rmsprop", {"eps": eps, "batch_size": b}), ws, gseq)
    rescaled = run(make("rmsprop", {"eps": eps * b * b}), ws, gseq)
    assert_close(batched, rescaled, rtol=1e-12)
    unscaled = run(make("rmsprop", {"eps": eps}), ws, gseq)
    assert not np.allclose(batched[0], unscaled[0], rtol=1e-6, atol=0)


def test_adamw_decay_is_decoupled():
    w0 = np.array([1.0, -2.0, 4.0])
    p = P(w0.copy())
    NewAdamW(WithLearnRate(0.1), WithWeightDecay(0.5)).step([p])  # zero gradient
    np.testing.assert_allclose(p.value, w0 * (1 - 0.1 * 0.5), rtol=1e-15)


def test_adam_counts_steps_not_parameters():
    ws, gseq = problem(steps=2)
    solver = make("adam", {})
    run(solver, ws, gseq)
    assert solver.num_steps == 2
    assert int(solver.state_dict()["step"]) == 2


def test_barzilai_borwein_rate():
    s = NewBarzilaiBorweinSolver(WithLearnRate(0.1))
    p, q = P(np.array([1.0, 2.0])), P(np.array([[3.0]]))
    p.grad[...] = [1.0, -1.0]
    q.grad[...] = [[2.0]]
    s.step([p, q])
    assert s.current_rate == 0.1
    np.testing.assert_allclose(p.value, [0.9, 2.1])
    # Δw = (-0.1, 0.1, -0.2); Δg = (1, 1, -1) → ⟨Δw,Δg⟩ = 0.2, ‖Δg‖² = 3.
    p.grad[...] = [2.0, 0.0]
    q.grad[...] = [[1.0]]
    s.step([p, q])
    assert s.current_rate == pytest.approx(0.2 / 3, rel=1e-14)
    # An unchanged gradient gives ‖Δg‖² = 0: the previous rate is kept.
    p.grad[...] = [2.0, 0.0]
    q.grad[...] = [[1.0]]
    s.step([p, q])
    assert s.current_rate == pytest.approx(0.2 / 3, rel=1e-14)


def test_barzilai_borwein_clip_bounds_the_rate():
    s = NewBarzilaiBorweinSolver(WithLearnRate(0.1), WithClip(0.01))
    p = P(np.array([1.0, 2.0]))
    p.grad[...] = [1.0, -1.0]
    s.step([p])
    assert s.current_rate == 0.1  # the first step is not clipped
    p.grad[...] = [3.0, -2.0]  # Δw = (-0.1, 0.1), Δg = (2, -1): rate -0.3/5, clipped
    s.step([p])
    assert s.current_rate == -0.01


# ----- options -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "attr"), [(k, a) for k in CTORS for a in OPTS if a not in TAKES[k]]
)
def test_inapplicable_option_raises(kind, attr):
    ctor = CTORS[kind]
    with pytest.raises(TypeError) as e:
        ctor(OPTS[attr](nondefault(kind, attr)))
    msg = str(e.value)
    assert ctor.__name__ in msg and OPTS[attr].__name__ in msg
    for a in TAKES[kind]:
        assert OPTS[a].__name__ in msg


def test_adamw_refuses_rho_and_points_to_weight_decay():
    with pytest.raises(TypeError, match="WithWeightDecay"):
        NewAdamW(WithRho(0.1))


@pytest.mark.parametrize(
    ("opt", "value"),
    [
        (WithLearnRate, 0),
        (WithLearnRate, -0.1),
        (WithLearnRate, math.nan),
        (WithLearnRate, math.inf),
        (WithRho, 1.0),
        (WithRho, -0.1),
        (WithBeta1, 1.0),
        (WithBeta2, -0.5),
        (WithMomentum, 1.0),
        (WithBatchSize, 0),
        (WithClip, 0),
        (WithClip, -1),
        (WithEps, -1e-8),
        (WithL1Reg, -1),
        (WithL2Reg, math.nan),
        (WithWeightDecay, -0.1),
    ],
)
def test_bad_option_values_raise(opt, value):
    with pytest.raises(ValueError, match=opt.__name__):
        opt(value)


@pytest.mark.parametrize("value", ["0.1", True, None, [0.1]])
def test_non_numeric_option_values_raise(value):
    with pytest.raises(TypeError, match="WithLearnRate"):
        WithLearnRate(value)


def test_non_option_argument_raises():
    with pytest.raises(TypeError, match="NewAdamSolver takes options"):
        NewAdamSolver(0.01)


def test_options_apply_in_order():
    assert NewAdamSolver(WithLearnRate(0.1), WithLearnRate(0.2)).learn_rate == 0.2


def test_repr_shows_hyperparameters():
    r = repr(NewRMSPropSolver(WithBatchSize(100), WithClip(5)))
    assert r == (
        "RMSPropSolver(learn_rate=0.001, rho=0.999, eps=1e-08, l1_reg=0.0, l2_reg=0.0, "
        "batch_size=100, clip=5.0)"
    )
    for kind in CTORS:
        r = repr(make(kind, {}))
        for attr in TAKES[kind]:
            assert f"{attr}=" in r
    assert repr(WithRho(0.9)) == "WithRho(0.9)"


# ----- step validation ---------------------------------------------------------------------------
def test_changing_parameters_between_steps_raises_and_keeps_state():
    ws, gseq = problem(steps=1)
    s = make("adam", {})
    params = [P(w.copy(), f"w{i}") for i, w in enumerate(ws)]
    s.step(params)
    before = s.state_dict()
    with pytest.raises(ValueError, match="got 2 parameters.*had 3"):
        s.step(params[:2])
    with pytest.raises(ShapeError, match="'w1'.*shape"):
        s.step([params[0], P(np.zeros(6), "w1"), params[2]])
    with pytest.raises(DtypeError, match="float32"):
        s.step([params[0], P(params[1].value.astype(np.float32), "w1"), params[2]])
    after = s.state_dict()
    assert before.keys() == after.keys()
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_step_rejects_bad_value_grads():
    s = NewVanillaSolver()
    with pytest.raises(DtypeError, match="'iw'.*int64"):
        s.step([P(np.zeros(2, np.int64), "iw")])
    p = P(np.zeros(2), "w")
    p.grad = None
    with pytest.raises(ValueNotAvailableError, match="'w'.*BindDualValues"):
        s.step([p])
    p.grad = np.zeros(3)
    with pytest.raises(ShapeError, match="'w'"):
        s.step([p])
    p.grad = np.zeros(2, np.float32)
    with pytest.raises(DtypeError, match="'w'"):
        s.step([p])
    with pytest.raises(TypeError, match="no .value"):
        s.step([object()])
    ro = P(np.zeros(2), "ro")
    ro.value.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        s.step([ro])
    q = P(np.zeros(2), "q")
    with pytest.raises(ValueError, match="updated twice"):
        s.step([q, q])
    with pytest.raises(TypeError, match="list of parameters"):
        s.step(np.zeros(2))
    assert s.num_steps == 0


# ----- NodesToValueGrads -------------------------------------------------------------------------
def test_nodes_to_value_grads_validates_and_keeps_order():
    a, b = P(np.zeros(2), "a"), P(np.ones((2, 2)), "b")
    assert NodesToValueGrads([a, b]) == [a, b]
    assert NodesToValueGrads(iter([b])) == [b]
    b.grad = None
    with pytest.raises(ValueNotAvailableError, match="'b'.*Grad\\(cost.*BindDualValues"):
        NodesToValueGrads([a, b])
    b.grad = np.zeros(4)
    with pytest.raises(ShapeError, match="'b'"):
        NodesToValueGrads([a, b])
    with pytest.raises(DtypeError, match="'i'"):
        NodesToValueGrads([P(np.zeros(2, np.int32), "i")])
    with pytest.raises(TypeError, match="no .value"):
        NodesToValueGrads([1.0])


def test_nodes_to_value_grads_lets_node_errors_through():
    g = gc.NewGraph()
    w = gc.NewVector(g, gc.Float64, gc.WithShape(2), gc.WithName("w"), gc.WithValue([1.0, 2.0]))
    with pytest.raises(ValueNotAvailableError, match="'w'.*Grad\\(cost"):
        NodesToValueGrads([w])


def test_trains_graph_nodes():
    g = gc.NewGraph()
    w = gc.NewVector(
        g, gc.Float64, gc.WithShape(3), gc.WithName("w"), gc.WithValue([1.0, -2.0, 3.0])
    )
    cost = gc.Sum(gc.Square(w))
    gc.Grad(cost, w)
    vm = gc.NewTapeMachine(g, gc.BindDualValues(w))
    solver = NewAdamSolver(WithLearnRate(0.1))
    costs = []
    for _ in range(5):
        vm.run_all()
        costs.append(float(cost.value))
        solver.step(NodesToValueGrads([w]))
        assert not w.grad.any()
        vm.reset()
    assert costs == sorted(costs, reverse=True) and costs[-1] < costs[0]


def _node_problem():
    g = gc.NewGraph()
    w = gc.NewVector(g, gc.Float64, gc.WithShape(3), gc.WithName("w"),
                     gc.WithValue([1.0, -2.0, 3.0]))
    b = gc.NewVector(g, gc.Float64, gc.WithShape(2), gc.WithName("b"), gc.WithValue([0.5, 1.5]))
    cost = gc.Add(gc.Sum(gc.Square(w)), gc.Sum(gc.Cube(b)))
    gc.Grad(cost, w, b)
    return w, b, gc.NewTapeMachine(g, gc.BindDualValues(w, b))


@pytest.mark.parametrize("kind", CTORS)
def test_repeated_node_steps_match_value_grad_objects(kind):
    # steps over the same nodes skip their checks; the updates must not change
    w, b, vm = _node_problem()
    solver, shadow = make(kind, all_on(kind)), make(kind, all_on(kind))
    ps = [P(w.value.copy()), P(b.value.copy())]
    for _ in range(4):
        vm.run_all()
        for p, n in zip(ps, (w, b)):
            p.grad[...] = n.grad
        solver.step([w, b])
        shadow.step(ps)
        vm.reset()
    assert solver._bound is not None and shadow._bound is None  # the nodes' fast path ran
    for p, n in zip(ps, (w, b)):
        np.testing.assert_allclose(n.value, p.value, rtol=1e-13, atol=1e-15)


def test_node_steps_see_rebound_arrays_stale_gradients_and_other_lists():
    w, b, vm = _node_problem()
    solver = NewVanillaSolver(WithLearnRate(0.5))
    vm.run_all()
    solver.step([w, b])
    # no run since the last step: the lazily zeroed gradients count as zero
    before = w.value.copy()
    solver.step([w, b])
    np.testing.assert_array_equal(w.value, before)
    assert not w.grad.any()
    # a new value array bound to w: the next step updates that array
    gc.Let(w, [2.0, 2.0, 2.0])
    vm.run_all()
    solver.step([w, b])
    np.testing.assert_allclose(w.value, [0.0, 0.0, 0.0])
    # another list of nodes is checked again
    with pytest.raises(ValueError, match="got 1 parameters"):
        solver.step([w])
    with pytest.raises(ShapeError):
        solver.step([b, w])


# ----- state -------------------------------------------------------------------------------------
def npz_round_trip(state: dict) -> dict:
    buf = io.BytesIO()
    np.savez(buf, **state)
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


@pytest.mark.parametrize("kind", CTORS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_state_round_trip_is_bit_identical(kind, dtype):
    hp = all_on(kind)
    ws, gseq = problem(dtype, steps=6)
    straight = run(make(kind, hp), ws, gseq)

    first = make(kind, hp)
    params = [P(w.copy()) for w in ws]
    for gs in gseq[:3]:
        for p, g in zip(params, gs, strict=True):
            p.grad[...] = g
        first.step(params)
    state = npz_round_trip(first.state_dict())
    resumed = make(kind, {})  # hyperparameters come back from the state
    resumed.load_state_dict(state)
    assert repr(resumed) == repr(first)
    for gs in gseq[3:]:
        for p, g in zip(params, gs, strict=True):
            p.grad[...] = g
        resumed.step(params)
    for a, b in zip((p.value for p in params), straight, strict=True):
        assert np.array_equal(a, b)


def test_state_dict_contents_and_copies():
    ws, gseq = problem(steps=1)
    s = make("adam", {})
    params = [P(w.copy()) for w in ws]
    s.step(params)
    d = s.state_dict()
    assert str(d["solver"]) == "AdamSolver" and int(d["step"]) == 1
    assert d["clip"].shape == () and math.isinf(d["clip"])
    assert {f"{b}/{i}" for b in ("m", "v") for i in range(3)} <= d.keys()
    assert d["m/2"].shape == SHAPES[2]
    d["m/0"][...] = 123.0
    assert not np.any(s.state_dict()["m/0"] == 123.0)
    assert set(make("rmsprop", {}).state_dict()) == {
        "solver",
        "step",
        "num_params",
        "learn_rate",
        "rho",
        "eps",
        "l1_reg",
        "l2_reg",
        "batch_size",
        "clip",
    }


def test_load_state_dict_is_strict_and_atomic():
    ws, gseq = problem(steps=2)
    s = make("rmsprop", {})
    run(s, ws, gseq)
    good = s.state_dict()

    target = make("rmsprop", {"learn_rate": 0.5})
    params = [P(w.copy()) for w in ws]
    target.step(params)
    before = target.state_dict()

    bad = dict(good)
    del bad["cache/0"]
    bad["extra"] = np.array(1.0)
    bad["cache/1"] = np.zeros(7)
    bad["rho"] = np.array(1.5)
    with pytest.raises(ValueError) as e:
        target.load_state_dict(bad)
    msg = str(e.value)
    for part in ("missing keys: cache/0", "unexpected keys: extra", "'cache/1'", "rho"):
        assert part in msg
    after = target.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert target.learn_rate == 0.5

    with pytest.raises(ValueError, match="AdamSolver's, not a RMSPropSolver's"):
        make("rmsprop", {}).load_state_dict(make("adam", {}).state_dict() | {"rho": 0.9})
    fresh = make("rmsprop", {})
    incomplete = {k: v for k, v in good.items() if k != "cache/2"}
    with pytest.raises(ValueError, match="missing keys: cache/2"):
        fresh.load_state_dict(incomplete)
    with pytest.raises(TypeError, match="mapping"):
        fresh.load_state_dict([1, 2])
    target.load_state_dict(good)  # same layout: fine
    assert target.num_steps == 2 and target.learn_rate == 0.001


def test_loaded_state_fixes_the_layout():
    ws, gseq = problem(steps=1)
    s = make("momentum", {})
    run(s, ws, gseq)
    fresh = make("momentum", {})
    fresh.load_state_dict(s.state_dict())
    with pytest.raises(ValueError, match="got 1 parameters"):
        fresh.step([P(ws[0].copy())])


# ----- performance: no allocations per step ------------------------------------------------------
@pytest.mark.parametrize(
    "factory",
    [
        lambda: NewRMSPropSolver(WithBatchSize(100)),
        lambda: NewRMSPropSolver(WithL1Reg(1e-4), WithL2Reg(1e-4), WithBatchSize(10), WithClip(1)),
        lambda: NewAdamSolver(),
        lambda: NewAdamSolver(WithL1Reg(1e-4), WithL2Reg(1e-4), WithBatchSize(10), WithClip(1)),
        lambda: NewAdamW(),
        lambda: NewVanillaSolver(WithL2Reg(1e-3)),
        lambda: NewMomentum(),
        lambda: NewAdaGradSolver(),
        lambda: NewBarzilaiBorweinSolver(),
    ],
)
def test_steady_state_steps_allocate_no_arrays(factory):
    rng = np.random.default_rng(0)
    params = [P(rng.standard_normal((100, 100)).astype(np.float32)) for _ in range(3)]
    sources = [rng.standard_normal((100, 100)).astype(np.float32) for _ in params]
    solver = factory()

    def one_step():
        for p, src in zip(params, sources, strict=True):
            np.copyto(p.grad, src)
        solver.step(params)

    one_step()
    one_step()
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in range(20):
            one_step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - base < params[0].value.nbytes // 8


@pytest.mark.parametrize("name", ["adagrad", "rmsprop", "adam", "adamw"])
def test_eps_zero_is_refused_since_a_zero_gradient_would_give_nan(name):
    with pytest.raises(ValueError, match=r"WithEps\(0\.0\): eps must be a finite number > 0"):
        make(name, {"eps": 0.0})
