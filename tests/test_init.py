"""Initializers: formulas, seeding, dtypes, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

import graphcore as gc
from graphcore.errors import DtypeError, ShapeError
from graphcore.init import (
    Gaussian,
    GlorotN,
    GlorotU,
    HeN,
    HeU,
    Ones,
    RangedFrom,
    Uniform,
    ValuesOf,
    Zeroes,
)
from graphcore.rng import SetSeed

FLOATS = [gc.Float32, gc.Float64]
RANDOM = [Gaussian(0.5, 2.0), Uniform(-1.0, 3.0), GlorotN(1.5), GlorotU(1.5), HeN(2.0), HeU(2.0)]
ALL = [Zeroes(), Ones(), ValuesOf(2.5), RangedFrom(1.0, 0.5), *RANDOM]


# ----- contract --------------------------------------------------------------------------------
@pytest.mark.parametrize("init", ALL, ids=repr)
@pytest.mark.parametrize("dt", FLOATS, ids=str)
def test_every_initializer_gives_a_new_contiguous_array_of_the_dtype(init, dt):
    a = init(dt, (3, 4, 2))
    b = init(dt.np, (3, 4, 2))
    assert a.dtype == dt.np and b.dtype == dt.np
    assert a.shape == (3, 4, 2) and a.flags.c_contiguous
    assert not np.shares_memory(a, b)


@pytest.mark.parametrize("dt", [gc.Int64, gc.Int32, gc.Bool], ids=str)
def test_deterministic_initializers_take_ints_and_bool(dt):
    assert Zeroes()(dt, (2, 2)).dtype == dt.np and not Zeroes()(dt, (2,)).any()
    assert Ones()(dt, (2,)).tolist() == [1, 1]
    assert ValuesOf(1)(dt, (3,)).tolist() == [1, 1, 1]
    assert RangedFrom(0)(dt, (2,)).tolist() == [0, 1]


def test_ranged_from_and_values_of():
    assert RangedFrom(1)(gc.Int64, (2, 3)).tolist() == [[1, 2, 3], [4, 5, 6]]
    assert RangedFrom(10, -2)("int32", (3,)).tolist() == [10, 8, 6]
    np.testing.assert_array_equal(RangedFrom(0.5, 0.25)(gc.Float32, (4,)), [0.5, 0.75, 1.0, 1.25])
    assert ValuesOf(-3)(gc.Int32, (2,)).tolist() == [-3, -3]
    assert ValuesOf(0.1)(gc.Float32, ()).item() == np.float32(0.1)
    assert ValuesOf(np.float64(2.0))(gc.Float64, (1,)).tolist() == [2.0]


def test_shape_forms():
    assert Zeroes()(gc.Float64, ()).shape == ()
    assert Zeroes()(gc.Float64, 3).shape == (3,)
    assert Zeroes()(gc.Float64, 2, 3).shape == (2, 3)  # Gorgonia's variadic form
    assert Ones()(gc.Float64, [2, 1]).shape == (2, 1)
    assert GlorotN()(gc.Float32, (0, 5)).shape == (0, 5)


def test_reprs():
    assert repr(GlorotN(1.0)) == "GlorotN(gain=1.0)"
    assert repr(GlorotU(2)) == "GlorotU(gain=2.0)"
    assert repr(HeN()) == "HeN(gain=1.0)"
    assert repr(HeU(0.5)) == "HeU(gain=0.5)"
    assert repr(Gaussian()) == "Gaussian(mean=0.0, std=1.0)"
    assert repr(Uniform(-1, 1)) == "Uniform(low=-1.0, high=1.0)"
    assert repr(Zeroes()) == "Zeroes()" and repr(Ones()) == "Ones()"
    assert repr(ValuesOf(3)) == "ValuesOf(3)"
    assert repr(RangedFrom(0, 2)) == "RangedFrom(start=0, step=2)"
    assert GlorotN(1.0) == GlorotN(1.0) and GlorotN(1.0) != GlorotU(1.0)


# ----- formulas --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("shape", "fan"),
    [((784, 250), 784 + 250), ((32, 16, 3, 3), (32 + 16) * 9), ((10,), 11), ((4, 6, 5), 50)],
)
def test_glorot_std_and_limit(shape, fan):
    std = 2.0 * math.sqrt(2.0 / fan)
    assert GlorotN(2.0).std(shape) == pytest.approx(std, rel=1e-15)
    assert GlorotU(2.0).std(shape) == pytest.approx(std, rel=1e-15)
    assert GlorotU(2.0).limit(shape) == pytest.approx(math.sqrt(3) * std, rel=1e-15)


@pytest.mark.parametrize(
    ("shape", "fan_in"), [((784, 250), 784), ((32, 16, 3, 3), 16 * 9), ((10,), 10), ((4, 6, 5), 30)]
)
def test_he_std_and_limit(shape, fan_in):
    std = 1.5 * math.sqrt(1.0 / fan_in)
    assert HeN(1.5).std(shape) == pytest.approx(std, rel=1e-15)
    assert HeU(1.5).limit(shape) == pytest.approx(math.sqrt(3) * std, rel=1e-15)


@pytest.mark.parametrize("dt", FLOATS, ids=str)
@pytest.mark.parametrize(
    ("init", "shape"),
    [
        (GlorotN(1.0), (300, 500)),
        (GlorotU(1.0), (300, 500)),
        (HeN(math.sqrt(2)), (150, 1000)),
        (HeU(math.sqrt(2)), (150, 1000)),
        (GlorotN(1.0), (40, 30, 5, 5)),
        (HeU(1.0), (40, 30, 5, 5)),
    ],
    ids=repr,
)
def test_large_draws_have_the_formula_std(init, shape, dt):
    SetSeed(1)
    a = init(dt, shape).astype(np.float64)
    std = init.std(shape)
    assert a.std() == pytest.approx(std, rel=0.02)
    assert abs(a.mean()) < 0.02 * std
    if isinstance(init, (GlorotU, HeU)):
        lim = init.limit(shape)
        assert np.abs(a).max() <= np.float64(dt.np.type(lim))
        assert np.abs(a).max() > 0.99 * lim


@pytest.mark.parametrize("dt", FLOATS, ids=str)
def test_gaussian_and_uniform_draws(dt):
    SetSeed(2)
    a = Gaussian(3.0, 0.5)(dt, (200, 500)).astype(np.float64)
    assert a.mean() == pytest.approx(3.0, abs=0.01)
    assert a.std() == pytest.approx(0.5, rel=0.02)
    u = Uniform(-2.0, 6.0)(dt, (200, 500)).astype(np.float64)
    assert u.min() >= -2.0 and u.max() <= 6.0
    assert u.min() < -1.99 and u.max() > 5.99
    assert u.std() == pytest.approx(8 / math.sqrt(12), rel=0.02)


def test_glorot_u_is_uniform_in_float32():
    """Gorgonia's float32 GlorotU drew normals; a uniform draw has no tail past the limit."""
    SetSeed(3)
    a = GlorotU(1.0)(gc.Float32, (200, 300))
    lim = GlorotU(1.0).limit((200, 300))
    assert np.abs(a).max() <= np.float32(lim)
    hist, _ = np.histogram(a, bins=4, range=(-lim, lim))
    assert hist.min() > 0.9 * hist.max()  # flat, not bell-shaped


