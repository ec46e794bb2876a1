"""Reading golgi checkpoints without trusting them: the zip directory, each entry's ``.npy``
header, and bounded reads of the data.

A checkpoint is a zip archive of ``.npy`` entries. Before any data is read, the directory is
checked (every name exactly one of ours and present once, sizes consistent with the file,
deflate claiming no more than ``MAX_COMPRESSION_RATIO``) and each entry's header is parsed by
hand (never numpy's loader, never unpickled), so :mod:`golgi.io` can compare shapes and
dtypes with the model first. Every failure is a :class:`CheckpointError` that says what the
file is and what is wrong with it.

Example:
    >>> _what_is(b"%PDF-1.7"), _what_is(b"hello")
    ('a PDF document', "a text file (it starts 'hello')")
"""

from __future__ import annotations

import ast
import math
import os
import struct
import zipfile
from typing import IO

import numpy as np

__all__ = ["CheckpointError", "Archive", "reason", "MAX_COMPRESSION_RATIO", "PREFIXES"]

# Deflate cannot expand data more than 1032:1; an entry claiming more is lying about its size.
MAX_COMPRESSION_RATIO = 1032
#: the entry names a checkpoint may hold, besides ``meta/json``
PREFIXES = ("param/", "state/", "solver/")
_MAX_NPY_HEADER = 64 * 1024
_CHUNK = 1 << 20
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # a zip entry's local header (30 bytes)


class CheckpointError(ValueError):
    """A checkpoint cannot be loaded: it does not fit the model, or the file is damaged.

    Example:
        >>> issubclass(CheckpointError, ValueError)
        True
    """


def reason(e: BaseException) -> str:
    """A short reason for an error message: the exception's type and text.

    Example:
        >>> reason(EOFError()), reason(ValueError("bad crc"))
        ('the data ends early', 'ValueError: bad crc')
    """
    text = str(e)
    if isinstance(e, EOFError) and not text:
        return "the data ends early"
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _what_is(head: bytes) -> str:
    """Say what a file that is not a zip archive seems to be, from its first bytes."""
    if not head:
        return "an empty file"
    for magic, what in (
        (b"\x89PNG\r\n\x1a\n", "a PNG image"),
        (b"\xff\xd8\xff", "a JPEG image"),
        (b"\x1f\x8b", "gzip-compressed data (gunzip it first if it holds a checkpoint)"),
        (b"\x89HDF\r\n\x1a\n", "an HDF5 file (a Keras .h5 model?)"),
        (b"%PDF", "a PDF document"),
        (b"PK\x05\x06", "an empty zip archive"),
        (b"PK", "a zip archive that does not start with an entry (damaged?)"),
    ):
        if head.startswith(magic):
            return what
    try:
        text: str | None = head.decode("utf-8")
    except UnicodeDecodeError as e:  # a character cut by the end of `head` still counts
        text = head[: e.start].decode("utf-8") if e.start >= len(head) - 3 else None
    if text is not None and all(c.isprintable() or c in "\t\r\n" for c in text):
        return f"a text file (it starts {text[:40]!r})"
    return f"unrecognised binary data (it starts {head[:8].hex(' ')})"


