"""Paired step timing: the tape machine (numba kernels on and off) against hand-written numpy.

``run.py`` times whole epochs in separate worker processes, minutes apart; on a shared VM whose
speed drifts by up to 2x, their ratios can be off by 20%. Here the three implementations take
turns, one training step each, in one process, so a slow moment hits all of them alike. (Not
torch: its OpenMP threads keep spinning after each step and slow whichever step follows
theirs, so in one process the ratios would measure the turn order.) Each
step is the same work the epoch benchmark times: gather the batch into the runner's input
buffers, forward, loss, backward, RMSProp. Results go to stdout and ``bench/PAIRED.md``.

    .venv/bin/python bench/paired.py                 # mlp and ae, float32, 1,200 steps each
    .venv/bin/python bench/paired.py --arch mlp --steps 300

Example:
    >>> from bench.paired import main
    >>> main(["--arch", "mlp", "--steps", "20", "--no-write"])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import graphcore as gc  # noqa: E402
from bench.baselines import NumpyRunner  # noqa: E402
from bench.common import ARCHS, init_weights, load_data  # noqa: E402
from bench.graphcore_runner import GraphcoreRunner  # noqa: E402

BATCH = 100


def _tape_step(r: GraphcoreRunner, x: np.ndarray, y: np.ndarray, numba: bool) -> Callable:
    def step(idx: np.ndarray) -> None:
        gc.accel.set_enabled(numba)
        np.take(x, idx, axis=0, out=r.x.value, mode="clip")
        np.take(y, idx, axis=0, out=r.t.value, mode="clip")
        r.vm.run_all()
        r.solver.step(r.vgs)

    gc.accel.set_enabled(numba)  # a plan keeps the kernels that were on when it compiled
    gc.Let(r.x, x[:BATCH])
    gc.Let(r.t, y[:BATCH])
    r.vm.run_all()  # compile the plan; values now live in the plan's input buffers
    return step


def _numpy_step(r: NumpyRunner, x: np.ndarray, y: np.ndarray) -> Callable:
    bufs = r._buffers(BATCH)
    same = y is x

    def step(idx: np.ndarray) -> None:
        np.take(x, idx, axis=0, out=bufs.x, mode="clip")
        if not same:
            np.take(y, idx, axis=0, out=bufs.y, mode="clip")
        r._step_grads(bufs, bufs.x, bufs.x if same else bufs.y)
        r._rmsprop()

    return step


def measure(arch_name: str, steps: int) -> dict[str, float]:
    """Median step time (seconds) of each implementation, taking turns step by step."""
    arch = ARCHS[arch_name]
    dt = np.float32
    data = load_data(6000)
    x = np.ascontiguousarray(data.x_train, dt)
    y = x if arch.autoencoder else np.ascontiguousarray(data.y_train, dt)
    w = init_weights(arch, dt)
    was = gc.accel.enabled()
    impls = {
        "tape (numba)": _tape_step(GraphcoreRunner(arch, dt, w), x, y, True),
        "tape (numpy only)": _tape_step(GraphcoreRunner(arch, dt, w), x, y, False),
        "hand numpy": _numpy_step(NumpyRunner(arch, dt, w), x, y),
    }
    times: dict[str, list[float]] = {k: [] for k in impls}
    rng = np.random.default_rng(0)
    try:
        with np.errstate(over="ignore"):
            for i in range(steps + 50):
                idx = rng.integers(0, len(x), BATCH)
                for name, step in impls.items():
                    t = time.perf_counter()
                    step(idx)
                    if i >= 50:  # warm-up: numba's first call, caches
                        times[name].append(time.perf_counter() - t)
    finally:
        gc.accel.set_enabled(was)
    return {k: float(np.median(v)) for k, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", choices=[*ARCHS, "all"], default="all")
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--no-write", action="store_true", help="do not write bench/PAIRED.md")
    args = ap.parse_args(argv)
    if not gc.accel.available():
        print("numba is not installed: 'tape (numba)' runs the numpy path too", file=sys.stderr)
    archs = list(ARCHS) if args.arch == "all" else [args.arch]
    rows = ["| workload | tape (numba) | tape (numpy only) | hand numpy | numba / numpy "
            "| numpy only / numpy |", "|---|---|---|---|---|---|"]
    for a in archs:
        t = measure(a, args.steps)
        tn, tp, hn = t["tape (numba)"], t["tape (numpy only)"], t["hand numpy"]
        rows.append(f"| {a} float32 | {tn * 1e3:.3f} ms | {tp * 1e3:.3f} ms | {hn * 1e3:.3f} ms "
                    f"| {tn / hn:.2f} | {tp / hn:.2f} |")
    table = "\n".join(rows)
    print(table)
    if not args.no_write:
        text = (f"# Paired step times\n\nWritten by `bench/paired.py` "
                f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {args.steps} steps "
                f"per implementation, taking turns; medians).\n\n{table}\n")
        (ROOT / "bench" / "PAIRED.md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
