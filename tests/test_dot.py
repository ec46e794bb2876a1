"""Graphviz export: clusters, labels, escaping, and rendering with and without ``dot``."""

import re
import shutil
import subprocess

import numpy as np
import pytest

import graphcore as gc
from graphcore import dot as dotmod


def _mlp():
    g = gc.NewGraph("mlp")
    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 3), gc.WithName("x"))
    y = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 2), gc.WithName("y"))
    w = gc.NewMatrix(
        g, gc.Float64, gc.WithShape(3, 2), gc.WithName("w"), gc.WithValue(np.ones((3, 2)))
    )
    b = gc.NewMatrix(
        g, gc.Float64, gc.WithShape(1, 2), gc.WithName("b"), gc.WithValue(np.zeros((1, 2)))
    )
    h = gc.Rectify(gc.Add(gc.Mul(x, w), b))
    out = gc.SoftMax(h)
    cost = gc.Neg(gc.Mean(gc.Sum(gc.HadamardProd(y, gc.Log(out)), 1)))
    grads = gc.Grad(cost, w, b)
    return g, dict(x=x, y=y, w=w, b=b, h=h, out=out, cost=cost, grads=grads)


def _cluster_of(text: str, node: gc.Node) -> str:
    """The name of the cluster whose body declares ``node``."""
    current = None
    for line in text.splitlines():
        m = re.match(r"\s*subgraph (cluster_\w+)", line)
        if m:
            current = m.group(1)
        if re.match(rf"\s*n{node.id} \[", line):
            return current
    raise AssertionError(f"node {node.name} not declared")


def test_clusters_and_classification():
    g, n = _mlp()
    text = gc.ToDot(g)
    assert text.startswith('digraph "mlp" {') and text.rstrip().endswith("}")
    for key in ("data", "learnable", "constant", "forward", "gradient"):
        assert f"subgraph cluster_{key} {{" in text
    assert _cluster_of(text, n["x"]) == "cluster_data"
    assert _cluster_of(text, n["y"]) == "cluster_data"
    assert _cluster_of(text, n["w"]) == "cluster_learnable"
    assert _cluster_of(text, n["b"]) == "cluster_learnable"
    assert _cluster_of(text, n["cost"]) == "cluster_forward"
    # the backward pass reads h, but h stays a forward op
    assert _cluster_of(text, n["h"]) == "cluster_forward"
    for d in n["grads"]:
        assert _cluster_of(text, d) == "cluster_gradient"
    groups = dotmod.classify(g)
    assert all(c.is_constant for c in groups["constant"])
    assert {m.op.name for m in groups["gradient"]} >= {"RectifyGrad", "LogSoftMaxGrad", "MatMul"}
    # every gradient op is an ancestor of a .deriv node and of no forward root
    fwd = {id(m) for m in gc.graph.ancestors([n["cost"]])}
    assert not any(id(m) in fwd for m in groups["gradient"])
    # every node of the graph (plus the constants ops made) is drawn exactly once
    drawn = re.findall(r"^\s+n(\d+) \[label=", text, flags=re.M)
    assert len(drawn) == len(set(drawn)) == sum(len(v) for v in groups.values())


def test_without_grad_no_gradient_cluster_and_init_is_learnable():
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 4), gc.WithName("x"))
    w = gc.NewMatrix(
        g,
        gc.Float32,
        gc.WithShape(4, 1),
        gc.WithName("w"),
        gc.WithInit(lambda dt, shape: np.zeros(shape, dt.np)),
    )
    v = gc.NewVector(g, gc.Float32, gc.WithName("v"), gc.WithValue([1.0]))
    gc.Sum(gc.Mul(x, w) + v)
    text = gc.ToDot(g)
    assert "cluster_gradient" not in text
    assert _cluster_of(text, w) == "cluster_learnable"
    assert _cluster_of(text, v) == "cluster_learnable"
    # Let does not make a data input a learnable
    gc.Let(x, np.ones((2, 4), np.float32))
    assert _cluster_of(gc.ToDot(g), x) == "cluster_data"


def test_labels_name_op_params_shape_dtype_and_edges():
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float32, gc.WithShape(None, 3), gc.WithName("x"))
    s = gc.SoftMax(x, axis=1)
    text = gc.ToDot(g)
    assert 'label="x\\n(None, 3) Float32"' in text
    assert f'label="{s.name}\\nSoftMax(axis=1)\\n(None, 3) Float32"' in text
    assert f"n{x.id} -> n{s.id};" in text


def test_escaping_of_quotes_backslashes_and_newlines():
    g = gc.NewGraph('say "hi"')
    x = gc.NewVector(g, gc.Float64, gc.WithShape(2), gc.WithName('a"b\\c\nd'))
    gc.Exp(x)
    text = gc.ToDot(g)
    assert text.startswith('digraph "say \\"hi\\"" {')
    assert 'label="a\\"b\\\\c\\nd\\n(2,) Float64"' in text
    # no raw newline or unescaped quote inside any label
    for label in re.findall(r'label="((?:[^"\\]|\\.)*)"', text):
        assert "\n" not in label


def test_to_dot_method_and_type_error():
    g, _ = _mlp()
    assert g.to_dot() == gc.ToDot(g)
    with pytest.raises(TypeError, match="ToDot: expected a Graph"):
        gc.ToDot("not a graph")


def test_render_svg_without_dot(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    g, _ = _mlp()
    assert dotmod.render_svg(g) is None
    assert g._repr_svg_() is None  # Jupyter then shows the text form


def test_render_svg_with_fake_dot(monkeypatch):
    seen = {}

    def fake_run(cmd, input, **kw):
        seen["cmd"], seen["input"] = cmd, input
        return subprocess.CompletedProcess(cmd, 0, stdout="<svg>ok</svg>", stderr="")

    monkeypatch.setattr(shutil, "which", lambda name: "/opt/bin/dot" if name == "dot" else None)
    monkeypatch.setattr(subprocess, "run", fake_run)
    g, _ = _mlp()
    assert g._repr_svg_() == "<svg>ok</svg>"
    assert seen["cmd"] == ["/opt/bin/dot", "-Tsvg"]
    assert seen["input"] == gc.ToDot(g)


def test_render_svg_dot_failure_gives_none(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: "/opt/bin/dot")
    monkeypatch.setattr(
        subprocess,
        "run",
        lambda cmd, **kw: subprocess.CompletedProcess(cmd, 1, stdout="", stderr="syntax error"),
    )
    assert dotmod.render_svg(gc.NewGraph()) is None

    def boom(cmd, **kw):
        raise OSError("exec format error")

    monkeypatch.setattr(subprocess, "run", boom)
    assert dotmod.render_svg(gc.NewGraph()) is None


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz dot not installed")
def test_render_svg_with_real_dot():
    g, _ = _mlp()
    svg = dotmod.render_svg(g)
    assert svg is not None and "<svg" in svg and "gradient ops" in svg


def test_repr_pretty_gives_dot_text():
    class P:
        def __init__(self):
            self.out = []

        def text(self, s):
            self.out.append(s)

    g, _ = _mlp()
    p = P()
    g._repr_pretty_(p, False)
    assert p.out[0].startswith("Graph('mlp',") and 'digraph "mlp"' in p.out[0]
    p = P()
    g._repr_pretty_(p, True)
    assert p.out == [repr(g)]
