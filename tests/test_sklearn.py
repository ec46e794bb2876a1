"""golgi.sklearn: the estimators in pipelines and searches, inputs of every kind, pickling,
threads, warm starts, custom models, and the optional dependency."""

from __future__ import annotations

import copy
import io
import os
import pickle
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")

import joblib  # noqa: E402
from joblib import parallel_backend  # noqa: E402
from numpy.testing import assert_allclose, assert_array_equal  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_digits, make_blobs, make_regression  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import Pipeline, make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import golgi as G  # noqa: E402
import golgi.sklearn as gsk  # noqa: E402
import graphcore as gc  # noqa: E402
from golgi.sklearn import GolgiClassifier, GolgiRegressor, GolgiTransformer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FAST = {"epochs": 30, "batch_size": 16, "learning_rate": 0.01, "random_state": 0}


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=120, centers=3, n_features=4, random_state=0)
    return X, y


@pytest.fixture(scope="module")
def regression():
    X, y = make_regression(n_samples=120, n_features=4, n_targets=2, noise=0.1, random_state=0)
    return X, y / y.std(0)


def fitted(kind: str, data):
    X, y = data
    if kind == "classifier":
        return GolgiClassifier((16,), **FAST).fit(X, y)
    if kind == "regressor":
        return GolgiRegressor((16,), **FAST).fit(X, y)
    return GolgiTransformer((16, 2), **FAST).fit(X)


def outputs(est, X):
    """Every result an estimator gives for ``X``."""
    if isinstance(est, GolgiClassifier):
        return [est.predict(X), est.predict_proba(X)]
    if isinstance(est, GolgiRegressor):
        return [est.predict(X)]
    return [est.transform(X)]


def same_outputs(a, b, rtol=1e-9):
    for p, q in zip(a, b, strict=True):
        if p.dtype.kind in "fc":
            assert_allclose(p, q, rtol=rtol, atol=1e-12)
        else:
            assert_array_equal(p, q)


KINDS = ["classifier", "regressor", "transformer"]


# ----- scikit-learn tools --------------------------------------------------------------------
def test_digits_pipeline_grid_search_and_cross_val_score():
    X, y = load_digits(return_X_y=True)
    quick = {**FAST, "epochs": 10, "batch_size": 32}
    pipe = Pipeline([("scale", StandardScaler()), ("clf", GolgiClassifier(**quick))])
    grid = {"clf__hidden_layer_sizes": [(32,), (64,)]}
    search = GridSearchCV(pipe, grid, cv=3, n_jobs=2).fit(X, y)  # worker processes (loky)
    assert search.best_score_ > 0.9
    assert search.best_params_["clf__hidden_layer_sizes"] in grid["clf__hidden_layer_sizes"]
    assert search.predict(X[:5]).shape == (5,)
    scores = cross_val_score(make_pipeline(StandardScaler(), GolgiClassifier((32,), **quick)),
                             X, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.9


def test_fits_in_parallel_threads_match_sequential_fits():
    X, y = load_digits(return_X_y=True)
    X, y = X[:300] / 16, y[:300]
    clf = GolgiClassifier((16,), **FAST)
    alone = cross_val_score(clf, X, y, cv=3)
    with parallel_backend("threading", n_jobs=2):  # seeds are per thread: no interleaving
        threaded = cross_val_score(clf, X, y, cv=3)
    assert_allclose(threaded, alone, rtol=1e-12)


def test_transformer_in_a_pipeline_and_set_output():
    X, y = load_digits(return_X_y=True)
    X, y = X[:600], y[:600]
    pipe = make_pipeline(StandardScaler(), GolgiTransformer((32, 16), **FAST),
                         LogisticRegression(max_iter=500))
    assert pipe.fit(X, y).score(X, y) > 0.8
    pd = pytest.importorskip("pandas")
    ae = GolgiTransformer((8, 3), **FAST).set_output(transform="pandas")
    codes = ae.fit_transform(pd.DataFrame(X[:, :10], columns=[f"p{i}" for i in range(10)]))
    assert list(codes.columns) == ["golgitransformer0", "golgitransformer1",
                                   "golgitransformer2"]


def test_clone_gives_an_unfitted_estimator_with_the_same_params(blobs):
    clf = fitted("classifier", blobs)
    fresh = clone(clf)
    assert fresh.get_params() == clf.get_params()
    assert not hasattr(fresh, "classes_") and not hasattr(fresh, "model_")


# ----- inputs ----------------------------------------------------------------------------------
class ArrayLike:
    """Not an array: only ``__array__``."""

    def __init__(self, a):
        self.a = a

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.a, dtype=dtype)


