"""A small resumable HTTP downloader for PARE's data zip (standard library only).

Why not gdown: we need an exact, testable resume contract (``*.part`` kept across runs, HTTP
``Range`` with ``If-Range``, a server that ignores ranges handled by starting over), progress and
cancellation through our own :class:`~pare_studio.results.Progress` / :class:`CancelToken`, and the
same code path against any mirror or a loopback test server. Google Drive's only extra step for big
files is the "can't scan this file for viruses" page; we ask for ``confirm=t`` directly and, if a
warning page still comes back, submit its form (what gdown does), so no extra dependency is needed.

The partial download lives next to the destination as ``<name>.part`` with ``<name>.part.json``
(URL, ETag / Last-Modified, total size); a later call resumes from it.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from pare_studio.assets import PARE_DATA_DRIVE_URL, SETUP_FROM_ZIP_CMD
from pare_studio.cancel import CancelToken
from pare_studio.errors import AssetError
from pare_studio.results import Progress

#: Google Drive id of ``pare-github-data.zip`` (the reference's ``scripts/prepare_data.sh``).
DRIVE_FILE_ID = "1qIq0CBBj-O6wVc9nJXG-JDEtWPzRQ4KC"
#: Direct download URL; ``confirm=t`` skips the virus-scan warning that Drive shows for big files.
DEFAULT_DATA_URL = (
    f"https://drive.usercontent.google.com/download?id={DRIVE_FILE_ID}&export=download&confirm=t"
)
#: Environment variable that overrides the download URL (a mirror, or a test server).
DATA_URL_ENV = "PARE_STUDIO_DATA_URL"
DATA_ZIP_NAME = "pare-github-data.zip"

_CHUNK = 1 << 20
#: HTTP statuses worth retrying; any other error status fails at once.
_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
#: Warning pages followed at most (Drive shows one).
_MAX_FORM_HOPS = 3
_USER_AGENT = "pare-studio-setup/1 (+https://github.com/mkocabas/PARE data)"


def data_url(url: str | None = None) -> str:
    """The URL to fetch PARE's data from: ``url``, else ``$PARE_STUDIO_DATA_URL``, else Drive."""
    return url or os.environ.get(DATA_URL_ENV) or DEFAULT_DATA_URL


@dataclass
class _PartState:
    """What we know about ``<dest>.part``: where it came from and how big the whole file is."""

    url: str
    etag: str | None = None
    last_modified: str | None = None
    total: int | None = None


class _FormParser(HTMLParser):
    """Collects the first ``<form>``'s action and its ``<input name=... value=...>`` fields."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self._in_form = False
        self._done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and not self._done and self.action is None:
            self.action = a.get("action", "")
            self._in_form = True
        elif tag == "input" and self._in_form and a.get("name"):
            self.fields[a["name"]] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._in_form:
            self._in_form = False
            self._done = True


def _drive_confirm_url(page: str, base_url: str) -> str | None:
    """The URL behind Google Drive's "download anyway" form, or None if the page has no form."""
    parser = _FormParser()
    parser.feed(page)
    if not parser.action:
        return None
    action = urllib.parse.urljoin(base_url, parser.action)
    return action + ("&" if "?" in action else "?") + urllib.parse.urlencode(parser.fields)


def _html_refusal(page: str, url: str) -> AssetError:
    text = re.sub(r"<[^>]+>", " ", page)
    text = " ".join(text.split())[:300]
    return AssetError(
        f"the server at {url} answered with a web page instead of the zip ({text!r}). "
        "Google Drive does this when the file's download quota is exhausted or the link moved. "
        f"Download pare-github-data.zip in a browser from {PARE_DATA_DRIVE_URL} and run "
        f"`{SETUP_FROM_ZIP_CMD}`, or pass a mirror with --url."
    )


