"""Reader for the IDX format of MNIST and Fashion-MNIST, plain or gzip-compressed.

An IDX file is a big-endian header, ``00 00 <type> <ndim>`` then ``ndim`` 32-bit sizes, followed
by the raw values. Only unsigned bytes (type ``0x08``) occur in these datasets, so only they are
read; images have magic ``0x00000803`` (3 dimensions), labels ``0x00000801`` (1 dimension).

Example:
    >>> import numpy as np, tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "labels-idx1-ubyte"
    >>> _ = p.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1]))
    >>> read_idx(p, kind="labels")
    array([7, 2, 1], dtype=uint8)
"""

from __future__ import annotations

import gzip
import io
import math
import os
import zlib
from typing import Literal

import numpy as np

from golgi.datasets.errors import DatasetError

__all__ = ["IMAGES_MAGIC", "LABELS_MAGIC", "MAX_IDX_BYTES", "read_idx"]

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801

# The largest file of the MNIST family holds 47 MB; a header declaring far more is not one.
MAX_IDX_BYTES = 256 * 2**20

_UBYTE = 0x08
_EXPECTED = {"images": IMAGES_MAGIC, "labels": LABELS_MAGIC}
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20


def _read_exact(f: io.BufferedIOBase, out: memoryview) -> int:
    """Fill ``out`` from ``f`` in bounded chunks; return how many bytes arrived."""
    got = 0
    while got < len(out):
        n = f.readinto(out[got : got + _CHUNK])
        if not n:
            break
        got += n
    return got


def _parse(
    f: io.BufferedIOBase, name: str, kind: str | None, plain_size: int | None
) -> np.ndarray:
    """Read the header, check it, then exactly the data it declares (and that nothing follows)."""
    head = f.read(4)
    if len(head) < 4:
        raise DatasetError(f"{name}: {len(head)} bytes is too short for an IDX header")
    magic = int.from_bytes(head, "big")
    zero, dtype_code, ndim = head[0:2], head[2], head[3]
    if zero != b"\x00\x00" or dtype_code != _UBYTE or ndim == 0:
        raise DatasetError(
            f"{name}: bad magic number 0x{magic:08x}; not an unsigned-byte IDX file "
            "(expected 0x00000803 for images or 0x00000801 for labels)"
        )
    if kind is not None and magic != _EXPECTED[kind]:
        raise DatasetError(
            f"{name}: magic number 0x{magic:08x} with {ndim} dimension(s), but an IDX {kind} "
            f"file has 0x{_EXPECTED[kind]:08x}; is this the right file?"
        )
    header = 4 + 4 * ndim
    dims = f.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise DatasetError(
            f"{name}: truncated header; {ndim} dimensions need {header} bytes, "
            f"file has {4 + len(dims)}"
        )
    shape = tuple(int.from_bytes(dims[4 * i : 4 * i + 4], "big") for i in range(ndim))
    expected = math.prod(shape)
    if expected > MAX_IDX_BYTES:
        raise DatasetError(
            f"{name}: header declares shape {shape} = {expected} bytes of data, more than the "
            f"{MAX_IDX_BYTES}-byte limit (golgi.datasets.idx.MAX_IDX_BYTES) for MNIST-style "
            "files; the file is damaged or not such a file (raise the limit if it is genuine)"
        )
    mismatch = f"header declares shape {shape} = {expected} bytes of data, file holds"
    fix = "delete the file and get it again"
    if plain_size is not None and plain_size - header != expected:
        # Uncompressed: the file's size says it all, before reading a byte of data.
        what = "truncated" if plain_size - header < expected else "too long"
        raise DatasetError(f"{name}: {what}; {mismatch} {plain_size - header}; {fix}")
    out = np.empty(expected, dtype=np.uint8)
    # numpy stubs give ndarray the buffer protocol only on Python >= 3.12
    got = _read_exact(f, memoryview(out))  # type: ignore[arg-type]
    if got < expected:
        raise DatasetError(f"{name}: truncated; {mismatch} {got}; {fix}")
    if f.read(1):  # for gzip this also reaches the end, where the CRC is checked
        raise DatasetError(f"{name}: too long; {mismatch} more; {fix}")
    return out.reshape(shape)


def read_idx(
    path: str | os.PathLike[str], kind: Literal["images", "labels"] | None = None
) -> np.ndarray:
    """Read an unsigned-byte IDX file (gzip-compressed or not) into a ``uint8`` array.

    The header is checked against the content: the magic number (and, with ``kind``, that it is
    the images ``0x00000803`` or labels ``0x00000801`` magic), the number of dimensions, that
    the declared size is at most ``MAX_IDX_BYTES``, and that the data holds exactly the declared
    number of bytes. No more than that is ever read or decompressed.

    Args:
        path: the file; gzip data is recognised by its content, whatever the name.
        kind: ``"images"`` or ``"labels"`` to require that kind of file; ``None`` accepts any
            unsigned-byte IDX file.

    Returns:
        An array of dtype ``uint8`` with the shape the header declares, e.g. ``(60000, 28, 28)``.

    Raises:
        DatasetError: the file is unreadable, not IDX, the wrong kind, truncated or too long,
            declares more than ``MAX_IDX_BYTES``, or its gzip data is corrupt. The message
            names the file.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "t10k-labels-idx1-ubyte"
        >>> _ = p.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 2, 4, 9]))
        >>> read_idx(p).tolist()
        [4, 9]
    """
    name = os.fspath(path)
    if kind is not None and kind not in _EXPECTED:
        raise ValueError(f"read_idx: kind must be 'images', 'labels' or None, got {kind!r}")
    try:
        f = open(path, "rb")  # noqa: SIM115 (closed below, after gzip may wrap it)
    except OSError as e:
        raise DatasetError(f"{name}: cannot read IDX file ({e})") from e
    with f:
        try:
            # Sniff the content rather than trust the name: people gunzip without renaming.
            is_gzip = f.read(2) == _GZIP_MAGIC
            f.seek(0)
            if not is_gzip:
                return _parse(f, name, kind, os.fstat(f.fileno()).st_size)
            with gzip.GzipFile(fileobj=f) as z:
                return _parse(z, name, kind, None)
        except (OSError, EOFError, zlib.error) as e:
            raise DatasetError(
                f"{name}: corrupt or truncated {'gzip data' if is_gzip else 'file'} ({e}); "
                "delete the file and download it again"
            ) from e
