"""scikit-learn's own estimator checks (all of them, default parameters) on golgi's estimators.

No check is marked as an expected failure: a failing check fails the test.
"""

from __future__ import annotations

import pytest

pytest.importorskip("sklearn")

from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from golgi.sklearn import GolgiClassifier, GolgiRegressor, GolgiTransformer  # noqa: E402


@parametrize_with_checks([GolgiClassifier(), GolgiRegressor(), GolgiTransformer()])
def test_sklearn_check(estimator, check):
    check(estimator)
