"""A dense layer's fused steps (graphcore.machines.fusion): same values and gradients as the
unfused steps on both kernel backends, what stays readable, what is left unfused."""


import numpy as np
import pytest

import graphcore as gc
from graphcore.machines import fusion
from tests.allocations import peak_growth

BACKENDS = [
    "numpy",
    pytest.param(
        "numba", marks=pytest.mark.skipif(not gc.accel.available(), reason="numba absent")
    ),
]
TOL = {np.float32: 2e-5, np.float64: 1e-12}


@pytest.fixture
def backend(request):
    was = gc.accel._state["on"]
    gc.accel.set_enabled(request.param == "numba")
    try:
        yield request.param
    finally:
        gc.accel.set_enabled(was)


def _dense(sizes, acts, dtype, bias_shape="row", head="ce", seed=0):
    """A dense network: product, bias row, activation per layer; the cost and its gradients."""
    rng = np.random.default_rng(seed)
    g = gc.NewGraph()
    dt = gc.as_dtype(np.dtype(dtype))
    x = gc.NewMatrix(g, dt, gc.WithShape(None, sizes[0]), gc.WithName("x"))
    t = gc.NewMatrix(g, dt, gc.WithShape(None, sizes[-1]), gc.WithName("t"))
    params, hidden, h = [], [], x
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = gc.NewMatrix(g, dt, gc.WithName(f"w{i}"),
                         gc.WithValue((rng.standard_normal((a, b)) / np.sqrt(a)).astype(dtype)))
        bv = (rng.standard_normal(b) * 0.3).astype(dtype)
        if bias_shape == "row":
            bias = gc.NewMatrix(g, dt, gc.WithName(f"b{i}"), gc.WithValue(bv.reshape(1, b)))
        else:
            bias = gc.NewVector(g, dt, gc.WithName(f"b{i}"), gc.WithValue(bv))
        params += [w, bias]
        z = gc.Mul(h, w)
        h = gc.Add(z, bias) if i % 2 == 0 else gc.Add(bias, z)  # either operand order
        if i < len(sizes) - 2:
            h = acts[i](h)
            hidden.append(h)
    cost = gc.SoftmaxCrossEntropy(h, t) if head == "ce" else gc.SigmoidBinaryCrossEntropy(h, t)
    gc.Grad(cost, *params)
    return g, x, t, params, hidden, cost


def _readable(n):
    """A copy of ``n``'s value, or None where a later step reused its buffer."""
    try:
        return n.value.copy()
    except gc.ValueNotAvailableError:
        return None


