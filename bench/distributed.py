"""Data-parallel training over MPI: what the gradient allreduce costs per step.

For the talk's two models (float32, global batch 100, RMSProp), on 1 process and on
``--ranks`` processes of this machine, one step is timed in its parts:

- ``compute``: gather the rank's rows, run the training machine (forward and backward);
- ``allreduce``: the step's collectives as ``fit(distributed=...)`` runs them (the tiny sum
  of the batch's loss and flags, started first, and the sum of the flat gradient array);
- ``solver``: the RMSProp step.

``overlap`` repeats the distributed step with one non-blocking allreduce per layer, each
started as soon as the backward pass has finished that layer's gradients (the last layer's
first), waited for after the backward pass; ``allreduce`` there is the wait. That needs
hooks inside the tape machine, so this script inserts them into the compiled plan's steps
(an experiment here, not a library feature). Also timed: a lone allreduce of the gradient
buffer (no compute around it), and the compute at several local batch sizes (the cost
model of docs/distributed.md is fitted to those).

Every configuration runs in its own ``mpiexec`` job, in rounds that alternate between them
(this VM's speed drifts); medians over the steps of each round, then the median round.

    python bench/distributed.py                  # 1 and 2 ranks, both models; prints a table
    python bench/distributed.py --write          # ... and writes bench/DISTRIBUTED.md

Needs mpi4py and mpiexec (``pip install 'golgi-dl[mpi]'``); mpiexec is looked up next to
the Python running this script, then on PATH.

Example (the parts of a step as measured, in ms):
    >>> sorted(summarize([{"compute": [1.0, 3.0], "solver": [1.0, 1.0]}]))
    ['compute', 'solver']
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("mlp", "ae")
GLOBAL_BATCH = 100


def summarize(rounds: list[dict[str, list[float]]], q: float = 50) -> dict[str, float]:
    """The median over rounds of each part's ``q``-th percentile over steps."""
    keys = rounds[0].keys()
    return {
        k: statistics.median(float(np.percentile(r[k], q)) for r in rounds) for k in keys
    }


# ----- worker: runs under mpiexec -------------------------------------------------------------


def _build(name: str, n: int) -> tuple[Any, np.ndarray, np.ndarray, Any]:
    import golgi as G
    import graphcore as gc

    gc.SetSeed(0)
    rng = np.random.default_rng(0)  # the same data on every rank; timings do not need MNIST
    X = rng.random((n, 784), dtype=np.float32)
    if name == "mlp":
        net = G.models.MLP()
        Y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)]
        return net, X, Y, G.CrossEntropy
    return G.models.Autoencoder(), X, X, G.BinaryCrossEntropy


def _layer_groups(mt: Any) -> list[list[Any]]:
    """The learnables of each layer (``fc1/W``, ``fc1/b``), in order."""
    groups: dict[str, list[Any]] = {}
    for w in mt.learnables:
        groups.setdefault(w.name.split("/")[0], []).append(w)
    return list(groups.values())


def _insert_starts(vm: Any, groups: list[list[Any]], starts: list[Any]) -> None:
    """Put ``starts[i]()`` into the compiled plan right after the step that finishes the
    last gradient of ``groups[i]`` (reads the plan's internals: an experiment)."""
    plan = vm.plan
    index = plan._step_index
    positions = sorted(index.values())
    at = []
    for group, start in zip(groups, starts):
        last = max(index[id(vm.derivs[id(w)])] for w in group)
        # the accumulation kernels of that step come before the next node's step
        nxt = next((p for p in positions if p > last), len(plan.steps))
        at.append((nxt, start))
    for pos, start in sorted(at, key=lambda t: -t[0]):
        plan.steps.insert(pos, start)