@pytest.mark.parametrize("kind", KINDS)
def test_any_array_like_input_gives_the_same_results(kind, blobs, regression):
    est = fitted(kind, regression if kind == "regressor" else blobs)
    X = (regression if kind == "regressor" else blobs)[0][:40]
    want = outputs(est, X)
    readonly = X.copy()
    readonly.setflags(write=False)
    strided = np.repeat(X, 2, axis=0)[::2]
    for data in (X.tolist(), readonly, np.asfortranarray(X), strided, ArrayLike(X)):
        got = outputs(est, data)
        same_outputs(want, got)
        assert all(isinstance(g, np.ndarray) for g in got)
    x32 = X.astype(np.float32)  # other dtypes are converted to the model's
    same_outputs(outputs(est, x32.astype(np.float64)), outputs(est, x32))
    assert outputs(est, X)[-1].dtype == np.float64


def test_fit_on_lists_ints_and_string_labels():
    X = [[0, 0], [0, 1], [5, 5], [5, 6]] * 5
    y = ["a", "a", "b", "b"] * 5
    clf = GolgiClassifier((8,), **FAST).fit(X, y)
    assert clf.classes_.tolist() == ["a", "b"]
    assert clf.predict([[0, 0], [5, 5]]).tolist() == ["a", "b"]


def test_pandas_frames_keep_their_column_names(blobs):
    pd = pytest.importorskip("pandas")
    X, y = blobs
    df = pd.DataFrame(X, columns=["w", "x", "y", "z"])
    labels = pd.Series(np.array(["red", "green", "blue"])[y], name="colour")
    clf = GolgiClassifier((16,), **FAST).fit(df, labels)
    assert clf.feature_names_in_.tolist() == ["w", "x", "y", "z"]
    assert clf.score(df, labels) > 0.9
    with pytest.warns(UserWarning, match="feature names"):  # fitted with names, given none
        assert_array_equal(clf.predict(df), clf.predict(X))
    with pytest.raises(ValueError, match="feature names"):
        clf.predict(df.rename(columns={"w": "v"}))
    reg = GolgiRegressor((16,), **FAST).fit(df, pd.Series(X[:, 0] - X[:, 1]))
    assert reg.feature_names_in_.tolist() == ["w", "x", "y", "z"]
    assert reg.predict(df).shape == (len(df),)


def test_float32_models_give_float64_results(blobs):
    X, y = blobs
    clf = GolgiClassifier((16,), dtype="float32", **FAST).fit(X, y)
    assert clf.model_.layers[0].params["W"].value.dtype == np.float32
    assert clf.predict_proba(X).dtype == np.float64
    assert clf.score(X, y) > 0.9


# ----- pickling ------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_pickle_and_joblib_round_trips(kind, blobs, regression):
    data = regression if kind == "regressor" else blobs
    est = fitted(kind, data)
    X = data[0]
    back = pickle.loads(pickle.dumps(est))
    same_outputs(outputs(est, X), outputs(back, X), rtol=1e-12)
    assert back.get_params() == est.get_params() and back.n_iter_ == est.n_iter_
    buf = io.BytesIO()
    joblib.dump(est, buf)
    buf.seek(0)
    same_outputs(outputs(est, X), outputs(joblib.load(buf), X), rtol=1e-12)
    same_outputs(outputs(est, X), outputs(copy.deepcopy(est), X), rtol=1e-12)


def test_pickled_weights_are_a_pickle_free_checkpoint(blobs):
    clf = fitted("classifier", blobs)
    raw, with_solver = clf.__getstate__()["_checkpoint"]
    with np.load(io.BytesIO(raw), allow_pickle=False) as f:
        files = set(f.files)
    assert with_solver and "meta/json" in files and "param/out/W" in files
    assert any(k.startswith("solver/") for k in files)


def test_unfitted_estimators_pickle():
    est = pickle.loads(pickle.dumps(GolgiRegressor(hidden_layer_sizes=(3,))))
    assert est.hidden_layer_sizes == (3,) and not hasattr(est, "model_")


def test_partial_fit_continues_after_unpickling_as_if_never_stopped(blobs):
    X, y = blobs
    a = GolgiClassifier((16,), **FAST)
    b = clone(a)
    for _ in range(3):
        a.partial_fit(X, y, classes=[0, 1, 2])
    b.partial_fit(X, y, classes=[0, 1, 2])
    b = pickle.loads(pickle.dumps(b))  # solver state (Adam's moments, step) included
    b = pickle.loads(pickle.dumps(b))  # and kept by an estimator that was only unpickled
    b.partial_fit(X, y).partial_fit(X, y)
    assert b.n_iter_ == a.n_iter_ == 3
    assert_allclose(b.loss_curve_, a.loss_curve_, rtol=1e-9)
    same_outputs(outputs(a, X), outputs(b, X))


