"""pytest: without scikit-learn installed, this package's doctests are skipped (its modules
import scikit-learn), so ``pytest --doctest-modules golgi`` passes either way."""

import importlib.util

collect_ignore_glob = [] if importlib.util.find_spec("sklearn") else ["*.py"]
