"""The import rows of ONNX's shape and indexing ops (``Reshape``, ``Flatten``, ``Squeeze``,
``Unsqueeze``, ``Transpose``, ``Concat``, ``Gather``, ``Slice``, ``Shape``, ``Constant``,
``ConstantOfShape``, ``Identity``): each builds graphcore's ``Reshape``, ``Slice``, ... on a
node, or computes its result while loading when its operands are known then (the shape
arithmetic exporters write around ``Reshape``).

Example:
    >>> _reshape_target((None, 4, 4), [-1, 16], False)
    (None, 16)
    >>> _clamp(1, 2**63 - 1, 1, 5)
    slice(1, 5, None)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..ops import ByIndices, Concat, Reshape, Slice, Transpose
from ..shapes import size_of
from .import_operands import Value, _all_static, _axes, _ints, _x

if TYPE_CHECKING:  # pragma: no cover
    from .importer import Loader

__all__: list[str] = []


def _reshape_target(x_shape: tuple, target: list, allowzero: bool) -> tuple:
    """graphcore's target for ONNX's: 0 copies the input's dimension (unless allowzero), and
    a -1 that stands for the free batch becomes None."""
    tgt = [x_shape[i] if d == 0 and not allowzero else d for i, d in enumerate(target)]
    tgt = [None if d is None else int(d) for d in tgt]
    if -1 in tgt and None in x_shape and None not in tgt:
        known_in = size_of(tuple(d for d in x_shape if d is not None))
        known_out = size_of(tuple(d for d in tgt if d != -1))
        if known_in != known_out:
            raise ValueError(
                f"cannot reshape {x_shape} to {target}: the -1 would mix the free batch "
                f"dimension with others"
            )
        tgt[tgt.index(-1)] = None
    return tuple(tgt)


def _reshape(ld: Loader, p: Any, a: dict[str, Any]) -> list[Value]:
    target = list(ld.need_static(p, 1, "target shape").reshape(-1))
    allowzero = bool(a.get("allowzero", 0))
    arr = ld.static(p.input[0])
    if arr is not None and p.input[0] not in ld.nodes and arr.dtype != object:
        return [arr.reshape(_reshape_target(arr.shape, target, allowzero))]
    x = _x(ld, p)
    return [Reshape(x, _reshape_target(x.shape, target, allowzero))]


def _flatten(ld: Loader, p: Any, a: dict[str, Any]) -> list[Value]:
    x = _x(ld, p)
    axis = int(a.get("axis", 1)) % (x.ndim + 1) if x.ndim else 0
    lead, trail = x.shape[:axis], x.shape[axis:]
    if None in trail or (None in lead and lead != (None,)):
        raise ld.error(p, f"cannot flatten {x.describe()} at axis {axis} keeping the free "
                          f"batch dimension apart")
    rows = None if None in lead else size_of(lead)
    return [Reshape(x, (rows, size_of(trail)))]


def _squeeze(ld: Loader, p: Any, a: dict[str, Any]) -> list[Value]:
    axes = _axes(ld, p, a, 13)
    arr = ld.static(p.input[0])
    if arr is not None and p.input[0] not in ld.nodes:
        return [np.squeeze(arr, axis=None if axes is None else tuple(axes))]
    x = _x(ld, p)
    drop = {i % x.ndim for i in axes} if axes is not None else {
        i for i, d in enumerate(x.shape) if d == 1}
    return [Reshape(x, tuple(d for i, d in enumerate(x.shape) if i not in drop))]


def _unsqueeze(ld: Loader, p: Any, a: dict[str, Any]) -> list[Value]:
    axes = _axes(ld, p, a, 13)
    if axes is None:
        raise ld.error(p, "Unsqueeze needs its axes")
    # the operand's array when it is known while loading and not already a graph node
    arr = None if p.input[0] in ld.nodes else ld.static(p.input[0])
    shape = list(arr.shape if arr is not None else _x(ld, p).shape)
    nd = len(shape) + len(axes)
    for i in sorted(ax % nd for ax in axes):
        shape.insert(i, 1)
    if arr is not None:
        return [arr.reshape(shape)]
    return [Reshape(_x(ld, p), tuple(shape))]


def _transpose(ld: Loader, p: Any, a: dict[str, Any]) -> list[Value]:
    perm = _ints(a["perm"]) if "perm" in a else None
    arr = ld.static(p.input[0])
    if arr is not None and p.input[0] not in ld.nodes:
        return [np.transpose(arr, perm)]
    return [Transpose(_x(ld, p), perm)]


def _concat(ld: Loader, p: Any, a: dict[str, Any]) -> list[Value]:
    axis = int(a["axis"])
    known = _all_static(ld, p)
    if known is not None:
        return [np.concatenate([np.atleast_1d(k) for k in known], axis=axis)]
    return [Concat(axis, *(ld.node(n) for n in p.input))]


def _gather(ld: Loader, p: Any, a: dict[str, Any]) -> list[Value]:
    axis = int(a.get("axis", 0))
    known = _all_static(ld, p)
    if known is not None:
        return [np.take(known[0], known[1].astype(np.int64), axis=axis)]
    x = _x(ld, p)
    idx = ld.static(p.input[1])
    if idx is not None and p.input[1] not in ld.nodes and idx.ndim == 0:
        at = axis % x.ndim
        return [Slice(x, (*(slice(None),) * at, int(idx)))]
    return [ByIndices(x, _x(ld, p, 1) if idx is None else idx.astype(np.int64), axis)]


def _clamp(start: int, end: int, step: int, n: int | None) -> slice:
    """ONNX's slice bounds as a Python slice graphcore accepts (ONNX clamps, graphcore does
    not): exact bounds on a known axis, open ends on the free one."""
    big = 2**62
    if n is None:
        lo = None if (step > 0 and start == 0) or (step < 0 and start >= big) else start
        hi = None if (step > 0 and end >= big) or (step < 0 and end <= -big) else end
        return slice(lo, hi, None if step == 1 else step)
    if start < 0:
        start += n
    if end < 0:
        end += n
    if step > 0:
        start, end = min(max(start, 0), n), min(max(end, 0), n)
        return slice(start, max(end, start), None if step == 1 else step)
    start, end = min(max(start, 0), n - 1), min(max(end, -1), n - 1)
    return slice(start, None if end < 0 else end, step)


def _slice(ld: Loader, p: Any, a: dict[str, Any]) -> list[Value]:
    if ld.opset < 10:
        starts, ends = _ints(a["starts"]), _ints(a["ends"])
        axes = _ints(a["axes"]) if "axes" in a else list(range(len(starts)))
        steps = [1] * len(starts)
    else:
        starts = _ints(ld.need_static(p, 1, "starts"))
        ends = _ints(ld.need_static(p, 2, "ends"))
        axes = _ints(ld.need_static(p, 3, "axes")) if ld.has(p, 3) else list(range(len(starts)))
        steps = _ints(ld.need_static(p, 4, "steps")) if ld.has(p, 4) else [1] * len(starts)
    # the operand's array when it is known while loading and not already a graph node
    arr = None if p.input[0] in ld.nodes else ld.static(p.input[0])
    shape = arr.shape if arr is not None else _x(ld, p).shape
    index: list[Any] = [slice(None)] * len(shape)
    for s, e, ax, st in zip(starts, ends, axes, steps, strict=True):
        index[ax % len(shape)] = _clamp(s, e, st, shape[ax % len(shape)])
    if arr is not None:
        return [arr[tuple(index)]]
    return [Slice(_x(ld, p), tuple(index))]


def _shape(ld: Loader, p: Any, a: dict[str, Any]) -> list[Value]:
    arr = ld.static(p.input[0])
    shape = arr.shape if arr is not None and p.input[0] not in ld.nodes else _x(ld, p).shape
    dims = list(shape)[slice(a.get("start", 0), a.get("end"))]
    # a free dimension stays None (an object array): Reshape reads it as graphcore's None
    return [np.array(dims, dtype=object if None in dims else np.int64)]


def _constant(ld: Loader, p: Any, a: dict[str, Any]) -> list[Value]:
    if "value" in a:
        return [ld.onnx.numpy_helper.to_array(a["value"])]
    for key, dt in (("value_float", np.float32), ("value_floats", np.float32),
                    ("value_int", np.int64), ("value_ints", np.int64)):
        if key in a:
            return [np.asarray(a[key], dtype=dt)]
    raise ld.error(p, f"constant attributes {sorted(a)} are not supported")


def _constant_of_shape(ld: Loader, p: Any, a: dict[str, Any]) -> list[Value]:
    shape = _ints(ld.need_static(p, 0, "shape"))
    value = ld.onnx.numpy_helper.to_array(a["value"]) if "value" in a else np.zeros(1, np.float32)
    return [np.full(shape, value.reshape(-1)[0], dtype=value.dtype)]


def _identity(ld: Loader, p: Any, a: dict[str, Any]) -> list[Value]:
    arr = ld.static(p.input[0])
    if arr is not None and p.input[0] not in ld.nodes and p.input[0] not in ld.initializers:
        return [arr]
    return [_x(ld, p)]
