"""pytest setup shared by the tests and the doctests of graphcore and golgi."""

try:  # numba is the optional ``fast`` extra: without it, its kernels' doctests cannot run
    import numba  # noqa: F401
except ImportError:
    collect_ignore = ["graphcore/kernels/compiled.py"]
