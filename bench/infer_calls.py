"""Microseconds per ``predict`` call at batch 1, 100 and 10,000, and the memory of the imports:
two trees of the library (before and after a change) side by side, taking turns.

The MLP (784-250-100-10, float32, random weights and inputs; ``--arch ae``: the autoencoder,
784-250-50-250-784 with a sigmoid head): hand numpy (``bench.baselines.NumpyRunner``),
graphcore's tape machine (``GraphcoreRunner``: the prediction machine's ``function``, which
lends the input and writes the output in place) and golgi's ``Trainer.predict``
(``GolgiFitRunner``), each with the compiled kernels (``fast``) and
without (``GRAPHCORE_NUMBA=0``, ``default``). Batch 1 predicts 1,000 rows one call each,
batch 100 and 10,000 predict 10,000 rows, as ``bench/run.py``'s inference part does.

Every round starts one worker process per (tree, backend), in an order that turns every
round; inside a worker the three implementations take turns repeat by repeat, so their ratio
compares one moment of a shared machine. Times are this process's CPU time (BLAS on one
thread), the median over a worker's repeats; the report gives medians over rounds.

Usage (from the repository root; ``--before`` is a checkout of the tree to compare with)::

    git archive main | tar -x -C /tmp/before
    PYTHONPATH=$PWD .venv/bin/python bench/infer_calls.py --before /tmp/before --rounds 5

Example:
    >>> rate_ratio(34.0, 68.0)
    0.5
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from statistics import median
from typing import Any

BATCHES = ((1, 1_000), (100, 10_000), (10_000, 10_000))
IMPLS = ("numpy", "graphcore", "golgi")
BACKENDS = {"fast": "1", "default": "0"}
HERE = Path(__file__).resolve().parent.parent


def rate_ratio(hand_us: float, us: float) -> float:
    """Samples/s of an implementation over hand numpy's, from their microseconds per call."""
    return hand_us / us


