"""A 3x3 stride-1 convolution by Winograd's F(2x2, 3x3) in numba and BLAS: forward, input
gradient and filter gradient without column matrices, for the wider layers where the direct
loops (:mod:`~graphcore.kernels.compiled.direct_conv`) fall behind the column products.

Each output tile of 2x2 pixels is ``A^T [U ⊙ V] A`` with ``V = B^T d B`` (``d``: the 4x4
input tile under it) and ``U = G w G^T`` (the filter), so one tile costs 16 multiplications
per (input, output) channel pair instead of 36. Summed over input channels, the 16 products
are 16 matrix products ``M[e] = U[e] @ V[e]`` ((Cout, Cin) by (Cin, tiles)), which BLAS
runs near its peak; the transforms are additions in compiled loops. By linearity the
gradients are the same products transposed:

- forward: ``V`` from the padded input (staged once, read again by the filter gradient),
  ``U`` from the filter, the 16 products, then ``Y = A^T M A`` per tile;
- upstream gradient: ``dM = A dY A^T`` per tile (staged once for both gradients);
- filter gradient: ``dU[e] = dM[e] @ V[e]^T`` (products over the tiles), ``dw = G^T dU G``;
- input gradient: ``dV[e] = U[e]^T @ dM[e]``, then ``B dV B^T`` added into the padded
  plane under each (overlapping) tile.

Odd output sizes round up to whole tiles: the extra row or column reads zero padding and is
not written out. ``G`` holds halves, exact in binary; the float32 results differ from the
columns' by a few units in the last place more than a direct sum's.

Example:
    >>> x = np.ones((1, 2, 4, 4)); w = np.ones((2, 2, 3, 3))
    >>> wc = WinogradConv3x3(x.shape, w.shape, (1, 1), x.dtype)
    >>> out = np.empty((1, 2, 4, 4)); wc.stage_input(x); wc.forward(w, out.reshape(-1))
    >>> out[0, 0, 0].tolist()
    [8.0, 12.0, 12.0, 8.0]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..blas import gemm_into
from ..jit import jit
from ..winograd import fits, require_fit
from ..winograd import sixteen as _sixteen
from ..winograd import sixteen_size as _sixteen_size

__all__ = ["WinogradConv3x3", "fits"]


@jit
def input_tiles(xp, v, th, tw):  # pragma: no cover (compiled)
    """v[e, ch, t] = (B^T d B)[e] for the 4x4 tile d of the padded xp (N, C, Hq, Wq) under
    output tile t = (b, ty, tx); v is (16, C, N*th*tw)."""
    n, c = xp.shape[0], xp.shape[1]
    for ch in range(c):  # each of the 16 rows of v written in one run over the tiles
        for b in range(n):
            for ty in range(th):
                y = 2 * ty
                t0 = (b * th + ty) * tw
                for tx in range(tw):
                    x = 2 * tx
                    t = t0 + tx
                    # B^T d per column j (rows d0 - d2, d1 + d2, d2 - d1, d1 - d3) ...
                    a0 = xp[b, ch, y, x] - xp[b, ch, y + 2, x]
                    a1 = xp[b, ch, y, x + 1] - xp[b, ch, y + 2, x + 1]
                    a2 = xp[b, ch, y, x + 2] - xp[b, ch, y + 2, x + 2]
                    a3 = xp[b, ch, y, x + 3] - xp[b, ch, y + 2, x + 3]
                    b0 = xp[b, ch, y + 1, x] + xp[b, ch, y + 2, x]
                    b1 = xp[b, ch, y + 1, x + 1] + xp[b, ch, y + 2, x + 1]
                    b2 = xp[b, ch, y + 1, x + 2] + xp[b, ch, y + 2, x + 2]
                    b3 = xp[b, ch, y + 1, x + 3] + xp[b, ch, y + 2, x + 3]
                    c0 = xp[b, ch, y + 2, x] - xp[b, ch, y + 1, x]
                    c1 = xp[b, ch, y + 2, x + 1] - xp[b, ch, y + 1, x + 1]
                    c2 = xp[b, ch, y + 2, x + 2] - xp[b, ch, y + 1, x + 2]
                    c3 = xp[b, ch, y + 2, x + 3] - xp[b, ch, y + 1, x + 3]
                    d0 = xp[b, ch, y + 1, x] - xp[b, ch, y + 3, x]
                    d1 = xp[b, ch, y + 1, x + 1] - xp[b, ch, y + 3, x + 1]
                    d2 = xp[b, ch, y + 1, x + 2] - xp[b, ch, y + 3, x + 2]
                    d3 = xp[b, ch, y + 1, x + 3] - xp[b, ch, y + 3, x + 3]
                    # ... then the same along each row
                    v[0, ch, t] = a0 - a2
                    v[1, ch, t] = a1 + a2
                    v[2, ch, t] = a2 - a1
                    v[3, ch, t] = a1 - a3
                    v[4, ch, t] = b0 - b2
                    v[5, ch, t] = b1 + b2
                    v[6, ch, t] = b2 - b1
                    v[7, ch, t] = b1 - b3
                    v[8, ch, t] = c0 - c2
                    v[9, ch, t] = c1 + c2
                    v[10, ch, t] = c2 - c1
                    v[11, ch, t] = c1 - c3
                    v[12, ch, t] = d0 - d2
                    v[13, ch, t] = d1 + d2
                    v[14, ch, t] = d2 - d1
                    v[15, ch, t] = d1 - d3


@jit
def filter_tiles(w, u):  # pragma: no cover (compiled)
    """u[e, k, ch] = (G w[k, ch] G^T)[e] for filters w (Cout, Cin, 3, 3); u may be any
    (16, Cout, Cin) view."""
    co, c = w.shape[0], w.shape[1]
    h = w.dtype.type(0.5)
    for k in range(co):
        for ch in range(c):
            # G w: rows w0, (w0 + w1 + w2) / 2, (w0 - w1 + w2) / 2, w2, per column j
            for i in range(4):
                for j in range(3):
                    if i == 0:
                        g = w[k, ch, 0, j]
                    elif i == 1:
                        g = h * (w[k, ch, 0, j] + w[k, ch, 1, j] + w[k, ch, 2, j])
                    elif i == 2:
                        g = h * (w[k, ch, 0, j] - w[k, ch, 1, j] + w[k, ch, 2, j])
                    else:
                        g = w[k, ch, 2, j]
                    # kept in u's first three columns of row i, finished below
                    u[4 * i + j, k, ch] = g
                g0 = u[4 * i, k, ch]
                g1 = u[4 * i + 1, k, ch]
                g2 = u[4 * i + 2, k, ch]
                u[4 * i + 1, k, ch] = h * (g0 + g1 + g2)
                u[4 * i + 2, k, ch] = h * (g0 - g1 + g2)
                u[4 * i + 3, k, ch] = g2


@jit
def output_tiles(m, out, th, tw):  # pragma: no cover (compiled)
    """out[b, k] (N, Cout, Ho, Wo) from m (16, Cout, N*th*tw): A^T m A per 2x2 tile, the
    pixels past Ho or Wo dropped."""
    n, co, ho, wo = out.shape
    for k in range(co):  # each of the 16 rows of m read in one run over the tiles
        for b in range(n):
            for ty in range(th):
                y = 2 * ty
                t0 = (b * th + ty) * tw
                for tx in range(tw):
                    x = 2 * tx
                    t = t0 + tx
                    # A^T m: rows m0 + m1 + m2 and m1 - m2 - m3, per column j
                    s0 = m[0, k, t] + m[4, k, t] + m[8, k, t]
                    s1 = m[1, k, t] + m[5, k, t] + m[9, k, t]
                    s2 = m[2, k, t] + m[6, k, t] + m[10, k, t]
                    s3 = m[3, k, t] + m[7, k, t] + m[11, k, t]
                    r0 = m[4, k, t] - m[8, k, t] - m[12, k, t]
                    r1 = m[5, k, t] - m[9, k, t] - m[13, k, t]
                    r2 = m[6, k, t] - m[10, k, t] - m[14, k, t]
                    r3 = m[7, k, t] - m[11, k, t] - m[15, k, t]
                    out[b, k, y, x] = s0 + s1 + s2
                    if x + 1 < wo:
                        out[b, k, y, x + 1] = s1 - s2 - s3
                    if y + 1 < ho:
                        out[b, k, y + 1, x] = r0 + r1 + r2
                        if x + 1 < wo:
                            out[b, k, y + 1, x + 1] = r1 - r2 - r3


@jit
def grad_tiles(g, dm, th, tw):  # pragma: no cover (compiled)
    """dm[e, k, t] = (A dy A^T)[e] for the 2x2 tile dy of g (N, Cout, Ho, Wo) at tile t
    (zero past Ho or Wo): the adjoint of :func:`output_tiles`."""
    n, co, ho, wo = g.shape
    zero = dm.dtype.type(0)
    for k in range(co):  # each of the 16 rows of dm written in one run over the tiles
        for b in range(n):
            for ty in range(th):
                y = 2 * ty
                t0 = (b * th + ty) * tw
                for tx in range(tw):
                    x = 2 * tx
                    t = t0 + tx
                    p0 = g[b, k, y, x]
                    p1 = g[b, k, y, x + 1] if x + 1 < wo else zero
                    q0 = g[b, k, y + 1, x] if y + 1 < ho else zero
                    q1 = g[b, k, y + 1, x + 1] if y + 1 < ho and x + 1 < wo else zero
                    # A dy: rows p, p + q, p - q, -q; then the same along each row
                    for i in range(4):
                        if i == 0:
                            e0, e1 = p0, p1
                        elif i == 1:
                            e0, e1 = p0 + q0, p1 + q1
                        elif i == 2:
                            e0, e1 = p0 - q0, p1 - q1
                        else:
                            e0, e1 = -q0, -q1
                        dm[4 * i, k, t] = e0
                        dm[4 * i + 1, k, t] = e0 + e1
                        dm[4 * i + 2, k, t] = e0 - e1
                        dm[4 * i + 3, k, t] = -e1


@jit
def filter_from_tiles(du, dw):  # pragma: no cover (compiled)
    """dw[k, ch] (Cout, Cin, 3, 3) = G^T du[:, k, ch] G: the adjoint of :func:`filter_tiles`."""
    co, c = dw.shape[0], dw.shape[1]
    h = dw.dtype.type(0.5)
    for k in range(co):
        for ch in range(c):
            for a in range(3):
                # row a of G^T du: du0 + (du1 + du2) / 2, (du1 - du2) / 2, (du1 + du2) / 2 + du3
                if a == 0:
                    f0 = du[0, k, ch] + h * (du[4, k, ch] + du[8, k, ch])
                    f1 = du[1, k, ch] + h * (du[5, k, ch] + du[9, k, ch])
                    f2 = du[2, k, ch] + h * (du[6, k, ch] + du[10, k, ch])
                    f3 = du[3, k, ch] + h * (du[7, k, ch] + du[11, k, ch])
                elif a == 1:
                    f0 = h * (du[4, k, ch] - du[8, k, ch])
                    f1 = h * (du[5, k, ch] - du[9, k, ch])
                    f2 = h * (du[6, k, ch] - du[10, k, ch])
                    f3 = h * (du[7, k, ch] - du[11, k, ch])
                else:
                    f0 = h * (du[4, k, ch] + du[8, k, ch]) + du[12, k, ch]
                    f1 = h * (du[5, k, ch] + du[9, k, ch]) + du[13, k, ch]
                    f2 = h * (du[6, k, ch] + du[10, k, ch]) + du[14, k, ch]
                    f3 = h * (du[7, k, ch] + du[11, k, ch]) + du[15, k, ch]
                dw[k, ch, a, 0] = f0 + h * (f1 + f2)
                dw[k, ch, a, 1] = h * (f1 - f2)
                dw[k, ch, a, 2] = h * (f1 + f2) + f3


@jit
def input_from_tiles(dv, dx, plane, ph, pw, th, tw):  # pragma: no cover (compiled)
    """dx[b, ch] (N, Cin, H, W) from dv (16, Cin, N*th*tw): B dv B^T per tile added into
    the padded plane under it (``plane``, a (Hq, Wq) scratch), whose inner part is dx's."""
    n, c, hh, ww = dx.shape
    hq, wq = plane.shape
    zero = plane.dtype.type(0)
    for ch in range(c):  # each of the 16 rows of dv read in one run over the tiles
        for b in range(n):
            for y in range(hq):
                for x in range(wq):
                    plane[y, x] = zero
            for ty in range(th):
                y = 2 * ty
                t0 = (b * th + ty) * tw
                for tx in range(tw):
                    x = 2 * tx
                    t = t0 + tx
                    # B dv: rows v0, v1 - v2 + v3, v1 + v2 - v0, -v3, per column j
                    for i in range(4):
                        if i == 0:
                            e0 = dv[0, ch, t]
                            e1 = dv[1, ch, t]
                            e2 = dv[2, ch, t]
                            e3 = dv[3, ch, t]
                        elif i == 1:
                            e0 = dv[4, ch, t] - dv[8, ch, t] + dv[12, ch, t]
                            e1 = dv[5, ch, t] - dv[9, ch, t] + dv[13, ch, t]
                            e2 = dv[6, ch, t] - dv[10, ch, t] + dv[14, ch, t]
                            e3 = dv[7, ch, t] - dv[11, ch, t] + dv[15, ch, t]
                        elif i == 2:
                            e0 = dv[4, ch, t] + dv[8, ch, t] - dv[0, ch, t]
                            e1 = dv[5, ch, t] + dv[9, ch, t] - dv[1, ch, t]
                            e2 = dv[6, ch, t] + dv[10, ch, t] - dv[2, ch, t]
                            e3 = dv[7, ch, t] + dv[11, ch, t] - dv[3, ch, t]
                        else:
                            e0 = -dv[12, ch, t]
                            e1 = -dv[13, ch, t]
                            e2 = -dv[14, ch, t]
                            e3 = -dv[15, ch, t]
                        plane[y + i, x] += e0
                        plane[y + i, x + 1] += e1 - e2 + e3
                        plane[y + i, x + 2] += e1 + e2 - e0
                        plane[y + i, x + 3] -= e3
            for y in range(hh):
                for x in range(ww):
                    dx[b, ch, y, x] = plane[y + ph, x + pw]


