"""Where dataset files live: the standard IDX file names, a user's folder, and the cache.

The cache root is ``$GOLGI_DATA`` if set, else ``$XDG_CACHE_HOME/golgi`` if that is set, else
``~/.cache/golgi``. Each dataset has its own subfolder (``mnist/``, ``fashion_mnist/``) that holds
the four IDX files, gzip-compressed (as downloaded) or not.

Example:
    >>> import os
    >>> os.environ["GOLGI_DATA"] = "/tmp/golgi-data"
    >>> str(cache_dir("mnist"))
    '/tmp/golgi-data/mnist'
    >>> del os.environ["GOLGI_DATA"]
"""

from __future__ import annotations

import os
from pathlib import Path

from golgi.datasets.errors import DatasetError

__all__ = [
    "CACHE_ENV",
    "DATASETS",
    "IDX_FILES",
    "cache_dir",
    "find_idx_files",
    "require_idx_files",
]

CACHE_ENV = "GOLGI_DATA"

DATASETS = ("mnist", "fashion_mnist")

# Role -> standard file name (without ``.gz``), identical for MNIST and Fashion-MNIST.
IDX_FILES: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def _check_dataset(dataset: str) -> None:
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; known: {', '.join(DATASETS)}")


def cache_dir(dataset: str | None = None) -> Path:
    """Return the cache folder (created on download, not here), or one dataset's subfolder.

    Args:
        dataset: ``"mnist"`` or ``"fashion_mnist"`` for its subfolder; ``None`` for the root.

    Example:
        >>> cache_dir("fashion_mnist").name
        'fashion_mnist'
    """
    env = os.environ.get(CACHE_ENV)
    if env:
        root = Path(env).expanduser()
    elif os.environ.get("XDG_CACHE_HOME"):
        root = Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "golgi"
    else:
        try:
            root = Path.home() / ".cache" / "golgi"
        except (RuntimeError, KeyError) as e:
            raise DatasetError(
                f"cannot find your home folder for the cache ({e}); set {CACHE_ENV} to a folder "
                "to keep datasets in"
            ) from e
    if dataset is None:
        return root
    _check_dataset(dataset)
    return root / dataset


def _candidates(folder: Path, stem: str) -> list[Path]:
    # ``train-images.idx3-ubyte`` is how some archives and unzip tools name the same file.
    dotted = stem.replace("-idx", ".idx")
    return [folder / n for n in (stem, stem + ".gz", dotted, dotted + ".gz")]


def find_idx_files(folder: str | os.PathLike[str]) -> tuple[dict[str, Path], list[str]]:
    """Look for the four standard IDX files in ``folder``.

    Each file may be plain or end in ``.gz``; the plain one wins when both exist.

    Returns:
        ``(found, missing)``: role (``"train_images"``, ...) to path for the files present, and
        the standard names of those absent.

    Raises:
        DatasetError: the folder exists but cannot be looked into (no permission).

    Example:
        >>> found, missing = find_idx_files("/nonexistent")
        >>> found, missing[0]
        ({}, 'train-images-idx3-ubyte')
    """
    folder = Path(folder).expanduser()
    found: dict[str, Path] = {}
    missing: list[str] = []
    for role, stem in IDX_FILES.items():
        try:
            hit = next((p for p in _candidates(folder, stem) if p.is_file()), None)
        except OSError as e:  # is_file() only hides "not there"; EACCES and the like come here
            raise DatasetError(
                f"cannot look in {folder} ({e.strerror or e}); give yourself access to it, or "
                f"use another folder (set {CACHE_ENV} for the cache, or pass data_dir=)"
            ) from e
        if hit is None:
            missing.append(stem)
        else:
            found[role] = hit
    return found, missing


def require_idx_files(folder: str | os.PathLike[str]) -> dict[str, Path]:
    """Like :func:`find_idx_files` but raise :class:`DatasetError` unless all four are there.

    Example:
        >>> require_idx_files("/nonexistent")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        golgi.datasets.errors.DatasetError: data_dir /nonexistent does not exist ...
    """
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise DatasetError(
            f"data_dir {path} does not exist or is not a folder; pass the folder that holds "
            f"{', '.join(IDX_FILES.values())} (each may end in .gz)"
        )
    found, missing = find_idx_files(path)
    if missing:
        raise DatasetError(
            f"data_dir {path} lacks {', '.join(missing)} (plain or .gz); it needs all four of "
            f"{', '.join(IDX_FILES.values())}, or leave data_dir out to use the cache "
            f"{cache_dir()} and download"
        )
    return found