def worker(repeats: int, arch_name: str = "mlp") -> dict[str, Any]:
    """Per-call CPU microseconds of every implementation at every batch size (this tree)."""
    import numpy as np

    from bench.baselines import NumpyRunner
    from bench.common import ARCHS, init_weights
    from bench.graphcore_runner import GolgiFitRunner, GraphcoreRunner

    arch = ARCHS[arch_name]
    weights = init_weights(arch, np.float32)
    runners = {
        "numpy": NumpyRunner(arch, np.float32, weights),
        "graphcore": GraphcoreRunner(arch, np.float32, weights),
        "golgi": GolgiFitRunner(arch, np.float32, weights),
    }
    x = np.random.default_rng(0).random((10_000, arch.sizes[0]), dtype=np.float32)
    import graphcore

    out: dict[str, Any] = {"graphcore": graphcore.__file__}
    for batch, n in BATCHES:
        xs = x[:n]
        for r in runners.values():
            r.predict(xs, batch)  # plans, buffers, compiled kernels
        times: dict[str, list[float]] = {k: [] for k in runners}
        for rep in range(repeats):
            order = list(runners)[rep % 3 :] + list(runners)[: rep % 3]
            for k in order:
                t0 = time.process_time()
                runners[k].predict(xs, batch)
                times[k].append((time.process_time() - t0) / (n // batch) * 1e6)
        out[str(batch)] = {k: median(v) for k, v in times.items()}
    return out


def import_rss(tree: str, backend: str, modules: str) -> dict[str, float]:
    """Peak RSS (MiB) of a fresh interpreter after ``import numpy`` and after ``modules``."""
    code = (
        "import resource, numpy\n"
        "a = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        f"import {modules}\n"
        "b = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(a / 1024, b / 1024)\n"
    )
    env = dict(os.environ, PYTHONPATH=tree, GRAPHCORE_NUMBA=BACKENDS[backend])
    # -P: not the working directory first on the path, so PYTHONPATH picks the tree
    res = subprocess.run([sys.executable, "-P", "-c", code], env=env, capture_output=True,
                         text=True, check=True)
    a, b = map(float, res.stdout.split())
    return {"numpy": a, "total": b, "over_numpy": b - a}


def main(argv: list[str] | None = None) -> None:
    """Run the rounds and print the report (markdown)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", required=True, help="the tree to compare with")
    ap.add_argument("--after", default=str(HERE), help="this tree (default)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=5, help="timings per worker and batch")
    ap.add_argument("--arch", default="mlp", choices=("mlp", "ae"),
                    help="the MLP (784-250-100-10) or the autoencoder (784-250-50-250-784)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        print(json.dumps(worker(a.repeats, a.arch)))
        return
    trees = {"before": str(Path(a.before).resolve()), "after": a.after}
    jobs = [(t, b) for t in trees for b in BACKENDS]
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {j: [] for j in jobs}
    rss: dict[tuple[str, str, str], list[dict[str, float]]] = {}
    for r in range(a.rounds):
        for tree, backend in jobs[r % len(jobs) :] + jobs[: r % len(jobs)]:
            env = dict(os.environ, PYTHONPATH=trees[tree], GRAPHCORE_NUMBA=BACKENDS[backend],
                       OPENBLAS_NUM_THREADS="1")
            res = subprocess.run(
                [sys.executable, __file__, "--before", a.before, "--worker",
                 "--repeats", str(a.repeats), "--arch", a.arch],
                env=env, capture_output=True, text=True, check=True,
            )
            run = json.loads(res.stdout.strip().splitlines()[-1])
            if not run.pop("graphcore").startswith(trees[tree]):
                raise RuntimeError(f"the {tree} worker did not import graphcore from {trees[tree]}")
            runs[(tree, backend)].append(run)
            for mods in ("graphcore", "graphcore, golgi"):
                rss.setdefault((tree, backend, mods), []).append(
                    import_rss(trees[tree], backend, mods)
                )
        print(f"round {r + 1}/{a.rounds} done", file=sys.stderr)
    print(f"{a.arch}: CPU microseconds per predict call, median over {a.rounds} rounds (min-max "
          f"of the rounds' medians); rate / hand numpy: per-round ratio, median\n")
    print("| backend | impl | batch | before us | after us | after/before | rate/numpy before "
          "| rate/numpy after |")
    print("|---|---|---|---|---|---|---|---|")
    for backend in BACKENDS:
        for impl in IMPLS:
            for batch, _ in BATCHES:
                b = str(batch)
                cells = []
                for tree in trees:
                    us = [run[b][impl] for run in runs[(tree, backend)]]
                    cells.append(us)
                bef, aft = cells
                ratio = median(x / y for x, y in zip(aft, bef))
                rates = [
                    median(rate_ratio(run[b]["numpy"], run[b][impl])
                           for run in runs[(tree, backend)])
                    for tree in trees
                ]
                print(f"| {backend} | {impl} | {batch} | {median(bef):.1f} ({min(bef):.1f}-"
                      f"{max(bef):.1f}) | {median(aft):.1f} ({min(aft):.1f}-{max(aft):.1f}) | "
                      f"{ratio:.2f} | {rates[0]:.2f} | {rates[1]:.2f} |")
    print("\nPeak RSS of a fresh interpreter, MiB (median of the rounds): after `import numpy`, "
          "and the rise over it\n")
    print("| backend | imports | before: numpy / +imports | after: numpy / +imports |")
    print("|---|---|---|---|")
    for backend in BACKENDS:
        for mods in ("graphcore", "graphcore, golgi"):
            cells = []
            for tree in trees:
                v = rss[(tree, backend, mods)]
                cells.append(f"{median(x['numpy'] for x in v):.1f} / "
                             f"+{median(x['over_numpy'] for x in v):.1f}")
            print(f"| {backend} | `import {mods}` | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