# ----- seeding ---------------------------------------------------------------------------------
@pytest.mark.parametrize("init", RANDOM, ids=repr)
def test_same_seed_is_bit_identical_in_each_dtype(init):
    SetSeed(42)
    a64 = init(gc.Float64, (7, 9))
    SetSeed(42)
    b64 = init(gc.Float64, (7, 9))
    SetSeed(42)
    a32 = init(gc.Float32, (7, 9))
    SetSeed(42)
    b32 = init(gc.Float32, (7, 9))
    assert np.array_equal(a64, b64) and np.array_equal(a32, b32)
    assert np.array_equal(a32, a64.astype(np.float32))
    SetSeed(43)
    assert not np.array_equal(init(gc.Float64, (7, 9)), a64)


def test_rng_is_read_at_draw_time():
    init = GlorotN(1.0)  # made before seeding
    SetSeed(5)
    a = init(gc.Float64, (4, 4))
    SetSeed(5)
    b = GlorotN(1.0)(gc.Float64, (4, 4))
    assert np.array_equal(a, b)
    assert not np.array_equal(init(gc.Float64, (4, 4)), a)  # the stream moves on


def test_works_with_node_constructors():
    SetSeed(9)
    g = gc.NewGraph()
    w = gc.NewMatrix(g, gc.Float32, gc.WithShape(3, 2), gc.WithName("w"), gc.WithInit(GlorotN(1.0)))
    SetSeed(9)
    assert w.value.dtype == np.float32
    assert np.array_equal(w.value, GlorotN(1.0)(gc.Float32, (3, 2)))


