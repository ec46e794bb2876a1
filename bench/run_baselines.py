"""Run the benchmark's implementations side by side, interleaved, and print one table.

Usage (from the repository root)::

    .venv/bin/python bench/run_baselines.py --quick                 # 6,000 samples, 3 rounds
    .venv/bin/python bench/run_baselines.py --arch mlp --dtype float32 --rounds 5

Why interleaved: this benchmark runs on shared virtual machines whose speed drifts by up to 2x
over tens of seconds. Timing one implementation's epochs, then the next one's, compares
different moments of the machine as much as different code. So for each workload (arch,
dtype) every implementation gets a persistent worker subprocess (``--serve``), all are set up
and warmed up, and then they take turns: in round ``r`` each trains ``--epochs`` timed epochs,
one worker after the other, in an order that changes every round (:func:`round_order`). The
epochs of one round run seconds apart, so their ratio compares the implementations at one
speed of the machine; the report gives the median over rounds of these per-round ratios
(:func:`paired_ratios`) next to the usual table (medians, best epochs, memory, inference).

Separate processes keep peak memory, BLAS and OpenMP thread pools and allocator state apart.
The workers run without ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` (they select a slower
kernel where set); ``--keep-blas-env`` keeps them. After each worker's epoch the parent
pauses (:data:`SPIN_PAUSE_S`): BLAS and OpenMP threads spin for a while after their work and
would take a core from the next worker.

Serve protocol (one JSON object per line each way; replies start with :data:`REPLY`, and the
worker points its file descriptor 1 at stderr, so stray prints cannot corrupt them)::

    {"cmd": "setup", "spec": ..., "impl": ..., "arch": ..., "dtype": ..., "n": ..., "batch": ...,
     "seed": ..., "data": "x.npz", "out": "weights.npz"}  -> {"ok": true, "info": {...}}
    {"cmd": "epoch", "e": 0}   -> {"ok": true, "time": s, "loss": l, "cpu": s}   (in order 0, 1, ..)
    {"cmd": "infer"}           -> {"ok": true, "infer": {"100": samples/s, "10000": ...}}
    {"cmd": "finish"}          -> {"ok": true, "check_n", "check_loss", "losses", "mem", "info"}
    {"cmd": "quit"}            -> {"ok": true}, then the worker exits

A failed command answers ``{"ok": false, "error": traceback}``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from bench.common import (
    ARCHS,
    BLAS_ENV_VARS,
    CONV_ARCHS,
    AgreementError,
    Arch,
    ConvArch,
    Dataset,
    RunResult,
    agreement_run,
    blas_info,
    check_agreement,
    check_arch,
    check_samples,
    epoch_order,
    gemm_operands,
    gemm_shapes,
    get_arch,
    init_weights,
    load_runner,
    measure_inference,
    peak_rss_mb,
    reset_peak_rss,
    rss_mb,
)

QUICK_N = 6_000
CONV_N = 2_000  # training samples per epoch of the conv workloads
CONV_QUICK_N = 320
CONV_BATCH = 32
CONV_CHECK_STEPS = 10  # float32 conv runs part ways after tens of steps, as the MLP's do
# Inference: (batch, test images) per workload kind. Batch 1 runs 1,000 calls (quoted as
# microseconds per call); conv workloads stop at batch 100 (their im2col columns at 10,000
# images would take gigabytes).
INFER_FC = ((1, 1_000), (100, 10_000), (10_000, 10_000))
INFER_CONV = ((1, 100), (100, 1_000))
INFER_BATCHES = tuple(b for b, _ in INFER_FC)
REPLY = "@@bench "  # prefix of every reply line of the serve protocol
# Seconds to wait after a worker's epoch (or inference) before the next worker starts: thread
# pools keep spinning after their work and would take a core from the next worker. Measured
# here: a numpy or graphcore worker (OpenBLAS, 2 threads) used ~0.1 CPU-s in the first 0.1 s
# after an epoch, a torch worker ~0.02 CPU-s.
SPIN_PAUSE_S = 0.3
# The pairs whose inference rates are compared round by round.
INFER_PAIRS: tuple[tuple[str, str], ...] = (
    ("graphcore", "numpy"),
    ("graphcore-np", "numpy"),
    ("graphcore", "torch"),
    ("graphcore-np", "torch"),
    ("graphcore", "jax"),
    ("golgi-fit", "graphcore"),
    ("torch", "numpy"),
    ("jax", "numpy"),
)
# Set to --threads N in every worker: the BLAS and OpenMP pools and numba's. graphcore's own
# pool (graphcore.SetNumThreads) keeps its default, one thread, as users get it: with the
# products on N BLAS threads a second graphcore thread measured slower (docs/threads.md).
THREAD_ENV_VARS = (
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMBA_NUM_THREADS",
)
# (a, b): the per-round ratios reported, epoch of a / epoch of b, where both ran.
PAIRS: tuple[tuple[str, str], ...] = (
    ("graphcore", "numpy"),
    ("graphcore", "torch"),
    ("graphcore", "jax"),
    ("golgi-fit", "graphcore"),
    ("graphcore", "gemm"),
    ("graphcore-np", "numpy"),
    ("graphcore-np", "torch"),
    ("graphcore-np", "jax"),
    ("graphcore-np", "gemm"),
    ("numpy", "gemm"),
    ("torch", "numpy"),
    ("jax", "numpy"),
    ("jax", "gemm"),
    ("torch", "gemm"),
    ("graphcore", "graphcore-before"),
    ("graphcore-np", "graphcore-np-before"),
    ("graphcore-before", "numpy"),
    ("graphcore-np-before", "numpy"),
)


# ---------------------------------------------------------------------------------------------
# Worker side: one runner (or the GEMM floor) on one workload, driven over stdin/stdout


def infer_plan(arch: Arch | ConvArch) -> tuple[tuple[int, int], ...]:
    """``(batch, test images)`` of each inference measurement on workload ``arch``.

    Example:
        >>> infer_plan(ARCHS["mlp"])[0], infer_plan(CONV_ARCHS["convnet"])[-1]
        ((1, 1000), (100, 1000))
    """
    return INFER_CONV if isinstance(arch, ConvArch) else INFER_FC


class GemmEpoch:
    """The matrix products of one training epoch and nothing else: the floor, one epoch a call.

    The same products, shapes and transposed views as :func:`bench.baselines.gemm_epoch_times`
    (which times several epochs in one call); here the parent decides when each epoch runs.

    Example:
        >>> GemmEpoch(ARCHS["mlp"], np.float32, 1000).run() >= 0
        True
    """

    def __init__(self, arch: Arch, dtype: Any, n: int, batch: int = 100, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.calls = [
            gemm_operands(role, shape, dtype, rng) for role, shape in gemm_shapes(arch, batch)
        ]
        self.steps = n // batch

    def run(self) -> float:
        """One epoch's products (``n // batch`` steps); returns its wall time in seconds."""
        calls, matmul = self.calls, np.matmul
        t0 = time.perf_counter()
        for _ in range(self.steps):
            for a, b, c in calls:
                matmul(a, b, out=c)
        return time.perf_counter() - t0


