"""pytest setup shared by the tests and the doctests of graphcore and golgi."""

try:  # numba is the optional ``fast`` extra: without it, its kernels' doctests cannot run
    import numba  # noqa: F401
except ImportError:
    collect_ignore = ["graphcore/kernels/compiled.py"]

try:  # onnx is the optional ``onnx`` extra: without it, the ONNX converters' doctests cannot run
    import onnx  # noqa: F401
except ImportError:
    collect_ignore = [
        *globals().get("collect_ignore", []),
        "graphcore/onnx/export.py",
        "graphcore/onnx/importer.py",
        "golgi/onnx.py",
    ]