def _train(fused, backend_name, dtype, steps=3, **kw):
    """Loss, hidden values and gradients over a few runs with RMSProp in between."""
    fusion.enabled = fused
    try:
        g, x, t, params, hidden, cost = _dense(dtype=dtype, **kw)
        vm = gc.NewTapeMachine(g.subgraph_roots(cost), gc.BindDualValues(*params))
        solver = gc.NewRMSPropSolver()
        rng = np.random.default_rng(1)
        n_in, n_out = x.shape[1], t.shape[1]
        out = []
        for _ in range(steps):
            gc.Let(x, rng.standard_normal((7, n_in)).astype(dtype))
            gc.Let(t, np.eye(n_out, dtype=dtype)[rng.integers(0, n_out, 7)])
            vm.run_all()
            out.append([float(cost.value), *(_readable(h) for h in hidden),
                        *(p.grad.copy() for p in params)])
            solver.step(gc.NodesToValueGrads(params))
        return out, vm.plan.n_steps
    finally:
        fusion.enabled = True


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bias_shape", ["row", "vector"])
@pytest.mark.parametrize("acts", [(gc.Rectify, gc.Rectify), (gc.Sigmoid, gc.Rectify)])
def test_fused_steps_give_the_unfused_results(backend, dtype, bias_shape, acts):
    kw = dict(sizes=[9, 13, 6, 4], acts=acts, bias_shape=bias_shape)
    got, n_fused = _train(True, backend, dtype, **kw)
    want, n_plain = _train(False, backend, dtype, **kw)
    # forward: two bias+activation pairs; backward: the ReLU gradients with their bias sums
    n_relu_grads = sum(a is gc.Rectify for a in acts)
    # numpy plans keep their steps (the same passes, measured no faster as one step)
    assert n_plain - n_fused == (2 + n_relu_grads if backend == "numba" else 0)
    for a, b in zip(got, want):
        for u, v in zip(a, b):
            assert (u is None) == (v is None)
            if u is not None:
                np.testing.assert_allclose(u, v, rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_autoencoder_with_bce_fuses_and_matches(backend):
    kw = dict(sizes=[12, 8, 3, 8, 12], acts=(gc.Rectify,) * 3, head="bce")
    got, n_fused = _train(True, backend, np.float32, **kw)
    want, n_plain = _train(False, backend, np.float32, **kw)
    assert n_plain - n_fused == (6 if backend == "numba" else 0)
    for a, b in zip(got, want):
        for u, v in zip(a, b):
            assert (u is None) == (v is None)
            if u is not None:
                np.testing.assert_allclose(u, v, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_fused_gradients_match_finite_differences(backend):
    g, x, t, params, hidden, cost = _dense([5, 4, 3], (gc.Rectify,), np.float64)
    vm = gc.NewTapeMachine(g.subgraph_roots(cost), gc.BindDualValues(*params))
    rng = np.random.default_rng(3)
    gc.Let(x, rng.standard_normal((6, 5)))
    gc.Let(t, np.eye(3)[rng.integers(0, 3, 6)])
    vm.run_all()
    grads = [p.grad.copy() for p in params]
    for p, dp in zip(params, grads):
        v = p.value
        for i in np.ndindex(v.shape):
            old = v[i]
            loss = []
            for h in (1e-6, -1e-6):
                v[i] = old + h
                p.zero_grad()
                vm.run_all()
                loss.append(float(cost.value))
            v[i] = old
            assert (loss[0] - loss[1]) / 2e-6 == pytest.approx(dp[i], abs=1e-6)


def test_the_sum_before_the_activation_reports_it_was_overwritten():
    g, x, t, params, hidden, cost = _dense([5, 4, 3], (gc.Rectify,), np.float64)
    vm = gc.NewTapeMachine(g.subgraph_roots(cost), gc.BindDualValues(*params))
    gc.Let(x, np.ones((2, 5)))
    gc.Let(t, np.eye(3)[[0, 1]])
    vm.run_all()
    add = hidden[0].children[0]
    with pytest.raises(gc.ValueNotAvailableError, match="Rectify"):
        _ = add.value


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_watched_sum_is_kept_and_unfused(backend):
    g, x, t, params, hidden, cost = _dense([5, 4, 3], (gc.Rectify,), np.float64)
    add = hidden[0].children[0]
    sub = g.subgraph_roots(cost)
    vm = gc.NewTapeMachine(sub, gc.BindDualValues(*params), gc.WithWatchlist(add))
    gc.Let(x, np.ones((2, 5)))
    gc.Let(t, np.eye(3)[[0, 1]])
    vm.run_all()
    np.testing.assert_allclose(hidden[0].value, np.maximum(add.value, 0))
    watched = gc.NewTapeMachine(sub, gc.BindDualValues(*params), gc.WithNaNWatch())
    watched.run_all()
    plain = gc.NewTapeMachine(sub, gc.BindDualValues(*params))
    plain.run_all()
    assert watched.plan.n_steps == plain.plan.n_steps + (2 if backend == "numba" else 0)


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
@pytest.mark.parametrize("rows", [3, 3000])  # copied, then written in place
def test_run_all_into_a_fused_output(backend, rows):
    rng = np.random.default_rng(0)
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 4), gc.WithName("x"))
    w = gc.NewMatrix(g, gc.Float64, gc.WithName("w"), gc.WithValue(rng.standard_normal((4, 50))))
    b = gc.NewMatrix(g, gc.Float64, gc.WithName("b"), gc.WithValue(rng.standard_normal((1, 50))))
    h = gc.Sigmoid(gc.Add(gc.Exp(gc.Mul(x, w)), b))  # the sum reads an op result: redirectable
    vm = gc.NewTapeMachine(g)
    xs = rng.standard_normal((rows, 4))
    gc.Let(x, xs)
    res = np.empty((rows, 50))
    vm.run_all(into={h: res})
    want = 1 / (1 + np.exp(-(np.exp(xs @ w.value) + b.value)))
    np.testing.assert_allclose(res, want, rtol=1e-6)
    res2 = np.empty((rows, 50))
    gc.Let(x, -xs)
    vm.run_all(into={h: res2})
    np.testing.assert_allclose(res2, 1 / (1 + np.exp(-(np.exp(-xs @ w.value) + b.value))),
                               rtol=1e-6)
    np.testing.assert_allclose(res, want, rtol=1e-6)  # the first result left alone
    vm.run_all()
    np.testing.assert_allclose(h.value, res2, rtol=1e-12)


# numba only: numpy's broadcasting add (fused or not) takes a transient 32 KiB iterator buffer
@pytest.mark.parametrize("backend", BACKENDS[1:], indirect=True)
def test_fused_training_step_allocates_nothing(backend):
    g, x, t, params, hidden, cost = _dense([784, 250, 100, 10], (gc.Rectify,) * 2, np.float32)
    vm = gc.NewTapeMachine(g.subgraph_roots(cost), gc.BindDualValues(*params))
    rng = np.random.default_rng(0)
    X = rng.random((100, 784), dtype=np.float32)
    T = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 100)]

    def step():  # the machine's run (the solvers' numpy passes have tests of their own)
        gc.Let(x, X)
        gc.Let(t, T)
        vm.run_all()

    for _ in range(5):
        step()
    assert fusion.enabled and vm.plan.n_steps == 16
    growth = peak_growth(step, 30)
    assert growth < 100 * 250 * 4 / 4, f"peak traced growth {growth} bytes over 30 steps"


