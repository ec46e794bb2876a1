"""Correctness of the benchmark baselines (no timings): `.venv/bin/pytest bench/test_bench.py`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench import run_baselines as rb
from bench.baselines import NumpyRunner, TorchRunner, runner_spec, time_gemms, torch_available
from bench.common import (
    ARCHS,
    CONV_ARCHS,
    EPS,
    LEARN_RATE,
    RHO,
    AgreementError,
    Arch,
    ConvArch,
    Runner,
    RunResult,
    agreement_run,
    check_agreement,
    check_arch,
    check_samples,
    epoch_order,
    gemm_operands,
    gemm_shapes,
    init_weights,
    load_runner,
    time_epochs,
)
from bench.jax_runner import jax_available

TINY = {
    "mlp": Arch("tiny_mlp", (6, 5, 4, 3), "softmax_ce"),
    "ae": Arch("tiny_ae", (6, 5, 2, 5, 6), "sigmoid_bce"),
}


def _data(arch: Arch, n: int, dtype: type, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.random((n, arch.sizes[0])).astype(dtype)
    if arch.autoencoder:
        return x, x
    y = np.zeros((n, arch.sizes[-1]), dtype)
    y[np.arange(n), rng.integers(0, arch.sizes[-1], n)] = 1
    return x, y


def _reference_loss(arch: Arch, weights: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> float:
    a = x
    for i in range(arch.n_layers):
        z = a @ weights[2 * i] + weights[2 * i + 1]
        a = np.maximum(z, 0) if i < arch.n_layers - 1 else z
    if arch.head == "softmax_ce":
        logp = a - a.max(1, keepdims=True)
        logp -= np.log(np.exp(logp).sum(1, keepdims=True))
        return float(-np.mean(np.sum(y * logp, 1)))
    return float(np.mean(np.logaddexp(0, a) - y * a))


@pytest.mark.parametrize("kind", ["mlp", "ae"])
def test_numpy_gradients_match_finite_differences(kind: str) -> None:
    arch = TINY[kind]
    weights = init_weights(arch, np.float64, seed=3)
    weights = [
        w + 0.1 * np.random.default_rng(i).standard_normal(w.shape) for i, w in enumerate(weights)
    ]  # nonzero biases, so their gradients are exercised too
    x, y = _data(arch, 7, np.float64)
    runner = NumpyRunner(arch, np.float64, weights)
    loss, grads = runner.loss_and_grads(x, y)
    assert loss == pytest.approx(_reference_loss(arch, weights, x, y), rel=1e-12)
    h = 1e-6
    for k, w in enumerate(weights):
        for idx in [(0, 0), tuple(np.array(w.shape) - 1)]:
            plus = [v.copy() for v in weights]
            minus = [v.copy() for v in weights]
            plus[k][idx] += h
            minus[k][idx] -= h
            fd = (_reference_loss(arch, plus, x, y) - _reference_loss(arch, minus, x, y)) / (2 * h)
            assert grads[k][idx] == pytest.approx(fd, rel=1e-5, abs=1e-9), (k, idx)


def test_sigmoid_head_is_stable_for_huge_logits() -> None:
    arch = Arch("one", (1, 3), "sigmoid_bce")
    w = [np.array([[200.0, -200.0, 0.0]], np.float32), np.zeros((1, 3), np.float32)]
    runner = NumpyRunner(arch, np.float32, w)
    x = np.ones((1, 1), np.float32)
    t = np.array([[1.0, 0.0, 0.5]], np.float32)
    loss, grads = runner.loss_and_grads(x, t)
    assert loss == pytest.approx(np.log(2) / 3, rel=1e-6)
    assert np.isfinite(grads[0]).all()
    np.testing.assert_allclose(runner.predict(x, 1), [[1.0, 0.0, 0.5]])


def test_one_step_is_gorgonia_rmsprop() -> None:
    arch = TINY["mlp"]
    w0 = init_weights(arch, np.float64, seed=5)
    x, y = _data(arch, 4, np.float64)
    probe = NumpyRunner(arch, np.float64, w0)
    _, grads = probe.loss_and_grads(x, y)
    runner = NumpyRunner(arch, np.float64, w0)
    runner.train_epoch(x, y, np.arange(4), 4)
    for w, g, new in zip(w0, grads, runner.weights(), strict=True):
        c = (1 - RHO) * g * g
        np.testing.assert_allclose(new, w - LEARN_RATE * g / np.sqrt(c + EPS), rtol=1e-12)


@pytest.mark.parametrize("kind", ["mlp", "ae"])
def test_predict_outputs(kind: str) -> None:
    arch = TINY[kind]
    runner = NumpyRunner(arch, np.float64, init_weights(arch, np.float64))
    x, _ = _data(arch, 7, np.float64)
    whole = runner.predict(x, 7)
    np.testing.assert_allclose(runner.predict(x, 3), whole, rtol=1e-12)  # ragged last chunk
    if kind == "mlp":
        np.testing.assert_allclose(whole.sum(1), 1.0, rtol=1e-12)
    assert ((whole > 0) & (whole < 1)).all()


def _result(impl: str, loss: float, weights: list[np.ndarray], dtype: str) -> RunResult:
    return RunResult(impl, "mlp", dtype, 100, 10, 0, 100, loss, weights)


def test_check_agreement_passes_and_fails() -> None:
    w = init_weights(TINY["mlp"], np.float32)
    ok = check_agreement([_result("a", 1.0, w, "float32"), _result("b", 1.00001, w, "float32")])
    assert len(ok) == 1 and ok[0].endswith("OK")
    with pytest.raises(AgreementError, match="mlp float32.*b vs a.*loss"):
        check_agreement([_result("a", 1.0, w, "float32"), _result("b", 1.01, w, "float32")])
    bad = [v * 1.01 for v in w]
    with pytest.raises(AgreementError, match="weights rel"):
        check_agreement([_result("a", 1.0, w, "float32"), _result("b", 1.0, bad, "float32")])
    with pytest.raises(AgreementError, match="float64"):  # 1e-7 is fine in float32, not float64
        check_agreement([_result("a", 1.0, w, "float64"), _result("b", 1 + 1e-7, w, "float64")])


@pytest.mark.skipif(not torch_available(), reason="torch not installed")
@pytest.mark.parametrize("kind", ["mlp", "ae"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_torch_agrees_with_numpy(kind: str, dtype: str) -> None:
    arch = TINY[kind]
    dt = np.dtype(dtype)
    x, y = _data(arch, 60, dt)
    results = []
    for cls in (NumpyRunner, TorchRunner):
        runner = cls(arch, dt, init_weights(arch, dt, seed=2))
        assert isinstance(runner, Runner)
        t = time_epochs(runner, x, y, epochs=1, warmup=1, batch=10, seed=4)
        results.append(
            RunResult(runner.name, kind, dtype, 60, 10, 4, 60, t.first_loss, t.first_weights)
        )
        np.testing.assert_allclose(
            runner.predict(x, 25),
            NumpyRunner(arch, dt, runner.weights()).predict(x, 60),
            rtol=1e-4 if dt == np.float32 else 1e-10,
        )
    assert check_agreement(results)[0].endswith("OK")


def test_init_order_and_shapes() -> None:
    arch = ARCHS["ae"]
    w64, w32 = init_weights(arch, np.float64, 9), init_weights(arch, np.float32, 9)
    assert [w.shape for w in w32][:4] == [(784, 250), (1, 250), (250, 50), (1, 50)]
    assert all(
        a.dtype == np.float32 and (a == b.astype(np.float32)).all()
        for a, b in zip(w32, w64, strict=True)
    )
    assert float(w64[0].std()) == pytest.approx(np.sqrt(2 / (784 + 250)), rel=0.01)
    assert not any(w64[1::2][i].any() for i in range(4))
    o = epoch_order(50, 2, seed=1)
    assert (o == epoch_order(50, 2, seed=1)).all() and sorted(o) == list(range(50))
    assert not (o == epoch_order(50, 3, seed=1)).all()
    roles = [r for r, _ in gemm_shapes(arch, 100)]
    assert roles.count("fwd") == 4 and roles.count("dW") == 4 and roles.count("dX") == 3
    assert time_gemms(TINY["mlp"], np.float32, 20, 10, repeats=1) >= 0


def test_load_runner_errors() -> None:
    assert load_runner("bench.baselines:NumpyRunner") is NumpyRunner
    with pytest.raises(ValueError, match="module:Factory"):
        load_runner("bench.baselines.NumpyRunner")
    with pytest.raises(ImportError, match="no_such"):
        load_runner("bench.baselines:no_such")


def test_bad_inputs_are_named() -> None:
    arch = TINY["mlp"]
    with pytest.raises(ValueError, match="NumpyRunner.*shapes"):
        NumpyRunner(arch, np.float32, init_weights(ARCHS["mlp"], np.float32))
    runner = NumpyRunner(arch, np.float32, init_weights(arch, np.float32))
    x, y = _data(arch, 10, np.float64)
    with pytest.raises(TypeError, match="float64.*float32"):
        runner.train_epoch(x, y, np.arange(10), 5)


class _EpsOutsideSqrt(NumpyRunner):
    """torch.optim.RMSprop's formula: eps added after the square root. Must be caught."""

    name = "eps_outside"

    def _rmsprop(self) -> None:
        g, c = self._gflat, self._cache
        c *= RHO
        c += (1 - RHO) * g * g
        self._flat -= LEARN_RATE * g / (np.sqrt(c) + EPS)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_agreement_run_catches_a_wrong_solver(dtype: str) -> None:
    arch = TINY["mlp"]
    dt = np.dtype(dtype)
    x, y = _data(arch, 200, dt)
    k = check_samples(dtype, 200, 10)
    assert k == 200  # float64: the whole epoch; float32: at most CHECK_SAMPLES (1000)
    assert check_samples("float32", 60_000, 100) == 1000
    runs = []
    for factory in (NumpyRunner, NumpyRunner, _EpsOutsideSqrt):
        loss, w = agreement_run(factory, arch, dt, x, y, k, batch=10, seed=1)
        runs.append(RunResult(factory.name, "tiny", dtype, 200, 10, 1, k, loss, w))
    assert check_agreement(runs[:2])[0].endswith("OK")
    with pytest.raises(AgreementError, match="eps_outside vs numpy"):
        check_agreement([runs[0], runs[2]])


