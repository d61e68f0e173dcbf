"""``manifest.json``: the sha256 and size of every file ``pare-studio setup`` put in the store.

Layout::

    {"format": 1,
     "files": {"pare/checkpoints/pare_checkpoint.ckpt":
                   {"sha256": "...", "size": 192722930, "source": "pare-data"}, ...},
     "installs": {"pare-data": {"from": "<url or zip>", "at": "2025-01-01T12:00:00+00:00"},
                  "smpl-neutral": {"from": "/path/SMPL_NEUTRAL.pkl", "source_sha256": "...", ...}}}

Paths are store-relative with ``/``. :func:`verify_store` re-hashes every recorded file.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pare_studio.assets import SETUP_CMD, AssetStore
from pare_studio.atomic import write_json_atomic
from pare_studio.cancel import CancelToken
from pare_studio.errors import AssetError
from pare_studio.results import Progress

FORMAT = 1
_CHUNK = 1 << 20


def sha256_file(
    path: Path, cancel: CancelToken | None = None, on_bytes: Callable[[int], None] | None = None
) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            if cancel is not None:
                cancel.check()
            h.update(chunk)
            if on_bytes is not None:
                on_bytes(len(chunk))
    return h.hexdigest()


def now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


@dataclass
class Manifest:
    """The parsed ``manifest.json`` (see the module docstring)."""

    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    installs: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, store: AssetStore) -> Manifest:
        """The store's manifest; an empty one when there is none yet.

        Raises
        ------
        AssetError
            The file exists but is not a manifest.
        """
        path = store.manifest_path
        if not path.is_file():
            return cls()
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
            files = d["files"]
            installs = d.get("installs", {})
            if not isinstance(files, dict) or not isinstance(installs, dict):
                raise TypeError("files/installs are not objects")
            for rel, entry in files.items():
                if not isinstance(entry.get("sha256"), str) or not isinstance(
                    entry.get("size"), int
                ):
                    raise TypeError(f"entry {rel!r} lacks sha256/size")
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise AssetError(
                f"{path} is not a valid PARE Studio manifest ({exc}); run `{SETUP_CMD} --force` "
                "to reinstall and rewrite it"
            ) from exc
        return cls(files=files, installs=installs)

    def record(self, rel: str, sha256: str, size: int, source: str) -> None:
        self.files[rel] = {"sha256": sha256, "size": int(size), "source": source}

    def save(self, store: AssetStore) -> None:
        """Write ``manifest.json`` atomically (:mod:`pare_studio.atomic`)."""
        data = {
            "format": FORMAT,
            "files": dict(sorted(self.files.items())),
            "installs": self.installs,
        }
        write_json_atomic(store.manifest_path, data)


@dataclass
class VerifyReport:
    """Result of :func:`verify_store`.

    checked : store-relative paths whose sha256 and size match the manifest.
    missing : recorded files that are gone.
    modified : (path, what differs) for recorded files whose size or sha256 changed.
    """

    checked: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    modified: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.modified


def verify_store(
    store: AssetStore,
    *,
    progress: Callable[[Progress], None] | None = None,
    cancel: CancelToken | None = None,
    only: Iterable[str] | None = None,
) -> VerifyReport:
    """Re-hash every file recorded in the store's manifest.

    Parameters
    ----------
    progress : called with ``Progress("verify", bytes_hashed, total_bytes)``.
    only : restrict to these store-relative paths.

    Raises
    ------
    AssetError
        There is no manifest (nothing was installed by ``pare-studio setup``).
    """
    if not store.manifest_path.is_file():
        raise AssetError(
            f"no manifest in {store.root}: nothing was installed there by `{SETUP_CMD}` "
            f"(run `{SETUP_CMD}` first, or pass the right --data-root)"
        )
    manifest = Manifest.load(store)
    wanted = set(only) if only is not None else None
    items = [(r, e) for r, e in sorted(manifest.files.items()) if wanted is None or r in wanted]
    total = sum(int(e["size"]) for _, e in items)
    done = 0

    def on_bytes(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(Progress("verify", done, total))

    report = VerifyReport()
    for rel, entry in items:
        path = store.path(rel)
        if not path.is_file():
            report.missing.append(rel)
            continue
        size = path.stat().st_size
        if size != entry["size"]:
            report.modified.append((rel, f"size {size} bytes, recorded {entry['size']}"))
            continue
        if sha256_file(path, cancel, on_bytes) != entry["sha256"]:
            report.modified.append((rel, "sha256 differs from the recorded one"))
        else:
            report.checked.append(rel)
    return report
