"""Library manners: importing prints nothing, warns nothing and pulls in no optional extra;
the old ``golgi.train`` path warns that it is deprecated."""

from __future__ import annotations

import subprocess
import sys

OPTIONAL = ["numba", "onnx", "onnxruntime", "sklearn", "mpi4py", "matplotlib", "tqdm", "torch"]


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, timeout=120
    )


def test_import_is_silent_and_imports_no_optional_extra():
    r = _run(
        "import sys, graphcore, golgi, golgi.sklearn, golgi.onnx, graphcore.onnx\n"
        f"print(sorted(m for m in {OPTIONAL!r} if m in sys.modules))"
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == "[]\n" and r.stderr == ""


def test_the_old_train_module_warns_that_it_is_deprecated():
    r = _run("import golgi.train")
    assert r.returncode != 0 and "DeprecationWarning: golgi.train is deprecated" in r.stderr
    ok = _run(
        "import warnings\nwarnings.simplefilter('ignore', DeprecationWarning)\n"
        "import golgi, golgi.train\nassert golgi.train.fit is golgi.fit"
    )
    assert ok.returncode == 0, ok.stderr
