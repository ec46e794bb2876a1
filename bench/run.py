"""The benchmark: every implementation side by side, written to ``bench/RESULTS.md``.

Runs ``bench/run_baselines.py`` with (a) graphcore's tape machine, (b) golgi's ``fit``,
(c) hand-written numpy, (d) PyTorch CPU (when installed) and the GEMMs-alone floor, for the
MLP and the autoencoder in float32 and float64, then records the machine, the versions, the
command, the full table and the ratios (a)/(c), (a)/(d), (b)/(a), (a)/GEMMs.

The headline ratios are paired: the implementations take turns epoch by epoch, and each
round's ratio compares two epochs run seconds apart, so the drift of a shared VM's speed
(up to 2x over tens of seconds) mostly cancels; the table gives their median over the rounds.
Ratios of the pooled medians and of the best epochs follow.

    .venv/bin/python bench/run.py                 # full: 60,000 samples, 5 rounds of 1 epoch
    .venv/bin/python bench/run.py --quick         # 6,000 samples, 3 rounds (a minute or two)
    .venv/bin/python bench/run.py --rounds 9      # more rounds: tighter paired ratios
"""

from __future__ import annotations

import contextlib
import io
import os
import platform
import re
import sys
import time
from collections.abc import Callable
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

    parts = [
        f"python {platform.python_version()}",
        f"numpy {numpy.__version__}",
        f"scipy {scipy.__version__}",
    ]
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
        if line[:1].isspace():  # the indented per-round ratio lines share the first tokens
            continue
        tok = line.split()
        if len(tok) > column and tok[0] in ("mlp", "ae") and tok[1] in ("32", "64"):
            try:
                out[(tok[0], tok[1], tok[2])] = float(tok[column])
            except ValueError:
                continue
    return out


PAIR_COLUMNS = (
    ("graphcore", "numpy", "tape / numpy"),
    ("graphcore", "torch", "tape / torch"),
    ("golgi-fit", "graphcore", "fit / tape"),
    ("graphcore", "gemm", "tape / GEMMs"),
    ("graphcore-np", "numpy", "tape, numpy only / numpy"),
)
WORKLOADS = [(arch, bits) for arch in ("mlp", "ae") for bits in ("32", "64")]


def _table(cell: Callable[[str, str, str, str], str | None]) -> str:
    """A markdown table: a row per workload the tape machine ran, a column per pair."""
    rows = [
        "| workload | " + " | ".join(c[2] for c in PAIR_COLUMNS) + " |",
        "|---" * (len(PAIR_COLUMNS) + 1) + "|",
    ]
    for arch, bits in WORKLOADS:
        cells = [cell(arch, bits, a, b) for a, b, _ in PAIR_COLUMNS]
        if all(c is None for c in cells):
            continue
        rows.append(f"| {arch} float{bits} | " + " | ".join(c or "-" for c in cells) + " |")
    return "\n".join(rows)


def _ratios(times: dict[tuple[str, str, str], float]) -> str:
    """Ratios of the per-implementation epoch times in ``times`` (medians or bests)."""

    def cell(arch: str, bits: str, a: str, b: str) -> str | None:
        ta, tb = times.get((arch, bits, a)), times.get((arch, bits, b))
        return f"{ta / tb:.2f}" if ta and tb else None

    return _table(cell)


def _paired(text: str) -> dict[tuple[str, str, str, str], tuple[float, float, float]]:
    """``(arch, bits, a, b) -> (median, min, max)`` of the per-round ratios that
    ``run_baselines`` prints (``format_ratio_lines``)."""
    out = {}
    for m in re.finditer(run_baselines.RATIO_LINE, text, re.MULTILINE):
        arch, bits, a, b, med, lo, hi = m.groups()
        out[(arch, bits, a, b)] = (float(med), float(lo), float(hi))
    return out


def _paired_table(paired: dict[tuple[str, str, str, str], tuple[float, float, float]]) -> str:
    def cell(arch: str, bits: str, a: str, b: str) -> str | None:
        v = paired.get((arch, bits, a, b))
        return None if v is None else f"{v[0]:.2f} ({v[1]:.2f}-{v[2]:.2f})"

    return _table(cell)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not any(a.startswith("--impl") for a in argv):
        argv = ["--impl", IMPLS, *argv]
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

Written by `bench/run.py` ({time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(start))},
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

## Ratios of epoch times, paired by round (lower is faster for the first name)

The implementations take turns: in each round every one trains one epoch, seconds after the
others, in an order that changes every round. This VM's speed drifts by up to 2x over tens of
seconds, so each round's ratio compares the two at one speed of the machine. Median over the
rounds of the per-round ratio (min-max in brackets):

{_paired_table(_paired(table))}

Ratios of the median epochs (all rounds pooled), then of the best epochs (the quiet moments):

{_ratios(_epoch_times(table))}

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
