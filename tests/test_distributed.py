"""Data-parallel training, in one process: graphcore's collectives over a communicator of
one process (no MPI needed), golgi's distributed fit, evaluate and predict equal to the
plain ones, the agreement before training, and mpi4py never imported unless asked for.
The runs on two ranks under mpiexec are in test_distributed_mpi.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import golgi as G
import graphcore as gc
from golgi.distributed import launched_by_mpi
from golgi.distributed.strategy import FitSession, MPIDataParallel, RankFailedError

ROOT = Path(__file__).resolve().parent.parent


class P:
    """A ValueGrad of its own (not a graph node)."""

    def __init__(self, value, grad):
        self.value, self.grad = np.asarray(value), np.asarray(grad)


def local():
    return MPIDataParallel(gc.Communicator.local())


# ----- graphcore: the collectives over one process ----------------------------------------------


def test_a_local_communicator_leaves_buffers_as_they_are():
    c = gc.Communicator.local()
    buf = np.arange(4.0)
    c.allreduce_sum(buf)
    c.iallreduce_sum(buf).Wait()
    c.broadcast(buf)
    c.barrier()
    out = np.empty((4,))
    c.allgather_rows(buf, out, [4])
    assert buf.tolist() == out.tolist() == [0.0, 1.0, 2.0, 3.0]
    assert (c.rank, c.size, c.is_local, repr(c)) == (0, 1, True, "Communicator(local)")
    with pytest.raises(ValueError, match="do not fit 1 ranks"):
        c.allgather_rows(buf, np.empty(3), [4])


def _machine_grads():
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
    w = gc.NewMatrix(g, gc.Float64, gc.WithShape(3, 2), gc.WithName("w"), gc.WithInit(gc.Ones()))
    b = gc.NewMatrix(g, gc.Float64, gc.WithShape(1, 2), gc.WithName("b"), gc.WithInit(gc.Ones()))
    cost = gc.Mean(gc.Square(gc.BroadcastAdd(gc.Mul(x, w), b, None, [0])))
    gc.Grad(cost, w, b)
    vm = gc.NewTapeMachine(g, gc.BindDualValues(w, b))
    gc.Let(x, np.arange(6.0).reshape(2, 3))
    vm.run_all()
    return vm, w, b


def test_allreduce_reduces_the_machines_flat_gradient_array_in_place():
    _, w, b = _machine_grads()
    before = w.grad.copy(), b.grad.copy()
    ar = gc.AllreduceGrads([w, b], gc.Communicator.local())
    assert ar.packed == [False] and ar.messages == 1 and ar.nbytes == 8 * 8
    assert ar._groups[0].buf.base is w.grad.base  # the machine's own array, no copy
    ar(scale=0.5)
    assert np.array_equal(w.grad, before[0] * 0.5) and np.array_equal(b.grad, before[1] * 0.5)
    ar()  # scale None: unchanged
    assert np.array_equal(w.grad, before[0] * 0.5)
    assert "8 parameters" not in repr(ar) and "64 bytes in 1 message" in repr(ar)


def test_allreduce_packs_gradients_of_its_own_one_buffer_per_dtype():
    a = P(np.zeros(3), [1.0, 2.0, 3.0])
    b = P(np.zeros((2, 2), np.float32), np.ones((2, 2), np.float32))
    c = P(np.zeros(1), [4.0])
    ar = gc.AllreduceGrads([a, b, c], gc.Communicator.local(), average=True)
    assert ar.packed == [True, True] and ar.messages == 2 and ar.nbytes == 4 * 8 + 4 * 4
    ar(scale=2.0)
    assert a.grad.tolist() == [2.0, 4.0, 6.0] and c.grad.tolist() == [8.0]
    assert b.grad.dtype == np.float32 and b.grad.tolist() == [[2.0, 2.0], [2.0, 2.0]]
    ar.start()
    with pytest.raises(RuntimeError, match="not wait"):
        ar.start()
    ar.wait()
    with pytest.raises(RuntimeError, match="nothing started"):
        ar.wait()


def test_allreduce_follows_gradients_a_machine_rebinds():
    a = P(np.zeros(2), [1.0, 1.0])
    ar = gc.AllreduceGrads([a], gc.Communicator.local())
    a.grad = np.array([3.0, 5.0])
    ar(scale=2.0)
    assert a.grad.tolist() == [6.0, 10.0]


def test_allreduce_refuses_what_it_cannot_reduce():
    with pytest.raises(ValueError, match="no parameters"):
        gc.AllreduceGrads([], gc.Communicator.local())
    with pytest.raises(TypeError, match=r"AllreduceGrads: parameter 0 \(ndarray\) has no .value"):
        gc.AllreduceGrads([np.zeros(2)], gc.Communicator.local())


def test_broadcast_values_takes_nodes_and_arrays():
    _, w, b = _machine_grads()
    arr = np.arange(3, dtype=np.int64)
    gc.BroadcastValues([w, b, arr], gc.Communicator.local())
    assert w.value.tolist() == [[1.0, 1.0]] * 3 and arr.tolist() == [0, 1, 2]
    frozen = np.zeros(2)
    frozen.flags.writeable = False
    with pytest.raises(TypeError, match="writeable"):
        gc.BroadcastValues([frozen], gc.Communicator.local())


def test_without_mpi4py_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install 'golgi-dl\[mpi\]'"):
        gc.Communicator()
    with pytest.raises(ImportError, match=r"golgi-dl\[mpi\]"):
        G.MPIDataParallel()


def test_a_communicator_needs_an_mpi4py_communicator():
    pytest.importorskip("mpi4py")
    with pytest.raises(TypeError, match="mpi4py communicator"):
        gc.Communicator("world")


# ----- golgi: fit, evaluate and predict on a communicator of one process -------------------------


def _data(n=61, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    Y = np.eye(3)[rng.integers(0, 3, n)]
    return X, Y


def _mlp():
    gc.SetSeed(7)
    return G.models.MLP(sizes=(6, 8, 3), dtype=gc.Float64)


def _fit(net, distributed=None, **kw):
    X, Y = _data()
    opts = dict(loss=G.CrossEntropy, solver=gc.NewAdamSolver(gc.WithLearnRate(0.01)),
                metrics=["accuracy", "auc"], epochs=3, batch_size=8, seed=3, progress=False,
                validation_data=_data(20, 2))
    opts.update(kw)
    return G.fit(net, X, Y, distributed=distributed, **opts)


def test_a_distributed_fit_on_one_rank_is_the_plain_fit_bit_for_bit():
    plain, dist = _mlp(), _mlp()
    h1 = _fit(plain)
    h2 = _fit(dist, distributed=local())
    assert h1.history == h2.history and h1.keys() == ["loss", "accuracy", "auc", "val_loss",
                                                      "val_accuracy", "val_auc"]
    for a, b in zip(plain.model(), dist.model()):
        assert np.array_equal(a.value, b.value), a.name
    X, Y = _data(30, 4)
    assert G.evaluate(dist, X, Y, distributed=local()) == G.evaluate(plain, X, Y)
    assert np.array_equal(G.predict(dist, X, distributed=local(), batch_size=7),
                          G.predict(plain, X))


def test_the_trainer_takes_a_strategy_for_all_its_calls():
    dp = local()
    X, Y = _data()
    t = G.Trainer(_mlp(), G.CrossEntropy, "adam", metrics=["accuracy"], distributed=dp)
    h = t.fit(X, Y, epochs=2, batch_size=16, seed=0, progress=False, sample_weight=np.ones(61))
    assert len(h) == 2 and t.distributed is dp
    ev = t.evaluate(X, Y, batch_size=10)
    assert ev == t.evaluate(X, Y, batch_size=10, distributed=None)
    assert t.predict(X[:5]).shape == (5, 3)


def test_stopping_mid_epoch_trains_the_same_batches_as_one_process():
    class StopAt(G.Callback):
        def on_batch_end(self, batch, logs):
            if batch == 2:
                self.trainer.stop_training = True

    plain, dist = _mlp(), _mlp()
    h1 = _fit(plain, callbacks=[StopAt()], validation_data=None)
    h2 = _fit(dist, distributed=local(), callbacks=[StopAt()], validation_data=None)
    assert len(h1) == len(h2) == 1 and h1.history == h2.history and h2.stopped_early
    for a, b in zip(plain.model(), dist.model()):
        assert np.array_equal(a.value, b.value)


def test_a_non_finite_loss_stops_a_distributed_fit_as_a_plain_one():
    X, Y = _data()
    net = _mlp()
    with pytest.raises(G.NonFiniteLossError, match="lower the learn rate"):
        G.fit(net, X * 1e300, Y, loss=G.CrossEntropy, solver="sgd", epochs=2, batch_size=8,
              progress=False, distributed=local(), check_data=False)


def test_a_models_with_several_outputs_and_batch_norm_trains_distributed():
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 6), gc.WithName("x"))
    h = G.ConsBatchNorm(x, G.WithName("bn")).fwd(x)
    a = G.ConsFC(h, G.WithShape(3), G.WithName("a")).fwd(h)
    b = G.ConsFC(h, G.WithShape(1), G.WithName("b")).fwd(h)
    model = G.Model(inputs={"x": x}, outputs={"a": a, "b": b})
    X, Y = _data()
    ys = {"a": Y, "b": X[:, :1]}
    hist = G.fit(model, {"x": X}, ys, loss={"a": G.CrossEntropy, "b": G.MSE}, solver="adam",
                 epochs=2, batch_size=16, seed=0, progress=False, distributed=local())
    assert set(hist.keys()) == {"loss", "a_loss", "b_loss"}
    out = G.predict(model, {"x": X[:4]}, distributed=local())
    assert out["a"].shape == (4, 3) and out["b"].shape == (4, 1)


def test_distributed_refuses_a_custom_step_and_what_is_not_a_strategy():
    X, Y = _data()
    with pytest.raises(TypeError, match="AllreduceGrads"):
        G.fit(_mlp(), X, Y, train_step=lambda b: {}, distributed=local(), progress=False)
    with pytest.raises(TypeError, match="expected golgi.MPIDataParallel"):
        G.fit(_mlp(), X, Y, loss="mse", solver="sgd", distributed="mpi", progress=False)
    with pytest.raises(TypeError, match="expected golgi.MPIDataParallel"):
        G.predict(_mlp(), X, distributed=True)


def test_rank_0_alone_runs_the_callbacks_that_print_or_write():
    class NotRoot:
        is_root = False

    keep = G.EarlyStopping("loss")
    cbs = [G.ModelCheckpoint("x.npz"), G.CSVLogger("x.csv"), G.EpochLogger(), keep]
    assert FitSession(NotRoot(), None).callbacks(cbs) == [keep]
    assert FitSession(local(), None).callbacks(cbs) == cbs


# ----- the agreement before training, a second rank played by a stub --------------------


class TwoRanks(gc.Communicator):
    """Rank 0 of two; the other rank's contributions are canned."""

    def __init__(self, other):
        self.comm, self._mpi, self.rank, self.size = None, None, 0, 2
        self.other = other
        self.aborted = None

    def allgather(self, obj):
        return [obj, self.other]

    def allreduce_sum(self, buf):
        buf *= 2

    def abort(self, code=1):
        self.aborted = code
        raise SystemExit(code)


