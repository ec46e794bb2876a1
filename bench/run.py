"""The benchmark: every implementation side by side, written to ``bench/RESULTS.md``.

Runs ``bench/run_baselines.py`` with (a) graphcore's tape machine, (b) golgi's ``fit``,
(c) hand-written numpy, (d) PyTorch CPU (when installed) and the GEMMs-alone floor, for the
MLP and the autoencoder in float32 and float64, then records the machine, the versions, the
command, the full table and the ratios (a)/(c), (a)/(d) and (b)/(a).

    .venv/bin/python bench/run.py                 # full: 60,000 samples, 3 timed epochs
    .venv/bin/python bench/run.py --quick         # 6,000 samples (a minute)
"""

from __future__ import annotations

import contextlib
import io
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import run_baselines  # noqa: E402

IMPLS = "gemm,numpy,torch,graphcore,graphcore-np,golgi-fit"


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _versions() -> str:
    import numpy
    import scipy

    parts = [f"python {platform.python_version()}", f"numpy {numpy.__version__}",
             f"scipy {scipy.__version__}"]
    try:
        import torch

        parts.append(f"torch {torch.__version__}")
    except ImportError:
        parts.append("torch not installed")
    import golgi

    parts.append(f"golgi {getattr(golgi, '__version__', '0.1.0')}")
    return ", ".join(parts)


def _epoch_times(table: str, column: int = 3) -> dict[tuple[str, str, str], float]:
    """``(arch, dtype bits, impl) -> epoch seconds`` from the printed table: the median
    (column 3) or the best epoch (column 4)."""
    out: dict[tuple[str, str, str], float] = {}
    for line in table.splitlines():
        tok = line.split()
        if len(tok) > column and tok[0] in ("mlp", "ae") and tok[1] in ("32", "64"):
            try:
                out[(tok[0], tok[1], tok[2])] = float(tok[column])
            except ValueError:
                continue
    return out


def _ratios(times: dict[tuple[str, str, str], float]) -> str:
    rows = ["| workload | tape / numpy | tape / torch | fit / tape | tape / GEMMs "
            "| tape, numpy only / numpy |", "|---|---|---|---|---|---|"]
    for arch in ("mlp", "ae"):
        for bits in ("32", "64"):
            t = {impl: times.get((arch, bits, impl)) for impl in
                 ("gemm", "numpy", "torch", "graphcore", "graphcore-np", "golgi-fit")}
            if t["graphcore"] is None:
                continue

            def r(a: str, b: str, t: dict = t) -> str:
                return f"{t[a] / t[b]:.2f}" if t[a] and t[b] else "-"

            rows.append(f"| {arch} float{bits} | {r('graphcore', 'numpy')} | "
                        f"{r('graphcore', 'torch')} | {r('golgi-fit', 'graphcore')} | "
                        f"{r('graphcore', 'gemm')} | {r('graphcore-np', 'numpy')} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not any(a.startswith("--impl") for a in argv):
        argv = ["--impl", IMPLS, *argv]
    if not any(a.startswith("--epochs") for a in argv) and "--quick" not in argv:
        argv = ["--epochs", "3", *argv]
    buf = io.StringIO()
    start = time.time()

    class Tee(io.TextIOBase):
        def write(self, s: str) -> int:
            sys.__stdout__.write(s)
            buf.write(s)
            return len(s)

    with contextlib.redirect_stdout(Tee()):
        rc = run_baselines.main(argv)
    table = buf.getvalue()
    cmd = "bench/run.py " + " ".join(argv)
    text = f"""# Benchmark results

Written by `bench/run.py` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(start))},
{time.time() - start:.0f} s). Regenerate with `make bench` (`.venv/bin/python bench/run.py`).

- machine: {_cpu()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}
- versions: {_versions()}
- command: `{cmd}`

Implementations: (a) `graphcore`: the model written with graphcore ops, run by the tape
machine, stepped by `NewRMSPropSolver`, with numba's fused solver kernels on (the `fast`
extra); `graphcore-np`: the same with them off, numpy and scipy only; (b) `golgi-fit`: the
same model declared with `ComposeSeq`/`ConsFC` and trained by `golgi.fit`; (c) `numpy`:
hand-written numpy with manual backprop; (d) `torch`: PyTorch CPU eager; `gemm`: the matrix
products alone. All start from the same weights, visit the data in the same order and use
Gorgonia's RMSProp.

## Ratios of median epoch times (lower is faster for the first name)

{_ratios(_epoch_times(table))}

The same from each implementation's best epoch (this shared VM's speed drifts by up to 2x
within a run, so the best epochs compare the quiet moments):

{_ratios(_epoch_times(table, 4))}

## Full output

```
{table.rstrip()}
```
"""
    (ROOT / "bench" / "RESULTS.md").write_text(text)
    print(f"wrote {ROOT / 'bench' / 'RESULTS.md'}")
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
