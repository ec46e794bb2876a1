"""Run the baselines (hand-written numpy, PyTorch, GEMMs alone) and print one table.

Usage (from the repository root)::

    .venv/bin/python bench/run_baselines.py --quick                 # 6,000 samples, < 1 min
    .venv/bin/python bench/run_baselines.py --arch mlp --dtype float32 --epochs 3

Each (runner, workload) pair runs in its own subprocess (``--worker``), so peak memory, BLAS and
OpenMP thread pools and allocator state belong to that runner alone. The subprocesses run without
``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` (they select a slower kernel where set); pass
``--keep-blas-env`` to keep them. Timings are wall-clock and need a quiet machine: the table
warns when the load average was high.

The temporary entry point of the benchmark; the lead's harness will import the same pieces.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from bench.common import (
    ARCHS,
    BLAS_ENV_VARS,
    AgreementError,
    Dataset,
    RunResult,
    agreement_run,
    blas_info,
    check_agreement,
    check_samples,
    init_weights,
    load_runner,
    measure_inference,
    peak_rss_mb,
    reset_peak_rss,
    rss_mb,
    time_epochs,
)

QUICK_N = 6_000
INFER_BATCHES = (100, 10_000)


# ---------------------------------------------------------------------------------------------
# Worker: one runner, one workload, in this process


def run_worker(job: dict[str, Any]) -> dict[str, Any]:
    """Measure one runner (``job["spec"]``) or the GEMM floor (``spec == "gemm"``).

    ``job`` holds spec, impl, arch, dtype, n, batch, epochs, warmup, seed, data (a .npz path
    written by the parent) and out (where to write the first-epoch weights).
    """
    arch = ARCHS[job["arch"]]
    dt = np.dtype(job["dtype"])
    info: dict[str, Any] = {"blas": blas_info()}
    if job["spec"] == "gemm":
        from bench.baselines import gemm_epoch_times

        times = gemm_epoch_times(arch, dt, job["n"], job["batch"], repeats=job["epochs"])
        return {"epoch_times": times, "info": info}
    with np.load(job["data"]) as z:
        data = Dataset(z["x"], z["y"], z["xt"], z["yt"], "npz").astype(dt)
    x, y = data.x_train, data.targets(arch)
    factory = load_runner(job["spec"])
    weights = init_weights(arch, dt, job["seed"])
    rss0 = rss_mb()
    can_reset = reset_peak_rss()
    runner = factory(arch, dt, weights)
    et = time_epochs(
        runner,
        x,
        y,
        epochs=job["epochs"],
        warmup=job["warmup"],
        batch=job["batch"],
        seed=job["seed"],
    )
    mem = {"rss_before": rss0, "train_peak": peak_rss_mb() - rss0}
    infer = {b: measure_inference(runner, data.x_test, b) for b in INFER_BATCHES}
    mem["peak"] = peak_rss_mb() - rss0
    info["peak_method"] = "VmHWM reset" if can_reset else "ru_maxrss (not reset: includes load)"
    # Agreement: epoch 0 of the timed run when the whole epoch is checked, else a fresh short run
    # (after the measurements, so it cannot lower the memory peak by pre-faulting pages).
    check_n = check_samples(job["dtype"], len(x), job["batch"])
    if check_n == len(x):
        check_loss, check_weights = et.first_loss, et.first_weights
    else:
        check_loss, check_weights = agreement_run(
            factory, arch, dt, x, y, check_n, batch=job["batch"], seed=job["seed"]
        )
    np.savez(job["out"], *check_weights)
    return {
        "check_n": check_n,
        "check_loss": check_loss,
        "epoch_times": et.times,
        "losses": et.losses,
        "infer": infer,
        "mem": mem,
        "info": info,
    }


# ---------------------------------------------------------------------------------------------
# Parent: spawn workers, collect, print


def _worker_env(keep_blas_env: bool) -> dict[str, str]:
    env = dict(os.environ)
    if not keep_blas_env:
        for key in BLAS_ENV_VARS:
            env.pop(key, None)
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


def _children_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


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


def spawn(job: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """Run :func:`run_worker` in a fresh interpreter; its JSON result plus ``other_cpu``.

    ``other_cpu`` is the share of the machine's CPU time that processes other than the worker
    used while it ran (0 = quiet machine), from ``/proc/stat`` and the child's rusage.
    """
    cmd = [sys.executable, "-m", "bench.run_baselines", "--worker", json.dumps(job)]
    busy0, own0, t0 = _cpu_busy_s(), _children_cpu_s(), time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    busy1, own1, t1 = _cpu_busy_s(), _children_cpu_s(), time.monotonic()
    if proc.returncode != 0:
        raise RuntimeError(
            f"benchmark worker {job['impl']} {job['arch']} {job['dtype']} failed "
            f"(exit {proc.returncode}):\n{proc.stderr.strip()[-3000:]}"
        )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if busy0 is not None and busy1 is not None:
        other = (busy1 - busy0 - (own1 - own0)) / (t1 - t0) / (os.cpu_count() or 1)
        result["info"]["other_cpu"] = max(0.0, other)
    return result


def _merge(merged: dict[tuple[str, str, str], dict[str, Any]], job: dict, res: dict) -> None:
    """Fold one worker's result into the row of its (arch, dtype, impl), across rounds."""
    key = (job["arch"], job["dtype"], job["impl"])
    row = merged.get(key)
    if row is None:
        merged[key] = {**job, **res, "infer_runs": [res.get("infer", {})]}
        return
    row["epoch_times"] = row["epoch_times"] + res["epoch_times"]
    row["infer_runs"].append(res.get("infer", {}))
    row["infer"] = {
        b: float(np.median([r[b] for r in row["infer_runs"] if b in r]))
        for b in row.get("infer", {})
    }
    if res.get("mem"):
        row["mem"] = {k: max(v, res["mem"][k]) for k, v in row["mem"].items()}
    row["info"]["other_cpu"] = max(
        row["info"].get("other_cpu", 0.0), res["info"].get("other_cpu", 0.0)
    )


