"""The ``golgi`` command line, on tiny synthetic IDX files (no network)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

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
