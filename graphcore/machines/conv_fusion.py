"""Running thin 3x3 convolutions directly when a plan is compiled (numba backend): the graph
``Conv2d`` built, its gradients and what the user can read stay as they are; only the tape
runs other kernels.

``Conv2d(x, w)`` is ``Im2Col(x)`` (the column matrix) and a product of the columns; its
gradients are ``gt = ConvOutToCols(g)``, the filter gradient ``Conv2dFilterGrad(gt, cols)``,
and for the input ``Col2Im(Conv2dColsGrad(w, gt))``. Where the columns are read by the
product and the filter gradient alone, ``gt`` by the two gradients alone and the column
gradient by its ``Col2Im`` alone (none of them watched, a root or a wanted gradient), and
the shapes fit (3x3, stride 1, dilation 1, padding 0 to 2, an even number of filters and,
when the input gradient is computed, of input channels, at most :data:`MAX_CHANNELS` each
way), each step becomes a step of a
:class:`~graphcore.kernels.compiled.direct_conv.DirectConv3x3` at the same place:

====================  ===============================================================
step of               runs
====================  ===============================================================
``Im2Col(x)``         copy ``x`` into the padded planes (no columns)
``Conv2d(cols, w)``   the direct forward
``ConvOutToCols(g)``  copy ``g`` into the filter and input gradients' padded grids
``Conv2dFilterGrad``  the direct filter gradient (the padded ``x`` and ``g``)
``Conv2dColsGrad``    copy the flipped filter
``Col2Im``            the direct input gradient
====================  ===============================================================

Each step reads only what the unfused step at its place read (or the convolution's own
buffers), so the memory pass's reuse of dead buffers stays right. The columns, ``gt`` and
the column gradient are not computed: their nodes' values read as gone. Their buffers are
still laid out (the memory pass assigns buffers before kernels are fused); nothing writes
them, and the pass hands them on to later nodes as it does any dead temporary.

Measured (``bench/direct_conv.py``, batch 32, float32): a 16-channel 28x28 layer's forward
and backward 0.35x the time through the columns, 32 channels at 14x14 0.57x; 64 to 128
channels at 7x7 1.5x (hence the channel limit). The numpy backend keeps the columns.

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
from types import ModuleType

import numpy as np

from ..graph import Node
from ..ops.conv import Conv2dColsGradOp, Conv2dFilterGradOp, Conv2dOp, ConvOutToColsOp
from ..ops.im2col import Col2ImOp, Im2ColOp
from . import fusion
from .fusion import Fused

__all__ = ["MAX_CHANNELS", "fuse_convolutions"]

Kernel = Callable[[], None]

#: Input and output channels up to which the direct kernels run: at 64 to 128 channels they
#: were 1.5x slower than the columns' products (BLAS wins once the products are wide).
MAX_CHANNELS = 64

_COMPILED = "graphcore.kernels.compiled"


class _Conv:
    """The nodes of one convolution and its gradients (None: not in this plan)."""

    def __init__(self, cols: Node, y: Node) -> None:
        self.cols, self.y = cols, y
        self.x, self.w = cols.children[0], y.children[1]
        self.dw: Node | None = None
        self.gt: Node | None = None
        self.dcols: Node | None = None
        self.dx: Node | None = None


def _readers(steps: list[tuple[Node, Kernel]]) -> dict[int, list[Node]]:
    """id of a node -> the steps reading its value (not those reading its shape only)."""
    out: dict[int, list[Node]] = {}
    for n, _ in steps:
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


def _fits(conv: _Conv, arrays: Mapping[int, np.ndarray], pad: tuple[int, int]) -> bool:
    """Whether the arrays suit the direct kernels (see the module docs)."""
    from ..kernels.compiled.direct_conv import fits

    x, w, y = (arrays[id(n)] for n in (conv.x, conv.w, conv.y))
    outs = [y] + [arrays[id(n)] for n in (conv.dw, conv.dx) if n is not None]
    grads = [arrays[id(conv.gt.children[0])]] if conv.gt is not None else []
    return (
        fits(x.shape, w.shape, pad, conv.dx is not None)
        and x.dtype == w.dtype == y.dtype
        and y.dtype in (np.float32, np.float64)
        and w.shape[0] <= MAX_CHANNELS
        and w.shape[1] <= MAX_CHANNELS
        and all(a.dtype == y.dtype and a.flags.c_contiguous for a in outs)
        and all(g.shape == y.shape and g.dtype == y.dtype for g in grads)
        and (conv.dw is None or arrays[id(conv.dw)].shape == w.shape)
        and (conv.dx is None or arrays[id(conv.dx)].shape == x.shape)
    )


def _steps(
    conv: _Conv, arrays: Mapping[int, np.ndarray], pad: tuple[int, int]
) -> tuple[dict[int, Kernel], dict[int, Callable[[np.ndarray], Kernel]]]:
    """Node id -> its new step, and node id -> a rebuilder of the step writing its value
    (for ``run_all(into=...)``)."""
    from ..kernels.compiled.direct_conv import DirectConv3x3

    x, w, y = (arrays[id(n)] for n in (conv.x, conv.w, conv.y))
    dc = DirectConv3x3(x.shape, w.shape, pad, y.dtype)

    def stage_input() -> None:
        dc.stage_input(x)

    def forward(dest: np.ndarray) -> Kernel:
        flat = dest.reshape(-1)

        def direct_conv_forward() -> None:
            dc.forward(w, flat)

        return direct_conv_forward

    new: dict[int, Kernel] = {id(conv.cols): stage_input, id(conv.y): forward(y)}
    rebuild: dict[int, Callable[[np.ndarray], Kernel]] = {id(conv.y): forward}
    if conv.dw is not None and conv.gt is not None:
        g = arrays[id(conv.gt.children[0])]
        for_input = conv.dx is not None

        def stage_grad() -> None:
            dc.stage_grad(g, True, for_input)

        def filter_grad(dest: np.ndarray) -> Kernel:
            flat = dest.reshape(-1)

            def direct_conv_filter_grad() -> None:
                dc.filter_grad(flat)

            return direct_conv_filter_grad

        new[id(conv.gt)] = stage_grad
        new[id(conv.dw)] = filter_grad(arrays[id(conv.dw)])
        rebuild[id(conv.dw)] = filter_grad
    if conv.dcols is not None and conv.dx is not None:

        def stage_filter() -> None:
            dc.stage_filter(w)

        def input_grad(dest: np.ndarray) -> Kernel:
            flat = dest.reshape(-1)

            def direct_conv_input_grad() -> None:
                dc.input_grad(flat)

            return direct_conv_input_grad

        new[id(conv.dcols)] = stage_filter
        new[id(conv.dx)] = input_grad(arrays[id(conv.dx)])
        rebuild[id(conv.dx)] = input_grad
    return new, rebuild


def fuse_convolutions(
    steps: list[tuple[Node, Kernel]],
    arrays: Mapping[int, np.ndarray],
    pinned: Collection[int],
    accumulated: Collection[int],
    keep: Collection[int],
    published: list[tuple[Node, np.ndarray | None, str | None]],
    k: ModuleType,
) -> Fused:
    """Replace the steps of each convolution the module docs describe with the direct
    kernels' (with the compiled kernels only; ``fusion.enabled`` switches it too).
    ``pinned``: ids of values the user can read; ``accumulated``: steps adding into
    ``w.grad``; ``keep``: steps something runs right after; ``published``: the plan's list of
    what each node's value is, updated for the nodes no longer computed.

    Example:
        >>> from graphcore.kernels import reference
        >>> fuse_convolutions([], {}, set(), set(), set(), [], reference).steps
        []
    """
    res = Fused(list(steps))
    if not fusion.enabled or getattr(k, "__name__", "") != _COMPILED:
        return res
    readers = _readers(steps)
    where = {id(n): i for i, (n, _) in enumerate(steps)}

    def free(n: Node) -> bool:  # a value nobody but the pattern may read
        return (
            id(n) not in pinned and id(n) not in accumulated and id(n) not in keep
            and id(n) in where
        )  # fmt: skip

    gone: dict[int, str] = {}
    for n, _ in steps:
        if not isinstance(n.op, Im2ColOp):
            continue
        conv = _match(n, readers, free)
        if conv is None or id(conv.y) not in where or not _fits(conv, arrays, n.op.pad):
            continue
        if any(
            m is not None and (id(m) not in where or id(m) in accumulated)
            for m in (conv.dw, conv.dx)
        ):
            continue
        new, rebuild = _steps(conv, arrays, n.op.pad)
        for i, fn in new.items():
            res.steps[where[i]] = (res.steps[where[i]][0], fn)
        res.rebuild.update(rebuild)
        why = f"the direct convolution {conv.y.describe()} (its columns are not computed)"
        for m, into in ((conv.cols, conv.y), (conv.gt, conv.dw), (conv.dcols, conv.dx)):
            if m is not None and into is not None and id(m) in new:
                res.folded[id(m)] = into
                gone[id(m)] = why
    for j, (m, _, _) in enumerate(published):
        if id(m) in gone:
            published[j] = (m, None, gone[id(m)])
    return res
