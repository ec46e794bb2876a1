"""Saving and loading models (and solver state) in one pickle-free ``.npz`` file.

Layout (every entry a plain numeric array):

- ``param/<layer>/<name>``: each learnable (``param/e1/W``, ``param/e1/b``, ...);
- ``state/<layer>/<name>``: non-learnable layer state (batch norm running statistics);
- ``solver/<key>``: the solver's ``state_dict()`` (when a solver is given);
- ``meta/json``: UTF-8 JSON as a uint8 array: format and library version, the model's
  description (layer kinds, names, configs, shapes), the solver's class, and ``extra``.

Loading is strict: missing keys, unexpected keys, shape and dtype mismatches are reported
together in one :class:`CheckpointError`, and nothing is changed when it is raised. The file
is read without numpy's loader and never unpickled: the zip directory is checked first (each
name exactly one of ours and present once, sizes consistent with the file, deflate no more
than ``MAX_COMPRESSION_RATIO``), then each entry's ``.npy`` header against the model, and
only then the data; so loading never reads more than the model (and ``MAX_META_BYTES`` of
metadata) holds. Writes are atomic (a temporary file in the same folder, then ``os.replace``).

Example:
    >>> import tempfile, os, graphcore as gc, golgi as G
    >>> g = gc.NewGraph()
    >>> x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 3), gc.WithName("x"))
    >>> fc = G.ConsFC(x, G.WithShape(2), G.WithName("out"))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "model.npz")
    ...     G.save(fc, path); G.load(fc, path)["model"][0]["name"]
    'out'
"""

from __future__ import annotations

import ast
import errno
import json
import math
import os
import re
import socket
import stat
import struct
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from typing import IO, Any

import numpy as np

import graphcore as gc

__all__ = [
    "CheckpointError",
    "save",
    "load",
    "FORMAT",
    "FORMAT_VERSION",
    "MAX_META_BYTES",
    "MAX_COMPRESSION_RATIO",
]

FORMAT = "golgi-checkpoint"
FORMAT_VERSION = 1

# The model description of even a very large composition is a few hundred KB.
MAX_META_BYTES = 16 * 2**20
# Deflate cannot expand data more than 1032:1; an entry claiming more is lying about its size.
MAX_COMPRESSION_RATIO = 1032

_PREFIXES = ("param/", "state/", "solver/")
_MAX_NPY_HEADER = 64 * 1024
_MAX_SCALAR_BYTES = 1024  # a solver's 0-d entries: its class name, step, hyperparameters
_CHUNK = 1 << 20
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # a zip entry's local header (30 bytes)


class CheckpointError(ValueError):
    """A checkpoint cannot be loaded: it does not fit the model, or the file is damaged.

    Example:
        >>> issubclass(CheckpointError, ValueError)
        True
    """


def _learnables(model: Any) -> dict[str, gc.Node]:
    if hasattr(model, "named_learnables"):
        return dict(model.named_learnables())
    if isinstance(model, Mapping):
        out = dict(model)
    elif isinstance(model, (list, tuple)):
        out = {n.name: n for n in model if isinstance(n, gc.Node)}
        if len(out) != len(model):
            raise TypeError("save/load: a list model must hold graph nodes with unique names")
    else:
        raise TypeError(
            f"save/load: expected a golgi model (layer or composition), a dict of nodes or a "
            f"list of nodes, got {type(model).__name__}"
        )
    for k, n in out.items():
        if not isinstance(n, gc.Node):
            raise TypeError(f"save/load: {k!r} is not a graph node ({type(n).__name__})")
    return out


def _state(model: Any) -> dict[str, np.ndarray]:
    return dict(model.state()) if hasattr(model, "state") else {}


def _describe(model: Any) -> Any:
    if hasattr(model, "describe"):
        return model.describe()
    return [
        {"kind": "Node", "name": k, "shape": list(n.shape), "dtype": str(n.dtype)}
        for k, n in _learnables(model).items()
    ]


