"""pytest setup shared by the tests and the doctests of graphcore and golgi: modules of
optional extras that are not installed are not collected (their doctests need them)."""

import importlib.util

collect_ignore = []
if importlib.util.find_spec("numba") is None:  # the `fast` extra
    collect_ignore += ["graphcore/kernels/compiled", "graphcore/kernels/jit.py"]
if importlib.util.find_spec("sklearn") is None:  # the `sklearn` extra
    collect_ignore.append("golgi/sklearn")
if importlib.util.find_spec("onnx") is None:  # the `onnx` extra
    collect_ignore += ["graphcore/onnx/export.py", "graphcore/onnx/importer.py", "golgi/onnx.py"]
