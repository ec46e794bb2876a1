"""The ONNX converters are an optional extra: graphcore and golgi import without onnx, and a
conversion without it says which extra to install. These tests run with or without onnx."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import golgi as G
import graphcore as gc


def test_importing_graphcore_does_not_import_onnx():
    code = "import sys, graphcore, golgi; assert 'onnx' not in sys.modules, 'onnx imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_onnx_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` now raises ImportError
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 2), gc.WithName("x"))
    with pytest.raises(ImportError, match=r"ToONNX needs .*pip install 'golgi-dl\[onnx\]'"):
        gc.ToONNX(x * 2.0, None)
    with pytest.raises(ImportError, match=r"FromONNX needs .*golgi-dl\[onnx\]"):
        gc.FromONNX(b"")
    net = G.ComposeSeq(x, G.L(G.ConsFC(G.WithShape(3))))
    with pytest.raises(ImportError, match=r"golgi-dl\[onnx\]"):
        G.export_onnx(net, None)


def test_the_docs_list_every_row_of_the_op_table():
    text = (Path(__file__).resolve().parent.parent / "docs" / "interop.md").read_text()
    section = text[text.index("## ONNX"):]
    missing = [k for k in (*gc.onnx.EXPORTS, *gc.onnx.IMPORTS) if f"`{k}`" not in section]
    assert not missing, f"docs/interop.md's ONNX section does not list {missing}"