def test_a_block_fails_on_every_rank_when_one_rank_fails():
    dp = MPIDataParallel(TwoRanks((None, {"samples": 10}, None)), abort_on_error=False)
    with dp.together("loading") as agree:
        agree.same("samples", 10)
    dp = MPIDataParallel(TwoRanks(("OSError: disk full", {}, None)), abort_on_error=False)
    with pytest.raises(RankFailedError, match="loading: rank 1 of 2 failed: OSError: disk full"):
        with dp.together("loading"):
            pass
    with pytest.raises(KeyError):  # its own error, once every rank knows
        with dp.together("loading"):
            raise KeyError("mine")
    dp = MPIDataParallel(TwoRanks((None, {"samples": 9}, None)), abort_on_error=False)
    with pytest.raises(ValueError, match="disagree on samples: rank 0 has 10, rank 1 has 9"):
        with dp.together("predict") as agree:
            agree.same("samples", 10)


def test_a_rank_failing_in_collective_work_ends_the_job(capsys):
    comm = TwoRanks(None)
    dp = MPIDataParallel(comm, abort_on_error=False)
    with pytest.raises(SystemExit):
        with dp.guard("predict"):
            raise RuntimeError("boom")
    err = capsys.readouterr().err
    assert comm.aborted == 1 and "RuntimeError: boom" in err
    assert "golgi: rank 0 of 2 failed in predict: RuntimeError: boom; ending all 2 ranks" in err


