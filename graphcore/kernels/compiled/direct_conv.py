"""A direct 3x3 stride-1 convolution in numba: forward, input gradient and filter gradient
without column matrices (plans use it for thin layers: :mod:`graphcore.machines.conv_fusion`).

Layout. With stride 1, output pixel ``(y, x)`` of a 3x3 convolution over a zero-padded plane
of width ``wp`` reads the padded pixels ``q + i*wp + j`` where ``q = y*wp + x``. So one image
plane is one flat loop over ``q`` (``wp - wo`` wasted columns a row), which LLVM vectorises
over ``q`` with no row tails. Each loop step loads the nine shifted inputs once and feeds
them to a block of two output channels whose 18 weights stay in registers, accumulating into
a per-block scratch that stays in L1. The loops run to a multiple of 8 steps (no scalar
remainder), so the padded planes have 8 elements of slack after them.

- forward (:func:`planes`): the padded input and the weights as (Cin, Cout, 9) -> NCHW;
- input gradient: the same loop over the upstream gradient padded by ``2 - pad``, with the
  filter flipped and its channel axes swapped (a "full" convolution);
- filter gradient (:func:`filter_sums`): per input channel and pair of output channels, 18
  dot products over ``q``, reading the forward's padded input and the upstream gradient on
  the padded-width grid (zeros in the wasted columns).

Written out tap by tap so that the accumulators and weights are scalars LLVM keeps in
registers (a loop over a small array keeps them in memory). Blocks of two channels measured
best for both loops (forward: 4 +3%, 8 +12%; filter gradient: 1 +55%, 4 +27%).

Example:
    >>> x = np.ones((1, 2, 4, 4)); w = np.ones((2, 2, 3, 3))
    >>> dc = DirectConv3x3(x.shape, w.shape, (1, 1), x.dtype)
    >>> out = np.empty((1, 2, 4, 4)); dc.stage_input(x); dc.forward(w, out.reshape(-1))
    >>> out[0, 0, 0].tolist()
    [8.0, 12.0, 12.0, 8.0]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..jit import contracted, vectorised

__all__ = ["DirectConv3x3", "planes", "filter_sums", "fits"]

#: output channels per block in both loops (see the module docs)
BLOCK = 2


@contracted
def planes(xp, wt, out, blk, n, c, hp, wp, co, ho, wo):  # pragma: no cover (compiled)
    """out[b, k] = sum_ch sum_t wt[ch, k, t] * xp[b, ch, q + off_t], ``co`` even."""
    u = np.uint64
    plane = u(hp * wp)
    ln = u(((ho - 1) * wp + wo + 7) // 8 * 8)
    bl = u((ho * wp + 7) // 8 * 8)
    r1 = u(wp)
    r2 = u(2 * wp)
    zero = out.dtype.type(0)
    for b in range(n):
        for cb in range(0, co, 2):
            for q in range(u(2) * bl):
                blk[q] = zero
            for ch in range(c):
                xb = u(b * c + ch) * plane
                wb = u((ch * co + cb) * 9)
                a0 = wt[wb]
                a1 = wt[wb + u(1)]
                a2 = wt[wb + u(2)]
                a3 = wt[wb + u(3)]
                a4 = wt[wb + u(4)]
                a5 = wt[wb + u(5)]
                a6 = wt[wb + u(6)]
                a7 = wt[wb + u(7)]
                a8 = wt[wb + u(8)]
                b0 = wt[wb + u(9)]
                b1 = wt[wb + u(10)]
                b2 = wt[wb + u(11)]
                b3 = wt[wb + u(12)]
                b4 = wt[wb + u(13)]
                b5 = wt[wb + u(14)]
                b6 = wt[wb + u(15)]
                b7 = wt[wb + u(16)]
                b8 = wt[wb + u(17)]
                for q in range(ln):
                    x0 = xp[xb + q]
                    x1 = xp[xb + q + u(1)]
                    x2 = xp[xb + q + u(2)]
                    x3 = xp[xb + q + r1]
                    x4 = xp[xb + q + r1 + u(1)]
                    x5 = xp[xb + q + r1 + u(2)]
                    x6 = xp[xb + q + r2]
                    x7 = xp[xb + q + r2 + u(1)]
                    x8 = xp[xb + q + r2 + u(2)]
                    blk[q] += (
                        a0 * x0 + a1 * x1 + a2 * x2 + a3 * x3 + a4 * x4
                        + a5 * x5 + a6 * x6 + a7 * x7 + a8 * x8
                    )  # fmt: skip
                    blk[bl + q] += (
                        b0 * x0 + b1 * x1 + b2 * x2 + b3 * x3 + b4 * x4
                        + b5 * x5 + b6 * x6 + b7 * x7 + b8 * x8
                    )  # fmt: skip
            for k in range(2):
                ob = u(((b * co + cb + k) * ho) * wo)
                for y in range(ho):
                    src = u(k) * bl + u(y * wp)
                    dst = ob + u(y * wo)
                    for x in range(u(wo)):
                        out[dst + x] = blk[src + x]


@vectorised
def filter_sums(xp, gs, dw, n, c, hp, wp, co, ho, wo):  # pragma: no cover (compiled)
    """dw[k, ch, t] = sum_b sum_q gs[b, k, q] * xp[b, ch, q + off_t]; ``gs`` is the upstream
    gradient on the (ho, wp) grid, zero in the wasted columns; ``co`` even."""
    u = np.uint64
    plane = u(hp * wp)
    ln = u(((ho - 1) * wp + wo + 7) // 8 * 8)
    bl = u((ho * wp + 7) // 8 * 8)
    r1 = u(wp)
    r2 = u(2 * wp)
    zero = dw.dtype.type(0)
    for ch in range(c):
        for cb in range(0, co, 2):
            s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = s8 = zero
            t0 = t1 = t2 = t3 = t4 = t5 = t6 = t7 = t8 = zero
            for b in range(n):
                xb = u(b * c + ch) * plane
                gb = u(b * co + cb) * bl
                for q in range(ln):
                    x0 = xp[xb + q]
                    x1 = xp[xb + q + u(1)]
                    x2 = xp[xb + q + u(2)]
                    x3 = xp[xb + q + r1]
                    x4 = xp[xb + q + r1 + u(1)]
                    x5 = xp[xb + q + r1 + u(2)]
                    x6 = xp[xb + q + r2]
                    x7 = xp[xb + q + r2 + u(1)]
                    x8 = xp[xb + q + r2 + u(2)]
                    g0 = gs[gb + q]
                    s0 += g0 * x0
                    s1 += g0 * x1
                    s2 += g0 * x2
                    s3 += g0 * x3
                    s4 += g0 * x4
                    s5 += g0 * x5
                    s6 += g0 * x6
                    s7 += g0 * x7
                    s8 += g0 * x8
                    g1 = gs[gb + bl + q]
                    t0 += g1 * x0
                    t1 += g1 * x1
                    t2 += g1 * x2
                    t3 += g1 * x3
                    t4 += g1 * x4
                    t5 += g1 * x5
                    t6 += g1 * x6
                    t7 += g1 * x7
                    t8 += g1 * x8
            d = u((cb * c + ch) * 9)
            dw[d] = s0
            dw[d + u(1)] = s1
            dw[d + u(2)] = s2
            dw[d + u(3)] = s3
            dw[d + u(4)] = s4
            dw[d + u(5)] = s5
            dw[d + u(6)] = s6
            dw[d + u(7)] = s7
            dw[d + u(8)] = s8
            e = u(((cb + 1) * c + ch) * 9)
            dw[e] = t0
            dw[e + u(1)] = t1
            dw[e + u(2)] = t2
            dw[e + u(3)] = t3
            dw[e + u(4)] = t4
            dw[e + u(5)] = t5
            dw[e + u(6)] = t6
            dw[e + u(7)] = t7
            dw[e + u(8)] = t8


def fits(
    xshape: tuple[int, ...], wshape: tuple[int, ...], pad: tuple[int, int], input_grad: bool
) -> bool:
    """Whether :class:`DirectConv3x3` takes a convolution of ``xshape`` by filters ``wshape``
    with padding ``pad``: 3x3 filters, an even number of them (and of input channels when the
    input gradient is wanted), padding 0 to 2, an output of at least one pixel.

    Example:
        >>> fits((2, 1, 8, 8), (16, 1, 3, 3), (1, 1), False), fits((2, 1, 8, 8), (3, 1, 3, 3),
        ...     (1, 1), False)
        (True, False)
    """
    if len(xshape) != 4 or len(wshape) != 4 or tuple(wshape[2:]) != (3, 3):
        return False
    n, c, h, w = xshape
    co = wshape[0]
    return (
        wshape[1] == c
        and co % BLOCK == 0
        and (not input_grad or c % BLOCK == 0)
        and all(0 <= p <= 2 for p in pad)
        and h + 2 * pad[0] >= 3
        and w + 2 * pad[1] >= 3
        and n > 0
    )


class DirectConv3x3:
    """The buffers of one direct 3x3 stride-1 convolution (shapes fixed when it is made) and
    its steps: stage the input (pad it), run the forward, stage the upstream gradient (pad
    it both ways), the filter gradient, stage the flipped filter, the input gradient. The
    staging steps copy what the products read later, so these may run once the operands'
    own arrays are gone. Outputs must be C-contiguous. ``filter_grad``/``input_grad`` False:
    no buffers for that gradient (it then raises ``ValueError``).

    Example:
        >>> x = np.ones((1, 2, 3, 3)); w = np.ones((2, 2, 3, 3)); g = np.ones((1, 2, 3, 3))
        >>> dc = DirectConv3x3(x.shape, w.shape, (1, 1), x.dtype)
        >>> dw, dx = np.empty(w.shape), np.empty(x.shape)
        >>> dc.stage_input(x); dc.stage_grad(g); dc.filter_grad(dw.reshape(-1))
        >>> float(dw[0, 0, 1, 1])
        9.0
        >>> dc.stage_filter(w); dc.input_grad(dx.reshape(-1)); float(dx[0, 0, 1, 1])
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
    ) -> None:
        n, c, h, w = xshape
        co = wshape[0]
        # the input gradient's loop runs over input-channel pairs: an odd count would write
        # past its output, so it is refused here, not only by the plans that call fits()
        if not fits(xshape, wshape, pad, input_grad):
            raise ValueError(
                f"DirectConv3x3: 3x3 filters, an even number of them, padding 0 to 2, and for "
                f"the input gradient an even number of input channels (else input_grad=False); "
                f"got input {tuple(xshape)}, filters {tuple(wshape)}, padding {pad}"
            )
        ph, pw = pad
        self.n, self.c, self.co, self.h, self.w = n, c, co, h, w
        self.hp, self.wp = h + 2 * ph, w + 2 * pw
        self.ho, self.wo = self.hp - 2, self.wp - 2
        self.xp_flat, xp = _slack((n, c, self.hp, self.wp), dtype)
        self.xp_inner = xp[:, :, ph : ph + h, pw : pw + w]
        self.wt_flat = np.empty(c * co * 9, dtype)
        # the (Cin, Cout, 9) weights seen in the filter's (Cout, Cin, 3, 3) order
        self.wt_as_w = self.wt_flat.reshape(c, co, 3, 3).transpose(1, 0, 2, 3)
        # input gradient: the upstream gradient padded by 2 - pad, the flipped filter
        gh, gw = 2 - ph, 2 - pw
        self.gshape = (n, co, self.ho + 2 * gh, self.wo + 2 * gw)
        # the gradients' buffers only where they run (a prediction plan needs neither)
        self.has_filter_grad, self.has_input_grad = filter_grad, input_grad
        self.gp_flat, gp = _slack(self.gshape if input_grad else (0, co, 1, 1), dtype)
        self.gp_inner = gp[:, :, gh : gh + self.ho, gw : gw + self.wo]
        # one block of output channels on the padded-width grid, for either product
        self.blk = np.empty(
            BLOCK * max(_grid(self.ho, self.wp), _grid(h, self.gshape[3]) if input_grad else 0),
            dtype,
        )
        self.wf_flat = np.empty(co * c * 9 if input_grad else 0, dtype)
        self.wf_as_w = self.wf_flat.reshape(co if input_grad else 0, c, 3, 3)[:, :, ::-1, ::-1]
        # the upstream gradient on the forward's grid, zero in the wasted columns
        bl = _grid(self.ho, self.wp)
        self.gs = np.zeros((n if filter_grad else 0, co, bl), dtype)
        self.gs_flat = self.gs.reshape(-1)
        self.gs_inner = self.gs[:, :, : self.ho * self.wp].reshape(-1, co, self.ho, self.wp)[
            ..., : self.wo
        ]

    @property
    def nbytes(self) -> int:
        """Bytes of the buffers it holds (padded copies, weights, one block)."""
        bufs = (self.xp_flat, self.wt_flat, self.blk, self.gp_flat, self.wf_flat, self.gs)
        return sum(a.nbytes for a in bufs)

    def stage_input(self, x: np.ndarray) -> None:
        """Copy the image into the padded planes the forward and the filter gradient read."""
        np.copyto(self.xp_inner, x)

    def forward(self, w: np.ndarray, out: np.ndarray) -> None:
        """``out``, the flat view of a C-contiguous (N, Cout, Ho, Wo) array, from the staged
        image and filters ``w``."""
        np.copyto(self.wt_as_w, w)
        planes(self.xp_flat, self.wt_flat, out, self.blk, self.n, self.c,
               self.hp, self.wp, self.co, self.ho, self.wo)  # fmt: skip

    def stage_grad(self, g: np.ndarray, for_filter: bool = True, for_input: bool = True) -> None:
        """Copy the upstream gradient where the filter and input gradients read it."""
        if for_filter:
            np.copyto(self.gs_inner, g)
        if for_input:
            np.copyto(self.gp_inner, g)

    def filter_grad(self, out: np.ndarray) -> None:
        """``out``, the flat view of a C-contiguous (Cout, Cin, 3, 3) array, from the staged
        image and upstream gradient."""
        if not self.has_filter_grad:
            raise ValueError("DirectConv3x3: made with filter_grad=False")
        filter_sums(self.xp_flat, self.gs_flat, out, self.n, self.c, self.hp,
                    self.wp, self.co, self.ho, self.wo)  # fmt: skip

    def stage_filter(self, w: np.ndarray) -> None:
        """Copy the filter flipped (for the input gradient's "full" convolution)."""
        np.copyto(self.wf_as_w, w)

    def input_grad(self, out: np.ndarray) -> None:
        """``out``, the flat view of a C-contiguous (N, Cin, H, W) array, from the staged
        upstream gradient and flipped filter (the input channels must be even)."""
        if not self.has_input_grad:
            raise ValueError("DirectConv3x3: made with input_grad=False")
        n, co, hq, wq = self.gshape
        planes(self.gp_flat, self.wf_flat, out, self.blk, n, co, hq, wq, self.c,
               self.h, self.w)  # fmt: skip


def _grid(ho: int, wp: int) -> int:
    """One output plane on the padded-width grid, rounded up to 8 (the loops' length): the
    loops then have no scalar remainder (-14% at 14x14, -25% at 7x7)."""
    return (ho * wp + 7) // 8 * 8


def _slack(shape: tuple[int, ...], dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    """A zeroed flat buffer with 8 elements to spare and its (shape) view: the rounded loops
    read up to 6 elements past the last padded plane (into lanes that are never kept)."""
    flat = np.zeros(int(np.prod(shape)) + 8, dtype)
    return flat, flat[: flat.size - 8].reshape(shape)
