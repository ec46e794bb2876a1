"""Running 3x3 convolutions without columns when a plan is compiled: the graph ``Conv2d``
built, its gradients and what the user can read stay as they are; only the tape runs other
kernels.

``Conv2d(x, w)`` is ``Im2Col(x)`` (the column matrix) and a product of the columns; its
gradients are ``gt = ConvOutToCols(g)``, the filter gradient ``Conv2dFilterGrad(gt, cols)``,
and for the input ``Col2Im(Conv2dColsGrad(w, gt))``. Where the columns are read by the
product and the filter gradient alone, ``gt`` by the two gradients alone and the column
gradient by its ``Col2Im`` alone (none of them watched, a root or a wanted gradient), and
the shapes fit (3x3, stride 1, dilation 1, padding 0 to 2), each step becomes a step of one
of two kernels at the same place:

- Winograd's F(2x2, 3x3) (:class:`~graphcore.kernels.compiled.winograd_conv.WinogradConv3x3`)
  from :data:`WINOGRAD_MIN_PAIRS` (input x output) channel pairs up to
  :data:`WINOGRAD_MAX_CHANNELS` channels either way, any channel counts;
- else the direct loops (:class:`~graphcore.kernels.compiled.direct_conv.DirectConv3x3`)
  for an even number of filters and, when the input gradient is computed, of input channels,
  at most :data:`MAX_CHANNELS` each way.

====================  ===============================================================
step of               runs
====================  ===============================================================
``Im2Col(x)``         pad ``x`` (Winograd: and transform its tiles); no columns
``Conv2d(cols, w)``   the forward
``ConvOutToCols(g)``  copy ``g`` where the gradients read it (Winograd: its tiles)
``Conv2dFilterGrad``  the filter gradient (from the staged ``x`` and ``g``)
``Conv2dColsGrad``    stage the filter (direct: flipped; Winograd: transformed)
``Col2Im``            the input gradient
====================  ===============================================================

Each step reads only what the unfused step at its place read (or the convolution's own
buffers), so the memory pass's reuse of dead buffers stays right. The columns, ``gt`` and
the column gradient are not computed and get no buffers: :func:`find_convolutions` runs
before the memory pass and tells it which values nothing writes and which steps it need not
build; :func:`fuse_convolutions` builds those steps once the arrays are laid out (the
Winograd convolutions of a plan share one products' buffer). The skipped nodes' values read
as gone.

Measured (``bench/direct_conv.py``, batch 32, float32, forward and backward): the direct
loops take a 16-channel 28x28 layer in 0.35-0.45x the time through the columns, but 64 to
128 channels at 7x7 in 1.5-2x, and with the convnet's 32 -> 64 layer at 14x14 direct its
epoch lost ~3%. Winograd takes 16 -> 32 and 32 -> 32 at 14x14 in ~0.85x the direct loops'
time, 32 -> 64 at 14x14 in ~0.75x and 64 -> 128 at 7x7 in ~0.9x the columns'; 16 -> 16 at
28x28 in 1.4x the direct loops' (its 16 products are too thin for BLAS).

The numpy backend has no direct loops; it runs Winograd in numpy
(:class:`~graphcore.kernels.reference.winograd_conv.WinogradConv3x3`) from
:data:`NUMPY_WINOGRAD_MIN_PAIRS` channel pairs up to :data:`NUMPY_WINOGRAD_MAX_CHANNELS`
channels either way, on outputs of at least :data:`NUMPY_WINOGRAD_MIN_SIDE` pixels each way
and :data:`NUMPY_WINOGRAD_MIN_PIXELS` over the batch, and the columns elsewhere. Alone
(same harness, batch 32, CPU time) it took 16 -> 16 at 28x28 in 0.65-0.75x the columns'
time, 32 -> 32 at 14x14 in 0.7-0.85x, 16 -> 32 in 0.85-1.0x, 32 -> 64 in ~0.9x, 64 -> 128
at 7x7 in 1.0-1.2x; in plans (epochs taking turns in one process) the resnet's epoch in
0.79x, while the convnet's with its 32 -> 64 layer by Winograd was 1.03-1.05x (so that layer
keeps its columns).

Example:
    >>> import numpy as np, graphcore as gc
    >>> g = gc.NewGraph()
    >>> x = gc.NewTensor(g, gc.Float64, 4, gc.WithName("x"), gc.WithValue(np.ones((1, 2, 4, 4))))
    >>> w = gc.NewTensor(g, gc.Float64, 4, gc.WithName("w"), gc.WithValue(np.ones((2, 2, 3, 3))))
    >>> y = gc.Conv2d(x, w, pad=1); vm = gc.NewTapeMachine(g); vm.run_all()
    >>> y.value[0, 0, 0].tolist()  # the same with either backend
    [8.0, 12.0, 12.0, 8.0]
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from ..graph import Node
from ..kernels import winograd
from ..ops.conv import Conv2dColsGradOp, Conv2dFilterGradOp, Conv2dOp, ConvOutToColsOp
from ..ops.im2col import Col2ImOp, Im2ColOp
from . import fusion
from .fusion import Fused

__all__ = [
    "MAX_CHANNELS",
    "WINOGRAD_MIN_PAIRS",
    "WINOGRAD_MAX_CHANNELS",
    "NUMPY_WINOGRAD_MIN_PAIRS",
    "NUMPY_WINOGRAD_MAX_CHANNELS",
    "NUMPY_WINOGRAD_MIN_SIDE",
    "NUMPY_WINOGRAD_MIN_PIXELS",
    "Direct",
    "find_convolutions",
    "fuse_convolutions",
]

Kernel = Callable[[], None]

#: Input and output channels up to which the direct kernels run (where Winograd does not):
#: at 64 to 128 channels they were 1.5x slower than the columns' products (BLAS wins once
#: the products are wide), and the convnet's 32 -> 64 layer at 14x14 made its epoch ~3%
#: slower in a plan (CPU time, alternating epochs in one process), though at par alone.
MAX_CHANNELS = 32

#: From this many (input, output) channel pairs up (16 -> 32 and wider) the convolutions run
#: by Winograd's F(2x2, 3x3) (:mod:`graphcore.kernels.compiled.winograd_conv`), which beat
#: both the direct loops and the columns there (batch 32, float32, forward and backward:
#: 16 -> 32 and 32 -> 32 at 14x14 0.85x the direct loops, 32 -> 64 at 14x14 0.75x and
#: 64 -> 128 at 7x7 0.9x the columns); 16 -> 16 at 28x28 stays direct (1.4x slower by
#: Winograd: its products are too thin for BLAS).
WINOGRAD_MIN_PAIRS = 512
#: ... and up to this many channels either way (the widest measured)
WINOGRAD_MAX_CHANNELS = 128

#: The numpy backend (no direct loops there) runs Winograd
#: (:mod:`graphcore.kernels.reference.winograd_conv`) from this many channel pairs ...
NUMPY_WINOGRAD_MIN_PAIRS = 256
#: ... up to this many channels either way: 32 -> 64 at 14x14 took 0.9x the columns' time
#: alone but made the convnet's epoch ~4% slower in a plan (its buffers are 4x the layer's
#: input and output), where 16 -> 16 at 28x28 to 32 -> 32 at 14x14 took 0.65-0.85x ...
NUMPY_WINOGRAD_MAX_CHANNELS = 32
#: ... for outputs of at least this many rows and columns: at 7x7 (64 -> 128) it only tied
#: with the columns (its tiles cover 8x8, and a fifth of its products is padding there) ...
NUMPY_WINOGRAD_MIN_SIDE = 14
#: ... and of at least this many pixels over the batch (N x Ho x Wo): its ~100 numpy calls a
#: step cost more than they save on small batches (forward at batch 1: 1.3-1.4x the columns'
#: time; from 8 images of 14x14 or 28x28 up, 0.8-0.9x)
NUMPY_WINOGRAD_MIN_PIXELS = 4096

_COMPILED = "graphcore.kernels.compiled"
_REFERENCE = "graphcore.kernels.reference"


class _Conv:
    """The nodes of one convolution and its gradients (None: not in this plan)."""

    def __init__(self, cols: Node, y: Node) -> None:
        self.cols, self.y = cols, y
        self.x, self.w = cols.children[0], y.children[1]
        self.dw: Node | None = None
        self.gt: Node | None = None
        self.dcols: Node | None = None
        self.dx: Node | None = None
        self.kernels: Any = None  # its DirectConv3x3 or WinogradConv3x3, once built
        self.winograd = False  # which of the two (chosen by _fits)
        self.compiled = True  # numba's kernels, else numpy's (Winograd only)


def _readers(steps: list[Node]) -> dict[int, list[Node]]:
    """id of a node -> the steps reading its value (not those reading its shape only)."""
    out: dict[int, list[Node]] = {}
    for n in steps:
        assert n.op is not None  # a step is an op's
        for j, c in enumerate(n.children):
            if j not in n.op.shape_only:
                out.setdefault(id(c), []).append(n)
    return out


def _match(
    cols: Node, readers: Mapping[int, list[Node]], free: Callable[[Node], bool]
) -> _Conv | None:
    """The convolution whose columns ``cols`` are, when every node the direct kernels do
    without (columns, ``gt``, column gradient) is read only where the pattern says."""
    op = cols.op
    assert isinstance(op, Im2ColOp)
    if (
        op.kernel_shape != (3, 3)
        or op.stride != (1, 1)
        or op.dilation != (1, 1)
        or not all(0 <= p <= 2 for p in op.pad)
        or not free(cols)
    ):
        return None
    ys = [r for r in readers.get(id(cols), ()) if isinstance(r.op, Conv2dOp)]
    dws = [r for r in readers.get(id(cols), ()) if isinstance(r.op, Conv2dFilterGradOp)]
    if len(ys) != 1 or len(dws) > 1 or len(readers[id(cols)]) != len(ys) + len(dws):
        return None
    conv = _Conv(cols, ys[0])
    if conv.y.children[0] is not cols or conv.w is cols:
        return None
    if not dws:
        return conv
    dw = conv.dw = dws[0]
    gt = dw.children[0]
    if dw.children[1] is not cols or not isinstance(gt.op, ConvOutToColsOp) or not free(gt):
        return None
    conv.gt = gt
    dcs = [r for r in readers.get(id(gt), ()) if r is not dw]
    if not dcs:
        return conv
    if len(dcs) != 1 or sum(r is dw for r in readers[id(gt)]) != 1:
        return None
    dc = dcs[0]
    if (
        not isinstance(dc.op, Conv2dColsGradOp)
        or dc.children[0] is not conv.w
        or dc.children[1] is not gt
        or not free(dc)
    ):
        return None
    dxs = readers.get(id(dc), [])
    if len(dxs) != 1 or not isinstance(dxs[0].op, Col2ImOp) or dxs[0].children[0] is not dc:
        return None
    dx, fop = dxs[0], dxs[0].op
    if (fop.kernel_shape, fop.pad, fop.stride, fop.dilation) != (
        op.kernel_shape, op.pad, op.stride, op.dilation
    ):
        return None
    conv.dcols, conv.dx = dc, dx
    return conv


def _fits(conv: _Conv, shapes: Mapping[int, tuple[int, ...]], pad: tuple[int, int]) -> bool:
    """Whether the shapes and dtypes suit the direct or Winograd kernels (see the module
    docs); sets ``conv.winograd`` to the one that runs."""
    xs, ws, ys = (shapes[id(n)] for n in (conv.x, conv.w, conv.y))
    dt = conv.y.dtype.np
    nodes = [conv.x, conv.w] + [n for n in (conv.gt, conv.dw, conv.dx) if n is not None]
    if not (
        dt in (np.float32, np.float64)
        and all(n.dtype.np == dt for n in nodes)
        and (conv.gt is None or shapes[id(conv.gt.children[0])] == ys)
        and (conv.dw is None or shapes[id(conv.dw)] == ws)
        and (conv.dx is None or shapes[id(conv.dx)] == xs)
    ):
        return False
    co, c = ws[0], ws[1] if len(ws) > 1 else 0
    if not conv.compiled:  # numpy: Winograd or the columns
        conv.winograd = (
            winograd.fits(xs, ws, pad)
            and c * co >= NUMPY_WINOGRAD_MIN_PAIRS
            and max(c, co) <= NUMPY_WINOGRAD_MAX_CHANNELS
            and min(ys[2:]) >= NUMPY_WINOGRAD_MIN_SIDE
            and ys[0] * ys[2] * ys[3] >= NUMPY_WINOGRAD_MIN_PIXELS
        )
        return conv.winograd
    from ..kernels.compiled import direct_conv  # numba's backend only

    conv.winograd = (
        winograd.fits(xs, ws, pad)
        and c * co >= WINOGRAD_MIN_PAIRS
        and max(c, co) <= WINOGRAD_MAX_CHANNELS
    )
    return conv.winograd or (
        direct_conv.fits(xs, ws, pad, conv.dx is not None)
        and co <= MAX_CHANNELS
        and c <= MAX_CHANNELS
    )


def _scratch(convs: list[_Conv], arrays: Mapping[int, np.ndarray]) -> dict[Any, np.ndarray]:
    """dtype -> one products' buffer that the Winograd convolutions of a plan share (each
    uses it within its own forward and input-gradient steps; the steps run one at a time)."""
    need: dict[Any, int] = {}
    for conv in convs:
        if conv.winograd:
            assert isinstance(conv.cols.op, Im2ColOp)
            x, w, y = (arrays[id(n)] for n in (conv.x, conv.w, conv.y))
            size = _winograd_class(conv).scratch_size(
                x.shape, w.shape, conv.cols.op.pad, y.dtype, conv.dx is not None
            )
            need[y.dtype] = max(need.get(y.dtype, 0), size)
    return {dt: np.zeros(size, dt) for dt, size in need.items()}


def _winograd_class(conv: _Conv) -> Any:
    """The WinogradConv3x3 of ``conv``'s backend (numba's imported only when it runs)."""
    if conv.compiled:
        from ..kernels.compiled.winograd_conv import WinogradConv3x3

        return WinogradConv3x3
    from ..kernels.reference.winograd_conv import WinogradConv3x3 as NumpyWinograd

    return NumpyWinograd


def _steps(
    conv: _Conv,
    arrays: Mapping[int, np.ndarray],
    pad: tuple[int, int],
    scratch: Mapping[Any, np.ndarray],
) -> tuple[dict[int, Kernel], dict[int, Callable[[np.ndarray], Kernel]]]:
    """Node id -> its new step, and node id -> a rebuilder of the step writing its value
    (for ``run_all(into=...)``)."""
    x, w, y = (arrays[id(n)] for n in (conv.x, conv.w, conv.y))
    grads = (conv.dw is not None, conv.dx is not None)
    dc: Any  # a DirectConv3x3 or either backend's WinogradConv3x3: the same steps
    if conv.winograd:
        dc = conv.kernels = _winograd_class(conv)(x.shape, w.shape, pad, y.dtype, *grads,
                                                  scratch=scratch[y.dtype])  # fmt: skip
    else:
        from ..kernels.compiled.direct_conv import DirectConv3x3  # numba's backend only

        dc = conv.kernels = DirectConv3x3(x.shape, w.shape, pad, y.dtype, *grads)

    def stage_input() -> None:
        dc.stage_input(x)

    def forward(dest: np.ndarray) -> Kernel:
        flat = dest.reshape(-1)

        def fused_conv_forward() -> None:
            dc.forward(w, flat)

        return fused_conv_forward

    new: dict[int, Kernel] = {id(conv.cols): stage_input, id(conv.y): forward(y)}
    rebuild: dict[int, Callable[[np.ndarray], Kernel]] = {id(conv.y): forward}
    if conv.dw is not None and conv.gt is not None:
        g = arrays[id(conv.gt.children[0])]
        for_input = conv.dx is not None

        def stage_grad() -> None:
            dc.stage_grad(g, True, for_input)

        def filter_grad(dest: np.ndarray) -> Kernel:
            flat = dest.reshape(-1)

            def fused_conv_filter_grad() -> None:
                dc.filter_grad(flat)

            return fused_conv_filter_grad

        new[id(conv.gt)] = stage_grad
        new[id(conv.dw)] = filter_grad(arrays[id(conv.dw)])
        rebuild[id(conv.dw)] = filter_grad
    if conv.dcols is not None and conv.dx is not None:

        def stage_filter() -> None:
            dc.stage_filter(w)

        def input_grad(dest: np.ndarray) -> Kernel:
            flat = dest.reshape(-1)

            def fused_conv_input_grad() -> None:
                dc.input_grad(flat)

            return fused_conv_input_grad

        new[id(conv.dcols)] = stage_filter
        new[id(conv.dx)] = input_grad(arrays[id(conv.dx)])
        rebuild[id(conv.dx)] = input_grad
    return new, rebuild


@dataclass
class Direct:
    """The convolutions a plan runs directly (:func:`find_convolutions`): ``convs``,
    ``unwritten`` (ids of the values nothing computes: no buffers), ``replaced`` (ids of
    every node whose step :func:`fuse_convolutions` builds: the memory pass builds none) and
    ``nbytes`` (the direct kernels' own buffers, once built).

    Example:
        >>> Direct().unwritten
        set()
    """

    convs: list[_Conv] = field(default_factory=list)
    unwritten: set[int] = field(default_factory=set)
    replaced: set[int] = field(default_factory=set)
    nbytes: int = 0


def find_convolutions(
    order: list[Node],
    shapes: Mapping[int, tuple[int, ...]],
    pinned: Collection[int],
    given: Collection[int],
    k: ModuleType,
) -> Direct:
    """The convolutions of ``order`` (a program, before its memory pass) the module docs
    describe, with the compiled kernels only (``fusion.enabled`` switches it too).
    ``pinned``: ids of values the user can read; ``given``: op nodes read, not computed.

    Example:
        >>> from graphcore.kernels import reference
        >>> find_convolutions([], {}, set(), set(), reference).convs
        []
    """
    res = Direct()
    name = getattr(k, "__name__", "")
    if not fusion.enabled or name not in (_COMPILED, _REFERENCE):
        return res
    steps = [n for n in order if n.op is not None and id(n) not in given]
    readers = _readers(steps)
    computed = {id(n) for n in steps}

    def free(n: Node) -> bool:  # a computed value nobody but the pattern may read
        return id(n) not in pinned and id(n) in computed

    for n in steps:
        if not isinstance(n.op, Im2ColOp):
            continue
        conv = _match(n, readers, free)
        if conv is None or not all(
            id(m) in computed for m in (conv.y, conv.dw, conv.dx) if m is not None
        ):
            continue
        conv.compiled = name == _COMPILED
        if not _fits(conv, shapes, n.op.pad):
            continue
        res.convs.append(conv)
        skipped = [m for m in (conv.cols, conv.gt, conv.dcols) if m is not None]
        res.unwritten.update(id(m) for m in skipped)
        res.replaced.update(id(m) for m in (*skipped, conv.y, conv.dw, conv.dx) if m is not None)
    return res


def fuse_convolutions(
    steps: list[tuple[Node, Kernel]],
    arrays: Mapping[int, np.ndarray],
    direct: Direct,
    published: list[tuple[Node, np.ndarray | None, str | None]],
) -> Fused:
    """Build the steps of the convolutions :func:`find_convolutions` found, in place of the
    memory pass's placeholders; ``published``: the plan's list of what each node's value is,
    updated for the values nothing computes.

    Example:
        >>> fuse_convolutions([], {}, Direct(), []).steps
        []
    """
    res = Fused(list(steps))
    where = {id(n): i for i, (n, _) in enumerate(steps)}
    gone: dict[int, str] = {}
    scratch = _scratch(direct.convs, arrays)
    direct.nbytes += sum(a.nbytes for a in scratch.values())
    for conv in direct.convs:
        assert isinstance(conv.cols.op, Im2ColOp)
        new, rebuild = _steps(conv, arrays, conv.cols.op.pad, scratch)
        for i, fn in new.items():
            res.steps[where[i]] = (res.steps[where[i]][0], fn)
        res.rebuild.update(rebuild)
        direct.nbytes += conv.kernels.nbytes
        why = f"the direct convolution {conv.y.describe()} (its columns are not computed)"
        for m, into in ((conv.cols, conv.y), (conv.gt, conv.dw), (conv.dcols, conv.dx)):
            if m is not None and into is not None:
                res.folded[id(m)] = into
                gone[id(m)] = why
    for j, (m, _, _) in enumerate(published):
        if id(m) in gone:
            published[j] = (m, None, gone[id(m)])
    return res