class _Counting:
    """A reader that counts the bytes taken, to know where a .npy header ends."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f, self.n = f, 0

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.n += len(data)
        return data


def _parse_npy_header(f: IO[bytes]) -> tuple[tuple[int, ...], np.dtype, bool, int]:
    """Read a .npy header: (shape, dtype, fortran_order, header length); ValueError if bad."""
    src = _Counting(f)
    magic = src.read(8)
    if len(magic) < 8 or magic[:6] != b"\x93NUMPY":
        raise ValueError("it is not a .npy array (no \\x93NUMPY magic)")
    major = magic[6]
    if major not in (1, 2, 3):
        raise ValueError(f".npy format version {major}.{magic[7]} is unknown")
    size_fmt = "<H" if major == 1 else "<I"
    raw_len = src.read(struct.calcsize(size_fmt))
    if len(raw_len) < struct.calcsize(size_fmt):
        raise ValueError("its .npy header is cut short")
    (hlen,) = struct.unpack(size_fmt, raw_len)
    if hlen > _MAX_NPY_HEADER:
        raise ValueError(f"its .npy header claims {hlen} bytes (at most {_MAX_NPY_HEADER})")
    text = src.read(hlen)
    if len(text) < hlen:
        raise ValueError("its .npy header is cut short")
    try:
        d = ast.literal_eval(text.decode("utf-8" if major == 3 else "latin1"))
    except (ValueError, SyntaxError, RecursionError, MemoryError, UnicodeDecodeError) as e:
        raise ValueError(f"its .npy header is not a Python literal ({reason(e)})") from None
    if not isinstance(d, dict) or set(d) != {"descr", "fortran_order", "shape"}:
        raise ValueError("its .npy header lacks descr, fortran_order or shape")
    shape, fortran = d["shape"], d["fortran_order"]
    if not isinstance(shape, tuple) or not all(type(n) is int and 0 <= n < 2**63 for n in shape):
        raise ValueError(f"its .npy header has an invalid shape {shape!r}")
    if not isinstance(fortran, bool):
        raise ValueError(f"its .npy header has fortran_order={fortran!r}")
    try:
        dtype = np.lib.format.descr_to_dtype(d["descr"])
    except (TypeError, ValueError, KeyError, RecursionError) as e:
        raise ValueError(f"its .npy header has an invalid dtype ({reason(e)})") from None
    return shape, dtype, fortran, src.n


def _nbytes(shape: tuple[int, ...], dtype: np.dtype) -> int:
    return math.prod(shape) * dtype.itemsize  # Python ints: a crafted shape cannot overflow


def _pickled(path: str, where: str) -> CheckpointError:
    return CheckpointError(
        f"{path}{where} holds pickled Python objects (an object array); golgi refuses to load "
        f"pickled data (it can run arbitrary code). Checkpoints written by golgi.save have none"
    )


def _not_a_checkpoint(path: str, f: IO[bytes], head: bytes) -> CheckpointError:
    fix = "pass the .npz file golgi.save wrote"
    if head.startswith(b"\x93NUMPY"):
        f.seek(0)
        try:
            shape, dtype, _, _ = _parse_npy_header(f)
        except ValueError as e:
            return CheckpointError(f"{path} is a damaged .npy file ({e}), not a checkpoint")
        if dtype.hasobject:
            return _pickled(path, " is a single .npy array, not a golgi checkpoint: it")
        return CheckpointError(
            f"{path} holds a single array ({dtype} {shape}, .npy), not a golgi checkpoint "
            f"(.npz); {fix}"
        )
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return CheckpointError(
            f"{path} is a Python pickle, not a golgi checkpoint; golgi refuses to load pickled "
            f"data (it can run arbitrary code). Checkpoints written by golgi.save have none"
        )
    return CheckpointError(f"{path} is not a golgi checkpoint: it is {_what_is(head)}; {fix}")


class Archive:
    """A checkpoint opened for reading: its zip directory checked, entries read on demand
    (``keys(prefix)``, ``header(key)`` before ``read(key)``); a context manager.

    Example:
        >>> import os, tempfile, graphcore as gc, golgi as G
        >>> g = gc.NewGraph(); x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 2))
        >>> fc = G.ConsFC(x, G.WithShape(1), G.WithName("fc"))
        >>> with tempfile.TemporaryDirectory() as d:
        ...     G.save(fc, os.path.join(d, "m.npz"))
        ...     with Archive(os.path.join(d, "m.npz")) as ar:
        ...         ar.keys("param/"), ar.header("param/fc/W")
        (['fc/W', 'fc/b'], ((2, 1), dtype('float32')))
    """

    def __init__(self, path: str | os.PathLike[str] | IO[bytes]) -> None:
        # a binary file object (BytesIO, an open file) is read as it is and left open; hasattr
        # in the condition itself narrows ``path`` to a file name in the other branch
        if hasattr(path, "read"):
            self._owned = False
            # hasattr cannot tell the checker that this is the IO[bytes] of the union
            self.f: IO[bytes] = path  # type: ignore[assignment]
            self.path = str(getattr(path, "name", "<file object>"))
        else:
            self._owned = True
            self.path = str(path)
            try:
                self.f = open(path, "rb")  # noqa: SIM115 (closed by close())
            except FileNotFoundError:
                raise FileNotFoundError(f"golgi.load: no such file: {path}") from None
            except OSError as e:
                raise CheckpointError(f"cannot read {path}: {reason(e)}") from None
        try:
            self._open()
        except BaseException:
            if self._owned:
                self.f.close()
            raise

    def _open(self) -> None:
        path, f = self.path, self.f
        f.seek(0)
        head = f.read(64)
        if not head.startswith(b"PK\x03\x04"):
            raise _not_a_checkpoint(path, f, head)
        f.seek(0, os.SEEK_END)
        self.size = f.tell()
        f.seek(len(head))
        try:
            self.zip = zipfile.ZipFile(f)
            infos = self.zip.infolist()
        except Exception as e:  # any failure to parse the zip directory means a damaged file
            raise CheckpointError(
                f"{path} is truncated or damaged: its zip directory cannot be read "
                f"({reason(e)}); save the model again with golgi.save, or use another copy"
            ) from e
        if not any(info.filename == "meta/json.npy" for info in infos):
            names = ", ".join(repr(i.filename) for i in infos[:5]) + (", ..." * (len(infos) > 5))
            raise CheckpointError(
                f"{path} is a zip archive (.npz) but not a golgi checkpoint: it has no meta/json "
                f"entry (it holds {names or 'nothing'}); pass the file golgi.save wrote"
            )
        self.entries: dict[str, zipfile.ZipInfo] = {}
        self._data_at: dict[str, int] = {}
        self._headers: dict[str, tuple[tuple[int, ...], np.dtype, bool, int]] = {}
        problems = [p for info in infos for p in self._check_entry(info)]
        if problems:
            raise CheckpointError(
                f"{path} is not a checkpoint as golgi.save writes it; refusing it before "
                f"reading any data:\n  - " + "\n  - ".join(problems) + "\n  It was damaged, "
                "altered or made by another tool; save the model again with golgi.save"
            )

    def _check_entry(self, info: zipfile.ZipInfo) -> list[str]:
        """Check one zip entry without reading its data; register it if it is fine."""
        name = info.filename
        entry = f"entry {info.orig_filename!r}"
        if info.orig_filename != name:
            return [f"{entry}: its name holds a NUL character (a trick to shadow {name!r})"]
        if name in self.entries:
            return [f"entry {name!r} appears twice (zip readers would take the last copy)"]
        key = name[: -len(".npy")]
        if not name.endswith(".npy") or not (key == "meta/json" or key.startswith(PREFIXES)):
            return [
                f"{entry} is not part of a golgi checkpoint (those hold only meta/json.npy, "
                f"param/..., state/... and solver/... .npy entries)"
            ]
        if info.flag_bits & 0x41:
            return [f"{entry} is encrypted; golgi.save never encrypts"]
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            method = info.compress_type
            return [f"{entry} uses compression method {method} (golgi reads stored or deflated)"]
        stored = info.compress_type == zipfile.ZIP_STORED
        if stored and info.file_size != info.compress_size:
            return [
                f"{entry} is stored uncompressed, yet declares {info.file_size} bytes "
                f"in {info.compress_size}"
            ]
        if not stored and info.file_size > MAX_COMPRESSION_RATIO * info.compress_size:
            return [
                f"{entry} declares {info.file_size} bytes from {info.compress_size} compressed, "
                f"more than deflate can expand ({MAX_COMPRESSION_RATIO}:1)"
            ]
        try:
            self.f.seek(info.header_offset)
            local = _LOCAL_HEADER.unpack(self.f.read(_LOCAL_HEADER.size))
        except (OSError, struct.error, ValueError, OverflowError):
            return [f"{entry}: its local header is missing or cut short"]
        if local[0] != b"PK\x03\x04":
            return [f"{entry}: its local header is damaged (no PK\\3\\4 signature)"]
        data_at = info.header_offset + _LOCAL_HEADER.size + local[9] + local[10]
        if data_at + info.compress_size > self.size:
            return [
                f"{entry}: its {info.compress_size} bytes at offset {data_at} run past the end "
                f"of the file ({self.size} bytes)"
            ]
        self.entries[name] = info
        return []

    def keys(self, prefix: str) -> list[str]:
        """The keys (``h/W`` for ``param/h/W.npy``) under ``prefix``, in file order."""
        return [n[len(prefix) : -len(".npy")] for n in self.entries if n.startswith(prefix)]

    def _damaged(self, key: str, why: str) -> CheckpointError:
        return CheckpointError(
            f"{self.path}: entry {key!r} is damaged: {why}; the file is corrupt or was "
            f"altered: save the model again with golgi.save, or use another copy"
        )

    def header(self, key: str) -> tuple[tuple[int, ...], np.dtype]:
        """Shape and dtype the entry declares; its size checked against the zip entry."""
        if key not in self._headers:
            info = self.entries[key + ".npy"]
            try:
                with self.zip.open(info) as f:
                    shape, dtype, fortran, hlen = _parse_npy_header(f)
            except ValueError as e:
                raise self._damaged(key, str(e)) from None
            except Exception as e:  # zipfile's own failures: CRC, zlib, truncation, ...
                raise self._damaged(key, reason(e)) from e
            if dtype.hasobject:
                raise _pickled(self.path, f": entry {key!r}")
            held = info.file_size - hlen
            if held != _nbytes(shape, dtype):
                raise self._damaged(
                    key,
                    f"its header declares {dtype} {shape} = {_nbytes(shape, dtype)} bytes, "
                    f"but it holds {held} bytes of data",
                )
            self._headers[key] = (shape, dtype, fortran, hlen)
        shape, dtype, _, _ = self._headers[key]
        return shape, dtype

    def read(self, key: str) -> np.ndarray:
        """The entry's array: exactly the bytes its checked header declares, CRC verified."""
        shape, dtype = self.header(key)
        _, _, fortran, hlen = self._headers[key]
        out = np.empty(shape, dtype, order="F" if fortran else "C")
        # numpy stubs give ndarray the buffer protocol only on Python >= 3.12
        view = memoryview(out.reshape(-1, order="A").view(np.uint8))  # type: ignore[arg-type]
        try:
            with self.zip.open(self.entries[key + ".npy"]) as f:
                f.read(hlen)
                got = 0
                while got < len(view):
                    # bounded: no whole-entry copy; ZipFile.open is stubbed as IO[bytes], but
                    # returns a ZipExtFile (a BufferedIOBase), which has readinto
                    n = f.readinto(view[got : got + _CHUNK])  # type: ignore[attr-defined]
                    if not n:
                        raise EOFError
                    got += n
                if f.read(1):  # also makes zipfile check the CRC
                    raise ValueError("it holds more data than its header declares")
        except Exception as e:
            raise self._damaged(key, reason(e)) from e
        return out

    def close(self) -> None:
        if hasattr(self, "zip"):
            self.zip.close()
        if self._owned:
            self.f.close()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