def worker(name: str, steps: int, warmup: int, out: str) -> None:
    import golgi as G
    import graphcore as gc
    from golgi.training.data import gather_rows

    dp = G.MPIDataParallel()  # under mpiexec, one rank or several
    comm = dp.comm
    rank, size = comm.rank, comm.size
    net, X, Y, loss = _build(name, 6000)
    solver = gc.NewRMSPropSolver(gc.WithLearnRate(0.001))
    trainer = G.Trainer(net, loss, solver)
    trainer.fit(X[:400], Y[:400], epochs=1, batch_size=GLOBAL_BATCH, seed=0, progress=False,
                distributed=dp)  # builds the graph, the machine and its plan
    mt = trainer._machines[False]
    vm, vgs, cost = mt.vm, mt.vgs, mt.cost
    feeds = [(trainer.ends.inputs[0], X), (trainer.graph.targets[0], Y)]
    ar = gc.AllreduceGrads(vgs, comm)
    small = np.zeros(3)
    order = np.random.default_rng(1).permutation(len(X))
    lo, hi = GLOBAL_BATCH * rank // size, GLOBAL_BATCH * (rank + 1) // size
    scale = (hi - lo) / GLOBAL_BATCH
    clock = time.perf_counter
    res: dict[str, Any] = {"model": name, "size": size, "params": sum(w.value.size for w in vgs),
                           "bytes": ar.nbytes, "messages": ar.messages, "packed": ar.packed}

    def rows(i: int) -> np.ndarray:
        s = (i * GLOBAL_BATCH) % (len(X) - GLOBAL_BATCH)
        return order[s : s + GLOBAL_BATCH][lo:hi]

    def step_parts(i: int, overlap: Any = None) -> dict[str, float]:
        t0 = clock()
        for node, data in feeds:
            gather_rows(node, data, rows(i))
        vm.run_all()
        small[0] = float(cost.value)
        t1 = clock()
        req = comm.iallreduce_sum(small)
        if overlap is None:
            ar(scale=scale)
        else:
            for a in overlap:
                a.wait()
        req.Wait()
        t3 = clock()
        solver.step(vgs)
        t4 = clock()
        return {"compute": t1 - t0, "allreduce": t3 - t1, "solver": t4 - t3, "step": t4 - t0}

    variants = ["plain", "overlap"] if size > 1 else ["plain"]
    plan = vm.plan
    own_steps = plan.steps
    with_starts = list(own_steps)
    if size > 1:
        # one allreduce per layer, each started in the backward pass
        groups = _layer_groups(mt)
        per_layer = [gc.AllreduceGrads(g, comm) for g in groups]
        res["overlap_packed"] = [a.packed for a in per_layer]  # [[False]]*layers: no copies
        plan.steps = with_starts
        _insert_starts(vm, groups, [lambda a=a: a.start(scale) for a in per_layer])
        plan.steps = own_steps
    timed: dict[str, dict[str, list[float]]] = {
        v: {"compute": [], "allreduce": [], "solver": [], "step": []} for v in variants
    }
    # the variants take turns step by step, so they see the same load on this shared machine
    for i in range(warmup + steps * len(variants)):
        v = variants[i % len(variants)]
        plan.steps = with_starts if v == "overlap" else own_steps
        got = step_parts(i, per_layer if v == "overlap" else None)
        if i >= warmup:
            for k, t in got.items():
                timed[v][k].append(t * 1e3)
    plan.steps = own_steps
    res.update(timed)
    if size > 1:
        # a lone allreduce of the gradient buffer, nothing around it
        lone = []
        for i in range(warmup + steps):
            comm.barrier()
            t0 = clock()
            comm.allreduce_sum(ar._groups[0].buf)
            if i >= warmup:
                lone.append((clock() - t0) * 1e3)
        res["lone"] = statistics.median(lone)
    else:
        # compute alone at local batch sizes, for the cost model
        sizes = [1, 2, 5, 12, 25, 50, 100]
        res["by_batch"] = {}
        for b in sizes:
            times = []
            for i in range(warmup + steps // 2):
                idx = order[(i * b) % (len(X) - b) :][:b]
                t0 = clock()
                for node, data in feeds:
                    gather_rows(node, data, idx)
                vm.run_all()
                if i >= warmup:
                    times.append((clock() - t0) * 1e3)
                for w in vgs:
                    w.zero_grad()
            res["by_batch"][b] = statistics.median(times)
    if rank == 0:
        Path(out).write_text(json.dumps(res))


# ----- driver -------------------------------------------------------------------------------


def mpiexec() -> str:
    here = Path(sys.executable).parent / "mpiexec"
    found = str(here) if here.exists() else shutil.which("mpiexec")
    if found is None:
        raise SystemExit("bench/distributed.py: no mpiexec; pip install 'golgi-dl[mpi]'")
    return found


def run_job(name: str, ranks: int, steps: int, warmup: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "res.json")
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
               "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        cmd = [mpiexec(), "-n", str(ranks), sys.executable, __file__, "--worker", name,
               "--steps", str(steps), "--warmup", str(warmup), "--out", out]
        subprocess.run(cmd, env=env, check=True, timeout=900, stdin=subprocess.DEVNULL)
        return json.loads(Path(out).read_text())