def _read_state(meta: Path, url: str) -> _PartState | None:
    try:
        d = json.loads(meta.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(d, dict) or d.get("url") != url:
        return None
    return _PartState(
        url=url, etag=d.get("etag"), last_modified=d.get("last_modified"), total=d.get("total")
    )


def _write_state(meta: Path, state: _PartState) -> None:
    tmp = meta.with_name(meta.name + ".tmp")
    tmp.write_text(json.dumps(state.__dict__))
    os.replace(tmp, meta)


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """``bytes 100-199/1000`` -> (100, 1000); ``bytes */1000`` -> (None, 1000)."""
    m = re.match(r"bytes\s+(\d+|\*)(?:-\d+)?/(\d+|\*)", value or "")
    if not m:
        return None, None
    start = None if m.group(1) == "*" else int(m.group(1))
    total = None if m.group(2) == "*" else int(m.group(2))
    return start, total


_NETWORK_ERRORS = (
    urllib.error.URLError,
    http.client.HTTPException,
    ConnectionError,
    socket.timeout,
    TimeoutError,
)


def download(
    url: str,
    dest: Path,
    *,
    progress: Callable[[Progress], None] | None = None,
    cancel: CancelToken | None = None,
    retries: int = 3,
    timeout: float = 60.0,
    backoff: float = 1.0,
) -> Path:
    """Download ``url`` to ``dest``, resuming ``dest.part`` from an earlier attempt.

    Parameters
    ----------
    url : http(s) URL. Google Drive's virus-scan warning page is followed automatically.
    dest : final file; written as ``<dest>.part`` and renamed when complete.
    progress : called with ``Progress("download", bytes_done, total_bytes)`` (total 0 if unknown).
    cancel : checked between 1 MiB chunks; on cancel the ``.part`` is kept for a later resume.
    retries : extra attempts after a connection drops without progress; each resumes with an
        HTTP Range request (the count starts again whenever an attempt made progress).
    timeout : seconds without data before an attempt is abandoned.
    backoff : seconds before the first retry (doubled each time).

    Returns
    -------
    dest

    Raises
    ------
    AssetError
        The server refused, answered with a web page, or the connection kept dropping (the
        ``.part`` is kept; running again resumes).
    Cancelled
        ``cancel`` was set.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    meta = dest.with_name(dest.name + ".part.json")
    state = _read_state(meta, url)
    if state is None:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
        state = _PartState(url=url)

    fetch_url = url
    failures = 0
    hops = 0
    while True:
        if cancel is not None:
            cancel.check()
        before = part.stat().st_size if part.exists() else 0
        try:
            _attempt(fetch_url, part, meta, state, progress, cancel, timeout)
            break
        except _Redirect as r:
            hops += 1
            if hops > _MAX_FORM_HOPS:
                raise _html_refusal(r.page, url) from None
            fetch_url = r.url
            continue
        except _NETWORK_ERRORS + (OSError,) as exc:
            if isinstance(exc, urllib.error.HTTPError) and exc.code not in _RETRY_STATUSES:
                raise AssetError(
                    f"downloading {url} failed: HTTP {exc.code} {exc.reason}. If the link moved, "
                    f"download pare-github-data.zip from {PARE_DATA_DRIVE_URL} and run "
                    f"`{SETUP_FROM_ZIP_CMD}`, or pass a mirror with --url."
                ) from exc
            if part.exists() and part.stat().st_size > before:
                failures = 0  # progress was made: the retry budget is per stall, not per file
            failures += 1
            if failures > retries:
                have = part.stat().st_size if part.exists() else 0
                total = f" of {state.total}" if state.total else ""
                raise AssetError(
                    f"downloading {url} failed after {failures} attempt(s) ({have}{total} bytes "
                    f"kept in {part}): {exc}. Run the same command again to resume."
                ) from exc
        time.sleep(backoff * 2 ** (failures - 1))

    os.replace(part, dest)
    with contextlib.suppress(FileNotFoundError):
        meta.unlink()
    return dest


class _Redirect(Exception):
    """Google Drive's warning page: fetch the URL behind its "download anyway" form instead."""

    def __init__(self, url: str, page: str) -> None:
        self.url = url
        self.page = page


def _attempt(
    url: str,
    part: Path,
    meta: Path,
    state: _PartState,
    progress: Callable[[Progress], None] | None,
    cancel: CancelToken | None,
    timeout: float,
) -> None:
    """One HTTP request appending to ``part``; returns when the file is complete.

    Raises ConnectionError (and the other network errors) when the caller should try again.
    """
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        validator = state.etag or state.last_modified
        if validator:
            headers["If-Range"] = validator
    req = urllib.request.Request(url, headers=headers)
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)  # noqa: S310 (http/https by design)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            _, total = _content_range(exc.headers.get("Content-Range"))
            exc.close()
            if total is not None and total == offset:
                return  # the .part already holds the whole file
            part.unlink()
            raise ConnectionError(
                "the partial download is longer than the file; starting over"
            ) from None
        raise
    with resp:
        ctype = resp.headers.get("Content-Type", "")
        if ctype.startswith("text/html"):
            page = resp.read(2_000_000).decode("utf-8", "replace")
            host = urllib.parse.urlparse(resp.geturl()).hostname or ""
            confirm = _drive_confirm_url(page, resp.geturl()) if "google" in host else None
            if confirm and confirm != url:
                raise _Redirect(confirm, page)
            raise _html_refusal(page, url)

        if resp.status == 206:
            start, total = _content_range(resp.headers.get("Content-Range"))
            if start != offset:
                part.unlink()
                raise ConnectionError(f"asked for bytes from {offset}, got {start}; starting over")
            mode = "ab"
        else:  # 200: a server without Range support, or the file changed (If-Range): start over
            offset = 0
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            mode = "wb"
        state.total = total
        state.etag = resp.headers.get("ETag") or state.etag
        state.last_modified = resp.headers.get("Last-Modified") or state.last_modified
        _write_state(meta, state)

        done = offset
        with open(part, mode) as f:
            if progress is not None:
                progress(Progress("download", done, total or 0))
            while True:
                if cancel is not None:
                    cancel.check()
                chunk = resp.read(_CHUNK)
                if not chunk:
                    break
                f.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(Progress("download", done, total or 0))
    if total is None:
        return  # no length announced: a clean end of stream is all we can check
    if done < total:
        raise ConnectionError(f"connection closed after {done} of {total} bytes")
    if done > total:
        part.unlink()
        raise ConnectionError(f"server sent {done} bytes, more than the announced {total}")