def test_rows_and_counts_split_evenly():
    class Rank:
        def __init__(self, r):
            self.comm = type("C", (), {"rank": r, "size": 3})()

    blocks = [MPIDataParallel.rows(Rank(r), 10) for r in range(3)]
    assert blocks == [(0, 3), (3, 6), (6, 10)]
    assert MPIDataParallel.counts(Rank(0), 10) == [3, 3, 4]
    assert MPIDataParallel.counts(Rank(0), 2) == [0, 1, 1]


# ----- launching ----------------------------------------------------------------------------------


def test_launched_by_mpi_reads_the_launchers_variables():
    assert launched_by_mpi({"PMI_SIZE": "3"}) == 3
    assert launched_by_mpi({"OMPI_COMM_WORLD_SIZE": "2"}) == 2
    assert launched_by_mpi({"PMI_SIZE": "x"}) == 0 and launched_by_mpi({}) == 0


def test_the_cli_under_a_launcher_without_mpi4py_says_what_to_do(monkeypatch, capsys):
    from golgi.cli import main

    monkeypatch.setenv("PMI_SIZE", "2")
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    assert main(["train", "mlp", "--epochs", "1", "--data-dir", "/nonexistent"]) == 2
    err = capsys.readouterr().err
    assert "golgi-dl[mpi]" in err and "--no-distributed to train 2 independent copies" in err


def test_single_process_code_never_imports_mpi4py():
    script = """
import sys, numpy as np, golgi as G, graphcore as gc
from golgi.cli import main
net = G.ComposeSeq(G.L(G.ConsFC(G.WithShape(1))))
X = np.ones((8, 2)); Y = np.zeros((8, 1))
G.fit(net, X, Y, loss="mse", solver="sgd", progress=False)
G.predict(net, X); G.evaluate(net, X, Y)
main(["train", "mlp", "--epochs", "0", "--no-distributed"])
assert "mpi4py" not in sys.modules, sorted(m for m in sys.modules if "mpi" in m)
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
    env.pop("PMI_SIZE", None)
    r = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
