"""Winograd's F(2x2, 3x3) for a 3x3 stride-1 convolution in numpy and BLAS: forward, input
gradient and filter gradient without column matrices, the numpy backend's counterpart of
:mod:`graphcore.kernels.compiled.winograd_conv` (the same class, steps and arguments).

The arithmetic is the compiled module's (see its docs): per 2x2 output tile,
``Y = A^T [U ⊙ V] A`` with ``V = B^T d B`` and ``U = G w G^T``, summed over input channels as
16 BLAS products ``M[e] = U[e] @ V[e]``; the gradients are the same products transposed.

numpy runs an addition over long contiguous runs ~20x faster per element than over the
strided views of the tiles themselves (runs of ``tw`` elements two apart: 50 ns a run), so
the transforms work on the planes' polyphase parts instead: ``P[a][b]`` holds the padded
pixels ``(2Y + a, 2X + b)`` as a (C, N, th + 1, tw + 1) array. Pixel ``(i, j)`` of tile
``(ty, tx)`` is ``P[i % 2][j % 2]`` at ``(ty + i // 2, tx + j // 2)``, so each step of a
4-point transform is a whole-array addition of two polyphase parts, one of them shifted by
a row (a view) or by one element (a view of the flat buffer). The tiles are laid out on the
(th, tw + 1) grid: column ``tw`` holds junk that no output reads, and is zero in the
upstream gradient's tiles so that the products over tiles add nothing from it (the products
do 1/tw more work). Only the four copies in and out of the polyphase layout are strided.
Every step writes into buffers made once, with ``out=``.

The filter transform and its adjoint are one BLAS product each, by ``kron(G, G)`` (16 x 9).

Example:
    >>> x = np.ones((1, 2, 4, 4)); w = np.ones((2, 2, 3, 3))
    >>> wc = WinogradConv3x3(x.shape, w.shape, (1, 1), x.dtype)
    >>> out = np.empty((1, 2, 4, 4)); wc.stage_input(x); wc.forward(w, out.reshape(-1))
    >>> out[0, 0, 0].tolist()
    [8.0, 12.0, 12.0, 8.0]
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from ..blas import gemm_into
from ..winograd import fits, require_fit, sixteen, sixteen_size

__all__ = ["BLOCK_BYTES", "WinogradConv3x3", "fits"]

#: Bytes of the 16 tile matrices of the channels one block of a transform covers: its
#: passes then run from the core's cache (2 MiB of L2 here); measured best near 1 MiB
BLOCK_BYTES = 1 << 20

#: G of F(2x2, 3x3) (halves: exact in binary); U = G w G^T
_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
#: U[4i + j] = sum over (a, b) of G[i, a] G[j, b] w[a, b]: the filter transform as one product
_KRON = np.kron(_G, _G)


def _view(
    a: np.ndarray, offset: int, shape: tuple[int, ...], strides: tuple[int, ...]
) -> np.ndarray:
    """A writeable view of the flat C-contiguous ``a`` from element ``offset`` with element
    strides ``strides``."""
    isz = a.itemsize
    return np.lib.stride_tricks.as_strided(
        a[offset:], shape, tuple(s * isz for s in strides), writeable=True
    )


def _phase(size: int, pad: int, parity: int) -> tuple[int, int, int]:
    """Where the image's rows ``y0, y0 + 2, ...`` (``n`` of them) lie in the polyphase part
    of parity ``parity``: (y0, first row there, n)."""
    first = (pad - parity + 1) // 2
    y0 = 2 * first + parity - pad
    return y0, first, len(range(y0, size, 2))


def _run(calls: list[Callable[[], Any]]) -> None:
    """Make the calls with numpy's ufunc buffers at their smallest: numpy 2 sets up a
    buffer per operand (32 KiB at its default size, and a copy of the operand at a larger
    one) for every call over operands that do not fold into one run, though no dtype is
    cast; 16 elements allocate next to nothing and measured as fast."""
    old = np.setbufsize(_BUFSIZE)
    try:
        for f in calls:
            f()
    finally:
        np.setbufsize(old)


_BUFSIZE = 16


def _same_memory(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether ``a`` and ``b`` view the same elements the same way."""
    return (
        a.shape == b.shape
        and a.strides == b.strides
        and a.dtype == b.dtype
        and a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
    )