def test_unpickling_rebuilds_the_fitted_architecture_not_changed_params(blobs):
    X, y = blobs
    clf = GolgiClassifier((16,), **FAST).fit(X, y)
    clf.set_params(hidden_layer_sizes=(5, 5), activation="tanh")
    back = pickle.loads(pickle.dumps(clf))
    assert [la.name for la in back.model_.layers] == ["fc1", "out"]
    assert back.get_params()["hidden_layer_sizes"] == (5, 5)
    same_outputs(outputs(clf, X), outputs(back, X), rtol=1e-12)


# ----- threads -------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_predict_from_a_thread_pool_agrees_with_one_thread(kind, blobs, regression):
    data = regression if kind == "regressor" else blobs
    est = fitted(kind, data)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 4)) * 3
    sizes = [1, 2, 7, 16, 33, 100, 400]
    jobs = [(int(s), int(rng.integers(0, 400 - s + 1))) for s in rng.choice(sizes, 120)]
    want = [outputs(est, X[i : i + s]) for s, i in jobs]
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda job: outputs(est, X[job[1] : job[1] + job[0]]), jobs))
    for w, g in zip(want, got, strict=True):
        same_outputs(w, g)


def test_threads_see_the_weights_of_later_training(blobs):
    X, y = blobs
    clf = GolgiClassifier((16,), random_state=0).partial_fit(X, y, classes=[0, 1, 2])
    with ThreadPoolExecutor(max_workers=1) as pool:
        before = pool.submit(clf.predict_proba, X).result()
        clf.partial_fit(X, y)
        after = pool.submit(clf.predict_proba, X).result()
    assert not np.allclose(before, after)
    assert_allclose(after, clf.predict_proba(X), rtol=1e-12)


# ----- training ------------------------------------------------------------------------------
def test_fit_is_reproducible_from_random_state_and_varies_without(blobs):
    X, y = blobs
    a = GolgiClassifier((16,), **FAST).fit(X, y).predict_proba(X)
    b = GolgiClassifier((16,), **FAST).fit(X, y).predict_proba(X)
    assert_allclose(a, b, rtol=1e-12)
    free = {**FAST, "random_state": None}
    c = GolgiClassifier((16,), **free).fit(X, y).predict_proba(X)
    d = GolgiClassifier((16,), **free).fit(X, y).predict_proba(X)
    assert not np.allclose(c, d)


def test_warm_start_continues_and_refuses_other_classes(blobs):
    X, y = blobs
    clf = GolgiClassifier((16,), warm_start=True, **{**FAST, "epochs": 5}).fit(X, y)
    w = clf.model_.layers[0].params["W"].value.copy()
    clf.fit(X, y)
    assert clf.n_iter_ == 10 and len(clf.loss_curve_) == 10
    assert not np.allclose(w, clf.model_.layers[0].params["W"].value)
    with pytest.raises(ValueError, match="warm_start"):
        clf.fit(X, y % 2)
    cold = GolgiClassifier((16,), **{**FAST, "epochs": 5}).fit(X, y)
    cold.fit(X, y % 2)
    assert cold.n_iter_ == 5 and cold.classes_.tolist() == [0, 1]


def test_partial_fit_needs_classes_first_and_known_labels(blobs):
    X, y = blobs
    with pytest.raises(ValueError, match="classes"):
        GolgiClassifier().partial_fit(X, y)
    clf = GolgiClassifier((8,), random_state=0).partial_fit(X[:10], y[:10], classes=[0, 1, 2])
    with pytest.raises(ValueError, match=r"not in classes_"):
        clf.partial_fit(X, y + 5)
    with pytest.raises(ValueError, match="differs"):
        clf.partial_fit(X, y, classes=[0, 1])


def test_zero_sample_weights_drop_samples(regression):
    X, y = regression
    keep = np.arange(len(X)) % 3 != 0
    params = {**FAST, "batch_size": 1000, "shuffle": False}  # one batch: same steps
    a = GolgiRegressor((8,), **params).fit(X, y, sample_weight=keep * 2.5)
    b = GolgiRegressor((8,), **params).fit(X[keep], y[keep])
    assert_allclose(a.predict(X), b.predict(X), rtol=1e-7, atol=1e-9)


def test_verbose_prints_a_line_per_epoch(blobs, capsys):
    X, y = blobs
    GolgiClassifier((4,), epochs=2, verbose=1, random_state=0).fit(X, y)
    out = capsys.readouterr()
    assert (out.out + out.err).count("loss") == 2