def _own_cpu_s() -> float:
    """CPU seconds this process (all its threads) has used."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class Worker:
    """What one ``--serve`` process holds between commands (see the module docstring).

    Example:
        >>> w = Worker()
        >>> w.handle({"cmd": "setup", "spec": "gemm", "impl": "gemm", "arch": "mlp",
        ...           "dtype": "float32", "n": 200, "batch": 100, "seed": 0})["info"]["impl"]
        'gemm'
        >>> w.handle({"cmd": "epoch", "e": 0})["loss"] is None
        True
    """

    def __init__(self) -> None:
        self.job: dict[str, Any] | None = None

    def handle(self, cmd: Mapping[str, Any]) -> dict[str, Any]:
        """Run one command (``setup``, ``epoch``, ``infer``, ``finish``); its reply fields."""
        op = cmd.get("cmd")
        if op == "setup":
            return self.setup(dict(cmd))
        if self.job is None:
            raise ValueError(f"worker: {op!r} before 'setup'")
        if op == "epoch":
            return self.epoch(int(cmd["e"]))
        if op == "infer":
            return self.infer()
        if op == "finish":
            return self.finish()
        raise ValueError(f"worker: unknown command {op!r}; expected setup, epoch, infer, finish")

    def setup(self, job: dict[str, Any]) -> dict[str, Any]:
        """Load the data, cast it, import the runner's module and build the runner from the
        init weights, resetting the peak-RSS mark before the import and again after it."""
        self.job = job
        self.arch, self.dt = get_arch(job["arch"]), np.dtype(job["dtype"])
        self.info: dict[str, Any] = {"impl": job["impl"], "blas": blas_info()}
        self.next_epoch = 0
        self.losses: list[float] = []
        self.first: tuple[float, list[np.ndarray]] | None = None
        self.train_peak: float | None = None
        self.infer_warm: set[int] = set()
        if job["spec"] == "gemm":
            self.gemm = GemmEpoch(self.arch, self.dt, job["n"], job["batch"], job["seed"])
            return {"info": self.info}
        with np.load(job["data"]) as z:
            n = min(int(job["n"]), len(z["x"]))
            # the first n rows only (a copy, so the rest is freed): conv workloads train on
            # fewer samples than the npz holds
            data = Dataset(z["x"][:n], z["y"][:n], z["xt"], z["yt"], "npz").astype(self.dt)
        self.data = data
        self.x, self.y = data.x_train, data.targets(self.arch)
        weights = init_weights(self.arch, self.dt, job["seed"])
        # Peaks count from here: first the import of the runner's module (graphcore, golgi),
        # then, after a second reset, the runner's build and training, which import what the
        # runner loads lazily (torch, jax, numba and LLVM) and page in library code.
        self.rss_base = rss_mb()
        can_reset = reset_peak_rss()
        self.factory = load_runner(job["spec"])
        self.import_peak = peak_rss_mb()
        self.rss0 = rss_mb()
        reset_peak_rss()
        self.info["peak_method"] = (
            "VmHWM reset" if can_reset else "ru_maxrss (not reset: includes load)"
        )
        self.runner = self.factory(self.arch, self.dt, weights)
        # which library this worker runs: the parent checks that NAME-before took the earlier one
        self.info["library"] = {
            name: os.path.dirname(os.path.abspath(sys.modules[name].__file__ or ""))
            for name in ("graphcore", "golgi")
            if name in sys.modules
        }
        return {"info": self.info}

    def epoch(self, e: int) -> dict[str, Any]:
        """Train epoch ``e`` (in ``epoch_order(n, e, seed)``); its wall time, loss and CPU time."""
        if e != self.next_epoch:  # runners like golgi's fit count epochs themselves
            raise ValueError(f"worker: epoch {e} requested, expected {self.next_epoch}")
        self.next_epoch += 1
        job = self.job
        assert job is not None
        cpu0 = _own_cpu_s()
        if job["spec"] == "gemm":
            elapsed, loss = self.gemm.run(), None
        else:
            order = epoch_order(len(self.x), e, job["seed"])
            t0 = time.perf_counter()
            loss = float(self.runner.train_epoch(self.x, self.y, order, job["batch"]))
            elapsed = time.perf_counter() - t0
            self.losses.append(loss)
            if e == 0:
                self.first = (loss, self.runner.weights())
        return {"time": elapsed, "loss": loss, "cpu": _own_cpu_s() - cpu0}

    def _mark_train_peak(self) -> None:
        # Training's peak, before inference's larger batches can raise it.
        if self.train_peak is None and self.job and self.job["spec"] != "gemm":
            self.train_peak = peak_rss_mb() - self.rss0
            self.total_peak = max(self.import_peak, peak_rss_mb())

    def infer(self) -> dict[str, Any]:
        """``predict`` samples/s at each ``(batch, images)`` of :func:`infer_plan`: the first
        ``images`` test images in calls of ``batch`` rows, the median of 3 timings (one
        untimed call first, the first time each batch size runs)."""
        if self.job is None or self.job["spec"] == "gemm":
            return {"infer": {}}
        self._mark_train_peak()
        rates = {}
        for b, k in infer_plan(self.arch):
            x = self.data.x_test[:k]
            warm = b in self.infer_warm
            self.infer_warm.add(b)
            rates[str(b)] = measure_inference(self.runner, x, b, warm=not warm)
        return {"infer": rates}

    def finish(self) -> dict[str, Any]:
        """Memory numbers, and the agreement run's loss (its weights go to ``job["out"]``)."""
        job = self.job
        assert job is not None
        if job["spec"] == "gemm":
            return {"info": self.info}
        self._mark_train_peak()
        mem = {
            "rss_base": self.rss_base,
            "rss_before": self.rss0,
            "train_peak": self.train_peak,
            "with_imports": self.total_peak - self.rss_base,
            "total": self.total_peak,
            "peak": peak_rss_mb() - self.rss0,
        }
        # Epoch 0 serves when the whole epoch is checked, else a fresh short run (after the
        # memory readings, so it cannot lower the peak by pre-faulting pages).
        # Conv workloads are checked without dropout and in float64: deeper float32 nets part
        # ways within steps (the resnet's weights 1e-3 apart after 10, torch against the
        # tape), while float64 runs of the same math agree to ~1e-16.
        conv = isinstance(self.arch, ConvArch)
        steps = CONV_CHECK_STEPS if conv else None
        check_n = check_samples(job["dtype"], len(self.x), job["batch"], steps)
        checked = check_arch(self.arch)
        check_dt = np.dtype(np.float64) if conv else self.dt
        if check_n == len(self.x) and self.first is not None and checked is self.arch:
            check_loss, check_weights = self.first
        else:
            x = self.x.astype(check_dt, copy=False)
            y = x if self.y is self.x else self.y.astype(check_dt, copy=False)
            check_loss, check_weights = agreement_run(
                self.factory,
                checked,
                check_dt,
                x,
                y,
                check_n,
                batch=job["batch"],
                seed=job["seed"],
            )
        np.savez(job["out"], *check_weights)
        return {
            "check_n": check_n,
            "check_dtype": check_dt.name,
            "check_loss": check_loss,
            "losses": self.losses,
            "mem": mem,
            "info": self.info,
        }


