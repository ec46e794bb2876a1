"""Anything numpy can convert goes in (DataFrames, read-only and strided arrays, objects with
``__array__`` or only ``__dlpack__``, PyTorch tensors when torch is installed); numpy arrays
come out."""

from __future__ import annotations

import numpy as np
import pytest

import golgi as G
import graphcore as gc


class ArrayLike:
    """Only ``__array__`` (as many libraries' tensors)."""

    def __init__(self, a):
        self.a = a

    def __array__(self, dtype=None, copy=None):
        return self.a if dtype is None else self.a.astype(dtype)


class DLPackOnly:
    """Only DLPack (as a tensor from a library without ``__array__``)."""

    def __init__(self, a):
        self.a = a

    def __dlpack__(self, **kw):
        return self.a.__dlpack__(**kw)

    def __dlpack_device__(self):
        return self.a.__dlpack_device__()


def _data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = (X @ np.array([1.0, -2.0, 0.5]) > 0).astype(np.int64)
    return X, y


def _model():
    gc.SetSeed(0)
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
    return G.ComposeSeq(x, G.L(G.ConsFC(G.WithShape(2), G.WithName("out"))))


def _fit_predict(X, y, Xp):
    m = _model()
    G.fit(m, X, y, loss=G.CrossEntropy, solver="adam", epochs=3, batch_size=8, seed=0,
          progress=False)
    return G.predict(m, Xp)


@pytest.mark.parametrize(
    "wrap",
    [
        lambda a: a,
        lambda a: ArrayLike(a),
        lambda a: DLPackOnly(np.ascontiguousarray(a)),
        lambda a: np.asfortranarray(a),
        lambda a: np.repeat(a, 2, axis=1)[:, ::2],  # strided
        lambda a: _read_only(a),
        lambda a: a.tolist(),
    ],
    ids=["ndarray", "__array__", "__dlpack__", "fortran", "strided", "read-only", "list"],
)
def test_fit_and_predict_take_any_array_like_and_give_numpy(wrap):
    X, y = _data()
    want = _fit_predict(X, y, X[:5])
    got = _fit_predict(wrap(X), y, wrap(X[:5]))
    assert isinstance(got, np.ndarray) and got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-12)


def _read_only(a):
    b = a.copy()
    b.flags.writeable = False
    return b


def test_let_takes_dlpack_and_read_only_arrays_without_changing_them():
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("x"))
    y = gc.Sum(x * 2.0)
    ro = _read_only(np.ones((3, 2)))
    gc.Let(x, ro, copy=False)
    gc.NewTapeMachine(g).run_all()
    assert float(y.value) == 12.0 and not ro.flags.writeable
    gc.Let(x, DLPackOnly(np.full((2, 2), 0.5)))
    gc.NewTapeMachine(g).run_all()
    assert float(y.value) == 4.0


def test_a_dataframe_trains_and_predicts():
    pd = pytest.importorskip("pandas")
    X, y = _data()
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    want = _fit_predict(X, y, X[:5])
    got = _fit_predict(df, pd.Series(y), df.iloc[:5])
    assert isinstance(got, np.ndarray)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_torch_tensors_train_and_predict():
    torch = pytest.importorskip("torch")
    X, y = _data()
    want = _fit_predict(X, y, X[:5])
    got = _fit_predict(torch.from_numpy(X), torch.from_numpy(y), torch.from_numpy(X[:5]))
    assert isinstance(got, np.ndarray)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_something_numpy_cannot_convert_is_a_clear_type_error():
    m = _model()
    with pytest.raises(TypeError, match="predict: x"):
        G.predict(m, object())