# ----------------------------------------------------------------------------- writing


def save(
    model: Any,
    path: str | os.PathLike[str],
    solver: Any = None,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Write the model's learnables and state (and the solver's state) to ``path``.

    ``model``: a layer or composition (or a dict/list of learnable nodes). ``solver``: any
    object with ``state_dict()``. ``extra``: JSON-able data (e.g. the epoch), returned by
    ``load``. The path is used as given (no extension is added). When ``path`` is a symbolic
    link, the file it points to is replaced and the link kept, as ``open(path, "w")`` would.

    Example:
        >>> import os, tempfile, numpy as np, graphcore as gc, golgi as G
        >>> g = gc.NewGraph()
        >>> x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 3), gc.WithName("x"))
        >>> fc = G.ConsFC(x, G.WithShape(2), G.WithName("out"))
        >>> with tempfile.TemporaryDirectory() as d:
        ...     path = os.path.join(d, "model.npz")
        ...     save(fc, path, extra={"epoch": 5})
        ...     with np.load(path) as f:
        ...         print(sorted(f.files))
        ['meta/json', 'param/out/W', 'param/out/b']
    """
    path = os.fspath(path)
    arrays: dict[str, np.ndarray] = {}
    for k, n in _learnables(model).items():
        arrays[f"param/{k}"] = np.asarray(n.value)
    for k, v in _state(model).items():
        arrays[f"state/{k}"] = np.asarray(v)
    if solver is not None:
        for k, v in solver.state_dict().items():
            arrays[f"solver/{k}"] = np.asarray(v)
    for k, v in arrays.items():
        if "\0" in k:
            # zip tools cut names at NUL: the file could be written but never loaded
            raise ValueError(
                f"golgi.save: cannot write {path}: the entry name {k!r} holds a NUL character, "
                f"which a checkpoint cannot store; rename the layer (G.WithName) or the node"
            )
        if v.dtype.hasobject:
            raise TypeError(f"save: {k!r} is an object array; only numeric arrays are saved")
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "golgi_version": _version(),
        "model": _describe(model),
        "solver": None if solver is None else type(solver).__name__,
        "extra": dict(extra) if extra is not None else None,
    }
    arrays["meta/json"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    target = _write_target(path)
    folder, base = os.path.split(target)
    _remove_stale_temps(folder, base, ".tmp")
    try:
        fd, tmp = _make_temp(folder, base, ".tmp")
    except OSError as e:  # the temporary file's name would only confuse
        raise type(e)(e.errno, f"golgi.save: cannot write {path}: {e.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            # mkstemp makes the file private (0600); give it what open() would have
            os.chmod(tmp, 0o666 & ~_umask())
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(e, OSError) and e.errno is not None:
            raise type(e)(e.errno, f"golgi.save: cannot write {path}: {e.strerror}") from e
        raise


def _write_target(path: str) -> str:
    """The file to replace: ``path``, or the file it links to (the link itself stays)."""
    target = os.path.realpath(path)
    if os.path.islink(target):  # realpath gives up on a loop and returns a link
        raise OSError(errno.ELOOP, f"golgi.save: cannot write {path}: a symbolic link loop")
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        via = "" if target == os.path.abspath(path) else f" (the target of the link {path})"
        raise FileNotFoundError(
            f"golgi.save: cannot write {path}{via}: the folder {folder} does not exist; "
            f"create it first (os.makedirs({folder!r}, exist_ok=True))"
        )
    return target


def _umask() -> int:
    # reading the umask means setting it; put it straight back
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _version() -> str:
    from . import __version__

    return __version__


# Temporary files are named ".<file>.golgi-<host>-<pid>.<random><suffix>" so that a later
# save or download can tell its own stale leftovers (the process is gone) from anyone else's.


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:32] or "host"


def _make_temp(folder: str, base: str, suffix: str) -> tuple[int, str]:
    prefix = f".{base}.golgi-{_host()}-{os.getpid()}."
    return tempfile.mkstemp(dir=folder or ".", prefix=prefix, suffix=suffix)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists but is someone else's
        return True
    return True


def _remove_stale_temps(folder: str, base: str, suffix: str) -> None:
    """Delete temporary files for ``base`` that a killed golgi process left in ``folder``.

    Only files named by :func:`_make_temp` on this host, owned by this user, whose process
    is gone, are removed; nothing else is touched, and failures are ignored.
    """
    if os.name != "posix":  # os.kill(pid, 0) would kill the process on Windows
        return
    pattern = re.compile(
        rf"\.{re.escape(base)}\.golgi-{_host()}-(\d+)\.[A-Za-z0-9_]+{re.escape(suffix)}\Z"
    )
    try:
        names = os.listdir(folder or ".")
    except OSError:
        return
    for name in names:
        m = pattern.match(name)
        if m is None or int(m[1]) == os.getpid() or _alive(int(m[1])):
            continue
        full = os.path.join(folder, name)
        try:
            st = os.lstat(full)
            if stat.S_ISREG(st.st_mode) and st.st_uid == os.getuid():
                os.remove(full)
        except OSError:
            pass


# ----------------------------------------------------------------------------- reading


def _reason(e: BaseException) -> str:
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
        raise ValueError(f"its .npy header is not a Python literal ({_reason(e)})") from None
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
        raise ValueError(f"its .npy header has an invalid dtype ({_reason(e)})") from None
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


class _Archive:
    """A checkpoint opened for reading: its zip directory checked, entries read on demand."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self.f: IO[bytes] = open(path, "rb")  # noqa: SIM115 (closed by close())
        except FileNotFoundError:
            raise FileNotFoundError(f"golgi.load: no such file: {path}") from None
        except OSError as e:
            raise CheckpointError(f"cannot read {path}: {_reason(e)}") from None
        try:
            self._open()
        except BaseException:
            self.f.close()
            raise

    def _open(self) -> None:
        path, f = self.path, self.f
        head = f.read(64)
        if not head.startswith(b"PK\x03\x04"):
            raise _not_a_checkpoint(path, f, head)
        self.size = os.fstat(f.fileno()).st_size
        try:
            self.zip = zipfile.ZipFile(f)
            infos = self.zip.infolist()
        except Exception as e:  # any failure to parse the zip directory means a damaged file
            raise CheckpointError(
                f"{path} is truncated or damaged: its zip directory cannot be read "
                f"({_reason(e)}); save the model again with golgi.save, or use another copy"
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
        if not name.endswith(".npy") or not (key == "meta/json" or key.startswith(_PREFIXES)):
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
                raise self._damaged(key, _reason(e)) from e
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
        view = memoryview(out.reshape(-1, order="A").view(np.uint8))
        try:
            with self.zip.open(self.entries[key + ".npy"]) as f:
                f.read(hlen)
                got = 0
                while got < len(view):
                    n = f.readinto(view[got : got + _CHUNK])  # bounded: no whole-entry copy
                    if not n:
                        raise EOFError
                    got += n
                if f.read(1):  # also makes zipfile check the CRC
                    raise ValueError("it holds more data than its header declares")
        except Exception as e:
            raise self._damaged(key, _reason(e)) from e
        return out

    def close(self) -> None:
        if hasattr(self, "zip"):
            self.zip.close()
        self.f.close()

    def __enter__(self) -> _Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _meta(ar: _Archive) -> dict[str, Any]:
    path = ar.path
    if "meta/json.npy" not in ar.entries:
        raise CheckpointError(f"{path} is an .npz file but not a golgi checkpoint (no meta/json)")
    shape, dtype = ar.header("meta/json")
    if dtype != np.uint8 or len(shape) != 1 or shape[0] > MAX_META_BYTES:
        raise CheckpointError(
            f"{path}: its meta/json entry is {dtype} {shape}; golgi writes UTF-8 JSON as uint8 "
            f"bytes, at most {MAX_META_BYTES} (golgi.io.MAX_META_BYTES); the file is damaged"
        )
    damaged = f"{path}: its meta/json is damaged or altered"
    try:
        meta = json.loads(ar.read("meta/json").tobytes().decode("utf-8"))
    except RecursionError:
        raise CheckpointError(f"{damaged}: its JSON is nested too deeply") from None
    except ValueError as e:  # bad UTF-8, bad JSON, an integer too long to convert
        raise CheckpointError(f"{damaged} ({_reason(e)})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a golgi checkpoint (meta/json has no format)")
    version = meta.get("format_version", 0)
    for field, ok, want in (
        ("format_version", type(version) is int, "an integer"),
        ("solver", isinstance(meta.get("solver"), (str, type(None))), "a class name or null"),
        ("extra", isinstance(meta.get("extra"), (dict, type(None))), "an object or null"),
        ("model", isinstance(meta.get("model"), (list, type(None))), "a list of layers"),
    ):
        if not ok:
            raise CheckpointError(
                f"{damaged}: its {field} is {meta[field]!r}, not {want}; save the model again"
            )
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} uses checkpoint format {version}, newer than this golgi reads "
            f"({FORMAT_VERSION}); upgrade golgi"
        )
    return meta


