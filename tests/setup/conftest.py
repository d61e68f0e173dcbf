"""Fixtures for the setup tests: a loopback HTTP server with Range support, synthetic PARE zips,
and an isolated environment (asset store, current folder and home in tmp folders)."""

from __future__ import annotations

import hashlib
import http.server
import shutil
import struct
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from pare_studio.assets import AssetStore
from pare_studio.setup.lock import LOCK_NAME


# -- HTTP server ----------------------------------------------------------------------------
@dataclass
class Route:
    """What the server answers for one path."""

    path: Path | None = None  # file to serve
    html: str | None = None  # or a web page
    status: int = 200  # or an error status
    drop_after: int | None = None  # first GET: close the connection after this many body bytes
    ignore_range: bool = False  # behave like a server without Range support
    etag: str = '"v1"'


@dataclass
class RangeServer:
    """A ThreadingHTTPServer on 127.0.0.1 with an ephemeral port; records every request."""

    httpd: http.server.ThreadingHTTPServer
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[dict[str, str]] = field(default_factory=list)
    drops: int = 0

    def url(self, path: str) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}{path}"

    def gets(self, path: str) -> list[dict[str, str]]:
        return [r for r in self.requests if r["path"] == path]


def _handler(server: RangeServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # keep pytest output clean
            pass

        def do_GET(self) -> None:  # noqa: N802
            headers = {k.lower(): v for k, v in self.headers.items()}
            server.requests.append({"path": self.path, **headers})
            route = server.routes.get(self.path)
            if route is None or route.status != 200:
                self.send_error(404 if route is None else route.status)
                return
            if route.html is not None:
                body = route.html.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            assert route.path is not None
            size = route.path.stat().st_size
            start = 0
            rng = headers.get("range")
            if_range = headers.get("if-range")
            honour = rng and not route.ignore_range and (if_range is None or if_range == route.etag)
            if honour:
                start = int(rng.split("=")[1].split("-")[0])
                if start >= size:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
            else:
                self.send_response(200)
            self.send_header("Content-Type", "application/zip")
            self.send_header("Content-Length", str(size - start))
            self.send_header("ETag", route.etag)
            self.send_header("Accept-Ranges", "none" if route.ignore_range else "bytes")
            self.end_headers()
            limit = None
            if route.drop_after is not None and server.drops == 0:
                server.drops += 1
                limit = route.drop_after
            sent = 0
            with open(route.path, "rb") as f:
                f.seek(start)
                while chunk := f.read(1 << 20):
                    if limit is not None and sent + len(chunk) > limit:
                        self.wfile.write(chunk[: limit - sent])
                        self.wfile.flush()
                        self.close_connection = True
                        return  # drop the connection mid-body
                    self.wfile.write(chunk)
                    sent += len(chunk)

    return Handler


@pytest.fixture
def http_server() -> Iterator[RangeServer]:
    """The server; it is shut down after the test (and by a 10-minute watchdog at the latest)."""
    server = RangeServer(httpd=None)  # type: ignore[arg-type]
    server.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(server))
    server.httpd.daemon_threads = True
    thread = threading.Thread(target=server.httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    watchdog = threading.Timer(600, server.httpd.shutdown)
    watchdog.daemon = True
    watchdog.start()
    try:
        yield server
    finally:
        watchdog.cancel()
        server.httpd.shutdown()
        server.httpd.server_close()
        thread.join(10)


# -- environment ----------------------------------------------------------------------------
@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AssetStore]:
    """An empty asset store in tmp (``$PARE_STUDIO_DATA``); cwd and HOME moved to tmp as well, so
    neither ``./data`` nor ``~/.torch/models`` of the machine is found. Removed after the test."""
    root = tmp_path / "store"
    monkeypatch.setenv("PARE_STUDIO_DATA", str(root))
    monkeypatch.delenv("PARE_STUDIO_DATA_URL", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    yield AssetStore(root)
    shutil.rmtree(root, ignore_errors=True)  # the big files do not wait for pytest's cleanup


def tree_digest(root: Path) -> dict[str, str]:
    """relative path -> sha256 of every file under ``root`` (empty when it does not exist), but
    the empty setup lock file that a setup leaves in the store's root."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p != root / LOCK_NAME
    }


# -- synthetic PARE data --------------------------------------------------------------------------
def dummy_darknet_bytes(n_values: int = 1000) -> bytes:
    """A small file with a valid Darknet v0.2 header (20 bytes) and ``n_values`` float32s."""
    header = struct.pack("<3iq", 0, 2, 0, 32013312)
    return header + np.arange(n_values, dtype="<f4").tobytes()


def pare_data_files(smpl_dir: Path, ckpt: Path, cfg: Path, yolo: bytes) -> dict[str, Path | bytes]:
    """The zip's contents under ``data/``: the synthetic checkpoint stands in for both models."""
    files: dict[str, Path | bytes] = {}
    for model in ("pare", "pare_w_3dpw"):
        files[f"pare/checkpoints/{model}_checkpoint.ckpt"] = ckpt
        files[f"pare/checkpoints/{model}_config.yaml"] = cfg
    for name in ("smpl_mean_params.npz", "J_regressor_extra.npy", "J_regressor_h36m.npy"):
        files[name] = smpl_dir / name
    files["yolov3.weights"] = yolo
    files["dataset_extras/README.txt"] = b"an extra file the real archive might carry\n"
    return files


def write_zip(
    path: Path, files: dict[str, Path | bytes], prefix: str = "data/", stored: bool = False
) -> Path:
    """Write ``files`` under ``prefix`` (big files stored, small ones deflated unless ``stored``),
    plus junk outside the data folder."""
    with zipfile.ZipFile(path, "w") as zf:
        for rel, src in files.items():
            data_len = src.stat().st_size if isinstance(src, Path) else len(src)
            big = data_len > (8 << 20)
            comp = zipfile.ZIP_STORED if big or stored else zipfile.ZIP_DEFLATED
            if isinstance(src, Path):
                zf.write(src, prefix + rel, compress_type=comp)
            else:
                zf.writestr(prefix + rel, src, compress_type=comp)
        zf.writestr("__MACOSX/data/._yolov3.weights", b"resource fork junk")
    return path


@pytest.fixture(scope="session")
def pare_zip(
    tmp_path_factory: pytest.TempPathFactory, smpl_dir: Path, ckpt_path: Path, cfg_path: Path
) -> Iterator[Path]:
    """A ~390 MB zip laid out like ``pare-github-data.zip`` (built once per session)."""
    d = tmp_path_factory.mktemp("pare_zip")
    path = write_zip(
        d / "pare-github-data.zip",
        pare_data_files(smpl_dir, ckpt_path, cfg_path, dummy_darknet_bytes()),
    )
    yield path
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def light_files(smpl_dir: Path, cfg_path: Path) -> dict[str, Path | bytes]:
    """The zip's file list with tiny stand-ins for the checkpoints (for refusal tests)."""
    files = pare_data_files(smpl_dir, Path("unused"), cfg_path, dummy_darknet_bytes())
    for model in ("pare", "pare_w_3dpw"):
        files[f"pare/checkpoints/{model}_checkpoint.ckpt"] = b"not a checkpoint" * 64
    return files


def flip_byte_of_member(zip_path: Path, member: str) -> None:
    """Corrupt one byte inside a stored member's data (its CRC-32 no longer matches)."""
    with zipfile.ZipFile(zip_path) as zf:
        info = zf.getinfo(member)
    assert info.compress_type == zipfile.ZIP_STORED
    with open(zip_path, "r+b") as f:
        f.seek(info.header_offset)
        local = f.read(30)
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        pos = info.header_offset + 30 + name_len + extra_len + info.file_size // 2
        f.seek(pos)
        b = f.read(1)
        f.seek(pos)
        f.write(bytes([b[0] ^ 0xFF]))


def populate(
    root: Path, *, smpl: bool = True, models: tuple[str, ...] = ("pare_w_3dpw", "pare")
) -> Path:
    """Create (tiny) files laid out like PARE's data/ under ``root``; only names matter here."""
    rels = [
        "J_regressor_extra.npy",
        "J_regressor_h36m.npy",
        "smpl_mean_params.npz",
        "yolov3.weights",
    ]
    rels += [
        f"pare/checkpoints/{m}_{k}" for m in models for k in ("checkpoint.ckpt", "config.yaml")
    ]
    if smpl:
        rels.append("body_models/smpl/SMPL_NEUTRAL.npz")
    for rel in rels:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    return root
