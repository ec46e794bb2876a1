"""The direct and Winograd convolution kernels (bench/direct_conv.py wraps the direct one)
agree with the im2col path: forward, input and filter gradients, on odd shapes, the 7x7 and
14x14 planes the benchmarks run, paddings 0 to 2 and both float dtypes. Plans use them
through graphcore.machines.conv_fusion (tests/test_conv_fusion.py)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from bench.direct_conv import DirectConv, _reference  # noqa: E402
from tests.conv_cases import WINOGRAD_SHAPES  # noqa: E402

SHAPES = [
    # n, c, co, h, w, pad: batch 1, non-square, paddings 0, 1 and 2, one input channel
    (1, 2, 4, 5, 7, 1),
    (3, 4, 6, 9, 6, 1),
    (2, 2, 2, 6, 6, 0),
    (2, 2, 4, 5, 8, 2),
    (1, 6, 2, 3, 3, 1),
]


@pytest.mark.parametrize(("dtype", "tol"), [(np.float64, 1e-12), (np.float32, 2e-5)])
@pytest.mark.parametrize("shape", SHAPES)
def test_direct_matches_im2col(shape: tuple[int, ...], dtype: type, tol: float) -> None:
    n, c, co, h, w, pad = shape
    rng = np.random.default_rng(7)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((co, c, 3, 3)).astype(dtype)
    dc = DirectConv(x.shape, wt.shape, pad, dtype)
    y = dc.forward(x, wt).copy()
    gy = rng.standard_normal(y.shape).astype(dtype)
    want = _reference(x, wt, gy, pad)
    got = [y, dc.input_grad(gy, wt).copy(), dc.filter_grad(gy).copy()]
    for name, a, b in zip(["output", "input gradient", "filter gradient"], got, want, strict=True):
        assert a.shape == b.shape, name
        assert a.dtype == dtype, name
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * np.abs(b).max(), err_msg=name)


def test_direct_reuses_its_buffers() -> None:
    # a second call with other values gives their result (no state left from the first)
    rng = np.random.default_rng(3)
    x1, x2 = rng.standard_normal((2, 2, 2, 4, 4))
    wt = rng.standard_normal((2, 2, 3, 3))
    dc = DirectConv(x1.shape, wt.shape, 1, np.float64)
    dc.forward(x1, wt)
    y2 = dc.forward(x2, wt).copy()
    np.testing.assert_allclose(y2, _reference(x2, wt, np.ones_like(y2), 1)[0], rtol=1e-12)


def test_direct_refuses_odd_filter_counts() -> None:
    with pytest.raises(ValueError, match="an even number of them, got \\(3, 2, 3, 3\\)"):
        DirectConv((1, 2, 4, 4), (3, 2, 3, 3), 1, np.float64)
    dc = DirectConv((1, 1, 4, 4), (2, 1, 3, 3), 1, np.float64)
    with pytest.raises(ValueError, match="input gradient needs even channels, got 1"):
        dc.input_grad(np.ones((1, 2, 4, 4)), np.ones((2, 1, 3, 3)))




@pytest.mark.parametrize(("dtype", "tol"), [(np.float64, 1e-12), (np.float32, 1e-4)])
@pytest.mark.parametrize("shape", WINOGRAD_SHAPES)
def test_winograd_matches_im2col(shape: tuple[int, ...], dtype: type, tol: float) -> None:
    from graphcore.kernels.compiled.winograd_conv import WinogradConv3x3

    n, c, co, h, w, pad = shape
    rng = np.random.default_rng(11)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((co, c, 3, 3)).astype(dtype)
    wc = WinogradConv3x3(x.shape, wt.shape, pad, dtype)
    y = np.empty((n, co, wc.ho, wc.wo), dtype)
    gy = rng.standard_normal(y.shape).astype(dtype)
    dx, dw = np.empty_like(x), np.empty_like(wt)
    for _ in range(2):  # the second run reuses the buffers: nothing left from the first
        wc.stage_input(x)
        wc.forward(wt, y.reshape(-1))
        wc.stage_grad(gy)
        wc.filter_grad(dw.reshape(-1))
        wc.stage_filter(wt)
        wc.input_grad(dx.reshape(-1))
    want = _reference(x, wt, gy, pad)
    for name, a, b in zip(["output", "input gradient", "filter gradient"], [y, dx, dw], want,
                          strict=True):  # fmt: skip
        assert a.shape == b.shape, name
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * np.abs(b).max(), err_msg=name)


def test_winograd_tiles_are_staggered_in_memory() -> None:
    # the 16 matrices of each tile buffer start off a multiple of 4 KiB from each other (at
    # 4 KiB multiples the transforms ran 5-10x slower), and their products read them as they are
    from graphcore.kernels.compiled.winograd_conv import WinogradConv3x3

    wc = WinogradConv3x3((32, 32, 14, 14), (64, 32, 3, 3), (1, 1), np.float32)
    for a in (wc.v, wc.dm, wc.u, wc.ut, wc.du):
        assert a.shape[0] == 16 and a.strides[0] % 4096 != 0
        assert a.strides[1:] == (a.shape[2] * 4, 4)
    assert wc.nbytes > wc.v.nbytes + wc.dm.nbytes
