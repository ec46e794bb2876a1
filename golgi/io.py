"""Saving and loading models (and solver state) in one pickle-free ``.npz`` file.

Layout (every entry a plain numeric array):

- ``param/<layer>/<name>``: each learnable (``param/e1/W``, ``param/e1/b``, ...);
- ``state/<layer>/<name>``: non-learnable layer state (batch norm running statistics);
- ``solver/<key>``: the solver's ``state_dict()`` (when a solver is given);
- ``meta/json``: UTF-8 JSON as a uint8 array: format and library version, the model's
  description (layer kinds, names, configs, shapes), the solver's class, and ``extra``.

Loading is strict: missing keys, unexpected keys, shape and dtype mismatches are reported
together in one :class:`CheckpointError`, and nothing is changed when it is raised. The file
is read with ``allow_pickle=False``; files with pickled objects are refused. Writes are
atomic (a temporary file in the same folder, then ``os.replace``).

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

import json
import os
import tempfile
import zipfile
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np

import graphcore as gc

__all__ = ["CheckpointError", "save", "load", "FORMAT", "FORMAT_VERSION"]

FORMAT = "golgi-checkpoint"
FORMAT_VERSION = 1


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


def save(
    model: Any,
    path: str | os.PathLike[str],
    solver: Any = None,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Write the model's learnables and state (and the solver's state) to ``path``.

    ``model``: a layer or composition (or a dict/list of learnable nodes). ``solver``: any
    object with ``state_dict()``. ``extra``: JSON-able data (e.g. the epoch), returned by
    ``load``. The path is used as given (no extension is added).

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
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            f"golgi.save: cannot write {path}: the folder {folder} does not exist; create it "
            f"first (os.makedirs({folder!r}, exist_ok=True))"
        )
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    except OSError as e:  # the temporary file's name would only confuse
        raise type(e)(e.errno, f"golgi.save: cannot write {path}: {e.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            # mkstemp makes the file private (0600); give it what open() would have
            os.chmod(tmp, 0o666 & ~_umask())
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(e, OSError) and e.errno is not None:
            raise type(e)(e.errno, f"golgi.save: cannot write {path}: {e.strerror}") from e
        raise


def _umask() -> int:
    # reading the umask means setting it; put it straight back
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _version() -> str:
    from . import __version__

    return __version__


def _read(path: str) -> dict[str, np.ndarray]:
    damaged = (
        f"{path} is truncated or damaged, or not a golgi checkpoint (.npz); save it again "
        f"with golgi.save"
    )
    try:
        f = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"golgi.load: no such file: {path}") from None
    except ValueError as e:
        if "pickle" in str(e):
            raise CheckpointError(
                f"{path} contains pickled Python objects; golgi refuses to load pickled data "
                f"(it can run arbitrary code). Checkpoints written by golgi.save have none"
            ) from None
        raise CheckpointError(damaged) from e
    except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as e:
        raise CheckpointError(damaged) from e
    if not isinstance(f, np.lib.npyio.NpzFile):
        raise CheckpointError(f"{path} holds a single array, not a golgi checkpoint (.npz)")
    out: dict[str, np.ndarray] = {}
    with f:
        for key in f.files:
            try:
                out[key] = f[key]
            except ValueError as e:
                if "pickle" in str(e) or "Object arrays" in str(e):
                    raise CheckpointError(
                        f"{path}: entry {key!r} is a pickled object array; golgi refuses to "
                        f"load pickled data (it can run arbitrary code)"
                    ) from None
                raise CheckpointError(f"{path}: entry {key!r} is damaged: {e}") from e
            except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as e:
                raise CheckpointError(f"{path}: entry {key!r} is damaged ({e})") from e
    return out


def _meta(path: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    raw = arrays.get("meta/json")
    if raw is None:
        raise CheckpointError(f"{path} is an .npz file but not a golgi checkpoint (no meta/json)")
    try:
        meta = json.loads(raw.astype(np.uint8).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: its meta/json entry is damaged ({e})") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a golgi checkpoint (meta/json has no format)")
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} uses checkpoint format {meta['format_version']}, newer than this golgi "
            f"reads ({FORMAT_VERSION}); upgrade golgi"
        )
    return meta


def _layers_line(desc: Any) -> str:
    if not isinstance(desc, list):
        return "?"
    return ", ".join(f"{d.get('name')} ({d.get('kind')})" for d in desc if isinstance(d, dict))


def _compare(
    what: str,
    want: Mapping[str, tuple[tuple[int, ...], np.dtype]],
    got: Mapping[str, np.ndarray],
    problems: list[str],
) -> None:
    missing = [k for k in want if k not in got]
    unexpected = [k for k in got if k not in want]
    if missing:
        problems.append(f"missing {what}: {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected {what}: {', '.join(unexpected)}")
    for k, (shape, dtype) in want.items():
        if k not in got:
            continue
        a = got[k]
        if tuple(a.shape) != tuple(shape):
            problems.append(
                f"{what} {k}: the model has shape {tuple(shape)}, the file {tuple(a.shape)}"
            )
        elif a.dtype != dtype:
            problems.append(f"{what} {k}: the model is {dtype}, the file {a.dtype}")


def load(model: Any, path: str | os.PathLike[str], solver: Any = None) -> dict[str, Any]:
    """Load learnables and state (and the solver's state) from ``path`` into ``model``.

    Returns the checkpoint's metadata (``meta["extra"]`` is what ``save`` got as ``extra``).
    Solver entries in the file are ignored when ``solver`` is None (loading for inference).
    Raises :class:`CheckpointError` (nothing changed) when the file does not fit or is damaged.

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
    arrays = _read(path)
    meta = _meta(path, arrays)
    params = _learnables(model)
    state = _state(model)
    got_p = {k[len("param/") :]: v for k, v in arrays.items() if k.startswith("param/")}
    got_s = {k[len("state/") :]: v for k, v in arrays.items() if k.startswith("state/")}
    got_o = {k[len("solver/") :]: v for k, v in arrays.items() if k.startswith("solver/")}
    problems: list[str] = []
    _compare("learnable", {k: (n.shape, n.dtype.np) for k, n in params.items()}, got_p, problems)
    _compare("state", {k: (v.shape, v.dtype) for k, v in state.items()}, got_s, problems)
    if solver is not None:
        if not got_o:
            problems.append("no solver state in the file (it was saved without solver=...)")
        elif meta.get("solver") not in (None, type(solver).__name__):
            problems.append(
                f"the file holds {meta['solver']} state, the solver given is "
                f"{type(solver).__name__}"
            )
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
        )
    if solver is not None:
        try:
            solver.load_state_dict(got_o)
        except (ValueError, KeyError, TypeError) as e:
            raise CheckpointError(f"cannot load the solver state in {path}: {e}") from e
    for k, n in params.items():
        gc.Let(n, got_p[k])  # copies into the node's buffer, which machines keep reading
    if got_s and hasattr(model, "load_state"):
        model.load_state(got_s)
    return meta