@pytest.mark.parametrize(
    ("param", "value", "error"),
    [
        ("epochs", 0, ValueError),
        ("batch_size", 1.5, ValueError),
        ("hidden_layer_sizes", (10, 0), ValueError),
        ("activation", "swish!", ValueError),
        ("solver", "newton", ValueError),
        ("solver", 3, TypeError),
        ("learning_rate", -1.0, ValueError),
        ("alpha", -1.0, ValueError),
        ("dtype", "float16", ValueError),
        ("model", "mlp", TypeError),
    ],
)
def test_bad_hyperparameters_fail_in_fit_naming_the_parameter(param, value, error, blobs):
    X, y = blobs
    clf = GolgiClassifier(**{param: value})  # __init__ only stores
    with pytest.raises(error, match=param):
        clf.fit(X, y)


def test_solver_callable_and_activation_op(blobs):
    import functools

    X, y = blobs
    solver = functools.partial(gc.NewMomentum, gc.WithLearnRate(0.05))
    clf = GolgiClassifier((16,), activation=gc.Tanh, solver=solver, epochs=30, batch_size=16,
                          random_state=0).fit(X, y)
    assert clf.score(X, y) > 0.9
    assert type(clf._network.solver).__name__ == "Momentum"


# ----- custom models -------------------------------------------------------------------------
def two_layers(n_features, n_outputs):
    return G.ComposeSeq(
        G.L(G.ConsFC(G.WithShape(12), G.WithName("hidden"), G.WithActivation(gc.Tanh))),
        G.L(G.ConsDropout(G.WithProbability(0.1))),
        G.L(G.ConsFC(G.WithShape(n_outputs), G.WithName("logits"))),
    )


def built_float32(n_features, n_outputs):
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, n_features), gc.WithName("pixels"))
    return G.ComposeSeq(x, G.L(G.ConsFC(G.WithShape(n_outputs), G.WithName("linear"))))


def encoder_decoder(n_features):
    enc = G.ComposeSeq(G.L(G.ConsFC(G.WithShape(3), G.WithName("squeeze"))))
    dec = G.ComposeSeq(G.L(G.ConsFC(G.WithShape(n_features), G.WithName("expand"))))
    return enc, dec


def test_a_model_callable_builds_the_network(blobs):
    X, y = blobs
    clf = GolgiClassifier(model=two_layers, **FAST).fit(X, y)
    assert [la.name for la in clf.model_.layers][::2] == ["hidden", "logits"]
    assert clf.score(X, y) > 0.9
    back = pickle.loads(pickle.dumps(clf))
    same_outputs(outputs(clf, X), outputs(back, X), rtol=1e-12)
    reg = GolgiRegressor(model=built_float32, **FAST).fit(X, X[:, :2])
    assert reg.model_.input.name == "pixels" and reg.predict(X).dtype == np.float64
    ae = GolgiTransformer(model=encoder_decoder, **FAST).fit(X)
    assert ae.n_components_ == 3 and ae.inverse_transform(ae.transform(X)).shape == X.shape


def test_a_model_with_the_wrong_output_size_is_refused(blobs):
    X, y = blobs
    with pytest.raises(gc.ShapeError, match=r"model: .* \(None, 3\)"):
        GolgiClassifier(model=lambda n_in, n_out: G.ComposeSeq(G.L(G.ConsFC(G.WithShape(2)))))\
            .fit(X, y)


def test_transformer_codes_inverse_and_score(blobs):
    X, _ = blobs
    X = StandardScaler().fit_transform(X)
    ae = GolgiTransformer((16, 2), **FAST).fit(X)
    codes = ae.transform(X)
    assert codes.shape == (len(X), 2) and ae.n_components_ == 2
    assert ae.inverse_transform(codes).shape == X.shape
    assert ae.score(X) < 0 and ae.score(X) > -1.0
    with pytest.raises(ValueError, match="n_components_"):
        ae.inverse_transform(X)


# ----- the optional dependency ---------------------------------------------------------------
def test_a_missing_sklearn_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # `import sklearn` now fails
    with pytest.raises(ImportError, match=r"pip install 'golgi-dl\[sklearn\]'"):
        gsk.GolgiClassifier  # noqa: B018
    with pytest.raises(AttributeError, match="NoSuchThing"):
        gsk.NoSuchThing  # noqa: B018


def test_import_golgi_does_not_import_sklearn():
    code = "import sys, golgi, golgi.sklearn; print('sklearn' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True)
    assert out.stdout.strip() == "False"
