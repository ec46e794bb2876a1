"""golgi networks as scikit-learn estimators: ``GolgiClassifier``, ``GolgiRegressor`` and
``GolgiTransformer`` (an autoencoder; ``transform`` gives the code layer).

They follow scikit-learn's rules (they pass ``check_estimator``), so they work in pipelines,
grid searches, cross-validation, and with pickle and joblib. Install the extra:
``pip install 'golgi-dl[sklearn]'``. ``import golgi`` does not import scikit-learn; this
module imports it when an estimator is first used.

Example:
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.model_selection import cross_val_score
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from golgi.sklearn import GolgiClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = GolgiClassifier(epochs=20, batch_size=32, learning_rate=0.01, random_state=0)
    >>> pipe = make_pipeline(StandardScaler(), clf)
    >>> bool(cross_val_score(pipe, X[:500], y[:500], cv=3).mean() > 0.85)
    True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .classifier import GolgiClassifier
    from .regressor import GolgiRegressor
    from .transformer import GolgiTransformer

__all__ = ["GolgiClassifier", "GolgiRegressor", "GolgiTransformer"]

INSTALL_HINT = "pip install 'golgi-dl[sklearn]'"


def __getattr__(name: str) -> Any:
    # the estimators subclass scikit-learn's, so they are defined when first asked for
    if name not in __all__:
        raise AttributeError(f"module 'golgi.sklearn' has no attribute {name!r}")
    try:
        import sklearn  # noqa: F401
    except ImportError as e:
        raise ImportError(
            f"golgi.sklearn.{name} needs scikit-learn, which is not installed: {INSTALL_HINT}"
        ) from e
    from .classifier import GolgiClassifier
    from .regressor import GolgiRegressor
    from .transformer import GolgiTransformer

    return {"GolgiClassifier": GolgiClassifier, "GolgiRegressor": GolgiRegressor,
            "GolgiTransformer": GolgiTransformer}[name]


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
