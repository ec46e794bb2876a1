"""The ``golgi`` command line, on tiny synthetic IDX files (no network)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest

import golgi as G
from golgi.cli import main
from tests.datasets_helpers import synthetic, write_dataset


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mnist")
    write_dataset(folder, synthetic(n_train=600, n_test=50))
    return str(folder)


def run(capsys, *argv):
    code = main(list(argv))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_train_mlp_prints_epochs_and_test_accuracy(capsys, data_dir):
    code, out, err = run(
        capsys,
        "train",
        "mlp",
        "--epochs",
        "2",
        "--limit",
        "500",
        "--data-dir",
        data_dir,
        "--batch-size",
        "64",
    )
    assert code == 0, err
    assert "MNIST: 500 training, 50 test samples" in out
    assert re.search(r"^epoch 2/2 - .*loss: .*train acc: .*test acc: ", out, re.M)
    assert re.search(r"^test accuracy: \d+\.\d\d%$", out, re.M)


def test_quiet_prints_only_the_result(capsys, data_dir):
    code, out, _ = run(
        capsys,
        "train",
        "mlp",
        "--epochs",
        "1",
        "--limit",
        "100",
        "--data-dir",
        data_dir,
        "--quiet",
        "--solver",
        "sgd",
    )
    assert code == 0 and re.fullmatch(r"test accuracy: \d+\.\d\d%\n", out)


def test_save_and_resume(capsys, tmp_path, data_dir):
    ckpt = str(tmp_path / "mlp.npz")
    common = ["--limit", "200", "--data-dir", data_dir, "--solver", "adam"]
    code, out, _ = run(capsys, "train", "mlp", "--epochs", "1", "--save", ckpt, *common)
    assert code == 0
    code, out, _ = run(
        capsys, "train", "mlp", "--epochs", "2", "--resume", ckpt, "--save", ckpt, *common
    )
    assert code == 0 and "after epoch 1" in out and "epoch 2/2" in out and "epoch 1/2" not in out
    # a checkpoint of another solver's state is refused in one line
    code, _, err = run(
        capsys,
        "train",
        "mlp",
        "--epochs",
        "3",
        "--resume",
        ckpt,
        "--limit",
        "200",
        "--data-dir",
        data_dir,
        "--solver",
        "rmsprop",
    )
    assert code == 2 and err.count("\n") == 1 and "AdamSolver" in err


@pytest.mark.parametrize(
    "argv, says",
    [
        (["train", "mlp", "--epochs", "0"], "positive integer"),
        (["train", "mlp", "--lr", "-1"], "positive number"),
        (["train", "mlp", "--solver", "lbfgs"], "invalid choice"),
        (["train", "cnn"], "invalid choice"),
        (["train"], "required"),
        (["fly"], "invalid choice"),
        (["train", "mlp", "--data-dir", "/nonexistent/mnist"], "/nonexistent/mnist"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(capsys, argv, says):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and says in err and "Traceback" not in err


def test_help_exits_0(capsys):
    code, out, _ = run(capsys, "train", "mlp", "--help")
    assert code == 0 and "--epochs" in out and "--limit" in out


def test_info(capsys):
    code, out, _ = run(capsys, "info")
    assert code == 0
    for word in ("golgi 0.", "numpy ", "scipy ", "python ", "BLAS", "CPUs", "data cache", "MNIST"):
        assert word in out


def test_autoencoder_writes_a_png(capsys, tmp_path, data_dir):
    pytest.importorskip("matplotlib")
    png = tmp_path / "ae.png"
    code, out, err = run(
        capsys,
        "train",
        "autoencoder",
        "--epochs",
        "1",
        "--limit",
        "200",
        "--data-dir",
        data_dir,
        "--png",
        str(png),
    )
    assert code == 0, err
    assert re.search(r"MSE \d\.\d+, BCE \d\.\d+", out)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_module_entry_point_has_no_traceback():
    r = subprocess.run(
        [sys.executable, "-m", "golgi.cli", "train", "mlp", "--batch-size", "x"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr and "--batch-size" in r.stderr


# ----- paths, seeds, divergence and Ctrl-C ---------------------------------------------------


def small(data_dir, *more):
    return ["--limit", "100", "--data-dir", data_dir, "--epochs", "1", *more]


def test_a_negative_seed_names_the_flag(capsys):
    code, out, err = run(capsys, "train", "mlp", "--seed", "-1")
    assert code == 2 and "--seed" in err and "non-negative" in err and err.count("\n") == 1


@pytest.mark.parametrize("model", ["mlp", "autoencoder"])
def test_a_folder_or_a_missing_folder_for_save_is_refused_before_training(
    capsys, tmp_path, data_dir, model
):
    for path, says in ((tmp_path, "is a folder"), (tmp_path / "no" / "m.npz", "does not exist")):
        args = small(data_dir, "--save", str(path))
        if model == "autoencoder":  # its PNG needs matplotlib, which this test does not
            args = [*args, "--png", ""]
        code, out, err = run(capsys, "train", model, *args)
        assert code == 2 and says in err and "--save" in err, err
        assert "MNIST" not in out and "Traceback" not in err  # refused before loading data


def test_bad_png_paths_are_refused_before_training(capsys, tmp_path, data_dir):
    pytest.importorskip("matplotlib")
    for path, says in (
        (tmp_path, "is a folder"),
        (tmp_path / "missing" / "a.png", "does not exist"),
        (tmp_path / "a.xyz", "cannot write .xyz"),
    ):
        code, out, err = run(capsys, "train", "autoencoder", *small(data_dir, "--png", str(path)))
        assert code == 2 and says in err and "--png" in err and "MNIST" not in out, err


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root writes anywhere")
def test_an_unwritable_folder_is_refused_before_training(capsys, tmp_path, data_dir):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code, _, err = run(capsys, "train", "mlp", *small(data_dir, "--save",
                                                          str(locked / "m.npz")))
    finally:
        locked.chmod(0o700)
    assert code == 2 and "cannot write" in err


def test_a_picture_that_cannot_be_written_keeps_the_model(capsys, tmp_path, data_dir,
                                                           monkeypatch):
    pytest.importorskip("matplotlib")
    import golgi.cli as cli

    def fail(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(cli, "_write_png", fail)
    ckpt = tmp_path / "ae.npz"
    code, _, err = run(capsys, "train", "autoencoder",
                       *small(data_dir, "--png", str(tmp_path / "ae.png"), "--save", str(ckpt)))
    assert code == 1 and "disk full" in err and str(ckpt) in err
    assert ckpt.exists()


def test_a_diverging_run_exits_1_and_saves_nothing_non_finite(capsys, tmp_path, data_dir):
    ckpt = tmp_path / "mlp.npz"
    code, _, err = run(capsys, "train", "mlp", "--limit", "300", "--data-dir", data_dir,
                       "--lr", "1e30", "--save", str(ckpt), "--quiet")
    assert code == 1 and "diverged" in err and "Traceback" not in err
    assert "no checkpoint was written yet" in err and not ckpt.exists()


def test_a_divergence_after_a_good_epoch_keeps_the_finite_checkpoint(capsys, tmp_path,
                                                                     data_dir, monkeypatch):
    import golgi.cli as cli

    real = cli._solver

    class Boom(G.Callback):
        def on_epoch_begin(self, epoch, logs):
            if epoch == 1:
                self.trainer.solver.learn_rate = 1e30

    monkeypatch.setattr(cli, "_progress_callbacks", lambda quiet, line: [Boom()])
    monkeypatch.setattr(cli, "_solver", real)
    ckpt = tmp_path / "mlp.npz"
    code, _, err = run(capsys, "train", "mlp", "--limit", "100", "--data-dir", data_dir,
                       "--epochs", "3", "--save", str(ckpt))
    assert code == 1 and "diverged" in err and "finite weights" in err
    with np.load(ckpt) as f:
        assert all(np.isfinite(f[k]).all() for k in f.files if k.startswith("param/"))


def test_ctrl_c_in_the_first_epoch_names_no_checkpoint_that_does_not_exist(
    capsys, tmp_path, data_dir, monkeypatch
):
    import golgi.cli as cli

    class CtrlC(G.Callback):
        def on_batch_end(self, batch, logs):
            raise KeyboardInterrupt

    earlier = tmp_path / "earlier.npz"
    code, _, _ = run(capsys, "train", "mlp", *small(data_dir, "--save", str(earlier), "--quiet"))
    assert code == 0 and earlier.exists()
    monkeypatch.setattr(cli, "_progress_callbacks", lambda quiet, line: [CtrlC()])
    ckpt = tmp_path / "mlp.npz"
    code, _, err = run(capsys, "train", "mlp", *small(data_dir, "--save", str(ckpt)))
    assert code == 130 and not ckpt.exists()
    assert "no checkpoint was written yet" in err and "the last checkpoint is" not in err
    # with a checkpoint from an earlier run, it says that one is still there
    code, _, err = run(capsys, "train", "mlp", *small(data_dir, "--save", str(earlier)))
    assert code == 130 and "holds the one it held before" in err
