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

import json
import os
from collections.abc import Iterator, Mapping
from typing import IO, Any

import numpy as np

import graphcore as gc

from .archive import MAX_COMPRESSION_RATIO, Archive, CheckpointError, reason
from .tempfiles import make_temp, remove_stale_temps, umask, write_target
from .version import __version__

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
_MAX_SCALAR_BYTES = 1024  # a solver's 0-d entries: its class name, step, hyperparameters


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
    path: str | os.PathLike[str] | IO[bytes],
    solver: Any = None,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Write the model's learnables and state (and the solver's state) to ``path``.

    ``model``: a layer or composition (or a dict/list of learnable nodes). ``solver``: any
    object with ``state_dict()``. ``extra``: JSON-able data (e.g. the epoch), returned by
    ``load``. The path is used as given (no extension is added). When ``path`` is a symbolic
    link, the file it points to is replaced and the link kept, as ``open(path, "w")`` would.
    ``path`` may also be a binary file object (``io.BytesIO``): the checkpoint is written to
    it as it is (no temporary file), e.g. to keep a model in memory.

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
    # hasattr in the condition itself, so that the checker narrows ``path`` in each branch
    if hasattr(path, "write"):
        to_file, where = True, str(getattr(path, "name", "<file object>"))
    else:
        to_file, where = False, os.fspath(path)
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
                f"golgi.save: cannot write {where}: the entry name {k!r} holds a NUL character, "
                f"which a checkpoint cannot store; rename the layer (G.WithName) or the node"
            )
        if v.dtype.hasobject:
            raise TypeError(f"save: {k!r} is an object array; only numeric arrays are saved")
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "golgi_version": __version__,
        "model": _describe(model),
        "solver": None if solver is None else type(solver).__name__,
        "extra": dict(extra) if extra is not None else None,
    }
    arrays["meta/json"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    if to_file:
        # the keys are entry names ("param/..."), never savez's allow_pickle keyword
        np.savez(path, **arrays)  # type: ignore[arg-type]
        return
    path = where
    target = write_target(path)
    folder, base = os.path.split(target)
    remove_stale_temps(folder, base, ".tmp")
    try:
        fd, tmp = make_temp(folder, base, ".tmp")
    except OSError as e:  # the temporary file's name would only confuse
        raise type(e)(e.errno, f"golgi.save: cannot write {path}: {e.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            # mkstemp makes the file private (0600); give it what open() would have
            os.chmod(tmp, 0o666 & ~umask())
            # the keys are entry names ("param/..."), never savez's allow_pickle keyword
            np.savez(f, **arrays)  # type: ignore[arg-type]
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(e, OSError) and e.errno is not None:
            raise type(e)(e.errno, f"golgi.save: cannot write {path}: {e.strerror}") from e
        raise


def _meta(ar: Archive) -> dict[str, Any]:
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
        raise CheckpointError(f"{damaged} ({reason(e)})") from None
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
    ar: Archive,
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
    ar: Archive, meta: Mapping[str, Any], solver: Any, params: dict[str, gc.Node]
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

    def __init__(self, ar: Archive) -> None:
        self.ar, self.names = ar, ar.keys("solver/")

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self.names:
            raise KeyError(key)
        return self.ar.read("solver/" + key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)


def load(
    model: Any, path: str | os.PathLike[str] | IO[bytes], solver: Any = None
) -> dict[str, Any]:
    """Load learnables and state (and the solver's state) from ``path`` into ``model``.

    Returns the checkpoint's metadata (``meta["extra"]`` is what ``save`` got as ``extra``).
    ``path`` may be a binary file object (``io.BytesIO``), read from its start.
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
    if not hasattr(path, "read"):  # a binary file object is read as it is
        path = os.fspath(path)
    params = _learnables(model)
    state = _state(model)
    with Archive(path) as ar:
        path = ar.path  # for messages: the file's name
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
