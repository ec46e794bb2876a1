"""What a solver kernel runs over: a :class:`Segment` of parameters and its arrays.

A solver step is a few elementwise passes over every parameter's gradient, state buffers
(caches, moments) and scratch. When the gradients tile one flat buffer in order (as a tape
machine's ``BindDualValues`` lays them out) and the state is laid out the same way, one
segment covers every parameter, so a numpy pass runs once over all of them; otherwise each
parameter is a segment of its own. The values are always separate arrays, one
:class:`Part` per parameter. A solver builds its segments once and keeps them while its
parameters' arrays stay the same.

Example:
    >>> import numpy as np
    >>> w, g, s = np.ones(3), np.full(3, 2.0), np.empty(3)
    >>> seg = Segment.single(w, g, s, {})
    >>> seg.add_to_values("g", -0.5); w.tolist()
    [0.0, 0.0, 0.0]
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from .blas import Axpby

__all__ = ["Reg", "Part", "Segment", "flat_span", "axpy_into", "share_out", "BLOCK_BYTES",
           "SHARE_ALIGN", "SHARE_BLAS_ELEMENTS"]

AxpbyFn = Callable[..., None]

#: bytes of each array in one block of a numpy solver's passes (:meth:`Segment.blocks`):
#: a block's gradient, scratch, state and values then stay in a core's L2 cache from one
#: pass to the next, instead of every pass streaming the whole arena from memory
BLOCK_BYTES = 512 * 1024
#: elements every cut between two threads' shares is a multiple of (counted from the first
#: segment's start): a whole number of cache lines of float32 and float64 alike, so two
#: threads never write one line
SHARE_ALIGN = 64
#: elements per BLAS call in a share that runs on the pool: OpenBLAS hands a longer axpy to
#: its own threads (above 10,000 elements), and two of the pool's threads doing so at once
#: would queue for them, spinning, while holding both cores
SHARE_BLAS_ELEMENTS = 8192


class Reg(NamedTuple):
    """The gradient rule every solver applies first:
    ``g' = clip((g + l1·sign(w) + l2·w) / batch, -clip, clip)`` (``clip`` None: no clipping).

    Example:
        >>> Reg(0.0, 0.0, 1, None).plain, Reg(0.0, 0.0, 100, None).plain
        (True, False)
    """

    l1: float
    l2: float
    batch: float
    clip: float | None

    @property
    def plain(self) -> bool:
        """True when the rule leaves ``g`` as it is.

        Example:
            >>> Reg(0.0, 1e-4, 1, None).plain
            False
        """
        return self.l1 == 0 and self.l2 == 0 and self.batch == 1 and self.clip is None


def flat_span(grads: Sequence[np.ndarray]) -> np.ndarray | None:
    """The 1-D span of one buffer that ``grads`` tile in order, or None if they do not.

    Example:
        >>> buf = np.zeros(5); a, b = buf[:2], buf[2:].reshape(3, 1)
        >>> flat_span([a, b]).size, flat_span([b, a])
        (5, None)
    """
    if not grads:
        return None
    base = grads[0].base
    if not isinstance(base, np.ndarray) or base.ndim != 1 or not base.flags.c_contiguous:
        return None
    isz, start = base.itemsize, base.ctypes.data
    lo = pos = (grads[0].ctypes.data - start) // isz
    for g in grads:
        if (
            g.base is not base
            or not g.flags.c_contiguous
            or g.dtype != base.dtype
            or g.ctypes.data - start != pos * isz
        ):
            return None
        pos += g.size
    return base[lo:pos]


def axpy_into(x: np.ndarray, y: np.ndarray, piece: int = 0) -> AxpbyFn:
    """A callable ``f(alpha, beta=1.0)`` doing ``y = alpha * x + beta * y``: one BLAS pass when
    both are contiguous (in calls of at most ``piece`` elements when ``piece`` > 0), else
    numpy, which may scale ``x`` in place.

    Example:
        >>> y = np.ones(2); axpy_into(np.full(2, 2.0), y)(0.5, 3.0); y.tolist()
        [4.0, 4.0]
        >>> y = np.ones(5); axpy_into(np.arange(5.0), y, piece=2)(1.0); y.tolist()
        [1.0, 2.0, 3.0, 4.0, 5.0]
    """
    if x.flags.c_contiguous and y.flags.c_contiguous and x.dtype == y.dtype:
        x1, y1 = x.reshape(-1), y.reshape(-1)
        if piece <= 0 or x1.size <= piece:
            return Axpby(x1, y1)
        calls = [Axpby(x1[i : i + piece], y1[i : i + piece]) for i in range(0, x1.size, piece)]

        def pieces(alpha: float, beta: float = 1.0) -> None:
            for call in calls:
                call(alpha, beta)

        return pieces

    def run(alpha: float, beta: float = 1.0) -> None:
        if beta != 1.0:
            np.multiply(y, beta, out=y)
        if alpha != 1.0:
            np.multiply(x, alpha, out=x)
        np.add(y, x, out=y)

    return run


class Part:
    """One parameter of a segment: its value ``w``, gradient ``g``, scratch ``s`` and state
    buffers, and ``flat``: 1-D views of them by name (``"w"``, ``"g"``, each buffer's name) for
    loops that index flat, or None when one of them is not C-contiguous. ``piece``: elements
    per BLAS call (0: one call), as :func:`axpy_into`.

    Example:
        >>> p = Part(np.ones((2, 2)), np.ones((2, 2)), np.empty((2, 2)), {"m": np.zeros((2, 2))})
        >>> sorted(p.flat), p.flat["m"].shape
        (['g', 'm', 'w'], (4,))
    """

    __slots__ = ("w", "g", "s", "bufs", "flat", "piece", "_ax")

    def __init__(self, w: np.ndarray, g: np.ndarray, s: np.ndarray,
                 bufs: dict[str, np.ndarray], piece: int = 0) -> None:
        self.w, self.g, self.s, self.bufs, self.piece = w, g, s, bufs, piece
        self._ax: dict[str, AxpbyFn] = {}
        arrays = {"w": w, "g": g, **bufs}
        self.flat: dict[str, np.ndarray] | None = (
            {k: a.reshape(-1) for k, a in arrays.items()}
            if all(a.flags.c_contiguous for a in arrays.values())
            else None
        )

    def add_to_value(self, src: str, alpha: float) -> None:
        """``w += alpha * x`` with ``x`` the gradient ("g"), scratch ("s") or a state buffer;
        "g" and "s" may be scaled in place.

        Example:
            >>> p = Part(np.ones(2), np.ones(2), np.empty(2), {}); p.add_to_value("g", 2.0)
            >>> p.w.tolist()
            [3.0, 3.0]
        """
        ax = self._ax.get(src)
        if ax is None:
            x = self.g if src == "g" else self.s if src == "s" else self.bufs[src]
            ax = self._ax[src] = axpy_into(x, self.w, self.piece)
        ax(alpha)


class Segment:
    """Gradient ``g``, scratch ``s`` and state buffers that a step's passes run over (every
    parameter's at once, or one parameter's), with the :class:`Part` of each parameter.

    ``flat_parts`` lists every part's ``flat`` views, or is None when some part has none.
    ``piece``: elements per BLAS call (0: one call), as :func:`axpy_into`; the segments
    :func:`share_out` cuts for the pool's threads have :data:`SHARE_BLAS_ELEMENTS`.

    Example:
        >>> seg = Segment.single(np.ones(2), np.ones(2), np.empty(2), {"v": np.zeros(2)})
        >>> seg.axpby("g", "v", 2.0, 0.5); seg.bufs["v"].tolist(), len(seg.flat_parts)
        ([2.0, 2.0], 1)
    """

    __slots__ = ("g", "s", "bufs", "parts", "flat_parts", "piece", "_ax", "_blocks")

    def __init__(self, g: np.ndarray, s: np.ndarray, bufs: dict[str, np.ndarray],
                 parts: list[Part], piece: int = 0) -> None:
        self.g, self.s, self.bufs, self.parts, self.piece = g, s, bufs, parts, piece
        self._ax: dict[tuple[str, str], AxpbyFn] = {}
        self._blocks: list[Segment] | None = None
        flats = [p.flat for p in parts if p.flat is not None]
        self.flat_parts: list[dict[str, np.ndarray]] | None = (
            flats if len(flats) == len(parts) else None
        )

    @classmethod
    def single(cls, w: np.ndarray, g: np.ndarray, s: np.ndarray,
               bufs: dict[str, np.ndarray]) -> Segment:
        """The segment of one parameter.

        Example:
            >>> Segment.single(np.ones(2), np.ones(2), np.empty(2), {}).parts[0].w.tolist()
            [1.0, 1.0]
        """
        return cls(g, s, bufs, [Part(w, g, s, bufs)])

    def blocks(self, nbytes: int | None = None) -> list[Segment]:
        """The segment cut into consecutive segments of at most ``nbytes`` per array (made
        once, then kept; ``nbytes`` defaults to :data:`BLOCK_BYTES`), so a numpy kernel can
        run all its passes over one block before the next; ``[self]`` when it is that small,
        or when an array is not C-contiguous or its parts do not tile its gradient in order.

        Example:
            >>> g = np.arange(5.0)
            >>> seg = Segment(g, np.empty(5), {}, [Part(np.ones(2), g[:2], np.empty(2), {}),
            ...                                   Part(np.ones(3), g[2:], np.empty(3), {})])
            >>> [[p.g.tolist() for p in b.parts] for b in seg.blocks(16)]
            [[[0.0, 1.0]], [[2.0, 3.0]], [[4.0]]]
        """
        if self._blocks is None:
            size = BLOCK_BYTES if nbytes is None else nbytes
            self._blocks = self._cut(max(1, size // self.g.itemsize))
        return self._blocks

    def _cut(self, n: int) -> list[Segment]:
        return self.cut_at(list(range(n, self.g.size, n)))

    def cut_at(self, cuts: Sequence[int], piece: int | None = None) -> list[Segment]:
        """The segment cut into consecutive segments at the element offsets ``cuts``
        (increasing, inside the gradient), with ``piece`` elements per BLAS call (None: this
        segment's); ``[self]`` when there is nothing to cut, or when an array is not
        C-contiguous or its parts do not tile its gradient in order.

        Example:
            >>> g = np.arange(5.0)
            >>> seg = Segment(g, np.empty(5), {}, [Part(np.ones(2), g[:2], np.empty(2), {}),
            ...                                   Part(np.ones(3), g[2:], np.empty(3), {})])
            >>> [[p.g.tolist() for p in b.parts] for b in seg.cut_at([3])]
            [[[0.0, 1.0], [2.0]], [[3.0, 4.0]]]
        """
        arrays = [self.g, self.s, *self.bufs.values()]
        flats = self.flat_parts
        if (
            not cuts
            or flats is None
            or not all(a.flags.c_contiguous and a.size == self.g.size for a in arrays)
            or not all(p.s.flags.c_contiguous for p in self.parts)
        ):
            return [self]
        g1, s1 = self.g.reshape(-1), self.s.reshape(-1)
        bufs1 = {k: v.reshape(-1) for k, v in self.bufs.items()}
        starts, pos = [], g1.ctypes.data
        for p in self.parts:
            if p.g.ctypes.data != pos:
                return [self]
            starts.append((pos - g1.ctypes.data) // g1.itemsize)
            pos += p.g.nbytes
        if pos != g1.ctypes.data + g1.nbytes:
            return [self]
        if piece is None:
            piece = self.piece
        out = []
        for lo, hi in zip([0, *cuts], [*cuts, g1.size], strict=True):
            parts = []
            for start, p, f in zip(starts, self.parts, flats, strict=True):
                a, b = max(lo, start) - start, min(hi, start + p.g.size) - start
                if a < b:
                    sub = {k: v[a:b] for k, v in f.items() if k not in ("w", "g")}
                    parts.append(Part(f["w"][a:b], f["g"][a:b], p.s.reshape(-1)[a:b], sub,
                                      piece))
            out.append(Segment(g1[lo:hi], s1[lo:hi], {k: v[lo:hi] for k, v in bufs1.items()},
                               parts, piece))
        return out

    def axpby(self, src: str, dst: str, alpha: float, beta: float) -> None:
        """``dst = alpha * src + beta * dst`` over the segment (names as in :class:`Part`);
        one BLAS pass.

        Example:
            >>> seg = Segment.single(np.ones(2), np.ones(2), np.empty(2), {"c": np.ones(2)})
            >>> seg.axpby("g", "c", 1.0, 2.0); seg.bufs["c"].tolist()
            [3.0, 3.0]
        """
        ax = self._ax.get((src, dst))
        if ax is None:
            pick = {"g": self.g, "s": self.s, **self.bufs}
            ax = self._ax[(src, dst)] = axpy_into(pick[src], pick[dst], self.piece)
        ax(alpha, beta)

    def add_to_values(self, src: str, alpha: float) -> None:
        """``w += alpha * src`` for every parameter of the segment.

        Example:
            >>> seg = Segment.single(np.ones(2), np.ones(2), np.empty(2), {})
            >>> seg.add_to_values("g", 1.0); seg.parts[0].w.tolist()
            [2.0, 2.0]
        """
        for p in self.parts:
            p.add_to_value(src, alpha)


def share_out(segs: Sequence[Segment], k: int) -> list[list[Segment]]:
    """``segs`` dealt into at most ``k`` shares of about equal size for ``k`` threads, in
    order: a segment is cut where a share ends inside it (at a multiple of
    :data:`SHARE_ALIGN` elements; its pieces call BLAS :data:`SHARE_BLAS_ELEMENTS` elements
    at a time), or, where it cannot be cut, goes whole to the share its middle falls in.

    Example:
        >>> seg = Segment.single(np.ones(256), np.ones(256), np.empty(256), {})
        >>> [[s.g.size for s in share] for share in share_out([seg], 2)]
        [[128], [128]]
        >>> small = Segment.single(np.ones(10), np.ones(10), np.empty(10), {})
        >>> [[s.g.size for s in share] for share in share_out([seg, small], 2)]
        [[128], [128, 10]]
    """
    total = sum(seg.g.size for seg in segs)
    a = SHARE_ALIGN
    ends = sorted({(total * i // k + a // 2) // a * a for i in range(1, k)} - {0, total})
    shares: list[list[Segment]] = [[] for _ in range(len(ends) + 1)]
    pos = 0
    for seg in segs:
        size = seg.g.size
        cuts = [e - pos for e in ends if pos < e < pos + size]
        pieces = seg.cut_at(cuts, SHARE_BLAS_ELEMENTS) if cuts else [seg]
        starts = [pos, *(pos + c for c in cuts)] if len(pieces) > 1 else [pos + size // 2]
        for piece, start in zip(pieces, starts, strict=True):
            shares[bisect_right(ends, start)].append(piece)
        pos += size
    return [share for share in shares if share]
