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
import os
import zlib
from typing import Literal

import numpy as np

from golgi.datasets.errors import DatasetError

__all__ = ["IMAGES_MAGIC", "LABELS_MAGIC", "read_idx"]

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801

_UBYTE = 0x08
_EXPECTED = {"images": IMAGES_MAGIC, "labels": LABELS_MAGIC}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: str | os.PathLike[str]) -> bytes:
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise DatasetError(f"{os.fspath(path)}: cannot read IDX file ({e})") from e
    # Sniff the content rather than trust the name: people gunzip without renaming and back.
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise DatasetError(
            f"{os.fspath(path)}: corrupt or truncated gzip data ({e}); delete the file and "
            "download it again"
        ) from e


def read_idx(
    path: str | os.PathLike[str], kind: Literal["images", "labels"] | None = None
) -> np.ndarray:
    """Read an unsigned-byte IDX file (gzip-compressed or not) into a ``uint8`` array.

    The header is checked against the content: the magic number (and, with ``kind``, that it is
    the images ``0x00000803`` or labels ``0x00000801`` magic), the number of dimensions, and that
    the declared sizes match the number of data bytes exactly.

    Args:
        path: the file; gzip data is recognised by its content, whatever the name.
        kind: ``"images"`` or ``"labels"`` to require that kind of file; ``None`` accepts any
            unsigned-byte IDX file.

    Returns:
        An array of dtype ``uint8`` with the shape the header declares, e.g. ``(60000, 28, 28)``.

    Raises:
        DatasetError: the file is unreadable, not IDX, the wrong kind, truncated or too long,
            or its gzip data is corrupt. The message names the file.

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
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise DatasetError(f"{name}: {len(raw)} bytes is too short for an IDX header")
    magic = int.from_bytes(raw[:4], "big")
    zero, dtype_code, ndim = raw[0:2], raw[2], raw[3]
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
    if len(raw) < header:
        raise DatasetError(
            f"{name}: truncated header; {ndim} dimensions need {header} bytes, file has {len(raw)}"
        )
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape, dtype=np.int64))
    actual = len(raw) - header
    if actual != expected:
        what = "truncated" if actual < expected else "too long"
        raise DatasetError(
            f"{name}: {what}; header declares shape {shape} = {expected} bytes of data, "
            f"file holds {actual}; delete the file and get it again"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()