def serve_loop(lines: Iterable[str], write: Callable[[str], None]) -> None:
    """Answer each command line with one reply line (``REPLY`` + JSON) until ``quit`` or EOF."""
    worker = Worker()
    for line in lines:
        if not line.strip():
            continue
        try:
            cmd = json.loads(line)
            reply = {"ok": True} if cmd.get("cmd") == "quit" else {"ok": True, **worker.handle(cmd)}
        except Exception:
            cmd, reply = {}, {"ok": False, "error": traceback.format_exc()}
        write(REPLY + json.dumps(reply) + "\n")
        if cmd.get("cmd") == "quit":
            return


def serve() -> int:
    """The ``--serve`` entry point: replies on the original stdout, everything else on stderr."""
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # prints from Python or C libraries now land on stderr
    sys.stdout = sys.stderr

    def write(s: str) -> None:
        replies.write(s)
        replies.flush()

    serve_loop(sys.stdin, write)
    return 0


# ---------------------------------------------------------------------------------------------
# Parent side: drive the workers, interleave the epochs, collect, print


def _worker_env(keep_blas_env: bool, threads: int = 0) -> dict[str, str]:
    """The workers' environment: ``bench`` importable, the slow-kernel BLAS variables removed
    (unless ``keep_blas_env``), and with ``threads > 0`` every library's thread pool set to
    ``threads`` (OpenBLAS, MKL and OpenMP for numpy and torch, numba, XLA for jax;
    graphcore's own pool keeps its default)."""
    env = dict(os.environ)
    if not keep_blas_env:
        for key in BLAS_ENV_VARS:
            env.pop(key, None)
    if threads > 0:
        for key in THREAD_ENV_VARS:
            env[key] = str(threads)
        if threads == 1:  # XLA's CPU backend has no thread-count flag; one thread is this one
            flags = env.get("XLA_FLAGS", "")
            env["XLA_FLAGS"] = (flags + " --xla_cpu_multi_thread_eigen=false").strip()
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _cpu_busy_s() -> float | None:
    """CPU seconds all processes have used since boot (``/proc/stat``), None off Linux."""
    try:
        with open("/proc/stat") as fh:
            fields = [float(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def wait_quiet(max_wait: float, threshold: float = 0.15) -> float:
    """Wait up to ``max_wait`` s until other processes use < ``threshold`` of the CPUs.

    Returns the busy fraction last seen. Timings taken while others compute are inflated.
    """
    deadline = time.monotonic() + max_wait
    while True:
        b0, t0 = _cpu_busy_s(), time.monotonic()
        time.sleep(1.0)
        b1, t1 = _cpu_busy_s(), time.monotonic()
        if b0 is None or b1 is None:
            return 0.0
        busy = (b1 - b0) / (t1 - t0) / (os.cpu_count() or 1)
        if busy < threshold or t1 >= deadline:
            return busy


class WorkerProcess:
    """A ``--serve`` subprocess: :meth:`call` sends one command and returns its reply.

    Its stderr goes to ``log`` (a file, so a chatty worker cannot fill a pipe and stall), and
    its tail is quoted when the worker fails.

    Example:
        >>> w = WorkerProcess("gemm mlp 32", _worker_env(False), "/tmp/w.log")  # doctest: +SKIP
        >>> w.call("setup", spec="gemm", impl="gemm", arch="mlp", dtype="float32", n=1000,
        ...        batch=100, seed=0)["info"]["impl"]  # doctest: +SKIP
        'gemm'
        >>> w.call("epoch", e=0)["time"]  # doctest: +SKIP
        0.011
        >>> w.close()  # doctest: +SKIP
    """

    def __init__(self, label: str, env: dict[str, str], log: str) -> None:
        self.label = label
        self._log: IO[str] = open(log, "w+")  # closed by close()
        # Started outside the repository: `python -m` puts the working directory first on the
        # path, ahead of PYTHONPATH, where it would shadow a --before-tree library with today's.
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.run_baselines", "--serve"],
            cwd=os.path.dirname(log) or None,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
            text=True,
            bufsize=1,
        )

    def _failed(self, op: str) -> RuntimeError:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self._log.flush()
        self._log.seek(0)
        tail = self._log.read()[-3000:].strip()
        return RuntimeError(
            f"benchmark worker {self.label} stopped (exit {self.proc.returncode}) during "
            f"{op!r}:\n{tail}"
        )

    def send(self, op: str, **args: Any) -> None:
        """Send ``{"cmd": op, **args}`` without waiting for the reply (see :meth:`receive`)."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps({"cmd": op, **args}) + "\n")
            self.proc.stdin.flush()
        except OSError:  # BrokenPipeError: the worker is gone
            raise self._failed(op) from None

    def receive(self, op: str) -> dict[str, Any]:
        """The next reply (to command ``op``), without its ``ok`` flag; raises if it failed."""
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise self._failed(op)
            if line.startswith(REPLY):
                break
        reply = json.loads(line[len(REPLY) :])
        if not reply.pop("ok", False):
            raise RuntimeError(
                f"benchmark worker {self.label} failed on {op!r}:\n{reply.get('error', reply)}"
            )
        return reply

    def call(self, op: str, **args: Any) -> dict[str, Any]:
        """Send one command and return its reply."""
        self.send(op, **args)
        return self.receive(op)

    def close(self) -> None:
        """Ask the worker to quit; kill it if it does not within 10 s."""
        if self.proc.poll() is None:
            with contextlib.suppress(RuntimeError):
                self.call("quit")
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        self._log.close()


BEFORE = "-before"  # suffix of an implementation run on the library of --before-tree


def impl_env(impl: str, env: dict[str, str], before_tree: str | None) -> dict[str, str]:
    """The worker environment of ``impl``: ``env``, or for ``NAME-before`` the same with
    ``before_tree`` (a checkout of an earlier graphcore and golgi) first on the path, so the
    same runner code drives the earlier library.

    Example:
        >>> impl_env("graphcore-before", {"PYTHONPATH": "/tree"}, "/old")["PYTHONPATH"]
        '/old:/tree'
    """
    if not impl.endswith(BEFORE):
        return env
    if not before_tree:
        raise ValueError(f"--impl {impl}: give the earlier library's tree with --before-tree")
    out = dict(env)
    out["PYTHONPATH"] = before_tree + os.pathsep + env.get("PYTHONPATH", "")
    return out


def check_library(impl: str, library: dict[str, str], before_tree: str | None) -> None:
    """Raise unless a ``NAME-before`` worker imported graphcore and golgi from ``before_tree``
    and every other worker did not (a benchmark of the library against itself says nothing).

    Example:
        >>> check_library("graphcore-before", {"graphcore": "/old/graphcore"}, "/old")
        >>> check_library("graphcore-before", {"graphcore": "/new/graphcore"}, "/old")
        Traceback (most recent call last):
        ...
        RuntimeError: graphcore-before: imported graphcore from /new/graphcore, not from /old
    """
    if not before_tree:
        return
    root = os.path.abspath(before_tree)
    for name, where in library.items():
        inside = os.path.abspath(where).startswith(root + os.sep)
        if impl.endswith(BEFORE) and not inside:
            raise RuntimeError(f"{impl}: imported {name} from {where}, not from {before_tree}")
        if not impl.endswith(BEFORE) and inside:
            raise RuntimeError(f"{impl}: imported {name} from the earlier tree {where}")


def round_order(impls: Sequence[str], r: int) -> list[str]:
    """The order of the implementations in round ``r``: rotated every other round, reversed in
    the rounds between, so each takes every place and follows both of its neighbours.

    Example:
        >>> [round_order("abc", r) for r in range(4)]
        [['a', 'b', 'c'], ['c', 'b', 'a'], ['b', 'c', 'a'], ['a', 'c', 'b']]
    """
    k = (r // 2) % max(len(impls), 1)
    order = list(impls[k:]) + list(impls[:k])
    return order[::-1] if r % 2 else order


def paired_ratios(
    round_times: Mapping[str, Sequence[Sequence[float]]],
    pairs: Sequence[tuple[str, str]] = PAIRS,
) -> dict[tuple[str, str], list[float]]:
    """Per pair ``(a, b)`` whose implementations both ran: one ratio per round, the median of
    ``a``'s epochs in that round over the median of ``b``'s (rounds where ``b`` took no time
    are skipped).

    ``round_times[impl][r]`` holds the timed epochs ``impl`` ran in round ``r``. The epochs of
    one round run seconds apart, so a drift of the machine's speed mostly cancels in the ratio.

    Example:
        >>> paired_ratios({"a": [[2.0], [3.0]], "b": [[1.0], [2.0]]}, [("a", "b"), ("a", "c")])
        {('a', 'b'): [2.0, 1.5]}
    """
    out: dict[tuple[str, str], list[float]] = {}
    for a, b in pairs:
        if a not in round_times or b not in round_times:
            continue
        ratios = []
        for ta, tb in zip(round_times[a], round_times[b], strict=False):
            if ta and tb and statistics.median(tb) > 0:
                ratios.append(float(statistics.median(ta) / statistics.median(tb)))
        if ratios:
            out[(a, b)] = ratios
    return out


def format_ratio_lines(
    workload: str, ratios: Mapping[tuple[str, str], Sequence[float]]
) -> list[str]:
    """One line per pair: ``workload a/b  median [min-max]  per round: ...``.

    ``bench/run.py`` parses these lines (:data:`RATIO_LINE`), so keep the two in step.

    Example:
        >>> format_ratio_lines("mlp 32", {("a", "b"): [1.0, 1.2, 0.9]})[0]
        '  mlp 32  a/b                  1.000 [0.900-1.200]  per round: 1.00 1.20 0.90'
    """
    lines = []
    for (a, b), rs in ratios.items():
        med = float(statistics.median(rs))
        each = " ".join(f"{v:.2f}" for v in rs)
        lines.append(
            f"  {workload}  {a + '/' + b:<20} {med:.3f} [{min(rs):.3f}-{max(rs):.3f}]  "
            f"per round: {each}"
        )
    return lines


# What run.py reads back from a ratio line: arch, bits, a, b, median, min, max.
RATIO_LINE = (
    r"^  (\w+) (\d\d)  ([\w-]+)/([\w-]+)\s+([\d.]+(?:e[-+]?\d+)?|inf|nan) "
    r"\[([\d.]+(?:e[-+]?\d+)?|inf|nan)-([\d.]+(?:e[-+]?\d+)?|inf|nan)\]"
)


def _pause() -> None:
    if SPIN_PAUSE_S > 0:
        time.sleep(SPIN_PAUSE_S)


def _timed_epoch(w: WorkerProcess, e: int) -> tuple[dict[str, Any], float | None]:
    """Run epoch ``e`` on ``w``; its reply and the CPU share others used meanwhile."""
    busy0, own0, t0 = _cpu_busy_s(), _own_cpu_s(), time.monotonic()
    rep = w.call("epoch", e=e)
    busy1, own1, t1 = _cpu_busy_s(), _own_cpu_s(), time.monotonic()
    if busy0 is None or busy1 is None or t1 <= t0:
        return rep, None
    other = (busy1 - busy0 - (own1 - own0) - rep["cpu"]) / (t1 - t0) / (os.cpu_count() or 1)
    return rep, max(0.0, other)


def run_workload(
    arch: str,
    dtype: str,
    impls: Sequence[str],
    specs: Mapping[str, str],
    *,
    n: int,
    batch: int,
    warmup: int,
    epochs: int,
    rounds: int,
    seed: int,
    npz: str,
    tmp: str,
    env: dict[str, str],
    wait_quiet_s: float = 0.0,
    infer_rounds: int = 3,
    before_tree: str | None = None,
) -> tuple[list[dict[str, Any]], list[RunResult]]:
    """Measure every implementation on one workload with interleaved epochs.

    One worker per implementation; each is set up and trains its ``warmup`` untimed epochs; then
    ``rounds`` rounds in which every worker trains ``epochs`` timed epochs in
    :func:`round_order`; then ``infer_rounds`` rounds of inference, taking turns the same way;
    then memory and the agreement run. Returns a table row per implementation
    (``round_times[r]`` and ``round_cpu[r]`` hold its epochs' wall and CPU seconds in round
    ``r``, ``infer_rounds[r]`` its inference rates) and the :class:`RunResult` of every
    trained runner (not the GEMM floor) for ``check_agreement``.
    """
    rows: dict[str, dict[str, Any]] = {}
    results: list[RunResult] = []
    with contextlib.ExitStack() as stack:
        workers: dict[str, WorkerProcess] = {}
        for impl in impls:
            w = WorkerProcess(
                f"{impl} {arch} {dtype}",
                impl_env(impl, env, before_tree),
                os.path.join(tmp, f"{impl}-{arch}-{dtype}.log"),
            )
            stack.callback(w.close)
            workers[impl] = w
        for impl, w in workers.items():  # all load at once; the replies are read in turn
            w.send(
                "setup",
                spec=specs[impl],
                impl=impl,
                arch=arch,
                dtype=dtype,
                n=n,
                batch=batch,
                seed=seed,
                data=npz,
                out=os.path.join(tmp, f"{impl}-{arch}-{dtype}.npz"),
            )
        for impl, w in workers.items():
            rep = w.receive("setup")
            check_library(impl, rep["info"].get("library", {}), before_tree)
            rows[impl] = {
                "impl": impl,
                "arch": arch,
                "dtype": dtype,
                "n": n,
                "round_times": [],
                "round_cpu": [],
                "epoch_times": [],
                "other": [],
                "infer_rounds": [],
                "info": rep["info"],
            }
        for w in workers.values():
            for e in range(warmup):
                w.call("epoch", e=e)
            _pause()
        for r in range(rounds):
            if wait_quiet_s > 0:
                wait_quiet(wait_quiet_s)
            for impl in round_order(impls, r):
                row, times, cpus = rows[impl], [], []
                for k in range(epochs):
                    rep, other = _timed_epoch(workers[impl], warmup + r * epochs + k)
                    times.append(rep["time"])
                    cpus.append(rep["cpu"])
                    if other is not None:
                        row["other"].append(other)
                row["round_times"].append(times)
                row["round_cpu"].append(cpus)
                row["epoch_times"].extend(times)
                _pause()
            print(
                f"{arch} {dtype} round {r + 1}/{rounds}: "
                + " ".join(
                    f"{i} {statistics.median(rows[i]['round_times'][-1]):.3f}" for i in impls
                ),
                file=sys.stderr,
                flush=True,
            )
        for r in range(infer_rounds):
            for impl in round_order(impls, r):
                rates = workers[impl].call("infer")["infer"]
                rows[impl]["infer_rounds"].append(rates)
                _pause()
        for row in rows.values():
            row["infer"] = {
                b: statistics.median(rr[b] for rr in row["infer_rounds"])
                for b in (row["infer_rounds"][0] if row["infer_rounds"] else {})
            }
        for impl, w in workers.items():
            fin = w.call("finish")
            _pause()
            row = rows[impl]
            if row["other"]:
                row["info"]["other_cpu"] = max(row["other"])
            if specs[impl] == "gemm":
                continue
            row["mem"] = fin["mem"]
            with np.load(os.path.join(tmp, f"{impl}-{arch}-{dtype}.npz")) as z:
                weights = [z[f"arr_{i}"] for i in range(len(z.files))]
            results.append(
                RunResult(
                    impl,
                    arch,
                    fin.get("check_dtype", dtype),
                    n,
                    batch,
                    seed,
                    fin["check_n"],
                    fin["check_loss"],
                    weights,
                    row["epoch_times"],
                    fin["losses"],
                    {int(k): v for k, v in row["infer"].items()},
                    fin["mem"],
                    fin["info"],
                )
            )
    return [rows[impl] for impl in impls], results


def infer_ratios(
    rows: Sequence[Mapping[str, Any]], pairs: Sequence[tuple[str, str]] = INFER_PAIRS
) -> dict[tuple[str, str, str], list[float]]:
    """Per pair ``(a, b)`` and batch size: one ratio per inference round, ``a``'s rate over
    ``b``'s (higher is faster for ``a``), for the rows of one workload.

    Example:
        >>> rows = [{"impl": "a", "infer_rounds": [{"1": 2.0}, {"1": 3.0}]},
        ...         {"impl": "b", "infer_rounds": [{"1": 1.0}, {"1": 2.0}]}]
        >>> infer_ratios(rows, [("a", "b")])
        {('a', 'b', '1'): [2.0, 1.5]}
    """
    by = {r["impl"]: r.get("infer_rounds") or [] for r in rows}
    out: dict[tuple[str, str, str], list[float]] = {}
    for a, b in pairs:
        if not by.get(a) or not by.get(b):
            continue
        for batch in by[a][0]:
            rs = [
                ra[batch] / rb[batch]
                for ra, rb in zip(by[a], by[b], strict=False)
                if rb.get(batch) and ra.get(batch)
            ]
            if rs:
                out[(a, b, batch)] = rs
    return out


def format_infer_lines(
    workload: str, ratios: Mapping[tuple[str, str, str], Sequence[float]]
) -> list[str]:
    """One line per pair and batch: ``infer workload a/b @batch  median [min-max]  ...``;
    ``bench/run.py`` reads them (:data:`INFER_LINE`).

    Example:
        >>> format_infer_lines("mlp 32", {("a", "b", "1"): [2.0, 1.5]})[0]
        '  infer mlp 32  a/b @1                     1.750 [1.500-2.000]  per round: 2.00 1.50'
    """
    lines = []
    for (a, b, batch), rs in ratios.items():
        med = float(statistics.median(rs))
        each = " ".join(f"{v:.2f}" for v in rs)
        lines.append(
            f"  infer {workload}  {a + '/' + b + ' @' + batch:<26} {med:.3f} "
            f"[{min(rs):.3f}-{max(rs):.3f}]  per round: {each}"
        )
    return lines


_NUM = r"([\d.]+(?:e[-+]?\d+)?|inf|nan)"
# What run.py reads back from an inference ratio line: arch, bits, a, b, batch, med, min, max.
INFER_LINE = rf"^  infer (\w+) (\d\d)  ([\w-]+)/([\w-]+) @(\d+)\s+{_NUM} \[{_NUM}-{_NUM}\]"
# The same for the ratios of CPU seconds: arch, bits, a, b, median, min, max.
CPU_LINE = rf"^  cpu (\w+) (\d\d)  ([\w-]+)/([\w-]+)\s+{_NUM} \[{_NUM}-{_NUM}\]"


def _fmt_rate(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v / 1e6:.2f}M" if v >= 1e6 else f"{v / 1e3:.0f}k"


def _fmt_us(rate: float | None) -> str:
    """Microseconds per call at batch 1, from samples/s."""
    return "-" if not rate else f"{1e6 / rate:.0f}"


def print_table(rows: list[dict[str, Any]], n: int | None = None) -> None:
    """The main table: one line per (workload, implementation); ``run.py`` reads its columns.

    ``n`` (training samples per epoch) defaults to each row's own ``n``.
    """
    head = (
        f"{'workload':<11} {'impl':<19} {'epoch s':>8} {'best s':>7} {'x GEMM':>7} "
        f"{'train/s':>8} {'us@1':>6} {'inf@100/s':>10} {'inf@10k/s':>10} {'peak MiB':>9} "
        f"{'+imp MiB':>9} {'total MiB':>9} {'other%':>6}  epoch times"
    )
    print(head)
    print("-" * len(head))
    gemm: dict[tuple[str, str], float] = {}
    for r in rows:
        med = float(np.median(r["epoch_times"]))
        key = (r["arch"], r["dtype"])
        if r["impl"] == "gemm":
            gemm[key] = med
        ratio = f"{med / gemm[key]:.2f}" if key in gemm else "-"
        infer = r.get("infer", {})
        mem = r.get("mem", {})
        peak = f"{mem['train_peak']:.0f}" if mem else "-"
        with_imp = f"{mem['with_imports']:.0f}" if mem.get("with_imports") is not None else "-"
        total = f"{mem['total']:.0f}" if mem.get("total") is not None else "-"
        times = " ".join(f"{t:.3f}" for t in r["epoch_times"])
        other = r["info"].get("other_cpu")
        other_s = "-" if other is None else f"{100 * other:.0f}"
        samples = r.get("n", n) or 0
        print(
            f"{r['arch'] + ' ' + r['dtype'][-2:]:<11} {r['impl']:<19} {med:>8.3f} "
            f"{min(r['epoch_times']):>7.3f} {ratio:>7} "
            f"{samples / med:>8.0f} {_fmt_us(infer.get('1')):>6} "
            f"{_fmt_rate(infer.get('100')):>10} {_fmt_rate(infer.get('10000')):>10} "
            f"{peak:>9} {with_imp:>9} {total:>9} {other_s:>6}  {times}"
        )


def parse_archs(text: str) -> list[str]:
    """Workload names from ``--arch``: a comma list of names, ``fc`` (mlp, ae), ``conv``
    (convnet, resnet) or ``all``.

    Example:
        >>> parse_archs("fc,resnet"), parse_archs("all")[-1]
        (['mlp', 'ae', 'resnet'], 'resnet')
    """
    groups = {"fc": list(ARCHS), "conv": list(CONV_ARCHS), "all": [*ARCHS, *CONV_ARCHS]}
    out: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        names = groups.get(part, [part])
        for name in names:
            get_arch(name)  # KeyError naming the choices
            if name not in out:
                out.append(name)
    if not out:
        raise KeyError(f"--arch {text!r} names no workload")
    return out


def _tree_label(tree: str) -> str:
    """What ``tree`` is: the first line of its ``BEFORE.txt`` if it has one."""
    label = Path(tree) / "BEFORE.txt"
    try:
        return label.read_text().splitlines()[0].strip()
    except (OSError, IndexError):
        return "no BEFORE.txt"


def _available(impl: str) -> str | None:
    """Why ``impl`` cannot run here (its optional package is missing), or None."""
    from bench.baselines import torch_available
    from bench.jax_runner import jax_available

    if impl == "torch" and not torch_available():
        return "torch is not installed: skipping the PyTorch baseline (pip install torch==2.13.0)"
    if impl == "jax" and not jax_available():
        return "jax is not installed: skipping the JAX baseline (pip install jax==0.10.2)"
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds (5; quick 3)")
    ap.add_argument("--epochs", type=int, default=1, help="timed epochs per impl per round (1)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed epochs first (default 1)")
    ap.add_argument("--dtype", choices=["float32", "float64", "all"], default="all")
    ap.add_argument(
        "--arch", default="fc", help="comma list: mlp, ae, convnet, resnet, fc, conv, all (fc)"
    )
    ap.add_argument("--impl", default="gemm,numpy,torch", help="comma list (see RUNNERS)")
    ap.add_argument("--quick", action="store_true", help=f"{QUICK_N:,} samples, 3 rounds")
    ap.add_argument("--n", type=int, default=None, help="training samples (default 60000)")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument(
        "--conv-n", type=int, default=None, help=f"conv samples per epoch ({CONV_N})"
    )
    ap.add_argument("--conv-batch", type=int, default=CONV_BATCH)
    ap.add_argument(
        "--conv-dtype", choices=["float32", "float64", "all"], default="float32",
        help="dtypes of the conv workloads (float32)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0,
                    help="threads per library in the workers (BLAS, OpenMP, numba, XLA); "
                         "0: their defaults")
    ap.add_argument("--infer-rounds", type=int, default=3,
                    help="interleaved rounds of inference timings (3)")
    ap.add_argument("--before-tree", default=None, metavar="DIR",
                    help="a checkout of an earlier graphcore and golgi, for NAME-before impls")
    ap.add_argument("--keep-blas-env", action="store_true", help="keep OPENBLAS_* in workers")
    ap.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="S",
        help="before each round, wait up to S seconds for an idle machine",
    )
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.serve:
        return serve()

    from bench.baselines import RUNNERS, runner_spec
    from bench.common import load_data

    n = args.n or (QUICK_N if args.quick else 60_000)
    conv_n = args.conv_n or (CONV_QUICK_N if args.quick else CONV_N)
    rounds = args.rounds or (3 if args.quick else 5)
    if rounds < 1 or args.epochs < 1 or args.warmup < 0 or args.infer_rounds < 1:
        ap.error("need --rounds >= 1, --epochs >= 1, --warmup >= 0 and --infer-rounds >= 1")
    if n < args.batch or conv_n < args.conv_batch:
        ap.error(f"--n {n} or --conv-n {conv_n} is less than one batch")
    try:
        archs = parse_archs("all" if args.arch == "all" else args.arch)
    except KeyError as exc:
        ap.error(str(exc))
    dtypes = ["float32", "float64"] if args.dtype == "all" else [args.dtype]
    conv_dtypes = ["float32", "float64"] if args.conv_dtype == "all" else [args.conv_dtype]
    impls = list(dict.fromkeys(s.strip() for s in args.impl.split(",") if s.strip()))
    for impl in impls:
        base = impl.removesuffix(BEFORE)
        if impl != "gemm" and base not in RUNNERS:
            ap.error(f"unknown --impl {impl!r}; choose from gemm, {', '.join(RUNNERS)} "
                     f"(NAME{BEFORE}: NAME on the library of --before-tree)")
        if impl.endswith(BEFORE) and not args.before_tree:
            ap.error(f"--impl {impl} needs --before-tree (a checkout of the earlier library)")
    for impl in list(impls):
        why = _available(impl)
        if why is not None:
            print(why)
            impls.remove(impl)
    if not impls:
        ap.error("no implementation left to run")

    env = _worker_env(args.keep_blas_env, args.threads)
    removed = [k for k in BLAS_ENV_VARS if k in os.environ and k not in env]
    data = load_data(n, np.float64, seed=args.seed)  # each worker casts to its dtype
    if any(a in CONV_ARCHS for a in archs) and conv_n > n:
        data = load_data(conv_n, np.float64, seed=args.seed)
    print(
        f"data: {data.source}; {n:,} training samples, batch {args.batch}; conv workloads "
        f"{conv_n:,} samples, batch {args.conv_batch}; {args.warmup} warm-up epoch(s), then "
        f"{rounds} round(s) x {args.epochs} timed epoch(s) per impl, interleaved"
    )
    print(
        "workers: one persistent subprocess per impl and workload, taking turns each round; "
        f"removed from their env: {', '.join(removed) or 'none'}; threads: "
        f"{args.threads or 'library defaults'}"
    )
    if args.before_tree:
        label = _tree_label(args.before_tree)
        print(f"{BEFORE[1:]}: the library from {args.before_tree} ({label})")

    rows: list[dict[str, Any]] = []
    results: list[RunResult] = []
    ratio_lines: list[str] = []
    cpu_lines: list[str] = []
    infer_lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="golgi-bench-") as tmp:
        npz = os.path.join(tmp, "data.npz")
        np.savez(npz, x=data.x_train, y=data.y_train, xt=data.x_test, yt=data.y_test)
        del data
        for arch in archs:
            conv = arch in CONV_ARCHS
            specs = {}
            for impl in impls:
                if impl.endswith(BEFORE) and conv:
                    continue  # the earlier library is compared on the talk's workloads only
                spec = runner_spec(impl.removesuffix(BEFORE), get_arch(arch))
                if spec is not None:
                    specs[impl] = spec
            if not specs:
                continue
            for dtype in conv_dtypes if conv else dtypes:
                wrows, wres = run_workload(
                    arch,
                    dtype,
                    list(specs),
                    specs,
                    n=conv_n if conv else n,
                    batch=args.conv_batch if conv else args.batch,
                    warmup=args.warmup,
                    epochs=args.epochs,
                    rounds=rounds,
                    seed=args.seed,
                    npz=npz,
                    tmp=tmp,
                    env=env,
                    wait_quiet_s=args.wait_quiet,
                    infer_rounds=args.infer_rounds,
                    before_tree=args.before_tree,
                )
                rows += wrows
                results += wres
                tag = f"{arch} {dtype[-2:]}"
                ratios = paired_ratios({r["impl"]: r["round_times"] for r in wrows})
                ratio_lines += format_ratio_lines(tag, ratios)
                cpu = paired_ratios({r["impl"]: r["round_cpu"] for r in wrows})
                cpu_lines += ["  cpu" + line[1:] for line in format_ratio_lines(tag, cpu)]
                infer_lines += format_infer_lines(tag, infer_ratios(wrows))
    print(f"BLAS in workers: {rows[0]['info']['blas']}")
    if any(r["impl"] == "torch" for r in rows):
        print("torch threads: " + (str(args.threads) if args.threads else "default"))
    print()
    print_table(rows)
    print()
    print("epoch s: median of the timed epochs; best s: the fastest. x GEMM: median epoch over")
    print("the GEMMs-alone median. train/s: training samples per second (median epoch).")
    print("us@1: predict() microseconds per call at batch 1; inf@B/s: samples/s at batch B (the")
    print("10,000 test images; conv workloads 1,000). peak MiB: rise of the worker's peak RSS")
    print("(VmHWM, reset after imports and data) while training; +imp MiB: the same counted from")
    print("before the runner's module was imported; total MiB: the process's peak while")
    print("training (interpreter, numpy, data included).")
    print("other%: most CPU share other processes used during one of the worker's epochs.")
    worst = max(r["info"].get("other_cpu", 0.0) for r in rows)
    if worst > 0.1:
        print(
            f"WARNING: other processes used up to {100 * worst:.0f}% of the CPUs during an "
            "epoch; its timings are inflated and noisy. Rerun on a quiet machine "
            "(--wait-quiet helps)."
        )
    print()
    if ratio_lines:
        print("per-round ratios (epoch of a / epoch of b in the same round, seconds apart;")
        print(f"median over the {rounds} rounds [min-max], then each round):")
        for line in ratio_lines:
            print(line)
        print()
    if cpu_lines:
        print("the same for the CPU seconds of the epochs (all threads of the worker):")
        for line in cpu_lines:
            print(line)
        print()
    if infer_lines:
        print("inference, per round: rate of a / rate of b at batch B (higher is faster for a):")
        for line in infer_lines:
            print(line)
        print()
    print("agreement (same init, same order; float64 over all of epoch 0, float32 over its")
    print("first samples, see bench.common.CHECK_SAMPLES; conv workloads without dropout, in")
    print("float64, over their first 10 batches):")
    try:
        for line in check_agreement(results):
            print("  " + line)
    except AgreementError as exc:
        print(f"  FAILED: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