def table(results: dict[tuple[str, int], list[dict[str, Any]]], ranks: int) -> str:
    """Medians, and in brackets 10th percentiles (the steps no other job on this machine
    interrupted), over the steps of a round; the median round."""
    lines = [
        f"| model | gradients | 1 process, batch {GLOBAL_BATCH}: step | {ranks} ranks, batch "
        f"{GLOBAL_BATCH // ranks} each: compute | solver | allreduce | step | allreduce share "
        f"of the step | lone allreduce | one allreduce per layer, overlapped: compute "
        f"| allreduce wait | step |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in MODELS:
        one = summarize([r["plain"] for r in results[(name, 1)]])
        mid = summarize([r["plain"] for r in results[(name, ranks)]])
        low = summarize([r["plain"] for r in results[(name, ranks)]], 10)
        ov = summarize([r["overlap"] for r in results[(name, ranks)]])
        ov_low = summarize([r["overlap"] for r in results[(name, ranks)]], 10)
        lone = statistics.median(r["lone"] for r in results[(name, ranks)])
        r0 = results[(name, ranks)][0]

        def both(m: dict[str, float], lo: dict[str, float], k: str) -> str:
            return f"{m[k]:.2f} ({lo[k]:.2f}) ms"

        share = (f"{100 * mid['allreduce'] / mid['step']:.0f}% "
                 f"({100 * low['allreduce'] / low['step']:.0f}%)")
        lines.append(
            f"| {name} | {r0['params']:,} floats, {r0['bytes'] / 1e6:.2f} MB, "
            f"{r0['messages']} message | {one['step']:.2f} ms | {both(mid, low, 'compute')} "
            f"| {both(mid, low, 'solver')} | {both(mid, low, 'allreduce')} "
            f"| {both(mid, low, 'step')} | {share} | {lone:.2f} ms "
            f"| {both(ov, ov_low, 'compute')} | {both(ov, ov_low, 'allreduce')} "
            f"| {both(ov, ov_low, 'step')} |"
        )
    return "\n".join(lines)


def batch_table(results: dict[tuple[str, int], list[dict[str, Any]]]) -> str:
    sizes = list(results[(MODELS[0], 1)][0]["by_batch"])
    lines = ["| model | " + " | ".join(f"b={b}" for b in sizes) + " | fit: t0 + b * t_row |",
             "|---|" + "---|" * (len(sizes) + 1)]
    for name in MODELS:
        med = {b: statistics.median(r["by_batch"][b] for r in results[(name, 1)]) for b in sizes}
        b_arr = np.array([int(b) for b in sizes], float)
        t = np.array([med[b] for b in sizes])
        slope, icpt = np.polyfit(b_arr, t, 1)
        lines.append(f"| {name} | " + " | ".join(f"{med[b]:.2f}" for b in sizes)
                     + f" | {icpt:.2f} ms + b * {slope * 1e3:.1f} us |")
    return "\n".join(lines)


#: (latency alpha in s, bandwidth beta in bytes/s) per message between two nodes: what MPI
#: reaches on an InfiniBand HDR fabric (200 Gb/s) and over TCP on 10 Gb Ethernet
NETWORKS = {
    "InfiniBand HDR 200 Gb/s (alpha 2 us, beta 20 GB/s)": (2e-6, 20e9),
    "10 Gb Ethernet, TCP (alpha 30 us, beta 1.1 GB/s)": (30e-6, 1.1e9),
}
NODES = (1, 2, 4, 8, 16, 32, 64)


def ring_allreduce(nbytes: float, nodes: int, alpha: float, beta: float) -> float:
    """Seconds for a ring allreduce of ``nbytes`` on ``nodes``: 2(N-1) steps, each one
    latency and 1/N of the buffer, so every rank sends and receives 2(N-1)/N of it."""
    if nodes == 1:
        return 0.0
    return 2 * (nodes - 1) * alpha + 2 * (nodes - 1) / nodes * nbytes / beta


def compute_at(by_batch: dict[int, float], b: float) -> float:
    """Forward and backward ms at local batch ``b``, interpolated between measured sizes."""
    xs = sorted(by_batch)
    return float(np.interp(b, xs, [by_batch[x] for x in xs]))


def cost_model(by_batch: dict[int, float], solver_ms: float, nbytes: float) -> str:
    """The predicted step (ms), allreduce share and speed-up over one node, for global batch
    100 split over N nodes and for 100 per node (global 100 N), on each network."""
    lines = []
    for net, (alpha, beta) in NETWORKS.items():
        lines += [f"{net}:", "",
                  "| nodes | batch per node | step | allreduce | share | speed-up "
                  "| batch 100 per node: step | share | samples/s vs one node |",
                  "|---|---|---|---|---|---|---|---|---|"]
        one = compute_at(by_batch, GLOBAL_BATCH) + solver_ms
        for n in NODES:
            ar = ring_allreduce(nbytes, n, alpha, beta) * 1e3
            b = GLOBAL_BATCH / n
            step = compute_at(by_batch, math.ceil(b)) + solver_ms + ar
            weak = one + ar
            lines.append(
                f"| {n} | {b:g} | {step:.2f} ms | {ar:.3f} ms | {100 * ar / step:.0f}% "
                f"| {one / step:.2f}x | {weak:.2f} ms | {100 * ar / weak:.0f}% "
                f"| {n * one / weak:.1f}x |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--worker", choices=MODELS, help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--ranks", type=int, default=2, help="ranks of the distributed runs")
    p.add_argument("--steps", type=int, default=300, help="timed steps per round")
    p.add_argument("--warmup", type=int, default=30, help="untimed steps first")
    p.add_argument("--rounds", type=int, default=3, help="rounds (jobs per configuration)")
    p.add_argument("--write", action="store_true", help="write bench/DISTRIBUTED.md")
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="S",
                   help="before each job, wait up to S s for a load average below 1")
    args = p.parse_args(argv)
    if args.worker:
        worker(args.worker, args.steps, args.warmup, args.out)
        return 0
    t0 = time.time()
    results: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for rnd in range(args.rounds):
        for name in MODELS:
            for ranks in ((1, args.ranks) if rnd % 2 == 0 else (args.ranks, 1)):
                _wait_quiet(args.wait_quiet)
                print(f"round {rnd + 1}: {name} on {ranks} rank(s), load "
                      f"{os.getloadavg()[0]:.1f}", file=sys.stderr)
                results.setdefault((name, ranks), []).append(
                    run_job(name, ranks, args.steps, args.warmup)
                )
    head = (
        f"- machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.system()} {platform.release()}\n"
        f"- python {platform.python_version()}, numpy {np.__version__}, "
        f"{_mpi_version()}\n"
        f"- load average when it ended: {', '.join(f'{v:.1f}' for v in os.getloadavg())} "
        f"(other jobs share this machine's {os.cpu_count()} cores)\n"
        f"- `python bench/distributed.py --ranks {args.ranks} --steps {args.steps} "
        f"--rounds {args.rounds}` ({time.time() - t0:.0f} s, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}); one BLAS thread per rank"
    )
    text = f"{head}\n\n{table(results, args.ranks)}\n\n{batch_table(results)}\n"
    for name in MODELS:
        one = results[(name, 1)]
        by_batch = {int(b): statistics.median(r["by_batch"][b] for r in one)
                    for b in one[0]["by_batch"]}
        solver_ms = summarize([r["plain"] for r in one])["solver"]
        text += (f"\nCost model, {name} ({one[0]['bytes']:,} bytes of gradients, solver "
                 f"{solver_ms:.2f} ms):\n\n{cost_model(by_batch, solver_ms, one[0]['bytes'])}")
    print(text)
    if args.write:
        _write(text)
    return 0


def _wait_quiet(seconds: float) -> None:
    """Wait (up to ``seconds``) until the machine's 1-minute load average is below 1."""
    end = time.time() + seconds
    while time.time() < end and os.getloadavg()[0] >= 1.0:
        time.sleep(5)


def _mpi_version() -> str:
    try:
        import mpi4py

        code = "from mpi4py import MPI; print(MPI.Get_library_version().splitlines()[0])"
        lib = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=60).stdout.strip()
        return f"mpi4py {mpi4py.__version__}, {' '.join(lib.split())}"
    except Exception:  # noqa: BLE001 - only a label
        return "mpi4py ?"


def _write(text: str) -> None:
    path = ROOT / "bench" / "DISTRIBUTED.md"
    old = path.read_text() if path.exists() else ""
    start, end = "<!-- results: start -->", "<!-- results: end -->"
    if start in old and end in old:
        new = old[: old.index(start) + len(start)] + "\n" + text + old[old.index(end) :]
    else:
        new = f"{old}\n{start}\n{text}{end}\n"
    path.write_text(new)


if __name__ == "__main__":
    sys.exit(main())