def _layers_line(desc: Any) -> str:
    if not isinstance(desc, list):
        return "?"
    return ", ".join(f"{d.get('name')} ({d.get('kind')})" for d in desc if isinstance(d, dict))


def _compare(
    what: str,
    want: Mapping[str, tuple[tuple[int, ...], np.dtype]],
    ar: _Archive,
    prefix: str,
    problems: list[str],
) -> None:
    got = ar.keys(prefix)
    missing = [k for k in want if k not in got]
    unexpected = [k for k in got if k not in want]
    if missing:
        problems.append(f"missing {what}: {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected {what}: {', '.join(unexpected)}")
    for k, (shape, dtype) in want.items():
        if k not in got:
            continue
        file_shape, file_dtype = ar.header(prefix + k)
        if tuple(file_shape) != tuple(shape):
            problems.append(
                f"{what} {k}: the model has shape {tuple(shape)}, the file {tuple(file_shape)}"
            )
        elif file_dtype != dtype:
            problems.append(f"{what} {k}: the model is {dtype}, the file {file_dtype}")


def _check_solver(
    ar: _Archive, meta: Mapping[str, Any], solver: Any, params: dict[str, gc.Node]
) -> list[str]:
    """Check the solver entries against the model and the solver, reading only 0-d ones.

    Per-parameter buffers (``m/0``, ``cache/3``) must have the shape and dtype of the
    learnable at that position (the order of ``model.model()``), since a fresh solver would
    take any layout and only fail at its first step.
    """
    keys = ar.keys("solver/")
    if not keys:
        return ["no solver state in the file (it was saved without solver=...)"]
    kind = type(solver).__name__
    if meta.get("solver") not in (None, kind):
        return [f"the file holds {meta['solver']} state, the solver given is {kind}"]
    problems = []
    layout = [(tuple(n.shape), n.dtype.np, k) for k, n in params.items()]
    for key in keys:
        shape, dtype = ar.header("solver/" + key)
        buffer, _, index = key.rpartition("/")
        if buffer:
            if not (index.isascii() and index.isdigit() and int(index) < len(layout)):
                problems.append(f"solver entry {key}: the model has no learnable {index}")
                continue
            want_shape, want_dtype, name = layout[int(index)]
            if (shape, dtype) != (want_shape, want_dtype):
                problems.append(
                    f"solver entry {key} is {dtype} {shape}, but learnable {index} ({name}) is "
                    f"{want_dtype} {want_shape}: the solver state belongs to another model"
                )
        elif shape != () or dtype.kind not in "biufU" or dtype.itemsize > _MAX_SCALAR_BYTES:
            problems.append(
                f"solver entry {key} must be a single value, the file has shape {shape} "
                f"and dtype {dtype}"
            )
        elif key == "num_params" and dtype.kind in "iu":
            n = int(ar.read("solver/num_params"))
            if n not in (0, len(layout)):
                problems.append(
                    f"the solver state is for {n} learnables, the model has {len(layout)}"
                )
        elif key == "solver" and str(ar.read("solver/solver")) != kind:
            problems.append(
                f"the file holds {ar.read('solver/solver')} state, the solver given is {kind}"
            )
    return problems