def _images_per_block(
    xshape: tuple[int, ...], wshape: tuple[int, ...], pad: tuple[int, int], dtype: Any,
    input_grad: bool,
) -> int:
    """Images whose products (16 matrices, the wider side's channels) take about
    :data:`BLOCK_BYTES`."""
    n, c, h, w = xshape
    per = ((h + 2 * pad[0] - 1) // 2) * ((w + 2 * pad[1] - 1) // 2 + 1)
    rows = max(wshape[0], c if input_grad else 0)
    return max(1, min(n, BLOCK_BYTES // (16 * rows * per * np.dtype(dtype).itemsize)))


class WinogradConv3x3:
    """The buffers of one F(2x2, 3x3) convolution (shapes fixed when it is made) and its
    steps, with the same names, order and arguments as
    :class:`graphcore.kernels.compiled.winograd_conv.WinogradConv3x3`: stage the input (pad it,
    transform its tiles), the forward, stage the upstream gradient (transform its tiles), the
    filter gradient, stage the filter for the input gradient, the input gradient. Each
    staging step copies what the later steps read. Outputs must be C-contiguous;
    ``filter_grad`` / ``input_grad`` False: no buffers for that gradient (it then raises
    ``ValueError``).

    The steps run by blocks whose 16 tile matrices take about :data:`BLOCK_BYTES`, so that
    the passes after a block's first read what the last one wrote from the core's cache
    (whole layers at once: 1.5x slower): the input's transform by blocks of channels; the
    forward's products and output transform, and both gradients' (each transforms the
    upstream gradient's tiles of its block), by blocks of images, the filter gradient's
    products adding into ``dU`` block by block. The numpy calls of every block, with their
    views, are made once per output array; a step replays them.

    Example:
        >>> x = np.ones((1, 2, 3, 3)); w = np.ones((2, 2, 3, 3)); g = np.ones((1, 2, 3, 3))
        >>> wc = WinogradConv3x3(x.shape, w.shape, (1, 1), x.dtype)
        >>> dw, dx = np.empty(w.shape), np.empty(x.shape)
        >>> wc.stage_input(x); wc.stage_grad(g); wc.filter_grad(dw.reshape(-1))
        >>> float(dw[0, 0, 1, 1])
        9.0
        >>> wc.stage_filter(w); wc.input_grad(dx.reshape(-1)); float(dx[0, 0, 1, 1])
        18.0
    """

    def __init__(
        self,
        xshape: tuple[int, ...],
        wshape: tuple[int, ...],
        pad: tuple[int, int],
        dtype: Any,
        filter_grad: bool = True,
        input_grad: bool = True,
        scratch: np.ndarray | None = None,
    ) -> None:
        require_fit(xshape, wshape, pad)
        dtype = np.dtype(dtype)
        n, c, h, w = xshape
        co = wshape[0]
        ph, pw = pad
        self.n, self.c, self.co, self.h, self.w, self.pad = n, c, co, h, w, (ph, pw)
        self.ho, self.wo = h + 2 * ph - 2, w + 2 * pw - 2
        th, tw = self.th, self.tw = (self.ho + 1) // 2, (self.wo + 1) // 2
        tiles = self.tiles = n * th * (tw + 1)  # the (th, tw + 1) grid of each image
        self.has_filter_grad, self.has_input_grad = filter_grad, input_grad
        grads = filter_grad or input_grad
        need = self.scratch_size(xshape, wshape, pad, dtype, input_grad)
        if scratch is not None and (scratch.dtype != dtype or scratch.size < need):
            raise ValueError(
                f"WinogradConv3x3: the scratch must be {dtype} with at least {need} "
                f"elements (scratch_size), got {scratch.dtype} with {scratch.size}"
            )
        # the input's transform runs by blocks of channels
        self.bi = bi = min(c, max(1, BLOCK_BYTES // (16 * tiles * dtype.itemsize)))
        si = bi * tiles  # elements of one tile matrix of a block
        # the products and the transforms after them run by blocks of images
        self.pi = th * (tw + 1)  # tiles of one image
        self.bn = bn = _images_per_block(xshape, wshape, pad, dtype, input_grad)
        lb = bn * self.pi
        # a block of the padded image's polyphase parts (zeros where nothing is copied)
        self.xp = np.zeros((2, 2, bi, n, th + 1, tw + 1), dtype)
        vb, self.v = sixteen(c, tiles, dtype)
        self.u = np.zeros((16, co, c), dtype)
        self.wbuf = np.zeros((co * c, 9), dtype)
        self.kron = _KRON.astype(dtype)
        # one block's upstream-gradient tiles (each gradient transforms its own)
        db, self.dm = sixteen(co if grads else 0, lb, dtype)
        # one block's products (forward: M; input gradient: dV)
        mb, self.m = sixteen(co, lb, dtype, max(co, c if input_grad else 0), scratch)
        self.du = np.zeros((16, co * c if filter_grad else 0), dtype)
        self.dv = sixteen(c, lb, dtype, base=mb)[1] if input_grad else None
        # the upstream gradient's polyphase parts (zero in the junk column and past Ho, Wo:
        # the copies never write there)
        self.gp = np.zeros((2, 2, co, n, th, tw + 1) if grads else (0,), dtype)
        # a block of the input gradient's padded plane, in polyphase parts (every element
        # written by each block: the last, smaller block lays it out afresh)
        self.q = np.zeros(4 * c * bn * (th + 1) * (tw + 1) if input_grad else 0, dtype)
        # each step's intermediate passes (one step at a time)
        self.work = np.zeros(max(12 * co * lb, 16 * c * lb if input_grad else 0, 8 * si + 1),
                             dtype)  # fmt: skip
        self._bufs = [self.xp, vb, self.u, self.wbuf, db, self.du, self.gp, self.q, self.work]
        if scratch is None:
            self._bufs.append(mb)
        self._filter = gemm_into(self.kron, self.wbuf.T, self.u.reshape(16, co * c), 0.0)
        self._dwk: tuple[np.ndarray, Callable[[], None]] | None = None
        self._dw: list[Callable[[], Any]] = []
        if filter_grad:  # the products over tiles, block by block (dU summed in place)
            du = self.du.reshape(16, co, c)
            for n0, n1 in self._blocks("filter_grad"):
                t0, t1 = n0 * self.pi, n1 * self.pi
                dmk = self._products(n0, n1, self.dm, co)
                self._dw += self._grad_tiles(n0, n1)
                self._dw += [gemm_into(dmk[e], self.v[e][:, t0:t1].T, du[e], float(n0 > 0))
                             for e in range(16)]  # fmt: skip
        # the transforms' numpy calls by block, with the operands that stay the same; each
        # made for an input, output or gradient array when first given one
        self._made: dict[str, tuple[np.ndarray, list[Callable[[], Any]]]] = {}

    def _calls(self, name: str, arr: np.ndarray) -> list[Callable[[], Any]]:
        """The calls of transform ``name`` for the array ``arr`` (made once per array)."""
        got = self._made.get(name)
        if got is not None and got[0] is arr:
            return got[1]
        if got is not None and _same_memory(got[0], arr):  # another view of the same array
            self._made[name] = (arr, got[1])
            return got[1]
        make = getattr(self, "_make_" + name)
        calls = [f for c0, c1 in self._blocks(name) for f in make(arr, c0, c1)]
        self._made[name] = (arr, calls)
        return calls

    def _blocks(self, name: str) -> list[tuple[int, int]]:
        total, per = {"input": (self.c, self.bi), "grad": (self.co, self.co)}.get(
            name, (self.n, self.bn))
        return [(c0, min(c0 + per, total)) for c0 in range(0, total, per)]

    def _tiles_of(self, sixteen_: np.ndarray, c0: int, c1: int) -> np.ndarray:
        """(4, 4, k * tiles) view of channels c0:c1 of a (16, ch, tiles) buffer: [i, j] is
        its matrix 4i + j."""
        blk = sixteen_[:, c0:c1]
        e, isz = blk.strides[0], blk.itemsize
        return np.lib.stride_tricks.as_strided(blk, (4, 4, (c1 - c0) * self.tiles),
                                               (4 * e, e, isz), writeable=True)  # fmt: skip

    def _make_input(self, x: np.ndarray, c0: int, c1: int) -> list[Callable[[], Any]]:
        n, th, tw, k = self.n, self.th, self.tw, c1 - c0
        si, lk = self.bi * self.tiles, k * self.tiles
        xp = self.xp[:, :, :k]
        calls: list[Callable[[], Any]] = []
        for a in (0, 1):
            y0, fy, ny = _phase(self.h, self.pad[0], a)
            for b in (0, 1):
                x0, fx, nx = _phase(self.w, self.pad[1], b)
                dst = xp[a, b, :, :, fy : fy + ny, fx : fx + nx].transpose(1, 0, 2, 3)
                calls.append(partial(np.copyto, dst, x[:, c0:c1, y0::2, x0::2]))
        # B^T d by rows: r0 - r2, r1 + r2, r2 - r1, r1 - r3, as r[i][b] (b: column parity)
        planes = xp.reshape(2, 2, k * n, th + 1, tw + 1)
        top, low = planes[:, :, :, :th], planes[:, :, :, 1:]  # low: one row down
        r = _view(self.work, 0, (4, 2, k * n, th, tw + 1), (2 * si, si, th * (tw + 1), tw + 1, 1))
        calls += [
            partial(np.subtract, top, low, out=r[0::3]),
            partial(np.add, top[1], low[0], out=r[1]),
            partial(np.subtract, low[0], top[1], out=r[2]),
        ]
        # ... then along the columns: [j] from r[b] at X and r[b] at X + 1
        rf = _view(self.work, 0, (4, 2, lk), (2 * si, si, 1))
        rs = _view(self.work, 1, (4, 2, lk), (2 * si, si, 1))  # one column on
        v = self._tiles_of(self.v, c0, c1)
        calls += [
            partial(np.subtract, rf, rs, out=v[:, 0::3]),
            partial(np.add, rf[:, 1], rs[:, 0], out=v[:, 1]),
            partial(np.subtract, rs[:, 0], rf[:, 1], out=v[:, 2]),
        ]
        return calls

    def _products(self, n0: int, n1: int, into: np.ndarray, rows: int) -> list[np.ndarray]:
        """The 16 (rows, tiles of images n0:n1) C-contiguous matrices of ``into``'s block."""
        lk = (n1 - n0) * self.pi
        isz = into.itemsize
        return [np.lib.stride_tricks.as_strided(into[i], (rows, lk), (lk * isz, isz),
                                                writeable=True) for i in range(16)]  # fmt: skip

    def _make_output(self, out: np.ndarray, n0: int, n1: int) -> list[Callable[[], Any]]:
        co, lk = self.co, (n1 - n0) * self.pi
        mk = self._products(n0, n1, self.m, co)
        t0, t1 = n0 * self.pi, n1 * self.pi
        calls: list[Callable[[], Any]] = [
            gemm_into(self.u[i], self.v[i][:, t0:t1], mk[i], 0.0) for i in range(16)
        ]
        e = self.m.strides[0] // self.m.itemsize
        m = _view(mk[0].reshape(-1), 0, (4, 4, co * lk), (4 * e, e, 1))
        # A^T m by rows: m0 + m1 + m2, m1 - m2 - m3
        s = _view(self.work, 0, (2, 4, co * lk), (4 * co * lk, co * lk, 1))
        so = co * lk
        o = _view(self.work, 8 * so, (2, 2, so), (2 * so, so, 1))
        calls += [
            partial(np.add, m[1], m[2], out=s[0]),
            partial(np.subtract, m[1], m[2], out=s[1]),
            partial(np.add, s[0], m[0], out=s[0]),
            partial(np.subtract, s[1], m[3], out=s[1]),
            # ... then along the columns
            partial(np.add, s[:, 1], s[:, 2], out=o[:, 0]),
            partial(np.subtract, s[:, 1], s[:, 2], out=o[:, 1]),
            partial(np.add, o[:, 0], s[:, 0], out=o[:, 0]),
            partial(np.subtract, o[:, 1], s[:, 3], out=o[:, 1]),
        ]
        th, tw1 = self.th, self.tw + 1
        o6 = _view(self.work, 8 * so, (2, 2, co, n1 - n0, th, tw1),
                   (2 * so, so, lk, th * tw1, tw1, 1))  # fmt: skip
        y = out.reshape(self.n, self.co, self.ho, self.wo)[n0:n1]
        for a in (0, 1):
            for b in (0, 1):
                part = y[:, :, a::2, b::2]
                src = o6[a, b, :, :, : part.shape[2], : part.shape[3]]
                calls.append(partial(np.copyto, part, src.transpose(1, 0, 2, 3)))
        return calls

    def _make_grad(self, g: np.ndarray, c0: int, c1: int) -> list[Callable[[], Any]]:
        calls: list[Callable[[], Any]] = []
        for a in (0, 1):
            for b in (0, 1):
                part = g[:, c0:c1, a::2, b::2]  # the rest of gp stays zero
                calls.append(partial(np.copyto, self.gp[a, b, c0:c1, :, : part.shape[2],
                                                        : part.shape[3]].transpose(1, 0, 2, 3),
                                     part))  # fmt: skip
        return calls

    def _grad_tiles(self, n0: int, n1: int) -> list[Callable[[], Any]]:
        """The calls transforming the upstream gradient's tiles of images n0:n1 into the
        block's ``dm``."""
        co, lk, tiles = self.co, (n1 - n0) * self.pi, self.tiles
        isz, gs = self.gp.itemsize, self.gp.strides
        p = np.lib.stride_tricks.as_strided(self.gp[:, :, :, n0:n1], (2, 2, co, lk),
                                            (gs[0], gs[1], tiles * isz, isz), writeable=True)
        # A dy by rows: p0, p0 + p1, p0 - p1, -p1
        e = self.work[: 8 * co * lk].reshape(4, 2, co, lk)
        es = self.dm.strides[0] // isz
        dm = _view(self._products(n0, n1, self.dm, co)[0].reshape(-1), 0, (4, 4, co, lk),
                   (4 * es, es, lk, 1))  # ... then along the columns  # fmt: skip
        return [
            partial(np.copyto, e[0], p[0]),
            partial(np.add, p[0], p[1], out=e[1]),
            partial(np.subtract, p[0], p[1], out=e[2]),
            partial(np.negative, p[1], out=e[3]),
            partial(np.copyto, dm[:, 0], e[:, 0]),
            partial(np.add, e[:, 0], e[:, 1], out=dm[:, 1]),
            partial(np.subtract, e[:, 0], e[:, 1], out=dm[:, 2]),
            partial(np.negative, e[:, 1], out=dm[:, 3]),
        ]

    def _make_input_grad(self, out: np.ndarray, n0: int, n1: int) -> list[Callable[[], Any]]:
        assert self.dv is not None
        n, th, tw, k = n1 - n0, self.th, self.tw, self.c
        vk = self._products(n0, n1, self.dv, k)
        lk = si = k * (n1 - n0) * self.pi
        ev = self.dv.strides[0] // self.dv.itemsize
        v = _view(vk[0].reshape(-1), 0, (4, 4, lk), (4 * ev, ev, 1))
        dmk = self._products(n0, n1, self.dm, self.co)
        prods = self._grad_tiles(n0, n1) + [
            gemm_into(self.u[i].T, dmk[i], vk[i], 0.0) for i in range(16)
        ]
        # B dv B^T, columns first: z1 = v1 - v2 + v3, z2 = v1 + v2 - v0 (z0 = v0, z3 = -v3)
        # for each row i; then the two column parities of the plane: cb[0] = z0 + z2 one
        # column back, cb[1] = z1 + z3 one column back (the junk column of dv is zero)
        z = _view(self.work, 0, (2, 4, lk), (4 * si, si, 1))
        cb = _view(self.work, 8 * si, (4, 2, lk), (2 * si, si, 1))
        # rows: w1 = c1 - c2 + c3, w2 = c1 + c2 - c0; the plane's row parities: q[0] = c0 +
        # w2 one row back, q[1] = w1 - c3 one row back
        wr = _view(self.work, 0, (2, lk), (si, 1))
        kn, t1 = k * n, th * (tw + 1)
        w4 = _view(self.work, 0, (2, kn, th, tw + 1), (si, t1, tw + 1, 1))
        qk = self.q[: 4 * kn * (th + 1) * (tw + 1)].reshape(2, 2, k, n, th + 1, tw + 1)
        q = qk.reshape(2, 2, kn, th + 1, tw + 1)
        calls: list[Callable[[], Any]] = prods + [
            partial(np.subtract, v[:, 1], v[:, 2], out=z[0]),
            partial(np.add, z[0], v[:, 3], out=z[0]),
            partial(np.add, v[:, 1], v[:, 2], out=z[1]),
            partial(np.subtract, z[1], v[:, 0], out=z[1]),
            partial(np.add, v[:, 0, 1:], z[1, :, :-1], out=cb[:, 0, 1:]),
            partial(np.copyto, cb[:, 0, 0], v[:, 0, 0]),
            partial(np.subtract, z[0, :, 1:], v[:, 3, :-1], out=cb[:, 1, 1:]),
            partial(np.copyto, cb[:, 1, 0], z[0, :, 0]),
        ]
        for b in (0, 1):  # the rows, one column parity at a time (w reuses z's room)
            cs = _view(self.work, 8 * si + b * si, (4, lk), (2 * si, 1))
            c4b = _view(self.work, 8 * si + b * si, (4, kn, th, tw + 1), (2 * si, t1, tw + 1, 1))
            calls += [
                partial(np.subtract, cs[1], cs[2], out=wr[0]),
                partial(np.add, wr[0], cs[3], out=wr[0]),
                partial(np.add, cs[1], cs[2], out=wr[1]),
                partial(np.subtract, wr[1], cs[0], out=wr[1]),
                partial(np.copyto, q[0, b, :, :th], c4b[0]),
                partial(np.copyto, q[0, b, :, th], w4[1, :, th - 1]),
                partial(np.add, q[0, b, :, 1:th], w4[1, :, : th - 1], out=q[0, b, :, 1:th]),
                partial(np.copyto, q[1, b, :, :th], w4[0]),
                partial(np.negative, c4b[3, :, th - 1], out=q[1, b, :, th]),
                partial(np.subtract, q[1, b, :, 1:th], c4b[3, :, : th - 1], out=q[1, b, :, 1:th]),
            ]
        dx = out.reshape(self.n, self.c, self.h, self.w)[n0:n1]
        for a in (0, 1):
            y0, fy, ny = _phase(self.h, self.pad[0], a)
            for b in (0, 1):
                x0, fx, nx = _phase(self.w, self.pad[1], b)
                calls.append(partial(np.copyto, dx[:, :, y0::2, x0::2],
                                     qk[a, b, :, :, fy : fy + ny, fx : fx + nx]
                                     .transpose(1, 0, 2, 3)))  # fmt: skip
        return calls

    @staticmethod
    def scratch_size(
        xshape: tuple[int, ...],
        wshape: tuple[int, ...],
        pad: tuple[int, int],
        dtype: Any,
        input_grad: bool = True,
    ) -> int:
        """Elements of the products' buffer, which the forward and the input gradient use
        within their own step only: convolutions run one after another may share one.

        Example:
            >>> WinogradConv3x3.scratch_size((1, 2, 4, 4), (3, 2, 3, 3), (1, 1), np.float64)
            8320
        """
        c, co = xshape[1], wshape[0]
        bn = _images_per_block(xshape, wshape, pad, dtype, input_grad)
        per = ((xshape[2] + 2 * pad[0] - 1) // 2) * ((xshape[3] + 2 * pad[1] - 1) // 2 + 1)
        return sixteen_size(max(co, c if input_grad else 0) * bn * per, dtype)

    @property
    def nbytes(self) -> int:
        """Bytes of the buffers it holds."""
        return sum(a.nbytes for a in self._bufs)

    def stage_input(self, x: np.ndarray) -> None:
        """Pad the image and transform its tiles (read by the forward and the filter
        gradient)."""
        _run(self._calls("input", x))

    def forward(self, w: np.ndarray, out: np.ndarray) -> None:
        """``out``, the flat view of a C-contiguous (N, Cout, Ho, Wo) array, from the staged
        image and filters ``w``."""
        self._stage_u(w)
        _run(self._calls("output", out))

    def _stage_u(self, w: np.ndarray) -> None:
        np.copyto(self.wbuf, w.reshape(self.wbuf.shape))
        self._filter()

    def stage_grad(self, g: np.ndarray, for_filter: bool = True, for_input: bool = True) -> None:
        """Transform the upstream gradient's tiles (read by both gradients)."""
        if for_filter or for_input:
            _run(self._calls("grad", g))

    def filter_grad(self, out: np.ndarray) -> None:
        """``out``, the flat view of a C-contiguous (Cout, Cin, 3, 3) array, from the staged
        image and upstream gradient."""
        if not self.has_filter_grad:
            raise ValueError("WinogradConv3x3: made with filter_grad=False")
        _run(self._dw)
        if self._dwk is None or self._dwk[0] is not out:  # the product into this output
            self._dwk = (out, gemm_into(self.du.T, self.kron, out.reshape(-1, 9), 0.0))
        self._dwk[1]()

    def stage_filter(self, w: np.ndarray) -> None:
        """Transform the filter for the input gradient."""
        if self.has_input_grad:
            self._stage_u(w)

    def input_grad(self, out: np.ndarray) -> None:
        """``out``, the flat view of a C-contiguous (N, Cin, H, W) array, from the staged
        upstream gradient and filter."""
        if not self.has_input_grad:
            raise ValueError("WinogradConv3x3: made with input_grad=False")
        _run(self._calls("input_grad", out))
