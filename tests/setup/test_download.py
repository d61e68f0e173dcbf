"""The resumable downloader against a loopback HTTP server."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pare_studio.cancel import CancelToken
from pare_studio.errors import AssetError, Cancelled
from pare_studio.results import Progress
from pare_studio.setup.download import _drive_confirm_url, data_url, download
from tests.setup.conftest import RangeServer, Route

SIZE = 3 * (1 << 20) + 12345


@pytest.fixture
def payload(tmp_path: Path) -> Path:
    p = tmp_path / "served.zip"
    p.write_bytes(os.urandom(SIZE))
    return p


def test_download_whole_file_with_progress(
    http_server: RangeServer, payload: Path, tmp_path: Path
) -> None:
    http_server.routes["/f.zip"] = Route(payload)
    seen: list[Progress] = []
    dest = download(http_server.url("/f.zip"), tmp_path / "out" / "f.zip", progress=seen.append)
    assert dest.read_bytes() == payload.read_bytes()
    assert [p.done for p in seen] == sorted(p.done for p in seen)
    assert seen[-1] == Progress("download", SIZE, SIZE)
    assert sorted(os.listdir(dest.parent)) == ["f.zip"]  # no .part / .part.json left behind
    assert "range" not in http_server.gets("/f.zip")[0]


def test_interrupted_download_resumes_with_range(
    http_server: RangeServer, payload: Path, tmp_path: Path
) -> None:
    cut = 1_500_000
    http_server.routes["/f.zip"] = Route(payload, drop_after=cut)
    dest = tmp_path / "f.zip"
    with pytest.raises(AssetError, match="again to resume"):
        download(http_server.url("/f.zip"), dest, retries=0)
    part = tmp_path / "f.zip.part"
    assert part.stat().st_size == cut and not dest.exists()

    download(http_server.url("/f.zip"), dest, retries=0)
    second = http_server.gets("/f.zip")[1]
    assert second["range"] == f"bytes={cut}-"
    assert second["if-range"] == '"v1"'
    assert dest.read_bytes() == payload.read_bytes()
    assert not part.exists()


def test_dropped_connection_is_retried_within_one_call(
    http_server: RangeServer, payload: Path, tmp_path: Path
) -> None:
    http_server.routes["/f.zip"] = Route(payload, drop_after=2_000_000)
    dest = download(http_server.url("/f.zip"), tmp_path / "f.zip", retries=2, backoff=0.01)
    assert dest.read_bytes() == payload.read_bytes()
    assert [r.get("range") for r in http_server.gets("/f.zip")] == [None, "bytes=2000000-"]


def test_server_without_range_support_restarts_cleanly(
    http_server: RangeServer, payload: Path, tmp_path: Path
) -> None:
    http_server.routes["/f.zip"] = Route(payload, drop_after=1_000_000, ignore_range=True)
    dest = download(http_server.url("/f.zip"), tmp_path / "f.zip", retries=1, backoff=0.01)
    assert http_server.gets("/f.zip")[1]["range"] == "bytes=1000000-"  # asked, got a 200
    assert dest.read_bytes() == payload.read_bytes()


def test_file_changed_on_server_is_fetched_whole(
    http_server: RangeServer, payload: Path, tmp_path: Path
) -> None:
    http_server.routes["/f.zip"] = Route(payload, drop_after=1_000_000)
    dest = tmp_path / "f.zip"
    with pytest.raises(AssetError):
        download(http_server.url("/f.zip"), dest, retries=0)
    payload.write_bytes(os.urandom(SIZE - 1000))  # a new version with a new ETag
    http_server.routes["/f.zip"] = Route(payload, etag='"v2"')
    download(http_server.url("/f.zip"), dest, retries=0)
    assert dest.read_bytes() == payload.read_bytes()  # If-Range mismatch -> whole new file


def test_cancel_keeps_the_part_for_a_later_resume(
    http_server: RangeServer, payload: Path, tmp_path: Path
) -> None:
    http_server.routes["/f.zip"] = Route(payload)
    token = CancelToken()

    def cancel_after_first_mib(p: Progress) -> None:
        if p.done >= 1 << 20:
            token.cancel()

    dest = tmp_path / "f.zip"
    with pytest.raises(Cancelled):
        download(http_server.url("/f.zip"), dest, progress=cancel_after_first_mib, cancel=token)
    kept = (tmp_path / "f.zip.part").stat().st_size
    assert 0 < kept < SIZE
    download(http_server.url("/f.zip"), dest)
    assert http_server.gets("/f.zip")[1]["range"] == f"bytes={kept}-"
    assert dest.read_bytes() == payload.read_bytes()


def test_web_page_instead_of_zip_is_refused(http_server: RangeServer, tmp_path: Path) -> None:
    http_server.routes["/f.zip"] = Route(html="<html><body>Quota exceeded</body></html>")
    with pytest.raises(AssetError, match=r"web page.*Quota exceeded.*--from-zip"):
        download(http_server.url("/f.zip"), tmp_path / "f.zip", retries=0)
    assert not (tmp_path / "f.zip").exists()


def test_http_error_is_not_retried(http_server: RangeServer, tmp_path: Path) -> None:
    with pytest.raises(AssetError, match="HTTP 404"):
        download(http_server.url("/missing.zip"), tmp_path / "f.zip", retries=3, backoff=5)
    assert len(http_server.gets("/missing.zip")) == 1


def test_drive_virus_scan_form_is_followed() -> None:
    page = """<html><body><form id="download-form"
        action="https://drive.usercontent.google.com/download" method="get">
        <input type="submit" value="Download anyway"/>
        <input type="hidden" name="id" value="1qIq0CBBj-O6wVc9nJXG-JDEtWPzRQ4KC">
        <input type="hidden" name="export" value="download">
        <input type="hidden" name="confirm" value="t">
        <input type="hidden" name="uuid" value="abc-123"></form></body></html>"""
    url = _drive_confirm_url(page, "https://drive.google.com/uc?id=x")
    assert url == (
        "https://drive.usercontent.google.com/download"
        "?id=1qIq0CBBj-O6wVc9nJXG-JDEtWPzRQ4KC&export=download&confirm=t&uuid=abc-123"
    )
    assert _drive_confirm_url("<html>no form</html>", "https://drive.google.com/") is None


def test_data_url_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARE_STUDIO_DATA_URL", "http://mirror/pare.zip")
    assert data_url("http://flag/x.zip") == "http://flag/x.zip"
    assert data_url() == "http://mirror/pare.zip"
    monkeypatch.delenv("PARE_STUDIO_DATA_URL")
    assert "1qIq0CBBj-O6wVc9nJXG-JDEtWPzRQ4KC" in data_url()


def test_complete_part_from_a_crash_is_finished_without_refetching(
    http_server: RangeServer, payload: Path, tmp_path: Path
) -> None:
    """A process killed between the last byte and the rename leaves a whole ``.part``: the
    server's 416 (nothing left in range) completes it."""
    http_server.routes["/f.zip"] = Route(payload)
    url = http_server.url("/f.zip")
    (tmp_path / "f.zip.part").write_bytes(payload.read_bytes())
    (tmp_path / "f.zip.part.json").write_text(
        json.dumps({"url": url, "etag": '"v1"', "total": SIZE})
    )
    download(url, tmp_path / "f.zip", retries=0)
    assert http_server.gets("/f.zip")[0]["range"] == f"bytes={SIZE}-"
    assert (tmp_path / "f.zip").read_bytes() == payload.read_bytes()


def test_part_of_another_url_is_not_resumed(
    http_server: RangeServer, payload: Path, tmp_path: Path
) -> None:
    http_server.routes["/f.zip"] = Route(payload)
    (tmp_path / "f.zip.part").write_bytes(b"from elsewhere")
    (tmp_path / "f.zip.part.json").write_text(json.dumps({"url": "http://other/x.zip"}))
    download(http_server.url("/f.zip"), tmp_path / "f.zip", retries=0)
    assert "range" not in http_server.gets("/f.zip")[0]
    assert (tmp_path / "f.zip").read_bytes() == payload.read_bytes()