class _SolverEntries(Mapping[str, np.ndarray]):
    """The file's solver entries, read only when the solver asks for them."""

    def __init__(self, ar: _Archive) -> None:
        self.ar, self.names = ar, ar.keys("solver/")

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self.names:
            raise KeyError(key)
        return self.ar.read("solver/" + key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)


def load(model: Any, path: str | os.PathLike[str], solver: Any = None) -> dict[str, Any]:
    """Load learnables and state (and the solver's state) from ``path`` into ``model``.

    Returns the checkpoint's metadata (``meta["extra"]`` is what ``save`` got as ``extra``).
    Solver entries in the file are ignored when ``solver`` is None (loading for inference).
    Raises :class:`CheckpointError` (nothing changed) when the file does not fit, is damaged
    or is not a checkpoint, and ``FileNotFoundError`` when there is no file.

    Example:
        >>> import os, tempfile, numpy as np, graphcore as gc, golgi as G
        >>> def tiny():
        ...     g = gc.NewGraph()
        ...     x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 3), gc.WithName("x"))
        ...     return G.ConsFC(x, G.WithShape(2), G.WithName("out"))
        >>> trained, fresh = tiny(), tiny()  # same layout, different random weights
        >>> with tempfile.TemporaryDirectory() as d:
        ...     path = os.path.join(d, "model.npz")
        ...     save(trained, path, extra={"epoch": 5})
        ...     meta = load(fresh, path)
        >>> np.array_equal(fresh.params["W"].value, trained.params["W"].value), meta["extra"]
        (True, {'epoch': 5})
    """
    path = os.fspath(path)
    params = _learnables(model)
    state = _state(model)
    with _Archive(path) as ar:
        meta = _meta(ar)
        problems: list[str] = []
        want_p = {k: (n.shape, n.dtype.np) for k, n in params.items()}
        _compare("learnable", want_p, ar, "param/", problems)
        _compare("state", {k: (v.shape, v.dtype) for k, v in state.items()}, ar, "state/", problems)
        if solver is not None:
            problems += _check_solver(ar, meta, solver, params)
        if problems:
            raise CheckpointError(
                f"cannot load {path} into this model:\n  - "
                + "\n  - ".join(problems)
                + f"\n  the file's model: {_layers_line(meta.get('model'))}"
                + (
                    f"\n  this model:      {_layers_line(_describe(model))}"
                    if hasattr(model, "describe")
                    else ""
                )
                + "\n  build the model as the saved one was built (same layer names, shapes and "
                "dtypes), and pass the solver class it was saved with"
            )
        got_p = {k: ar.read("param/" + k) for k in params}
        got_s = {k: ar.read("state/" + k) for k in ar.keys("state/")}
        if solver is not None:
            try:
                solver.load_state_dict(_SolverEntries(ar))
            except CheckpointError:
                raise
            except (ValueError, KeyError, TypeError) as e:
                raise CheckpointError(f"cannot load the solver state in {path}: {e}") from e
    for k, n in params.items():
        gc.Let(n, got_p[k])  # copies into the node's buffer, which machines keep reading
    if got_s and hasattr(model, "load_state"):
        model.load_state(got_s)
    return meta