# ----- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("make", "exc", "match"),
    [
        (lambda: Gaussian(0.0, -1.0), ValueError, "std"),
        (lambda: Gaussian(math.nan, 1.0), ValueError, "mean"),
        (lambda: Uniform(1.0, -1.0), ValueError, "low"),
        (lambda: Uniform(0.0, math.inf), ValueError, "high"),
        (lambda: GlorotN(0.0), ValueError, "gain"),
        (lambda: GlorotU(-1.0), ValueError, "gain"),
        (lambda: HeN("1"), TypeError, "gain"),
        (lambda: HeU(math.nan), ValueError, "gain"),
        (lambda: ValuesOf([1, 2]), TypeError, "WithValue"),
        (lambda: RangedFrom(0, math.inf), ValueError, "step"),
        (lambda: RangedFrom("a"), TypeError, "start"),
    ],
)
def test_bad_arguments_raise(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


@pytest.mark.parametrize("init", RANDOM, ids=repr)
@pytest.mark.parametrize("dt", [gc.Int64, gc.Int32, gc.Bool], ids=str)
def test_random_initializers_refuse_non_float_dtypes(init, dt):
    with pytest.raises(DtypeError, match=str(dt)):
        init(dt, (2, 2))


@pytest.mark.parametrize(
    ("shape", "exc", "match"),
    [
        ((None, 3), ShapeError, "None"),
        ((2, -1), ShapeError, "negative"),
        ((2.0, 3), TypeError, "non-integer"),
        ("ab", TypeError, "tuple of ints"),
    ],
)
@pytest.mark.parametrize("init", [Zeroes(), GlorotN(1.0)], ids=repr)
def test_bad_shapes_raise(init, shape, exc, match):
    with pytest.raises(exc, match=match):
        init(gc.Float64, shape)


def test_scalar_shapes_have_no_fan():
    with pytest.raises(ShapeError, match="at least one dimension"):
        GlorotN(1.0)(gc.Float64, ())
    with pytest.raises(ShapeError, match="at least one dimension"):
        HeU(1.0)(gc.Float32, ())


def test_values_that_do_not_fit_the_dtype_raise():
    with pytest.raises(DtypeError, match="Int64"):
        ValuesOf(1.5)(gc.Int64, (2,))
    with pytest.raises(DtypeError, match="Bool"):
        ValuesOf(2)(gc.Bool, (2,))
    with pytest.raises(DtypeError, match="Int32"):
        RangedFrom(0.5)(gc.Int32, (2,))
    with pytest.raises(DtypeError, match="Int32"):
        RangedFrom(2**31 - 1)(gc.Int32, (2,))
    with pytest.raises(DtypeError, match="Bool"):
        RangedFrom(0)(gc.Bool, (3,))
    with pytest.raises(TypeError, match="not supported"):
        Zeroes()(np.float16, (2,))
