"""Data-parallel training on two ranks: each test runs a script under ``mpiexec -n 2`` in a
subprocess, bounded by a timeout (a hung job fails the test instead of hanging the suite).

Skipped without mpi4py and an MPI library (``pip install 'golgi-dl[mpi]'``); ``mpiexec`` is
looked up next to the running Python, then on PATH.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import golgi as G
from tests.datasets_helpers import synthetic, write_dataset

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 240  # seconds per job: generous for a loaded two-core machine; a hang fails


def _mpiexec() -> str | None:
    here = Path(sys.executable).parent / "mpiexec"
    return str(here) if here.exists() else shutil.which("mpiexec")


@pytest.fixture(scope="module")
def mpiexec():
    exe = _mpiexec()
    if exe is None:
        pytest.skip("no mpiexec (pip install 'golgi-dl[mpi]')")
    probe = subprocess.run(
        [sys.executable, "-c", "from mpi4py import MPI"], capture_output=True, timeout=60
    )
    if probe.returncode != 0:
        pytest.skip("mpi4py with an MPI library is not installed (pip install 'golgi-dl[mpi]')")
    return exe


def run_ranks(mpiexec, args, n=2, timeout=TIMEOUT):
    """``mpiexec -n n <args>`` with this Python and this checkout; (code, stdout, stderr)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "OPENBLAS_NUM_THREADS": "1",  # two ranks on two cores: one BLAS thread each
    }
    for k in ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE"):
        env.pop(k, None)
    proc = subprocess.Popen(
        [mpiexec, "-n", str(n), sys.executable, *args], env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # mpiexec and the ranks it started
        out, err = proc.communicate()
        pytest.fail(f"mpiexec did not finish within {timeout} s:\n{out}\n{err}")
    return proc.returncode, out, err


def script(tmp_path, text, name="job.py"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


# The data, model and fit options of the equality test, for the ranks and for one process.
COMMON = """
import numpy as np, graphcore as gc, golgi as G

def data(n, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 20))
    return X, np.eye(5)[rng.integers(0, 5, n)]

def model():
    gc.SetSeed(3)
    return G.models.MLP(sizes=(20, 16, 8, 5), dtype=gc.Float64)

def options(**kw):
    opts = dict(loss=G.CrossEntropy, solver=gc.NewAdamSolver(gc.WithLearnRate(0.01)),
                metrics=["accuracy", "auc"], epochs=2, batch_size=16, seed=5, progress=False,
                validation_data=data(23, 4))
    opts.update(kw)
    return opts
"""


def _reference():
    space: dict = {}
    exec(COMMON, space)
    return space


def test_two_ranks_train_the_model_one_process_trains(mpiexec, tmp_path):
    """float64 MLP, 20 steps of global batches of 16 (the last of each epoch 5 rows: 2 on
    rank 0, 3 on rank 1): the same weights as one process to 1e-12, the same on both ranks
    to the bit; the same logs; checkpoints by rank 0 alone, loadable on every rank."""
    job = script(tmp_path, COMMON + """
import json, sys
out = sys.argv[1]
dp = G.MPIDataParallel()

class Written(G.Callback):
    on_every_rank = False
    def on_epoch_end(self, epoch, logs):
        with open(f"{out}/written-{dp.rank}", "a") as f:
            f.write(f"{epoch}\\n")

net = model()
X, Y = data(149)
h = G.fit(net, X, Y, **options(), distributed=dp,
          callbacks=[G.ModelCheckpoint(f"{out}/ckpt.npz"), Written()])
Xe, Ye = data(37, 2)
ev = G.evaluate(net, Xe, Ye, distributed=dp)
pred = G.predict(net, Xe, batch_size=5, distributed=dp)
loaded = model()
G.load(loaded, f"{out}/ckpt.npz")
same = all(np.array_equal(a.value, b.value) for a, b in zip(loaded.model(), net.model()))
# batches of 3 on 2 ranks, the last of one sample: rank 0 has no rows in it
small = model()
h2 = G.fit(small, *data(7, 3), **options(batch_size=3, validation_data=None, metrics=[]),
           distributed=dp)
np.savez(f"{out}/rank{dp.rank}.npz", *[w.value for w in net.model()],
         *[w.value for w in small.model()], pred=pred)
with open(f"{out}/rank{dp.rank}.json", "w") as f:
    json.dump({"history": h.history, "h2": h2.history, "evaluate": ev, "same": same}, f)
""")
    code, out, err = run_ranks(mpiexec, [job, str(tmp_path)])
    assert code == 0, err
    ref = _reference()
    net = ref["model"]()
    h = G.fit(net, *ref["data"](149), **ref["options"]())
    small = ref["model"]()
    h2 = G.fit(small, *ref["data"](7, 3), **ref["options"](batch_size=3, validation_data=None,
                                                           metrics=[]))
    Xe, Ye = ref["data"](37, 2)
    weights = [w.value for w in [*net.model(), *small.model()]]
    ranks = [np.load(tmp_path / f"rank{r}.npz") for r in range(2)]
    logs = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    rel = [
        float(np.linalg.norm(ranks[0][f"arr_{i}"] - w) / np.linalg.norm(w))
        for i, w in enumerate(weights)
    ]
    assert max(rel) <= 1e-12, rel
    for key in ranks[0].files:
        assert np.array_equal(ranks[0][key], ranks[1][key]), key  # identical on every rank
    assert logs[0] == logs[1]
    for got, want in [(logs[0]["history"], h.history), (logs[0]["h2"], h2.history)]:
        assert got.keys() == want.keys()
        for k in want:
            np.testing.assert_allclose(got[k], want[k], rtol=1e-12, err_msg=k)
    want_ev = G.evaluate(net, Xe, Ye)
    for k, v in want_ev.items():
        assert logs[0]["evaluate"][k] == pytest.approx(v, rel=1e-12)
    np.testing.assert_allclose(ranks[0]["pred"], G.predict(net, Xe), rtol=1e-12)
    assert logs[0]["same"] and logs[1]["same"]  # every rank loads rank 0's checkpoint
    assert (tmp_path / "written-0").read_text() == "0\n1\n"
    assert not (tmp_path / "written-1").exists()


def test_a_rank_that_raises_while_training_ends_the_job(mpiexec, tmp_path):
    job = script(tmp_path, """
import numpy as np, golgi as G
dp = G.MPIDataParallel()

class Boom(G.Callback):
    def on_batch_end(self, batch, logs):
        if dp.rank == 1 and batch == 3:
            raise RuntimeError("injected failure at step 4")

X = np.random.default_rng(0).normal(size=(400, 4))
net = G.ComposeSeq(G.L(G.ConsFC(G.WithShape(1))))
G.fit(net, X, X[:, :1], loss="mse", solver="sgd", epochs=50, batch_size=10, seed=0,
      progress=False, callbacks=[Boom()], distributed=dp)
print("finished", flush=True)
""")
    code, out, err = run_ranks(mpiexec, [job])
    assert code != 0 and "finished" not in out
    assert "RuntimeError: injected failure at step 4" in err
    assert "golgi: rank 1 of 2 failed in fit (epoch 1, batch 4)" in err


def test_an_uncaught_error_outside_fit_ends_the_job(mpiexec, tmp_path):
    job = script(tmp_path, """
import numpy as np, golgi as G
dp = G.MPIDataParallel()
if dp.rank == 0:
    raise KeyError("only rank 0")
G.predict(G.ComposeSeq(G.L(G.ConsFC(G.WithShape(1)))), np.ones((1, 2)), distributed=dp)
""")
    code, out, err = run_ranks(mpiexec, [job])
    assert code != 0
    assert "golgi: rank 0 of 2 stopped on an uncaught KeyError" in err


def test_ranks_that_fail_or_disagree_before_training_all_raise(mpiexec, tmp_path):
    job = script(tmp_path, """
import numpy as np, golgi as G
dp = G.MPIDataParallel()
rng = np.random.default_rng(0)
X = rng.normal(size=(40 if dp.rank == 0 else 38, 4))
net = G.ComposeSeq(G.L(G.ConsFC(G.WithShape(1))))
opts = dict(loss="mse", solver="sgd", epochs=2, batch_size=10, seed=0, progress=False,
            distributed=dp)
try:
    G.fit(net, X, X[:, :1], **opts)
except ValueError as e:
    print(f"rank {dp.rank}: {e}", flush=True)
try:
    G.fit(net, X[:, : 4 - dp.rank], X[:, :1], **opts)
except Exception as e:
    print(f"rank {dp.rank}: {type(e).__name__}: {e}", flush=True)
print(f"rank {dp.rank} done", flush=True)
""")
    code, out, err = run_ranks(mpiexec, [job])
    assert code == 0, err
    for r in (0, 1):
        assert f"rank {r}: fit: the ranks disagree on samples: rank 0 has 40, rank 1 has 38" in out
        assert f"rank {r} done" in out
    assert "rank 0: RankFailedError: fit: rank 1 of 2 failed: ShapeError" in out
    assert "rank 1: ShapeError: fit: x has samples of shape (3,)" in out


def test_golgi_train_under_mpiexec_prints_the_test_accuracy_once(mpiexec, tmp_path):
    data = tmp_path / "mnist"
    write_dataset(data, synthetic(n_train=300, n_test=50))
    ckpt = tmp_path / "mlp.npz"
    common = ["-m", "golgi.cli", "train", "mlp", "--limit", "300", "--data-dir", str(data),
              "--batch-size", "64", "--solver", "adam"]
    code, out, err = run_ranks(mpiexec, [*common, "--epochs", "2", "--save", str(ckpt)])
    assert code == 0, err
    assert len(re.findall(r"^test accuracy: \d+\.\d\d%$", out, re.M)) == 1
    assert out.count("MNIST: 300 training, 50 test samples") == 1
    assert out.count("epoch 2/2") == 1 and "2 ranks (MPI)" in out
    assert ckpt.exists()
    code, out, err = run_ranks(mpiexec, [*common, "--epochs", "3", "--resume", str(ckpt)])
    assert code == 0, err
    assert out.count("resumed from") == 1 and "epoch 3/3" in out and "epoch 2/3" not in out
    code, out, err = run_ranks(mpiexec, [*common, "--resume", str(tmp_path / "none.npz")])
    assert code == 2 and err.count("no such checkpoint file") == 1


def test_the_docs_example_runs_on_two_ranks(mpiexec, tmp_path):
    doc = (ROOT / "docs" / "distributed.md").read_text()
    marker = "<!-- tested: mpiexec -n 2 -->"
    assert marker in doc
    code_block = doc.split(marker, 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    job = script(tmp_path, code_block, "train.py")
    code, out, err = run_ranks(mpiexec, [job])
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("2 ranks: loss "), out
    assert lines[0].endswith("the same weights on every rank: True")
    assert float(lines[0].split()[3].rstrip(",")) < 1e-3
