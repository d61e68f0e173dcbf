"""On-disk cache of exported ONNX networks, keyed by checkpoint hash, configuration and versions.

Layout (one entry per key)::

    <cache root>/onnx/pare-<digest[:40]>.onnx   the exported network (ONNX protobuf)
    <cache root>/onnx/pare-<digest[:40]>.json   what it was made from + sha256 / size of the .onnx

The cache root is ``$PARE_STUDIO_CACHE`` when set, else platformdirs'
``user_cache_dir("pare-studio")``. The key (:class:`ExportKey`) holds the sha256 of the checkpoint
file bytes, the configuration fields that shape the network, the torch / onnx / onnxscript /
onnxruntime versions and the export code's version; any change gives another file.

Both files are written to a temporary file in the same folder and ``os.replace``d, the model
first, so a ``.json`` always describes a complete ``.onnx``. :meth:`ExportCache.lookup` checks
the size and sha256 of the model against its ``.json``; a damaged, truncated or foreign entry
is deleted and reported as a miss (the caller exports again). At most
:data:`MAX_ENTRIES` entries are kept (least recently used removed).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pare_studio.atomic import atomic_path, write_text_atomic
from pare_studio.errors import OutputError

log = logging.getLogger(__name__)

#: Environment variable overriding the cache root folder.
CACHE_ENV = "PARE_STUDIO_CACHE"

#: Sub-folder of the cache root holding the ONNX exports.
SUBDIR = "onnx"

#: Entries kept; older ones (by last use) are deleted after each store.
MAX_ENTRIES = 4

_PREFIX = "pare-"
_CHUNK = 8 << 20


class CacheUnavailable(Exception):
    """The cache folder cannot be created or written (the message says which and why)."""


def cache_root() -> Path:
    """The application cache folder: ``$PARE_STUDIO_CACHE`` or ``user_cache_dir("pare-studio")``."""
    env = os.environ.get(CACHE_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("pare-studio"))


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes (read in 8 MiB chunks)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class ExportKey:
    """Everything an exported network depends on.

    Attributes
    ----------
    ckpt_sha256 : hex sha256 of the checkpoint file bytes.
    config : the configuration fields that shape the network (JSON-able values).
    versions : library versions (torch, onnx, onnxscript, onnxruntime) and the export code version.
    """

    ckpt_sha256: str
    config: Mapping[str, Any] = field(default_factory=dict)
    versions: Mapping[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (sorted keys) as stored in the entry's ``.json``."""
        return {
            "ckpt_sha256": self.ckpt_sha256,
            "config": {k: self.config[k] for k in sorted(self.config)},
            "versions": {k: self.versions[k] for k in sorted(self.versions)},
        }

    @property
    def digest(self) -> str:
        """Hex sha256 of the canonical JSON of :meth:`as_dict`."""
        text = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()


#: Configuration fields that do not change the network (left out of the key). Every other
#: compared field of the configuration is in it, so a field added later re-keys the cache.
NON_NETWORK_FIELDS: frozenset[str] = frozenset(
    {"batch_size", "focal_length", "pretrained_lit", "use_gender"}
)


def config_fields(cfg: Any) -> dict[str, Any]:
    """The compared fields of a (dataclass) configuration that can shape the network, as
    JSON-able values (all but :data:`NON_NETWORK_FIELDS`)."""
    if dataclasses.is_dataclass(cfg):
        return {
            f.name: _jsonable(getattr(cfg, f.name))
            for f in dataclasses.fields(cfg)
            if f.compare and f.name not in NON_NETWORK_FIELDS
        }
    return {"repr": repr(cfg)}


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


@dataclass
class CacheEntry:
    """A complete entry found by :meth:`ExportCache.lookup`.

    Attributes
    ----------
    model : the ``.onnx`` file.
    meta : the entry's ``.json`` contents (key, ``onnx_sha256``, ``onnx_size``, export stats).
    """

    model: Path
    meta: dict[str, Any]


