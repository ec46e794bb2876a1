"""The benchmark: every implementation side by side, written to ``bench/RESULTS.md``.

Runs ``bench/run_baselines.py`` with graphcore's tape machine (with the compiled kernels of the
``fast`` extra, and without: the default install), golgi's ``fit``, hand-written numpy,
PyTorch CPU eager and JAX (whole epoch in one ``lax.scan``) where installed, and the
GEMMs-alone floor, on the MLP and the autoencoder in float32 and float64 and on the convnet
and the residual network in float32; then records the machine, the versions, the command, the
issue's table of ratios against the targets, the ratios before the kernel redesign next to
today's, and the full output.

The headline ratios are paired: the implementations take turns epoch by epoch, and each
round's ratio compares two epochs run seconds apart, so the drift of a shared VM's speed
(up to 2x over tens of seconds) mostly cancels; the tables give their median over the rounds
and the min-max.

    .venv/bin/python bench/run.py                 # full: 60,000 samples, 5 rounds of 1 epoch
    .venv/bin/python bench/run.py --quick         # 6,000 samples, 3 rounds (a few minutes)
    .venv/bin/python bench/run.py --rounds 9 --threads 1
    .venv/bin/python bench/run.py --before-tree DIR   # also the library checked out in DIR
    .venv/bin/python bench/run.py --rerender      # RESULTS.md's tables again from its output
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

IMPLS = "gemm,numpy,torch,jax,graphcore,graphcore-np,golgi-fit"
# With --before-tree DIR (a checkout of the library before a change): the tape machine on it,
# paired round by round with today's.
BEFORE_IMPLS = ",graphcore-before,graphcore-np-before"
ARCHS = "all"
# The run the redesign is measured against ("no workload slower than before").
BEFORE = ROOT / "bench" / "RESULTS-2026-11-27.md"


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
    for name in ("numba", "torch", "jax"):
        try:
            mod = __import__(name)
            parts.append(f"{name} {mod.__version__}")
        except ImportError:
            parts.append(f"{name} not installed")
    import golgi

    parts.append(f"golgi {getattr(golgi, '__version__', '0.1.0')}")
    return ", ".join(parts)


ALL_ARCHS = ("mlp", "ae", "convnet", "resnet")


def _epoch_times(table: str, column: int = 3) -> dict[tuple[str, str, str], float]:
    """``(arch, dtype bits, impl) -> value`` from the printed table: the median epoch
    (column 3), the best epoch (4), or another numeric column (12: total MiB)."""
    out: dict[tuple[str, str, str], float] = {}
    for line in table.splitlines():
        if line[:1].isspace():  # the indented per-round ratio lines share the first tokens
            continue
        tok = line.split()
        if len(tok) > column and tok[0] in ALL_ARCHS and tok[1] in ("32", "64"):
            try:
                out[(tok[0], tok[1], tok[2])] = float(tok[column])
            except ValueError:
                continue
    return out


PAIR_COLUMNS = (
    ("graphcore", "numpy", "tape / numpy"),
    ("graphcore", "torch", "tape / torch"),
    ("graphcore", "jax", "tape / jax"),
    ("golgi-fit", "graphcore", "fit / tape"),
    ("graphcore", "gemm", "tape / GEMMs"),
    ("graphcore-np", "numpy", "tape, numpy only / numpy"),
    ("graphcore-np", "torch", "tape, numpy only / torch"),
)
WORKLOADS = [(arch, bits) for arch in ALL_ARCHS for bits in ("32", "64")]

Ratios = dict[tuple[str, str, str, str], tuple[float, float, float]]


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


def _paired(text: str, pattern: str = run_baselines.RATIO_LINE) -> Ratios:
    """``(arch, bits, a, b) -> (median, min, max)`` of the per-round ratios that
    ``run_baselines`` prints (``format_ratio_lines``; with ``CPU_LINE``, those of CPU time)."""
    out = {}
    for m in re.finditer(pattern, text, re.MULTILINE):
        arch, bits, a, b, med, lo, hi = m.groups()
        out[(arch, bits, a, b)] = (float(med), float(lo), float(hi))
    return out


def _infer(text: str) -> dict[tuple[str, str, str, str, str], tuple[float, float, float]]:
    """``(arch, bits, a, b, batch) -> (median, min, max)`` of the per-round inference ratios."""
    out = {}
    for m in re.finditer(run_baselines.INFER_LINE, text, re.MULTILINE):
        arch, bits, a, b, batch, med, lo, hi = m.groups()
        out[(arch, bits, a, b, batch)] = (float(med), float(lo), float(hi))
    return out


def _paired_table(paired: Ratios) -> str:
    def cell(arch: str, bits: str, a: str, b: str) -> str | None:
        v = paired.get((arch, bits, a, b))
        return None if v is None else _fmt(v)

    return _table(cell)


def _fmt(v: tuple[float, float, float] | None) -> str:
    return "-" if v is None else f"{v[0]:.2f} ({v[1]:.2f}-{v[2]:.2f})"


GOLGI_ROWS = (
    ("graphcore", "golgi with numba (`fast`)"),
    ("graphcore-np", "golgi, default install"),
)


def issue_table(text: str, bits: str = "32", cpu: bool = False) -> str:
    """The issue's table: a row per golgi install, medians (min-max) of per-round ratios of
    epoch wall times (or, with ``cpu``, of the epochs' CPU seconds).

    Example:
        >>> issue_table("").splitlines()[2].startswith("| golgi with numba")
        True
    """
    paired = _paired(text, run_baselines.CPU_LINE if cpu else run_baselines.RATIO_LINE)
    infer = _infer(text)
    total = _epoch_times(text, 12)
    us1 = _epoch_times(text, 7)
    head = (
        "| float" + bits + " | MLP / hand numpy | MLP / PyTorch | MLP / JAX | MLP / GEMMs | "
        "AE / hand numpy | AE / PyTorch | AE / JAX | AE / GEMMs | "
        "peak RSS / hand numpy (MLP, AE) | inference rate / hand numpy, MLP @1, @100, @10k "
        "(us per call @1) | convnet / PyTorch | resnet / PyTorch |"
    )
    rows = [head, "|---" * 13 + "|"]
    for impl, label in GOLGI_ROWS:
        cells = []
        for arch in ("mlp", "ae"):
            for other in ("numpy", "torch", "jax", "gemm"):
                cells.append(_fmt(paired.get((arch, bits, impl, other))))
        mem = []
        for arch in ("mlp", "ae"):
            a, b = total.get((arch, bits, impl)), total.get((arch, bits, "numpy"))
            mem.append(f"{a / b:.2f}" if a and b else "-")
        cells.append(", ".join(mem))
        rates = []
        for batch in ("1", "100", "10000"):
            v = infer.get(("mlp", bits, impl, "numpy", batch))
            rates.append("-" if v is None else f"{v[0]:.2f}")
        us = us1.get(("mlp", bits, impl))
        cells.append(", ".join(rates) + (f" ({us:.0f} us)" if us else ""))
        for arch in ("convnet", "resnet"):
            cells.append(_fmt(paired.get((arch, bits, impl, "torch"))))
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


# (label, arch, a, b, comparison, bound): what the issue asks of each install.
TARGETS = (
    ("fast: MLP epoch <= JAX (lax.scan)", "mlp", "graphcore", "jax", "<=", 1.0),
    ("fast: AE epoch <= JAX (lax.scan)", "ae", "graphcore", "jax", "<=", 1.0),
    ("fast: MLP epoch <= 1.15x GEMMs alone", "mlp", "graphcore", "gemm", "<=", 1.15),
    ("fast: AE epoch <= 1.15x GEMMs alone", "ae", "graphcore", "gemm", "<=", 1.15),
    ("default: MLP epoch <= 0.85x hand numpy", "mlp", "graphcore-np", "numpy", "<=", 0.85),
    ("default: AE epoch <= 0.85x hand numpy", "ae", "graphcore-np", "numpy", "<=", 0.85),
    ("fast: convnet epoch <= PyTorch eager", "convnet", "graphcore", "torch", "<=", 1.0),
    ("fast: resnet epoch <= PyTorch eager", "resnet", "graphcore", "torch", "<=", 1.0),
    ("default: convnet epoch <= PyTorch eager", "convnet", "graphcore-np", "torch", "<=", 1.0),
    ("default: resnet epoch <= PyTorch eager", "resnet", "graphcore-np", "torch", "<=", 1.0),
)
MEM_TARGETS = (("default", "graphcore-np", 1.10), ("fast", "graphcore", 1.25))


def _met(v: tuple[float, float, float] | None, ok: Callable[[float], bool]) -> str:
    return "-" if v is None else ("yes" if ok(v[0]) else "no")


def targets_table(text: str) -> str:
    """Each target of the issue (float32), the median per-round ratio of wall times and of
    CPU times (min-max), and whether each median meets it."""
    wall, cpu = _paired(text), _paired(text, run_baselines.CPU_LINE)
    infer = _infer(text)
    total = _epoch_times(text, 12)
    rows = [
        "| target | wall: median (min-max) | CPU: median (min-max) | met (wall, CPU) |",
        "|---|---|---|---|",
    ]
    for label, arch, a, b, _, bound in TARGETS:
        w, c = wall.get((arch, "32", a, b)), cpu.get((arch, "32", a, b))

        def ok(r: float, bound: float = bound) -> bool:
            return r <= bound

        rows.append(f"| {label} | {_fmt(w)} | {_fmt(c)} | {_met(w, ok)}, {_met(c, ok)} |")
    for name, impl, bound in MEM_TARGETS:
        for arch in ("mlp", "ae"):
            a, b = total.get((arch, "32", impl)), total.get((arch, "32", "numpy"))
            r = a / b if a and b else None
            met = "-" if r is None else ("yes" if r <= bound else "no")
            rows.append(
                f"| {name}: {arch} peak RSS <= {bound:.2f}x hand numpy | "
                f"{'-' if r is None else f'{r:.3f}'} | | {met} |"
            )
    for impl, name in (("graphcore", "fast"), ("graphcore-np", "default")):
        for batch in ("1", "100", "10000"):
            v = infer.get(("mlp", "32", impl, "numpy", batch))
            rows.append(
                f"| {name}: MLP inference rate @{batch} >= hand numpy | {_fmt(v)} | | "
                f"{_met(v, lambda r: r >= 1.0)} |"
            )
    for arch in ("mlp", "ae"):
        for b in ("numpy", "torch", "jax"):
            w, c = wall.get((arch, "64", "graphcore", b)), cpu.get((arch, "64", "graphcore", b))
            rows.append(
                f"| float64 keeps its lead: {arch} fast / {b} | {_fmt(w)} | {_fmt(c)} | "
                f"{_met(w, lambda r: r <= 1.0)}, {_met(c, lambda r: r <= 1.0)} |"
            )
    return "\n".join(rows)


BEFORE_PAIRS = (
    ("graphcore", "numpy", "tape / numpy"),
    ("graphcore-np", "numpy", "tape, numpy only / numpy"),
    ("golgi-fit", "graphcore", "fit / tape"),
    ("graphcore", "gemm", "tape / GEMMs"),
    ("graphcore", "torch", "tape / torch"),
)


def before_after(before: str, now: str) -> str:
    """Median per-round ratios of the earlier run next to today's, per workload and pair; and,
    where this run had the earlier library too (``--before-tree``), today's tape over the
    earlier one, paired by round.

    Both runs share hand numpy, PyTorch and the GEMMs (their code did not change), so a
    ratio against them moving up means the library got slower relative to the same yardstick.

    Example:
        >>> before_after("", "").splitlines()[0]
        '| workload | pair | earlier run | this run | this / earlier |'
    """
    old, new = _paired(before), _paired(now)
    rows = [
        "| workload | pair | earlier run | this run | this / earlier |",
        "|---|---|---|---|---|",
    ]
    for arch in ("mlp", "ae"):
        for bits in ("32", "64"):
            for a, b, label in BEFORE_PAIRS:
                o, n = old.get((arch, bits, a, b)), new.get((arch, bits, a, b))
                if o is None and n is None:
                    continue
                change = f"{n[0] / o[0]:.2f}" if o and n else "-"
                rows.append(
                    f"| {arch} float{bits} | {label} | {_fmt(o)} | {_fmt(n)} | {change} |"
                )
    return "\n".join(rows)


def paired_before(now: str) -> str:
    """Today's tape machine over the earlier library's, paired by round in this run (lower
    is faster today), epoch wall time and CPU time; empty without ``--before-tree``.

    Example:
        >>> paired_before("")
        ''
    """
    wall, cpu = _paired(now), _paired(now, run_baselines.CPU_LINE)
    rows = []
    for arch in ("mlp", "ae"):
        for bits in ("32", "64"):
            for impl, label in GOLGI_ROWS:
                key = (arch, bits, impl, impl + "-before")
                if key in wall:
                    rows.append(
                        f"| {arch} float{bits} | {label} | {_fmt(wall[key])} | "
                        f"{_fmt(cpu.get(key))} |"
                    )
    if not rows:
        return ""
    head = "| workload | golgi | today / before, wall | today / before, CPU |\n|---|---|---|---|"
    return head + "\n" + "\n".join(rows)


def render(
    table: str,
    when: str,
    seconds: float,
    cmd: str,
    machine: str | None = None,
    versions: str | None = None,
) -> str:
    """The text of ``bench/RESULTS.md`` from the harness's output ``table``; ``machine`` and
    ``versions`` default to this machine's and this Python's."""
    before = BEFORE.read_text() if BEFORE.is_file() else ""
    if machine is None:
        machine = f"{_cpu()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"
    if versions is None:
        versions = _versions()
    return f"""# Benchmark results

Written by `bench/run.py` ({when},
{seconds:.0f} s). Regenerate with `make bench` (`.venv/bin/python bench/run.py`;
the PyTorch and JAX runners need a Python that has torch and jax, see `bench/README.md`).

- machine: {machine}
- versions: {versions}
- command: `{cmd}`

Implementations: `graphcore`: the model written with graphcore ops, run by the tape machine,
stepped by `NewRMSPropSolver`, with the compiled kernels of the `fast` extra (numba);
`graphcore-np`: the same with them off, numpy and scipy only (the default install);
`golgi-fit`: the same model from `golgi.models`, trained by `golgi.fit`; `numpy`:
hand-written numpy with manual backprop; `torch`: PyTorch CPU eager; `jax`: JAX with the whole
epoch compiled as one `lax.scan`; `gemm`: the matrix products alone. All start from the same
weights, visit the data in the same order and use Gorgonia's RMSProp.

## The issue's table (float32)

Medians over the rounds of per-round ratios, min-max in brackets: epoch time of golgi over
the other's, lower is faster for golgi; peak RSS: the process's peak while training (data,
interpreter and imports included) over hand numpy's; inference: samples/s of golgi over hand
numpy's, higher is faster for golgi, and golgi's microseconds per call at batch 1.

{issue_table(table)}

The same with the epochs' CPU seconds (all threads of each worker) in place of their wall
time. With one thread per library (`--threads 1`) on a machine other processes load, these
are the steadier numbers: a preempted worker's CPU clock stops (see the min-max).

{issue_table(table, cpu=True)}

## Targets

{targets_table(table)}

## float64

{issue_table(table, "64")}

CPU seconds:

{issue_table(table, "64", cpu=True)}

## Before and after

In this run, where it says so in its output (`before:`), an earlier library ran too (the
`--before-tree` of the command above; the output's `before:` line quotes the first line of
its `BEFORE.txt`, when it has one), driven by the same runner code and paired round by round
with today's: the direct comparison.

{paired_before(table) or "(not in this run: give run.py --before-tree DIR)"}

Against the earlier run, `{BEFORE.name}` (2026-11-27, before the redesign, default threads
on a quieter machine): ratios to the same yardsticks (hand numpy, PyTorch and GEMM code did
not change), so a ratio that moved up means slower relative to them. Thread settings and
machine load differ between the two runs; the paired table above does not have that problem.

{before_after(before, table)}

## Every pair, by workload (per-round ratios of epoch times)

{_paired_table(_paired(table))}

Ratios of CPU seconds (all threads of a worker) per round: on a machine other processes load,
a worker's CPU time is less disturbed than its wall time.

{_paired_table(_paired(table, run_baselines.CPU_LINE))}

Ratios of the median epochs (all rounds pooled), then of the best epochs (the quiet moments):

{_ratios(_epoch_times(table))}

{_ratios(_epoch_times(table, 4))}

## Full output

```
{table.rstrip()}
```
"""


def rerender(path: Path) -> str:
    """``path`` (a RESULTS.md this script wrote) rendered again from its full output, with
    today's tables: when the report changes, not the measurements. The run's machine,
    versions and command are kept."""
    old = path.read_text()
    m = re.search(r"Written by `bench/run.py` \((.*?),\s*(\d+) s\)", old)
    c = re.search(r"^- command: `(.*)`$", old, re.MULTILINE)
    mach = re.search(r"^- machine: (.*)$", old, re.MULTILINE)
    vers = re.search(r"^- versions: (.*)$", old, re.MULTILINE)
    block = old.split("## Full output", 1)[-1]
    table = block.split("```", 2)[1].strip("\n") + "\n" if "```" in block else ""
    if m is None or c is None or not table:
        raise ValueError(f"{path}: not a RESULTS.md written by bench/run.py")
    return render(
        table,
        m.group(1),
        float(m.group(2)),
        c.group(1),
        mach.group(1) if mach else None,
        vers.group(1) if vers else None,
    )


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    out = ROOT / "bench" / "RESULTS.md"
    if argv[:1] == ["--rerender"]:
        src = Path(argv[1]) if len(argv) > 1 else out
        out.write_text(rerender(src))
        print(f"wrote {out} from the output recorded in {src}")
        return 0
    if not any(a.startswith("--impl") for a in argv):
        before = any(a.startswith("--before-tree") for a in argv)
        argv = ["--impl", IMPLS + (BEFORE_IMPLS if before else ""), *argv]
    if not any(a.startswith("--arch") for a in argv):
        argv = ["--arch", ARCHS, *argv]
    buf = io.StringIO()
    start = time.time()

    class Tee(io.TextIOBase):
        def write(self, s: str) -> int:
            sys.__stdout__.write(s)
            buf.write(s)
            return len(s)

    with contextlib.redirect_stdout(Tee()):
        rc = run_baselines.main(argv)
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(start))
    cmd = "bench/run.py " + " ".join(argv)
    out.write_text(render(buf.getvalue(), when, time.time() - start, cmd))
    print(f"wrote {out}")
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