# ---------------------------------------------------------------------------------------------
# The interleaved harness: serve protocol, turn order, paired ratios


# A runner that prints to stdout from Python and from the file descriptor, as libraries sometimes
# do; it lives in a module of its own so the worker need not import this file (and torch).
_CHATTY = """
import os
from bench.baselines import NumpyRunner

class ChattyRunner(NumpyRunner):
    name = "chatty"

    def train_epoch(self, x, y, order, batch):
        print('{"ok": false, "stray": "python print"}')
        os.write(1, b"stray bytes on fd 1\\n")
        return super().train_epoch(x, y, order, batch)
"""


def test_paired_ratios_per_round() -> None:
    times = {
        "graphcore": [[2.0], [1.2, 1.0, 5.0], [3.0]],  # round 1: median 1.2
        "numpy": [[1.0], [0.6, 0.6, 0.6], [0.0]],  # round 2 took no time: skipped
        "gemm": [[0.5], [0.5]],  # ran two rounds only
    }
    r = rb.paired_ratios(times, [("graphcore", "numpy"), ("graphcore", "gemm"), ("x", "numpy")])
    assert r == {("graphcore", "numpy"): [2.0, 2.0], ("graphcore", "gemm"): [4.0, 2.4]}
    # Drift that slows both alike cancels in the per-round ratio, not in the ratio of medians.
    drift = {"a": [[1.0], [2.0], [4.0]], "b": [[2.0], [4.0], [1.0]]}
    assert rb.paired_ratios(drift, [("a", "b")])[("a", "b")] == [0.5, 0.5, 4.0]
    line = rb.format_ratio_lines("ae 64", {("golgi-fit", "graphcore"): [0.5, 0.5, 4.0]})[0]
    m = re.match(rb.RATIO_LINE, line)
    assert m is not None and m.groups() == (
        "ae",
        "64",
        "golgi-fit",
        "graphcore",
        "0.500",
        "0.500",
        "4.000",
    )


