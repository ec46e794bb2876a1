"""Property-based checks on random small graphs.

Hypothesis draws 1-3 float64 inputs of small shapes that broadcast against each other (some
with a free batch dimension) and a short program of unary, binary and reduce ops over them.
For each graph: the tape and Lisp machines agree on values and gradients (the Lisp machine
differentiating privately, on a second copy of the graph built without ``Grad``), the
tape machine's gradients match central finite differences, and so do its Hessian-vector
products (``Grad`` of the gradient) against finite differences of the gradient.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphcore as gc

# smooth ops only: finite differences are meaningless at kinks
UNARY = [
    gc.Tanh,
    gc.Sin,
    gc.Cos,
    gc.Sigmoid,
    gc.Softplus,
    gc.Neg,
    gc.Square,
    lambda a: a * 0.5 + 0.25,
    lambda a: gc.Exp(gc.Tanh(a)),
    lambda a: gc.Log(gc.Square(a) + 1.0),
]
BINARY = [
    gc.Add,
    gc.Sub,
    gc.HadamardProd,
    lambda a, b: a / (gc.Square(b) + 1.0),
    lambda a, b: a * gc.Sigmoid(b),
]
VARIANTS = ["full", "row", "col", "vec", "scalar"]

settings.register_profile(
    "graphs",
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


def _shape(variant, r, c):
    return {"full": (r, c), "row": (1, c), "col": (r, 1), "vec": (c,), "scalar": ()}[variant]


@st.composite
def programs(draw):
    pick = lambda xs: draw(st.sampled_from(list(xs)))  # noqa: E731 - uniform, not small-biased
    r, c, n_in = pick(range(1, 4)), pick(range(1, 4)), pick(range(1, 4))
    variants = [pick(VARIANTS) for _ in range(n_in)]
    free = pick([False, True])  # declare dimension 0 of full-shaped inputs as None
    step = st.tuples(
        st.sampled_from("ubr"),  # kind
        st.sampled_from(range(6)),  # operand a (index into the pool, modulo)
        st.sampled_from(range(6)),  # operand b
        st.sampled_from(range(len(UNARY))),
        st.sampled_from(range(len(BINARY))),
        st.sampled_from([None, 0, 1]),  # reduce axis (modulo rank)
        st.sampled_from([False, True]),  # keepdims / Sum vs Mean
        st.sampled_from([False, True]),
    )
    steps = draw(st.lists(step, min_size=1, max_size=6))
    seed = draw(st.integers(0, 2**16))
    return dict(r=r, c=c, variants=variants, free=free, steps=steps, seed=seed)


def build(prog, cost=True):
    """Build the program's graph; returns (graph, inputs, out, cost or None, arrays).

    The cost is ``Sum(out * R)`` for a random constant ``R`` of ``out``'s shape at the drawn
    batch size.
    """
    rng = np.random.default_rng(prog["seed"])
    g = gc.NewGraph()
    inputs, arrays = [], []
    for i, v in enumerate(prog["variants"]):
        shape = _shape(v, prog["r"], prog["c"])
        decl = (None, *shape[1:]) if prog["free"] and v in ("full", "col") else shape
        n = gc.NewTensor(g, gc.Float64, len(shape), gc.WithShape(*decl), gc.WithName(f"in{i}"))
        a = rng.uniform(-1.5, 1.5, shape)
        gc.Let(n, a)
        inputs.append(n)
        arrays.append(a)
    pool = list(inputs)
    for kind, i, j, ui, bi, axis, keep, mean in prog["steps"]:
        a = pool[i % len(pool)]
        if kind == "b":
            b = pool[j % len(pool)]
            try:
                np.broadcast_shapes(
                    *(tuple(1 if d is None else d for d in s) for s in (a.shape, b.shape))
                )
            except ValueError:
                kind = "u"
            else:
                pool.append(BINARY[bi](a, b))
                continue
        if kind == "r" and a.ndim > 0:
            op = gc.Mean if mean else gc.Sum
            if axis is None:
                pool.append(op(a, keepdims=keep))
            else:
                pool.append(op(a, axis % a.ndim, keepdims=keep))
            continue
        pool.append(UNARY[ui](a))
    # combine the last node with every input so that every input reaches the cost
    out = pool[-1]
    for n in inputs:
        out = out + gc.Sum(gc.Tanh(n))
    if not cost:
        return g, inputs, out, None, arrays
    concrete = tuple(prog["r"] if d is None else d for d in out.shape)
    direction = gc.NewConstant(rng.standard_normal(concrete), name="R")
    return g, inputs, out, gc.Sum(gc.HadamardProd(out, direction)), arrays


@settings(settings.get_profile("graphs"))
@given(programs())
def test_tape_matches_lisp_and_finite_differences(prog):
    g, inputs, out, cost, arrays = build(prog)
    grads = gc.Grad(cost, *inputs)
    vm = gc.NewTapeMachine(g, gc.WithWatchlist(out))
    vm.run_all()
    tape_out, tape_cost = out.value.copy(), float(cost.value)
    tape_grads = [d.value.copy() for d in grads]
    for d, a in zip(tape_grads, arrays, strict=True):
        assert d.shape == a.shape

    # the Lisp machine on a fresh copy, differentiating at run time
    g2, inputs2, out2, cost2, _ = build(prog)
    # (on the cost's subgraph: ops the program left unused would be other scalar roots)
    gc.NewLispMachine(g2.subgraph_roots(cost2), gc.BindDualValues(*inputs2)).run_all()
    np.testing.assert_allclose(out2.value, tape_out, rtol=1e-12, atol=1e-12)
    assert float(cost2.value) == pytest.approx(tape_cost, rel=1e-12, abs=1e-12)
    for n2, d in zip(inputs2, tape_grads, strict=True):
        np.testing.assert_allclose(n2.grad, d, rtol=1e-10, atol=1e-12)

    # central finite differences along a random direction, per input
    eps = 1e-6
    rng = np.random.default_rng(prog["seed"] + 1)
    for n, a, d in zip(inputs, arrays, tape_grads, strict=True):
        v = rng.standard_normal(a.shape)
        gc.Let(n, a + eps * v)
        vm.run_all()
        fp = float(cost.value)
        gc.Let(n, a - eps * v)
        vm.run_all()
        fm = float(cost.value)
        gc.Let(n, a)
        numeric = (fp - fm) / (2 * eps)
        analytic = float(np.sum(d * v))
        assert abs(numeric - analytic) <= 1e-6 * max(1.0, abs(numeric), abs(analytic)), (
            f"{n.name}: analytic {analytic} vs numeric {numeric}"
        )


@settings(settings.get_profile("graphs"))
@given(programs(), st.integers(1, 4))
def test_free_batch_graphs_run_at_other_sizes(prog, rows):
    prog = dict(prog, free=True)
    g, inputs, out, cost, arrays = build(prog, cost=False)
    vm = gc.NewTapeMachine(g, gc.WithWatchlist(out))
    vm.run_all()
    if not any(None in n.shape for n in inputs):
        return
    # rebind every free input at another batch size and compare with the Lisp machine
    rng = np.random.default_rng(prog["seed"] + 2)
    for n in inputs:
        if None in n.shape:
            gc.Let(n, rng.uniform(-1, 1, (rows, *n.shape[1:])))
    vm.run_all()
    assert len(vm._plans) == (1 if rows == prog["r"] else 2)
    tape_out = out.value.copy()
    gc.NewLispMachine(g, gc.ExecuteFwdOnly()).run_all()
    np.testing.assert_allclose(out.value, tape_out, rtol=1e-12, atol=1e-12)


@settings(settings.get_profile("graphs"), max_examples=15)
@given(programs())
def test_hessian_vector_products_match_finite_differences(prog):
    g, inputs, out, cost, arrays = build(dict(prog, free=False))
    grads = gc.Grad(cost, *inputs)
    rng = np.random.default_rng(prog["seed"] + 3)
    vs = [rng.standard_normal(a.shape) for a in arrays]
    us = [rng.standard_normal(a.shape) for a in arrays]
    s = gc.Sum(gc.NewConstant(0.0))
    for d, v in zip(grads, vs, strict=True):
        s = s + gc.Sum(d * gc.NewConstant(v))
    hv = gc.Grad(s, *inputs)
    vm = gc.NewTapeMachine(g, gc.WithWatchlist(s, *hv))
    vm.run_all()
    analytic = sum(float(np.sum(d.value * u)) for d, u in zip(hv, us, strict=True))
    eps, sides = 1e-5, []
    for t in (eps, -eps):
        for n, a, u in zip(inputs, arrays, us, strict=True):
            gc.Let(n, a + t * u)
        vm.run_all()
        sides.append(float(s.value))
    numeric = (sides[0] - sides[1]) / (2 * eps)
    assert abs(numeric - analytic) <= 1e-5 * max(1.0, abs(numeric), abs(analytic)), (
        f"H V along U: analytic {analytic} vs numeric {numeric}"
    )