class ExportCache:
    """The ONNX export cache in ``root/onnx`` (``root`` defaults to :func:`cache_root`).

    Parameters
    ----------
    root : cache root folder; None = :func:`cache_root` (read when the object is created).
    max_entries : entries kept after a store.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None, max_entries: int = MAX_ENTRIES):
        self.root = Path(root) if root is not None else cache_root()
        self.dir = self.root / SUBDIR
        self.max_entries = int(max_entries)

    def model_path(self, key: ExportKey) -> Path:
        return self.dir / f"{_PREFIX}{key.digest[:40]}.onnx"

    def meta_path(self, key: ExportKey) -> Path:
        return self.dir / f"{_PREFIX}{key.digest[:40]}.json"

    # ------------------------------------------------------------------ checks

    def ensure_writable(self) -> None:
        """Create the folder and check a file can be written there.

        Raises
        ------
        CacheUnavailable : the folder cannot be created or a file cannot be written in it.
        """
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=".probe-", dir=self.dir)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise CacheUnavailable(
                f"the cache folder {self.dir} cannot be written ({exc.strerror or exc}); set "
                f"{CACHE_ENV} to a writable folder"
            ) from None

    def lookup(self, key: ExportKey) -> CacheEntry | None:
        """The complete, intact entry for ``key``, or None.

        An entry whose ``.json`` is unreadable or names another key, or whose ``.onnx`` is
        missing or has another size / sha256, is deleted (best effort) and None is returned;
        the reason is logged as a warning.
        """
        meta_path, model = self.meta_path(key), self.model_path(key)
        if not meta_path.exists():
            return None
        problem = None
        meta: dict[str, Any] = {}
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if not isinstance(meta, dict) or meta.get("key") != key.as_dict():
                problem = "its description names another checkpoint / configuration"
            elif not model.is_file():
                problem = "the model file is missing"
            elif model.stat().st_size != meta.get("onnx_size"):
                problem = (
                    f"the model file has {model.stat().st_size} bytes, "
                    f"{meta.get('onnx_size')} expected"
                )
            elif file_sha256(model) != meta.get("onnx_sha256"):
                problem = "the model file's sha256 does not match"
        except (OSError, ValueError) as exc:
            problem = f"it cannot be read ({exc})"
        if problem is None:
            with contextlib.suppress(OSError):
                os.utime(meta_path)  # last use, for pruning
            return CacheEntry(model=model, meta=meta)
        log.warning("cached ONNX network %s is damaged (%s); exporting it again", model, problem)
        self.remove(key)
        return None

    # ------------------------------------------------------------------ writing

    def store(
        self,
        key: ExportKey,
        write_model: Callable[[Path], None],
        extra_meta: Mapping[str, Any] | None = None,
    ) -> CacheEntry:
        """Write a new entry: ``write_model(tmp_path)`` writes the ``.onnx`` to a temporary path
        in the cache folder, which is then hashed and ``os.replace``d into place, followed by
        the ``.json`` (key, sha256, size, and ``extra_meta``, read after ``write_model`` ran).

        Raises
        ------
        CacheUnavailable : the folder or the files cannot be written.
        Anything ``write_model`` raises (the temporary file is removed).
        """
        self.ensure_writable()
        model, meta_path = self.model_path(key), self.meta_path(key)
        try:
            with atomic_path(model) as tmp:
                write_model(tmp)
                size = tmp.stat().st_size
                digest = file_sha256(tmp)
        except OutputError as exc:
            raise CacheUnavailable(str(exc)) from None
        meta = {
            "key": key.as_dict(),
            "onnx_sha256": digest,
            "onnx_size": size,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **dict(extra_meta or {}),
        }
        try:
            write_text_atomic(meta_path, json.dumps(meta, indent=1, sort_keys=True, default=str))
        except OutputError as exc:
            _unlink(model)
            raise CacheUnavailable(str(exc)) from None
        self.prune()
        return CacheEntry(model=model, meta=meta)

    def remove(self, key: ExportKey) -> None:
        """Delete the entry's files (best effort; description first)."""
        _unlink(self.meta_path(key))
        _unlink(self.model_path(key))

    def entries(self) -> list[Path]:
        """The ``.json`` files of the entries, most recently used first."""
        try:
            metas = [p for p in self.dir.glob(f"{_PREFIX}*.json") if p.is_file()]
        except OSError:
            return []

        def used(p: Path) -> float:
            try:
                return p.stat().st_mtime
            except OSError:
                return 0.0

        return sorted(metas, key=used, reverse=True)

    def prune(self) -> None:
        """Delete entries beyond :attr:`max_entries` (least recently used first), and model /
        temporary files older than an hour that no entry describes (left by a crash)."""
        metas = self.entries()
        for meta in metas[self.max_entries :]:
            _unlink(meta)
            _unlink(meta.with_suffix(".onnx"))
        keep = {m.with_suffix(".onnx").name for m in metas[: self.max_entries]}
        stale = time.time() - 3600  # younger files may belong to an export in progress
        with contextlib.suppress(OSError):
            for path in [*self.dir.glob(f"{_PREFIX}*.onnx"), *self.dir.glob(f".{_PREFIX}*.tmp")]:
                if path.name not in keep and path.stat().st_mtime < stale:
                    _unlink(path)


def _unlink(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()