def test_round_order_varies_place_and_predecessor() -> None:
    impls = ["gemm", "numpy", "torch", "graphcore"]
    orders = [rb.round_order(impls, r) for r in range(2 * len(impls))]
    assert all(sorted(o) == sorted(impls) for o in orders)
    for impl in impls:  # every place once per rotation
        assert sorted(o.index(impl) for o in orders) == sorted(2 * list(range(len(impls))))
        before = {o[o.index(impl) - 1] for o in orders if o.index(impl) > 0}
        assert len(before) >= 2
    assert rb.round_order(["a", "b"], 1) == ["b", "a"]


def _serve(tmp_path: Path) -> subprocess.Popen:
    (tmp_path / "chatty_runner.py").write_text(_CHATTY)
    env = rb._worker_env(False)
    env["PYTHONPATH"] = str(tmp_path) + os.pathsep + env["PYTHONPATH"]
    return subprocess.Popen(
        [sys.executable, "-m", "bench.run_baselines", "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )


def test_serve_protocol(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    y = np.eye(10)[rng.integers(0, 10, 300)]
    data = tmp_path / "d.npz"
    np.savez(data, x=rng.random((300, 784)), y=y, xt=rng.random((50, 784)), yt=y[:50])
    cmds = [
        {"cmd": "epoch", "e": 0},  # before setup: an error reply, the worker lives on
        {
            "cmd": "setup",
            "spec": "chatty_runner:ChattyRunner",
            "impl": "chatty",
            "arch": "mlp",
            "dtype": "float64",
            "n": 300,
            "batch": 100,
            "seed": 3,
            "data": str(data),
            "out": str(tmp_path / "w.npz"),
        },
        {"cmd": "epoch", "e": 0},
        {"cmd": "epoch", "e": 2},  # out of order
        {"cmd": "epoch", "e": 1},
        {"cmd": "infer"},
        {"cmd": "finish"},
        {"cmd": "quit"},
    ]
    proc = _serve(tmp_path)
    out, _ = proc.communicate("".join(json.dumps(c) + "\n" for c in cmds), timeout=60)
    assert proc.returncode == 0
    lines = out.splitlines()
    assert len(lines) == len(cmds) and all(s.startswith(rb.REPLY) for s in lines)
    r = [json.loads(s[len(rb.REPLY) :]) for s in lines]
    assert not r[0]["ok"] and "before 'setup'" in r[0]["error"]
    assert r[1]["ok"] and r[1]["info"]["impl"] == "chatty"
    assert not r[3]["ok"] and "epoch 2 requested, expected 1" in r[3]["error"]
    assert r[2]["time"] > 0 and r[4]["loss"] < r[2]["loss"]
    assert set(r[5]["infer"]) == {"1", "100", "10000"}
    fin = r[6]
    assert fin["check_n"] == 300 and fin["losses"] == [r[2]["loss"], r[4]["loss"]]
    assert fin["check_loss"] == r[2]["loss"] and fin["mem"]["train_peak"] >= 0
    # float64 checks the whole of epoch 0: the saved weights are those after epoch 0.
    arch = ARCHS["mlp"]
    ref = NumpyRunner(arch, np.float64, init_weights(arch, np.float64, 3))
    with np.load(data) as z:
        ref.train_epoch(z["x"], z["y"], epoch_order(300, 0, 3), 100)
    with np.load(tmp_path / "w.npz") as z:
        np.testing.assert_allclose(z["arr_0"], ref.weights()[0], rtol=1e-12)
    assert r[7] == {"ok": True}


def test_interleaved_run_reports_paired_ratios(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bench import run

    (tmp_path / "bench").mkdir()
    # One BLAS thread per worker: no timings are checked, and on a busy 2-core machine two
    # spinning OpenBLAS threads per worker can make this test crawl.
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    monkeypatch.setattr(rb, "SPIN_PAUSE_S", 0.0)
    monkeypatch.setattr(run, "ROOT", tmp_path)  # RESULTS.md goes here, not into the tree
    argv = "--n 300 --arch mlp --dtype float32 --impl gemm,numpy,graphcore --rounds 2 --epochs 1"
    assert run.main(argv.split()) == 0
    out = (tmp_path / "bench" / "RESULTS.md").read_text()  # run.py's Tee skips capsys
    paired = run._paired(out)
    assert set(paired) >= {("mlp", "32", "graphcore", "numpy"), ("mlp", "32", "graphcore", "gemm")}
    assert all(lo <= med <= hi for med, lo, hi in paired.values())
    wall = r"^  mlp 32  graphcore/numpy .*per round: \S+ \S+$"  # not the cpu line
    assert len(re.findall(wall, out, re.MULTILINE)) == 1
    assert re.search(r"mlp float32 300/300 samples: graphcore vs numpy: .*OK", out)
    times = run._epoch_times(out)
    assert set(times) == {("mlp", "32", i) for i in ("gemm", "numpy", "graphcore")}
    for line in out.splitlines():
        if line.startswith("mlp 32"):
            assert len(line.split("  ")[-1].split()) == 2  # one timed epoch per round
    med, lo, hi = paired[("mlp", "32", "graphcore", "numpy")]
    assert f"| mlp float32 | {med:.2f} ({lo:.2f}-{hi:.2f}) |" in out


# ---------------------------------------------------------------------------------------------
# JAX, the conv workloads, inference rounds, the report's tables, the step profile


@pytest.mark.skipif(not jax_available(), reason="jax not installed")
@pytest.mark.parametrize("kind", ["mlp", "ae"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_jax_agrees_with_numpy(kind: str, dtype: str) -> None:
    from bench.jax_runner import JaxScanRunner

    arch = TINY[kind]
    dt = np.dtype(dtype)
    x, y = _data(arch, 60, dt)
    results = []
    for cls in (NumpyRunner, JaxScanRunner):
        runner = cls(arch, dt, init_weights(arch, dt, seed=2))
        assert isinstance(runner, Runner)
        t = time_epochs(runner, x, y, epochs=1, warmup=1, batch=10, seed=4)
        results.append(
            RunResult(runner.name, kind, dtype, 60, 10, 4, 60, t.first_loss, t.first_weights)
        )
        assert t.losses[1] < t.losses[0]
        np.testing.assert_allclose(
            runner.predict(x, 25),
            NumpyRunner(arch, dt, runner.weights()).predict(x, 60),
            rtol=1e-4 if dt == np.float32 else 1e-10,
        )
    assert check_agreement(results)[0].endswith("OK")


def test_conv_archs_shapes_and_init() -> None:
    net = CONV_ARCHS["convnet"]
    w = init_weights(net, np.float32, seed=1)
    assert [x.shape for x in w] == net.weight_shapes()
    # GlorotN of a filter: fan_in = in*9, fan_out = out*9
    assert float(w[1].std()) == pytest.approx(np.sqrt(2 / (32 * 9 + 64 * 9)), rel=0.05)
    assert net.conv_layers() == [(1, 32, 28), (32, 64, 14), (64, 128, 7)]
    assert CONV_ARCHS["resnet"].conv_layers()[3] == (16, 32, 14)
    assert check_arch(net).dropout == (0.0,) * 4 and check_arch(ARCHS["mlp"]) is ARCHS["mlp"]
    with pytest.raises(ValueError, match="dropout rates"):
        ConvArch("bad", "convnet", (0.5,))
    with pytest.raises(ValueError, match="kind"):
        ConvArch("bad", "vgg")
    roles = [r for r, _ in gemm_shapes(net, 32)]
    assert roles.count("cfwd") == 3 and roles.count("cdW") == 3 and roles.count("cdX") == 2
    assert roles.count("fwd") == 2 and roles.count("dX") == 2
    rng = np.random.default_rng(0)
    for role, shape in gemm_shapes(net, 2):
        a, b, c = gemm_operands(role, shape, np.float32, rng)
        assert (a @ b).shape == c.shape == (shape[0], shape[2])
    assert check_samples("float32", 2000, 32, max_steps=10) == 320
    assert runner_spec("numpy", net) is None and runner_spec("gemm", net) == "gemm"
    assert runner_spec("graphcore", net) == "bench.conv_runners:GraphcoreConvRunner"
    assert runner_spec("jax", ARCHS["ae"]) == "bench.jax_runner:JaxScanRunner"


@pytest.mark.parametrize("kind", ["convnet", "resnet"])
def test_conv_runners_agree(kind: str) -> None:
    import graphcore as gc
    from bench.conv_runners import (
        GraphcoreConvNumpyRunner,
        GraphcoreConvRunner,
        TorchConvRunner,
    )

    arch = check_arch(CONV_ARCHS[kind])  # without dropout: the runs can agree
    x, y = _data(Arch("img", (784, 10), "softmax_ce"), 8, np.float32)
    factories = [GraphcoreConvRunner, GraphcoreConvNumpyRunner]
    if torch_available():
        factories.insert(0, TorchConvRunner)
    was = gc.accel.enabled()
    results, preds = [], []
    try:
        for f in factories:
            loss, w = agreement_run(f, arch, np.float32, x, y, 8, batch=4, seed=3)
            results.append(RunResult(f.name, kind, "float32", 8, 4, 3, 8, loss, w))
            r = f(arch, np.float32, w)
            preds.append(r.predict(x[:3], 2))
    finally:
        gc.accel.set_enabled(was)
    assert all(line.endswith("OK") for line in check_agreement(results))
    for p in preds:
        np.testing.assert_allclose(p, preds[0], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-5)
    # with dropout, training still runs and the loss is finite
    r = GraphcoreConvRunner(CONV_ARCHS[kind], np.float32, init_weights(arch, np.float32))
    assert np.isfinite(r.train_epoch(x, y, np.arange(8), 4))


def test_infer_ratios_and_lines() -> None:
    rows = [
        {"impl": "graphcore", "infer_rounds": [{"1": 3.0, "100": 10.0}, {"1": 4.0, "100": 8.0}]},
        {"impl": "numpy", "infer_rounds": [{"1": 2.0, "100": 10.0}, {"1": 2.0, "100": 0.0}]},
        {"impl": "gemm", "infer_rounds": [{}, {}]},
    ]
    r = rb.infer_ratios(rows, [("graphcore", "numpy"), ("graphcore", "gemm")])
    assert r == {("graphcore", "numpy", "1"): [1.5, 2.0], ("graphcore", "numpy", "100"): [1.0]}
    lines = rb.format_infer_lines("mlp 32", r)
    m = re.match(rb.INFER_LINE, lines[0])
    assert m is not None
    assert m.groups() == ("mlp", "32", "graphcore", "numpy", "1", "1.750", "1.500", "2.000")
    cpu = "  cpu" + rb.format_ratio_lines("resnet 32", {("graphcore", "torch"): [2.0]})[0][1:]
    m = re.match(rb.CPU_LINE, cpu)
    assert m is not None and m.groups()[:4] == ("resnet", "32", "graphcore", "torch")
    assert re.match(rb.RATIO_LINE, cpu) is None and re.match(rb.RATIO_LINE, lines[0]) is None
    assert rb.infer_plan(ARCHS["ae"])[-1] == (10_000, 10_000)


def test_parse_archs_and_thread_env() -> None:
    assert rb.parse_archs("all") == ["mlp", "ae", "convnet", "resnet"]
    assert rb.parse_archs("conv,mlp,conv") == ["convnet", "resnet", "mlp"]
    with pytest.raises(KeyError, match="choose from"):
        rb.parse_archs("vgg")
    env = rb._worker_env(False, threads=1)
    assert env["OPENBLAS_NUM_THREADS"] == env["OMP_NUM_THREADS"] == "1"
    assert "--xla_cpu_multi_thread_eigen=false" in env["XLA_FLAGS"]
    assert rb._worker_env(False, threads=2)["NUMBA_NUM_THREADS"] == "2"
    assert rb.impl_env("numpy", env, "/old") is env
    old = rb.impl_env("graphcore-before", env, "/old")["PYTHONPATH"]
    assert old.startswith("/old" + os.pathsep)
    with pytest.raises(ValueError, match="--before-tree"):
        rb.impl_env("graphcore-np-before", env, None)


_FAKE_OUTPUT = """\
mlp 32 gemm 0.500 0.400 1.00 120000 - - - - - - 1 0.500
mlp 32 numpy 1.000 0.900 2.00 60000 20 100k 200k 5 5 400 1 1.000
mlp 32 graphcore 0.800 0.700 1.60 75000 40 100k 200k 100 120 520 1 0.800
  mlp 32  graphcore/numpy      0.800 [0.700-0.900]  per round: 0.70 0.80 0.90
  mlp 32  graphcore/jax        1.250 [1.100-1.400]  per round: 1.10 1.25 1.40
  convnet 32  graphcore/torch  0.950 [0.900-1.000]  per round: 0.90 1.00
  cpu mlp 32  graphcore/numpy  0.750 [0.700-0.800]  per round: 0.70 0.80
  infer mlp 32  graphcore/numpy @1       0.500 [0.400-0.600]  per round: 0.40 0.60
"""


def test_report_tables() -> None:
    from bench import run

    table = run.issue_table(_FAKE_OUTPUT)
    fast = table.splitlines()[2]
    assert fast.startswith("| golgi with numba")
    assert "| 0.80 (0.70-0.90) |" in fast and "| 1.25 (1.10-1.40) |" in fast
    assert "| 1.30, - |" in fast  # peak RSS: 520 / 400
    assert "0.50, -, - (40 us)" in fast and fast.endswith("| 0.95 (0.90-1.00) | - |")
    targets = run.targets_table(_FAKE_OUTPUT)
    assert "| fast: MLP epoch <= JAX (lax.scan) | 1.25 (1.10-1.40) | - | no, - |" in targets
    assert "| fast: convnet epoch <= PyTorch eager | 0.95 (0.90-1.00) | - | yes, - |" in targets
    assert "| fast: mlp peak RSS <= 1.25x hand numpy | 1.300 | | no |" in targets
    cpu = run.issue_table(_FAKE_OUTPUT, cpu=True).splitlines()[2]
    assert "| 0.75 (0.70-0.80) |" in cpu and "1.25" not in cpu
    assert run._paired(_FAKE_OUTPUT, rb.CPU_LINE) == {
        ("mlp", "32", "graphcore", "numpy"): (0.75, 0.7, 0.8)
    }
    before = "  mlp 32  graphcore/numpy      1.000 [0.900-1.100]  per round: 1.00\n"
    assert run.paired_before(_FAKE_OUTPUT) == ""
    line = "  mlp 32  graphcore/graphcore-before 0.900 [0.800-1.000]  per round: 0.80 1.00\n"
    assert "| mlp float32 | golgi with numba (`fast`) | 0.90 (0.80-1.00) | - |" in (
        run.paired_before(line)
    )
    rows = run.before_after(before, _FAKE_OUTPUT).splitlines()
    assert rows[2] == "| mlp float32 | tape / numpy | 1.00 (0.90-1.10) | 0.80 (0.70-0.90) | 0.80 |"
    # the earlier results file still parses
    assert len(run._paired(run.BEFORE.read_text())) >= 20


def test_rerender_keeps_the_recorded_output(tmp_path: Path) -> None:
    from bench import run

    text = run.render(_FAKE_OUTPUT, "2026-12-03 10:00 UTC", 42, "bench/run.py --rounds 3")
    (tmp_path / "R.md").write_text(text)
    again = run.rerender(tmp_path / "R.md")
    assert again == text and "(2026-12-03 10:00 UTC,\n42 s)" in again
    (tmp_path / "bad.md").write_text("# something else\n")
    with pytest.raises(ValueError, match="not a RESULTS.md"):
        run.rerender(tmp_path / "bad.md")


def test_profile_names_every_step() -> None:
    from bench import profile_steps as ps

    x, y = _data(ARCHS["mlp"], 200, np.float32)
    p = ps.profile("mlp", False, 3, x, y)
    assert p["n_steps"] == len(p["names"]) == len(p["kernel"])
    cats = [ps.category(name) for name in p["names"]]
    assert cats.count("GEMM") == 8 and cats.count("bias grad (GEMV)") == 3
    assert p["cats"]["loss"] > 0 and p["run_all"] > 0 and p["solver"] > 0
    assert all(c in ps.CATEGORIES for c in (ps.category(n) for n in p["names"]))
    assert "| mlp | numpy |" in ps.report([p], {"gemms": {}, "torch": {}, "alone": {}})