class WinogradConv3x3:
    """The buffers of one F(2x2, 3x3) convolution (shapes fixed when it is made) and its
    steps, with the same names and order as
    :class:`~graphcore.kernels.compiled.direct_conv.DirectConv3x3`: stage the input (pad it,
    transform its tiles), run the forward, stage the upstream gradient (transform its
    tiles), the filter gradient, stage the filter for the input gradient (transform it), the
    input gradient. Each staging step copies what the later steps read, so those may run
    once the operands' own arrays are gone. Outputs must be C-contiguous; ``filter_grad`` /
    ``input_grad`` False: no buffers for that gradient (it then raises ``ValueError``).

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
        n, c, h, w = xshape
        co = wshape[0]
        ph, pw = pad
        self.n, self.c, self.co, self.h, self.w, self.pad = n, c, co, h, w, (ph, pw)
        self.ho, self.wo = h + 2 * ph - 2, w + 2 * pw - 2
        self.th, self.tw = (self.ho + 1) // 2, (self.wo + 1) // 2
        tiles = n * self.th * self.tw
        hq, wq = 2 * self.th + 2, 2 * self.tw + 2  # whole tiles: zeros past the padding
        self.xp = np.zeros((n, c, hq, wq), dtype)
        self.xp_inner = self.xp[:, :, ph : ph + h, pw : pw + w]
        self.has_filter_grad, self.has_input_grad = filter_grad, input_grad
        grads = filter_grad or input_grad
        vb, self.v = _sixteen(c, tiles, dtype)
        ub, self.u = _sixteen(co, c, dtype)
        db, self.dm = _sixteen(co if grads else 0, tiles, dtype)
        # the forward's products and the input gradient's share one buffer (each step
        # transforms its own before the next step runs)
        need = self.scratch_size(xshape, wshape, pad, dtype, input_grad)
        if scratch is not None and (scratch.dtype != dtype or scratch.size < need):
            raise ValueError(
                f"WinogradConv3x3: the scratch must be {np.dtype(dtype)} with at least {need} "
                f"elements (scratch_size), got {scratch.dtype} with {scratch.size}"
            )
        mb, mf = _sixteen(co, tiles, dtype, max(co, c if input_grad else 0), scratch)
        dub, self.du = _sixteen(co if filter_grad else 0, c, dtype)
        utb, self.ut = _sixteen(c if input_grad else 0, co, dtype)
        self.dv = _sixteen(c, tiles, dtype, base=mb)[1] if input_grad else None
        # a scratch lent by the caller is not counted as this convolution's
        self._bufs = [self.xp, vb, ub, db, dub, utb] + ([mb] if scratch is None else [])
        self.plane = np.empty((hq, wq), dtype)
        self._fwd = [gemm_into(self.u[e], self.v[e], mf[e], 0.0) for e in range(16)]
        self._dw: list[Callable[[], None]] = []
        self._dx: list[Callable[[], None]] = []
        if filter_grad:
            self._dw = [gemm_into(self.dm[e], self.v[e].T, self.du[e], 0.0) for e in range(16)]
        if input_grad:
            assert self.dv is not None
            self._dx = [gemm_into(self.ut[e], self.dm[e], self.dv[e], 0.0) for e in range(16)]
        self._mf = mf

    @staticmethod
    def scratch_size(
        xshape: tuple[int, ...],
        wshape: tuple[int, ...],
        pad: tuple[int, int],
        dtype: Any,
        input_grad: bool = True,
    ) -> int:
        """Elements of the products' buffer, which the forward and the input gradient use
        within their own step only: convolutions run one after another (one plan) may share
        one, the largest they need, passed as ``scratch``.

        Example:
            >>> WinogradConv3x3.scratch_size((1, 2, 4, 4), (3, 2, 3, 3), (1, 1), np.float64)
            8320
        """
        n, c, h, w = xshape
        co = wshape[0]
        tiles = n * ((h + 2 * pad[0] - 1) // 2) * ((w + 2 * pad[1] - 1) // 2)
        return _sixteen_size(max(co, c if input_grad else 0) * tiles, dtype)

    @property
    def nbytes(self) -> int:
        """Bytes of the buffers it holds (the padded input, the tiles, the filters')."""
        return sum(a.nbytes for a in self._bufs) + self.plane.nbytes

    def stage_input(self, x: np.ndarray) -> None:
        """Pad the image and transform its tiles (read by the forward and the filter
        gradient)."""
        np.copyto(self.xp_inner, x)
        input_tiles(self.xp, self.v, self.th, self.tw)

    def forward(self, w: np.ndarray, out: np.ndarray) -> None:
        """``out``, the flat view of a C-contiguous (N, Cout, Ho, Wo) array, from the staged
        image and filters ``w``."""
        filter_tiles(w, self.u)
        for f in self._fwd:
            f()
        output_tiles(self._mf, out.reshape(self.n, self.co, self.ho, self.wo), self.th, self.tw)

    def stage_grad(self, g: np.ndarray, for_filter: bool = True, for_input: bool = True) -> None:
        """Transform the upstream gradient's tiles (read by both gradients)."""
        if for_filter or for_input:
            grad_tiles(g, self.dm, self.th, self.tw)

    def filter_grad(self, out: np.ndarray) -> None:
        """``out``, the flat view of a C-contiguous (Cout, Cin, 3, 3) array, from the staged
        image and upstream gradient."""
        if not self.has_filter_grad:
            raise ValueError("WinogradConv3x3: made with filter_grad=False")
        for f in self._dw:
            f()
        filter_from_tiles(self.du, out.reshape(self.co, self.c, 3, 3))

    def stage_filter(self, w: np.ndarray) -> None:
        """Transform the filter for the input gradient."""
        if self.has_input_grad:
            filter_tiles(w, self.ut.transpose(0, 2, 1))

    def input_grad(self, out: np.ndarray) -> None:
        """``out``, the flat view of a C-contiguous (N, Cin, H, W) array, from the staged
        upstream gradient and filter."""
        if not self.has_input_grad:
            raise ValueError("WinogradConv3x3: made with input_grad=False")
        for f in self._dx:
            f()
        ph, pw = self.pad
        input_from_tiles(self.dv, out.reshape(self.n, self.c, self.h, self.w), self.plane,
                         ph, pw, self.th, self.tw)  # fmt: skip
