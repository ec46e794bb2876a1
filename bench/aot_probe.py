"""What ahead-of-time compiled kernels would cost and save: memory, speed and call overhead.

The ``fast`` extra compiles its loops with numba at run time. numba is the whole of the
``fast`` install's extra memory (``bench/SPEED-PLAN.md``, section 3): importing it, and the
first call of any compiled function (numba builds its typing and target contexts then, even
when the machine code comes from its disk cache). This probe takes two of the library's own
loops, the RMSProp update (``_rms_plain``) and the ReLU gradient (``_relu_grad``, compiled
with fast-math), compiles them ahead of time with numba's ``pycc`` into a plain CPython
extension in a temporary folder, and compares, each in a fresh interpreter:

- peak RSS over ``import numpy``: the extension imported and called, against numba's
  dispatchers of the same loops called (the disk cache warm);
- microseconds per call at the MLP's sizes (RMSProp over its 222,360 parameters; the ReLU
  gradient of its first layer, 100 x 250) and for a 16-element call (the per-call cost),
  medians of repeated timings, ahead-of-time against just-in-time.

Needs numba and a C compiler (``pycc`` builds the extension with the platform's compiler).
An optional argument names the LLVM CPU to compile for (``x86-64-v3``, ``host``); pycc's
default is a portable baseline (no SSE4.1, so ``ceil`` is a library call per element).

    .venv/bin/python bench/aot_probe.py
    .venv/bin/python bench/aot_probe.py x86-64-v3

Example:
    >>> from bench.aot_probe import SIGNATURES
    >>> sorted(SIGNATURES)
    ['relu_grad', 'rms_plain']
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap

__all__ = ["SIGNATURES", "build", "main"]

#: exported name -> (module of the library's dispatcher, its name, the pycc signature for
#: float32 contiguous arrays; the fast-math loop's flags cannot be given to pycc)
SIGNATURES = {
    "rms_plain": (
        "graphcore.kernels.compiled.solvers",
        "_rms_plain",
        "void(f4[::1], f4[::1], f4[::1], f4, f4, f4, f4)",
    ),
    "relu_grad": (
        "graphcore.kernels.compiled.activations",
        "_relu_grad",
        "void(f4[::1], f4[::1], f4[::1], f4)",
    ),
}

_BUILD = """
import importlib, sys
from numba.pycc import CC
cc = CC("gc_aot_probe")
cc.output_dir = sys.argv[1]
if len(sys.argv) > 2:
    cc.target_cpu = sys.argv[2]
for name, (mod, fn, sig) in {signatures}.items():
    cc.export(name, sig)(getattr(importlib.import_module(mod), fn).py_func)
cc.compile()
"""

_MEASURE = """
import json, resource, sys, time
import numpy as np
def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
base = peak()
if sys.argv[1] == "aot":
    sys.path.insert(0, sys.argv[2])
    import gc_aot_probe as k
    rms, relu = k.rms_plain, k.relu_grad
else:
    from graphcore.kernels.compiled.solvers import _rms_plain as rms
    from graphcore.kernels.compiled.activations import _relu_grad as relu
f4 = np.float32
def args(n):
    r = np.random.default_rng(0)
    w, g = r.random(n, dtype=f4), r.random(n, dtype=f4) - f4(0.5)
    return w, g, np.zeros(n, f4)
def timed(call, number):
    call()
    runs = []
    for _ in range(9):
        t = time.perf_counter()
        for _ in range(number):
            call()
        runs.append((time.perf_counter() - t) / number * 1e6)
    return sorted(runs)[4]
w, g, c = args(222_360)
y, gy, out = args(25_000)
w1, g1, c1 = args(16)
us = {
    "rmsprop 222,360": timed(lambda: rms(w, g, c, f4(0.999), f4(0.001), f4(1e-8), f4(1e-3)), 200),
    "relu_grad 100x250": timed(lambda: relu(y, gy, out, f4(1)), 2000),
    "rmsprop 16 (per call)": timed(
        lambda: rms(w1, g1, c1, f4(0.999), f4(0.001), f4(1e-8), f4(1e-3)), 20000),
}
print(json.dumps({"rss": peak() - base, "numba": "numba" in sys.modules, "us": us}))
"""


def build(out_dir: str, cpu: str = "") -> None:
    """Compile :data:`SIGNATURES` ahead of time into ``out_dir/gc_aot_probe*.so``, for
    ``cpu`` (an LLVM CPU name; pycc's portable default when empty)."""
    code = _BUILD.format(signatures=repr(SIGNATURES))
    cmd = [sys.executable, "-c", code, out_dir] + ([cpu] if cpu else [])
    subprocess.run(cmd, check=True, capture_output=True)


def _measure(kind: str, out_dir: str) -> dict:
    res = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_MEASURE), kind, out_dir],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
    )
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    """Build the probe's extension, then measure it against numba's dispatchers, 3 rounds."""
    cpu = sys.argv[1] if len(sys.argv) > 1 else ""
    with tempfile.TemporaryDirectory() as out_dir:
        build(out_dir, cpu)
        rows = {"aot": [], "jit": []}
        for _ in range(3):
            for kind in rows:
                rows[kind].append(_measure(kind, out_dir))
    for kind, runs in rows.items():
        rss = sorted(r["rss"] for r in runs)[1]
        print(f"{kind}: peak RSS over numpy +{rss:.1f} MiB, numba imported: {runs[0]['numba']}")
        for name in runs[0]["us"]:
            t = sorted(r["us"][name] for r in runs)[1]
            print(f"    {name:24s} {t:8.2f} us")


if __name__ == "__main__":
    main()