def _fmt_rate(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v / 1e6:.2f}M" if v >= 1e6 else f"{v / 1e3:.0f}k"


def print_table(rows: list[dict[str, Any]], n: int) -> None:
    head = (
        f"{'workload':<8} {'impl':<6} {'epoch s':>8} {'best s':>7} {'x GEMM':>7} {'train/s':>8} "
        f"{'inf@100/s':>10} {'inf@10k/s':>10} {'peak MiB':>9} {'other%':>6}  epoch times"
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
        times = " ".join(f"{t:.3f}" for t in r["epoch_times"])
        other = r["info"].get("other_cpu")
        other_s = "-" if other is None else f"{100 * other:.0f}"
        print(
            f"{r['arch'] + ' ' + r['dtype'][-2:]:<8} {r['impl']:<6} {med:>8.3f} "
            f"{min(r['epoch_times']):>7.3f} {ratio:>7} "
            f"{n / med:>8.0f} {_fmt_rate(infer.get('100')):>10} "
            f"{_fmt_rate(infer.get('10000')):>10} {peak:>9} {other_s:>6}  {times}"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--epochs", type=int, default=None, help="timed epochs (default 5; quick 3)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed epochs first (default 1)")
    ap.add_argument("--dtype", choices=["float32", "float64", "all"], default="all")
    ap.add_argument("--arch", choices=[*ARCHS, "all"], default="all")
    ap.add_argument("--impl", default="gemm,numpy,torch", help="comma list (default all)")
    ap.add_argument("--quick", action="store_true", help=f"{QUICK_N:,} samples, 3 epochs")
    ap.add_argument("--n", type=int, default=None, help="training samples (default 60000)")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep-blas-env", action="store_true", help="keep OPENBLAS_* in workers")
    ap.add_argument(
        "--rounds", type=int, default=1, help="repeat all workers R times, pool the epochs"
    )
    ap.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="S",
        help="before each worker, wait up to S seconds for an idle machine",
    )
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        print(json.dumps(run_worker(json.loads(args.worker))))
        return 0

    from bench.baselines import RUNNERS, torch_available
    from bench.common import load_data

    n = args.n or (QUICK_N if args.quick else 60_000)
    epochs = args.epochs or (3 if args.quick else 5)
    archs = list(ARCHS) if args.arch == "all" else [args.arch]
    dtypes = ["float32", "float64"] if args.dtype == "all" else [args.dtype]
    impls = [s.strip() for s in args.impl.split(",") if s.strip()]
    for impl in impls:
        if impl != "gemm" and impl not in RUNNERS:
            ap.error(f"unknown --impl {impl!r}; choose from gemm, {', '.join(RUNNERS)}")
    if "torch" in impls and not torch_available():
        print(
            "torch is not installed: skipping the PyTorch baseline "
            "(`.venv/bin/pip install torch==2.13.0`)"
        )
        impls.remove("torch")

    env = _worker_env(args.keep_blas_env)
    removed = [k for k in BLAS_ENV_VARS if k in os.environ and k not in env]
    data = load_data(n, np.float64, seed=args.seed)  # each worker casts to its dtype
    print(
        f"data: {data.source}; {n:,} training samples, batch {args.batch}, "
        f"{args.warmup} warm-up + {epochs} timed epochs per worker, {args.rounds} round(s)"
    )
    print(f"workers: one subprocess each; removed from their env: {', '.join(removed) or 'none'}")

    merged: dict[tuple[str, str, str], dict[str, Any]] = {}
    results: list[RunResult] = []
    with tempfile.TemporaryDirectory(prefix="golgi-bench-") as tmp:
        npz = os.path.join(tmp, "data.npz")
        np.savez(npz, x=data.x_train, y=data.y_train, xt=data.x_test, yt=data.y_test)
        # Rounds repeat the whole sequence, so slow spells of a shared machine fall on every
        # implementation alike rather than on whichever happened to run then.
        for rnd in range(args.rounds):
            for arch, dtype, impl in itertools.product(archs, dtypes, impls):
                out = os.path.join(tmp, f"{impl}-{arch}-{dtype}.npz")
                job = {
                    "spec": "gemm" if impl == "gemm" else RUNNERS[impl],
                    "impl": impl,
                    "arch": arch,
                    "dtype": dtype,
                    "n": n,
                    "batch": args.batch,
                    "epochs": epochs,
                    "warmup": args.warmup,
                    "seed": args.seed,
                    "data": npz,
                    "out": out,
                }
                if args.wait_quiet > 0:
                    wait_quiet(args.wait_quiet)
                res = spawn(job, env)
                _merge(merged, job, res)
                if impl == "gemm" or rnd > 0:
                    continue
                with np.load(out) as z:
                    weights = [z[f"arr_{i}"] for i in range(len(z.files))]
                results.append(
                    RunResult(
                        impl,
                        arch,
                        dtype,
                        n,
                        args.batch,
                        args.seed,
                        res["check_n"],
                        res["check_loss"],
                        weights,
                        res["epoch_times"],
                        res["losses"],
                        {int(k): v for k, v in res["infer"].items()},
                        res["mem"],
                        res["info"],
                    )
                )
    rows = list(merged.values())
    print(f"BLAS in workers: {rows[0]['info']['blas']}")
    if any(r["impl"] == "torch" for r in rows):
        print("torch threads: default (torch.get_num_threads())")
    print()
    print_table(rows, n)
    print()
    print("epoch s: median of the timed epochs; best s: the fastest. x GEMM: median epoch over")
    print("the GEMMs-alone median. train/s: training samples per second (median epoch).")
    print("inf@B/s: predict() samples/s at batch B on the 10,000 test images. peak MiB: rise of")
    print("the worker's peak RSS (VmHWM, reset after imports and data) while training.")
    print("other%: CPU share other processes used while the worker ran (0 = quiet machine).")
    worst = max(r["info"].get("other_cpu", 0.0) for r in rows)
    if worst > 0.1:
        print(
            f"WARNING: other processes used up to {100 * worst:.0f}% of the CPUs during a "
            "worker; its timings are inflated and noisy. Rerun on a quiet machine "
            "(--wait-quiet helps)."
        )
    print()
    print("agreement (same init, same order; float64 over all of epoch 0, float32 over its")
    print("first samples, see bench.common.CHECK_SAMPLES):")
    try:
        for line in check_agreement(results):
            print("  " + line)
    except AgreementError as exc:
        print(f"  FAILED: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