# ----- the kernels: numpy's and the compiled loops agree, strided arrays included ----------------


def _kernel_backends():
    from graphcore.kernels import reference

    out = [reference]
    if gc.accel.available():
        from graphcore.kernels import compiled

        out.append(compiled)
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["contiguous", "strided", "in place"])
def test_dense_layer_kernels_agree_with_numpy(dtype, layout):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((7, 13)).astype(dtype)
    if layout == "strided":
        x = np.repeat(x, 2, axis=1)[:, ::2]
    b = rng.standard_normal(13).astype(dtype).reshape(1, 13)
    g = rng.standard_normal((7, 13)).astype(dtype)
    y = np.maximum(x, 0)
    tol = TOL[dtype]
    for k in _kernel_backends():
        for name, want in (("bias_add", x + b), ("bias_relu", np.maximum(x + b, 0)),
                           ("bias_sigmoid", 1 / (1 + np.exp(-(x + b))))):
            xin = x.copy() if layout == "in place" else x
            out = xin if layout == "in place" else np.empty(x.shape, dtype)
            f, scratch = getattr(k, name), getattr(k, name + "_scratch")
            f(xin, b, out, scratch(xin, b, out))
            np.testing.assert_allclose(out, want, rtol=tol * 10, atol=tol, err_msg=name)
        out, db = np.empty(x.shape, dtype), np.full(13, 0.5, dtype)
        sc = k.relu_grad_bias_scratch(y, g, out, db)
        k.relu_grad_bias(y, g, out, db, True, sc)
        np.testing.assert_array_equal(out, g * (y > 0))
        np.testing.assert_allclose(db, 0.5 + out.sum(0), rtol=tol * 10, atol=tol)
        k.relu_grad_bias(y, g, out, db, False, sc)
        np.testing.assert_allclose(db, out.sum(0), rtol=tol * 10, atol=tol)


def test_relu_kernels_keep_nan():
    x = np.array([[np.nan, -1.0, 2.0]])
    b = np.zeros(3)
    for k in _kernel_backends():
        out = np.empty_like(x)
        k.bias_relu(x, b, out, k.bias_relu_scratch(x, b, out))
        assert np.isnan(out[0, 0]) and out[0, 1:].tolist() == [0.0, 2.0]


def test_big_bias_relu_runs_numpys_passes_with_the_same_result():
    if not gc.accel.available():
        pytest.skip("the compiled kernels need numba")
    from graphcore.kernels.compiled import activations
    from graphcore.kernels.compiled.layout import Ref

    rng = np.random.default_rng(5)
    rows = activations.BIAS_RELU_LOOP_MAX // (4 * 64) + 1  # one row over the limit
    x = rng.standard_normal((rows, 64)).astype(np.float32)
    b = rng.standard_normal(64).astype(np.float32)
    small = x[: rows // 2]
    assert type(activations.bias_relu_scratch(small, b, small.copy())) is not Ref
    out = np.empty_like(x)
    scratch = activations.bias_relu_scratch(x, b, out)
    assert type(scratch) is Ref
    activations.bias_relu(x, b, out, scratch)
    np.testing.assert_allclose(out, np.maximum(x + b, 0), rtol=1e-6, atol=1e-6)


def test_relu_of_a_big_array_compares_with_a_scalar_zero():
    from graphcore.kernels import reference
    from graphcore.kernels.reference.activations import RELU_SCALAR_ABOVE

    rows = RELU_SCALAR_ABOVE // (8 * 16) + 1  # one row over the limit
    x = np.random.default_rng(6).standard_normal((rows, 16))
    x[0, 0] = np.nan
    small = x[:2]
    assert reference.relu_scratch(small, small).shape == small.shape
    for k in _kernel_backends():
        out = np.empty_like(x)
        scratch = k.relu_scratch(x, out)
        assert scratch.shape == ()
        k.relu(x, out, scratch)
        assert np.isnan(out[0, 0])
        np.testing.assert_array_equal(out[1:], np.maximum(x[1:], 0))
        b = np.full(16, 0.5)
        k.bias_relu(x, b, out, k.bias_relu_scratch(x, b, out))
        assert np.isnan(out[0, 0])
        np.testing.assert_allclose(out[1:], np.maximum(x[1:] + b, 0), rtol=1e-12)
