"""golgi.save / golgi.load: round trips, bit-identical resumed training, strict and safe loading."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import golgi as G
import graphcore as gc


def _mlp(seed: int, hidden: int = 8, dt=gc.Float64, dropout: bool = False):
    gc.SetSeed(seed)
    g = gc.NewGraph()
    x = gc.NewMatrix(g, dt, gc.WithShape(None, 6), gc.WithName("x"))
    y = gc.NewMatrix(g, dt, gc.WithShape(None, 3), gc.WithName("y"))
    drop = [G.L(G.ConsDropout, G.WithProbability(0.5), G.WithName("drop"))] if dropout else []
    net = G.ComposeSeq(
        x,
        G.L(G.ConsFC, G.WithShape(hidden), G.WithName("h"), G.WithActivation(gc.Tanh)),
        *drop,
        G.L(G.ConsLayerNorm, G.WithName("ln")),
        G.L(G.ConsFC, G.WithShape(3), G.WithName("out")),
    )
    loss = G.CrossEntropy(net.out, y)
    gc.Grad(loss, *net.model())
    vm = gc.NewTapeMachine(g, gc.BindDualValues(*net.model()))
    return x, y, net, loss, vm


def _batches(n: int):
    rng = np.random.default_rng(42)
    for _ in range(n):
        xb = rng.standard_normal((10, 6))
        yb = np.eye(3)[rng.integers(0, 3, 10)]
        yield xb, yb


def _train(x, y, net, vm, solver, batches):
    for xb, yb in batches:
        gc.Let(x, xb)
        gc.Let(y, yb)
        vm.run_all()
        solver.step(gc.NodesToValueGrads(net.model()))


def test_round_trip_is_bit_identical(tmp_path):
    _, _, a, _, _ = _mlp(0)
    _, _, b, _, _ = _mlp(1)
    G.save(a, tmp_path / "m.npz")
    meta = G.load(b, tmp_path / "m.npz")
    for p, q in zip(a.model(), b.model(), strict=True):
        assert np.array_equal(p.value, q.value)
    assert [d["name"] for d in meta["model"]] == ["h", "ln", "out"]
    assert meta["model"][0]["config"]["activation"] == "Tanh"
    assert meta["golgi_version"] == G.__version__ and meta["solver"] is None
    assert os.listdir(tmp_path) == ["m.npz"]  # no temporary file left behind
    with np.load(tmp_path / "m.npz", allow_pickle=False) as f:
        assert sorted(f.files) == [
            "meta/json",
            "param/h/W",
            "param/h/b",
            "param/ln/beta",
            "param/ln/gamma",
            "param/out/W",
            "param/out/b",
        ]


@pytest.mark.parametrize("dropout", [False, True])
@pytest.mark.parametrize(
    "make_solver",
    [
        lambda: gc.NewRMSPropSolver(gc.WithLearnRate(0.01)),
        lambda: gc.NewAdamSolver(gc.WithLearnRate(0.01)),
    ],
)
def test_save_load_continue_is_bit_identical_to_no_interruption(tmp_path, make_solver, dropout):
    data = list(_batches(12))
    x, y, net, loss, vm = _mlp(0, dropout=dropout)
    solver = make_solver()
    _train(x, y, net, vm, solver, data[:5])
    G.save(net, tmp_path / "ckpt.npz", solver=solver, extra={"epoch": 5})
    _train(x, y, net, vm, solver, data[5:])
    straight = [np.array(n.value, copy=True) for n in net.model()]

    # other initial weights, other dropout masks, fresh solver state
    x2, y2, net2, loss2, vm2 = _mlp(123, dropout=dropout)
    solver2 = make_solver()
    meta = G.load(net2, tmp_path / "ckpt.npz", solver=solver2)
    assert meta["extra"] == {"epoch": 5} and solver2.num_steps == 5
    _train(x2, y2, net2, vm2, solver2, data[5:])
    for a, b in zip(straight, net2.model(), strict=True):
        assert np.array_equal(a, b.value)
    assert float(loss.value) == float(loss2.value)


def test_loading_another_architecture_lists_every_problem_and_changes_nothing(tmp_path):
    _, _, small, _, _ = _mlp(0, hidden=8)
    G.save(small, tmp_path / "small.npz")
    gc.SetSeed(5)
    g = gc.NewGraph()
    x = gc.NewMatrix(g, gc.Float64, gc.WithShape(None, 6), gc.WithName("x"))
    other = G.ComposeSeq(
        x,
        G.L(G.ConsFC, G.WithShape(4), G.WithName("h")),
        G.L(G.ConsFC, G.WithShape(3), G.WithName("z")),
    )
    before = [np.array(n.value, copy=True) for n in other.model()]
    with pytest.raises(G.CheckpointError) as e:
        G.load(other, tmp_path / "small.npz")
    msg = str(e.value)
    assert "small.npz" in msg
    assert "missing learnable: z/W, z/b" in msg
    assert "unexpected learnable: ln/gamma, ln/beta, out/W, out/b" in msg
    assert "learnable h/W: the model has shape (6, 4), the file (6, 8)" in msg
    assert "the file's model: h (FC), ln (LayerNorm), out (FC)" in msg
    for a, n in zip(before, other.model(), strict=True):
        assert np.array_equal(a, n.value)


def test_dtype_mismatch_and_missing_solver_state(tmp_path):
    _, _, a, _, _ = _mlp(0)
    G.save(a, tmp_path / "f64.npz")
    _, _, b32, _, _ = _mlp(0, dt=gc.Float32)
    with pytest.raises(G.CheckpointError, match="learnable h/W: the model is float32, the file"):
        G.load(b32, tmp_path / "f64.npz")
    with pytest.raises(G.CheckpointError, match="no solver state"):
        G.load(a, tmp_path / "f64.npz", solver=gc.NewRMSPropSolver())


def test_solver_of_another_kind_is_refused(tmp_path):
    x, y, net, _, vm = _mlp(0)
    s = gc.NewRMSPropSolver()
    _train(x, y, net, vm, s, _batches(1))
    G.save(net, tmp_path / "c.npz", solver=s)
    with pytest.raises(G.CheckpointError, match="RMSPropSolver state, the solver given is Adam"):
        G.load(net, tmp_path / "c.npz", solver=gc.NewAdamSolver())


def test_truncated_file_names_the_file(tmp_path):
    _, _, a, _, _ = _mlp(0)
    path = tmp_path / "t.npz"
    G.save(a, path)
    raw = path.read_bytes()
    for cut in (len(raw) // 2, 10):
        path.write_bytes(raw[:cut])
        with pytest.raises(G.CheckpointError, match=r"t\.npz is truncated or damaged"):
            G.load(a, path)


def test_pickled_objects_are_refused(tmp_path):
    _, _, a, _, _ = _mlp(0)
    meta = np.frombuffer(json.dumps({"format": "golgi-checkpoint"}).encode(), np.uint8)
    evil = np.array([{"x": 1}], dtype=object)
    np.savez(tmp_path / "p.npz", **{"meta/json": meta, "param/h/W": evil})
    with pytest.raises(G.CheckpointError, match="refuses to load pickled data"):
        G.load(a, tmp_path / "p.npz")
    np.save(tmp_path / "q.npy", evil, allow_pickle=True)
    with pytest.raises(G.CheckpointError, match="pickled"):
        G.load(a, tmp_path / "q.npy")


def test_not_a_checkpoint(tmp_path):
    _, _, a, _, _ = _mlp(0)
    np.savez(tmp_path / "plain.npz", w=np.zeros(3))
    with pytest.raises(G.CheckpointError, match="not a golgi checkpoint"):
        G.load(a, tmp_path / "plain.npz")
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        G.load(a, tmp_path / "nope.npz")


def test_saving_overwrites_atomically_and_a_dict_of_nodes_works(tmp_path):
    _, _, a, _, _ = _mlp(0)
    _, _, b, _, _ = _mlp(1)
    path = tmp_path / "m.npz"
    G.save(a, path)
    G.save(b, path)  # replaces the first file whole
    G.load(a, path)
    assert all(np.array_equal(p.value, q.value) for p, q in zip(a.model(), b.model(), strict=True))
    nodes = a.named_learnables()
    G.save(nodes, tmp_path / "d.npz")
    G.load(dict(nodes), tmp_path / "d.npz")


def _dropout_losses(seed: int, steps: int = 4) -> list[float]:
    x, y, net, loss, vm = _mlp(seed, dropout=True)
    solver = gc.NewAdamSolver(gc.WithLearnRate(0.01))
    out = []
    for batch in _batches(steps):
        _train(x, y, net, vm, solver, [batch])
        out.append(float(loss.value))
    return out


def test_dropout_generator_state_is_saved_and_seeds_still_reproduce(tmp_path):
    assert _dropout_losses(3) == _dropout_losses(3)  # same SetSeed, same masks, bit for bit
    assert _dropout_losses(3) != _dropout_losses(4)
    _, _, net, _, _ = _mlp(0, dropout=True)
    rng_state = net.state()["drop/rng"]
    assert rng_state.dtype == np.uint64 and rng_state.shape == (6,)
    G.save(net, tmp_path / "d.npz")
    with np.load(tmp_path / "d.npz", allow_pickle=False) as f:
        assert np.array_equal(f["state/drop/rng"], rng_state)
    meta = G.load(net, tmp_path / "d.npz")
    assert meta["model"][1]["state"] == {"rng": [[6], "uint64"]}
    _, _, plain, _, _ = _mlp(0)
    with pytest.raises(G.CheckpointError, match="unexpected state: drop/rng"):
        G.load(plain, tmp_path / "d.npz")


def test_saved_file_gets_the_usual_permissions(tmp_path):
    _, _, a, _, _ = _mlp(0)
    old = os.umask(0o027)
    try:
        G.save(a, tmp_path / "m.npz")
    finally:
        os.umask(old)
    assert (tmp_path / "m.npz").stat().st_mode & 0o777 == 0o640  # 0o666 & ~umask, not 0o600


def test_saving_into_a_missing_folder_names_the_path(tmp_path):
    _, _, a, _, _ = _mlp(0)
    path = tmp_path / "no" / "such" / "m.npz"
    with pytest.raises(FileNotFoundError) as e:
        G.save(a, path)
    msg = str(e.value)
    assert str(path) in msg and "does not exist" in msg and ".tmp" not in msg
    (tmp_path / "dir.npz").mkdir()
    with pytest.raises(OSError) as e:
        G.save(a, tmp_path / "dir.npz")  # a folder where the file should go
    assert str(tmp_path / "dir.npz") in str(e.value) and ".tmp" not in str(e.value)
    assert sorted(os.listdir(tmp_path)) == ["dir.npz"]  # the temporary file is gone
