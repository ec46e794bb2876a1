"""Small synthetic IDX datasets and a local HTTP server for the golgi.datasets tests."""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

STEMS = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def idx_bytes(a: np.ndarray, magic: int | None = None) -> bytes:
    """Serialise a uint8 array as IDX; ``magic`` overrides the header's first word."""
    a = np.asarray(a, dtype=np.uint8)
    if magic is None:
        magic = 0x00000800 | a.ndim
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in a.shape)
    return header + a.tobytes()


def synthetic(n_train: int = 12, n_test: int = 5, seed: int = 0) -> dict[str, np.ndarray]:
    """Random uint8 images (n, 28, 28) whose pixel 0 encodes the index, and labels 0..9."""
    rng = np.random.default_rng(seed)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        x[:, 0, 0] = np.arange(n) % 256
        x[0, 0, 1], x[0, 0, 2] = 0, 255  # so the range [0, 1] is always reached
        out[f"{split}_images"] = x
        out[f"{split}_labels"] = (np.arange(n) * 7 % 10).astype(np.uint8)
    return out


def write_dataset(folder: Path, data: dict[str, np.ndarray], gz: bool = True) -> dict[str, Path]:
    """Write ``data`` as the four standard IDX files (``.gz`` if ``gz``) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for role, stem in STEMS.items():
        raw = idx_bytes(data[role])
        path = folder / (stem + (".gz" if gz else ""))
        path.write_bytes(gzip.compress(raw) if gz else raw)
        paths[role] = path
    return paths


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class _TruncatingHandler(_QuietHandler):
    """Announces twice the file's length, sends half, and hangs up."""

    def do_GET(self) -> None:
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        body = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(2 * len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2])
        self.wfile.flush()
        self.close_connection = True


class _TricklingHandler(_QuietHandler):
    """Sends the file (or, with ``trickle="headers"``, its headers) a few bytes at a time.

    A hostile or broken mirror: every read gets something before a per-read timeout, so only a
    deadline or a minimum rate ends the download.
    """

    trickle = "body"
    stop = threading.Event()

    def _drip(self, data: bytes) -> None:
        for i in range(0, len(data), 4):
            if self.stop.wait(0.02):
                return
            self.wfile.write(data[i : i + 4])
            self.wfile.flush()

    def do_GET(self) -> None:
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        body = path.read_bytes()
        head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n"
        try:
            if self.trickle == "headers":
                self._drip(head.encode() + b"X-Padding: " + b"x" * 60_000 + b"\r\n\r\n" + body)
            else:
                self.wfile.write(head.encode() + b"\r\n")
                self._drip(body)
        except OSError:  # the client gave up, as it should
            pass
        self.close_connection = True


@contextlib.contextmanager
def serve(folder: Path, truncate: bool = False, trickle: str | None = None) -> Iterator[str]:
    """Serve ``folder`` over HTTP on 127.0.0.1 (ephemeral port) in a thread; yield the base URL.

    ``truncate``: announce twice the length and hang up halfway. ``trickle``: ``"body"`` or
    ``"headers"``, sent 4 bytes every 20 ms (200 bytes/s).
    """
    handler: type[_QuietHandler] = _QuietHandler
    if truncate:
        handler = _TruncatingHandler
    elif trickle is not None:
        stop = threading.Event()
        handler = type("Trickling", (_TricklingHandler,), {"trickle": trickle, "stop": stop})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(folder))
    )
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        if trickle is not None:
            handler.stop.set()  # type: ignore[attr-defined]
        server.shutdown()
        server.server_close()
        thread.join()


def wait_for(predicate, seconds: float = 20.0) -> bool:
    """Poll ``predicate`` until it holds or ``seconds`` pass; return whether it held."""
    end = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > end:
            return False
        time.sleep(0.02)
    return True


def closed_port_url() -> str:
    """A URL on 127.0.0.1 whose port was just free, so connecting is refused."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"
