"""Run notebooks top to bottom at full settings and save them with their outputs (make notebooks).

    python notebooks/execute.py                      # every notebooks/*.ipynb
    python notebooks/execute.py notebooks/05_*.ipynb # some

Each notebook runs in a kernel on this interpreter (a kernelspec written to a temporary
JUPYTER_PATH, so the golgi it imports is the one this Python sees), in the notebooks folder,
with matplotlib's inline backend (figures stored as PNG) and GOLGI_NB_SMALL unset: the full
data and epochs. The saved
file keeps the outputs but not the run's timing metadata, so a rerun changes only what the
code printed or drew. The test suite (tests/test_notebooks.py) runs the same notebooks on
small settings and saves nothing.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
KERNEL = "golgi-notebooks"
CELL_TIMEOUT_S = 1800


def kernelspec(root: Path) -> None:
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }), encoding="utf-8")  # fmt: skip


def execute(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    saved_kernel = nb.metadata.get("kernelspec")
    client = NotebookClient(
        nb, kernel_name=KERNEL, timeout=CELL_TIMEOUT_S, startup_timeout=120,
        record_timing=False, resources={"metadata": {"path": str(path.parent)}},
    )  # fmt: skip
    t0 = time.perf_counter()
    client.execute()
    # keep the notebook's own kernel name (python3), not this script's temporary one
    if saved_kernel is not None:
        nb.metadata["kernelspec"] = saved_kernel
    nb.metadata.get("language_info", {}).pop("version", None)  # no Python patch-level churn
    nbformat.write(nb, path)
    kib = path.stat().st_size / 1024
    print(f"{path.name}: {time.perf_counter() - t0:.0f} s, {kib:.0f} KiB", flush=True)


def main(argv: list[str]) -> None:
    paths = [Path(a) for a in argv] or sorted(HERE.glob("*.ipynb"))
    os.environ.pop("GOLGI_NB_SMALL", None)
    # the inline backend puts figures into the outputs (Agg, which the tests use, would not)
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    with tempfile.TemporaryDirectory() as folder:
        kernelspec(Path(folder))
        current = os.environ.get("JUPYTER_PATH")
        os.environ["JUPYTER_PATH"] = os.pathsep.join([folder, *([current] if current else [])])
        for path in paths:
            execute(path.resolve())


if __name__ == "__main__":
    main(sys.argv[1:])
